//! Offers and the allocation they come from: the outstanding offers, each
//! framework's allocation (what it is offered plus what its tasks use, the
//! numerator of its fair share) and the allocator's decline filters. An
//! allocation cycle turns the allocator's grants into offers; an offer ends
//! by being accepted, declined, discarded on re-subscription or rescinded
//! (agent lost, offer timeout, `/sim`). Resources move between offers and
//! agents only through [`Fleet`], which this part is handed.

use std::time::{Duration, Instant};

use drover_proto::v1;

use super::allocator::{AgentView, Allocator, FrameworkView};
use super::frameworks::Candidate;
use super::timers::{Timer, Timers};
use crate::agent::fleet::Fleet;
use crate::deadline::after;
use crate::fixed_hash::{HashMap, HashSet};
use crate::ids::{AgentIndex, IdGen};
use crate::resources::Resources;

/// An outstanding offer.
#[derive(Debug, Clone)]
pub struct OfferRecord {
    pub id: String,
    pub framework: String,
    pub agent: AgentIndex,
    pub role: String,
    pub resources: Resources,
    pub proto: v1::Offer,
}

/// One framework's offers and allocation.
#[derive(Debug, Default)]
struct Account {
    offers: HashSet<String>,
    /// Offered plus used cpus and mem.
    cpus: f64,
    mem: f64,
}

impl Account {
    fn charge(&mut self, resources: &Resources) {
        self.cpus += resources.scalar("cpus");
        self.mem += resources.scalar("mem");
    }

    fn credit(&mut self, resources: &Resources) {
        self.cpus -= resources.scalar("cpus");
        self.mem -= resources.scalar("mem");
    }
}

/// The outstanding offers, the frameworks' allocations and the allocator.
#[derive(Debug, Default)]
pub struct Offers {
    outstanding: HashMap<String, OfferRecord>,
    /// One per subscribed framework, from its first SUBSCRIBE to its removal.
    accounts: HashMap<String, Account>,
    allocator: Allocator,
}

impl Offers {
    /// A new framework starts with nothing allocated.
    pub fn add_framework(&mut self, framework: &str) {
        self.accounts
            .insert(framework.to_owned(), Account::default());
    }

    /// A removed framework's offers go back to their agents, silently, and
    /// its allocation and filters are forgotten.
    pub fn remove_framework(&mut self, framework: &str, fleet: &mut Fleet) {
        let account = self.accounts.remove(framework).unwrap_or_default();
        for offer in account.offers {
            if let Some(o) = self.outstanding.remove(&offer) {
                fleet.give_back(o.agent, &o.resources);
            }
        }
        self.allocator.remove_framework(framework);
    }

    /// One allocation cycle: every connected agent with unused resources is
    /// offered, whole, to one candidate (fair share first). Returns each
    /// framework's new offers, in the candidates' order; each offer's
    /// timeout (if any) is armed.
    pub fn allocate(
        &mut self,
        candidates: Vec<Candidate>,
        fleet: &mut Fleet,
        ids: &mut IdGen,
        timers: &mut Timers,
        offer_timeout: Option<Duration>,
        now: Instant,
    ) -> Vec<(String, Vec<v1::Offer>)> {
        if candidates.is_empty() {
            return Vec::new();
        }
        let totals = fleet.totals();
        let mut views: Vec<FrameworkView> = candidates
            .iter()
            .map(|c| {
                let (cpus, mem) = self
                    .accounts
                    .get(&c.framework)
                    .map_or((0.0, 0.0), |a| (a.cpus, a.mem));
                FrameworkView {
                    id: c.framework.clone(),
                    role: c.role.clone(),
                    cpus,
                    mem,
                }
            })
            .collect();
        let agents: Vec<AgentView> = fleet
            .as_slice()
            .iter()
            .enumerate()
            .filter(|(_, a)| a.offerable() && !a.available.is_empty())
            .map(|(i, a)| AgentView {
                index: i,
                cpus: a.available.scalar("cpus"),
                mem: a.available.scalar("mem"),
            })
            .collect();
        let grants = self.allocator.allocate(&agents, &mut views, totals, now);
        let mut per_framework: Vec<Vec<v1::Offer>> = vec![Vec::new(); candidates.len()];
        for g in grants {
            let c = &candidates[g.framework];
            let offer = self.make_offer(c, g.agent, fleet, ids.offer());
            if let Some(t) = offer_timeout {
                timers.arm(
                    after(now, t),
                    Timer::OfferTimeout {
                        offer: offer.id.value.clone(),
                    },
                );
            }
            per_framework[g.framework].push(offer);
        }
        candidates
            .into_iter()
            .zip(per_framework)
            .filter(|(_, offers)| !offers.is_empty())
            .map(|(c, offers)| (c.framework, offers))
            .collect()
    }

    /// Moves an agent's unused resources into a new offer with id `id`.
    fn make_offer(
        &mut self,
        candidate: &Candidate,
        agent: AgentIndex,
        fleet: &mut Fleet,
        id: String,
    ) -> v1::Offer {
        let resources = fleet.take_available(agent);
        let a = &fleet[agent];
        let alloc_role = candidate.multi_role.then_some(candidate.role.as_str());
        let proto = v1::Offer {
            id: v1::OfferId { value: id.clone() },
            framework_id: v1::FrameworkId {
                value: candidate.framework.clone(),
            },
            agent_id: v1::AgentId {
                value: a.id.clone(),
            },
            hostname: a.hostname.clone(),
            url: Some(a.url()),
            resources: resources.to_protos(alloc_role),
            attributes: a.attributes.clone(),
            unavailability: a.unavailability,
            allocation_info: alloc_role.map(|r| v1::resource::AllocationInfo {
                role: Some(r.to_owned()),
            }),
            ..Default::default()
        };
        if let Some(account) = self.accounts.get_mut(&candidate.framework) {
            account.offers.insert(id.clone());
            account.charge(&resources);
        }
        let record = OfferRecord {
            id: id.clone(),
            framework: candidate.framework.clone(),
            agent,
            role: candidate.role.clone(),
            resources,
            proto: proto.clone(),
        };
        self.outstanding.insert(id, record);
        proto
    }

    /// Removes an offer and gives its resources back to the agent.
    pub fn discard(&mut self, offer: &str, fleet: &mut Fleet) -> Option<OfferRecord> {
        let o = self.outstanding.remove(offer)?;
        fleet.give_back(o.agent, &o.resources);
        if let Some(account) = self.accounts.get_mut(&o.framework) {
            account.offers.remove(offer);
            account.credit(&o.resources);
        }
        Some(o)
    }

    /// DECLINE (reference 3.4.3): the framework's offers among `ids` go
    /// back to their agents, which are filtered for it for `refuse`.
    pub fn decline(
        &mut self,
        framework: &str,
        ids: &[v1::OfferId],
        refuse: Duration,
        fleet: &mut Fleet,
        now: Instant,
    ) {
        for id in ids {
            if !self.is_owned(&id.value, framework) {
                continue;
            }
            if let Some(o) = self.discard(&id.value, fleet) {
                let declined = (o.resources.scalar("cpus"), o.resources.scalar("mem"));
                self.allocator
                    .add_filter(framework, o.agent, declined, refuse, now);
            }
        }
    }

    /// ACCEPT's offer checks (reference 3.4.2): every offer exists, is the
    /// framework's, appears once, and all share one agent and role.
    pub fn check(&self, framework: &str, ids: &[v1::OfferId]) -> Result<(), String> {
        if ids.is_empty() {
            return Err("No offers specified".into());
        }
        let mut seen = HashSet::default();
        let mut first: Option<(AgentIndex, &str)> = None;
        for id in ids {
            if !seen.insert(&id.value) {
                return Err(format!("Duplicate offer {} in the offer list", id.value));
            }
            let Some(o) = self
                .outstanding
                .get(&id.value)
                .filter(|o| o.framework == framework)
            else {
                return Err(format!("Offer {} is no longer valid", id.value));
            };
            match first {
                None => first = Some((o.agent, &o.role)),
                Some((a, _)) if a != o.agent => {
                    return Err("Aggregated offers must belong to one single agent".into())
                }
                Some((_, r)) if r != o.role => {
                    return Err("Aggregated offers must be allocated to the same role".into())
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// An accepted ACCEPT takes its (checked) offers: their resources,
    /// pooled, and their agent. The pool leaves the framework's allocation;
    /// what it launches is charged back with [`Offers::charge`].
    pub fn take(&mut self, framework: &str, ids: &[v1::OfferId]) -> (Resources, AgentIndex) {
        let mut pool = Resources::default();
        let mut agent = 0;
        for id in ids {
            if let Some(o) = self.outstanding.remove(&id.value) {
                pool.add(&o.resources);
                agent = o.agent;
                if let Some(account) = self.accounts.get_mut(framework) {
                    account.offers.remove(&id.value);
                    account.credit(&o.resources);
                }
            }
        }
        (pool, agent)
    }

    /// What an ACCEPT's operations left of its offers goes back to the
    /// agent, filtered for the framework as the call's filters say.
    pub fn recover_unused(
        &mut self,
        framework: &str,
        agent: AgentIndex,
        unused: Resources,
        refuse: Duration,
        fleet: &mut Fleet,
        now: Instant,
    ) {
        let declined = (unused.scalar("cpus"), unused.scalar("mem"));
        fleet.give_back(agent, &unused);
        self.allocator
            .add_filter(framework, agent, declined, refuse, now);
    }

    /// A task now holds `resources` for the framework.
    pub fn charge(&mut self, framework: &str, resources: &Resources) {
        if let Some(account) = self.accounts.get_mut(framework) {
            account.charge(resources);
        }
    }

    /// A task of the framework ended and released `resources`.
    pub fn credit(&mut self, framework: &str, resources: &Resources) {
        if let Some(account) = self.accounts.get_mut(framework) {
            account.credit(resources);
        }
    }

    /// REVIVE: every agent the framework filtered may be offered again.
    pub fn clear_filters(&mut self, framework: &str) {
        self.allocator.clear_filters(framework);
    }

    pub fn get(&self, offer: &str) -> Option<&OfferRecord> {
        self.outstanding.get(offer)
    }

    pub fn contains(&self, offer: &str) -> bool {
        self.outstanding.contains_key(offer)
    }

    /// Whether `offer` is outstanding and the framework's.
    pub fn is_owned(&self, offer: &str, framework: &str) -> bool {
        self.outstanding
            .get(offer)
            .is_some_and(|o| o.framework == framework)
    }

    pub fn iter(&self) -> impl Iterator<Item = &OfferRecord> {
        self.outstanding.values()
    }

    /// Every outstanding offer's id.
    pub fn ids(&self) -> Vec<String> {
        self.outstanding.keys().cloned().collect()
    }

    /// The framework's outstanding offers.
    pub fn of_framework(&self, framework: &str) -> Vec<String> {
        self.accounts
            .get(framework)
            .map(|a| a.offers.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The outstanding offers of an agent.
    pub fn on_agent(&self, agent: AgentIndex) -> Vec<String> {
        self.outstanding
            .values()
            .filter(|o| o.agent == agent)
            .map(|o| o.id.clone())
            .collect()
    }
}
