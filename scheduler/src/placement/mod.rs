//! Placement: pending tasks × the agents' offered resources → assignments.
//! Pure code (no I/O, no clock); the jobs runner calls it with what it
//! holds. Shaped as Nomad's stack: filters, then scorers, then pick.
//!
//! - [`host_view`]: one agent's offered resources, ports, attributes and
//!   pods, minus what this round has already assigned there.
//! - [`round`]: the cluster-wide tally of a round (zones, instances per zone).
//! - [`filter`]: the `Filter` trait and `Rejection`.
//! - filters, one per file, in chain order: [`resources_fit`],
//!   [`ports_fit`], [`label_constraint`], [`unique_host`],
//!   [`exclusive_host`], [`zone_balance`].
//! - [`preference`]: the `Preference` trait (soft constraints: rank, never
//!   reject); each lives beside its hard form: [`label_constraint`]
//!   (`soft_constraint`), [`exclusive_host`], [`unique_host`],
//!   [`zone_balance`].
//! - [`scorer`]: the `Scorer` trait; scorers [`spread`] and [`binpack`].
//! - [`chain`]: the filters and scorers in the order they run, and why.
//! - [`sample`]: which hosts a task looks at, in what order, and how many.
//! - [`place`]: runs the chain for every task; explains every miss.

pub mod binpack;
pub mod chain;
pub mod exclusive_host;
pub mod filter;
pub mod host_view;
pub mod label_constraint;
pub mod place;
pub mod ports_fit;
pub mod preference;
pub mod resources_fit;
pub mod round;
pub mod sample;
pub mod scorer;
pub mod spread;
pub mod unique_host;
pub mod zone_balance;

pub use chain::{default_chain, Chain};
pub use host_view::{HostView, PodOnHost};
pub use place::{place, Assignment, Placement, Placer, Unplaced};
pub use round::Round;
pub use sample::PlacementConfig;
