//! Titus' batch runtime limit: a batch run that has been running for
//! longer than `runtime_limit_secs` is killed, with
//! [`crate::model::run::RUNTIME_LIMIT_REASON`]; whether it is retried is
//! the pod's `retry_on_runtime_limit` (see [`crate::model::outcome`]). The
//! clock starts when the run reports RUNNING, as Titus counts it.

use crate::model::time::UnixMillis;
use std::time::Duration;

/// Where a run stands against its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeVerdict {
    /// No limit, or the run has not started: nothing to do.
    Unlimited,
    /// Within the limit; look again after this long.
    Within(Duration),
    /// Over the limit: kill it.
    Exceeded,
}

/// The verdict for a run that started at `started_at` under `limit_secs`.
pub fn check(
    limit_secs: Option<u32>,
    started_at: Option<UnixMillis>,
    now: UnixMillis,
) -> RuntimeVerdict {
    let (Some(limit), Some(started)) = (limit_secs.filter(|l| *l > 0), started_at) else {
        return RuntimeVerdict::Unlimited;
    };
    let limit_ms = i64::from(limit) * 1000;
    let ran = now.saturating_sub(started);
    if ran >= limit_ms {
        RuntimeVerdict::Exceeded
    } else {
        RuntimeVerdict::Within(Duration::from_millis((limit_ms - ran) as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_are_killed_once_they_pass_their_limit() {
        let table = [
            (None, Some(0), 99_000, RuntimeVerdict::Unlimited),
            (Some(0), Some(0), 99_000, RuntimeVerdict::Unlimited),
            (Some(10), None, 99_000, RuntimeVerdict::Unlimited),
            (
                Some(10),
                Some(1_000),
                4_000,
                RuntimeVerdict::Within(Duration::from_secs(7)),
            ),
            (Some(10), Some(1_000), 11_000, RuntimeVerdict::Exceeded),
            (Some(10), Some(1_000), 50_000, RuntimeVerdict::Exceeded),
        ];
        for (limit, started, now, want) in table {
            assert_eq!(
                check(limit, started, now),
                want,
                "{limit:?} {started:?} {now}"
            );
        }
    }
}
