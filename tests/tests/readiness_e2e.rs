//! Rolling changes wait for readiness (the seed's `readiness_check`), not
//! liveness, end to end with the real binaries (`drover-scheduler` against
//! `drover-agent-sim`): a service whose pods pass their liveness check
//! about 1 s after they start but become ready only 3 s after
//! (`sim.ready_after_ms`), restarted and then updated with batch size 1
//! (`POST /api/v1/jobs/{id}/restart`, `.../update`, what `drover job
//! restart --batch-size 1` and `drover job update --batch-size 1` send).
//! Every 100 ms the test reads the master's `/state` and counts the pods
//! truly ready (RUNNING for at least the 3 s the simulated service takes),
//! and the job's pods as the API shows them (RUNNING and READY): at no
//! sample are fewer than n-1 ready. Gating on liveness would take the next
//! pod down 2 s too early, and the count would drop to n-2.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::{duplicate_live_tasks, sim_tasks, AgentSim};
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::create_job;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const INSTANCES: usize = 4;
const READY_AFTER_MS: u64 = 3000;
const LIMIT: Duration = Duration::from_secs(90);

/// A service of [`INSTANCES`] pods labelled `rev`: healthy from its first
/// probe (1 s), ready [`READY_AFTER_MS`] after it starts; each check every
/// second.
fn service(rev: &str) -> Value {
    json!({
        "type": "SERVICE",
        "name": "ready",
        "instance_count": INSTANCES,
        "default_spec": {
            "labels": [
                {"key": "rev", "value": rev},
                {"key": "sim.ready_after_ms", "value": READY_AFTER_MS.to_string()}
            ],
            "kill_grace_period_seconds": 1,
            "containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": {"value": "serve"},
                "liveness_check": {
                    "enabled": true, "type": "COMMAND",
                    "initial_interval_secs": 1, "interval_secs": 1, "timeout_secs": 1,
                    "command_check": {"command": "true"}
                },
                "readiness_check": {
                    "enabled": true, "type": "COMMAND",
                    "initial_interval_secs": 1, "interval_secs": 1, "timeout_secs": 1,
                    "command_check": {"command": "test -f ready"}
                }
            }]
        }
    })
}

/// One sample: by instance, the (run, rev) truly ready at the master.
type Ready = BTreeMap<u32, (u32, String)>;

/// The tasks of job `ready` the master runs that have been RUNNING for
/// `warm_up_ms` (the service's own warm-up): what really serves right now.
async fn truly_ready(sim: &AgentSim, warm_up_ms: u64) -> Ready {
    let (_, state) = sim.get("/state").await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // A little slack for float rounding between the two clocks' readings.
    let warm_up = warm_up_ms as f64 / 1000.0 - 0.05;
    let mut ready = BTreeMap::new();
    for framework in state["frameworks"].as_array().into_iter().flatten() {
        for task in framework["tasks"].as_array().into_iter().flatten() {
            if task["state"] != "TASK_RUNNING" {
                continue;
            }
            let id = task["id"].as_str().unwrap_or("");
            let Some((instance, run)) = id.strip_prefix("ready-").and_then(|r| r.split_once('-'))
            else {
                continue;
            };
            let running_since = task["statuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["state"] == "TASK_RUNNING")
                .and_then(|s| s["timestamp"].as_f64());
            let rev = task["labels"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|l| l["key"] == "rev")
                .and_then(|l| l["value"].as_str())
                .unwrap_or("")
                .to_owned();
            if running_since.is_some_and(|t| now - t >= warm_up) {
                ready.insert(instance.parse().unwrap(), (run.parse().unwrap(), rev));
            }
        }
    }
    ready
}

/// Each pod's (run, state, healthy, ready) as the JSON API shows it.
async fn pods(api: &str) -> BTreeMap<u32, (String, String, String, String)> {
    let (_, reply) = get(api, "/api/v1/jobs/ready/pods").await;
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let mut out = BTreeMap::new();
    for p in reply["pods"].as_array().into_iter().flatten() {
        let s = &p["status"];
        let name = text(&p["pod_name"]["value"]);
        let Some(instance) = name.rsplit('-').next().and_then(|i| i.parse().ok()) else {
            continue;
        };
        out.insert(
            instance,
            (
                text(&s["pod_id"]["value"]),
                text(&s["state"]),
                text(&s["healthy"]),
                text(&s["ready"]),
            ),
        );
    }
    out
}

fn api_ready(pods: &BTreeMap<u32, (String, String, String, String)>) -> usize {
    pods.values()
        .filter(|(_, state, _, ready)| state == "POD_STATE_RUNNING" && ready == "READY")
        .count()
}

/// Samples every 100 ms until `done` says the change is over, asserting
/// at each sample that at least n-1 pods are ready at the master and in
/// the API. Returns the fewest seen ready (master, API).
async fn roll_watching(
    sim: &AgentSim,
    api: &str,
    (what, instances, warm_up_ms): (&str, usize, u64),
    done: impl Fn(&Ready) -> bool,
) -> (usize, usize) {
    let started = Instant::now();
    let (mut fewest_master, mut fewest_api) = (instances, instances);
    let mut samples = Vec::new();
    loop {
        let ready = truly_ready(sim, warm_up_ms).await;
        let shown = pods(api).await;
        fewest_master = fewest_master.min(ready.len());
        fewest_api = fewest_api.min(api_ready(&shown));
        samples.push(format!(
            "{:>6} ms master {ready:?} api {shown:?}",
            started.elapsed().as_millis()
        ));
        assert!(
            ready.len() >= instances - 1 && api_ready(&shown) >= instances - 1,
            "{what}: only {} (master) / {} (API) of {instances} ready {} ms in\nsamples:\n{}",
            ready.len(),
            api_ready(&shown),
            started.elapsed().as_millis(),
            samples.join("\n")
        );
        if ready.len() == instances && done(&ready) {
            break;
        }
        assert!(
            started.elapsed() < LIMIT,
            "{what} did not finish in {LIMIT:?}\nsamples:\n{}",
            samples.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "{what} done in {} ms; fewest ready: master {fewest_master}, API {fewest_api}",
        started.elapsed().as_millis()
    );
    (fewest_master, fewest_api)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_and_update_with_batch_size_1_keep_n_minus_1_pods_ready() {
    let sim = AgentSim::for_scheduler(2).start();
    let data = tempfile::tempdir().unwrap();
    let s = Scheduler::start(data.path(), &format!("http://{}", sim.address), &[]);
    create_job(&s.address, "ready", service("1")).await;
    let all_ready = wait_for(LIMIT, || async {
        let ready = truly_ready(&sim, READY_AFTER_MS).await;
        let shown = pods(&s.address).await;
        (ready.len() == INSTANCES && api_ready(&shown) == INSTANCES).then_some(shown)
    })
    .await;
    assert!(
        all_ready.is_some(),
        "never all ready: {:?}",
        pods(&s.address).await
    );

    let (status, reply) = post(
        &s.address,
        "/api/v1/jobs/ready/restart",
        &json!({"batch_size": 1}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let watch = ("restart", INSTANCES, READY_AFTER_MS);
    let (master, api) = roll_watching(&sim, &s.address, watch, |ready| {
        ready.values().all(|(run, _)| *run >= 1)
    })
    .await;
    assert_eq!(
        (master, api),
        (INSTANCES - 1, INSTANCES - 1),
        "the restart did take pods down, one at a time"
    );

    let (status, reply) = post(
        &s.address,
        "/api/v1/jobs/ready/update",
        &json!({"spec": service("2"), "update_spec": {"batch_size": 1}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let watch = ("update", INSTANCES, READY_AFTER_MS);
    roll_watching(&sim, &s.address, watch, |ready| {
        ready.values().all(|(_, rev)| rev == "2")
    })
    .await;

    // The API ends with every pod RUNNING, HEALTHY and READY (once the
    // last check result has arrived), and no instance ever had two live
    // tasks.
    let settled = wait_for(LIMIT, || async {
        let shown = pods(&s.address).await;
        shown
            .values()
            .all(|(_, state, healthy, ready)| {
                state == "POD_STATE_RUNNING" && healthy == "HEALTHY" && ready == "READY"
            })
            .then_some(shown)
    })
    .await;
    assert!(settled.is_some(), "{:?}", pods(&s.address).await);
    assert!(duplicate_live_tasks(&sim_tasks(&sim.address).await).is_empty());
}

/// The same on real agents: each pod runs under `drover-executor`, whose
/// readiness check is a real command (`test -f ready`, every second after
/// 1 s) that passes once the task has made the file, 2 s after it started.
/// A rolling restart with batch size 1 keeps n-1 of 3 pods ready. Needs
/// root (drover-executor puts every task in its own cgroup).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_real_agents_a_restart_waits_for_a_real_readiness_check() {
    drover_tests::harness::cgroup::require_root();
    const REAL: usize = 3;
    const WARM_UP_MS: u64 = 2000;
    let executor = drover_tests::harness::binaries::executor();
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
    let spec = json!({
        "type": "SERVICE",
        "name": "ready",
        "instance_count": REAL,
        "default_spec": {
            "kill_grace_period_seconds": 1,
            "containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": {"value": "rm -f ready; sleep 2; touch ready; exec sleep 600"},
                "readiness_check": {
                    "enabled": true, "type": "COMMAND",
                    "initial_interval_secs": 1, "interval_secs": 1, "timeout_secs": 2,
                    "command_check": {"command": "test -f ready"}
                }
            }]
        }
    });
    create_job(&s.address, "ready", spec).await;
    let all_ready = wait_for(LIMIT, || async {
        let shown = pods(&s.address).await;
        (api_ready(&shown) == REAL).then_some(shown)
    })
    .await;
    assert!(
        all_ready.is_some(),
        "never all ready: {:?}",
        pods(&s.address).await
    );
    let (status, reply) = post(
        &s.address,
        "/api/v1/jobs/ready/restart",
        &json!({"batch_size": 1}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (master, api) = roll_watching(&sim, &s.address, ("restart", REAL, WARM_UP_MS), |ready| {
        ready.values().all(|(run, _)| *run >= 1)
    })
    .await;
    assert_eq!(
        (master, api),
        (REAL - 1, REAL - 1),
        "one pod down at a time"
    );
    assert!(duplicate_live_tasks(&sim_tasks(&sim.address).await).is_empty());
}
