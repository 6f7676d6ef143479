//! The end-to-end harness: what `tests/*.rs` need to start Drover's real
//! binaries (agent-sim with simulated or real agents, the scheduler, the
//! CLI) and a third-party framework (pymesos), each on `127.0.0.1` port 0
//! in temporary directories, talk to them, and wait for what they report.
//! Every process it starts is stopped by its own pid when its handle is
//! dropped, and every cgroup a test's real agents use is the test's own.
//!
//! Helpers fail the test (panic) with what a reader needs to act (the
//! binary and its path, the address, the request, the last state seen)
//! rather than return errors: a harness failure is a test failure.
//!
//! # Layout
//! - [`binaries`]: where the binaries are, built on demand when missing.
//! - [`browser`]: the UI's browser scripts (Chromium), run in steps.
//! - [`pki`]: a test CA and the certificates it signs (rcgen).
//! - [`process`]: a child on port 0 that reports its address, stopped by
//!   pid (SIGTERM, then SIGKILL) on drop.
//! - [`cgroup`]: the test-owned cgroup parent of real agents.
//! - [`agent_sim`]: `drover-agent-sim` and what tests read from `/sim`.
//! - [`scheduler`]: `drover-scheduler` on a test's data dir.
//! - [`http`]: one request per connection, and JSON exchanges.
//! - [`job_api`]: the scheduler's job API as tests use it.
//! - [`framework`]: a minimal Mesos framework (v1 scheduler API).
//! - [`operator`]: the Mesos operator API (`/api/v1`): maintenance calls.
//! - [`kfp`]: the Kubeflow Pipelines 1.8 venv and its Python drivers.
//! - [`pymesos`]: the pymesos venv and the Python frameworks it runs.
//! - [`run`]: a binary run to its exit, or in a mount namespace of its own.
//! - [`wait`]: bounded polling.
//! - [`test_images`]: the container test images, built once per process.
//!
//! [`run`] and [`job_api::job_spec`] come from `drover-test-support`,
//! which the scheduler's and agent-sim's own tests use too: they cannot
//! depend on this crate, which depends on theirs.

pub mod agent_sim;
pub mod binaries;
pub mod browser;
pub mod cgroup;
pub mod framework;
pub mod http;
pub mod job_api;
pub mod kfp;
pub mod operator;
pub mod pki;
pub mod process;
pub mod pymesos;
pub use drover_test_support::images::test_images;
pub use drover_test_support::run;
pub mod scheduler;
pub mod venv;
use drover_test_support::job_spec as shared_job_spec;
pub mod wait;
