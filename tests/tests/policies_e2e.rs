//! Placement, ports, health checks and task policies end to end: the real
//! scheduler binary, in its default executor mode, against the real
//! `drover-agent-sim`.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::get;
use drover_tests::harness::job_api::{create_job, job_spec, job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(40);

async fn setup(agents: usize, sim_args: &[&str]) -> (AgentSim, Scheduler, tempfile::TempDir) {
    let sim = AgentSim::for_scheduler(agents).args(sim_args).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    (sim, s, dir)
}

async fn create(address: &str, id: &str, spec: Value) {
    create_job(address, id, spec).await;
}

async fn pods(address: &str, id: &str) -> Vec<Value> {
    let (_, reply) = get(address, &format!("/api/v1/jobs/{id}/pods")).await;
    reply["pods"].as_array().cloned().unwrap_or_default()
}

async fn wait_pods<F: Fn(&[Value]) -> bool>(
    address: &str,
    id: &str,
    what: &str,
    ok: F,
) -> Vec<Value> {
    let last = std::cell::RefCell::new(Vec::new());
    let found = wait_for(LIMIT, || async {
        let list = pods(address, id).await;
        *last.borrow_mut() = list.clone();
        ok(&list).then_some(list)
    })
    .await;
    found.unwrap_or_else(|| panic!("{what}: last pods {:#?}", last.borrow()))
}

fn running(list: &[Value]) -> Vec<&Value> {
    list.iter()
        .filter(|p| p["status"]["state"] == "POD_STATE_RUNNING")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_host_with_more_instances_than_agents_leaves_the_rest_pending_with_a_reason() {
    let (_sim, s, _dir) = setup(2, &[]).await;
    let mut spec = job_spec("SERVICE", 3, "serve forever");
    spec["default_spec"]["placement"] = json!({"unique_host": true});
    create(&s.address, "uniq", spec).await;
    let list = wait_pods(&s.address, "uniq", "2 running, 1 explained", |l| {
        running(l).len() == 2
            && l.iter().any(|p| {
                p["status"]["state"] == "POD_STATE_PENDING"
                    && p["status"]["pending_reason"].is_string()
            })
    })
    .await;
    let agents: std::collections::BTreeSet<_> = running(&list)
        .iter()
        .map(|p| {
            p["status"]["agent_id"]["value"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(agents.len(), 2, "one instance per agent");
    let pending = list
        .iter()
        .find(|p| p["status"]["state"] == "POD_STATE_PENDING")
        .unwrap();
    let reason = pending["status"]["pending_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no agent satisfies") && reason.contains("unique host"),
        "{reason}"
    );
    let name = pending["pod_name"]["value"].as_str().unwrap();
    let (_, pod) = get(&s.address, &format!("/api/v1/pods/{name}")).await;
    assert_eq!(pod["current"]["status"]["pending_reason"], reason);
    assert!(
        pod["current"]["status"]["placement_metrics"]["nodes_filtered"]["unique_host"]
            .as_u64()
            .unwrap()
            >= 1,
        "{pod}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zone_balance_spreads_a_job_evenly_over_three_zones() {
    let (sim, s, _dir) = setup(6, &["--zones", "a,b,c"]).await;
    let (_, state) = get(&sim.address, "/state").await;
    let zone_of: BTreeMap<String, String> = state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["attributes"]["zone"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Bin-packing would put all seven on one agent; zone balance must not.
    let mut spec = job_spec("BATCH", 7, "serve forever");
    spec["default_spec"]["placement"] = json!({"zone_balance": true, "strategy": "BINPACK"});
    create(&s.address, "zoned", spec).await;
    let list = wait_pods(&s.address, "zoned", "7 running", |l| running(l).len() == 7).await;
    let mut per_zone: BTreeMap<String, usize> = BTreeMap::new();
    for p in &list {
        let agent = p["status"]["agent_id"]["value"].as_str().unwrap();
        *per_zone.entry(zone_of[agent].clone()).or_default() += 1;
    }
    let counts: Vec<_> = per_zone.values().copied().collect();
    assert_eq!(per_zone.len(), 3, "{per_zone:?}");
    assert!(
        counts.iter().max().unwrap() - counts.iter().min().unwrap() <= 1,
        "{per_zone:?}"
    );

    // A zone constraint no agent meets is explained.
    let mut spec = job_spec("SERVICE", 1, "serve forever");
    spec["default_spec"]["constraint"] = json!({"type": "LABEL_CONSTRAINT", "label_constraint": {
        "kind": "HOST", "condition": "CONDITION_EQUAL", "label": {"key": "zone", "value": "d"},
        "requirement": 1}});
    create(&s.address, "nowhere", spec).await;
    let list = wait_pods(&s.address, "nowhere", "explained", |l| {
        l[0]["status"]["pending_reason"].is_string()
    })
    .await;
    let reason = list[0]["status"]["pending_reason"].as_str().unwrap();
    assert!(
        reason.starts_with("no agent satisfies zone==d ("),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_and_dynamic_ports_are_allocated_and_shown() {
    let (sim, s, _dir) = setup(1, &[]).await;
    let mut spec = job_spec("SERVICE", 2, "serve forever");
    spec["default_spec"]["containers"][0]["ports"] = json!([
        {"name": "http", "value": 0, "env_name": "PORT_HTTP"},
        {"name": "admin", "value": 31500, "env_name": "PORT_ADMIN"}
    ]);
    spec["instance_spec"] = json!({"1": {"containers": [{
        "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
        "command": {"value": "serve forever"},
        "ports": [{"name": "http", "value": 0, "env_name": "PORT_HTTP"}]
    }]}});
    create(&s.address, "ported", spec).await;
    let list = wait_pods(&s.address, "ported", "2 running", |l| running(l).len() == 2).await;
    let ports0 = &list[0]["status"]["ports"];
    let ports1 = &list[1]["status"]["ports"];
    assert_eq!(ports0["admin"], 31500, "{ports0}");
    let (http0, http1) = (
        ports0["http"].as_u64().unwrap(),
        ports1["http"].as_u64().unwrap(),
    );
    assert!((31000..=32000).contains(&http0) && (31000..=32000).contains(&http1));
    assert_ne!(http0, http1, "one agent: the dynamic ports must differ");
    assert_ne!(http0, 31500);
    // The master received them as the tasks' port resources.
    let (_, state) = get(&sim.address, "/state").await;
    let tasks = state["frameworks"][0]["tasks"].as_array().unwrap();
    let pod0 = list[0]["status"]["pod_id"]["value"].as_str().unwrap();
    let task = tasks.iter().find(|t| t["id"] == pod0).unwrap();
    let ports = task["resources"]["ports"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        ports.contains("31500") && ports.contains(&http0.to_string()),
        "{task}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_http_health_check_gets_its_task_replaced() {
    let (_sim, s, _dir) = setup(2, &[]).await;
    let mut spec = job_spec("SERVICE", 2, "serve forever");
    let check = json!({"enabled": true, "type": "HTTP", "initial_interval_secs": 1,
        "interval_secs": 1, "max_consecutive_failures": 2, "http_get": {"path": "/health"}});
    spec["default_spec"]["containers"][0]["ports"] = json!([{"name": "http", "env_name": "PORT"}]);
    spec["default_spec"]["containers"][0]["liveness_check"] = check.clone();
    // Instance 1 starts failing its check once running.
    spec["instance_spec"] = json!({"1": {"labels": [{"key": "sim.healthy", "value": "false"}]}});
    create(&s.address, "health", spec).await;
    let pod = wait_for(LIMIT, || async {
        let (_, pod) = get(&s.address, "/api/v1/pods/health-1").await;
        (pod["previous"].as_array().map_or(0, Vec::len) >= 1).then_some(pod)
    })
    .await
    .expect("instance 1 was never replaced");
    let previous = &pod["previous"][0]["status"];
    assert_eq!(previous["state"], "POD_STATE_KILLED", "{pod}");
    assert_eq!(previous["healthy"], "UNHEALTHY", "{pod}");
    assert!(pod["current"]["status"]["pod_id"]["value"]
        .as_str()
        .unwrap()
        .starts_with("health-1-"));
    let (_, healthy) = get(&s.address, "/api/v1/pods/health-0").await;
    let status = &healthy["current"]["status"];
    assert_eq!(status["pod_id"]["value"], "health-0-0", "{healthy}");
    assert!(
        ["HEALTHY", "UNKNOWN"].contains(&status["healthy"].as_str().unwrap()),
        "{healthy}"
    );
}

async fn events(address: &str, pod: &str) -> Vec<Value> {
    let (_, reply) = get(address, &format!("/api/v1/pods/{pod}/events")).await;
    reply["events"].as_array().cloned().unwrap_or_default()
}

fn millis(rfc3339: &Value) -> i64 {
    // "2024-01-02T03:04:05.678Z": compare within one test run only, so the
    // seconds and millis of the day are enough.
    let t = rfc3339.as_str().unwrap();
    let clock = t.split('T').nth(1).unwrap().trim_end_matches('Z');
    let mut parts = clock.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    ((h * 3600.0 + m * 60.0 + s) * 1000.0) as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_batch_task_backs_off_and_stops_at_max_failures() {
    let (_sim, s, _dir) = setup(1, &[]).await;
    let mut spec = job_spec("BATCH", 1, "exit 1");
    spec["default_spec"]["restart_policy"] =
        json!({"max_failures": 3, "initial_delay_secs": 1, "max_delay_secs": 2});
    create(&s.address, "crash", spec).await;
    let done = wait_for(LIMIT, || async {
        let (state, stats) = job_state(&s.address, "crash").await;
        (state == "JOB_STATE_FAILED").then_some(stats)
    })
    .await
    .expect("the job never failed");
    assert_eq!(done, json!({"POD_STATE_FAILED": 1}));
    let (_, pod) = get(&s.address, "/api/v1/pods/crash-0").await;
    assert_eq!(
        pod["current"]["status"]["pod_id"]["value"], "crash-0-3",
        "1 + 3 retries"
    );
    assert_eq!(pod["current"]["status"]["failure_count"], 4);
    // Launch of run n+1 minus the end of run n: 0, then ≥ 0.8 s, then ≥ 1.6 s
    // (1 s and 2 s, minus at most a fifth of jitter).
    let list = events(&s.address, "crash-0").await;
    let at = |run: u32, state: &str| {
        let id = format!("crash-0-{run}");
        list.iter()
            .find(|e| e["pod_id"]["value"] == id && e["actual_state"] == state)
            .map(|e| millis(&e["timestamp"]))
            .unwrap_or_else(|| panic!("no {state} for {id}: {list:#?}"))
    };
    let gap = |run: u32| at(run + 1, "POD_STATE_LAUNCHING") - at(run, "POD_STATE_FAILED");
    assert!(gap(1) >= 700, "second retry waited {} ms", gap(1));
    assert!(gap(2) >= 1500, "third retry waited {} ms", gap(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_limit_kills_a_long_batch_task_with_a_reason() {
    let (_sim, s, _dir) = setup(1, &[]).await;
    let mut spec = job_spec("BATCH", 1, "serve forever");
    spec["default_spec"]["runtime_limit_secs"] = json!(1);
    create(&s.address, "long", spec).await;
    wait_for(LIMIT, || async {
        let (state, _) = job_state(&s.address, "long").await;
        (state == "JOB_STATE_FAILED").then_some(())
    })
    .await
    .expect("the job never failed");
    let (_, pod) = get(&s.address, "/api/v1/pods/long-0").await;
    let status = &pod["current"]["status"];
    assert_eq!(status["pod_id"]["value"], "long-0-0", "not retried: {pod}");
    assert_eq!(status["state"], "POD_STATE_KILLED", "{pod}");
    assert_eq!(
        status["reason"], "REASON_MAX_COMPLETION_TIME_REACHED",
        "{pod}"
    );
}
