//! A pod's readiness check as the Mesos `check` (CheckInfo) its executor
//! runs. A check never kills its task: the executor only reports each
//! change of its result in `TaskStatus.check_status`, and the scheduler
//! reads readiness from it ([`super::events`]). Peloton's zero values take
//! the same defaults as the liveness check (15 s delay, 10 s interval,
//! 20 s timeout); a port of 0 means the container's first port. Mesos'
//! HTTP check is plain HTTP to the task's host (validation refuses any
//! other scheme).

use crate::model::spec::{HealthCheckSpec, HealthCheckType};
use drover_proto::v1::{check_info, CheckInfo, CommandInfo};

/// The TaskInfo `check` for the readiness check `spec`, given the run's
/// ports in order.
pub fn check_info(spec: &HealthCheckSpec, ports: &[(String, u32)]) -> CheckInfo {
    let first_port = ports.first().map_or(0, |(_, p)| *p);
    let port = |p: u32| if p == 0 { first_port } else { p };
    let mut check = CheckInfo {
        delay_seconds: Some(f64::from(spec.initial_interval())),
        interval_seconds: Some(f64::from(spec.interval())),
        timeout_seconds: Some(f64::from(spec.timeout())),
        ..Default::default()
    };
    match spec.check_type {
        HealthCheckType::Command => {
            check.r#type = Some(check_info::Type::Command as i32);
            check.command = Some(check_info::Command {
                command: CommandInfo {
                    shell: Some(true),
                    value: spec.command_check.as_ref().map(|c| c.command.clone()),
                    ..Default::default()
                },
            });
        }
        HealthCheckType::Http => {
            let http = spec.http_get.clone().unwrap_or_default();
            check.r#type = Some(check_info::Type::Http as i32);
            check.http = Some(check_info::Http {
                port: port(http.port),
                path: Some(http.path.unwrap_or_else(|| "/".into())),
            });
        }
        HealthCheckType::Tcp => {
            let tcp = spec.tcp_socket.clone().unwrap_or_default();
            check.r#type = Some(check_info::Type::Tcp as i32);
            check.tcp = Some(check_info::Tcp {
                port: port(tcp.port),
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
    fn a_command_check_takes_pelotons_default_timing() {
        let c = check_info(
            &spec(serde_json::json!({"enabled": true, "type": "COMMAND",
                "command_check": {"command": "test -f ready"}})),
            &[],
        );
        assert_eq!(c.r#type, Some(check_info::Type::Command as i32));
        assert_eq!(
            (c.delay_seconds, c.interval_seconds, c.timeout_seconds),
            (Some(15.0), Some(10.0), Some(20.0))
        );
        let command = c.command.unwrap().command;
        assert_eq!(command.value.as_deref(), Some("test -f ready"));
        assert_eq!(command.shell, Some(true));
    }

    #[test]
    fn http_and_tcp_checks_default_to_the_first_port() {
        let ports = [("http".to_owned(), 31007)];
        let c = check_info(
            &spec(
                serde_json::json!({"enabled": true, "type": "HTTP", "interval_secs": 2,
                "initial_interval_secs": 1, "timeout_secs": 3}),
            ),
            &ports,
        );
        let http = c.http.unwrap();
        assert_eq!((http.port, http.path.as_deref()), (31007, Some("/")));
        assert_eq!(
            (c.delay_seconds, c.interval_seconds, c.timeout_seconds),
            (Some(1.0), Some(2.0), Some(3.0))
        );
        let c = check_info(
            &spec(serde_json::json!({"enabled": true, "type": "TCP", "tcp_socket": {"port": 80}})),
            &ports,
        );
        assert_eq!(c.r#type, Some(check_info::Type::Tcp as i32));
        assert_eq!(c.tcp.unwrap().port, 80);
    }
}
