//! An `https://` Mesos master (agent-sim serving TLS, as a Mesos master
//! with SSL enabled): the scheduler subscribes, asks its state and runs a
//! job through it with `--master-ca-file`, and refuses to start without
//! it, saying which flag is missing.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::pki::TestCa;
use drover_tests::harness::scheduler::Scheduler;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn a_job_runs_through_an_https_master_with_the_ca_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "master");
    let sim = AgentSim::for_scheduler(2).tls(&ca.server("master")).start();
    assert!(sim.master_url().starts_with("https://"));
    let s = Scheduler::start(
        &dir.path().join("data"),
        &sim.master_url(),
        &["--master-ca-file", ca.ca_file.to_str().unwrap()],
    );
    create_job(&s.address, "tls", job_spec("SERVICE", 3, "sleep 600")).await;
    let stats = wait_for_job_state(&s.address, "tls", "JOB_STATE_RUNNING", LIMIT).await;
    assert_eq!(stats["POD_STATE_RUNNING"], 3, "{stats}");
}

#[tokio::test]
async fn an_https_master_without_the_ca_file_is_refused_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "master");
    let sim = AgentSim::for_scheduler(1).tls(&ca.server("master")).start();
    let out = Scheduler::on(&dir.path().join("data"), &sim.master_url())
        .run_until_exit(LIMIT)
        .await
        .unwrap_or_else(|out| panic!("still running: {out:?}"));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--master-ca-file") && stderr.contains("https://"),
        "{stderr}"
    );
}

#[tokio::test]
async fn an_https_master_whose_certificate_the_ca_did_not_sign_is_not_subscribed() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "master");
    let other = TestCa::new(dir.path(), "other");
    let sim = AgentSim::for_scheduler(1).tls(&ca.server("master")).start();
    let s = Scheduler::start(
        &dir.path().join("data"),
        &sim.master_url(),
        &["--master-ca-file", other.ca_file.to_str().unwrap()],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, health) = drover_tests::harness::http::get(&s.address, "/health").await;
    assert_eq!(health["subscribed"], false, "{health}");
}
