//! `drover-scheduler`: parses its flags, opens the store, and starts the
//! three long-running tasks (Mesos driver, the engine's runner, HTTP API),
//! then waits for SIGINT/SIGTERM and stops them in order.

use anyhow::Context;
use clap::Parser;
use drover_proto::v1::FrameworkId;
use drover_scheduler::api::audit::AuditLog;
use drover_scheduler::api::serve::ServeConfig;
use drover_scheduler::api::{self, ApiConfig, AppState};
use drover_scheduler::auth::credentials as auth_credentials;
use drover_scheduler::auth::reload::{self as auth_reload, CredentialsFile};
use drover_scheduler::auth::{Authenticator, ListenCheck};
use drover_scheduler::config::{
    BackupArgs, Command, Config, CredentialsCommand, LogFormat, MasterSource, MigrateStoreArgs,
};
use drover_scheduler::ha;
use drover_scheduler::mesos::agent_files::MasterAccess;
use drover_scheduler::mesos::calls;
use drover_scheduler::mesos::detector::{self, zookeeper::DetectorConfig};
use drover_scheduler::mesos::driver::{self, DriverConfig};
use drover_scheduler::mesos::operator::OperatorClient;
use drover_scheduler::mesos::session::{Endpoint, Session, SessionConfig};
use drover_scheduler::metrics::Metrics;
use drover_scheduler::model::task_user::ROOT;
use drover_scheduler::model::validate::JobLimits;
use drover_scheduler::runner::board::JobBoard;
use drover_scheduler::runner::board_metrics::StateGauges;
use drover_scheduler::runner::framework_start::{self, Asking};
use drover_scheduler::runner::heap_trim;
use drover_scheduler::runner::watch_log::{Current, WatchLog};
use drover_scheduler::runner::watch_metrics::WatchGauges;
use drover_scheduler::runner::{Published, Runner, RunnerConfig};
use drover_scheduler::store::open as store_open;
use drover_scheduler::store::postgres::import as store_import;
use drover_scheduler::store::secret_key::{self, SecretKey};
use drover_scheduler::store::sqlite::backup as store_backup;
use drover_scheduler::store::{PostgresStore, SqliteStore, StoreUrl};
use drover_scheduler::tls::reload::ReloadingServerConfig;
use rand::{rngs::SmallRng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// mimalloc, not glibc's malloc. A launch allocates and frees millions of
/// small objects (runs, TaskInfos, calls, updates) across the runner's and
/// the driver's threads; glibc spent close to a third of the runner's time in
/// malloc and free (perf, 100,000-task launch). With mimalloc the
/// scheduler's CPU for that launch fell from 4.0-4.2 s to 3.0-3.4 s, and
/// its settled memory stays about 1 KiB per task ([`heap_trim`] gives
/// mimalloc's free pages back too). SQLite still allocates with glibc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let thp_off = heap_trim::disable_transparent_huge_pages();
    let config = Config::parse();
    init_logging(config.log_format);
    match &config.command {
        Some(Command::Backup(args)) => return backup(args),
        Some(Command::MigrateStore(args)) => return migrate_store(args),
        Some(Command::Credentials(what)) => return credentials(what),
        None => {}
    }
    if !thp_off {
        tracing::debug!("transparent huge pages stay as the kernel sets them");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(run(config))
}

/// `drover-scheduler backup`: one online copy, reported on stdout.
fn backup(args: &BackupArgs) -> anyhow::Result<()> {
    let report = store_backup::backup(&args.data_dir, &args.to).with_context(|| {
        format!(
            "cannot back up the store in {} to {}",
            args.data_dir.display(),
            args.to.display()
        )
    })?;
    println!(
        "backed up store {} (created at {} ms, framework {}, revision {}, {} jobs) to {} ({} bytes)",
        report.identity.store_id,
        report.identity.created_at,
        report.framework_id.as_deref().unwrap_or("none yet"),
        report.revision,
        report.jobs,
        report.path.display(),
        report.bytes
    );
    Ok(())
}

/// `drover-scheduler migrate-store`: a SQLite store copied into an empty
/// PostgreSQL one, reported on stdout.
fn migrate_store(args: &MigrateStoreArgs) -> anyhow::Result<()> {
    let StoreUrl::Postgres(url) = &args.to else {
        anyhow::bail!("--to must be a postgres:// store, not {}", args.to);
    };
    let from = SqliteStore::open(&args.from)
        .with_context(|| format!("cannot open the store in {}", args.from.display()))?;
    let to = PostgresStore::open(url).with_context(|| format!("cannot open {}", args.to))?;
    let report = store_import::import(&from, &to)
        .with_context(|| format!("cannot copy {} into {}", args.from.display(), args.to))?;
    let rows: Vec<String> = report
        .rows
        .iter()
        .map(|(table, n)| format!("{table} {n}"))
        .collect();
    println!(
        "copied store {} at revision {} from {} to {}: {}",
        report.store_id,
        report.revision,
        args.from.display(),
        args.to,
        rows.join(", ")
    );
    Ok(())
}

/// `drover-scheduler credentials token|hash`.
fn credentials(what: &CredentialsCommand) -> anyhow::Result<()> {
    match what {
        CredentialsCommand::Token => {
            let token = auth_credentials::new_token();
            println!("token:  {token}");
            println!("digest: {}", auth_credentials::digest_text(&token));
        }
        CredentialsCommand::Hash => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .context("cannot read the password from stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            anyhow::ensure!(!password.is_empty(), "the password is empty");
            let hash = auth_credentials::hash_password(password)
                .map_err(|e| anyhow::anyhow!("cannot hash the password: {e}"))?;
            println!("{hash}");
        }
    }
    Ok(())
}

/// Who may call the API, checked against where it listens.
fn authenticator(config: &Config, tls: bool) -> anyhow::Result<Arc<Authenticator>> {
    ListenCheck {
        listen: config.listen,
        tls,
        credentials: config.credentials_file.is_some(),
        allow_anonymous: config.allow_anonymous,
    }
    .check()?;
    let file = match &config.credentials_file {
        Some(path) => {
            let file = Arc::new(CredentialsFile::load(path)?);
            tracing::info!(path = %path.display(), users = file.current().len(), "credentials file read");
            Some(file)
        }
        None => {
            tracing::warn!(
                "no credentials file: every caller is an anonymous admin (--allow-anonymous)"
            );
            None
        }
    };
    Ok(Arc::new(Authenticator::new(file, config.allow_anonymous)))
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The store's secret key: `--secret-key-file`, or the data directory's,
/// made at first start.
fn secret_key(config: &Config) -> anyhow::Result<SecretKey> {
    let (path, create) = match &config.secret_key_file {
        Some(path) => (path.clone(), false),
        None => (config.data_dir.join(secret_key::KEY_FILE), true),
    };
    let (key, made) = SecretKey::load(&path, create)?;
    let mode = std::fs::metadata(&path).map_or(0, |m| {
        std::os::unix::fs::PermissionsExt::mode(&m.permissions())
    });
    if mode & 0o077 != 0 {
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777),
            "the secret key file is readable by others than its owner; chmod 600 it");
    }
    if made {
        tracing::info!(path = %path.display(), "secret key created; keep it with the store's backups");
    }
    Ok(key)
}

async fn run(config: Config) -> anyhow::Result<()> {
    // Checked first: a scheduler that would listen unprotected does not
    // start at all.
    let serves_tls = config.tls.server_files().is_some();
    let auth = authenticator(&config, serves_tls)?;
    let audit = Arc::new(match &config.audit_log {
        Some(path) => AuditLog::to_file(path)
            .with_context(|| format!("cannot open the audit log {}", path.display()))?,
        None => AuditLog::log_only(),
    });
    let master_source = config.master_source()?;
    let credentials = config.credentials()?;
    let master_tls =
        drover_scheduler::tls::client::client_config(config.tls.master_ca_file.as_deref())
            .context("--master-ca-file")?
            .map(Arc::new);
    let default_user = std::env::var("USER").unwrap_or_else(|_| "root".to_owned());
    let task_users = config.task_users(&default_user)?;
    if task_users.default_user == ROOT && !task_users.allow_root {
        tracing::warn!(
            "the framework user is root (no --user given): jobs without a command.user \
             would run as root and are refused; pass --user <name> or --allow-root-tasks"
        );
    }
    let shutdown = CancellationToken::new();
    let tls = api_tls(&config, &shutdown)?;
    let serve_config = ServeConfig {
        max_connections: config.max_connections,
        header_read_timeout: config.header_read_timeout,
        body_read_timeout: config.body_read_timeout,
    };
    // With --zk, only the elected leader goes past this point (see ha).
    let elected = match config.zk_url()? {
        Some(url) => match elect(&config, url, serve_config, tls.clone()).await? {
            Some(elected) => Some(elected),
            None => return Ok(()),
        },
        None => None,
    };
    let store_url = config.store_url();
    let opened = store_open::open(&store_url)
        .with_context(|| format!("cannot open the store {store_url}"))?
        .with_secret_key(secret_key(&config)?)
        .with_context(|| format!("cannot open the store {store_url}"))?;
    let mut store = opened.writer;
    let reader = opened.reader;
    // Lives until `run` returns: its drop runs a last checkpoint.
    let _checkpointer = opened.checkpointer;
    if let Some((_, me)) = &elected {
        // Before anything is written or sent: from now on an older
        // leader's commits are refused (StoreError::Fenced).
        let epoch = store
            .claim_leadership(&me.id)
            .context("cannot claim the store's leader epoch")?;
        tracing::info!(epoch, replica = %me.id, "claimed the store as leader");
    }
    let stored_framework_id = store.framework_id()?;
    let identity = store.identity()?;
    tracing::info!(
        store_id = %identity.store_id,
        created_at_ms = identity.created_at,
        framework_id = ?stored_framework_id,
        path = %opened.location,
        "store opened"
    );
    let framework = config.framework(&default_user);
    let (masters, leader) = find_masters(master_source, &shutdown).await?;
    let asking = Asking {
        name: framework.name.clone(),
        principal: framework.principal.clone(),
        store_file: opened.location.clone().into(),
        masters: masters.clone(),
        credentials: credentials.clone(),
        tls: master_tls.clone(),
    };
    // Before the engine loads the store: what is rebuilt is loaded as any
    // stored job.
    let stored_framework_id = match stored_framework_id {
        None if config.recover_from_master => {
            let stop = shutdown.clone();
            let signal = tokio::spawn(async move {
                wait_for_signal().await;
                stop.cancel();
            });
            let now = drover_scheduler::runner::now_millis();
            let recovered =
                framework_start::recover_from_master(store.as_mut(), &asking, &shutdown, now).await;
            signal.abort();
            recovered?
        }
        stored => stored,
    };
    let framework_id = stored_framework_id
        .clone()
        .map(|value| FrameworkId { value });
    let framework_info = calls::framework_info(&framework);
    let seed: u64 = rand::random();
    tracing::info!(seed, "backoff jitter seed");
    let mut session_config = SessionConfig::new(masters.clone(), framework_info);
    session_config.subscribe_timeout = config.subscribe_timeout;
    let session = Session::new(
        session_config,
        framework_id,
        SmallRng::seed_from_u64(seed),
        Instant::now(),
    );

    let metrics = Arc::new(Metrics::default());
    let mut driver_config = DriverConfig::new(config.media());
    driver_config.credentials = credentials.clone();
    driver_config.tls = master_tls.clone();
    driver_config.leader = leader.clone();
    let refusal = Arc::new(Mutex::new(None));
    let gate = framework_start::subscribe_gate(
        asking,
        stored_framework_id,
        config.new_framework,
        refusal.clone(),
        shutdown.clone(),
    );
    let (driver, session_events, driver_task) = driver::spawn_after(
        gate,
        session,
        driver_config,
        metrics.clone(),
        shutdown.clone(),
    );

    let beside = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("drover-executor")))
        .unwrap_or_else(|| "drover-executor".into());
    let mut runner_config = RunnerConfig::new(config.executor_mode(beside));
    runner_config.task_users = task_users.clone();
    let engine = &mut runner_config.engine;
    engine.offer_hold = config.offer_hold;
    engine.idle_offer_hold = config.idle_offer_hold;
    engine.refuse = config.refuse;
    engine.pending_refuse = config.pending_refuse;
    engine.reconcile_interval = config.reconcile_interval;
    engine.preemption_rate = config.preemption_rate;
    engine.maintenance_lookahead = config.maintenance_lookahead;
    engine.kfp_images = config.kfp_images.into();
    // The queue's capacity is the shedding bound: a write that finds it
    // full is refused at once (api::shed).
    let (api_tx, api_rx) = mpsc::channel(config.max_pending_requests as usize);
    let published = Published {
        board: Arc::new(JobBoard::default()),
        watch: Arc::new(WatchLog::new(config.watch(), 0, Current::default())),
    };
    metrics.register_collector(StateGauges(published.board.clone()));
    metrics.register_collector(WatchGauges(published.watch.clone()));
    let state_masters = Arc::new(MasterAccess {
        masters: masters.clone(),
        leader: leader.clone(),
        credentials: credentials.clone(),
        tls: master_tls.clone(),
    });
    let state = AppState {
        board: published.board.clone(),
        watch: published.watch.clone(),
        shutdown: shutdown.clone(),
        reader: Arc::new(Mutex::new(reader)),
        runner: api_tx,
        shed: Arc::default(),
        metrics: metrics.clone(),
        auth: auth.clone(),
        audit,
        masters: state_masters.clone(),
        config: ApiConfig {
            max_body_bytes: config.max_body_bytes,
            max_uri_bytes: config.max_uri_bytes,
            limits: JobLimits {
                max_instances: config.max_job_instances,
            },
            task_users,
            tls: serves_tls,
            kfp_images: config.kfp_images.into(),
            ..ApiConfig::default()
        },
    };
    // The API answers while the engine loads the store (job reads say the
    // scheduler is starting; writes wait in the runner's queue, and past
    // its capacity are shed), so that a
    // restart is seen to be up at once.
    let (listener, app, campaign) = match elected {
        // The port the follower answered on; `GET /api/v1/leader` beside
        // the API (outside its authentication: it shows no job data).
        Some((elected, me)) => (
            elected.listener,
            ha::follower::leader_route(elected.roles, me).merge(api::router(state)),
            Some(elected.campaign),
        ),
        // Alone, it leads: `GET /api/v1/leader` says so, as a replica's
        // does, so a client asks every scheduler the same way.
        None => {
            let listener = bind_api(&config, tls.is_some()).await?;
            let me = replica_info(&config, &listener, tls.is_some())?;
            let (_, leading) = tokio::sync::watch::channel(ha::Role::Leading);
            let app = ha::follower::leader_route(leading, me).merge(api::router(state));
            (listener, app, None)
        }
    };
    let stop = shutdown.clone();
    let api_task = tokio::spawn(async move {
        api::serve::serve(listener, app, serve_config, tls, async move {
            // A signal, or the driver stopping for good (it cancels).
            tokio::select! {
                _ = wait_for_signal() => {},
                _ = stop.cancelled() => {},
            }
            stop.cancel();
        })
        .await;
    });

    let operator = OperatorClient::new(state_masters);
    let runner = Runner::start(store, driver, runner_config, published, metrics)
        .context("cannot load the store")?
        .with_operator(operator);
    let runner_task = tokio::spawn(runner.run(session_events, api_rx, shutdown.clone()));
    if let Some(file) = auth.file() {
        // The file is read again when it changes (see auth::reload).
        let auth = auth.clone();
        tokio::spawn(file.watch(auth_reload::POLL, shutdown.clone(), move || {
            auth.credentials_changed()
        }));
    }
    // Gives back memory freed outside the runner's bursts (see heap_trim).
    tokio::spawn(heap_trim::watch(Duration::from_secs(1), shutdown.clone()));

    api_task.await.context("the job API task failed")?;
    shutdown.cancel();
    let _ = runner_task.await;
    let driver_result = driver_task.await;
    if let Some(campaign) = campaign {
        // Only now that nothing more is sent or written: the next replica
        // may lead at once.
        campaign.resign().await;
    }
    let refused = refusal.lock().ok().and_then(|mut slot| slot.take());
    match (driver_result, refused) {
        // The master answered something the scheduler must not go on
        // from; the error names it.
        (Ok(Err(error)), _) => Err(error.into()),
        (_, Some(refusal)) => Err(refusal.into()),
        _ => Ok(()),
    }
}

/// Binds the API port and says where (tests read the stdout line).
async fn bind_api(config: &Config, tls: bool) -> anyhow::Result<tokio::net::TcpListener> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    let scheme = if tls { "https" } else { "http" };
    println!("drover-scheduler listening on {scheme}://{address}");
    tracing::info!(%address, scheme, "job API listening");
    Ok(listener)
}

/// Who this scheduler is to its peers and clients: `--replica-id` (default
/// its advertised address) and its API's URL (`--advertise-address`,
/// default the bound one).
fn replica_info(
    config: &Config,
    listener: &tokio::net::TcpListener,
    tls: bool,
) -> anyhow::Result<ha::ReplicaInfo> {
    let address = match &config.advertise_address {
        Some(address) => address.clone(),
        None => listener.local_addr()?.to_string(),
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(ha::ReplicaInfo {
        id: config.replica_id.clone().unwrap_or_else(|| address.clone()),
        api: format!("{scheme}://{address}"),
    })
}

/// `--zk`: binds the API port, campaigns, and answers as a follower until
/// this replica leads (`Some`, with the port and who it is) or a signal
/// stops it first (`None`).
async fn elect(
    config: &Config,
    url: drover_proto::master_znode::ZkUrl,
    serve: ServeConfig,
    tls: Option<Arc<ReloadingServerConfig>>,
) -> anyhow::Result<Option<(ha::standby::Elected, ha::ReplicaInfo)>> {
    let listener = bind_api(config, tls.is_some()).await?;
    let me = replica_info(config, &listener, tls.is_some())?;
    let standby = ha::standby::StandbyConfig {
        url: url.clone(),
        session_timeout: config.zk_session_timeout,
        me: me.clone(),
        serve,
        tls,
    };
    let elected = ha::standby::wait_until_elected(listener, standby, wait_for_signal())
        .await
        .with_context(|| format!("--zk {url}"))?;
    Ok(elected.map(|elected| (elected, me)))
}

/// The masters to start from and, for `--master zk://`, the detector's
/// channel: the scheduler waits (as Mesos' frameworks do) until ZooKeeper
/// names a leading master, or a signal stops it.
async fn find_masters(
    source: MasterSource,
    shutdown: &CancellationToken,
) -> anyhow::Result<(Vec<Endpoint>, Option<watch::Receiver<Option<Endpoint>>>)> {
    let url = match source {
        MasterSource::Listed(masters) => return Ok((masters, None)),
        MasterSource::ZooKeeper(url) => url,
    };
    tracing::info!(zk = %url, "waiting for ZooKeeper to name the leading master");
    let mut leader =
        detector::zookeeper::spawn(url.clone(), DetectorConfig::default(), shutdown.clone());
    let first = tokio::select! {
        first = detector::zookeeper::first_leader(&mut leader) => first,
        _ = wait_for_signal() => None,
    };
    match first {
        Some(endpoint) => Ok((vec![endpoint], Some(leader))),
        None => {
            shutdown.cancel();
            anyhow::bail!("stopped before ZooKeeper ({url}) named a leading master")
        }
    }
}

/// The API port's TLS configuration (`--tls-cert`, `--tls-key`), loaded
/// now (an unusable pair stops the start) and then watched for changes.
fn api_tls(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<ReloadingServerConfig>>> {
    let Some(files) = config.tls.server_files() else {
        return Ok(None);
    };
    let (tls, loaded) = ReloadingServerConfig::load(files).context("--tls-cert/--tls-key")?;
    let tls = Arc::new(tls);
    tokio::spawn(
        tls.clone()
            .watch(loaded, config.tls.tls_reload_interval, shutdown.clone()),
    );
    Ok(Some(tls))
}

async fn wait_for_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot watch SIGTERM; only SIGINT stops the scheduler");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    tracing::info!("shutting down");
}
