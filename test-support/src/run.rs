//! A binary run to its exit, optionally in a mount namespace of its own.
//!

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How often a child expected to exit is checked for having exited.
const RUN_POLL: Duration = Duration::from_millis(20);

/// Runs `program args...` with `envs` added (and `RUST_BACKTRACE` removed,
/// so its stderr is what a user sees) to its exit, capturing its stdout and
/// stderr: `Ok` with them and its status. `Err` with what it printed if it
/// was still running after `within`; it is then SIGKILLed (by its pid).
/// Both pipes are read as it writes, so a chatty child never blocks on a
/// full pipe and looks as if it kept running. Polls with tokio's sleep, so
/// a test's other tasks (a fake master) keep running.
pub async fn run_until_exit(
    program: &Path,
    args: &[String],
    envs: &[(&str, &str)],
    within: Duration,
) -> Result<Output, Output> {
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + within;
    let (status, exited) = loop {
        match child.try_wait() {
            Ok(Some(status)) => break (status, true),
            Ok(None) if Instant::now() < deadline => tokio::time::sleep(RUN_POLL).await,
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let status = child
                    .wait()
                    .unwrap_or_else(|e| panic!("waiting for {}: {e}", program.display()));
                break (status, false);
            }
        }
    };
    let output = Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    };
    if exited {
        Ok(output)
    } else {
        Err(output)
    }
}

/// A thread reading `pipe` to its end.
fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

/// `program args...` to run in a private mount namespace of its own, after
/// the shell commands `setup`, which name `dir` as `"$DATA"` (a small tmpfs
/// or a read-only bind mount on a data directory): `unshare` and its
/// arguments. Nothing outside the namespace sees the mounts, and they go
/// with it. `sh` execs the program, so the pid is the program's throughout
/// (for `nsenter -t PID -m`). Needs root.
pub fn in_mount_namespace(
    setup: &str,
    dir: &Path,
    program: &Path,
    args: Vec<String>,
) -> (PathBuf, Vec<String>) {
    let utf8 = |path: &Path| {
        path.to_str()
            .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
            .to_owned()
    };
    // `sh -c SCRIPT sh DIR PROGRAM ARGS...`: the script sees the directory
    // as "$DATA" and execs "$@", so nothing is quoted by hand.
    let script = format!("DATA=\"$1\"; shift; {setup} && exec \"$@\"");
    let mut unshare: Vec<String> = ["--mount", "--propagation", "private", "--", "sh", "-c"]
        .map(str::to_owned)
        .into();
    unshare.extend([script, "sh".to_owned(), utf8(dir), utf8(program)]);
    unshare.extend(args);
    (PathBuf::from("unshare"), unshare)
}
