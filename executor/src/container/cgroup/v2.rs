//! cgroup v2: one directory in the unified hierarchy (`<root>/<parent>/<name>`).
//!
//! Controllers must be enabled in each ancestor's `cgroup.subtree_control`;
//! we enable them only in directories we create (the parent), and expect the
//! host to delegate them to the root of our parent. Kill uses `cgroup.kill`
//! (Linux 5.14+) and falls back to `cgroup.freeze`.

use std::path::{Path, PathBuf};

use super::files;
use super::kill::{self, Freezer};
use super::{CgroupError, CgroupManager, CgroupVersion};
use crate::container::limits::CFS_PERIOD_US;
use crate::container::{ResourceLimits, Usage};

/// One file to write in the container's directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The controller the file belongs to (must be enabled in the parent).
    pub controller: &'static str,
    /// The file.
    pub file: &'static str,
    /// What to write.
    pub value: String,
}

fn setting(controller: &'static str, file: &'static str, value: impl ToString) -> Setting {
    Setting {
        controller,
        file,
        value: value.to_string(),
    }
}

/// Renders limits to the v2 files to write, in the order to write them.
pub fn render(limits: &ResourceLimits) -> Vec<Setting> {
    let mut out = Vec::new();
    if let Some(weight) = limits.cpu_weight() {
        out.push(setting("cpu", "cpu.weight", weight));
    }
    if let Some(quota) = limits.cfs_quota_us() {
        out.push(setting(
            "cpu",
            "cpu.max",
            format!("{quota} {CFS_PERIOD_US}"),
        ));
    }
    if let Some(bytes) = limits.mem_bytes {
        out.push(setting("memory", "memory.max", bytes));
        // No swap on top of the limit.
        out.push(setting("memory", "memory.swap.max", 0));
    }
    if let Some(max) = limits.pids_max {
        out.push(setting("pids", "pids.max", max));
    }
    out
}

/// A container's cgroup on a v2 host.
#[derive(Debug)]
pub struct V2Manager {
    root: PathBuf,
    relative: PathBuf,
}

impl V2Manager {
    /// A manager for `<root>/<relative>`.
    pub fn new(root: &Path, relative: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            relative: relative.to_path_buf(),
        }
    }

    /// The container's directory.
    pub fn dir(&self) -> PathBuf {
        self.root.join(&self.relative)
    }

    /// Enables `controllers` for the container: in every directory between
    /// the root and the container that this call had to create, plus the
    /// container's parent. The root's own delegation is the host's job.
    fn enable(&self, controllers: &[&'static str]) -> Result<(), CgroupError> {
        let Some(parent) = self.dir().parent().map(Path::to_path_buf) else {
            return Ok(());
        };
        let mut chain = Vec::new();
        let mut dir = parent.clone();
        while dir != self.root && dir.starts_with(&self.root) {
            chain.push(dir.clone());
            match dir.parent() {
                Some(up) => dir = up.to_path_buf(),
                None => break,
            }
        }
        chain.reverse();
        for dir in chain {
            let available = files::read(&dir.join("cgroup.controllers"))?;
            for controller in controllers {
                if !available.split_whitespace().any(|c| c == *controller) {
                    return Err(CgroupError::MissingController {
                        controller,
                        root: dir.clone(),
                    });
                }
            }
            let enabled = files::read(&dir.join("cgroup.subtree_control"))?;
            for controller in controllers {
                if !enabled.split_whitespace().any(|c| c == *controller) {
                    files::write(
                        &dir.join("cgroup.subtree_control"),
                        &format!("+{controller}"),
                    )?;
                }
            }
        }
        Ok(())
    }

    /// Freezes every process of the cgroup (`cgroup.freeze`) and waits, a
    /// second at most, for `cgroup.events` to say `frozen 1`.
    pub fn freeze(&self) -> Result<(), CgroupError> {
        files::write(&self.dir().join("cgroup.freeze"), "1")?;
        let events = self.dir().join("cgroup.events");
        kill::wait_for_state(
            || Ok(files::read_key(&events, "frozen")?.unwrap_or(0).to_string()),
            "1",
        )
    }

    /// Lets the frozen processes run again.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        files::write(&self.dir().join("cgroup.freeze"), "0")
    }

    /// The kill used on kernels without `cgroup.kill` (before 5.14): freeze,
    /// SIGKILL every pid, thaw, until empty. Public so that the v2 lane
    /// proves it on a kernel that also has `cgroup.kill`.
    pub fn kill_by_freezing(&self) -> Result<(), CgroupError> {
        kill::kill_frozen(self)
    }
}

impl Freezer for V2Manager {
    fn freeze(&self) -> Result<(), CgroupError> {
        V2Manager::freeze(self)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        V2Manager::thaw(self)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        CgroupManager::pids(self)
    }

    fn path(&self) -> PathBuf {
        self.dir()
    }
}

impl CgroupManager for V2Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn create(&self) -> Result<(), CgroupError> {
        if let Some(parent) = self.dir().parent() {
            files::create_dir(parent)?;
        }
        files::create_dir(&self.dir())
    }

    fn apply(&self, limits: &ResourceLimits) -> Result<(), CgroupError> {
        let settings = render(limits);
        let mut controllers: Vec<&'static str> = settings.iter().map(|s| s.controller).collect();
        controllers.dedup();
        if !controllers.is_empty() {
            self.enable(&controllers)?;
        }
        for setting in settings {
            let path = self.dir().join(setting.file);
            if setting.file == "memory.swap.max" && !path.exists() {
                // Kernels without swap accounting have no swap to forbid.
                continue;
            }
            files::write(&path, &setting.value)?;
        }
        Ok(())
    }

    fn procs_paths(&self) -> Vec<PathBuf> {
        vec![self.dir().join("cgroup.procs")]
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        files::read_pids(&self.dir().join("cgroup.procs"))
    }

    fn oom_killed(&self) -> Result<bool, CgroupError> {
        let path = self.dir().join("memory.events");
        if !path.exists() {
            return Ok(false);
        }
        Ok(files::read_key(&path, "oom_kill")?.unwrap_or(0) > 0)
    }

    fn usage(&self) -> Result<Usage, CgroupError> {
        let dir = self.dir();
        let stat = dir.join("cpu.stat");
        let user_usec = files::read_key(&stat, "user_usec")?.unwrap_or(0);
        let system_usec = files::read_key(&stat, "system_usec")?.unwrap_or(0);
        let current = dir.join("memory.current");
        let (mem_bytes, mem_limit_bytes) = if current.exists() {
            (
                files::read_u64(&current)?,
                files::read_limit(&dir.join("memory.max"))?,
            )
        } else {
            (0, None)
        };
        Ok(Usage {
            cpu_user_secs: user_usec as f64 / 1e6,
            cpu_system_secs: system_usec as f64 / 1e6,
            mem_bytes,
            mem_limit_bytes,
            processes: CgroupManager::pids(self)?.len() as u32,
        })
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        let dir = self.dir();
        if !dir.exists() {
            return Ok(());
        }
        let kill_file = dir.join("cgroup.kill");
        if kill_file.exists() {
            // One write kills every process, including ones forking now.
            files::write(&kill_file, "1")?;
            for _ in 0..kill::MAX_KILL_ROUNDS * 10 {
                if CgroupManager::pids(self)?.is_empty() {
                    return Ok(());
                }
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
        }
        kill::kill_frozen(self)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        files::remove_dir(&self.dir())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn render_writes_weight_max_memory_without_swap_and_pids() {
        let limits = ResourceLimits {
            cpus: Some(1.0),
            cfs_quota: true,
            mem_bytes: Some(64 << 20),
            pids_max: Some(20),
        };
        let files: Vec<_> = render(&limits)
            .into_iter()
            .map(|s| (s.file, s.value))
            .collect();
        assert_eq!(
            files,
            vec![
                ("cpu.weight", "39".to_string()),
                ("cpu.max", "100000 100000".to_string()),
                ("memory.max", (64u64 << 20).to_string()),
                ("memory.swap.max", "0".to_string()),
                ("pids.max", "20".to_string()),
            ]
        );
    }

    fn fixture(controllers: &str) -> (tempfile::TempDir, V2Manager) {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), controllers).unwrap();
        let manager = V2Manager::new(root.path(), Path::new("drover/task-1"));
        manager.create().unwrap();
        let parent = root.path().join("drover");
        std::fs::write(parent.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(parent.join("cgroup.subtree_control"), "").unwrap();
        (root, manager)
    }

    #[test]
    fn apply_enables_controllers_in_the_parent_and_writes_limits() {
        let (root, manager) = fixture("cpu memory pids");
        let limits = ResourceLimits {
            mem_bytes: Some(4096),
            pids_max: Some(5),
            ..Default::default()
        };
        manager.apply(&limits).unwrap();
        let control =
            std::fs::read_to_string(root.path().join("drover/cgroup.subtree_control")).unwrap();
        // Fixture files are plain files: the last write wins.
        assert_eq!(control, "+pids");
        assert_eq!(
            std::fs::read_to_string(manager.dir().join("memory.max")).unwrap(),
            "4096"
        );
        assert_eq!(
            std::fs::read_to_string(manager.dir().join("pids.max")).unwrap(),
            "5"
        );
    }

    #[test]
    fn apply_names_a_controller_the_host_does_not_delegate() {
        let (_root, manager) = fixture("cpu");
        let limits = ResourceLimits {
            pids_max: Some(5),
            ..Default::default()
        };
        let err = manager.apply(&limits).unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::MissingController {
                    controller: "pids",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn usage_and_oom_are_read_from_fixture_files() {
        let (_root, manager) = fixture("cpu memory pids");
        let put = |f: &str, v: &str| std::fs::write(manager.dir().join(f), v).unwrap();
        put(
            "cpu.stat",
            "usage_usec 3500000\nuser_usec 3000000\nsystem_usec 500000\n",
        );
        put("memory.current", "8192\n");
        put("memory.max", "max\n");
        put("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n");
        put("cgroup.procs", "42\n");
        let usage = manager.usage().unwrap();
        assert_eq!(
            usage,
            Usage {
                cpu_user_secs: 3.0,
                cpu_system_secs: 0.5,
                mem_bytes: 8192,
                mem_limit_bytes: None,
                processes: 1
            }
        );
        assert!(manager.oom_killed().unwrap());
    }
}
