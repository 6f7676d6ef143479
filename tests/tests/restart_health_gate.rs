//! A rolling restart waits for health: `POST /api/v1/jobs/{id}/restart`
//! with batch size 1 (what `drover job restart <job> --batch-size 1`
//! sends) on a service whose pods have a liveness check keeps at least
//! n-1 instances RUNNING and HEALTHY throughout. Real agents run each pod
//! under `drover-executor`, whose COMMAND check passes only ~2 s after
//! the task starts; the test samples the master's `/state` every 100 ms.
//! Needs root (drover-executor puts every task in its own cgroup).
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::{duplicate_live_tasks, sim_tasks, AgentSim};
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::create_job;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const INSTANCES: u32 = 3;
const LIMIT: Duration = Duration::from_secs(60);

/// A service of [`INSTANCES`] pods that become ready 2 s after they start:
/// the check (`test -f ready`, every second after a 1 s grace) fails
/// until the task has made the file.
fn slow_to_be_ready() -> Value {
    json!({
        "type": "SERVICE",
        "name": "gate",
        "instance_count": INSTANCES,
        "default_spec": {
            "kill_grace_period_seconds": 1,
            "containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": {"value": "rm -f ready; sleep 2; touch ready; exec sleep 600"},
                "liveness_check": {
                    "enabled": true, "type": "COMMAND",
                    "initial_interval_secs": 1, "interval_secs": 1, "timeout_secs": 2,
                    "max_consecutive_failures": 30,
                    "command_check": {"command": "test -f ready"}
                }
            }]
        }
    })
}

/// The run each instance of job `gate` has RUNNING and healthy at the
/// master (`/state`: state TASK_RUNNING, latest health true), by instance.
async fn serving(sim: &AgentSim) -> BTreeMap<u32, u32> {
    let (_, state) = sim.get("/state").await;
    let mut up = BTreeMap::new();
    for framework in state["frameworks"].as_array().into_iter().flatten() {
        for task in framework["tasks"].as_array().into_iter().flatten() {
            let running = task["state"] == "TASK_RUNNING" && task["healthy"] == true;
            // A Drover task id is `<job>-<instance>-<run>`.
            let id = task["id"].as_str().unwrap_or("");
            let Some(rest) = id.strip_prefix("gate-") else {
                continue;
            };
            let Some((instance, run)) = rest.split_once('-') else {
                continue;
            };
            if let (true, Ok(instance), Ok(run)) = (running, instance.parse(), run.parse()) {
                up.insert(instance, run);
            }
        }
    }
    up
}

/// Every pod's current run and health as the scheduler's JSON API shows
/// them (`GET /api/v1/jobs/gate/pods`).
async fn pods(address: &str) -> Vec<(String, String, String)> {
    let (_, reply) = get(address, "/api/v1/jobs/gate/pods").await;
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    reply["pods"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let s = &p["status"];
            (
                text(&s["pod_id"]["value"]),
                text(&s["state"]),
                text(&s["healthy"]),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_with_batch_size_1_keeps_n_minus_1_instances_healthy() {
    require_root();
    let executor = binaries::executor();
    let work = tempfile::tempdir().unwrap();
    let sim = AgentSim::for_scheduler(2)
        .real_agents(2, work.path())
        .start();
    let data = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        data.path(),
        &format!("http://{}", sim.address),
        &["--executor", executor.to_str().unwrap()],
    );
    create_job(&s.address, "gate", slow_to_be_ready()).await;
    let all_up = wait_for(LIMIT, || async {
        let up = serving(&sim).await;
        (up.len() == INSTANCES as usize).then_some(up)
    })
    .await;
    assert!(
        all_up.is_some(),
        "the pods never all became healthy: /state {:?}, pods {:?}",
        serving(&sim).await,
        pods(&s.address).await
    );

    let (status, reply) = post(
        &s.address,
        "/api/v1/jobs/gate/restart",
        &json!({"batch_size": 1}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");

    // Sample every 100 ms until every instance serves from a new run.
    let started = Instant::now();
    let mut worst = INSTANCES as usize;
    let mut samples = Vec::new();
    loop {
        let up = serving(&sim).await;
        worst = worst.min(up.len());
        samples.push(format!("{:>5} ms {up:?}", started.elapsed().as_millis()));
        assert!(
            up.len() >= INSTANCES as usize - 1,
            "only {} of {INSTANCES} instances RUNNING and healthy {} ms into the restart \
             (instance -> run): {up:?}\nsamples:\n{}",
            up.len(),
            started.elapsed().as_millis(),
            samples.join("\n")
        );
        if up.len() == INSTANCES as usize && up.values().all(|run| *run >= 1) {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the restart did not finish in {LIMIT:?}; pods {:?}\nsamples:\n{}",
            pods(&s.address).await,
            samples.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "restart done in {} ms, at least {worst} of {INSTANCES} healthy at every sample \
         (instance -> run serving):\n{}",
        started.elapsed().as_millis(),
        samples.join("\n")
    );

    // The scheduler's JSON API tells the same: every pod on its new run,
    // RUNNING and HEALTHY; and no instance ever had two live tasks.
    let shown = wait_for(LIMIT, || async {
        let pods = pods(&s.address).await;
        pods.iter()
            .all(|(id, state, health)| {
                id.ends_with("-1") && state == "POD_STATE_RUNNING" && health == "HEALTHY"
            })
            .then_some(pods)
    })
    .await;
    assert!(
        shown.is_some(),
        "the API shows {:?}",
        pods(&s.address).await
    );
    assert!(duplicate_live_tasks(&sim_tasks(&sim.address).await).is_empty());
}
