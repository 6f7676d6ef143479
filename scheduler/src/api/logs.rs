//! `GET /api/v1/pods/{pod_name}/logs/{stdout|stderr}?offset=N&length=L&run=R`:
//! a chunk of a run's sandbox file (the current run, or run `R`), read
//! through its agent's files API and answered as Mesos answers
//! `/files/read`: `{"data": "...", "offset": N}`. Without `offset` the data
//! is empty and the offset is the file's size, where a follower starts.
//! The agent is found as for BrowsePodSandbox ([`agent_files`]); each run
//! is its own executor (its task id), so its sandbox is that executor's
//! latest run.

use super::error::{ApiError, Code};
use super::jobs::query_error;
use super::AppState;
use crate::mesos::agent_files::{self, FileChunk, SandboxError};
use crate::model::ids::InstanceId;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;

/// The most bytes one call returns (the agent caps a read at 1 MiB too).
pub const MAX_LENGTH: u64 = 1 << 20;

/// The query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Where to read from; none: the file's size (and no data).
    #[serde(default)]
    pub offset: Option<u64>,
    /// How many bytes at most (capped at [`MAX_LENGTH`]).
    #[serde(default)]
    pub length: Option<u64>,
    /// Which run (its number, the task id's last part); none: the current.
    #[serde(default)]
    pub run: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/v1/pods/{pod_name}/logs/{stream}",
    tag = "pods",
    params(("pod_name" = String, Path, description = "The pod's name, `<job id>-<instance>`"), ("stream" = inline(LogStream), Path, description = "Which file of the sandbox"), LogQuery),
    responses(
        (status = 200, description = "OK", body = FileChunk),
        (status = 503, description = "The master or the run's agent cannot be reached, or the scheduler has no framework id yet", body = super::error::ErrorBody),
    )
)]
/// The handler.
pub async fn read(
    State(state): State<AppState>,
    Path((name, stream)): Path<(String, String)>,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<FileChunk>, ApiError> {
    let Query(query) = query.map_err(query_error)?;
    if stream != "stdout" && stream != "stderr" {
        return Err(ApiError::invalid(
            "stream",
            format!("'{stream}' is neither stdout nor stderr"),
        ));
    }
    let pod = InstanceId::parse_pod_name(&name).map_err(|e| ApiError::invalid("pod_name", e))?;
    let lookup = pod.clone();
    let (job, runs, framework) = state
        .read(move |s| {
            Ok((
                s.job(&lookup.job)?,
                s.instance_runs(&lookup)?,
                s.framework_id()?,
            ))
        })
        .await?;
    if !job.is_some_and(|j| j.has_instance(pod.instance)) {
        return Err(ApiError::not_found(format!("pod {name}")));
    }
    let run = match query.run {
        None => runs
            .last()
            .ok_or_else(|| ApiError::not_found(format!("a run of pod {name} (never launched)")))?,
        Some(n) => runs
            .iter()
            .find(|r| r.task_id.run == n)
            .ok_or_else(|| ApiError::not_found(format!("run {n} of pod {name}")))?,
    };
    let executor = run.task_id.to_string();
    let agent = run.run.agent.clone().ok_or_else(|| {
        ApiError::not_found(format!(
            "the sandbox of {executor} (it has not run on an agent)"
        ))
    })?;
    let framework = framework.ok_or_else(|| ApiError {
        code: Code::Unavailable,
        message: "the scheduler has no framework id yet".into(),
    })?;
    let length = Some(query.length.unwrap_or(MAX_LENGTH).min(MAX_LENGTH));
    agent_files::read_sandbox_file(
        &state.masters,
        agent.as_str(),
        &framework,
        &executor,
        &stream,
        query.offset,
        length,
    )
    .await
    .map(Json)
    .map_err(|e| sandbox_error(&executor, &stream, e))
}

/// NOT_FOUND when the agent or the file is gone; UNAVAILABLE when the
/// master or the agent cannot be reached or answers otherwise.
fn sandbox_error(executor: &str, stream: &str, e: SandboxError) -> ApiError {
    let code = match e {
        SandboxError::UnknownAgent(_) | SandboxError::NoSandbox { .. } => Code::NotFound,
        SandboxError::NoMaster(_) | SandboxError::Agent { .. } => Code::Unavailable,
    };
    ApiError {
        code,
        message: format!("{stream} of {executor}: {e}"),
    }
}

/// The `{stream}` of the route, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
pub enum LogStream {
    /// The task's standard output.
    #[schema(rename = "stdout")]
    Stdout,
    /// The task's standard error.
    #[schema(rename = "stderr")]
    Stderr,
}
