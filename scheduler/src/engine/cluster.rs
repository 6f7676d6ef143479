//! What the engine knows about the cluster beyond its jobs: agents the
//! master reported lost (their runs are unreachable), and each agent's zone
//! and hostname as offers and stored runs named them (zone balance counts
//! instances on agents not offering right now too; events name the host),
//! and the largest offer seen (no task may ask for far more); hosts in
//! maintenance and the unavailability the master announced for agents
//! (placement avoids both; a plan moves runs off draining hosts).

use crate::model::change::HostWrite;
use crate::model::host::{HostMaintenance, HostState, Unavailability};
use crate::model::ids::AgentId;
use crate::model::offer::Offer;
use crate::model::resources::Resources;
use crate::model::time::UnixMillis;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

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
    /// Hosts in maintenance, by hostname (a host without a record is UP).
    pub maintenance: BTreeMap<String, HostMaintenance>,
    /// The maintenance window the master announced for each agent, as its
    /// latest offer said.
    pub unavailability: HashMap<AgentId, Unavailability>,
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
        match offer.unavailability {
            Some(u) => {
                self.unavailability.insert(offer.agent_id.clone(), u);
            }
            None => {
                self.unavailability.remove(&offer.agent_id);
            }
        }
        if !self.hostnames.contains_key(&offer.agent_id) {
            self.hostnames
                .insert(offer.agent_id.clone(), offer.hostname.clone());
        }
    }

    /// The maintenance of the host `agent` is on, if it is not UP.
    pub fn drain_of(&self, agent: &AgentId) -> Option<&HostMaintenance> {
        let host = self.hostnames.get(agent)?;
        self.maintenance
            .get(host)
            .filter(|m| m.state != HostState::Up)
    }

    /// The state of host `hostname`.
    pub fn host_state(&self, hostname: &str) -> HostState {
        self.maintenance
            .get(hostname)
            .map_or(HostState::Up, |m| m.state)
    }

    /// Whether `hostname` names an agent Drover has seen.
    pub fn knows_host(&self, hostname: &str) -> bool {
        self.maintenance.contains_key(hostname) || self.hostnames.values().any(|h| h == hostname)
    }

    /// Stored maintenance writes, taken in.
    pub fn apply_host_writes(&mut self, writes: &[HostWrite]) {
        for write in writes {
            match write {
                HostWrite::Put(m) => {
                    self.maintenance.insert(m.hostname.clone(), m.clone());
                }
                HostWrite::Remove(host) => {
                    self.maintenance.remove(host);
                }
            }
        }
    }

    /// Whether placement may use `offer`: its host is UP and no
    /// maintenance window the master announced for it is within
    /// `lookahead` of `now`.
    pub fn is_placeable(&self, offer: &Offer, now: UnixMillis, lookahead: Duration) -> bool {
        self.host_state(&offer.hostname).is_placeable()
            && !offer
                .unavailability
                .is_some_and(|u| u.is_near(now, lookahead))
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
