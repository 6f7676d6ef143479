//! The seed-shaped JSON of jobs and pods (Peloton `JobInfo`, `JobStatus`,
//! `JobSummary`, `PodSummary`, `PodStatus`, `PodInfo`, `PodEvent`; snake_case,
//! ids wrapped as `{"value": ...}`), built from store records.

use super::rfc3339;
use crate::model::change::PendingInfo;
use crate::model::ids::InstanceId;
use crate::model::job::{Job, JobView};
use crate::model::outcome::retry_at;
use crate::model::run::Run;
use crate::model::state::{JobGoal, PodState};
use crate::runner::now_millis;
use crate::store::{PodEventRecord, RunRecord};
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

/// Each instance of `job` (all of them, in order) with its runs, oldest
/// first; `runs` come by instance, then run, as the store lists them.
pub fn by_instance<'a>(job: &Job, runs: &'a [RunRecord]) -> Vec<(u32, &'a [RunRecord])> {
    let mut out = Vec::with_capacity(job.spec.instance_count as usize);
    let mut rest = runs;
    for instance in 0..job.spec.instance_count {
        let start = rest
            .iter()
            .position(|r| r.task_id.instance.instance >= instance)
            .unwrap_or(rest.len());
        rest = &rest[start..];
        let len = rest
            .iter()
            .position(|r| r.task_id.instance.instance != instance)
            .unwrap_or(rest.len());
        out.push((instance, &rest[..len]));
        rest = &rest[len..];
    }
    out
}

/// `JobStatus`, from the job as the engine last stored it.
pub fn job_status(view: &JobView) -> Value {
    let job = &view.job;
    let stats: BTreeMap<&'static str, u32> = view
        .instances
        .pod_stats()
        .map(|(state, n)| (state.as_str(), n))
        .collect();
    json!({
        "state": view.state().as_str(),
        "desired_state": desired_job_state(job.goal),
        "creation_time": rfc3339::format(job.created_at),
        "pod_stats": stats,
        "version": version(job.version),
        "spec_version": version(job.spec_version),
        "revision": {"version": job.revision, "updated_at": rfc3339::format(job.updated_at)},
        "workflow_status": job
            .workflows
            .current
            .as_deref()
            .map(|w| super::updates::workflow_info(w)["status"].clone()),
    })
}

/// `JobSummary`.
pub fn job_summary(view: &JobView) -> Value {
    let job = &view.job;
    json!({
        "job_id": {"value": job.job_id.as_str()},
        "name": job.spec.name,
        "owner": job.spec.owner,
        "owning_team": job.spec.owning_team,
        "labels": job.spec.labels,
        "instance_count": job.spec.instance_count,
        "status": job_status(view),
    })
}

/// The pod's health: DISABLED without an enabled liveness check, UNKNOWN
/// until the executor has judged, then HEALTHY or UNHEALTHY.
pub fn health(checked: bool, healthy: Option<bool>) -> &'static str {
    match (checked, healthy) {
        (false, _) => "DISABLED",
        (true, None) => "UNKNOWN",
        (true, Some(true)) => "HEALTHY",
        (true, Some(false)) => "UNHEALTHY",
    }
}

/// Whether the instance's pod has an enabled liveness check.
pub fn is_checked(job: &Job, instance: u32) -> bool {
    job.desired_pod(instance)
        .is_some_and(|pod| pod.liveness_check().is_some())
}

/// The pod's desired state: its own goal within the job's.
pub fn desired_pod_state(job: &Job, instance: u32) -> &'static str {
    if job.wants_running(instance) {
        "POD_STATE_RUNNING"
    } else {
        "POD_STATE_KILLED"
    }
}

/// `PodStatus` of `run`, with the instance's failure count.
pub fn run_status(job: &Job, record: &RunRecord, failure_count: usize) -> Value {
    let instance = record.task_id.instance.instance;
    let run = &record.run;
    let mut status = Map::new();
    status.insert("state".into(), run.state.as_str().into());
    status.insert(
        "pod_id".into(),
        json!({"value": record.task_id.to_string()}),
    );
    status.insert(
        "desired_state".into(),
        desired_pod_state(job, instance).into(),
    );
    if !record.ports.is_empty() {
        let ports: Map<String, Value> = record
            .ports
            .iter()
            .map(|(name, port)| (name.clone(), (*port).into()))
            .collect();
        status.insert("ports".into(), Value::Object(ports));
    }
    if let Some(host) = &record.hostname {
        status.insert("host".into(), host.clone().into());
    }
    if let Some(agent) = &run.agent {
        status.insert("agent_id".into(), json!({"value": agent.as_str()}));
    }
    if let Some(t) = run.started_at {
        status.insert("start_time".into(), rfc3339::format(t).into());
    }
    if let Some(t) = run.completed_at {
        status.insert("completion_time".into(), rfc3339::format(t).into());
    }
    // A kill the scheduler decided on (the runtime limit) explains the end
    // better than the agent's generic reason for it.
    let kill_reason = run.kill_reason.filter(|_| run.state.is_terminal());
    if let Some(reason) = kill_reason.or(run.reason) {
        status.insert("reason".into(), reason.as_str_name().into());
    }
    if let Some(message) = &record.message {
        status.insert("message".into(), message.clone().into());
    }
    status.insert(
        "healthy".into(),
        health(is_checked(job, instance), run.healthy).into(),
    );
    status.insert("failure_count".into(), failure_count.into());
    status.insert("version".into(), version(run.spec_version));
    status.insert(
        "desired_version".into(),
        version(job.desired_spec(instance).1),
    );
    Value::Object(status)
}

/// `PodStatus` of an instance with no run yet: the spec version its
/// first run will run is both its version and its desired one.
pub fn pending_status(job: &Job, instance: u32) -> Value {
    let spec_version = version(job.desired_spec(instance).1);
    json!({
        "state": PodState::Pending.as_str(),
        "desired_state": desired_pod_state(job, instance),
        "desired_version": spec_version,
        "healthy": health(is_checked(job, instance), None),
        "failure_count": 0,
        "version": spec_version,
    })
}

/// The current `PodStatus` of `instance` from its runs (oldest first), with
/// why it waits for a host and when its next retry may start.
pub fn current_status(
    job: &Job,
    instance: u32,
    history: &[RunRecord],
    pending: Option<&PendingInfo>,
) -> Value {
    let mut status = match history.last() {
        Some(run) => run_status(job, run, failure_count(history)),
        None => pending_status(job, instance),
    };
    let waiting = history.last().is_none_or(|r| r.run.state.is_terminal());
    if let (Some(info), true, Value::Object(map)) = (pending, waiting, &mut status) {
        map.insert("pending_reason".into(), info.reason.clone().into());
        if let Ok(metrics) = serde_json::from_str::<Value>(&info.metrics) {
            map.insert("placement_metrics".into(), metrics);
        }
    }
    let pod = job.spec.pod_spec(instance);
    let at = retry_at(&job.instance_id(instance), &pod, history);
    if let (Some(at), Value::Object(map)) = (at, &mut status) {
        if at > now_millis() {
            map.insert("next_retry_time".into(), rfc3339::format(at).into());
        }
    }
    status
}

/// Failures of an instance, as the engine counts them.
pub fn failure_count(history: &[RunRecord]) -> usize {
    history
        .iter()
        .filter(|r| Run::counts_as_failure(&r.run))
        .count()
}

/// `PodSummary` of every instance.
pub fn pod_summaries(
    job: &Job,
    runs: &[RunRecord],
    pending: &BTreeMap<u32, PendingInfo>,
) -> Vec<Value> {
    by_instance(job, runs)
        .into_iter()
        .map(|(instance, history)| {
            let name = InstanceId::new(job.job_id.clone(), instance).pod_name();
            let status = current_status(job, instance, history, pending.get(&instance));
            json!({"pod_name": {"value": name}, "status": status})
        })
        .collect()
}

/// `PodEvent`.
pub fn pod_event(job: &Job, event: &PodEventRecord) -> Value {
    json!({
        "pod_id": {"value": event.task_id.to_string()},
        "actual_state": event.state.as_str(),
        "mesos_state": event.mesos_state,
        "desired_state": desired_pod_state(job, event.task_id.instance.instance),
        "timestamp": rfc3339::format(event.timestamp),
        "agent_id": event.agent_id,
        "hostname": event.hostname,
        "message": event.message,
        "reason": event.reason,
        "healthy": health(is_checked(job, event.task_id.instance.instance), event.healthy),
        "revision": event.revision,
    })
}

// The schemas of the values built above, for the OpenAPI document
// (`super::openapi`). They are written by hand next to their builders;
// tests/tests/openapi_fuzz.rs checks live answers against them.

/// `{"value": "..."}`: an id (job, pod, agent) or an entity version (a
/// decimal number as a string), as requests carry them too.
pub use super::jobs::Wrapped;

/// `revision` of a `JobStatus`: the store revision that last changed the job.
#[derive(utoipa::ToSchema)]
pub struct JobRevision {
    /// The store revision.
    pub version: u64,
    /// When (RFC 3339).
    pub updated_at: String,
}

/// `JobStatus` ([`job_status`]).
#[derive(utoipa::ToSchema)]
pub struct JobStatus {
    /// `JOB_STATE_...`.
    pub state: String,
    /// `JOB_STATE_RUNNING`, `JOB_STATE_KILLED` or `JOB_STATE_DELETED`.
    pub desired_state: String,
    /// RFC 3339.
    pub creation_time: String,
    /// Pods by state (`POD_STATE_...`).
    pub pod_stats: BTreeMap<String, u32>,
    /// The job's entity version.
    pub version: Wrapped,
    /// The spec's version.
    pub spec_version: Wrapped,
    /// The store revision of the last change.
    pub revision: JobRevision,
    /// The current (or last) update's status; null without one.
    pub workflow_status: Option<super::updates::WorkflowStatus>,
}

/// `JobSummary` ([`job_summary`]).
#[derive(utoipa::ToSchema)]
pub struct JobSummary {
    /// The job's id.
    pub job_id: Wrapped,
    /// Its name.
    pub name: String,
    /// Its owner.
    pub owner: String,
    /// Its owning team.
    pub owning_team: String,
    /// Its labels.
    pub labels: Vec<crate::model::spec::Label>,
    /// Its instance count.
    pub instance_count: u32,
    /// Its status.
    pub status: JobStatus,
}

/// `PodStatus` ([`run_status`], [`pending_status`], [`current_status`]).
#[derive(utoipa::ToSchema)]
pub struct PodStatus {
    /// `POD_STATE_...`.
    pub state: String,
    /// The run's id (`<job>-<instance>-<run>`); absent before the first run.
    pub pod_id: Option<Wrapped>,
    /// `POD_STATE_RUNNING` or `POD_STATE_KILLED`.
    pub desired_state: String,
    /// Allocated ports by name.
    pub ports: Option<BTreeMap<String, u32>>,
    /// The agent's host name.
    pub host: Option<String>,
    /// The agent's id.
    pub agent_id: Option<Wrapped>,
    /// RFC 3339.
    pub start_time: Option<String>,
    /// RFC 3339.
    pub completion_time: Option<String>,
    /// Why the run is where it is (a Mesos `REASON_...`).
    pub reason: Option<String>,
    /// The agent's or the scheduler's message.
    pub message: Option<String>,
    /// DISABLED, UNKNOWN, HEALTHY or UNHEALTHY.
    pub healthy: String,
    /// Failed runs of the instance.
    pub failure_count: u64,
    /// The spec version the run runs.
    pub version: Wrapped,
    /// The spec version the instance should run.
    pub desired_version: Wrapped,
    /// Why a waiting pod has no host yet.
    pub pending_reason: Option<String>,
    /// The placement's figures behind `pending_reason`.
    #[schema(value_type = Option<Object>)]
    pub placement_metrics: Option<serde_json::Value>,
    /// When the next retry may start (RFC 3339), while backing off.
    pub next_retry_time: Option<String>,
}

/// `PodSummary` ([`pod_summaries`]).
#[derive(utoipa::ToSchema)]
pub struct PodSummary {
    /// `<job>-<instance>`.
    pub pod_name: Wrapped,
    /// The current status.
    pub status: PodStatus,
}

/// `PodEvent` ([`pod_event`]).
#[derive(utoipa::ToSchema)]
pub struct PodEvent {
    /// The run's id.
    pub pod_id: Wrapped,
    /// `POD_STATE_...`.
    pub actual_state: String,
    /// The Mesos `TASK_...` state, when the event came from Mesos.
    pub mesos_state: Option<String>,
    /// `POD_STATE_RUNNING` or `POD_STATE_KILLED`.
    pub desired_state: String,
    /// RFC 3339.
    pub timestamp: String,
    /// The agent's id.
    pub agent_id: Option<String>,
    /// The agent's host name.
    pub hostname: Option<String>,
    /// The message.
    pub message: Option<String>,
    /// The reason.
    pub reason: Option<String>,
    /// DISABLED, UNKNOWN, HEALTHY or UNHEALTHY.
    pub healthy: String,
    /// The store revision of the event.
    pub revision: u64,
}
