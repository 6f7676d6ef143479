//! What a health check and a Mesos check probe, made one way for both
//! hooks: a command in the task's cgroup, sandbox, user and environment,
//! an HTTP GET, or a TCP connect.

use super::Started;
use crate::checks::CheckProbe;
use crate::health::command::CommandProbe;
use crate::health::http::HttpProbe;
use crate::health::tcp::TcpProbe;
use crate::health::Probe;
use crate::supervisor::task::{HealthKind, TaskPlan};

/// The probe of one check's target.
pub(super) enum ProbeTarget {
    Command(CommandProbe),
    Http(HttpProbe),
    Tcp(TcpProbe),
}

impl ProbeTarget {
    /// The probe of `target` for the task `plan` describes, as `started`.
    pub(super) fn of(target: &HealthKind, plan: &TaskPlan, started: &Started) -> ProbeTarget {
        match target {
            HealthKind::Command { argv, env } => {
                let mut all = plan.env.clone();
                all.extend(env.iter().cloned());
                ProbeTarget::Command(CommandProbe {
                    cgroup: started.cgroup.clone(),
                    argv: argv.clone(),
                    env: all,
                    cwd: started.check_cwd.clone(),
                    user: started.user.clone(),
                    in_task_namespaces: started.in_namespaces,
                })
            }
            HealthKind::Http {
                port,
                path,
                https,
                ipv6,
            } => ProbeTarget::Http(HttpProbe {
                port: *port,
                path: path.clone(),
                https: *https,
                ipv6: *ipv6,
            }),
            HealthKind::Tcp { port, ipv6 } => ProbeTarget::Tcp(TcpProbe {
                port: *port,
                ipv6: *ipv6,
            }),
        }
    }

    /// As a health check's probe.
    pub(super) fn health(self) -> Box<dyn Probe> {
        match self {
            ProbeTarget::Command(p) => Box::new(p),
            ProbeTarget::Http(p) => Box::new(p),
            ProbeTarget::Tcp(p) => Box::new(p),
        }
    }

    /// As a Mesos check's probe.
    pub(super) fn check(self) -> Box<dyn CheckProbe> {
        match self {
            ProbeTarget::Command(p) => Box::new(p),
            ProbeTarget::Http(p) => Box::new(p),
            ProbeTarget::Tcp(p) => Box::new(p),
        }
    }
}
