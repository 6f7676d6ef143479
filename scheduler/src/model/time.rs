//! Wall-clock time as the model records it: milliseconds since the Unix
//! epoch, passed in by whoever reads the clock (never read here).

use std::time::Duration;

/// Milliseconds since the Unix epoch.
pub type UnixMillis = i64;

/// `d` in whole milliseconds, saturating (a `Duration` can exceed `i64`).
pub fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
