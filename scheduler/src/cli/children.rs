//! The processes the quickstart starts: each in its own process group (so
//! a Ctrl-C reaches only the quickstart, which then stops them in order),
//! its address read from its first stdout lines, its stderr kept in a log
//! file, and stopped by its own pid: SIGTERM, then SIGKILL after a grace.

use super::error::CliError;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A started child process.
pub struct ChildProc {
    /// What it is, for messages.
    pub name: String,
    /// The address it printed.
    pub address: String,
    child: Child,
}

impl ChildProc {
    /// Starts `program args`, stderr appended to `log`, and waits up to
    /// `wait` for a stdout line with `IP:PORT` in it.
    pub fn start(
        name: &str,
        program: &Path,
        args: &[String],
        log: &Path,
        wait: Duration,
    ) -> Result<ChildProc, CliError> {
        let fail = |why: String| CliError::Quickstart(format!("{name}: {why}"));
        let stderr = std::fs::File::create(log)
            .map_err(|e| fail(format!("cannot create {}: {e}", log.display())))?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(|e| fail(format!("cannot start {}: {e}", program.display())))?;
        let Some(stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(fail("no stdout pipe".into()));
        };
        let (tx, rx) = mpsc::channel();
        // Reads the address, then keeps draining stdout so the child never
        // blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(addr) = address_in(&line) {
                        let _ = tx.send(addr);
                        sent = true;
                    }
                }
            }
        });
        let mut proc = ChildProc {
            name: name.to_owned(),
            address: String::new(),
            child,
        };
        match rx.recv_timeout(wait) {
            Ok(address) => {
                proc.address = address;
                Ok(proc)
            }
            Err(_) => {
                proc.stop(Duration::from_secs(1));
                Err(fail(format!(
                    "printed no address within {wait:?}; see {}",
                    log.display()
                )))
            }
        }
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, wait up to `grace`, then SIGKILL; reaps the child.
    pub fn stop(&mut self, grace: Duration) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = i32::try_from(self.child.id()).map(Pid::from_raw);
        if let Ok(pid) = pid {
            let _ = kill(pid, Signal::SIGTERM);
        }
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(5));
    }
}

/// `IP:PORT` in a line such as `listening on 127.0.0.1:5050` or
/// `drover-scheduler listening on http://127.0.0.1:8080`.
fn address_in(line: &str) -> Option<String> {
    line.split_whitespace()
        .map(|w| w.trim_start_matches("http://").trim_end_matches('/'))
        .find(|w| w.parse::<std::net::SocketAddr>().is_ok())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::address_in;

    #[test]
    fn addresses_are_found_in_banner_lines() {
        assert_eq!(
            address_in("listening on 127.0.0.1:5050").as_deref(),
            Some("127.0.0.1:5050")
        );
        assert_eq!(
            address_in("drover-scheduler listening on http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(address_in("starting"), None);
    }
}
