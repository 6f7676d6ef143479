//! The `/sim` JSON API: inspect the simulated cluster and inject faults.
//! Each fault is handed to the master task as an input (`faults.rs`), so it
//! is ordered with every call. Errors are `{"code": ..., "message": ...}`.
//!
//! | method | path | body | effect |
//! |---|---|---|---|
//! | GET | `/sim` | | counts of agents, frameworks, offers, tasks |
//! | GET | `/sim/agents` | | every agent with its state |
//! | POST | `/sim/agents` | `{"count":N,"resources"?,"attributes"?}` | adds agents |
//! | POST | `/sim/agents/{id}/fail` | | agent unreachable (TASK_LOST / TASK_UNREACHABLE, FAILURE) |
//! | POST | `/sim/agents/{id}/restore` | | agent re-registers (REASON_AGENT_REREGISTERED) |
//! | POST | `/sim/connections/drop` | | master failover: every subscription ends |
//! | GET, POST | `/sim/status-updates` | `{"drop_next"?,"drop_probability"?,"delay_ms"?}` | lose or delay updates |
//! | GET | `/sim/offers` | | outstanding offers |
//! | POST | `/sim/offers/{id}/rescind` | | RESCIND that offer |
//! | GET | `/sim/tasks` | | every task the master knows |
//! | POST | `/sim/agents/{id}/restart` | `{"down_ms"?:N}` | restart a real agent's executor endpoint: executor streams end, calls get 503 for N ms (default 1000) |
//! | GET | `/sim/executors` | | every real agent's executor with its state |

use drover_proto::TaskStateExt;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::master::faults::FaultError;
use crate::master::state::UpdateFaults;
use crate::resources::Resources;
use crate::server::{json as json_response, ResponseBody, ServerContext};

fn error(status: StatusCode, code: &str, message: &str) -> Response<ResponseBody> {
    json_response(status, &json!({"code": code, "message": message}))
}

fn fault_error(e: FaultError) -> Response<ResponseBody> {
    error(StatusCode::NOT_FOUND, "NOT_FOUND", &e.to_string())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddAgents {
    count: usize,
    resources: Option<String>,
    attributes: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RestartBody {
    down_ms: Option<u64>,
}

/// How long a restarted executor endpoint refuses calls by default.
const DEFAULT_RESTART_DOWN: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateFaultsBody {
    #[serde(default)]
    drop_next: u32,
    #[serde(default)]
    drop_probability: f64,
    delay_ms: Option<u64>,
}

/// The most agents one request may add.
const MAX_ADD: usize = 100_000;

/// The request body, at most `limit` bytes.
async fn body_bytes(req: Request<Incoming>, limit: usize) -> Result<Bytes, Response<ResponseBody>> {
    Ok(Limited::new(req.into_body(), limit)
        .collect()
        .await
        .map_err(|e| {
            error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "INVALID_ARGUMENT",
                &e.to_string(),
            )
        })?
        .to_bytes())
}

async fn body<T: for<'de> Deserialize<'de>>(
    req: Request<Incoming>,
    limit: usize,
) -> Result<T, Response<ResponseBody>> {
    let bytes = body_bytes(req, limit).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &e.to_string()))
}

/// A JSON body that may be empty (then the defaults).
async fn optional_body<T: for<'de> Deserialize<'de> + Default>(
    req: Request<Incoming>,
    limit: usize,
) -> Result<T, Response<ResponseBody>> {
    let bytes = body_bytes(req, limit).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &e.to_string()))
}

pub async fn handle(
    req: Request<Incoming>,
    rest: String,
    ctx: &ServerContext,
) -> Response<ResponseBody> {
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let master = &ctx.master;
    let method = req.method().clone();
    let result = match (method.clone(), parts.as_slice()) {
        (Method::GET, []) => {
            master
                .with(|m, _| {
                    let v = json!({
                        "agents": m.agents().len(),
                        "agents_connected": m.agents().iter().filter(|a| a.connected).count(),
                        "frameworks": m.frameworks().count(),
                        "offers": m.offers().count(),
                        "tasks": m.tasks().count(),
                        "tasks_active": m.tasks().filter(|t| !t.state().is_terminal()).count(),
                    });
                    (Ok(v), Vec::new())
                })
                .await
        }
        (Method::GET, ["agents"]) => {
            master
                .with(|m, _| {
                    let agents: Vec<Value> = m
                        .agents()
                        .iter()
                        .map(|a| {
                            json!({"id": a.id, "hostname": a.hostname, "connected": a.connected,
                                   "tasks": a.tasks.len(), "total": a.total.to_state_json(),
                                   "available": a.available.to_state_json()})
                        })
                        .collect();
                    (Ok(json!({ "agents": agents })), Vec::new())
                })
                .await
        }
        (Method::POST, ["agents"]) => {
            let add: AddAgents = match body(req, ctx.max_body_bytes).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            if add.count > MAX_ADD {
                return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &format!("count must be at most {MAX_ADD}"));
            }
            let mut fleet = ctx.control.fleet.clone();
            if let Some(r) = add.resources {
                match Resources::parse(&r) {
                    Ok(res) => fleet.resources = res,
                    Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &e.to_string()),
                }
            }
            if let Some(a) = add.attributes {
                match crate::attributes::parse_attributes(&a) {
                    Ok(attrs) => fleet.attributes = attrs,
                    Err(e) => return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", &e.to_string()),
                }
            }
            master
                .with(move |m, now| {
                    let specs = fleet.specs(m.agents().len(), add.count);
                    let ids = m.add_agents(specs, now);
                    (Ok(json!({ "agent_ids": ids })), Vec::new())
                })
                .await
        }
        (Method::POST, ["agents", id, action @ ("fail" | "restore")]) => {
            let id = (*id).to_owned();
            let fail = *action == "fail";
            master
                .with(move |m, now| {
                    let r = if fail { m.on_agent_failed(&id, now) } else { m.on_agent_restored(&id, now) };
                    match r {
                        Ok(fx) => (Ok(json!({"agent_id": id, "connected": !fail})), fx),
                        Err(e) => (Err(e), Vec::new()),
                    }
                })
                .await
        }
        (Method::POST, ["agents", id, "restart"]) => {
            let id = (*id).to_owned();
            let b: RestartBody = match optional_body(req, ctx.max_body_bytes).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            let down = b.down_ms.map(Duration::from_millis).unwrap_or(DEFAULT_RESTART_DOWN);
            master
                .with(move |m, now| match m.on_executor_endpoint_restart(&id, down, now) {
                    Ok(fx) => (Ok(json!({"agent_id": id, "down_ms": down.as_millis() as u64})), fx),
                    Err(e) => (Err(e), Vec::new()),
                })
                .await
        }
        (Method::GET, ["executors"]) => {
            master
                .with(|m, _| {
                    let executors: Vec<Value> = m
                        .executors()
                        .iter()
                        .map(|r| {
                            json!({"agent_id": m.agents()[r.key.0].id, "framework_id": r.key.1,
                                   "executor_id": r.key.2, "container_id": r.container_id,
                                   "kind": format!("{:?}", r.kind), "state": r.phase_name(),
                                   "subscriptions": r.subscriptions,
                                   "queued_tasks": r.queued_task_ids()})
                        })
                        .collect();
                    (Ok(json!({ "executors": executors })), Vec::new())
                })
                .await
        }
        (Method::POST, ["connections", "drop"]) => {
            master
                .with(|m, _| {
                    let fx = m.on_drop_connections();
                    (Ok(json!({ "closed": fx.len() })), fx)
                })
                .await
        }
        (Method::GET, ["status-updates"]) => {
            master.with(|m, _| (Ok(faults_json(&m.update_faults)), Vec::new())).await
        }
        (Method::POST, ["status-updates"]) => {
            let b: UpdateFaultsBody = match body(req, ctx.max_body_bytes).await {
                Ok(b) => b,
                Err(resp) => return resp,
            };
            if !(0.0..=1.0).contains(&b.drop_probability) {
                return error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "drop_probability must be within [0, 1]");
            }
            let faults = UpdateFaults {
                drop_next: b.drop_next,
                drop_probability: b.drop_probability,
                delay: b.delay_ms.filter(|d| *d > 0).map(Duration::from_millis),
            };
            master
                .with(move |m, _| {
                    m.on_update_faults(faults);
                    (Ok(faults_json(&m.update_faults)), Vec::new())
                })
                .await
        }
        (Method::GET, ["offers"]) => {
            master
                .with(|m, _| {
                    let offers: Vec<Value> = m
                        .offers()
                        .map(|o| json!({"id": o.id, "framework_id": o.framework, "agent_id": m.agents()[o.agent].id, "role": o.role}))
                        .collect();
                    (Ok(json!({ "offers": offers })), Vec::new())
                })
                .await
        }
        (Method::POST, ["offers", id, "rescind"]) => {
            let id = (*id).to_owned();
            master
                .with(move |m, _| match m.on_rescind_offer(&id) {
                    Ok(fx) => (Ok(json!({ "rescinded": id })), fx),
                    Err(e) => (Err(e), Vec::new()),
                })
                .await
        }
        (Method::POST, ["tasks", id, "kill"]) => {
            let id = (*id).to_owned();
            master
                .with(move |m, now| match m.on_task_process_killed(&id, now) {
                    Ok(fx) => (Ok(json!({ "killed": id })), fx),
                    Err(e) => (Err(e), Vec::new()),
                })
                .await
        }
        (Method::GET, ["tasks"]) => {
            master
                .with(|m, _| {
                    let tasks: Vec<Value> = m
                        .tasks()
                        .map(|t| {
                            json!({"framework_id": t.framework, "task_id": t.task_id.value,
                                   "agent_id": m.agents()[t.agent].id, "state": t.state().as_str_name(),
                                   "healthy": t.healthy, "unacknowledged_updates": t.pending.len()})
                        })
                        .collect();
                    (Ok(json!({ "tasks": tasks })), Vec::new())
                })
                .await
        }
        _ => return error(StatusCode::NOT_FOUND, "NOT_FOUND", &format!("no {method} /sim{rest}")),
    };
    match result {
        Ok(Ok(v)) => json_response(StatusCode::OK, &v),
        Ok(Err(e)) => fault_error(e),
        Err(e) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            &e.to_string(),
        ),
    }
}

fn faults_json(f: &UpdateFaults) -> Value {
    json!({
        "drop_next": f.drop_next,
        "drop_probability": f.drop_probability,
        "delay_ms": f.delay.map(|d| d.as_millis() as u64),
    })
}
