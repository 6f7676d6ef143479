//! `/api/v1/pools`: resource pools (Peloton `ResourcePoolService` in
//! Drover's JSON): list, create, get (with child pools), update, delete,
//! and look an id up by path. Each handler decodes, asks the engine (which
//! holds the tree and what runs in each pool), encodes. Writes are an
//! operator's (the engine checks); reads anyone's.

use super::authn::Caller;
use super::body::read_json;
use super::error::{ApiError, Code};
use super::jobs::{ask, Wrapped};
use super::{views, AppState};
use crate::engine::{ApiRequest, PoolsView, Reply};
use crate::model::pool::{Pool, PoolId, PoolSpec, ResourceKind};
use crate::runner::ApiCommand;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// Body of `POST /api/v1/pools`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePoolRequest {
    /// The new pool's id; a random one when absent.
    pub respool_id: Option<Wrapped>,
    /// Its configuration (`name`, `parent` (an id; the root `root` when
    /// absent), `resources` (`kind` cpu|memory|disk|gpu, `reservation`,
    /// `limit`, `share`, `reservation_type`), `owning_team`,
    /// `description`, `policy`).
    #[schema(value_type = Object)]
    pub spec: PoolSpec,
}

/// Body of `PUT /api/v1/pools/{id}`; a spec without `parent` keeps the
/// pool's.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePoolRequest {
    /// The pool's new configuration; its parent stays.
    #[schema(value_type = Object)]
    pub spec: PoolSpec,
    /// Peloton's `force` (store the config even if it fails validation):
    /// refused when true ([`refuse_force`]).
    #[serde(default)]
    pub force: bool,
}

/// Peloton's `UpdateResourcePoolRequest.force` skips the config's
/// validation and stores it as sent (reservations above limits, children
/// reserving more than their parent). Drover cannot: fair share and
/// admission rest on every stored config being valid. So a forced update
/// is refused, on every face alike, naming the field; sent without
/// `force`, the same update is checked and stored if valid.
pub fn refuse_force(force: bool) -> Result<(), ApiError> {
    if !force {
        return Ok(());
    }
    Err(ApiError::invalid(
        "force",
        "an update forced past validation is not supported: Drover stores only pool configs \
         that pass it (fair share and admission rely on them); send it without force",
    ))
}

/// Query of `GET /api/v1/pools/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetQuery {
    /// Also answer the pool's children.
    #[serde(default)]
    pub include_child_pools: bool,
}

/// Query of `GET /api/v1/pools/lookup`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LookupQuery {
    /// The pool's path, `/a/b` (`/` is the root).
    pub path: String,
}

/// One kind's allocation (Peloton `ResourceUsage`).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolUsage {
    /// cpu, memory, disk or gpu.
    pub kind: &'static str,
    /// What the pool's live runs hold.
    pub allocation: f64,
    /// Slack resources: Drover launches none (always 0).
    pub slack: f64,
}

/// A pool as answered (Peloton `ResourcePoolInfo`, plus its version and
/// how many jobs run in it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolInfo {
    /// Its id.
    pub respool_id: Wrapped,
    /// Its configuration.
    #[schema(value_type = Object)]
    pub spec: PoolSpec,
    /// Its parent (null for the root).
    pub parent: Option<Wrapped>,
    /// Its children.
    pub children: Vec<Wrapped>,
    /// What its live runs hold, per kind (a parent: its children's).
    pub usages: Vec<PoolUsage>,
    /// Its path.
    pub path: Wrapped,
    /// Its version, bumped by every update.
    pub version: u64,
    /// How many jobs run in it.
    pub jobs: usize,
}

/// The answer of `GET /api/v1/pools`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ListPoolsReply {
    /// Every pool, the root first, then by path.
    pub respools: Vec<PoolInfo>,
}

/// The answer of `GET /api/v1/pools/{id}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct GetPoolReply {
    /// The pool.
    pub respool: PoolInfo,
    /// Its children, when asked for.
    pub child_respools: Vec<PoolInfo>,
}

/// The answer of `POST /api/v1/pools` and `GET /api/v1/pools/lookup`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PoolIdReply {
    /// The pool's id.
    pub respool_id: Wrapped,
}

/// The pools as the engine holds them now. A read: not audited.
pub async fn read_pools(state: &AppState, caller: &Caller) -> Result<PoolsView, ApiError> {
    let (reply, answer) = oneshot::channel();
    super::shed::submit(
        state,
        ApiCommand {
            request: ApiRequest::ReadPools,
            caller: caller.identity.clone(),
            reply,
        },
    )?;
    match answer.await.map_err(|_| ApiError::shutting_down())? {
        Ok(Reply::Pools(view)) => Ok(*view),
        Ok(_) => Err(unexpected()),
        Err(e) => Err(e.into()),
    }
}

/// A pool write, answered with the pool as it left it.
pub async fn write_pool(
    state: &AppState,
    caller: &Caller,
    request: ApiRequest,
) -> Result<Pool, ApiError> {
    match ask(state, caller, request).await? {
        Reply::Pool(pool) => Ok(*pool),
        _ => Err(unexpected()),
    }
}

fn unexpected() -> ApiError {
    ApiError {
        code: Code::Internal,
        message: "the engine answered a pool request with something else".into(),
    }
}

/// A pool's id from a route or a request: checked like a job's id.
pub fn pool_id(field: &str, raw: &str) -> Result<PoolId, ApiError> {
    PoolId::parse(raw).ok_or_else(|| {
        ApiError::invalid(
            field,
            format!(
                "'{raw}' is not a pool id (1 to {} letters, digits, '_', '.', '-')",
                crate::model::pool::MAX_POOL_ID_LEN
            ),
        )
    })
}

/// One pool of `view` as answered.
pub fn info(view: &PoolsView, pool: &Pool) -> PoolInfo {
    let used = view.usage.get(&pool.id).copied().unwrap_or_default();
    PoolInfo {
        respool_id: views::wrapped(&pool.id),
        spec: pool.spec.clone(),
        parent: (pool.id != PoolId::root()).then(|| views::wrapped(&pool.spec.parent)),
        children: view
            .tree
            .children(&pool.id)
            .map(|c| views::wrapped(&c.id))
            .collect(),
        usages: ResourceKind::ALL
            .into_iter()
            .map(|kind| PoolUsage {
                kind: kind.name(),
                allocation: kind.of(&used),
                slack: 0.0,
            })
            .collect(),
        path: views::wrapped(view.tree.path(&pool.id).unwrap_or_default()),
        version: pool.version,
        jobs: view.jobs.get(&pool.id).copied().unwrap_or(0),
    }
}

/// Every pool of `view`, by path (the root first).
pub fn all(view: &PoolsView) -> Vec<PoolInfo> {
    let mut pools: Vec<PoolInfo> = view.tree.iter().map(|p| info(view, p)).collect();
    pools.sort_by(|a, b| a.path.value.cmp(&b.path.value));
    pools
}

/// `GET /api/v1/pools`.
#[utoipa::path(
    get,
    path = "/api/v1/pools",
    tag = "pools",
    responses((status = 200, description = "OK", body = ListPoolsReply))
)]
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Json<Value>, ApiError> {
    let view = read_pools(&state, &caller).await?;
    Ok(Json(json!(ListPoolsReply {
        respools: all(&view)
    })))
}

/// `POST /api/v1/pools`.
#[utoipa::path(
    post,
    path = "/api/v1/pools",
    tag = "pools",
    request_body = CreatePoolRequest,
    responses((status = 200, description = "OK", body = PoolIdReply))
)]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let request: CreatePoolRequest = read_json(body, state.config.max_body_bytes, false).await?;
    let id = match &request.respool_id {
        Some(w) => pool_id("respool_id.value", &w.value)?,
        None => PoolId(uuid::Uuid::new_v4().to_string()),
    };
    let pool = write_pool(
        &state,
        &caller,
        ApiRequest::CreatePool {
            pool_id: id,
            spec: Box::new(request.spec),
        },
    )
    .await?;
    Ok(Json(json!(PoolIdReply {
        respool_id: views::wrapped(&pool.id)
    })))
}

/// `GET /api/v1/pools/{id}`.
#[utoipa::path(
    get,
    path = "/api/v1/pools/{id}",
    tag = "pools",
    params(("id" = String, Path, description = "The pool's id"), GetQuery),
    responses((status = 200, description = "OK", body = GetPoolReply))
)]
pub async fn get(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    query: Result<Query<GetQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(super::jobs::query_error)?;
    let view = read_pools(&state, &caller).await?;
    let id = PoolId(id);
    let pool = view
        .tree
        .get(&id)
        .ok_or_else(|| ApiError::from(crate::model::pool_validate::PoolError::NotFound(id)))?;
    let child_respools = if query.include_child_pools {
        view.tree
            .children(&pool.id)
            .map(|c| info(&view, c))
            .collect()
    } else {
        Vec::new()
    };
    Ok(Json(json!(GetPoolReply {
        respool: info(&view, pool),
        child_respools,
    })))
}

/// `PUT /api/v1/pools/{id}`.
#[utoipa::path(
    put,
    path = "/api/v1/pools/{id}",
    tag = "pools",
    params(("id" = String, Path, description = "The pool's id")),
    request_body = UpdatePoolRequest,
    responses((status = 200, description = "OK", body = PoolIdReply))
)]
pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let raw: Value = read_json(body, state.config.max_body_bytes, false).await?;
    let parent_given = raw["spec"].get("parent").is_some_and(|p| !p.is_null());
    let request: UpdatePoolRequest = serde_path_to_error::deserialize(&raw).map_err(|e| {
        let path = e.path().to_string();
        ApiError::invalid(&path, e.into_inner())
    })?;
    refuse_force(request.force)?;
    let pool_id = PoolId(id);
    let mut spec = request.spec;
    if !parent_given {
        // An update names the pool, not its place: a spec without a
        // parent keeps the pool's.
        let pools = read_pools(&state, &caller).await?;
        if let Some(current) = pools.tree.get(&pool_id) {
            spec.parent = current.spec.parent.clone();
        }
    }
    let pool = write_pool(
        &state,
        &caller,
        ApiRequest::UpdatePool {
            pool_id,
            spec: Box::new(spec),
        },
    )
    .await?;
    Ok(Json(json!(PoolIdReply {
        respool_id: views::wrapped(&pool.id)
    })))
}

/// `DELETE /api/v1/pools/{id}`.
#[utoipa::path(
    delete,
    path = "/api/v1/pools/{id}",
    tag = "pools",
    params(("id" = String, Path, description = "The pool's id")),
    responses((status = 200, description = "OK", body = super::jobs::EmptyReply))
)]
pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    ask(
        &state,
        &caller,
        ApiRequest::DeletePool {
            pool_id: PoolId(id),
        },
    )
    .await?;
    Ok(Json(json!(super::jobs::EmptyReply {})))
}

/// `GET /api/v1/pools/lookup?path=/a/b`.
#[utoipa::path(
    get,
    path = "/api/v1/pools/lookup",
    tag = "pools",
    params(LookupQuery),
    responses((status = 200, description = "OK", body = PoolIdReply))
)]
pub async fn lookup(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    query: Result<Query<LookupQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(query) = query.map_err(super::jobs::query_error)?;
    if !query.path.starts_with('/') {
        return Err(ApiError::invalid(
            "path",
            format!("'{}' is not a pool path: it starts with '/'", query.path),
        ));
    }
    let view = read_pools(&state, &caller).await?;
    let pool = view.tree.lookup(&query.path).ok_or_else(|| {
        ApiError::from(crate::model::pool_validate::PoolError::PathNotFound(
            query.path.clone(),
        ))
    })?;
    Ok(Json(json!(PoolIdReply {
        respool_id: views::wrapped(&pool.id)
    })))
}
