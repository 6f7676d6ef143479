//! Faults as inputs to the master, called like any other input: by `/sim`
//! through the driver, or directly by a simulation on virtual time. Each
//! returns the effects it causes, to be carried out in order.
//!
//! - [`Master::on_agent_failed`] / [`Master::on_agent_restored`]: an agent
//!   is lost and comes back (reference 3.12).
//! - [`Master::on_drop_connections`]: a master failover as frameworks see it.
//! - [`Master::on_update_faults`]: status updates lost or delayed.
//! - [`Master::on_rescind_offer`]: one offer rescinded.
//! - [`Master::on_task_process_killed`]: a simulated task's process dies
//!   outside Mesos.
//! - [`Master::on_executor_endpoint_restart`] (in `real_agents.rs`): a real
//!   agent's executor endpoint restarts.
//! - [`Master::add_agents`] (in `machine.rs`): agents join.

use std::time::Instant;

use drover_proto::v1::{self, task_status::Reason, TaskState};

use super::events;
use super::machine::{Effect, Master};
use super::status_updates::UpdateFaults;
use super::tasks::master_status;

/// Why a fault could not be injected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// No agent has this id.
    #[error("unknown agent '{0}'")]
    UnknownAgent(String),
    /// No outstanding offer has this id.
    #[error("unknown offer '{0}'")]
    UnknownOffer(String),
    /// No live simulated task has this id (real tasks are killed with kill(1)).
    #[error("no live simulated task '{0}'")]
    UnknownTask(String),
}

impl Master {
    /// The agent becomes unreachable: its offers are rescinded, its tasks
    /// become TASK_UNREACHABLE (partition-aware) or TASK_LOST, reason
    /// REASON_AGENT_REMOVED, and every connected framework gets FAILURE.
    /// Its simulated tasks keep running; their updates wait for its return.
    pub fn on_agent_failed(
        &mut self,
        agent_id: &str,
        now: Instant,
    ) -> Result<Vec<Effect>, FaultError> {
        let i = self
            .fleet
            .index_of(agent_id)
            .ok_or_else(|| FaultError::UnknownAgent(agent_id.to_owned()))?;
        let mut fx = Vec::new();
        if !self.fleet.set_connected(i, false) {
            return Ok(fx);
        }
        self.note_agents_changed();
        for offer in self.offers.on_agent(i) {
            self.rescind_offer(&offer, &mut fx);
        }
        let unix = self.unix(now);
        for key in self.tasks.on_agent(i) {
            if !self.tasks.mark_unreachable(&key, unix) {
                continue;
            }
            let Some(task) = self.tasks.get(&key) else {
                continue;
            };
            let aware = self.frameworks.is_partition_aware(&key.0);
            let state = if aware {
                TaskState::TaskUnreachable
            } else {
                TaskState::TaskLost
            };
            let mut status = master_status(
                &task.task_id,
                state,
                Reason::AgentRemoved,
                "Agent is unreachable",
                Some(agent_id),
                unix,
            );
            if aware {
                status.unreachable_time = Some(v1::TimeInfo {
                    nanoseconds: (unix * 1e9) as i64,
                });
            }
            self.send_master_update(&key.0, status, &mut fx);
        }
        for conn in self.frameworks.conns() {
            fx.push(Effect::Send {
                conn,
                event: Box::new(events::agent_failure(agent_id)),
            });
        }
        Ok(fx)
    }

    /// The agent re-registers: its tasks are re-added and each connected
    /// framework gets its tasks' current state with
    /// REASON_AGENT_REREGISTERED; held updates and kills go through.
    pub fn on_agent_restored(
        &mut self,
        agent_id: &str,
        now: Instant,
    ) -> Result<Vec<Effect>, FaultError> {
        let i = self
            .fleet
            .index_of(agent_id)
            .ok_or_else(|| FaultError::UnknownAgent(agent_id.to_owned()))?;
        let mut fx = Vec::new();
        if !self.fleet.set_connected(i, true) {
            return Ok(fx);
        }
        self.note_agents_changed();
        let unix = self.unix(now);
        for key in self.tasks.on_agent(i) {
            let Some(back) = self.tasks.on_agent_returned(&key) else {
                continue;
            };
            if back.was_unreachable {
                if let Some(task) = self.tasks.get(&key) {
                    let mut status = master_status(
                        &task.task_id,
                        task.state(),
                        Reason::AgentReregistered,
                        "Agent reregistered",
                        Some(agent_id),
                        unix,
                    );
                    status.healthy = task.healthy;
                    self.send_master_update(&key.0, status, &mut fx);
                }
            }
            if let Some(uuid) = self.updates.head_uuid(&key) {
                self.send_head(&key, &uuid, &mut fx);
            }
            if let Some(grace) = back.kill {
                self.kill_task(&key, grace, now, &mut fx);
            }
        }
        self.timers.allocate_soon(now);
        Ok(fx)
    }

    /// A master failover as frameworks see it: every subscription ends and
    /// the offers are gone. Frameworks must re-subscribe with their id;
    /// their tasks survive and no failover timer runs (a new master has
    /// none to carry over).
    pub fn on_drop_connections(&mut self) -> Vec<Effect> {
        for offer in self.offers.ids() {
            self.offers.discard(&offer, &mut self.fleet);
        }
        self.maintenance.forget_inverse_offers();
        self.frameworks
            .drop_connections()
            .into_iter()
            .map(|conn| Effect::Close { conn })
            .collect()
    }

    /// Sets how status updates are lost or delayed from now on.
    pub fn on_update_faults(&mut self, faults: UpdateFaults) {
        self.updates.set_faults(faults);
    }

    /// A simulated task's process dies from SIGKILL outside Mesos: its
    /// framework sees TASK_FAILED, as from a real agent.
    pub fn on_task_process_killed(
        &mut self,
        task_id: &str,
        now: Instant,
    ) -> Result<Vec<Effect>, FaultError> {
        let key = self
            .tasks
            .find_live_simulated(task_id)
            .ok_or_else(|| FaultError::UnknownTask(task_id.to_owned()))?;
        let mut fx = Vec::new();
        if let Some(sim) = self.tasks.simulated_mut(&key) {
            let actions = sim.on_process_killed();
            self.apply_sim(&key, actions, now, &mut fx);
        }
        Ok(fx)
    }

    /// Rescinds one outstanding offer.
    pub fn on_rescind_offer(&mut self, offer: &str) -> Result<Vec<Effect>, FaultError> {
        if !self.offers.contains(offer) {
            return Err(FaultError::UnknownOffer(offer.to_owned()));
        }
        let mut fx = Vec::new();
        self.rescind_offer(offer, &mut fx);
        Ok(fx)
    }
}
