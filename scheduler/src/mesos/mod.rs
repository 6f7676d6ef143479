//! The framework's connection to the Mesos master.
//!
//! - [`session`]: pure subscription state machine (stream id, heartbeats,
//!   redirects, backoff, framework id reuse).
//! - [`backoff`]: jittered exponential backoff.
//! - [`calls`]: the scheduler calls Drover makes, built from model values.
//! - [`driver`]: hyper I/O: the SUBSCRIBE stream and the calls.

pub mod backoff;
pub mod calls;
pub mod driver;
pub mod session;
