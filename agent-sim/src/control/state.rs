//! `/state`: the master state JSON as `mesos-master` serves it (reference
//! 1.3), with the legacy v0 names (`slaves`, `slave_id`). Built from a
//! snapshot taken on the master task.

use drover_proto::TaskStateExt;
use std::collections::HashMap;

use drover_proto::v1::{self, TaskState};
use http::{Response, StatusCode};
use serde_json::{json, Map, Value};

use super::ControlContext;
use crate::attributes::attribute_json;
use crate::master::driver::MasterHandle;
use crate::master::{roles_of, Master, Task};
use crate::resources::Resources;
use crate::server::{json as json_response, text, ResponseBody};

pub async fn handle(master: &MasterHandle, ctx: &ControlContext) -> Response<ResponseBody> {
    let ctx = ctx.clone();
    match master
        .with(move |m, _| (state_json(m, &ctx), Vec::new()))
        .await
    {
        Ok(v) => json_response(StatusCode::OK, &v),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn state_name(state: i32) -> &'static str {
    TaskState::try_from(state)
        .unwrap_or(TaskState::TaskStaging)
        .as_str_name()
}

fn task_json(m: &Master, t: &Task) -> Value {
    let statuses = vec![json!({"state": t.state.as_str_name(), "timestamp": t.updated_at})];
    let executor = t
        .executor
        .as_ref()
        .map(|e| e.executor_id.value.clone())
        .unwrap_or_default();
    let mut v = json!({
        "id": t.task_id.value,
        "name": t.name,
        "framework_id": t.framework,
        "executor_id": executor,
        "slave_id": m.agents()[t.agent].id,
        "state": t.state.as_str_name(),
        "resources": t.resources.to_state_json(),
        "statuses": statuses,
    });
    if let Some(h) = t.healthy {
        v["healthy"] = json!(h);
    }
    v
}

/// The whole document.
pub fn state_json(m: &Master, ctx: &ControlContext) -> Value {
    let info = m.master_info();
    let mut tasks_by_fw: HashMap<&str, Vec<&Task>> = HashMap::new();
    let mut used_by_agent: HashMap<usize, Resources> = HashMap::new();
    for t in m.tasks() {
        tasks_by_fw.entry(t.framework.as_str()).or_default().push(t);
        if !t.state().is_terminal() {
            used_by_agent.entry(t.agent).or_default().add(&t.resources);
        }
    }
    let mut offered_by_agent: HashMap<usize, Resources> = HashMap::new();
    for o in m.offers() {
        offered_by_agent
            .entry(o.agent)
            .or_default()
            .add(&o.resources);
    }
    let empty = Resources::default();
    let slaves: Vec<Value> = m
        .agents()
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let attrs: Map<String, Value> = a
                .attributes
                .iter()
                .map(|x| (x.name.clone(), attribute_json(x)))
                .collect();
            json!({
                "id": a.id,
                "pid": format!("slave(1)@{}:5051", a.hostname),
                "hostname": a.hostname,
                "port": 5051,
                "registered_time": m.started_unix(),
                "resources": a.total.to_state_json(),
                "used_resources": used_by_agent.get(&i).unwrap_or(&empty).to_state_json(),
                "offered_resources": offered_by_agent.get(&i).unwrap_or(&empty).to_state_json(),
                "unreserved_resources": a.total.to_state_json(),
                "reserved_resources": {},
                "attributes": attrs,
                "active": a.connected,
                "version": ctx.version,
                "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
            })
        })
        .collect();
    let frameworks: Vec<Value> = m
        .frameworks()
        .map(|f| {
            let tasks: Vec<Value> = tasks_by_fw.get(f.id.as_str()).map(|ts| ts.iter().map(|t| task_json(m, t)).collect()).unwrap_or_default();
            let offers: Vec<Value> = m
                .offers()
                .filter(|o| o.framework == f.id)
                .map(|o| json!({"id": o.id, "framework_id": o.framework, "slave_id": m.agents()[o.agent].id, "resources": o.resources.to_state_json()}))
                .collect();
            framework_json(&f.info, f.connection.is_some(), tasks, offers)
        })
        .collect();
    let completed: Vec<Value> = m
        .completed_frameworks()
        .map(|(id, c)| {
            let tasks: Vec<Value> = c
                .tasks
                .iter()
                .map(|s| json!({"id": s.task_id.value, "framework_id": id, "state": state_name(s.state)}))
                .collect();
            let mut v = framework_json(&c.info, false, Vec::new(), Vec::new());
            v["completed_tasks"] = json!(tasks);
            v["active"] = json!(false);
            v
        })
        .collect();
    let flags: Map<String, Value> = ctx
        .flags
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let pid = info.pid.clone().unwrap_or_default();
    json!({
        "version": ctx.version,
        "build_date": "2024-08-23 00:00:00",
        "build_time": 1_724_371_200.0,
        "build_user": "drover",
        "start_time": m.started_unix(),
        "elected_time": m.started_unix(),
        "id": m.master_id(),
        "pid": pid,
        "hostname": ctx.hostname,
        "capabilities": ["AGENT_UPDATE", "AGENT_DRAINING", "QUOTA_V2"],
        "activated_slaves": m.agents().iter().filter(|a| a.connected).count(),
        "deactivated_slaves": 0,
        "unreachable_slaves": m.agents().iter().filter(|a| !a.connected).count(),
        "leader": pid,
        "leader_info": serde_json::from_str::<Value>(&drover_proto::json::to_json(&info)).unwrap_or(Value::Null),
        "flags": flags,
        "slaves": slaves,
        "recovered_slaves": [],
        "frameworks": frameworks,
        "completed_frameworks": completed,
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    })
}

fn framework_json(
    info: &v1::FrameworkInfo,
    connected: bool,
    tasks: Vec<Value>,
    offers: Vec<Value>,
) -> Value {
    let caps: Vec<&str> = info
        .capabilities
        .iter()
        .filter_map(|c| c.r#type)
        .filter_map(|t| v1::framework_info::capability::Type::try_from(t).ok())
        .map(|t| t.as_str_name())
        .collect();
    let roles = roles_of(info);
    let mut framework = json!({
        "id": info.id.as_ref().map(|i| i.value.clone()).unwrap_or_default(),
        "name": info.name,
        "user": info.user,
        "hostname": info.hostname.clone().unwrap_or_default(),
        "webui_url": info.webui_url.clone().unwrap_or_default(),
        "failover_timeout": info.failover_timeout.unwrap_or(0.0),
        "checkpoint": info.checkpoint.unwrap_or(false),
        "capabilities": caps,
        "role": roles.first().cloned().unwrap_or_else(|| "*".into()),
        "roles": roles,
        "active": connected,
        "connected": connected,
        "recovered": false,
        "tasks": tasks,
        "unreachable_tasks": [],
        "completed_tasks": [],
        "offers": offers,
        "executors": [],
    });
    // As Mesos' `/state` model: `principal` only when the framework has one
    // (tools tell frameworks of one name apart by it).
    if let Some(principal) = &info.principal {
        framework["principal"] = json!(principal);
    }
    framework
}
