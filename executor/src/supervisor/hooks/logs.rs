//! The logs hook: the task's stdout and stderr go through pipes into
//! `stdout` and `stderr` files in its sandbox, rotated by size.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use super::{Launch, TaskHook};
use crate::container::logs::{pipe, pump, RotationPolicy};
use crate::supervisor::task::TaskPlan;

/// How long `stop` waits for the pumps to drain after the task is gone.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct LogsHook {
    policy: RotationPolicy,
    pumps: Vec<tokio::task::JoinHandle<std::io::Result<u64>>>,
}

impl LogsHook {
    pub(super) fn new(policy: RotationPolicy) -> Self {
        Self {
            policy,
            pumps: Vec::new(),
        }
    }
}

impl TaskHook for LogsHook {
    fn name(&self) -> &'static str {
        "logs"
    }

    fn prestart(&mut self, _plan: &TaskPlan, launch: &mut Launch) -> Result<(), std::io::Error> {
        let (out_read, out_write) = pipe()?;
        let (err_read, err_write) = pipe()?;
        self.pumps.push(tokio::spawn(pump(
            out_read,
            launch.sandbox.join("stdout"),
            self.policy,
        )));
        self.pumps.push(tokio::spawn(pump(
            err_read,
            launch.sandbox.join("stderr"),
            self.policy,
        )));
        launch.stdout = Some(out_write);
        launch.stderr = Some(err_write);
        Ok(())
    }

    fn stop(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            for pump in self.pumps.drain(..) {
                match tokio::time::timeout(DRAIN_TIMEOUT, pump).await {
                    Ok(Ok(Ok(_))) => {}
                    Ok(Ok(Err(e))) => tracing::warn!(error = %e, "task log pump failed"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "task log pump panicked"),
                    Err(_) => tracing::warn!("task log pump did not drain in time"),
                }
            }
        })
    }
}
