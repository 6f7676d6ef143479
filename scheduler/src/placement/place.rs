//! Runs the chain for every pending task over the round's host views:
//! filter, score, pick the best, then shrink that host's view so the next
//! task sees what is left (many tasks per offer). A task no host accepts is
//! a result, with every rejection counted, not an error.

use super::chain::Chain;
use super::filter::Rejection;
use super::host_view::{HostView, Resources};
use std::collections::BTreeMap;

/// A task waiting for a host; `key` is the caller's handle for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDemand {
    /// The caller's index for the task.
    pub key: usize,
    /// What it needs (executor overhead included).
    pub resources: Resources,
}

/// Task `key` goes on `hosts[host]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The task.
    pub key: usize,
    /// Index into [`Placement::hosts`].
    pub host: usize,
}

/// A task no host accepted, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Unplaced {
    /// The task.
    pub key: usize,
    /// Rejections by filter and reason, with how many hosts gave each.
    pub rejections: BTreeMap<Rejection, usize>,
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
}

/// Places `tasks` (in priority order) on `hosts`. The same inputs always
/// give the same placement: ties go to the earlier host.
pub fn place(tasks: &[TaskDemand], mut hosts: Vec<HostView>, chain: &Chain) -> Placement {
    let mut assignments = Vec::new();
    let mut unplaced = Vec::new();
    for task in tasks {
        let mut rejections: BTreeMap<Rejection, usize> = BTreeMap::new();
        let mut best: Option<(usize, f64)> = None;
        for (index, host) in hosts.iter().enumerate() {
            if let Some(rejection) = chain.filters.iter().find_map(|f| f.check(task, host).err()) {
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
                let host = &mut hosts[index];
                host.available = host.available.minus(&task.resources);
                host.assigned += 1;
                assignments.push(Assignment {
                    key: task.key,
                    host: index,
                });
            }
            None => unplaced.push(Unplaced {
                key: task.key,
                rejections,
            }),
        }
    }
    Placement {
        assignments,
        unplaced,
        hosts,
    }
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
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::placement::default_chain;
    use proptest::prelude::*;

    fn res(cpus: f64, mem_mib: f64) -> Resources {
        Resources {
            cpus,
            mem_mib,
            disk_mib: 0.0,
        }
    }

    #[test]
    fn many_tasks_share_one_offer_until_it_is_full() {
        let hosts = vec![HostView::new("a1", "h1", "*", res(1.0, 1000.0))];
        let tasks: Vec<_> = (0..15)
            .map(|key| TaskDemand {
                key,
                resources: res(0.1, 10.0),
            })
            .collect();
        let p = place(&tasks, hosts, &default_chain());
        assert_eq!(p.assignments.len(), 10);
        assert_eq!(p.unplaced.len(), 5);
        let why = &p.unplaced[0].rejections;
        assert_eq!(why.keys().next().unwrap().reason, "not enough cpus");
    }

    #[test]
    fn spread_puts_tasks_on_the_emptier_host() {
        let hosts = vec![
            HostView::new("a1", "h1", "*", res(1.0, 100.0)),
            HostView::new("a2", "h2", "*", res(4.0, 400.0)),
        ];
        let tasks = [TaskDemand {
            key: 0,
            resources: res(0.5, 50.0),
        }];
        let p = place(&tasks, hosts, &default_chain());
        assert_eq!(p.assignments, vec![Assignment { key: 0, host: 1 }]);
    }

    proptest! {
        #[test]
        fn no_host_is_ever_overcommitted(
            caps in prop::collection::vec((0.0f64..8.0, 0.0f64..4096.0), 1..6),
            wants in prop::collection::vec((0.01f64..2.0, 1.0f64..1024.0), 0..60),
        ) {
            let hosts: Vec<_> = caps
                .iter()
                .enumerate()
                .map(|(i, (c, m))| HostView::new(&format!("a{i}"), "h", "*", res(*c, *m)))
                .collect();
            let tasks: Vec<_> = wants
                .iter()
                .enumerate()
                .map(|(key, (c, m))| TaskDemand { key, resources: res(*c, *m) })
                .collect();
            let p = place(&tasks, hosts.clone(), &default_chain());
            prop_assert_eq!(p.assignments.len() + p.unplaced.len(), tasks.len());
            for (i, host) in hosts.iter().enumerate() {
                let used = p
                    .assignments
                    .iter()
                    .filter(|a| a.host == i)
                    .fold(Resources::default(), |acc, a| acc.plus(&tasks[a.key].resources));
                prop_assert!(host.offered.contains(&used), "host {} over-committed: {:?}", i, used);
            }
        }
    }
}
