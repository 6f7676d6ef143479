//! An image container's root filesystem: the image's layers assembled into
//! one directory on the host, then entered by the task with `pivot_root`.
//!
//! Two halves, because the child between fork and exec may not allocate:
//! - [`assemble`] (parent, ordinary Rust): mounts the layers with overlayfs
//!   (`lowerdir` = the layers, a fresh `upperdir`/`workdir` per container),
//!   or, when the kernel refuses overlay, copies them flattened into one
//!   directory (the copy fallback) and bind-mounts it onto itself. Either
//!   way the root is a mount point (as `pivot_root` needs) and the mount
//!   points the container needs (`/proc`, `/sys`, `/dev`,
//!   `/mnt/mesos/sandbox`) exist as real directories: they are made here,
//!   refusing a symbolic link on the way, so an image cannot aim a mount at
//!   a host path. [`Rootfs::remove`] unmounts and deletes it all.
//! - [`pivot`] (child, no allocation): in the task's new mount and PID
//!   namespaces, mounts `/proc`, a minimal `/dev` (tmpfs with the usual
//!   character devices bind-mounted, `/dev/pts`, `/dev/shm`), `/sys`
//!   read-only and the sandbox, then `pivot_root`s into the root and
//!   detaches the host's tree. Those mounts live in the task's namespace
//!   only and vanish with it.
//!
//! Mesos does the same split (its provisioner assembles the rootfs on the
//! host; `mesos-containerizer launch` pivots into it).

mod assemble;
pub mod passwd;
pub mod pivot;

pub use assemble::{assemble, Flatten, Rootfs, RootfsError, RootfsKind, RootfsMode};
pub use pivot::PivotPlan;

/// Where the task's sandbox appears inside an image container (Mesos'
/// default `--sandbox_directory`).
pub const SANDBOX_MOUNT_POINT: &str = "/mnt/mesos/sandbox";
