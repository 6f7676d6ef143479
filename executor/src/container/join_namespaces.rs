//! Joining a running task's PID and mount namespaces, for a command that
//! must see what the task sees: a COMMAND health check or check runs
//! "in the task's namespaces", as Mesos' checker does (it enters the
//! task's `mnt` and `pid` namespaces before it runs the command).
//!
//! The namespace files are opened in the parent ([`open`]): opening
//! allocates and can fail with a useful error. Between fork and exec the
//! child [`enter`]s them: `setns` of the mount namespace moves the child
//! itself, but `setns` of a PID namespace only places the child's future
//! children there, so the child forks once more: the grandchild, in the
//! task's PID namespace, goes on to exec; the child stays outside, waits
//! for it and exits the way it did, so the caller sees the command's own
//! status. The grandchild dies with the child (`PR_SET_PDEATHSIG`), so a
//! check killed at its timeout leaves nothing running.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;

/// The task's namespace files, open in the parent.
#[derive(Debug)]
pub struct NamespaceFiles {
    pid: OwnedFd,
    mnt: OwnedFd,
}

impl NamespaceFiles {
    /// The raw fds for the child: (pid, mnt).
    pub fn raw(&self) -> (i32, i32) {
        (self.pid.as_raw_fd(), self.mnt.as_raw_fd())
    }
}

/// `/proc/<pid>/ns/<kind>`.
fn ns_path(pid: i32, kind: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/{kind}"))
}

/// Opens the PID and mount namespaces of process `pid` (close-on-exec).
pub fn open(pid: i32) -> std::io::Result<NamespaceFiles> {
    let open = |kind: &str| -> std::io::Result<OwnedFd> {
        let path = ns_path(pid, kind);
        File::open(&path)
            .map(OwnedFd::from)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    };
    Ok(NamespaceFiles {
        pid: open("pid")?,
        mnt: open("mnt")?,
    })
}

/// Of `pids` (a task's processes), one that lives in another PID
/// namespace than ours: a member of the task's own namespaces, if it has
/// them. `None` when every process shares ours (no namespaces).
pub fn member_of_other_namespace(pids: &[i32]) -> Option<i32> {
    let ours = std::fs::read_link("/proc/self/ns/pid").ok()?;
    pids.iter()
        .copied()
        .find(|pid| std::fs::read_link(ns_path(*pid, "pid")).is_ok_and(|theirs| theirs != ours))
}

/// In the child, between fork and exec: joins the namespaces whose fds
/// are `pid_fd` and `mnt_fd`, then forks; returns only in the grandchild.
/// Async-signal-safe syscalls only.
pub fn enter(pid_fd: i32, mnt_fd: i32) -> std::io::Result<()> {
    // SAFETY (whole block): async-signal-safe syscalls on fds opened before
    // fork and on stack values.
    unsafe {
        if libc::setns(mnt_fd, libc::CLONE_NEWNS) != 0
            || libc::setns(pid_fd, libc::CLONE_NEWPID) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
        let child = libc::fork();
        if child < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if child == 0 {
            // If the waiting parent is gone (killed at a timeout), so are
            // we. (Whether it died before this line cannot be asked from
            // here: it lives outside our new PID namespace, where getppid
            // says 0. The check's cgroup is the task's, so a process left
            // by that narrow race still ends with the task.)
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            return Ok(());
        }
        wait_and_exit_as(child)
    }
}

/// The child outside the namespace: keep only stdio (the spawner waits
/// until the last copy of its exec-error pipe closes, at the
/// grandchild's exec), wait for the grandchild, exit as it did.
unsafe fn wait_and_exit_as(child: libc::pid_t) -> ! {
    // SAFETY: async-signal-safe syscalls; we are the forked child.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        let mut status = 0;
        while libc::waitpid(child, &mut status, 0) < 0 {
            if *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFSIGNALED(status) {
            libc::_exit(128 + libc::WTERMSIG(status));
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}
