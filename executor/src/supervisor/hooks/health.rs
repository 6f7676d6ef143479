//! The health hook: starts the task's health checker when the process runs
//! and stops it at the kill (Mesos pauses checks while killing).

use std::future::Future;
use std::pin::Pin;

use super::{Started, TaskHook};
use crate::health::command::CommandProbe;
use crate::health::http::HttpProbe;
use crate::health::tcp::TcpProbe;
use crate::health::{self, HealthTracker, Probe};
use crate::supervisor::task::{HealthKind, TaskPlan};

#[derive(Default)]
pub(super) struct HealthHook {
    checker: Option<tokio::task::JoinHandle<()>>,
}

impl TaskHook for HealthHook {
    fn name(&self) -> &'static str {
        "health"
    }

    fn poststart(&mut self, plan: &TaskPlan, started: &Started) {
        let Some(spec) = &plan.health else { return };
        let probe: Box<dyn Probe> = match &spec.kind {
            HealthKind::Command { argv, env } => {
                let mut all = plan.env.clone();
                all.extend(env.iter().cloned());
                Box::new(CommandProbe {
                    cgroup: started.cgroup.clone(),
                    argv: argv.clone(),
                    env: all,
                    cwd: started.sandbox.clone(),
                    user: started.user.clone(),
                })
            }
            HealthKind::Http { port, path, https } => Box::new(HttpProbe {
                port: *port,
                path: path.clone(),
                https: *https,
            }),
            HealthKind::Tcp { port } => Box::new(TcpProbe { port: *port }),
        };
        let tracker = HealthTracker::new(spec.policy, tokio::time::Instant::now().into_std());
        self.checker = Some(tokio::spawn(health::run(
            tracker,
            probe,
            started.verdicts.clone(),
        )));
    }

    fn pre_kill(&mut self) {
        if let Some(checker) = self.checker.take() {
            checker.abort();
        }
    }

    fn stop(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.pre_kill();
        Box::pin(async {})
    }
}
