//! Jittered exponential backoff for re-subscription: how long to wait before
//! attempt `n`. Pure: the random source is passed in, so a seeded RNG makes
//! every delay reproducible in tests.

use rand::Rng;
use std::time::Duration;

/// Backoff bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry (before jitter). Default 250 ms: a
    /// master that just dropped us is usually back at once.
    pub initial: Duration,
    /// The cap. Default 15 s, the cap the Mesos docs suggest for
    /// re-subscription (reference 3.6).
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(15),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0-based): `initial * 2^attempt`
    /// capped at `max`, then drawn uniformly from its upper half, so that many
    /// schedulers dropped together do not come back together.
    pub fn delay(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let factor = 1u32 << attempt.min(20);
        let ceiling = self.initial.saturating_mul(factor).min(self.max);
        let floor = ceiling / 2;
        let span = ceiling.saturating_sub(floor).as_micros() as u64;
        let jitter = if span == 0 {
            0
        } else {
            rng.random_range(0..=span)
        };
        floor + Duration::from_micros(jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, SeedableRng};

    #[test]
    fn delays_grow_then_stay_under_the_cap() {
        let backoff = Backoff::default();
        let mut rng = SmallRng::seed_from_u64(7);
        let mut last_ceiling = Duration::ZERO;
        for attempt in 0..30 {
            let delay = backoff.delay(attempt, &mut rng);
            let ceiling = backoff
                .initial
                .saturating_mul(1 << attempt.min(20))
                .min(backoff.max);
            assert!(
                delay <= ceiling,
                "attempt {attempt}: {delay:?} > {ceiling:?}"
            );
            assert!(
                delay >= ceiling / 2,
                "attempt {attempt}: {delay:?} < half of {ceiling:?}"
            );
            assert!(ceiling >= last_ceiling);
            last_ceiling = ceiling;
        }
        assert_eq!(last_ceiling, backoff.max);
    }

    #[test]
    fn the_same_seed_gives_the_same_delays() {
        let backoff = Backoff::default();
        let a: Vec<_> = {
            let mut rng = SmallRng::seed_from_u64(42);
            (0..10).map(|n| backoff.delay(n, &mut rng)).collect()
        };
        let b: Vec<_> = {
            let mut rng = SmallRng::seed_from_u64(42);
            (0..10).map(|n| backoff.delay(n, &mut rng)).collect()
        };
        assert_eq!(a, b);
    }
}
