//! The jobs and runs the engine plans from: exactly what the store holds,
//! loaded at start and changed only after the store committed the change
//! (the engine's `on_persisted`), so a crash at any point restarts from a
//! store that agrees with what was decided. Kept per job, each instance's
//! runs in run order (oldest first), in a map ordered by job id so that
//! every walk over it (reconciliation, placement's view of the cluster)
//! comes out the same way each time.
//!
//! Each job also keeps how its instances stand ([`InstanceCounts`]),
//! updated one instance at a time as its runs change, so that a job's
//! state and pod counts cost nothing to read; and the registry notes which
//! jobs changed, for readers ([`Registry::take_changed`]).

use crate::model::change::KillRecord;
use crate::model::ids::{InstanceId, JobId, TaskId};
use crate::model::job::{Job, JobView};
use crate::model::outcome::{counts_of, standing};
use crate::model::run::{Run, RunHistory};
use crate::model::state::InstanceCounts;
use std::collections::{BTreeMap, BTreeSet};

/// One job and its runs.
#[derive(Debug, Clone)]
pub struct JobEntry {
    /// The job.
    pub job: Job,
    /// Each instance's runs, oldest first; indexed by instance, with at
    /// least `instance_count` entries.
    pub instances: Vec<RunHistory>,
    /// How its instances stand.
    counts: InstanceCounts,
}

impl JobEntry {
    /// A job with no runs yet.
    pub fn new(job: Job) -> Self {
        let instances = vec![RunHistory::new(); job.spec.instance_count as usize];
        JobEntry::with_runs(job, instances)
    }

    fn with_runs(job: Job, instances: Vec<RunHistory>) -> Self {
        let counts = counts_of(&job, instances.iter().map(RunHistory::as_slice));
        JobEntry {
            job,
            instances,
            counts,
        }
    }

    /// The job and how its instances stand, for readers.
    pub fn view(&self) -> JobView {
        JobView {
            job: self.job.clone(),
            instances: self.counts,
        }
    }

    /// How its instances stand.
    pub fn counts(&self) -> &InstanceCounts {
        &self.counts
    }

    /// Replaces the job (its goal, version or pod controls changed): every
    /// instance may stand differently.
    fn set_job(&mut self, job: Job) {
        // A job amended to more instances (it never shrinks) has a history
        // for each of them.
        if self.instances.len() < job.spec.instance_count as usize {
            self.instances
                .resize_with(job.spec.instance_count as usize, RunHistory::new);
        }
        self.counts = counts_of(&job, self.instances.iter().map(RunHistory::as_slice));
        self.job = job;
    }

    /// Changes `instance`'s runs with `change`, keeping the counts.
    fn change_instance(&mut self, instance: usize, change: impl FnOnce(&mut RunHistory)) {
        if self.instances.len() <= instance {
            self.instances.resize_with(instance + 1, RunHistory::new);
        }
        let counted = (instance as u32) < self.job.spec.instance_count;
        if counted {
            let (state, outcome, ran) =
                standing(&self.job, instance as u32, &self.instances[instance]);
            self.counts.remove(state, outcome, ran);
        }
        change(&mut self.instances[instance]);
        if counted {
            let (state, outcome, ran) =
                standing(&self.job, instance as u32, &self.instances[instance]);
            self.counts.add(state, outcome, ran);
        }
    }

    /// The runs of `instance`, oldest first.
    pub fn history(&self, instance: u32) -> &[Run] {
        self.instances
            .get(instance as usize)
            .map_or(&[], RunHistory::as_slice)
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
    /// Jobs changed (or gone) since readers last took them.
    changed: BTreeSet<JobId>,
}

impl Registry {
    /// The registry of a store's jobs, each with its runs per instance.
    pub fn from_jobs(jobs: Vec<(Job, Vec<RunHistory>)>) -> Self {
        let jobs = jobs
            .into_iter()
            .map(|(job, mut instances)| {
                if instances.len() < job.spec.instance_count as usize {
                    instances.resize_with(job.spec.instance_count as usize, RunHistory::new);
                }
                for runs in &mut instances {
                    runs.sort_by_key(|r| r.run);
                    runs.shrink_to_fit();
                }
                (job.job_id.clone(), JobEntry::with_runs(job, instances))
            })
            .collect::<BTreeMap<_, _>>();
        let changed = jobs.keys().cloned().collect();
        Registry { jobs, changed }
    }

    /// One job.
    pub fn get(&self, id: &JobId) -> Option<&JobEntry> {
        self.jobs.get(id)
    }

    /// Whether `id` is known.
    pub fn contains(&self, id: &JobId) -> bool {
        self.jobs.contains_key(id)
    }

    /// Adds a new job.
    pub fn insert(&mut self, job: Job) {
        self.changed.insert(job.job_id.clone());
        self.jobs.insert(job.job_id.clone(), JobEntry::new(job));
    }

    /// Replaces a known job (its goal, version or pod controls changed).
    pub fn set_job(&mut self, job: Job) {
        if let Some(entry) = self.jobs.get_mut(&job.job_id) {
            self.changed.insert(job.job_id.clone());
            entry.set_job(job);
        }
    }

    /// Forgets a job and its runs.
    pub fn remove(&mut self, id: &JobId) -> Option<JobEntry> {
        self.changed.insert(id.clone());
        self.jobs.remove(id)
    }

    /// The jobs changed since this was last called, each with how it now
    /// is (None: it is gone).
    pub fn take_changed(&mut self) -> Vec<(JobId, Option<JobView>)> {
        std::mem::take(&mut self.changed)
            .into_iter()
            .map(|id| {
                let view = self.jobs.get(&id).map(JobEntry::view);
                (id, view)
            })
            .collect()
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
        // A burst changes thousands of runs of one job: noted once.
        if !self.changed.contains(&instance.job) {
            self.changed.insert(instance.job.clone());
        }
        entry.change_instance(instance.instance as usize, |runs| {
            match runs.iter().rposition(|r| r.run == run.run) {
                Some(at) => runs[at] = run,
                None => {
                    // A second run moves the history to the heap: room
                    // for exactly the runs it has, where a Vec's growth
                    // doubles.
                    runs.reserve_exact(1);
                    let at = runs.partition_point(|r| r.run < run.run);
                    runs.insert(at, run);
                }
            }
        });
    }

    /// Marks run `task` as handing its instance over (its replacement's
    /// launch intent is recorded: [`crate::model::run`]).
    pub fn mark_handing_over(&mut self, task: &TaskId) {
        let Some(entry) = self.jobs.get_mut(&task.instance.job) else {
            return;
        };
        self.changed.insert(task.instance.job.clone());
        entry.change_instance(task.instance.instance as usize, |runs| {
            if let Some(run) = runs.iter_mut().rfind(|r| r.run == task.run) {
                run.handing_over = true;
            }
        });
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
            let Some(entry) = self.jobs.get_mut(&task.instance.job) else {
                continue;
            };
            self.changed.insert(task.instance.job.clone());
            entry.change_instance(task.instance.instance as usize, |runs| {
                if let Some(run) = runs.iter_mut().rfind(|r| r.run == task.run) {
                    run.kill_requested_at = Some(kill.at);
                    if kill.reason.is_some() {
                        run.kill_reason = kill.reason;
                    }
                }
            });
        }
    }

    /// Records runs on the spec versions given (their pods are the same
    /// on those versions).
    pub fn set_run_versions(&mut self, versions: &[(TaskId, u64)]) {
        for (task, version) in versions {
            let Some(entry) = self.jobs.get_mut(&task.instance.job) else {
                continue;
            };
            self.changed.insert(task.instance.job.clone());
            entry.change_instance(task.instance.instance as usize, |runs| {
                if let Some(run) = runs.iter_mut().rfind(|r| r.run == task.run) {
                    run.spec_version = *version;
                }
            });
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
                vec![smallvec::smallvec![
                    run(1, PodState::Running),
                    run(0, PodState::Lost)
                ]],
            ),
            (
                job("a", 2, 2),
                vec![
                    RunHistory::new(),
                    smallvec::smallvec![run(0, PodState::Launching)],
                ],
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
