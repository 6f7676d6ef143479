//! drover-scheduler: the Drover framework. Users submit jobs over HTTP; the
//! scheduler stores them, subscribes to the Mesos master, places the jobs'
//! instances on offers, launches them, follows every status update, and
//! survives its own crash, a master failover and lost agents.
//!
//! # Layout (lower layers first; nothing imports a layer above its own)
//! - [`model`]: jobs, specs, versions, states and Drover's own rules, as
//!   data and pure functions.
//! - [`placement`]: offers × pending runs → assignments. Pure.
//! - [`engine`]: the goal-state engine: inputs in, actions out; no clock,
//!   socket or store.
//! - [`store`]: persistence behind the `Store` trait; SQLite by default.
//! - [`mesos`]: the connection to the master: a pure session state machine,
//!   the edge between protos and the model, and the hyper driver.
//! - [`runner`]: the task that pumps the engine: inputs in, its actions
//!   carried out (store, master, API replies).
//! - [`auth`]: who a request comes from: the credentials file (reloaded
//!   when it changes), login sessions, and where anonymous callers may go.
//! - [`api`]: the HTTP job API (axum): decode, call the model, encode.
//! - [`cli`]: the `drover` command line for users (its own binary).
//! - [`config`]: the binary's flags (`DROVER_*`), split into per-module configs.
//! - [`ha`]: several replicas, one leader elected through ZooKeeper
//!   (`--zk`): the election, what a follower's port answers, abdication.
//! - [`tls`]: rustls for the API port (reloaded on change) and the HTTPS
//!   clients; used by `mesos`, `api` and `cli`, uses none of them.
//! - [`metrics`]: the registry of counters, gauges and histograms the above
//!   update (and collectors read at scrape), rendered for `/metrics`.
//!
//! ```text
//!  API ──▶ runner ──▶ engine ──▶ actions ──▶ store (first) ──▶ master, API replies
//!           ▲          (model, placement)
//!  master ──┘ session events (offers, updates, agent lost)
//! ```

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod engine;
pub mod ha;
pub mod mesos;
pub mod metrics;
pub mod model;
pub mod placement;
pub mod runner;
pub mod store;
pub mod tls;
