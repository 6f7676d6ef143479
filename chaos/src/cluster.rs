//! The cluster under chaos, all real processes on loopback: ZooKeeper,
//! PostgreSQL, a master set of agent-sim masters (`--zk zk://…/mesos`,
//! simulated agents plus real ones running drover-executor) and the
//! scheduler replicas (`--zk` through a proxy of their own each, so one can
//! be cut off ZooKeeper; `--master zk://…/mesos`; `--store postgres://`).
//!
//! [`Cluster::supervise`] is the supervisor a deployment has (systemd's
//! `Restart=always`): a replica or master that exited, whatever the
//! cause, is started again after [`RESTART_DELAY`], on the same address.
//! Every process is started and signalled by its own pid.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use drover_test_support::postgres::Postgres;
use drover_test_support::zookeeper::{ZkProxy, ZooKeeper};
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::CgroupParent;

use crate::dose::Dose;
use crate::procs::{self, Recipe, SpawnError};

/// How long the supervisor waits before starting an exited process again.
pub const RESTART_DELAY: Duration = Duration::from_millis(500);

/// How long a process gets after SIGTERM at the end of a run.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// How the cluster is built.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub dose: Dose,
    pub seed: u64,
    /// Logs and data dirs go here.
    pub run_dir: PathBuf,
    /// Give every master `--state-dir` (one dir for the set): the new
    /// leading master takes over the old one's agents and tasks.
    pub master_state_dir: bool,
}

/// A process the supervisor keeps running.
pub struct Supervised {
    pub name: String,
    /// `127.0.0.1:PORT`, the same across restarts.
    pub address: String,
    recipe: Recipe,
    child: Option<Child>,
    restart_at: Option<Instant>,
    /// Starts after the first.
    pub restarts: u32,
    /// How it ended each time (`exit 75`, `SIGKILL`) and how often.
    pub exits: BTreeMap<String, u32>,
}

impl Supervised {
    fn start(name: String, address: String, recipe: Recipe) -> Result<Supervised, SpawnError> {
        let child = recipe.spawn()?;
        Ok(Supervised {
            name,
            address,
            recipe,
            child: Some(child),
            restart_at: None,
            restarts: 0,
            exits: BTreeMap::new(),
        })
    }

    /// The pid while it runs.
    pub fn child(&self) -> Option<&Child> {
        self.child.as_ref()
    }

    fn on_exit(&mut self, how: String, now: Instant) {
        *self.exits.entry(how).or_default() += 1;
        self.child = None;
        self.restart_at = Some(now + RESTART_DELAY);
    }

    /// SIGKILL, as a crash; the supervisor restarts it.
    pub fn kill(&mut self, now: Instant) {
        if let Some(mut child) = self.child.take() {
            let how = procs::kill_and_reap(&mut child)
                .map(procs::describe_exit)
                .unwrap_or_else(|| "unknown".to_owned());
            self.on_exit(how, now);
        }
    }

    /// Reaps an exit and restarts when due. Returns a line for the log
    /// when something happened.
    fn supervise(&mut self, now: Instant) -> Option<String> {
        if let Some(child) = self.child.as_mut() {
            if let Ok(Some(status)) = child.try_wait() {
                let how = procs::describe_exit(status);
                self.on_exit(how.clone(), now);
                return Some(format!("{} exited ({how})", self.name));
            }
            return None;
        }
        let due = self.restart_at.is_some_and(|at| now >= at);
        if !due {
            return None;
        }
        self.restart_at = None;
        self.recipe.reseed();
        match self.recipe.spawn() {
            Ok(child) => {
                self.child = Some(child);
                self.restarts += 1;
                None
            }
            Err(e) => {
                self.restart_at = Some(now + RESTART_DELAY);
                Some(format!("{}: {e}", self.name))
            }
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            procs::stop(&mut child, STOP_GRACE);
        }
        self.restart_at = None;
    }
}

/// A scheduler replica and its own way to ZooKeeper.
pub struct Replica {
    pub process: Supervised,
    pub id: String,
    pub proxy: ZkProxy,
}

/// A master of the set.
pub struct Master {
    pub process: Supervised,
    /// The cgroup parents its real agents used, one per start.
    _cgroups: Vec<CgroupParent>,
}

/// The whole cluster.
pub struct Cluster {
    pub zk: ZooKeeper,
    pub pg: Mutex<Postgres>,
    pub store_url: String,
    pub replicas: Mutex<Vec<Replica>>,
    pub masters: Mutex<Vec<Master>>,
    /// `(id, address)` of each replica, fixed for the run.
    pub replica_addresses: Vec<(String, String)>,
    /// The address of each master, fixed for the run.
    pub master_addresses: Vec<String>,
    pub run_dir: PathBuf,
}

/// Why the cluster could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn free_address() -> Result<String, ClusterError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.to_string())
        .map_err(|source| ClusterError::Io {
            what: "binding a free loopback port",
            path: PathBuf::new(),
            source,
        })
}

fn make_dir(path: &Path) -> Result<(), ClusterError> {
    std::fs::create_dir_all(path).map_err(|source| ClusterError::Io {
        what: "creating",
        path: path.to_owned(),
        source,
    })
}

fn secs(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl Cluster {
    /// Starts ZooKeeper and PostgreSQL, then the masters, then the
    /// replicas. Panics (from the test servers) when ZooKeeper or
    /// PostgreSQL cannot start: nothing can be run without them.
    pub fn start(config: &ClusterConfig) -> Result<Cluster, ClusterError> {
        let dose = &config.dose;
        let zk = ZooKeeper::start();
        let pg = Postgres::start();
        let store_url = pg.create_database("drover");
        let master_zk = zk.url("/mesos");
        let state_dir = config.run_dir.join("master-state");
        if config.master_state_dir {
            make_dir(&state_dir)?;
        }
        let mut masters = Vec::new();
        let mut master_addresses = Vec::new();
        for i in 0..dose.masters {
            let address = free_address()?;
            let work_dir = config.run_dir.join(format!("master-{i}-work"));
            make_dir(&work_dir)?;
            // Real agents' tasks run as nobody and must reach their sandboxes.
            let _ = std::fs::set_permissions(
                &work_dir,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            );
            let cgroup = CgroupParent::new();
            let mut args: Vec<String> = [
                "--listen",
                &address,
                "--seed",
                &(config.seed.wrapping_add(1000 * (i as u64 + 1))).to_string(),
                "--agents",
                &(dose.agents + dose.real_agents).to_string(),
                "--real-agents",
                &dose.real_agents.to_string(),
                "--work-dir",
                &work_dir.display().to_string(),
                "--cgroup-parent",
                cgroup.name(),
                "--zk",
                &master_zk,
                "--zk-session-timeout",
                &secs(dose.session_timeout),
                "--hostname",
                "127.0.0.1",
                "--allocation-interval",
                "100ms",
                "--status-update-retry-interval",
                "1secs",
                "--max-completed-tasks-per-framework",
                "1000000",
                "--recovery-timeout",
                "10secs",
            ]
            .map(str::to_owned)
            .into();
            if config.master_state_dir {
                args.extend(["--state-dir".to_owned(), state_dir.display().to_string()]);
            }
            let recipe = Recipe {
                program: binaries::agent_sim(),
                args,
                envs: vec![("DROVER_LOG".into(), "warn".into())],
                log: config.run_dir.join(format!("master-{i}.log")),
            };
            let process = Supervised::start(format!("master-{i}"), address.clone(), recipe)?;
            master_addresses.push(address);
            masters.push(Master {
                process,
                _cgroups: vec![cgroup],
            });
            // The first master leads: the others join as standbys.
            std::thread::sleep(Duration::from_millis(300));
        }
        let mut replicas = Vec::new();
        let mut replica_addresses = Vec::new();
        for i in 0..dose.replicas {
            let id = format!("r{i}");
            let address = free_address()?;
            let proxy = zk.proxy();
            let data_dir = config.run_dir.join(format!("{id}-data"));
            make_dir(&data_dir)?;
            let args: Vec<String> = [
                "--listen",
                &address,
                "--master",
                &proxy.url("/mesos"),
                "--data-dir",
                &data_dir.display().to_string(),
                "--store",
                &store_url,
                "--zk",
                &proxy.url("/drover"),
                "--zk-session-timeout",
                &secs(dose.session_timeout),
                "--replica-id",
                &id,
                "--allow-anonymous",
                "--user",
                "nobody",
            ]
            .map(str::to_owned)
            .into();
            let recipe = Recipe {
                program: binaries::scheduler(),
                args,
                envs: vec![("DROVER_LOG".into(), "warn,drover_scheduler=info".into())],
                log: config.run_dir.join(format!("{id}.log")),
            };
            let process = Supervised::start(id.clone(), address.clone(), recipe)?;
            replica_addresses.push((id.clone(), address));
            replicas.push(Replica { process, id, proxy });
        }
        Ok(Cluster {
            zk,
            pg: Mutex::new(pg),
            store_url,
            replicas: Mutex::new(replicas),
            masters: Mutex::new(masters),
            replica_addresses,
            master_addresses,
            run_dir: config.run_dir.clone(),
        })
    }

    pub fn replicas(&self) -> MutexGuard<'_, Vec<Replica>> {
        self.replicas.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn masters(&self) -> MutexGuard<'_, Vec<Master>> {
        self.masters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One supervisor pass: reap exits, restart what is due. Returns what
    /// happened, for the run's log.
    pub fn supervise(&self, now: Instant) -> Vec<String> {
        let mut lines = Vec::new();
        for replica in self.replicas().iter_mut() {
            lines.extend(replica.process.supervise(now));
        }
        for master in self.masters().iter_mut() {
            lines.extend(master.process.supervise(now));
        }
        lines
    }

    /// The index of the replica with id `id`.
    pub fn replica_index(&self, id: &str) -> Option<usize> {
        self.replica_addresses.iter().position(|(r, _)| r == id)
    }

    /// The index of the master at `address`.
    pub fn master_index(&self, address: &str) -> Option<usize> {
        self.master_addresses.iter().position(|a| a == address)
    }

    /// Stops everything: replicas first (they stop acting), then masters;
    /// ZooKeeper and PostgreSQL stop when the cluster is dropped.
    pub fn stop(&self) {
        for replica in self.replicas().iter_mut() {
            replica.process.stop();
        }
        for master in self.masters().iter_mut() {
            master.process.stop();
        }
    }

    /// Restarts and exits of every replica and master, for the summary.
    pub fn process_report(&self) -> Vec<(String, u32, BTreeMap<String, u32>)> {
        let replicas = self.replicas();
        let masters = self.masters();
        replicas
            .iter()
            .map(|r| &r.process)
            .chain(masters.iter().map(|m| &m.process))
            .map(|p| (p.name.clone(), p.restarts, p.exits.clone()))
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
