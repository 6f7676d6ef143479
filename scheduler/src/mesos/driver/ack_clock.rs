//! How long acknowledgements take: from a status update taken off the
//! master's stream (the driver loop, which the subscription task feeds
//! through a short queue) to the master's answer to its ACKNOWLEDGE (the
//! sender). Both ends name the update by its uuid, so the driver records
//! when each arrived and the sender looks it up when the answer comes.
//! This spans what the scheduler does with an update (the engine's
//! backlog, the store's commit, the call queue) and the master's answer,
//! which is what an agent waiting to forward its next update sees.
//!
//! An update redelivered before it was acknowledged (its acknowledgement
//! refused, or dropped with a replaced connection) is timed from its
//! first arrival: the agent waited all that time. Bounded: past
//! [`MAX_WAITING`], entries older than
//! [`FORGET_AFTER`] go, and an update that still finds no room is not
//! timed. Times are passed in.

use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most updates timed at once.
pub const MAX_WAITING: usize = 1 << 20;
/// An update unacknowledged this long is no longer timed.
pub const FORGET_AFTER: Duration = Duration::from_secs(600);

/// Arrivals of the updates awaiting acknowledgement, by uuid; shared by
/// the driver loop and the sender.
#[derive(Debug)]
pub struct AckClock {
    arrived: Mutex<HashMap<Bytes, Instant>>,
    max: usize,
}

impl Default for AckClock {
    fn default() -> Self {
        AckClock::new(MAX_WAITING)
    }
}

impl AckClock {
    /// A clock timing up to `max` updates at once.
    pub fn new(max: usize) -> Self {
        AckClock {
            arrived: Mutex::default(),
            max,
        }
    }

    /// An update with `uuid` arrived at `now`.
    pub fn arrived(&self, uuid: Bytes, now: Instant) {
        let mut arrived = self.arrived.lock().unwrap_or_else(|e| e.into_inner());
        if arrived.len() >= self.max && !arrived.contains_key(&uuid) {
            arrived.retain(|_, at| now.saturating_duration_since(*at) < FORGET_AFTER);
            if arrived.len() >= self.max {
                return;
            }
        }
        arrived.entry(uuid).or_insert(now);
    }

    /// The master answered the ACKNOWLEDGE of `uuid` at `now`: the time
    /// since its update arrived, if it was timed.
    pub fn answered(&self, uuid: &[u8], now: Instant) -> Option<Duration> {
        let at = self
            .arrived
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(uuid)?;
        Some(now.saturating_duration_since(at))
    }

    /// Updates being timed.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.arrived.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_from_the_first_arrival_to_the_answer() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let clock = AckClock::new(10);
        clock.arrived(Bytes::from_static(b"u1"), t0);
        // Redelivered before it was acknowledged: the first arrival counts.
        clock.arrived(Bytes::from_static(b"u1"), t0 + ms(50));
        assert_eq!(clock.answered(b"u1", t0 + ms(80)), Some(ms(80)));
        assert_eq!(clock.answered(b"u1", t0 + ms(90)), None);
        assert_eq!(clock.waiting(), 0);
    }

    #[test]
    fn bounded() {
        let t0 = Instant::now();
        let clock = AckClock::new(1);
        clock.arrived(Bytes::from_static(b"a"), t0);
        clock.arrived(Bytes::from_static(b"b"), t0);
        assert_eq!(clock.waiting(), 1);
        let later = t0 + FORGET_AFTER;
        clock.arrived(Bytes::from_static(b"c"), later);
        assert_eq!(clock.answered(b"a", later), None);
        assert_eq!(clock.answered(b"c", later), Some(Duration::ZERO));
    }
}
