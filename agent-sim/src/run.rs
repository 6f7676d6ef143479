//! Starts the simulator from a [`Config`]: binds the master's listener
//! and one per real agent, makes the real agents' work directory, builds
//! the master and its fleet, starts the master task and the HTTP servers,
//! and reports the bound address. At exit it stops the executors and
//! removes what it made.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::TcpListener;

use crate::agent::launch::HostSettings;
use crate::agent::processes::Processes;
use crate::config::Config;
use crate::control::ControlContext;
use crate::ha::contender::{self, CandidacyError};
use crate::ha::takeover::{self, TakeoverError};
use crate::master::driver::{self, DriverConfig};
use crate::master::journal::{CompactionConfig, JournalDir};
use crate::master::Master;
use crate::request_clock::ReadTimeouts;
use crate::server::{self, ServerContext};
use drover_proto::master_znode::ZkUrl;

/// How long executors get to stop after SIGTERM when the simulator exits.
const EXECUTOR_STOP_GRACE: Duration = Duration::from_secs(3);

/// The real agents' work directory: a given one, or a temporary one that
/// is removed when this is dropped.
pub enum WorkDir {
    Given(PathBuf),
    Temporary(tempfile::TempDir),
}

impl WorkDir {
    pub fn path(&self) -> &std::path::Path {
        match self {
            WorkDir::Given(p) => p,
            WorkDir::Temporary(t) => t.path(),
        }
    }
}

/// A simulator serving in the background.
pub struct Started {
    /// The address it is bound to.
    pub address: std::net::SocketAddr,
    /// The server task; abort it to stop serving.
    pub server: tokio::task::JoinHandle<()>,
    /// Each real agent's own server (its executor endpoint).
    pub agent_servers: Vec<tokio::task::JoinHandle<()>>,
    /// The real agents' executors, if there are real agents.
    pub processes: Option<Processes>,
    /// The real agents' work directory, if there are real agents.
    pub work_dir: Option<WorkDir>,
    /// With `--zk`: the ZooKeeper candidacy, which ends only when it is lost.
    pub candidacy: Option<tokio::task::JoinHandle<CandidacyError>>,
    /// With `--zk` and `--state-dir`: the takeover when elected, which
    /// ends only if it fails.
    pub takeover: Option<tokio::task::JoinHandle<TakeoverError>>,
}

impl Started {
    /// Stops serving, stops every executor and removes the cgroup parent
    /// and a temporary work directory.
    pub async fn stop(self) {
        if let Some(candidacy) = &self.candidacy {
            candidacy.abort();
        }
        if let Some(takeover) = &self.takeover {
            takeover.abort();
        }
        self.server.abort();
        for s in &self.agent_servers {
            s.abort();
        }
        if let Some(p) = &self.processes {
            p.stop_all(EXECUTOR_STOP_GRACE).await;
        }
        drop(self.work_dir);
    }
}

fn work_dir(config: &Config) -> anyhow::Result<WorkDir> {
    match &config.work_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the work dir {}", dir.display()))?;
            let dir = std::fs::canonicalize(dir)
                .with_context(|| format!("resolving the work dir {}", dir.display()))?;
            Ok(WorkDir::Given(dir))
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("drover-agent-sim-")
                .tempdir()
                .context("creating a temporary work dir")?;
            // Enterable by every user (a temporary dir is 0700), as a Mesos
            // agent's work dir is: tasks run as their own users, and each
            // must reach its sandbox (which its executor hands to it).
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("opening up the work dir {}", dir.path().display()))?;
            Ok(WorkDir::Temporary(dir))
        }
    }
}

fn executor_path(config: &Config) -> anyhow::Result<PathBuf> {
    if let Some(p) = &config.executor_path {
        return Ok(p.clone());
    }
    let me = std::env::current_exe().context("locating this binary")?;
    Ok(me.with_file_name("drover-executor"))
}

/// Builds everything and starts serving; returns once the listeners are bound.
pub async fn start(config: &Config) -> anyhow::Result<Started> {
    let mut fleet = config.fleet().context("building the agent fleet")?;
    let defaults = config.fleet_defaults()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let bound = listener.local_addr().context("reading the bound address")?;
    // Each real agent gets its own listener, as each Mesos agent has its
    // own port: an executor's calls name only its framework and executor
    // ids, which two agents may share.
    let mut agent_listeners = Vec::new();
    for (i, spec) in fleet.iter_mut().enumerate() {
        if spec.runner != crate::agent::RunnerKind::Real {
            continue;
        }
        let l = TcpListener::bind((bound.ip(), 0))
            .await
            .with_context(|| format!("binding agent {i}'s endpoint"))?;
        spec.endpoint = Some(l.local_addr().context("reading an agent's address")?);
        agent_listeners.push((i, l));
    }
    let (processes, work) = if agent_listeners.is_empty() {
        (None, None)
    } else {
        let work = work_dir(config)?;
        let cgroup_parent = config
            .cgroup_parent
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("drover-agent-sim-{}", std::process::id())));
        let host = HostSettings {
            work_dir: work.path().to_path_buf(),
            executor_path: executor_path(config)?,
            launcher_dir: config.launcher_dir.clone(),
            cgroup_parent,
            recovery_timeout: config.recovery_timeout,
            subscription_backoff_max: config.executor_reregistration_timeout,
            allow_root_tasks: config.allow_root_tasks,
            image_dir: config.image_dir.clone(),
            authenticate_executors: config.authenticate_http_executors,
        };
        tracing::info!(work_dir = %host.work_dir.display(), executor = %host.executor_path.display(), cgroup_parent = %host.cgroup_parent.display(), "real agents");
        (Some(Processes::new(host)), Some(work))
    };
    let seed = config.seed.unwrap_or_else(rand::random);
    let master_config = config.master(seed, bound)?;
    let version = master_config.version.clone();
    let agents = fleet.len();
    let master = Master::new(master_config, fleet, Instant::now(), driver::unix_now());
    let (role, candidacy) = match &config.zk {
        None => (None, None),
        Some(zk) => {
            let url = ZkUrl::parse(zk).context("--zk")?;
            let (role, task) =
                contender::contend(url, master.master_info(), config.zk_session_timeout)
                    .await
                    .with_context(|| format!("--zk {zk}: cannot join the master set"))?;
            (Some(role), Some(task))
        }
    };
    let handle = driver::spawn_with_processes(
        master,
        DriverConfig {
            stream_buffer: config.stream_buffer.max(1),
            ..DriverConfig::default()
        },
        processes.clone(),
    );
    let journal = match &config.state_dir {
        Some(dir) => {
            Some(JournalDir::open(dir, CompactionConfig::default()).context("--state-dir")?)
        }
        None => None,
    };
    // With a journal, a master serves as the leader only once it has
    // taken over: at once when it is alone, when elected with `--zk`.
    let (role, takeover) = match (journal, role) {
        (None, role) => (role, None),
        (Some(dir), None) => {
            takeover::take_over(&handle, &dir)
                .await
                .context("taking over the journal in --state-dir")?;
            (None, None)
        }
        (Some(dir), Some(elected)) => {
            let (role, task) = takeover::gate(elected, handle.clone(), dir);
            (Some(role), Some(task))
        }
    };
    let ctx = ServerContext {
        master: handle,
        control: ControlContext {
            version,
            hostname: config.hostname.clone(),
            address: bound,
            flags: config.flags(),
            fleet: defaults,
        },
        max_body_bytes: config.max_body_bytes,
        calls: crate::master::call_log::CallLog::default(),
        scope: None,
        work_dir: work.as_ref().map(|w| w.path().to_path_buf()),
        processes: processes.clone(),
        read_timeouts: ReadTimeouts {
            header: config.header_read_timeout,
            body: config.body_read_timeout,
        },
        tls: tls_config(config)?,
        role,
    };
    let mut agent_servers = Vec::new();
    for (i, l) in agent_listeners {
        let scoped = Arc::new(ServerContext {
            scope: Some(i),
            tls: None,
            ..ctx.clone()
        });
        agent_servers.push(tokio::spawn(server::serve(l, scoped)));
    }
    tracing::info!(%bound, agents, real_agents = agent_servers.len(), seed, "master ready");
    let server = tokio::spawn(server::serve(listener, Arc::new(ctx)));
    Ok(Started {
        address: bound,
        server,
        agent_servers,
        processes,
        work_dir: work,
        candidacy,
        takeover,
    })
}

/// The master port's TLS configuration, from `--tls-cert` and `--tls-key`.
fn tls_config(config: &Config) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("--tls-cert {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("--tls-key {}", key.display()))?;
    // ring, as the scheduler: rustls deprecates it only for lacking
    // post-quantum key exchange.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("--tls-cert and --tls-key do not make a certificate")?;
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(tls)))
}

/// Runs until the process is signalled.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let mut started = start(&config).await?;
    let bound = started.address;
    if let Some(path) = &config.port_file {
        std::fs::write(path, bound.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    // The line tests and scripts wait for; stdout is the binary's interface here.
    #[allow(clippy::print_stdout)]
    {
        println!("listening on {bound}");
    }
    let candidacy = started.candidacy.take();
    let lost = async move {
        match candidacy {
            Some(task) => Some(task.await),
            None => std::future::pending().await,
        }
    };
    let takeover = started.takeover.take();
    let failed_takeover = async move {
        match takeover {
            Some(task) => task.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown_signal() => {}
        failed = failed_takeover => {
            let why = match failed {
                Ok(error) => error.to_string(),
                Err(error) => error.to_string(),
            };
            started.stop().await;
            anyhow::bail!("elected, but could not take over the journal: {why}");
        }
        lost = lost => {
            // Mesos' master exits on lost candidacy rather than go on
            // as a second leader (src/master/master.cpp, `lostCandidacy`).
            let why = match lost {
                Some(Ok(error)) => error.to_string(),
                Some(Err(error)) => error.to_string(),
                None => "the candidacy task ended".to_owned(),
            };
            started.stop().await;
            anyhow::bail!("lost the master candidacy in ZooKeeper: {why}");
        }
    }
    started.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}
