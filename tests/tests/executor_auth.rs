//! Mesos' executor authentication on the real path: agent-sim started with
//! `--authenticate-http-executors` gives each drover-executor its own
//! `MESOS_EXECUTOR_AUTHENTICATION_TOKEN` and refuses executor calls
//! without `Authorization: Bearer <that token>`; drover-executor sends it,
//! so a job runs, and a call without it (or with another token) is 401.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::http::request;
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn executors_send_their_token_and_calls_without_it_are_refused() {
    let executor = binaries::executor();
    let work = tempfile::tempdir().unwrap();
    let sim = AgentSim::for_scheduler(1)
        .real_agents(1, work.path())
        .args(&["--authenticate-http-executors"])
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        dir.path(),
        &sim.master_url(),
        &["--executor", executor.to_str().unwrap()],
    );
    create_job(&s.address, "authed", job_spec("SERVICE", 1, "sleep 600")).await;
    wait_for_job_state(&s.address, "authed", "JOB_STATE_RUNNING", LIMIT).await;

    let subscribe = json!({
        "framework_id": {"value": "f"},
        "executor_id": {"value": "e"},
        "type": "SUBSCRIBE",
        "subscribe": {}
    })
    .to_string();
    for headers in [
        vec![("Content-Type", "application/json")],
        vec![
            ("Content-Type", "application/json"),
            ("Authorization", "Bearer not-the-token"),
        ],
    ] {
        let reply = request(
            &sim.address,
            "POST",
            "/api/v1/executor",
            &headers,
            subscribe.clone().into(),
        )
        .await;
        assert_eq!(reply.status, 401, "{headers:?}");
        assert!(
            String::from_utf8_lossy(&reply.body).contains("MESOS_EXECUTOR_AUTHENTICATION_TOKEN"),
            "{:?}",
            reply.body
        );
    }
}
