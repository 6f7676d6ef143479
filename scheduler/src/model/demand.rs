//! What one run asks of a host: resources, ports, labels, constraints and
//! the placement strategy. Placement takes it as input; the engine builds
//! it from a pod spec.

use super::resources::Resources;
use super::spec::{Constraint, PlacementSpec, PlacementStrategy, PodSpec, PortSpec, Preferences};

/// A task waiting for a host; `key` is the caller's handle for it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskDemand {
    /// The caller's index for the task.
    pub key: usize,
    /// Its job (unique host, exclusive host, zone balance count per job).
    pub job: String,
    /// What it needs (executor overhead included).
    pub resources: Resources,
    /// Its ports (value 0 = dynamic).
    pub ports: Vec<PortSpec>,
    /// Its pod labels (what POD constraints of later tasks count).
    pub labels: Vec<(String, String)>,
    /// Its Peloton constraint.
    pub constraint: Option<Constraint>,
    /// The Peloton constraint it prefers (scored, never blocking).
    pub soft_constraint: Option<Constraint>,
    /// Its Titus-style placement options.
    pub placement: PlacementSpec,
    /// How hosts are ranked for it.
    pub strategy: PlacementStrategy,
    /// The agent it would rather run on, if that host takes it (an
    /// update's `in_place`: the agent its instance ran on).
    pub previous_agent: Option<String>,
}

impl TaskDemand {
    /// A task of `job` needing `resources`, with no ports, labels or
    /// constraints, spread.
    pub fn new(key: usize, job: &str, resources: Resources) -> Self {
        TaskDemand {
            key,
            job: job.to_owned(),
            resources,
            ports: Vec::new(),
            labels: Vec::new(),
            constraint: None,
            soft_constraint: None,
            placement: PlacementSpec::default(),
            strategy: PlacementStrategy::Spread,
            previous_agent: None,
        }
    }
}

impl TaskDemand {
    /// What it prefers of a host (Titus soft constraints); all false when
    /// it prefers nothing.
    pub fn preferences(&self) -> Preferences {
        self.placement.prefer.unwrap_or_default()
    }

    /// Whether it prefers anything: when not, placement skips ranking
    /// hosts by preference altogether.
    pub fn has_preferences(&self) -> bool {
        self.soft_constraint.is_some() || self.preferences() != Preferences::default()
    }
}

/// What a run of `pod` takes from an offer: its containers' limits, plus
/// `overhead` (what the executor running it takes).
pub fn pod_demand(pod: &PodSpec, overhead: &Resources) -> Resources {
    let r = pod.resources();
    Resources {
        cpus: r.cpu_limit,
        mem_mib: r.mem_limit_mb,
        disk_mib: r.disk_limit_mb,
        gpus: r.gpu_limit,
    }
    .plus(overhead)
}
