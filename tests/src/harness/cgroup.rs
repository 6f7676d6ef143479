//! The cgroup parent a test's real agents run their executors under:
//! `drover-test-<pid>-<n>`, one per agent-sim this test process starts, so
//! parallel tests never share one. agent-sim creates it (`--cgroup-parent`)
//! and removes it when stopped; dropping a [`CgroupParent`] afterwards
//! removes whatever an abnormal stop left, if it is empty. A cgroup that
//! still holds processes is reported and left as it is: the harness never
//! moves a process into or out of a cgroup, and never kills one it did not
//! start.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

/// Where the cgroup hierarchies are mounted.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A test-owned cgroup parent, relative to each hierarchy's root.
pub struct CgroupParent {
    name: String,
}

impl CgroupParent {
    /// A name no other agent-sim of this test process uses.
    pub fn new() -> CgroupParent {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        CgroupParent {
            name: format!("drover-test-{}-{n}", std::process::id()),
        }
    }

    /// The name, as `--cgroup-parent` takes it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the parent exists in any hierarchy.
    pub fn exists(&self) -> bool {
        exists(&self.name)
    }
}

impl Default for CgroupParent {
    fn default() -> CgroupParent {
        CgroupParent::new()
    }
}

impl Drop for CgroupParent {
    fn drop(&mut self) {
        for root in hierarchies() {
            let dir = root.join(&self.name);
            if dir.exists() {
                remove_empty(&dir);
            }
        }
    }
}

/// Whether cgroup `relative` exists in any hierarchy (cgroup v2's single
/// one, or any v1 controller's).
pub fn exists(relative: &str) -> bool {
    hierarchies()
        .iter()
        .any(|root| root.join(relative).exists())
}

/// Fails the test unless it runs as root: real agents run drover-executor,
/// which puts every task in a cgroup of its own.
#[track_caller]
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "real agents run drover-executor, which needs root for cgroups; run as root (CI does)"
    );
}

/// The roots a cgroup can sit under: the mount point itself (cgroup v2)
/// and every directory in it (cgroup v1 controllers, `unified`). On v2
/// those directories are cgroups, where a test's parent never is, so
/// looking there too is harmless.
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    let mut roots = vec![root.to_path_buf()];
    if let Ok(entries) = std::fs::read_dir(root) {
        roots.extend(
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir()),
        );
    }
    roots
}

/// Removes `dir` and the cgroups below it, deepest first. A cgroup with
/// processes in it cannot be removed (EBUSY); it is reported and left.
fn remove_empty(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for child in entries.filter_map(Result::ok).map(|e| e.path()) {
            if child.is_dir() {
                remove_empty(&child);
            }
        }
    }
    if let Err(e) = std::fs::remove_dir(dir) {
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        eprintln!(
            "left cgroup {} in place ({e}); processes: [{}]",
            dir.display(),
            procs.split_whitespace().collect::<Vec<_>>().join(" ")
        );
    }
}
