//! The `/sim` JSON API: inspect the simulated cluster and inject faults.
//! [`handle`] is the route table; each route is one handler that decodes
//! the request, calls the master (a fault is handed to the master task as
//! an input, `master/faults.rs`, so it is ordered with every call) and
//! encodes the answer. Errors are `{"code": ..., "message": ...}`.
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
//! | GET | `/sim/calls?after=SEQ` | | scheduler calls received, in arrival order, each with its connection (`master/call_log.rs`); `after` skips those up to SEQ |

use std::time::Duration;

use bytes::Bytes;
use drover_proto::TaskStateExt;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::master::driver::{MasterGone, MasterHandle};
use crate::master::{Effect, FaultError, Master, UpdateFaults};
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

/// The route table: one handler per method and path under `/sim`.
pub async fn handle(
    req: Request<Incoming>,
    rest: String,
    ctx: &ServerContext,
) -> Response<ResponseBody> {
    let parts: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let method = req.method().clone();
    match (method.clone(), parts.as_slice()) {
        (Method::GET, []) => summary(ctx).await,
        (Method::GET, ["agents"]) => list_agents(ctx).await,
        (Method::POST, ["agents"]) => add_agents(req, ctx).await,
        (Method::POST, ["agents", id, "fail"]) => fail_agent(ctx, id).await,
        (Method::POST, ["agents", id, "restore"]) => restore_agent(ctx, id).await,
        (Method::POST, ["agents", id, "restart"]) => restart_agent(req, ctx, id).await,
        (Method::GET, ["executors"]) => list_executors(ctx).await,
        (Method::POST, ["connections", "drop"]) => drop_connections(ctx).await,
        (Method::GET, ["status-updates"]) => get_update_faults(ctx).await,
        (Method::POST, ["status-updates"]) => set_update_faults(req, ctx).await,
        (Method::GET, ["offers"]) => list_offers(ctx).await,
        (Method::POST, ["offers", id, "rescind"]) => rescind_offer(ctx, id).await,
        (Method::GET, ["tasks"]) => list_tasks(ctx).await,
        (Method::GET, ["calls"]) => list_calls(&req, ctx),
        (Method::POST, ["tasks", id, "kill"]) => kill_task_process(ctx, id).await,
        _ => error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            &format!("no {method} /sim{rest}"),
        ),
    }
}

/// Runs `f` on the master task and encodes its answer: 200 with the JSON,
/// 404 for a fault naming nothing, 503 if the master task is gone.
async fn call<F>(master: &MasterHandle, f: F) -> Response<ResponseBody>
where
    F: FnOnce(&mut Master, std::time::Instant) -> (Result<Value, FaultError>, Vec<Effect>)
        + Send
        + 'static,
{
    reply(master.with(f).await)
}

/// Reads the master without changing it.
async fn read<F>(master: &MasterHandle, f: F) -> Response<ResponseBody>
where
    F: FnOnce(&Master) -> Value + Send + 'static,
{
    reply(master.with(move |m, _| (Ok(f(m)), Vec::new())).await)
}

fn reply(result: Result<Result<Value, FaultError>, MasterGone>) -> Response<ResponseBody> {
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

/// `GET /sim/calls[?after=SEQ]`: the call log's records after SEQ (all
/// kept, without it), as a JSON list in arrival order.
fn list_calls(req: &Request<Incoming>, ctx: &ServerContext) -> Response<ResponseBody> {
    let after = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|pair| pair.strip_prefix("after="));
    let after = match after.map(str::parse::<u64>) {
        None => 0,
        Some(Ok(seq)) => seq,
        Some(Err(e)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &format!("after: {e}"),
            )
        }
    };
    match serde_json::to_value(ctx.calls.since(after)) {
        Ok(list) => json_response(StatusCode::OK, &list),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            &e.to_string(),
        ),
    }
}

/// `GET /sim`: counts of agents, frameworks, offers and tasks.
async fn summary(ctx: &ServerContext) -> Response<ResponseBody> {
    read(&ctx.master, |m| {
        json!({
            "agents": m.agents().len(),
            "agents_connected": m.agents().iter().filter(|a| a.connected).count(),
            "frameworks": m.frameworks().count(),
            "offers": m.offers().count(),
            "tasks": m.tasks().count(),
            "tasks_active": m.tasks().filter(|t| !t.state().is_terminal()).count(),
        })
    })
    .await
}

/// `GET /sim/agents`: every agent with its state.
async fn list_agents(ctx: &ServerContext) -> Response<ResponseBody> {
    read(&ctx.master, |m| {
        let agents: Vec<Value> = m
            .agents()
            .iter()
            .enumerate()
            .map(|(i, a)| {
                json!({"id": a.id, "hostname": a.hostname, "connected": a.connected,
                       "deactivated": a.deactivated, "removed": a.removed,
                       "tasks": m.tasks_on_agent(i), "total": a.total.to_state_json(),
                       "available": a.available.to_state_json()})
            })
            .collect();
        json!({ "agents": agents })
    })
    .await
}

/// `POST /sim/agents`: adds agents made like the flags' ones, with the
/// body's resources and attributes if given; answers their ids.
async fn add_agents(req: Request<Incoming>, ctx: &ServerContext) -> Response<ResponseBody> {
    let add: AddAgents = match body(req, ctx.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if add.count > MAX_ADD {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!("count must be at most {MAX_ADD}"),
        );
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
    call(&ctx.master, move |m, now| {
        let specs = fleet.specs(m.agents().len(), add.count);
        let ids = m.add_agents(specs, now);
        (Ok(json!({ "agent_ids": ids })), Vec::new())
    })
    .await
}

/// `POST /sim/agents/{id}/fail`: the agent becomes unreachable.
async fn fail_agent(ctx: &ServerContext, id: &str) -> Response<ResponseBody> {
    let id = id.to_owned();
    call(&ctx.master, move |m, now| {
        match m.on_agent_failed(&id, now) {
            Ok(fx) => (Ok(json!({"agent_id": id, "connected": false})), fx),
            Err(e) => (Err(e), Vec::new()),
        }
    })
    .await
}

/// `POST /sim/agents/{id}/restore`: the agent re-registers.
async fn restore_agent(ctx: &ServerContext, id: &str) -> Response<ResponseBody> {
    let id = id.to_owned();
    call(&ctx.master, move |m, now| {
        match m.on_agent_restored(&id, now) {
            Ok(fx) => (Ok(json!({"agent_id": id, "connected": true})), fx),
            Err(e) => (Err(e), Vec::new()),
        }
    })
    .await
}

/// `POST /sim/agents/{id}/restart`: a real agent's executor endpoint
/// restarts and refuses calls for `down_ms`.
async fn restart_agent(
    req: Request<Incoming>,
    ctx: &ServerContext,
    id: &str,
) -> Response<ResponseBody> {
    let id = id.to_owned();
    let b: RestartBody = match optional_body(req, ctx.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let down = b
        .down_ms
        .map(Duration::from_millis)
        .unwrap_or(DEFAULT_RESTART_DOWN);
    call(&ctx.master, move |m, now| {
        match m.on_executor_endpoint_restart(&id, down, now) {
            Ok(fx) => (
                Ok(json!({"agent_id": id, "down_ms": down.as_millis() as u64})),
                fx,
            ),
            Err(e) => (Err(e), Vec::new()),
        }
    })
    .await
}

/// `GET /sim/executors`: every real agent's executor with its state.
async fn list_executors(ctx: &ServerContext) -> Response<ResponseBody> {
    read(&ctx.master, |m| {
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
        json!({ "executors": executors })
    })
    .await
}

/// `POST /sim/connections/drop`: a master failover.
async fn drop_connections(ctx: &ServerContext) -> Response<ResponseBody> {
    call(&ctx.master, |m, _| {
        let fx = m.on_drop_connections();
        (Ok(json!({ "closed": fx.len() })), fx)
    })
    .await
}

/// `GET /sim/status-updates`: how updates are being lost or delayed.
async fn get_update_faults(ctx: &ServerContext) -> Response<ResponseBody> {
    read(&ctx.master, |m| faults_json(m.update_faults())).await
}

/// `POST /sim/status-updates`: lose or delay updates from now on.
async fn set_update_faults(req: Request<Incoming>, ctx: &ServerContext) -> Response<ResponseBody> {
    let b: UpdateFaultsBody = match body(req, ctx.max_body_bytes).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    if !(0.0..=1.0).contains(&b.drop_probability) {
        return error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "drop_probability must be within [0, 1]",
        );
    }
    let faults = UpdateFaults {
        drop_next: b.drop_next,
        drop_probability: b.drop_probability,
        delay: b.delay_ms.filter(|d| *d > 0).map(Duration::from_millis),
    };
    call(&ctx.master, move |m, _| {
        m.on_update_faults(faults);
        (Ok(faults_json(m.update_faults())), Vec::new())
    })
    .await
}

/// `GET /sim/offers`: the outstanding offers.
async fn list_offers(ctx: &ServerContext) -> Response<ResponseBody> {
    read(&ctx.master, |m| {
        let offers: Vec<Value> = m
            .offers()
            .map(|o| {
                json!({"id": o.id, "framework_id": o.framework,
                       "agent_id": m.agents()[o.agent].id, "role": o.role})
            })
            .collect();
        json!({ "offers": offers })
    })
    .await
}

/// `POST /sim/offers/{id}/rescind`: RESCIND that offer.
async fn rescind_offer(ctx: &ServerContext, id: &str) -> Response<ResponseBody> {
    let id = id.to_owned();
    call(&ctx.master, move |m, _| match m.on_rescind_offer(&id) {
        Ok(fx) => (Ok(json!({ "rescinded": id })), fx),
        Err(e) => (Err(e), Vec::new()),
    })
    .await
}

/// `GET /sim/tasks`: every task the master knows.
async fn list_tasks(ctx: &ServerContext) -> Response<ResponseBody> {
    read(&ctx.master, |m| {
        let tasks: Vec<Value> = m
            .tasks()
            .map(|t| {
                let unacknowledged = m.unacknowledged_updates(&t.framework, &t.task_id.value);
                json!({"framework_id": t.framework, "task_id": t.task_id.value,
                       "agent_id": m.agents()[t.agent].id, "state": t.state().as_str_name(),
                       "healthy": t.healthy, "unacknowledged_updates": unacknowledged})
            })
            .collect();
        json!({ "tasks": tasks })
    })
    .await
}

/// `POST /sim/tasks/{id}/kill`: a simulated task's process dies outside Mesos.
async fn kill_task_process(ctx: &ServerContext, id: &str) -> Response<ResponseBody> {
    let id = id.to_owned();
    call(&ctx.master, move |m, now| {
        match m.on_task_process_killed(&id, now) {
            Ok(fx) => (Ok(json!({ "killed": id })), fx),
            Err(e) => (Err(e), Vec::new()),
        }
    })
    .await
}

fn faults_json(f: &UpdateFaults) -> Value {
    json!({
        "drop_next": f.drop_next,
        "drop_probability": f.drop_probability,
        "delay_ms": f.delay.map(|d| d.as_millis() as u64),
    })
}
