//! Runs the chain for every pending task over the round's host views:
//! walk the hosts in the task's seeded order, filter, score the first
//! `limit` feasible ones ([`super::sample`]), pick the best, then shrink
//! that host's view (resources, ports, pods) and the round's zone tally so
//! the next task sees what is left (many tasks per offer, many offers per
//! round). A task no host accepts is a result, with every rejection
//! counted, not an error: only then are the reasons rendered, in a second
//! pass over every host.

use super::chain::Chain;
use super::filter::Rejection;
use super::host_view::{HostView, PodOnHost};
use super::preference::rank_key;
use super::round::Round;
use super::sample::Walk;
use crate::model::demand::TaskDemand;
use crate::model::resources::Resources;
use crate::model::spec::PlacementStrategy;
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};

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
/// give the same placement: each task's walk is seeded by
/// `chain.config.seed` and its key, and ties go to the host walked first.
pub fn place(tasks: &[TaskDemand], hosts: Vec<HostView>, round: Round, chain: &Chain) -> Placement {
    let mut placer = Placer::new(tasks, hosts, round, chain);
    placer.place(tasks.len());
    placer.finish()
}

/// A round placed a few tasks at a time, with the same result as
/// [`place`]: the caller can act on the hosts no task still to come can
/// use ([`Placer::is_closed`]) while the rest of the round is placed (the
/// runner launches them, so a large round's first tasks start before its
/// last are placed).
///
/// It holds its tasks and chain as the caller has them: borrowed for a
/// round placed at once, owned (`Vec`, `Arc`) by a round that outlives the
/// call that started it.
pub struct Placer<T: Borrow<[TaskDemand]>, C: Borrow<Chain>> {
    tasks: T,
    chain: C,
    hosts: Vec<HostView>,
    round: Round,
    /// The next task to place.
    next: usize,
    assignments: Vec<Assignment>,
    unplaced: Vec<Unplaced>,
    /// The last task that found no host, and how many assignments had
    /// been made then. Until another is made, hosts and round are
    /// unchanged, so a task with the same needs misses for the same
    /// reasons (Nomad's coalesced failures): a full cluster costs one scan
    /// per job, not one per task.
    last_miss: Option<(usize, usize)>,
    /// Where the previous task landed: a bin-packing task looks there too.
    last_host: Option<usize>,
    /// Host index by agent id, built when a task names the agent it would
    /// rather run on (`previous_agent`), else empty.
    by_agent: HashMap<String, usize>,
    /// `least[i]`: the least of each resource any task from `i` on asks
    /// for (`least[tasks.len()]` asks for infinitely much). None when the
    /// chain does not filter on resources: hosts then close only at the end.
    least: Option<Vec<Resources>>,
}

impl<T: Borrow<[TaskDemand]>, C: Borrow<Chain>> Placer<T, C> {
    /// A round of `tasks` (in priority order) over `hosts`.
    pub fn new(tasks: T, hosts: Vec<HostView>, mut round: Round, chain: C) -> Self {
        let list: &[TaskDemand] = tasks.borrow();
        // Only zone balance reads the zone list, and noting every host's zone
        // is a pass over all of them: skip it when no task balances.
        if list
            .iter()
            .any(|t| t.placement.zone_balance || t.preferences().zone_balance)
        {
            for host in &hosts {
                if let Some(zone) = host.zone() {
                    round.note_zone(zone);
                }
            }
        }
        let filters_resources = chain
            .borrow()
            .filters
            .iter()
            .any(|f| f.name() == "resources");
        let least = filters_resources.then(|| {
            let infinite = Resources {
                cpus: f64::INFINITY,
                mem_mib: f64::INFINITY,
                disk_mib: f64::INFINITY,
                gpus: f64::INFINITY,
            };
            let mut least = vec![infinite; list.len() + 1];
            for (i, task) in list.iter().enumerate().rev() {
                let (r, after) = (task.resources, least[i + 1]);
                least[i] = Resources {
                    cpus: r.cpus.min(after.cpus),
                    mem_mib: r.mem_mib.min(after.mem_mib),
                    disk_mib: r.disk_mib.min(after.disk_mib),
                    gpus: r.gpus.min(after.gpus),
                };
            }
            least
        });
        let by_agent = if list.iter().any(|t| t.previous_agent.is_some()) {
            hosts
                .iter()
                .enumerate()
                .map(|(i, h)| (h.agent_id.clone(), i))
                .collect()
        } else {
            HashMap::new()
        };
        Placer {
            tasks,
            chain,
            hosts,
            round,
            next: 0,
            assignments: Vec::new(),
            unplaced: Vec::new(),
            last_miss: None,
            last_host: None,
            by_agent,
            least,
        }
    }

    /// Places up to `n` more tasks; returns the assignments they made.
    pub fn place(&mut self, n: usize) -> &[Assignment] {
        let made_before = self.assignments.len();
        let end = self.tasks.borrow().len().min(self.next.saturating_add(n));
        for i in self.next..end {
            self.place_one(i);
        }
        self.next = end;
        &self.assignments[made_before..]
    }

    fn place_one(&mut self, i: usize) {
        let task = &self.tasks.borrow()[i];
        if let Some((missed, made)) = self.last_miss {
            if made == self.assignments.len() && same_needs(&self.tasks.borrow()[missed], task) {
                let previous = self
                    .unplaced
                    .last()
                    .expect("a miss was recorded with last_miss");
                let miss = Unplaced {
                    key: task.key,
                    ..previous.clone()
                };
                self.unplaced.push(miss);
                return;
            }
        }
        // Best effort, as Peloton's `in_place`: the previous host if it
        // takes the task at all, before any other is looked at.
        let previous = task
            .previous_agent
            .as_ref()
            .and_then(|agent| self.by_agent.get(agent).copied())
            .filter(|&i| {
                let host = &self.hosts[i];
                let chain = self.chain.borrow();
                chain
                    .filters
                    .iter()
                    .all(|f| f.admits(task, host, &self.round))
            });
        let picked = previous.or_else(|| {
            pick(
                task,
                &self.hosts,
                &self.round,
                self.chain.borrow(),
                self.last_host,
            )
        });
        match picked {
            Some(index) => {
                self.last_host = Some(index);
                let ports = assign(task, &mut self.hosts[index], &mut self.round);
                self.assignments.push(Assignment {
                    key: task.key,
                    host: index,
                    ports,
                });
            }
            None => {
                self.unplaced
                    .push(explain(task, &self.hosts, &self.round, self.chain.borrow()));
                self.last_miss = Some((i, self.assignments.len()));
            }
        }
    }

    /// How many tasks have been given a host so far.
    pub fn placed(&self) -> usize {
        self.assignments.len()
    }

    /// Whether every task has been placed (or found no host).
    pub fn is_done(&self) -> bool {
        self.next == self.tasks.borrow().len()
    }

    /// Whether no task still to be placed can land on `host`: what is left
    /// of it is short of the least some resource any of them asks for (so
    /// the resources filter rejects it for each). What it got is final.
    pub fn is_closed(&self, host: usize) -> bool {
        if self.is_done() {
            return true;
        }
        let (Some(least), Some(view)) = (&self.least, self.hosts.get(host)) else {
            return false;
        };
        view.available.short_of(&least[self.next]).is_some()
    }

    /// The round's outcome.
    pub fn finish(self) -> Placement {
        Placement {
            assignments: self.assignments,
            unplaced: self.unplaced,
            hosts: self.hosts,
            round: self.round,
        }
    }
}

/// The best of the first `limit` feasible hosts on the task's walk, or
/// None once the walk has visited every host and none was feasible.
///
/// A bin-packing task also weighs `last_host`, where the task before it
/// landed. Its own walk alone rarely meets a partly filled host among
/// thousands, so tasks would scatter one per host; with it, a wave fills
/// one host before the next, as packing means to. Consecutive runs then
/// share hosts, so a launch chunk (whole hosts) holds neighbouring runs,
/// and its intents and status updates touch a few neighbouring pages of
/// the store instead of pages all over the runs table. The hint counts as
/// one of the `limit` feasible hosts, and the walk skips it.
///
/// A task with preferences ranks hosts by their penalties first
/// ([`rank_key`]) and by score among equal penalties. It keeps walking
/// past `limit` feasible hosts while none it has scored meets every
/// preference, up to `prefer_limit`: a preferred host is worth a longer
/// look, but never an unbounded one.
fn pick(
    task: &TaskDemand,
    hosts: &[HostView],
    round: &Round,
    chain: &Chain,
    last_host: Option<usize>,
) -> Option<usize> {
    let limit = chain.config.limit.max(1);
    // Ranking costs a call per preference per host: only for tasks that
    // prefer something.
    let ranked = !chain.preferences.is_empty() && task.has_preferences();
    let prefer_limit = if ranked {
        chain.config.prefer_limit.max(limit)
    } else {
        limit
    };
    // (host, rank key, score); a lower key wins, then a higher score.
    let mut best: Option<(usize, u64, f64)> = None;
    let mut feasible = 0;
    let hint = last_host.filter(|_| task.strategy == PlacementStrategy::BinPack);
    let walk = Walk::new(hosts.len(), chain.config.seed, task.key).filter(|i| Some(*i) != hint);
    for index in hint.into_iter().chain(walk) {
        let host = &hosts[index];
        if !chain.filters.iter().all(|f| f.admits(task, host, round)) {
            continue;
        }
        let key = if ranked {
            rank_key(&chain.preferences, task, host, round)
        } else {
            0
        };
        feasible += 1;
        // A host further from what the task prefers loses whatever its
        // score: skip scoring it.
        if best.is_none_or(|(_, k, _)| key <= k) {
            let score = weighted_score(chain, task, host);
            if best.is_none_or(|(_, k, s)| key < k || score > s) {
                best = Some((index, key, score));
            }
        }
        let all_met = best.is_some_and(|(_, k, _)| k == 0);
        if feasible >= limit && (all_met || feasible >= prefer_limit) {
            break;
        }
    }
    best.map(|(index, _, _)| index)
}

/// Why no host takes `task`: the first failing filter of every host, with
/// its reason, counted.
fn explain(task: &TaskDemand, hosts: &[HostView], round: &Round, chain: &Chain) -> Unplaced {
    let mut rejections: BTreeMap<Rejection, usize> = BTreeMap::new();
    for host in hosts {
        let rejected = chain
            .filters
            .iter()
            .find_map(|f| f.check(task, host, round).err());
        // `pick` found every host infeasible; a filter whose `admits` and
        // `check` disagree is a bug.
        debug_assert!(rejected.is_some(), "admits and check disagree");
        if let Some(rejection) = rejected {
            *rejections.entry(rejection).or_default() += 1;
        }
    }
    Unplaced {
        key: task.key,
        hosts_evaluated: hosts.len(),
        rejections,
    }
}

/// Whether `a` and `b` ask the same of a host. Labels are left out: they
/// are what later tasks' POD constraints count, not what this one needs.
fn same_needs(a: &TaskDemand, b: &TaskDemand) -> bool {
    a.job == b.job
        && a.resources == b.resources
        && a.ports == b.ports
        && a.constraint == b.constraint
        && a.soft_constraint == b.soft_constraint
        && a.placement == b.placement
        && a.strategy == b.strategy
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
mod soft_tests;
#[cfg(test)]
mod tests;
