//! End to end against the real `drover-agent-sim` binary (a Mesos master
//! with simulated agents, which run tasks given as `command`): the real
//! scheduler binary subscribes, places, launches, follows updates and
//! survives faults. The scheduler runs in its default executor mode, as a
//! new user's does: simulated agents run the command each task carries in
//! `TaskInfo.data` for drover-executor. Command mode has a test of its own
//! (`a_batch_job_runs_to_succeeded_in_command_mode`).
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::{duplicate_live_tasks, sim_tasks, AgentSim};
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::{create_job, job_spec, job_state, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::json;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

async fn create(address: &str, id: &str, spec: serde_json::Value) {
    create_job(address, id, spec).await;
}

async fn wait_for_state(address: &str, id: &str, want: &str) -> serde_json::Value {
    wait_for_job_state(address, id, want, LIMIT).await
}

/// A batch job of `instances` runs to SUCCEEDED, with the scheduler's
/// `flags`: every pod has its times, host and events, every launch is
/// counted and every update acknowledged.
async fn batch_runs_to_succeeded(flags: &[&str], instances: u32) {
    let sim = AgentSim::for_scheduler(5).start();
    let dir = tempfile::tempdir().unwrap();
    let master = format!("http://{}", sim.address);
    let s = Scheduler::start(dir.path(), &master, flags);
    create(&s.address, "batch", job_spec("BATCH", instances, "sleep 1")).await;
    let stats = wait_for_state(&s.address, "batch", "JOB_STATE_SUCCEEDED").await;
    assert_eq!(stats, json!({"POD_STATE_SUCCEEDED": instances}));
    let (_, pods) = get(&s.address, "/api/v1/jobs/batch/pods").await;
    for pod in pods["pods"].as_array().unwrap() {
        let status = &pod["status"];
        assert_eq!(status["state"], "POD_STATE_SUCCEEDED", "{pod}");
        assert!(status["start_time"].is_string() && status["completion_time"].is_string());
        assert!(status["host"].as_str().unwrap().ends_with(".sim"));
    }
    let (_, events) = get(&s.address, "/api/v1/pods/batch-0/events").await;
    let states: Vec<_> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actual_state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        states.first().map(String::as_str),
        Some("POD_STATE_LAUNCHING")
    );
    assert_eq!(
        states.last().map(String::as_str),
        Some("POD_STATE_SUCCEEDED")
    );
    assert!(
        states.contains(&"POD_STATE_RUNNING".to_owned()),
        "{states:?}"
    );
    let (_, metrics) = get(&s.address, "/metrics").await;
    let text = metrics.as_str().unwrap();
    assert!(
        text.contains(&format!("drover_launches_total {instances}\n")),
        "{text}"
    );
    // The last acknowledgement leaves after the last update is stored, so
    // it may trail the job's SUCCEEDED by a moment.
    let acked = wait_for(LIMIT, || async {
        let (_, metrics) = get(&s.address, "/metrics").await;
        metrics
            .as_str()
            .unwrap()
            .contains("drover_pending_acks 0\n")
            .then_some(())
    })
    .await;
    assert!(acked.is_some(), "every update acknowledged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_of_50_instances_runs_to_succeeded_in_protobuf_mode() {
    batch_runs_to_succeeded(&["--content-type", "protobuf"], 50).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_runs_to_succeeded_in_json_mode() {
    batch_runs_to_succeeded(&["--content-type", "json"], 20).await;
}

/// `--executor-mode command`: tasks carry their command for the agent's
/// own command executor, and simulated agents run it the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_runs_to_succeeded_in_command_mode() {
    batch_runs_to_succeeded(&["--executor-mode", "command"], 20).await;
}

/// The README's way to try Drover: the scheduler with no flags but its
/// master and data directory, so in its default executor mode, where the
/// user's command travels in `TaskInfo.data` beside Drover's executor.
/// Simulated agents run that command; they once ran none, and a batch of
/// `sleep` tasks stayed RUNNING forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_runs_to_succeeded_in_the_default_executor_mode() {
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let master = format!("http://{}", sim.address);
    let s = Scheduler::start(dir.path(), &master, &[]);
    create(&s.address, "batch", job_spec("BATCH", 4, "sleep 0.5")).await;
    let stats = wait_for_state(&s.address, "batch", "JOB_STATE_SUCCEEDED").await;
    assert_eq!(stats, json!({"POD_STATE_SUCCEEDED": 4}));
    let failing = create_then_state(&s.address, "fails", "exit 3", "JOB_STATE_FAILED").await;
    assert_eq!(failing["POD_STATE_FAILED"], 1, "{failing}");
}

async fn create_then_state(
    address: &str,
    id: &str,
    command: &str,
    want: &str,
) -> serde_json::Value {
    // No restart policy: a failed run is not retried.
    create(address, id, job_spec("BATCH", 1, command)).await;
    wait_for_state(address, id, want).await
}

/// Running pods of a job: pod name → (task id, agent id).
async fn running_pods(
    address: &str,
    id: &str,
) -> std::collections::BTreeMap<String, (String, String)> {
    let (_, pods) = get(address, &format!("/api/v1/jobs/{id}/pods")).await;
    pods["pods"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|p| p["status"]["state"] == "POD_STATE_RUNNING")
                .map(|p| {
                    (
                        p["pod_name"]["value"].as_str().unwrap().to_owned(),
                        (
                            p["status"]["pod_id"]["value"].as_str().unwrap().to_owned(),
                            p["status"]["agent_id"]["value"]
                                .as_str()
                                .unwrap()
                                .to_owned(),
                        ),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_job_stays_running_and_replaces_a_task_that_exits() {
    let sim = AgentSim::for_scheduler(3).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut spec = job_spec("SERVICE", 5, "serve forever");
    // Instance 3 exits after a second, every time: it must be replaced.
    spec["instance_spec"] = json!({"3": {"containers": [{
        "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
        "command": {"value": "sleep 1"}
    }]}});
    create(&s.address, "svc", spec).await;
    wait_for_state(&s.address, "svc", "JOB_STATE_RUNNING").await;
    let replaced = wait_for(LIMIT, || async {
        let (_, pod) = get(&s.address, "/api/v1/pods/svc-3").await;
        (pod["previous"].as_array().map_or(0, Vec::len) >= 2).then_some(pod)
    })
    .await
    .expect("instance 3 was not replaced twice");
    for previous in replaced["previous"].as_array().unwrap() {
        assert_eq!(
            previous["status"]["state"], "POD_STATE_SUCCEEDED",
            "{previous}"
        );
    }
    let (state, _) = job_state(&s.address, "svc").await;
    assert_eq!(state, "JOB_STATE_RUNNING");
    let running = running_pods(&s.address, "svc").await;
    for pod in ["svc-0", "svc-1", "svc-2", "svc-4"] {
        let (task, _) = &running[pod];
        assert!(
            task.ends_with("-0"),
            "{pod} should still be on its first run: {task}"
        );
    }
    assert!(duplicate_live_tasks(&sim_tasks(&sim.address).await).is_empty());

    // Stopping kills everything.
    let (status, _) = post(&s.address, "/api/v1/jobs/svc/stop", &json!({})).await;
    assert_eq!(status, 200);
    wait_for_state(&s.address, "svc", "JOB_STATE_KILLED").await;
    let live = sim_tasks(&sim.address)
        .await
        .into_iter()
        .filter(|(_, state, _)| state == "TASK_RUNNING")
        .count();
    assert_eq!(live, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_failure_relaunches_its_instances_elsewhere() {
    let sim = AgentSim::for_scheduler(3).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut spec = job_spec("SERVICE", 6, "serve forever");
    // Replaced as soon as the master says unreachable (a service's default
    // waits minutes; tests/tests/partitions.rs covers the defaults).
    spec["unreachable_policy"] = json!({"inactive_after_secs": 0});
    create(&s.address, "svc", spec).await;
    let before = wait_for(LIMIT, || async {
        let running = running_pods(&s.address, "svc").await;
        (running.len() == 6).then_some(running)
    })
    .await
    .expect("6 running pods");
    let (_, (_, victim)) = before.iter().next().unwrap();
    let victim = victim.clone();
    let on_victim: Vec<_> = before
        .iter()
        .filter(|(_, (_, a))| *a == victim)
        .map(|(p, _)| p.clone())
        .collect();
    let (status, _) = post(
        &sim.address,
        &format!("/sim/agents/{victim}/fail"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    let after = wait_for(LIMIT, || async {
        let running = running_pods(&s.address, "svc").await;
        let moved = on_victim
            .iter()
            .all(|p| running.get(p).is_some_and(|(_, a)| *a != victim));
        (running.len() == 6 && moved).then_some(running)
    })
    .await
    .expect("the failed agent's pods run elsewhere");
    for pod in &on_victim {
        let (_, detail) = get(&s.address, &format!("/api/v1/pods/{pod}")).await;
        assert_eq!(
            detail["previous"][0]["status"]["reason"], "REASON_AGENT_REMOVED",
            "the replaced run is unreachable: {detail}"
        );
        assert_ne!(after[pod].0, before[pod].0, "a new run");
    }
    // Pods on healthy agents kept their tasks.
    for (pod, (task, agent)) in &before {
        if *agent != victim {
            assert_eq!(&after[pod].0, task);
        }
    }
    // The agent comes back with its old tasks: they were replaced, so the
    // scheduler kills them; no instance keeps two live tasks.
    let old_tasks: Vec<_> = on_victim.iter().map(|p| before[p].0.clone()).collect();
    let (status, _) = post(
        &sim.address,
        &format!("/sim/agents/{victim}/restore"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200);
    wait_for(LIMIT, || async {
        let tasks = sim_tasks(&sim.address).await;
        let old_alive = tasks
            .iter()
            .any(|(t, state, _)| old_tasks.contains(t) && state == "TASK_RUNNING");
        (!old_alive && duplicate_live_tasks(&tasks).is_empty()).then_some(())
    })
    .await
    .expect("the returning tasks are killed");
    assert_eq!(running_pods(&s.address, "svc").await, after);
    for pod in &on_victim {
        wait_for(LIMIT, || async {
            let (_, detail) = get(&s.address, &format!("/api/v1/pods/{pod}")).await;
            (detail["previous"][0]["status"]["state"] == "POD_STATE_KILLED").then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("{pod}: the returning run's end is recorded"));
    }
    let (_, metrics) = get(&s.address, "/metrics").await;
    let kills: usize = metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("drover_kills_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        kills >= old_tasks.len(),
        "{kills} kills for {} returning tasks",
        old_tasks.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_resubscribe_with_the_same_framework_id_and_lose_no_task() {
    let sim = AgentSim::for_scheduler(2)
        .args(&["--heartbeat-interval", "1secs"])
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    create(&s.address, "svc", job_spec("SERVICE", 5, "serve forever")).await;
    let before = wait_for(LIMIT, || async {
        let running = running_pods(&s.address, "svc").await;
        (running.len() == 5).then_some(running)
    })
    .await
    .expect("5 running pods");
    let framework_of = |tasks: &[(String, String, String)]| tasks.len();
    let tasks_before = sim_tasks(&sim.address).await;
    let (_, state) = get(&sim.address, "/state").await;
    let frameworks_before: Vec<_> = state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(frameworks_before.len(), 1);

    let (status, _) = post(&sim.address, "/sim/connections/drop", &json!({})).await;
    assert_eq!(status, 200);
    wait_for(LIMIT, || async {
        let (_, m) = get(&s.address, "/metrics").await;
        let text = m.as_str().unwrap_or("").to_owned();
        (!text.contains("drover_reconnects_total 0\n")
            && text.contains("drover_subscription_state 3\n"))
        .then_some(())
    })
    .await
    .expect("re-subscribed");
    let (_, state) = get(&sim.address, "/state").await;
    let frameworks_after: Vec<_> = state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].clone())
        .collect();
    assert_eq!(frameworks_after, frameworks_before, "same framework id");
    let after = running_pods(&s.address, "svc").await;
    assert_eq!(after, before, "no task lost or replaced");
    assert_eq!(
        framework_of(&sim_tasks(&sim.address).await),
        framework_of(&tasks_before)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_restarts_during_a_500_instance_batch_job_never_duplicate_a_live_task() {
    // 5 agents x 4 cpus / 0.5 cpus per task: 40 tasks at a time, so the
    // 500 runs launch in many waves and every kill lands mid-launch.
    let sim = AgentSim::for_scheduler(5).start();
    let dir = tempfile::tempdir().unwrap();
    let master = format!("http://{}", sim.address);
    let mut s = Scheduler::start(dir.path(), &master, &[]);
    let mut spec = job_spec("BATCH", 500, "sleep 1");
    spec["default_spec"]["containers"][0]["resource"]["cpu_limit"] = json!(0.5);
    create(&s.address, "big", spec).await;
    let seen = std::cell::RefCell::new(std::collections::BTreeSet::new());
    let mut framework_ids = std::collections::BTreeSet::new();
    for round in 0..5 {
        // Let this incarnation launch a wave, then SIGKILL it mid-flight.
        let before = seen.borrow().len();
        wait_for(LIMIT, || async {
            let now = sim_tasks(&sim.address).await;
            let dups = duplicate_live_tasks(&now);
            assert!(dups.is_empty(), "round {round}: {dups:?}");
            seen.borrow_mut().extend(now.into_iter().map(|(t, _, _)| t));
            (seen.borrow().len() >= before + 40).then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("round {round}: no new launches after {before}"));
        s.kill();
        let (_, state) = get(&sim.address, "/state").await;
        for f in state["frameworks"].as_array().unwrap() {
            framework_ids.insert(f["id"].to_string());
        }
        s = Scheduler::start(dir.path(), &master, &[]);
    }
    let done = wait_for(Duration::from_secs(120), || async {
        let now = sim_tasks(&sim.address).await;
        let dups = duplicate_live_tasks(&now);
        assert!(dups.is_empty(), "{dups:?}");
        let (state, stats) = job_state(&s.address, "big").await;
        (state == "JOB_STATE_SUCCEEDED").then_some(stats)
    })
    .await
    .expect("the job finishes");
    assert_eq!(done, json!({"POD_STATE_SUCCEEDED": 500}));
    assert_eq!(
        framework_ids.len(),
        1,
        "every restart re-subscribed with the same id"
    );
    println!("distinct tasks seen at the master: {}", seen.borrow().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_launched_with_the_drover_executor_pass_master_validation_and_run() {
    // Simulated agents do not start executor processes; this checks that the
    // ExecutorInfo Drover sends is one a master accepts and runs.
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        dir.path(),
        &format!("http://{}", sim.address),
        &["--executor", "/opt/drover/drover-executor"],
    );
    create(&s.address, "exe", job_spec("SERVICE", 3, "serve forever")).await;
    let running = wait_for(LIMIT, || async {
        let running = running_pods(&s.address, "exe").await;
        (running.len() == 3).then_some(running)
    })
    .await
    .expect("3 running pods");
    let tasks = sim_tasks(&sim.address).await;
    for (task, _) in running.values() {
        assert!(tasks
            .iter()
            .any(|(t, state, _)| t == task && state == "TASK_RUNNING"));
    }
    let (status, _) = post(&s.address, "/api/v1/jobs/exe/stop", &json!({})).await;
    assert_eq!(status, 200);
    wait_for_state(&s.address, "exe", "JOB_STATE_KILLED").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_batch_instance_is_retried_up_to_max_failures_then_the_job_fails() {
    let sim = AgentSim::for_scheduler(1).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut spec = job_spec("BATCH", 2, "true");
    spec["default_spec"]["restart_policy"] = json!({"max_failures": 2});
    spec["instance_spec"] = json!({"1": {"containers": [{
        "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
        "command": {"value": "exit 3"}
    }]}});
    create(&s.address, "flaky", spec).await;
    let stats = wait_for_state(&s.address, "flaky", "JOB_STATE_FAILED").await;
    assert_eq!(
        stats,
        json!({"POD_STATE_SUCCEEDED": 1, "POD_STATE_FAILED": 1})
    );
    let (_, pod) = get(&s.address, "/api/v1/pods/flaky-1").await;
    assert_eq!(
        pod["current"]["status"]["pod_id"]["value"], "flaky-1-2",
        "3 runs: 1 + 2 retries"
    );
    assert_eq!(pod["current"]["status"]["failure_count"], 3);
    assert_eq!(pod["previous"].as_array().unwrap().len(), 2);
    let (_, ok) = get(&s.address, "/api/v1/pods/flaky-0").await;
    assert_eq!(ok["current"]["status"]["pod_id"]["value"], "flaky-0-0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launch_intent_whose_accept_never_left_is_reconciled_and_relaunched() {
    use drover_scheduler::model::change::{Change, JobWrite, LaunchRecord};
    use drover_scheduler::model::ids::{AgentId, InstanceId, JobId, TaskId};
    use drover_scheduler::model::job::Job;
    use drover_scheduler::store::{SqliteStore, Store};
    let sim = AgentSim::for_scheduler(1).start();
    let (_, agents) = get(&sim.address, "/sim/agents").await;
    let agent = agents["agents"][0]["id"].as_str().unwrap().to_owned();
    // The state a scheduler leaves when it dies between recording the
    // intent and sending the ACCEPT.
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let spec = serde_json::from_value(job_spec("BATCH", 1, "true")).unwrap();
        let job = JobId::parse("orphan").unwrap();
        let intent = LaunchRecord {
            task_id: TaskId::new(InstanceId::new(job.clone(), 0), 0),
            agent_id: AgentId::new(&agent),
            hostname: "agent-0.sim".into(),
            spec_version: 1,
            ports: Vec::new(),
            at: 2,
            hands_over: None,
        };
        let change = Change {
            jobs: vec![JobWrite::Create(Box::new(Job::new(job, spec, 1)))],
            launches: vec![intent],
            ..Change::default()
        };
        store.commit(&change).unwrap();
    }
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    wait_for_state(&s.address, "orphan", "JOB_STATE_SUCCEEDED").await;
    let (_, pod) = get(&s.address, "/api/v1/pods/orphan-0").await;
    assert_eq!(pod["current"]["status"]["pod_id"]["value"], "orphan-0-1");
    let previous = &pod["previous"][0]["status"];
    assert_eq!(previous["state"], "POD_STATE_LOST", "{pod}");
    assert_eq!(previous["reason"], "REASON_RECONCILIATION", "{pod}");
}

/// Values that make no sense are refused, naming the field and the bound:
/// below Mesos' minimums (a `cpu_limit` of 1e-9 launched as `cpus 0.0`, so
/// one agent took tasks without end), not finite or absurdly large (1e308
/// stayed pending forever), or more than twice what the largest agent
/// offered (agent-sim's agents have 4 cpus).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resource_values_that_make_no_sense_are_refused_naming_the_bound() {
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let offered = wait_for(LIMIT, || async {
        let (_, metrics) = get(&s.address, "/metrics").await;
        metrics.as_str().and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("drover_offers_received_total "))
                .filter(|n| *n != "0")
                .map(str::to_owned)
        })
    })
    .await;
    assert!(offered.is_some(), "the agents offered");
    let field = "spec.default_spec.containers[0].resource";
    for (cpus, mem, bad, bound) in [
        (1e308, 32.0, "cpu_limit", "between 0.01 and"),
        (5e-324, 32.0, "cpu_limit", "between 0.01 and"),
        (1e-9, 32.0, "cpu_limit", "between 0.01 and"),
        (0.1, 16.0, "mem_limit_mb", "between 32 and"),
        (9.0, 32.0, "cpu_limit", "at most 8"),
    ] {
        let mut spec = job_spec("BATCH", 1, "sleep 1");
        spec["default_spec"]["containers"][0]["resource"] =
            json!({"cpu_limit": cpus, "mem_limit_mb": mem});
        let (status, body) = post(&s.address, "/api/v1/jobs", &json!({"spec": spec})).await;
        assert_eq!(status, 400, "cpus {cpus}, mem {mem}: {body}");
        assert_eq!(body["code"], "INVALID_ARGUMENT", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}.{bad}")) && message.contains(bound),
            "cpus {cpus}, mem {mem}: {message}"
        );
    }
    let mut spec = job_spec("BATCH", 1, "sleep 0.1");
    spec["default_spec"]["containers"][0]["resource"] = json!({"cpu_limit": 8, "mem_limit_mb": 32});
    let (status, body) = post(&s.address, "/api/v1/jobs", &json!({"spec": spec})).await;
    assert_eq!(status, 200, "twice the largest agent is the bound: {body}");
}
