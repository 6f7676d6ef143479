//! Agent drains and deactivation as inputs to the master, the operator
//! calls DRAIN_AGENT, DEACTIVATE_AGENT and REACTIVATE_AGENT (routed here
//! by `operator.rs`), as Mesos' `drainAgent`, `deactivateAgent`,
//! `reactivateAgent` and `checkAndTransitionDrainingAgent` do them:
//!
//! ```text
//! active --DRAIN_AGENT--> DRAINING (deactivated, tasks killed)
//!   DRAINING --no task left--> DRAINED, or removed if mark_gone
//!   DRAINED --REACTIVATE_AGENT--> active
//! active --DEACTIVATE_AGENT--> deactivated --REACTIVATE_AGENT--> active
//! ```
//!
//! "No task left" counts ended tasks whose last update is not yet
//! acknowledged, as Mesos' agent keeps them; the allocation cycle checks
//! draining agents (`inverse_offers.rs`, `maintenance_cycle`).

use std::time::{Duration, Instant};

use drover_proto::v1;
use drover_proto::TaskStateExt;

use super::machine::{Effect, Master};
use super::maintenance_rules::{machine_words, MachineKey};
use super::operator::OperatorError;
use super::tasks::Runner;
use crate::ids::AgentIndex;
use crate::operator_proto::Response;

impl Master {
    /// The agent's index, if it is in the cluster (not removed).
    pub(super) fn known_agent(&self, agent_id: &str) -> Result<AgentIndex, OperatorError> {
        self.fleet
            .index_of(agent_id)
            .filter(|i| !self.fleet[*i].removed)
            .ok_or(OperatorError::UnknownAgent)
    }

    pub(super) fn drain_agent(
        &mut self,
        agent_id: &str,
        max_grace_nanos: Option<i64>,
        mark_gone: bool,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Result<Response, OperatorError> {
        let agent = self.known_agent(agent_id)?;
        if let Some(machine) = self.scheduled_machine_of(agent) {
            return Err(OperatorError::InSchedule(
                agent_id.to_owned(),
                machine_words(&machine),
            ));
        }
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
        self.fleet.set_drain_started(agent, Some(now));
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
        Ok(Response::empty())
    }

    /// The machine id, as the schedule names it, under which the agent's
    /// machine is in the maintenance schedule, if it is.
    fn scheduled_machine_of(&self, agent: AgentIndex) -> Option<v1::MachineId> {
        let key = MachineKey::of(&self.fleet[agent].machine_id());
        self.maintenance
            .schedule()
            .windows
            .iter()
            .flat_map(|w| &w.machine_ids)
            .find(|id| MachineKey::of(id) == key)
            .cloned()
    }

    /// No offers for the agent: the outstanding ones are rescinded.
    fn deactivate(&mut self, agent: AgentIndex, fx: &mut Vec<Effect>) {
        self.fleet.set_deactivated(agent, true);
        for offer in self.offers.on_agent(agent) {
            self.rescind_offer(&offer, fx);
        }
    }

    pub(super) fn deactivate_agent(
        &mut self,
        agent_id: &str,
        fx: &mut Vec<Effect>,
    ) -> Result<Response, OperatorError> {
        let agent = self.known_agent(agent_id)?;
        self.deactivate(agent, fx);
        Ok(Response::empty())
    }

    pub(super) fn reactivate_agent(
        &mut self,
        agent_id: &str,
        now: Instant,
    ) -> Result<Response, OperatorError> {
        // Mesos looks the agent up in its deactivated set only, so an
        // unknown agent is "not deactivated" too.
        let agent = self
            .known_agent(agent_id)
            .map_err(|_| OperatorError::NotDeactivated)?;
        let a = &self.fleet[agent];
        if !a.deactivated {
            return Err(OperatorError::NotDeactivated);
        }
        if a.drain
            .as_ref()
            .is_some_and(|d| d.state == v1::DrainState::Draining as i32)
        {
            return Err(OperatorError::StillDraining);
        }
        self.fleet.set_drain(agent, None);
        self.fleet.set_drain_started(agent, None);
        self.fleet.set_deactivated(agent, false);
        self.timers.allocate_soon(now);
        Ok(Response::empty())
    }

    /// A DRAINING agent with no task left (live, or ended and not yet
    /// acknowledged) is DRAINED, or removed if its drain marks it gone.
    pub(super) fn check_drained(&mut self, agent: AgentIndex, now: Instant, fx: &mut Vec<Effect>) {
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
}
