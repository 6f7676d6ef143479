//! drover-scheduler: the Drover framework. Users submit jobs over HTTP; the
//! scheduler stores them, subscribes to the Mesos master, places the jobs'
//! instances on offers, launches them, follows every status update, and
//! survives its own crash, a master failover and lost agents.
//!
//! # Layout (in data-flow order)
//! - [`config`]: the binary's flags (`DROVER_*`), split into per-module configs.
//! - [`api`]: the HTTP job API (axum): decode, call the model, encode.
//! - [`store`]: durable state behind the `Store` trait; SQLite by default.
//! - [`jobs`]: the job model, the pure goal-state engine (`reconcile`) and
//!   the runner that drives it, owning the store's one writer.
//! - [`placement`]: offers × pending tasks → assignments. Pure.
//! - [`mesos`]: the subscription to the master: a pure session state machine
//!   and the hyper driver that pumps it.
//! - [`metrics`]: counters shared by the above, rendered for `/metrics`.
//! - [`ids`]: job, instance and task ids.
//! - [`cli`]: the `drover` command line for users (its own binary).

pub mod api;
pub mod cli;
pub mod config;
pub mod jobs;
pub mod mesos;
pub mod metrics;
pub mod model;
pub mod placement;
pub mod store;
