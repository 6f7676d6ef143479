//! What runs in each resource pool, from the registry: the jobs each pool
//! holds and what their live runs take. Pure; the engine answers pool
//! reads and busy checks with it, and admission (fair share, limits)
//! reads the same numbers.

use super::registry::Registry;
use crate::model::demand::pod_demand;
use crate::model::pool::{PoolId, PoolTree};
use crate::model::resources::Resources;
use std::collections::BTreeMap;

/// What each pool's live runs hold: the resources their pods ask for,
/// plus `overhead` per run (each executor's: admission counts what the
/// runs take from offers; the API shows pods' resources alone, zero
/// overhead, as Peloton counts a pool's allocation), each run counted in
/// its job's pool and in every ancestor up to the root. A pool nothing
/// runs in is absent.
pub fn usage(
    registry: &Registry,
    tree: &PoolTree,
    overhead: &Resources,
) -> BTreeMap<PoolId, Resources> {
    let mut by_job: BTreeMap<&crate::model::ids::JobId, (PoolId, Resources)> = BTreeMap::new();
    for (instance, _run) in registry.live_runs() {
        let Some(entry) = registry.get(instance.job) else {
            continue;
        };
        let held = pod_demand(&entry.job.spec.pod_spec(instance.instance), overhead);
        let slot = by_job.entry(instance.job).or_insert_with(|| {
            (
                tree.pool_of(entry.job.spec.respool_id.as_deref()),
                Resources::default(),
            )
        });
        slot.1 = slot.1.plus(&held);
    }
    let mut out: BTreeMap<PoolId, Resources> = BTreeMap::new();
    for (pool, held) in by_job.into_values() {
        for id in std::iter::once(pool.clone()).chain(tree.ancestors(&pool)) {
            let sum = out.entry(id).or_default();
            *sum = sum.plus(&held);
        }
    }
    out
}

/// How many jobs (not yet forgotten) run in each pool.
pub fn jobs_in(registry: &Registry, tree: &PoolTree) -> BTreeMap<PoolId, usize> {
    let mut out = BTreeMap::new();
    for (_, entry) in registry.iter() {
        *out.entry(tree.pool_of(entry.job.spec.respool_id.as_deref()))
            .or_insert(0) += 1;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ids::{AgentId, InstanceId, JobId};
    use crate::model::job::Job;
    use crate::model::pool::{Pool, PoolSpec, SchedulingPolicy, ROOT_ID};
    use crate::model::run::Run;
    use crate::model::state::PodState;

    fn job(id: &str, instances: u32, respool: Option<&str>) -> Job {
        let mut spec: crate::model::spec::JobSpec = serde_json::from_value(serde_json::json!({
            "type": "BATCH", "name": "t", "instance_count": instances,
            "default_spec": {"containers": [{"command": {"value": "true"},
                "resource": {"cpu_limit": 2.0, "mem_limit_mb": 64.0}}]}
        }))
        .unwrap();
        spec.respool_id = respool.map(str::to_owned);
        Job::new(JobId::parse(id).unwrap(), spec, 1)
    }

    fn pool(id: &str, parent: &str) -> Pool {
        Pool {
            id: PoolId(id.into()),
            spec: PoolSpec {
                name: id.into(),
                owning_team: String::new(),
                ldap_groups: Vec::new(),
                description: String::new(),
                resources: Vec::new(),
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

    #[test]
    fn live_runs_count_in_their_pool_and_its_ancestors() {
        let tree = PoolTree::from_pools(vec![pool("infra", ROOT_ID), pool("web", "infra")]);
        let mut registry = Registry::default();
        registry.insert(job("a", 3, Some("web")));
        registry.insert(job("b", 1, None));
        let run = |n: u32, state: PodState| Run {
            state,
            ..Run::launching(n, AgentId::new("x"), 1, 1)
        };
        let a = JobId::parse("a").unwrap();
        registry.put_run(&InstanceId::new(a.clone(), 0), run(0, PodState::Running));
        registry.put_run(&InstanceId::new(a.clone(), 1), run(0, PodState::Launching));
        registry.put_run(&InstanceId::new(a, 2), run(0, PodState::Succeeded));
        let b = JobId::parse("b").unwrap();
        registry.put_run(&InstanceId::new(b, 0), run(0, PodState::Running));
        let used = usage(&registry, &tree, &Resources::default());
        assert_eq!(used[&PoolId("web".into())].cpus, 4.0);
        assert_eq!(used[&PoolId("infra".into())].mem_mib, 128.0);
        assert_eq!(used[&PoolId::default_pool()].cpus, 2.0);
        assert_eq!(used[&PoolId::root()].cpus, 6.0);
        let jobs = jobs_in(&registry, &tree);
        assert_eq!(jobs[&PoolId("web".into())], 1);
        assert_eq!(jobs[&PoolId::default_pool()], 1);
        assert!(!jobs.contains_key(&PoolId("infra".into())));
    }
}
