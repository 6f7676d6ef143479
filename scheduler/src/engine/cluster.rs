//! What the engine knows about the cluster beyond its jobs: agents the
//! master reported lost (their runs are unreachable), and each agent's zone
//! and hostname as offers and stored runs named them (zone balance counts
//! instances on agents not offering right now too; events name the host),
//! and the agents' sizes: each live agent's (resource pools divide their
//! sum) and the largest any agent ever had (no task may ask for far more,
//! even while that agent is away); hosts in
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
    /// Each live agent's size as Drover knows it: the most of each
    /// resource one of its offers held (an idle agent offers all of
    /// itself). Forgotten when the agent is lost. Resource pools divide
    /// the sum ([`ClusterFacts::capacity`]).
    pub live_agent_sizes: HashMap<AgentId, Resources>,
    /// The most of each resource any agent's size (as above) ever reached,
    /// kept when that agent is lost: a job asking for more than
    /// [`LARGEST_AGENT_FACTOR`] times it is refused. Kept so that the
    /// bound does not shrink while a large agent is away.
    pub largest_agent_ever: Resources,
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
        let size = self
            .live_agent_sizes
            .entry(offer.agent_id.clone())
            .or_default();
        *size = size.max_each(&offer.resources);
        self.largest_agent_ever = self.largest_agent_ever.max_each(size);
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
        self.live_agent_sizes.remove(&agent);
        self.lost_agents.entry(agent).or_insert(now);
    }

    /// The cluster's size as the live agents' offers showed it (a floor:
    /// an agent busy since Drover started shows less than it has).
    pub fn capacity(&self) -> Resources {
        self.live_agent_sizes
            .values()
            .fold(Resources::default(), |sum, size| sum.plus(size))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ids::OfferId;

    fn offer(agent: &str, cpus: f64, mem_mib: f64) -> Offer {
        Offer {
            id: OfferId(format!("{agent}-{cpus}")),
            agent_id: AgentId::new(agent),
            hostname: format!("{agent}.host"),
            allocation_role: Some("*".into()),
            resources: Resources {
                cpus,
                mem_mib,
                ..Resources::default()
            },
            ports: Default::default(),
            attributes: BTreeMap::new(),
            unavailability: None,
        }
    }

    /// One notion of a host's size (the most of each resource its offers
    /// held), seen two ways: the live agents' sizes, summed for the pools,
    /// and the largest ever, which a lost agent does not take away.
    #[test]
    fn a_lost_agent_leaves_the_capacity_but_not_the_largest_agent() {
        let mut facts = ClusterFacts::default();
        facts.saw_offer(&offer("a1", 8.0, 1024.0));
        facts.saw_offer(&offer("a1", 2.0, 4096.0)); // busier, more memory free
        facts.saw_offer(&offer("a2", 4.0, 2048.0));
        let a1 = Resources {
            cpus: 8.0,
            mem_mib: 4096.0,
            ..Resources::default()
        };
        assert_eq!(facts.live_agent_sizes[&AgentId::new("a1")], a1);
        assert_eq!(facts.capacity().cpus, 12.0);
        assert_eq!(facts.largest_agent_ever, a1);
        facts.lost(AgentId::new("a1"), 0);
        assert_eq!(facts.capacity().cpus, 4.0);
        assert_eq!(facts.largest_agent_ever, a1);
    }
}
