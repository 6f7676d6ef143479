//! Pod and job operations of Peloton's PodService and JobService: stop,
//! start and restart one pod (`/api/v1/pods/{pod_name}/stop|start|restart`),
//! and restart a job's pods in batches (`/api/v1/jobs/{id}/restart`). Each
//! handler decodes, hands the write to the runner, and answers once it is
//! committed; the goal-state engine does the killing and launching.

use super::authn::Caller;
use super::body::read_json;
use super::error::ApiError;
use super::jobs::{ask, ask_job, parse_version, Wrapped};
use super::{views, AppState};
use crate::engine::ApiRequest;
use crate::model::ids::InstanceId;
use crate::model::state::PodGoal;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

/// The empty body of the pod operations.
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// Peloton `PodInstanceRange`: instances `from` ≤ i < `to`.
#[derive(Debug, Deserialize, Clone, Copy, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstanceRange {
    /// First instance.
    #[serde(default)]
    pub from: u32,
    /// One past the last instance.
    pub to: u32,
}

/// Peloton `RestartJobRequest` (batch size and ranges inline).
#[derive(Debug, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartJobRequest {
    /// The job's version; a stale one gets ABORTED.
    #[serde(default)]
    pub version: Option<Wrapped>,
    /// Instances restarted at a time (0 = all at once).
    #[serde(default)]
    pub batch_size: u32,
    /// Which instances; absent = all.
    #[serde(default)]
    pub ranges: Option<Vec<InstanceRange>>,
}

/// The instances of a job of `count` in `ranges` (all when None), sorted
/// and once each; a range outside the job is INVALID_ARGUMENT naming it
/// (`{field}[i]`).
pub fn instances_in(
    count: u32,
    ranges: Option<&[InstanceRange]>,
    field: &str,
) -> Result<Vec<u32>, ApiError> {
    let Some(ranges) = ranges else {
        return Ok((0..count).collect());
    };
    let mut list = Vec::new();
    for (i, r) in ranges.iter().enumerate() {
        if r.from >= r.to || r.to > count {
            return Err(ApiError::invalid(
                &format!("{field}[{i}]"),
                format!("must satisfy from < to <= {count} (instance_count)"),
            ));
        }
        list.extend(r.from..r.to);
    }
    list.sort_unstable();
    list.dedup();
    Ok(list)
}

fn pod_name(raw: &str) -> Result<InstanceId, ApiError> {
    InstanceId::parse_pod_name(raw).map_err(|e| ApiError::invalid("pod_name", e))
}

async fn set_pod_goal(
    state: AppState,
    caller: Caller,
    name: String,
    body: Body,
    goal: PodGoal,
) -> Result<Json<Value>, ApiError> {
    let pod = pod_name(&name)?;
    let _: Empty = read_json(body, state.config.max_body_bytes, true).await?;
    set_goal_of(&state, &caller, pod, goal).await?;
    Ok(Json(json!(super::jobs::EmptyReply {})))
}

/// Stops (KILLED) or starts (RUNNING) one pod, once stored; the JSON and
/// gRPC faces both call this.
pub async fn set_goal_of(
    state: &AppState,
    caller: &Caller,
    pod: InstanceId,
    goal: PodGoal,
) -> Result<(), ApiError> {
    ask(state, caller, ApiRequest::SetPodGoal { pod, goal }).await?;
    Ok(())
}

/// Replaces one pod's run by a new one, once stored; the JSON and gRPC
/// faces both call this.
pub async fn restart_pod(
    state: &AppState,
    caller: &Caller,
    pod: InstanceId,
) -> Result<(), ApiError> {
    ask(
        state,
        caller,
        ApiRequest::RestartPods {
            job_id: pod.job.clone(),
            instances: vec![pod.instance],
            batch_size: 0,
            expected_version: None,
            bump: false,
        },
    )
    .await?;
    Ok(())
}

/// `POST /api/v1/pods/{pod_name}/stop`: the pod is killed and stays so.
#[utoipa::path(
    post,
    path = "/api/v1/pods/{pod_name}/stop",
    tag = "pods",
    params(("pod_name" = String, Path, description = "The pod's name, `<job id>-<instance>`")),
    request_body = Option<Empty>,
    responses((status = 200, description = "OK", body = super::jobs::EmptyReply))
)]
pub async fn stop(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    set_pod_goal(state, caller, name, body, PodGoal::Killed).await
}

/// `POST /api/v1/pods/{pod_name}/start`: the pod runs again.
#[utoipa::path(
    post,
    path = "/api/v1/pods/{pod_name}/start",
    tag = "pods",
    params(("pod_name" = String, Path, description = "The pod's name, `<job id>-<instance>`")),
    request_body = Option<Empty>,
    responses((status = 200, description = "OK", body = super::jobs::EmptyReply))
)]
pub async fn start(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    set_pod_goal(state, caller, name, body, PodGoal::Running).await
}

/// `POST /api/v1/pods/{pod_name}/restart`: its run is replaced by a new one.
#[utoipa::path(
    post,
    path = "/api/v1/pods/{pod_name}/restart",
    tag = "pods",
    params(("pod_name" = String, Path, description = "The pod's name, `<job id>-<instance>`")),
    request_body = Option<Empty>,
    responses((status = 200, description = "OK", body = super::jobs::EmptyReply))
)]
pub async fn restart(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let pod = pod_name(&name)?;
    let _: Empty = read_json(body, state.config.max_body_bytes, true).await?;
    restart_pod(&state, &caller, pod).await?;
    Ok(Json(json!(super::jobs::EmptyReply {})))
}

/// `POST /api/v1/jobs/{id}/restart` (`{id}` an id or a name): replaces the runs of the instances in
/// `ranges` (all when absent), `batch_size` at a time.
#[utoipa::path(
    post,
    path = "/api/v1/jobs/{id}/restart",
    tag = "jobs",
    params(("id" = String, Path, description = "The job's id or name")),
    request_body = Option<RestartJobRequest>,
    responses((status = 200, description = "OK", body = super::jobs::VersionReply))
)]
pub async fn restart_job(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: RestartJobRequest = read_json(body, state.config.max_body_bytes, true).await?;
    let id = state.find_job_id(&id).await?;
    let expected = parse_version(
        "version.value",
        request.version.as_ref().map(|w| w.value.as_str()),
    )?;
    let lookup = id.clone();
    let job = state
        .read(move |s| s.job(&lookup))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    let instances = instances_in(job.spec.instance_count, request.ranges.as_deref(), "ranges")?;
    let job = ask_job(
        &state,
        &caller,
        ApiRequest::RestartPods {
            job_id: id,
            instances,
            batch_size: request.batch_size,
            expected_version: expected,
            bump: true,
        },
    )
    .await?;
    Ok(Json(json!(super::jobs::VersionReply {
        version: views::wrapped(job.version)
    })))
}
