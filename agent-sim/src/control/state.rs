//! `/state`: the master state JSON as `mesos-master` serves it (reference
//! 1.3), with the legacy v0 names (`slaves`, `slave_id`). Built from a
//! snapshot taken on the master task.
//!
//! Each framework lists, as Mesos' `FullFrameworkWriter`
//! (`src/master/readonly_handler.cpp`) does: `tasks` (live, or ended and
//! not yet acknowledged), `unreachable_tasks` (on an agent that is away),
//! `completed_tasks` (the last `--max-completed-tasks-per-framework`) and
//! `executors`; and `completed_executors`, which a Mesos agent's `/state`
//! lists, since this master is its agents too.

use drover_proto::TaskStateExt;
use std::collections::HashMap;

use drover_proto::v1::{self, TaskState};
use http::{Response, StatusCode};
use serde_json::{json, Map, Value};

use super::ControlContext;
use crate::attributes::attribute_json;
use crate::master::driver::MasterHandle;
use crate::master::maintenance_rules::MachineKey;
use crate::master::{roles_of, CompletedTask, FrameworkHistory, Master, StatusMark, Task};
use crate::operator_json::{cluster_status_json, mesos_json, schedule_json};
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

/// What `/state` shows of a task, wherever it is kept.
struct TaskFields<'a> {
    framework: &'a str,
    task_id: &'a str,
    name: &'a str,
    executor_id: &'a str,
    agent: usize,
    resources: &'a Resources,
    labels: Option<&'a v1::Labels>,
    state: TaskState,
}

impl<'a> TaskFields<'a> {
    /// A task the registry holds, in the state it is shown in.
    fn of_task(t: &'a Task, state: TaskState) -> Self {
        TaskFields {
            framework: &t.framework,
            task_id: &t.task_id.value,
            name: &t.name,
            executor_id: t
                .executor
                .as_ref()
                .map_or("", |e| e.executor_id.value.as_str()),
            agent: t.agent,
            resources: &t.resources,
            labels: t.labels.as_deref(),
            state,
        }
    }

    /// The task as Mesos writes one (`json(JSON::ObjectWriter*, const
    /// Task&)` in `src/common/http.cpp`): its final or latest `state`, and in
    /// `statuses` every state it went through with its time (and health,
    /// when known).
    fn to_json<'s>(&self, m: &Master, statuses: impl Iterator<Item = &'s StatusMark>) -> Value {
        let statuses: Vec<Value> = statuses.map(status_json).collect();
        let mut task = json!({
            "id": self.task_id,
            "name": self.name,
            "framework_id": self.framework,
            "executor_id": self.executor_id,
            "slave_id": m.agents()[self.agent].id,
            "state": self.state.as_str_name(),
            "resources": self.resources.to_state_json(),
            "statuses": statuses,
        });
        // Mesos writes `labels` only when the task has them, as an array
        // of `{"key", "value"}` (`json(JSON::ArrayWriter*, const Labels&)`).
        if let Some(labels) = self.labels {
            task["labels"] = labels
                .labels
                .iter()
                .map(|l| match &l.value {
                    Some(value) => json!({"key": l.key, "value": value}),
                    None => json!({"key": l.key}),
                })
                .collect();
        }
        task
    }
}

fn status_json(mark: &StatusMark) -> Value {
    let mut v = json!({"state": mark.state.as_str_name(), "timestamp": mark.timestamp});
    if let Some(h) = mark.healthy {
        v["healthy"] = json!(h);
    }
    v
}

/// A task the registry holds: live, or ended and not yet acknowledged.
fn live_task_json(m: &Master, t: &Task) -> Value {
    let mut v = TaskFields::of_task(t, t.state).to_json(m, t.statuses.iter());
    if let Some(h) = t.healthy {
        v["healthy"] = json!(h);
    }
    v
}

/// A task on an agent that is away, as Mesos lists it in
/// `unreachable_tasks`: TASK_UNREACHABLE (TASK_LOST for a framework that is
/// not partition-aware) since the agent failed; what its agent reported
/// since then is not known to the master until the agent returns.
fn unreachable_task_json(m: &Master, t: &Task, since: f64, partition_aware: bool) -> Value {
    let state = if partition_aware {
        TaskState::TaskUnreachable
    } else {
        TaskState::TaskLost
    };
    let mark = StatusMark {
        state,
        timestamp: since,
        healthy: None,
    };
    let known = t.statuses.iter().filter(|s| s.timestamp <= since);
    TaskFields::of_task(t, state).to_json(m, known.chain(std::iter::once(&mark)))
}

fn completed_task_json(m: &Master, framework: &str, t: &CompletedTask) -> Value {
    let fields = TaskFields {
        framework,
        task_id: &t.task_id.value,
        name: &t.name,
        executor_id: t.executor_id.as_deref().unwrap_or(""),
        agent: t.agent,
        resources: &t.resources,
        labels: t.labels.as_deref(),
        state: t.state,
    };
    fields.to_json(m, t.statuses.iter())
}

/// An executor as the master's `executors` lists it (`json(JSON::ObjectWriter*,
/// const ExecutorInfo&)` in `src/common/http.cpp`, plus `slave_id`).
fn executor_json(m: &Master, framework: &str, info: &v1::ExecutorInfo, agent: usize) -> Value {
    let command = info
        .command
        .as_ref()
        .and_then(|c| serde_json::from_str::<Value>(&drover_proto::json::to_json(c)).ok())
        .unwrap_or_else(|| json!({}));
    let resources = Resources::from_protos(&info.resources)
        .map(|r| r.to_state_json())
        .unwrap_or_else(|_| json!({}));
    json!({
        "executor_id": info.executor_id.value,
        "name": info.name.clone().unwrap_or_default(),
        "framework_id": framework,
        "command": command,
        "resources": resources,
        "slave_id": m.agents()[agent].id,
    })
}

/// A framework's tasks and executors, as its `/state` entry lists them.
#[derive(Default)]
struct FrameworkTasks {
    tasks: Vec<Value>,
    unreachable_tasks: Vec<Value>,
    completed_tasks: Vec<Value>,
    executors: Vec<Value>,
    completed_executors: Vec<Value>,
}

impl FrameworkTasks {
    fn history(m: &Master, framework: &str, history: Option<&FrameworkHistory>) -> Self {
        let Some(h) = history else {
            return FrameworkTasks::default();
        };
        FrameworkTasks {
            completed_tasks: h
                .tasks()
                .map(|t| completed_task_json(m, framework, t))
                .collect(),
            completed_executors: h
                .executors()
                .map(|e| executor_json(m, framework, &e.info, e.agent))
                .collect(),
            ..FrameworkTasks::default()
        }
    }

    /// Adds the registry's tasks of the framework, and the executors they
    /// run under (each once).
    fn add_live(&mut self, m: &Master, tasks: &[&Task], partition_aware: bool) {
        let mut seen = std::collections::HashSet::new();
        for t in tasks {
            match t.unreachable_since {
                Some(since) => {
                    self.unreachable_tasks
                        .push(unreachable_task_json(m, t, since, partition_aware))
                }
                None => self.tasks.push(live_task_json(m, t)),
            }
            if let Some(e) = &t.executor {
                if seen.insert((t.agent, e.executor_id.value.as_str())) {
                    self.executors
                        .push(executor_json(m, &t.framework, e, t.agent));
                }
            }
        }
    }
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
        // An agent removed (machine DOWN, or drained and gone) is no
        // longer registered, and Mesos lists only registered agents.
        .filter(|(_, a)| !a.removed)
        .map(|(i, a)| {
            let machine = MachineKey::of(&a.machine_id());
            let mode = m
                .maintenance()
                .machine(&machine)
                .map_or("UP", |r| r.mode.name());
            let attrs: Map<String, Value> = a
                .attributes
                .iter()
                .map(|x| (x.name.clone(), attribute_json(x)))
                .collect();
            json!({
                "id": a.id,
                // A real agent serves its HTTP API (files, executors) at
                // its endpoint; a simulated one names Mesos' default port.
                "pid": match a.endpoint {
                    Some(e) => format!("slave(1)@{e}"),
                    None => format!("slave(1)@{}:5051", a.hostname),
                },
                "hostname": a.hostname,
                "port": a.endpoint.map_or(5051, |e| e.port()),
                "registered_time": m.started_unix(),
                "resources": a.total.to_state_json(),
                "used_resources": used_by_agent.get(&i).unwrap_or(&empty).to_state_json(),
                "offered_resources": offered_by_agent.get(&i).unwrap_or(&empty).to_state_json(),
                "unreserved_resources": a.total.to_state_json(),
                "reserved_resources": {},
                "attributes": attrs,
                "active": a.connected && !a.deactivated,
                "deactivated": a.deactivated,
                "drain_info": a.drain.as_ref().map(mesos_json),
                "machine_id": mesos_json(&a.machine_id()),
                "maintenance_mode": mode,
                "unavailability": a.unavailability.as_ref().map(mesos_json),
                "version": ctx.version,
                "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT"],
            })
        })
        .collect();
    let frameworks: Vec<Value> = m
        .frameworks()
        .map(|f| {
            let mut tasks = FrameworkTasks::history(m, &f.id, m.history(&f.id));
            if let Some(live) = tasks_by_fw.get(f.id.as_str()) {
                tasks.add_live(m, live, f.is_partition_aware());
            }
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
            let tasks = FrameworkTasks::history(m, id, Some(&c.history));
            let mut v = framework_json(&c.info, false, tasks, Vec::new());
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
        "activated_slaves": m.agents().iter().filter(|a| a.offerable()).count(),
        "deactivated_slaves": m.agents().iter().filter(|a| a.connected && a.deactivated).count(),
        "unreachable_slaves": m.agents().iter().filter(|a| !a.connected && !a.removed).count(),
        // Not in Mesos' /state (it serves these at /maintenance/schedule and
        // /maintenance/status): the simulator shows them here too.
        "maintenance": {
            "schedule": schedule_json(m.maintenance().schedule()),
            "status": cluster_status_json(&m.cluster_status()),
        },
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
    tasks: FrameworkTasks,
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
        "tasks": tasks.tasks,
        "unreachable_tasks": tasks.unreachable_tasks,
        "completed_tasks": tasks.completed_tasks,
        "offers": offers,
        "executors": tasks.executors,
        "completed_executors": tasks.completed_executors,
    });
    // As Mesos' `/state` model: `principal` only when the framework has one
    // (tools tell frameworks of one name apart by it).
    if let Some(principal) = &info.principal {
        framework["principal"] = json!(principal);
    }
    framework
}
