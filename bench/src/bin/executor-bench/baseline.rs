//! The baselines the executor is measured against, timed in the same run:
//! the same command started by a plain fork/exec, and by a shell that puts
//! itself into a cgroup and then execs the command.
//!
//! Both are timed up to the moment the command has been exec'd, which is
//! also when the executor reports TASK_RUNNING: `Command::spawn` returns
//! once exec has succeeded; the shell's exec is seen as EOF on a pipe whose
//! only write end the shell closes as it execs (`exec cmd 3>&-`).

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// A cgroup of the benchmark's own, in one hierarchy, for the shell to join;
/// removed when dropped (it only ever holds processes the benchmark started,
/// and they have exited by then).
pub struct BenchCgroup {
    dir: PathBuf,
}

impl BenchCgroup {
    /// Creates `<hierarchy>/<parent>/x`; dropping it removes `x` and
    /// `<parent>`. On v1 the hierarchy is the pids controller's (the one the
    /// issue's example joins); on v2 it is the unified root.
    pub fn create(hierarchy: &Path, parent: &Path) -> anyhow::Result<Self> {
        let dir = hierarchy.join(parent).join("x");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir })
    }

    fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }
}

impl Drop for BenchCgroup {
    fn drop(&mut self) {
        for dir in [Some(self.dir.as_path()), self.dir.parent()]
            .into_iter()
            .flatten()
        {
            if let Err(e) = std::fs::remove_dir(dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    eprintln!("removing bench cgroup {}: {e}", dir.display());
                }
            }
        }
    }
}

fn quiet(command: &mut Command) -> &mut Command {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
}

/// Times `argv` from fork to exec once (then waits for it, untimed).
pub fn plain_spawn(argv: &[&str]) -> anyhow::Result<Duration> {
    let (program, args) = argv.split_first().context("empty command")?;
    let start = Instant::now();
    let mut child = quiet(Command::new(program).args(args))
        .spawn()
        .with_context(|| format!("spawning {program}"))?;
    let elapsed = start.elapsed();
    child.wait().context("waiting for the plain child")?;
    Ok(elapsed)
}

/// Times `sh -c 'echo $$ > <cgroup.procs>; exec <argv> 3>&-'` once, from
/// fork to the exec of `argv` (then waits for it, untimed).
pub fn shell_into_cgroup(cgroup: &BenchCgroup, argv: &[&str]) -> anyhow::Result<Duration> {
    let script = format!(
        "echo $$ > {}; exec {} 3>&-",
        cgroup.procs().display(),
        argv.join(" ")
    );
    let (read, write): (OwnedFd, OwnedFd) =
        nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).context("pipe")?;
    let write_fd = write.as_raw_fd();
    let mut command = Command::new("/bin/sh");
    quiet(command.arg("-c").arg(&script));
    // SAFETY: dup2 is async-signal-safe; it gives the child the pipe's write
    // end as fd 3 (without close-on-exec) for the shell to close as it execs.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(write_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = Instant::now();
    let mut child = command.spawn().context("spawning the shell")?;
    drop(write);
    let mut rest = Vec::new();
    std::fs::File::from(read)
        .read_to_end(&mut rest)
        .context("reading the exec pipe")?;
    let elapsed = start.elapsed();
    let status = child.wait().context("waiting for the shell")?;
    anyhow::ensure!(
        status.success(),
        "the shell baseline failed ({status}): cannot join {}",
        cgroup.procs().display()
    );
    Ok(elapsed)
}
