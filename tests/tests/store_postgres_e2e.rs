//! The real scheduler on a real PostgreSQL store (`--store postgres://`),
//! on agent-sim: it runs jobs, is SIGKILLed and restarted and carries on
//! with the same tasks; PostgreSQL is restarted under it and no write it
//! acknowledged is lost. And `drover-scheduler migrate-store` copies a
//! SQLite store into PostgreSQL with every job, pod, event and (still
//! sealed) secret, checked through the API of a scheduler on each.
#![allow(clippy::unwrap_used)]

use drover_test_support::postgres::Postgres;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

/// Running pods of a job: pod name → task id.
async fn running_pods(address: &str, id: &str) -> BTreeMap<String, String> {
    let (_, pods) = get(address, &format!("/api/v1/jobs/{id}/pods")).await;
    pods["pods"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|p| p["status"]["state"] == "POD_STATE_RUNNING")
                .map(|p| {
                    (
                        p["pod_name"]["value"].as_str().unwrap().to_owned(),
                        p["status"]["pod_id"]["value"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

async fn job_ids(address: &str) -> Vec<String> {
    let (status, jobs) = get(address, "/api/v1/jobs").await;
    assert_eq!(status, 200, "{jobs}");
    let mut ids: Vec<String> = jobs["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("no jobs array: {jobs}"))
        .iter()
        .map(|j| {
            j["job_id"]["value"]
                .as_str()
                .or_else(|| j["id"]["value"].as_str())
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_on_postgres_survives_sigkill_and_a_database_restart_without_losing_a_write() {
    let started = Instant::now();
    let mut pg = Postgres::start();
    let url = pg.create_database("drover");
    let sim = AgentSim::for_scheduler(3).start();
    let master = format!("http://{}", sim.address);
    let dir = tempfile::tempdir().unwrap();
    let store = ["--store", url.as_str()];
    let mut s = Scheduler::start(dir.path(), &master, &store);
    create_job(&s.address, "svc", job_spec("SERVICE", 3, "sleep 1000")).await;
    create_job(&s.address, "done", job_spec("BATCH", 2, "sleep 1")).await;
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    wait_for_job_state(&s.address, "done", "JOB_STATE_SUCCEEDED", LIMIT).await;
    let tasks = running_pods(&s.address, "svc").await;
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    // The rows are in PostgreSQL, not in the data directory.
    assert_eq!(pg.psql_on("drover", "SELECT COUNT(*) FROM jobs"), "2");
    assert!(!dir.path().join("drover.sqlite").exists());

    // SIGKILL: the restarted scheduler reloads from PostgreSQL and keeps
    // the same tasks (reconciled, not relaunched).
    s.kill();
    let mut s = Scheduler::start(dir.path(), &master, &store);
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    wait_for_job_state(&s.address, "done", "JOB_STATE_SUCCEEDED", LIMIT).await;
    assert_eq!(running_pods(&s.address, "svc").await, tasks);

    // PostgreSQL restarted under it, while jobs are being created: every
    // create it acknowledged is there afterwards, and it goes on working.
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for i in 0..20 {
        if i == 5 {
            pg.restart();
        }
        let id = format!("during-{i}");
        let (status, reply) = post(
            &s.address,
            "/api/v1/jobs",
            &json!({"job_id": {"value": id}, "spec": job_spec("BATCH", 1, "sleep 1")}),
        )
        .await;
        if status == 200 {
            acknowledged.push(id);
        } else {
            refused += 1;
            eprintln!("create {id} during the restart: {status} {reply}");
        }
    }
    assert!(acknowledged.len() >= 14, "{refused} refused");
    for id in &acknowledged {
        wait_for_job_state(&s.address, id, "JOB_STATE_SUCCEEDED", LIMIT).await;
    }
    let ids = job_ids(&s.address).await;
    for id in &acknowledged {
        assert!(
            ids.contains(id),
            "{id} acknowledged but not stored: {ids:?}"
        );
    }
    assert_eq!(running_pods(&s.address, "svc").await, tasks);

    // And once more from a cold start: the same state from the database.
    s.kill();
    let s = Scheduler::start(dir.path(), &master, &store);
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    assert_eq!(job_ids(&s.address).await, ids);
    assert_eq!(running_pods(&s.address, "svc").await, tasks);
    eprintln!(
        "postgres e2e: {} creates acknowledged across a database restart ({refused} refused), took {:?}",
        acknowledged.len(),
        started.elapsed()
    );
}

/// What a scheduler's API says of every job: the job (without volatile
/// fields), its pods and each pod's events.
async fn everything(address: &str) -> Value {
    let mut all = serde_json::Map::new();
    for id in job_ids(address).await {
        let (_, mut job) = get(address, &format!("/api/v1/jobs/{id}")).await;
        // Runtime figures computed from "now" differ between two reads.
        if let Some(status) = job["job_info"]["status"].as_object_mut() {
            status.retain(|k, _| k == "state" || k == "pod_stats");
        }
        let (_, pods) = get(address, &format!("/api/v1/jobs/{id}/pods")).await;
        let mut events = serde_json::Map::new();
        for pod in pods["pods"].as_array().unwrap() {
            let name = pod["pod_name"]["value"].as_str().unwrap();
            let (_, e) = get(address, &format!("/api/v1/pods/{name}/events")).await;
            events.insert(name.to_owned(), e);
        }
        all.insert(id, json!({"job": job["job_info"]["spec"], "status": job["job_info"]["status"], "pods": pods, "events": events}));
    }
    Value::Object(all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_store_copies_every_job_pod_event_and_sealed_secret_into_postgres() {
    let started = Instant::now();
    let pg = Postgres::start();
    let url = pg.create_database("migrated");
    let sim = AgentSim::for_scheduler(3).start();
    let master = format!("http://{}", sim.address);
    let dir = tempfile::tempdir().unwrap();
    let mut s = Scheduler::start(dir.path(), &master, &[]);
    create_job(&s.address, "svc", job_spec("SERVICE", 2, "sleep 1000")).await;
    create_job(&s.address, "done", job_spec("BATCH", 3, "sleep 1")).await;
    let mut flaky = job_spec("BATCH", 1, "sleep 1");
    flaky["default_spec"]["labels"] = json!([{"key": "sim.exit_code", "value": "3"}]);
    create_job(&s.address, "flaky", flaky).await;
    let plain = "migrated-secret-value-0123456789";
    let mut secret = job_spec("SERVICE", 1, "sleep 1000");
    secret["secrets"] = json!([{
        "id": "db", "path": "conf/db.pass",
        "value": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, plain),
    }]);
    create_job(&s.address, "secret", secret).await;
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    wait_for_job_state(&s.address, "secret", "JOB_STATE_RUNNING", LIMIT).await;
    wait_for_job_state(&s.address, "done", "JOB_STATE_SUCCEEDED", LIMIT).await;
    wait_for_job_state(&s.address, "flaky", "JOB_STATE_FAILED", LIMIT).await;
    let (_, store_before) = get(&s.address, "/api/v1/store").await;
    let before = everything(&s.address).await;
    s.stop();

    let out = std::process::Command::new(binaries::scheduler())
        .args(["migrate-store", "--from"])
        .arg(dir.path())
        .args(["--to", &url])
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("copied store"), "{stdout}");
    assert!(
        !stdout.contains("drover-test"),
        "the password is not printed: {stdout}"
    );
    // Sealed in PostgreSQL as it was in SQLite.
    let spec = pg.psql_on("migrated", "SELECT spec FROM jobs WHERE job_id = 'secret'");
    assert!(!spec.is_empty());
    assert!(
        !spec.contains(plain) && !spec.contains("bWlncmF0ZWQtc2VjcmV0"),
        "{spec}"
    );

    // A second copy into the same store is refused: it is not empty.
    let again = std::process::Command::new(binaries::scheduler())
        .args(["migrate-store", "--from"])
        .arg(dir.path())
        .args(["--to", &url])
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("empty store only"));

    // The scheduler on PostgreSQL (same data dir: the same secret key)
    // answers as the one on SQLite did, as the same store and framework.
    let s = Scheduler::start(dir.path(), &master, &["--store", &url]);
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    let (_, store_after) = get(&s.address, "/api/v1/store").await;
    assert_eq!(store_after["store_id"], store_before["store_id"]);
    assert_eq!(store_after["framework_id"], store_before["framework_id"]);
    let after = everything(&s.address).await;
    assert_eq!(before.as_object().unwrap().len(), 4);
    if before != after {
        panic!(
            "the API differs after the migration\nbefore: {}\nafter:  {}",
            serde_json::to_string_pretty(&before).unwrap(),
            serde_json::to_string_pretty(&after).unwrap()
        );
    }
    // And it goes on: new jobs run on the migrated store.
    create_job(&s.address, "after", job_spec("BATCH", 1, "sleep 1")).await;
    wait_for_job_state(&s.address, "after", "JOB_STATE_SUCCEEDED", LIMIT).await;
    eprintln!("migrate-store e2e took {:?}", started.elapsed());
}
