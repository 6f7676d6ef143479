//! The rules a resource pool's configuration and the tree's changes must
//! meet (Peloton's respool validators, written for Drover's tree): a
//! spec's own values, a pool's place among its siblings and under its
//! parent, what may be deleted, and which pool a job may name. Pure: each
//! check takes the tree as it is and answers with a [`PoolError`] naming
//! the field or the pool at fault. The engine asks them before it stores
//! a pool change (`engine/api_pools.rs`).

use super::pool::{Pool, PoolId, PoolSpec, PoolTree, ResourceKind, DEFAULT_ID, ROOT_ID};
use super::resources::EPSILON;

/// Why a pool change, or a job's pool, was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PoolError {
    /// No pool has this id (NOT_FOUND).
    #[error("resource pool {0} not found")]
    NotFound(PoolId),
    /// No pool is at this path (NOT_FOUND).
    #[error("resource pool path {0} not found")]
    PathNotFound(String),
    /// A pool with this id exists already (ALREADY_EXISTS).
    #[error("resource pool {0} already exists")]
    IdTaken(PoolId),
    /// The parent has a child of this name already (ALREADY_EXISTS).
    #[error("resource pool {path} already exists")]
    NameTaken {
        /// The path the new name would have.
        path: String,
    },
    /// A field's value breaks a rule (INVALID_ARGUMENT).
    #[error("{field}: {problem}")]
    Invalid {
        /// The field, as the request names it (`spec.resources[0].limit`).
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The root is the tree itself: it is never created, changed or
    /// deleted (INVALID_ARGUMENT).
    #[error("the root resource pool / cannot be {0}")]
    Root(&'static str),
    /// The default pool holds the jobs that name none: it stays
    /// (FAILED_PRECONDITION).
    #[error(
        "the default resource pool /default cannot be deleted: jobs that name no pool run in it"
    )]
    DefaultUndeletable,
    /// Only a leaf pool may be deleted (FAILED_PRECONDITION).
    #[error("resource pool {path} has child pools ({children}); delete them first")]
    NotLeaf {
        /// The pool's path.
        path: String,
        /// Its children's paths.
        children: String,
    },
    /// A pool jobs name cannot be deleted (FAILED_PRECONDITION).
    #[error("resource pool {path} is busy: {jobs} job(s) run in it; delete or move them first")]
    Busy {
        /// The pool's path.
        path: String,
        /// How many jobs name it.
        jobs: usize,
    },
    /// Only leaves hold jobs, so a pool jobs run in cannot get a child
    /// (FAILED_PRECONDITION).
    #[error("resource pool {path} holds {jobs} job(s): only leaf pools hold jobs, so it cannot have child pools")]
    ParentHoldsJobs {
        /// The would-be parent's path.
        path: String,
        /// How many jobs name it.
        jobs: usize,
    },
    /// A job names a pool that does not exist (NOT_FOUND).
    #[error("{field}: resource pool {named} not found")]
    JobPoolNotFound {
        /// The field (`spec.respool_id`).
        field: String,
        /// What it named.
        named: String,
    },
    /// A job names a pool that is not a leaf, or the root
    /// (INVALID_ARGUMENT).
    #[error("{field}: resource pool {path} is not a leaf pool; jobs run only in leaf pools")]
    JobPoolNotLeaf {
        /// The field (`spec.respool_id`).
        field: String,
        /// The pool's path.
        path: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> PoolError {
    PoolError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// A spec's own rules, whatever the tree: a name without `/`, each kind
/// at most once, finite amounts not below zero, a reservation within the
/// limit, percentages within 0..=100. `field` prefixes every field named
/// (`spec`).
pub fn check_spec(spec: &PoolSpec, field: &str) -> Result<(), PoolError> {
    if spec.name.trim().is_empty() {
        return Err(invalid(format!("{field}.name"), "must not be empty"));
    }
    if spec.name.contains('/') {
        return Err(invalid(
            format!("{field}.name"),
            format!("'{}' must not contain '/'", spec.name),
        ));
    }
    let mut seen: Vec<ResourceKind> = Vec::new();
    for (i, r) in spec.resources.iter().enumerate() {
        let at = format!("{field}.resources[{i}]");
        if seen.contains(&r.kind) {
            return Err(invalid(
                format!("{at}.kind"),
                format!("'{}' is configured more than once", r.kind.name()),
            ));
        }
        seen.push(r.kind);
        for (name, value) in [
            ("reservation", r.reservation),
            ("limit", r.limit),
            ("share", r.share),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(invalid(
                    format!("{at}.{name}"),
                    format!("{value} must be a finite number, 0 or more"),
                ));
            }
        }
        if r.reservation > r.limit + EPSILON {
            return Err(invalid(
                format!("{at}.reservation"),
                format!(
                    "{} {} exceeds the pool's limit {}",
                    r.kind.name(),
                    r.reservation,
                    r.limit
                ),
            ));
        }
    }
    for (name, value) in [
        (
            "controller_limit.max_percent",
            spec.controller_limit_percent,
        ),
        ("slack_limit.maxPercent", spec.slack_limit_percent),
    ] {
        if let Some(v) = value.filter(|v| !(0.0..=100.0).contains(v)) {
            return Err(invalid(
                format!("{field}.{name}"),
                format!("{v} is not a percentage (0 to 100)"),
            ));
        }
    }
    Ok(())
}

/// A new pool `id` with `spec` under its parent: the id free and not the
/// root's, the spec's own rules, the parent known and holding no jobs
/// (`jobs_in(pool)`: how many jobs run in a pool), the name free among
/// the siblings, and the pool within its parent ([`check_within_parent`]).
pub fn check_create(
    tree: &PoolTree,
    id: &PoolId,
    spec: &PoolSpec,
    jobs_in: impl Fn(&PoolId) -> usize,
) -> Result<(), PoolError> {
    if id.as_str() == ROOT_ID {
        return Err(PoolError::Root("created"));
    }
    if tree.get(id).is_some() {
        return Err(PoolError::IdTaken(id.clone()));
    }
    check_spec(spec, "spec")?;
    if spec.parent == *id {
        return Err(invalid("spec.parent", "a pool cannot be its own parent"));
    }
    let parent = parent_of(tree, spec)?;
    let jobs = jobs_in(&parent.id);
    if jobs > 0 {
        return Err(PoolError::ParentHoldsJobs {
            path: path(tree, &parent.id),
            jobs,
        });
    }
    check_sibling_name(tree, None, spec)?;
    check_within_parent(tree, None, spec, parent)
}

/// An update of pool `id` to `spec`: not the root, known, its parent
/// unchanged (Peloton refuses a move), the spec's own rules, the name
/// free among the siblings, within its parent, and its children still
/// within it.
pub fn check_update(tree: &PoolTree, id: &PoolId, spec: &PoolSpec) -> Result<(), PoolError> {
    if id.as_str() == ROOT_ID {
        return Err(PoolError::Root("changed"));
    }
    let Some(current) = tree.get(id) else {
        return Err(PoolError::NotFound(id.clone()));
    };
    check_spec(spec, "spec")?;
    if spec.parent != current.spec.parent {
        return Err(invalid(
            "spec.parent",
            format!(
                "a pool cannot move: its parent is {}, not {}",
                current.spec.parent, spec.parent
            ),
        ));
    }
    let parent = parent_of(tree, spec)?;
    check_sibling_name(tree, Some(id), spec)?;
    check_within_parent(tree, Some(id), spec, parent)?;
    check_children_within(tree, id, spec)
}

/// A delete of pool `id`: not the root or the default pool, known, a
/// leaf, and no job running in it (`jobs`).
pub fn check_delete(tree: &PoolTree, id: &PoolId, jobs: usize) -> Result<(), PoolError> {
    if id.as_str() == ROOT_ID {
        return Err(PoolError::Root("deleted"));
    }
    if id.as_str() == DEFAULT_ID {
        return Err(PoolError::DefaultUndeletable);
    }
    if tree.get(id).is_none() {
        return Err(PoolError::NotFound(id.clone()));
    }
    if !tree.is_leaf(id) {
        let children: Vec<String> = tree.children(id).map(|c| path(tree, &c.id)).collect();
        return Err(PoolError::NotLeaf {
            path: path(tree, id),
            children: children.join(", "),
        });
    }
    if jobs > 0 {
        return Err(PoolError::Busy {
            path: path(tree, id),
            jobs,
        });
    }
    Ok(())
}

/// The pool a job's `respool_id` names (`field` is where it is written),
/// which must be a leaf other than the root; None (or empty) is the
/// default pool.
pub fn check_job_pool(
    tree: &PoolTree,
    respool_id: Option<&str>,
    field: &str,
) -> Result<PoolId, PoolError> {
    let Some(named) = respool_id.filter(|n| !n.is_empty()) else {
        return Ok(PoolId::default_pool());
    };
    let Some(pool) = tree.resolve(named) else {
        return Err(PoolError::JobPoolNotFound {
            field: field.to_owned(),
            named: named.to_owned(),
        });
    };
    if pool.id.as_str() == ROOT_ID || !tree.is_leaf(&pool.id) {
        return Err(PoolError::JobPoolNotLeaf {
            field: field.to_owned(),
            path: path(tree, &pool.id),
        });
    }
    Ok(pool.id.clone())
}

fn path(tree: &PoolTree, id: &PoolId) -> String {
    tree.path(id).unwrap_or_else(|| id.to_string())
}

fn parent_of<'a>(tree: &'a PoolTree, spec: &PoolSpec) -> Result<&'a Pool, PoolError> {
    tree.get(&spec.parent).ok_or_else(|| {
        invalid(
            "spec.parent",
            format!("resource pool {} not found", spec.parent),
        )
    })
}

/// The name is free among the parent's other children (`id`: the pool
/// being updated, whose own name does not count).
fn check_sibling_name(
    tree: &PoolTree,
    id: Option<&PoolId>,
    spec: &PoolSpec,
) -> Result<(), PoolError> {
    let taken = tree
        .children(&spec.parent)
        .any(|sibling| Some(&sibling.id) != id && sibling.spec.name == spec.name);
    if taken {
        let parent = path(tree, &spec.parent);
        return Err(PoolError::NameTaken {
            path: format!("{}/{}", parent.trim_end_matches('/'), spec.name),
        });
    }
    Ok(())
}

/// Within a parent other than the root (whose size is the cluster's, so
/// it bounds nothing here): each configured kind's limit at most the
/// parent's (an unconfigured one is bounded by the parent's), and
/// the reservations of the parent's children (this one included, as it
/// would be) at most the parent's reservation.
fn check_within_parent(
    tree: &PoolTree,
    id: Option<&PoolId>,
    spec: &PoolSpec,
    parent: &Pool,
) -> Result<(), PoolError> {
    if parent.id.as_str() == ROOT_ID {
        return Ok(());
    }
    let parent_path = path(tree, &parent.id);
    for kind in ResourceKind::ALL {
        let own = spec.resource(kind);
        let theirs = parent.spec.resource(kind);
        let field = |name: &str| match spec.resources.iter().position(|r| r.kind == kind) {
            Some(i) => format!("spec.resources[{i}].{name}"),
            None => format!("spec.resources.{}", kind.name()),
        };
        // A kind the pool does not configure is bounded by its parent's
        // (Peloton checks the configured kinds only).
        let configured = spec.resources.iter().any(|r| r.kind == kind);
        if configured && own.limit > theirs.limit + EPSILON {
            return Err(invalid(
                field("limit"),
                format!(
                    "{} limit {} exceeds the parent {parent_path}'s limit {}",
                    kind.name(),
                    shown(own.limit),
                    shown(theirs.limit)
                ),
            ));
        }
        let siblings: f64 = tree
            .children(&parent.id)
            .filter(|c| Some(&c.id) != id)
            .map(|c| c.spec.resource(kind).reservation)
            .sum();
        let total = siblings + own.reservation;
        if total > theirs.reservation + EPSILON {
            return Err(invalid(
                field("reservation"),
                format!(
                    "{} reservations of the children of {parent_path} would be {total}, over its \
                     reservation {}",
                    kind.name(),
                    theirs.reservation
                ),
            ));
        }
    }
    Ok(())
}

/// The pool's children still fit in it as `spec` configures it.
fn check_children_within(tree: &PoolTree, id: &PoolId, spec: &PoolSpec) -> Result<(), PoolError> {
    for kind in ResourceKind::ALL {
        let own = spec.resource(kind);
        let mut reserved = 0.0;
        for child in tree.children(id) {
            let theirs = child.spec.resource(kind);
            reserved += theirs.reservation;
            let configured = child.spec.resources.iter().any(|r| r.kind == kind);
            if configured && theirs.limit > own.limit + EPSILON {
                return Err(invalid(
                    format!("spec.resources.{}", kind.name()),
                    format!(
                        "limit {} is below the limit {} of child pool {}",
                        shown(own.limit),
                        shown(theirs.limit),
                        path(tree, &child.id)
                    ),
                ));
            }
        }
        if reserved > own.reservation + EPSILON {
            return Err(invalid(
                format!("spec.resources.{}", kind.name()),
                format!(
                    "reservation {} is below its child pools' reservations {reserved}",
                    own.reservation
                ),
            ));
        }
    }
    Ok(())
}

/// An amount as an error shows it (an unset limit is "unlimited").
fn shown(amount: f64) -> String {
    if amount.is_finite() {
        amount.to_string()
    } else {
        "unlimited".into()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::pool::{PoolResource, ReservationType, SchedulingPolicy};

    fn cpu(reservation: f64, limit: f64, share: f64) -> PoolResource {
        PoolResource {
            kind: ResourceKind::Cpu,
            reservation,
            limit,
            share,
            reservation_type: ReservationType::Elastic,
        }
    }

    fn spec(name: &str, parent: &str, resources: Vec<PoolResource>) -> PoolSpec {
        PoolSpec {
            name: name.into(),
            owning_team: String::new(),
            ldap_groups: Vec::new(),
            description: String::new(),
            resources,
            parent: PoolId(parent.into()),
            policy: SchedulingPolicy::PriorityFifo,
            controller_limit_percent: None,
            slack_limit_percent: None,
        }
    }

    fn pool(id: &str, spec: PoolSpec) -> Pool {
        Pool {
            id: PoolId(id.into()),
            spec,
            version: 1,
            created_ms: 0,
            updated_ms: 0,
        }
    }

    /// `/infra` (reserves 10 cpus, limit 20) with `/infra/web` (4 of 10).
    fn tree() -> PoolTree {
        PoolTree::from_pools(vec![
            pool("infra", spec("infra", ROOT_ID, vec![cpu(10.0, 20.0, 1.0)])),
            pool("web", spec("web", "infra", vec![cpu(4.0, 10.0, 1.0)])),
        ])
    }

    fn no_jobs(_: &PoolId) -> usize {
        0
    }

    #[test]
    fn a_spec_s_own_values_are_checked_naming_the_field() {
        let bad = |s: PoolSpec| check_spec(&s, "spec").unwrap_err().to_string();
        assert!(bad(spec("", ROOT_ID, vec![])).starts_with("spec.name:"));
        assert!(bad(spec("a/b", ROOT_ID, vec![])).contains("'/'"));
        let over = bad(spec("a", ROOT_ID, vec![cpu(5.0, 4.0, 1.0)]));
        assert!(
            over.starts_with("spec.resources[0].reservation:") && over.contains("exceeds"),
            "{over}"
        );
        let negative = bad(spec("a", ROOT_ID, vec![cpu(0.0, 4.0, -1.0)]));
        assert!(
            negative.starts_with("spec.resources[0].share:"),
            "{negative}"
        );
        let twice = bad(spec(
            "a",
            ROOT_ID,
            vec![cpu(0.0, 4.0, 1.0), cpu(0.0, 4.0, 1.0)],
        ));
        assert!(twice.starts_with("spec.resources[1].kind:"), "{twice}");
        let mut pct = spec("a", ROOT_ID, vec![]);
        pct.controller_limit_percent = Some(150.0);
        assert!(bad(pct).contains("controller_limit"));
        assert!(check_spec(&spec("a", ROOT_ID, vec![cpu(1.0, 4.0, 2.0)]), "spec").is_ok());
    }

    #[test]
    fn a_sibling_of_the_same_name_is_already_exists() {
        let err = check_create(
            &tree(),
            &PoolId("web2".into()),
            &spec("web", "infra", vec![]),
            no_jobs,
        )
        .unwrap_err();
        assert_eq!(
            err,
            PoolError::NameTaken {
                path: "/infra/web".into()
            }
        );
        let err = check_create(
            &tree(),
            &PoolId("web".into()),
            &spec("x", "infra", vec![]),
            no_jobs,
        )
        .unwrap_err();
        assert_eq!(err, PoolError::IdTaken(PoolId("web".into())));
        // The same name under another parent is fine.
        check_create(
            &tree(),
            &PoolId("w".into()),
            &spec("web", ROOT_ID, vec![]),
            no_jobs,
        )
        .unwrap();
    }

    #[test]
    fn children_stay_within_their_parent_s_reservation_and_limit() {
        let t = tree();
        let id = PoolId("batch".into());
        // 4 reserved by web + 7 > 10.
        let err = check_create(
            &t,
            &id,
            &spec("batch", "infra", vec![cpu(7.0, 8.0, 1.0)]),
            no_jobs,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("over its reservation 10"), "{err}");
        let err = check_create(
            &t,
            &id,
            &spec("batch", "infra", vec![cpu(0.0, 30.0, 1.0)]),
            no_jobs,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("exceeds the parent /infra's limit 20"),
            "{err}"
        );
        // An unconfigured kind of a non-root parent reserves nothing, so a
        // child cannot reserve it; the root bounds nothing.
        let mut mem = cpu(1.0, 10.0, 1.0);
        mem.kind = ResourceKind::Memory;
        assert!(
            check_create(&t, &id, &spec("batch", "infra", vec![mem.clone()]), no_jobs).is_err()
        );
        check_create(&t, &id, &spec("batch", ROOT_ID, vec![mem]), no_jobs).unwrap();
        // No cpu configured: bounded by the parent's limit, not over it.
        check_create(&t, &id, &spec("batch", "infra", vec![]), no_jobs).unwrap();
        check_create(
            &t,
            &id,
            &spec("batch", "infra", vec![cpu(6.0, 20.0, 1.0)]),
            no_jobs,
        )
        .unwrap();
    }

    #[test]
    fn updates_keep_the_parent_and_the_children_within() {
        let t = tree();
        let infra = PoolId("infra".into());
        let err = check_update(
            &t,
            &infra,
            &spec("infra", ROOT_ID, vec![cpu(3.0, 20.0, 1.0)]),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("below its child pools' reservations 4"),
            "{err}"
        );
        let err = check_update(
            &t,
            &infra,
            &spec("infra", ROOT_ID, vec![cpu(10.0, 5.0, 1.0)]),
        )
        .unwrap_err();
        assert!(matches!(err, PoolError::Invalid { .. }));
        let web = PoolId("web".into());
        let err = check_update(&t, &web, &spec("web", ROOT_ID, vec![])).unwrap_err();
        assert!(err
            .to_string()
            .starts_with("spec.parent: a pool cannot move"));
        // Its own reservation does not count twice.
        check_update(&t, &web, &spec("web", "infra", vec![cpu(10.0, 10.0, 1.0)])).unwrap();
        assert_eq!(
            check_update(&t, &PoolId::root(), &spec("/", ROOT_ID, vec![])),
            Err(PoolError::Root("changed"))
        );
        assert_eq!(
            check_update(&t, &PoolId("nope".into()), &spec("n", ROOT_ID, vec![])),
            Err(PoolError::NotFound(PoolId("nope".into())))
        );
    }

    #[test]
    fn only_an_idle_leaf_other_than_root_and_default_is_deleted() {
        let t = tree();
        assert_eq!(
            check_delete(&t, &PoolId::root(), 0),
            Err(PoolError::Root("deleted"))
        );
        assert_eq!(
            check_delete(&t, &PoolId::default_pool(), 0),
            Err(PoolError::DefaultUndeletable)
        );
        assert!(matches!(
            check_delete(&t, &PoolId("infra".into()), 0),
            Err(PoolError::NotLeaf { ref children, .. }) if children == "/infra/web"
        ));
        assert_eq!(
            check_delete(&t, &PoolId("web".into()), 2),
            Err(PoolError::Busy {
                path: "/infra/web".into(),
                jobs: 2
            })
        );
        check_delete(&t, &PoolId("web".into()), 0).unwrap();
        assert!(matches!(
            check_delete(&t, &PoolId("gone".into()), 0),
            Err(PoolError::NotFound(_))
        ));
    }

    #[test]
    fn a_pool_holding_jobs_gets_no_children() {
        let err = check_create(
            &tree(),
            &PoolId("api".into()),
            &spec("api", "web", vec![]),
            |p| usize::from(p.as_str() == "web"),
        )
        .unwrap_err();
        assert!(matches!(err, PoolError::ParentHoldsJobs { jobs: 1, .. }));
    }

    #[test]
    fn jobs_name_a_leaf_by_id_or_path_or_run_in_the_default_pool() {
        let t = tree();
        let field = "spec.respool_id";
        assert_eq!(
            check_job_pool(&t, None, field).unwrap().as_str(),
            DEFAULT_ID
        );
        assert_eq!(
            check_job_pool(&t, Some(""), field).unwrap().as_str(),
            DEFAULT_ID
        );
        assert_eq!(
            check_job_pool(&t, Some("web"), field).unwrap().as_str(),
            "web"
        );
        assert_eq!(
            check_job_pool(&t, Some("/infra/web"), field)
                .unwrap()
                .as_str(),
            "web"
        );
        assert!(matches!(
            check_job_pool(&t, Some("infra"), field),
            Err(PoolError::JobPoolNotLeaf { .. })
        ));
        assert!(matches!(
            check_job_pool(&t, Some("/"), field),
            Err(PoolError::JobPoolNotLeaf { .. })
        ));
        assert!(matches!(
            check_job_pool(&t, Some("nope"), field),
            Err(PoolError::JobPoolNotFound { .. })
        ));
    }
}
