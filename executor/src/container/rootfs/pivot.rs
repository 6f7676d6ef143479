//! The child's half: entering an assembled root, between fork and exec.
//!
//! [`PivotPlan::new`] (parent) turns the root and the sandbox into a list
//! of operations with every path already a C string; [`PivotPlan::enter`]
//! (child, after `unshare(CLONE_NEWNS | CLONE_NEWPID)` made the mounts
//! private and forked the task into the PID namespace) carries them out
//! with raw syscalls only: no allocation, as `fork` in a threaded process
//! demands. A failure names the operation by its index, which the parent
//! turns back into words with [`PivotPlan::describe`].

use std::ffi::{CString, NulError};
use std::path::Path;

use super::SANDBOX_MOUNT_POINT;

/// The character devices a container gets, bind-mounted from the host's
/// `/dev` (the OCI runtime spec's default set).
pub const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

#[derive(Debug)]
enum Op {
    Mount {
        source: CString,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    Mkdir {
        path: CString,
        mode: libc::mode_t,
    },
    /// An empty file, to bind a device onto.
    Touch {
        path: CString,
    },
    Symlink {
        target: CString,
        link: CString,
    },
}

/// The operations that enter a root, prepared before fork.
#[derive(Debug)]
pub struct PivotPlan {
    root: CString,
    ops: Vec<Op>,
}

fn c(path: &Path) -> Result<CString, NulError> {
    CString::new(path.as_os_str().as_encoded_bytes())
}

impl PivotPlan {
    /// The plan for entering `root` with `sandbox` (a host directory) at
    /// [`SANDBOX_MOUNT_POINT`]. The mount points under `root` exist (see
    /// [`super::assemble`]); what goes in the container's own `/dev`
    /// tmpfs is made by the plan.
    pub fn new(root: &Path, sandbox: &Path) -> Result<Self, NulError> {
        let under = |p: &str| c(&root.join(p));
        let mount =
            |source: &str, target: &str, fstype: Option<&str>, flags, data: Option<&str>| {
                Ok::<_, NulError>(Op::Mount {
                    source: CString::new(source)?,
                    target: under(target)?,
                    fstype: fstype.map(CString::new).transpose()?,
                    flags,
                    data: data.map(CString::new).transpose()?,
                })
            };
        let (nosuid, nodev, noexec) = (libc::MS_NOSUID, libc::MS_NODEV, libc::MS_NOEXEC);
        let mut ops = vec![
            mount("proc", "proc", Some("proc"), nosuid | nodev | noexec, None)?,
            mount(
                "sysfs",
                "sys",
                Some("sysfs"),
                libc::MS_RDONLY | nosuid | nodev | noexec,
                None,
            )?,
            mount(
                "tmpfs",
                "dev",
                Some("tmpfs"),
                nosuid | libc::MS_STRICTATIME,
                Some("mode=755,size=65536k"),
            )?,
        ];
        for device in DEVICES {
            let target = format!("dev/{device}");
            ops.push(Op::Touch {
                path: under(&target)?,
            });
            ops.push(Op::Mount {
                source: CString::new(format!("/dev/{device}"))?,
                target: under(&target)?,
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
            });
        }
        ops.push(Op::Mkdir {
            path: under("dev/pts")?,
            mode: 0o755,
        });
        ops.push(mount(
            "devpts",
            "dev/pts",
            Some("devpts"),
            nosuid | noexec,
            Some("newinstance,ptmxmode=0666,mode=0620"),
        )?);
        ops.push(Op::Mkdir {
            path: under("dev/shm")?,
            mode: 0o1777,
        });
        ops.push(mount(
            "shm",
            "dev/shm",
            Some("tmpfs"),
            nosuid | nodev,
            Some("mode=1777,size=65536k"),
        )?);
        for (target, link) in [
            ("pts/ptmx", "dev/ptmx"),
            ("/proc/self/fd", "dev/fd"),
            ("/proc/self/fd/0", "dev/stdin"),
            ("/proc/self/fd/1", "dev/stdout"),
            ("/proc/self/fd/2", "dev/stderr"),
        ] {
            ops.push(Op::Symlink {
                target: CString::new(target)?,
                link: under(link)?,
            });
        }
        ops.push(Op::Mount {
            source: c(sandbox)?,
            target: under(SANDBOX_MOUNT_POINT.trim_start_matches('/'))?,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
        });
        Ok(Self {
            root: c(root)?,
            ops,
        })
    }

    /// What operation `index` does, for an error message. The index past
    /// the last operation is the pivot itself.
    pub fn describe(&self, index: usize) -> String {
        let text = |s: &CString| s.to_string_lossy().into_owned();
        match self.ops.get(index) {
            Some(Op::Mount {
                source,
                target,
                fstype,
                ..
            }) => format!(
                "mounting {} ({}) at {}",
                text(source),
                fstype.as_ref().map_or("bind".into(), text),
                text(target)
            ),
            Some(Op::Mkdir { path, .. }) => format!("creating {}", text(path)),
            Some(Op::Touch { path }) => format!("creating {}", text(path)),
            Some(Op::Symlink { link, .. }) => format!("linking {}", text(link)),
            None => format!("pivot_root into {}", text(&self.root)),
        }
    }

    /// Every operation's [`PivotPlan::describe`], the pivot last.
    pub fn descriptions(&self) -> Vec<String> {
        (0..=self.ops.len()).map(|i| self.describe(i)).collect()
    }

    /// Carries the plan out, then `pivot_root`s into the root and detaches
    /// the host's tree; the working directory is the new `/`. Child only:
    /// raw syscalls on prepared data. On failure, the index of the
    /// operation (see [`PivotPlan::describe`]) and its errno.
    pub fn enter(&self) -> Result<(), (usize, std::io::Error)> {
        let last = |i: usize| (i, std::io::Error::last_os_error());
        // SAFETY (whole block): syscalls on C strings prepared before fork.
        unsafe {
            for (i, op) in self.ops.iter().enumerate() {
                let ok = match op {
                    Op::Mount {
                        source,
                        target,
                        fstype,
                        flags,
                        data,
                    } => {
                        libc::mount(
                            source.as_ptr(),
                            target.as_ptr(),
                            fstype.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
                            *flags,
                            data.as_ref()
                                .map_or(std::ptr::null(), |d| d.as_ptr().cast()),
                        ) == 0
                    }
                    Op::Mkdir { path, mode } => {
                        libc::mkdir(path.as_ptr(), *mode) == 0
                            && libc::chmod(path.as_ptr(), *mode) == 0
                    }
                    Op::Touch { path } => {
                        let fd = libc::open(
                            path.as_ptr(),
                            libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                            0o666,
                        );
                        fd >= 0 && libc::close(fd) == 0
                    }
                    Op::Symlink { target, link } => {
                        libc::symlink(target.as_ptr(), link.as_ptr()) == 0
                    }
                };
                if !ok {
                    return Err(last(i));
                }
            }
            let pivot = self.ops.len();
            // pivot_root(".", "."): the old root ends up stacked on the
            // new one, and detaching "." then leaves only the container's
            // tree (runc's way; no directory for the old root needed).
            if libc::chdir(self.root.as_ptr()) != 0
                || libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) != 0
                || libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0
                || libc::chdir(c"/".as_ptr()) != 0
            {
                return Err(last(pivot));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_mounts_proc_sys_dev_and_the_sandbox_under_the_root() {
        let plan = PivotPlan::new(Path::new("/r"), Path::new("/host/sandbox")).unwrap();
        let steps = plan.descriptions();
        assert_eq!(steps[0], "mounting proc (proc) at /r/proc");
        assert_eq!(steps[1], "mounting sysfs (sysfs) at /r/sys");
        assert_eq!(steps[2], "mounting tmpfs (tmpfs) at /r/dev");
        for device in DEVICES {
            let bind = format!("mounting /dev/{device} (bind) at /r/dev/{device}");
            assert!(steps.contains(&bind), "{bind} in {steps:#?}");
        }
        assert!(steps.contains(&"mounting devpts (devpts) at /r/dev/pts".to_string()));
        assert!(steps.contains(&"mounting shm (tmpfs) at /r/dev/shm".to_string()));
        assert_eq!(
            steps[steps.len() - 2],
            "mounting /host/sandbox (bind) at /r/mnt/mesos/sandbox"
        );
        assert_eq!(steps[steps.len() - 1], "pivot_root into /r");
        let sys = &plan.ops[1];
        assert!(matches!(sys, Op::Mount { flags, .. } if flags & libc::MS_RDONLY != 0));
    }
}
