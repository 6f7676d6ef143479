//! The JSON API fuzzed from its own description: a scheduler (agent-sim
//! behind it) with a service job whose update is paused on its way, a
//! batch job run to its end and a job to be deleted, and schemathesis (pinned, installed by `scripts/schemathesis-env.sh`)
//! run by `scripts/api-fuzz.sh` against `GET /api/v1/openapi.json`, with
//! the job ids and pod names as likely path parameters so the requests
//! reach live jobs rather than 404. It fails on any 5xx, and on any answer
//! whose status, content type or body the document does not describe.
//! Run twice: without credentials (a scheduler with `--allow-anonymous`)
//! and as an admin with a bearer token (a scheduler with a credentials
//! file). Bounded: 20 examples per operation, about a minute a run on
//! two cores.
//! Fails, never skips, when Python or pip is missing.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use drover_scheduler::auth::credentials::digest_text;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries::repo_root;
use drover_tests::harness::http::{get, request};
use drover_tests::harness::job_api::job_spec;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The longest a fuzzing run may take before the test gives up on it.
const FUZZ_LIMIT: Duration = Duration::from_secs(170);

/// The seed of the run: CI's runs are the same run (schemathesis prints
/// it; `API_FUZZ_SEED` picks another to explore).
const DEFAULT_SEED: &str = "21";

/// schemathesis' configuration: the live jobs' ids and pods' names, drawn
/// for `{id}` and `{pod_name}` most of the time (the rest are generated).
/// DELETE draws only the job that is there to be deleted, so the other
/// jobs stay for the operations that read and change them.
const CONFIG: &str = r#"
[dictionaries.jobs]
values = ["fuzz-web", "fuzz-batch"]

[dictionaries.doomed]
values = ["fuzz-doomed"]

[dictionaries.pods]
values = ["fuzz-web-0", "fuzz-web-1", "fuzz-batch-0", "fuzz-batch-1"]

[parameters]
"path.id" = { dictionary = "jobs", probability = 0.8 }
"path.pod_name" = { dictionary = "pods", probability = 0.8 }

[[operations]]
include-method = "DELETE"
parameters = { "path.id" = { dictionary = "doomed", probability = 0.5 } }

# A pod's logs are read from its agent's files API, which agent-sim's
# simulated agents do not serve: the route answers what it answers when an
# agent cannot be reached, 503 UNAVAILABLE (documented), and nothing else
# of the 5xx.
[[operations]]
include-path = "/api/v1/pods/{pod_name}/logs/{stream}"
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", "503"]
"#;

/// `scripts/schemathesis-env.sh`: a failure to install fails the test.
fn install_schemathesis() {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/schemathesis-env.sh"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/schemathesis-env.sh failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `scripts/api-fuzz.sh` against `address` with `config`, sending
/// `headers` (`Name: value`) on every request, bounded by [`FUZZ_LIMIT`]:
/// whether it passed, and what it printed (stdout, then stderr). The output
/// goes to files beside `config`, so that a run stopped for taking too
/// long still says how far it got.
async fn fuzz(address: &str, config: &Path, headers: &[&str]) -> (bool, String) {
    let seed = std::env::var("API_FUZZ_SEED").unwrap_or_else(|_| DEFAULT_SEED.to_owned());
    let dir = config.parent().unwrap();
    let (stdout, stderr) = (dir.join("fuzz.stdout"), dir.join("fuzz.stderr"));
    let mut command = tokio::process::Command::new("bash");
    command
        .arg(repo_root().join("scripts/api-fuzz.sh"))
        .arg(address)
        .args(["--seed", &seed])
        .env("API_FUZZ_CONFIG", config)
        // schemathesis keeps a cache (`.schemathesis/`) where it runs: in
        // the test's directory, not the source tree.
        .current_dir(dir)
        .stdout(std::fs::File::create(&stdout).unwrap())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .kill_on_drop(true);
    for header in headers {
        command.args(["-H", header]);
    }
    let mut child = command.spawn().expect("scripts/api-fuzz.sh starts");
    let finished = tokio::time::timeout(FUZZ_LIMIT, child.wait()).await;
    if finished.is_err() {
        let _ = child.kill().await;
    }
    let printed = format!(
        "{}\n{}",
        std::fs::read_to_string(&stdout).unwrap_or_default(),
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
    match finished {
        Ok(status) => (status.unwrap().success(), printed),
        Err(_) => panic!("schemathesis ran over {FUZZ_LIMIT:?}; it printed:\n{printed}"),
    }
}

/// The rest of the line after the first `label` in `text`.
fn after<'a>(text: &'a str, label: &str) -> &'a str {
    let (_, rest) = text
        .split_once(label)
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"));
    rest.lines().next().unwrap_or("").trim()
}

/// The admin token of the protected scheduler's credentials file.
const TOKEN: &str = "fuzz-admin-token";

/// One JSON exchange with the scheduler, with the admin's token when
/// `token` says so.
async fn call(address: &str, token: bool, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let auth = format!("Bearer {TOKEN}");
    let mut headers = vec![("Content-Type", "application/json")];
    if token {
        headers.push(("Authorization", auth.as_str()));
    }
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    let reply = request(address, method, path, &headers, body).await;
    (
        reply.status,
        serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
    )
}

async fn wait_for_state(address: &str, token: bool, job: &str, want: &str) {
    let path = format!("/api/v1/jobs/{job}");
    let reached = wait_for(Duration::from_secs(30), || async {
        let (_, job) = call(address, token, "GET", &path, &Value::Null).await;
        (job["job_info"]["status"]["state"] == want).then_some(())
    })
    .await;
    assert!(reached.is_some(), "{job} never reached {want}");
}

/// A scheduler with the jobs [`CONFIG`] names, the service job running:
/// with `--allow-anonymous`, or (`protected`) with a credentials file
/// whose admin holds [`TOKEN`].
async fn scheduler_with_jobs(sim: &AgentSim, dir: &Path, protected: bool) -> Scheduler {
    // Jobs of at most 20 instances: the fuzzer scales and updates jobs to
    // any count the scheduler takes (100,000 by default), and a debug build
    // on two shared cores then spends seconds listing a job's pods (answers
    // the 5 s request timeout turned into failures). Larger counts are
    // refused, 400 INVALID_ARGUMENT, as documented.
    let credentials = dir.join("credentials.yaml");
    std::fs::write(
        &credentials,
        format!(
            "users:\n  - {{name: fuzz, role: admin, tokens: [{}]}}\n",
            digest_text(TOKEN)
        ),
    )
    .unwrap();
    let mut args = vec!["--max-job-instances", "20"];
    if protected {
        args.extend(["--credentials-file", credentials.to_str().unwrap()]);
    }
    let scheduler = Scheduler::start(&dir.join("data"), &format!("http://{}", sim.address), &args);
    let address = &scheduler.address;
    for (id, kind, instances, command) in [
        ("fuzz-web", "SERVICE", 2, "sleep 600"),
        ("fuzz-batch", "BATCH", 2, "sleep 1"),
        ("fuzz-doomed", "BATCH", 1, "sleep 1"),
    ] {
        let body = json!({"job_id": {"value": id}, "spec": job_spec(kind, instances, command)});
        let (status, reply) = call(address, protected, "POST", "/api/v1/jobs", &body).await;
        assert_eq!(status, 200, "{reply}");
    }
    wait_for_state(address, protected, "fuzz-web", "JOB_STATE_RUNNING").await;
    // An update paused on its way, so the answers carry a workflow (its
    // status, batch and events), and a batch job run to its end, so pods
    // carry finished runs.
    let update = json!({
        "spec": job_spec("SERVICE", 2, "sleep 601"),
        "update_spec": {"batch_size": 1},
    });
    let (status, reply) = call(
        address,
        protected,
        "POST",
        "/api/v1/jobs/fuzz-web/update",
        &update,
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = call(
        address,
        protected,
        "POST",
        "/api/v1/jobs/fuzz-web/workflow/pause",
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    wait_for_state(address, protected, "fuzz-batch", "JOB_STATE_SUCCEEDED").await;
    scheduler
}

/// Runs schemathesis against `scheduler` with `headers` and checks it
/// tested every operation it selected and found nothing.
async fn fuzz_clean(scheduler: &Scheduler, dir: &Path, headers: &[&str]) {
    let config = dir.join("schemathesis.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let (passed, text) = fuzz(&scheduler.address, &config, headers).await;
    println!("{text}");
    assert!(passed, "schemathesis ({headers:?}) found failures:\n{text}");
    // It tested every operation it selected (all but the watch stream),
    // none errored.
    let selected = after(&text, "Selected: ").split('/').next().unwrap();
    assert_eq!(after(&text, "Tested: "), selected, "{text}");
    assert!(selected.parse::<usize>().unwrap() >= 30, "{text}");
    // The scheduler still answers: nothing it was sent broke it. (Its jobs
    // may be gone: the stateful phase deletes the jobs it lists.)
    let (status, health) = get(&scheduler.address, "/health/live").await;
    assert_eq!((status, &health["status"]), (200, &json!("ok")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_answer_off_the_document() {
    tokio::task::spawn_blocking(install_schemathesis)
        .await
        .unwrap();
    let sim = AgentSim::for_scheduler(2).start();

    // Without credentials, on a scheduler that lets anonymous callers in.
    let dir = tempfile::tempdir().unwrap();
    let scheduler = scheduler_with_jobs(&sim, dir.path(), false).await;
    // The document is served, and is the one schemathesis reads.
    let (status, document) = get(&scheduler.address, "/api/v1/openapi.json").await;
    assert_eq!(status, 200, "{document}");
    assert!(document["paths"]["/api/v1/jobs/{id}"]["get"].is_object());
    fuzz_clean(&scheduler, dir.path(), &[]).await;
    drop(scheduler);

    // Authenticated, on a scheduler with a credentials file (the default
    // path): every operation as the admin.
    // (Its own agent-sim: a master that knew the first scheduler's
    // framework would have the second refuse to start as a new one.)
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let scheduler = scheduler_with_jobs(&sim, dir.path(), true).await;
    fuzz_clean(
        &scheduler,
        dir.path(),
        &[&format!("Authorization: Bearer {TOKEN}")],
    )
    .await;
}
