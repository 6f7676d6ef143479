//! The wire types of the operator API calls the simulator serves
//! (`mesos.v1.master.Call` and `Response`, `mesos.v1.maintenance`,
//! `mesos.v1.allocator.InverseOfferStatus`), as far as the maintenance and
//! agent calls need them, with Mesos' field numbers so a protobuf body
//! from any Mesos client decodes; fields of other calls are skipped as
//! unknown. `drover-proto` compiles only the scheduler and executor
//! packages, so these few messages are declared here; their JSON is
//! `operator_json.rs`'s.
//!
//! Pure: bytes or JSON in, typed values out, and back.

use drover_proto::v1;
use prost::Message;

/// `mesos.v1.master.Call.Type`, the calls the simulator knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CallType {
    Unknown = 0,
    GetHealth = 1,
    GetAgents = 10,
    GetMaintenanceStatus = 23,
    GetMaintenanceSchedule = 24,
    UpdateMaintenanceSchedule = 25,
    StartMaintenance = 26,
    StopMaintenance = 27,
    DrainAgent = 37,
    DeactivateAgent = 38,
    ReactivateAgent = 39,
}

impl CallType {
    /// The `.proto` name of the value.
    pub fn name(self) -> &'static str {
        match self {
            CallType::Unknown => "UNKNOWN",
            CallType::GetHealth => "GET_HEALTH",
            CallType::GetAgents => "GET_AGENTS",
            CallType::GetMaintenanceStatus => "GET_MAINTENANCE_STATUS",
            CallType::GetMaintenanceSchedule => "GET_MAINTENANCE_SCHEDULE",
            CallType::UpdateMaintenanceSchedule => "UPDATE_MAINTENANCE_SCHEDULE",
            CallType::StartMaintenance => "START_MAINTENANCE",
            CallType::StopMaintenance => "STOP_MAINTENANCE",
            CallType::DrainAgent => "DRAIN_AGENT",
            CallType::DeactivateAgent => "DEACTIVATE_AGENT",
            CallType::ReactivateAgent => "REACTIVATE_AGENT",
        }
    }
}

/// Every `mesos.v1.master.Call.Type` of Mesos 1.12, by number: the calls
/// the simulator does not serve are still Mesos calls (501 here), while a
/// name or number outside this list is no type at all (400, as Mesos'
/// parser leaves such a type unset).
const MESOS_CALL_TYPES: [(i32, &str); 40] = [
    (0, "UNKNOWN"),
    (1, "GET_HEALTH"),
    (2, "GET_FLAGS"),
    (3, "GET_VERSION"),
    (4, "GET_METRICS"),
    (5, "GET_LOGGING_LEVEL"),
    (6, "SET_LOGGING_LEVEL"),
    (7, "LIST_FILES"),
    (8, "READ_FILE"),
    (9, "GET_STATE"),
    (10, "GET_AGENTS"),
    (11, "GET_FRAMEWORKS"),
    (12, "GET_EXECUTORS"),
    (13, "GET_TASKS"),
    (14, "GET_ROLES"),
    (15, "GET_WEIGHTS"),
    (16, "UPDATE_WEIGHTS"),
    (17, "GET_MASTER"),
    (18, "SUBSCRIBE"),
    (19, "RESERVE_RESOURCES"),
    (20, "UNRESERVE_RESOURCES"),
    (21, "CREATE_VOLUMES"),
    (22, "DESTROY_VOLUMES"),
    (23, "GET_MAINTENANCE_STATUS"),
    (24, "GET_MAINTENANCE_SCHEDULE"),
    (25, "UPDATE_MAINTENANCE_SCHEDULE"),
    (26, "START_MAINTENANCE"),
    (27, "STOP_MAINTENANCE"),
    (28, "GET_QUOTA"),
    (31, "TEARDOWN"),
    (32, "MARK_AGENT_GONE"),
    (33, "GET_OPERATIONS"),
    (34, "GROW_VOLUME"),
    (35, "SHRINK_VOLUME"),
    (36, "UPDATE_QUOTA"),
    (37, "DRAIN_AGENT"),
    (38, "DEACTIVATE_AGENT"),
    (39, "REACTIVATE_AGENT"),
    (29, "SET_QUOTA"),
    (30, "REMOVE_QUOTA"),
];

/// The name of a Mesos master call type number, if Mesos has one.
pub fn mesos_call_name(number: i32) -> Option<&'static str> {
    MESOS_CALL_TYPES
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, name)| *name)
}

/// The number of a Mesos master call type name, if Mesos has one.
pub fn mesos_call_number(name: &str) -> Option<i32> {
    MESOS_CALL_TYPES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(number, _)| *number)
}

/// `mesos.v1.master.Response.Type`, the answers the simulator gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum ResponseType {
    Unknown = 0,
    GetHealth = 1,
    GetAgents = 9,
    GetMaintenanceStatus = 16,
    GetMaintenanceSchedule = 17,
}

impl ResponseType {
    /// The `.proto` name of the value.
    pub fn name(self) -> &'static str {
        match self {
            ResponseType::Unknown => "UNKNOWN",
            ResponseType::GetHealth => "GET_HEALTH",
            ResponseType::GetAgents => "GET_AGENTS",
            ResponseType::GetMaintenanceStatus => "GET_MAINTENANCE_STATUS",
            ResponseType::GetMaintenanceSchedule => "GET_MAINTENANCE_SCHEDULE",
        }
    }
}

/// `mesos.v1.maintenance.Window`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Window {
    #[prost(message, repeated, tag = "1")]
    pub machine_ids: Vec<v1::MachineId>,
    #[prost(message, required, tag = "2")]
    pub unavailability: v1::Unavailability,
}

/// `mesos.v1.maintenance.Schedule`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Schedule {
    #[prost(message, repeated, tag = "1")]
    pub windows: Vec<Window>,
}

/// `mesos.v1.allocator.InverseOfferStatus.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum InverseOfferState {
    Unknown = 1,
    Accept = 2,
    Decline = 3,
}

impl InverseOfferState {
    /// The `.proto` name of the value.
    pub fn name(self) -> &'static str {
        match self {
            InverseOfferState::Unknown => "UNKNOWN",
            InverseOfferState::Accept => "ACCEPT",
            InverseOfferState::Decline => "DECLINE",
        }
    }
}

/// `mesos.v1.allocator.InverseOfferStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InverseOfferStatus {
    #[prost(enumeration = "InverseOfferState", required, tag = "1")]
    pub status: i32,
    #[prost(message, required, tag = "2")]
    pub framework_id: v1::FrameworkId,
    #[prost(message, required, tag = "3")]
    pub timestamp: v1::TimeInfo,
}

/// `mesos.v1.maintenance.ClusterStatus.DrainingMachine`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DrainingMachine {
    #[prost(message, required, tag = "1")]
    pub id: v1::MachineId,
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<InverseOfferStatus>,
}

/// `mesos.v1.maintenance.ClusterStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ClusterStatus {
    #[prost(message, repeated, tag = "1")]
    pub draining_machines: Vec<DrainingMachine>,
    #[prost(message, repeated, tag = "2")]
    pub down_machines: Vec<v1::MachineId>,
}

/// `google.protobuf.Duration` (DRAIN_AGENT's `max_grace_period`).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, optional, tag = "1")]
    pub seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    pub nanos: Option<i32>,
}

/// `Call.UpdateMaintenanceSchedule`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct UpdateMaintenanceSchedule {
    #[prost(message, required, tag = "1")]
    pub schedule: Schedule,
}

/// `Call.StartMaintenance` and `Call.StopMaintenance` (same shape).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Machines {
    #[prost(message, repeated, tag = "1")]
    pub machines: Vec<v1::MachineId>,
}

/// `Call.DrainAgent`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DrainAgent {
    #[prost(message, required, tag = "1")]
    pub agent_id: v1::AgentId,
    #[prost(message, optional, tag = "2")]
    pub max_grace_period: Option<ProtoDuration>,
    #[prost(bool, optional, tag = "3")]
    pub mark_gone: Option<bool>,
}

/// `Call.DeactivateAgent` and `Call.ReactivateAgent` (same shape).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentRef {
    #[prost(message, required, tag = "1")]
    pub agent_id: v1::AgentId,
}

/// `mesos.v1.master.Call`, the members the simulator reads.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Call {
    #[prost(enumeration = "CallType", optional, tag = "1")]
    pub r#type: Option<i32>,
    #[prost(message, optional, tag = "11")]
    pub update_maintenance_schedule: Option<UpdateMaintenanceSchedule>,
    #[prost(message, optional, tag = "12")]
    pub start_maintenance: Option<Machines>,
    #[prost(message, optional, tag = "13")]
    pub stop_maintenance: Option<Machines>,
    #[prost(message, optional, tag = "21")]
    pub drain_agent: Option<DrainAgent>,
    #[prost(message, optional, tag = "22")]
    pub deactivate_agent: Option<AgentRef>,
    #[prost(message, optional, tag = "23")]
    pub reactivate_agent: Option<AgentRef>,
}

impl Call {
    /// The call's type; a number the simulator does not know is UNKNOWN.
    pub fn call_type(&self) -> CallType {
        self.r#type
            .and_then(|t| CallType::try_from(t).ok())
            .unwrap_or(CallType::Unknown)
    }
}

/// `Response.GetHealth`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetHealth {
    #[prost(bool, required, tag = "1")]
    pub healthy: bool,
}

/// `Response.GetAgents.Agent`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentEntry {
    #[prost(message, required, tag = "1")]
    pub agent_info: v1::AgentInfo,
    #[prost(bool, required, tag = "2")]
    pub active: bool,
    #[prost(string, required, tag = "3")]
    pub version: String,
    #[prost(string, optional, tag = "4")]
    pub pid: Option<String>,
    #[prost(message, optional, tag = "5")]
    pub registered_time: Option<v1::TimeInfo>,
    #[prost(message, optional, tag = "6")]
    pub reregistered_time: Option<v1::TimeInfo>,
    #[prost(message, repeated, tag = "7")]
    pub total_resources: Vec<v1::Resource>,
    #[prost(message, repeated, tag = "8")]
    pub allocated_resources: Vec<v1::Resource>,
    #[prost(message, repeated, tag = "9")]
    pub offered_resources: Vec<v1::Resource>,
    #[prost(message, repeated, tag = "10")]
    pub capabilities: Vec<v1::agent_info::Capability>,
    #[prost(bool, optional, tag = "12")]
    pub deactivated: Option<bool>,
    #[prost(message, optional, tag = "13")]
    pub drain_info: Option<v1::DrainInfo>,
    #[prost(message, optional, tag = "14")]
    pub estimated_drain_start_time: Option<v1::TimeInfo>,
}

/// `Response.GetAgents`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetAgents {
    #[prost(message, repeated, tag = "1")]
    pub agents: Vec<AgentEntry>,
    /// Agents recovered from the registry and not yet back: the simulator
    /// has no registry, so always none (Mesos still writes the list).
    #[prost(message, repeated, tag = "2")]
    pub recovered_agents: Vec<v1::AgentInfo>,
}

/// `Response.GetMaintenanceStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMaintenanceStatus {
    #[prost(message, required, tag = "1")]
    pub status: ClusterStatus,
}

/// `Response.GetMaintenanceSchedule`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct GetMaintenanceSchedule {
    #[prost(message, required, tag = "1")]
    pub schedule: Schedule,
}

/// `mesos.v1.master.Response`, the members the simulator writes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Response {
    #[prost(enumeration = "ResponseType", optional, tag = "1")]
    pub r#type: Option<i32>,
    #[prost(message, optional, tag = "2")]
    pub get_health: Option<GetHealth>,
    #[prost(message, optional, tag = "10")]
    pub get_agents: Option<GetAgents>,
    #[prost(message, optional, tag = "17")]
    pub get_maintenance_status: Option<GetMaintenanceStatus>,
    #[prost(message, optional, tag = "18")]
    pub get_maintenance_schedule: Option<GetMaintenanceSchedule>,
}

impl Response {
    /// The answer of a call that returns nothing (an empty 200).
    pub fn empty() -> Response {
        Response::default()
    }

    /// Whether the answer has a body (a GET call's).
    pub fn has_body(&self) -> bool {
        self.r#type
            .is_some_and(|t| t != ResponseType::Unknown as i32)
    }

    /// An empty response of a type.
    pub fn of(ty: ResponseType) -> Response {
        Response {
            r#type: Some(ty as i32),
            ..Default::default()
        }
    }
}

/// Why a body is not a call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("Failed to parse body into Call protobuf: {0}")]
    Protobuf(String),
    #[error("Failed to parse body into JSON: {0}")]
    Json(String),
    #[error("Failed to convert JSON into Call protobuf: {0}")]
    Shape(String),
}

/// Encodes a `Call` in protobuf (for clients: tests, tools).
pub fn call_to_protobuf(call: &Call) -> Vec<u8> {
    call.encode_to_vec()
}

/// Decodes a protobuf `Response` (for clients).
pub fn response_from_protobuf(body: &[u8]) -> Result<Response, DecodeError> {
    Response::decode(body).map_err(|e| DecodeError::Protobuf(e.to_string()))
}

/// Decodes a protobuf `Call`.
pub fn call_from_protobuf(body: &[u8]) -> Result<Call, DecodeError> {
    Call::decode(body).map_err(|e| DecodeError::Protobuf(e.to_string()))
}
