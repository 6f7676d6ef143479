//! The seed-shaped JSON of jobs and pods (Peloton `JobInfo`, `JobStatus`,
//! `JobSummary`, `PodSummary`, `PodStatus`, `PodInfo`, `PodEvent`; snake_case,
//! ids wrapped as `{"value": ...}`), built from store records.

use super::rfc3339;
use crate::ids::InstanceId;
use crate::jobs::reconcile::{self, ClusterFacts, EngineConfig};
use crate::jobs::runner::now_millis;
use crate::jobs::state::{JobGoal, JobState, PodState};
use crate::store::{JobRecord, PodEventRecord, RunRecord};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// An `EntityVersion`.
pub fn version(v: u64) -> Value {
    json!({"value": v.to_string()})
}

fn desired_job_state(goal: JobGoal) -> &'static str {
    match goal {
        JobGoal::Running => "JOB_STATE_RUNNING",
        JobGoal::Stopped => "JOB_STATE_KILLED",
        JobGoal::Deleted => "JOB_STATE_DELETED",
    }
}

/// The job's state as the engine sees it now.
pub fn job_state(job: &JobRecord, runs: &[RunRecord]) -> JobState {
    let plan = reconcile::plan(
        job,
        runs,
        &ClusterFacts::default(),
        &EngineConfig::default(),
        now_millis(),
    );
    plan.job_state.unwrap_or(JobState::Initialized)
}

/// Latest run of each instance.
fn latest_runs(job: &JobRecord, runs: &[RunRecord]) -> BTreeMap<u32, Vec<RunRecord>> {
    let mut by_instance: BTreeMap<u32, Vec<RunRecord>> = (0..job.spec.instance_count)
        .map(|i| (i, Vec::new()))
        .collect();
    for run in runs {
        by_instance
            .entry(run.task_id.instance.instance)
            .or_default()
            .push(run.clone());
    }
    for list in by_instance.values_mut() {
        list.sort_by_key(|r| r.task_id.run);
    }
    by_instance
}

/// `JobStatus`.
pub fn job_status(job: &JobRecord, runs: &[RunRecord]) -> Value {
    let mut stats: BTreeMap<&'static str, u32> = BTreeMap::new();
    for history in latest_runs(job, runs).values() {
        let state = history.last().map_or(PodState::Pending, |r| r.state);
        *stats.entry(state.as_str()).or_default() += 1;
    }
    json!({
        "state": job_state(job, runs).as_str(),
        "desired_state": desired_job_state(job.goal),
        "creation_time": rfc3339::format(job.created_at),
        "pod_stats": stats,
        "version": version(job.version),
        "revision": {"version": job.revision, "updated_at": rfc3339::format(job.updated_at)},
    })
}

/// `JobSummary`.
pub fn job_summary(job: &JobRecord, runs: &[RunRecord]) -> Value {
    json!({
        "job_id": {"value": job.job_id.as_str()},
        "name": job.spec.name,
        "owner": job.spec.owner,
        "owning_team": job.spec.owning_team,
        "labels": job.spec.labels,
        "instance_count": job.spec.instance_count,
        "status": job_status(job, runs),
    })
}

fn health(healthy: Option<bool>) -> &'static str {
    match healthy {
        Some(true) => "HEALTH_STATE_HEALTHY",
        Some(false) => "HEALTH_STATE_UNHEALTHY",
        None => "HEALTH_STATE_DISABLED",
    }
}

/// `PodStatus` of `run`, with the instance's failure count.
pub fn run_status(job: &JobRecord, run: &RunRecord, failure_count: usize) -> Value {
    let mut status = Map::new();
    status.insert("state".into(), run.state.as_str().into());
    status.insert("pod_id".into(), json!({"value": run.task_id.to_string()}));
    status.insert(
        "desired_state".into(),
        if job.goal == JobGoal::Running {
            "POD_STATE_RUNNING"
        } else {
            "POD_STATE_KILLED"
        }
        .into(),
    );
    if let Some(host) = &run.hostname {
        status.insert("host".into(), host.clone().into());
    }
    if let Some(agent) = &run.agent_id {
        status.insert("agent_id".into(), json!({"value": agent}));
    }
    if let Some(t) = run.started_at {
        status.insert("start_time".into(), rfc3339::format(t).into());
    }
    if let Some(t) = run.completed_at {
        status.insert("completion_time".into(), rfc3339::format(t).into());
    }
    if let Some(reason) = &run.reason {
        status.insert("reason".into(), reason.clone().into());
    }
    if let Some(message) = &run.message {
        status.insert("message".into(), message.clone().into());
    }
    status.insert("healthy".into(), health(run.healthy).into());
    status.insert("failure_count".into(), failure_count.into());
    status.insert("version".into(), version(run.spec_version));
    Value::Object(status)
}

/// `PodStatus` of an instance with no run yet.
pub fn pending_status(job: &JobRecord) -> Value {
    json!({
        "state": PodState::Pending.as_str(),
        "desired_state": if job.goal == JobGoal::Running { "POD_STATE_RUNNING" } else { "POD_STATE_KILLED" },
        "healthy": health(None),
        "failure_count": 0,
        "version": version(job.version),
    })
}

/// Failures of an instance, as the engine counts them.
pub fn failure_count(history: &[RunRecord]) -> usize {
    history
        .iter()
        .filter(|r| reconcile::counts_as_failure(r))
        .count()
}

/// `PodSummary` of every instance.
pub fn pod_summaries(job: &JobRecord, runs: &[RunRecord]) -> Vec<Value> {
    latest_runs(job, runs)
        .into_iter()
        .map(|(instance, history)| {
            let name = InstanceId::new(job.job_id.clone(), instance).pod_name();
            let status = match history.last() {
                Some(run) => run_status(job, run, failure_count(&history)),
                None => pending_status(job),
            };
            json!({"pod_name": {"value": name}, "status": status})
        })
        .collect()
}

/// `PodEvent`.
pub fn pod_event(job: &JobRecord, event: &PodEventRecord) -> Value {
    json!({
        "pod_id": {"value": event.task_id.to_string()},
        "actual_state": event.state.as_str(),
        "mesos_state": event.mesos_state,
        "desired_state": if job.goal == JobGoal::Running { "POD_STATE_RUNNING" } else { "POD_STATE_KILLED" },
        "timestamp": rfc3339::format(event.timestamp),
        "agent_id": event.agent_id,
        "hostname": event.hostname,
        "message": event.message,
        "reason": event.reason,
        "healthy": health(event.healthy),
        "revision": event.revision,
    })
}
