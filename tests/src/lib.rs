//! drover-tests: Drover's cross-binary tests.
//!
//! # Layout
//! - [`harness`]: starts the real binaries (agent-sim with simulated or
//!   real agents, the scheduler, the CLI) and pymesos on loopback port 0,
//!   talks to them, and stops them by pid; the end-to-end tests in
//!   `tests/` share it.
//! - [`sim`]: the deterministic whole-system simulation (the scheduler's
//!   session, engine and store with agent-sim's master, one process,
//!   virtual time, seeded faults).
//!
//! The tests live in `tests/`; this library holds what they share.

pub mod harness;
pub mod sim;
