//! The engine's decisions on resource pool requests: the tree's rules
//! ([`crate::model::pool_validate`]) asked against the pools and the jobs
//! as they are, then the change to store and, once stored, the pool to
//! put in (or take out of) the tree. Pure.

use super::action::{ApiRequest, EngineError};
use super::api::Then;
use super::pool_usage;
use super::registry::Registry;
use crate::model::change::{Change, PoolWrite};
use crate::model::pool::{Pool, PoolId, PoolTree};
use crate::model::pool_validate::{self, PoolError};
use crate::model::time::UnixMillis;

/// What a stored pool change does to the tree.
#[derive(Debug)]
pub(super) enum PoolThen {
    /// The pool as it now is.
    Put(Box<Pool>),
    /// The pool is gone.
    Remove(PoolId),
}

/// Decides a pool write (`CreatePool`, `UpdatePool`, `DeletePool`);
/// None for any other request.
pub(super) fn decide(
    pools: &PoolTree,
    registry: &Registry,
    request: &ApiRequest,
    now: UnixMillis,
) -> Option<Result<(Change, Then), EngineError>> {
    let now_ms = now.max(0) as u64;
    let decided = match request {
        ApiRequest::CreatePool { pool_id, spec } => {
            let jobs = pool_usage::jobs_in(registry, pools);
            pool_validate::check_create(pools, pool_id, spec, |p| jobs.get(p).copied().unwrap_or(0))
                .map(|()| Pool {
                    id: pool_id.clone(),
                    spec: (**spec).clone(),
                    version: 1,
                    created_ms: now_ms,
                    updated_ms: now_ms,
                })
                .map(put)
        }
        ApiRequest::UpdatePool { pool_id, spec } => {
            pool_validate::check_update(pools, pool_id, spec).and_then(|()| {
                let current = pools
                    .get(pool_id)
                    .ok_or_else(|| PoolError::NotFound(pool_id.clone()))?;
                Ok(put(Pool {
                    id: pool_id.clone(),
                    spec: (**spec).clone(),
                    version: current.version + 1,
                    created_ms: current.created_ms,
                    updated_ms: now_ms,
                }))
            })
        }
        ApiRequest::DeletePool { pool_id } => {
            let jobs = pool_usage::jobs_in(registry, pools);
            pool_validate::check_delete(pools, pool_id, jobs.get(pool_id).copied().unwrap_or(0))
                .map(|()| {
                    let change = Change {
                        pools: vec![PoolWrite::Delete(pool_id.clone())],
                        ..Change::default()
                    };
                    (change, Then::Pool(PoolThen::Remove(pool_id.clone())))
                })
        }
        _ => return None,
    };
    Some(decided.map_err(EngineError::from))
}

fn put(pool: Pool) -> (Change, Then) {
    let change = Change {
        pools: vec![PoolWrite::Put(Box::new(pool.clone()))],
        ..Change::default()
    };
    (change, Then::Pool(PoolThen::Put(Box::new(pool))))
}

/// Makes a stored pool change in the tree; the reply's pool.
pub(super) fn apply(pools: &mut PoolTree, then: PoolThen) -> Option<Pool> {
    match then {
        PoolThen::Put(pool) => {
            pools.put((*pool).clone());
            Some(*pool)
        }
        PoolThen::Remove(id) => {
            pools.remove(&id);
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::api::{decide as decide_api, Decision};
    use super::super::cluster::ClusterFacts;
    use super::super::config::EngineConfig;
    use super::*;
    use crate::model::access::{Identity, Role};
    use crate::model::ids::JobId;
    use crate::model::job::Job;
    use crate::model::pool::PoolSpec;

    fn spec(name: &str) -> Box<PoolSpec> {
        Box::new(
            serde_json::from_value(serde_json::json!({
                "name": name,
                "resources": [{"kind": "cpu", "reservation": 1.0, "limit": 4.0}]
            }))
            .unwrap(),
        )
    }

    fn job_in(pool: Option<&str>) -> Box<crate::model::spec::JobSpec> {
        let mut spec: crate::model::spec::JobSpec = serde_json::from_value(serde_json::json!({
            "type": "BATCH", "name": "t", "instance_count": 1,
            "default_spec": {"containers": [{"command": {"value": "true"},
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32.0}}]}
        }))
        .unwrap();
        spec.respool_id = pool.map(str::to_owned);
        Box::new(spec)
    }

    fn ask(
        registry: &Registry,
        pools: &PoolTree,
        request: ApiRequest,
        caller: &Identity,
    ) -> Decision {
        decide_api(
            registry,
            pools,
            &ClusterFacts::default(),
            &EngineConfig::default(),
            request,
            caller,
            5,
        )
    }

    fn refused(decision: Decision) -> EngineError {
        match decision {
            Decision::Refuse(e) => e,
            _ => panic!("not refused"),
        }
    }

    #[test]
    fn a_created_pool_is_stored_then_put_in_the_tree() {
        let registry = Registry::default();
        let mut pools = PoolTree::from_pools(Vec::new());
        let request = ApiRequest::CreatePool {
            pool_id: PoolId("batch".into()),
            spec: spec("batch"),
        };
        let Decision::Write(change, then) = ask(&registry, &pools, request, &Identity::system())
        else {
            panic!("not a write");
        };
        assert!(matches!(&change.pools[..], [PoolWrite::Put(p)] if p.version == 1));
        let (reply, planned) =
            super::super::api::apply(&mut Registry::default(), &mut pools, then, 1);
        assert!(matches!(reply, super::super::action::Reply::Pool(_)));
        assert!(planned.is_empty());
        assert_eq!(pools.lookup("/batch").unwrap().id.as_str(), "batch");
    }

    #[test]
    fn only_operators_change_pools_and_anyone_reads_them() {
        let registry = Registry::default();
        let pools = PoolTree::from_pools(Vec::new());
        let user = Identity {
            name: "alice".into(),
            role: Role::User,
            teams: Vec::new(),
            anonymous: false,
        };
        let request = ApiRequest::CreatePool {
            pool_id: PoolId("batch".into()),
            spec: spec("batch"),
        };
        assert!(matches!(
            refused(ask(&registry, &pools, request.clone(), &user)),
            EngineError::PermissionDenied(_)
        ));
        let operator = Identity {
            role: Role::Operator,
            ..user.clone()
        };
        assert!(matches!(
            ask(&registry, &pools, request, &operator),
            Decision::Write(..)
        ));
        assert!(matches!(
            ask(&registry, &pools, ApiRequest::ReadPools, &user),
            Decision::Answer(super::super::action::Reply::Pools(_))
        ));
    }

    #[test]
    fn jobs_name_existing_leaves_and_keep_their_pool_from_deletion() {
        let mut registry = Registry::default();
        let mut batch = Pool {
            id: PoolId("batch".into()),
            spec: *spec("batch"),
            version: 1,
            created_ms: 0,
            updated_ms: 0,
        };
        let pools = PoolTree::from_pools(vec![batch.clone()]);
        let create = |pool: Option<&str>| ApiRequest::CreateJob {
            job_id: JobId::parse("j").unwrap(),
            spec: job_in(pool),
            create: None,
        };
        let system = Identity::system();
        assert!(matches!(
            refused(ask(&registry, &pools, create(Some("nope")), &system)),
            EngineError::Pool(PoolError::JobPoolNotFound { .. })
        ));
        assert!(matches!(
            refused(ask(&registry, &pools, create(Some("/")), &system)),
            EngineError::Pool(PoolError::JobPoolNotLeaf { .. })
        ));
        assert!(matches!(
            ask(&registry, &pools, create(Some("/batch")), &system),
            Decision::Write(..)
        ));
        registry.insert(Job::new(
            JobId::parse("j").unwrap(),
            *job_in(Some("batch")),
            1,
        ));
        let delete = ApiRequest::DeletePool {
            pool_id: PoolId("batch".into()),
        };
        assert!(matches!(
            refused(ask(&registry, &pools, delete, &system)),
            EngineError::Pool(PoolError::Busy { jobs: 1, .. })
        ));
        // A child under a pool holding jobs is refused too.
        batch.id = PoolId("sub".into());
        batch.spec.parent = PoolId("batch".into());
        let child = ApiRequest::CreatePool {
            pool_id: PoolId("sub".into()),
            spec: Box::new(batch.spec),
        };
        assert!(matches!(
            refused(ask(&registry, &pools, child, &system)),
            EngineError::Pool(PoolError::ParentHoldsJobs { .. })
        ));
    }
}
