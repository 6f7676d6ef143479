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
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Body of `update`: the whole new spec (Peloton `ReplaceJobRequest`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchRequest {
    /// The fields to change; `null` removes an optional one.
    #[schema(value_type = Object)]
    pub spec: Value,
    /// How to roll.
    #[serde(default)]
    pub update_spec: UpdateOptions,
    /// The job's version the caller saw.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Body of `update/diff`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiffRequest {
    /// The spec to compare with.
    pub spec: JobSpec,
    /// The job's version the caller saw.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Body of `scale`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleRequest {
    /// The new instance count.
    pub instance_count: u32,
    /// The job's version the caller saw.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Body of rollback, pause, resume and abort.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionOnly {
    /// The job's version the caller saw.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Query of `workflow/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
    Ok(written(&job))
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/update",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = ReplaceRequest,
    responses((status = 200, description = "OK", body = WrittenReply))
)]
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

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/patch",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = PatchRequest,
    responses((status = 200, description = "OK", body = WrittenReply))
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/update/diff",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = DiffRequest,
    responses((status = 200, description = "OK", body = DiffReply))
)]
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
    json!(DiffReply {
        instances_added: ranges(&diff.added),
        instances_removed: ranges(&diff.removed),
        instances_updated: ranges(&diff.updated),
        instances_unchanged: ranges(&diff.unchanged),
    })
}

fn ranges(instances: &[u32]) -> Vec<InstanceRangeView> {
    workflow::ranges(instances)
        .into_iter()
        .map(|(from, to)| InstanceRangeView { from, to })
        .collect()
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/rollback",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = Option<VersionOnly>,
    responses((status = 200, description = "OK", body = WrittenReply))
)]
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
    Json(json!(WrittenReply {
        version: views::wrapped(job.version),
        workflow_info: job.workflows.current.as_deref().map(workflow_info),
    }))
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/workflow/pause",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = Option<VersionOnly>,
    responses((status = 200, description = "OK", body = WrittenReply))
)]
/// `POST /api/v1/jobs/{id}/workflow/pause`.
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    steer(state, caller, id, body, WorkflowAction::Pause).await
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/workflow/resume",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = Option<VersionOnly>,
    responses((status = 200, description = "OK", body = WrittenReply))
)]
/// `POST /api/v1/jobs/{id}/workflow/resume`.
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    steer(state, caller, id, body, WorkflowAction::Resume).await
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/workflow/abort",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = Option<VersionOnly>,
    responses((status = 200, description = "OK", body = WrittenReply))
)]
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
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/scale",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = ScaleRequest,
    responses((status = 200, description = "OK", body = WrittenReply))
)]
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
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/updates",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name")),
    responses((status = 200, description = "OK", body = UpdatesReply))
)]
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
    Ok(Json(json!(UpdatesReply {
        workflow_infos: infos
    })))
}

/// `GET /api/v1/jobs/{id}/workflow/events?instance=`: the story of the
/// current (or last) update (Peloton `GetWorkflowEvents`).
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/workflow/events",
    tag = "updates",
    params(("id" = String, Path, description = "The job's id or name"), EventsQuery),
    responses((status = 200, description = "OK", body = WorkflowEventsReply))
)]
pub async fn events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(super::jobs::query_error)?;
    let view = state.find_job(&id).await?;
    let Some(current) = view.job.workflows.current.as_deref() else {
        return Ok(Json(json!(WorkflowEventsReply { events: Vec::new() })));
    };
    let (job_id, workflow) = (view.job.job_id.clone(), current.id);
    let events = state
        .read(move |s| s.workflow_events(&job_id, workflow, query.instance))
        .await?;
    let events: Vec<Value> = events.iter().map(event_json).collect();
    Ok(Json(json!(WorkflowEventsReply { events })))
}

/// A `WorkflowEvent`.
pub fn event_json(event: &WorkflowEvent) -> Value {
    json!(WorkflowEventView {
        workflow_type: UPDATE,
        state: event.state.peloton_name(),
        timestamp: rfc3339::format(event.at),
    })
}

/// A `WorkflowInfo` of the current (or last) update: what an earlier one
/// shows ([`past_info`]), with the instances being moved now and Drover's
/// `batch` (its window: size, instances released and in all).
pub fn workflow_info(w: &Workflow) -> Value {
    json!(current_info(w))
}

fn current_info(w: &Workflow) -> WorkflowInfo {
    let mut info = typed_past_info(&w.summary());
    info.status.instances_current = Some(w.current());
    info.batch = Some(BatchView {
        size: w.options.batch_size,
        released: w.released,
        instances: w.order.len(),
        rolling_back: w.rolling_back,
    });
    info
}

/// The `WorkflowStatus` of the current (or last) update, as its
/// [`workflow_info`] has it (a `JobStatus`' `workflow_status`).
pub fn current_status(w: &Workflow) -> WorkflowStatus {
    current_info(w).status
}

/// A `WorkflowInfo` of an update, with Drover's own `workflow_id`.
pub fn past_info(w: &WorkflowSummary) -> Value {
    json!(typed_past_info(w))
}

fn typed_past_info(w: &WorkflowSummary) -> WorkflowInfo {
    WorkflowInfo {
        workflow_id: w.id,
        status: WorkflowStatus {
            workflow_type: UPDATE,
            state: w.state.peloton_name(),
            num_instances_completed: w.completed,
            num_instances_remaining: w.remaining,
            num_instances_failed: w.failed,
            version: wrapped(w.to_version),
            prev_version: wrapped(w.from_version),
            creation_time: rfc3339::format(w.created_at),
            update_time: rfc3339::format(w.updated_at),
            instances_current: None,
        },
        started_by: w.started_by.clone(),
        update_spec: w.options,
        instances_added: ranges(&w.diff.added),
        instances_removed: ranges(&w.diff.removed),
        instances_updated: ranges(&w.diff.updated),
        batch: None,
    }
}

/// Every workflow Drover keeps is an update.
const UPDATE: &str = "WORKFLOW_TYPE_UPDATE";

fn wrapped(version: u64) -> Wrapped {
    Wrapped {
        value: version.to_string(),
    }
}

// The answers' types: the builders above fill them, and the OpenAPI
// document (`super::openapi`) takes their schemas from them. Serialized
// through a JSON map, whose keys are sorted, as the answers always were.

/// `{"from", "to"}`: instances `from` ≤ i < `to` ([`ranges`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct InstanceRangeView {
    /// First instance.
    pub from: u32,
    /// One past the last.
    pub to: u32,
}

/// A `WorkflowStatus` ([`past_info`], [`workflow_info`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkflowStatus {
    /// `WORKFLOW_TYPE_UPDATE`.
    #[serde(rename = "type")]
    pub workflow_type: &'static str,
    /// `WORKFLOW_STATE_...`.
    pub state: &'static str,
    /// Instances moved.
    pub num_instances_completed: u32,
    /// Instances still to move.
    pub num_instances_remaining: u32,
    /// Instances that failed.
    pub num_instances_failed: u32,
    /// The job version the update moves to.
    pub version: Wrapped,
    /// The job version it moves from.
    pub prev_version: Wrapped,
    /// RFC 3339.
    pub creation_time: String,
    /// RFC 3339.
    pub update_time: String,
    /// The instances being moved now (the current update only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instances_current: Option<Vec<u32>>,
}

/// Drover's `batch` of the current update: its window.
#[derive(Serialize, utoipa::ToSchema)]
pub struct BatchView {
    /// Most instances moved at once.
    pub size: u32,
    /// Instances released so far.
    pub released: u32,
    /// Instances in all.
    pub instances: usize,
    /// Whether it is rolling back.
    pub rolling_back: bool,
}

/// A `WorkflowInfo` ([`past_info`], [`workflow_info`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkflowInfo {
    /// Drover's id of the update, within the job.
    pub workflow_id: u32,
    /// Its status.
    pub status: WorkflowStatus,
    /// Who started it (empty: anonymous, or before identities were kept).
    pub started_by: String,
    /// How it rolls.
    pub update_spec: UpdateOptions,
    /// Instances it adds.
    pub instances_added: Vec<InstanceRangeView>,
    /// Instances it removes.
    pub instances_removed: Vec<InstanceRangeView>,
    /// Instances it changes.
    pub instances_updated: Vec<InstanceRangeView>,
    /// Its window (the current update only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<BatchView>,
}

/// The answer of update, patch, rollback, pause, resume, abort and scale
/// ([`written`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct WrittenReply {
    /// The job's new version.
    pub version: views::Wrapped,
    /// The current update ([`workflow_info`]); null without one.
    #[schema(value_type = Option<WorkflowInfo>)]
    pub workflow_info: Option<Value>,
}

/// Peloton `GetReplaceJobDiffResponse` ([`diff_json`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct DiffReply {
    /// Instances the spec would add.
    pub instances_added: Vec<InstanceRangeView>,
    /// Instances it would remove.
    pub instances_removed: Vec<InstanceRangeView>,
    /// Instances it would change.
    pub instances_updated: Vec<InstanceRangeView>,
    /// Instances it would leave as they are.
    pub instances_unchanged: Vec<InstanceRangeView>,
}

/// `ListJobUpdates` ([`list`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct UpdatesReply {
    /// The current (or last) update, then earlier ones, newest first.
    #[schema(value_type = Vec<WorkflowInfo>)]
    pub workflow_infos: Vec<Value>,
}

/// A `WorkflowEvent` ([`event_json`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkflowEventView {
    /// `WORKFLOW_TYPE_UPDATE`.
    #[serde(rename = "type")]
    pub workflow_type: &'static str,
    /// `WORKFLOW_STATE_...`.
    pub state: &'static str,
    /// RFC 3339.
    pub timestamp: String,
}

/// `GetWorkflowEvents` ([`events`]).
#[derive(Serialize, utoipa::ToSchema)]
pub struct WorkflowEventsReply {
    /// The events, oldest first ([`event_json`]).
    #[schema(value_type = Vec<WorkflowEventView>)]
    pub events: Vec<Value>,
}
