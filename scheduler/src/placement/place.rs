//! Runs the chain for every pending task over the round's host views:
//! filter, score, pick the best, then shrink that host's view (resources,
//! ports, pods) and the round's zone tally so the next task sees what is
//! left (many tasks per offer, many offers per round). A task no host
//! accepts is a result, with every rejection counted, not an error.

use super::chain::Chain;
use super::filter::Rejection;
use super::host_view::{HostView, PodOnHost, Resources};
use super::round::Round;
use crate::jobs::spec::{Constraint, PlacementSpec, PlacementStrategy, PortSpec};
use std::collections::BTreeMap;

/// A task waiting for a host; `key` is the caller's handle for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDemand {
    /// The caller's index for the task.
    pub key: usize,
    /// Its job (unique host, exclusive host, zone balance count per job).
    pub job: String,
    /// What it needs (executor overhead included).
    pub resources: Resources,
    /// Its ports (value 0 = dynamic).
    pub ports: Vec<PortSpec>,
    /// Its pod labels (what POD constraints of later tasks count).
    pub labels: Vec<(String, String)>,
    /// Its Peloton constraint.
    pub constraint: Option<Constraint>,
    /// Its Titus-style placement options.
    pub placement: PlacementSpec,
    /// How hosts are ranked for it.
    pub strategy: PlacementStrategy,
}

impl TaskDemand {
    /// A task of `job` needing `resources`, with no ports, labels or
    /// constraints, spread.
    pub fn new(key: usize, job: &str, resources: Resources) -> Self {
        TaskDemand {
            key,
            job: job.to_owned(),
            resources,
            ports: Vec::new(),
            labels: Vec::new(),
            constraint: None,
            placement: PlacementSpec::default(),
            strategy: PlacementStrategy::Spread,
        }
    }
}

/// Task `key` goes on `hosts[host]` with these ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The task.
    pub key: usize,
    /// Index into [`Placement::hosts`].
    pub host: usize,
    /// (port name, port), in the task's port order.
    pub ports: Vec<(String, u32)>,
}

/// A task no host accepted, and why (Nomad's AllocMetric).
#[derive(Debug, Clone, PartialEq)]
pub struct Unplaced {
    /// The task.
    pub key: usize,
    /// Hosts looked at.
    pub hosts_evaluated: usize,
    /// Rejections by filter and reason, with how many hosts gave each.
    pub rejections: BTreeMap<Rejection, usize>,
}

impl Unplaced {
    /// One line for the pod status: "no agent satisfies zone==c (3 agents)".
    pub fn summary(&self) -> String {
        if self.hosts_evaluated == 0 {
            return "no agent has offered resources yet".into();
        }
        let mut by_count: Vec<_> = self.rejections.iter().collect();
        by_count.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let parts: Vec<_> = by_count
            .iter()
            .map(|(r, n)| {
                let agents = if **n == 1 { "agent" } else { "agents" };
                format!("{} ({n} {agents})", r.reason)
            })
            .collect();
        format!("no agent satisfies {}", parts.join("; "))
    }

    /// Hosts rejected per filter.
    pub fn per_filter(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for (r, n) in &self.rejections {
            *out.entry(r.filter).or_default() += n;
        }
        out
    }
}

/// The outcome of one placement round.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    /// Where each placed task goes, in task order.
    pub assignments: Vec<Assignment>,
    /// Tasks that found no host.
    pub unplaced: Vec<Unplaced>,
    /// The host views after the round (what is left of each).
    pub hosts: Vec<HostView>,
    /// The round's tally after it.
    pub round: Round,
}

/// Places `tasks` (in priority order) on `hosts`. The same inputs always
/// give the same placement: ties go to the earlier host.
pub fn place(
    tasks: &[TaskDemand],
    mut hosts: Vec<HostView>,
    mut round: Round,
    chain: &Chain,
) -> Placement {
    for host in &hosts {
        if let Some(zone) = host.zone() {
            round.zones.insert(zone.to_owned());
        }
    }
    let mut assignments = Vec::new();
    let mut unplaced = Vec::new();
    for task in tasks {
        let mut rejections: BTreeMap<Rejection, usize> = BTreeMap::new();
        let mut best: Option<(usize, f64)> = None;
        for (index, host) in hosts.iter().enumerate() {
            let rejected = chain
                .filters
                .iter()
                .find_map(|f| f.check(task, host, &round).err());
            if let Some(rejection) = rejected {
                *rejections.entry(rejection).or_default() += 1;
                continue;
            }
            let score = weighted_score(chain, task, host);
            if best.is_none_or(|(_, s)| score > s) {
                best = Some((index, score));
            }
        }
        match best {
            Some((index, _)) => {
                let ports = assign(task, &mut hosts[index], &mut round);
                assignments.push(Assignment {
                    key: task.key,
                    host: index,
                    ports,
                });
            }
            None => unplaced.push(Unplaced {
                key: task.key,
                hosts_evaluated: hosts.len(),
                rejections,
            }),
        }
    }
    Placement {
        assignments,
        unplaced,
        hosts,
        round,
    }
}

/// Lands `task` on `host`: takes its resources and ports, adds it to the
/// host's pods and the zone tally. Returns its ports.
fn assign(task: &TaskDemand, host: &mut HostView, round: &mut Round) -> Vec<(String, u32)> {
    host.available = host.available.minus(&task.resources);
    host.assigned += 1;
    // Static ports first, so a dynamic one never takes a port a later
    // static one of the same task needs.
    for p in task.ports.iter().filter(|p| p.value != 0) {
        host.ports.take(p.value);
    }
    let ports = task
        .ports
        .iter()
        .map(|p| {
            let port = if p.value != 0 {
                p.value
            } else {
                // The ports filter checked there are enough.
                host.ports.take_lowest().unwrap_or(0)
            };
            (p.name.clone(), port)
        })
        .collect();
    host.pods.push(PodOnHost {
        job: task.job.clone(),
        labels: task.labels.clone(),
        exclusive: task.placement.exclusive_host,
    });
    if let Some(zone) = host.zone() {
        round.add(&task.job, zone);
    }
    ports
}

fn weighted_score(chain: &Chain, task: &TaskDemand, host: &HostView) -> f64 {
    let total: f64 = chain.scorers.iter().map(|(_, w)| w).sum();
    if total <= 0.0 {
        return 0.0;
    }
    chain
        .scorers
        .iter()
        .map(|(s, w)| s.score(task, host) * w)
        .sum::<f64>()
        / total
}

#[cfg(test)]
#[path = "place_tests.rs"]
mod tests;
