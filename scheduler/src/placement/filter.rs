//! A feasibility check: can this task go on this host? Each filter is
//! immutable; the task and the round's host view are its arguments.

use super::host_view::HostView;
use super::place::TaskDemand;

/// Why a host was rejected for a task, e.g. `("resources", "mem")`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rejection {
    /// The filter's name.
    pub filter: &'static str,
    /// What did not fit.
    pub reason: String,
}

/// One link of the feasibility chain.
pub trait Filter: Send + Sync {
    /// Its name, used in rejections and metrics.
    fn name(&self) -> &'static str;
    /// Ok if `task` may go on `host`.
    fn check(&self, task: &TaskDemand, host: &HostView) -> Result<(), Rejection>;
}
