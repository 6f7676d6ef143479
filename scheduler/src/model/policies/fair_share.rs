//! Each pool's entitlement: how much of the cluster it may hold now, per
//! resource kind, given the pools' configurations, what each wants
//! (running + pending) and what the cluster has. Pure: the engine's
//! admission and preemption read it; nothing here knows runs or offers.
//!
//! Per kind, top-down from the root (whose entitlement is the capacity),
//! each pool's entitlement is divided among its children:
//! 1. Reservations first: a child gets its reservation, but an elastic
//!    reservation only as far as the child wants it (the rest is lent
//!    to its siblings, and taken back when it wants it again); a static
//!    one whole. Reservations larger than the parent's entitlement are
//!    scaled down in proportion.
//! 2. What is left is divided max-min fairly by `share`: every child not
//!    yet satisfied gets the same amount per unit of share, none more
//!    than it wants (its demand, capped by its `limit`), and what a
//!    satisfied child leaves goes round again to the others (water
//!    filling). A child with share 0 gets its reservation only.
//!
//! A subtree's demand is the sum of its leaves' (each capped by the limit
//! of every pool on its path). What nobody wants is left undivided: an
//! entitlement never exceeds a pool's capped demand (or its static
//! reservation).

use crate::model::pool::{PoolId, PoolTree, ReservationType, ResourceKind};
use crate::model::resources::Resources;
use std::collections::BTreeMap;

/// Below this an amount is nothing (Mesos keeps scalars to 3 decimals).
const TINY: f64 = 1e-9;

/// Each pool's entitlement (every pool of `tree`, the root included),
/// given the leaves' `demand` (running + pending; a pool not listed
/// wants nothing) and the cluster's `capacity`.
pub fn entitlements(
    tree: &PoolTree,
    demand: &BTreeMap<PoolId, Resources>,
    capacity: &Resources,
) -> BTreeMap<PoolId, Resources> {
    let capped = capped_demand(tree, demand);
    let mut out: BTreeMap<PoolId, Resources> = BTreeMap::new();
    let root = PoolId::root();
    out.insert(root.clone(), *capacity);
    let mut queue = vec![root];
    // Bounded by the number of pools (each is divided once); a broken
    // parent chain (a cycle) cannot loop since a visited pool is skipped.
    while let Some(parent) = queue.pop() {
        let total = out.get(&parent).copied().unwrap_or_default();
        let children: Vec<_> = tree
            .children(&parent)
            .filter(|c| !out.contains_key(&c.id))
            .collect();
        let mut shares: Vec<Resources> = vec![Resources::default(); children.len()];
        for kind in ResourceKind::ALL {
            let claims: Vec<Claim> = children
                .iter()
                .map(|c| {
                    let config = c.spec.resource(kind);
                    let wants = capped.get(&c.id).map_or(0.0, |d| kind.of(d));
                    let reserved = match config.reservation_type {
                        ReservationType::Elastic => config.reservation.min(wants),
                        ReservationType::Static => config.reservation,
                    };
                    Claim {
                        reserved: reserved.max(0.0),
                        wants: wants.max(0.0),
                        share: config.share.max(0.0),
                    }
                })
                .collect();
            for (i, amount) in divide(kind.of(&total), &claims).into_iter().enumerate() {
                kind.set(&mut shares[i], amount);
            }
        }
        for (child, share) in children.into_iter().zip(shares) {
            out.insert(child.id.clone(), share);
            queue.push(child.id.clone());
        }
    }
    out
}

/// Each pool's demand as the division sees it: a leaf's own, a parent's
/// the sum of its children's, each capped by the pool's limit.
pub fn capped_demand(
    tree: &PoolTree,
    demand: &BTreeMap<PoolId, Resources>,
) -> BTreeMap<PoolId, Resources> {
    fn walk(
        tree: &PoolTree,
        id: &PoolId,
        demand: &BTreeMap<PoolId, Resources>,
        out: &mut BTreeMap<PoolId, Resources>,
        depth: usize,
    ) -> Resources {
        let mut sum = Resources::default();
        // Deeper than there are pools: a cycle, counted once.
        if depth <= tree.iter().count() {
            for child in tree.children(id) {
                sum = sum.plus(&walk(tree, &child.id, demand, out, depth + 1));
            }
        }
        if tree.is_leaf(id) {
            sum = sum.plus(&demand.get(id).copied().unwrap_or_default());
        }
        if let Some(pool) = tree.get(id) {
            let limit = pool.spec.limit();
            for kind in ResourceKind::ALL {
                let capped = kind.of(&sum).min(kind.of(&limit));
                kind.set(&mut sum, capped);
            }
        }
        out.insert(id.clone(), sum);
        sum
    }
    let mut out = BTreeMap::new();
    walk(tree, &PoolId::root(), demand, &mut out, 0);
    out
}

/// One child's claim on its parent's amount of one kind.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claim {
    /// Its reservation counted now (elastic: up to what it wants).
    pub reserved: f64,
    /// What it wants (capped by its limit).
    pub wants: f64,
    /// Its weight for what is left over.
    pub share: f64,
}

/// Divides `total` among `claims`: reservations first (scaled down if
/// they exceed `total`), then water filling by share up to each claim's
/// want.
pub fn divide(total: f64, claims: &[Claim]) -> Vec<f64> {
    let total = total.max(0.0);
    let reserved: f64 = claims.iter().map(|c| c.reserved).sum();
    let scale = if reserved > total && reserved > 0.0 {
        total / reserved
    } else {
        1.0
    };
    let mut given: Vec<f64> = claims.iter().map(|c| c.reserved * scale).collect();
    let mut left = total - given.iter().sum::<f64>();
    // Each pass satisfies at least one claim or gives everything away, so
    // it ends within one pass per claim.
    for _ in 0..=claims.len() {
        if left <= TINY {
            break;
        }
        let hungry: Vec<usize> = (0..claims.len())
            .filter(|&i| claims[i].share > 0.0 && claims[i].wants - given[i] > TINY)
            .collect();
        let weight: f64 = hungry.iter().map(|&i| claims[i].share).sum();
        if hungry.is_empty() || weight <= 0.0 {
            break;
        }
        let per_share = left / weight;
        let mut handed = 0.0;
        for &i in &hungry {
            let room = claims[i].wants - given[i];
            let amount = (per_share * claims[i].share).min(room);
            given[i] += amount;
            handed += amount;
        }
        left -= handed;
    }
    given
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::pool::{Pool, PoolResource, PoolSpec, SchedulingPolicy};

    fn cpus(n: f64) -> Resources {
        Resources {
            cpus: n,
            ..Resources::default()
        }
    }

    /// A pool configuring cpus only: (reservation, limit, share).
    fn pool(id: &str, parent: &str, (reservation, limit, share): (f64, f64, f64)) -> Pool {
        pool_typed(
            id,
            parent,
            (reservation, limit, share),
            ReservationType::Elastic,
        )
    }

    fn pool_typed(
        id: &str,
        parent: &str,
        (reservation, limit, share): (f64, f64, f64),
        reservation_type: ReservationType,
    ) -> Pool {
        Pool {
            id: PoolId(id.into()),
            spec: PoolSpec {
                name: id.into(),
                owning_team: String::new(),
                ldap_groups: Vec::new(),
                description: String::new(),
                resources: vec![PoolResource {
                    kind: ResourceKind::Cpu,
                    reservation,
                    limit,
                    share,
                    reservation_type,
                }],
                parent: PoolId(parent.into()),
                policy: SchedulingPolicy::PriorityFifo,
                controller_limit_percent: None,
                slack_limit_percent: None,
            },
            version: 1,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    fn cpu_of(out: &BTreeMap<PoolId, Resources>, id: &str) -> f64 {
        (out.get(&PoolId(id.into())).unwrap().cpus * 1000.0).round() / 1000.0
    }

    const INF: f64 = f64::INFINITY;

    struct Case {
        name: &'static str,
        pools: Vec<Pool>,
        /// (pool, cpus wanted)
        demand: Vec<(&'static str, f64)>,
        capacity: f64,
        /// (pool, cpus entitled)
        want: Vec<(&'static str, f64)>,
    }

    #[test]
    fn entitlements_follow_reservation_then_max_min_share() {
        let three = || {
            vec![
                pool("batch", "root", (20.0, 60.0, 1.0)),
                pool("service", "root", (30.0, 100.0, 2.0)),
                pool("adhoc", "root", (0.0, 100.0, 1.0)),
            ]
        };
        let cases = vec![
            Case {
                name: "all three want more than the cluster: reservations, then 1:2:1",
                pools: three(),
                demand: vec![("batch", 500.0), ("service", 500.0), ("adhoc", 500.0)],
                capacity: 100.0,
                // 50 reserved; 50 left split 12.5 / 25 / 12.5.
                want: vec![("batch", 32.5), ("service", 55.0), ("adhoc", 12.5)],
            },
            Case {
                name: "an idle pool's elastic reservation is lent to the others",
                pools: three(),
                demand: vec![("batch", 500.0), ("adhoc", 500.0)],
                capacity: 100.0,
                // batch 20 reserved; 80 left 1:1, batch capped by its limit 60.
                want: vec![("batch", 60.0), ("service", 0.0), ("adhoc", 40.0)],
            },
            Case {
                name: "a pool wanting less than its fair share leaves the rest to others",
                pools: three(),
                demand: vec![("batch", 5.0), ("service", 500.0), ("adhoc", 500.0)],
                capacity: 100.0,
                // batch 5; service 30 reserved; 65 left 2:1.
                want: vec![("batch", 5.0), ("service", 73.333), ("adhoc", 21.667)],
            },
            Case {
                name: "nothing wanted, nothing given",
                pools: three(),
                demand: vec![],
                capacity: 100.0,
                want: vec![("batch", 0.0), ("service", 0.0), ("adhoc", 0.0)],
            },
            Case {
                name: "reservations above capacity are scaled down in proportion",
                pools: three(),
                demand: vec![("batch", 500.0), ("service", 500.0)],
                capacity: 25.0,
                want: vec![("batch", 10.0), ("service", 15.0), ("adhoc", 0.0)],
            },
            Case {
                name: "a limit caps a pool even with the cluster idle",
                pools: vec![pool("capped", "root", (0.0, 10.0, 1.0))],
                demand: vec![("capped", 50.0)],
                capacity: 100.0,
                want: vec![("capped", 10.0)],
            },
            Case {
                name: "share zero gets its reservation only",
                pools: vec![
                    pool("zero", "root", (5.0, INF, 0.0)),
                    pool("one", "root", (0.0, INF, 1.0)),
                ],
                demand: vec![("zero", 50.0), ("one", 50.0)],
                capacity: 30.0,
                want: vec![("zero", 5.0), ("one", 25.0)],
            },
            Case {
                name: "a parent's entitlement is divided among its children",
                pools: vec![
                    pool("org", "root", (0.0, 40.0, 1.0)),
                    pool("team-a", "org", (10.0, INF, 1.0)),
                    pool("team-b", "org", (0.0, INF, 1.0)),
                    pool("other", "root", (0.0, INF, 1.0)),
                ],
                demand: vec![("team-a", 100.0), ("team-b", 100.0), ("other", 100.0)],
                capacity: 100.0,
                // org capped at 40, other 60; inside org 10 + 15 / 15.
                want: vec![
                    ("org", 40.0),
                    ("other", 60.0),
                    ("team-a", 25.0),
                    ("team-b", 15.0),
                ],
            },
        ];
        for case in cases {
            let tree = PoolTree::from_pools(case.pools);
            let demand = case
                .demand
                .iter()
                .map(|(id, n)| (PoolId((*id).into()), cpus(*n)))
                .collect();
            let out = entitlements(&tree, &demand, &cpus(case.capacity));
            for (id, want) in case.want {
                assert_eq!(cpu_of(&out, id), want, "{}: pool {id}", case.name);
            }
            let leaves: f64 = tree
                .iter()
                .filter(|p| p.spec.parent == PoolId::root() && p.id != PoolId::root())
                .map(|p| out[&p.id].cpus)
                .sum();
            assert!(
                leaves <= case.capacity + 1e-6,
                "{}: entitlements {leaves} exceed capacity",
                case.name
            );
        }
    }

    #[test]
    fn a_static_reservation_is_kept_for_an_idle_pool() {
        let tree = PoolTree::from_pools(vec![
            pool_typed("kept", "root", (30.0, INF, 1.0), ReservationType::Static),
            pool("busy", "root", (0.0, INF, 1.0)),
        ]);
        let demand = [(PoolId("busy".into()), cpus(500.0))].into();
        let out = entitlements(&tree, &demand, &cpus(100.0));
        assert_eq!(cpu_of(&out, "kept"), 30.0);
        assert_eq!(cpu_of(&out, "busy"), 70.0);
    }

    #[test]
    fn kinds_are_divided_independently() {
        let tree = PoolTree::from_pools(vec![
            pool("a", "root", (0.0, INF, 1.0)),
            pool("b", "root", (0.0, INF, 1.0)),
        ]);
        let demand = [
            (
                PoolId("a".into()),
                Resources {
                    cpus: 100.0,
                    mem_mib: 10.0,
                    ..Resources::default()
                },
            ),
            (
                PoolId("b".into()),
                Resources {
                    cpus: 100.0,
                    mem_mib: 1000.0,
                    ..Resources::default()
                },
            ),
        ]
        .into();
        let capacity = Resources {
            cpus: 10.0,
            mem_mib: 100.0,
            ..Resources::default()
        };
        let out = entitlements(&tree, &demand, &capacity);
        let a = out[&PoolId("a".into())];
        let b = out[&PoolId("b".into())];
        assert_eq!((a.cpus, b.cpus), (5.0, 5.0));
        assert_eq!((a.mem_mib, b.mem_mib), (10.0, 90.0));
    }

    #[test]
    fn water_filling_never_gives_more_than_wanted_or_than_there_is() {
        let claims = [
            Claim {
                reserved: 0.0,
                wants: 1.0,
                share: 1.0,
            },
            Claim {
                reserved: 2.0,
                wants: 50.0,
                share: 3.0,
            },
            Claim {
                reserved: 0.0,
                wants: 50.0,
                share: 1.0,
            },
        ];
        let given = divide(21.0, &claims);
        assert_eq!(given[0], 1.0);
        // 2 reserved; 19 left: 1 to the first (all it wants), the other
        // 18 split 3:1 on top of the reservation.
        assert!((given[1] - (2.0 + 13.5)).abs() < 1e-9, "{given:?}");
        assert!((given[2] - 4.5).abs() < 1e-9, "{given:?}");
        assert!(divide(0.0, &claims).iter().all(|g| *g == 0.0));
    }
}
