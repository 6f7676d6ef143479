//! A feasibility check: can this task go on this host? Each filter is
//! immutable; the task, the host's view and the round's tally are its
//! arguments.

use super::host_view::HostView;
use super::place::TaskDemand;
use super::round::Round;

/// Why a host was rejected for a task, e.g. `("constraint", "zone==c")`.
/// The reason reads as the requirement the host failed, so that "no agent
/// satisfies {reason}" is a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rejection {
    /// The filter's name.
    pub filter: &'static str,
    /// The requirement the host did not meet.
    pub reason: String,
}

/// One link of the feasibility chain.
pub trait Filter: Send + Sync {
    /// Its name, used in rejections and metrics.
    fn name(&self) -> &'static str;
    /// Ok if `task` may go on `host`.
    fn check(&self, task: &TaskDemand, host: &HostView, round: &Round) -> Result<(), Rejection>;
}
