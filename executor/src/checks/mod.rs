//! Mesos checks (TaskInfo `check`): Drover's readiness checks. A pure
//! [`tracker::CheckTracker`] decides when to check and whether a result is
//! news; the probes are the health checks' own ([`crate::health`]), asked
//! for what they saw rather than for a verdict.
//!
//! The drive half is [`run`]: one tokio task per checked task that sleeps
//! until the tracker's next check, runs the probe under its timeout (a
//! timed out check has an empty result), and sends each changed status to
//! the supervisor, which reports it in `TaskStatus.check_status`.

pub mod tracker;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

use crate::health::command::CommandProbe;
use crate::health::http::HttpProbe;
use crate::health::tcp::TcpProbe;
pub use tracker::{CheckPolicy, CheckResult, CheckTracker};

use drover_proto::v1::CheckStatusInfo;

/// One kind of check: runs once and says what it saw.
pub trait CheckProbe: Send + Sync {
    /// Runs the check once. Timeouts are the caller's job.
    fn observe(&self) -> Pin<Box<dyn Future<Output = CheckResult> + Send + '_>>;
}

impl CheckProbe for CommandProbe {
    fn observe(&self) -> Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        Box::pin(async move {
            match self.exit_code().await {
                Ok(code) => CheckResult::Command(Some(code)),
                Err(e) => {
                    tracing::debug!(error = %e, "check command not performed");
                    CheckResult::Command(None)
                }
            }
        })
    }
}

impl CheckProbe for HttpProbe {
    fn observe(&self) -> Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        Box::pin(async move {
            match self.status().await {
                Ok(code) => CheckResult::Http(Some(u32::from(code))),
                Err(e) => {
                    tracing::debug!(error = %e, "HTTP check not performed");
                    CheckResult::Http(None)
                }
            }
        })
    }
}

impl CheckProbe for TcpProbe {
    fn observe(&self) -> Pin<Box<dyn Future<Output = CheckResult> + Send + '_>> {
        // A refused connect is a result (not connected), as in Mesos.
        Box::pin(async move { CheckResult::Tcp(Some(self.connect().await.is_ok())) })
    }
}

/// Runs checks until `statuses` closes (the task is being killed or gone).
pub async fn run(
    mut tracker: CheckTracker,
    probe: Box<dyn CheckProbe>,
    statuses: mpsc::Sender<CheckStatusInfo>,
) {
    loop {
        tokio::time::sleep_until(tracker.next_check_at().into()).await;
        let result = match tracker.policy().timeout {
            Some(limit) => tokio::time::timeout(limit, probe.observe())
                .await
                .unwrap_or_else(|_| CheckResult::empty(tracker.kind())),
            None => probe.observe().await,
        };
        let now = tokio::time::Instant::now().into_std();
        if let Some(status) = tracker.on_result(result, now) {
            if statuses.send(status).await.is_err() {
                return;
            }
        }
    }
}
