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
//! - [`spawn`]: fork and exec into a cgroup, as a fixed list of named steps.
//! - [`logs`]: stdout/stderr pumped into sandbox files with size-capped rotation.
//! - [`usage`]: the resource usage a cgroup reports.

pub mod cgroup;
pub mod limits;
pub mod logs;
pub mod spawn;
pub mod usage;

pub use cgroup::{CgroupError, CgroupManager, CgroupVersion};
pub use limits::ResourceLimits;
pub use usage::Usage;
