//! The scheduler API of the real binary over HTTP, in both encodings:
//! subscribe, offers, launch, updates, acknowledgements, kill, reconcile,
//! decline filters, failover and teardown.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use drover_proto::v1::scheduler::{call, event};
use drover_proto::v1::{self, task_status::Reason, TaskState};
use drover_proto::MediaType;

const FAST: &[&str] = &[
    "--allocation-interval",
    "100ms",
    "--heartbeat-interval",
    "1secs",
];

#[tokio::test]
async fn subscribe_streams_subscribed_heartbeat_then_offers_in_both_encodings() {
    let sim = Sim::start(&[
        "--agents",
        "3",
        "--zones",
        "a,b",
        "--allocation-interval",
        "100ms",
    ]);
    for media in BOTH {
        let mut stream = open(sim.addr, media, &subscribe_call(framework_info("f")), &[]).await;
        assert_eq!(stream.status, 200);
        assert_eq!(stream.headers["content-type"], media.as_str());
        assert_eq!(stream.headers["transfer-encoding"], "chunked");
        let stream_id = stream.headers["mesos-stream-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            uuid::Uuid::parse_str(&stream_id).unwrap().get_version_num(),
            4
        );
        let first = stream.next().await.unwrap();
        let sub = first.subscribed.unwrap();
        assert!(
            sub.framework_id.value.ends_with("-0000") || sub.framework_id.value.ends_with("-0001")
        );
        assert_eq!(sub.heartbeat_interval_seconds, Some(15.0));
        assert_eq!(sub.master_info.unwrap().version.as_deref(), Some("1.12.0"));
        assert!(is(event::Type::Heartbeat)(&stream.next().await.unwrap()));
        let offers = stream
            .until(is(event::Type::Offers))
            .await
            .offers
            .unwrap()
            .offers;
        assert!(!offers.is_empty());
        for o in &offers {
            assert!(o.id.value.starts_with(
                sub.framework_id
                    .value
                    .trim_end_matches(char::is_numeric)
                    .trim_end_matches('-')
            ));
            assert!(o.agent_id.value.contains("-S"));
            assert!(o.hostname.ends_with(".sim"));
            assert!(o.attributes.iter().any(|a| a.name == "zone"));
        }
    }
}

#[tokio::test]
async fn heartbeats_repeat_at_the_configured_interval() {
    let sim = Sim::start(&["--agents", "0", "--heartbeat-interval", "200ms"]);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("hb")).await;
    for _ in 0..3 {
        assert!(is(event::Type::Heartbeat)(&fw.stream.next().await.unwrap()));
    }
}

#[tokio::test]
async fn a_launched_task_runs_finishes_and_returns_its_resources() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    for media in BOTH {
        let mut fw = Framework::subscribe(sim.addr, media, framework_info("launch")).await;
        let offers = fw.next_offers().await;
        let total_cpus = offers[0]
            .resources
            .iter()
            .find(|r| r.name == "cpus")
            .unwrap()
            .scalar
            .unwrap()
            .value;
        let id = format!("t-{media:?}");
        fw.launch(&offers[0], vec![task(&id, &offers[0], "true")])
            .await;
        let mut seen = Vec::new();
        loop {
            let s = fw.next_update(&id).await;
            assert!(s.uuid.is_some(), "agent updates are reliable");
            assert_eq!(s.source, Some(v1::task_status::Source::Executor as i32));
            assert_eq!(s.agent_id.as_ref(), Some(&offers[0].agent_id));
            assert!(s.timestamp.unwrap() > 1e9);
            seen.push(state_of(&s));
            fw.ack(&s).await;
            if state_of(&s) == TaskState::TaskFinished {
                break;
            }
        }
        assert_eq!(
            seen,
            [
                TaskState::TaskStarting,
                TaskState::TaskRunning,
                TaskState::TaskFinished
            ]
        );
        let again = fw.next_offers().await;
        let cpus = again[0]
            .resources
            .iter()
            .find(|r| r.name == "cpus")
            .unwrap()
            .scalar
            .unwrap()
            .value;
        assert_eq!(
            cpus, total_cpus,
            "a finished task's resources go back to the agent"
        );
        let teardown = fw.call(call::Type::Teardown, |_| {});
        fw.send_ok(&teardown).await;
    }
}

#[tokio::test]
async fn an_unacknowledged_update_is_resent_and_blocks_the_next() {
    let sim = Sim::start(
        &[
            &["--agents", "1", "--status-update-retry-interval", "200ms"][..],
            FAST,
        ]
        .concat(),
    );
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("retry")).await;
    let offers = fw.next_offers().await;
    fw.launch(&offers[0], vec![task("t", &offers[0], "true")])
        .await;
    let first = fw.next_update("t").await;
    assert_eq!(state_of(&first), TaskState::TaskStarting);
    let again = fw.next_update("t").await;
    assert_eq!(
        state_of(&again),
        TaskState::TaskStarting,
        "TASK_RUNNING waits for the ack"
    );
    assert_eq!(again.uuid, first.uuid);
    fw.ack(&again).await;
    let running = fw.next_update("t").await;
    assert_eq!(state_of(&running), TaskState::TaskRunning);
    assert_ne!(running.uuid, first.uuid);
}

#[tokio::test]
async fn kill_honours_the_grace_period_and_unknown_tasks_are_reconciled() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let mut info = framework_info("kill");
    info.capabilities.push(v1::framework_info::Capability {
        r#type: Some(v1::framework_info::capability::Type::TaskKillingState as i32),
    });
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, info).await;
    let offers = fw.next_offers().await;
    let mut t = task("server", &offers[0], "python -m http.server");
    t.kill_policy = Some(v1::KillPolicy {
        grace_period: Some(v1::DurationInfo {
            nanoseconds: 100_000_000,
        }),
    });
    fw.launch(&offers[0], vec![t]).await;
    for want in [TaskState::TaskStarting, TaskState::TaskRunning] {
        let s = fw.next_update("server").await;
        assert_eq!(state_of(&s), want);
        fw.ack(&s).await;
    }
    let kill = fw.call(call::Type::Kill, |c| {
        c.kill = Some(Box::new(call::Kill {
            task_id: v1::TaskId {
                value: "server".into(),
            },
            ..Default::default()
        }))
    });
    fw.send_ok(&kill).await;
    let killing = fw.next_update("server").await;
    assert_eq!(state_of(&killing), TaskState::TaskKilling);
    fw.ack(&killing).await;
    let killed = fw.next_update("server").await;
    assert_eq!(state_of(&killed), TaskState::TaskKilled);
    fw.ack(&killed).await;

    let ghost = fw.call(call::Type::Kill, |c| {
        c.kill = Some(Box::new(call::Kill {
            task_id: v1::TaskId {
                value: "ghost".into(),
            },
            ..Default::default()
        }))
    });
    fw.send_ok(&ghost).await;
    let lost = fw.next_update("ghost").await;
    assert_eq!(state_of(&lost), TaskState::TaskLost);
    assert_eq!(reason_of(&lost), Some(Reason::Reconciliation));
    assert!(lost.uuid.is_none());
}

#[tokio::test]
async fn reconciliation_answers_explicitly_and_implicitly() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let mut info = framework_info("rec");
    info.capabilities.push(v1::framework_info::Capability {
        r#type: Some(v1::framework_info::capability::Type::PartitionAware as i32),
    });
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, info).await;
    let offers = fw.next_offers().await;
    fw.launch(
        &offers[0],
        vec![
            task("a", &offers[0], "serve"),
            task("b", &offers[0], "serve"),
        ],
    )
    .await;
    for id in ["a", "a", "b", "b"] {
        let s = fw.next_update(id).await;
        fw.ack(&s).await;
    }
    let implicit = fw.call(call::Type::Reconcile, |c| {
        c.reconcile = Some(call::Reconcile { tasks: vec![] })
    });
    fw.send_ok(&implicit).await;
    let mut answered = Vec::new();
    while answered.len() < 2 {
        let e = fw.stream.until(is(event::Type::Update)).await;
        let s = e.update.unwrap().status;
        assert_eq!(reason_of(&s), Some(Reason::Reconciliation));
        assert_eq!(s.source, Some(v1::task_status::Source::Master as i32));
        assert!(s.uuid.is_none());
        assert_eq!(state_of(&s), TaskState::TaskRunning);
        answered.push(s.task_id.value);
    }
    answered.sort();
    assert_eq!(answered, ["a", "b"]);
    let explicit = fw.call(call::Type::Reconcile, |c| {
        c.reconcile = Some(call::Reconcile {
            tasks: vec![
                call::reconcile::Task {
                    task_id: v1::TaskId { value: "a".into() },
                    agent_id: None,
                },
                call::reconcile::Task {
                    task_id: v1::TaskId {
                        value: "nope".into(),
                    },
                    agent_id: None,
                },
            ],
        })
    });
    fw.send_ok(&explicit).await;
    assert_eq!(state_of(&fw.next_update("a").await), TaskState::TaskRunning);
    assert_eq!(
        state_of(&fw.next_update("nope").await),
        TaskState::TaskUnknown,
        "partition-aware frameworks get TASK_UNKNOWN"
    );
}

#[tokio::test]
async fn decline_filters_hold_an_agent_back_until_revive() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("decline")).await;
    let offers = fw.next_offers().await;
    let fid = fw.id.clone();
    let decline = |refuse: f64, offer: &v1::Offer| v1::scheduler::Call {
        framework_id: Some(v1::FrameworkId { value: fid.clone() }),
        r#type: Some(call::Type::Decline as i32),
        decline: Some(call::Decline {
            offer_ids: vec![offer.id.clone()],
            filters: Some(v1::Filters {
                refuse_seconds: Some(refuse),
            }),
        }),
        ..Default::default()
    };
    fw.send_ok(&decline(0.0, &offers[0])).await;
    let back = fw.next_offers().await;
    assert_eq!(
        back[0].agent_id, offers[0].agent_id,
        "refuse_seconds 0 re-offers at once"
    );
    assert_ne!(back[0].id, offers[0].id);
    fw.send_ok(&decline(3600.0, &back[0])).await;
    // Several heartbeats (one per second) pass with no offer while filtered.
    for _ in 0..2 {
        let e = fw.stream.next().await.unwrap();
        assert!(
            is(event::Type::Heartbeat)(&e),
            "no offer while the filter holds: {e:?}"
        );
    }
    let revive = fw.call(call::Type::Revive, |_| {});
    fw.send_ok(&revive).await;
    let revived = fw.next_offers().await;
    assert_eq!(revived[0].agent_id, offers[0].agent_id);
    let suppress = fw.call(call::Type::Suppress, |_| {});
    let decline_now = decline(0.0, &revived[0]);
    fw.send_ok(&suppress).await;
    fw.send_ok(&decline_now).await;
    for _ in 0..2 {
        let e = fw.stream.next().await.unwrap();
        assert!(
            is(event::Type::Heartbeat)(&e),
            "no offer while suppressed: {e:?}"
        );
    }
}

#[tokio::test]
async fn a_resubscribe_fails_over_the_old_stream_and_keeps_tasks() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let mut info = framework_info("failover");
    info.failover_timeout = Some(3600.0);
    let mut old = Framework::subscribe(sim.addr, MediaType::Json, info.clone()).await;
    let offers = old.next_offers().await;
    old.launch(&offers[0], vec![task("keep", &offers[0], "serve")])
        .await;
    for _ in 0..2 {
        let s = old.next_update("keep").await;
        old.ack(&s).await;
    }
    info.id = Some(v1::FrameworkId {
        value: old.id.clone(),
    });
    let mut new = Framework::subscribe(sim.addr, MediaType::Protobuf, info.clone()).await;
    assert_eq!(new.id, old.id);
    assert_ne!(new.stream_id, old.stream_id);
    let err = old.stream.until(is(event::Type::Error)).await;
    assert_eq!(err.error.unwrap().message, "Framework failed over");
    assert!(
        old.stream.next().await.is_none(),
        "the old stream ends after ERROR"
    );
    let stale = old.call(call::Type::Revive, |_| {});
    assert_eq!(
        old.send(&stale).await.0,
        400,
        "the old stream id is refused"
    );
    let rec = new.call(call::Type::Reconcile, |c| {
        c.reconcile = Some(call::Reconcile { tasks: vec![] })
    });
    new.send_ok(&rec).await;
    assert_eq!(
        state_of(&new.next_update("keep").await),
        TaskState::TaskRunning
    );

    // Closing the stream disconnects: calls get 403 until re-subscription.
    let id = new.id.clone();
    drop(new.stream);
    let call = v1::scheduler::Call {
        framework_id: Some(v1::FrameworkId { value: id.clone() }),
        r#type: Some(call::Type::Revive as i32),
        ..Default::default()
    };
    let mut status = 0;
    for _ in 0..50 {
        let r = request(
            sim.addr,
            "POST",
            "/api/v1/scheduler",
            &[
                ("Content-Type", "application/json"),
                ("Mesos-Stream-Id", &new.stream_id),
            ],
            encode_call(MediaType::Json, &call),
        )
        .await;
        status = r.status;
        if status == 403 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, 403);
    let back = Framework::subscribe(sim.addr, MediaType::Json, info).await;
    assert_eq!(back.id, id);
}

#[tokio::test]
async fn after_the_failover_timeout_the_framework_is_removed() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let mut info = framework_info("gone");
    info.failover_timeout = Some(0.0);
    let fw = Framework::subscribe(sim.addr, MediaType::Json, info.clone()).await;
    info.id = Some(v1::FrameworkId {
        value: fw.id.clone(),
    });
    drop(fw.stream);
    let mut msg = String::new();
    for _ in 0..50 {
        let mut s = open(
            sim.addr,
            MediaType::Json,
            &subscribe_call(info.clone()),
            &[],
        )
        .await;
        assert_eq!(s.status, 200);
        let e = s.next().await.unwrap();
        if let Some(err) = e.error {
            msg = err.message;
            assert!(s.next().await.is_none());
            break;
        }
        drop(s);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(msg, "Framework has been removed");
}

#[tokio::test]
async fn teardown_ends_the_stream_and_forgets_the_framework() {
    let sim = Sim::start(&[&["--agents", "1"][..], FAST].concat());
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("td")).await;
    let teardown = fw.call(call::Type::Teardown, |_| {});
    fw.send_ok(&teardown).await;
    while fw.stream.next().await.is_some() {}
    let revive = fw.call(call::Type::Revive, |_| {});
    let (status, body) = fw.send(&revive).await;
    assert_eq!((status, body.as_str()), (400, "Framework cannot be found"));
}

#[tokio::test]
async fn declined_agents_go_to_the_other_framework() {
    let sim = Sim::start(&[&["--agents", "4"][..], FAST].concat());
    let mut a = Framework::subscribe(sim.addr, MediaType::Json, framework_info("a")).await;
    let oa = a.next_offers().await;
    let mut b = Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("b")).await;
    let decline = a.call(call::Type::Decline, |c| {
        c.decline = Some(call::Decline {
            offer_ids: oa.iter().map(|o| o.id.clone()).collect(),
            filters: Some(v1::Filters {
                refuse_seconds: Some(3600.0),
            }),
        })
    });
    a.send_ok(&decline).await;
    let mut got = 0;
    while got < oa.len() {
        let ob = b.next_offers().await;
        for o in &ob {
            assert!(oa.iter().any(|x| x.agent_id == o.agent_id));
        }
        got += ob.len();
    }
}

/// Mesos buffers a subscriber's events without bound, and answers an
/// implicit reconciliation with one update per task, all at once. agent-sim
/// once cut off any subscriber 16,384 events behind, so a framework with
/// more tasks than that lost its subscription on every reconciliation (and
/// on every launch wave that large).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bursts_beyond_sixteen_thousand_events_keep_the_subscription() {
    const TASKS: usize = 20_000;
    let sim = Sim::start(&["--resources", "cpus:4000;mem:1000000"]);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("big")).await;
    let offers = fw.next_offers().await;
    let tasks = (0..TASKS)
        .map(|i| task(&format!("t{i}"), &offers[0], "serve"))
        .collect();
    // Answered once the master has queued all 20,000 STARTING updates.
    fw.launch(&offers[0], tasks).await;
    let mut starting = 0;
    while starting < TASKS {
        fw.stream.until(is(event::Type::Update)).await;
        starting += 1;
    }
    // Likewise all 20,000 answers are queued before the 202, unread.
    let implicit = fw.call(call::Type::Reconcile, |c| {
        c.reconcile = Some(call::Reconcile { tasks: vec![] })
    });
    fw.send_ok(&implicit).await;
    let mut answered = std::collections::HashSet::new();
    while answered.len() < TASKS {
        let e = fw.stream.until(is(event::Type::Update)).await;
        let s = e.update.unwrap().status;
        assert_eq!(reason_of(&s), Some(Reason::Reconciliation));
        answered.insert(s.task_id.value);
    }
}
