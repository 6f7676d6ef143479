//! Test-only support: root checks, per-test cgroup parents, and a fake agent.
#![allow(dead_code, clippy::unwrap_used)]

pub mod executor;
pub mod fake_agent;
pub mod oci_layout;

use std::path::PathBuf;

use drover_executor::container::cgroup::{detect_version, CgroupConfig, CgroupVersion};

/// Fails the test (never skips it) when not root: cgroups need root.
pub fn require_root() {
    // SAFETY: geteuid has no memory effects.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root to create cgroups (CI runs as root); run `sudo cargo test -p drover-executor`");
}

/// A cgroup parent `drover-test-<pid>-<name>` removed (after killing any
/// leftovers) when dropped.
pub struct TestParent {
    pub config: CgroupConfig,
}

impl TestParent {
    /// The host's default hierarchy (v1 on this machine, v2 on modern hosts).
    pub fn new(name: &str) -> Self {
        require_root();
        let root = PathBuf::from("/sys/fs/cgroup");
        let version = detect_version(&root).expect("probing /sys/fs/cgroup");
        Self::at(root, version, name)
    }

    /// A cgroup v2 hierarchy: /sys/fs/cgroup itself on a v2 host, or the
    /// hybrid `unified` mount. Fails loudly when the host has neither.
    pub fn v2(name: &str) -> Self {
        require_root();
        for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
            let root = PathBuf::from(root);
            if root.is_dir() && detect_version(&root).ok() == Some(CgroupVersion::V2) {
                return Self::at(root, CgroupVersion::V2, name);
            }
        }
        panic!("no cgroup2 hierarchy at /sys/fs/cgroup or /sys/fs/cgroup/unified: the kernel or host lacks cgroup v2");
    }

    fn at(root: PathBuf, version: CgroupVersion, name: &str) -> Self {
        let parent = PathBuf::from(format!("drover-test-{}-{name}", std::process::id()));
        Self {
            config: CgroupConfig {
                root,
                parent,
                version,
            },
        }
    }

    /// The parent's directory in one v1 controller (or the v2 directory).
    pub fn dir(&self, controller: &str) -> PathBuf {
        match self.config.version {
            CgroupVersion::V1 => self.config.root.join(controller).join(&self.config.parent),
            CgroupVersion::V2 => self.config.root.join(&self.config.parent),
        }
    }

    /// Names of the child cgroups left under the parent.
    pub fn children(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.dir("freezer")) else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for TestParent {
    fn drop(&mut self) {
        for child in self.children() {
            let manager = self.config.manager(&child);
            let _ = manager.kill_all();
            let _ = manager.destroy();
        }
        if let Err(e) = self.config.remove_parent() {
            eprintln!("cleanup of test cgroup parent failed: {e}");
        }
    }
}

/// Whether a pid is gone (or a zombie waiting for its reaper).
pub fn is_dead(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .map(|s| s.trim_start().starts_with('Z'))
            .unwrap_or(false),
    }
}
