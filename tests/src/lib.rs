//! drover-tests: Drover's cross-binary tests.
//!
//! # Layout
//! - [`sim`]: the deterministic whole-system simulation (the scheduler's
//!   session, engine and store with agent-sim's master, one process,
//!   virtual time, seeded faults).
//!
//! The tests live in `tests/`; this library holds what they share.

pub mod sim;
