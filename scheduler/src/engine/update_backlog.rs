//! Status updates received and not yet stored, in arrival order.
//!
//! They are kept as the chunks the session delivered them in, not one by
//! one in a ring buffer. In a 100,000-task launch the backlog holds up to
//! hundreds of thousands of `TaskUpdate`s (128 bytes each, and their strings): a
//! single buffer grew by copying all of them, was shrunk once drained and
//! grew again in the next wave, and each growth faulted in fresh zeroed
//! pages; that was 6% of the runner's time (perf). A chunk is moved in
//! whole and freed whole, and a batch taken from the front is, most of the
//! time, the first chunk itself plus the next ones appended.

use crate::model::task_update::TaskUpdate;
use std::collections::VecDeque;
use std::time::Instant;

/// The backlog.
#[derive(Debug, Default)]
pub struct UpdateBacklog {
    chunks: VecDeque<Vec<TaskUpdate>>,
    len: usize,
    since: Option<Instant>,
    urgent: bool,
}

impl UpdateBacklog {
    /// Adds `statuses`, which arrived at `now`, after those already here.
    pub fn push(&mut self, statuses: Vec<TaskUpdate>, now: Instant) {
        if statuses.is_empty() {
            return;
        }
        if self.len == 0 {
            self.since = Some(now);
        }
        self.len += statuses.len();
        self.chunks.push_back(statuses);
    }

    /// How many updates wait.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// When the oldest waiting update arrived. What is left after a
    /// [`UpdateBacklog::take`] keeps this time, and so is due at once.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// Notes that an update waiting here must be stored before the next
    /// placement round (see [`UpdateBacklog::is_urgent`]).
    pub fn mark_urgent(&mut self) {
        self.urgent = self.len > 0;
    }

    /// Whether an update waiting here may cancel a launch a round would
    /// make: a run given up that has in fact succeeded. The mark stays until
    /// the backlog is empty, as it does not say which update it was.
    pub fn is_urgent(&self) -> bool {
        self.urgent
    }

    /// Takes the oldest `n` updates (all, if fewer wait), oldest first.
    pub fn take(&mut self, n: usize) -> Vec<TaskUpdate> {
        let mut batch: Vec<TaskUpdate> = Vec::new();
        while batch.len() < n {
            let Some(mut chunk) = self.chunks.pop_front() else {
                break;
            };
            let room = n - batch.len();
            if chunk.len() > room {
                let rest = chunk.split_off(room);
                self.chunks.push_front(rest);
            }
            if batch.is_empty() {
                batch = chunk;
            } else {
                batch.append(&mut chunk);
            }
        }
        self.len -= batch.len();
        if self.len == 0 {
            self.since = None;
            self.urgent = false;
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::v1::TaskState;
    use std::time::Duration;

    fn statuses(ids: std::ops::Range<u32>) -> Vec<TaskUpdate> {
        ids.map(|i| TaskUpdate {
            task_id: format!("t{i}"),
            state: TaskState::TaskRunning,
            reason: None,
            message: None,
            healthy: None,
            ready: None,
            agent_id: None,
            timestamp: None,
            unreachable_since: None,
            image: None,
            data: None,
            uuid: None,
        })
        .collect()
    }

    fn ids(batch: &[TaskUpdate]) -> Vec<String> {
        batch.iter().map(|s| s.task_id.clone()).collect()
    }

    #[test]
    fn batches_keep_arrival_order_across_and_within_chunks() {
        let t0 = Instant::now();
        let mut backlog = UpdateBacklog::default();
        backlog.push(statuses(0..3), t0);
        backlog.push(Vec::new(), t0);
        backlog.push(statuses(3..4), t0);
        backlog.push(statuses(4..9), t0);
        assert_eq!(backlog.len(), 9);
        assert_eq!(ids(&backlog.take(2)), ["t0", "t1"], "part of a chunk");
        assert_eq!(
            ids(&backlog.take(4)),
            ["t2", "t3", "t4", "t5"],
            "a chunk's rest, a whole chunk, part of the next"
        );
        assert_eq!(backlog.len(), 3);
        assert_eq!(
            ids(&backlog.take(100)),
            ["t6", "t7", "t8"],
            "all that is left"
        );
        assert!(backlog.is_empty());
        assert!(backlog.take(5).is_empty());
    }

    #[test]
    fn the_oldest_arrival_time_stays_until_the_backlog_is_empty() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(5);
        let mut backlog = UpdateBacklog::default();
        assert_eq!(backlog.since(), None);
        backlog.push(Vec::new(), t0);
        assert_eq!(backlog.since(), None, "nothing arrived");
        backlog.push(statuses(0..2), t0);
        backlog.push(statuses(2..3), t1);
        assert_eq!(backlog.since(), Some(t0));
        backlog.take(1);
        assert_eq!(backlog.since(), Some(t0), "the rest is as old as it was");
        backlog.take(2);
        assert_eq!(backlog.since(), None);
        backlog.push(statuses(3..4), t1);
        assert_eq!(backlog.since(), Some(t1));
    }

    #[test]
    fn the_urgent_mark_stays_until_the_backlog_is_empty() {
        let t0 = Instant::now();
        let mut backlog = UpdateBacklog::default();
        backlog.mark_urgent();
        assert!(!backlog.is_urgent(), "nothing waits to be urgent");
        backlog.push(statuses(0..3), t0);
        backlog.mark_urgent();
        backlog.take(2);
        assert!(backlog.is_urgent());
        backlog.take(1);
        assert!(!backlog.is_urgent());
    }
}
