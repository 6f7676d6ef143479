//! SLA ordering of pending runs: placement takes tasks in this order, so
//! when offers are short, the higher `sla.priority` wins. Within a
//! priority, older jobs first (first come, first served), then job id so
//! the order is total and stable; within a job, its runs in instance order
//! (the order its plan lists them, kept by the engine's pending runs).

use crate::model::ids::JobId;
use crate::model::time::UnixMillis;
use std::cmp::Reverse;

/// A job's place in the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlaKey {
    /// The job's `sla.priority` (higher first).
    pub priority: u32,
    /// When the job was created (older first).
    pub created_at: UnixMillis,
}

/// Sorts `jobs` into placement order by each one's key and id.
pub fn order<T>(jobs: &mut [T], key: impl Fn(&T) -> (SlaKey, &JobId)) {
    jobs.sort_by(|a, b| {
        let ((a, a_id), (b, b_id)) = (key(a), key(b));
        (Reverse(a.priority), a.created_at, a_id).cmp(&(Reverse(b.priority), b.created_at, b_id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_priority_then_older_jobs_go_first() {
        let job = |priority, created_at, id: &str| {
            let key = SlaKey {
                priority,
                created_at,
            };
            (key, JobId(id.into()))
        };
        let mut list = vec![
            job(0, 1, "a"),
            job(5, 9, "late"),
            job(5, 2, "early"),
            job(1, 0, "mid"),
            job(5, 9, "also-late"),
        ];
        order(&mut list, |(key, id)| (*key, id));
        let names: Vec<_> = list.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(names, ["early", "also-late", "late", "mid", "a"]);
    }
}
