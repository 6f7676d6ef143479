//! How long launches take, from the run's launch intent (its ACCEPT sent,
//! after the intent is stored) to its first TASK_RUNNING: the runner sees
//! both, so it keeps the start of each launch in flight here and hands the
//! time taken to the launch histogram when RUNNING arrives.
//!
//! Bounded: a run that ends before it runs is forgotten at its terminal
//! update, and if [`MAX_IN_FLIGHT`] launches are waiting (updates lost
//! for good, a master that never answers), those older than
//! [`FORGET_AFTER`] are dropped; a launch that still finds no room is not
//! timed. The clock is passed in, so this is tested without waiting.

use drover_proto::v1::TaskState;
use drover_proto::TaskStateExt;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Most launches timed at once: more than any launch wave keeps waiting.
pub const MAX_IN_FLIGHT: usize = 1 << 20;
/// A launch waiting this long for RUNNING is no longer waited for.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// The starts of the launches in flight, by Mesos task id.
#[derive(Debug, Default)]
pub struct LaunchClock {
    started: HashMap<String, Instant>,
    max: usize,
}

impl LaunchClock {
    /// A clock that times up to `max` launches at once.
    pub fn new(max: usize) -> Self {
        LaunchClock {
            started: HashMap::new(),
            max,
        }
    }

    /// `task_id` was launched at `now`. A relaunch of the same id (the
    /// engine never reuses one) restarts its time.
    pub fn launched(&mut self, task_id: String, now: Instant) {
        if self.started.len() >= self.max {
            self.started
                .retain(|_, at| now.saturating_duration_since(*at) < FORGET_AFTER);
            if self.started.len() >= self.max {
                return;
            }
        }
        self.started.insert(task_id, now);
    }

    /// An update of `task_id` to `state` came at `now`: the launch's time
    /// when it is the first TASK_RUNNING of a timed launch.
    pub fn updated(&mut self, task_id: &str, state: TaskState, now: Instant) -> Option<Duration> {
        if state == TaskState::TaskRunning {
            let at = self.started.remove(task_id)?;
            return Some(now.saturating_duration_since(at));
        }
        if state.is_terminal() {
            self.started.remove(task_id);
        }
        None
    }

    /// Launches being timed.
    pub fn in_flight(&self) -> usize {
        self.started.len()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn times_a_launch_to_its_first_running_only() {
        let t0 = Instant::now();
        let mut clock = LaunchClock::new(10);
        clock.launched("j-0-0".into(), t0);
        let ms = Duration::from_millis;
        assert_eq!(
            clock.updated("j-0-0", TaskState::TaskStaging, t0 + ms(5)),
            None
        );
        assert_eq!(
            clock.updated("j-0-0", TaskState::TaskStarting, t0 + ms(9)),
            None
        );
        assert_eq!(
            clock.updated("j-0-0", TaskState::TaskRunning, t0 + ms(40)),
            Some(ms(40))
        );
        // A second RUNNING (a health change, a reconciliation) is no launch.
        assert_eq!(
            clock.updated("j-0-0", TaskState::TaskRunning, t0 + ms(90)),
            None
        );
        // Unknown task: nothing.
        assert_eq!(clock.updated("other", TaskState::TaskRunning, t0), None);
        assert_eq!(clock.in_flight(), 0);
    }

    #[test]
    fn a_run_that_ends_before_running_is_forgotten() {
        let t0 = Instant::now();
        let mut clock = LaunchClock::new(10);
        clock.launched("j-1-0".into(), t0);
        assert_eq!(clock.updated("j-1-0", TaskState::TaskFailed, t0), None);
        assert_eq!(clock.in_flight(), 0);
    }

    #[test]
    fn bounded_dropping_the_oldest_past_the_forget_time() {
        let t0 = Instant::now();
        let mut clock = LaunchClock::new(2);
        clock.launched("old".into(), t0);
        clock.launched("new".into(), t0 + FORGET_AFTER);
        // Full, nothing old enough: not timed.
        clock.launched("none".into(), t0 + Duration::from_secs(1));
        assert_eq!(clock.in_flight(), 2);
        // Full, "old" is past the forget time: dropped for the newcomer.
        let later = t0 + FORGET_AFTER + Duration::from_secs(1);
        clock.launched("later".into(), later);
        assert_eq!(clock.in_flight(), 2);
        assert_eq!(clock.updated("old", TaskState::TaskRunning, later), None);
        assert!(clock
            .updated("later", TaskState::TaskRunning, later)
            .is_some());
    }
}
