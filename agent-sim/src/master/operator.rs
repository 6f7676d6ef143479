//! Operator API calls as inputs to the master (`/api/v1`, the maintenance
//! and agent calls), and the maintenance work the allocation cycle does:
//! inverse offers for agents in a window, and draining agents that have
//! emptied. Each call is checked as Mesos checks it (`maintenance_rules`,
//! then the machines' and agents' states) and answered with a
//! [`Response`] or an [`OperatorError`] carrying Mesos' status and words.
//!
//! What Mesos does, and so this does (`src/master/http.cpp`,
//! `master.cpp`, the hierarchical allocator):
//! - UPDATE_MAINTENANCE_SCHEDULE: machines new to the schedule DRAIN; every
//!   agent whose window changed has its offers and inverse offers
//!   rescinded, and its next offers carry `unavailability`.
//! - Each allocation cycle, every framework with tasks or offers on an
//!   active agent in a window, and no inverse offer outstanding or
//!   filtered there, gets one (INVERSE_OFFERS); its ACCEPT or DECLINE is
//!   recorded for GET_MAINTENANCE_STATUS and filters the agent for the
//!   call's `refuse_seconds`.
//! - START_MAINTENANCE: the machines' agents are removed: their tasks end
//!   TASK_LOST (REASON_AGENT_REMOVED), or TASK_GONE_BY_OPERATOR
//!   (REASON_AGENT_REMOVED_BY_OPERATOR) for partition-aware frameworks,
//!   offers and inverse offers are rescinded, and every framework gets
//!   FAILURE for the agent. STOP_MAINTENANCE: the agents register again
//!   (with their old ids: a simulated agent has nothing to clean up) and
//!   are offered.
//! - DRAIN_AGENT: the agent is deactivated and its tasks killed (grace at
//!   most `max_grace_period`); with no task left it is DRAINED, or removed
//!   if `mark_gone` (whose tasks end TASK_GONE_BY_OPERATOR,
//!   `update_delivery.rs`). DEACTIVATE_AGENT / REACTIVATE_AGENT stop and resume
//!   its offers.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drover_proto::v1::{self, task_status::Reason, TaskState};
use drover_proto::TaskStateExt;

use super::allocator::refuse_duration;
use super::events;
use super::machine::{Effect, Master};
use super::maintenance::Mode;
use super::maintenance::{InverseOfferRecord, Maintenance};
use super::maintenance_rules::{self, describe, MachineKey};
use super::tasks::{master_status, Runner, StatusMark};
use crate::deadline::after;
use crate::ids::AgentIndex;
use crate::operator_proto::{
    AgentEntry, Call, CallType, GetAgents, GetHealth, GetMaintenanceSchedule, GetMaintenanceStatus,
    Response, ResponseType,
};

/// Why an operator call is refused; each maps to the status Mesos answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// 400, with Mesos' reason.
    #[error("{0}")]
    BadRequest(String),
    /// 409: the call conflicts with what the master is doing.
    #[error("{0}")]
    Conflict(String),
    /// 501: a call type the simulator does not serve.
    #[error("Call type {0} is not supported by the simulator")]
    NotImplemented(String),
}

impl OperatorError {
    /// The HTTP status Mesos answers with.
    pub fn status(&self) -> u16 {
        match self {
            OperatorError::BadRequest(_) => 400,
            OperatorError::Conflict(_) => 409,
            OperatorError::NotImplemented(_) => 501,
        }
    }
}

fn bad(message: impl Into<String>) -> OperatorError {
    OperatorError::BadRequest(message.into())
}

fn missing(field: &str) -> OperatorError {
    bad(format!("Expecting '{field}' to be present"))
}

/// The message Mesos gives the tasks of an agent removed for maintenance.
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
                None => Err(missing("update_maintenance_schedule")),
            },
            CallType::StartMaintenance => match call.start_maintenance {
                Some(s) => self.start_maintenance(&s.machines, now, &mut fx),
                None => Err(missing("start_maintenance")),
            },
            CallType::StopMaintenance => match call.stop_maintenance {
                Some(s) => self.stop_maintenance(&s.machines, now),
                None => Err(missing("stop_maintenance")),
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
                None => Err(missing("drain_agent")),
            },
            CallType::DeactivateAgent => match call.deactivate_agent {
                Some(d) => self.deactivate_agent(&d.agent_id.value, &mut fx),
                None => Err(missing("deactivate_agent")),
            },
            CallType::ReactivateAgent => match call.reactivate_agent {
                Some(r) => self.reactivate_agent(&r.agent_id.value, now),
                None => Err(missing("reactivate_agent")),
            },
            CallType::Unknown => Err(OperatorError::NotImplemented(
                call.r#type
                    .map_or_else(|| "UNKNOWN".to_owned(), |t| t.to_string()),
            )),
        };
        (result, fx)
    }

    fn get_agents(&self) -> Response {
        let agents = self
            .fleet
            .as_slice()
            .iter()
            .filter(|a| !a.removed)
            .map(|a| AgentEntry {
                agent_info: a.info(),
                active: a.connected && !a.deactivated,
                deactivated: Some(a.deactivated),
                version: self.config.version.clone(),
                pid: Some(format!("slave(1)@{}:{}", a.ip, a.url().address.port)),
                registered_time: Some(v1::TimeInfo {
                    nanoseconds: (self.unix(a.registered_at) * 1e9) as i64,
                }),
                total_resources: a.total.to_protos(None),
                drain_info: a.drain,
            })
            .collect();
        Response {
            get_agents: Some(GetAgents { agents }),
            ..Response::of(ResponseType::GetAgents)
        }
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
        maintenance_rules::schedule(&schedule, &self.maintenance.down()).map_err(bad)?;
        for (key, window) in self.maintenance.replace_schedule(schedule) {
            for agent in self.agents_on_machine(&key) {
                self.set_window(agent, window, fx);
            }
        }
        self.timers.allocate_soon(now);
        Ok(Response::of(ResponseType::Unknown))
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

    fn rescind_inverse_offers(&mut self, agent: AgentIndex, fx: &mut Vec<Effect>) {
        for o in self.maintenance.reset_agent(agent) {
            self.send_to(&o.framework, events::rescind_inverse_offer(&o.id), fx);
        }
    }

    /// Each machine is scheduled and in the `expected` mode.
    fn check_machines(
        &self,
        ids: &[v1::MachineId],
        expected: Mode,
        refusal: &str,
    ) -> Result<Vec<MachineKey>, OperatorError> {
        maintenance_rules::machines(ids).map_err(bad)?;
        let mut keys = Vec::with_capacity(ids.len());
        for id in ids {
            let key = MachineKey::of(id);
            let Some(m) = self.maintenance.machine(&key) else {
                return Err(bad(format!(
                    "Machine '{}' is not part of a maintenance schedule",
                    describe(id)
                )));
            };
            if m.mode != expected {
                return Err(bad(format!("Machine '{}' {refusal}", describe(id))));
            }
            keys.push(key);
        }
        Ok(keys)
    }

    fn start_maintenance(
        &mut self,
        ids: &[v1::MachineId],
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Result<Response, OperatorError> {
        let keys = self.check_machines(
            ids,
            Mode::Draining,
            "is not in DRAINING mode and cannot be brought down",
        )?;
        for key in &keys {
            for agent in self.agents_on_machine(key) {
                self.remove_agent(agent, MACHINE_DOWN, now, fx);
            }
        }
        self.maintenance.set_down(&keys);
        Ok(Response::of(ResponseType::Unknown))
    }

    fn stop_maintenance(
        &mut self,
        ids: &[v1::MachineId],
        now: Instant,
    ) -> Result<Response, OperatorError> {
        let keys = self.check_machines(
            ids,
            Mode::Down,
            "is not in DOWN mode and cannot be brought up",
        )?;
        for key in &keys {
            for agent in self.agents_on_machine(key) {
                self.maintenance.reset_agent(agent);
                self.fleet.set_unavailability(agent, None);
                if self.fleet[agent].removed {
                    self.fleet.set_removed(agent, false);
                }
            }
        }
        self.maintenance.set_up(&keys);
        self.timers.allocate_soon(now);
        Ok(Response::of(ResponseType::Unknown))
    }

    /// The agent leaves the cluster as Mesos' `removeSlave` takes it: its
    /// tasks end in the master's books with an update to their
    /// frameworks, its offers and inverse offers are rescinded, its real
    /// executors are shut down, and every framework gets FAILURE.
    fn remove_agent(
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
                let status =
                    master_status(&task.task_id, state, reason, message, Some(&agent_id), unix);
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
        self.fleet.set_removed(agent, true);
        for conn in self.frameworks.conns() {
            fx.push(Effect::Send {
                conn,
                event: Box::new(events::agent_failure(&agent_id)),
            });
        }
    }

    /// The agent's index, if it is in the cluster (not removed).
    fn known_agent(&self, agent_id: &str) -> Result<AgentIndex, OperatorError> {
        self.fleet
            .index_of(agent_id)
            .filter(|i| !self.fleet[*i].removed)
            .ok_or_else(|| bad("Unknown agent"))
    }

    fn drain_agent(
        &mut self,
        agent_id: &str,
        max_grace_nanos: Option<i64>,
        mark_gone: bool,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Result<Response, OperatorError> {
        let agent = self.known_agent(agent_id)?;
        let config = v1::DrainConfig {
            max_grace_period: max_grace_nanos.map(|n| v1::DurationInfo { nanoseconds: n }),
            mark_gone: Some(mark_gone),
        };
        self.fleet.set_drain(
            agent,
            Some(v1::DrainInfo {
                state: v1::DrainState::Draining as i32,
                config,
            }),
        );
        self.deactivate(agent, fx);
        let max_grace = max_grace_nanos.map(|n| Duration::from_nanos(n.max(0) as u64));
        for key in self.tasks.on_agent(agent) {
            let Some(task) = self.tasks.get(&key) else {
                continue;
            };
            if task.state().is_terminal() {
                continue;
            }
            // The task's own grace period, capped by the drain's.
            let grace = match (&task.runner, max_grace) {
                (_, None) => None,
                (Runner::Simulated(sim), Some(max)) => Some(sim.kill_grace().min(max)),
                (Runner::Real, Some(max)) => Some(max),
            };
            if self.fleet[agent].connected {
                self.kill_task(&key, grace, now, fx);
            } else {
                self.tasks.hold_kill(&key, grace);
            }
        }
        self.check_drained(agent, now, fx);
        Ok(Response::of(ResponseType::Unknown))
    }

    /// No offers for the agent: the outstanding ones are rescinded.
    fn deactivate(&mut self, agent: AgentIndex, fx: &mut Vec<Effect>) {
        self.fleet.set_deactivated(agent, true);
        for offer in self.offers.on_agent(agent) {
            self.rescind_offer(&offer, fx);
        }
    }

    fn deactivate_agent(
        &mut self,
        agent_id: &str,
        fx: &mut Vec<Effect>,
    ) -> Result<Response, OperatorError> {
        let agent = self.known_agent(agent_id)?;
        self.deactivate(agent, fx);
        Ok(Response::of(ResponseType::Unknown))
    }

    fn reactivate_agent(
        &mut self,
        agent_id: &str,
        now: Instant,
    ) -> Result<Response, OperatorError> {
        let agent = self.known_agent(agent_id)?;
        let a = &self.fleet[agent];
        if !a.deactivated {
            return Err(bad("Agent is not deactivated"));
        }
        if a.drain
            .as_ref()
            .is_some_and(|d| d.state == v1::DrainState::Draining as i32)
        {
            return Err(bad("Agent is still in the DRAINING state"));
        }
        self.fleet.set_drain(agent, None);
        self.fleet.set_deactivated(agent, false);
        self.timers.allocate_soon(now);
        Ok(Response::of(ResponseType::Unknown))
    }

    /// A DRAINING agent with no task left (live, or ended and not yet
    /// acknowledged) is DRAINED, or removed if its drain marks it gone.
    fn check_drained(&mut self, agent: AgentIndex, now: Instant, fx: &mut Vec<Effect>) {
        let Some(drain) = self.fleet[agent].drain else {
            return;
        };
        if drain.state != v1::DrainState::Draining as i32 || self.tasks.count_on_agent(agent) > 0 {
            return;
        }
        let mark_gone = drain.config.mark_gone.unwrap_or(false);
        self.fleet.set_drain(
            agent,
            Some(v1::DrainInfo {
                state: v1::DrainState::Drained as i32,
                ..drain
            }),
        );
        if mark_gone {
            self.remove_agent(agent, "Agent drained and marked gone", now, fx);
        }
    }

    /// The allocation cycle's maintenance work: draining agents that have
    /// emptied, then inverse offers (after the offers, so a framework
    /// offered an agent in a window also learns of the window).
    pub(super) fn maintenance_cycle(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let draining: Vec<AgentIndex> = self
            .fleet
            .as_slice()
            .iter()
            .enumerate()
            .filter(|(_, a)| a.drain.is_some() && !a.removed)
            .map(|(i, _)| i)
            .collect();
        for agent in draining {
            self.check_drained(agent, now, fx);
        }
        self.send_inverse_offers(now, fx);
    }

    fn send_inverse_offers(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let in_window: Vec<AgentIndex> = self
            .fleet
            .as_slice()
            .iter()
            .enumerate()
            .filter(|(_, a)| a.unavailability.is_some() && a.offerable())
            .map(|(i, _)| i)
            .collect();
        if in_window.is_empty() {
            return;
        }
        // Who holds offers of which agent, read once per cycle.
        let mut offered: BTreeMap<AgentIndex, Vec<String>> = BTreeMap::new();
        for o in self.offers.iter() {
            offered
                .entry(o.agent)
                .or_default()
                .push(o.framework.clone());
        }
        let mut per_framework: BTreeMap<String, Vec<v1::InverseOffer>> = BTreeMap::new();
        for agent in in_window {
            let a = &self.fleet[agent];
            let Some(window) = a.unavailability else {
                continue;
            };
            let mut frameworks: Vec<String> = self
                .tasks
                .on_agent(agent)
                .into_iter()
                .filter(|k| self.tasks.get(k).is_some_and(|t| !t.state().is_terminal()))
                .map(|k| k.0)
                .chain(offered.remove(&agent).unwrap_or_default())
                .collect();
            frameworks.sort_unstable();
            frameworks.dedup();
            for framework in frameworks {
                if self.frameworks.conn(&framework).is_none()
                    || !self.maintenance.may_offer(agent, &framework, now)
                {
                    continue;
                }
                let id = self.ids.offer();
                let a = &self.fleet[agent];
                per_framework
                    .entry(framework.clone())
                    .or_default()
                    .push(v1::InverseOffer {
                        id: v1::OfferId { value: id.clone() },
                        url: Some(a.url()),
                        framework_id: v1::FrameworkId {
                            value: framework.clone(),
                        },
                        agent_id: Some(v1::AgentId {
                            value: a.id.clone(),
                        }),
                        unavailability: window,
                        resources: Vec::new(),
                    });
                self.maintenance.add(InverseOfferRecord {
                    id,
                    framework,
                    agent,
                });
            }
        }
        for (framework, offers) in per_framework {
            self.send_to(&framework, events::inverse_offers(offers), fx);
        }
    }

    /// ACCEPT_INVERSE_OFFERS (`accepted`) or DECLINE_INVERSE_OFFERS.
    pub(super) fn answer_inverse_offers(
        &mut self,
        framework: &str,
        ids: &[v1::OfferId],
        filters: Option<&v1::Filters>,
        accepted: bool,
        now: Instant,
    ) {
        let refuse = refuse_duration(filters);
        let until = (!refuse.is_zero()).then(|| after(now, refuse));
        let at = self.unix(now);
        for id in ids {
            self.maintenance
                .answer(framework, &id.value, accepted, at, until);
        }
    }
}
