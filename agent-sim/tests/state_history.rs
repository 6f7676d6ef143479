//! `/state` remembers what ran, as a Mesos master does
//! (`src/master/readonly_handler.cpp`, `FullFrameworkWriter`): each
//! framework's `completed_tasks` (the last `--max-completed-tasks-per-framework`,
//! with their final state and every status they went through),
//! `unreachable_tasks` (tasks on a partitioned agent) and the executors,
//! live and `completed_executors`.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use drover_proto::v1::{self, TaskState};
use drover_proto::MediaType;
use serde_json::Value;

const FAST: &[&str] = &[
    "--allocation-interval",
    "100ms",
    "--heartbeat-interval",
    "100ms",
];

/// Acknowledges a task's updates until its terminal one.
async fn ack_until_terminal(fw: &mut Framework, id: &str) -> TaskState {
    loop {
        let s = fw.next_update(id).await;
        fw.ack(&s).await;
        let state = state_of(&s);
        if matches!(
            state,
            TaskState::TaskFinished | TaskState::TaskFailed | TaskState::TaskKilled
        ) {
            return state;
        }
    }
}

async fn framework_state(sim: &Sim, id: &str) -> Value {
    let (code, body) = sim.get("/state").await;
    assert_eq!(code, 200, "{body}");
    let state: Value = serde_json::from_str(&body).unwrap();
    state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("framework {id} in /state: {state}"))
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("an array: {list}"))
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect()
}

fn states(task: &Value) -> Vec<String> {
    task["statuses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn finished_tasks_stay_in_completed_tasks_with_their_statuses_oldest_dropped_first() {
    let sim = Sim::start(&[&["--max-completed-tasks-per-framework", "2"][..], FAST].concat());
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("hist")).await;
    for (id, cmd) in [("a", "true"), ("b", "false"), ("c", "sleep 0.05")] {
        let offers = fw.next_offers().await;
        fw.launch(&offers[0], vec![task(id, &offers[0], cmd)]).await;
        ack_until_terminal(&mut fw, id).await;
    }
    let f = framework_state(&sim, &fw.id).await;
    assert_eq!(ids(&f["tasks"]), Vec::<String>::new(), "{f}");
    // Bounded at 2, the oldest ("a") dropped first.
    assert_eq!(ids(&f["completed_tasks"]), ["b", "c"], "{f}");
    let b = &f["completed_tasks"][0];
    assert_eq!(b["state"], "TASK_FAILED");
    assert_eq!(b["framework_id"], fw.id.as_str());
    assert_eq!(b["name"], "b");
    assert!(b["slave_id"].as_str().unwrap().contains("-S"), "{b}");
    assert_eq!(b["resources"]["cpus"], 0.1);
    assert_eq!(
        states(b),
        ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"],
        "{b}"
    );
    let c = &f["completed_tasks"][1];
    assert_eq!(c["state"], "TASK_FINISHED");
    assert!(c["statuses"][2]["timestamp"].as_f64().unwrap() > 1e9, "{c}");
    // The same under the `/master` prefix.
    let (_, body) = sim.get("/master/state").await;
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        state["frameworks"][0]["completed_tasks"],
        f["completed_tasks"]
    );
}

#[tokio::test]
async fn a_tasks_labels_are_listed_live_and_completed_as_mesos_writes_them() {
    let sim = Sim::start(FAST);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("labels")).await;
    let offers = fw.next_offers().await;
    let mut labelled = task("l", &offers[0], "sleep 0.3");
    labelled.labels = Some(v1::Labels {
        labels: vec![
            v1::Label {
                key: "drover.job.spec".into(),
                value: Some("{\"version\":1}".into()),
            },
            v1::Label {
                key: "bare".into(),
                value: None,
            },
        ],
    });
    let plain = task("p", &offers[0], "sleep 0.3");
    fw.launch(&offers[0], vec![labelled, plain]).await;
    let want = serde_json::json!([
        {"key": "drover.job.spec", "value": "{\"version\":1}"},
        {"key": "bare"}
    ]);
    let f = framework_state(&sim, &fw.id).await;
    let live = f["tasks"].as_array().unwrap();
    let by_id = |list: &[Value], id: &str| list.iter().find(|t| t["id"] == id).cloned().unwrap();
    assert_eq!(by_id(live, "l")["labels"], want, "{f}");
    assert!(
        by_id(live, "p").get("labels").is_none(),
        "no labels, no field: {f}"
    );
    for id in ["l", "p"] {
        ack_until_terminal(&mut fw, id).await;
    }
    let f = framework_state(&sim, &fw.id).await;
    let done = f["completed_tasks"].as_array().unwrap();
    assert_eq!(by_id(done, "l")["labels"], want, "{f}");
}

#[tokio::test]
async fn the_default_keeps_a_thousand_completed_tasks() {
    let sim = Sim::start(FAST);
    let (_, body) = sim.get("/state").await;
    let state: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        state["flags"]["max_completed_tasks_per_framework"], "1000",
        "{}",
        state["flags"]
    );
}

#[tokio::test]
async fn tasks_of_a_partitioned_agent_are_unreachable_tasks_until_it_returns() {
    use v1::framework_info::capability::Type as Cap;
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let mut info = framework_info("part");
    info.capabilities.push(v1::framework_info::Capability {
        r#type: Some(Cap::PartitionAware as i32),
    });
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, info).await;
    let offers = fw.next_offers().await;
    let agent = offers[0].agent_id.value.clone();
    fw.launch(&offers[0], vec![task("u", &offers[0], "serve forever")])
        .await;
    for _ in 0..2 {
        let s = fw.next_update("u").await;
        fw.ack(&s).await;
    }
    let (code, _) = sim
        .post_json(&format!("/sim/agents/{agent}/fail"), "")
        .await;
    assert_eq!(code, 200);
    let lost = fw.next_update("u").await;
    assert_eq!(state_of(&lost), TaskState::TaskUnreachable);

    let f = framework_state(&sim, &fw.id).await;
    assert_eq!(ids(&f["tasks"]), Vec::<String>::new(), "{f}");
    assert_eq!(ids(&f["unreachable_tasks"]), ["u"], "{f}");
    let u = &f["unreachable_tasks"][0];
    assert_eq!(u["state"], "TASK_UNREACHABLE");
    assert_eq!(u["slave_id"], agent.as_str());
    assert_eq!(
        states(u),
        ["TASK_STARTING", "TASK_RUNNING", "TASK_UNREACHABLE"],
        "{u}"
    );

    let (code, _) = sim
        .post_json(&format!("/sim/agents/{agent}/restore"), "")
        .await;
    assert_eq!(code, 200);
    fw.next_update("u").await;
    let f = framework_state(&sim, &fw.id).await;
    assert_eq!(ids(&f["tasks"]), ["u"], "{f}");
    assert_eq!(ids(&f["unreachable_tasks"]), Vec::<String>::new(), "{f}");
    assert_eq!(f["tasks"][0]["state"], "TASK_RUNNING");
}

#[tokio::test]
async fn an_executor_is_listed_while_it_runs_and_in_completed_executors_after() {
    let sim = Sim::start(FAST);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("exec")).await;
    let offers = fw.next_offers().await;
    let mut t = task("x", &offers[0], "sleep 0.3");
    let command = t.command.take();
    t.executor = Some(Box::new(v1::ExecutorInfo {
        executor_id: v1::ExecutorId { value: "ex".into() },
        name: Some("my executor".into()),
        command,
        ..Default::default()
    }));
    fw.launch(&offers[0], vec![t]).await;
    let s = fw.next_update("x").await;
    fw.ack(&s).await;
    let f = framework_state(&sim, &fw.id).await;
    let executors = f["executors"].as_array().unwrap();
    assert_eq!(executors.len(), 1, "{f}");
    assert_eq!(executors[0]["executor_id"], "ex");
    assert_eq!(executors[0]["framework_id"], fw.id.as_str());
    assert_eq!(executors[0]["slave_id"], offers[0].agent_id.value.as_str());
    assert_eq!(f["completed_executors"], serde_json::json!([]), "{f}");

    assert_eq!(
        ack_until_terminal(&mut fw, "x").await,
        TaskState::TaskFinished
    );
    let f = framework_state(&sim, &fw.id).await;
    assert_eq!(f["executors"], serde_json::json!([]), "{f}");
    let done = f["completed_executors"].as_array().unwrap();
    assert_eq!(done.len(), 1, "{f}");
    assert_eq!(done[0]["executor_id"], "ex");
    assert_eq!(done[0]["name"], "my executor");
    assert_eq!(done[0]["slave_id"], offers[0].agent_id.value.as_str());
    assert_eq!(ids(&f["completed_tasks"]), ["x"]);
    assert_eq!(f["completed_tasks"][0]["executor_id"], "ex");
}

#[tokio::test]
async fn a_torn_down_framework_keeps_its_completed_tasks() {
    let sim = Sim::start(FAST);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("gone")).await;
    let offers = fw.next_offers().await;
    fw.launch(
        &offers[0],
        vec![
            task("done", &offers[0], "true"),
            task("live", &offers[0], "serve forever"),
        ],
    )
    .await;
    ack_until_terminal(&mut fw, "done").await;
    let teardown = fw.call(drover_proto::v1::scheduler::call::Type::Teardown, |_| {});
    fw.send_ok(&teardown).await;
    let (_, body) = sim.get("/state").await;
    let state: Value = serde_json::from_str(&body).unwrap();
    let f = &state["completed_frameworks"][0];
    assert_eq!(f["id"], fw.id.as_str());
    assert_eq!(ids(&f["completed_tasks"]), ["done", "live"], "{f}");
    assert_eq!(f["completed_tasks"][0]["state"], "TASK_FINISHED");
    assert_eq!(f["completed_tasks"][1]["state"], "TASK_KILLED");
}

#[tokio::test]
async fn only_the_last_removed_frameworks_keep_their_completed_tasks() {
    let sim = Sim::start(&[&["--max-completed-frameworks", "1"][..], FAST].concat());
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info(name)).await;
        let offers = fw.next_offers().await;
        fw.launch(&offers[0], vec![task(name, &offers[0], "true")])
            .await;
        ack_until_terminal(&mut fw, name).await;
        let teardown = fw.call(drover_proto::v1::scheduler::call::Type::Teardown, |_| {});
        fw.send_ok(&teardown).await;
        ids.push(fw.id.clone());
    }
    let (_, body) = sim.get("/state").await;
    let state: Value = serde_json::from_str(&body).unwrap();
    let completed = state["completed_frameworks"].as_array().unwrap();
    let of = |id: &str| {
        completed
            .iter()
            .find(|f| f["id"] == id)
            .unwrap_or_else(|| panic!("{id} in {completed:?}"))["completed_tasks"]
            .clone()
    };
    assert_eq!(of(&ids[0]), serde_json::json!([]));
    assert_eq!(self::ids(&of(&ids[1])), ["second"]);
}
