//! The check hook: starts the task's Mesos check (its readiness check)
//! when the process runs and stops it at the kill, as Mesos pauses checks
//! while killing. A check only reports; it never kills.

use std::future::Future;
use std::pin::Pin;

use super::probe_target::ProbeTarget;
use super::{Started, TaskHook};
use crate::checks::{self, CheckTracker};
use crate::supervisor::task::TaskPlan;

#[derive(Default)]
pub(super) struct CheckHook {
    checker: Option<tokio::task::JoinHandle<()>>,
}

impl TaskHook for CheckHook {
    fn name(&self) -> &'static str {
        "check"
    }

    fn poststart(&mut self, plan: &TaskPlan, started: &Started) {
        let Some(spec) = &plan.check else { return };
        let probe = ProbeTarget::of(&spec.target, plan, started).check();
        let tracker = CheckTracker::new(
            spec.policy,
            spec.kind,
            tokio::time::Instant::now().into_std(),
        );
        self.checker = Some(tokio::spawn(checks::run(
            tracker,
            probe,
            started.check_statuses.clone(),
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
