//! The operator API's messages (`operator_proto.rs`) in Mesos-style JSON,
//! both ways: the `.proto` field names, enums by name, repeated fields
//! omitted when empty, unknown keys ignored on input, as Mesos reads and
//! writes them; every `mesos.v1` message they embed goes through
//! `drover-proto`'s JSON codec. Also the bodies of Mesos' older endpoints
//! (`/maintenance/schedule`, `/machine/down`, `/machine/up`). Pure.

use drover_proto::v1;
use drover_proto::MesosMessage;
use serde_json::{Map, Value};

use crate::operator_proto::{
    mesos_call_number, AgentRef, Call, ClusterStatus, DecodeError, DrainAgent, GetAgents,
    InverseOfferState, Machines, ProtoDuration, Response, ResponseType, Schedule,
    UpdateMaintenanceSchedule, Window,
};

fn field<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object.get(name).filter(|v| !v.is_null())
}

/// The JSON kind of a value, in the words of Mesos' JSON reader.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A message field's value as an object; Mesos names only the field (the
/// last part of the path) when it is something else.
fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, DecodeError> {
    value.as_object().ok_or_else(|| {
        let name = path.rsplit('.').next().unwrap_or(path);
        let name = name.split('[').next().unwrap_or(name);
        DecodeError::Shape(format!(
            "Not expecting a JSON {} for field '{name}'",
            kind(value)
        ))
    })
}

/// A `mesos.v1` message through drover-proto's Mesos-style JSON reader.
fn mesos<M: MesosMessage>(value: &Value, path: &str) -> Result<M, DecodeError> {
    let bytes = serde_json::to_vec(value).map_err(|e| DecodeError::Json(e.to_string()))?;
    drover_proto::json::from_json::<M>(&bytes)
        .map_err(|e| DecodeError::Shape(format!("field '{path}': {e}")))
}

/// Each element of a repeated field (a single value stands for a list of one).
fn each(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
    }
}

fn required<'a>(
    object: &'a Map<String, Value>,
    name: &str,
    path: &str,
) -> Result<&'a Value, DecodeError> {
    field(object, name)
        .ok_or_else(|| DecodeError::Shape(format!("Missing required fields: {path}.{name}")))
}

fn machines(value: &Value, path: &str) -> Result<Machines, DecodeError> {
    let object = as_object(value, path)?;
    let machines = each(field(object, "machines"))
        .into_iter()
        .map(|m| mesos::<v1::MachineId>(m, &format!("{path}.machines")))
        .collect::<Result<_, _>>()?;
    Ok(Machines { machines })
}

fn schedule(value: &Value, path: &str) -> Result<Schedule, DecodeError> {
    let object = as_object(value, path)?;
    let mut windows = Vec::new();
    // Paths name a repeated field's element by index, as protobuf's
    // missing-fields report does.
    for (i, w) in each(field(object, "windows")).into_iter().enumerate() {
        let wpath = format!("{path}.windows[{i}]");
        let window = as_object(w, &wpath)?;
        let machine_ids = each(field(window, "machine_ids"))
            .into_iter()
            .map(|m| mesos::<v1::MachineId>(m, &format!("{wpath}.machine_ids")))
            .collect::<Result<_, _>>()?;
        let unavailability = mesos::<v1::Unavailability>(
            required(window, "unavailability", &wpath)?,
            &format!("{wpath}.unavailability"),
        )?;
        windows.push(Window {
            machine_ids,
            unavailability,
        });
    }
    Ok(Schedule { windows })
}

fn agent_ref(value: &Value, path: &str) -> Result<AgentRef, DecodeError> {
    let object = as_object(value, path)?;
    let agent_id = mesos::<v1::AgentId>(
        required(object, "agent_id", path)?,
        &format!("{path}.agent_id"),
    )?;
    Ok(AgentRef { agent_id })
}

fn integer(value: &Value, path: &str) -> Result<i64, DecodeError> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
    .ok_or_else(|| DecodeError::Shape(format!("Failed to parse '{value}' for field '{path}'")))
}

fn drain_agent(value: &Value, path: &str) -> Result<DrainAgent, DecodeError> {
    let object = as_object(value, path)?;
    let AgentRef { agent_id } = agent_ref(value, path)?;
    let max_grace_period = match field(object, "max_grace_period") {
        None => None,
        Some(d) => {
            let dpath = format!("{path}.max_grace_period");
            let d = as_object(d, &dpath)?;
            let seconds = field(d, "seconds")
                .map(|v| integer(v, &format!("{dpath}.seconds")))
                .transpose()?;
            let nanos = field(d, "nanos")
                .map(|v| integer(v, &format!("{dpath}.nanos")))
                .transpose()?
                .map(|n| i32::try_from(n).unwrap_or(if n < 0 { i32::MIN } else { i32::MAX }));
            Some(ProtoDuration { seconds, nanos })
        }
    };
    let mark_gone = match field(object, "mark_gone") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::String(s)) if s == "true" => Some(true),
        Some(Value::String(s)) if s == "false" => Some(false),
        Some(other) => {
            return Err(DecodeError::Shape(format!(
                "Failed to parse '{other}' as a JSON boolean for field '{path}.mark_gone'"
            )))
        }
    };
    Ok(DrainAgent {
        agent_id,
        max_grace_period,
        mark_gone,
    })
}

/// Decodes a Mesos-style JSON `Call`: field names as in the `.proto`, the
/// type by name; unknown keys are ignored, as Mesos ignores them.
pub fn call_from_json(body: &[u8]) -> Result<Call, DecodeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    let object = as_object(&value, "")?;
    // A name Mesos does not know leaves the type unset, as Mesos' reader
    // does (the call is then refused for having no type).
    let r#type = match field(object, "type") {
        None => None,
        Some(Value::String(name)) => mesos_call_number(name),
        Some(other) => {
            return Err(DecodeError::Shape(format!(
                "Not expecting a JSON {} for field 'type'",
                kind(other)
            )))
        }
    };
    let sub = |name: &str| field(object, name);
    Ok(Call {
        r#type,
        update_maintenance_schedule: sub("update_maintenance_schedule")
            .map(|v| {
                let o = as_object(v, "update_maintenance_schedule")?;
                let s = required(o, "schedule", "update_maintenance_schedule")?;
                Ok(UpdateMaintenanceSchedule {
                    schedule: schedule(s, "update_maintenance_schedule.schedule")?,
                })
            })
            .transpose()?,
        start_maintenance: sub("start_maintenance")
            .map(|v| machines(v, "start_maintenance"))
            .transpose()?,
        stop_maintenance: sub("stop_maintenance")
            .map(|v| machines(v, "stop_maintenance"))
            .transpose()?,
        drain_agent: sub("drain_agent")
            .map(|v| drain_agent(v, "drain_agent"))
            .transpose()?,
        deactivate_agent: sub("deactivate_agent")
            .map(|v| agent_ref(v, "deactivate_agent"))
            .transpose()?,
        reactivate_agent: sub("reactivate_agent")
            .map(|v| agent_ref(v, "reactivate_agent"))
            .transpose()?,
    })
}

/// The body of the old `POST /maintenance/schedule`: a `Schedule` in JSON.
pub fn schedule_from_json(body: &[u8]) -> Result<Schedule, DecodeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    schedule(&value, "")
}

/// The body of the old `POST /machine/down` and `/machine/up`: a JSON
/// array of `MachineID`s.
pub fn machine_ids_from_json(body: &[u8]) -> Result<Vec<v1::MachineId>, DecodeError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| DecodeError::Json(e.to_string()))?;
    each(Some(&value))
        .into_iter()
        .map(|m| mesos::<v1::MachineId>(m, ""))
        .collect()
}

/// A `mesos.v1` message as Mesos writes it.
pub fn mesos_json<M: MesosMessage>(message: &M) -> Value {
    serde_json::from_str(&drover_proto::json::to_json(message)).unwrap_or(Value::Null)
}

fn object(pairs: Vec<(&str, Option<Value>)>) -> Value {
    Value::Object(
        pairs
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
            .collect(),
    )
}

/// A repeated field: omitted when empty, as Mesos omits it.
fn list<T>(items: &[T], each: impl Fn(&T) -> Value) -> Option<Value> {
    (!items.is_empty()).then(|| Value::Array(items.iter().map(each).collect()))
}

/// `Schedule` as JSON.
pub fn schedule_json(schedule: &Schedule) -> Value {
    object(vec![(
        "windows",
        list(&schedule.windows, |w| {
            object(vec![
                ("machine_ids", list(&w.machine_ids, mesos_json)),
                ("unavailability", Some(mesos_json(&w.unavailability))),
            ])
        }),
    )])
}

/// `ClusterStatus` as JSON.
pub fn cluster_status_json(status: &ClusterStatus) -> Value {
    object(vec![
        (
            "draining_machines",
            list(&status.draining_machines, |d| {
                object(vec![
                    ("id", Some(mesos_json(&d.id))),
                    (
                        "statuses",
                        list(&d.statuses, |s| {
                            let state = InverseOfferState::try_from(s.status)
                                .unwrap_or(InverseOfferState::Unknown);
                            object(vec![
                                ("status", Some(Value::from(state.name()))),
                                ("framework_id", Some(mesos_json(&s.framework_id))),
                                ("timestamp", Some(mesos_json(&s.timestamp))),
                            ])
                        }),
                    ),
                ])
            }),
        ),
        ("down_machines", list(&status.down_machines, mesos_json)),
    ])
}

/// `GetAgents` as Mesos writes it: both lists always, even when empty
/// (Mesos writes them field by field); inside an agent, empty repeated
/// fields are left out.
fn agents_json(agents: &GetAgents) -> Value {
    let agents_list = agents
        .agents
        .iter()
        .map(|a| {
            object(vec![
                ("agent_info", Some(mesos_json(&a.agent_info))),
                ("active", Some(Value::from(a.active))),
                ("deactivated", a.deactivated.map(Value::from)),
                ("version", Some(Value::from(a.version.clone()))),
                ("pid", a.pid.clone().map(Value::from)),
                (
                    "registered_time",
                    a.registered_time.as_ref().map(mesos_json),
                ),
                (
                    "reregistered_time",
                    a.reregistered_time.as_ref().map(mesos_json),
                ),
                ("total_resources", list(&a.total_resources, mesos_json)),
                (
                    "allocated_resources",
                    list(&a.allocated_resources, mesos_json),
                ),
                ("offered_resources", list(&a.offered_resources, mesos_json)),
                ("capabilities", list(&a.capabilities, mesos_json)),
                ("drain_info", a.drain_info.as_ref().map(mesos_json)),
                (
                    "estimated_drain_start_time",
                    a.estimated_drain_start_time.as_ref().map(mesos_json),
                ),
            ])
        })
        .collect();
    object(vec![
        ("agents", Some(Value::Array(agents_list))),
        (
            "recovered_agents",
            Some(Value::Array(
                agents.recovered_agents.iter().map(mesos_json).collect(),
            )),
        ),
    ])
}

/// A `Response` as Mesos-style JSON.
pub fn response_json(response: &Response) -> Value {
    let ty = response
        .r#type
        .and_then(|t| ResponseType::try_from(t).ok())
        .unwrap_or(ResponseType::Unknown);
    object(vec![
        ("type", Some(Value::from(ty.name()))),
        (
            "get_health",
            response
                .get_health
                .as_ref()
                .map(|h| object(vec![("healthy", Some(Value::from(h.healthy)))])),
        ),
        ("get_agents", response.get_agents.as_ref().map(agents_json)),
        (
            "get_maintenance_status",
            response
                .get_maintenance_status
                .as_ref()
                .map(|s| object(vec![("status", Some(cluster_status_json(&s.status)))])),
        ),
        (
            "get_maintenance_schedule",
            response
                .get_maintenance_schedule
                .as_ref()
                .map(|s| object(vec![("schedule", Some(schedule_json(&s.schedule)))])),
        ),
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::operator_proto::{call_from_protobuf, call_to_protobuf, CallType};

    #[test]
    fn a_json_schedule_call_and_its_protobuf_twin_decode_alike() {
        let body = br#"{"type": "UPDATE_MAINTENANCE_SCHEDULE",
            "update_maintenance_schedule": {"schedule": {"windows": [{
              "machine_ids": [{"hostname": "a1", "ip": "127.0.0.1"}],
              "unavailability": {"start": {"nanoseconds": 5}, "duration": {"nanoseconds": 7}}}]}}}"#;
        let call = call_from_json(body).unwrap();
        assert_eq!(call.call_type(), CallType::UpdateMaintenanceSchedule);
        let again = call_from_protobuf(&call_to_protobuf(&call)).unwrap();
        assert_eq!(again, call);
        let w = &call.update_maintenance_schedule.unwrap().schedule.windows[0];
        assert_eq!(w.machine_ids[0].hostname.as_deref(), Some("a1"));
        assert_eq!(w.unavailability.start.nanoseconds, 5);
    }

    #[test]
    fn a_window_without_unavailability_is_refused_with_the_field_named() {
        let body = br#"{"type": "UPDATE_MAINTENANCE_SCHEDULE",
            "update_maintenance_schedule": {"schedule": {"windows": [{"machine_ids": []}]}}}"#;
        let e = call_from_json(body).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Failed to convert JSON into Call protobuf: Missing required fields: \
             update_maintenance_schedule.schedule.windows[0].unavailability"
        );
    }

    #[test]
    fn drain_agent_reads_a_google_duration_and_mark_gone() {
        let body = br#"{"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "S1"},
            "max_grace_period": {"seconds": 600}, "mark_gone": true}}"#;
        let call = call_from_json(body).unwrap();
        let d = call.drain_agent.unwrap();
        assert_eq!(d.agent_id.value, "S1");
        assert_eq!(d.max_grace_period.unwrap().seconds, Some(600));
        assert_eq!(d.mark_gone, Some(true));
    }

    #[test]
    fn get_agents_always_writes_both_lists_as_mesos_does() {
        let r = Response {
            get_agents: Some(GetAgents::default()),
            ..Response::of(ResponseType::GetAgents)
        };
        assert_eq!(
            response_json(&r)["get_agents"],
            serde_json::json!({"agents": [], "recovered_agents": []})
        );
    }

    #[test]
    fn the_old_endpoints_bodies_are_a_schedule_and_a_list_of_machines() {
        let s = schedule_from_json(
            br#"{"windows": [{"machine_ids": [{"hostname": "a"}],
                "unavailability": {"start": {"nanoseconds": 1}}}]}"#,
        )
        .unwrap();
        assert_eq!(s.windows[0].machine_ids[0].hostname.as_deref(), Some("a"));
        let ids =
            machine_ids_from_json(br#"[{"hostname": "a", "ip": "10.0.0.1"}, {"ip": "10.0.0.2"}]"#)
                .unwrap();
        assert_eq!(ids.len(), 2);
        assert!(machine_ids_from_json(b"[1]").is_err());
    }

    #[test]
    fn a_string_duration_is_refused_naming_the_field_as_mesos_does() {
        let body = br#"{"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "S1"},
            "max_grace_period": "2s"}}"#;
        assert_eq!(
            call_from_json(body).unwrap_err().to_string(),
            "Failed to convert JSON into Call protobuf: \
             Not expecting a JSON string for field 'max_grace_period'"
        );
    }

    #[test]
    fn a_mesos_call_the_simulator_lacks_keeps_its_type_a_made_up_name_has_none() {
        let call = call_from_json(br#"{"type": "GET_QUOTA"}"#).unwrap();
        assert_eq!(call.call_type(), CallType::Unknown);
        assert_eq!(call.r#type, Some(28));
        let call = call_from_json(br#"{"type": "NO_SUCH_CALL"}"#).unwrap();
        assert_eq!(call.r#type, None);
        let r = response_json(&Response::of(ResponseType::GetMaintenanceStatus));
        assert_eq!(r["type"], "GET_MAINTENANCE_STATUS");
    }
}
