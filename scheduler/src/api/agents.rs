//! `GET /api/v1/agents`: the cluster's agents as the leading master lists
//! them, with used and free resources and attributes
//! ([`crate::mesos::agents`]); UNAVAILABLE when no master answers.

use super::error::{ApiError, Code};
use super::AppState;
use crate::mesos::agents::read_agents;
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// `{"agents": [...]}`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let agents = read_agents(&state.masters).await.map_err(|e| ApiError {
        code: Code::Unavailable,
        message: format!("no master answered: {e}"),
    })?;
    Ok(Json(json!({ "agents": agents })))
}
