//! The minimum of Kubeflow's v1beta1 `ExperimentService` the kfp SDK calls
//! around runs (the service is not in the seed): `create_run_from_pipeline_
//! package` gets the experiment by name (`GET /apis/v1beta1/experiments`
//! with a `name` EQUALS filter) and creates it when missing (`POST`);
//! `get_experiment(experiment_id=...)` is `GET .../experiments/{id}`.
//! Plain JSON routes answering as the kfp API server does (snake_case,
//! RFC 3339 times, defaults left out, errors in its gateway shape).
//!
//! The table is the engine's (stored: migration 17, `Default` made with
//! the store, a fixed id so runs that name it keep naming it across
//! restarts); a create is stored before it is answered. Listing follows
//! `ListRunsV1`'s rules ([`super::list`]): the same filter forms, sort,
//! paging and query parameters.

use super::gateway_error;
use super::list::{list, storage_state_name, RunListing};
use crate::api::authn::Caller;
use crate::api::error::{ApiError, Code};
use crate::api::grpc::kfp_rest_routes::query_message;
use crate::api::grpc::seed_pool;
use crate::api::jobs::ask;
use crate::api::AppState;
use crate::engine::{ApiRequest, Reply};
pub use crate::model::pipeline_run::experiment::{
    Experiment, DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME,
};
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_seed_api::api::ListRunsRequest;
use serde_json::{json, Map, Value};

/// Every experiment, as the engine holds them.
async fn all(state: &AppState, caller: &Caller) -> Result<Vec<Experiment>, ApiError> {
    match ask(state, caller, ApiRequest::ListExperiments).await? {
        Reply::Experiments(all) => Ok(all),
        _ => Err(ApiError {
            code: Code::Internal,
            message: "the engine answered a list of experiments with something else".into(),
        }),
    }
}

/// The experiment `id` among `all`.
pub fn find(all: &[Experiment], id: &str) -> Result<Experiment, ApiError> {
    all.iter()
        .find(|e| e.id == id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("experiment {id}")))
}

/// The page of `all` a list request's query asks for.
pub fn page(all: &[Experiment], query: Option<&str>) -> Result<Value, ApiError> {
    let input = seed_pool()
        .get_message_by_name("api.ListRunsRequest")
        .ok_or_else(|| ApiError::invalid("query", "api.ListRunsRequest is not in the seed"))?;
    let request: ListRunsRequest = query_message(&input, query)?
        .transcode_to()
        .map_err(|e| ApiError::invalid("query", e))?;
    let listings: Vec<RunListing> = all
        .iter()
        .map(|e| RunListing {
            id: e.id.clone(),
            name: e.name.clone(),
            description: e.description.clone(),
            created_at_ms: e.created_at_ms,
            scheduled_at_ms: 0,
            archived: false,
            status: String::new(),
            experiment_id: e.id.clone(),
        })
        .collect();
    let page = list(&listings, &request)?;
    let experiments: Vec<Value> = page
        .runs
        .iter()
        .filter_map(|l| all.iter().find(|e| e.id == l.id))
        .map(to_json)
        .collect();
    let mut body = Map::new();
    if !experiments.is_empty() {
        body.insert("experiments".into(), Value::Array(experiments));
    }
    if page.total_size != 0 {
        body.insert("total_size".into(), json!(page.total_size));
    }
    if !page.next_page_token.is_empty() {
        body.insert("next_page_token".into(), json!(page.next_page_token));
    }
    Ok(Value::Object(body))
}

/// An experiment as the kfp API server writes it (defaults left out).
pub fn to_json(e: &Experiment) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), json!(e.id));
    body.insert("name".into(), json!(e.name));
    if !e.description.is_empty() {
        body.insert("description".into(), json!(e.description));
    }
    body.insert(
        "created_at".into(),
        json!(crate::api::rfc3339::format(e.created_at_ms)),
    );
    body.insert("storage_state".into(), json!(storage_state_name(false)));
    Value::Object(body)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn answer(result: Result<Value, ApiError>) -> Response {
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => gateway_error::from_api(e),
    }
}

/// `GET /apis/v1beta1/experiments`.
pub async fn list_route(state: &AppState, caller: &Caller, query: RawQuery) -> Response {
    let result = match all(state, caller).await {
        Ok(all) => page(&all, query.0.as_deref()),
        Err(e) => Err(e),
    };
    answer(result)
}

/// `GET /apis/v1beta1/experiments/{id}`.
pub async fn get_route(state: &AppState, caller: &Caller, Path(id): Path<String>) -> Response {
    let result = match all(state, caller).await {
        Ok(all) => find(&all, &id).map(|e| to_json(&e)),
        Err(e) => Err(e),
    };
    answer(result)
}

/// `POST /apis/v1beta1/experiments` with the experiment as the body: a
/// write, stored before it is answered (and audited, as every write is).
pub async fn create_route(state: &AppState, caller: &Caller, body: &[u8]) -> Response {
    answer(create(state, caller, body).await)
}

async fn create(state: &AppState, caller: &Caller, body: &[u8]) -> Result<Value, ApiError> {
    let parsed: Result<Value, _> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        serde_json::from_slice(body)
    };
    let Ok(Value::Object(fields)) = parsed else {
        return Err(ApiError::invalid(
            "experiment",
            "the body is not an api.Experiment in JSON",
        ));
    };
    let text = |key: &str| {
        fields
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let experiment = Experiment {
        id: uuid::Uuid::new_v4().to_string(),
        name: text("name"),
        description: text("description"),
        created_at_ms: now_ms(),
    };
    match ask(
        state,
        caller,
        ApiRequest::CreateExperiment(Box::new(experiment)),
    )
    .await?
    {
        Reply::Experiments(made) if made.len() == 1 => Ok(to_json(&made[0])),
        _ => Err(ApiError {
            code: Code::Internal,
            message: "the engine answered a new experiment with something else".into(),
        }),
    }
}

/// `GET /apis/v1beta1/healthz`, as kfp 1.8 answers it in a single-user
/// deployment (`multi_user` false: the SDK then asks for no namespace).
pub fn healthz() -> Response {
    Json(json!({
        "commit_sha": "unknown",
        "tag_name": concat!("drover-", env!("CARGO_PKG_VERSION")),
        "multi_user": false,
    }))
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_at(ms: i64) -> Experiment {
        Experiment {
            id: DEFAULT_EXPERIMENT_ID.to_owned(),
            name: DEFAULT_EXPERIMENT_NAME.to_owned(),
            description: String::new(),
            created_at_ms: ms,
        }
    }

    #[test]
    fn default_is_found_by_the_sdks_name_filter() {
        let all = [default_at(1_000)];
        let filter = r#"{"predicates": [{"op": 1, "key": "name", "stringValue": "Default"}]}"#;
        let query = format!(
            "filter={}",
            form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let found = page(&all, Some(&query)).unwrap();
        assert_eq!(found["experiments"][0]["id"], DEFAULT_EXPERIMENT_ID);
        assert_eq!(
            found["experiments"][0]["created_at"],
            "1970-01-01T00:00:01.000Z"
        );
        assert_eq!(found["total_size"], 1);
        let none = r#"{"predicates": [{"op": 1, "key": "name", "stringValue": "nope"}]}"#;
        let query = format!(
            "filter={}",
            form_urlencoded::byte_serialize(none.as_bytes()).collect::<String>()
        );
        assert_eq!(page(&all, Some(&query)).unwrap(), json!({}));
        assert_eq!(find(&all, "nope").unwrap_err().code, Code::NotFound);
    }
}
