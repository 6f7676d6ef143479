//! Maintenance, as a part of the master: the schedule, each scheduled
//! machine's mode (DRAINING, then DOWN; a machine out of the schedule is
//! UP), and the inverse offers: those outstanding, which framework has
//! one for which agent, the frameworks' answers, and the refusal filters
//! their answers set. Mesos keeps the machines in the master and the
//! inverse offer bookkeeping in its allocator (`updateUnavailability`,
//! `updateInverseOffer`, `generateInverseOffers`); here one part owns both.
//! The master (`operator.rs`) routes operator calls and framework answers
//! through it and carries out what it says to the agents.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use drover_proto::v1;

use super::maintenance_rules::MachineKey;
use crate::ids::AgentIndex;
use crate::operator_proto::{
    ClusterStatus, DrainingMachine, InverseOfferState, InverseOfferStatus, Schedule,
};

/// `MachineInfo.Mode` of a scheduled machine (an unscheduled one is UP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Draining,
    Down,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Draining => "DRAINING",
            Mode::Down => "DOWN",
        }
    }
}

/// A machine of the schedule.
#[derive(Debug, Clone)]
pub struct MachineRecord {
    pub id: v1::MachineId,
    pub mode: Mode,
    pub unavailability: v1::Unavailability,
}

/// An outstanding inverse offer.
#[derive(Debug, Clone)]
pub struct InverseOfferRecord {
    pub id: String,
    pub framework: String,
    pub agent: AgentIndex,
}

/// A framework's latest answer to an inverse offer for an agent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Answer {
    pub accepted: bool,
    /// Seconds since the epoch.
    pub at: f64,
}

/// The schedule, the machines' modes and the inverse offers.
#[derive(Debug, Default)]
pub struct Maintenance {
    schedule: Schedule,
    machines: BTreeMap<MachineKey, MachineRecord>,
    /// Every machine ever scheduled: Mesos never forgets a machine, one
    /// out of the schedule is UP, not unknown.
    seen: BTreeSet<MachineKey>,
    inverse_offers: BTreeMap<String, InverseOfferRecord>,
    /// (agent, framework) pairs with an inverse offer outstanding: the
    /// allocator sends no second one until the first is answered.
    outstanding: BTreeSet<(AgentIndex, String)>,
    /// Each agent's answers, by framework, until its window changes.
    answers: BTreeMap<AgentIndex, BTreeMap<String, Answer>>,
    /// Until when a framework's answer holds back new inverse offers for an agent.
    filters: BTreeMap<(String, AgentIndex), Instant>,
}

impl Maintenance {
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The scheduled machine with this key.
    pub fn machine(&self, key: &MachineKey) -> Option<&MachineRecord> {
        self.machines.get(key)
    }

    /// Whether the machine was ever in a schedule.
    pub fn was_scheduled(&self, key: &MachineKey) -> bool {
        self.seen.contains(key)
    }

    /// Every scheduled machine, in key order.
    pub fn machines(&self) -> impl Iterator<Item = &MachineRecord> {
        self.machines.values()
    }

    /// The machines that are DOWN.
    pub fn down(&self) -> Vec<v1::MachineId> {
        self.machines
            .values()
            .filter(|m| m.mode == Mode::Down)
            .map(|m| m.id.clone())
            .collect()
    }

    /// Replaces the schedule (already validated) as Mesos does: a machine
    /// new to it starts DRAINING, one still in it keeps its mode with the
    /// new window, one left out is UP again. Returns every machine whose
    /// window changed, with the new window (none: back UP).
    pub fn replace_schedule(
        &mut self,
        schedule: Schedule,
    ) -> Vec<(MachineKey, Option<v1::Unavailability>)> {
        let mut windows: BTreeMap<MachineKey, (v1::MachineId, v1::Unavailability)> =
            BTreeMap::new();
        for window in &schedule.windows {
            for id in &window.machine_ids {
                windows.insert(MachineKey::of(id), (id.clone(), window.unavailability));
            }
        }
        let mut changed = Vec::new();
        let dropped: Vec<MachineKey> = self
            .machines
            .keys()
            .filter(|k| !windows.contains_key(*k))
            .cloned()
            .collect();
        for key in dropped {
            self.machines.remove(&key);
            changed.push((key, None));
        }
        for (key, (id, unavailability)) in windows {
            self.seen.insert(key.clone());
            match self.machines.get_mut(&key) {
                Some(m) => m.unavailability = unavailability,
                None => {
                    self.machines.insert(
                        key.clone(),
                        MachineRecord {
                            id,
                            mode: Mode::Draining,
                            unavailability,
                        },
                    );
                }
            }
            changed.push((key, Some(unavailability)));
        }
        self.schedule = schedule;
        changed
    }

    /// START_MAINTENANCE (validated): the machines are DOWN.
    pub fn set_down(&mut self, keys: &[MachineKey]) {
        for key in keys {
            if let Some(m) = self.machines.get_mut(key) {
                m.mode = Mode::Down;
            }
        }
    }

    /// STOP_MAINTENANCE (validated): the machines are UP, out of the
    /// schedule; windows left empty are dropped.
    pub fn set_up(&mut self, keys: &[MachineKey]) {
        for key in keys {
            self.machines.remove(key);
        }
        for window in &mut self.schedule.windows {
            window
                .machine_ids
                .retain(|id| !keys.contains(&MachineKey::of(id)));
        }
        self.schedule.windows.retain(|w| !w.machine_ids.is_empty());
    }

    /// The agent's window changed or it left: its outstanding inverse
    /// offers are returned (to be rescinded) and its answers and filters
    /// forgotten, as the allocator's `updateUnavailability` forgets them.
    pub fn reset_agent(&mut self, agent: AgentIndex) -> Vec<InverseOfferRecord> {
        self.answers.remove(&agent);
        self.filters.retain(|(_, a), _| *a != agent);
        self.outstanding.retain(|(a, _)| *a != agent);
        let ids: Vec<String> = self
            .inverse_offers
            .values()
            .filter(|o| o.agent == agent)
            .map(|o| o.id.clone())
            .collect();
        ids.iter()
            .filter_map(|id| self.inverse_offers.remove(id))
            .collect()
    }

    /// The framework left or lost its connection: its inverse offers are
    /// gone (a new one is sent when it is back), its answers stay.
    pub fn forget_framework(&mut self, framework: &str) {
        self.inverse_offers.retain(|_, o| o.framework != framework);
        self.outstanding.retain(|(_, f)| f != framework);
    }

    /// A master failover as frameworks see it: every inverse offer, answer
    /// and filter is gone (Mesos keeps them in memory only); the schedule
    /// and the machines' modes stay (Mesos keeps them in its registry), so
    /// new inverse offers follow.
    pub fn forget_inverse_offers(&mut self) {
        self.inverse_offers.clear();
        self.outstanding.clear();
        self.answers.clear();
        self.filters.clear();
    }

    /// Whether the framework may be sent an inverse offer for the agent
    /// now: none outstanding, and no answer's filter in force.
    pub fn may_offer(&self, agent: AgentIndex, framework: &str, now: Instant) -> bool {
        !self.outstanding.contains(&(agent, framework.to_owned()))
            && self
                .filters
                .get(&(framework.to_owned(), agent))
                .is_none_or(|until| *until <= now)
    }

    /// Records an inverse offer just sent.
    pub fn add(&mut self, record: InverseOfferRecord) {
        self.outstanding
            .insert((record.agent, record.framework.clone()));
        self.inverse_offers.insert(record.id.clone(), record);
    }

    /// ACCEPT_INVERSE_OFFERS or DECLINE_INVERSE_OFFERS for one id: the
    /// framework's outstanding inverse offer is answered, the answer
    /// recorded and, until `filter_until`, no new one sent for its agent.
    /// Ids that are not the framework's outstanding ones are ignored, as
    /// Mesos ignores them.
    pub fn answer(
        &mut self,
        framework: &str,
        id: &str,
        accepted: bool,
        at: f64,
        filter_until: Option<Instant>,
    ) -> bool {
        if self
            .inverse_offers
            .get(id)
            .is_none_or(|o| o.framework != framework)
        {
            return false;
        }
        let Some(record) = self.inverse_offers.remove(id) else {
            return false;
        };
        self.outstanding
            .remove(&(record.agent, framework.to_owned()));
        self.answers
            .entry(record.agent)
            .or_default()
            .insert(framework.to_owned(), Answer { accepted, at });
        if let Some(until) = filter_until {
            self.filters
                .insert((framework.to_owned(), record.agent), until);
        }
        true
    }

    /// The outstanding inverse offers, by id.
    pub fn inverse_offers(&self) -> impl Iterator<Item = &InverseOfferRecord> {
        self.inverse_offers.values()
    }

    /// The answers recorded for an agent, by framework.
    pub fn answers(&self, agent: AgentIndex) -> impl Iterator<Item = (&String, &Answer)> {
        self.answers.get(&agent).into_iter().flatten()
    }

    /// GET_MAINTENANCE_STATUS: every DRAINING machine with its agents'
    /// answers, and every DOWN machine. `agents_of` names a machine's agents.
    pub fn cluster_status(
        &self,
        agents_of: impl Fn(&MachineKey) -> Vec<AgentIndex>,
    ) -> ClusterStatus {
        let mut status = ClusterStatus::default();
        for (key, m) in &self.machines {
            match m.mode {
                Mode::Down => status.down_machines.push(m.id.clone()),
                Mode::Draining => {
                    let statuses = agents_of(key)
                        .into_iter()
                        .flat_map(|agent| {
                            self.answers(agent)
                                .map(|(framework, answer)| InverseOfferStatus {
                                    status: if answer.accepted {
                                        InverseOfferState::Accept as i32
                                    } else {
                                        InverseOfferState::Decline as i32
                                    },
                                    framework_id: v1::FrameworkId {
                                        value: framework.clone(),
                                    },
                                    timestamp: v1::TimeInfo {
                                        nanoseconds: (answer.at * 1e9) as i64,
                                    },
                                })
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    status.draining_machines.push(DrainingMachine {
                        id: m.id.clone(),
                        statuses,
                    });
                }
            }
        }
        status
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::operator_proto::Window;

    fn id(hostname: &str) -> v1::MachineId {
        v1::MachineId {
            hostname: Some(hostname.to_owned()),
            ip: Some("127.0.0.1".into()),
        }
    }

    fn window(hosts: &[&str], start: i64) -> Window {
        Window {
            machine_ids: hosts.iter().map(|h| id(h)).collect(),
            unavailability: v1::Unavailability {
                start: v1::TimeInfo { nanoseconds: start },
                duration: None,
            },
        }
    }

    #[test]
    fn a_new_machine_drains_a_kept_one_keeps_its_mode_a_dropped_one_is_up() {
        let mut m = Maintenance::default();
        m.replace_schedule(Schedule {
            windows: vec![window(&["a", "b"], 1)],
        });
        m.set_down(&[MachineKey::of(&id("a"))]);
        let changed = m.replace_schedule(Schedule {
            windows: vec![window(&["a"], 2), window(&["c"], 3)],
        });
        let a = m.machine(&MachineKey::of(&id("a"))).unwrap();
        assert_eq!(a.mode, Mode::Down);
        assert_eq!(a.unavailability.start.nanoseconds, 2);
        assert_eq!(
            m.machine(&MachineKey::of(&id("c"))).unwrap().mode,
            Mode::Draining
        );
        assert!(m.machine(&MachineKey::of(&id("b"))).is_none());
        assert!(changed.contains(&(MachineKey::of(&id("b")), None)));
        assert_eq!(changed.len(), 3);
    }

    #[test]
    fn stop_takes_machines_out_of_the_schedule_and_drops_empty_windows() {
        let mut m = Maintenance::default();
        m.replace_schedule(Schedule {
            windows: vec![window(&["a"], 1), window(&["b", "c"], 2)],
        });
        m.set_up(&[MachineKey::of(&id("a")), MachineKey::of(&id("b"))]);
        assert_eq!(m.schedule().windows.len(), 1);
        assert_eq!(m.schedule().windows[0].machine_ids, vec![id("c")]);
    }

    #[test]
    fn one_inverse_offer_per_agent_and_framework_until_answered_then_filtered() {
        let now = Instant::now();
        let mut m = Maintenance::default();
        assert!(m.may_offer(0, "f", now));
        m.add(InverseOfferRecord {
            id: "o1".into(),
            framework: "f".into(),
            agent: 0,
        });
        assert!(!m.may_offer(0, "f", now));
        assert!(
            !m.answer("g", "o1", true, 1.0, None),
            "not g's inverse offer"
        );
        let later = now + std::time::Duration::from_secs(5);
        assert!(m.answer("f", "o1", true, 1.0, Some(later)));
        assert!(!m.may_offer(0, "f", now));
        assert!(m.may_offer(0, "f", later));
        assert_eq!(
            m.answers(0).next().map(|(f, a)| (f.clone(), a.accepted)),
            Some(("f".into(), true))
        );
        assert!(m.reset_agent(0).is_empty());
        assert!(m.answers(0).next().is_none());
    }
}
