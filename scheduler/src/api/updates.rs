//! `/api/v1/jobs/{id}/...`: changing a running job. Replace or patch its
//! spec (an update workflow, Peloton `ReplaceJob`/`PatchJob`), see what a
//! spec would change first (`GetReplaceJobDiff`), roll back, pause, resume
//! or abort the update, scale, and read the updates and their stories
//! (`ListJobUpdates`, `GetWorkflowEvents`). Each handler decodes, asks the
//! engine or reads, encodes; the meaning is in `model::workflow`.

use super::authn::Caller;
use super::body::read_json;
use super::error::{ApiError, Code};
use super::jobs::{ask_job, parse_version, Wrapped};
use super::{rfc3339, views, AppState};
use crate::engine::{ApiRequest, WorkflowAction};
use crate::model::amend::JobAmendment;
use crate::model::job::Job;
use crate::model::spec::JobSpec;
use crate::model::task_user;
use crate::model::validate::validate_job;
use crate::model::workflow::{
    self, SpecDiff, UpdateOptions, Workflow, WorkflowEvent, WorkflowSummary,
};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// Body of `update`: the whole new spec (Peloton `ReplaceJobRequest`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceRequest {
    /// The new spec.
    pub spec: JobSpec,
    /// How to roll (Peloton `UpdateSpec`).
    #[serde(default)]
    pub update_spec: UpdateOptions,
    /// The job's version the caller saw.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Body of `patch`: a JSON merge patch (RFC 7386) of the spec: only the
/// fields named change (Peloton `PatchJobRequest`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    /// The fields to change; `null` removes an optional one.
    pub spec: Value,
    /// How to roll.
    #[serde(default)]
    pub update_spec: UpdateOptions,
    /// The job's version the caller saw.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Body of `update/diff`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiffRequest {
    /// The spec to compare with.
    pub spec: JobSpec,
    /// The job's version the caller saw.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Body of `scale`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// The new instance count.
    pub instance_count: u32,
    /// The job's version the caller saw.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Body of rollback, pause, resume and abort.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct VersionOnly {
    /// The job's version the caller saw.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Query of `workflow/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// One instance's events; the workflow's own without.
    #[serde(default)]
    pub instance: Option<u32>,
}

fn expected(version: Option<&Wrapped>) -> Result<Option<u64>, ApiError> {
    parse_version("version.value", version.map(|w| w.value.as_str()))
}

/// Checks a new spec as a create would.
pub fn checked(state: &AppState, spec: &JobSpec) -> Result<(), ApiError> {
    validate_job(spec, &state.config.limits, "spec")?;
    task_user::check_job(spec, &state.config.task_users, "spec")?;
    Ok(())
}

/// Starts an update of `job` to `spec`, checked as a create would be,
/// for every face; answers the job as the engine left it.
pub async fn ask_update(
    state: &AppState,
    caller: &Caller,
    job: &Job,
    spec: JobSpec,
    options: UpdateOptions,
    expected_version: Option<u64>,
) -> Result<Box<Job>, ApiError> {
    checked(state, &spec)?;
    ask_job(
        state,
        caller,
        ApiRequest::UpdateJob {
            job_id: job.job_id.clone(),
            spec: Box::new(spec),
            options,
            expected_version,
        },
    )
    .await
}

async fn start(
    state: &AppState,
    caller: &Caller,
    job: &Job,
    spec: JobSpec,
    options: UpdateOptions,
    version: Option<&Wrapped>,
) -> Result<Json<Value>, ApiError> {
    let job = ask_update(state, caller, job, spec, options, expected(version)?).await?;
    Ok(Json(json!({
        "version": views::version(job.version),
        "workflow_info": job.workflows.current.as_deref().map(workflow_info),
    })))
}

/// `POST /api/v1/jobs/{id}/update`.
pub async fn replace(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: ReplaceRequest = read_json(body, state.config.max_body_bytes, false).await?;
    let view = state.find_job(&id).await?;
    let version = request.version.as_ref();
    start(
        &state,
        &caller,
        &view.job,
        request.spec,
        request.update_spec,
        version,
    )
    .await
}

/// `POST /api/v1/jobs/{id}/patch`.
pub async fn patch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: PatchRequest = read_json(body, state.config.max_body_bytes, false).await?;
    let view = state.find_job(&id).await?;
    let spec = patched(&view.job.spec, &request.spec)?;
    let version = request.version.as_ref();
    start(
        &state,
        &caller,
        &view.job,
        spec,
        request.update_spec,
        version,
    )
    .await
}

/// `spec` with the merge patch `patch` made to it.
pub fn patched(spec: &JobSpec, patch: &Value) -> Result<JobSpec, ApiError> {
    if !patch.is_object() {
        return Err(ApiError::invalid("spec", "a patch is a JSON object"));
    }
    let mut doc = serde_json::to_value(spec).map_err(|e| ApiError {
        code: Code::Internal,
        message: format!("the job's spec does not serialize: {e}"),
    })?;
    json_patch::merge(&mut doc, patch);
    serde_json::from_value(doc)
        .map_err(|e| ApiError::invalid("spec", format!("the patched spec is not a job spec: {e}")))
}

/// `POST /api/v1/jobs/{id}/update/diff`: what `update` with this spec
/// would change, before anything happens.
pub async fn diff(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: DiffRequest = read_json(body, state.config.max_body_bytes, false).await?;
    let view = state.find_job(&id).await?;
    view.job
        .check_version(expected(request.version.as_ref())?)
        .map_err(|e| ApiError {
            code: Code::Aborted,
            message: e.to_string(),
        })?;
    checked(&state, &request.spec)?;
    Ok(Json(diff_json(&view.job.replace_diff(&request.spec))))
}

/// A diff as Peloton's `GetReplaceJobDiffResponse`.
pub fn diff_json(diff: &SpecDiff) -> Value {
    json!({
        "instances_added": ranges(&diff.added),
        "instances_removed": ranges(&diff.removed),
        "instances_updated": ranges(&diff.updated),
        "instances_unchanged": ranges(&diff.unchanged),
    })
}

fn ranges(instances: &[u32]) -> Value {
    workflow::ranges(instances)
        .into_iter()
        .map(|(from, to)| json!({"from": from, "to": to}))
        .collect()
}

/// `POST /api/v1/jobs/{id}/rollback`.
pub async fn rollback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: VersionOnly = read_json(body, state.config.max_body_bytes, true).await?;
    let job_id = state.find_job_id(&id).await?;
    let job = ask_job(
        &state,
        &caller,
        ApiRequest::RollbackJob {
            job_id,
            expected_version: expected(request.version.as_ref())?,
        },
    )
    .await?;
    Ok(written(&job))
}

async fn steer(
    state: AppState,
    caller: Caller,
    id: String,
    body: Body,
    action: WorkflowAction,
) -> Result<Json<Value>, ApiError> {
    let request: VersionOnly = read_json(body, state.config.max_body_bytes, true).await?;
    let job_id = state.find_job_id(&id).await?;
    let job = ask_job(
        &state,
        &caller,
        ApiRequest::SteerWorkflow {
            job_id,
            action,
            expected_version: expected(request.version.as_ref())?,
        },
    )
    .await?;
    Ok(written(&job))
}

fn written(job: &Job) -> Json<Value> {
    Json(json!({
        "version": views::version(job.version),
        "workflow_info": job.workflows.current.as_deref().map(workflow_info),
    }))
}

/// `POST /api/v1/jobs/{id}/workflow/pause`.
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    steer(state, caller, id, body, WorkflowAction::Pause).await
}

/// `POST /api/v1/jobs/{id}/workflow/resume`.
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    steer(state, caller, id, body, WorkflowAction::Resume).await
}

/// `POST /api/v1/jobs/{id}/workflow/abort`.
pub async fn abort(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    steer(state, caller, id, body, WorkflowAction::Abort).await
}

/// `POST /api/v1/jobs/{id}/scale`: the instance count, without restarting
/// any pod (an update in progress goes on over the instances left).
pub async fn scale(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: ScaleRequest = read_json(body, state.config.max_body_bytes, false).await?;
    let view = state.find_job(&id).await?;
    let mut spec = view.job.spec.clone();
    spec.instance_count = request.instance_count;
    validate_job(&spec, &state.config.limits, "spec")?;
    let job = ask_job(
        &state,
        &caller,
        ApiRequest::AmendJob {
            job_id: view.job.job_id.clone(),
            expected_version: expected(request.version.as_ref())?,
            amend: Box::new(JobAmendment {
                instance_count: Some(request.instance_count),
                ..JobAmendment::default()
            }),
        },
    )
    .await?;
    Ok(written(&job))
}

/// `GET /api/v1/jobs/{id}/updates`: the current (or last) update, then
/// earlier ones, newest first (Peloton `ListJobUpdates`).
pub async fn list(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state.find_job(&id).await?;
    let workflows = &view.job.workflows;
    let mut infos: Vec<Value> = workflows
        .current
        .as_deref()
        .map(workflow_info)
        .into_iter()
        .collect();
    infos.extend(workflows.past.iter().rev().map(past_info));
    Ok(Json(json!({"workflow_infos": infos})))
}

/// `GET /api/v1/jobs/{id}/workflow/events?instance=`: the story of the
/// current (or last) update (Peloton `GetWorkflowEvents`).
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<EventsQuery>,
) -> Result<Json<Value>, ApiError> {
    let view = state.find_job(&id).await?;
    let Some(current) = view.job.workflows.current.as_deref() else {
        return Ok(Json(json!({"events": []})));
    };
    let (job_id, workflow) = (view.job.job_id.clone(), current.id);
    let events = state
        .read(move |s| s.workflow_events(&job_id, workflow, query.instance))
        .await?;
    let events: Vec<Value> = events.iter().map(event_json).collect();
    Ok(Json(json!({"events": events})))
}

/// A `WorkflowEvent`.
pub fn event_json(event: &WorkflowEvent) -> Value {
    json!({
        "type": "WORKFLOW_TYPE_UPDATE",
        "state": event.state.peloton_name(),
        "timestamp": rfc3339::format(event.at),
    })
}

/// A `WorkflowInfo` of the current (or last) update: what an earlier one
/// shows ([`past_info`]), with the instances being moved now and Drover's
/// `batch` (its window: size, instances released and in all).
pub fn workflow_info(w: &Workflow) -> Value {
    let mut info = past_info(&w.summary());
    info["status"]["instances_current"] = json!(w.current());
    info["batch"] = json!({
        "size": w.options.batch_size,
        "released": w.released,
        "instances": w.order.len(),
        "rolling_back": w.rolling_back,
    });
    info
}

/// A `WorkflowInfo` of an update, with Drover's own `workflow_id`.
pub fn past_info(w: &WorkflowSummary) -> Value {
    json!({
        "workflow_id": w.id,
        "status": {
            "type": "WORKFLOW_TYPE_UPDATE",
            "state": w.state.peloton_name(),
            "num_instances_completed": w.completed,
            "num_instances_remaining": w.remaining,
            "num_instances_failed": w.failed,
            "version": views::version(w.to_version),
            "prev_version": views::version(w.from_version),
            "creation_time": rfc3339::format(w.created_at),
            "update_time": rfc3339::format(w.updated_at),
        },
        "started_by": w.started_by,
        "update_spec": w.options,
        "instances_added": ranges(&w.diff.added),
        "instances_removed": ranges(&w.diff.removed),
        "instances_updated": ranges(&w.diff.updated),
    })
}
