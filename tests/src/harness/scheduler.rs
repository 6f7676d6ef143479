//! `drover-scheduler` started on `127.0.0.1:0` with a data dir the test
//! owns (a `tempfile::tempdir()`; reused across a restart, it is the
//! scheduler's whole memory), against the master the test names.

use std::path::Path;

use super::binaries;
use super::process::Process;

/// A running `drover-scheduler`.
pub struct Scheduler {
    process: Process,
    /// Its job API's address, `127.0.0.1:PORT`.
    pub address: String,
}

impl Scheduler {
    /// Starts it with `--data-dir data_dir --master master` and `extra`
    /// flags (plus `--user nobody` unless `extra` has `--user` or
    /// `--allow-root-tasks`), and waits for its address.
    #[track_caller]
    pub fn start(data_dir: &Path, master: &str, extra: &[&str]) -> Scheduler {
        let data_dir = data_dir
            .to_str()
            .unwrap_or_else(|| panic!("data dir {} is not UTF-8", data_dir.display()));
        let mut args = vec![
            "--listen",
            "127.0.0.1:0",
            "--master",
            master,
            "--data-dir",
            data_dir,
        ];
        args.extend_from_slice(extra);
        // Tasks run as nobody, as a scheduler started by root should be told;
        // a test that wants another user or root says so.
        if !extra
            .iter()
            .any(|a| *a == "--user" || *a == "--allow-root-tasks")
        {
            args.extend(["--user", "nobody"]);
        }
        let process = Process::start(
            &binaries::scheduler(),
            &args,
            &[("DROVER_LOG", "warn,drover_scheduler=info")],
        );
        Scheduler {
            address: process.address.clone(),
            process,
        }
    }

    /// The scheduler's pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// SIGKILL: a crash at whatever point it had reached.
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// SIGTERM and wait (see [`Process::stop`]).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}
