//! drover-executor: runs a Mesos task's processes under Linux cgroups and
//! reports their status over the v1 executor HTTP API.
//!
//! # Layout
//! In data-flow order (agent events -> supervisor -> container -> updates):
//! - [`config`]: the one clap struct, from the `MESOS_*` variables an agent
//!   sets plus Drover's own flags; split into per-module configs.
//! - [`agent`]: the executor <-> agent protocol: a pure session and its
//!   hyper driver.
//! - [`executor`]: the loop that wires the session to the supervisors.
//! - [`supervisor`]: one task's lifecycle, from LAUNCH to its terminal update.
//! - [`health`]: COMMAND / HTTP / TCP health checks with Mesos semantics.
//! - [`checks`]: Mesos checks (readiness), run with the same probes and
//!   reported as `check_status` only when their result changes.
//! - [`image`]: container images from the local store (OCI layouts,
//!   `docker save` tarballs), verified, unpacked into a shared layer cache.
//! - [`container`]: cgroups v1/v2, image roots (overlayfs, `pivot_root`),
//!   spawn, logs, kill, usage, OOM. No Mesos.

pub mod agent;
pub mod checks;
pub mod config;
pub mod container;
pub mod executor;
pub mod health;
pub mod image;
pub mod outputs;
pub mod supervisor;
