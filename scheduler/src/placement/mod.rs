//! Placement: pending tasks × the agents' offered resources → assignments.
//! Pure code (no I/O, no clock); the jobs runner calls it with what it holds.
//!
//! Shaped as Nomad's stack so the next issue can grow it without a rebuild:
//! - [`host_view`]: one agent's offered resources minus what this round
//!   has already assigned (Drover's own view; no Mesos protos here).
//! - [`filter`]: the `Filter` trait and `Rejection`.
//! - [`resources_fit`]: the first filter: does the task fit.
//! - [`scorer`]: the `Scorer` trait and the spread scorer.
//! - [`chain`]: the filters and scorers in the order they run, and why.
//! - [`place`]: runs the chain over every task; explains every miss.

pub mod chain;
pub mod filter;
pub mod host_view;
pub mod place;
pub mod resources_fit;
pub mod scorer;

pub use chain::{default_chain, Chain};
pub use host_view::{HostView, Resources};
pub use place::{place, Assignment, Placement, TaskDemand, Unplaced};
