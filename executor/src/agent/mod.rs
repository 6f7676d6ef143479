//! The executor's connection to its agent: a pure [`session::ExecutorSession`]
//! (subscribe, re-subscribe, acknowledgements, retries) and its hyper
//! [`driver`] that owns the sockets.

pub mod driver;
pub mod session;

pub use session::{Action, ExecutorSession, SessionConfig, ShutdownReason};
