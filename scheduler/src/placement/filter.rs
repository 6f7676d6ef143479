//! A feasibility check: can this task go on this host? Each filter is
//! immutable; the task, the host's view and the round's tally are its
//! arguments. Two questions, one answer: [`Filter::admits`] is the hot
//! path (no allocation, asked of every host a task looks at);
//! [`Filter::check`] says why not, and is asked only for tasks that end up
//! unplaced.

use super::host_view::HostView;
use super::round::Round;
use crate::model::demand::TaskDemand;
use std::borrow::Cow;

/// Why a host was rejected for a task, e.g. `("constraint", "zone==c")`.
/// The reason reads as the requirement the host failed, so that "no agent
/// satisfies {reason}" is a sentence.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rejection {
    /// The filter's name.
    pub filter: &'static str,
    /// The requirement the host did not meet: static where it can be, so
    /// explaining a miss over many hosts rarely allocates.
    pub reason: Cow<'static, str>,
}

/// One link of the feasibility chain.
pub trait Filter: Send + Sync {
    /// Its name, used in rejections and metrics.
    fn name(&self) -> &'static str;
    /// Ok if `task` may go on `host`.
    fn check(&self, task: &TaskDemand, host: &HostView, round: &Round) -> Result<(), Rejection>;
    /// Whether `task` may go on `host`: always `check(..).is_ok()`.
    /// Filters whose reasons are built per host override it to skip that.
    fn admits(&self, task: &TaskDemand, host: &HostView, round: &Round) -> bool {
        self.check(task, host, round).is_ok()
    }
}
