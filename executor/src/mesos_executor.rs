//! drover-executor as a drop-in for a Mesos agent's command executor.
//!
//! A Mesos agent runs a task that names no executor with
//! `realpath(<launcher_dir>/mesos-executor)`, `argv[0]` being
//! `mesos-executor`, and the command executor's flags
//! (`src/slave/slave.cpp`, `Slave::getExecutorInfo`; the flags are those of
//! `src/launcher/executor.cpp`). So, in the agent's `--launcher_dir`, keep
//! Mesos' own `mesos-containerizer` (the agent runs it to launch every
//! container) and put drover-executor as `mesos-executor`. Called by that
//! name, drover-executor runs in command mode, leaves `CommandInfo.uris`
//! to the agent (whose fetcher has brought them already), and takes the
//! command executor's flags: `--launcher_dir` (always passed) is noted;
//! the flags an agent adds for a task with a container image (`--rootfs`
//! and friends: the agent's own provisioner) are refused, since the task
//! would otherwise run on the wrong root; the rest are accepted and
//! reported as not applied. Mesos' own command executor also exits on a
//! flag it does not know, so the list is closed here too.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// `argv[0]` of a Mesos agent's command executor.
pub const MESOS_EXECUTOR: &str = "mesos-executor";

/// Whether we were started as `mesos-executor` (by `argv[0]`, which the
/// agent sets; the path it execs is the realpath, perhaps a symlink's
/// target).
pub fn invoked_as_mesos_executor(argv0: Option<&OsStr>) -> bool {
    argv0
        .map(Path::new)
        .and_then(Path::file_name)
        .is_some_and(|name| name == MESOS_EXECUTOR)
}

/// The flags of Mesos' command executor, in Mesos' spelling.
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args)]
pub struct MesosExecutorFlags {
    /// Mesos: the directory of the Mesos binaries (passed by the agent).
    #[arg(long = "launcher_dir", hide = true)]
    pub launcher_dir: Option<PathBuf>,
    /// Mesos: the task's root filesystem, provisioned by the agent.
    #[arg(long = "rootfs", hide = true)]
    pub rootfs: Option<String>,
    /// Mesos: where the sandbox is mapped inside the rootfs.
    #[arg(long = "sandbox_directory", hide = true)]
    pub sandbox_directory: Option<String>,
    /// Mesos: the task's working directory inside the rootfs.
    #[arg(long = "working_directory", hide = true)]
    pub working_directory: Option<String>,
    /// Mesos: the task's user inside the rootfs.
    #[arg(long = "user", hide = true)]
    pub user: Option<String>,
    /// Mesos: an override of the task's command (JSON CommandInfo).
    #[arg(long = "task_command", hide = true)]
    pub task_command: Option<String>,
    /// Mesos: extra environment for the task (JSON Environment).
    #[arg(long = "task_environment", hide = true)]
    pub task_environment: Option<String>,
    /// Mesos: capabilities granted to the task.
    #[arg(long = "effective_capabilities", hide = true)]
    pub effective_capabilities: Option<String>,
    /// Mesos: the task's bounding capabilities.
    #[arg(long = "bounding_capabilities", hide = true)]
    pub bounding_capabilities: Option<String>,
    /// Mesos: a ContainerLaunchInfo to launch the task with.
    #[arg(long = "task_launch_info", hide = true)]
    pub task_launch_info: Option<String>,
    /// Mesos: the slave end of an attached TTY.
    #[arg(long = "tty_slave_path", hide = true)]
    pub tty_slave_path: Option<String>,
    /// Mesos: the task's supplementary groups.
    #[arg(long = "task_supplementary_groups", hide = true)]
    pub task_supplementary_groups: Option<String>,
}

/// Mesos command-executor flags this executor cannot honour.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--{flag} is not supported by drover-executor as mesos-executor: {why}")]
pub struct UnsupportedFlag {
    /// The flag, in Mesos' spelling.
    pub flag: &'static str,
    /// Why, and what to do instead.
    pub why: &'static str,
}

impl MesosExecutorFlags {
    /// Refuses the flags that would change what the task runs or where,
    /// and returns the names of those accepted but not applied.
    pub fn check(&self) -> Result<Vec<&'static str>, UnsupportedFlag> {
        let image = "the agent provisioned a container image for the task; run it without an image, or with drover-executor's own image store";
        let refused = [
            ("rootfs", &self.rootfs, image),
            ("task_command", &self.task_command, image),
            (
                "task_launch_info",
                &self.task_launch_info,
                "a ContainerLaunchInfo from the agent's isolators is not applied",
            ),
        ];
        if let Some((flag, _, why)) = refused.into_iter().find(|(_, v, _)| v.is_some()) {
            return Err(UnsupportedFlag { flag, why });
        }
        let ignored = [
            ("sandbox_directory", &self.sandbox_directory),
            ("working_directory", &self.working_directory),
            ("user", &self.user),
            ("task_environment", &self.task_environment),
            ("effective_capabilities", &self.effective_capabilities),
            ("bounding_capabilities", &self.bounding_capabilities),
            ("tty_slave_path", &self.tty_slave_path),
            ("task_supplementary_groups", &self.task_supplementary_groups),
        ];
        Ok(ignored
            .into_iter()
            .filter(|(_, v)| v.is_some())
            .map(|(flag, _)| flag)
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        mesos: MesosExecutorFlags,
    }

    #[test]
    fn argv0_mesos_executor_is_recognised_by_its_basename() {
        let yes = |s: &str| invoked_as_mesos_executor(Some(OsStr::new(s)));
        assert!(yes("mesos-executor"));
        assert!(yes("/usr/libexec/mesos/mesos-executor"));
        assert!(!yes("drover-executor"));
        assert!(!yes("/x/mesos-executor-old"));
        assert!(!invoked_as_mesos_executor(None));
    }

    #[test]
    fn the_flags_an_agent_passes_parse_in_mesos_spelling() {
        let cli =
            Cli::try_parse_from(["mesos-executor", "--launcher_dir=/opt/mesos/libexec"]).unwrap();
        assert_eq!(
            cli.mesos.launcher_dir.as_deref(),
            Some(Path::new("/opt/mesos/libexec"))
        );
        assert_eq!(cli.mesos.check().unwrap(), Vec::<&str>::new());
        let cli = Cli::try_parse_from([
            "mesos-executor",
            "--launcher_dir=/l",
            "--sandbox_directory=/mnt/mesos/sandbox",
            "--user=nobody",
        ])
        .unwrap();
        assert_eq!(
            cli.mesos.check().unwrap(),
            vec!["sandbox_directory", "user"]
        );
        assert!(Cli::try_parse_from(["mesos-executor", "--no_such_flag=1"]).is_err());
    }

    #[test]
    fn an_agent_provisioned_rootfs_is_refused_with_the_reason() {
        let cli =
            Cli::try_parse_from(["mesos-executor", "--launcher_dir=/l", "--rootfs=/r"]).unwrap();
        let err = cli.mesos.check().unwrap_err();
        assert_eq!(err.flag, "rootfs");
        assert!(err.to_string().contains("container image"), "{err}");
    }
}
