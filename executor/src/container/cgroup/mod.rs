//! cgroups behind one trait: a [`CgroupManager`] owns one container's cgroup
//! (one directory per hierarchy on v1, one directory on v2), from creation
//! to removal.
//!
//! The version is chosen once, by [`detect_version`] probing the filesystem
//! type of the cgroup root: `cgroup2` means v2, anything else (`tmpfs` with
//! per-controller mounts, including hybrid hosts) means v1. The root is
//! injectable so that the pure parts are tested on fixture directories.
//!
//! Never moves a process it did not start: processes join a cgroup only from
//! inside the child, through the handle [`CgroupManager::procs_paths`].

pub mod files;
pub mod kill;
pub mod v1;
pub mod v2;

use std::path::{Path, PathBuf};

use crate::container::{ResourceLimits, Usage};

/// Which cgroup interface the host offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Per-controller hierarchies (`/sys/fs/cgroup/<controller>`).
    V1,
    /// The unified hierarchy.
    V2,
}

/// Errors from cgroup operations. Every I/O error names its path.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A cgroup file or directory could not be read, written, created or
    /// removed. Retryable only if the cause was transient (EBUSY on rmdir).
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`mkdir`, `write`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A cgroup file held something we could not parse. Not retryable.
    #[error("unexpected content in {path}: {content:?}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What it held.
        content: String,
    },
    /// A controller this container needs is not available on this host.
    /// Not retryable: the kernel or the host's cgroup setup lacks it.
    #[error("cgroup controller {controller} is not available under {root} (kernel or host setup lacks it)")]
    MissingController {
        /// The controller name.
        controller: &'static str,
        /// Where it was looked for.
        root: PathBuf,
    },
    /// The processes in the cgroup would not die within the attempts allowed.
    #[error("cgroup {path} still holds processes {pids:?} after {attempts} kill rounds")]
    Unkillable {
        /// The cgroup.
        path: PathBuf,
        /// The survivors.
        pids: Vec<i32>,
        /// How many freeze/kill/thaw rounds were tried.
        attempts: u32,
    },
}

/// One container's cgroup, from creation to removal.
///
/// Calling contract: `create`, then `apply`, then spawn processes that join
/// through `procs_paths`; `usage`, `oom_killed`, `pids` and `signal_all` any
/// time; `kill_all` then `destroy` at the end (destroy fails while processes
/// remain). All methods block on cgroupfs and belong off async threads.
pub trait CgroupManager: Send + Sync + std::fmt::Debug {
    /// The interface this manager speaks.
    fn version(&self) -> CgroupVersion;
    /// Creates the cgroup directories (and any missing parents).
    fn create(&self) -> Result<(), CgroupError>;
    /// Writes the limits.
    fn apply(&self, limits: &ResourceLimits) -> Result<(), CgroupError>;
    /// The `cgroup.procs` files a child writes itself into before exec.
    fn procs_paths(&self) -> Vec<PathBuf>;
    /// The processes in the cgroup now.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Whether the kernel's OOM killer has killed a process of this cgroup.
    fn oom_killed(&self) -> Result<bool, CgroupError>;
    /// Resource usage now.
    fn usage(&self) -> Result<Usage, CgroupError>;
    /// Sends `signal` to every process in the cgroup (a graceful kill).
    fn signal_all(&self, signal: i32) -> Result<(), CgroupError> {
        for pid in self.pids()? {
            // SAFETY: kill(2) has no memory effects; pids come from our own
            // cgroup, which holds only processes we started.
            unsafe { libc::kill(pid, signal) };
        }
        Ok(())
    }
    /// SIGKILLs every process in the cgroup until it is empty.
    fn kill_all(&self) -> Result<(), CgroupError>;
    /// Removes the cgroup directories (deepest first). Fine if already gone.
    fn destroy(&self) -> Result<(), CgroupError>;
}

/// Probes the filesystem type of `root` (normally `/sys/fs/cgroup`).
pub fn detect_version(root: &Path) -> Result<CgroupVersion, CgroupError> {
    let stat = nix::sys::statfs::statfs(root).map_err(|errno| CgroupError::Io {
        op: "statfs",
        path: root.to_path_buf(),
        source: errno.into(),
    })?;
    if stat.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
        Ok(CgroupVersion::V2)
    } else {
        Ok(CgroupVersion::V1)
    }
}

/// Where containers' cgroups go: a root, a parent path under it, and the
/// version spoken there.
#[derive(Debug, Clone)]
pub struct CgroupConfig {
    /// The cgroup filesystem root; default `/sys/fs/cgroup`.
    pub root: PathBuf,
    /// The parent of every container's cgroup, relative to the root (on v1,
    /// relative to each controller's mount); default `drover`.
    pub parent: PathBuf,
    /// The version, normally from [`detect_version`].
    pub version: CgroupVersion,
}

impl CgroupConfig {
    /// A manager for the container named `name` under the parent.
    pub fn manager(&self, name: &str) -> Box<dyn CgroupManager> {
        let relative = self.parent.join(name);
        match self.version {
            CgroupVersion::V1 => Box::new(v1::V1Manager::new(&self.root, &relative)),
            CgroupVersion::V2 => Box::new(v2::V2Manager::new(&self.root, &relative)),
        }
    }

    /// Removes the (empty) parent directories; used by tests and at exit.
    pub fn remove_parent(&self) -> Result<(), CgroupError> {
        let dirs: Vec<PathBuf> = match self.version {
            CgroupVersion::V1 => v1::CONTROLLERS
                .iter()
                .map(|c| self.root.join(c).join(&self.parent))
                .collect(),
            CgroupVersion::V2 => vec![self.root.join(&self.parent)],
        };
        for dir in dirs {
            files::remove_dir(&dir)?;
        }
        Ok(())
    }
}
