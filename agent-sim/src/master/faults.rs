//! Faults injected through `/sim`, entering the master as inputs like any
//! call: an agent fails or comes back (reference 3.12), agents are added,
//! every scheduler connection drops (a master failover), status updates
//! are lost or delayed, an offer is rescinded.

use drover_proto::TaskStateExt;
use std::time::Instant;

use drover_proto::v1::{self, task_status::Reason, TaskState};

use super::events;
use super::state::{Effect, Master, Runner, UpdateFaults};

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
        let &i = self
            .agent_index
            .get(agent_id)
            .ok_or_else(|| FaultError::UnknownAgent(agent_id.to_owned()))?;
        let mut fx = Vec::new();
        if !self.agents[i].connected {
            return Ok(fx);
        }
        self.agents[i].connected = false;
        let offers: Vec<String> = self
            .offers
            .values()
            .filter(|o| o.agent == i)
            .map(|o| o.id.clone())
            .collect();
        for o in offers {
            self.rescind_offer(&o, &mut fx);
        }
        let unreachable_ns = (self.unix(now) * 1e9) as i64;
        let keys: Vec<_> = self.agents[i].tasks.iter().cloned().collect();
        for key in keys {
            let Some(task) = self.tasks.get_mut(&key) else {
                continue;
            };
            if task.state().is_terminal() {
                continue;
            }
            task.unreachable = true;
            let aware = self
                .frameworks
                .get(&key.0)
                .is_some_and(|f| f.is_partition_aware());
            let state = if aware {
                TaskState::TaskUnreachable
            } else {
                TaskState::TaskLost
            };
            let task_id = task.task_id.clone();
            let mut status = self.master_status(
                &task_id,
                state,
                Reason::AgentRemoved,
                "Agent is unreachable",
                Some(agent_id),
                now,
            );
            if aware {
                status.unreachable_time = Some(v1::TimeInfo {
                    nanoseconds: unreachable_ns,
                });
            }
            self.send_master_update(&key.0, status, &mut fx);
        }
        for fw in self.frameworks.values() {
            if let Some(c) = &fw.connection {
                fx.push(Effect::Send {
                    conn: c.conn,
                    event: Box::new(events::agent_failure(agent_id)),
                });
            }
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
        let &i = self
            .agent_index
            .get(agent_id)
            .ok_or_else(|| FaultError::UnknownAgent(agent_id.to_owned()))?;
        let mut fx = Vec::new();
        if self.agents[i].connected {
            return Ok(fx);
        }
        self.agents[i].connected = true;
        let keys: Vec<_> = self.agents[i].tasks.iter().cloned().collect();
        for key in keys {
            let Some(task) = self.tasks.get_mut(&key) else {
                continue;
            };
            let was_unreachable = std::mem::take(&mut task.unreachable);
            let kill = task.kill_pending.take();
            let state = task.state();
            let task_id = task.task_id.clone();
            if was_unreachable {
                let mut status = self.master_status(
                    &task_id,
                    state,
                    Reason::AgentReregistered,
                    "Agent reregistered",
                    Some(agent_id),
                    now,
                );
                status.healthy = self.tasks.get(&key).and_then(|t| t.healthy);
                self.send_master_update(&key.0, status, &mut fx);
            }
            let uuid = self
                .tasks
                .get(&key)
                .and_then(|t| t.pending.front())
                .and_then(|h| h.uuid.clone());
            if let Some(uuid) = uuid {
                self.send_head(&key, &uuid, &mut fx);
            }
            if let Some(grace) = kill {
                self.kill_task(&key, grace, now, &mut fx);
            }
        }
        self.allocate_soon(now);
        Ok(fx)
    }

    /// A master failover as frameworks see it: every subscription ends.
    /// Frameworks must re-subscribe with their id; their tasks survive and
    /// no failover timer runs (a new master has none to carry over).
    pub fn on_drop_connections(&mut self) -> Vec<Effect> {
        let mut fx = Vec::new();
        let offers: Vec<String> = self.offers.keys().cloned().collect();
        for o in offers {
            self.discard_offer(&o);
        }
        for fw in self.frameworks.values_mut() {
            if let Some(c) = fw.connection.take() {
                fx.push(Effect::Close { conn: c.conn });
                fw.epoch += 1;
            }
        }
        fx
    }

    /// Sets how status updates are lost or delayed from now on.
    pub fn on_update_faults(&mut self, faults: UpdateFaults) {
        self.update_faults = faults;
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
            .iter()
            .find(|(_, t)| {
                t.task_id.value == task_id
                    && matches!(&t.runner, Runner::Simulated(sim) if !sim.is_terminal())
            })
            .map(|(key, _)| key.clone())
            .ok_or_else(|| FaultError::UnknownTask(task_id.to_owned()))?;
        let mut fx = Vec::new();
        if let Some(Runner::Simulated(sim)) = self.tasks.get_mut(&key).map(|t| &mut t.runner) {
            let actions = sim.on_process_killed();
            self.apply_sim(&key, actions, now, &mut fx);
        }
        Ok(fx)
    }

    /// Rescinds one outstanding offer.
    pub fn on_rescind_offer(&mut self, offer: &str) -> Result<Vec<Effect>, FaultError> {
        if !self.offers.contains_key(offer) {
            return Err(FaultError::UnknownOffer(offer.to_owned()));
        }
        let mut fx = Vec::new();
        self.rescind_offer(offer, &mut fx);
        Ok(fx)
    }
}
