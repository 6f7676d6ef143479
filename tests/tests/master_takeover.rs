//! Master failover that keeps the agents and their tasks: two agent-sim
//! masters contend in a real ZooKeeper with `--zk` and share one
//! `--state-dir`; the scheduler finds the leader with `--master zk://`.
//! When the leading master is SIGKILLed, the standby is elected, adopts
//! the journaled agents and tasks (as Mesos agents re-register with a new
//! leading master), and the scheduler re-subscribes to it with its
//! framework id: the same tasks run there, none is launched again, batch
//! tasks finish once on their own clock, and what the scheduler serves
//! agrees with the new master.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use drover_test_support::zookeeper::ZooKeeper;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::{get, request};
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(60);

/// A master of the set at `zk` journaling in `state_dir` (ZooKeeper
/// session timeout 2 s, so a SIGKILLed leader is replaced in seconds).
fn master(zk: &str, state_dir: &Path, seed: u64) -> AgentSim {
    AgentSim::for_scheduler(4)
        .seed(seed)
        .args(&[
            "--zk",
            zk,
            "--zk-session-timeout",
            "2secs",
            "--hostname",
            "127.0.0.1",
            "--state-dir",
            state_dir.to_str().unwrap(),
        ])
        .start()
}

async fn leads(sim: &AgentSim) -> bool {
    let reply = request(&sim.address, "GET", "/redirect", &[], Default::default()).await;
    reply.status == 307
        && reply.headers.get("location").and_then(|l| l.to_str().ok())
            == Some(format!("//{}", sim.address).as_str())
}

/// A counter from the master's `/metrics`.
async fn counter(sim: &AgentSim, name: &str) -> u64 {
    let reply = request(&sim.address, "GET", "/metrics", &[], Default::default()).await;
    let text = String::from_utf8_lossy(&reply.body).into_owned();
    text.lines()
        .find_map(|l| {
            let (key, value) = l.split_once(' ')?;
            (key == name || key == format!("{name}_total")).then(|| value.trim().parse().ok())?
        })
        .unwrap_or_else(|| panic!("{name} not in /metrics:\n{text}"))
}

/// The framework's tasks the master lists: live ones (`tasks`) and
/// completed ones, by task id, with their state and agent id; and whether
/// the framework is connected.
async fn master_tasks(
    sim: &AgentSim,
    framework: &str,
) -> (bool, BTreeMap<String, Vec<(String, String)>>) {
    let (status, state) = get(&sim.address, "/master/state").await;
    assert_eq!(status, 200, "{state}");
    let Some(fw) = state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == framework)
    else {
        return (false, BTreeMap::new());
    };
    let mut tasks: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for list in ["tasks", "completed_tasks"] {
        for t in fw[list].as_array().into_iter().flatten() {
            tasks
                .entry(t["id"].as_str().unwrap().to_owned())
                .or_default()
                .push((
                    t["state"].as_str().unwrap().to_owned(),
                    t["slave_id"].as_str().unwrap().to_owned(),
                ));
        }
    }
    (fw["active"] == true, tasks)
}

/// The scheduler's pods of `job`: pod name → (task id, state, agent id).
async fn pods(scheduler: &Scheduler, job: &str) -> BTreeMap<String, (String, String, String)> {
    let (status, reply) = get(&scheduler.address, &format!("/api/v1/jobs/{job}/pods")).await;
    assert_eq!(status, 200, "{reply}");
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    reply["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let s = &p["status"];
            (
                text(&p["pod_name"]["value"]),
                (
                    text(&s["pod_id"]["value"]),
                    text(&s["state"]),
                    text(&s["agent_id"]["value"]),
                ),
            )
        })
        .collect()
}

async fn framework_id(sim: &AgentSim) -> String {
    let (_, state) = get(&sim.address, "/master/state").await;
    let ids: Vec<String> = state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "one framework: {state}");
    ids[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_the_agents_and_tasks_and_nothing_is_launched_again() {
    let zookeeper = ZooKeeper::start();
    let zk = format!("zk://{}/mesos", zookeeper.connect_string());
    let state_dir = tempfile::tempdir().unwrap();
    let mut first = master(&zk, state_dir.path(), 1);
    assert!(
        wait_for(LIMIT, || async { leads(&first).await.then_some(()) })
            .await
            .is_some()
    );
    let second = master(&zk, state_dir.path(), 2);

    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(dir.path(), &zk, &[]);
    create_job(
        &scheduler.address,
        "service",
        job_spec("SERVICE", 2, "sleep 600"),
    )
    .await;
    // Long enough to be running across the failover (seconds).
    create_job(&scheduler.address, "batch", job_spec("BATCH", 3, "sleep 7")).await;
    wait_for_job_state(&scheduler.address, "service", "JOB_STATE_RUNNING", LIMIT).await;
    wait_for_job_state(&scheduler.address, "batch", "JOB_STATE_RUNNING", LIMIT).await;
    let service_before = pods(&scheduler, "service").await;
    let batch_before = pods(&scheduler, "batch").await;
    let framework = framework_id(&first).await;
    let launched_before = counter(&first, "drover_sim_tasks_launched").await;
    assert_eq!(launched_before, 5);
    let (_, on_first) = master_tasks(&first, &framework).await;

    let killed = Instant::now();
    first.kill();
    let resubscribed = wait_for(LIMIT, || async {
        let (active, _) = master_tasks(&second, &framework).await;
        active.then_some(())
    })
    .await;
    assert!(
        resubscribed.is_some(),
        "the scheduler never re-subscribed to the standby as {framework}"
    );
    println!(
        "master takeover: SIGKILL to the scheduler re-subscribed in {:?}",
        killed.elapsed()
    );
    assert!(leads(&second).await);

    // The same tasks, on the same agents, running on the new leader.
    let (_, on_second) = master_tasks(&second, &framework).await;
    for (task, states) in &on_first {
        let (_, agent) = &states[0];
        let now = on_second
            .get(task)
            .unwrap_or_else(|| panic!("{task} is not on the new leader: {on_second:?}"));
        assert_eq!(&now[0].1, agent, "{task} moved agents");
    }
    for (pod, (task, _, _)) in &service_before {
        assert_eq!(
            on_second[task][0].0, "TASK_RUNNING",
            "{pod}'s task {task} on the new leader"
        );
    }

    // Batch tasks finish once, on their own clock; services keep their tasks.
    wait_for_job_state(&scheduler.address, "batch", "JOB_STATE_SUCCEEDED", LIMIT).await;
    let batch_after = pods(&scheduler, "batch").await;
    let service_after = pods(&scheduler, "service").await;
    let ids = |pods: &BTreeMap<String, (String, String, String)>| {
        pods.iter()
            .map(|(p, (t, _, _))| (p.clone(), t.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&batch_after),
        ids(&batch_before),
        "batch pods ran other tasks"
    );
    assert_eq!(
        ids(&service_after),
        ids(&service_before),
        "service pods were relaunched"
    );
    let (_, on_second) = master_tasks(&second, &framework).await;
    for (task, _, _) in batch_after.values() {
        assert_eq!(
            on_second[task]
                .iter()
                .map(|(s, _)| s.as_str())
                .collect::<Vec<_>>(),
            ["TASK_FINISHED"],
            "{task} did not finish exactly once"
        );
    }
    // What the scheduler serves agrees with the new master.
    for (pod, (task, state, agent)) in &service_after {
        assert_eq!(state, "POD_STATE_RUNNING", "{pod}");
        assert_eq!(
            on_second[task],
            [("TASK_RUNNING".to_owned(), agent.clone())],
            "{pod}"
        );
    }
    assert_eq!(
        counter(&second, "drover_sim_tasks_launched").await,
        0,
        "a task was launched again"
    );
    assert_eq!(counter(&second, "drover_sim_tasks_adopted").await, 5);
}
