//! Spawning a process into a cgroup, so that it never runs outside it.
//!
//! The steps, in this order, and why:
//! 1. Create the cgroup (the caller's job: [`super::CgroupManager::create`]).
//! 2. Open its `cgroup.procs` file(s) here, in the parent: opening allocates
//!    and may fail with a useful error; the child must only write.
//! 3. Fork (tokio's `Command`, which reports exec errors back to us).
//! 4. In the child, before exec, with nothing that allocates:
//!    a. join the cgroup by writing "0" (itself) to each pre-opened fd, so
//!    everything it does from here on is accounted and limited;
//!    b. `setsid`, so the task is its own session and process group;
//!    c. optionally `unshare` PID/mount/UTS/IPC namespaces and fork twice
//!    more, so that a tiny init is PID 1 of the new namespace and the task
//!    PID 2, with `/proc` remounted ([`super::pid_namespace`]: why, and
//!    how the graceful kill reaches the task);
//!    c'. for an image task, enter its root: mount `/proc`, `/dev`, `/sys`
//!    and the sandbox in it and `pivot_root` ([`super::rootfs::pivot`]);
//!    the working directory and the program's `PATH` lookup then refer to
//!    the image;
//!    d. drop privileges (groups, gid, then uid: uid last, since it takes
//!    away the right to change the others);
//!    e. chdir to the sandbox (after dropping privileges, so the user must
//!    be able to enter it).
//! 5. Exec. A failure in 4 or 5 reaches the parent as a typed [`SpawnError`].

use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use super::cgroup::files::io_error;
use super::pid_namespace;
use super::rootfs::PivotPlan;
use super::user::Credentials;
use super::{CgroupError, CgroupManager};

/// What to run.
#[derive(Debug)]
pub struct SpawnSpec {
    /// Program and arguments; the program is looked up in the `PATH` of `env`.
    pub argv: Vec<String>,
    /// The whole environment (nothing is inherited from the executor).
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: PathBuf,
    /// Run as this user instead of the executor's (looked up by the caller,
    /// [`super::user::lookup`]; switching needs root).
    pub user: Option<Credentials>,
    /// New PID, mount, UTS and IPC namespaces, with `/proc` remounted.
    pub namespaces: bool,
    /// An image's root to enter (implies `namespaces`); `cwd` and the
    /// program are then looked up inside it.
    pub rootfs: Option<PivotPlan>,
    /// Where stdout goes (`None`: /dev/null).
    pub stdout: Option<OwnedFd>,
    /// Where stderr goes (`None`: /dev/null).
    pub stderr: Option<OwnedFd>,
}

/// A child step that can fail before exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Writing to `cgroup.procs`.
    JoinCgroup = 1,
    /// `setsid`.
    Setsid = 2,
    /// `unshare` of the namespaces.
    Unshare = 3,
    /// Making mounts private, forking into the PID namespace, mounting /proc.
    PidNamespace = 4,
    /// `setgroups`/`setgid`/`setuid`.
    DropPrivileges = 5,
    /// `chdir` to the working directory.
    Chdir = 6,
    /// Mounting in and pivoting into an image's root.
    Rootfs = 7,
}

impl Step {
    fn from_code(code: u8) -> Option<Step> {
        [
            Step::JoinCgroup,
            Step::Setsid,
            Step::Unshare,
            Step::PidNamespace,
            Step::DropPrivileges,
            Step::Chdir,
            Step::Rootfs,
        ]
        .into_iter()
        .find(|s| *s as u8 == code)
    }
}

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The command line is empty. Not retryable.
    #[error("no command to run")]
    EmptyCommand,
    /// A string holds a NUL byte and cannot reach exec. Not retryable.
    #[error("{what} contains a NUL byte")]
    Nul {
        /// Which string.
        what: &'static str,
    },
    /// Preparing the cgroup handle or pipes failed.
    #[error(transparent)]
    Cgroup(#[from] CgroupError),
    /// A step in the child failed before exec. Not retryable as is.
    #[error("child step {step:?} failed: {source}")]
    ChildStep {
        /// Which step.
        step: Step,
        /// The errno it got.
        #[source]
        source: std::io::Error,
    },
    /// Entering the image's root failed in the child. Not retryable as is.
    #[error("entering the container's root: {what}: {source}")]
    Rootfs {
        /// Which operation, in words.
        what: String,
        /// The errno it got.
        #[source]
        source: std::io::Error,
    },
    /// exec itself failed (command not found, not executable, ...).
    #[error("cannot execute {program:?}: {source}")]
    Exec {
        /// The program.
        program: String,
        /// The errno exec got.
        #[source]
        source: std::io::Error,
    },
}

/// Step 2: open each `cgroup.procs` for writing, close-on-exec.
fn open_procs(cgroup: &dyn CgroupManager) -> Result<Vec<std::fs::File>, SpawnError> {
    cgroup
        .procs_paths()
        .into_iter()
        .map(|path| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(|e| SpawnError::Cgroup(io_error("open", &path, e)))
        })
        .collect()
}

/// A close-on-exec pipe: (read end, write end).
pub fn cloexec_pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// Everything the child needs, prepared before fork.
struct ChildPlan {
    procs_fds: Vec<i32>,
    step_fd: i32,
    namespaces: bool,
    rootfs: Option<PivotPlan>,
    credentials: Option<Credentials>,
    cwd: CString,
}

fn fail(step_fd: i32, step: Step) -> std::io::Error {
    let err = std::io::Error::last_os_error();
    mark(step_fd, step);
    err
}

/// Tells the parent which step failed.
fn mark(step_fd: i32, step: Step) {
    let code = [step as u8];
    // SAFETY: write(2) of a stack byte to an fd we own; async-signal-safe.
    unsafe { libc::write(step_fd, code.as_ptr().cast(), 1) };
}

/// Step 4: runs in the child between fork and exec. No allocation.
fn child_steps(plan: &ChildPlan) -> std::io::Result<()> {
    // SAFETY (whole block): async-signal-safe syscalls on data prepared
    // before fork; the fds are open in the child.
    unsafe {
        for fd in &plan.procs_fds {
            if libc::write(*fd, b"0".as_ptr().cast(), 1) != 1 {
                return Err(fail(plan.step_fd, Step::JoinCgroup));
            }
        }
        if libc::setsid() < 0 {
            return Err(fail(plan.step_fd, Step::Setsid));
        }
        if plan.namespaces {
            let flags =
                libc::CLONE_NEWPID | libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
            if libc::unshare(flags) != 0 {
                return Err(fail(plan.step_fd, Step::Unshare));
            }
            if let Err(e) = pid_namespace::enter() {
                mark(plan.step_fd, Step::PidNamespace);
                return Err(e);
            }
        }
        if let Some(rootfs) = &plan.rootfs {
            if let Err((index, e)) = rootfs.enter() {
                // The step, then which operation (the parent reads both).
                let code = [Step::Rootfs as u8, u8::try_from(index).unwrap_or(u8::MAX)];
                libc::write(plan.step_fd, code.as_ptr().cast(), 2);
                return Err(e);
            }
        }
        if let Some(creds) = &plan.credentials {
            if libc::setgroups(creds.groups.len(), creds.groups.as_ptr()) != 0
                || libc::setgid(creds.gid) != 0
                || libc::setuid(creds.uid) != 0
            {
                return Err(fail(plan.step_fd, Step::DropPrivileges));
            }
        }
        if libc::chdir(plan.cwd.as_ptr()) != 0 {
            return Err(fail(plan.step_fd, Step::Chdir));
        }
    }
    Ok(())
}

/// Spawns `spec` into `cgroup` (already created and limited). Blocking: call
/// it off the async worker threads (`spawn_blocking`) or accept the fork cost.
pub fn spawn(
    cgroup: &dyn CgroupManager,
    spec: SpawnSpec,
) -> Result<tokio::process::Child, SpawnError> {
    let program = spec.argv.first().ok_or(SpawnError::EmptyCommand)?.clone();
    if program.is_empty() {
        return Err(SpawnError::EmptyCommand);
    }
    let credentials = spec.user;
    let cwd = CString::new(spec.cwd.as_os_str().as_encoded_bytes())
        .map_err(|_| SpawnError::Nul { what: "cwd" })?;
    let procs = open_procs(cgroup)?;
    let (step_read, step_write) = cloexec_pipe()
        .map_err(|e| SpawnError::Cgroup(io_error("pipe", "step pipe".as_ref(), e)))?;

    let mut command = tokio::process::Command::new(&program);
    command
        .args(&spec.argv[1..])
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(spec.stdout.map(Stdio::from).unwrap_or_else(Stdio::null))
        .stderr(spec.stderr.map(Stdio::from).unwrap_or_else(Stdio::null))
        .kill_on_drop(false);
    // The descriptions stay here: the plan itself moves into the child's
    // closure.
    let rootfs_steps = spec.rootfs.as_ref().map(PivotPlan::descriptions);
    let plan = ChildPlan {
        procs_fds: procs.iter().map(|f| f.as_raw_fd()).collect(),
        step_fd: step_write.as_raw_fd(),
        namespaces: spec.namespaces || spec.rootfs.is_some(),
        rootfs: spec.rootfs,
        credentials,
        cwd,
    };
    // SAFETY: `child_steps` only makes async-signal-safe syscalls on data
    // prepared above, as required between fork and exec.
    unsafe {
        command.pre_exec(move || child_steps(&plan));
    }
    let result = command.spawn();
    // The child has exec'd or failed by now: close our copies, then see
    // whether a step reported itself.
    drop(procs);
    drop(step_write);
    drop(command);
    match result {
        Ok(child) => Ok(child),
        Err(source) => {
            let mut code = Vec::with_capacity(2);
            let mut reader = std::fs::File::from(step_read);
            let _ = reader.read_to_end(&mut code);
            match code.first().copied().and_then(Step::from_code) {
                Some(Step::Rootfs) => Err(SpawnError::Rootfs {
                    what: code
                        .get(1)
                        .and_then(|i| rootfs_steps.as_ref()?.get(usize::from(*i)).cloned())
                        .unwrap_or_else(|| "an unknown operation".into()),
                    source,
                }),
                Some(step) => Err(SpawnError::ChildStep { step, source }),
                None => Err(SpawnError::Exec { program, source }),
            }
        }
    }
}
