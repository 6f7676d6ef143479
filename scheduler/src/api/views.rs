//! The seed-shaped JSON of jobs and pods (Peloton `JobInfo`, `JobStatus`,
//! `JobSummary`, `PodSummary`, `PodStatus`, `PodInfo`, `PodEvent`; snake_case,
//! ids wrapped as `{"value": ...}`), built from store records.

use super::rfc3339;
use crate::model::availability::is_available;
use crate::model::change::PendingInfo;
use crate::model::ids::InstanceId;
use crate::model::job::{Job, JobView};
use crate::model::outcome::retry_at;
use crate::model::run::{handover_in, serving_run, Run};
use crate::model::spec::Label;
use crate::model::state::{JobGoal, PodState};
use crate::runner::now_millis;
use crate::store::{PodEventRecord, RunRecord};
use serde::Serialize;
use serde_json::{json, Value};
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

/// A wrapped id or version.
pub fn wrapped(value: impl ToString) -> Wrapped {
    Wrapped {
        value: value.to_string(),
    }
}

/// `JobStatus`, from the job as the engine last stored it.
pub fn job_status(view: &JobView) -> Value {
    json!(typed_job_status(view))
}

fn typed_job_status(view: &JobView) -> JobStatus {
    let job = &view.job;
    JobStatus {
        state: view.state().as_str(),
        desired_state: desired_job_state(job.goal),
        creation_time: rfc3339::format(job.created_at),
        pod_stats: view
            .instances
            .pod_stats()
            .map(|(state, n)| (state.as_str(), n))
            .collect(),
        version: wrapped(job.version),
        spec_version: wrapped(job.spec_version),
        revision: JobRevision {
            version: job.revision,
            updated_at: rfc3339::format(job.updated_at),
            updated_by: job.updated_by.clone(),
        },
        workflow_status: job
            .workflows
            .current
            .as_deref()
            .map(super::updates::current_status),
    }
}

/// `JobSummary`.
pub fn job_summary(view: &JobView) -> Value {
    let job = &view.job;
    json!(JobSummary {
        job_id: wrapped(&job.job_id),
        name: job.spec.name.clone(),
        owner: job.spec.owner.clone(),
        owning_team: job.spec.owning_team.clone(),
        labels: job.spec.labels.clone(),
        instance_count: job.spec.instance_count,
        status: typed_job_status(view),
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

/// The pod's readiness: DISABLED without an enabled readiness check,
/// UNKNOWN until its executor has reported a check status, then READY or
/// NOT_READY (the check's latest result did not pass, or could not run).
pub fn readiness(checked: bool, ready: Option<bool>) -> &'static str {
    match (checked, ready) {
        (false, _) => "DISABLED",
        (true, None) => "UNKNOWN",
        (true, Some(true)) => "READY",
        (true, Some(false)) => "NOT_READY",
    }
}

/// Whether the instance's pod has an enabled readiness check.
pub fn is_readiness_checked(job: &Job, instance: u32) -> bool {
    job.desired_pod(instance)
        .is_some_and(|pod| pod.readiness_check().is_some())
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
    json!(typed_run_status(job, record, failure_count))
}

fn typed_run_status(job: &Job, record: &RunRecord, failure_count: usize) -> PodStatus {
    let instance = record.task_id.instance.instance;
    let run = &record.run;
    // A kill the scheduler decided on (the runtime limit) explains the end
    // better than the agent's generic reason for it.
    let kill_reason = run.kill_reason.filter(|_| run.state.is_terminal());
    PodStatus {
        state: run.state.as_str(),
        pod_id: Some(wrapped(&record.task_id)),
        desired_state: desired_pod_state(job, instance),
        ports: (!record.ports.is_empty()).then(|| record.ports.iter().cloned().collect()),
        host: record.hostname.clone(),
        agent_id: run.agent.as_ref().map(|agent| wrapped(agent.as_str())),
        start_time: run.started_at.map(rfc3339::format),
        completion_time: run.completed_at.map(rfc3339::format),
        reason: kill_reason.or(run.reason).map(|r| r.as_str_name()),
        message: record.message.clone(),
        image: record
            .image
            .as_ref()
            .and_then(|i| i.name.clone())
            .or_else(|| job.spec.pod_spec(instance).image().map(str::to_owned)),
        image_digest: record.image.as_ref().and_then(|i| i.digest.clone()),
        healthy: health(is_checked(job, instance), run.healthy),
        ready: readiness(is_readiness_checked(job, instance), run.ready),
        failure_count,
        version: wrapped(run.spec_version),
        desired_version: wrapped(job.desired_spec(instance).1),
        pending_reason: None,
        placement_metrics: None,
        next_retry_time: None,
    }
}

/// `PodStatus` of an instance with no run yet: the spec version its
/// first run will run is both its version and its desired one.
pub fn pending_status(job: &Job, instance: u32) -> Value {
    json!(typed_pending_status(job, instance))
}

fn typed_pending_status(job: &Job, instance: u32) -> PodStatus {
    let spec_version = job.desired_spec(instance).1;
    PodStatus {
        state: PodState::Pending.as_str(),
        pod_id: None,
        desired_state: desired_pod_state(job, instance),
        ports: None,
        host: None,
        agent_id: None,
        start_time: None,
        completion_time: None,
        reason: None,
        message: None,
        image: job.spec.pod_spec(instance).image().map(str::to_owned),
        image_digest: None,
        healthy: health(is_checked(job, instance), None),
        ready: readiness(is_readiness_checked(job, instance), None),
        failure_count: 0,
        version: wrapped(spec_version),
        desired_version: wrapped(spec_version),
        pending_reason: None,
        placement_metrics: None,
        next_retry_time: None,
    }
}

/// The current `PodStatus` of `instance` from its runs (oldest first), with
/// why it waits for a host and when its next retry may start.
pub fn current_status(
    job: &Job,
    instance: u32,
    history: &[RunRecord],
    pending: Option<&PendingInfo>,
) -> Value {
    json!(typed_current_status(job, instance, history, pending))
}

fn typed_current_status(
    job: &Job,
    instance: u32,
    history: &[RunRecord],
    pending: Option<&PendingInfo>,
) -> PodStatus {
    let mut status = match serving_record(job, instance, history) {
        Some(run) => typed_run_status(job, run, failure_count(history)),
        None => typed_pending_status(job, instance),
    };
    if let Some(note) = handover_note(job, instance, history) {
        status.message = Some(note);
    }
    let waiting = history.last().is_none_or(|r| r.run.state.is_terminal());
    if let (Some(info), true) = (pending, waiting) {
        status.pending_reason = Some(info.reason.clone());
        status.placement_metrics = serde_json::from_str::<Value>(&info.metrics).ok();
    }
    let pod = job.spec.pod_spec(instance);
    let at = retry_at(&job.instance_id(instance), &pod, history);
    status.next_retry_time = at.filter(|at| *at > now_millis()).map(rfc3339::format);
    status
}

/// The run that stands for the instance: its latest, or during a drain's
/// handover the old run until its replacement serves
/// ([`crate::model::run::serving_run`]).
pub fn serving_record<'a>(
    job: &Job,
    instance: u32,
    history: &'a [RunRecord],
) -> Option<&'a RunRecord> {
    let pod = job.desired_pod(instance)?;
    let at = serving_run(history, |r| is_available(&pod, r))?;
    history.get(at)
}

/// What a pod whose run hands over says: which run replaces it, where.
pub fn handover_note(job: &Job, instance: u32, history: &[RunRecord]) -> Option<String> {
    let old = handover_in(history)?;
    let serving = serving_record(job, instance, history)?;
    let latest = history.last()?;
    (serving.task_id == history[old].task_id).then(|| {
        format!(
            "handing over (its host drains): replacement {} is {} on host {}",
            latest.task_id,
            if latest.run.state.is_live() {
                "starting"
            } else {
                "to be retried"
            },
            latest.hostname.as_deref().unwrap_or("(not placed yet)")
        )
    })
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
            json!(PodSummary {
                pod_name: wrapped(name),
                status: typed_current_status(job, instance, history, pending.get(&instance)),
            })
        })
        .collect()
}

/// `PodEvent`.
pub fn pod_event(job: &Job, event: &PodEventRecord) -> Value {
    let instance = event.task_id.instance.instance;
    json!(PodEvent {
        pod_id: wrapped(&event.task_id),
        actual_state: event.state.as_str(),
        mesos_state: event.mesos_state.clone(),
        desired_state: desired_pod_state(job, instance),
        timestamp: rfc3339::format(event.timestamp),
        agent_id: event.agent_id.clone(),
        hostname: event.hostname.clone(),
        message: event.message.clone(),
        reason: event.reason.clone(),
        healthy: health(is_checked(job, instance), event.healthy),
        ready: readiness(is_readiness_checked(job, instance), event.ready),
        revision: event.revision,
    })
}

// The answers' types: each builder above fills one, and the OpenAPI
// document (`super::openapi`) takes its schema from it. Serialized through
// a JSON map, whose keys are sorted, as the answers always were.

/// `{"value": "..."}`: an id (job, pod, agent) or an entity version (a
/// decimal number as a string), as requests carry them too.
pub use super::jobs::Wrapped;

/// `revision` of a `JobStatus`: the store revision that last changed the job.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobRevision {
    /// The store revision.
    pub version: u64,
    /// When (RFC 3339).
    pub updated_at: String,
    /// Who made the job's current version (empty: anonymous, or before
    /// identities were kept).
    pub updated_by: String,
}

/// `JobStatus` ([`job_status`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobStatus {
    /// `JOB_STATE_...`.
    pub state: &'static str,
    /// `JOB_STATE_RUNNING`, `JOB_STATE_KILLED` or `JOB_STATE_DELETED`.
    pub desired_state: &'static str,
    /// RFC 3339.
    pub creation_time: String,
    /// Pods by state (`POD_STATE_...`).
    #[schema(value_type = BTreeMap<String, u32>)]
    pub pod_stats: BTreeMap<&'static str, u32>,
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
#[derive(Serialize, utoipa::ToSchema)]
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
    pub labels: Vec<Label>,
    /// Its instance count.
    pub instance_count: u32,
    /// Its status.
    pub status: JobStatus,
}

/// `PodStatus` ([`run_status`], [`pending_status`], [`current_status`]).
/// Absent fields are left out, not null.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PodStatus {
    /// `POD_STATE_...`.
    pub state: &'static str,
    /// The run's id (`<job>-<instance>-<run>`); absent before the first run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pod_id: Option<Wrapped>,
    /// `POD_STATE_RUNNING` or `POD_STATE_KILLED`.
    pub desired_state: &'static str,
    /// Allocated ports by name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ports: Option<BTreeMap<String, u32>>,
    /// The agent's host name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The agent's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Wrapped>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// RFC 3339.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_time: Option<String>,
    /// Why the run is where it is (a Mesos `REASON_...`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// The agent's or the scheduler's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The container image the pod runs in, as asked (absent: the command
    /// runs on the agent's own filesystem).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "drover-test/busybox:1")]
    pub image: Option<String>,
    /// The image's manifest digest (`sha256:<hex>`) as the run's executor
    /// resolved it; absent until it said (and on agents that run no image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// DISABLED, UNKNOWN, HEALTHY or UNHEALTHY.
    pub healthy: &'static str,
    /// The readiness check's verdict: DISABLED, UNKNOWN, READY or
    /// NOT_READY. With a readiness check, rolling changes wait for READY.
    pub ready: &'static str,
    /// Failed runs of the instance.
    pub failure_count: usize,
    /// The spec version the run runs.
    pub version: Wrapped,
    /// The spec version the instance should run.
    pub desired_version: Wrapped,
    /// Why a waiting pod has no host yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_reason: Option<String>,
    /// The placement's figures behind `pending_reason`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub placement_metrics: Option<Value>,
    /// When the next retry may start (RFC 3339), while backing off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_retry_time: Option<String>,
}

/// `PodSummary` ([`pod_summaries`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PodSummary {
    /// `<job>-<instance>`.
    pub pod_name: Wrapped,
    /// The current status.
    pub status: PodStatus,
}

/// `PodEvent` ([`pod_event`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PodEvent {
    /// The run's id.
    pub pod_id: Wrapped,
    /// `POD_STATE_...`.
    pub actual_state: &'static str,
    /// The Mesos `TASK_...` state, when the event came from Mesos.
    pub mesos_state: Option<String>,
    /// `POD_STATE_RUNNING` or `POD_STATE_KILLED`.
    pub desired_state: &'static str,
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
    pub healthy: &'static str,
    /// DISABLED, UNKNOWN (the update said nothing of it), READY or
    /// NOT_READY.
    pub ready: &'static str,
    /// The store revision of the event.
    pub revision: u64,
}
