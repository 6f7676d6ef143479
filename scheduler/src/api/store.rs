//! `GET /api/v1/store`: which store this scheduler runs on (its id and
//! creation time), the framework id it holds and its latest revision, as
//! the reader handle reads them: what an operator compares with a backup's
//! report and with the master's frameworks.

use super::{ApiError, AppState};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

#[utoipa::path(
    get,
    path = "/api/v1/store",
    tag = "cluster",
    responses((status = 200, description = "OK", body = StoreReply))
)]
/// `GET /api/v1/store`.
pub async fn get(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (identity, framework_id, revision) = state
        .read(|store| Ok((store.identity()?, store.framework_id()?, store.revision()?)))
        .await?;
    Ok(Json(json!(StoreReply {
        store_id: identity.store_id,
        created_at: super::rfc3339::format(identity.created_at),
        framework_id,
        revision,
    })))
}

/// The answer of `GET /api/v1/store`; the OpenAPI document takes its
/// schema from it. Serialized through a JSON map (keys sorted).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct StoreReply {
    /// The store's id, made when it was created.
    pub store_id: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// The framework id it holds; null before the first subscription.
    pub framework_id: Option<String>,
    /// Its latest revision.
    pub revision: u64,
}
