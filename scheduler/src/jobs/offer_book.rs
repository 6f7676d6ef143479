//! The offers the runner holds between receiving them and using or
//! declining them, and their translation into placement's [`HostView`]s
//! (the edge where Mesos `Offer`s stop: placement never sees a proto).

use crate::model::port_ranges::PortRanges;
use crate::model::resources::Resources;
use crate::placement::HostView;
use drover_proto::v1::{value, Attribute, Offer, Resource};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Offers grouped per (agent, role): one ACCEPT may use several offers, but
/// only from one agent and one role (reference 3.4.2).
#[derive(Debug, Default)]
pub struct OfferBook {
    by_host: BTreeMap<(String, String), HeldHost>,
}

/// The offers held for one agent and role.
#[derive(Debug, Clone)]
pub struct HeldHost {
    /// Agent id.
    pub agent_id: String,
    /// Agent hostname.
    pub hostname: String,
    /// Role of the offers (`allocation_info.role`), if the master set one.
    pub allocation_role: Option<String>,
    /// Offer ids.
    pub offer_ids: Vec<String>,
    /// Sum of their usable resources.
    pub resources: Resources,
    /// Their usable ports.
    pub ports: PortRanges,
    /// The agent's attributes as text (`zone` → `a`).
    pub attributes: BTreeMap<String, String>,
}

impl OfferBook {
    /// Holds an offer.
    pub fn add(&mut self, offer: &Offer) {
        let role = offer.allocation_info.as_ref().and_then(|a| a.role.clone());
        let key = (
            offer.agent_id.value.clone(),
            role.clone().unwrap_or_default(),
        );
        let host = self.by_host.entry(key).or_insert_with(|| HeldHost {
            agent_id: offer.agent_id.value.clone(),
            hostname: offer.hostname.clone(),
            allocation_role: role,
            offer_ids: Vec::new(),
            resources: Resources::default(),
            ports: PortRanges::default(),
            attributes: attributes(&offer.attributes),
        });
        host.offer_ids.push(offer.id.value.clone());
        host.resources = host.resources.plus(&usable(&offer.resources));
        let mut ranges = host.ports.ranges().to_vec();
        ranges.extend(usable_ports(&offer.resources));
        host.ports = PortRanges::new(ranges);
    }

    /// Forgets a rescinded offer. Its host's other offers are forgotten too:
    /// their sum can no longer be told apart, and they are declined cheaply
    /// enough to come back.
    pub fn rescind(&mut self, offer_id: &str) -> Vec<String> {
        let key = self
            .by_host
            .iter()
            .find(|(_, h)| h.offer_ids.iter().any(|o| o == offer_id))
            .map(|(k, _)| k.clone());
        match key.and_then(|k| self.by_host.remove(&k)) {
            Some(host) => host
                .offer_ids
                .into_iter()
                .filter(|o| o != offer_id)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Forgets every offer of an agent (it was lost); returns their ids.
    pub fn remove_agent(&mut self, agent_id: &str) -> Vec<String> {
        let keys: Vec<_> = self
            .by_host
            .keys()
            .filter(|(a, _)| a == agent_id)
            .cloned()
            .collect();
        keys.into_iter()
            .filter_map(|k| self.by_host.remove(&k))
            .flat_map(|h| h.offer_ids)
            .collect()
    }

    /// Forgets everything (offers do not survive a re-subscription).
    pub fn clear(&mut self) {
        self.by_host.clear();
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
        std::mem::take(&mut self.by_host).into_values().collect()
    }

    /// Forgets every held offer; returns their ids (to decline them).
    pub fn take_offer_ids(&mut self) -> Vec<String> {
        self.take_all()
            .into_iter()
            .flat_map(|h| h.offer_ids)
            .collect()
    }

    /// Every held host, in the order of [`OfferBook::take_all`].
    pub fn hosts(&self) -> impl ExactSizeIterator<Item = &HeldHost> {
        self.by_host.values()
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
    ) -> HashMap<usize, HeldHost> {
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
            .filter_map(|(i, key)| self.by_host.remove(&key).map(|host| (i, host)))
            .collect()
    }
}

impl HeldHost {
    /// The placement view of this host (pods on it are the caller's to add).
    pub fn view(&self) -> HostView {
        let mut view = HostView::new(
            &self.agent_id,
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

/// Agent attributes as text: TEXT as is, SCALAR as a number, RANGES and
/// SET in Mesos' attribute syntax (`[1-5]`, `{a,b}`), so that a HOST label
/// constraint compares what an operator wrote in `--attributes`.
pub fn attributes(list: &[Attribute]) -> BTreeMap<String, String> {
    list.iter()
        .filter_map(|a| {
            let text = if let Some(t) = &a.text {
                t.value.clone()
            } else if let Some(s) = &a.scalar {
                format!("{}", s.value)
            } else if let Some(r) = &a.ranges {
                let parts: Vec<_> = r
                    .range
                    .iter()
                    .map(|r| format!("{}-{}", r.begin, r.end))
                    .collect();
                format!("[{}]", parts.join(","))
            } else if let Some(s) = &a.set {
                format!("{{{}}}", s.item.join(","))
            } else {
                return None;
            };
            Some((a.name.clone(), text))
        })
        .collect()
}

/// Whether `r` is ours to use: Drover makes no reservations, so only
/// unreserved resources are (the offer's role is carried by the host view).
fn unreserved(r: &Resource) -> bool {
    #[allow(deprecated)]
    let legacy_role = r.role.as_deref();
    r.reservations.is_empty()
        && r.reservation.is_none()
        && legacy_role.is_none_or(|role| role == "*")
}

/// The unreserved `ports` ranges in `resources` (ports outside u32 dropped).
fn usable_ports(resources: &[Resource]) -> Vec<(u32, u32)> {
    resources
        .iter()
        .filter(|r| r.name == "ports" && unreserved(r) && r.r#type == value::Type::Ranges as i32)
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|r| r.range.iter())
        .filter_map(|r| Some((u32::try_from(r.begin).ok()?, u32::try_from(r.end).ok()?)))
        .collect()
}

/// The unreserved scalar cpus, mem, disk and gpus in `resources`.
fn usable(resources: &[Resource]) -> Resources {
    let mut total = Resources::default();
    for r in resources {
        if !unreserved(r) || r.r#type != value::Type::Scalar as i32 {
            continue;
        }
        let Some(amount) = r.scalar.as_ref().map(|s| s.value) else {
            continue;
        };
        if !amount.is_finite() || amount < 0.0 {
            continue;
        }
        match r.name.as_str() {
            "cpus" => total.cpus += amount,
            "mem" => total.mem_mib += amount,
            "disk" => total.disk_mib += amount,
            "gpus" => total.gpus += amount,
            _ => {}
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use drover_proto::v1::{resource, AgentId, FrameworkId, OfferId};

    fn scalar(name: &str, v: f64) -> Resource {
        Resource {
            name: name.into(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(value::Scalar { value: v }),
            ..Default::default()
        }
    }

    fn offer(id: &str, agent: &str, cpus: f64) -> Offer {
        Offer {
            id: OfferId { value: id.into() },
            framework_id: FrameworkId { value: "f".into() },
            agent_id: AgentId {
                value: agent.into(),
            },
            hostname: format!("{agent}.host"),
            resources: vec![
                scalar("cpus", cpus),
                scalar("mem", 256.0),
                scalar("ports", 9.0),
                Resource {
                    name: "ports".into(),
                    r#type: value::Type::Ranges as i32,
                    ranges: Some(value::Ranges {
                        range: vec![value::Range {
                            begin: 31000,
                            end: 31009,
                        }],
                    }),
                    ..Default::default()
                },
            ],
            attributes: vec![Attribute {
                name: "zone".into(),
                r#type: value::Type::Text as i32,
                text: Some(value::Text { value: "b".into() }),
                ..Default::default()
            }],
            allocation_info: Some(resource::AllocationInfo {
                role: Some("*".into()),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn offers_of_one_agent_are_summed_and_rescinds_drop_the_host() {
        let mut book = OfferBook::default();
        book.add(&offer("o1", "a1", 1.0));
        book.add(&offer("o2", "a1", 2.0));
        book.add(&offer("o3", "a2", 1.0));
        let rest = book.rescind("o3");
        assert!(rest.is_empty());
        let hosts = book.take_all();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].offer_ids, vec!["o1", "o2"]);
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
        let order: Vec<_> = book.hosts().map(|h| h.agent_id.clone()).collect();
        assert_eq!(order, ["a1", "a2", "a3", "a4"]);
        let sorted = |taken: HashMap<usize, HeldHost>| {
            let mut got: Vec<_> = taken.into_iter().map(|(i, h)| (i, h.agent_id)).collect();
            got.sort();
            got
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
        let left: Vec<_> = book.take_all().into_iter().map(|h| h.agent_id).collect();
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
        assert_eq!(hosts[0].offer_ids, vec!["o1", "o2"]);
        assert_eq!(hosts[0].view().offered.cpus, 3.0);
    }
}
