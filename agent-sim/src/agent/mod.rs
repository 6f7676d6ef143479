//! The agents: their identity and resources, and how each runs its tasks.
//! Nothing here knows the master; the master's parts are built on these.
//!
//! # Layout
//! - [`fleet`]: every agent, by index and by id, with what each has free.
//! - [`sim_task`]: the pure lifecycle of one simulated task, with
//!   [`sim_check`] (its Mesos `check`: readiness results, reported on change).
//! - [`executor`]: one real agent's executor and its protocol state (pure).
//! - [`executor_registry`]: every real agent's executors, indexed (pure).
//! - [`executor_call`]: executor call checks and refusals (pure).
//! - [`launch`]: an executor's program, sandbox and environment (pure).
//! - [`processes`]: starts, watches and kills executor processes (drive).
//! - [`cgroups`]: kills and removes the executors' cgroups (drive).
//! - [`files`]: the agent's `/files/browse` and `/files/read` (drive).
//! - [`monitor`]: `/monitor/statistics` from `/proc` (drive).
//!
//! Every agent has a [`RunnerKind`]. Simulated agents run their tasks in
//! the master's state machine ([`sim_task::SimTask`]); real agents start
//! executor processes, which subscribe to `/api/v1/executor` (served by
//! `master::executor_api`) and report their tasks' states themselves.

pub mod cgroups;
pub mod executor;
pub mod executor_call;
pub mod executor_registry;
pub mod files;
pub mod fleet;
pub mod launch;
pub mod monitor;
pub mod processes;
pub mod sim_check;
pub mod sim_task;

use std::time::Instant;

use drover_proto::v1;

use crate::resources::Resources;

/// How an agent runs the tasks launched on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunnerKind {
    /// Tasks are simulated: no processes, lifecycle from `sim_task`.
    #[default]
    Simulated,
    /// Tasks run under real executor processes.
    Real,
}

/// What an agent is made of, from flags or the fleet file.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub hostname: String,
    pub resources: Resources,
    pub attributes: Vec<v1::Attribute>,
    pub runner: RunnerKind,
    /// A real agent's own executor endpoint (`MESOS_AGENT_ENDPOINT`).
    pub endpoint: Option<std::net::SocketAddr>,
}

/// An agent as the master sees it. [`fleet::Fleet`] owns every agent and
/// is the only writer of its free resources and connection.
#[derive(Debug)]
pub struct Agent {
    pub id: String,
    pub hostname: String,
    pub attributes: Vec<v1::Attribute>,
    pub total: Resources,
    /// Neither offered nor used by a task.
    pub available: Resources,
    /// False while a fault has taken the agent away.
    pub connected: bool,
    pub runner: RunnerKind,
    /// A real agent's executor endpoint.
    pub endpoint: Option<std::net::SocketAddr>,
    pub registered_at: Instant,
    /// When it registered again after maintenance (GET_AGENTS'
    /// `reregistered_time`).
    pub reregistered_at: Option<Instant>,
    /// The IP of the agent's machine: a real agent's endpoint's, else the
    /// master's (every simulated agent lives on the master's host). With
    /// the hostname it makes the agent's `MachineID`, as a Mesos master
    /// takes the IP from the agent's pid.
    pub ip: std::net::IpAddr,
    /// The maintenance window of the agent's machine, if it is scheduled:
    /// every offer of the agent carries it as `Offer.unavailability`.
    pub unavailability: Option<v1::Unavailability>,
    /// DEACTIVATE_AGENT or DRAIN_AGENT: no offers until REACTIVATE_AGENT.
    pub deactivated: bool,
    /// DRAIN_AGENT's state and config, until REACTIVATE_AGENT.
    pub drain: Option<v1::DrainInfo>,
    /// When DRAIN_AGENT told it to drain, while `drain` is set.
    pub drain_started: Option<Instant>,
    /// Removed from the cluster: its machine went DOWN (START_MAINTENANCE)
    /// or a drain with `mark_gone` ended. A removed agent has no tasks and
    /// no offers, and fault inputs cannot bring it back.
    pub removed: bool,
}

impl Agent {
    /// An agent; `host_ip` is the master's, the machine of a simulated agent.
    pub fn new(id: String, spec: AgentSpec, host_ip: std::net::IpAddr, now: Instant) -> Self {
        Agent {
            ip: spec.endpoint.map_or(host_ip, |e| e.ip()),
            unavailability: None,
            deactivated: false,
            drain: None,
            drain_started: None,
            removed: false,
            id,
            hostname: spec.hostname,
            attributes: spec.attributes,
            available: spec.resources.clone(),
            total: spec.resources,
            connected: true,
            runner: spec.runner,
            endpoint: spec.endpoint,
            registered_at: now,
            reregistered_at: None,
        }
    }

    /// Whether the allocator may offer the agent's resources.
    pub fn offerable(&self) -> bool {
        self.connected && !self.removed && !self.deactivated
    }

    /// The agent's `MachineID`: its hostname and its machine's IP.
    pub fn machine_id(&self) -> v1::MachineId {
        v1::MachineId {
            hostname: Some(self.hostname.clone()),
            ip: Some(self.ip.to_string()),
        }
    }

    pub fn is_real(&self) -> bool {
        self.runner == RunnerKind::Real
    }

    /// The port the agent serves on: a real agent's own, else Mesos' default.
    fn port(&self) -> u16 {
        self.endpoint.map(|e| e.port()).unwrap_or(5051)
    }

    /// The agent's URL as offers carry it (reference 3.5.1).
    pub fn url(&self) -> v1::Url {
        v1::Url {
            scheme: "http".into(),
            address: v1::Address {
                hostname: Some(self.hostname.clone()),
                ip: Some(self.ip.to_string()),
                port: i32::from(self.port()),
            },
            path: Some("/slave(1)".into()),
            ..Default::default()
        }
    }

    /// The `AgentInfo` of this agent.
    pub fn info(&self) -> v1::AgentInfo {
        v1::AgentInfo {
            hostname: self.hostname.clone(),
            port: Some(i32::from(self.port())),
            resources: self.total.to_protos(None),
            attributes: self.attributes.clone(),
            id: Some(v1::AgentId {
                value: self.id.clone(),
            }),
            ..Default::default()
        }
    }
}
