//! `/api/v1/jobs`: create, get, list, the job's pods, stop, start, delete.
//! Each handler decodes, calls the model (reader or runner), encodes.

use super::authn::Caller;
use super::body::read_json;
use super::error::{ApiError, Code};
use super::job_budget::{budget_view, BudgetView};
use super::{views, AppState};
use crate::engine::{ApiRequest, Reply};
use crate::model::create_workflow::CreateWorkflow;
use crate::model::ids::JobId;
use crate::model::job::Job;
use crate::model::spec::JobSpec;
use crate::model::state::JobGoal;
use crate::model::task_user;
use crate::model::validate::validate_job;
use crate::runner::ApiCommand;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// A `{"value": ...}` id or version wrapper.
#[derive(Debug, Deserialize, serde::Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Wrapped {
    /// The value.
    pub value: String,
}

/// Peloton `CreateSpec`: the job's creation as a workflow (a batch of
/// instances at a time, retries, tolerated failures, start paused; see
/// [`crate::model::create_workflow`]).
#[derive(Debug, Deserialize, Default, Clone, Copy, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSpec {
    /// Instances created at a time.
    #[serde(default)]
    pub batch_size: u32,
    /// Retries per failing instance during creation.
    #[serde(default)]
    pub max_instance_retries: u32,
    /// Failures tolerated before the creation fails.
    #[serde(default)]
    pub max_tolerable_instance_failures: u32,
    /// Start paused.
    #[serde(default)]
    pub start_paused: bool,
}

impl CreateSpec {
    /// The workflow the job keeps.
    pub fn workflow(self) -> CreateWorkflow {
        CreateWorkflow {
            batch_size: self.batch_size,
            max_instance_retries: self.max_instance_retries,
            max_tolerable_instance_failures: self.max_tolerable_instance_failures,
            paused: self.start_paused,
            aborted: false,
        }
    }
}

/// Peloton `CreateJobRequest`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// The job's id; generated when absent.
    #[serde(default)]
    pub job_id: Option<Wrapped>,
    /// The job.
    pub spec: JobSpec,
    /// Creation SLA.
    #[serde(default)]
    pub create_spec: Option<CreateSpec>,
}

/// Body of stop and start: the entity version the caller saw.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionedRequest {
    /// The job's version; a stale one gets ABORTED.
    #[serde(default)]
    pub version: Option<Wrapped>,
}

/// Query of `DELETE /api/v1/jobs/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// The job's version.
    #[serde(default)]
    pub version: Option<String>,
    /// Stop the job first if it is running.
    #[serde(default)]
    pub force: bool,
}

/// Query of `GET /api/v1/jobs`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// First job to return.
    #[serde(default)]
    pub offset: u32,
    /// Page size.
    #[serde(default)]
    pub limit: Option<u32>,
}

pub(crate) fn query_error(e: QueryRejection) -> ApiError {
    ApiError {
        code: Code::InvalidArgument,
        message: format!("query: {}", e.body_text()),
    }
}

/// Parses an entity version.
pub fn parse_version(field: &str, raw: Option<&str>) -> Result<Option<u64>, ApiError> {
    raw.map(|v| {
        v.parse::<u64>()
            .map_err(|_| ApiError::invalid(field, format!("'{v}' is not a job version")))
    })
    .transpose()
}

/// Hands `caller`'s write to the runner and waits for its answer (once
/// committed); refused at once when the runner's queue is full (see
/// `shed`). Every write passes here, whatever its face: the audit trail
/// records each, with how it ended.
pub async fn ask(
    state: &AppState,
    caller: &Caller,
    request: ApiRequest,
) -> Result<Reply, ApiError> {
    let target = request.target();
    let (reply, answer) = oneshot::channel();
    let submitted = super::shed::submit(
        state,
        ApiCommand {
            request,
            caller: caller.identity.clone(),
            reply,
        },
    );
    let result = match submitted {
        Ok(()) => answer
            .await
            .map_err(|_| ApiError::shutting_down())
            .and_then(|r| r.map_err(ApiError::from)),
        Err(e) => Err(e),
    };
    state
        .audit
        .record(caller, &target, result.as_ref().map(|_| ()));
    result
}

/// Like [`ask`], for a write whose answer is the job as it left it.
pub async fn ask_job(
    state: &AppState,
    caller: &Caller,
    request: ApiRequest,
) -> Result<Box<Job>, ApiError> {
    match ask(state, caller, request).await? {
        Reply::Job(job) => Ok(job),
        Reply::Deleted
        | Reply::Pool(_)
        | Reply::Pools(_)
        | Reply::Hosts(_)
        | Reply::PipelineRun(_)
        | Reply::PipelineRuns(_)
        | Reply::Experiments(_) => Err(ApiError {
            code: Code::Internal,
            message: "the engine answered a job write with something else than a job".into(),
        }),
    }
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs",
    tag = "jobs",
    request_body = CreateJobRequest,
    responses((status = 200, description = "OK", body = CreateJobReply))
)]
/// `POST /api/v1/jobs`.
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: CreateJobRequest = read_json(body, state.config.max_body_bytes, false).await?;
    validate_job(&request.spec, &state.config.limits, "spec")?;
    task_user::check_job(&request.spec, &state.config.task_users, "spec")?;
    let id = match &request.job_id {
        Some(w) => JobId::parse(&w.value).map_err(|e| ApiError::invalid("job_id.value", e))?,
        None => JobId::random(),
    };
    let spec = Box::new(request.spec);
    let create = request.create_spec.map(CreateSpec::workflow);
    let job = ask_job(
        &state,
        &caller,
        ApiRequest::CreateJob {
            job_id: id,
            spec,
            create,
        },
    )
    .await?;
    Ok(Json(json!(CreateJobReply {
        job_id: views::wrapped(&job.job_id),
        version: views::wrapped(job.version),
    })))
}

/// `GET /api/v1/jobs/{id}`; `{id}` is a job's id or name, as on every
/// `/api/v1/jobs/{id}...` route ([`AppState::find_job`]).
#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id or name")),
    responses((status = 200, description = "OK", body = GetJobReply))
)]
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let view = state.find_job(&id).await?;
    let job_id = view.job.job_id.clone();
    let runs = state.read(move |store| store.runs(&job_id)).await?;
    let disruption_budget = budget_view(&view.job, &runs, crate::runner::now_millis());
    Ok(Json(json!(GetJobReply {
        job_info: JobInfo {
            job_id: views::wrapped(&view.job.job_id),
            spec: &view.job.spec,
            status: views::job_status(&view),
        },
        workflow_info: view
            .job
            .workflows
            .current
            .as_deref()
            .map(super::updates::workflow_info),
        disruption_budget,
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs",
    tag = "jobs",
    params(ListQuery),
    responses((status = 200, description = "OK", body = ListJobsReply))
)]
/// `GET /api/v1/jobs?offset=&limit=`.
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let limit = query
        .limit
        .unwrap_or(state.config.max_page)
        .min(state.config.max_page);
    let offset = query.offset;
    let jobs = state.all_published().await?;
    let total = jobs.len();
    let summaries: Vec<_> = jobs
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .map(|view| views::job_summary(view))
        .collect();
    let pagination = super::query::pagination(offset, limit, summaries.len(), total);
    Ok(Json(json!(ListJobsReply {
        jobs: summaries,
        pagination,
    })))
}

#[utoipa::path(
    get,
    path = "/api/v1/jobs/{id}/pods",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id or name")),
    responses((status = 200, description = "OK", body = PodsReply))
)]
/// `GET /api/v1/jobs/{id}/pods`.
pub async fn pods(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = state.find_job_id(&id).await?;
    let lookup = id.clone();
    let (job, runs, pending) = state
        .read(move |s| {
            Ok((
                s.job(&lookup)?,
                s.runs(&lookup)?,
                s.pending_reasons(&lookup)?,
            ))
        })
        .await?;
    let job = job.ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    Ok(Json(json!(PodsReply {
        pods: views::pod_summaries(&job, &runs, &pending)
    })))
}

async fn set_goal(
    state: AppState,
    caller: Caller,
    id: String,
    body: Body,
    goal: JobGoal,
) -> Result<Json<Value>, ApiError> {
    let request: VersionedRequest = read_json(body, state.config.max_body_bytes, true).await?;
    let id = state.find_job_id(&id).await?;
    let expected = parse_version(
        "version.value",
        request.version.as_ref().map(|w| w.value.as_str()),
    )?;
    let job = ask_job(
        &state,
        &caller,
        ApiRequest::SetGoal {
            job_id: id,
            goal,
            expected_version: expected,
        },
    )
    .await?;
    Ok(Json(json!(VersionReply {
        version: views::wrapped(job.version)
    })))
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/stop",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = Option<VersionedRequest>,
    responses((status = 200, description = "OK", body = VersionReply))
)]
/// `POST /api/v1/jobs/{id}/stop`.
pub async fn stop(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    set_goal(state, caller, id, body, JobGoal::Stopped).await
}

#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/start",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = Option<VersionedRequest>,
    responses((status = 200, description = "OK", body = VersionReply))
)]
/// `POST /api/v1/jobs/{id}/start`.
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    set_goal(state, caller, id, body, JobGoal::Running).await
}

#[utoipa::path(
    delete,
    path = "/api/v1/jobs/{id}",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id or name"), DeleteQuery),
    responses((status = 200, description = "OK", body = EmptyReply))
)]
/// `DELETE /api/v1/jobs/{id}?version=&force=`.
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<DeleteQuery>, QueryRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(query) = query.map_err(query_error)?;
    let expected = parse_version("version", query.version.as_deref())?;
    let id = state.find_job_id(&id).await?;
    ask(
        &state,
        &caller,
        ApiRequest::DeleteJob {
            job_id: id,
            expected_version: expected,
            force: query.force,
        },
    )
    .await?;
    Ok((StatusCode::OK, Json(json!(EmptyReply {}))))
}

// The answers' types: the handlers above fill them, and the OpenAPI
// document (`super::openapi`) takes their schemas from them. Serialized
// through a JSON map, whose keys are sorted, as the answers always were.

/// The answer of create.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct CreateJobReply {
    /// The job's id.
    pub job_id: views::Wrapped,
    /// Its version.
    pub version: views::Wrapped,
}

/// Peloton `JobInfo`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct JobInfo<'a> {
    /// The job's id.
    pub job_id: views::Wrapped,
    /// Its spec.
    pub spec: &'a JobSpec,
    /// Its status ([`views::job_status`]).
    #[schema(value_type = views::JobStatus)]
    pub status: Value,
}

/// The answer of get.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct GetJobReply<'a> {
    /// The job.
    pub job_info: JobInfo<'a>,
    /// Its current (or last) update ([`super::updates::workflow_info`]);
    /// null without one.
    #[schema(value_type = Option<super::updates::WorkflowInfo>)]
    pub workflow_info: Option<Value>,
    /// Its disruption budget now.
    pub disruption_budget: BudgetView,
}

/// The answer of list.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ListJobsReply {
    /// The page's jobs, in creation order ([`views::job_summary`]).
    #[schema(value_type = Vec<views::JobSummary>)]
    pub jobs: Vec<Value>,
    /// Where the page is.
    pub pagination: super::query::PageInfo,
}

/// The answer of the job's pods.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PodsReply {
    /// Every instance's pod, in order ([`views::pod_summaries`]).
    #[schema(value_type = Vec<views::PodSummary>)]
    pub pods: Vec<Value>,
}

/// The answer of stop, start and restart: the job's new version.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct VersionReply {
    /// The job's version.
    pub version: views::Wrapped,
}

/// `{}`: the answer of delete and of the pod operations.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct EmptyReply {}
