//! Deadlines from durations a peer chose. Values a framework sends (failover
//! timeouts, grace periods, `sleep` arguments, refuse filters) may be far
//! larger than an `Instant` can hold, so every timer is armed through here.

use std::time::{Duration, Instant};

/// The longest timer the simulator arms: about a century, which is "never"
/// for any run while staying far inside `Instant`'s range.
pub const MAX_TIMER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `now + d`, capped at [`MAX_TIMER`] so a peer's huge value cannot overflow.
pub fn after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d.min(MAX_TIMER)).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_duration_is_capped_not_an_overflow() {
        let now = Instant::now();
        assert_eq!(after(now, Duration::MAX), now + MAX_TIMER);
        assert_eq!(
            after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}
