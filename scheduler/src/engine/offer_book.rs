//! The offers the engine holds between receiving them and using or
//! declining them, grouped per (agent, role), and their translation into
//! placement's [`HostView`]s. An offer id is held once: a second copy of
//! it is refused while the first is held (see [`OfferBook::add`]).

use crate::model::ids::{AgentId, OfferId};
use crate::model::offer::Offer;
use crate::model::port_ranges::PortRanges;
use crate::model::resources::Resources;
use crate::placement::HostView;
use std::collections::{BTreeMap, HashSet};

/// Offers grouped per (agent, role): one ACCEPT may use several offers, but
/// only from one agent and one role (reference 3.4.2).
#[derive(Debug, Default)]
pub struct OfferBook {
    by_host: BTreeMap<(AgentId, String), HeldHost>,
    /// The ids of every offer in `by_host`.
    ids: HashSet<OfferId>,
}

/// The offers held for one agent and role.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldHost {
    /// Agent id.
    pub agent_id: AgentId,
    /// Agent hostname.
    pub hostname: String,
    /// Role of the offers (`allocation_info.role`), if the master set one.
    pub allocation_role: Option<String>,
    /// Offer ids.
    pub offer_ids: Vec<OfferId>,
    /// Sum of their usable resources.
    pub resources: Resources,
    /// Their usable ports.
    pub ports: PortRanges,
    /// The agent's attributes as text (`zone` → `a`).
    pub attributes: BTreeMap<String, String>,
}

impl OfferBook {
    /// Holds an offer, unless an offer with its id is held already: then
    /// nothing changes and the answer is false. Offer ids are unique
    /// (Mesos); a second copy comes from a broken or replaying master, and
    /// summing the two (as once happened) offers resources twice over. The
    /// first copy is kept: it may be what the engine already counts on,
    /// and a DECLINE of the second would decline the first with it (the
    /// master knows offers by id alone).
    pub fn add(&mut self, offer: &Offer) -> bool {
        if !self.ids.insert(offer.id.clone()) {
            return false;
        }
        let key = (
            offer.agent_id.clone(),
            offer.allocation_role.clone().unwrap_or_default(),
        );
        let host = self.by_host.entry(key).or_insert_with(|| HeldHost {
            agent_id: offer.agent_id.clone(),
            hostname: offer.hostname.clone(),
            allocation_role: offer.allocation_role.clone(),
            offer_ids: Vec::new(),
            resources: Resources::default(),
            ports: PortRanges::default(),
            attributes: offer.attributes.clone(),
        });
        host.offer_ids.push(offer.id.clone());
        host.resources = host.resources.plus(&offer.resources);
        // Most hosts have one offer: its ports are already a PortRanges.
        if host.ports.ranges().is_empty() {
            host.ports = offer.ports.clone();
        } else {
            let mut ranges = host.ports.ranges().to_vec();
            ranges.extend(offer.ports.ranges().iter().copied());
            host.ports = PortRanges::new(ranges);
        }
        true
    }

    /// Whether an offer with this id is held.
    pub fn contains(&self, offer_id: &OfferId) -> bool {
        self.ids.contains(offer_id)
    }

    /// Takes one host out, its ids with it.
    fn remove(&mut self, key: &(AgentId, String)) -> Option<HeldHost> {
        let host = self.by_host.remove(key)?;
        for id in &host.offer_ids {
            self.ids.remove(id);
        }
        Some(host)
    }

    /// Forgets a rescinded offer. Its host's other offers are forgotten too:
    /// their sum can no longer be told apart, and they are declined cheaply
    /// enough to come back.
    pub fn rescind(&mut self, offer_id: &OfferId) -> Vec<OfferId> {
        let key = self
            .by_host
            .iter()
            .find(|(_, h)| h.offer_ids.contains(offer_id))
            .map(|(k, _)| k.clone());
        match key.and_then(|k| self.remove(&k)) {
            Some(host) => host
                .offer_ids
                .into_iter()
                .filter(|o| o != offer_id)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Forgets every offer of an agent (it was lost); returns their ids.
    pub fn remove_agent(&mut self, agent_id: &AgentId) -> Vec<OfferId> {
        let keys: Vec<_> = self
            .by_host
            .keys()
            .filter(|(a, _)| a == agent_id)
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| self.remove(&k))
            .flat_map(|h| h.offer_ids)
            .collect()
    }

    /// Forgets everything (offers do not survive a re-subscription).
    pub fn clear(&mut self) {
        self.by_host.clear();
        self.ids.clear();
    }

    /// Whether no offer is held.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    /// Holds a host taken with [`OfferBook::take_all`] again (merged with
    /// any offer of the same agent and role that came meanwhile).
    pub fn put_back(&mut self, host: HeldHost) {
        let key = (
            host.agent_id.clone(),
            host.allocation_role.clone().unwrap_or_default(),
        );
        self.ids.extend(host.offer_ids.iter().cloned());
        match self.by_host.remove(&key) {
            None => {
                self.by_host.insert(key, host);
            }
            Some(newer) => {
                let mut ranges = host.ports.ranges().to_vec();
                ranges.extend(newer.ports.ranges().iter().copied());
                let merged = HeldHost {
                    offer_ids: host.offer_ids.into_iter().chain(newer.offer_ids).collect(),
                    resources: host.resources.plus(&newer.resources),
                    ports: PortRanges::new(ranges),
                    ..newer
                };
                self.by_host.insert(key, merged);
            }
        }
    }

    /// Takes every held host, in a stable order (agent id, then role).
    pub fn take_all(&mut self) -> Vec<HeldHost> {
        self.ids.clear();
        std::mem::take(&mut self.by_host).into_values().collect()
    }

    /// Forgets every held offer; returns their ids (to decline them).
    pub fn take_offer_ids(&mut self) -> Vec<OfferId> {
        self.take_all()
            .into_iter()
            .flat_map(|h| h.offer_ids)
            .collect()
    }

    /// Every held host, in the order of [`OfferBook::take_all`].
    pub fn hosts(&self) -> impl ExactSizeIterator<Item = &HeldHost> {
        self.by_host.values()
    }

    /// What the held hosts offer, summed.
    pub fn free(&self) -> Resources {
        self.hosts()
            .fold(Resources::default(), |sum, h| sum.plus(&h.resources))
    }

    /// Takes the hosts at `positions` of [`OfferBook::hosts`] as a
    /// placement round saw them, each with that position; the others stay
    /// held. `taken_before`: the positions (sorted) the round took out
    /// already, which the book no longer holds. A round on 10,000 agents
    /// uses a few hundred of them: the rest stay where they are rather than
    /// being moved out and back every round.
    pub fn take_at(
        &mut self,
        positions: &HashSet<usize>,
        taken_before: &[usize],
    ) -> BTreeMap<usize, HeldHost> {
        let mut gone = taken_before.iter().peekable();
        let mut position = 0;
        let mut keys = Vec::new();
        for key in self.by_host.keys() {
            // This host's position in the round's view: skip those taken.
            while gone.next_if(|&&p| p == position).is_some() {
                position += 1;
            }
            if positions.contains(&position) {
                keys.push((position, key.clone()));
            }
            position += 1;
        }
        keys.into_iter()
            .filter_map(|(i, key)| self.remove(&key).map(|host| (i, host)))
            .collect()
    }
}

impl HeldHost {
    /// The placement view of this host (pods on it are the caller's to add).
    pub fn view(&self) -> HostView {
        let mut view = HostView::new(
            self.agent_id.as_str(),
            &self.hostname,
            self.allocation_role.as_deref().unwrap_or("*"),
            self.resources,
        )
        .with_ports(self.ports.clone());
        for (name, value) in &self.attributes {
            view = view.with_attribute(name, value);
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An offer of `cpus`, 256 MiB and ports 31000-31009 on `agent`, in
    /// zone b (what `mesos/offers.rs` makes of such a proto offer).
    fn offer(id: &str, agent: &str, cpus: f64) -> Offer {
        Offer {
            id: OfferId(id.into()),
            agent_id: AgentId::new(agent),
            hostname: format!("{agent}.host"),
            allocation_role: Some("*".into()),
            resources: Resources {
                cpus,
                mem_mib: 256.0,
                ..Default::default()
            },
            ports: PortRanges::new([(31000, 31009)]),
            attributes: BTreeMap::from([("zone".to_owned(), "b".to_owned())]),
            unavailability: None,
        }
    }

    fn ids(ids: &[OfferId]) -> Vec<&str> {
        ids.iter().map(OfferId::as_str).collect()
    }

    #[test]
    fn offers_of_one_agent_are_summed_and_rescinds_drop_the_host() {
        let mut book = OfferBook::default();
        book.add(&offer("o1", "a1", 1.0));
        book.add(&offer("o2", "a1", 2.0));
        book.add(&offer("o3", "a2", 1.0));
        let rest = book.rescind(&OfferId("o3".into()));
        assert!(rest.is_empty());
        let hosts = book.take_all();
        assert_eq!(hosts.len(), 1);
        assert_eq!(ids(&hosts[0].offer_ids), vec!["o1", "o2"]);
        assert_eq!(hosts[0].view().offered.cpus, 3.0);
        assert_eq!(hosts[0].view().offered.mem_mib, 512.0);
        assert_eq!(hosts[0].view().ports.ranges(), &[(31000, 31009)]);
        assert_eq!(hosts[0].view().zone(), Some("b"));
        assert!(book.is_empty());
    }

    #[test]
    fn hosts_taken_by_position_leave_the_others_held() {
        let mut book = OfferBook::default();
        for (id, agent) in [("o1", "a1"), ("o2", "a2"), ("o3", "a3"), ("o4", "a4")] {
            book.add(&offer(id, agent, 1.0));
        }
        let order: Vec<_> = book.hosts().map(|h| h.agent_id.to_string()).collect();
        assert_eq!(order, ["a1", "a2", "a3", "a4"]);
        let sorted = |taken: BTreeMap<usize, HeldHost>| {
            taken
                .into_iter()
                .map(|(i, h)| (i, h.agent_id.to_string()))
                .collect::<Vec<_>>()
        };
        let taken = book.take_at(&HashSet::from([1, 3, 9]), &[]);
        assert_eq!(
            sorted(taken),
            [(1, "a2".to_owned()), (3, "a4".to_owned())],
            "a position past the end takes nothing"
        );
        // Later in the same round, positions are still the round's.
        let taken = book.take_at(&HashSet::from([2]), &[1, 3]);
        assert_eq!(sorted(taken), [(2, "a3".to_owned())]);
        let left: Vec<_> = book
            .take_all()
            .into_iter()
            .map(|h| h.agent_id.to_string())
            .collect();
        assert_eq!(left, ["a1"]);
    }

    #[test]
    fn a_host_put_back_merges_with_offers_that_came_meanwhile() {
        let mut book = OfferBook::default();
        book.add(&offer("o1", "a1", 1.0));
        let taken = book.take_all();
        book.add(&offer("o2", "a1", 2.0));
        for host in taken {
            book.put_back(host);
        }
        let hosts = book.take_all();
        assert_eq!(hosts.len(), 1);
        assert_eq!(ids(&hosts[0].offer_ids), vec!["o1", "o2"]);
        assert_eq!(hosts[0].view().offered.cpus, 3.0);
    }

    #[test]
    fn a_lost_agent_takes_all_its_offers_along() {
        let mut book = OfferBook::default();
        book.add(&offer("o1", "a1", 1.0));
        let mut other_role = offer("o2", "a1", 1.0);
        other_role.allocation_role = Some("web".into());
        book.add(&other_role);
        book.add(&offer("o3", "a2", 1.0));
        let mut gone = book.remove_agent(&AgentId::new("a1"));
        gone.sort();
        assert_eq!(ids(&gone), ["o1", "o2"]);
        assert_eq!(book.hosts().len(), 1);
    }

    #[test]
    fn a_second_copy_of_a_held_offer_id_is_refused_and_the_first_kept() {
        let mut book = OfferBook::default();
        assert!(book.add(&offer("o1", "a1", 1.5)));
        assert!(!book.add(&offer("o1", "a1", 8.0)), "same agent");
        assert!(!book.add(&offer("o1", "a2", 8.0)), "another agent");
        assert!(book.contains(&OfferId("o1".into())));
        let hosts: Vec<_> = book.hosts().collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(ids(&hosts[0].offer_ids), ["o1"]);
        assert_eq!(hosts[0].resources.cpus, 1.5, "never summed");
    }

    #[test]
    fn an_offer_id_is_held_again_once_the_book_lets_it_go() {
        let id = OfferId("o1".into());
        let mut book = OfferBook::default();
        // Used or declined (taken out): no longer held.
        book.add(&offer("o1", "a1", 1.0));
        let taken = book.take_all();
        assert!(!book.contains(&id));
        // Put back unused: held again.
        for host in taken {
            book.put_back(host);
        }
        assert!(book.contains(&id));
        assert!(!book.add(&offer("o1", "a1", 1.0)));
        // Taken by position for a round.
        let taken = book.take_at(&HashSet::from([0]), &[]);
        assert_eq!(taken.len(), 1);
        assert!(!book.contains(&id));
        // Rescinded, lost with its agent, cleared.
        book.add(&offer("o1", "a1", 1.0));
        book.add(&offer("o2", "a1", 1.0));
        book.rescind(&id);
        assert!(!book.contains(&id) && !book.contains(&OfferId("o2".into())));
        book.add(&offer("o1", "a1", 1.0));
        book.remove_agent(&AgentId::new("a1"));
        assert!(!book.contains(&id));
        book.add(&offer("o1", "a1", 1.0));
        book.clear();
        assert!(!book.contains(&id));
        assert!(book.add(&offer("o1", "a1", 1.0)));
    }
}
