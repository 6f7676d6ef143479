//! The engine's delay queue of jobs to plan, keyed by job id, as data: the
//! time comes in, nothing here reads a clock. A job is queued at most once;
//! queueing it again moves its due time as [`super::plan_due`] says (the
//! earliest deadline wins, live updates settle), so duplicate requests
//! collapse and one job is never planned twice at once (kube-rs'
//! `scheduler.rs` does the same for its reconcilers).

use super::plan_due::Due;
use crate::model::ids::JobId;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Jobs waiting to be planned, each with when.
#[derive(Debug, Default)]
pub struct JobQueue {
    /// By due time, then by when they were queued (first come, first
    /// planned among jobs due at the same instant).
    by_time: BTreeMap<(Instant, u64), JobId>,
    queued: HashMap<JobId, Queued>,
    next_seq: u64,
}

#[derive(Debug, Clone, Copy)]
struct Queued {
    key: (Instant, u64),
    due: Due,
}

impl JobQueue {
    /// Queues `job` for the time `due` works out from its queued one (None
    /// if it is not queued). A queued job is updated in place: a launch
    /// round calls this once per task it launches, mostly leaving the time
    /// as it was.
    pub fn schedule(&mut self, job: &JobId, due: impl FnOnce(Option<Due>) -> Due) {
        if let Some(queued) = self.queued.get_mut(job) {
            let next = due(Some(queued.due));
            if next.at != queued.due.at {
                let id = self
                    .by_time
                    .remove(&queued.key)
                    .expect("a queued job has its place in the time order");
                queued.key = (next.at, self.next_seq);
                self.next_seq += 1;
                self.by_time.insert(queued.key, id);
            }
            queued.due = next;
            return;
        }
        let next = due(None);
        let key = (next.at, self.next_seq);
        self.next_seq += 1;
        self.by_time.insert(key, job.clone());
        self.queued.insert(job.clone(), Queued { key, due: next });
    }

    /// When the earliest queued job is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.by_time.keys().next().map(|(at, _)| *at)
    }

    /// Takes the earliest job due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<JobId> {
        let (&key, _) = self.by_time.iter().next()?;
        if key.0 > now {
            return None;
        }
        let job = self.by_time.remove(&key)?;
        self.queued.remove(&job);
        Some(job)
    }

    /// Whether no job is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn job(id: &str) -> JobId {
        JobId::parse(id).unwrap()
    }

    #[test]
    fn the_earliest_deadline_wins_and_a_job_is_queued_once() {
        let t0 = Instant::now();
        let mut queue = JobQueue::default();
        let at = |ms| t0 + Duration::from_millis(ms);
        queue.schedule(&job("a"), |q| Due::deadline(q, at(30)));
        queue.schedule(&job("b"), |q| Due::deadline(q, at(20)));
        queue.schedule(&job("a"), |q| Due::deadline(q, at(10)));
        queue.schedule(&job("a"), |q| Due::deadline(q, at(50)));
        assert_eq!(queue.next_deadline(), Some(at(10)));
        assert_eq!(queue.pop_due(at(5)), None, "nothing due yet");
        assert_eq!(queue.pop_due(at(40)), Some(job("a")));
        assert_eq!(queue.pop_due(at(40)), Some(job("b")));
        assert_eq!(queue.pop_due(at(40)), None, "each job once");
        assert!(queue.is_empty());
    }

    #[test]
    fn jobs_due_at_once_come_out_in_the_order_they_were_queued() {
        let t0 = Instant::now();
        let mut queue = JobQueue::default();
        for id in ["c", "a", "b"] {
            queue.schedule(&job(id), |q| Due::deadline(q, t0));
        }
        let order: Vec<_> = std::iter::from_fn(|| queue.pop_due(t0)).collect();
        assert_eq!(order, [job("c"), job("a"), job("b")]);
    }

    #[test]
    fn live_updates_put_a_queued_plan_off_until_they_settle() {
        let t0 = Instant::now();
        let settle = Duration::from_millis(500);
        let mut queue = JobQueue::default();
        queue.schedule(&job("a"), |q| Due::settled(q, t0, settle));
        queue.schedule(&job("a"), |q| {
            Due::settled(q, t0 + Duration::from_millis(300), settle)
        });
        assert_eq!(queue.next_deadline(), Some(t0 + Duration::from_millis(800)));
    }
}
