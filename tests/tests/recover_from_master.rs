//! `--recover-from-master`, with the real binaries against agent-sim: a
//! scheduler whose data directory is lost takes its framework back and
//! rebuilds its jobs from the tasks the master lists (each carries its
//! job's spec as a label), so finished batch instances are not run again,
//! running service instances are adopted rather than duplicated, and the
//! adopted tasks are under its control.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

/// Every task the master lists for `framework_id` (live, unreachable and
/// completed), by task id, with its state.
async fn master_tasks(sim: &AgentSim, framework_id: &str) -> BTreeMap<String, String> {
    let (status, state) = sim.get("/master/state").await;
    assert_eq!(status, 200, "{state}");
    let framework = state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == framework_id)
        .unwrap_or_else(|| panic!("the master lost framework {framework_id}: {state}"))
        .clone();
    ["tasks", "unreachable_tasks", "completed_tasks"]
        .iter()
        .flat_map(|key| framework[*key].as_array().cloned().unwrap_or_default())
        .map(|t| {
            (
                t["id"].as_str().unwrap().to_owned(),
                t["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// `(id, active)` of every framework the master knows.
async fn master_frameworks(sim: &AgentSim) -> Vec<(String, bool)> {
    let (_, state) = sim.get("/master/state").await;
    state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["active"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn job(address: &str, id: &str) -> Value {
    let (status, job) = get(address, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{job}");
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_store_is_rebuilt_from_the_master_and_no_work_runs_twice() {
    let sim = AgentSim::for_scheduler(2).start();
    let master = format!("http://{}", sim.address);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");

    // The default executor mode, as a new user runs it.
    let mut s = Scheduler::start(&data_dir, &master, &[]);
    create_job(&s.address, "done", job_spec("BATCH", 3, "sleep 0.1")).await;
    create_job(&s.address, "svc", job_spec("SERVICE", 2, "sleep 1000")).await;
    wait_for_job_state(&s.address, "done", "JOB_STATE_SUCCEEDED", LIMIT).await;
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    let specs_before = (
        job(&s.address, "done").await["job_info"]["spec"].clone(),
        job(&s.address, "svc").await["job_info"]["spec"].clone(),
    );
    let frameworks = master_frameworks(&sim).await;
    assert_eq!(frameworks.len(), 1, "{frameworks:?}");
    let framework_id = frameworks[0].0.clone();
    let tasks_before = master_tasks(&sim, &framework_id).await;
    assert_eq!(tasks_before.len(), 5, "{tasks_before:?}");

    // The disk is lost with the scheduler, and no backup was made.
    s.kill();
    std::fs::remove_dir_all(&data_dir).unwrap();

    let s = Scheduler::start(&data_dir, &master, &["--recover-from-master"]);
    wait_for_job_state(&s.address, "done", "JOB_STATE_SUCCEEDED", LIMIT).await;
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    assert_eq!(
        (
            job(&s.address, "done").await["job_info"]["spec"].clone(),
            job(&s.address, "svc").await["job_info"]["spec"].clone(),
        ),
        specs_before,
        "the jobs come back with their specs"
    );
    let deadline = Instant::now() + LIMIT;
    while master_frameworks(&sim).await != vec![(framework_id.clone(), true)] {
        assert!(
            Instant::now() < deadline,
            "the scheduler took framework {framework_id} back, and registered no other: {:?}",
            master_frameworks(&sim).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, store) = get(&s.address, "/api/v1/store").await;
    assert_eq!(store["framework_id"], framework_id.as_str(), "{store}");

    // Subscribed and reconciled, it launches nothing: each batch instance
    // ran once, each service instance is the task that was running.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        master_tasks(&sim, &framework_id).await,
        tasks_before,
        "the same tasks, in the same states"
    );

    // The adopted tasks are the scheduler's to stop.
    let (status, reply) = post(&s.address, "/api/v1/jobs/svc/stop", &json!({})).await;
    assert_eq!(status, 200, "{reply}");
    let deadline = Instant::now() + LIMIT;
    loop {
        let tasks = master_tasks(&sim, &framework_id).await;
        let svc: Vec<&String> = tasks
            .iter()
            .filter(|(id, _)| id.starts_with("svc-"))
            .map(|(_, state)| state)
            .collect();
        if svc.len() == 2 && svc.iter().all(|s| *s == "TASK_KILLED") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the adopted service tasks are killed: {tasks:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
