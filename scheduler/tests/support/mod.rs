//! Test support: start real binaries on loopback port 0, talk JSON to them,
//! and stop them (by their own pid) when the test ends.
#![allow(clippy::unwrap_used, dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process killed (SIGKILL, by pid) when dropped.
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

/// Starts a scheduler on port 0 with `data_dir`, against `master`.
pub fn start_scheduler(data_dir: &Path, master: &str, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--master",
        master,
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Proc::start(&scheduler_bin(), &args, &[])
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
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 16, "disk_limit_mb": 0},
                "command": {"value": command}
            }],
            "kill_grace_period_seconds": 1
        }
    })
}

/// Polls `check` every 100 ms until it returns Some, for at most `limit`.
pub async fn wait_for<T, F, Fut>(limit: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The agent simulator binary, built next to ours. Built on demand when a
/// plain `cargo test -p drover-scheduler` has not built it.
pub fn sim_bin() -> PathBuf {
    let path = scheduler_bin().parent().unwrap().join("drover-agent-sim");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args([
                "build",
                "-p",
                "drover-agent-sim",
                "--bin",
                "drover-agent-sim",
            ])
            .status()
            .expect("cannot run cargo to build drover-agent-sim");
        assert!(status.success(), "building drover-agent-sim failed");
    }
    assert!(path.exists(), "drover-agent-sim not found at {path:?}");
    path
}

/// Starts the simulated master with `agents` agents.
pub fn start_sim(agents: usize, extra: &[&str]) -> Proc {
    let agents = agents.to_string();
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--agents",
        agents.as_str(),
        "--allocation-interval",
        "100ms",
        "--status-update-retry-interval",
        "1secs",
        "--seed",
        "7",
    ];
    args.extend_from_slice(extra);
    Proc::start(&sim_bin(), &args, &[])
}

/// The state of job `id` (`JOB_STATE_...`) and its pod stats.
pub async fn job_state(address: &str, id: &str) -> (String, serde_json::Value) {
    let (_, job) = get(address, &format!("/api/v1/jobs/{id}")).await;
    let status = &job["job_info"]["status"];
    (
        status["state"].as_str().unwrap_or("").to_owned(),
        status["pod_stats"].clone(),
    )
}

/// Tasks the simulated master knows, as (task id, state, agent id).
pub async fn sim_tasks(sim: &str) -> Vec<(String, String, String)> {
    let (_, tasks) = get(sim, "/sim/tasks").await;
    tasks["tasks"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|t| {
                    (
                        t["task_id"].as_str().unwrap_or("").to_owned(),
                        t["state"].as_str().unwrap_or("").to_owned(),
                        t["agent_id"].as_str().unwrap_or("").to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Instances with more than one live task at the master, as a list of
/// `(pod, task ids)`.
pub fn duplicate_live_tasks(tasks: &[(String, String, String)]) -> Vec<(String, Vec<String>)> {
    let live = [
        "TASK_STAGING",
        "TASK_STARTING",
        "TASK_RUNNING",
        "TASK_KILLING",
    ];
    let mut by_pod: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (task, state, _) in tasks {
        if live.contains(&state.as_str()) {
            let pod = task
                .rsplit_once('-')
                .map(|(p, _)| p.to_owned())
                .unwrap_or_default();
            by_pod.entry(pod).or_default().push(task.clone());
        }
    }
    by_pod.into_iter().filter(|(_, t)| t.len() > 1).collect()
}

/// Creates job `id` from `spec` through the API; a refusal fails the test.
pub async fn create_job(address: &str, id: &str, spec: serde_json::Value) {
    let (status, reply) = post(
        address,
        "/api/v1/jobs",
        &serde_json::json!({"job_id": {"value": id}, "spec": spec}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
}

/// Waits up to `limit` for job `id` to reach `want` (`JOB_STATE_...`) and
/// returns its pod stats then; fails the test with the last state seen.
pub async fn wait_for_job_state(
    address: &str,
    id: &str,
    want: &str,
    limit: Duration,
) -> serde_json::Value {
    let last = std::cell::RefCell::new(None);
    let found = wait_for(limit, || async {
        let (state, stats) = job_state(address, id).await;
        *last.borrow_mut() = Some((state.clone(), stats.clone()));
        (state == want).then_some(stats)
    })
    .await;
    found.unwrap_or_else(|| panic!("job {id} never reached {want}; last {:?}", last.borrow()))
}
