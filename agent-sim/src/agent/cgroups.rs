//! The cgroups real agents hand to `drover-executor`: each executor gets
//! `<parent>/<container_id>` and makes its tasks' cgroups inside it. This
//! module destroys such a subtree as a Mesos agent destroys a container
//! (every process in it killed, then the directories removed) and removes
//! the parent at exit. It only ever signals processes found inside our own
//! parent, which only our executors and their tasks entered. Blocking:
//! call it off the async threads.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why a cgroup subtree could not be removed.
#[derive(Debug, thiserror::Error)]
pub enum CgroupCleanupError {
    /// Processes remained after every kill round.
    #[error("cgroup {path} still holds processes {pids:?} after {rounds} kill rounds")]
    Unkillable {
        path: PathBuf,
        pids: Vec<i32>,
        rounds: u32,
    },
    /// A directory could not be removed (not retryable once empty).
    #[error("removing {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Kill rounds before giving up on a subtree.
const KILL_ROUNDS: u32 = 50;

/// The directories of `relative` in every hierarchy under `root`: the one
/// directory on cgroup v2, one per mounted controller on v1.
pub fn hierarchy_dirs(root: &Path, relative: &Path) -> Vec<PathBuf> {
    if root.join("cgroup.controllers").exists() {
        return vec![root.join(relative)];
    }
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        // `cpu` and `cpuacct` are symlinks to `cpu,cpuacct`: visit it once.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path().join(relative))
        .filter(|p| p.is_dir())
        .collect()
}

/// Every cgroup directory at or below `dir`, deepest first.
fn subtree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(subtree(&e.path()));
            }
        }
    }
    out.push(dir.to_path_buf());
    out
}

fn pids(dirs: &[PathBuf]) -> Vec<i32> {
    let mut pids: Vec<i32> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// Kills every process in `relative` (under `root`) and its children's
/// cgroups, then removes the directories. Fine if it does not exist.
pub fn destroy(root: &Path, relative: &Path) -> Result<(), CgroupCleanupError> {
    let tops = hierarchy_dirs(root, relative);
    let dirs: Vec<PathBuf> = tops.iter().flat_map(|t| subtree(t)).collect();
    let mut rounds = 0;
    loop {
        let left = pids(&dirs);
        if left.is_empty() {
            break;
        }
        if rounds == KILL_ROUNDS {
            return Err(CgroupCleanupError::Unkillable {
                path: relative.to_path_buf(),
                pids: left,
                rounds,
            });
        }
        for pid in left {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        rounds += 1;
        std::thread::sleep(Duration::from_millis(20));
    }
    for dir in dirs {
        match std::fs::remove_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(CgroupCleanupError::Remove { path: dir, source }),
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn v1_hierarchies_are_found_per_controller_and_v2_as_one_directory() {
        let v1 = tempfile::tempdir().unwrap();
        for c in ["cpu,cpuacct", "memory", "freezer"] {
            std::fs::create_dir_all(v1.path().join(c).join("p")).unwrap();
        }
        std::os::unix::fs::symlink(v1.path().join("cpu,cpuacct"), v1.path().join("cpu")).unwrap();
        std::fs::create_dir_all(v1.path().join("pids")).unwrap();
        let mut found = hierarchy_dirs(v1.path(), Path::new("p"));
        found.sort();
        let names: Vec<String> = found
            .iter()
            .map(|p| {
                p.parent()
                    .unwrap()
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, ["cpu,cpuacct", "freezer", "memory"]);
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu memory").unwrap();
        assert_eq!(
            hierarchy_dirs(v2.path(), Path::new("p")),
            [v2.path().join("p")]
        );
    }

    #[test]
    fn an_empty_subtree_is_removed_deepest_first() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "").unwrap();
        std::fs::create_dir_all(root.path().join("p/c1/task")).unwrap();
        destroy(root.path(), Path::new("p/c1")).unwrap();
        assert!(!root.path().join("p/c1").exists());
        assert!(root.path().join("p").exists());
        destroy(root.path(), Path::new("p/none")).unwrap();
    }
}
