//! The simulated agents: their identity, resources and the tasks placed on
//! them, plus how each agent runs its tasks.
//!
//! # Layout
//! - [`sim_task`]: the pure lifecycle of one simulated task.
//!
//! Every agent has a [`RunnerKind`]. Today all agents simulate their tasks
//! in the master's state machine; the executor issue adds a kind whose
//! agent launches real executor processes behind `/api/v1/executor`, and
//! the master then asks the driver to launch them instead of creating a
//! [`sim_task::SimTask`].

pub mod sim_task;

use std::collections::HashSet;
use std::time::Instant;

use drover_proto::v1;

use crate::master::state::TaskKey;
use crate::resources::Resources;

/// How an agent runs the tasks launched on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RunnerKind {
    /// Tasks are simulated: no processes, lifecycle from `sim_task`.
    #[default]
    Simulated,
}

/// What an agent is made of, from flags or the fleet file.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSpec {
    pub hostname: String,
    pub resources: Resources,
    pub attributes: Vec<v1::Attribute>,
    pub runner: RunnerKind,
}

/// A simulated agent as the master sees it.
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
    pub tasks: HashSet<TaskKey>,
    pub runner: RunnerKind,
    pub registered_at: Instant,
}

impl Agent {
    pub fn new(id: String, spec: AgentSpec, now: Instant) -> Self {
        Agent {
            id,
            hostname: spec.hostname,
            attributes: spec.attributes,
            available: spec.resources.clone(),
            total: spec.resources,
            connected: true,
            tasks: HashSet::new(),
            runner: spec.runner,
            registered_at: now,
        }
    }

    /// The agent's URL as offers carry it (reference 3.5.1).
    pub fn url(&self) -> v1::Url {
        v1::Url {
            scheme: "http".into(),
            address: v1::Address {
                hostname: Some(self.hostname.clone()),
                ip: None,
                port: 5051,
            },
            path: Some("/slave(1)".into()),
            ..Default::default()
        }
    }

    /// The `AgentInfo` of this agent.
    pub fn info(&self) -> v1::AgentInfo {
        v1::AgentInfo {
            hostname: self.hostname.clone(),
            port: Some(5051),
            resources: self.total.to_protos(None),
            attributes: self.attributes.clone(),
            id: Some(v1::AgentId {
                value: self.id.clone(),
            }),
            ..Default::default()
        }
    }
}
