//! The runs waiting for a host, kept per job in the order placement takes
//! them ([`super::policies::sla_order`]): jobs by SLA, each job's runs in
//! its plan's order (instance order).
//!
//! A plan replaces its job's runs whole, and a placement round takes them
//! all and gives back the ones it could not place. Kept per job, neither
//! compares run ids: a 10,000-run job's plan is one map entry rather than
//! 10,000 ordered inserts keyed by a 36-byte job id, and a round sorts the
//! handful of jobs instead of every run. (In a 20,000-task launch the
//! inserts and the sort were 45 of the runner's 160-odd perf samples
//! before its first ACCEPT; now under 2.)

use crate::model::ids::JobId;
use crate::model::policies::sla_order::{self, SlaKey};
use std::collections::HashMap;

/// What the queue needs to know about a waiting run.
pub trait WaitingRun {
    /// Its job.
    fn job(&self) -> &JobId;
    /// Its job's place in the SLA order (the same for every run of a job).
    fn sla(&self) -> SlaKey;
}

/// The waiting runs, per job.
#[derive(Debug)]
pub struct PendingRuns<T> {
    jobs: HashMap<JobId, JobRuns<T>>,
    len: usize,
}

#[derive(Debug)]
struct JobRuns<T> {
    sla: SlaKey,
    runs: Vec<T>,
}

impl<T> Default for PendingRuns<T> {
    fn default() -> Self {
        PendingRuns {
            jobs: HashMap::new(),
            len: 0,
        }
    }
}

impl<T: WaitingRun> PendingRuns<T> {
    /// Runs waiting, over every job.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no run waits.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Makes `runs` (in the order placement is to take them) the waiting
    /// runs of `job`, in place of any it had.
    pub fn set_job(&mut self, job: &JobId, runs: Vec<T>) {
        self.remove_job(job);
        let Some(first) = runs.first() else {
            return;
        };
        debug_assert!(runs.iter().all(|r| r.job() == job));
        let sla = first.sla();
        self.len += runs.len();
        self.jobs.insert(job.clone(), JobRuns { sla, runs });
    }

    /// Forgets the waiting runs of `job`.
    pub fn remove_job(&mut self, job: &JobId) {
        if let Some(old) = self.jobs.remove(job) {
            self.len -= old.runs.len();
        }
    }

    /// Takes every waiting run, in placement order. Give back what is not
    /// placed with [`PendingRuns::put_back`], in the order taken.
    pub fn take_in_sla_order(&mut self) -> Vec<T> {
        let mut jobs: Vec<_> = self.jobs.iter_mut().collect();
        sla_order::order(&mut jobs, |(job, runs)| (runs.sla, *job));
        let mut taken = Vec::with_capacity(self.len);
        for (_, job) in jobs {
            taken.append(&mut job.runs);
        }
        self.len = 0;
        // The entries stay (empty) for the runs that come back.
        taken
    }

    /// Every waiting run, in placement order, left in place.
    pub fn in_sla_order(&self) -> Vec<&T> {
        let mut jobs: Vec<_> = self.jobs.iter().collect();
        sla_order::order(&mut jobs, |(job, runs)| (runs.sla, *job));
        jobs.into_iter()
            .flat_map(|(_, job)| job.runs.iter())
            .collect()
    }

    /// Gives back a run taken with [`PendingRuns::take_in_sla_order`]; runs
    /// given back in the order taken keep their order.
    pub fn put_back(&mut self, run: T) {
        let sla = run.sla();
        let entry = self
            .jobs
            .entry(run.job().clone())
            .or_insert_with(|| JobRuns {
                sla,
                runs: Vec::new(),
            });
        entry.runs.push(run);
        self.len += 1;
    }

    /// Drops the entries of jobs with no run left (after a round).
    pub fn forget_empty_jobs(&mut self) {
        self.jobs.retain(|_, job| !job.runs.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct Run {
        job: JobId,
        instance: u32,
        sla: SlaKey,
    }

    impl WaitingRun for Run {
        fn job(&self) -> &JobId {
            &self.job
        }
        fn sla(&self) -> SlaKey {
            self.sla
        }
    }

    fn runs(job: &str, priority: u32, created_at: i64, instances: &[u32]) -> Vec<Run> {
        let sla = SlaKey {
            priority,
            created_at,
        };
        instances
            .iter()
            .map(|&instance| Run {
                job: JobId(job.into()),
                instance,
                sla,
            })
            .collect()
    }

    fn names(runs: &[Run]) -> Vec<String> {
        runs.iter()
            .map(|r| format!("{}-{}", r.job.as_str(), r.instance))
            .collect()
    }

    #[test]
    fn a_round_takes_jobs_in_sla_order_and_each_job_in_its_order() {
        let mut pending = PendingRuns::default();
        for (job, priority, created) in [("old", 0, 1), ("urgent", 5, 9), ("new", 0, 2)] {
            pending.set_job(&JobId(job.into()), runs(job, priority, created, &[0, 1]));
        }
        assert_eq!(pending.len(), 6);
        let taken = pending.take_in_sla_order();
        assert!(pending.is_empty());
        assert_eq!(
            names(&taken),
            ["urgent-0", "urgent-1", "old-0", "old-1", "new-0", "new-1"]
        );
        // What was not placed comes back, and goes first next round.
        for run in taken.into_iter().filter(|r| r.instance == 1) {
            pending.put_back(run);
        }
        pending.forget_empty_jobs();
        assert_eq!(pending.len(), 3);
        assert_eq!(
            names(&pending.take_in_sla_order()),
            ["urgent-1", "old-1", "new-1"]
        );
    }

    #[test]
    fn a_plan_replaces_its_jobs_runs() {
        let mut pending = PendingRuns::default();
        let job = JobId("j".into());
        pending.set_job(&job, runs("j", 0, 1, &[0, 1, 2]));
        pending.set_job(&JobId("k".into()), runs("k", 0, 2, &[0]));
        pending.set_job(&job, runs("j", 0, 1, &[2]));
        assert_eq!(pending.len(), 2);
        pending.set_job(&job, Vec::new());
        assert_eq!(pending.len(), 1);
        pending.remove_job(&JobId("k".into()));
        assert!(pending.is_empty());
        assert!(pending.take_in_sla_order().is_empty());
    }
}
