//! The health hook: starts the task's health checker when the process runs
//! and stops it at the kill (Mesos pauses checks while killing).

use std::future::Future;
use std::pin::Pin;

use super::probe_target::ProbeTarget;
use super::{Started, TaskHook};
use crate::health::{self, HealthTracker};
use crate::supervisor::task::TaskPlan;

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
        let probe = ProbeTarget::of(&spec.kind, plan, started).health();
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
