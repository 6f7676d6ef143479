//! What the engine knows about the cluster beyond its jobs: agents the
//! master reported lost (their runs are unreachable), and each agent's zone
//! and hostname as offers and stored runs named them (zone balance counts
//! instances on agents not offering right now too; events name the host),
//! and the largest offer seen (no task may ask for far more).

use crate::model::ids::AgentId;
use crate::model::offer::Offer;
use crate::model::resources::Resources;
use crate::model::time::UnixMillis;
use std::collections::HashMap;

/// The zone attribute agents carry (zone balance counts instances per zone).
pub const ZONE_ATTRIBUTE: &str = crate::placement::host_view::ZONE_ATTRIBUTE;

/// The engine's cluster facts.
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// Agents the master reported lost (FAILURE with only an agent id),
    /// and when: their runs are unreachable from then.
    pub lost_agents: HashMap<AgentId, UnixMillis>,
    /// Each agent's zone, once an offer named it.
    pub zones: HashMap<AgentId, String>,
    /// Each agent's hostname.
    pub hostnames: HashMap<AgentId, String>,
    /// The most of each resource one offer ever held: a job asking for
    /// more than [`LARGEST_AGENT_FACTOR`] times it is refused.
    pub largest_offer: Resources,
    /// Each live agent's size as Drover knows it: the most of each
    /// resource one of its offers held (an idle agent offers all of
    /// itself). Resource pools divide the sum ([`ClusterFacts::capacity`]).
    pub agent_sizes: HashMap<AgentId, Resources>,
}

/// How much larger than the largest offer seen a task may be: agents
/// larger than any seen may join, but not without bound.
pub const LARGEST_AGENT_FACTOR: f64 = 2.0;

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
        let (most, held) = (&mut self.largest_offer, &offer.resources);
        most.cpus = most.cpus.max(held.cpus);
        most.mem_mib = most.mem_mib.max(held.mem_mib);
        most.disk_mib = most.disk_mib.max(held.disk_mib);
        most.gpus = most.gpus.max(held.gpus);
        let size = self.agent_sizes.entry(offer.agent_id.clone()).or_default();
        *size = size.max_each(held);
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

    /// The master reported `agent` lost at `now`; a second report keeps
    /// the first time.
    pub fn lost(&mut self, agent: AgentId, now: UnixMillis) {
        self.agent_sizes.remove(&agent);
        self.lost_agents.entry(agent).or_insert(now);
    }

    /// The cluster's size as the live agents' offers showed it (a floor:
    /// an agent busy since Drover started shows less than it has).
    pub fn capacity(&self) -> Resources {
        self.agent_sizes
            .values()
            .fold(Resources::default(), |sum, size| sum.plus(size))
    }
}
