//! `GET /api/v1/store`: which store this scheduler runs on (its id and
//! creation time), the framework id it holds and its latest revision, as
//! the reader handle reads them: what an operator compares with a backup's
//! report and with the master's frameworks.

use super::{ApiError, AppState};
use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

/// `GET /api/v1/store`.
pub async fn get(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let (identity, framework_id, revision) = state
        .read(|store| Ok((store.identity()?, store.framework_id()?, store.revision()?)))
        .await?;
    Ok(Json(json!({
        "store_id": identity.store_id,
        "created_at": super::rfc3339::format(identity.created_at),
        "framework_id": framework_id,
        "revision": revision,
    })))
}
