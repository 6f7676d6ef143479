//! Who tasks run as, at the real `drover-scheduler` binary's edges: a job
//! that would run as root is refused at submission unless the scheduler
//! was started with `--allow-root-tasks`, and `--user root` without it
//! stops the scheduler at start. No master is needed: both are decided
//! before anything reaches one.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use std::time::Duration;
use support::*;

/// No master listens on port 1: the scheduler keeps retrying, the API works.
const NO_MASTER: &str = "http://127.0.0.1:1";

/// A scheduler with exactly `extra` (no `--user` added), run by root.
fn scheduler(dir: &std::path::Path, extra: &[&str]) -> Proc {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--master",
        NO_MASTER,
        "--data-dir",
        dir.to_str().unwrap(),
        "--allow-anonymous",
    ];
    args.extend_from_slice(extra);
    Proc::start(&scheduler_bin(), &args, &[("USER", "root")])
}

fn with_user(mut spec: serde_json::Value, user: &str) -> serde_json::Value {
    spec["default_spec"]["containers"][0]["command"]["user"] = json!(user);
    spec
}

async fn create(address: &str, id: &str, spec: serde_json::Value) -> (u16, serde_json::Value) {
    post(
        address,
        "/api/v1/jobs",
        &json!({"job_id": {"value": id}, "spec": spec}),
    )
    .await
}

#[track_caller]
fn assert_refused(status: u16, reply: &serde_json::Value, field: &str) {
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["code"], "INVALID_ARGUMENT", "{reply}");
    let message = reply["message"].as_str().unwrap();
    assert!(message.starts_with(field), "{message}");
    assert!(message.contains("--allow-root-tasks"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_would_run_as_root_is_refused_without_the_opt_in() {
    let plain = job_spec("BATCH", 2, "id -u");

    // No --user, started by root: the framework user is root, so a job
    // naming no user would run as root.
    let dir = tempfile::tempdir().unwrap();
    let s = scheduler(dir.path(), &[]);
    let (status, reply) = create(&s.address, "by-default", plain.clone()).await;
    println!("no --user, no command.user: {status} {reply}");
    assert_refused(
        status,
        &reply,
        "spec.default_spec.containers[0].command.user",
    );
    let (status, reply) = create(&s.address, "named", with_user(plain.clone(), "nobody")).await;
    assert_eq!(status, 200, "a job naming a user runs as it: {reply}");
    let (_, jobs) = get(&s.address, "/api/v1/jobs").await;
    assert_eq!(jobs["jobs"].as_array().map(Vec::len), Some(1), "{jobs}");
    drop(s);

    // --user nobody: only a job naming root is refused, wherever it does.
    let dir = tempfile::tempdir().unwrap();
    let s = scheduler(dir.path(), &["--user", "nobody"]);
    let (status, reply) = create(&s.address, "root", with_user(plain.clone(), "root")).await;
    println!("--user nobody, command.user root: {status} {reply}");
    assert_refused(
        status,
        &reply,
        "spec.default_spec.containers[0].command.user",
    );
    let mut one_root = plain.clone();
    one_root["instance_spec"] = json!({"1": with_user(plain.clone(), "root")["default_spec"]});
    let (status, reply) = create(&s.address, "one-root", one_root).await;
    assert_refused(
        status,
        &reply,
        "spec.instance_spec.1.containers[0].command.user",
    );
    let (status, reply) = create(&s.address, "fine", plain.clone()).await;
    assert_eq!(status, 200, "{reply}");
    drop(s);

    // --allow-root-tasks: root is the operator's choice.
    let dir = tempfile::tempdir().unwrap();
    let s = scheduler(dir.path(), &["--allow-root-tasks"]);
    let (status, reply) = create(&s.address, "by-default", plain.clone()).await;
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = create(&s.address, "root", with_user(plain, "root")).await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_root_without_the_opt_in_stops_the_scheduler_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let args = scheduler_args(dir.path(), NO_MASTER, &["--user", "root"]);
    let output = run_until_exit(&scheduler_bin(), &args, &[], Duration::from_secs(10))
        .await
        .unwrap_or_else(|_| panic!("drover-scheduler --user root kept running (10 s)"));
    let (status, stderr) = (output.status, String::from_utf8_lossy(&output.stderr));
    println!("{status}: {stderr}");
    assert!(!status.success());
    assert!(
        stderr.contains("--user root") && stderr.contains("--allow-root-tasks"),
        "{stderr}"
    );
}
