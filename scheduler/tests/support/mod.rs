//! Test support for the tests of the scheduler binary alone: start it on
//! loopback port 0, talk JSON to it, and stop it (by its own pid) when the
//! test ends. Tests that start other binaries beside it live in
//! `drover-tests` (`tests/` at the workspace root), with its harness.
//! [`engine`] is the engine in process, without the binary.
#![allow(clippy::unwrap_used, dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub mod engine;

use drover_test_support::{job_spec, run, trickle};
// Each test binary includes this module and uses some of these.
#[allow(unused_imports)]
pub use {
    job_spec::job_spec,
    run::{in_mount_namespace, run_until_exit},
    trickle::{trickle, Trickled},
};

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
    // Anonymous callers in (loopback), unless the test gives credentials.
    if !extra
        .iter()
        .any(|a| *a == "--credentials-file" || *a == "--allow-anonymous")
    {
        args.push("--allow-anonymous");
    }
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
