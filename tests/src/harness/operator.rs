//! The Mesos operator API (`POST /api/v1`) as tests drive it against
//! agent-sim (or any Mesos master): the maintenance calls and GET_AGENTS
//! in JSON, and any call in protobuf with agent-sim's wire types. A
//! machine is named as Mesos matches it to agents: the agent's hostname
//! and the IP of its pid (`slave(1)@IP:PORT`).

use bytes::Bytes;
use drover_agent_sim::operator_proto;
use serde_json::{json, Value};

use super::http;

/// The operator endpoint of the master at `address` (`host:port`).
pub struct Operator {
    pub address: String,
}

impl Operator {
    pub fn new(address: &str) -> Operator {
        Operator {
            address: address.to_owned(),
        }
    }

    /// One JSON call: the status and the body (JSON, or its text as a JSON
    /// string: Mesos' errors and the empty body of a call that succeeded).
    pub async fn call(&self, body: &Value) -> (u16, Value) {
        http::post(&self.address, "/api/v1", body).await
    }

    /// One protobuf call: the status and the body's bytes.
    pub async fn call_protobuf(&self, call: &operator_proto::Call) -> (u16, Bytes) {
        let reply = http::request(
            &self.address,
            "POST",
            "/api/v1",
            &[
                ("Content-Type", "application/x-protobuf"),
                ("Accept", "application/x-protobuf"),
            ],
            Bytes::from(operator_proto::call_to_protobuf(call)),
        )
        .await;
        (reply.status, reply.body)
    }

    /// A call that must succeed (200); its body.
    pub async fn ok(&self, body: &Value) -> Value {
        let (status, reply) = self.call(body).await;
        assert_eq!(status, 200, "{body} answered {reply}");
        reply
    }

    /// GET_AGENTS: the registered agents.
    pub async fn agents(&self) -> Vec<Value> {
        let reply = self.ok(&json!({"type": "GET_AGENTS"})).await;
        reply["get_agents"]["agents"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The `MachineID` of a registered agent.
    pub async fn machine_of(&self, agent_id: &str) -> Value {
        let agents = self.agents().await;
        let agent = agents
            .iter()
            .find(|a| a["agent_info"]["id"]["value"] == agent_id)
            .unwrap_or_else(|| panic!("agent {agent_id} is not in GET_AGENTS: {agents:?}"));
        machine_id(agent)
    }

    /// UPDATE_MAINTENANCE_SCHEDULE with one window per `(machines, start
    /// ns since the epoch, duration ns)`.
    pub async fn schedule(&self, windows: &[(Vec<Value>, i64, i64)]) -> (u16, Value) {
        let windows: Vec<Value> = windows
            .iter()
            .map(|(machines, start, duration)| {
                json!({"machine_ids": machines,
                       "unavailability": {"start": {"nanoseconds": start},
                                          "duration": {"nanoseconds": duration}}})
            })
            .collect();
        self.call(&json!({"type": "UPDATE_MAINTENANCE_SCHEDULE",
            "update_maintenance_schedule": {"schedule": {"windows": windows}}}))
            .await
    }

    /// START_MAINTENANCE of these machines.
    pub async fn start_maintenance(&self, machines: &[Value]) -> (u16, Value) {
        self.call(&json!({"type": "START_MAINTENANCE",
            "start_maintenance": {"machines": machines}}))
            .await
    }

    /// STOP_MAINTENANCE of these machines.
    pub async fn stop_maintenance(&self, machines: &[Value]) -> (u16, Value) {
        self.call(&json!({"type": "STOP_MAINTENANCE",
            "stop_maintenance": {"machines": machines}}))
            .await
    }

    /// GET_MAINTENANCE_STATUS's `status` (`draining_machines`, `down_machines`).
    pub async fn status(&self) -> Value {
        let reply = self.ok(&json!({"type": "GET_MAINTENANCE_STATUS"})).await;
        reply["get_maintenance_status"]["status"].clone()
    }

    /// GET_MAINTENANCE_SCHEDULE's `schedule`.
    pub async fn get_schedule(&self) -> Value {
        let reply = self.ok(&json!({"type": "GET_MAINTENANCE_SCHEDULE"})).await;
        reply["get_maintenance_schedule"]["schedule"].clone()
    }
}

/// A GET_AGENTS agent's `MachineID`: its hostname and its pid's IP.
pub fn machine_id(agent: &Value) -> Value {
    let hostname = agent["agent_info"]["hostname"].as_str().unwrap_or_default();
    let pid = agent["pid"].as_str().unwrap_or_default();
    let ip = pid
        .split_once('@')
        .and_then(|(_, addr)| addr.rsplit_once(':'))
        .map(|(ip, _)| ip)
        .unwrap_or_else(|| panic!("an agent pid without an address: {agent}"));
    json!({"hostname": hostname, "ip": ip})
}

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_nanos()).unwrap_or(i64::MAX)
}
