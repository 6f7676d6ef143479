//! Health checks with Mesos semantics (reference 6.1; Mesos
//! `src/checks/health_checker.cpp`): a pure [`tracker::HealthTracker`] decides
//! when to check and what a result means; the probes only run one check.
//!
//! The drive half is [`run`]: one tokio task per checked task that sleeps
//! until the tracker's next check, runs the probe under its timeout, and
//! sends the tracker's verdicts to the supervisor.

pub mod command;
pub mod http;
pub mod insecure_tls;
pub mod tcp;
pub mod tracker;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

pub use tracker::{HealthAction, HealthPolicy, HealthTracker, Outcome};

/// The loopback address an HTTP or TCP check targets: Mesos'
/// `protocol` IPv4 (the default) is `127.0.0.1`, IPv6 is `::1`
/// (`src/checks/checker_process.cpp` picks the same two).
pub fn loopback(ipv6: bool) -> std::net::IpAddr {
    if ipv6 {
        std::net::Ipv6Addr::LOCALHOST.into()
    } else {
        std::net::Ipv4Addr::LOCALHOST.into()
    }
}

/// One kind of check: runs once and says healthy or why not.
pub trait Probe: Send + Sync {
    /// Runs the check once. Timeouts are the caller's job.
    fn check(&self) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>>;
}

/// Runs checks until the tracker asks for a kill or `verdicts` closes.
pub async fn run(
    mut tracker: HealthTracker,
    probe: Box<dyn Probe>,
    verdicts: mpsc::Sender<HealthAction>,
) {
    while let Some(at) = tracker.next_check_at() {
        tokio::time::sleep_until(at.into()).await;
        let outcome = match tracker.policy().timeout {
            Some(limit) => match tokio::time::timeout(limit, probe.check()).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Unhealthy(format!("health check timed out after {limit:?}")),
            },
            None => probe.check().await,
        };
        let now = tokio::time::Instant::now().into_std();
        if let Some(action) = tracker.on_result(outcome, now) {
            if verdicts.send(action).await.is_err() {
                return;
            }
        }
    }
}
