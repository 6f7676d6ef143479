//! drover-agent-sim: a Mesos master with simulated agents in one process,
//! speaking the v1 scheduler HTTP API so any framework can register.
//!
//! # Layout
//! Lower modules never import higher ones; in particular [`agent`] knows
//! nothing of [`master`], which is built on it.
//! - [`config`]: the command line and the agent fleet it describes.
//! - [`resources`], [`attributes`]: Mesos flag syntaxes.
//! - [`deadline`]: timers armed from durations a peer chose, capped.
//! - [`ids`]: ids minted like a real master's, and the keys (streams,
//!   tasks, agents, executors) the master and the agents share.
//! - [`fixed_hash`]: hash maps whose order follows the inputs, so a seed replays.
//! - [`agent`]: the agents: the fleet, simulated tasks, and real agents'
//!   executors (their protocol state, processes, cgroups, `/files`).
//! - [`master`]: the master state machine, composed of parts that own their
//!   state, and its drive layer (`/api/v1/scheduler`, `/api/v1/executor`).
//! - [`control`]: `/state`, `/version`, `/metrics` and the `/sim` fault API.
//! - [`operator_proto`], [`operator_json`]: the operator API's wire types
//!   (the maintenance and agent calls), in protobuf and in JSON.
//! - [`ha`]: `--zk`: the instance as one master of a Mesos master set,
//!   contending in ZooKeeper; a standby redirects to the leader, and with
//!   `--state-dir` the master elected takes over the journaled agents and
//!   tasks (`master::journal`, `master::takeover`) before it leads.
//! - [`call_request`]: the HTTP checks every v1 API call passes first.
//! - [`request_clock`]: where a connection is in its request (pure), for
//!   [`timed_io`]: read deadlines on request heads and bodies.
//! - [`server`]: the HTTP server and router.
//! - [`run`]: wires them together for the binary.

pub mod agent;
pub mod attributes;
pub mod call_request;
pub mod config;
pub mod control;
pub mod deadline;
pub mod fixed_hash;
pub mod ha;
pub mod ids;
pub mod master;
pub mod operator_json;
pub mod operator_proto;
pub mod request_clock;
pub mod resources;
pub mod run;
pub mod server;
pub mod timed_io;
