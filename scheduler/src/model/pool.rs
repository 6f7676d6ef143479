//! Resource pools (Peloton `respool`): a tree rooted at `/` whose leaves
//! hold jobs. Each pool says, per resource kind, what it is guaranteed
//! (`reservation`), what it may never exceed (`limit`) and its weight for
//! the capacity above the reservations (`share`). This module holds the
//! pools as stored and the tree's lookups; who gets how much is the
//! fair-share policy's, and what it admits the engine's.

use super::resources::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A pool's id (Peloton `ResourcePoolID.value`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PoolId(pub String);

impl PoolId {
    /// The root's id, as Peloton names it.
    pub fn root() -> PoolId {
        PoolId(ROOT_ID.to_string())
    }

    /// The pool of jobs that name none.
    pub fn default_pool() -> PoolId {
        PoolId(DEFAULT_ID.to_string())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Checks a client-chosen pool id: 1 to [`MAX_POOL_ID_LEN`] ASCII
    /// letters, digits, `_`, `.` or `-` (not `.` or `..`), as job ids.
    pub fn parse(s: &str) -> Option<PoolId> {
        let ok = !s.is_empty()
            && s.len() <= MAX_POOL_ID_LEN
            && s != "."
            && s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        ok.then(|| PoolId(s.to_owned()))
    }
}

/// The longest pool id a client may choose.
pub const MAX_POOL_ID_LEN: usize = 64;

impl std::fmt::Display for PoolId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The root pool's id; its path is `/`. It is never stored: the tree
/// always has it, and it cannot be changed or deleted.
pub const ROOT_ID: &str = "root";

/// The default pool's id; its path is `/default`. Jobs that name no pool
/// run in it. It exists from the start (unlimited, share 1) and may be
/// reconfigured like any pool, but not deleted.
pub const DEFAULT_ID: &str = "default";

/// A resource kind a pool configures (Peloton `ResourceSpec.kind`: "cpu",
/// "memory" (MiB), "disk" (MiB), "gpu").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    /// CPU cores.
    Cpu,
    /// Memory, MiB.
    Memory,
    /// Disk, MiB.
    Disk,
    /// GPUs.
    Gpu,
}

impl ResourceKind {
    /// Every kind, in Peloton's order.
    pub const ALL: [ResourceKind; 4] = [
        ResourceKind::Cpu,
        ResourceKind::Memory,
        ResourceKind::Disk,
        ResourceKind::Gpu,
    ];

    /// Peloton's name for it.
    pub fn name(self) -> &'static str {
        match self {
            ResourceKind::Cpu => "cpu",
            ResourceKind::Memory => "memory",
            ResourceKind::Disk => "disk",
            ResourceKind::Gpu => "gpu",
        }
    }

    /// The kind Peloton's name names.
    pub fn parse(name: &str) -> Option<ResourceKind> {
        ResourceKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// This kind's amount in `resources`.
    pub fn of(self, resources: &Resources) -> f64 {
        match self {
            ResourceKind::Cpu => resources.cpus,
            ResourceKind::Memory => resources.mem_mib,
            ResourceKind::Disk => resources.disk_mib,
            ResourceKind::Gpu => resources.gpus,
        }
    }

    /// `resources` with this kind's amount set to `amount`.
    pub fn set(self, resources: &mut Resources, amount: f64) {
        match self {
            ResourceKind::Cpu => resources.cpus = amount,
            ResourceKind::Memory => resources.mem_mib = amount,
            ResourceKind::Disk => resources.disk_mib = amount,
            ResourceKind::Gpu => resources.gpus = amount,
        }
    }
}

/// Peloton `ReservationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationType {
    /// Unused reservation is lent to other pools and taken back.
    #[default]
    Elastic,
    /// Unused reservation is kept for the pool.
    Static,
}

/// One kind's configuration (Peloton `ResourceSpec`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolResource {
    /// Which kind.
    pub kind: ResourceKind,
    /// Guaranteed to the pool when it has demand (0 when not given).
    #[serde(default)]
    pub reservation: f64,
    /// Never exceeded by the pool's running pods. Always given: a limit
    /// left out of a configured kind would be read as 0 by Peloton.
    pub limit: f64,
    /// Weight for the capacity above the reservations (1 when not given).
    #[serde(default = "one")]
    pub share: f64,
    /// Whether an unused reservation is lent.
    #[serde(default)]
    pub reservation_type: ReservationType,
}

fn one() -> f64 {
    1.0
}

/// Peloton `SchedulingPolicy`: the order of a pool's pending pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulingPolicy {
    /// Higher `SlaSpec.priority` first, then older first.
    #[default]
    PriorityFifo,
}

/// A pool's configuration (Peloton `ResourcePoolSpec`), as the user gave
/// it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolSpec {
    /// Its name, unique among its siblings; its path is its parent's path
    /// and this name.
    pub name: String,
    /// Owning team.
    #[serde(default)]
    pub owning_team: String,
    /// LDAP groups (kept and shown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ldap_groups: Vec<String>,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Per kind; a kind not listed has reservation 0, no limit, share 1.
    #[serde(default)]
    pub resources: Vec<PoolResource>,
    /// Its parent (the root when absent).
    #[serde(default = "PoolId::root")]
    pub parent: PoolId,
    /// The order of its pending pods.
    #[serde(default)]
    pub policy: SchedulingPolicy,
    /// Peloton `ControllerLimit.max_percent`: kept and shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller_limit_percent: Option<f64>,
    /// Peloton `SlackLimit.maxPercent`: kept and shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack_limit_percent: Option<f64>,
}

impl PoolSpec {
    /// This kind's configuration, or the default (nothing reserved, no
    /// limit, share 1).
    pub fn resource(&self, kind: ResourceKind) -> PoolResource {
        self.resources
            .iter()
            .find(|r| r.kind == kind)
            .cloned()
            .unwrap_or(PoolResource {
                kind,
                reservation: 0.0,
                limit: f64::INFINITY,
                share: 1.0,
                reservation_type: ReservationType::Elastic,
            })
    }

    /// The reservation of every kind.
    pub fn reservation(&self) -> Resources {
        self.per_kind(|r| r.reservation)
    }

    /// The limit of every kind (infinite where none is set).
    pub fn limit(&self) -> Resources {
        self.per_kind(|r| r.limit)
    }

    fn per_kind(&self, field: impl Fn(&PoolResource) -> f64) -> Resources {
        let mut out = Resources::default();
        for kind in ResourceKind::ALL {
            kind.set(&mut out, field(&self.resource(kind)));
        }
        out
    }
}

/// A pool as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pool {
    /// Its id.
    pub id: PoolId,
    /// Its configuration.
    pub spec: PoolSpec,
    /// Bumped by every update (Peloton `Revision.version`).
    pub version: u64,
    /// When created and last updated, Unix ms.
    pub created_ms: u64,
    /// When last updated, Unix ms.
    pub updated_ms: u64,
}

/// The pools as a tree: the root (never stored), the default pool (stored
/// once reconfigured) and the stored pools.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PoolTree {
    pools: BTreeMap<PoolId, Pool>,
}

impl PoolTree {
    /// The tree of `stored` pools (the root and the default pool are added
    /// when not among them).
    pub fn from_pools(stored: Vec<Pool>) -> PoolTree {
        let mut pools: BTreeMap<PoolId, Pool> =
            stored.into_iter().map(|p| (p.id.clone(), p)).collect();
        for (id, name) in [(ROOT_ID, "/"), (DEFAULT_ID, DEFAULT_ID)] {
            pools.entry(PoolId(id.to_string())).or_insert_with(|| Pool {
                id: PoolId(id.to_string()),
                spec: PoolSpec {
                    name: name.to_string(),
                    owning_team: String::new(),
                    ldap_groups: Vec::new(),
                    description: String::new(),
                    resources: Vec::new(),
                    parent: PoolId::root(),
                    policy: SchedulingPolicy::PriorityFifo,
                    controller_limit_percent: None,
                    slack_limit_percent: None,
                },
                version: 0,
                created_ms: 0,
                updated_ms: 0,
            });
        }
        PoolTree { pools }
    }

    /// A pool by id.
    pub fn get(&self, id: &PoolId) -> Option<&Pool> {
        self.pools.get(id)
    }

    /// Every pool, the root included, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Pool> {
        self.pools.values()
    }

    /// The pool's children, by id.
    pub fn children<'a>(&'a self, id: &'a PoolId) -> impl Iterator<Item = &'a Pool> + 'a {
        self.pools
            .values()
            .filter(move |p| p.id != *id && p.spec.parent == *id)
    }

    /// Whether the pool has no children (only leaves hold jobs).
    pub fn is_leaf(&self, id: &PoolId) -> bool {
        self.children(id).next().is_none()
    }

    /// The pool's path: `/` for the root, `/a/b` below it. None for an
    /// unknown id (or a broken parent chain).
    pub fn path(&self, id: &PoolId) -> Option<String> {
        let mut names = Vec::new();
        let mut at = self.pools.get(id)?;
        // Bounded by the number of pools: a cycle cannot loop forever.
        for _ in 0..=self.pools.len() {
            if at.id.as_str() == ROOT_ID {
                names.reverse();
                return Some(format!("/{}", names.join("/")));
            }
            names.push(at.spec.name.as_str());
            at = self.pools.get(&at.spec.parent)?;
        }
        None
    }

    /// The pool at `path` (`/a/b`; a trailing slash is allowed).
    pub fn lookup(&self, path: &str) -> Option<&Pool> {
        let path = path.trim_end_matches('/');
        if path.is_empty() {
            return self.pools.get(&PoolId::root());
        }
        self.pools
            .values()
            .find(|p| self.path(&p.id).as_deref() == Some(path))
    }

    /// The pool a job runs in: the one it names (by id, or by path when
    /// the name starts with `/`), or the default pool.
    pub fn pool_of(&self, respool_id: Option<&str>) -> PoolId {
        respool_id
            .and_then(|named| self.resolve(named))
            .map(|p| p.id.clone())
            .unwrap_or_else(PoolId::default_pool)
    }

    /// The pool a job's `respool_id` names: an id, or a path (`/a/b`).
    /// None for an empty or unknown name.
    pub fn resolve(&self, named: &str) -> Option<&Pool> {
        if named.is_empty() {
            return None;
        }
        if named.starts_with('/') {
            return self.lookup(named);
        }
        self.pools.get(&PoolId(named.to_owned()))
    }

    /// The pool's ancestors, nearest first, the root last (empty for the
    /// root). Bounded by the number of pools.
    pub fn ancestors(&self, id: &PoolId) -> Vec<PoolId> {
        let mut out = Vec::new();
        let mut at = self.pools.get(id);
        while let Some(pool) = at {
            if pool.id.as_str() == ROOT_ID || out.len() > self.pools.len() {
                break;
            }
            out.push(pool.spec.parent.clone());
            at = self.pools.get(&pool.spec.parent);
        }
        out
    }

    /// Puts a pool (created or updated).
    pub fn put(&mut self, pool: Pool) {
        self.pools.insert(pool.id.clone(), pool);
    }

    /// Removes a pool.
    pub fn remove(&mut self, id: &PoolId) -> Option<Pool> {
        self.pools.remove(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(id: &str, name: &str, parent: &str) -> Pool {
        let mut tree = PoolTree::from_pools(Vec::new());
        let mut p = tree.pools.remove(&PoolId::default_pool()).unwrap();
        p.id = PoolId(id.to_string());
        p.spec.name = name.to_string();
        p.spec.parent = PoolId(parent.to_string());
        p
    }

    #[test]
    fn paths_and_lookups_follow_the_parents() {
        let tree = PoolTree::from_pools(vec![
            pool("infra", "infrastructure", ROOT_ID),
            pool("compute", "compute", "infra"),
        ]);
        assert_eq!(tree.path(&PoolId::root()).as_deref(), Some("/"));
        assert_eq!(
            tree.path(&PoolId("compute".into())).as_deref(),
            Some("/infrastructure/compute")
        );
        assert_eq!(
            tree.lookup("/infrastructure/compute/")
                .map(|p| p.id.as_str()),
            Some("compute")
        );
        assert_eq!(tree.lookup("/").map(|p| p.id.as_str()), Some(ROOT_ID));
        assert!(tree.lookup("/nope").is_none());
        assert!(!tree.is_leaf(&PoolId("infra".into())));
        assert!(tree.is_leaf(&PoolId("compute".into())));
        assert_eq!(tree.pool_of(Some("compute")).as_str(), "compute");
        assert_eq!(tree.pool_of(None).as_str(), DEFAULT_ID);
        assert_eq!(tree.pool_of(Some("gone")).as_str(), DEFAULT_ID);
    }

    #[test]
    fn a_kind_not_configured_is_unlimited_with_share_one() {
        let p = pool("a", "a", ROOT_ID);
        let cpu = p.spec.resource(ResourceKind::Cpu);
        assert_eq!(cpu.reservation, 0.0);
        assert!(cpu.limit.is_infinite());
        assert_eq!(cpu.share, 1.0);
    }
}
