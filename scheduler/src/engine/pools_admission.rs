//! Admission through the resource pools, before each placement round: of
//! the waiting runs (in SLA order, which is each pool's PRIORITY_FIFO:
//! `sla.priority`, then age), which go to placement and which wait, and
//! why. Pure over the pool tree, what the pools' live runs hold and what
//! the held offers have free; the engine calls it and records the reasons.
//!
//! Rules, for each run in order:
//! - its pool, or a pool above it, would go over its `limit` → it waits:
//!   "pool /batch at its limit of 200 cpus";
//! - when more than one pool has runs waiting, its pool would go over its
//!   entitlement ([`crate::model::policies::fair_share`]) → it waits:
//!   "waiting for pool share: ...";
//! - otherwise it is admitted.
//!
//! A pool's runs are taken strictly in order: once one waits, the ones
//! behind it do too (a smaller, lower-priority pod does not pass a larger
//! one). Free offers that the entitlements leave over (pods rarely divide
//! an entitlement exactly) go, in the same order, to runs held only by
//! their share, never past a limit.
//!
//! With one pool waiting, its entitlement is all the cluster it wants, so
//! only limits hold runs: a cluster without configured pools admits every
//! run ([`pools_matter`] lets the engine skip the walk entirely).

use super::registry::Registry;
use super::round::Pending;
use crate::model::ids::JobId;
use crate::model::policies::fair_share;
use crate::model::policies::preemption::Standing;
use crate::model::pool::{PoolId, PoolTree, ResourceKind};
use crate::model::resources::{Resources, EPSILON};
use std::collections::{BTreeMap, BTreeSet};

/// Whether any pool constrains anything: a pool besides the root and the
/// default pool, or the default pool configured. If not, every run is
/// admitted and nothing is preempted, at no cost.
pub fn pools_matter(tree: &PoolTree) -> bool {
    tree.iter().any(|p| {
        let id = p.id.as_str();
        id != crate::model::pool::ROOT_ID
            && (id != crate::model::pool::DEFAULT_ID || !p.spec.resources.is_empty())
    })
}

/// The pool each job runs in.
pub fn job_pool(tree: &PoolTree, registry: &Registry, job: &JobId) -> PoolId {
    tree.pool_of(
        registry
            .get(job)
            .and_then(|e| e.job.spec.respool_id.as_deref()),
    )
}

/// The pool and every pool above it, the root last.
pub fn path_up(tree: &PoolTree, leaf: &PoolId) -> Vec<PoolId> {
    std::iter::once(leaf.clone())
        .chain(tree.ancestors(leaf))
        .collect()
}

/// Each pool's standing now: its entitlement given what it holds and what
/// waits (`waiting`: per leaf pool), over a cluster the larger, per kind,
/// of what Drover holds plus `free` and `known` (the agents' sizes as
/// their offers showed them, [`super::cluster::ClusterFacts::capacity`]):
/// a full cluster offers nothing, and memory nobody is short of must not
/// look scarce because no offer of it is at hand.
pub fn standings(
    tree: &PoolTree,
    usage: &BTreeMap<PoolId, Resources>,
    waiting: &BTreeMap<PoolId, Resources>,
    free: &Resources,
    known: &Resources,
) -> BTreeMap<PoolId, Standing> {
    let mut demand: BTreeMap<PoolId, Resources> = BTreeMap::new();
    for pool in tree.iter().filter(|p| tree.is_leaf(&p.id)) {
        let held = usage.get(&pool.id).copied().unwrap_or_default();
        let wants = waiting.get(&pool.id).copied().unwrap_or_default();
        demand.insert(pool.id.clone(), held.plus(&wants));
    }
    let held_by_all = usage.get(&PoolId::root()).copied().unwrap_or_default();
    let capacity = held_by_all.plus(free).max_each(known);
    let entitled = fair_share::entitlements(tree, &demand, &capacity);
    tree.iter()
        .map(|p| {
            let standing = Standing {
                entitlement: entitled.get(&p.id).copied().unwrap_or_default(),
                allocation: usage.get(&p.id).copied().unwrap_or_default(),
                limit: p.spec.limit(),
            };
            (p.id.clone(), standing)
        })
        .collect()
}

/// What a round is given and what it holds back.
#[derive(Debug, Default)]
pub struct Admission {
    /// Runs placement may try, in the order it should.
    pub admitted: Vec<Pending>,
    /// Runs held back, each with why.
    pub held: Vec<(Pending, String)>,
    /// The pools' standings it admitted by (empty when pools did not
    /// matter).
    pub standings: BTreeMap<PoolId, Standing>,
}

/// Admits `pending` (in SLA order) as the module doc says. `pool_of`
/// names each run's leaf pool.
pub fn admit(
    tree: &PoolTree,
    usage: &BTreeMap<PoolId, Resources>,
    pending: Vec<Pending>,
    free: &Resources,
    known: &Resources,
    pool_of: impl Fn(&Pending) -> PoolId,
) -> Admission {
    let pools: Vec<PoolId> = pending.iter().map(&pool_of).collect();
    let mut waiting: BTreeMap<PoolId, Resources> = BTreeMap::new();
    for (p, pool) in pending.iter().zip(&pools) {
        let sum = waiting.entry(pool.clone()).or_default();
        *sum = sum.plus(&p.demand);
    }
    let contested = waiting.len() > 1;
    let standings = standings(tree, usage, &waiting, free, known);
    let mut taken: BTreeMap<PoolId, Resources> = BTreeMap::new();
    let mut blocked: BTreeMap<PoolId, Blocked> = BTreeMap::new();
    let mut admission = Admission {
        standings: standings.clone(),
        ..Admission::default()
    };
    // Held by their share only: they may take the free offers left over.
    let mut by_share: Vec<(Pending, PoolId, String)> = Vec::new();
    for (p, pool) in pending.into_iter().zip(pools) {
        match blocked.get(&pool) {
            Some(Blocked::Limit(reason)) => {
                admission.held.push((p, reason.clone()));
                continue;
            }
            Some(Blocked::Share(reason)) => {
                let reason = reason.clone();
                by_share.push((p, pool, reason));
                continue;
            }
            None => {}
        }
        let path = path_up(tree, &pool);
        if let Some(reason) = over_limit(tree, &path, usage, &taken, &p.demand) {
            blocked.insert(pool, Blocked::Limit(reason.clone()));
            admission.held.push((p, reason));
            continue;
        }
        if contested {
            let standing = standings.get(&pool).copied().unwrap_or_default();
            let room = standing
                .room()
                .minus(&taken.get(&pool).copied().unwrap_or_default());
            if !room.contains(&p.demand) {
                let reason = share_reason(tree, &pool, &standing, &room, &p.demand);
                blocked.insert(pool.clone(), Blocked::Share(reason.clone()));
                by_share.push((p, pool, reason));
                continue;
            }
        }
        add_on_path(&mut taken, &path, &p.demand);
        admission.admitted.push(p);
    }
    // The free offers the entitlements left over.
    let admitted_demand = admission
        .admitted
        .iter()
        .fold(Resources::default(), |sum, p| sum.plus(&p.demand));
    let mut spare = free.minus(&admitted_demand);
    let mut stopped: BTreeSet<PoolId> = BTreeSet::new();
    for (p, pool, reason) in by_share {
        let path = path_up(tree, &pool);
        let fits = !stopped.contains(&pool)
            && spare.contains(&p.demand)
            && over_limit(tree, &path, usage, &taken, &p.demand).is_none();
        if fits {
            spare = spare.minus(&p.demand);
            add_on_path(&mut taken, &path, &p.demand);
            admission.admitted.push(p);
        } else {
            stopped.insert(pool);
            admission.held.push((p, reason));
        }
    }
    admission
}

/// Why a pool's runs wait this round (the first that waits holds the
/// ones behind it).
enum Blocked {
    Limit(String),
    Share(String),
}

fn add_on_path(taken: &mut BTreeMap<PoolId, Resources>, path: &[PoolId], demand: &Resources) {
    for pool in path {
        let sum = taken.entry(pool.clone()).or_default();
        *sum = sum.plus(demand);
    }
}

/// Why `demand` would take a pool on `path` over its limit, if it would.
fn over_limit(
    tree: &PoolTree,
    path: &[PoolId],
    usage: &BTreeMap<PoolId, Resources>,
    taken: &BTreeMap<PoolId, Resources>,
    demand: &Resources,
) -> Option<String> {
    for id in path {
        let Some(pool) = tree.get(id) else { continue };
        let limit = pool.spec.limit();
        let held = usage
            .get(id)
            .copied()
            .unwrap_or_default()
            .plus(&taken.get(id).copied().unwrap_or_default());
        let after = held.plus(demand);
        if let Some(kind) = ResourceKind::ALL
            .into_iter()
            .find(|&k| k.of(&after) > k.of(&limit) + EPSILON)
        {
            return Some(format!(
                "pool {} at its limit of {} {}",
                display_path(tree, id),
                kind.of(&limit),
                unit(kind)
            ));
        }
    }
    None
}

/// Why a run of `pool` waits for its share: the first kind its `room`
/// lacks for `demand`.
fn share_reason(
    tree: &PoolTree,
    pool: &PoolId,
    standing: &Standing,
    room: &Resources,
    demand: &Resources,
) -> String {
    let kind = ResourceKind::ALL
        .into_iter()
        .find(|&k| k.of(demand) > k.of(room) + EPSILON)
        .unwrap_or(ResourceKind::Cpu);
    format!(
        "waiting for pool share: pool {} holds {:.3} of its entitlement of {:.3} {}",
        display_path(tree, pool),
        kind.of(&standing.allocation),
        kind.of(&standing.entitlement),
        unit(kind)
    )
}

/// The pool's path, or its id if the tree cannot say.
pub fn display_path(tree: &PoolTree, id: &PoolId) -> String {
    tree.path(id).unwrap_or_else(|| id.to_string())
}

/// How an amount of `kind` reads in a reason.
fn unit(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Cpu => "cpus",
        ResourceKind::Memory => "MiB of memory",
        ResourceKind::Disk => "MiB of disk",
        ResourceKind::Gpu => "gpus",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::engine::reconcile::PendingLaunch;
    use crate::model::ids::{InstanceId, TaskId};
    use crate::model::policies::sla_order::SlaKey;
    use crate::model::pool::{Pool, PoolResource, PoolSpec, ReservationType, SchedulingPolicy};
    use crate::model::spec::{JobType, PodSpec};
    use std::sync::Arc;

    fn cpus(n: f64) -> Resources {
        Resources {
            cpus: n,
            ..Resources::default()
        }
    }

    fn pool(id: &str, parent: &str, (reservation, limit, share): (f64, f64, f64)) -> Pool {
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
                    reservation_type: ReservationType::Elastic,
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

    /// A waiting run of job `job` (whose name is its pool's id), `size`
    /// cpus.
    fn run(job: &str, instance: u32, size: f64) -> Pending {
        Pending {
            launch: PendingLaunch {
                task_id: TaskId {
                    instance: InstanceId {
                        job: JobId(job.into()),
                        instance,
                    },
                    run: 0,
                },
                spec_version: 1,
                in_place: None,
                hands_over: None,
            },
            pod: Arc::new(PodSpec::default()),
            spec_label: None,
            secrets: Arc::from(Vec::new()),
            demand: cpus(size),
            sla: SlaKey {
                priority: 0,
                created_at: 0,
            },
            job_type: JobType::Batch,
        }
    }

    fn names(runs: &[Pending]) -> Vec<String> {
        runs.iter()
            .map(|p| {
                format!(
                    "{}-{}",
                    p.launch.task_id.instance.job, p.launch.task_id.instance.instance
                )
            })
            .collect()
    }

    fn usage_of(tree: &PoolTree, held: &[(&str, f64)]) -> BTreeMap<PoolId, Resources> {
        let mut usage = BTreeMap::new();
        for (pool, n) in held {
            add_on_path(
                &mut usage,
                &path_up(tree, &PoolId((*pool).into())),
                &cpus(*n),
            );
        }
        usage
    }

    fn by_job(p: &Pending) -> PoolId {
        PoolId(p.launch.task_id.instance.job.as_str().into())
    }

    #[test]
    fn memory_is_not_scarce_when_no_offer_of_it_is_at_hand_but_agents_have_it() {
        // Two pools busy on a full cluster: no offer is held. Without the
        // agents' known sizes the memory they hold would be all there is,
        // and split by share below what each holds.
        let tree = PoolTree::from_pools(vec![
            pool("a", "root", (0.0, 100.0, 1.0)),
            pool("b", "root", (0.0, 100.0, 2.0)),
        ]);
        let mut usage = BTreeMap::new();
        let held = Resources {
            cpus: 10.0,
            mem_mib: 640.0,
            ..Resources::default()
        };
        for leaf in ["a", "b"] {
            add_on_path(&mut usage, &path_up(&tree, &PoolId(leaf.into())), &held);
        }
        let one_pod = Resources {
            cpus: 1.0,
            mem_mib: 64.0,
            ..Resources::default()
        };
        let waiting = BTreeMap::from([(PoolId("a".into()), one_pod)]);
        let known = Resources {
            cpus: 20.0,
            mem_mib: 81920.0,
            ..Resources::default()
        };
        let without = standings(
            &tree,
            &usage,
            &waiting,
            &Resources::default(),
            &Resources::default(),
        );
        let with = standings(&tree, &usage, &waiting, &Resources::default(), &known);
        // /a holds 640 MiB and wants 64 more: plenty on the agents.
        let a = PoolId("a".into());
        assert!(without[&a].entitlement.mem_mib < 704.0, "{:?}", without[&a]);
        assert!(with[&a].entitlement.mem_mib >= 704.0, "{:?}", with[&a]);
    }

    #[test]
    fn a_pool_at_its_limit_holds_its_runs_and_says_so() {
        let tree = PoolTree::from_pools(vec![pool("batch", "root", (0.0, 4.0, 1.0))]);
        let usage = usage_of(&tree, &[("batch", 2.0)]);
        let pending = vec![
            run("batch", 0, 1.0),
            run("batch", 1, 1.0),
            run("batch", 2, 1.0),
        ];
        let out = admit(
            &tree,
            &usage,
            pending,
            &cpus(100.0),
            &Resources::default(),
            by_job,
        );
        assert_eq!(names(&out.admitted), ["batch-0", "batch-1"]);
        assert_eq!(out.held.len(), 1);
        assert_eq!(out.held[0].1, "pool /batch at its limit of 4 cpus");
    }

    #[test]
    fn a_parents_limit_holds_its_childrens_runs() {
        let tree = PoolTree::from_pools(vec![
            pool("org", "root", (0.0, 3.0, 1.0)),
            pool("team", "org", (0.0, f64::INFINITY, 1.0)),
        ]);
        let usage = usage_of(&tree, &[("team", 2.0)]);
        let out = admit(
            &tree,
            &usage,
            vec![run("team", 0, 1.0), run("team", 1, 1.0)],
            &cpus(10.0),
            &Resources::default(),
            by_job,
        );
        assert_eq!(names(&out.admitted), ["team-0"]);
        assert_eq!(out.held[0].1, "pool /org at its limit of 3 cpus");
    }

    #[test]
    fn contending_pools_get_their_entitlement_and_the_rest_waits_for_share() {
        // 10 cpus free, nothing running; a reserves 6, b nothing, equal
        // shares: a is entitled to 8, b to 2.
        let tree = PoolTree::from_pools(vec![
            pool("a", "root", (6.0, f64::INFINITY, 1.0)),
            pool("b", "root", (0.0, f64::INFINITY, 1.0)),
        ]);
        let pending: Vec<Pending> = (0..10)
            .map(|i| run("b", i, 1.0))
            .chain((0..10).map(|i| run("a", i, 1.0)))
            .collect();
        let out = admit(
            &tree,
            &BTreeMap::new(),
            pending,
            &cpus(10.0),
            &Resources::default(),
            by_job,
        );
        let admitted = names(&out.admitted);
        assert_eq!(admitted.iter().filter(|n| n.starts_with("a-")).count(), 8);
        assert_eq!(admitted.iter().filter(|n| n.starts_with("b-")).count(), 2);
        assert_eq!(out.held.len(), 10);
        assert!(out
            .held
            .iter()
            .all(|(_, r)| r.starts_with("waiting for pool share")));
        assert_eq!(
            out.held[0].1,
            "waiting for pool share: pool /b holds 0.000 of its entitlement of 2.000 cpus"
        );
    }

    #[test]
    fn one_pool_alone_takes_what_it_wants_up_to_its_limit() {
        let tree = PoolTree::from_pools(vec![
            pool("a", "root", (0.0, f64::INFINITY, 1.0)),
            pool("b", "root", (8.0, f64::INFINITY, 1.0)),
        ]);
        let usage = usage_of(&tree, &[("b", 1.0)]);
        let pending: Vec<Pending> = (0..20).map(|i| run("a", i, 1.0)).collect();
        // Only the free offers bound it, and that is placement's to find.
        let out = admit(
            &tree,
            &usage,
            pending,
            &cpus(5.0),
            &Resources::default(),
            by_job,
        );
        assert_eq!(out.admitted.len(), 20);
        assert!(out.held.is_empty());
    }

    #[test]
    fn free_offers_left_over_by_the_entitlements_go_to_runs_held_by_share() {
        // a and b are entitled to 5 each of 10 free; a's pods are 3 cpus,
        // so it fits one in its 5; b takes its 5. Of the 2 left over, a's
        // next pod (3) does not fit (and holds a's others), b's next two do.
        let tree = PoolTree::from_pools(vec![
            pool("a", "root", (0.0, f64::INFINITY, 1.0)),
            pool("b", "root", (0.0, f64::INFINITY, 1.0)),
        ]);
        let pending: Vec<Pending> = (0..3)
            .map(|i| run("a", i, 3.0))
            .chain((0..8).map(|i| run("b", i, 1.0)))
            .collect();
        let out = admit(
            &tree,
            &BTreeMap::new(),
            pending,
            &cpus(10.0),
            &Resources::default(),
            by_job,
        );
        assert_eq!(
            names(&out.admitted),
            ["a-0", "b-0", "b-1", "b-2", "b-3", "b-4", "b-5", "b-6"]
        );
        assert_eq!(out.held.len(), 3);
    }

    #[test]
    fn only_configured_pools_matter() {
        assert!(!pools_matter(&PoolTree::from_pools(Vec::new())));
        assert!(pools_matter(&PoolTree::from_pools(vec![pool(
            "a",
            "root",
            (0.0, 1.0, 1.0)
        )])));
    }
}
