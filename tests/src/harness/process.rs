//! One child process under test: started listening on `127.0.0.1:0`, it
//! reports the address it bound on stdout, and it is stopped by its own pid
//! when dropped (SIGTERM, then SIGKILL if it has not exited within
//! [`STOP_GRACE`]). Never signals anything by name, and never a process it
//! did not start.
//!
//! Knows nothing of which binary it runs or its flags ([`super::agent_sim`]
//! and [`super::scheduler`] do).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use drover_test_support::netns::Host;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a SIGTERM'd process gets to clean up (agent-sim stops its
/// executors and removes its cgroup parent) before it is SIGKILLed.
pub const STOP_GRACE: Duration = Duration::from_secs(15);

/// How often a stopping process is checked for having exited.
const EXIT_POLL: Duration = Duration::from_millis(20);

/// A running child that printed its address; stopped when dropped.
pub struct Process {
    child: Child,
    program: PathBuf,
    /// The bound address as printed, `127.0.0.1:PORT`.
    pub address: String,
}

impl Process {
    /// Starts `program args...` with `envs` added to the environment, and
    /// reads its stdout until a line holds its address: after `http://`
    /// (`drover-scheduler listening on http://ADDR`) or as a word of its own
    /// (`listening on ADDR`). Its stdout is drained from then on, so it
    /// never blocks on a full pipe; its stderr (the logs) is the test's.
    #[track_caller]
    pub fn start(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Process {
        Process::start_logging(program, args, envs, None)
    }

    /// As [`Process::start`], its stderr (the logs) appended to `log` when
    /// given: for a test that reads what the process logged.
    #[track_caller]
    pub fn start_logging(
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        log: Option<&Path>,
    ) -> Process {
        Process::start_in(program, args, envs, log, None)
    }

    /// As [`Process::start_logging`], run inside `host` when given (a
    /// network-namespace test host; the process's address is then on the
    /// host's address, as its flags say).
    #[track_caller]
    pub fn start_in(
        program: &Path,
        args: &[&str],
        envs: &[(&str, &str)],
        log: Option<&Path>,
        host: Option<&Host>,
    ) -> Process {
        let stderr = match log {
            Some(path) => Stdio::from(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .unwrap_or_else(|e| panic!("cannot open the log {}: {e}", path.display())),
            ),
            None => Stdio::inherit(),
        };
        let mut command = match host {
            Some(host) => host.command(program),
            None => Command::new(program),
        };
        command
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stdout = child.stdout.take().expect("stdout was set to a pipe above");
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let line = match lines.next() {
                Some(Ok(line)) => line,
                Some(Err(e)) => {
                    reap(&mut child);
                    panic!("reading the stdout of {}: {e}", program.display());
                }
                None => {
                    reap(&mut child);
                    panic!(
                        "{} exited before printing its address ({args:?})",
                        program.display()
                    );
                }
            };
            if let Some(address) = address_in(&line) {
                break address;
            }
        };
        std::thread::spawn(move || lines.for_each(drop));
        Process {
            child,
            program: program.to_path_buf(),
            address,
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL (by pid) and reap: a crash, with no chance to clean up.
    pub fn kill(&mut self) {
        reap(&mut self.child);
    }

    /// Waits up to `within` for the child to exit on its own: its status,
    /// or `None` if it still runs (it is left running).
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(EXIT_POLL);
        }
    }

    /// SIGTERM (by pid), as a user's Ctrl-C or a service manager would,
    /// and wait for the exit; SIGKILL after [`STOP_GRACE`]. Does nothing
    /// to a process that already exited.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = i32::try_from(self.child.id()).expect("a pid fits in i32");
        if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
            eprintln!("SIGTERM to {} ({pid}): {e}", self.program.display());
        }
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(EXIT_POLL);
        }
        eprintln!(
            "{} ({pid}) still running {STOP_GRACE:?} after SIGTERM: SIGKILL",
            self.program.display()
        );
        self.kill();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.stop();
    }
}

/// SIGKILL (std sends it to the child's own pid) and wait, ignoring a
/// child that already exited.
fn reap(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The `host:port` a startup line names, if it names one.
fn address_in(line: &str) -> Option<String> {
    if let Some(rest) = line
        .split("http://")
        .nth(1)
        .or_else(|| line.split("https://").nth(1))
    {
        return rest.split_whitespace().next().map(str::to_owned);
    }
    line.split_whitespace()
        .find(|word| word.parse::<std::net::SocketAddr>().is_ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::address_in;

    #[test]
    fn the_address_is_read_from_either_binarys_startup_line() {
        assert_eq!(
            address_in("drover-scheduler listening on http://127.0.0.1:4000").as_deref(),
            Some("127.0.0.1:4000")
        );
        assert_eq!(
            address_in("listening on 127.0.0.1:5050").as_deref(),
            Some("127.0.0.1:5050")
        );
        assert_eq!(address_in("starting"), None);
    }
}
