//! `drover-scheduler` started on `127.0.0.1:0` with a data dir the test
//! owns (a `tempfile::tempdir()`; reused across a restart, it is the
//! scheduler's whole memory), against the master the test names.
//!
//! [`Scheduler::start`] is the common case; [`Scheduler::on`] builds the
//! others: a scheduler in a mount namespace of its own (a full or
//! read-only data directory), and one expected to exit on its own (a
//! refusal at start) whose status and logs the test reads.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use drover_test_support::netns::{Host, LoopbackForward};

use super::binaries;
use super::process::Process;
use super::run;

/// The log filter every scheduler under test runs with.
const LOG: (&str, &str) = ("DROVER_LOG", "warn,drover_scheduler=info");

/// A running `drover-scheduler`.
pub struct Scheduler {
    process: Process,
    /// In a test host: the test's way in to its loopback-only API.
    _forward: Option<LoopbackForward>,
    /// Its job API's address, `127.0.0.1:PORT` (in a test host, the
    /// forward's port in the test process).
    pub address: String,
}

impl Scheduler {
    /// Starts it with `--data-dir data_dir --master master` and `extra`
    /// flags (plus `--user nobody` unless `extra` has `--user` or
    /// `--allow-root-tasks`, and `--allow-anonymous` unless it names a
    /// credentials file), and waits for its address.
    #[track_caller]
    pub fn start(data_dir: &Path, master: &str, extra: &[&str]) -> Scheduler {
        Scheduler::on(data_dir, master).args(extra).start()
    }

    /// A scheduler on `data_dir` against `master`, to be configured.
    pub fn on(data_dir: &Path, master: &str) -> SchedulerBuilder {
        let data_dir = data_dir
            .to_str()
            .unwrap_or_else(|| panic!("data dir {} is not UTF-8", data_dir.display()))
            .to_owned();
        SchedulerBuilder {
            data_dir,
            master: master.to_owned(),
            extra: Vec::new(),
            mount_setup: None,
            listen: "127.0.0.1:0".to_owned(),
            anonymous: true,
            log: None,
            host: None,
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

    /// Waits up to `within` for it to exit on its own (see
    /// [`Process::wait_exit`]).
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        self.process.wait_exit(within)
    }

    /// SIGTERM and wait (see [`Process::stop`]).
    pub fn stop(&mut self) {
        self.process.stop();
    }
}

/// How a `drover-scheduler` is to be started (see [`Scheduler::on`]).
pub struct SchedulerBuilder {
    data_dir: String,
    master: String,
    extra: Vec<String>,
    mount_setup: Option<String>,
    listen: String,
    anonymous: bool,
    log: Option<(PathBuf, String)>,
    host: Option<Host>,
}

impl SchedulerBuilder {
    /// Adds flags after `--listen`, `--master` and `--data-dir`.
    pub fn args(mut self, extra: &[&str]) -> Self {
        self.extra.extend(extra.iter().map(|a| (*a).to_owned()));
        self
    }

    /// `--listen address` instead of `127.0.0.1:0`: a scheduler restarted
    /// on the same address, for a client (a browser) that stays connected
    /// to it across the restart.
    pub fn listen(mut self, address: &str) -> Self {
        self.listen = address.to_owned();
        self
    }

    /// Without `--allow-anonymous`, which every other scheduler under test
    /// gets unless its flags name a credentials file: the tests of
    /// authentication start theirs with a credentials file, and this one
    /// with neither (a refusal at start).
    pub fn authenticated_only(mut self) -> Self {
        self.anonymous = false;
        self
    }

    /// Runs it in a private mount namespace of its own, after the shell
    /// commands `setup` (e.g. a small tmpfs or a read-only bind mount on
    /// its data directory, which the setup names as `"$DATA"`). Nothing
    /// outside the namespace sees these mounts, and they go with it. `sh`
    /// execs the scheduler, so the pid is the scheduler's throughout (for
    /// `nsenter -t PID -m`). Needs root.
    pub fn in_mount_namespace(mut self, setup: &str) -> Self {
        self.mount_setup = Some(setup.to_owned());
        self
    }

    /// Its logs appended to `path`, at `filter` (a `DROVER_LOG` value),
    /// for a test that reads what it logged.
    pub fn log_to(mut self, path: &Path, filter: &str) -> Self {
        self.log = Some((path.to_owned(), filter.to_owned()));
        self
    }

    /// Runs it inside `host` (a network-namespace test host). Its API
    /// still listens on loopback (the host's own: a scheduler without TLS
    /// refuses any other address), which the test reaches through a
    /// forward ([`Host::forward_loopback`]); its connections to the master,
    /// ZooKeeper and the store go over the lab, where a partition cuts
    /// them. Not with [`SchedulerBuilder::run_until_exit`].
    pub fn in_host(mut self, host: &Host) -> Self {
        self.host = Some(host.clone());
        self
    }

    /// Starts it and waits for its address.
    #[track_caller]
    pub fn start(mut self) -> Scheduler {
        let log = self.log.take();
        let host = self.host.take();
        let (program, args) = self.command();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = match &log {
            Some((path, filter)) => Process::start_in(
                &program,
                &args,
                &[(LOG.0, filter)],
                Some(path),
                host.as_ref(),
            ),
            None => Process::start_in(&program, &args, &[LOG], None, host.as_ref()),
        };
        let forward = host.map(|host| {
            let port = process
                .address
                .parse::<std::net::SocketAddr>()
                .unwrap_or_else(|e| panic!("the scheduler printed {:?}: {e}", process.address))
                .port();
            host.forward_loopback(port)
        });
        Scheduler {
            address: forward
                .as_ref()
                .map_or_else(|| process.address.clone(), |f| f.addr().to_string()),
            process,
            _forward: forward,
        }
    }

    /// Runs it expecting it to exit on its own (a refusal at start) within
    /// `within`: `Ok` with its status, stdout and stderr; `Err` with what
    /// it printed if it was still running then (it is SIGKILLed), so the
    /// test can fail saying what else it saw.
    pub async fn run_until_exit(self, within: Duration) -> Result<Output, Output> {
        let (program, args) = self.command();
        run::run_until_exit(&program, &args, &[LOG], within).await
    }

    /// The program and arguments: the scheduler's own, or `unshare`
    /// running the setup and then exec'ing it.
    fn command(self) -> (PathBuf, Vec<String>) {
        let scheduler = binaries::scheduler();
        let mut args: Vec<String> = [
            "--listen",
            &self.listen,
            "--master",
            &self.master,
            "--data-dir",
            &self.data_dir,
        ]
        .map(str::to_owned)
        .into();
        // Tasks run as nobody, as a scheduler started by root should be told;
        // a test that wants another user or root says so.
        let user_named = self
            .extra
            .iter()
            .any(|a| a == "--user" || a == "--allow-root-tasks");
        // Tests of other things let anonymous callers in (loopback only),
        // as `--allow-anonymous` does for a trial; the tests of
        // authentication give a credentials file (the default path: the
        // scheduler refuses to start with neither).
        let credentials_named = self
            .extra
            .iter()
            .any(|a| a == "--credentials-file" || a == "--allow-anonymous");
        if self.anonymous && !credentials_named {
            args.push("--allow-anonymous".to_owned());
        }
        args.extend(self.extra);
        if !user_named {
            args.extend(["--user".to_owned(), "nobody".to_owned()]);
        }
        match self.mount_setup {
            Some(setup) => {
                run::in_mount_namespace(&setup, Path::new(&self.data_dir), &scheduler, args)
            }
            None => (scheduler, args),
        }
    }
}
