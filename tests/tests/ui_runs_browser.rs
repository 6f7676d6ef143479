//! The web UI's pipeline runs in a real browser: headless Chromium
//! (Debian's `chromium`, driven by `ui/e2e/runs.mjs` with playwright-core)
//! against a real scheduler with a credentials file, on agent-sim with
//! real agents only (the steps are host commands under drover-executor).
//! The test makes three runs through the Kubeflow face, in the Default
//! experiment: a two-step pipeline passing an output parameter along, a
//! step that sleeps, and a step that fails until a file exists. The
//! browser, logged in as a user, lists and filters them, reads the
//! pipeline's nodes, its step's pod and log, terminates the sleeping run
//! and retries the failed one once the test made the file; a viewer sees a
//! run without the buttons. It writes the screenshot `docs/ui-run.png`.
//!
//! The test also reports a metric of the pipeline's first step
//! (ReportRunMetricsV1), and the browser finds it on the run's page.
//!
//! It fails, never skips, without root (real agents), node, Chromium,
//! `ui/node_modules` (`npm ci` in `ui/`), or a scheduler built with its UI.
#![allow(clippy::unwrap_used)]

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::Duration;

use drover_scheduler::auth::credentials::{digest_text, hash_password};
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries::{self, repo_root};
use drover_tests::harness::browser::{self, chromium};
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::http::request;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};

/// The whole browser run's bound: each of its waits is 30 s at most
/// (the retried run's 60 s).
const LIMIT: Duration = Duration::from_secs(300);
const ADMIN: &str = "Bearer ui-runs-admin-token";

/// One call of the Kubeflow face as the admin: (status, JSON body).
async fn kfp(address: &str, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
    let reply = request(
        address,
        method,
        path,
        &[
            ("Authorization", ADMIN),
            ("Content-Type", "application/json"),
        ],
        bytes::Bytes::from(body.map(Value::to_string).unwrap_or_default()),
    )
    .await;
    let json = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    (reply.status, json)
}

/// An Argo Workflow whose dag is `tasks`, over container `templates`.
fn workflow(name: &str, tasks: Value, templates: Value) -> String {
    let mut all = vec![json!({"name": "main", "dag": {"tasks": tasks}})];
    all.extend(templates.as_array().unwrap().iter().cloned());
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": format!("{name}-")},
        "spec": {"entrypoint": "main", "templates": all}
    })
    .to_string()
}

fn shell(name: &str, script: &str) -> Value {
    json!({"name": name, "container": {"image": "alpine", "command": ["sh", "-c", script]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_ui_lists_runs_shows_their_nodes_and_terminates_and_retries() {
    require_root();
    let chromium = chromium();
    let executor = binaries::executor();
    let work = tempfile::tempdir().unwrap();
    let sim = AgentSim::for_scheduler(2)
        .real_agents(2, work.path())
        .start();
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials.yaml");
    std::fs::write(
        &credentials,
        format!(
            "users:\n  - {{name: admin, role: admin, tokens: [{}]}}\n  \
             - {{name: ed, role: user, password: '{}'}}\n  \
             - {{name: vic, role: viewer, password: '{}'}}\n",
            digest_text(ADMIN.trim_start_matches("Bearer ")),
            hash_password("ed-password").unwrap(),
            hash_password("vic-password").unwrap()
        ),
    )
    .unwrap();
    let scheduler = Scheduler::on(&dir.path().join("data"), &format!("http://{}", sim.address))
        .args(&[
            "--executor",
            executor.to_str().unwrap(),
            "--credentials-file",
            credentials.to_str().unwrap(),
            // Its steps run the host's python (the kfp venv), not images.
            "--kfp-images",
            "host",
        ])
        .start();
    let address = scheduler.address.clone();

    // The Default experiment's id, for the runs' references.
    let (status, experiments) = kfp(&address, "GET", "/apis/v1beta1/experiments", None).await;
    assert_eq!(status, 200, "{experiments}");
    let default = experiments["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "Default")
        .unwrap_or_else(|| panic!("no Default experiment: {experiments}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // What the failing step waits for: a file only the test makes (in
    // /tmp, which the task's user can read).
    let input = PathBuf::from(format!("/tmp/drover-ui-runs-{}", uuid::Uuid::new_v4()));
    let pipeline = workflow(
        "ui-pipeline",
        json!([
            {"name": "make", "template": "make"},
            {"name": "use", "template": "use", "dependencies": ["make"],
             "arguments": {"parameters": [{"name": "v", "value": "{{tasks.make.outputs.parameters.make-Output}}"}]}}
        ]),
        json!([
            {"name": "make",
             "container": {"image": "alpine", "command": ["sh", "-c",
                "echo made-by-ui-e2e; echo -n hello-ui > /tmp/outputs/Output/data"]},
             "outputs": {"parameters": [{"name": "make-Output", "valueFrom": {"path": "/tmp/outputs/Output/data"}}]}},
            {"name": "use", "inputs": {"parameters": [{"name": "v"}]},
             "container": {"image": "alpine", "command": ["echo", "{{inputs.parameters.v}}"]}}
        ]),
    );
    let long = workflow(
        "ui-long",
        json!([{"name": "wait", "template": "wait"}]),
        json!([shell("wait", "sleep 600")]),
    );
    let fails = workflow(
        "ui-fails",
        json!([{"name": "check", "template": "check"}]),
        json!([shell("check", &format!("test -f {}", input.display()))]),
    );
    // Created a second apart: the list's newest-first order is certain.
    let mut ids = std::collections::HashMap::new();
    for (name, manifest) in [
        ("ui-pipeline", pipeline),
        ("ui-long", long),
        ("ui-fails", fails),
    ] {
        let run = json!({
            "name": name,
            "pipeline_spec": {"workflow_manifest": manifest},
            "resource_references": [{"key": {"type": "EXPERIMENT", "id": default}, "relationship": "OWNER"}]
        });
        let (status, reply) = kfp(&address, "POST", "/apis/v1beta1/runs", Some(&run)).await;
        assert_eq!(status, 200, "{name}: {reply}");
        ids.insert(name, reply["run"]["id"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    {
        // A metric of the pipeline's make step, for its page to show.
        let path = format!("/apis/v1beta1/runs/{}", ids["ui-pipeline"]);
        let make = wait_for(Duration::from_secs(30), || async {
            let (_, detail) = kfp(&address, "GET", &path, None).await;
            let workflow: Value =
                serde_json::from_str(detail["pipeline_runtime"]["workflow_manifest"].as_str()?)
                    .ok()?;
            let nodes = workflow["status"]["nodes"].as_object()?.clone();
            nodes
                .values()
                .find(|n| n["displayName"] == "make")
                .and_then(|n| n["id"].as_str().map(str::to_owned))
        })
        .await
        .expect("the pipeline's make node");
        let report = json!({"metrics": [
            {"name": "accuracy", "node_id": make, "number_value": 0.9, "format": "PERCENTAGE"}
        ]});
        let (status, reply) = kfp(
            &address,
            "POST",
            &format!("{path}:reportMetrics"),
            Some(&report),
        )
        .await;
        assert_eq!(
            (status, reply["results"][0]["status"].as_str()),
            (200, Some("OK")),
            "{reply}"
        );
    }

    let docs = repo_root().join("docs");
    let base = format!("http://{address}");
    let args: Vec<&OsStr> = [&base, "ed", "ed-password", "vic", "vic-password"]
        .into_iter()
        .map(OsStr::new)
        .chain([docs.as_os_str()])
        .collect();
    browser::run_steps(
        browser::script("runs.mjs", &chromium),
        &args,
        LIMIT,
        async |name, _| {
            if name != "fix" {
                return false;
            }
            // The failed step's input, for its retry.
            std::fs::write(&input, "fixed").unwrap();
            true
        },
    )
    .await;
    std::fs::remove_file(&input).ok();
    let size = std::fs::metadata(docs.join("ui-run.png"))
        .map(|m| m.len())
        .unwrap_or(0);
    assert!(size > 10_000, "docs/ui-run.png is {size} bytes");

    // What the buttons did, as the Kubeflow face reads it.
    let (_, listed) = kfp(&address, "GET", "/apis/v1beta1/runs?sort_by=name", None).await;
    let by_name = |name: &str| {
        listed["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap_or_else(|| panic!("no run {name}: {listed}"))
            .clone()
    };
    let long = by_name("ui-long");
    assert!(
        long["status"] == "Failed" && long["error"].as_str().unwrap_or("").contains("Terminate"),
        "{long}"
    );
    let fixed = by_name("ui-fails");
    assert_eq!(fixed["status"], "Succeeded", "{fixed}");
    drop(scheduler);
}
