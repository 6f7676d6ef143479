//! SLA ordering of pending runs: placement takes tasks in this order, so
//! when offers are short, the higher `sla.priority` wins. Within a
//! priority, older jobs first (first come, first served), then instance
//! and run order so the result is total and stable.

use crate::ids::TaskId;
use crate::store::UnixMillis;
use std::cmp::Reverse;

/// What ordering needs to know about a pending run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingKey<'a> {
    /// The job's `sla.priority` (higher first).
    pub priority: u32,
    /// When the job was created (older first).
    pub job_created_at: UnixMillis,
    /// The run.
    pub task_id: &'a TaskId,
}

/// Sorts `pending` into placement order by each run's `key`.
pub fn order<T>(pending: &mut [T], key: impl Fn(&T) -> PendingKey<'_>) {
    pending.sort_by(|a, b| {
        let (a, b) = (key(a), key(b));
        (Reverse(a.priority), a.job_created_at, a.task_id).cmp(&(
            Reverse(b.priority),
            b.job_created_at,
            b.task_id,
        ))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{InstanceId, JobId};

    fn run(priority: u32, created: i64, job: &str, instance: u32) -> (u32, i64, TaskId) {
        let task_id = TaskId::new(InstanceId::new(JobId(job.into()), instance), 0);
        (priority, created, task_id)
    }

    #[test]
    fn higher_priority_then_older_jobs_go_first() {
        let mut list = vec![
            run(0, 1, "a", 0),
            run(5, 9, "late", 1),
            run(5, 9, "late", 0),
            run(5, 2, "early", 0),
            run(1, 0, "mid", 0),
        ];
        order(&mut list, |(priority, created, task_id)| PendingKey {
            priority: *priority,
            job_created_at: *created,
            task_id,
        });
        let names: Vec<_> = list.iter().map(|r| r.2.instance.pod_name()).collect();
        assert_eq!(names, ["early-0", "late-0", "late-1", "mid-0", "a-0"]);
    }
}
