//! The health-check state machine: delay, interval, timeout, consecutive
//! failures and grace period, as Mesos' built-in executors apply them.
//!
//! ```text
//!  new(now) --delay--> check --result--> on_result(now) --interval--> check ...
//!                                            |
//!        failure within grace, never healthy: ignored
//!        success after none/failures:         ReportHealthy
//!        failure:                             ReportUnhealthy (every one)
//!        failures in a row == consecutive:    Kill (then no more checks)
//! ```
//!
//! Calling contract: run a check at [`HealthTracker::next_check_at`], then
//! feed its outcome to [`HealthTracker::on_result`] with the time it ended;
//! the interval counts from the end of one check to the start of the next.

use std::time::{Duration, Instant};

/// Timing of a task's health check, converted from `HealthCheck` at the edge.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthPolicy {
    /// Wait after launch before the first check (Mesos default 15 s).
    pub delay: Duration,
    /// Pause between the end of one check and the next (default 10 s).
    pub interval: Duration,
    /// Longest a check may run; `None` for no limit (default 20 s; 0 = none).
    pub timeout: Option<Duration>,
    /// Failures in a row that kill the task (default 3).
    pub consecutive_failures: u32,
    /// Failures are ignored this long after launch until the first success
    /// (default 10 s; includes the delay).
    pub grace_period: Duration,
}

impl Default for HealthPolicy {
    fn default() -> Self {
        Self {
            delay: Duration::from_secs(15),
            interval: Duration::from_secs(10),
            timeout: Some(Duration::from_secs(20)),
            consecutive_failures: 3,
            grace_period: Duration::from_secs(10),
        }
    }
}

/// What one check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed.
    Healthy,
    /// The check failed, and why.
    Unhealthy(String),
}

/// What the supervisor must do after a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthAction {
    /// Send TASK_RUNNING with `healthy: true`.
    ReportHealthy,
    /// Send TASK_RUNNING with `healthy: false`.
    ReportUnhealthy {
        /// Why the check failed.
        message: String,
    },
    /// Send TASK_RUNNING with `healthy: false`, then kill the task.
    Kill {
        /// Why the last check failed.
        message: String,
    },
}

/// One task's health state.
#[derive(Debug, Clone)]
pub struct HealthTracker {
    policy: HealthPolicy,
    started: Instant,
    next_check: Option<Instant>,
    consecutive_failures: u32,
    ever_healthy: bool,
    reported_healthy: Option<bool>,
}

impl HealthTracker {
    /// A tracker for a task launched at `now`.
    pub fn new(policy: HealthPolicy, now: Instant) -> Self {
        Self {
            policy,
            started: now,
            next_check: Some(now + policy.delay),
            consecutive_failures: 0,
            ever_healthy: false,
            reported_healthy: None,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &HealthPolicy {
        &self.policy
    }

    /// When to run the next check; `None` once the task is to be killed.
    pub fn next_check_at(&self) -> Option<Instant> {
        self.next_check
    }

    /// Failures in a row so far.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures
    }

    /// Feeds a check's outcome, ended at `now`.
    pub fn on_result(&mut self, outcome: Outcome, now: Instant) -> Option<HealthAction> {
        self.next_check = Some(now + self.policy.interval);
        match outcome {
            Outcome::Healthy => {
                self.consecutive_failures = 0;
                self.ever_healthy = true;
                if self.reported_healthy == Some(true) {
                    return None;
                }
                self.reported_healthy = Some(true);
                Some(HealthAction::ReportHealthy)
            }
            Outcome::Unhealthy(message) => {
                let in_grace =
                    now.saturating_duration_since(self.started) < self.policy.grace_period;
                if in_grace && !self.ever_healthy {
                    return None;
                }
                self.consecutive_failures += 1;
                self.reported_healthy = Some(false);
                if self.consecutive_failures >= self.policy.consecutive_failures.max(1) {
                    self.next_check = None;
                    return Some(HealthAction::Kill { message });
                }
                Some(HealthAction::ReportUnhealthy { message })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> HealthPolicy {
        HealthPolicy {
            delay: Duration::from_secs(5),
            interval: Duration::from_secs(2),
            timeout: Some(Duration::from_secs(1)),
            consecutive_failures: 3,
            grace_period: Duration::from_secs(10),
        }
    }

    fn bad() -> Outcome {
        Outcome::Unhealthy("exit 1".into())
    }

    fn unhealthy() -> Option<HealthAction> {
        Some(HealthAction::ReportUnhealthy {
            message: "exit 1".into(),
        })
    }

    fn kill() -> Option<HealthAction> {
        Some(HealthAction::Kill {
            message: "exit 1".into(),
        })
    }

    /// Feeds (seconds since launch, outcome) and checks each verdict.
    fn run(policy: HealthPolicy, steps: &[(u64, Outcome, Option<HealthAction>)]) -> HealthTracker {
        let t0 = Instant::now();
        let mut tracker = HealthTracker::new(policy, t0);
        for (i, (secs, outcome, want)) in steps.iter().enumerate() {
            let got = tracker.on_result(outcome.clone(), t0 + Duration::from_secs(*secs));
            assert_eq!(&got, want, "step {i} at {secs}s");
        }
        tracker
    }

    #[test]
    fn the_first_check_waits_for_the_delay_and_then_the_interval_after_each_end() {
        let t0 = Instant::now();
        let mut tracker = HealthTracker::new(policy(), t0);
        assert_eq!(tracker.next_check_at(), Some(t0 + Duration::from_secs(5)));
        tracker.on_result(Outcome::Healthy, t0 + Duration::from_secs(6));
        assert_eq!(tracker.next_check_at(), Some(t0 + Duration::from_secs(8)));
    }

    #[test]
    fn failures_in_the_grace_period_are_ignored_until_the_first_success() {
        run(
            policy(),
            &[
                (5, bad(), None),
                (7, bad(), None),
                (9, bad(), None),
                (11, bad(), unhealthy()),
            ],
        );
    }

    #[test]
    fn after_a_success_failures_count_even_inside_the_grace_period() {
        run(
            policy(),
            &[
                (5, Outcome::Healthy, Some(HealthAction::ReportHealthy)),
                (7, bad(), unhealthy()),
            ],
        );
    }

    #[test]
    fn healthy_is_reported_on_the_first_success_and_after_failures_only() {
        run(
            policy(),
            &[
                (11, Outcome::Healthy, Some(HealthAction::ReportHealthy)),
                (13, Outcome::Healthy, None),
                (15, bad(), unhealthy()),
                (17, Outcome::Healthy, Some(HealthAction::ReportHealthy)),
                (19, Outcome::Healthy, None),
            ],
        );
    }

    #[test]
    fn every_failure_is_reported_and_the_nth_in_a_row_kills() {
        let tracker = run(
            policy(),
            &[
                (11, bad(), unhealthy()),
                (13, bad(), unhealthy()),
                (15, bad(), kill()),
            ],
        );
        assert_eq!(
            tracker.next_check_at(),
            None,
            "no checks once the task is being killed"
        );
        assert_eq!(tracker.consecutive_failures(), 3);
    }

    #[test]
    fn a_success_resets_the_consecutive_count() {
        run(
            policy(),
            &[
                (11, bad(), unhealthy()),
                (13, bad(), unhealthy()),
                (15, Outcome::Healthy, Some(HealthAction::ReportHealthy)),
                (17, bad(), unhealthy()),
                (19, bad(), unhealthy()),
                (21, bad(), kill()),
            ],
        );
    }

    #[test]
    fn zero_consecutive_failures_kills_on_the_first_counted_failure() {
        let policy = HealthPolicy {
            consecutive_failures: 0,
            grace_period: Duration::ZERO,
            ..policy()
        };
        run(policy, &[(5, bad(), kill())]);
    }
}
