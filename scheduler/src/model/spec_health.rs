//! A container's ports and its liveness and readiness checks as users
//! write them: Peloton's `PortSpec` and `HealthCheckSpec` (with an HTTP and
//! a TCP variant, which Mesos' `HealthCheck` and `CheckInfo` also have).
//! Shapes only; [`super::launch`] turns them into TaskInfo resources,
//! environment, `health_check` (liveness) and `check` (readiness).

use serde::{Deserialize, Serialize};

/// Peloton `PortSpec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// Name, unique in the container; the key in the pod status' `ports`.
    pub name: String,
    /// A static port, or 0 for any free port of the offer.
    #[serde(default)]
    pub value: u32,
    /// The environment variable that carries the port to the task.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub env_name: String,
}

/// Peloton `HealthCheckSpec.HealthCheckType`, plus TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum HealthCheckType {
    /// Run a command; exit 0 is healthy.
    #[serde(rename = "COMMAND")]
    Command,
    /// GET a path; 2xx/3xx is healthy.
    #[serde(rename = "HTTP")]
    Http,
    /// Connect to a port.
    #[serde(rename = "TCP")]
    Tcp,
}

/// Peloton `HealthCheckSpec`. Zero timing values mean Peloton's (Mesos')
/// defaults: 15 s initial interval, 10 s interval, 20 s timeout, 3
/// consecutive failures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// Whether the check runs.
    #[serde(default)]
    pub enabled: bool,
    /// Wait before the first check; failures during it do not count.
    #[serde(default)]
    pub initial_interval_secs: u32,
    /// Between checks.
    #[serde(default)]
    pub interval_secs: u32,
    /// Failures in a row that kill the task.
    #[serde(default)]
    pub max_consecutive_failures: u32,
    /// One check's time limit.
    #[serde(default)]
    pub timeout_secs: u32,
    /// COMMAND, HTTP or TCP.
    #[serde(rename = "type")]
    pub check_type: HealthCheckType,
    /// For COMMAND.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command_check: Option<CommandCheck>,
    /// For HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_get: Option<HttpGet>,
    /// For TCP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp_socket: Option<TcpSocket>,
}

/// Peloton `HealthCheckSpec.CommandCheck`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandCheck {
    /// Shell command.
    pub command: String,
    /// Accepted for compatibility; checks always share the environment.
    #[serde(default)]
    pub unshare_environments: bool,
}

/// An HTTP GET check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpGet {
    /// `http` (default) or `https`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    /// The port; 0 means the container's first port.
    #[serde(default)]
    pub port: u32,
    /// Path, starting with `/`; default `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// A TCP connect check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpSocket {
    /// The port; 0 means the container's first port.
    #[serde(default)]
    pub port: u32,
}

/// Peloton's default initial interval (Mesos `delay_seconds`).
pub const DEFAULT_INITIAL_INTERVAL_SECS: u32 = 15;
/// Peloton's default interval.
pub const DEFAULT_INTERVAL_SECS: u32 = 10;
/// Peloton's default timeout.
pub const DEFAULT_TIMEOUT_SECS: u32 = 20;
/// Peloton's default consecutive failures.
pub const DEFAULT_MAX_CONSECUTIVE_FAILURES: u32 = 3;

fn or_default(v: u32, default: u32) -> u32 {
    if v == 0 {
        default
    } else {
        v
    }
}

impl HealthCheckSpec {
    /// Initial interval with the default applied.
    pub fn initial_interval(&self) -> u32 {
        or_default(self.initial_interval_secs, DEFAULT_INITIAL_INTERVAL_SECS)
    }
    /// Interval with the default applied.
    pub fn interval(&self) -> u32 {
        or_default(self.interval_secs, DEFAULT_INTERVAL_SECS)
    }
    /// Timeout with the default applied.
    pub fn timeout(&self) -> u32 {
        or_default(self.timeout_secs, DEFAULT_TIMEOUT_SECS)
    }
    /// Consecutive failures with the default applied.
    pub fn max_failures(&self) -> u32 {
        or_default(
            self.max_consecutive_failures,
            DEFAULT_MAX_CONSECUTIVE_FAILURES,
        )
    }
}
