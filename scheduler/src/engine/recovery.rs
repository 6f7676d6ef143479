//! `--recover-from-master`: a store that was lost rebuilt from the
//! master's task list. Pure: the tasks the master lists for the old
//! framework go in, the [`Change`] that records them comes out, written
//! before the engine loads the store; the scheduler then starts as after
//! any restart (it subscribes with the old framework id and reconciles
//! every run, so the master corrects whatever the list had stale).
//!
//! What can be rebuilt is what the tasks carry: each task's id names its
//! job, instance and run, and its [`spec_label`] the job's spec and
//! version. So every job with a task at the master comes back with its
//! spec, and each listed task as a run in the state the master gives it
//! (a batch instance whose task the master lists as FINISHED is done and
//! not run again). What cannot: a job none of whose listed tasks carries
//! a spec (launched before specs were carried, or a spec over
//! [`spec_label::MAX_BYTES`]); its tasks are left out, and once subscribed
//! the scheduler kills them as tasks it does not know. Runs the master no
//! longer lists (completed tasks past its
//! `--max_completed_tasks_per_framework`, or from before a master
//! failover), per-pod stops and restarts, and jobs without any task at
//! the master are gone with the store: a batch instance whose only task
//! the master forgot runs again.

use crate::model::change::{Change, JobWrite, LaunchRecord, PodEvent, RunWrite};
use crate::model::ids::{AgentId, JobId, TaskId};
use crate::model::job::Job;
use crate::model::spec_label::{self, CarriedSpec};
use crate::model::state::PodState;
use crate::model::time::UnixMillis;
use drover_proto::v1::TaskState;
use std::collections::{BTreeMap, BTreeSet};

/// One task as the master's `/state` lists it for the framework.
#[derive(Debug, Clone, PartialEq)]
pub struct MasterTask {
    /// Its Mesos task id.
    pub task_id: String,
    /// The agent it was launched on.
    pub agent_id: String,
    /// That agent's hostname, when the master lists the agent.
    pub hostname: Option<String>,
    /// Its state at the master.
    pub state: TaskState,
    /// Its latest state before TASK_UNREACHABLE, for an unreachable task.
    pub reachable_state: Option<TaskState>,
    /// The value of its [`spec_label::KEY`] label.
    pub spec_label: Option<String>,
    /// When it first reported TASK_RUNNING.
    pub started_at: Option<UnixMillis>,
    /// Its latest status's time.
    pub updated_at: Option<UnixMillis>,
}

/// What was rebuilt.
#[derive(Debug, Clone, PartialEq)]
pub struct Rebuilt {
    /// The writes: the framework id, the jobs, their runs and one event per
    /// run saying where it came from.
    pub change: Change,
    /// The jobs rebuilt, with how many runs each.
    pub jobs: BTreeMap<JobId, usize>,
    /// Tasks left out, and why.
    pub left_out: Vec<LeftOut>,
}

/// A task the master lists that was not rebuilt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// Its Mesos task id.
    pub task_id: String,
    /// Why.
    pub why: String,
}

/// What the message of a recovered run says.
pub const RECOVERED_MESSAGE: &str = "recovered from the master's task list";

/// The change that records `tasks` as framework `framework_id`'s jobs and
/// runs, at `now`.
pub fn rebuild(framework_id: &str, tasks: &[MasterTask], now: UnixMillis) -> Rebuilt {
    let mut left_out = Vec::new();
    let mut by_job: BTreeMap<JobId, Vec<(TaskId, &MasterTask)>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for task in tasks {
        if !seen.insert(task.task_id.as_str()) {
            continue;
        }
        match TaskId::parse(&task.task_id) {
            Ok(id) => by_job
                .entry(id.instance.job.clone())
                .or_default()
                .push((id, task)),
            Err(_) => left_out.push(LeftOut {
                task_id: task.task_id.clone(),
                why: "not a task id Drover writes (<job>-<instance>-<run>)".into(),
            }),
        }
    }
    let mut change = Change {
        framework_id: Some(Some(framework_id.to_owned())),
        ..Change::default()
    };
    let mut jobs = BTreeMap::new();
    for (job_id, mut runs) in by_job {
        let carried: Vec<Option<CarriedSpec>> = runs
            .iter()
            .map(|(_, t)| {
                t.spec_label
                    .as_deref()
                    .and_then(|l| spec_label::decode(l).ok())
            })
            .collect();
        let Some(newest) = carried.iter().flatten().max_by_key(|c| c.version).cloned() else {
            left_out.extend(runs.iter().map(|(_, t)| LeftOut {
                task_id: t.task_id.clone(),
                why: format!(
                    "no task of job {job_id} carries a readable spec (launched before specs \
                     were carried, or a spec over {} bytes)",
                    spec_label::MAX_BYTES
                ),
            }));
            continue;
        };
        let versions: Vec<u64> = carried
            .iter()
            .map(|c| c.as_ref().map_or(newest.version, |c| c.version))
            .collect();
        let mut job = Job::new(job_id.clone(), newest.spec, now);
        job.version = newest.version;
        let instance_count = job.spec.instance_count;
        let mut kept = Vec::new();
        for ((task_id, task), version) in runs.drain(..).zip(versions) {
            if task_id.instance.instance >= instance_count {
                left_out.push(LeftOut {
                    task_id: task.task_id.clone(),
                    why: format!(
                        "instance {} is beyond job {job_id}'s {instance_count} instances",
                        task_id.instance.instance
                    ),
                });
            } else {
                kept.push((task_id, task, version));
            }
        }
        kept.sort_by_key(|(id, _, _)| (id.instance.instance, id.run));
        if let Some(first) = kept.iter().filter_map(|(_, t, _)| t.started_at).min() {
            job.created_at = first.min(now);
        }
        jobs.insert(job_id, kept.len());
        change.jobs.push(JobWrite::Create(Box::new(job)));
        for (task_id, task, version) in kept {
            record_run(&mut change, task_id, task, version, now);
        }
    }
    Rebuilt {
        change,
        jobs,
        left_out,
    }
}

/// Adds one task's launch, run row and event to `change`.
fn record_run(
    change: &mut Change,
    task_id: TaskId,
    task: &MasterTask,
    version: u64,
    now: UnixMillis,
) {
    let agent = AgentId::new(&task.agent_id);
    let updated_at = task.updated_at.unwrap_or(now);
    // An unreachable task may still be running: it keeps the state it last
    // reported, marked unreachable, as the engine records a
    // TASK_UNREACHABLE (see `Run::apply`).
    let (state, unreachable_since) = if task.state == TaskState::TaskUnreachable {
        let reachable = task.reachable_state.unwrap_or(TaskState::TaskRunning);
        (PodState::from_task_state(reachable), Some(updated_at))
    } else {
        (PodState::from_task_state(task.state), None)
    };
    let hostname = task.hostname.clone();
    change.launches.push(LaunchRecord {
        task_id: task_id.clone(),
        agent_id: agent.clone(),
        hostname: hostname.clone().unwrap_or_else(|| task.agent_id.clone()),
        spec_version: version,
        ports: Vec::new(),
        at: task.started_at.unwrap_or(updated_at),
        hands_over: None,
    });
    change.runs.push(RunWrite {
        task_id: task_id.clone(),
        state,
        agent_id: Some(agent.clone()),
        reason: None,
        message: Some(RECOVERED_MESSAGE.to_owned()),
        healthy: None,
        ready: None,
        image: None,
        started_at: task.started_at,
        completed_at: state.is_terminal().then_some(updated_at),
        updated_at,
        unreachable_since,
    });
    change.events.push(PodEvent {
        task_id,
        state,
        mesos_state: Some(task.state),
        reason: None,
        message: Some(RECOVERED_MESSAGE.to_owned()),
        healthy: None,
        ready: None,
        agent_id: Some(agent),
        hostname,
        timestamp: now,
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::spec::{JobSpec, JobType};

    fn spec(kind: &str, instances: u32) -> JobSpec {
        serde_json::from_value(serde_json::json!({
            "type": kind, "name": "j", "instance_count": instances,
            "default_spec": {"containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32.0},
                "command": {"value": "sleep 100", "user": "nobody"}
            }]}
        }))
        .unwrap()
    }

    fn task(id: &str, state: TaskState, label: Option<String>) -> MasterTask {
        MasterTask {
            task_id: id.into(),
            agent_id: "agent-1".into(),
            hostname: Some("host-1".into()),
            state,
            reachable_state: None,
            spec_label: label,
            started_at: Some(1_000),
            updated_at: Some(2_000),
        }
    }

    fn label(version: u64, s: &JobSpec) -> Option<String> {
        spec_label::encode(version, s)
    }

    #[test]
    fn jobs_come_back_with_their_spec_version_and_runs_in_the_masters_state() {
        let batch = spec("BATCH", 3);
        let tasks = vec![
            task("b-0-0", TaskState::TaskFinished, label(1, &batch)),
            task("b-1-0", TaskState::TaskFailed, label(1, &batch)),
            task("b-1-1", TaskState::TaskRunning, label(2, &batch)),
        ];
        let rebuilt = rebuild("fw-1", &tasks, 5_000);
        assert!(rebuilt.left_out.is_empty(), "{:?}", rebuilt.left_out);
        assert_eq!(rebuilt.change.framework_id, Some(Some("fw-1".into())));
        let JobWrite::Create(job) = &rebuilt.change.jobs[0] else {
            panic!("a job create")
        };
        assert_eq!(job.job_id, JobId("b".into()));
        assert_eq!(job.version, 2, "the newest carried version");
        assert_eq!(job.spec.job_type, JobType::Batch);
        assert_eq!(job.created_at, 1_000);
        let states: Vec<(String, PodState)> = rebuilt
            .change
            .runs
            .iter()
            .map(|r| (r.task_id.to_string(), r.state))
            .collect();
        assert_eq!(
            states,
            vec![
                ("b-0-0".into(), PodState::Succeeded),
                ("b-1-0".into(), PodState::Failed),
                ("b-1-1".into(), PodState::Running),
            ]
        );
        let versions: Vec<u64> = rebuilt
            .change
            .launches
            .iter()
            .map(|l| l.spec_version)
            .collect();
        assert_eq!(versions, vec![1, 1, 2]);
        assert_eq!(rebuilt.change.runs[0].completed_at, Some(2_000));
        assert_eq!(rebuilt.change.runs[2].completed_at, None);
        assert_eq!(rebuilt.change.events.len(), 3);
        assert_eq!(rebuilt.jobs.get(&JobId("b".into())), Some(&3));
    }

    #[test]
    fn an_unreachable_task_keeps_its_last_state_marked_unreachable() {
        let mut t = task(
            "s-0-0",
            TaskState::TaskUnreachable,
            label(1, &spec("SERVICE", 1)),
        );
        t.reachable_state = Some(TaskState::TaskRunning);
        let rebuilt = rebuild("fw", &[t], 5_000);
        let run = &rebuilt.change.runs[0];
        assert_eq!(run.state, PodState::Running);
        assert_eq!(run.unreachable_since, Some(2_000));
        assert_eq!(run.completed_at, None);
    }

    #[test]
    fn a_task_without_a_readable_spec_needs_another_of_its_job_to_carry_one() {
        let s = spec("SERVICE", 2);
        let tasks = vec![
            task("with-0-0", TaskState::TaskRunning, label(1, &s)),
            task("with-1-0", TaskState::TaskRunning, None),
            task("without-0-0", TaskState::TaskRunning, None),
            task(
                "garbled-0-0",
                TaskState::TaskRunning,
                Some("{not json".into()),
            ),
            task("not a drover id", TaskState::TaskRunning, label(1, &s)),
            task("with-7-0", TaskState::TaskRunning, label(1, &s)),
        ];
        let rebuilt = rebuild("fw", &tasks, 5_000);
        assert_eq!(
            rebuilt
                .jobs
                .keys()
                .map(|j| j.0.as_str())
                .collect::<Vec<_>>(),
            ["with"]
        );
        assert_eq!(
            rebuilt.change.runs.len(),
            2,
            "both listed instances of 'with'"
        );
        let left: Vec<&str> = rebuilt
            .left_out
            .iter()
            .map(|l| l.task_id.as_str())
            .collect();
        assert_eq!(
            left,
            ["not a drover id", "garbled-0-0", "with-7-0", "without-0-0"]
        );
        assert!(
            rebuilt.left_out[2].why.contains("beyond"),
            "{:?}",
            rebuilt.left_out[2]
        );
    }

    #[test]
    fn a_task_listed_twice_is_one_run() {
        let s = spec("SERVICE", 1);
        let t = task("s-0-0", TaskState::TaskRunning, label(1, &s));
        let rebuilt = rebuild("fw", &[t.clone(), t], 5_000);
        assert_eq!(rebuilt.change.runs.len(), 1);
    }
}
