//! cgroup v1: one directory per controller hierarchy
//! (`<root>/<controller>/<parent>/<name>`).
//!
//! Controllers used: cpu (shares, CFS quota), cpuacct (cpu times), memory
//! (limit, no swap, OOM), pids (limit), freezer (kill). cpuset, blkio and
//! devices are left alone: a task inherits its parent's.

use std::path::{Path, PathBuf};

use super::files;
use super::kill::{self, Freezer};
use super::{CgroupError, CgroupManager, CgroupVersion};
use crate::container::limits::CFS_PERIOD_US;
use crate::container::{ResourceLimits, Usage};

/// The v1 controllers a container's cgroup is created in.
pub const CONTROLLERS: [&str; 5] = ["cpu", "cpuacct", "memory", "pids", "freezer"];

/// One file to write: `<controller dir>/<file> = value`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// The controller hierarchy.
    pub controller: &'static str,
    /// The file in the container's directory.
    pub file: &'static str,
    /// What to write.
    pub value: String,
    /// Written only if the file exists (e.g. `memory.memsw.*` needs swap
    /// accounting in the kernel).
    pub optional: bool,
}

fn setting(controller: &'static str, file: &'static str, value: impl ToString) -> Setting {
    Setting {
        controller,
        file,
        value: value.to_string(),
        optional: false,
    }
}

/// Renders limits to the v1 files to write, in the order to write them.
pub fn render(limits: &ResourceLimits) -> Vec<Setting> {
    let mut out = Vec::new();
    if let Some(shares) = limits.cpu_shares() {
        out.push(setting("cpu", "cpu.shares", shares));
    }
    if let Some(quota) = limits.cfs_quota_us() {
        // The period first: the quota is interpreted against it.
        out.push(setting("cpu", "cpu.cfs_period_us", CFS_PERIOD_US));
        out.push(setting("cpu", "cpu.cfs_quota_us", quota));
    }
    if let Some(bytes) = limits.mem_bytes {
        // limit_in_bytes before memsw: memsw may never be below the limit.
        out.push(setting("memory", "memory.limit_in_bytes", bytes));
        // memory+swap equal to memory: no swap on top of the limit.
        out.push(Setting {
            optional: true,
            ..setting("memory", "memory.memsw.limit_in_bytes", bytes)
        });
        // Without swap accounting, at least ask the kernel not to swap.
        out.push(Setting {
            optional: true,
            ..setting("memory", "memory.swappiness", 0)
        });
    }
    if let Some(max) = limits.pids_max {
        out.push(setting("pids", "pids.max", max));
    }
    out
}

/// A container's cgroup on a v1 host.
#[derive(Debug)]
pub struct V1Manager {
    root: PathBuf,
    relative: PathBuf,
}

impl V1Manager {
    /// A manager for `<root>/<controller>/<relative>`.
    pub fn new(root: &Path, relative: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            relative: relative.to_path_buf(),
        }
    }

    /// The container's directory in one controller's hierarchy.
    pub fn dir(&self, controller: &str) -> PathBuf {
        self.root.join(controller).join(&self.relative)
    }

    /// Hierarchy mount points, deduplicated: `cpu` and `cpuacct` are often
    /// one co-mounted hierarchy reached through two symlinks.
    fn unique_dirs(&self) -> Vec<PathBuf> {
        let mut seen: Vec<PathBuf> = Vec::new();
        let mut dirs = Vec::new();
        for controller in CONTROLLERS {
            let mount = self.root.join(controller);
            let canonical = std::fs::canonicalize(&mount).unwrap_or(mount.clone());
            if !seen.contains(&canonical) {
                seen.push(canonical);
                dirs.push(self.dir(controller));
            }
        }
        dirs
    }

    fn check_controllers(&self) -> Result<(), CgroupError> {
        for controller in CONTROLLERS {
            if !self.root.join(controller).is_dir() {
                return Err(CgroupError::MissingController {
                    controller,
                    root: self.root.clone(),
                });
            }
        }
        Ok(())
    }
}

impl Freezer for V1Manager {
    fn freeze(&self) -> Result<(), CgroupError> {
        let state = self.dir("freezer").join("freezer.state");
        files::write(&state, "FROZEN")?;
        kill::wait_for_state(|| files::read(&state), "FROZEN")
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        files::write(&self.dir("freezer").join("freezer.state"), "THAWED")
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        CgroupManager::pids(self)
    }

    fn path(&self) -> PathBuf {
        self.dir("freezer")
    }
}

impl CgroupManager for V1Manager {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn create(&self) -> Result<(), CgroupError> {
        self.check_controllers()?;
        for dir in self.unique_dirs() {
            files::create_dir(&dir)?;
        }
        Ok(())
    }

    fn apply(&self, limits: &ResourceLimits) -> Result<(), CgroupError> {
        for setting in render(limits) {
            let path = self.dir(setting.controller).join(setting.file);
            if setting.optional && !path.exists() {
                continue;
            }
            files::write(&path, &setting.value)?;
        }
        Ok(())
    }

    fn procs_paths(&self) -> Vec<PathBuf> {
        self.unique_dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        // Every process we start joins every hierarchy, so the freezer's
        // list is the container's list.
        files::read_pids(&self.dir("freezer").join("cgroup.procs"))
    }

    fn oom_killed(&self) -> Result<bool, CgroupError> {
        // `oom_kill` (kernel >= 4.13) counts processes the OOM killer chose in
        // this cgroup; `under_oom` only says "right now".
        let path = self.dir("memory").join("memory.oom_control");
        Ok(files::read_key(&path, "oom_kill")?.unwrap_or(0) > 0)
    }

    fn usage(&self) -> Result<Usage, CgroupError> {
        let stat = self.dir("cpuacct").join("cpuacct.stat");
        // cpuacct.stat counts USER_HZ ticks.
        // SAFETY: sysconf has no memory effects.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let user = files::read_key(&stat, "user")?.unwrap_or(0) as f64 / hz;
        let system = files::read_key(&stat, "system")?.unwrap_or(0) as f64 / hz;
        let memory = self.dir("memory");
        Ok(Usage {
            cpu_user_secs: user,
            cpu_system_secs: system,
            mem_bytes: files::read_u64(&memory.join("memory.usage_in_bytes"))?,
            mem_limit_bytes: files::read_limit(&memory.join("memory.limit_in_bytes"))?,
            processes: CgroupManager::pids(self)?.len() as u32,
        })
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        if !self.dir("freezer").exists() {
            return Ok(());
        }
        kill::kill_frozen(self)
    }

    fn destroy(&self) -> Result<(), CgroupError> {
        for dir in self.unique_dirs() {
            files::remove_dir(&dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fixture() -> (tempfile::TempDir, V1Manager) {
        let root = tempfile::tempdir().unwrap();
        for controller in CONTROLLERS {
            std::fs::create_dir(root.path().join(controller)).unwrap();
        }
        let manager = V1Manager::new(root.path(), Path::new("drover/task-1"));
        (root, manager)
    }

    #[test]
    fn render_writes_shares_quota_memory_without_swap_and_pids() {
        let limits = ResourceLimits {
            cpus: Some(0.5),
            cfs_quota: true,
            mem_bytes: Some(64 << 20),
            pids_max: Some(20),
        };
        let files: Vec<_> = render(&limits)
            .into_iter()
            .map(|s| (s.controller, s.file, s.value))
            .collect();
        let mem = (64u64 << 20).to_string();
        assert_eq!(
            files,
            vec![
                ("cpu", "cpu.shares", "512".to_string()),
                ("cpu", "cpu.cfs_period_us", "100000".to_string()),
                ("cpu", "cpu.cfs_quota_us", "50000".to_string()),
                ("memory", "memory.limit_in_bytes", mem.clone()),
                ("memory", "memory.memsw.limit_in_bytes", mem),
                ("memory", "memory.swappiness", "0".to_string()),
                ("pids", "pids.max", "20".to_string()),
            ]
        );
    }

    #[test]
    fn no_limits_render_nothing() {
        assert!(render(&ResourceLimits::default()).is_empty());
    }

    #[test]
    fn apply_writes_fixture_files_and_skips_absent_optional_ones() {
        let (_root, manager) = fixture();
        manager.create().unwrap();
        let limits = ResourceLimits {
            cpus: Some(2.0),
            mem_bytes: Some(1000),
            pids_max: Some(7),
            ..Default::default()
        };
        manager.apply(&limits).unwrap();
        let read = |c: &str, f: &str| std::fs::read_to_string(manager.dir(c).join(f)).unwrap();
        assert_eq!(read("cpu", "cpu.shares"), "2048");
        assert_eq!(read("memory", "memory.limit_in_bytes"), "1000");
        assert_eq!(read("pids", "pids.max"), "7");
        assert!(!manager
            .dir("memory")
            .join("memory.memsw.limit_in_bytes")
            .exists());
        assert!(!manager.dir("cpu").join("cpu.cfs_quota_us").exists());
    }

    #[test]
    fn create_fails_naming_a_missing_controller() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("cpu")).unwrap();
        let manager = V1Manager::new(root.path(), Path::new("drover/t"));
        let err = manager.create().unwrap_err();
        assert!(
            matches!(
                err,
                CgroupError::MissingController {
                    controller: "cpuacct",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn usage_and_oom_are_read_from_fixture_files() {
        let (_root, manager) = fixture();
        manager.create().unwrap();
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
        let put = |c: &str, f: &str, v: String| std::fs::write(manager.dir(c).join(f), v).unwrap();
        put(
            "cpuacct",
            "cpuacct.stat",
            format!("user {}\nsystem {}\n", 3 * hz, hz / 2),
        );
        put("memory", "memory.usage_in_bytes", "4096\n".into());
        put(
            "memory",
            "memory.limit_in_bytes",
            "9223372036854771712\n".into(),
        );
        put(
            "memory",
            "memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n".into(),
        );
        put("freezer", "cgroup.procs", "10\n11\n".into());
        let usage = manager.usage().unwrap();
        assert_eq!(usage.cpu_user_secs, 3.0);
        assert_eq!(usage.cpu_system_secs, 0.5);
        assert_eq!(usage.mem_bytes, 4096);
        assert_eq!(usage.mem_limit_bytes, None);
        assert_eq!(usage.processes, 2);
        assert!(manager.oom_killed().unwrap());
    }
}
