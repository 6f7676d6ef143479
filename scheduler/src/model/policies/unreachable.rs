//! What happens to a run whose agent the master cannot reach (Mesos'
//! partition-aware TASK_UNREACHABLE, Marathon's `unreachableStrategy`).
//! An unreachable task may still be running, and may still finish: its
//! agent is cut off, not known dead. So it is waited for:
//!
//! - `inactive_after_secs`: how long before a replacement starts beside
//!   it. Services: 5 minutes by default, a short partition costs no
//!   restart. Batch: never by default, a task that may still finish is
//!   not run again unless the job asks for it.
//! - `expunge_after_secs`: how long before the run is given up (recorded
//!   LOST, and replaced if it was not yet). Services 10 minutes, batch 1
//!   hour by default.
//!
//! A run that comes back after being replaced is killed if it is alive;
//! if it finished, its result is recorded, and a batch instance that
//! succeeded is done, its replacement killed (the model's run rule and
//! [`crate::model::outcome`]).

use crate::model::spec::JobType;
use crate::model::time::UnixMillis;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A job's unreachable strategy; absent fields take the job type's default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnreachablePolicy {
    /// Seconds an unreachable run is waited for before a replacement starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inactive_after_secs: Option<u32>,
    /// Seconds before an unreachable run is given up and recorded LOST.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expunge_after_secs: Option<u32>,
}

/// A service's default wait before a replacement starts.
pub const SERVICE_INACTIVE_AFTER_SECS: u32 = 5 * 60;
/// A service's default wait before an unreachable run is given up.
pub const SERVICE_EXPUNGE_AFTER_SECS: u32 = 10 * 60;
/// A batch job's default wait before an unreachable run is given up (and
/// only then replaced).
pub const BATCH_EXPUNGE_AFTER_SECS: u32 = 60 * 60;

/// The effective waits of a policy for a job type, in milliseconds; the
/// replacement never starts after the give-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnreachableWaits {
    /// Replacement after this long.
    pub inactive_after: i64,
    /// Given up after this long.
    pub expunge_after: i64,
}

impl UnreachablePolicy {
    /// The waits `policy` (or the defaults) gives a job of `job_type`.
    pub fn waits(policy: Option<&Self>, job_type: JobType) -> UnreachableWaits {
        let policy = policy.copied().unwrap_or_default();
        let expunge = policy.expunge_after_secs.unwrap_or(match job_type {
            JobType::Service => SERVICE_EXPUNGE_AFTER_SECS,
            JobType::Batch => BATCH_EXPUNGE_AFTER_SECS,
        });
        let inactive = policy.inactive_after_secs.unwrap_or(match job_type {
            JobType::Service => SERVICE_INACTIVE_AFTER_SECS,
            JobType::Batch => expunge,
        });
        UnreachableWaits {
            inactive_after: i64::from(inactive.min(expunge)) * 1000,
            expunge_after: i64::from(expunge) * 1000,
        }
    }
}

/// What to do about a run unreachable since `since`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnreachableVerdict {
    /// Wait; look again after this long.
    Wait(Duration),
    /// Start a replacement beside it; give it up after this long.
    Replace(Duration),
    /// Give it up: record it LOST.
    GiveUp,
}

/// The verdict for a run unreachable since `since`, at `now`.
pub fn verdict(waits: UnreachableWaits, since: UnixMillis, now: UnixMillis) -> UnreachableVerdict {
    let away = now.saturating_sub(since).max(0);
    let left = |deadline: i64| Duration::from_millis((deadline - away) as u64);
    if away >= waits.expunge_after {
        UnreachableVerdict::GiveUp
    } else if away >= waits.inactive_after {
        UnreachableVerdict::Replace(left(waits.expunge_after))
    } else {
        UnreachableVerdict::Wait(left(waits.inactive_after))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(inactive: Option<u32>, expunge: Option<u32>) -> UnreachablePolicy {
        UnreachablePolicy {
            inactive_after_secs: inactive,
            expunge_after_secs: expunge,
        }
    }

    #[test]
    fn defaults_wait_minutes_for_services_and_never_replace_batch_runs_early() {
        let service = UnreachablePolicy::waits(None, JobType::Service);
        assert_eq!(service.inactive_after, 300_000);
        assert_eq!(service.expunge_after, 600_000);
        let batch = UnreachablePolicy::waits(None, JobType::Batch);
        assert_eq!(batch.inactive_after, batch.expunge_after);
        assert_eq!(batch.expunge_after, 3_600_000);
        let asked = UnreachablePolicy::waits(Some(&policy(Some(10), None)), JobType::Batch);
        assert_eq!(asked.inactive_after, 10_000);
        let clamped = UnreachablePolicy::waits(Some(&policy(Some(90), Some(30))), JobType::Service);
        assert_eq!(
            clamped.inactive_after, 30_000,
            "never replaced after give-up"
        );
    }

    #[test]
    fn an_unreachable_run_is_waited_for_then_replaced_then_given_up() {
        let waits = UnreachablePolicy::waits(Some(&policy(Some(10), Some(30))), JobType::Service);
        let table = [
            (1_000, UnreachableVerdict::Wait(Duration::from_secs(9))),
            (11_000, UnreachableVerdict::Replace(Duration::from_secs(19))),
            (31_000, UnreachableVerdict::GiveUp),
            (99_000, UnreachableVerdict::GiveUp),
            // A clock behind the unreachable time waits the whole time.
            (-5_000, UnreachableVerdict::Wait(Duration::from_secs(10))),
        ];
        for (now, want) in table {
            assert_eq!(verdict(waits, 1_000, 1_000 + now), want, "at {now}");
        }
        let zero = UnreachablePolicy::waits(Some(&policy(Some(0), Some(0))), JobType::Service);
        assert_eq!(verdict(zero, 5, 5), UnreachableVerdict::GiveUp);
    }
}
