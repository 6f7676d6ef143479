//! The control endpoints (`/version`, `/state`, `/redirect`, `/health`,
//! `/metrics`) and every `/sim` fault, seen from a framework over HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use drover_proto::v1::scheduler::{call, event};
use drover_proto::v1::{self, task_status::Reason, TaskState};
use drover_proto::MediaType;
use serde_json::Value;

const FAST: &[&str] = &[
    "--allocation-interval",
    "100ms",
    "--heartbeat-interval",
    "100ms",
];

fn with_caps(name: &str, caps: &[v1::framework_info::capability::Type]) -> v1::FrameworkInfo {
    let mut info = framework_info(name);
    info.failover_timeout = Some(3600.0);
    for c in caps {
        info.capabilities.push(v1::framework_info::Capability {
            r#type: Some(*c as i32),
        });
    }
    info
}

/// Launches one long-running task and acknowledges STARTING and RUNNING.
async fn run_one(fw: &mut Framework, id: &str) -> v1::Offer {
    let offers = fw.next_offers().await;
    fw.launch(&offers[0], vec![task(id, &offers[0], "serve forever")])
        .await;
    for want in [TaskState::TaskStarting, TaskState::TaskRunning] {
        let s = fw.next_update(id).await;
        assert_eq!(state_of(&s), want);
        fw.ack(&s).await;
    }
    offers[0].clone()
}

#[tokio::test]
async fn version_state_redirect_health_and_metrics_answer_like_a_master() {
    let sim = Sim::start(&[&["--agents", "3", "--zones", "a,b"][..], FAST].concat());
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("state")).await;
    run_one(&mut fw, "t1").await;
    for path in ["/version", "/master/version"] {
        let (code, body) = sim.get(path).await;
        assert_eq!(code, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        let version = v["version"].as_str().unwrap();
        assert!(
            version.split('.').all(|p| p.parse::<u32>().is_ok()),
            "{version}"
        );
    }
    let r = request(sim.addr, "GET", "/redirect", &[], bytes::Bytes::new()).await;
    assert_eq!(r.status, 307);
    assert_eq!(r.headers["location"], format!("//{}", sim.addr));
    assert_eq!(sim.get("/redirect/x").await.0, 404);
    assert_eq!(sim.get("/health").await.0, 200);
    let (code, body) = sim.get("/state").await;
    assert_eq!(code, 200);
    let state: Value = serde_json::from_str(&body).unwrap();
    for key in [
        "version",
        "id",
        "pid",
        "hostname",
        "activated_slaves",
        "leader",
        "leader_info",
        "flags",
        "slaves",
        "frameworks",
        "completed_frameworks",
        "orphan_tasks",
        "unregistered_frameworks",
    ] {
        assert!(state.get(key).is_some(), "/state lacks {key}");
    }
    assert_eq!(state["slaves"].as_array().unwrap().len(), 3);
    assert_eq!(state["slaves"][1]["attributes"]["zone"], "b");
    let f = &state["frameworks"][0];
    assert_eq!(f["id"], fw.id.as_str());
    assert_eq!(f["tasks"][0]["state"], "TASK_RUNNING");
    assert!(f["tasks"][0]["slave_id"].as_str().unwrap().contains("-S"));
    let (code, metrics) = sim.get("/metrics").await;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("drover_sim_tasks_launched_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("drover_sim_calls_total{type=\"ACCEPT\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failed_agent_loses_its_tasks_and_a_restored_one_brings_them_back() {
    use v1::framework_info::capability::Type as Cap;
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    for aware in [false, true] {
        let caps: &[Cap] = if aware { &[Cap::PartitionAware] } else { &[] };
        let mut fw =
            Framework::subscribe(sim.addr, MediaType::Protobuf, with_caps("fail", caps)).await;
        let offer = run_one(&mut fw, "t").await;
        let leftover = fw.next_offers().await;
        let agent = offer.agent_id.value.clone();
        let (code, _) = sim
            .post_json(&format!("/sim/agents/{agent}/fail"), "")
            .await;
        assert_eq!(code, 200);
        let (mut lost, mut failure, mut rescind) = (None, false, false);
        while lost.is_none() || !failure || !rescind {
            let e = fw.stream.next().await.unwrap();
            if let Some(u) = e.update {
                lost = Some(u.status);
            } else if let Some(f) = e.failure {
                assert_eq!(f.agent_id.unwrap().value, agent);
                failure = true;
            } else if let Some(r) = e.rescind {
                assert_eq!(r.offer_id, leftover[0].id);
                rescind = true;
            }
        }
        let lost = lost.unwrap();
        let want = if aware {
            TaskState::TaskUnreachable
        } else {
            TaskState::TaskLost
        };
        assert_eq!(
            (state_of(&lost), reason_of(&lost)),
            (want, Some(Reason::AgentRemoved))
        );
        assert_eq!(lost.source, Some(v1::task_status::Source::Master as i32));
        assert!(lost.uuid.is_none());
        assert_eq!(lost.unreachable_time.is_some(), aware);

        let (code, _) = sim
            .post_json(&format!("/sim/agents/{agent}/restore"), "")
            .await;
        assert_eq!(code, 200);
        let back = fw.next_update("t").await;
        assert_eq!(
            (state_of(&back), reason_of(&back)),
            (TaskState::TaskRunning, Some(Reason::AgentReregistered))
        );
        let teardown = fw.call(call::Type::Teardown, |_| {});
        fw.send_ok(&teardown).await;
    }
    let (code, body) = sim.post_json("/sim/agents/nobody/fail", "").await;
    assert_eq!(code, 404);
    assert_eq!(body["code"], "NOT_FOUND");
}

#[tokio::test]
async fn agents_added_at_run_time_are_offered() {
    let sim = Sim::start(&[&["--agents", "0"][..], FAST].concat());
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("grow")).await;
    let (code, body) = sim
        .post_json(
            "/sim/agents",
            r#"{"count":2,"resources":"cpus:2;mem:1024"}"#,
        )
        .await;
    assert_eq!(code, 200);
    let ids: Vec<String> = body["agent_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    let mut seen = Vec::new();
    while seen.len() < 2 {
        for o in fw.next_offers().await {
            assert!(ids.contains(&o.agent_id.value));
            seen.push(o.agent_id.value);
        }
    }
    assert_eq!(
        sim.post_json("/sim/agents", r#"{"count":"many"}"#).await.0,
        400
    );
    assert_eq!(
        sim.post_json("/sim/agents", r#"{"count":1,"resources":"cpus"}"#)
            .await
            .0,
        400
    );
    assert_eq!(sim.post_json("/sim/nothing", "{}").await.0, 404);
}

#[tokio::test]
async fn dropping_every_connection_is_survived_by_resubscribing() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let info = with_caps("survivor", &[]);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, info.clone()).await;
    run_one(&mut fw, "t").await;
    let (code, body) = sim.post_json("/sim/connections/drop", "").await;
    assert_eq!((code, body["closed"].as_u64()), (200, Some(1)));
    while let Some(e) = fw.stream.next().await {
        assert!(
            !is(event::Type::Error)(&e),
            "a dropped connection carries no ERROR"
        );
    }
    let stale = fw.call(call::Type::Revive, |_| {});
    assert_eq!(
        fw.send(&stale).await.0,
        403,
        "calls before re-subscribing are refused"
    );
    let mut again = info;
    again.id = Some(v1::FrameworkId {
        value: fw.id.clone(),
    });
    let mut back = Framework::subscribe(sim.addr, MediaType::Json, again).await;
    assert_eq!(back.id, fw.id);
    let rec = back.call(call::Type::Reconcile, |c| {
        c.reconcile = Some(call::Reconcile { tasks: vec![] })
    });
    back.send_ok(&rec).await;
    assert_eq!(
        state_of(&back.next_update("t").await),
        TaskState::TaskRunning
    );
}

#[tokio::test]
async fn dropped_and_delayed_status_updates_still_arrive_later() {
    let sim = Sim::start(
        &[
            &["--agents", "1", "--status-update-retry-interval", "1secs"][..],
            FAST,
        ]
        .concat(),
    );
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("lossy")).await;
    let offers = fw.next_offers().await;
    let (code, body) = sim
        .post_json("/sim/status-updates", r#"{"drop_next":1}"#)
        .await;
    assert_eq!((code, body["drop_next"].as_u64()), (200, Some(1)));
    fw.launch(&offers[0], vec![task("t", &offers[0], "serve")])
        .await;
    // The first transmission is lost: heartbeats (every 100 ms) come first,
    // then the retry (after 1 s) delivers TASK_STARTING.
    let mut heartbeats = 0;
    let starting = loop {
        let e = fw.stream.next().await.unwrap();
        if is(event::Type::Heartbeat)(&e) {
            heartbeats += 1;
        }
        if let Some(u) = e.update {
            break u.status;
        }
    };
    assert_eq!(state_of(&starting), TaskState::TaskStarting);
    assert!(heartbeats >= 2, "the update came only through the retry");
    let (_, faults) = sim.get("/sim/status-updates").await;
    assert_eq!(
        serde_json::from_str::<Value>(&faults).unwrap()["drop_next"],
        0
    );

    sim.post_json("/sim/status-updates", r#"{"delay_ms":500}"#)
        .await;
    fw.ack(&starting).await;
    let mut heartbeats = 0;
    let running = loop {
        let e = fw.stream.next().await.unwrap();
        if is(event::Type::Heartbeat)(&e) {
            heartbeats += 1;
        }
        if let Some(u) = e.update {
            break u.status;
        }
    };
    assert_eq!(state_of(&running), TaskState::TaskRunning);
    assert!(heartbeats >= 2, "the update was held back");
    assert_eq!(
        sim.post_json("/sim/status-updates", r#"{"drop_probability":2}"#)
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn an_outstanding_offer_can_be_rescinded() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("rescind")).await;
    let offers = fw.next_offers().await;
    let (_, listed) = sim.get("/sim/offers").await;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed["offers"][0]["id"], offers[0].id.value.as_str());
    let path = format!("/sim/offers/{}/rescind", offers[0].id.value);
    assert_eq!(sim.post_json(&path, "").await.0, 200);
    let e = fw.stream.until(is(event::Type::Rescind)).await;
    assert_eq!(e.rescind.unwrap().offer_id, offers[0].id);
    assert_eq!(sim.post_json(&path, "").await.0, 404);
    let again = fw.next_offers().await;
    assert_eq!(
        again[0].agent_id, offers[0].agent_id,
        "rescinded resources are offered again"
    );
}

#[tokio::test]
async fn offers_are_rescinded_after_the_offer_timeout() {
    let sim = Sim::start(&[&["--agents", "1", "--offer-timeout", "300ms"][..], FAST].concat());
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("slow")).await;
    let offers = fw.next_offers().await;
    let e = fw.stream.until(is(event::Type::Rescind)).await;
    assert_eq!(e.rescind.unwrap().offer_id, offers[0].id);
}

#[tokio::test]
async fn a_task_whose_process_is_killed_fails_with_the_signal() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("crash")).await;
    run_one(&mut fw, "victim").await;
    assert_eq!(sim.post_json("/sim/tasks/victim/kill", "").await.0, 200);
    let failed = fw.next_update("victim").await;
    assert_eq!(state_of(&failed), TaskState::TaskFailed);
    assert_eq!(
        failed.message.as_deref(),
        Some("Command terminated with signal Killed")
    );
    fw.ack(&failed).await;
    assert_eq!(
        sim.post_json("/sim/tasks/victim/kill", "").await.0,
        404,
        "an ended task cannot be killed again"
    );
    assert_eq!(sim.post_json("/sim/tasks/nobody/kill", "").await.0, 404);
}

/// What a framework restarting without its id needs to find itself: its
/// name and principal, and a disconnected framework still listed (inactive)
/// until its failover timeout removes it, as Mesos' `/state` does.
#[tokio::test]
async fn state_lists_a_frameworks_principal_and_keeps_it_while_disconnected() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let info = v1::FrameworkInfo {
        principal: Some("ops".into()),
        failover_timeout: Some(3600.0),
        ..framework_info("named")
    };
    let fw = Framework::subscribe(sim.addr, MediaType::Json, info).await;
    let id = fw.id.clone();
    let framework = |state: &Value| state["frameworks"][0].clone();
    let (_, body) = sim.get("/master/state").await;
    let f = framework(&serde_json::from_str(&body).unwrap());
    assert_eq!(
        (&f["id"], &f["name"], &f["principal"], &f["active"]),
        (
            &Value::from(id.as_str()),
            &Value::from("named"),
            &Value::from("ops"),
            &Value::from(true)
        )
    );
    drop(fw);
    let mut last = Value::Null;
    for _ in 0..100 {
        let (_, body) = sim.get("/master/state").await;
        last = serde_json::from_str(&body).unwrap();
        if framework(&last)["active"] == false {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let f = framework(&last);
    assert_eq!(
        (&f["id"], &f["principal"], &f["active"]),
        (
            &Value::from(id.as_str()),
            &Value::from("ops"),
            &Value::from(false)
        ),
        "{last}"
    );
}
