//! Partitions as Mesos' partition-aware frameworks handle them: an agent
//! the master cannot reach (agent-sim's `/sim/agents/{id}/fail`: its tasks
//! become TASK_UNREACHABLE and keep running, their updates held until
//! `/restore`) is waited for as the job's unreachable policy says. The
//! real scheduler binary, in its default executor mode.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::{duplicate_live_tasks, sim_tasks, AgentSim};
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// Pods with a live task at the master: pod → (task id, agent id).
async fn live_at_master(sim: &str) -> BTreeMap<String, (String, String)> {
    sim_tasks(sim)
        .await
        .into_iter()
        .filter(|(_, state, _)| state == "TASK_RUNNING")
        .map(|(task, _, agent)| {
            let pod = task.rsplit_once('-').unwrap().0.to_owned();
            (pod, (task, agent))
        })
        .collect()
}

/// Every run the scheduler recorded for `pod`, oldest first: (task id,
/// state).
async fn runs_of(scheduler: &str, pod: &str) -> Vec<(String, String)> {
    let (_, detail) = get(scheduler, &format!("/api/v1/pods/{pod}")).await;
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    let mut runs: Vec<(String, String)> = detail["previous"]
        .as_array()
        .unwrap()
        .iter()
        .chain(std::iter::once(&detail["current"]))
        .map(|run| {
            let status = &run["status"];
            (text(&status["pod_id"]["value"]), text(&status["state"]))
        })
        .collect();
    runs.sort();
    runs
}

/// Waits for `count` pods of a job to run, and picks an agent that runs
/// at least one of them: (the pods, the victim, the victim's pods).
async fn running(
    sim: &str,
    count: usize,
) -> (BTreeMap<String, (String, String)>, String, Vec<String>) {
    let pods = wait_for(LIMIT, || async {
        let live = live_at_master(sim).await;
        (live.len() == count).then_some(live)
    })
    .await
    .expect("every instance running");
    let victim = pods.values().next().unwrap().1.clone();
    let on_victim = pods
        .iter()
        .filter(|(_, (_, agent))| *agent == victim)
        .map(|(pod, _)| pod.clone())
        .collect();
    (pods, victim, on_victim)
}

async fn partition(sim: &str, agent: &str, action: &str) {
    let (status, body) = post(sim, &format!("/sim/agents/{agent}/{action}"), &json!({})).await;
    assert_eq!(status, 200, "{action} {agent}: {body}");
}

/// Every (actual_state, mesos_state) of `task`'s events.
async fn events_of(scheduler: &str, pod: &str, task: &str) -> Vec<(String, String)> {
    let (_, events) = get(scheduler, &format!("/api/v1/pods/{pod}/events")).await;
    events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["pod_id"]["value"] == task)
        .map(|e| {
            let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
            (text(&e["actual_state"]), text(&e["mesos_state"]))
        })
        .collect()
}

/// The default for batch jobs: a task on an unreachable agent may still
/// finish, so it is not run again; when the agent returns, its TASK_FINISHED
/// is the instance's result, and the store says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_instances_on_a_partitioned_agent_run_exactly_once() {
    let sim = AgentSim::for_scheduler(3).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    create_job(&s.address, "batch", job_spec("BATCH", 6, "sleep 4")).await;
    let (pods, victim, on_victim) = running(&sim.address, 6).await;
    partition(&sim.address, &victim, "fail").await;
    // Long enough for a replacement to start and for the tasks to finish.
    tokio::time::sleep(Duration::from_secs(6)).await;
    for pod in &on_victim {
        let runs = runs_of(&s.address, pod).await;
        assert_eq!(
            runs.len(),
            1,
            "{pod} not run again while unreachable: {runs:?}"
        );
    }
    partition(&sim.address, &victim, "restore").await;
    wait_for_job_state(&s.address, "batch", "JOB_STATE_SUCCEEDED", LIMIT).await;
    for (pod, (task, _)) in &pods {
        let runs = runs_of(&s.address, pod).await;
        assert_eq!(
            runs,
            vec![(task.clone(), "POD_STATE_SUCCEEDED".to_owned())],
            "{pod} ran exactly once, and succeeded"
        );
    }
    for pod in &on_victim {
        let task = &pods[pod].0;
        let events = events_of(&s.address, pod, task).await;
        let mesos: Vec<&str> = events.iter().map(|(_, m)| m.as_str()).collect();
        let unreachable = mesos.iter().position(|m| *m == "TASK_UNREACHABLE");
        let finished = mesos.iter().position(|m| *m == "TASK_FINISHED");
        assert!(
            unreachable.is_some() && finished > unreachable,
            "the history says unreachable, then finished: {events:?}"
        );
    }
}

/// A batch job that asks for it gets a replacement while its run is
/// unreachable; when the first run turns out to have succeeded, that is
/// recorded, and the replacement is killed: the instance ran once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_batch_run_that_finished_is_the_result_and_its_replacement_is_killed() {
    let sim = AgentSim::for_scheduler(3).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut spec = job_spec("BATCH", 3, "sleep 10");
    spec["unreachable_policy"] = json!({"inactive_after_secs": 1});
    create_job(&s.address, "asked", spec).await;
    let (pods, victim, on_victim) = running(&sim.address, 3).await;
    // The first runs are well ahead of their replacements: these start
    // about 5 s later, and are still running when the first runs finish.
    tokio::time::sleep(Duration::from_secs(4)).await;
    partition(&sim.address, &victim, "fail").await;
    wait_for(LIMIT, || async {
        let live = live_at_master(&sim.address).await;
        on_victim
            .iter()
            .all(|pod| live.get(pod).is_some_and(|(_, agent)| *agent != victim))
            .then_some(())
    })
    .await
    .expect("replacements start elsewhere after inactive_after");
    // The first runs finish on the unreachable agent; the master hears of
    // it only when the agent returns.
    let first: Vec<&String> = on_victim.iter().map(|pod| &pods[pod].0).collect();
    wait_for(LIMIT, || async {
        let tasks = sim_tasks(&sim.address).await;
        first
            .iter()
            .all(|task| {
                tasks
                    .iter()
                    .any(|(t, state, _)| t == *task && state == "TASK_FINISHED")
            })
            .then_some(())
    })
    .await
    .expect("the first runs finish on the unreachable agent");
    partition(&sim.address, &victim, "restore").await;
    wait_for_job_state(&s.address, "asked", "JOB_STATE_SUCCEEDED", LIMIT).await;
    for pod in &on_victim {
        let first = &pods[pod].0;
        let runs = wait_for(LIMIT, || async {
            let runs = runs_of(&s.address, pod).await;
            (runs.len() == 2 && runs[1].1 == "POD_STATE_KILLED").then_some(runs)
        })
        .await;
        let Some(runs) = runs else {
            let (_, detail) = get(&s.address, &format!("/api/v1/pods/{pod}")).await;
            panic!("{pod}: the replacement is killed: {detail}");
        };
        assert_eq!(
            runs[0],
            (first.clone(), "POD_STATE_SUCCEEDED".to_owned()),
            "the first run's true end is stored"
        );
        let events = events_of(&s.address, pod, first).await;
        assert!(
            events.iter().any(|(_, m)| m == "TASK_UNREACHABLE")
                && events.iter().any(|(_, m)| m == "TASK_FINISHED"),
            "{events:?}"
        );
    }
    assert!(duplicate_live_tasks(&sim_tasks(&sim.address).await).is_empty());
}

/// A service waits `inactive_after` (minutes by default) before replacing
/// an unreachable task: a short partition starts no second copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_partition_starts_no_second_copy_of_a_service() {
    let sim = AgentSim::for_scheduler(3).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    create_job(&s.address, "svc", job_spec("SERVICE", 4, "serve forever")).await;
    let (pods, victim, _) = running(&sim.address, 4).await;
    partition(&sim.address, &victim, "fail").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let during = sim_tasks(&sim.address).await;
    assert_eq!(during.len(), 4, "no replacement started: {during:?}");
    partition(&sim.address, &victim, "restore").await;
    let after = wait_for(LIMIT, || async {
        let live = live_at_master(&sim.address).await;
        (live == pods).then_some(live)
    })
    .await
    .expect("the same tasks run after the partition");
    assert!(duplicate_live_tasks(&sim_tasks(&sim.address).await).is_empty());
    for (pod, (task, _)) in &after {
        // The scheduler stores the returning agent's updates shortly after.
        let stored = wait_for(LIMIT, || async {
            let runs = runs_of(&s.address, pod).await;
            (runs == [(task.clone(), "POD_STATE_RUNNING".to_owned())]).then_some(())
        })
        .await;
        assert!(
            stored.is_some(),
            "{pod}: one run, still running: {:?}",
            runs_of(&s.address, pod).await
        );
    }
}
