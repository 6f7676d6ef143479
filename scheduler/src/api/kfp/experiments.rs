//! The minimum of Kubeflow's v1beta1 `ExperimentService` the kfp SDK calls
//! around runs (the service is not in the seed): `create_run_from_pipeline_
//! package` gets the experiment by name (`GET /apis/v1beta1/experiments`
//! with a `name` EQUALS filter) and creates it when missing (`POST`);
//! `get_experiment(experiment_id=...)` is `GET .../experiments/{id}`.
//! Plain JSON routes answering as the kfp API server does (snake_case,
//! RFC 3339 times, defaults left out, errors in its gateway shape).
//!
//! The table: `Default` exists from the start (a fixed id, so runs that
//! name it keep naming it across restarts); others are kept in the
//! scheduler's memory only, until the store has its experiments table.
//! Listing follows `ListRunsV1`'s rules ([`super::list`]): the same
//! filter forms, sort, paging and query parameters.

use super::gateway_error;
use super::list::{list, storage_state_name, RunListing};
use crate::api::audit::AuditLog;
use crate::api::authn::Caller;
use crate::api::error::{ApiError, Code};
use crate::api::grpc::kfp_rest_routes::query_message;
use crate::api::grpc::seed_pool;
use crate::model::access::{authorize, Act};
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Response};
use axum::Json;
use drover_seed_api::api::ListRunsRequest;
use serde_json::{json, Map, Value};
use std::sync::Mutex;

/// The id of the `Default` experiment.
pub const DEFAULT_EXPERIMENT_ID: &str = "00000000-0000-4000-8000-00000000d3f0";
/// The name the SDK gives runs with no experiment named.
pub const DEFAULT_EXPERIMENT_NAME: &str = "Default";

/// One experiment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experiment {
    /// Its id (uuid).
    pub id: String,
    /// Its name, unique.
    pub name: String,
    /// Its description.
    pub description: String,
    /// When it was made, ms since the epoch.
    pub created_at_ms: i64,
}

/// The experiments this scheduler knows.
#[derive(Debug)]
pub struct Experiments {
    table: Mutex<Vec<Experiment>>,
}

impl Experiments {
    /// The table with `Default`, made at `now_ms`.
    pub fn new(now_ms: i64) -> Self {
        Experiments {
            table: Mutex::new(vec![Experiment {
                id: DEFAULT_EXPERIMENT_ID.to_owned(),
                name: DEFAULT_EXPERIMENT_NAME.to_owned(),
                description: "All runs created without specifying an experiment are grouped here."
                    .to_owned(),
                created_at_ms: now_ms,
            }]),
        }
    }

    fn all(&self) -> Vec<Experiment> {
        self.table.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// The experiment `id`.
    pub fn get(&self, id: &str) -> Result<Experiment, ApiError> {
        self.all()
            .into_iter()
            .find(|e| e.id == id)
            .ok_or_else(|| ApiError::not_found(format!("experiment {id}")))
    }

    /// Adds an experiment named `name`; a name taken is ALREADY_EXISTS.
    pub fn create(
        &self,
        name: &str,
        description: &str,
        now_ms: i64,
    ) -> Result<Experiment, ApiError> {
        if name.trim().is_empty() {
            return Err(ApiError::invalid(
                "experiment.name",
                "the experiment name is empty: give the experiment a name",
            ));
        }
        let mut table = self.table.lock().map_err(|_| ApiError {
            code: Code::Internal,
            message: "the experiments table is poisoned".into(),
        })?;
        if table.iter().any(|e| e.name == name) {
            return Err(ApiError {
                code: Code::AlreadyExists,
                message: format!("an experiment named {name:?} already exists"),
            });
        }
        let experiment = Experiment {
            id: uuid::Uuid::new_v4().to_string(),
            name: name.to_owned(),
            description: description.to_owned(),
            created_at_ms: now_ms,
        };
        table.push(experiment.clone());
        Ok(experiment)
    }

    /// The page of experiments a list request's query asks for.
    pub fn list(&self, query: Option<&str>) -> Result<Value, ApiError> {
        let input = seed_pool()
            .get_message_by_name("api.ListRunsRequest")
            .ok_or_else(|| ApiError::invalid("query", "api.ListRunsRequest is not in the seed"))?;
        let request: ListRunsRequest = query_message(&input, query)?
            .transcode_to()
            .map_err(|e| ApiError::invalid("query", e))?;
        let all = self.all();
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
pub fn list_route(experiments: &Experiments, RawQuery(query): RawQuery) -> Response {
    answer(experiments.list(query.as_deref()))
}

/// `GET /apis/v1beta1/experiments/{id}`.
pub fn get_route(experiments: &Experiments, Path(id): Path<String>) -> Response {
    answer(experiments.get(&id).map(|e| to_json(&e)))
}

/// `POST /apis/v1beta1/experiments` with the experiment as the body: a
/// write, so a viewer is refused, and it is audited as every write is.
pub fn create_route(
    experiments: &Experiments,
    audit: &AuditLog,
    caller: &Caller,
    body: &[u8],
) -> Response {
    let result = create(experiments, caller, body);
    let target = match &result {
        Ok(made) => format!("experiment {}", made["id"].as_str().unwrap_or("")),
        Err(_) => "experiment".to_owned(),
    };
    audit.record(caller, &target, result.as_ref().map(|_| ()));
    answer(result)
}

fn create(experiments: &Experiments, caller: &Caller, body: &[u8]) -> Result<Value, ApiError> {
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
    let name = text("name");
    let who = &caller.identity;
    authorize(
        who,
        Act::Job {
            owner: &who.name,
            owning_team: "",
        },
        || format!("create experiment {name:?}"),
    )
    .map_err(|denied| ApiError {
        code: Code::PermissionDenied,
        message: denied.to_string(),
    })?;
    experiments
        .create(&name, &text("description"), now_ms())
        .map(|e| to_json(&e))
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

    #[test]
    fn default_is_found_by_the_sdks_name_filter() {
        let experiments = Experiments::new(1_000);
        let filter = r#"{"predicates": [{"op": 1, "key": "name", "stringValue": "Default"}]}"#;
        let query = format!(
            "filter={}",
            form_urlencoded::byte_serialize(filter.as_bytes()).collect::<String>()
        );
        let page = experiments.list(Some(&query)).unwrap();
        assert_eq!(page["experiments"][0]["id"], DEFAULT_EXPERIMENT_ID);
        assert_eq!(
            page["experiments"][0]["created_at"],
            "1970-01-01T00:00:01.000Z"
        );
        assert_eq!(page["total_size"], 1);
        let none = r#"{"predicates": [{"op": 1, "key": "name", "stringValue": "nope"}]}"#;
        let query = format!(
            "filter={}",
            form_urlencoded::byte_serialize(none.as_bytes()).collect::<String>()
        );
        assert_eq!(experiments.list(Some(&query)).unwrap(), json!({}));
    }

    #[test]
    fn names_are_unique_and_required() {
        let experiments = Experiments::new(0);
        let made = experiments.create("mine", "", 5).unwrap();
        assert_eq!(experiments.get(&made.id).unwrap(), made);
        assert_eq!(
            experiments.create("mine", "", 6).unwrap_err().code,
            Code::AlreadyExists
        );
        assert_eq!(
            experiments.create(" ", "", 6).unwrap_err().code,
            Code::InvalidArgument
        );
        assert_eq!(experiments.get("nope").unwrap_err().code, Code::NotFound);
    }
}
