//! The statistics of a launch: percentiles of per-task latencies and the
//! throughput from the first create to the last task RUNNING.

/// The `p`-th percentile (0..=100) of `sorted` by nearest rank; 0 when empty.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Seconds since the epoch: the clock agent-sim stamps updates with.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What one launch measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Launch {
    /// Tasks that reached RUNNING.
    pub tasks: usize,
    /// Seconds from create to the last RUNNING.
    pub makespan: f64,
    /// Tasks per second over the makespan.
    pub per_sec: f64,
    /// Median create-to-RUNNING, seconds.
    pub p50: f64,
    /// 99th percentile create-to-RUNNING, seconds.
    pub p99: f64,
}

impl Launch {
    /// From the tasks' RUNNING times and the create time (same clock).
    pub fn from_times(created: f64, running: &[f64]) -> Launch {
        let mut latencies: Vec<f64> = running.iter().map(|t| (t - created).max(0.0)).collect();
        latencies.sort_by(f64::total_cmp);
        let makespan = latencies.last().copied().unwrap_or(0.0);
        Launch {
            tasks: latencies.len(),
            makespan,
            per_sec: if makespan > 0.0 {
                latencies.len() as f64 / makespan
            } else {
                0.0
            },
            p50: percentile(&latencies, 50.0),
            p99: percentile(&latencies, 99.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn launch_throughput_is_tasks_over_makespan() {
        let l = Launch::from_times(100.0, &[101.0, 102.0, 104.0, 100.5]);
        assert_eq!(l.tasks, 4);
        assert_eq!(l.makespan, 4.0);
        assert_eq!(l.per_sec, 1.0);
        assert_eq!(l.p50, 1.0);
        assert_eq!(l.p99, 4.0);
    }
}
