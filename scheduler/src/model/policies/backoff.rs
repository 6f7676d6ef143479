//! Retry backoff: a run that failed again and again waits longer and longer
//! before the next one. The first retry after a failure is immediate (a
//! one-off crash should cost nothing); from the second consecutive failure
//! on the delay is `initial · 2^(n-2)`, capped at `max`, minus up to
//! [`JITTER`] of itself so that instances that failed together do not
//! retry together. The jitter comes from the task id, not a random source:
//! the same inputs give the same plan, as the engine requires.

use crate::model::ids::TaskId;
use crate::model::spec::RestartPolicy;
use crate::model::time::UnixMillis;
use std::time::Duration;

/// The default initial delay: 1 s, enough to stop a crash loop from
/// spinning through offers, short enough to be invisible for one retry.
pub const DEFAULT_INITIAL_DELAY: Duration = Duration::from_secs(1);
/// The default cap: 60 s, Titus' order of magnitude.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);
/// The largest fraction of the delay taken off by jitter.
pub const JITTER: f64 = 0.2;

/// Delays of one pod's retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the second retry.
    pub initial: Duration,
    /// Cap.
    pub max: Duration,
}

impl Backoff {
    /// The backoff a pod's restart policy asks for, defaults filled in.
    pub fn of(policy: Option<&RestartPolicy>) -> Self {
        let secs = |v: Option<u32>, d: Duration| v.map_or(d, |s| Duration::from_secs(s.into()));
        let initial = secs(
            policy.and_then(|p| p.initial_delay_secs),
            DEFAULT_INITIAL_DELAY,
        );
        let max = secs(policy.and_then(|p| p.max_delay_secs), DEFAULT_MAX_DELAY).max(initial);
        Backoff { initial, max }
    }

    /// The wait after `consecutive` failures in a row; `jitter_unit` in
    /// [0, 1) picks how much jitter is taken off.
    pub fn delay(&self, consecutive: u32, jitter_unit: f64) -> Duration {
        if consecutive <= 1 {
            return Duration::ZERO;
        }
        let doublings = (consecutive - 2).min(30);
        let base = self.initial.saturating_mul(1u32 << doublings).min(self.max);
        base.mul_f64(1.0 - JITTER * jitter_unit.clamp(0.0, 1.0))
    }

    /// When the next run of a pod whose latest run ended at `ended_at`,
    /// after `consecutive` failures, may be launched.
    pub fn next_retry_at(
        &self,
        ended_at: UnixMillis,
        consecutive: u32,
        task: &TaskId,
    ) -> UnixMillis {
        let delay = self.delay(consecutive, jitter_unit(task));
        ended_at.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX))
    }
}

/// A number in [0, 1) derived from the task id (FNV-1a), stable across
/// restarts of the scheduler.
pub fn jitter_unit(task: &TaskId) -> f64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in task.to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ids::{InstanceId, JobId};

    #[test]
    fn delays_double_from_the_second_failure_up_to_the_cap() {
        let b = Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5),
        };
        let table = [
            (0, 0),
            (1, 0),
            (2, 1000),
            (3, 2000),
            (4, 4000),
            (5, 5000),
            (40, 5000),
        ];
        for (consecutive, millis) in table {
            assert_eq!(
                b.delay(consecutive, 0.0),
                Duration::from_millis(millis),
                "{consecutive}"
            );
        }
    }

    #[test]
    fn jitter_only_shortens_and_by_at_most_a_fifth() {
        let b = Backoff::of(None);
        for unit in [0.0, 0.3, 0.999] {
            let d = b.delay(3, unit);
            assert!(
                d <= Duration::from_secs(2) && d >= Duration::from_millis(1600),
                "{d:?}"
            );
        }
        let task = TaskId::new(InstanceId::new(JobId("j".into()), 3), 1);
        let u = jitter_unit(&task);
        assert!((0.0..1.0).contains(&u));
        assert_eq!(u, jitter_unit(&task), "deterministic");
    }

    #[test]
    fn the_restart_policy_sets_the_delays() {
        let p = RestartPolicy {
            max_failures: 3,
            initial_delay_secs: Some(2),
            max_delay_secs: Some(1),
        };
        let b = Backoff::of(Some(&p));
        assert_eq!(b.initial, Duration::from_secs(2));
        assert_eq!(b.max, Duration::from_secs(2), "max is never below initial");
        let task = TaskId::new(InstanceId::new(JobId("j".into()), 0), 0);
        assert_eq!(b.next_retry_at(10_000, 1, &task), 10_000);
        assert!(b.next_retry_at(10_000, 2, &task) > 11_000);
    }
}
