//! Test support for the tests of the scheduler binary alone: start it on
//! loopback port 0, talk JSON to it, and stop it (by its own pid) when the
//! test ends. Tests that start other binaries beside it live in
//! `drover-tests` (`tests/` at the workspace root), with its harness.
#![allow(clippy::unwrap_used, dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A child process stopped by its pid when dropped (SIGTERM, then SIGKILL).
pub struct Proc {
    pub child: Child,
    pub address: String,
}

impl Proc {
    /// Starts `program args...`, waiting for a stdout line containing
    /// `http://ADDR` and returning ADDR.
    pub fn start(program: &Path, args: &[&str], envs: &[(&str, &str)]) -> Proc {
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .env("DROVER_LOG", "warn,drover_scheduler=info");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"));
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let address = loop {
            let Some(line) = lines.next() else {
                let _ = child.kill();
                panic!("{program:?} exited before printing its address");
            };
            let line = line.unwrap();
            if let Some(rest) = line.split("http://").nth(1) {
                break rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(addr) = line
                .split_whitespace()
                .find(|w| w.parse::<std::net::SocketAddr>().is_ok())
            {
                break addr.to_owned();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Proc { child, address }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    /// Asks the process to stop (SIGTERM) and waits for it, as a user's
    /// Ctrl-C would: agent-sim then stops the executors it started, which a
    /// SIGKILL would orphan with their tasks and cgroups. SIGKILL after 15 s.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The scheduler binary built for these tests.
pub fn scheduler_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_drover-scheduler"))
}

/// Starts a scheduler on port 0 with `data_dir`, against `master`, with
/// `extra` flags (see [`scheduler_args`]).
pub fn start_scheduler(data_dir: &Path, master: &str, extra: &[&str]) -> Proc {
    let args = scheduler_args(data_dir, master, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Proc::start(&scheduler_bin(), &args, &[])
}

/// The arguments of a scheduler on port 0 with `data_dir`, against
/// `master`, with `extra` flags (and `--user nobody` unless they name a
/// user or allow root tasks).
pub fn scheduler_args(data_dir: &Path, master: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--master",
        master,
        "--data-dir",
        data_dir.to_str().unwrap(),
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
    args.into_iter().map(str::to_owned).collect()
}

/// `program args...` run in a private mount namespace of its own, after
/// the shell commands `setup`, which name `data_dir` as `"$DATA"` (e.g. a
/// read-only bind mount of it): `unshare` and its arguments. `sh` execs
/// the program, so its pid is the program's. Needs root.
///
/// drover-tests' harness has the same for the end-to-end tests
/// (`SchedulerBuilder::in_mount_namespace`); this crate's tests cannot
/// depend on drover-tests, which depends on this crate.
pub fn in_mount_namespace(
    setup: &str,
    data_dir: &Path,
    program: &Path,
    args: Vec<String>,
) -> (PathBuf, Vec<String>) {
    // `sh -c SCRIPT sh DATA PROGRAM ARGS...`: nothing is quoted by hand.
    let script = format!("DATA=\"$1\"; shift; {setup} && exec \"$@\"");
    let mut unshare: Vec<String> = [
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        &script,
        "sh",
        data_dir.to_str().unwrap(),
        program.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .into();
    unshare.extend(args);
    (PathBuf::from("unshare"), unshare)
}

/// Runs `program args...` (with `envs`, default `DROVER_LOG` and no
/// `RUST_BACKTRACE`, so stderr is what a user sees) to its exit, capturing
/// stdout and stderr: `Ok` with them and its status; `Err` with what it
/// printed if it still ran after `within`, when it is SIGKILLed. Both pipes
/// are read as it writes, so a chatty child never blocks on a full one.
pub async fn run_until_exit(
    program: &Path,
    args: &[String],
    envs: &[(&str, &str)],
    within: Duration,
) -> Result<Output, Output> {
    let mut child = Command::new(program)
        .args(args)
        .env("DROVER_LOG", "warn,drover_scheduler=info")
        .envs(envs.iter().copied())
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program:?}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + within;
    let (status, exited) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (status, true);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break (child.wait().unwrap(), false);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let output = Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    };
    if exited {
        Ok(output)
    } else {
        Err(output)
    }
}

/// One HTTP exchange: `(status, body as JSON or Null)`.
pub async fn call(
    address: &str,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, serde_json::Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let req = http::Request::builder()
        .method(method)
        .uri(format!("http://{address}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("request timed out")
        .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
    });
    (status, json)
}

/// POST JSON.
pub async fn post(address: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
    call(
        address,
        "POST",
        path,
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

/// GET.
pub async fn get(address: &str, path: &str) -> (u16, serde_json::Value) {
    call(address, "GET", path, None).await
}

/// A batch or service job spec running `command` in each of `instances`.
pub fn job_spec(kind: &str, instances: u32, command: &str) -> serde_json::Value {
    serde_json::json!({
        "type": kind,
        "name": format!("{kind}-test"),
        "instance_count": instances,
        "default_spec": {
            "containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32, "disk_limit_mb": 0},
                "command": {"value": command}
            }],
            "kill_grace_period_seconds": 1
        }
    })
}
