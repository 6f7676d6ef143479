//! The allocator: which framework is offered which agent in one cycle, and
//! the decline filters that hold agents back from a framework. Pure: views
//! of agents and frameworks in, grants out.
//!
//! Like Mesos' hierarchical DRF allocator, each agent with unused resources
//! goes, whole, to the framework with the lowest dominant share (of cpus and
//! mem, counting what it was offered and what it runs) that is not filtering
//! that agent; the winner's share grows before the next agent. The frameworks
//! wait in a heap keyed by share, so a cycle costs O(agents · log frameworks)
//! plus the filtered frameworks skipped; tasks never enter into it.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use crate::fixed_hash::HashMap;

/// Mesos caps refuse_seconds at 365 days (reference 3.4.3).
pub const MAX_REFUSE: Duration = Duration::from_secs(365 * 24 * 3600);
/// The refuse_seconds used when a call gives none or an unusable one.
pub const DEFAULT_REFUSE: Duration = Duration::from_secs(5);

/// An agent with unused resources.
#[derive(Debug, Clone, Copy)]
pub struct AgentView {
    pub index: usize,
    pub cpus: f64,
    pub mem: f64,
}

/// A connected framework that wants offers for `role`.
#[derive(Debug, Clone)]
pub struct FrameworkView {
    pub id: String,
    pub role: String,
    pub cpus: f64,
    pub mem: f64,
}

/// One agent granted to one framework (index into the framework views).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub framework: usize,
    pub agent: usize,
}

/// What a framework declined on one agent, and until when. As in Mesos'
/// `RefusedOfferFilter`, it holds back only offers its resources contain:
/// once more is free on the agent (a task ended), the agent is offered again
/// before the filter expires.
#[derive(Debug, Clone, Copy)]
struct RefusalFilter {
    until: Instant,
    cpus: f64,
    mem: f64,
}

impl RefusalFilter {
    fn holds_back(&self, agent: &AgentView, now: Instant) -> bool {
        // Tolerance for the float sums of task resources.
        const EPSILON: f64 = 1e-9;
        self.until > now && agent.cpus <= self.cpus + EPSILON && agent.mem <= self.mem + EPSILON
    }
}

/// Decline filters and the cycle counter.
#[derive(Debug, Default)]
pub struct Allocator {
    /// framework id -> agent index -> its refusal.
    filters: HashMap<String, HashMap<usize, RefusalFilter>>,
    cycles: u64,
}

/// The refuse duration a DECLINE or ACCEPT's `filters` asks for:
/// absent -> 5 s, negative or unrepresentable -> 5 s, capped at 365 days.
pub fn refuse_duration(filters: Option<&drover_proto::v1::Filters>) -> Duration {
    match filters.and_then(|f| f.refuse_seconds) {
        None => DEFAULT_REFUSE,
        Some(s) if !s.is_finite() || s < 0.0 => DEFAULT_REFUSE,
        Some(s) => Duration::try_from_secs_f64(s)
            .unwrap_or(MAX_REFUSE)
            .min(MAX_REFUSE),
    }
}

#[derive(PartialEq)]
struct Share(f64);

impl Eq for Share {}

impl PartialOrd for Share {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Share {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl Allocator {
    /// Holds `agent` back from `framework` until `until` (a zero refusal adds nothing).
    ///
    /// `declined` is the (cpus, mem) the framework turned down; a later offer
    /// of more than that is not held back.
    pub fn add_filter(
        &mut self,
        framework: &str,
        agent: usize,
        (cpus, mem): (f64, f64),
        refuse: Duration,
        now: Instant,
    ) {
        if refuse.is_zero() {
            return;
        }
        self.filters
            .entry(framework.to_owned())
            .or_default()
            .insert(
                agent,
                RefusalFilter {
                    until: crate::deadline::after(now, refuse),
                    cpus,
                    mem,
                },
            );
    }

    /// REVIVE: drops every filter of the framework.
    pub fn clear_filters(&mut self, framework: &str) {
        self.filters.remove(framework);
    }

    pub fn remove_framework(&mut self, framework: &str) {
        self.filters.remove(framework);
    }

    /// Whether `agent`, with what it has free now, is held back from
    /// `framework` at `now`.
    pub fn is_filtered(&self, framework: &str, agent: &AgentView, now: Instant) -> bool {
        self.filters
            .get(framework)
            .and_then(|f| f.get(&agent.index))
            .is_some_and(|filter| filter.holds_back(agent, now))
    }

    /// One cycle. `frameworks` shares are updated as agents are granted.
    pub fn allocate(
        &mut self,
        agents: &[AgentView],
        frameworks: &mut [FrameworkView],
        (total_cpus, total_mem): (f64, f64),
        now: Instant,
    ) -> Vec<Grant> {
        self.cycles += 1;
        for f in self.filters.values_mut() {
            f.retain(|_, filter| filter.until > now);
        }
        self.filters.retain(|_, f| !f.is_empty());
        let share = |cpus: f64, mem: f64| {
            let c = if total_cpus > 0.0 {
                cpus / total_cpus
            } else {
                0.0
            };
            let m = if total_mem > 0.0 {
                mem / total_mem
            } else {
                0.0
            };
            c.max(m)
        };
        let mut heap: BinaryHeap<Reverse<(Share, usize)>> = frameworks
            .iter()
            .enumerate()
            .map(|(i, f)| Reverse((Share(share(f.cpus, f.mem)), i)))
            .collect();
        let mut grants = Vec::new();
        let mut skipped = Vec::new();
        // Start at a different agent each cycle so no agent is always first.
        let start = if agents.is_empty() {
            0
        } else {
            (self.cycles as usize) % agents.len()
        };
        for a in agents[start..].iter().chain(agents[..start].iter()) {
            let mut winner = None;
            while let Some(Reverse((s, i))) = heap.pop() {
                if self.is_filtered(&frameworks[i].id, a, now) {
                    skipped.push(Reverse((s, i)));
                } else {
                    winner = Some(i);
                    break;
                }
            }
            heap.extend(skipped.drain(..));
            if let Some(i) = winner {
                let f = &mut frameworks[i];
                f.cpus += a.cpus;
                f.mem += a.mem;
                heap.push(Reverse((Share(share(f.cpus, f.mem)), i)));
                grants.push(Grant {
                    framework: i,
                    agent: a.index,
                });
            }
        }
        grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fw(id: &str) -> FrameworkView {
        FrameworkView {
            id: id.into(),
            role: "*".into(),
            cpus: 0.0,
            mem: 0.0,
        }
    }

    fn agents(n: usize) -> Vec<AgentView> {
        (0..n)
            .map(|index| AgentView {
                index,
                cpus: 4.0,
                mem: 8192.0,
            })
            .collect()
    }

    #[test]
    fn agents_are_shared_fairly_between_frameworks() {
        let mut alloc = Allocator::default();
        let mut fws = vec![fw("a"), fw("b")];
        let grants = alloc.allocate(&agents(10), &mut fws, (40.0, 81920.0), Instant::now());
        assert_eq!(grants.len(), 10);
        let to_a = grants.iter().filter(|g| g.framework == 0).count();
        assert_eq!(to_a, 5);
    }

    #[test]
    fn a_filtered_agent_goes_to_another_framework_or_nobody() {
        let now = Instant::now();
        let mut alloc = Allocator::default();
        alloc.add_filter("a", 0, (4.0, 8192.0), Duration::from_secs(5), now);
        let mut fws = vec![fw("a")];
        assert!(alloc
            .allocate(&agents(1), &mut fws, (4.0, 8192.0), now)
            .is_empty());
        let mut fws = vec![fw("a"), fw("b")];
        let grants = alloc.allocate(&agents(1), &mut fws, (4.0, 8192.0), now);
        assert_eq!(
            grants,
            [Grant {
                framework: 1,
                agent: 0
            }]
        );
        let later = now + Duration::from_secs(6);
        let mut fws = vec![fw("a")];
        assert_eq!(
            alloc
                .allocate(&agents(1), &mut fws, (4.0, 8192.0), later)
                .len(),
            1
        );
        alloc.add_filter("a", 0, (4.0, 8192.0), Duration::from_secs(5), later);
        alloc.clear_filters("a");
        assert!(!alloc.is_filtered("a", &agents(1)[0], later));
    }

    #[test]
    fn a_filter_holds_back_only_offers_it_contains() {
        let now = Instant::now();
        let mut alloc = Allocator::default();
        // Declined what was free then: 1 cpu and 1024 MiB.
        alloc.add_filter("a", 0, (1.0, 1024.0), Duration::from_secs(5), now);
        let same = AgentView {
            index: 0,
            cpus: 1.0,
            mem: 1024.0,
        };
        let less = AgentView {
            index: 0,
            cpus: 0.5,
            mem: 1024.0,
        };
        let more = AgentView {
            index: 0,
            cpus: 2.0,
            mem: 1024.0,
        };
        assert!(alloc.is_filtered("a", &same, now));
        assert!(alloc.is_filtered("a", &less, now));
        // A task ended and freed a cpu: Mesos offers the agent again.
        assert!(!alloc.is_filtered("a", &more, now));
        assert!(!alloc.is_filtered("a", &same, now + Duration::from_secs(6)));
    }

    #[test]
    fn refuse_seconds_follow_mesos_rules() {
        use drover_proto::v1::Filters;
        let f = |s: f64| Filters {
            refuse_seconds: Some(s),
        };
        assert_eq!(refuse_duration(None), DEFAULT_REFUSE);
        assert_eq!(refuse_duration(Some(&f(-1.0))), DEFAULT_REFUSE);
        assert_eq!(refuse_duration(Some(&f(0.0))), Duration::ZERO);
        assert_eq!(refuse_duration(Some(&f(1e12))), MAX_REFUSE);
        assert_eq!(
            refuse_duration(Some(&Filters {
                refuse_seconds: None
            })),
            DEFAULT_REFUSE
        );
    }

    #[test]
    fn ten_thousand_agents_are_all_offered_in_one_cycle() {
        let mut alloc = Allocator::default();
        let mut fws: Vec<FrameworkView> = (0..50).map(|i| fw(&format!("f{i}"))).collect();
        let grants = alloc.allocate(
            &agents(10_000),
            &mut fws,
            (40_000.0, 81_920_000.0),
            Instant::now(),
        );
        assert_eq!(grants.len(), 10_000);
    }
}
