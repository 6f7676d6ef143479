//! The framework's connection to the Mesos master.
//!
//! - [`session`]: pure subscription state machine (stream id, heartbeats,
//!   redirects, backoff, framework id reuse).
//! - [`backoff`]: jittered exponential backoff.
//! - [`calls`]: the scheduler calls Drover makes, built from model values.
//! - `lanes`: pure: which waiting call goes to the master next.
//! - [`driver`]: hyper I/O: the SUBSCRIBE stream and the calls.

pub mod backoff;
pub mod calls;
pub mod driver;
pub(crate) mod lanes;
pub mod session;
