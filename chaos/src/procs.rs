//! One child process of the chaos cluster: a program with fixed arguments
//! (its listen address is one of them, so a restart comes back where its
//! clients look), its stdout and stderr appended to a log file of its own,
//! and the signals the faults send, always to its own pid.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Why a child could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot open the log {path}: {source}")]
    Log {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start {program}: {source}")]
    Start {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// How to start one child, again and again.
#[derive(Debug, Clone)]
pub struct Recipe {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub envs: Vec<(String, String)>,
    pub log: PathBuf,
}

impl Recipe {
    /// The next start of a master must not mint the ids of the last (a
    /// Mesos master gets a fresh id each start): `--seed N` becomes N+1.
    pub fn reseed(&mut self) {
        if let Some(i) = self.args.iter().position(|a| a == "--seed") {
            if let Some(seed) = self.args.get(i + 1).and_then(|s| s.parse::<u64>().ok()) {
                self.args[i + 1] = seed.wrapping_add(1).to_string();
            }
        }
    }

    /// Starts it, its output appended to its log.
    pub fn spawn(&self) -> Result<Child, SpawnError> {
        let open = |path: &Path| {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|source| SpawnError::Log {
                    path: path.to_owned(),
                    source,
                })
        };
        let out = open(&self.log)?;
        let err = open(&self.log)?;
        Command::new(&self.program)
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|source| SpawnError::Start {
                program: self.program.clone(),
                source,
            })
    }
}

/// Sends `signal` to `child` (by its pid); a child that already exited
/// (and was not yet reaped) ignores it.
pub fn signal(child: &Child, signal: Signal) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = kill(Pid::from_raw(pid), signal);
    }
}

/// SIGKILL and reap.
pub fn kill_and_reap(child: &mut Child) -> Option<ExitStatus> {
    let _ = child.kill();
    child.wait().ok()
}

/// SIGTERM, then SIGKILL after `grace`, and reap: the end of a run.
pub fn stop(child: &mut Child, grace: std::time::Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    signal(child, Signal::SIGCONT);
    signal(child, Signal::SIGTERM);
    let deadline = std::time::Instant::now() + grace;
    while std::time::Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    kill_and_reap(child);
}

/// How an exit reads in the report: `exit 75`, `SIGKILL`.
pub fn describe_exit(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(sig)) => Signal::try_from(sig)
            .map(|s| s.as_str().to_owned())
            .unwrap_or_else(|_| format!("signal {sig}")),
        _ => "unknown".to_owned(),
    }
}
