//! Which running pods to preempt so that pools below their entitlement
//! ([`super::fair_share`]) get it: pure, over each pool's standing, the
//! live runs that may be taken and what the waiting pools need.
//!
//! Rules:
//! - Only pools holding more than their entitlement give pods up, and only
//!   pods whose job is `preemptible`; a pool that itself waits for its
//!   entitlement gives nothing.
//! - Lowest `sla.priority` first, then the most recently started (the
//!   least work lost), then by task id so the choice is stable.
//! - Each job loses no more than its disruption budget allows now
//!   ([`super::disruption_budget::allowance`], asked by the caller).
//! - No more than `max_victims` at once (the rate limit, counted by the
//!   caller over a minute).
//! - Within a pool with no room (at its entitlement or limit, nothing
//!   free), its first waiting pod preempts preemptible pods of its own
//!   pool of lower `sla.priority` ([`select_for_priority`]): the pool
//!   holds what it held, so no other pool's share changes, and a victim,
//!   of lower priority, can never preempt its preemptor back.
//! - Never loops: a victim is taken only while its pool is above its
//!   entitlement in a kind the victim holds, so once it is gone its pool
//!   is short by less than the victim's own size: the victim, pending
//!   again, fits nowhere in its pool's entitlement and cannot preempt
//!   back. And the need is counted only from pending pods that fit whole
//!   within their own pool's entitlement, so a preemptor never lands its
//!   pool above it.

use crate::model::pool::{PoolId, ResourceKind};
use crate::model::resources::{Resources, EPSILON};
use crate::model::time::UnixMillis;
use drover_proto::v1::task_status::Reason;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

/// The reason recorded on a preempted run (Mesos' own for a container
/// preempted by its scheduler).
pub const PREEMPTED_REASON: Reason = Reason::ContainerPreempted;

/// A pool as preemption sees it.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Standing {
    /// What it may hold now ([`super::fair_share::entitlements`]).
    pub entitlement: Resources,
    /// What its live runs hold now.
    pub allocation: Resources,
    /// Its limit (infinite where none).
    pub limit: Resources,
}

impl Standing {
    /// What it may still take within its entitlement and its limit.
    pub fn room(&self) -> Resources {
        let mut room = Resources::default();
        for kind in ResourceKind::ALL {
            let bound = kind.of(&self.entitlement).min(kind.of(&self.limit));
            kind.set(&mut room, (bound - kind.of(&self.allocation)).max(0.0));
        }
        room
    }

    /// Whether it holds more than its entitlement of `kind`.
    pub fn is_above(&self, kind: ResourceKind) -> bool {
        kind.of(&self.allocation) > kind.of(&self.entitlement) + EPSILON
    }
}

/// What a pool's pending pods (in the pool's order) take within its room:
/// the pods that fit whole, taken in order until one does not (a
/// higher-priority pod is not passed over for a smaller one).
pub fn fitting_demand(standing: &Standing, pending_in_order: &[Resources]) -> Resources {
    let room = standing.room();
    let mut taken = Resources::default();
    for demand in pending_in_order {
        let next = taken.plus(demand);
        if !room.contains(&next) {
            break;
        }
        taken = next;
    }
    taken
}

/// A live run that could be preempted.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate<K, J> {
    /// The run (a task id).
    pub key: K,
    /// Its job.
    pub job: J,
    /// Its pool.
    pub pool: PoolId,
    /// Its job's `sla.priority`.
    pub priority: u32,
    /// Its job's `sla.preemptible`.
    pub preemptible: bool,
    /// What it holds.
    pub demand: Resources,
    /// When it was launched.
    pub started_at: UnixMillis,
}

/// What the selection is given.
#[derive(Debug)]
pub struct Ask<'a, K, J> {
    /// What the waiting pools need beyond what is free (per kind; nothing
    /// to do where none is positive).
    pub need: Resources,
    /// Every pool's standing.
    pub standings: &'a BTreeMap<PoolId, Standing>,
    /// Pools waiting for their entitlement (they give nothing up).
    pub waiting: &'a [PoolId],
    /// The runs that could be taken.
    pub candidates: Vec<Candidate<K, J>>,
    /// How many of each job's instances may be disrupted now.
    pub allowance: &'a HashMap<J, u32>,
    /// Most victims now (the rate limit).
    pub max_victims: usize,
}

/// A run chosen, with why (for the logs and the pod's events).
#[derive(Debug, Clone, PartialEq)]
pub struct Victim<K> {
    /// The run.
    pub key: K,
    /// Why it was chosen.
    pub why: Why,
}

/// Why a run is preempted, in numbers; [`Why::describe`] says it in words.
#[derive(Debug, Clone, PartialEq)]
pub enum Why {
    /// A waiting pool (`needy`, where one is short of `kind`) is below its
    /// entitlement, while the run's `pool` holds more than its own.
    PoolShare {
        /// The pool that needed room.
        needy: Option<Short>,
        /// The run's pool.
        pool: PoolId,
        /// What it holds and may hold, of `kind`.
        held: f64,
        entitled: f64,
        /// The kind that chose the run.
        kind: ResourceKind,
    },
    /// A higher-priority pod of the run's own pool had no room.
    Priority {
        /// That pod.
        pod: String,
        /// Its priority.
        pod_priority: u32,
        /// The pool.
        pool: PoolId,
        /// The run's priority.
        priority: u32,
    },
}

/// A pool below its entitlement of a kind, and by how much.
#[derive(Debug, Clone, PartialEq)]
pub struct Short {
    /// The pool.
    pub pool: PoolId,
    /// What it holds.
    pub held: f64,
    /// What it may hold.
    pub entitled: f64,
}

impl Why {
    /// In words, for the pod's events: which pool or pod needed room.
    /// `path` names a pool (its path where the caller knows it).
    pub fn describe(&self, path: impl Fn(&PoolId) -> String) -> String {
        match self {
            Why::PoolShare {
                needy,
                pool,
                held,
                entitled,
                kind,
            } => {
                let kind = kind.name();
                let over = format!(
                    "pool {} holds {} {kind}, above its entitlement of {}",
                    path(pool),
                    amount(*held),
                    amount(*entitled)
                );
                match needy {
                    Some(short) => format!(
                        "preempted: pool {} below its entitlement of {} {kind} (holds {}); {over}",
                        path(&short.pool),
                        amount(short.entitled),
                        amount(short.held)
                    ),
                    None => format!("preempted: {over}"),
                }
            }
            Why::Priority {
                pod,
                pod_priority,
                pool,
                priority,
            } => format!(
                "preempted: pool {} at its limit, for higher-priority pod {pod} (priority \
                 {pod_priority}; this one {priority})",
                path(pool)
            ),
        }
    }
}

/// An amount as a reason shows it: at most 3 decimals, none when whole.
fn amount(value: f64) -> String {
    let shown = format!("{value:.3}");
    shown.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The runs to preempt, in the order chosen.
pub fn select<K: Ord + Clone, J: Eq + Hash + Clone>(ask: Ask<'_, K, J>) -> Vec<Victim<K>> {
    let Ask {
        mut need,
        standings,
        waiting,
        mut candidates,
        allowance,
        max_victims,
    } = ask;
    let original = standings;
    let mut standings = standings.clone();
    let mut budget: HashMap<J, u32> = allowance.clone();
    candidates.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.started_at.cmp(&a.started_at))
            .then(a.key.cmp(&b.key))
    });
    let mut victims = Vec::new();
    for c in candidates {
        if victims.len() >= max_victims || !is_positive(&need) {
            break;
        }
        if !c.preemptible || waiting.contains(&c.pool) {
            continue;
        }
        let Some(standing) = standings.get_mut(&c.pool) else {
            continue;
        };
        // A kind still needed, held by the victim, of which its pool holds
        // more than its entitlement.
        let Some(kind) = ResourceKind::ALL
            .into_iter()
            .find(|&k| k.of(&need) > EPSILON && k.of(&c.demand) > EPSILON && standing.is_above(k))
        else {
            continue;
        };
        let left = budget.get(&c.job).copied().unwrap_or(0);
        if left == 0 {
            continue;
        }
        budget.insert(c.job.clone(), left - 1);
        // The waiting pool named is the first short of `kind`.
        let needy = waiting.iter().find_map(|w| {
            let s = original.get(w)?;
            let (held, entitled) = (kind.of(&s.allocation), kind.of(&s.entitlement));
            (held + EPSILON < entitled).then(|| Short {
                pool: w.clone(),
                held,
                entitled,
            })
        });
        let why = Why::PoolShare {
            needy,
            pool: c.pool.clone(),
            held: kind.of(&standing.allocation),
            entitled: kind.of(&standing.entitlement),
            kind,
        };
        standing.allocation = standing.allocation.minus(&c.demand);
        need = need.minus(&c.demand);
        victims.push(Victim { key: c.key, why });
    }
    victims
}

/// A pool's first waiting pod, which its pool has no room for.
#[derive(Debug, Clone, PartialEq)]
pub struct Blocked {
    /// The pod (its name, for the victims' events).
    pub pod: String,
    /// Its pool.
    pub pool: PoolId,
    /// Its job's `sla.priority`.
    pub priority: u32,
    /// What it needs.
    pub demand: Resources,
}

/// The runs to preempt so that each `blocked` pod (one per pool) fits in
/// place of preemptible runs of its own pool of lower priority: lowest
/// priority first, newest first; none for a pod that all such runs
/// together would not make room for (killing them would help nobody).
/// `allowance` and `max_victims` bound them as in [`select`].
pub fn select_for_priority<K: Ord + Clone, J: Eq + Hash + Clone>(
    blocked: &[Blocked],
    mut candidates: Vec<Candidate<K, J>>,
    allowance: &HashMap<J, u32>,
    max_victims: usize,
) -> Vec<Victim<K>> {
    let mut budget: HashMap<J, u32> = allowance.clone();
    candidates.sort_by(|a, b| {
        a.priority
            .cmp(&b.priority)
            .then(b.started_at.cmp(&a.started_at))
            .then(a.key.cmp(&b.key))
    });
    let mut taken = vec![false; candidates.len()];
    let mut victims = Vec::new();
    for pod in blocked {
        let mut freed = Resources::default();
        let mut chosen = Vec::new();
        let mut spent: HashMap<J, u32> = HashMap::new();
        for (i, c) in candidates.iter().enumerate() {
            if freed.contains(&pod.demand) || victims.len() + chosen.len() >= max_victims {
                break;
            }
            let left = budget
                .get(&c.job)
                .copied()
                .unwrap_or(0)
                .saturating_sub(spent.get(&c.job).copied().unwrap_or(0));
            if taken[i]
                || !c.preemptible
                || c.pool != pod.pool
                || c.priority >= pod.priority
                || left == 0
            {
                continue;
            }
            *spent.entry(c.job.clone()).or_insert(0) += 1;
            freed = freed.plus(&c.demand);
            chosen.push(i);
        }
        if !freed.contains(&pod.demand) {
            continue;
        }
        for (job, n) in spent {
            if let Some(left) = budget.get_mut(&job) {
                *left -= n;
            }
        }
        for i in chosen {
            taken[i] = true;
            let c = &candidates[i];
            victims.push(Victim {
                key: c.key.clone(),
                why: Why::Priority {
                    pod: pod.pod.clone(),
                    pod_priority: pod.priority,
                    pool: pod.pool.clone(),
                    priority: c.priority,
                },
            });
        }
    }
    victims
}

fn is_positive(r: &Resources) -> bool {
    ResourceKind::ALL.into_iter().any(|k| k.of(r) > EPSILON)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn cpus(n: f64) -> Resources {
        Resources {
            cpus: n,
            ..Resources::default()
        }
    }

    fn standing(entitlement: f64, allocation: f64) -> Standing {
        Standing {
            entitlement: cpus(entitlement),
            allocation: cpus(allocation),
            limit: cpus(f64::INFINITY),
        }
    }

    fn run(
        key: &'static str,
        pool: &str,
        priority: u32,
        preemptible: bool,
        size: f64,
        started_at: i64,
    ) -> Candidate<&'static str, &'static str> {
        Candidate {
            key,
            // One job per run unless a test shares them.
            job: key,
            pool: PoolId(pool.into()),
            priority,
            preemptible,
            demand: cpus(size),
            started_at,
        }
    }

    fn keys(victims: &[Victim<&'static str>]) -> Vec<&'static str> {
        victims.iter().map(|v| v.key).collect()
    }

    struct Case {
        name: &'static str,
        need: f64,
        /// (pool, entitlement, allocation)
        pools: Vec<(&'static str, f64, f64)>,
        waiting: Vec<&'static str>,
        candidates: Vec<Candidate<&'static str, &'static str>>,
        /// (job, allowance); jobs not listed may lose any number.
        budgets: Vec<(&'static str, u32)>,
        max_victims: usize,
        want: Vec<&'static str>,
    }

    #[test]
    fn victims_are_chosen_by_the_rules() {
        let cases = vec![
            Case {
                name: "lowest priority first, then the newest",
                need: 4.0,
                pools: vec![("batch", 10.0, 20.0), ("svc", 30.0, 20.0)],
                waiting: vec!["svc"],
                candidates: vec![
                    run("hi", "batch", 5, true, 2.0, 1),
                    run("lo-old", "batch", 0, true, 2.0, 1),
                    run("lo-new", "batch", 0, true, 2.0, 9),
                ],
                budgets: vec![],
                max_victims: 10,
                want: vec!["lo-new", "lo-old"],
            },
            Case {
                name: "only preemptible runs of pools above their entitlement",
                need: 10.0,
                pools: vec![
                    ("batch", 10.0, 20.0),
                    ("fair", 10.0, 10.0),
                    ("svc", 30.0, 20.0),
                ],
                waiting: vec!["svc"],
                candidates: vec![
                    run("pinned", "batch", 0, false, 2.0, 1),
                    run("fair-run", "fair", 0, true, 2.0, 1),
                    run("own", "svc", 0, true, 2.0, 1),
                    run("taken", "batch", 1, true, 2.0, 1),
                ],
                budgets: vec![],
                max_victims: 10,
                want: vec!["taken"],
            },
            Case {
                name: "a pool gives up no more than its excess (no loop back)",
                need: 10.0,
                pools: vec![("batch", 10.0, 13.0), ("svc", 30.0, 20.0)],
                waiting: vec!["svc"],
                candidates: vec![
                    run("a", "batch", 0, true, 3.0, 3),
                    run("b", "batch", 0, true, 3.0, 2),
                    run("c", "batch", 0, true, 3.0, 1),
                ],
                budgets: vec![],
                max_victims: 10,
                // After "a" the pool holds 10, its entitlement: no more.
                want: vec!["a"],
            },
            Case {
                name: "the disruption budget and the rate bound the victims",
                need: 10.0,
                pools: vec![("batch", 0.0, 20.0), ("svc", 30.0, 0.0)],
                waiting: vec!["svc"],
                candidates: vec![
                    Candidate {
                        job: "shared",
                        ..run("s1", "batch", 0, true, 1.0, 5)
                    },
                    Candidate {
                        job: "shared",
                        ..run("s2", "batch", 0, true, 1.0, 4)
                    },
                    run("x", "batch", 0, true, 1.0, 3),
                    run("y", "batch", 0, true, 1.0, 2),
                    run("z", "batch", 0, true, 1.0, 1),
                ],
                budgets: vec![("shared", 1)],
                max_victims: 3,
                want: vec!["s1", "x", "y"],
            },
            Case {
                name: "nothing needed, nothing taken",
                need: 0.0,
                pools: vec![("batch", 0.0, 20.0)],
                waiting: vec![],
                candidates: vec![run("a", "batch", 0, true, 1.0, 1)],
                budgets: vec![],
                max_victims: 10,
                want: vec![],
            },
        ];
        for case in cases {
            let standings: BTreeMap<PoolId, Standing> = case
                .pools
                .iter()
                .map(|(id, e, a)| (PoolId((*id).into()), standing(*e, *a)))
                .collect();
            let waiting: Vec<PoolId> = case.waiting.iter().map(|p| PoolId((*p).into())).collect();
            let mut allowance: HashMap<&'static str, u32> =
                case.candidates.iter().map(|c| (c.job, u32::MAX)).collect();
            allowance.extend(case.budgets.iter().copied());
            let victims = select(Ask {
                need: cpus(case.need),
                standings: &standings,
                waiting: &waiting,
                candidates: case.candidates,
                allowance: &allowance,
                max_victims: case.max_victims,
            });
            assert_eq!(keys(&victims), case.want, "{}", case.name);
        }
    }

    #[test]
    fn a_pod_with_no_room_preempts_lower_priority_pods_of_its_own_pool_only() {
        let blocked = [Blocked {
            pod: "hi-0".into(),
            pool: PoolId("svc".into()),
            priority: 5,
            demand: cpus(2.0),
        }];
        let candidates = vec![
            run("other-pool", "batch", 0, true, 4.0, 9),
            run("same-prio", "svc", 5, true, 4.0, 9),
            run("pinned", "svc", 0, false, 4.0, 9),
            run("low-old", "svc", 1, true, 1.0, 1),
            run("low-new", "svc", 1, true, 1.0, 2),
            run("lowest", "svc", 0, true, 1.0, 1),
        ];
        let all: HashMap<&'static str, u32> = candidates.iter().map(|c| (c.job, 1)).collect();
        let victims = select_for_priority(&blocked, candidates.clone(), &all, 10);
        assert_eq!(keys(&victims), ["lowest", "low-new"]);
        assert_eq!(
            victims[0].why.describe(|p| format!("/{p}")),
            "preempted: pool /svc at its limit, for higher-priority pod hi-0 (priority 5; this \
             one 0)"
        );
        // Not enough to make room: nobody is killed for nothing.
        assert!(select_for_priority(&blocked, candidates.clone(), &all, 1).is_empty());
        let big = [Blocked {
            demand: cpus(10.0),
            ..blocked[0].clone()
        }];
        assert!(select_for_priority(&big, candidates, &all, 10).is_empty());
    }

    #[test]
    fn the_reason_names_the_pool_that_needed_room_and_the_one_above() {
        let standings = [
            (PoolId("batch".into()), standing(10.0, 12.0)),
            (PoolId("prod".into()), standing(8.0, 2.5)),
        ]
        .into();
        let allowance = [("a", 1)].into();
        let ask = |waiting| Ask {
            need: cpus(1.0),
            standings: &standings,
            waiting,
            candidates: vec![run("a", "batch", 0, true, 2.0, 1)],
            allowance: &allowance,
            max_victims: 1,
        };
        let path = |p: &PoolId| format!("/{p}");
        let prod = [PoolId("prod".into())];
        let victims = select(ask(&prod));
        assert_eq!(
            victims[0].why.describe(path),
            "preempted: pool /prod below its entitlement of 8 cpu (holds 2.5); pool /batch \
             holds 12 cpu, above its entitlement of 10"
        );
        let victims = select(ask(&[]));
        assert_eq!(
            victims[0].why.describe(path),
            "preempted: pool /batch holds 12 cpu, above its entitlement of 10"
        );
    }

    #[test]
    fn pending_pods_count_only_while_they_fit_whole_in_order() {
        let s = Standing {
            entitlement: cpus(10.0),
            allocation: cpus(3.0),
            limit: cpus(8.0),
        };
        // Room is 5 (the limit): 2 + 2 fit, 4 does not, and the 1 behind it
        // is not taken ahead of it.
        let taken = fitting_demand(&s, &[cpus(2.0), cpus(2.0), cpus(4.0), cpus(1.0)]);
        assert_eq!(taken.cpus, 4.0);
    }
}
