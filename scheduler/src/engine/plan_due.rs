//! When a queued job is planned next, as data.
//!
//! Most reasons to plan a job name a time: now (a job was created, an
//! update ended a run), or later (a retry's backoff). Those are deadlines,
//! and the earliest one wins. A live status update (STARTING, RUNNING, a
//! health change) instead only asks that the job be looked at once its
//! burst of updates is over: such updates rarely change a plan, and a
//! launch of 10,000 instances streams its updates for a second or more.
//! Planned at a fixed delay after the first of them, such a job was
//! planned (all its runs loaded and compared) two or three times during
//! its own launch, holding the runner from launching the next job. So a
//! live update moves the due time to `settle` after itself, and a stream
//! that never pauses is still planned [`SETTLE_LIMIT`] settles after its
//! first update.
//!
//! A deadline later than that (a launched run's timeout, queued when it
//! was launched) gives way to the settling plan, and bounds how far live
//! updates may put it off: a plan works out when its job must be looked
//! at again (`requeue_after`), so the later deadline is not lost. Were it
//! kept as it was, every job would be planned a fixed `settle` after its
//! first STARTING, during its own launch.

use std::time::{Duration, Instant};

/// How many settle periods a steady stream of live updates may put a
/// job's plan off.
pub const SETTLE_LIMIT: u32 = 4;

/// A queued job's next plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// When.
    pub at: Instant,
    /// The latest live updates may put it off to: `at` itself for a
    /// deadline, which is never put off.
    pub latest: Instant,
}

impl Due {
    /// Planned at `at` or before.
    pub fn deadline(queued: Option<Due>, at: Instant) -> Due {
        let at = queued.map_or(at, |q| q.at.min(at));
        Due { at, latest: at }
    }

    /// A live update arrived at `now`: planned once updates pause for
    /// `settle`, but no later than the queued plan allows and
    /// [`SETTLE_LIMIT`] settles from now.
    pub fn settled(queued: Option<Due>, now: Instant, settle: Duration) -> Due {
        let limit = now + settle * SETTLE_LIMIT;
        let latest = queued.map_or(limit, |q| q.latest.min(limit));
        Due {
            at: (now + settle).min(latest),
            latest,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTLE: Duration = Duration::from_millis(500);

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn a_burst_of_live_updates_plans_once_it_pauses() {
        let t0 = Instant::now();
        let mut due = Due::settled(None, t0, SETTLE);
        assert_eq!(due.at, ms(t0, 500));
        due = Due::settled(Some(due), ms(t0, 300), SETTLE);
        due = Due::settled(Some(due), ms(t0, 700), SETTLE);
        assert_eq!(due.at, ms(t0, 1200), "put off by each update");
    }

    #[test]
    fn a_stream_that_never_pauses_is_still_planned() {
        let t0 = Instant::now();
        let mut due = Due::settled(None, t0, SETTLE);
        for at in (100..5000).step_by(100) {
            due = Due::settled(Some(due), ms(t0, at), SETTLE);
        }
        assert_eq!(due.at, ms(t0, 2000), "four settles after the first");
    }

    #[test]
    fn a_deadline_is_kept_and_never_put_off() {
        let t0 = Instant::now();
        let settling = Due::settled(None, t0, SETTLE);
        let now = Due::deadline(Some(settling), t0);
        assert_eq!(now.at, t0, "a terminal update plans at once");
        assert_eq!(
            Due::settled(Some(now), ms(t0, 10), SETTLE).at,
            t0,
            "a later live update does not move it"
        );
        let later = Due::deadline(Some(settling), ms(t0, 30_000));
        assert_eq!(later.at, ms(t0, 500), "the sooner of the two");
        assert_eq!(
            Due::settled(Some(later), ms(t0, 400), SETTLE).at,
            ms(t0, 500),
            "no longer put off"
        );
    }

    #[test]
    fn a_later_deadline_gives_way_to_settling_but_bounds_it() {
        let t0 = Instant::now();
        let launch_timeout = Due::deadline(None, ms(t0, 300_000));
        let mut due = Due::settled(Some(launch_timeout), t0, SETTLE);
        assert_eq!(due.at, ms(t0, 500));
        due = Due::settled(Some(due), ms(t0, 400), SETTLE);
        assert_eq!(due.at, ms(t0, 900), "put off like any settling plan");
        let backoff = Due::deadline(None, ms(t0, 700));
        let mut due = Due::settled(Some(backoff), t0, SETTLE);
        assert_eq!(due.at, ms(t0, 500));
        due = Due::settled(Some(due), ms(t0, 400), SETTLE);
        assert_eq!(due.at, ms(t0, 700), "but never past the deadline");
    }
}
