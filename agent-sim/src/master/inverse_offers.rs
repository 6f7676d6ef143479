//! Inverse offers, the allocation cycle's maintenance work and the
//! frameworks' answers, as Mesos' hierarchical allocator
//! (`generateInverseOffers`, `updateInverseOffer`) and master
//! (`inverseOffer`, `acceptInverseOffers`, `declineInverseOffers`) do them:
//! each cycle, every connected framework with live tasks or offers on an
//! active agent in a maintenance window, and no inverse offer outstanding
//! or filtered there, gets one (the whole agent, with the window), one
//! INVERSE_OFFERS event per framework; ACCEPT_INVERSE_OFFERS or
//! DECLINE_INVERSE_OFFERS records the answer (for GET_MAINTENANCE_STATUS)
//! and holds the next one back for the call's `refuse_seconds`. The
//! bookkeeping is the `maintenance` part's.

use std::collections::BTreeMap;
use std::time::Instant;

use drover_proto::v1;
use drover_proto::TaskStateExt;

use super::allocator::refuse_duration;
use super::events;
use super::machine::{Effect, Master};
use super::maintenance::InverseOfferRecord;
use crate::deadline::after;
use crate::ids::AgentIndex;

impl Master {
    /// The allocation cycle's maintenance work: draining agents that have
    /// emptied, then inverse offers (after the offers, so a framework
    /// offered an agent in a window also learns of the window).
    pub(super) fn maintenance_cycle(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let draining: Vec<AgentIndex> = self
            .fleet
            .as_slice()
            .iter()
            .enumerate()
            .filter(|(_, a)| a.drain.is_some() && !a.removed)
            .map(|(i, _)| i)
            .collect();
        for agent in draining {
            self.check_drained(agent, now, fx);
        }
        self.send_inverse_offers(now, fx);
    }

    fn send_inverse_offers(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let in_window: Vec<AgentIndex> = self
            .fleet
            .as_slice()
            .iter()
            .enumerate()
            .filter(|(_, a)| a.unavailability.is_some() && a.offerable())
            .map(|(i, _)| i)
            .collect();
        if in_window.is_empty() {
            return;
        }
        // Who holds offers of which agent, read once per cycle.
        let mut offered: BTreeMap<AgentIndex, Vec<String>> = BTreeMap::new();
        for o in self.offers.iter() {
            offered
                .entry(o.agent)
                .or_default()
                .push(o.framework.clone());
        }
        let mut per_framework: BTreeMap<String, Vec<v1::InverseOffer>> = BTreeMap::new();
        for agent in in_window {
            let a = &self.fleet[agent];
            let Some(window) = a.unavailability else {
                continue;
            };
            let mut frameworks: Vec<String> = self
                .tasks
                .on_agent(agent)
                .into_iter()
                .filter(|k| self.tasks.get(k).is_some_and(|t| !t.state().is_terminal()))
                .map(|k| k.0)
                .chain(offered.remove(&agent).unwrap_or_default())
                .collect();
            frameworks.sort_unstable();
            frameworks.dedup();
            for framework in frameworks {
                if self.frameworks.conn(&framework).is_none()
                    || !self.maintenance.may_offer(agent, &framework, now)
                {
                    continue;
                }
                let id = self.ids.offer();
                let a = &self.fleet[agent];
                per_framework
                    .entry(framework.clone())
                    .or_default()
                    .push(v1::InverseOffer {
                        id: v1::OfferId { value: id.clone() },
                        url: Some(a.url()),
                        framework_id: v1::FrameworkId {
                            value: framework.clone(),
                        },
                        agent_id: Some(v1::AgentId {
                            value: a.id.clone(),
                        }),
                        unavailability: window,
                        resources: Vec::new(),
                    });
                self.maintenance.add(InverseOfferRecord {
                    id,
                    framework,
                    agent,
                });
            }
        }
        for (framework, offers) in per_framework {
            self.send_to(&framework, events::inverse_offers(offers), fx);
        }
    }

    /// ACCEPT_INVERSE_OFFERS (`accepted`) or DECLINE_INVERSE_OFFERS.
    pub(super) fn answer_inverse_offers(
        &mut self,
        framework: &str,
        ids: &[v1::OfferId],
        filters: Option<&v1::Filters>,
        accepted: bool,
        now: Instant,
    ) {
        let refuse = refuse_duration(filters);
        let until = (!refuse.is_zero()).then(|| after(now, refuse));
        let at = self.unix(now);
        for id in ids {
            self.maintenance
                .answer(framework, &id.value, accepted, at, until);
        }
    }

    pub(super) fn rescind_inverse_offers(&mut self, agent: AgentIndex, fx: &mut Vec<Effect>) {
        for o in self.maintenance.reset_agent(agent) {
            self.send_to(&o.framework, events::rescind_inverse_offer(&o.id), fx);
        }
    }
}
