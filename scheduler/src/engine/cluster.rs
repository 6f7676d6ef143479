//! What the engine knows about the cluster beyond its jobs: agents the
//! master reported lost (their runs are given up), and each agent's zone
//! and hostname as offers and stored runs named them (zone balance counts
//! instances on agents not offering right now too; events name the host).

use crate::model::ids::AgentId;
use crate::model::offer::Offer;
use std::collections::{HashMap, HashSet};

/// The zone attribute agents carry (zone balance counts instances per zone).
pub const ZONE_ATTRIBUTE: &str = crate::placement::host_view::ZONE_ATTRIBUTE;

/// The engine's cluster facts.
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// Agents the master reported removed (FAILURE with only an agent id).
    pub lost_agents: HashSet<AgentId>,
    /// Each agent's zone, once an offer named it.
    pub zones: HashMap<AgentId, String>,
    /// Each agent's hostname.
    pub hostnames: HashMap<AgentId, String>,
}

impl ClusterFacts {
    /// Facts that start from the hostnames stored runs name.
    pub fn with_hostnames(hostnames: impl IntoIterator<Item = (AgentId, String)>) -> Self {
        ClusterFacts {
            hostnames: hostnames.into_iter().collect(),
            ..ClusterFacts::default()
        }
    }

    /// An offer: its agent is alive, and its zone and hostname are known.
    pub fn saw_offer(&mut self, offer: &Offer) {
        self.lost_agents.remove(&offer.agent_id);
        if let Some(zone) = offer.attributes.get(ZONE_ATTRIBUTE) {
            self.zones.insert(offer.agent_id.clone(), zone.clone());
        }
        if !self.hostnames.contains_key(&offer.agent_id) {
            self.hostnames
                .insert(offer.agent_id.clone(), offer.hostname.clone());
        }
    }

    /// A live update from `agent`: it is alive again.
    pub fn saw_alive(&mut self, agent: &AgentId) {
        self.lost_agents.remove(agent);
    }

    /// The master removed `agent`.
    pub fn lost(&mut self, agent: AgentId) {
        self.lost_agents.insert(agent);
    }
}
