//! The fleet: every agent the master knows, by index and by id, with what
//! each has free. Agents join (from flags, the fleet file or `/sim`) and
//! are never removed, so an [`AgentIndex`] stays valid; a failed agent is
//! only disconnected. Resources move between an agent and its offers and
//! tasks through here alone.

use std::ops::Index;
use std::time::Instant;

use drover_proto::v1;

use super::{Agent, AgentSpec};
use crate::fixed_hash::HashMap;
use crate::ids::AgentIndex;
use crate::resources::Resources;

/// Every agent.
#[derive(Debug, Default)]
pub struct Fleet {
    agents: Vec<Agent>,
    by_id: HashMap<String, AgentIndex>,
}

impl Fleet {
    /// Adds an agent with the id the master minted for it.
    pub fn add(
        &mut self,
        id: String,
        spec: AgentSpec,
        host_ip: std::net::IpAddr,
        now: Instant,
    ) -> AgentIndex {
        let index = self.agents.len();
        self.by_id.insert(id.clone(), index);
        self.agents.push(Agent::new(id, spec, host_ip, now));
        index
    }

    /// An agent another master had re-registers here with its id and its
    /// tasks (`reserved`, which it holds already): it takes the place
    /// `index` if that holds a simulated agent (the one this master made
    /// from the same flags, whose id is dropped), else a new place at the
    /// end (real agents keep theirs: their executors are this process's).
    /// Returns its place.
    pub fn adopt(
        &mut self,
        index: AgentIndex,
        id: String,
        spec: AgentSpec,
        host_ip: std::net::IpAddr,
        now: Instant,
    ) -> AgentIndex {
        let mut agent = Agent::new(id.clone(), spec, host_ip, now);
        agent.reregistered_at = Some(now);
        // The same id here already (a master restarted with the same
        // seed made it again): that agent is the one re-registering.
        let same = self.by_id.get(&id).copied();
        let slot = same.or(Some(index)).filter(|&i| {
            self.agents
                .get(i)
                .is_some_and(|old| !old.is_real() && (same.is_some() || !old.removed))
        });
        let place = match slot {
            Some(i) => {
                let old = std::mem::replace(&mut self.agents[i], agent);
                self.by_id.remove(&old.id);
                i
            }
            None => {
                self.agents.push(agent);
                self.agents.len() - 1
            }
        };
        self.by_id.insert(id, place);
        place
    }

    /// A task that kept running across a master failover holds its
    /// resources on its agent.
    pub fn hold(&mut self, agent: AgentIndex, resources: &Resources) {
        self.agents[agent].available.subtract(resources);
    }

    /// The agent with this id.
    pub fn index_of(&self, id: &str) -> Option<AgentIndex> {
        self.by_id.get(id).copied()
    }

    pub fn as_slice(&self) -> &[Agent] {
        &self.agents
    }

    /// The cpus and mem of every agent, offered, used or free: the
    /// denominators of the allocator's shares.
    pub fn totals(&self) -> (f64, f64) {
        let cpus = self.agents.iter().map(|a| a.total.scalar("cpus")).sum();
        let mem = self.agents.iter().map(|a| a.total.scalar("mem")).sum();
        (cpus, mem)
    }

    /// Resources an offer or an ended task no longer holds go back to the agent.
    pub fn give_back(&mut self, agent: AgentIndex, resources: &Resources) {
        self.agents[agent].available.add(resources);
    }

    /// Takes everything the agent has free, to offer it.
    pub fn take_available(&mut self, agent: AgentIndex) -> Resources {
        std::mem::take(&mut self.agents[agent].available)
    }

    /// Sets or clears the maintenance window every offer of the agent carries.
    pub fn set_unavailability(&mut self, agent: AgentIndex, window: Option<v1::Unavailability>) {
        self.agents[agent].unavailability = window;
    }

    /// DEACTIVATE_AGENT (true) or REACTIVATE_AGENT (false).
    pub fn set_deactivated(&mut self, agent: AgentIndex, deactivated: bool) {
        self.agents[agent].deactivated = deactivated;
    }

    /// DRAIN_AGENT's state, or none after REACTIVATE_AGENT.
    pub fn set_drain(&mut self, agent: AgentIndex, drain: Option<v1::DrainInfo>) {
        self.agents[agent].drain = drain;
    }

    /// When the agent was last told to drain (GET_AGENTS'
    /// `estimated_drain_start_time`), none after REACTIVATE_AGENT.
    pub fn set_drain_started(&mut self, agent: AgentIndex, at: Option<Instant>) {
        self.agents[agent].drain_started = at;
    }

    /// The agent leaves the cluster (see [`Fleet::reregister`] for its return).
    pub fn remove(&mut self, agent: AgentIndex) {
        let a = &mut self.agents[agent];
        a.removed = true;
        a.connected = false;
    }

    /// A removed agent registers again under its old id, as a real Mesos
    /// agent restarted on its work directory does after maintenance (seen
    /// on Mesos 1.12: the master lets it re-register). Its slot, and so
    /// its [`AgentIndex`], stays; it starts over with nothing used.
    pub fn reregister(&mut self, agent: AgentIndex, now: Instant) {
        let a = &mut self.agents[agent];
        a.reregistered_at = Some(now);
        a.removed = false;
        a.connected = true;
        a.available = a.total.clone();
        a.deactivated = false;
        a.drain = None;
        a.drain_started = None;
        a.unavailability = None;
    }

    /// Connects or disconnects the agent; whether that changed anything.
    pub fn set_connected(&mut self, agent: AgentIndex, connected: bool) -> bool {
        let a = &mut self.agents[agent];
        if a.removed {
            return false;
        }
        let changed = a.connected != connected;
        a.connected = connected;
        changed
    }
}

impl Index<AgentIndex> for Fleet {
    type Output = Agent;

    fn index(&self, agent: AgentIndex) -> &Agent {
        &self.agents[agent]
    }
}
