//! A pod's liveness check as the Mesos `HealthCheck` its executor runs,
//! with Peloton's defaults for zero values (15 s initial interval, 10 s
//! interval, 20 s timeout, 3 consecutive failures). The initial interval
//! is both Mesos' `delay_seconds` and its `grace_period_seconds`: Peloton
//! means "do not judge the task before this", and failures inside the
//! grace period do not count. A check port of 0 means the container's
//! first port, so HTTP and TCP checks work with dynamic ports.

use crate::model::spec::{HealthCheckSpec, HealthCheckType};
use drover_proto::v1::{health_check, CommandInfo, HealthCheck};

/// The TaskInfo health check for `spec`, given the run's ports in order.
pub fn health_check(spec: &HealthCheckSpec, ports: &[(String, u32)]) -> HealthCheck {
    let first_port = ports.first().map_or(0, |(_, p)| *p);
    let port = |p: u32| if p == 0 { first_port } else { p };
    let mut check = HealthCheck {
        delay_seconds: Some(f64::from(spec.initial_interval())),
        interval_seconds: Some(f64::from(spec.interval())),
        timeout_seconds: Some(f64::from(spec.timeout())),
        consecutive_failures: Some(spec.max_failures()),
        grace_period_seconds: Some(f64::from(spec.initial_interval())),
        ..Default::default()
    };
    match spec.check_type {
        HealthCheckType::Command => {
            check.r#type = Some(health_check::Type::Command as i32);
            check.command = Some(CommandInfo {
                shell: Some(true),
                value: spec.command_check.as_ref().map(|c| c.command.clone()),
                ..Default::default()
            });
        }
        HealthCheckType::Http => {
            let http = spec.http_get.clone().unwrap_or_default();
            check.r#type = Some(health_check::Type::Http as i32);
            check.http = Some(health_check::HttpCheckInfo {
                scheme: Some(http.scheme.unwrap_or_else(|| "http".into())),
                port: port(http.port),
                path: Some(http.path.unwrap_or_else(|| "/".into())),
                ..Default::default()
            });
        }
        HealthCheckType::Tcp => {
            let tcp = spec.tcp_socket.clone().unwrap_or_default();
            check.r#type = Some(health_check::Type::Tcp as i32);
            check.tcp = Some(health_check::TcpCheckInfo {
                port: port(tcp.port),
                ..Default::default()
            });
        }
    }
    check
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn spec(json: serde_json::Value) -> HealthCheckSpec {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn zero_values_take_pelotons_defaults() {
        let c = health_check(
            &spec(serde_json::json!({"enabled": true, "type": "COMMAND",
                "command_check": {"command": "true"}})),
            &[],
        );
        assert_eq!(c.delay_seconds, Some(15.0));
        assert_eq!(c.grace_period_seconds, Some(15.0));
        assert_eq!(c.interval_seconds, Some(10.0));
        assert_eq!(c.timeout_seconds, Some(20.0));
        assert_eq!(c.consecutive_failures, Some(3));
        assert_eq!(c.command.unwrap().value.as_deref(), Some("true"));
    }

    #[test]
    fn http_and_tcp_checks_default_to_the_first_port() {
        let ports = [("http".to_owned(), 31007)];
        let c = health_check(
            &spec(
                serde_json::json!({"enabled": true, "type": "HTTP", "interval_secs": 2,
                "http_get": {"path": "/health"}}),
            ),
            &ports,
        );
        let http = c.http.unwrap();
        assert_eq!(
            (http.port, http.path.as_deref(), http.scheme.as_deref()),
            (31007, Some("/health"), Some("http"))
        );
        assert_eq!(c.interval_seconds, Some(2.0));
        let c = health_check(
            &spec(serde_json::json!({"enabled": true, "type": "TCP", "tcp_socket": {"port": 80}})),
            &ports,
        );
        assert_eq!(c.tcp.unwrap().port, 80);
    }
}
