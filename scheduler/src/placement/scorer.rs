//! Ranking feasible hosts. A scorer returns a score in [0, 1] (penalties
//! down to -1); the chain takes a weighted mean. A scorer that does not
//! apply to a task (a bin-pack scorer for a spread task) returns 0 for
//! every host, which leaves the ranking to the others.

use super::host_view::HostView;
use crate::model::demand::TaskDemand;

/// One ranking criterion.
pub trait Scorer: Send + Sync {
    /// Its name.
    fn name(&self) -> &'static str;
    /// How good `host` is for `task`, in [-1, 1].
    fn score(&self, task: &TaskDemand, host: &HostView) -> f64;
}

/// The mean of the cpu and memory fractions of `host` left free once
/// `task` lands, in [0, 1].
pub fn free_fraction_after(task: &TaskDemand, host: &HostView) -> f64 {
    let left = host.available.minus(&task.resources);
    let frac = |left: f64, total: f64| if total > 0.0 { left / total } else { 0.0 };
    let cpu = frac(left.cpus, host.offered.cpus);
    let mem = frac(left.mem_mib, host.offered.mem_mib);
    ((cpu + mem) / 2.0).clamp(0.0, 1.0)
}
