//! The framework's connection to the Mesos master, in data-flow order:
//!
//! ```text
//! master ─▶ driver (subscription) ─▶ session ─▶ events, offers ─▶ SessionEvent ─▶ engine
//! engine ─▶ calls ─▶ DriverHandle ─▶ session ─▶ lanes ─▶ driver (sender, pipelined) ─▶ master
//! ```
//!
//! - [`driver`]: the I/O half, one task owning the session: the SUBSCRIBE
//!   stream in, the calls out (hyper, and HTTP pipelining for
//!   acknowledgements); it owns the acknowledgement accounting.
//! - [`session`]: pure subscription state machine (stream id, heartbeats,
//!   redirects, framework id reuse), with [`backoff`] (jittered
//!   exponential backoff between attempts).
//! - [`events`]: what the engine is told, [`SessionEvent`](events::SessionEvent),
//!   and the stream's protobuf events translated into it, with `offers`
//!   (a Mesos offer as Drover's `Offer`: usable resources, ports,
//!   attributes). Pure; the only place scheduler events are read.
//! - [`task_info`]: a run of a pod spec as a Mesos `TaskInfo`, with
//!   [`health_check`] (the liveness check with Peloton's defaults) and
//!   [`readiness_check`] (the readiness check as a Mesos `check`).
//! - [`calls`]: the scheduler calls Drover makes, built from plain values.
//! - [`framework_guard`]: pure: whether a store without a framework id may
//!   register one, from the master's frameworks; [`master_state`] asks the
//!   master (`/master/state`) before the first SUBSCRIBE.
//! - [`agent_files`]: a run's sandbox listed through its agent's files API
//!   (`/files/browse`) and its files read (`/files/read`), the agent found
//!   in the master's state; [`agents`]: the cluster's agents with their
//!   used and free resources, from the same state.
//! - [`operator`]: the master's operator API (`/api/v1`) for the
//!   maintenance primitives: a drained host taken DOWN, brought back UP.
//! - [`detector`]: `--master zk://`: the leading master read from
//!   ZooKeeper and followed (the session resubscribes when it changes).
//! - `lanes`: pure: which waiting call goes to the master next (the call
//!   sender's decide half).

pub mod agent_files;
pub mod agents;
pub mod backoff;
pub mod calls;
pub mod detector;
pub mod driver;
pub mod events;
pub mod framework_guard;
pub mod health_check;
pub(crate) mod lanes;
pub mod master_state;
pub(crate) mod offers;
pub mod operator;
pub mod readiness_check;
pub mod session;
pub mod task_info;
