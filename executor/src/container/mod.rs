//! Containers: a cgroup per task, processes spawned into it before they
//! exec, their output captured, their usage read, and the whole group killed.
//!
//! This module knows nothing of Mesos: the supervisor turns a `TaskInfo` into
//! [`ResourceLimits`] and a [`spawn::SpawnSpec`] at the edge.
//!
//! # Layout
//! - [`limits`]: Drover's own resource limits, the input to every controller.
//! - [`cgroup`]: the [`cgroup::CgroupManager`] trait, its v1 and v2
//!   implementations, and the probe that picks one.
//! - [`user`]: users looked up by name, and the credentials a process takes.
//! - [`spawn`]: fork and exec into a cgroup, as a fixed list of named steps.
//! - [`rootfs`]: an image container's root: layers assembled with overlayfs
//!   (or copied), entered with `pivot_root`.
//! - [`pid_namespace`]: the init and relay around a task in its own PID
//!   namespace, so that it gets SIGTERM like any process.
//! - [`logs`]: stdout/stderr pumped into sandbox files with size-capped rotation.
//! - [`usage`]: the resource usage a cgroup reports.

pub mod cgroup;
pub mod limits;
pub mod logs;
pub mod pid_namespace;
pub mod rootfs;
pub mod spawn;
pub mod usage;
pub mod user;

pub use cgroup::{CgroupError, CgroupManager, CgroupVersion};
pub use limits::ResourceLimits;
pub use usage::Usage;
