//! The Mesos master: the scheduler API, the allocator, offers and the task
//! registry.
//!
//! # Layout
//! - [`validate`]: call validation before the framework lookup (→ 400).
//! - [`state`]: the master state machine: its records, timers and reads.
//! - [`subscriptions`]: SUBSCRIBE, failover, disconnection, removal.
//! - [`offers`]: allocation cycles and the life of an offer.
//! - [`calls`]: the non-subscribe calls.
//! - [`accept`]: ACCEPT, LAUNCH and LAUNCH_GROUP with Mesos' task checks.
//! - [`updates`]: reliable status updates, acknowledgements, reconciliation.
//! - [`executors`]: real agents' executors: their calls, updates, kills and exits.
//! - [`faults`]: fault inputs from `/sim`.
//! - [`allocator`]: who is offered which agent (pure).
//! - [`events`]: scheduler event constructors.
//! - [`driver`]: the task that owns the state machine (drive layer).
//! - [`scheduler_api`]: the scheduler endpoint, `/api/v1/scheduler` (drive layer).
//! - [`executor_api`]: the real agents' executor endpoint,
//!   `/api/v1/executor`, which the master's task serves because the state
//!   machine keeps their executors (drive layer).

pub mod accept;
pub mod allocator;
pub mod calls;
pub mod driver;
pub mod events;
pub mod executor_api;
pub mod executors;
pub mod faults;
pub mod offers;
pub mod scheduler_api;
pub mod state;
pub mod subscriptions;
pub mod updates;
pub mod validate;

pub use calls::{CallError, CallOk};
pub use state::{ConnId, Effect, Master, MasterConfig};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod executor_tests;
