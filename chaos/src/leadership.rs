//! Is there a leader at work? A replica is the *working leader* when it
//! says it leads (`GET /api/v1/leader`: `role` `leader`), its subscription
//! is up (`drover_subscription_state` 3 on its `/metrics`) and it is
//! launching (`drover_launches_total` above 0) or has nothing to launch
//! (`drover_pending_tasks` 0). Pure: the probe reads, this decides; and
//! the time with no working leader is summed here, as are the failover
//! times' percentiles.

use std::time::{Duration, Instant};

/// What a leader's `/metrics` says of its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaderMetrics {
    pub subscription_state: u64,
    pub launches: u64,
    pub pending_tasks: u64,
}

/// Reads the three series from a Prometheus text page (absent: 0).
pub fn parse_metrics(text: &str) -> LeaderMetrics {
    let mut m = LeaderMetrics::default();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(' ') else {
            continue;
        };
        let value = value.trim().parse::<f64>().unwrap_or(0.0);
        // Counts only; a negative or fractional reading is not one.
        let value = if value.is_finite() && value >= 0.0 {
            value as u64
        } else {
            0
        };
        match name {
            "drover_subscription_state" => m.subscription_state = value,
            "drover_launches_total" => m.launches = value,
            "drover_pending_tasks" => m.pending_tasks = value,
            _ => {}
        }
    }
    m
}

/// The subscription gauge's value for "subscribed".
const SUBSCRIBED: u64 = 3;

impl LeaderMetrics {
    /// Subscribed, and launching or with nothing to launch.
    pub fn is_working(&self) -> bool {
        self.subscription_state == SUBSCRIBED && (self.launches > 0 || self.pending_tasks == 0)
    }
}

/// Sums the time without a working leader, from probes in time order.
#[derive(Debug, Default)]
pub struct Leaderless {
    last: Option<(Instant, bool)>,
    total: Duration,
}

impl Leaderless {
    /// A probe at `now` found a working leader (`working`) or not. The
    /// time since the previous probe counts as leaderless when either
    /// probe found none.
    pub fn on_probe(&mut self, now: Instant, working: bool) {
        if let Some((then, was)) = self.last {
            if !working || !was {
                self.total += now.saturating_duration_since(then);
            }
        }
        self.last = Some((now, working));
    }

    pub fn total(&self) -> Duration {
        self.total
    }
}

/// The `p`th percentile (0..=100) of `samples`, nearest rank; None when
/// there are none.
pub fn percentile(samples: &[Duration], p: u32) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let n = sorted.len();
    let rank = (usize::try_from(p).unwrap_or(100) * n)
        .div_ceil(100)
        .clamp(1, n);
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_leader_is_working_once_subscribed_and_launching_or_idle() {
        let page = "# HELP x\ndrover_subscription_state 3\ndrover_launches_total 0\ndrover_pending_tasks 12\n";
        let m = parse_metrics(page);
        assert_eq!(
            m,
            LeaderMetrics {
                subscription_state: 3,
                launches: 0,
                pending_tasks: 12
            }
        );
        assert!(!m.is_working(), "subscribed but not launching yet");
        assert!(
            parse_metrics("drover_subscription_state 3\ndrover_launches_total 4\n").is_working()
        );
        assert!(parse_metrics("drover_subscription_state 3\n").is_working());
        assert!(!parse_metrics("drover_subscription_state 2\n").is_working());
    }

    #[test]
    fn leaderless_time_is_every_gap_that_touches_a_probe_without_a_leader() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut l = Leaderless::default();
        l.on_probe(t0, true);
        l.on_probe(t0 + ms(100), true);
        l.on_probe(t0 + ms(200), false);
        l.on_probe(t0 + ms(300), false);
        l.on_probe(t0 + ms(400), true);
        l.on_probe(t0 + ms(500), true);
        assert_eq!(l.total(), ms(300));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s: Vec<Duration> = (1..=100).map(Duration::from_secs).collect();
        assert_eq!(percentile(&s, 50), Some(Duration::from_secs(50)));
        assert_eq!(percentile(&s, 99), Some(Duration::from_secs(99)));
        assert_eq!(percentile(&s[..1], 99), Some(Duration::from_secs(1)));
        assert_eq!(percentile(&[], 50), None);
    }
}
