//! Bounded polling: ask again every [`POLL_INTERVAL`] until the answer is
//! there or the limit has passed. Tests wait for a state this way, never by
//! sleeping a fixed time and hoping.

use std::future::Future;
use std::time::Duration;

/// How often [`wait_for`] asks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Polls `check` until it returns `Some`, for at most `limit`; `None` when
/// the limit passed first. `check` runs at least once.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
