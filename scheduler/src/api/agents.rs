//! `GET /api/v1/agents`: the cluster's agents as the leading master lists
//! them, with used and free resources and attributes
//! ([`crate::mesos::agents`]); UNAVAILABLE when no master answers.

use super::error::{ApiError, Code};
use super::AppState;
use crate::mesos::agents::read_agents;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

#[utoipa::path(
    get,
    path = "/api/v1/agents",
    tag = "cluster",
    responses((status = 200, description = "OK", body = AgentsReply))
)]
/// `{"agents": [...]}`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let agents = read_agents(&state.masters).await.map_err(|e| ApiError {
        code: Code::Unavailable,
        message: format!("no master answered: {e}"),
    })?;
    Ok(Json(json!({ "agents": agents })))
}

/// One agent as [`crate::mesos::agents`] builds it from the master's state;
/// the schema of that value, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
pub struct AgentView {
    /// The agent's id (as the master gives it).
    #[schema(value_type = Option<String>)]
    pub id: Value,
    /// Its host name.
    #[schema(value_type = Option<String>)]
    pub hostname: Value,
    /// Whether the master counts it active.
    pub active: bool,
    /// Its resources by name (cpus, mem, disk, ports, ...).
    #[schema(value_type = Object)]
    pub resources: Value,
    /// What is used.
    #[schema(value_type = Object)]
    pub used_resources: Value,
    /// What is free, per scalar resource.
    #[schema(value_type = Object)]
    pub free_resources: Value,
    /// Its attributes.
    #[schema(value_type = Object)]
    pub attributes: Value,
}

/// The answer of list.
#[derive(utoipa::ToSchema)]
pub struct AgentsReply {
    /// The agents.
    pub agents: Vec<AgentView>,
}
