//! The web UI in a real browser: headless Chromium (Debian's `chromium`,
//! driven by `ui/e2e/browser.mjs` with playwright-core) against a real
//! scheduler on agent-sim with a real agent, so a pod's log is a real
//! sandbox file read through the agent's files API. The test creates
//! everything through the JSON API; the browser checks the job list, the
//! pods going PENDING -> RUNNING live, a pod's events and log text, a stop
//! button (its confirmation accepted), and the view recovering after the
//! scheduler restarts, without a page reload. It writes the screenshots
//! `docs/ui-job.png` and `docs/ui-pod.png`.
//!
//! It fails, never skips, without root (real agents), node, Chromium,
//! `ui/node_modules` (`npm ci` in `ui/`), or a scheduler built with its UI
//! (built without npm it serves a placeholder).
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::time::Duration;

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries::{self, repo_root};
use drover_tests::harness::browser::{self, chromium};
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::scheduler::Scheduler;
use serde_json::json;

/// The whole browser run's bound: each of its waits is 30 s at most.
const LIMIT: Duration = Duration::from_secs(240);
/// What the pods print; the browser looks for it in the log view.
const HELLO: &str = "drover-ui-e2e says hello";
const JOB: &str = "ui-e2e-web";

/// A port free now, for a scheduler restarted on the same address.
fn free_address() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_follows_a_service_live_and_survives_a_scheduler_restart() {
    require_root();
    let chromium = chromium();
    let executor = binaries::executor();
    let work = tempfile::tempdir().unwrap();
    // One real agent (cpus:4): two pods of 1.6 cpus fit, the third waits.
    let sim = AgentSim::for_scheduler(1)
        .real_agents(1, work.path())
        .start();
    let data = tempfile::tempdir().unwrap();
    let address = free_address();
    let master = format!("http://{}", sim.address);
    let start = || {
        Scheduler::on(data.path(), &master)
            .listen(&address)
            .args(&["--executor", executor.to_str().unwrap()])
            .start()
    };
    let mut scheduler = start();

    // The UI is the built one, not the placeholder of a build without npm.
    let (status, index) = get(&address, "/ui/").await;
    assert_eq!(status, 200, "{index}");
    assert!(
        !index.as_str().unwrap().contains("drover-ui-placeholder"),
        "the scheduler serves the UI placeholder: it was built without npm \
         (install nodejs and npm, then cargo build --workspace --bins)"
    );

    let docs = repo_root().join("docs");
    let base = format!("http://{address}");
    let args = [OsStr::new(&base), OsStr::new(JOB), docs.as_os_str()];
    browser::run_steps(
        browser::script("browser.mjs", &chromium),
        &args,
        LIMIT,
        async |name, step| {
            match name {
                // The page is open and live: the job is created now.
                "ready" => {
                    let spec = json!({
                        "type": "SERVICE",
                        "name": JOB,
                        "instance_count": 3,
                        "default_spec": {
                            "containers": [{
                                "resource": {"cpu_limit": 1.6, "mem_limit_mb": 32, "disk_limit_mb": 0},
                                "command": {"value": format!("echo {HELLO}; echo to-stderr >&2; sleep 600")}
                            }],
                            "kill_grace_period_seconds": 1
                        }
                    });
                    let (status, reply) =
                        post(&address, "/api/v1/jobs", &json!({ "spec": spec })).await;
                    assert_eq!(status, 200, "{reply}");
                }
                // The browser waits on the job page: restart the scheduler.
                "restart" => {
                    scheduler.stop();
                    scheduler = start();
                }
                // It is live again: stop one running pod and start the
                // stopped one (it gets that room), through the API.
                "recovered" => {
                    let detail: serde_json::Value =
                        serde_json::from_str(step.split_once(' ').unwrap().1).unwrap();
                    for (action, pod) in [("stop", &detail["stop"]), ("start", &detail["start"])] {
                        let path = format!("/api/v1/pods/{}/{action}", pod.as_str().unwrap());
                        let (status, reply) = post(&address, &path, &json!({})).await;
                        assert_eq!(status, 200, "{path}: {reply}");
                    }
                }
                _ => {}
            }
            matches!(name, "ready" | "restart" | "recovered")
        },
    )
    .await;
    for shot in ["ui-job.png", "ui-pod.png"] {
        let size = std::fs::metadata(docs.join(shot))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(size > 10_000, "docs/{shot} is {size} bytes");
    }
    drop(scheduler);
}

/// The routes the UI reads besides the job API, without a browser: the
/// UI's own assets, a pod's sandbox logs (current and by run, from an
/// offset, as Mesos' files API answers), the cluster's agents, and their
/// typed errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_routes_serve_assets_logs_and_agents_with_typed_errors() {
    require_root();
    let executor = binaries::executor();
    let work = tempfile::tempdir().unwrap();
    let mut sim = AgentSim::for_scheduler(2)
        .real_agents(1, work.path())
        .start();
    let data = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        data.path(),
        &format!("http://{}", sim.address),
        &["--executor", executor.to_str().unwrap()],
    );
    let address = &s.address;

    // `/` is the UI; a client route gets the page; a missing asset is 404.
    let (status, _) = drover_tests::harness::http::call(address, "GET", "/", None).await;
    assert_eq!(status, 302);
    let (status, page) = get(address, "/ui/jobs/anything").await;
    assert_eq!(status, 200);
    assert!(page.as_str().unwrap().contains("<html"), "{page}");
    let (status, body) = get(address, "/ui/assets/no-such-file.js").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("NOT_FOUND")));

    // The agents, with used, free and total resources.
    let (status, agents) = get(address, "/api/v1/agents").await;
    assert_eq!(status, 200, "{agents}");
    let agents = agents["agents"].as_array().unwrap().clone();
    assert_eq!(agents.len(), 2, "{agents:?}");
    for a in &agents {
        assert!(a["hostname"].is_string() && a["id"].is_string(), "{a}");
        let cpus = a["resources"]["cpus"].as_f64().unwrap();
        let free = a["free_resources"]["cpus"].as_f64().unwrap();
        assert!(cpus > 0.0 && free <= cpus, "{a}");
    }

    // Two pods of 3 cpus on two agents of 4: one runs on the real agent,
    // whose sandbox has real files.
    let spec = json!({
        "type": "SERVICE",
        "name": "logs",
        "instance_count": 2,
        "default_spec": {
            "containers": [{
                "resource": {"cpu_limit": 3.0, "mem_limit_mb": 32, "disk_limit_mb": 0},
                "command": {"value": format!("echo {HELLO}; echo oops >&2; sleep 600")}
            }],
            "kill_grace_period_seconds": 1
        }
    });
    let (status, reply) = post(address, "/api/v1/jobs", &json!({ "spec": spec })).await;
    assert_eq!(status, 200, "{reply}");
    let job = reply["job_id"]["value"].as_str().unwrap().to_owned();
    // The real agent's pod is the one whose stdout holds the text.
    let found = drover_tests::harness::wait::wait_for(Duration::from_secs(40), || async {
        for i in 0..2 {
            let pod = format!("{job}-{i}");
            let (status, r) =
                get(address, &format!("/api/v1/pods/{pod}/logs/stdout?offset=0")).await;
            if status == 200 && r["data"].as_str().is_some_and(|d| d.contains(HELLO)) {
                return Some((pod, r));
            }
        }
        None
    })
    .await;
    let (pod, first) = found.expect("no pod's stdout ever held the text");
    assert_eq!(first["offset"], 0, "{first}");
    let (_, stderr) = get(address, &format!("/api/v1/pods/{pod}/logs/stderr?offset=0")).await;
    assert!(
        stderr["data"].as_str().unwrap().contains("oops"),
        "{stderr}"
    );
    // No offset: no data, the size (where a follower starts); from an
    // offset with a length: that slice; run 0 by number: the same file.
    let (_, size) = get(address, &format!("/api/v1/pods/{pod}/logs/stdout")).await;
    assert_eq!(size["data"], "", "{size}");
    assert!(
        size["offset"].as_u64().unwrap() >= HELLO.len() as u64,
        "{size}"
    );
    let (_, slice) = get(
        address,
        &format!("/api/v1/pods/{pod}/logs/stdout?offset=7&length=6&run=0"),
    )
    .await;
    assert_eq!(slice, json!({"data": &HELLO[7..13], "offset": 7}));

    // Typed errors.
    for (path, status, code) in [
        (
            format!("/api/v1/pods/{pod}/logs/stdin"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            format!("/api/v1/pods/{pod}/logs/stdout?offset=x"),
            400,
            "INVALID_ARGUMENT",
        ),
        (
            format!("/api/v1/pods/{pod}/logs/stdout?run=9"),
            404,
            "NOT_FOUND",
        ),
        (
            format!("/api/v1/pods/{job}-7/logs/stdout"),
            404,
            "NOT_FOUND",
        ),
        (
            "/api/v1/pods/nope-0/logs/stdout".to_owned(),
            404,
            "NOT_FOUND",
        ),
    ] {
        let (got, body) = get(address, &path).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{path}: {body}"
        );
    }
    // No master: UNAVAILABLE, for the agents and for a log.
    sim.stop();
    for path in [
        "/api/v1/agents".to_owned(),
        format!("/api/v1/pods/{pod}/logs/stdout"),
    ] {
        let (got, body) = get(address, &path).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (503, Some("UNAVAILABLE")),
            "{path}: {body}"
        );
    }
}

/// The login page of a scheduler with a credentials file: a viewer logs
/// in, sees the jobs, is refused a stop with the scheduler's reason, and
/// logs out (`ui/e2e/login.mjs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_logs_in_and_is_refused_a_stop() {
    use drover_scheduler::auth::credentials::{digest_text, hash_password};
    use drover_tests::harness::http::request;

    let chromium = chromium();
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials.yaml");
    std::fs::write(
        &credentials,
        format!(
            "users:\n  - {{name: admin, role: admin, tokens: [{}]}}\n  \
             - {{name: vic, role: viewer, password: '{}'}}\n",
            digest_text("admin-token"),
            hash_password("vic-password").unwrap()
        ),
    )
    .unwrap();
    let scheduler = Scheduler::on(&dir.path().join("data"), &format!("http://{}", sim.address))
        .args(&["--credentials-file", credentials.to_str().unwrap()])
        .start();
    let address = scheduler.address.clone();
    let body = json!({"job_id": {"value": "login-web"}, "spec": {
        "type": "SERVICE", "name": "login-web", "instance_count": 1,
        "default_spec": {"containers": [{
            "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
            "command": {"value": "sleep 600"}
        }]}
    }});
    let created = request(
        &address,
        "POST",
        "/api/v1/jobs",
        &[
            ("Authorization", "Bearer admin-token"),
            ("Content-Type", "application/json"),
        ],
        bytes::Bytes::from(body.to_string()),
    )
    .await;
    assert_eq!(created.status, 200);

    let run = browser::script("login.mjs", &chromium)
        .arg(format!("http://{address}"))
        .args(["login-web", "vic", "vic-password"])
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the login run ends within 2 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("LOGIN E2E OK"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    // The refused stop changed nothing.
    let job = request(
        &address,
        "GET",
        "/api/v1/jobs/login-web",
        &[("Authorization", "Bearer admin-token")],
        bytes::Bytes::new(),
    )
    .await;
    let job: serde_json::Value = serde_json::from_slice(&job.body).unwrap();
    assert_eq!(
        job["job_info"]["status"]["desired_state"], "JOB_STATE_RUNNING",
        "{job}"
    );
}
