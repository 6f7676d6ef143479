//! The chaos suite: Drover's HA under faults, with real processes
//! throughout. Three scheduler replicas on PostgreSQL elected through
//! ZooKeeper, a master set of agent-sim masters found through ZooKeeper,
//! simulated agents plus a real one running drover-executor; a seeded
//! schedule of faults (leader and follower SIGKILLs, ZooKeeper session
//! expiry, a leader partitioned from ZooKeeper, master failover, agent
//! churn, PostgreSQL restarts); a checker that counts what must never
//! happen. The `drover-chaos` binary runs it; `tests/ci_dose.rs` runs its
//! short dose in CI.
//!
//! # Layout
//! - [`config`]: the binary's flags.
//! - [`dose`]: how much chaos: the CI and long presets.
//! - [`schedule`]: the seeded fault schedule. Pure.
//! - [`workload`]: the seeded jobs (pure) and their submission.
//! - [`procs`]: one child process: its recipe, log and signals.
//! - [`cluster`]: ZooKeeper, PostgreSQL, masters and replicas, and the
//!   supervisor that restarts what exits.
//! - [`client`]: bounded HTTP that never panics on a dead peer.
//! - [`observe`]: reading masters, replicas and the store.
//! - [`leadership`]: is a leader at work; leaderless time; percentiles. Pure.
//! - [`faults`]: carrying out one fault, timing the failover.
//! - [`audit`]: the counts (duplicated, re_run, acked_not_stored, lost). Pure.
//! - [`calls`]: the masters' call logs: ACKNOWLEDGEs, calls from replaced
//!   streams. Pure.
//! - [`report`]: the summary and the verdict. Pure.
//! - [`run`]: one run, step by step.

pub mod audit;
pub mod calls;
pub mod client;
pub mod cluster;
pub mod config;
pub mod dose;
pub mod faults;
pub mod leadership;
pub mod observe;
pub mod procs;
pub mod report;
pub mod run;
pub mod schedule;
pub mod workload;
