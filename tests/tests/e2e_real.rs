//! End to end with the processes users run: agent-sim's real agents start
//! the `drover-executor` the scheduler names in each task's ExecutorInfo, and
//! it runs the user's command in a real cgroup (root). Also the replacement
//! of a service task whose process dies outside Mesos.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::{duplicate_live_tasks, sim_tasks, AgentSim};
use drover_tests::harness::binaries;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::{create_job, job_spec, job_state, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// `<work>/agents/*/frameworks/*/executors/<executor>/runs/*/<name>`.
fn sandbox_file(work: &std::path::Path, executor: &str, name: &str) -> PathBuf {
    let children = |dir: PathBuf| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default()
    };
    for agent in children(work.join("agents")) {
        for framework in children(agent.join("frameworks")) {
            for run in children(framework.join("executors").join(executor).join("runs")) {
                if run.join(name).exists() {
                    return run.join(name);
                }
            }
        }
    }
    work.join(format!("no sandbox of {executor} holds {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_job_runs_real_processes_under_the_drover_executor() {
    let executor = binaries::executor();
    let work = tempfile::tempdir().unwrap();
    let sim = AgentSim::for_scheduler(2)
        .real_agents(2, work.path())
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        dir.path(),
        &format!("http://{}", sim.address),
        &["--executor", executor.to_str().unwrap()],
    );
    // The command proves it ran as a real process in its sandbox, with the
    // environment the executor gives it.
    let spec = job_spec(
        "BATCH",
        4,
        "test -d \"$MESOS_SANDBOX\" && test -n \"$MESOS_TASK_ID\" && echo ran > \"$MESOS_SANDBOX/proof\"",
    );
    create_job(&s.address, "real", spec).await;
    wait_for_job_state(&s.address, "real", "JOB_STATE_SUCCEEDED", LIMIT).await;
    let (_, pods) = get(&s.address, "/api/v1/jobs/real/pods").await;
    let pods = pods["pods"].as_array().unwrap();
    assert_eq!(pods.len(), 4);
    for pod in pods {
        assert_eq!(pod["status"]["state"], "POD_STATE_SUCCEEDED", "{pod}");
    }
    // Each ran as a real process under its own drover-executor, in the
    // sandbox the agent made for that executor (Mesos' layout), and each
    // executor exited with its task: none is left holding resources.
    for pod in pods {
        let task = pod["status"]["pod_id"]["value"].as_str().unwrap();
        let proof = sandbox_file(work.path(), task, "proof");
        assert_eq!(
            std::fs::read_to_string(&proof).unwrap_or_default(),
            "ran\n",
            "{}",
            proof.display()
        );
    }
    let idle = wait_for(LIMIT, || async {
        let (_, e) = get(&sim.address, "/sim/executors").await;
        e["executors"]
            .as_array()
            .is_some_and(Vec::is_empty)
            .then_some(())
    })
    .await;
    assert!(
        idle.is_some(),
        "executors still running after their tasks ended"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_task_killed_outside_mesos_is_replaced() {
    let sim = AgentSim::for_scheduler(3).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    create_job(&s.address, "svc", job_spec("SERVICE", 5, "serve forever")).await;
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    let running = wait_for(LIMIT, || async {
        let (_, pod) = get(&s.address, "/api/v1/pods/svc-2").await;
        (pod["current"]["status"]["state"] == "POD_STATE_RUNNING").then_some(pod)
    })
    .await
    .expect("svc-2 never ran");
    let victim = running["current"]["status"]["pod_id"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, reply) = post(
        &sim.address,
        &format!("/sim/tasks/{victim}/kill"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let replaced = wait_for(LIMIT, || async {
        let (_, pod) = get(&s.address, "/api/v1/pods/svc-2").await;
        let current = pod["current"]["status"]["pod_id"]["value"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        (current != victim && pod["current"]["status"]["state"] == "POD_STATE_RUNNING")
            .then_some(pod)
    })
    .await
    .expect("svc-2 was not replaced");
    assert_eq!(
        replaced["previous"][0]["status"]["state"], "POD_STATE_FAILED",
        "{replaced}"
    );
    let (state, _) = job_state(&s.address, "svc").await;
    assert_eq!(state, "JOB_STATE_RUNNING");
    assert!(duplicate_live_tasks(&sim_tasks(&sim.address).await).is_empty());
}

/// A real agent, and a scheduler launching with drover-executor.
fn real_cluster(work: &std::path::Path, data: &std::path::Path) -> (AgentSim, Scheduler) {
    let executor = binaries::executor();
    let sim = AgentSim::for_scheduler(1).real_agents(1, work).start();
    let s = Scheduler::start(
        data,
        &format!("http://{}", sim.address),
        &["--executor", executor.to_str().unwrap()],
    );
    (sim, s)
}

/// A one-instance service whose container asks for a dynamic port exported
/// as `PORT_HTTP`.
fn web_service(command: &str, liveness: Option<serde_json::Value>) -> serde_json::Value {
    let mut container = json!({
        "resource": {"cpu_limit": 0.1, "mem_limit_mb": 64},
        "ports": [{"name": "http", "value": 0, "env_name": "PORT_HTTP"}],
        "command": {"value": command},
    });
    if let Some(check) = liveness {
        container["liveness_check"] = check;
    }
    json!({
        "type": "SERVICE",
        "name": "web",
        "instance_count": 1,
        "default_spec": {"containers": [container], "kill_grace_period_seconds": 1},
    })
}

async fn current_run(address: &str, pod: &str) -> serde_json::Value {
    get(address, &format!("/api/v1/pods/{pod}")).await.1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamic_port_reaches_the_task_environment() {
    let (work, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_sim, s) = real_cluster(work.path(), data.path());
    let spec = web_service(
        "echo \"$PORT_HTTP\" > \"$MESOS_SANDBOX/port\"; exec sleep 600",
        None,
    );
    create_job(&s.address, "ports", spec).await;
    let pod = wait_for(LIMIT, || async {
        let pod = current_run(&s.address, "ports-0").await;
        (pod["current"]["status"]["state"] == "POD_STATE_RUNNING").then_some(pod)
    })
    .await
    .expect("ports-0 never ran");
    let port = pod["current"]["status"]["ports"]["http"]
        .as_u64()
        .expect("the pod shows its port");
    assert!((31000..=32000).contains(&port), "{pod}");
    let task = pod["current"]["status"]["pod_id"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = wait_for(LIMIT, || async {
        let text = std::fs::read_to_string(sandbox_file(work.path(), &task, "port")).ok()?;
        (!text.is_empty()).then_some(text)
    })
    .await
    .expect("the task never wrote its port");
    assert_eq!(seen.trim(), port.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_health_check_that_starts_failing_gets_its_task_replaced() {
    let (work, data) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_sim, s) = real_cluster(work.path(), data.path());
    let check = json!({
        "enabled": true, "type": "HTTP",
        "initial_interval_secs": 1, "interval_secs": 1, "timeout_secs": 2,
        "max_consecutive_failures": 2,
        "http_get": {"scheme": "http", "port": 0, "path": "/ok"},
    });
    let serve = "mkdir -p www && echo ok > www/ok && cd www && exec python3 -m http.server \"$PORT_HTTP\" --bind 127.0.0.1";
    create_job(&s.address, "web", web_service(serve, Some(check))).await;
    let healthy = wait_for(LIMIT, || async {
        let pod = current_run(&s.address, "web-0").await;
        (pod["current"]["status"]["healthy"] == "HEALTHY").then_some(pod)
    })
    .await
    .expect("web-0 never became healthy");
    let first = healthy["current"]["status"]["pod_id"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    // The page goes away: the check starts failing.
    let page = sandbox_file(work.path(), &first, "www").join("ok");
    std::fs::remove_file(&page).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
    let replaced = wait_for(LIMIT, || async {
        let pod = current_run(&s.address, "web-0").await;
        let current = pod["current"]["status"]["pod_id"]["value"]
            .as_str()?
            .to_owned();
        (current != first && pod["current"]["status"]["state"] == "POD_STATE_RUNNING")
            .then_some(pod)
    })
    .await
    .expect("the unhealthy task was not replaced");
    let previous = &replaced["previous"][0]["status"];
    assert_eq!(previous["pod_id"]["value"], first.as_str(), "{replaced}");
    assert_eq!(previous["healthy"], "UNHEALTHY", "{replaced}");
}
