//! Operator API calls as inputs to the master (`/api/v1`): each is
//! checked as Mesos checks it (`maintenance_rules`, then the machines' and
//! agents' states) and answered with a [`Response`] or an
//! [`OperatorError`] carrying Mesos' status and words. The maintenance
//! calls are here; the agent calls are `drains.rs`'s, and the allocation
//! cycle's inverse offers `inverse_offers.rs`'s.
//!
//! What Mesos does, and so this does (`src/master/http.cpp`, `master.cpp`):
//! - UPDATE_MAINTENANCE_SCHEDULE: machines new to the schedule DRAIN,
//!   machines left out are UP; every agent whose window changed has its
//!   offers and inverse offers rescinded, and its next offers carry
//!   `unavailability`.
//! - START_MAINTENANCE: the machines' agents are removed: their tasks end
//!   TASK_LOST (REASON_AGENT_REMOVED), or TASK_GONE_BY_OPERATOR
//!   (REASON_AGENT_REMOVED_BY_OPERATOR) for partition-aware frameworks,
//!   offers and inverse offers are rescinded, and every framework gets
//!   FAILURE for the agent. STOP_MAINTENANCE: the agents register again
//!   under their old ids, as a real Mesos agent restarted on its work
//!   directory does, and are offered (on Mesos the operator restarts the
//!   agent; here it comes back by itself).
//! - A machine the master has seen (scheduled once, or an agent's) and
//!   that is not scheduled is UP: START and STOP refuse it by its mode;
//!   only a machine never seen is "not part of a maintenance schedule".
//!
//! ```text
//! UP --schedule--> DRAINING --START--> DOWN --STOP--> UP
//! DRAINING --left out of the schedule--> UP
//! ```

use std::collections::BTreeMap;
use std::time::Instant;

use drover_proto::v1::{self, task_status::Reason, TaskState};
use drover_proto::TaskStateExt;

use super::events;
use super::machine::{Effect, Master};
use super::maintenance::Maintenance;
use super::maintenance::Mode;
use super::maintenance_rules::{self, describe, MachineKey, RuleError};
use super::tasks::{master_status, StatusMark};
use crate::ids::AgentIndex;
use crate::operator_proto::{
    mesos_call_name, AgentEntry, Call, CallType, GetAgents, GetHealth, GetMaintenanceSchedule,
    GetMaintenanceStatus, Response, ResponseType,
};
use crate::resources::Resources;

/// Why an operator call is refused, in Mesos' words; each maps to the
/// status Mesos answers (400, or 501 for a call the simulator does not
/// serve). None is retryable as it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// The schedule or list of machines breaks one of Mesos' rules.
    #[error(transparent)]
    Rule(#[from] RuleError),
    /// The call has no type, or one Mesos does not know.
    #[error("Failed to validate master::Call: Expecting 'type' to be present")]
    NoType,
    /// The call lacks the member its type names (the field's name).
    #[error("Failed to validate master::Call: Expecting '{0}' to be present")]
    Missing(&'static str),
    /// START or STOP names a machine the master has never seen (its JSON).
    #[error("Machine '{0}' is not part of a maintenance schedule")]
    NotScheduled(String),
    /// START names a machine that is not DRAINING (UP or already DOWN).
    #[error("Machine '{0}' is not in DRAINING mode and cannot be brought down")]
    NotDraining(String),
    /// STOP names a machine that is not DOWN (UP or DRAINING).
    #[error("Machine '{0}' is not in DOWN mode and cannot be brought up")]
    NotDown(String),
    /// No registered agent has the id (removed agents included).
    #[error("Unknown agent")]
    UnknownAgent,
    /// DRAIN_AGENT of an agent whose machine is in the schedule: Mesos
    /// keeps the two ways of taking an agent down apart (the agent id,
    /// then its machine as Mesos prints a `MachineID`).
    #[error("Agent {0} is part of a maintenance schedule under Machine {1}")]
    InSchedule(String, String),
    /// REACTIVATE_AGENT of an agent that is not deactivated (an active or
    /// unknown one: Mesos looks only at its deactivated set).
    #[error("Agent is not deactivated")]
    NotDeactivated,
    /// REACTIVATE_AGENT while the agent's drain still has tasks to end.
    #[error("Agent is still in the DRAINING state")]
    StillDraining,
    /// A call type the simulator does not serve (its number or name).
    #[error("Call type {0} is not supported by the simulator")]
    NotImplemented(String),
}

impl OperatorError {
    /// The HTTP status Mesos answers with.
    pub fn status(&self) -> u16 {
        match self {
            OperatorError::NotImplemented(_) => 501,
            _ => 400,
        }
    }
}

/// What a simulated agent can do, as GET_AGENTS lists it: frameworks of
/// several and of nested roles, and draining. (No reservations, resource
/// providers, volumes or operation feedback: the simulator has none.)
const AGENT_CAPABILITIES: [v1::agent_info::capability::Type; 3] = [
    v1::agent_info::capability::Type::MultiRole,
    v1::agent_info::capability::Type::HierarchicalRole,
    v1::agent_info::capability::Type::AgentDraining,
];

/// Why Mesos removes the agents of a machine START_MAINTENANCE takes down
/// (their tasks' message is `Agent <hostname> removed: ` and this).
const MACHINE_DOWN: &str = "Operator initiated 'Machine DOWN'";

impl Master {
    /// The maintenance part, for `/state` and tests.
    pub fn maintenance(&self) -> &Maintenance {
        &self.maintenance
    }

    /// The agents (not removed) on the machine with this key.
    pub fn agents_on_machine(&self, key: &MachineKey) -> Vec<AgentIndex> {
        self.fleet
            .as_slice()
            .iter()
            .enumerate()
            .filter(|(_, a)| MachineKey::of(&a.machine_id()) == *key)
            .map(|(i, _)| i)
            .collect()
    }

    /// An operator call (decoded, not yet validated).
    pub fn on_operator_call(
        &mut self,
        call: Call,
        now: Instant,
    ) -> (Result<Response, OperatorError>, Vec<Effect>) {
        let mut fx = Vec::new();
        let ty = call.call_type();
        *self.counters.operator_calls.entry(ty.name()).or_default() += 1;
        let result = match ty {
            CallType::GetHealth => Ok(Response {
                get_health: Some(GetHealth { healthy: true }),
                ..Response::of(ResponseType::GetHealth)
            }),
            CallType::GetAgents => Ok(self.get_agents()),
            CallType::GetMaintenanceStatus => Ok(Response {
                get_maintenance_status: Some(GetMaintenanceStatus {
                    status: self.cluster_status(),
                }),
                ..Response::of(ResponseType::GetMaintenanceStatus)
            }),
            CallType::GetMaintenanceSchedule => Ok(Response {
                get_maintenance_schedule: Some(GetMaintenanceSchedule {
                    schedule: self.maintenance.schedule().clone(),
                }),
                ..Response::of(ResponseType::GetMaintenanceSchedule)
            }),
            CallType::UpdateMaintenanceSchedule => match call.update_maintenance_schedule {
                Some(u) => self.update_schedule(u.schedule, now, &mut fx),
                None => Err(OperatorError::Missing("update_maintenance_schedule")),
            },
            CallType::StartMaintenance => match call.start_maintenance {
                Some(s) => self.start_maintenance(&s.machines, now, &mut fx),
                None => Err(OperatorError::Missing("start_maintenance")),
            },
            CallType::StopMaintenance => match call.stop_maintenance {
                Some(s) => self.stop_maintenance(&s.machines, now),
                None => Err(OperatorError::Missing("stop_maintenance")),
            },
            CallType::DrainAgent => match call.drain_agent {
                Some(d) => {
                    let grace = d.max_grace_period.map(|g| {
                        let nanos = i128::from(g.seconds.unwrap_or(0)) * 1_000_000_000
                            + i128::from(g.nanos.unwrap_or(0));
                        i64::try_from(nanos).unwrap_or(if nanos < 0 { i64::MIN } else { i64::MAX })
                    });
                    self.drain_agent(
                        &d.agent_id.value,
                        grace,
                        d.mark_gone.unwrap_or(false),
                        now,
                        &mut fx,
                    )
                }
                None => Err(OperatorError::Missing("drain_agent")),
            },
            CallType::DeactivateAgent => match call.deactivate_agent {
                Some(d) => self.deactivate_agent(&d.agent_id.value, &mut fx),
                None => Err(OperatorError::Missing("deactivate_agent")),
            },
            CallType::ReactivateAgent => match call.reactivate_agent {
                Some(r) => self.reactivate_agent(&r.agent_id.value, now),
                None => Err(OperatorError::Missing("reactivate_agent")),
            },
            CallType::Unknown => Err(match call.r#type.and_then(mesos_call_name) {
                // No type, or a number no Mesos call has: Mesos' protobuf
                // parser leaves such a type unset.
                None => OperatorError::NoType,
                Some(name) => OperatorError::NotImplemented(name.to_owned()),
            }),
        };
        (result, fx)
    }

    /// GET_AGENTS: every agent in the cluster as Mesos'
    /// `createAgentResponse` fills it, from what the simulator knows.
    fn get_agents(&self) -> Response {
        let agents = self
            .fleet
            .as_slice()
            .iter()
            .enumerate()
            .filter(|(_, a)| !a.removed)
            .map(|(index, a)| {
                let nanos = |at: Instant| v1::TimeInfo {
                    nanoseconds: (self.unix(at) * 1e9) as i64,
                };
                let mut agent_info = a.info();
                // Mesos writes the agent's own resources without a role.
                #[allow(deprecated)]
                for r in &mut agent_info.resources {
                    r.role = None;
                }
                AgentEntry {
                    agent_info,
                    active: a.connected && !a.deactivated,
                    deactivated: Some(a.deactivated),
                    version: self.config.version.clone(),
                    pid: Some(format!("slave(1)@{}:{}", a.ip, a.url().address.port)),
                    registered_time: Some(nanos(a.registered_at)),
                    reregistered_time: a.reregistered_at.map(nanos),
                    total_resources: a.total.to_protos(None),
                    allocated_resources: self.allocated_on(index),
                    offered_resources: self.offered_on(index),
                    capabilities: AGENT_CAPABILITIES
                        .iter()
                        .map(|t| v1::agent_info::Capability {
                            r#type: Some(*t as i32),
                        })
                        .collect(),
                    drain_info: a.drain,
                    // Mesos gives it in whole seconds.
                    estimated_drain_start_time: a.drain.and(a.drain_started).map(|at| {
                        v1::TimeInfo {
                            nanoseconds: self.unix(at).floor() as i64 * 1_000_000_000,
                        }
                    }),
                }
            })
            .collect();
        Response {
            get_agents: Some(GetAgents {
                agents,
                recovered_agents: Vec::new(),
            }),
            ..Response::of(ResponseType::GetAgents)
        }
    }

    /// What the agent's live tasks use, by the role of their framework.
    fn allocated_on(&self, agent: AgentIndex) -> Vec<v1::Resource> {
        let mut by_role: BTreeMap<String, Resources> = BTreeMap::new();
        for key in self.tasks.on_agent(agent) {
            let Some(task) = self.tasks.get(&key) else {
                continue;
            };
            if task.state().is_terminal() {
                continue;
            }
            let role = self
                .frameworks
                .get(&key.0)
                .and_then(|f| f.roles().into_iter().next())
                .unwrap_or_else(|| "*".to_owned());
            by_role.entry(role).or_default().add(&task.resources);
        }
        by_role
            .iter()
            .flat_map(|(role, r)| r.to_protos(Some(role)))
            .collect()
    }

    /// What the agent's outstanding offers hold, by the role offered to.
    fn offered_on(&self, agent: AgentIndex) -> Vec<v1::Resource> {
        self.offers
            .on_agent(agent)
            .iter()
            .filter_map(|id| self.offers.get(id))
            .flat_map(|o| o.resources.to_protos(Some(&o.role)))
            .collect()
    }

    /// GET_MAINTENANCE_STATUS's answer.
    pub fn cluster_status(&self) -> crate::operator_proto::ClusterStatus {
        self.maintenance
            .cluster_status(|key| self.agents_on_machine(key))
    }

    fn update_schedule(
        &mut self,
        schedule: crate::operator_proto::Schedule,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Result<Response, OperatorError> {
        maintenance_rules::schedule(&schedule, &self.maintenance.down())?;
        for (key, window) in self.maintenance.replace_schedule(schedule) {
            for agent in self.agents_on_machine(&key) {
                self.set_window(agent, window, fx);
            }
        }
        self.timers.allocate_soon(now);
        Ok(Response::empty())
    }

    /// The agent's window changed: its offers and inverse offers are
    /// rescinded, so that its next offers carry the new window.
    fn set_window(
        &mut self,
        agent: AgentIndex,
        window: Option<v1::Unavailability>,
        fx: &mut Vec<Effect>,
    ) {
        for offer in self.offers.on_agent(agent) {
            self.rescind_offer(&offer, fx);
        }
        self.rescind_inverse_offers(agent, fx);
        self.fleet.set_unavailability(agent, window);
    }

    /// Each machine is scheduled and in the `expected` mode. A machine the
    /// master has seen but that is not scheduled is UP (Mesos keeps every
    /// machine it met in its `machines`), so it fails on its mode; only a
    /// machine never seen is not part of a schedule.
    fn check_machines(
        &self,
        ids: &[v1::MachineId],
        expected: Mode,
        refusal: fn(String) -> OperatorError,
    ) -> Result<Vec<MachineKey>, OperatorError> {
        maintenance_rules::machines(ids)?;
        let mut keys = Vec::with_capacity(ids.len());
        for id in ids {
            let key = MachineKey::of(id);
            match self.maintenance.machine(&key) {
                Some(m) if m.mode == expected => {}
                Some(_) => return Err(refusal(describe(id))),
                None if self.machine_seen(&key) => return Err(refusal(describe(id))),
                None => return Err(OperatorError::NotScheduled(describe(id))),
            }
            keys.push(key);
        }
        Ok(keys)
    }

    /// Whether the master has met the machine: it was scheduled once, or
    /// an agent (even a removed one) is on it.
    fn machine_seen(&self, key: &MachineKey) -> bool {
        self.maintenance.was_scheduled(key)
            || self
                .fleet
                .as_slice()
                .iter()
                .any(|a| MachineKey::of(&a.machine_id()) == *key)
    }

    fn start_maintenance(
        &mut self,
        ids: &[v1::MachineId],
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Result<Response, OperatorError> {
        let keys = self.check_machines(ids, Mode::Draining, OperatorError::NotDraining)?;
        for key in &keys {
            for agent in self.agents_on_machine(key) {
                self.remove_agent(agent, MACHINE_DOWN, now, fx);
            }
        }
        self.maintenance.set_down(&keys);
        Ok(Response::empty())
    }

    fn stop_maintenance(
        &mut self,
        ids: &[v1::MachineId],
        now: Instant,
    ) -> Result<Response, OperatorError> {
        let keys = self.check_machines(ids, Mode::Down, OperatorError::NotDown)?;
        for key in &keys {
            for agent in self.agents_on_machine(key) {
                self.maintenance.reset_agent(agent);
                self.fleet.set_unavailability(agent, None);
                if self.fleet[agent].removed {
                    self.fleet.reregister(agent, now);
                }
            }
        }
        self.maintenance.set_up(&keys);
        self.timers.allocate_soon(now);
        Ok(Response::empty())
    }

    /// The agent leaves the cluster as Mesos' `removeSlave` takes it: its
    /// tasks end in the master's books with an update to their
    /// frameworks, its offers and inverse offers are rescinded, its real
    /// executors are shut down, and every framework gets FAILURE.
    pub(super) fn remove_agent(
        &mut self,
        agent: AgentIndex,
        message: &str,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if self.fleet[agent].removed {
            return;
        }
        let agent_id = self.fleet[agent].id.clone();
        let message = format!("Agent {} removed: {message}", self.fleet[agent].hostname);
        for offer in self.offers.on_agent(agent) {
            self.rescind_offer(&offer, fx);
        }
        self.rescind_inverse_offers(agent, fx);
        let unix = self.unix(now);
        for key in self.tasks.on_agent(agent) {
            let Some(mut removed) = self.tasks.remove(&key) else {
                continue;
            };
            self.updates.forget(&key);
            let task = &mut removed.task;
            if !task.state().is_terminal() {
                let aware = self.frameworks.is_partition_aware(&key.0);
                let (state, reason) = if aware {
                    (
                        TaskState::TaskGoneByOperator,
                        Reason::AgentRemovedByOperator,
                    )
                } else {
                    (TaskState::TaskLost, Reason::AgentRemoved)
                };
                let status = master_status(
                    &task.task_id,
                    state,
                    reason,
                    &message,
                    Some(&agent_id),
                    unix,
                );
                self.send_master_update(&key.0, status, fx);
                self.fleet.give_back(task.agent, &task.resources);
                self.offers.credit(&key.0, &task.resources);
                task.state = state;
                task.statuses.push(StatusMark {
                    state,
                    timestamp: unix,
                    healthy: None,
                });
            }
            self.record_completed(&key.0, removed);
        }
        let executors: Vec<_> = self
            .executors
            .iter()
            .filter(|e| e.key.0 == agent)
            .map(|e| e.key.clone())
            .collect();
        for key in executors {
            self.shutdown_real(&key, now, fx);
        }
        self.fleet.remove(agent);
        for conn in self.frameworks.conns() {
            fx.push(Effect::Send {
                conn,
                event: Box::new(events::agent_failure(&agent_id)),
            });
        }
    }
}
