//! What users rely on, checked after every step of a simulation:
//! - never two live tasks for one instance (a task that came back from an
//!   agent that was unreachable is the one exception: Mesos itself cannot
//!   tell the scheduler it is alive until the agent returns, and the
//!   scheduler then kills it; so, in the engine, is a run replaced while
//!   unreachable, as the job's unreachable policy allows);
//! - no batch instance launched again once the scheduler learned it
//!   succeeded;
//! - every service instance RUNNING once faults stop (checked at the end);
//! - no update acknowledged before it was stored;
//! - nothing stored lost across a crash: the runs the scheduler launched,
//!   the jobs whose creation it confirmed, and what its engine held.

use super::workload::Workload;
use drover_agent_sim::master::Master;
use drover_proto::TaskStateExt;
use drover_scheduler::engine::Engine;
use drover_scheduler::model::ids::{InstanceId, JobId, TaskId};
use drover_scheduler::model::job::Job;
use drover_scheduler::model::outcome::counts_of;
use drover_scheduler::model::run::RunHistory;
use drover_scheduler::model::spec::JobType;
use drover_scheduler::model::state::PodState;
use drover_scheduler::store::{SqliteStore, StoreRead};
use std::collections::{BTreeMap, HashMap, HashSet};

/// An invariant that did not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which one.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

fn violation(invariant: &'static str, detail: String) -> Result<(), Violation> {
    Err(Violation { invariant, detail })
}

/// What the engine held: each job with its runs per instance.
pub type Held = BTreeMap<JobId, (Job, Vec<RunHistory>)>;

/// What the engine holds now.
pub fn held(engine: &Engine) -> Held {
    engine
        .registry()
        .iter()
        .map(|(id, entry)| (id.clone(), (entry.job.clone(), entry.instances.clone())))
        .collect()
}

/// The checks' memory across steps.
#[derive(Debug, Default)]
pub struct Checks {
    /// Tasks that were ever on an unreachable agent.
    ever_unreachable: HashSet<String>,
    /// Batch instances whose success the scheduler learned, with the run.
    learned_success: HashMap<InstanceId, u32>,
    /// Every task the scheduler ever sent in an ACCEPT.
    pub launched: HashSet<String>,
}

impl Checks {
    /// The master's tasks after a step: at most one live task per instance.
    pub fn tasks(&mut self, master: &Master) -> Result<(), Violation> {
        let mut live: BTreeMap<InstanceId, Vec<String>> = BTreeMap::new();
        for task in master.tasks() {
            let id = &task.task_id.value;
            if task.unreachable_since.is_some() {
                self.ever_unreachable.insert(id.clone());
            }
            if task.state().is_terminal() || self.ever_unreachable.contains(id) {
                continue;
            }
            if let Ok(task_id) = TaskId::parse(id) {
                live.entry(task_id.instance).or_default().push(id.clone());
            }
        }
        for (instance, tasks) in live {
            if tasks.len() > 1 {
                return violation(
                    "never two live tasks for one instance",
                    format!("{} has {tasks:?} live at the master", instance.pod_name()),
                );
            }
        }
        Ok(())
    }

    /// The scheduler learned (was delivered) `task`'s TASK_FINISHED.
    pub fn learned_finished(&mut self, task: &str, workload: &Workload) {
        let Ok(task) = TaskId::parse(task) else {
            return;
        };
        let batch = workload
            .jobs
            .get(&task.instance.job)
            .is_some_and(|j| j.kind == JobType::Batch);
        if batch {
            self.learned_success.insert(task.instance, task.run);
        }
    }

    /// Tasks left in an ACCEPT: none relaunches a batch instance whose
    /// success the scheduler learned.
    pub fn launched(&mut self, tasks: &[String]) -> Result<(), Violation> {
        for id in tasks {
            self.launched.insert(id.clone());
            let Ok(task) = TaskId::parse(id) else {
                continue;
            };
            if let Some(succeeded) = self.learned_success.get(&task.instance) {
                if task.run > *succeeded {
                    return violation(
                        "no batch instance run again after it succeeded",
                        format!(
                            "{id} launched after run {succeeded} of {} succeeded",
                            task.instance.pod_name()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// The scheduler died: what it learned and did not store is forgotten
    /// with it; what it stored it knows again when it restarts.
    pub fn crashed(&mut self, store: &SqliteStore) {
        self.learned_success.retain(|instance, run| {
            store
                .instance_runs(instance)
                .unwrap_or_default()
                .iter()
                .any(|r| r.task_id.run == *run && r.run.state == PodState::Succeeded)
        });
    }

    /// After a restart: what the dead scheduler held, launched and
    /// confirmed is all there. `before`: what its engine held, when the
    /// crash fell between two inputs or as a call left (not between a
    /// commit and the engine hearing of it).
    pub fn recovered(
        &self,
        before: Option<&Held>,
        after: &Engine,
        workload: &Workload,
    ) -> Result<(), Violation> {
        let now = held(after);
        if let Some(before) = before {
            if *before != now {
                let mut ids: Vec<&JobId> = before.keys().chain(now.keys()).collect();
                ids.sort();
                ids.dedup();
                let differ: Vec<String> = ids
                    .into_iter()
                    .filter(|id| before.get(*id) != now.get(*id))
                    .map(|id| describe_difference(id, before.get(id), now.get(id)))
                    .collect();
                return violation(
                    "nothing stored lost across a crash",
                    format!("the recovered engine differs: {}", differ.join("; ")),
                );
            }
        }
        for id in &self.launched {
            let Ok(task) = TaskId::parse(id) else {
                continue;
            };
            let Some((_, instances)) = now.get(&task.instance.job) else {
                continue; // deleted since
            };
            let known = instances
                .get(task.instance.instance as usize)
                .is_some_and(|runs| runs.iter().any(|r| r.run == task.run));
            if !known {
                return violation(
                    "nothing stored lost across a crash",
                    format!("{id} was launched but is not in the recovered store"),
                );
            }
        }
        for (id, job) in &workload.jobs {
            let sure = !workload.unsure.contains(id);
            if sure && job.confirmed && !job.deleted && !now.contains_key(id) {
                return violation(
                    "nothing stored lost across a crash",
                    format!("job {id}'s creation was confirmed but it is gone"),
                );
            }
        }
        Ok(())
    }

    /// The engine's own view: one live run per instance at most, and the
    /// job's state and counts readers see are those its runs give.
    pub fn registry(&self, engine: &Engine) -> Result<(), Violation> {
        for (id, entry) in engine.registry().iter() {
            let recounted = counts_of(&entry.job, entry.instances.iter().map(RunHistory::as_slice));
            if *entry.counts() != recounted {
                return violation(
                    "what readers see is what is stored",
                    format!(
                        "{id}'s kept counts {:?} differ from a recount {recounted:?}",
                        entry.counts()
                    ),
                );
            }
            for (instance, runs) in entry.instances.iter().enumerate() {
                // A run replaced while its agent is unreachable stays live
                // until it is heard from or given up (the job's unreachable
                // policy): one live run the scheduler can reach at most.
                let live = runs
                    .iter()
                    .filter(|r| r.state.is_live() && r.unreachable_since().is_none())
                    .count();
                if live > 1 {
                    return violation(
                        "never two live tasks for one instance",
                        format!("the engine holds {live} live runs of {id}-{instance}: {runs:?}"),
                    );
                }
            }
        }
        Ok(())
    }

    /// Once faults stopped and the system settled: every instance users
    /// want running runs, at the master and as the scheduler stored it.
    pub fn settled(
        &self,
        master: &Master,
        reader: &SqliteStore,
        workload: &Workload,
    ) -> Result<(), Violation> {
        let running: HashSet<InstanceId> = master
            .tasks()
            .filter(|t| t.state() == drover_proto::v1::TaskState::TaskRunning)
            .filter_map(|t| TaskId::parse(&t.task_id.value).ok())
            .map(|t| t.instance)
            .collect();
        for instance in workload.wanted_running() {
            let runs = reader.instance_runs(&instance).unwrap_or_default();
            if !running.contains(&instance) {
                let job = reader.job(&instance.job).ok().flatten();
                return violation(
                    "every service instance RUNNING once faults stop",
                    format!(
                        "{} has no RUNNING task at the master; stored: goal {:?}, pods {:?}, runs {:?}",
                        instance.pod_name(),
                        job.as_ref().map(|j| j.goal),
                        job.as_ref().map(|j| &j.pods),
                        runs.iter().map(|r| (r.run.run, r.run.state)).collect::<Vec<_>>()
                    ),
                );
            }
            if runs.last().map(|r| r.run.state) != Some(PodState::Running) {
                return violation(
                    "every service instance RUNNING once faults stop",
                    format!(
                        "{}'s latest stored run is {:?}",
                        instance.pod_name(),
                        runs.last().map(|r| r.run.state)
                    ),
                );
            }
        }
        Ok(())
    }
}

/// What differs between a job as the engine held it and as it came back.
fn describe_difference(
    id: &JobId,
    before: Option<&(Job, Vec<RunHistory>)>,
    after: Option<&(Job, Vec<RunHistory>)>,
) -> String {
    match (before, after) {
        (Some(_), None) => format!("{id} is gone"),
        (None, Some(_)) => format!("{id} appeared"),
        (Some((bj, br)), Some((aj, ar))) => {
            if bj != aj {
                return format!("{id}: job was {bj:?}, came back {aj:?}");
            }
            for (i, (b, a)) in br.iter().zip(ar).enumerate() {
                if b != a {
                    return format!("{id}-{i}: runs were {b:?}, came back {a:?}");
                }
            }
            format!("{id}: {} instances held, {} came back", br.len(), ar.len())
        }
        (None, None) => format!("{id}"),
    }
}
