//! A TaskInfo's Mesos `check` (CheckInfo) as a [`CheckSpec`] of Drover's
//! own types, at the Mesos edge. Pure; bad input is a typed
//! [`PlanError::Check`] (the task fails with TASK_ERROR, as Mesos refuses an
//! invalid check at launch).

use std::time::Duration;

use drover_proto::v1::{check_info, CheckInfo};

use super::task::{argv, HealthKind, PlanError};
use crate::checks::CheckPolicy;

/// A check, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Timing.
    pub policy: CheckPolicy,
    /// COMMAND, HTTP or TCP.
    pub kind: check_info::Type,
    /// What to check: the health checks' own targets (an HTTP check is
    /// plain HTTP: CheckInfo has no scheme).
    pub target: HealthKind,
}

fn seconds(value: Option<f64>, default: f64) -> Duration {
    Duration::try_from_secs_f64(value.unwrap_or(default)).unwrap_or(Duration::ZERO)
}

/// The check of task `task_id`.
pub fn check(task_id: &str, check: &CheckInfo) -> Result<CheckSpec, PlanError> {
    let invalid = |problem: &str| PlanError::Check {
        task_id: task_id.to_string(),
        problem: problem.to_string(),
    };
    let timeout = seconds(check.timeout_seconds, 20.0);
    let policy = CheckPolicy {
        delay: seconds(check.delay_seconds, 15.0),
        interval: seconds(check.interval_seconds, 10.0),
        timeout: (!timeout.is_zero()).then_some(timeout),
    };
    let port = |p: u32| u16::try_from(p).map_err(|_| invalid("port out of range"));
    let kind = check
        .r#type
        .and_then(|t| check_info::Type::try_from(t).ok())
        .unwrap_or(check_info::Type::Unknown);
    let target = match kind {
        check_info::Type::Command => {
            let command = &check
                .command
                .as_ref()
                .ok_or_else(|| invalid("COMMAND check without command"))?
                .command;
            if command.value.as_deref().unwrap_or("").trim().is_empty() {
                return Err(invalid("COMMAND check with an empty command"));
            }
            let env = command
                .environment
                .iter()
                .flat_map(|e| e.variables.iter())
                .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                .collect();
            HealthKind::Command {
                argv: argv(command),
                env,
            }
        }
        check_info::Type::Http => {
            let http = check
                .http
                .as_ref()
                .ok_or_else(|| invalid("HTTP check without http"))?;
            let path = http.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') {
                return Err(invalid("HTTP path must start with /"));
            }
            HealthKind::Http {
                port: port(http.port)?,
                path,
                https: false,
                // CheckInfo.Http has no protocol: IPv4, as Mesos.
                ipv6: false,
            }
        }
        check_info::Type::Tcp => {
            let tcp = check
                .tcp
                .as_ref()
                .ok_or_else(|| invalid("TCP check without tcp"))?;
            HealthKind::Tcp {
                port: port(tcp.port)?,
                ipv6: false,
            }
        }
        check_info::Type::Unknown => return Err(invalid("type must be COMMAND, HTTP or TCP")),
    };
    Ok(CheckSpec {
        policy,
        kind,
        target,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::CommandInfo;

    #[test]
    fn a_command_check_takes_mesos_defaults_and_the_shell() {
        let spec = check(
            "t",
            &CheckInfo {
                r#type: Some(check_info::Type::Command as i32),
                command: Some(check_info::Command {
                    command: CommandInfo {
                        value: Some("test -f ready".into()),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            spec.policy,
            CheckPolicy {
                delay: Duration::from_secs(15),
                interval: Duration::from_secs(10),
                timeout: Some(Duration::from_secs(20)),
            }
        );
        assert_eq!(
            spec.target,
            HealthKind::Command {
                argv: vec!["/bin/sh".into(), "-c".into(), "test -f ready".into()],
                env: Vec::new(),
            }
        );
    }

    #[test]
    fn bad_checks_are_typed_errors() {
        let cases = [
            CheckInfo::default(),
            CheckInfo {
                r#type: Some(check_info::Type::Http as i32),
                ..Default::default()
            },
            CheckInfo {
                r#type: Some(check_info::Type::Tcp as i32),
                tcp: Some(check_info::Tcp { port: 70_000 }),
                ..Default::default()
            },
            CheckInfo {
                r#type: Some(check_info::Type::Http as i32),
                http: Some(check_info::Http {
                    port: 80,
                    path: Some("ready".into()),
                }),
                ..Default::default()
            },
        ];
        for info in cases {
            assert!(
                matches!(check("t", &info), Err(PlanError::Check { .. })),
                "{info:?}"
            );
        }
    }
}
