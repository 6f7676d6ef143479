//! `/api/v1/pods/{pod_name}`: the current and previous runs of one pod, and
//! its event history.

use super::error::ApiError;
use super::{views, AppState};
use crate::model::ids::InstanceId;
use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

fn pod_name(raw: &str) -> Result<InstanceId, ApiError> {
    InstanceId::parse_pod_name(raw).map_err(|e| ApiError::invalid("pod_name", e))
}

/// `GET /api/v1/pods/{pod_name}`: `{"current": PodInfo, "previous": [PodInfo]}`.
#[utoipa::path(
    get,
    path = "/api/v1/pods/{pod_name}",
    tag = "pods",
    params(("pod_name" = String, Path, description = "The pod's name, `<job id>-<instance>`")),
    responses((status = 200, description = "OK", body = PodReply))
)]
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let instance = pod_name(&name)?;
    let lookup = instance.clone();
    let (job, runs, pending) = state
        .read(move |s| {
            Ok((
                s.job(&lookup.job)?,
                s.instance_runs(&lookup)?,
                s.pending_reasons(&lookup.job)?,
            ))
        })
        .await?;
    let job = job
        .filter(|j| instance.instance < j.spec.instance_count)
        .ok_or_else(|| ApiError::not_found(format!("pod {name}")))?;
    let spec = job.spec.pod_spec(instance.instance);
    let failures = views::failure_count(&runs);
    let current = views::current_status(
        &job,
        instance.instance,
        &runs,
        pending.get(&instance.instance),
    );
    let previous: Vec<_> = runs
        .iter()
        .rev()
        .skip(1)
        .map(|run| PodInfo {
            spec: &spec,
            status: views::run_status(&job, run, failures),
        })
        .collect();
    Ok(Json(json!(PodReply {
        current: PodInfo {
            spec: &spec,
            status: current,
        },
        previous,
    })))
}

/// `GET /api/v1/pods/{pod_name}/events`.
#[utoipa::path(
    get,
    path = "/api/v1/pods/{pod_name}/events",
    tag = "pods",
    params(("pod_name" = String, Path, description = "The pod's name, `<job id>-<instance>`")),
    responses((status = 200, description = "OK", body = PodEventsReply))
)]
pub async fn events(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let instance = pod_name(&name)?;
    let lookup = instance.clone();
    let (job, events) = state
        .read(move |s| Ok((s.job(&lookup.job)?, s.pod_events(&lookup)?)))
        .await?;
    let job = job
        .filter(|j| instance.instance < j.spec.instance_count)
        .ok_or_else(|| ApiError::not_found(format!("pod {name}")))?;
    let events: Vec<_> = events.iter().map(|e| views::pod_event(&job, e)).collect();
    Ok(Json(json!(PodEventsReply { events })))
}

// The answers' types: the handlers above fill them, and the OpenAPI
// document (`super::openapi`) takes their schemas from them. Serialized
// through a JSON map, whose keys are sorted, as the answers always were.

/// Peloton `PodInfo`: a run's spec and status.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PodInfo<'a> {
    /// The pod's spec.
    pub spec: &'a crate::model::spec::PodSpec,
    /// The run's status ([`views::run_status`], [`views::current_status`]).
    #[schema(value_type = views::PodStatus)]
    pub status: Value,
}

/// The answer of get.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PodReply<'a> {
    /// The current run (or the pending pod).
    pub current: PodInfo<'a>,
    /// Earlier runs, newest first.
    pub previous: Vec<PodInfo<'a>>,
}

/// The answer of events.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct PodEventsReply {
    /// The pod's events, oldest first ([`views::pod_event`]).
    #[schema(value_type = Vec<views::PodEvent>)]
    pub events: Vec<Value>,
}
