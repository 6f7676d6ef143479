//! The Mesos master: a pure state machine composed of parts that each own
//! their state, the inputs that route through them, and the drive layer
//! that feeds it over HTTP.
//!
//! # Layout
//! The state machine and its parts (decide):
//! - [`machine`]: [`Master`], the composition: its parts, the calling
//!   contract, timers fired, effects gathered, and the reads.
//! - [`frameworks`]: frameworks, their subscriptions and failover, and the
//!   removed ones.
//! - [`offers`]: outstanding offers, each framework's allocation, and the
//!   [`allocator`] (who is offered which agent; pure).
//! - [`tasks`]: the task registry and its reconciliation answers.
//! - [`history`]: each framework's completed tasks and executors, bounded.
//! - [`status_updates`]: the status update manager: reliable updates,
//!   retries, acknowledgements, update faults.
//! - [`timers`]: the timers, as data.
//! - (`agent::fleet` holds the agents and `agent::executor_registry` the
//!   real agents' executors; both are parts of the master too.)
//!
//! Inputs, each routed to the parts it concerns (`impl Master`):
//! - [`subscriptions`]: SUBSCRIBE, disconnection, removal of a framework.
//! - [`calls`]: the other scheduler calls.
//! - [`accept`]: ACCEPT, LAUNCH and LAUNCH_GROUP.
//! - [`update_delivery`]: a status update's way from agent to framework,
//!   ACKNOWLEDGE and RECONCILE.
//! - [`real_agents`]: real agents' executors: their calls, updates, kills
//!   and exits.
//! - [`faults`]: fault inputs (`/sim`, or a simulation directly).
//! - [`operator`]: operator API calls (maintenance, agent drain and
//!   deactivation) and the allocation cycle's maintenance work (inverse
//!   offers, drained agents); [`maintenance`] is the part that owns the
//!   schedule, machine modes and inverse offers, [`maintenance_rules`]
//!   Mesos' checks (pure).
//! - [`drains`]: DRAIN_AGENT, DEACTIVATE_AGENT, REACTIVATE_AGENT.
//! - [`inverse_offers`]: the cycle's inverse offers and the frameworks'
//!   answers.
//! - [`takeover`]: `--state-dir`: what the journal records, and a new
//!   leader adopting the agents, frameworks and tasks it describes.
//!
//! Pure helpers:
//! - [`validate`]: call validation before the framework lookup (→ 400).
//! - [`launch_checks`]: Mesos' TaskInfo and task group checks.
//! - [`events`]: scheduler event constructors.
//!
//! The journal (`--state-dir`):
//! - [`journal`]: its records and replay (pure) and its files (drive).
//!
//! Drive:
//! - [`driver`]: the task that owns the state machine, and writes the
//!   journal once per turn when it has one.
//! - [`call_log`]: every scheduler call received, with its connection.
//! - [`scheduler_api`]: the scheduler endpoint, `/api/v1/scheduler`.
//! - [`operator_api`]: the operator endpoint, `/api/v1`, and the old
//!   `/maintenance/schedule` and `/maintenance/status` reads.
//! - [`executor_api`]: the real agents' executor endpoint,
//!   `/api/v1/executor`, which the master's task serves because the state
//!   machine keeps their executors.

pub mod accept;
pub mod allocator;
pub mod call_log;
pub mod calls;
pub mod drains;
pub mod driver;
pub mod events;
pub mod executor_api;
pub mod faults;
pub mod frameworks;
pub mod history;
pub mod inverse_offers;
pub mod journal;
pub mod launch_checks;
pub mod machine;
pub mod maintenance;
pub mod maintenance_rules;
pub mod offers;
pub mod operator;
pub mod operator_api;
pub mod real_agents;
pub mod scheduler_api;
pub mod status_updates;
pub mod subscriptions;
pub mod takeover;
pub mod tasks;
pub mod timers;
pub mod update_delivery;
pub mod validate;

pub use calls::{CallError, CallOk};
pub use faults::FaultError;
pub use frameworks::{roles_of, CompletedFramework, Connection, Framework};
pub use history::{CompletedExecutor, CompletedTask, FrameworkHistory, HistoryLimits};
pub use machine::{Counters, Effect, Master, MasterConfig};
pub use offers::OfferRecord;
pub use operator::OperatorError;
pub use status_updates::UpdateFaults;
pub use takeover::Adopted;
pub use tasks::{Runner, StatusMark, Task};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod executor_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod maintenance_tests;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod takeover_tests;
