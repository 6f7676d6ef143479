//! drover-tests: end-to-end tests that start Drover's real binaries on loopback.
//!
//! The tests live in `tests/`; this library holds what they share.
