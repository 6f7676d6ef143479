//! The `drover-scheduler` command line: one clap struct, every flag also
//! readable from its `DROVER_*` variable, parsed and checked once in `main`
//! and split into the plain per-module configs.

use crate::mesos::calls::FrameworkConfig;
use crate::mesos::session::Endpoint;
use crate::mesos::task_info::ExecutorMode;
use crate::model::task_user::{TaskUserPolicy, ROOT};
use clap::{Parser, ValueEnum};
use drover_proto::master_znode::{ZkUrl, ZkUrlError};
use drover_proto::MediaType;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Runs users' batch and service jobs on a Mesos cluster.
#[derive(Debug, Clone, Parser)]
#[command(name = "drover-scheduler", version, about)]
pub struct Config {
    /// Mesos master(s), comma-separated (`http://host:5050`; non-leaders
    /// redirect to the leader), or `zk://host:2181[,host:2181...]/mesos`:
    /// the leading master is read from ZooKeeper, as Mesos' own
    /// frameworks find it, and followed when it changes.
    #[arg(long, env = "DROVER_MASTER", default_value = "http://127.0.0.1:5050")]
    pub master: String,
    /// Address the job API listens on (port 0 picks one; the bound address
    /// is printed on stdout).
    #[arg(long, env = "DROVER_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Directory for the SQLite store (and the secret key file).
    #[arg(long, env = "DROVER_DATA_DIR", default_value = "drover-data")]
    pub data_dir: PathBuf,
    /// Where the store lives: `sqlite:DIR` or
    /// `postgres://USER:PASSWORD@HOST:PORT/DB` (replicas share one
    /// PostgreSQL store). Default: SQLite in `--data-dir`.
    #[arg(long, env = "DROVER_STORE")]
    pub store: Option<crate::store::StoreUrl>,
    /// The key the store seals jobs' secrets with (32 bytes). Default:
    /// `secret.key` in the data directory, made (0600) at first start;
    /// a file named here must exist. Keep it with backups of the store:
    /// without it the stored secrets cannot be read.
    #[arg(long, env = "DROVER_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Framework name shown by the master.
    #[arg(long, env = "DROVER_FRAMEWORK_NAME", default_value = "drover")]
    pub framework_name: String,
    /// User tasks run as, unless a job's `command.user` names another
    /// (default: the user running the scheduler). `root` needs
    /// `--allow-root-tasks`.
    #[arg(long, env = "DROVER_USER")]
    pub user: Option<String>,
    /// Let tasks run as root (as `--user root`, as a job's `command.user`
    /// root, or as a default user that is root). Without it such jobs are
    /// refused and drover-executor refuses root tasks.
    #[arg(long, env = "DROVER_ALLOW_ROOT_TASKS", default_value_t = false)]
    pub allow_root_tasks: bool,
    /// Roles to take offers for, comma-separated.
    #[arg(long, env = "DROVER_ROLES", default_value = "*")]
    pub roles: String,
    /// Principal for HTTP basic authentication to the master.
    #[arg(long, env = "DROVER_PRINCIPAL")]
    pub principal: Option<String>,
    /// File holding the principal's secret.
    #[arg(long, env = "DROVER_SECRET_FILE")]
    pub secret_file: Option<PathBuf>,
    /// How long the master keeps our tasks while we are away (Mesos
    /// duration such as `1weeks`, `30mins`, `90secs`).
    #[arg(long, env = "DROVER_FAILOVER_TIMEOUT", default_value = "1weeks", value_parser = parse_duration)]
    pub failover_timeout: Duration,
    /// Encoding of calls and events.
    #[arg(long, env = "DROVER_CONTENT_TYPE", value_enum, default_value_t = ContentType::Protobuf)]
    pub content_type: ContentType,
    /// How long a SUBSCRIBE may go without its SUBSCRIBED event (no answer,
    /// or a 200 and a silent stream) before the next master is tried.
    #[arg(long, env = "DROVER_SUBSCRIBE_TIMEOUT", default_value = "15secs", value_parser = parse_duration)]
    pub subscribe_timeout: Duration,
    /// How tasks run: the Drover executor, or Mesos' command executor.
    #[arg(long, env = "DROVER_EXECUTOR_MODE", value_enum, default_value_t = ExecutorKind::Drover)]
    pub executor_mode: ExecutorKind,
    /// Path of `drover-executor` on the agents (default: next to this binary).
    #[arg(long, env = "DROVER_EXECUTOR")]
    pub executor: Option<PathBuf>,
    /// How long offers are held to place many tasks at once.
    #[arg(long, env = "DROVER_OFFER_HOLD", default_value = "10ms", value_parser = parse_duration)]
    pub offer_hold: Duration,
    /// How long offers that no run needs are kept before they are declined,
    /// so that jobs created moments apart launch at once (0 declines them
    /// straight away).
    #[arg(long, env = "DROVER_IDLE_OFFER_HOLD", default_value = "1secs", value_parser = parse_duration)]
    pub idle_offer_hold: Duration,
    /// How long declined agents are refused.
    #[arg(long, env = "DROVER_REFUSE", default_value = "5secs", value_parser = parse_duration)]
    pub refuse: Duration,
    /// How long declined agents are refused while runs wait for offers.
    #[arg(long, env = "DROVER_PENDING_REFUSE", default_value = "1secs", value_parser = parse_duration)]
    pub pending_refuse: Duration,
    /// Most runs preempted per minute so that resource pools below their
    /// entitlement get it (0: never preempt).
    #[arg(long, env = "DROVER_PREEMPTION_RATE", default_value_t = 60)]
    pub preemption_rate: u32,
    /// Where Kubeflow pipeline steps run: `image` (default) asks for each
    /// step's container image, which drover-executor resolves from its
    /// agent's local image store (`DROVER_IMAGE_DIR`), as Kubeflow runs
    /// every step in its image; `host` runs the step's command on the
    /// agent's own filesystem, for agents without an image store (the
    /// run's status then says the images were not used).
    #[arg(long, env = "DROVER_KFP_IMAGES", value_enum, default_value_t = KfpImages::Image)]
    pub kfp_images: KfpImages,
    /// How far ahead a maintenance window the master announced
    /// (`Offer.unavailability`) keeps new pods off its host.
    #[arg(long, env = "DROVER_MAINTENANCE_LOOKAHEAD", default_value = "1hrs", value_parser = parse_duration)]
    pub maintenance_lookahead: Duration,
    /// Interval of periodic reconciliation.
    #[arg(long, env = "DROVER_RECONCILE_INTERVAL", default_value = "15mins", value_parser = parse_duration)]
    pub reconcile_interval: Duration,
    /// Most instances one job may have.
    #[arg(long, env = "DROVER_MAX_JOB_INSTANCES", default_value_t = 100_000)]
    pub max_job_instances: u32,
    /// Largest API request body, in bytes.
    #[arg(long, env = "DROVER_MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Register a new framework even though the store has no framework id
    /// and the master knows a framework with our name and principal (whose
    /// tasks the new framework will not see); without it the scheduler
    /// refuses to start then.
    #[arg(
        long,
        env = "DROVER_NEW_FRAMEWORK",
        conflicts_with = "recover_from_master"
    )]
    pub new_framework: bool,
    /// When the store has no framework id and the master knows one
    /// disconnected framework with our name and principal, take it over and
    /// rebuild its jobs and runs from the tasks the master lists for it
    /// (each carries its job's spec); without it the scheduler refuses to
    /// start then.
    #[arg(long, env = "DROVER_RECOVER_FROM_MASTER")]
    pub recover_from_master: bool,
    /// Longest API request URI (path and query), in bytes; longer get 414.
    #[arg(long, env = "DROVER_MAX_URI_BYTES", default_value_t = 8 * 1024)]
    pub max_uri_bytes: usize,
    /// API connections served at once; more wait in the listen backlog.
    #[arg(long, env = "DROVER_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,
    /// API writes that may wait for the engine at once; one more is
    /// refused at once with 503 UNAVAILABLE and `Retry-After` (reads are
    /// served regardless).
    #[arg(long, env = "DROVER_MAX_PENDING_REQUESTS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_pending_requests: u32,
    /// Time for a whole API request head (and an idle keep-alive
    /// connection's next one) before the connection is closed.
    #[arg(long, env = "DROVER_HEADER_READ_TIMEOUT", default_value = "30secs", value_parser = parse_duration)]
    pub header_read_timeout: Duration,
    /// Time for a whole API request body after its head (408 past it).
    #[arg(long, env = "DROVER_BODY_READ_TIMEOUT", default_value = "60secs", value_parser = parse_duration)]
    pub body_read_timeout: Duration,
    /// Object changes (a job or pod changed at a revision) the watch log
    /// keeps for watchers to resume from; a resume from an older revision
    /// is answered OUT_OF_RANGE (take a fresh snapshot).
    #[arg(long, env = "DROVER_WATCH_WINDOW", default_value_t = 100_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub watch_window: u64,
    /// How long the watch log keeps a change.
    #[arg(long, env = "DROVER_WATCH_WINDOW_AGE", default_value = "10mins", value_parser = parse_duration)]
    pub watch_window_age: Duration,
    /// Object changes a watcher that has read nothing for 2 s may be behind
    /// the latest revision before it is cut off (RESOURCE_EXHAUSTED, naming
    /// the revision to resume from), so that one stalled client costs the
    /// scheduler nothing more.
    #[arg(long, env = "DROVER_WATCH_MAX_LAG", default_value_t = 50_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub watch_max_lag: u64,
    /// Who may call the API: users with their role, teams, bearer token
    /// digests and password hashes (YAML; read again when it changes).
    /// Without it, only --allow-anonymous lets anybody in.
    #[arg(long, env = "DROVER_CREDENTIALS_FILE")]
    pub credentials_file: Option<PathBuf>,
    /// Let callers who present no credentials in, as admins. Only on a
    /// loopback --listen address: a trial, or a scheduler only its own
    /// host reaches.
    #[arg(long, env = "DROVER_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,
    /// Append the audit trail (one JSON line per write, and per request
    /// refused for its credentials) to this file; it always goes to the
    /// log too.
    #[arg(long, env = "DROVER_AUDIT_LOG")]
    pub audit_log: Option<PathBuf>,
    /// TLS: the API port's certificate, and the CA of an https:// master.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Run as one of several replicas with a leader elected through
    /// ZooKeeper (`zk://h1:2181,h2:2181/drover`): only the leader claims
    /// the store, subscribes and serves the API; followers redirect to it
    /// (307) and take over when its session ends. Without it the scheduler
    /// runs alone, as always.
    #[arg(long, env = "DROVER_ZK")]
    pub zk: Option<String>,
    /// The ZooKeeper session timeout asked for (the server bounds it): a
    /// dead leader is replaced about this long after it died.
    #[arg(long, env = "DROVER_ZK_SESSION_TIMEOUT", default_value = "10secs", value_parser = parse_duration)]
    pub zk_session_timeout: Duration,
    /// This replica's id in the election (default: its advertised address).
    #[arg(long, env = "DROVER_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// The `host:port` other replicas redirect clients to (default: the
    /// bound --listen address; needed when that is 0.0.0.0 or behind NAT).
    #[arg(long, env = "DROVER_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<String>,
    /// Log format.
    #[arg(long, env = "DROVER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// What to do other than run the scheduler (nothing: run it).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `drover-scheduler <command>`; none runs the scheduler.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Copy the store to a new file, online and consistent: safe while a
    /// scheduler runs on the data directory.
    Backup(BackupArgs),
    /// Copy a SQLite store (stopped scheduler) into an empty PostgreSQL
    /// store, then check that every row arrived.
    MigrateStore(MigrateStoreArgs),
    /// Make what a credentials file holds: a new bearer token and its
    /// digest, or a password's hash.
    #[command(subcommand)]
    Credentials(CredentialsCommand),
}

/// `drover-scheduler credentials <what>`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum CredentialsCommand {
    /// A new random bearer token: prints the token (give it to the user)
    /// and its digest (put it in the user's `tokens`).
    Token,
    /// The argon2 hash of a password read from stdin (one line), for a
    /// user's `password`.
    Hash,
}

/// `drover-scheduler migrate-store`.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateStoreArgs {
    /// The data directory of the SQLite store to copy (no scheduler may
    /// run on it: its lock is taken).
    #[arg(long)]
    pub from: PathBuf,
    /// The PostgreSQL store to copy into (`postgres://...`); it must hold
    /// no job yet.
    #[arg(long)]
    pub to: crate::store::StoreUrl,
}

/// `drover-scheduler backup`.
#[derive(Debug, Clone, clap::Args)]
pub struct BackupArgs {
    /// The data directory whose store is copied.
    #[arg(long, env = "DROVER_DATA_DIR", default_value = "drover-data")]
    pub data_dir: PathBuf,
    /// The backup file to write; it must not exist.
    #[arg(long)]
    pub to: PathBuf,
}

/// The TLS flags.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// PEM certificate chain of the API port: with `--tls-key`, every API
    /// connection (JSON, gRPC, UI) is TLS. Reloaded when the file changes.
    #[arg(long, env = "DROVER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "DROVER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM CA bundle: a client certificate it verifies names the client
    /// (optional for clients; one that does not verify is refused).
    #[arg(long, env = "DROVER_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// How often the TLS files are looked at for a change.
    #[arg(long, env = "DROVER_TLS_RELOAD_INTERVAL", default_value = "5secs", value_parser = parse_duration)]
    pub tls_reload_interval: Duration,
    /// PEM CA bundle that https:// masters' and agents' certificates are
    /// verified against (needed for any https:// master).
    #[arg(long, env = "DROVER_MASTER_CA_FILE")]
    pub master_ca_file: Option<PathBuf>,
}

impl TlsArgs {
    /// The API port's TLS files, when it serves TLS.
    pub fn server_files(&self) -> Option<crate::tls::server::ServerTlsFiles> {
        Some(crate::tls::server::ServerTlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }
}

/// `--kfp-images`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KfpImages {
    /// Steps run in their container's image.
    Image,
    /// Steps run on the agent's host; images are recorded only.
    Host,
}

impl From<KfpImages> for crate::model::pipeline::ImageUse {
    fn from(k: KfpImages) -> Self {
        match k {
            KfpImages::Image => crate::model::pipeline::ImageUse::Image,
            KfpImages::Host => crate::model::pipeline::ImageUse::Host,
        }
    }
}

/// `--content-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ContentType {
    /// application/x-protobuf.
    Protobuf,
    /// application/json.
    Json,
}

/// `--executor-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExecutorKind {
    /// One drover-executor per task.
    Drover,
    /// Mesos' command executor (what simulated agents run).
    Command,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// A flag value that does not make sense.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--user root` without `--allow-root-tasks`.
    #[error(
        "--user root: tasks would run as root; pass --allow-root-tasks to allow it, \
         or name an unprivileged user (--user nobody)"
    )]
    RootUser,
    /// A `--master` entry is not an http or https URL.
    #[error("--master: '{0}' is not an http://host:port or https://host:port URL")]
    BadMaster(String),
    /// A `zk://` master that cannot be used.
    #[error("--master: {0}")]
    BadZkMaster(#[source] ZkUrlError),
    /// An https:// master without `--master-ca-file`.
    #[error(
        "--master: '{0}' is https:// but no CA verifies its certificate; \
         pass --master-ca-file FILE (DROVER_MASTER_CA_FILE) with the PEM CA that signed it"
    )]
    HttpsMasterWithoutCa(String),
    /// `--zk` is not a usable `zk://` URL.
    #[error("--zk: {0}")]
    Zk(#[source] ZkUrlError),
    /// `--secret-file` without `--principal`, or unreadable.
    #[error("--secret-file {path}: {reason}")]
    Secret {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// Where the masters come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterSource {
    /// A fixed list of scheduler endpoints.
    Listed(Vec<Endpoint>),
    /// The leader read from ZooKeeper.
    ZooKeeper(ZkUrl),
}

impl Config {
    /// The store `--store` names, or SQLite in `--data-dir`.
    pub fn store_url(&self) -> crate::store::StoreUrl {
        self.store
            .clone()
            .unwrap_or_else(|| crate::store::StoreUrl::Sqlite(self.data_dir.clone()))
    }

    /// `--zk`, parsed; `None` when the scheduler runs alone.
    pub fn zk_url(&self) -> Result<Option<ZkUrl>, ConfigError> {
        self.zk
            .as_deref()
            .map(ZkUrl::parse)
            .transpose()
            .map_err(ConfigError::Zk)
    }

    /// `--master`: a `zk://` URL, or a list of endpoints.
    pub fn master_source(&self) -> Result<MasterSource, ConfigError> {
        let master = self.master.trim();
        if master.starts_with("zk://") {
            return ZkUrl::parse(master)
                .map(MasterSource::ZooKeeper)
                .map_err(ConfigError::BadZkMaster);
        }
        self.master_endpoints().map(MasterSource::Listed)
    }

    /// The scheduler endpoints of every `--master` (a list; a `zk://`
    /// URL is refused here, see [`Config::master_source`]).
    pub fn master_endpoints(&self) -> Result<Vec<Endpoint>, ConfigError> {
        self.master
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(|m| {
                let base = m.trim_end_matches('/');
                let url = if base.ends_with("/api/v1/scheduler") {
                    base.to_owned()
                } else {
                    format!("{base}/api/v1/scheduler")
                };
                let url = url
                    .parse::<Endpoint>()
                    .ok()
                    .filter(|u| {
                        matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
                    })
                    .ok_or_else(|| ConfigError::BadMaster(m.to_owned()))?;
                if url.scheme_str() == Some("https") && self.tls.master_ca_file.is_none() {
                    return Err(ConfigError::HttpsMasterWithoutCa(m.to_owned()));
                }
                Ok(url)
            })
            .collect::<Result<Vec<_>, _>>()
            .and_then(|v| {
                if v.is_empty() {
                    Err(ConfigError::BadMaster(self.master.clone()))
                } else {
                    Ok(v)
                }
            })
    }

    /// The framework part of the config; `default_user` if `--user` is unset.
    pub fn framework(&self, default_user: &str) -> FrameworkConfig {
        FrameworkConfig {
            name: self.framework_name.clone(),
            user: self.user.clone().unwrap_or_else(|| default_user.to_owned()),
            roles: self
                .roles
                .split(',')
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .map(str::to_owned)
                .collect(),
            principal: self.principal.clone(),
            failover_timeout: self.failover_timeout,
        }
    }

    /// Who tasks run as: the framework's user (as [`Config::framework`]
    /// names it), and whether root may be it. `--user root` without
    /// `--allow-root-tasks` is an error; a default user that is root is
    /// not (jobs that would run as root are then refused one by one).
    pub fn task_users(&self, default_user: &str) -> Result<TaskUserPolicy, ConfigError> {
        if self.user.as_deref() == Some(ROOT) && !self.allow_root_tasks {
            return Err(ConfigError::RootUser);
        }
        Ok(TaskUserPolicy {
            default_user: self.framework(default_user).user,
            allow_root: self.allow_root_tasks,
        })
    }

    /// How much the watch log keeps and how far a watcher may lag.
    pub fn watch(&self) -> crate::runner::watch_log::WatchConfig {
        crate::runner::watch_log::WatchConfig {
            window_changes: self.watch_window,
            window_age: self.watch_window_age,
            max_lag: self.watch_max_lag,
        }
    }

    /// The media type of calls and events.
    pub fn media(&self) -> MediaType {
        match self.content_type {
            ContentType::Protobuf => MediaType::Protobuf,
            ContentType::Json => MediaType::Json,
        }
    }

    /// How tasks are executed; `beside_binary` is the default executor path.
    pub fn executor_mode(&self, beside_binary: PathBuf) -> ExecutorMode {
        match self.executor_mode {
            ExecutorKind::Command => ExecutorMode::Command,
            ExecutorKind::Drover => {
                ExecutorMode::drover(self.executor.clone().unwrap_or(beside_binary))
            }
        }
    }

    /// `principal:secret` for basic authentication, reading the secret file.
    pub fn credentials(&self) -> Result<Option<(String, String)>, ConfigError> {
        let Some(path) = &self.secret_file else {
            return Ok(None);
        };
        let Some(principal) = &self.principal else {
            return Err(ConfigError::Secret {
                path: path.clone(),
                reason: "needs --principal".into(),
            });
        };
        let secret = std::fs::read_to_string(path).map_err(|e| ConfigError::Secret {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Some((
            principal.clone(),
            secret.trim_end_matches(['\r', '\n']).to_owned(),
        )))
    }
}

/// Parses a Mesos duration (`5secs`, `1.5weeks`, `100ms`), the syntax every
/// Drover binary's flags share (drover-proto's `duration`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    drover_proto::duration::parse(s.trim()).map_err(|e| e.to_string())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_mesos_units() {
        assert_eq!(
            parse_duration("1weeks").unwrap(),
            Duration::from_secs(604_800)
        );
        assert_eq!(parse_duration("100ms").unwrap(), Duration::from_millis(100));
        assert!(
            parse_duration("90").is_err(),
            "a unit is required, as in Mesos"
        );
        assert_eq!(parse_duration("1.5mins").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("3 fortnights").is_err());
    }

    #[test]
    fn defaults_and_master_lists() {
        let c = Config::parse_from([
            "drover-scheduler",
            "--master",
            "http://m1:5050, http://m2:5050/",
        ]);
        assert_eq!(c.failover_timeout, Duration::from_secs(604_800));
        assert_eq!(c.content_type, ContentType::Protobuf);
        let masters = c.master_endpoints().unwrap();
        assert_eq!(masters[1].to_string(), "http://m2:5050/api/v1/scheduler");
        let bad = Config::parse_from(["drover-scheduler", "--master", "zk://x"]);
        assert!(bad.master_endpoints().is_err());
        assert!(matches!(
            bad.master_source(),
            Err(ConfigError::BadZkMaster(ZkUrlError::BadServers(_)))
        ));
        let zk = Config::parse_from(["drover-scheduler", "--master", "zk://z1:2181,z2:2181/mesos"]);
        assert_eq!(
            zk.master_source().unwrap(),
            MasterSource::ZooKeeper(ZkUrl::parse("zk://z1:2181,z2:2181/mesos").unwrap())
        );
        assert!(matches!(c.master_source().unwrap(), MasterSource::Listed(m) if m.len() == 2));
        assert_eq!(c.framework("me").roles, vec!["*".to_owned()]);
        assert!(c.command.is_none(), "no subcommand runs the scheduler");
        assert!(!c.new_framework);
        assert_eq!(c.preemption_rate, 60);
        let off = Config::parse_from(["drover-scheduler", "--preemption-rate", "0"]);
        assert_eq!(off.preemption_rate, 0);
        assert!(Config::try_parse_from(["drover-scheduler", "--preemption-rate", "-1"]).is_err());
    }

    #[test]
    fn kubeflow_steps_ask_for_their_images_unless_told_host() {
        use crate::model::pipeline::ImageUse;
        let c = Config::parse_from(["drover-scheduler"]);
        assert_eq!(ImageUse::from(c.kfp_images), ImageUse::Image);
        let host = Config::parse_from(["drover-scheduler", "--kfp-images", "host"]);
        assert_eq!(ImageUse::from(host.kfp_images), ImageUse::Host);
        assert!(Config::try_parse_from(["drover-scheduler", "--kfp-images", "docker"]).is_err());
    }

    #[test]
    fn backup_is_a_subcommand_beside_the_schedulers_flags() {
        let c = Config::parse_from([
            "drover-scheduler",
            "backup",
            "--data-dir",
            "/var/lib/drover",
            "--to",
            "/backups/drover.sqlite",
        ]);
        let Some(Command::Backup(args)) = c.command else {
            panic!("backup parsed as {:?}", c.command);
        };
        assert_eq!(args.data_dir, PathBuf::from("/var/lib/drover"));
        assert_eq!(args.to, PathBuf::from("/backups/drover.sqlite"));
        assert!(Config::try_parse_from(["drover-scheduler", "backup"]).is_err());
        let c = Config::parse_from(["drover-scheduler", "--new-framework"]);
        assert!(c.new_framework && c.command.is_none());
        let c = Config::parse_from(["drover-scheduler", "--recover-from-master"]);
        assert!(c.recover_from_master && !c.new_framework);
        assert!(Config::try_parse_from([
            "drover-scheduler",
            "--new-framework",
            "--recover-from-master"
        ])
        .is_err());
    }

    #[test]
    fn user_root_needs_the_opt_in_and_the_default_user_is_the_framework_user() {
        let root = Config::parse_from(["drover-scheduler", "--user", "root"]);
        assert!(matches!(root.task_users("me"), Err(ConfigError::RootUser)));
        let allowed =
            Config::parse_from(["drover-scheduler", "--user", "root", "--allow-root-tasks"]);
        assert!(allowed.task_users("me").unwrap().allow_root);
        let unset = Config::parse_from(["drover-scheduler"]);
        let users = unset.task_users("root").unwrap();
        assert_eq!(users.default_user, "root");
        assert!(!users.allow_root, "jobs are refused one by one instead");
        let nobody = Config::parse_from(["drover-scheduler", "--user", "nobody"]);
        assert_eq!(nobody.task_users("root").unwrap().default_user, "nobody");
    }
}
