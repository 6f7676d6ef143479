//! Offers: one allocation cycle turns the allocator's grants into OFFERS
//! events, and offers end by being used, declined, discarded on
//! re-subscription, or rescinded (agent lost, offer timeout, `/sim`).

use std::time::Instant;

use drover_proto::v1::{self, framework_info::capability};

use super::allocator::{AgentView, FrameworkView};
use super::events;
use super::state::{Effect, Master, OfferRecord, Timer};
use crate::fixed_hash::HashMap;

impl Master {
    /// One allocation cycle: every agent with unused resources is offered to
    /// one framework (fair share first), one OFFERS event per framework.
    pub(crate) fn allocate(&mut self, now: Instant, effects: &mut Vec<Effect>) {
        let total_cpus: f64 = self.agents.iter().map(|a| a.total.scalar("cpus")).sum();
        let total_mem: f64 = self.agents.iter().map(|a| a.total.scalar("mem")).sum();
        let mut frameworks: Vec<FrameworkView> = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        for fw in self.frameworks.values() {
            if fw.connection.is_none() {
                continue;
            }
            let roles: Vec<String> = fw
                .roles()
                .into_iter()
                .filter(|r| !fw.suppressed.contains(r))
                .collect();
            if roles.is_empty() {
                continue;
            }
            frameworks.push(FrameworkView {
                id: fw.id.clone(),
                role: roles[0].clone(),
                cpus: fw.allocated_cpus,
                mem: fw.allocated_mem,
            });
            ids.push(fw.id.clone());
        }
        if frameworks.is_empty() {
            return;
        }
        let views: Vec<AgentView> = self
            .agents
            .iter()
            .enumerate()
            .filter(|(_, a)| a.connected && !a.available.is_empty())
            .map(|(i, a)| AgentView {
                index: i,
                cpus: a.available.scalar("cpus"),
                mem: a.available.scalar("mem"),
            })
            .collect();
        let grants = self
            .allocator
            .allocate(&views, &mut frameworks, (total_cpus, total_mem), now);
        let mut per_framework: HashMap<usize, Vec<v1::Offer>> = HashMap::default();
        for g in grants {
            let fw_id = frameworks[g.framework].id.clone();
            let offer = self.make_offer(&fw_id, g.agent, &frameworks[g.framework].role, now);
            per_framework.entry(g.framework).or_default().push(offer);
        }
        let mut order: Vec<_> = per_framework.into_iter().collect();
        order.sort_by_key(|(i, _)| *i);
        for (i, offers) in order {
            let Some(conn) = self
                .frameworks
                .get(&ids[i])
                .and_then(|f| f.connection.as_ref())
                .map(|c| c.conn)
            else {
                continue;
            };
            self.counters.offers_sent += offers.len() as u64;
            effects.push(Effect::Send {
                conn,
                event: Box::new(events::offers(offers)),
            });
        }
    }

    /// Moves an agent's unused resources into a new offer for a framework.
    fn make_offer(&mut self, framework: &str, agent: usize, role: &str, now: Instant) -> v1::Offer {
        let id = self.ids.offer();
        let a = &mut self.agents[agent];
        let resources = std::mem::take(&mut a.available);
        let multi = self
            .frameworks
            .get(framework)
            .is_some_and(|f| f.has_capability(capability::Type::MultiRole));
        let alloc_role = multi.then_some(role);
        let proto = v1::Offer {
            id: v1::OfferId { value: id.clone() },
            framework_id: v1::FrameworkId {
                value: framework.to_owned(),
            },
            agent_id: v1::AgentId {
                value: a.id.clone(),
            },
            hostname: a.hostname.clone(),
            url: Some(a.url()),
            resources: resources.to_protos(alloc_role),
            attributes: a.attributes.clone(),
            allocation_info: alloc_role.map(|r| v1::resource::AllocationInfo {
                role: Some(r.to_owned()),
            }),
            ..Default::default()
        };
        if let Some(fw) = self.frameworks.get_mut(framework) {
            fw.offers.insert(id.clone());
            fw.allocated_cpus += resources.scalar("cpus");
            fw.allocated_mem += resources.scalar("mem");
        }
        let record = OfferRecord {
            id: id.clone(),
            framework: framework.to_owned(),
            agent,
            role: role.to_owned(),
            resources,
            proto: proto.clone(),
        };
        self.offers.insert(id.clone(), record);
        if let Some(t) = self.config.offer_timeout {
            self.arm(
                crate::deadline::after(now, t),
                Timer::OfferTimeout { offer: id },
            );
        }
        proto
    }

    /// Removes an offer and gives its resources back to the agent.
    pub(crate) fn discard_offer(&mut self, offer: &str) -> Option<OfferRecord> {
        let o = self.offers.remove(offer)?;
        self.agents[o.agent].available.add(&o.resources);
        if let Some(fw) = self.frameworks.get_mut(&o.framework) {
            fw.offers.remove(offer);
            fw.allocated_cpus -= o.resources.scalar("cpus");
            fw.allocated_mem -= o.resources.scalar("mem");
        }
        Some(o)
    }

    /// Takes an offer back and tells its framework (RESCIND).
    pub(crate) fn rescind_offer(&mut self, offer: &str, effects: &mut Vec<Effect>) {
        if let Some(o) = self.discard_offer(offer) {
            if let Some(c) = self
                .frameworks
                .get(&o.framework)
                .and_then(|f| f.connection.as_ref())
            {
                effects.push(Effect::Send {
                    conn: c.conn,
                    event: Box::new(events::rescind(offer)),
                });
            }
        }
    }

    pub(crate) fn rescind_all_offers_of(&mut self, framework: &str, effects: &mut Vec<Effect>) {
        let offers: Vec<String> = self
            .frameworks
            .get(framework)
            .map(|f| f.offers.iter().cloned().collect())
            .unwrap_or_default();
        for o in offers {
            self.rescind_offer(&o, effects);
        }
    }
}
