//! The command line of `drover-agent-sim`, one clap struct whose every flag
//! can also come from a `DROVER_*` variable, and its translation into the
//! master's settings and the agent fleet. Flag names follow `mesos-master`
//! and `mesos-agent` where they exist; durations use Mesos syntax (`15secs`).
//!
//! The fleet is `--agents N` agents made from `--resources`, `--attributes`
//! and `--zones`, followed by the groups of the `--config` file:
//!
//! ```json
//! {"agents": [{"count": 10, "resources": "cpus:16;mem:65536", "attributes": "rack:r9", "zone": "c"}]}
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use drover_proto::v1;
use serde::Deserialize;

use crate::agent::{AgentSpec, RunnerKind};
use crate::attributes::{attribute, parse_attributes, AttributeError};
use crate::master::{HistoryLimits, MasterConfig};
use crate::resources::{ResourceError, Resources};
use drover_proto::duration::{parse as parse_duration, DurationError};

/// Mesos' default agent resources, as the issue asks.
pub const DEFAULT_RESOURCES: &str = "cpus:4;mem:8192;disk:65536;ports:[31000-32000]";

fn duration_arg(s: &str) -> Result<Duration, DurationError> {
    parse_duration(s)
}

/// `drover-agent-sim`: a Mesos master with simulated agents.
#[derive(Debug, Clone, Parser)]
#[command(name = "drover-agent-sim", version, about)]
pub struct Config {
    /// Address to serve the master on; port 0 picks a free port, which is
    /// printed as `listening on ADDR` and written to --port-file.
    #[arg(long, env = "DROVER_LISTEN", default_value = "127.0.0.1:5050")]
    pub listen: SocketAddr,
    /// Write the bound address (`ip:port`) to this file once listening.
    #[arg(long, env = "DROVER_PORT_FILE")]
    pub port_file: Option<PathBuf>,
    /// Number of agents made from --resources/--attributes/--zones.
    #[arg(long, env = "DROVER_AGENTS", default_value_t = 1)]
    pub agents: usize,
    /// Each agent's resources, Mesos resource syntax.
    #[arg(long, env = "DROVER_RESOURCES", default_value = DEFAULT_RESOURCES)]
    pub resources: String,
    /// Each agent's attributes, Mesos attribute syntax (`rack:r1;os:linux`).
    #[arg(long, env = "DROVER_ATTRIBUTES", default_value = "")]
    pub attributes: String,
    /// Zones the agents are spread over round-robin (a `zone` attribute each).
    #[arg(long, env = "DROVER_ZONES", value_delimiter = ',')]
    pub zones: Vec<String>,
    /// If given, the only roles frameworks may use (Mesos `--roles`).
    #[arg(long, env = "DROVER_ROLES", value_delimiter = ',')]
    pub roles: Vec<String>,
    /// Between HEARTBEAT events.
    #[arg(long, env = "DROVER_HEARTBEAT_INTERVAL", default_value = "15secs", value_parser = duration_arg)]
    pub heartbeat_interval: Duration,
    /// Between allocation cycles (Mesos `--allocation_interval`).
    #[arg(long, env = "DROVER_ALLOCATION_INTERVAL", default_value = "1secs", value_parser = duration_arg)]
    pub allocation_interval: Duration,
    /// Rescind offers not used within this time (Mesos `--offer_timeout`; unset = never).
    #[arg(long, env = "DROVER_OFFER_TIMEOUT", value_parser = duration_arg)]
    pub offer_timeout: Option<Duration>,
    /// First retry of an unacknowledged status update (agent default 10secs; doubles up to 10mins).
    #[arg(long, env = "DROVER_STATUS_UPDATE_RETRY_INTERVAL", default_value = "10secs", value_parser = duration_arg)]
    pub status_update_retry_interval: Duration,
    /// Seed for ids and random choices; a random one if unset.
    #[arg(long, env = "DROVER_SEED")]
    pub seed: Option<u64>,
    /// A JSON fleet file of agent groups (see the module doc).
    #[arg(long, env = "DROVER_CONFIG")]
    pub config: Option<PathBuf>,
    /// Join a Mesos master set in ZooKeeper (`zk://host:2181/mesos`), as
    /// Mesos' `--zk`: this instance writes its MasterInfo JSON in an
    /// ephemeral-sequential `json.info_` znode, the lowest leads, and while
    /// another leads it answers the scheduler API with 307 to it. It exits
    /// when its ZooKeeper session ends. Default: a lone leading master.
    #[arg(long, env = "DROVER_ZK")]
    pub zk: Option<String>,
    /// A directory the leading master keeps a journal of its simulated
    /// agents and their tasks in (give every master of a `--zk` set the
    /// same one): a master that takes over the lead, or this one
    /// restarted, re-registers those agents with their tasks (running ones
    /// go on, unacknowledged updates are sent again) instead of offering
    /// a fresh fleet. Default: none (a new leader starts empty).
    #[arg(long, env = "DROVER_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The ZooKeeper session timeout with `--zk` (Mesos
    /// `--zk_session_timeout`, same default).
    #[arg(long, env = "DROVER_ZK_SESSION_TIMEOUT", default_value = "10secs", value_parser = duration_arg)]
    pub zk_session_timeout: Duration,
    /// The master's hostname in MasterInfo and `/state`.
    #[arg(long, env = "DROVER_HOSTNAME", default_value = "localhost")]
    pub hostname: String,
    /// Largest request body accepted; larger ones get 413.
    #[arg(long, env = "DROVER_MAX_BODY_BYTES", default_value_t = 16 * 1024 * 1024)]
    pub max_body_bytes: usize,
    /// Events buffered per subscription before a stalled reader is
    /// disconnected (see `DriverConfig::stream_buffer`).
    #[arg(long, env = "DROVER_STREAM_BUFFER", default_value_t = 1 << 20)]
    pub stream_buffer: usize,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "DROVER_LOG_JSON")]
    pub log_json: bool,
    /// How many of the agents (the first ones) run real executor processes.
    #[arg(long, env = "DROVER_REAL_AGENTS", default_value_t = 0)]
    pub real_agents: usize,
    /// The real agents' work directory (sandboxes under
    /// `agents/<id>/frameworks/...`). Default: a temporary directory removed at exit.
    #[arg(long, env = "DROVER_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// The `drover-executor` binary for CommandInfo tasks. Default: the one
    /// next to this binary.
    #[arg(long, env = "DROVER_EXECUTOR_PATH")]
    pub executor_path: Option<PathBuf>,
    /// Run command tasks as a Mesos agent does: exec
    /// `<DIR>/mesos-executor` with `argv[0]` `mesos-executor` and
    /// `--launcher_dir=<DIR>` (Mesos' `--launcher_dir`; put
    /// drover-executor there under that name). Without it, command tasks
    /// get `--executor-path` in command mode.
    #[arg(long, env = "DROVER_LAUNCHER_DIR")]
    pub launcher_dir: Option<PathBuf>,
    /// The cgroup (relative to each hierarchy's root) under which every
    /// drover-executor gets `<parent>/<container_id>`; removed at exit.
    /// Default: `drover-agent-sim-<pid>`.
    #[arg(long, env = "DROVER_CGROUP_PARENT")]
    pub cgroup_parent: Option<PathBuf>,
    /// Time an executor gets between SHUTDOWN and the kill of its container,
    /// unless its ExecutorInfo says (Mesos agent `--executor_shutdown_grace_period`).
    #[arg(long, env = "DROVER_EXECUTOR_SHUTDOWN_GRACE_PERIOD", default_value = "5secs", value_parser = duration_arg)]
    pub executor_shutdown_grace_period: Duration,
    /// Checkpointing executors' re-subscription backoff cap
    /// (`MESOS_SUBSCRIPTION_BACKOFF_MAX`; Mesos agent `--executor_reregistration_timeout`).
    #[arg(long, env = "DROVER_EXECUTOR_REREGISTRATION_TIMEOUT", default_value = "2secs", value_parser = duration_arg)]
    pub executor_reregistration_timeout: Duration,
    /// Let the drover-executors the real agents supply (for command and
    /// default-executor tasks) run tasks as root; without it they refuse
    /// root tasks (drover-scheduler's `--allow-root-tasks` tells the
    /// executors it names itself).
    #[arg(long, env = "DROVER_ALLOW_ROOT_TASKS", default_value_t = false)]
    pub allow_root_tasks: bool,
    /// The local image store the real agents' drover-executors run image
    /// tasks from (`DROVER_IMAGE_DIR`: OCI layouts and `docker save`
    /// tarballs; default: the executor's own). Their layer cache and
    /// container roots always go under the work directory (`image-cache`,
    /// `image-rootfs`), shared by the agents.
    #[arg(long, env = "DROVER_IMAGE_DIR")]
    pub image_dir: Option<PathBuf>,
    /// Real agents authenticate their executors, as a Mesos agent with
    /// `--authenticate_http_executors`: each executor started gets its own
    /// token in `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`, and an executor call
    /// without `Authorization: Bearer <its token>` is refused with 401.
    #[arg(
        long,
        env = "DROVER_AUTHENTICATE_HTTP_EXECUTORS",
        default_value_t = false
    )]
    pub authenticate_http_executors: bool,
    /// How long checkpointing executors try to re-subscribe
    /// (`MESOS_RECOVERY_TIMEOUT`; Mesos agent `--recovery_timeout`).
    #[arg(long, env = "DROVER_RECOVERY_TIMEOUT", default_value = "15mins", value_parser = duration_arg)]
    pub recovery_timeout: Duration,
    /// Completed tasks `/state` keeps per framework, the oldest dropped
    /// first (Mesos master `--max_completed_tasks_per_framework`).
    #[arg(long, env = "DROVER_MAX_COMPLETED_TASKS_PER_FRAMEWORK", default_value_t = HistoryLimits::default().tasks)]
    pub max_completed_tasks_per_framework: usize,
    /// Completed executors `/state` keeps per framework, the oldest dropped
    /// first (Mesos agent `--max_completed_executors_per_framework`).
    #[arg(long, env = "DROVER_MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK", default_value_t = HistoryLimits::default().executors)]
    pub max_completed_executors_per_framework: usize,
    /// Removed frameworks whose completed tasks `/state` keeps, the oldest
    /// forgotten first (Mesos master `--max_completed_frameworks`).
    #[arg(long, env = "DROVER_MAX_COMPLETED_FRAMEWORKS", default_value_t = HistoryLimits::default().frameworks)]
    pub max_completed_frameworks: usize,
    /// Time for a whole request head, from its first byte, before the
    /// connection is closed. Idle connections between requests and
    /// streamed responses are never timed (pymesos keeps an idle call
    /// connection for its whole life).
    #[arg(long, env = "DROVER_HEADER_READ_TIMEOUT", default_value = "30secs", value_parser = duration_arg)]
    pub header_read_timeout: Duration,
    /// Time for a whole request body after its head (408 past it).
    #[arg(long, env = "DROVER_BODY_READ_TIMEOUT", default_value = "60secs", value_parser = duration_arg)]
    pub body_read_timeout: Duration,
    /// PEM certificate chain: with `--tls-key`, the master's port (the
    /// scheduler API, `/state`, simulated agents' files) is HTTPS only,
    /// as a Mesos master with SSL enabled. Real agents' own ports stay
    /// plain HTTP (drover-executor speaks plain HTTP to its agent).
    #[arg(long, env = "DROVER_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "DROVER_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid --resources or fleet resources")]
    Resources(#[from] ResourceError),
    #[error("invalid --attributes or fleet attributes")]
    Attributes(#[from] AttributeError),
    #[error("cannot read fleet file {path}: {source}")]
    ReadFleet {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid fleet file {path}: {source}")]
    ParseFleet {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("invalid role '{0}' in --roles: {1}")]
    Role(String, String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetFile {
    agents: Vec<FleetGroup>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FleetGroup {
    count: usize,
    resources: Option<String>,
    attributes: Option<String>,
    zone: Option<String>,
}

/// How a batch of agents is made: resources, attributes and zones.
#[derive(Debug, Clone)]
pub struct FleetDefaults {
    pub resources: Resources,
    pub attributes: Vec<v1::Attribute>,
    pub zones: Vec<String>,
}

impl FleetDefaults {
    /// `count` agents numbered from `first`: distinct hostnames, zones
    /// round-robin by number.
    pub fn specs(&self, first: usize, count: usize) -> Vec<AgentSpec> {
        (first..first + count)
            .map(|n| {
                let mut attributes = self.attributes.clone();
                if !self.zones.is_empty() {
                    attributes.push(attribute("zone", &self.zones[n % self.zones.len()]));
                }
                AgentSpec {
                    hostname: format!("agent-{n}.sim"),
                    resources: self.resources.clone(),
                    attributes,
                    runner: RunnerKind::Simulated,
                    endpoint: None,
                }
            })
            .collect()
    }
}

impl Config {
    /// The defaults for agents made from flags (and added at run time).
    pub fn fleet_defaults(&self) -> Result<FleetDefaults, ConfigError> {
        Ok(FleetDefaults {
            resources: Resources::parse(&self.resources)?,
            attributes: parse_attributes(&self.attributes)?,
            zones: self
                .zones
                .iter()
                .filter(|z| !z.is_empty())
                .cloned()
                .collect(),
        })
    }

    /// Every agent at start: the flag agents, then the fleet file's groups.
    pub fn fleet(&self) -> Result<Vec<AgentSpec>, ConfigError> {
        let defaults = self.fleet_defaults()?;
        let mut specs = defaults.specs(0, self.agents);
        if let Some(path) = &self.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::ReadFleet {
                path: path.clone(),
                source,
            })?;
            let file: FleetFile =
                serde_json::from_str(&text).map_err(|source| ConfigError::ParseFleet {
                    path: path.clone(),
                    source,
                })?;
            for g in file.agents {
                let mut group = defaults.clone();
                if let Some(r) = &g.resources {
                    group.resources = Resources::parse(r)?;
                }
                if let Some(a) = &g.attributes {
                    group.attributes = parse_attributes(a)?;
                }
                if let Some(z) = g.zone {
                    group.zones = vec![z];
                }
                specs.extend(group.specs(specs.len(), g.count));
            }
        }
        for spec in specs.iter_mut().take(self.real_agents) {
            spec.runner = RunnerKind::Real;
        }
        Ok(specs)
    }

    /// The master's settings.
    pub fn master(&self, seed: u64, bound: SocketAddr) -> Result<MasterConfig, ConfigError> {
        for r in &self.roles {
            crate::master::validate::role(r).map_err(|why| ConfigError::Role(r.clone(), why))?;
        }
        let ip = match bound.ip() {
            std::net::IpAddr::V4(v4) => v4,
            std::net::IpAddr::V6(_) => std::net::Ipv4Addr::LOCALHOST,
        };
        Ok(MasterConfig {
            heartbeat_interval: self.heartbeat_interval,
            allocation_interval: self.allocation_interval,
            offer_timeout: self.offer_timeout,
            update_retry_min: self.status_update_retry_interval,
            update_retry_max: Duration::from_secs(600).max(self.status_update_retry_interval),
            role_whitelist: (!self.roles.is_empty()).then(|| self.roles.clone()),
            hostname: self.hostname.clone(),
            ip,
            port: bound.port(),
            seed,
            executor_shutdown_grace: self.executor_shutdown_grace_period,
            history: HistoryLimits {
                tasks: self.max_completed_tasks_per_framework,
                executors: self.max_completed_executors_per_framework,
                frameworks: self.max_completed_frameworks,
            },
            ..MasterConfig::default()
        })
    }

    /// The flags as `/state` lists them.
    pub fn flags(&self) -> BTreeMap<String, String> {
        let mut f = BTreeMap::new();
        f.insert("agents".into(), self.agents.to_string());
        if let Some(zk) = &self.zk {
            f.insert("zk".into(), zk.clone());
        }
        if let Some(dir) = &self.state_dir {
            f.insert("state_dir".into(), dir.display().to_string());
        }
        f.insert("resources".into(), self.resources.clone());
        f.insert("attributes".into(), self.attributes.clone());
        f.insert("zones".into(), self.zones.join(","));
        f.insert("roles".into(), self.roles.join(","));
        f.insert(
            "heartbeat_interval".into(),
            format!("{:?}", self.heartbeat_interval),
        );
        f.insert(
            "allocation_interval".into(),
            format!("{:?}", self.allocation_interval),
        );
        f.insert("hostname".into(), self.hostname.clone());
        f.insert("real_agents".into(), self.real_agents.to_string());
        f.insert(
            "max_completed_tasks_per_framework".into(),
            self.max_completed_tasks_per_framework.to_string(),
        );
        f.insert(
            "max_completed_executors_per_framework".into(),
            self.max_completed_executors_per_framework.to_string(),
        );
        f
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn agents_spread_over_zones_with_distinct_hostnames() {
        let cfg = Config::parse_from([
            "sim",
            "--agents",
            "4",
            "--zones",
            "a,b,c",
            "--attributes",
            "rack:r1",
        ]);
        let fleet = cfg.fleet().unwrap();
        assert_eq!(fleet.len(), 4);
        let zones: Vec<String> = fleet
            .iter()
            .map(|s| {
                s.attributes
                    .iter()
                    .find(|a| a.name == "zone")
                    .unwrap()
                    .text
                    .clone()
                    .unwrap()
                    .value
            })
            .collect();
        assert_eq!(zones, ["a", "b", "c", "a"]);
        assert_ne!(fleet[0].hostname, fleet[1].hostname);
    }

    #[test]
    fn durations_use_mesos_syntax_and_bad_ones_are_refused() {
        let cfg = Config::parse_from([
            "sim",
            "--heartbeat-interval",
            "500ms",
            "--offer-timeout",
            "1mins",
        ]);
        assert_eq!(cfg.heartbeat_interval, Duration::from_millis(500));
        assert_eq!(cfg.offer_timeout, Some(Duration::from_secs(60)));
        assert!(Config::try_parse_from(["sim", "--heartbeat-interval", "5s"]).is_err());
    }

    #[test]
    fn a_fleet_file_adds_heterogeneous_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleet.json");
        std::fs::write(
            &path,
            r#"{"agents":[{"count":2,"resources":"cpus:16;mem:1024","zone":"z"}]}"#,
        )
        .unwrap();
        let cfg = Config::parse_from(["sim", "--agents", "1", "--config", path.to_str().unwrap()]);
        let fleet = cfg.fleet().unwrap();
        assert_eq!(fleet.len(), 3);
        assert_eq!(fleet[2].resources.scalar("cpus"), 16.0);
        std::fs::write(&path, r#"{"agents":[{"count":"x"}]}"#).unwrap();
        assert!(cfg.fleet().is_err());
    }
}
