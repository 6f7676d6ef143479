//! Peloton v1alpha respool messages to and from Drover's pools: a
//! `ResourcePoolSpec` read into a [`PoolSpec`] (errors name the field), a
//! pool answered as a `ResourcePoolInfo` with its usages. Pure.

use crate::api::error::ApiError;
use crate::api::pools::{info, PoolInfo};
use crate::engine::PoolsView;
use crate::model::pool::{
    Pool, PoolId, PoolResource, PoolSpec, ReservationType, ResourceKind, SchedulingPolicy,
};
use drover_seed_api::peloton::api::v1alpha::peloton;
use drover_seed_api::peloton::api::v1alpha::respool;

/// The pool a request's `respool_id` names (`field`); required.
pub fn pool_id(id: Option<&peloton::ResourcePoolId>, field: &str) -> Result<PoolId, ApiError> {
    let value = id.map(|i| i.value.as_str()).unwrap_or_default();
    if value.is_empty() {
        return Err(ApiError::invalid(
            &format!("{field}.value"),
            "is required (a resource pool id)",
        ));
    }
    crate::api::pools::pool_id(&format!("{field}.value"), value)
}

/// A `ResourcePoolSpec` as Drover's spec; `spec` is required.
pub fn spec(spec: Option<&respool::ResourcePoolSpec>) -> Result<PoolSpec, ApiError> {
    let Some(spec) = spec else {
        return Err(ApiError::invalid("spec", "is required"));
    };
    let mut resources = Vec::with_capacity(spec.resources.len());
    for (i, r) in spec.resources.iter().enumerate() {
        let kind = ResourceKind::parse(&r.kind).ok_or_else(|| {
            ApiError::invalid(
                &format!("spec.resources[{i}].kind"),
                format!(
                    "'{}' is not a resource kind (cpu, memory, disk, gpu)",
                    r.kind
                ),
            )
        })?;
        let reservation_type = match respool::ReservationType::try_from(r.r#type) {
            Ok(respool::ReservationType::Static) => ReservationType::Static,
            Ok(_) => ReservationType::Elastic,
            Err(_) => {
                return Err(ApiError::invalid(
                    &format!("spec.resources[{i}].type"),
                    format!("{} is not a ReservationType", r.r#type),
                ))
            }
        };
        resources.push(PoolResource {
            kind,
            reservation: r.reservation,
            limit: r.limit,
            share: r.share,
            reservation_type,
        });
    }
    let policy = match respool::SchedulingPolicy::try_from(spec.policy) {
        Ok(_) => SchedulingPolicy::PriorityFifo,
        Err(_) => {
            return Err(ApiError::invalid(
                "spec.policy",
                format!("{} is not a SchedulingPolicy", spec.policy),
            ))
        }
    };
    let parent = match spec.parent.as_ref().filter(|p| !p.value.is_empty()) {
        Some(p) => PoolId(p.value.clone()),
        None => PoolId::root(),
    };
    Ok(PoolSpec {
        name: spec.name.clone(),
        owning_team: spec.owning_team.clone(),
        ldap_groups: spec.ldap_groups.clone(),
        description: spec.description.clone(),
        resources,
        parent,
        policy,
        controller_limit_percent: spec.controller_limit.as_ref().map(|c| c.max_percent),
        slack_limit_percent: spec.slack_limit.as_ref().map(|s| s.max_percent),
    })
}

/// A pool as Peloton's `ResourcePoolInfo`.
pub fn pool_info(view: &PoolsView, pool: &Pool) -> respool::ResourcePoolInfo {
    let PoolInfo {
        respool_id,
        parent,
        children,
        usages,
        path,
        ..
    } = info(view, pool);
    respool::ResourcePoolInfo {
        respool_id: Some(peloton::ResourcePoolId {
            value: respool_id.value,
        }),
        spec: Some(pool_spec(pool)),
        parent: parent.map(|p| peloton::ResourcePoolId { value: p.value }),
        children: children
            .into_iter()
            .map(|c| peloton::ResourcePoolId { value: c.value })
            .collect(),
        usages: usages
            .into_iter()
            .map(|u| respool::ResourceUsage {
                kind: u.kind.to_owned(),
                allocation: u.allocation,
                slack: u.slack,
            })
            .collect(),
        path: Some(respool::ResourcePoolPath { value: path.value }),
    }
}

fn pool_spec(pool: &Pool) -> respool::ResourcePoolSpec {
    let spec = &pool.spec;
    respool::ResourcePoolSpec {
        revision: Some(peloton::Revision {
            version: pool.version,
            created_at: pool.created_ms,
            updated_at: pool.updated_ms,
            updated_by: String::new(),
        }),
        name: spec.name.clone(),
        owning_team: spec.owning_team.clone(),
        ldap_groups: spec.ldap_groups.clone(),
        description: spec.description.clone(),
        resources: spec
            .resources
            .iter()
            .map(|r| respool::ResourceSpec {
                kind: r.kind.name().to_owned(),
                reservation: r.reservation,
                limit: r.limit,
                share: r.share,
                r#type: match r.reservation_type {
                    ReservationType::Elastic => respool::ReservationType::Elastic,
                    ReservationType::Static => respool::ReservationType::Static,
                } as i32,
            })
            .collect(),
        parent: (pool.id != PoolId::root()).then(|| peloton::ResourcePoolId {
            value: spec.parent.to_string(),
        }),
        policy: respool::SchedulingPolicy::PriorityFifo as i32,
        controller_limit: spec
            .controller_limit_percent
            .map(|max_percent| respool::ControllerLimit { max_percent }),
        slack_limit: spec
            .slack_limit_percent
            .map(|max_percent| respool::SlackLimit { max_percent }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn peloton_spec(kind: &str) -> respool::ResourcePoolSpec {
        respool::ResourcePoolSpec {
            name: "batch".into(),
            resources: vec![respool::ResourceSpec {
                kind: kind.into(),
                reservation: 2.0,
                limit: 8.0,
                share: 1.0,
                r#type: respool::ReservationType::Static as i32,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn a_peloton_spec_becomes_drover_s_with_the_root_as_default_parent() {
        let spec = spec(Some(&peloton_spec("cpu"))).unwrap();
        assert_eq!(spec.parent, PoolId::root());
        assert_eq!(spec.resources[0].kind, ResourceKind::Cpu);
        assert_eq!(spec.resources[0].reservation_type, ReservationType::Static);
        assert_eq!(spec.resources[0].limit, 8.0);
    }

    #[test]
    fn an_unknown_kind_or_a_missing_spec_is_named() {
        let err = spec(Some(&peloton_spec("bananas"))).unwrap_err();
        assert!(
            err.message.starts_with("spec.resources[0].kind:"),
            "{}",
            err.message
        );
        assert!(spec(None).unwrap_err().message.starts_with("spec:"));
        let err = pool_id(None, "respool_id").unwrap_err();
        assert!(err.message.starts_with("respool_id.value:"));
    }
}
