//! The jobs and runs the engine plans from: exactly what the store holds,
//! loaded at start and changed only after the store committed the change
//! (the engine's `on_persisted`), so a crash at any point restarts from a
//! store that agrees with what was decided. Kept per job, each instance's
//! runs in run order (oldest first), in a map ordered by job id so that
//! every walk over it (reconciliation, placement's view of the cluster)
//! comes out the same way each time.

use crate::model::change::KillRecord;
use crate::model::ids::{InstanceId, JobId, TaskId};
use crate::model::job::Job;
use crate::model::run::Run;
use std::collections::BTreeMap;

/// One job and its runs.
#[derive(Debug, Clone)]
pub struct JobEntry {
    /// The job.
    pub job: Job,
    /// Each instance's runs, oldest first; indexed by instance, with at
    /// least `instance_count` entries.
    pub instances: Vec<Vec<Run>>,
}

impl JobEntry {
    /// A job with no runs yet.
    pub fn new(job: Job) -> Self {
        let instances = vec![Vec::new(); job.spec.instance_count as usize];
        JobEntry { job, instances }
    }

    /// The runs of `instance`, oldest first.
    pub fn history(&self, instance: u32) -> &[Run] {
        self.instances
            .get(instance as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// Whether any run of the job may be live.
    pub fn has_live_run(&self) -> bool {
        self.instances
            .iter()
            .any(|runs| runs.iter().any(|r| r.state.is_live()))
    }

    /// Whether the job has any run at all.
    pub fn has_runs(&self) -> bool {
        self.instances.iter().any(|runs| !runs.is_empty())
    }
}

/// Every job the engine knows.
#[derive(Debug, Default)]
pub struct Registry {
    jobs: BTreeMap<JobId, JobEntry>,
}

impl Registry {
    /// The registry of a store's jobs, each with its runs per instance.
    pub fn from_jobs(jobs: Vec<(Job, Vec<Vec<Run>>)>) -> Self {
        let jobs = jobs
            .into_iter()
            .map(|(job, mut instances)| {
                if instances.len() < job.spec.instance_count as usize {
                    instances.resize_with(job.spec.instance_count as usize, Vec::new);
                }
                for runs in &mut instances {
                    runs.sort_by_key(|r| r.run);
                }
                (job.job_id.clone(), JobEntry { job, instances })
            })
            .collect();
        Registry { jobs }
    }

    /// One job.
    pub fn get(&self, id: &JobId) -> Option<&JobEntry> {
        self.jobs.get(id)
    }

    /// One job, to change once its change is stored.
    pub fn get_mut(&mut self, id: &JobId) -> Option<&mut JobEntry> {
        self.jobs.get_mut(id)
    }

    /// Whether `id` is known.
    pub fn contains(&self, id: &JobId) -> bool {
        self.jobs.contains_key(id)
    }

    /// Adds a new job.
    pub fn insert(&mut self, job: Job) {
        self.jobs.insert(job.job_id.clone(), JobEntry::new(job));
    }

    /// Forgets a job and its runs.
    pub fn remove(&mut self, id: &JobId) -> Option<JobEntry> {
        self.jobs.remove(id)
    }

    /// Every job, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = (&JobId, &JobEntry)> {
        self.jobs.iter()
    }

    /// Every job id, in creation order (then id), the order jobs are
    /// listed and first planned in.
    pub fn ids_by_creation(&self) -> Vec<JobId> {
        let mut ids: Vec<_> = self
            .jobs
            .values()
            .map(|e| (e.job.created_at, &e.job.job_id))
            .collect();
        ids.sort();
        ids.into_iter().map(|(_, id)| id.clone()).collect()
    }

    /// The run `task`, and whether it is its instance's latest.
    pub fn run(&self, task: &TaskId) -> Option<(&Run, bool)> {
        let runs = self
            .jobs
            .get(&task.instance.job)?
            .instances
            .get(task.instance.instance as usize)?;
        // The latest run is the one updates name almost always.
        let at = runs.iter().rposition(|r| r.run == task.run)?;
        Some((&runs[at], at + 1 == runs.len()))
    }

    /// Puts `run` into its instance's history: in place of the run with
    /// its number, or after the others (a launch).
    pub fn put_run(&mut self, instance: &InstanceId, run: Run) {
        let Some(entry) = self.jobs.get_mut(&instance.job) else {
            return;
        };
        let index = instance.instance as usize;
        if entry.instances.len() <= index {
            entry.instances.resize_with(index + 1, Vec::new);
        }
        let runs = &mut entry.instances[index];
        match runs.iter().rposition(|r| r.run == run.run) {
            Some(at) => runs[at] = run,
            None => {
                let at = runs.partition_point(|r| r.run < run.run);
                runs.insert(at, run);
            }
        }
    }

    /// Puts each of `runs` into its instance's history.
    pub fn put_runs(&mut self, runs: &[(TaskId, Run)]) {
        for (task, run) in runs {
            self.put_run(&task.instance, run.clone());
        }
    }

    /// Notes kills sent: when, and why when the reason is the scheduler's
    /// (kept once set).
    pub fn apply_kills(&mut self, kills: &[KillRecord]) {
        for kill in kills {
            let task = &kill.task_id;
            let Some(runs) = self
                .jobs
                .get_mut(&task.instance.job)
                .and_then(|e| e.instances.get_mut(task.instance.instance as usize))
            else {
                continue;
            };
            if let Some(run) = runs.iter_mut().rfind(|r| r.run == task.run) {
                run.kill_requested_at = Some(kill.at);
                if kill.reason.is_some() {
                    run.kill_reason = kill.reason;
                }
            }
        }
    }

    /// Every run that may be live, by job id, instance and run, with its
    /// instance.
    pub fn live_runs(&self) -> impl Iterator<Item = (InstanceRef<'_>, &Run)> {
        self.jobs.iter().flat_map(|(id, entry)| {
            entry
                .instances
                .iter()
                .enumerate()
                .flat_map(move |(instance, runs)| {
                    runs.iter().filter(|r| r.state.is_live()).map(move |r| {
                        (
                            InstanceRef {
                                job: id,
                                instance: instance as u32,
                            },
                            r,
                        )
                    })
                })
        })
    }
}

/// An instance named by reference, for walks that should not allocate.
#[derive(Debug, Clone, Copy)]
pub struct InstanceRef<'a> {
    /// The job.
    pub job: &'a JobId,
    /// The instance number.
    pub instance: u32,
}

impl InstanceRef<'_> {
    /// The run `run` of this instance, as an owned task id.
    pub fn task_id(&self, run: u32) -> TaskId {
        TaskId::new(InstanceId::new(self.job.clone(), self.instance), run)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ids::AgentId;
    use crate::model::state::PodState;

    fn job(id: &str, instances: u32, created_at: i64) -> Job {
        let spec = serde_json::from_value(serde_json::json!({
            "type": "SERVICE", "name": "t", "instance_count": instances,
            "default_spec": {"containers": [{"command": {"value": "true"}}]}
        }))
        .unwrap();
        Job::new(JobId::parse(id).unwrap(), spec, created_at)
    }

    fn run(n: u32, state: PodState) -> Run {
        Run {
            state,
            ..Run::launching(n, AgentId::new("a"), 1, 1)
        }
    }

    #[test]
    fn runs_are_found_by_task_id_and_know_whether_they_are_latest() {
        let mut registry = Registry::default();
        registry.insert(job("j", 2, 1));
        let pod = InstanceId::new(JobId::parse("j").unwrap(), 1);
        registry.put_run(&pod, run(0, PodState::Failed));
        registry.put_run(&pod, run(1, PodState::Running));
        let (r, latest) = registry.run(&TaskId::new(pod.clone(), 0)).unwrap();
        assert_eq!((r.state, latest), (PodState::Failed, false));
        let (r, latest) = registry.run(&TaskId::new(pod.clone(), 1)).unwrap();
        assert_eq!((r.state, latest), (PodState::Running, true));
        assert!(registry.run(&TaskId::new(pod.clone(), 2)).is_none());
        // An update replaces the run with its number.
        registry.put_run(&pod, run(1, PodState::Killed));
        assert_eq!(registry.get(&pod.job).unwrap().history(1).len(), 2);
        assert!(registry.live_runs().next().is_none());
    }

    #[test]
    fn jobs_are_listed_in_creation_order_and_live_runs_in_key_order() {
        let mut registry = Registry::from_jobs(vec![
            (
                job("b", 1, 1),
                vec![vec![run(1, PodState::Running), run(0, PodState::Lost)]],
            ),
            (
                job("a", 2, 2),
                vec![vec![], vec![run(0, PodState::Launching)]],
            ),
        ]);
        registry.insert(job("c", 1, 0));
        let order: Vec<_> = registry
            .ids_by_creation()
            .iter()
            .map(|j| j.to_string())
            .collect();
        assert_eq!(order, ["c", "b", "a"]);
        let live: Vec<_> = registry
            .live_runs()
            .map(|(i, r)| i.task_id(r.run).to_string())
            .collect();
        assert_eq!(live, ["a-1-0", "b-0-1"]);
    }
}
