//! Bad input gets the status code or event Mesos uses, and the simulator
//! keeps serving everyone else (reference 3.2 and 3.4.2).
#![allow(clippy::unwrap_used)]

mod common;

use bytes::Bytes;
use common::*;
use drover_proto::v1::scheduler::{call, event, Call};
use drover_proto::v1::{self, task_status::Reason, TaskState};
use drover_proto::MediaType;

const SCHED: &str = "/api/v1/scheduler";

async fn post(sim: &Sim, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let r = request(
        sim.addr,
        "POST",
        SCHED,
        headers,
        Bytes::copy_from_slice(body),
    )
    .await;
    (r.status, String::from_utf8_lossy(&r.body).into_owned())
}

const JSON: (&str, &str) = ("Content-Type", "application/json");
const SUBSCRIBE: &str =
    r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#;

#[tokio::test]
async fn http_level_errors_follow_the_masters_order() {
    let sim = Sim::start(&["--agents", "1", "--max-body-bytes", "4096"]);
    let get = request(sim.addr, "GET", SCHED, &[], Bytes::new()).await;
    assert_eq!(get.status, 405);
    assert_eq!(get.headers["allow"], "POST");
    assert_eq!(
        post(&sim, &[], SUBSCRIBE.as_bytes()).await,
        (400, "Expecting 'Content-Type' to be present".into())
    );
    assert_eq!(
        post(
            &sim,
            &[("Content-Type", "text/plain")],
            SUBSCRIBE.as_bytes()
        )
        .await
        .0,
        415
    );
    assert_eq!(
        post(
            &sim,
            &[("Content-Type", "application/json; charset=utf-8")],
            SUBSCRIBE.as_bytes()
        )
        .await
        .0,
        415
    );
    let (status, body) = post(&sim, &[JSON], b"{not json").await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Failed to convert JSON into Call protobuf"),
        "{body}"
    );
    let (status, body) = post(
        &sim,
        &[("Content-Type", "application/x-protobuf")],
        b"\xff\xff\xff",
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Failed to parse body into Call protobuf"),
        "{body}"
    );
    let big = vec![b' '; 8192];
    assert_eq!(post(&sim, &[JSON], &big).await.0, 413);
    let (status, body) = post(&sim, &[JSON], br#"{"subscribe":{}}"#).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(
        &sim,
        &[JSON],
        br#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"name":"n"}}}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("subscribe.framework_info.user"), "{body}");
    let (status, body) = post(&sim, &[JSON], br#"{"type":"TEARDOWN"}"#).await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with("Failed to validate scheduler::Call"),
        "{body}"
    );
    let (status, _) = post(&sim, &[JSON, ("Accept", "text/html")], SUBSCRIBE.as_bytes()).await;
    assert_eq!(status, 406);
    let (status, body) = post(
        &sim,
        &[JSON, ("Mesos-Stream-Id", "x")],
        SUBSCRIBE.as_bytes(),
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (
            400,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header"
        )
    );
    let mismatch = br#"{"type":"SUBSCRIBE","framework_id":{"value":"a"},"subscribe":{"framework_info":{"user":"u","name":"n"}}}"#;
    assert_eq!(post(&sim, &[JSON], mismatch).await.0, 400);
    let unknown = br#"{"type":"REVIVE","framework_id":{"value":"nobody"}}"#;
    assert_eq!(
        post(&sim, &[JSON, ("Mesos-Stream-Id", "x")], unknown).await,
        (400, "Framework cannot be found".into())
    );
    let (code, _) = sim.get("/health").await;
    assert_eq!(code, 200, "the simulator keeps serving");
}

#[tokio::test]
async fn calls_with_a_missing_or_wrong_stream_id_or_bad_uuid_are_refused() {
    let sim = Sim::start(&["--agents", "1"]);
    for media in BOTH {
        let fw = Framework::subscribe(sim.addr, media, framework_info("ids")).await;
        let revive = encode_call(media, &fw.call(call::Type::Revive, |_| {}));
        let ct = ("Content-Type", media.as_str());
        let r = request(sim.addr, "POST", SCHED, &[ct], revive.clone()).await;
        assert_eq!(r.status, 400, "missing Mesos-Stream-Id");
        let r = request(
            sim.addr,
            "POST",
            SCHED,
            &[ct, ("Mesos-Stream-Id", "other")],
            revive.clone(),
        )
        .await;
        assert_eq!(r.status, 400, "wrong Mesos-Stream-Id");
        let ack = fw.call(call::Type::Acknowledge, |c| {
            c.acknowledge = Some(call::Acknowledge {
                agent_id: v1::AgentId { value: "a".into() },
                task_id: v1::TaskId { value: "t".into() },
                uuid: Bytes::from_static(b"abc"),
            })
        });
        let (status, body) = fw.send(&ack).await;
        assert_eq!(
            (status, body.as_str()),
            (400, "Failed to validate scheduler::Call: Not a valid UUID")
        );
        let unknown = fw.call(call::Type::Unknown, |_| {});
        assert_eq!(fw.send(&unknown).await.0, 501);
        for ty in [
            call::Type::Message,
            call::Type::Request,
            call::Type::Shutdown,
        ] {
            let c = fw.call(ty, |c| match ty {
                call::Type::Message => {
                    c.message = Some(Box::new(call::Message {
                        agent_id: v1::AgentId { value: "a".into() },
                        executor_id: v1::ExecutorId { value: "e".into() },
                        data: Bytes::from_static(b"hi"),
                    }))
                }
                call::Type::Request => {
                    c.request = Some(Box::new(call::Request { requests: vec![] }))
                }
                _ => {
                    c.shutdown = Some(Box::new(call::Shutdown {
                        executor_id: v1::ExecutorId { value: "e".into() },
                        agent_id: v1::AgentId {
                            value: "nowhere".into(),
                        },
                    }))
                }
            });
            fw.send_ok(&c).await;
        }
    }
}

#[tokio::test]
async fn pymesos_style_lenient_json_is_accepted() {
    let sim = Sim::start(&["--agents", "1"]);
    let fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("lenient")).await;
    let body = format!(
        r#"{{"type":"KILL","framework_id":{{"value":"{}"}},"kill":{{"task_id":{{"value":"x"}}}},"unknown_field":1}}"#,
        fw.id
    );
    let r = request(
        sim.addr,
        "POST",
        SCHED,
        &[JSON, ("Mesos-Stream-Id", &fw.stream_id)],
        Bytes::from(body),
    )
    .await;
    assert_eq!(r.status, 202);
}

#[tokio::test]
async fn framework_info_problems_arrive_as_one_error_event() {
    let sim = Sim::start(&["--agents", "1", "--roles", "dev"]);
    let cases = [
        (
            r#"{"user":"u","name":"n","roles":["dev"]}"#,
            "must not be set when the framework is not MULTI_ROLE",
        ),
        (r#"{"user":"u","name":"n","role":"ops"}"#, "--roles"),
        (
            r#"{"user":"u","name":"n","capabilities":[{"type":"MULTI_ROLE"}],"roles":["dev","dev"]}"#,
            "duplicate",
        ),
    ];
    for (info, want) in cases {
        let body = format!(r#"{{"type":"SUBSCRIBE","subscribe":{{"framework_info":{info}}}}}"#);
        let call: Call = MediaType::Json.decode(body.as_bytes()).unwrap();
        let mut s = open(sim.addr, MediaType::Json, &call, &[]).await;
        assert_eq!(s.status, 200);
        let e = s.next().await.unwrap();
        assert!(is(event::Type::Error)(&e));
        let msg = e.error.unwrap().message;
        assert!(msg.contains(want), "{msg}");
        assert!(s.next().await.is_none(), "the stream ends after the ERROR");
    }
}

#[tokio::test]
async fn invalid_offers_and_invalid_tasks_get_the_updates_mesos_sends() {
    let sim = Sim::start(&["--agents", "1", "--allocation-interval", "100ms"]);
    let mut fw =
        Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("bad-tasks")).await;
    let offers = fw.next_offers().await;
    let offer = &offers[0];
    let mut fake = offer.clone();
    fake.id.value = "no-such-offer".into();
    fw.launch(&fake, vec![task("lost", offer, "true")]).await;
    let s = fw.next_update("lost").await;
    assert_eq!(
        (state_of(&s), reason_of(&s)),
        (TaskState::TaskLost, Some(Reason::InvalidOffers))
    );
    assert!(s.uuid.is_none());

    let mut both = task("both", offer, "true");
    both.executor = Some(Box::new(v1::ExecutorInfo {
        executor_id: v1::ExecutorId { value: "e".into() },
        command: Some(v1::CommandInfo {
            value: Some("x".into()),
            ..Default::default()
        }),
        ..Default::default()
    }));
    let mut greedy = task("greedy", offer, "true");
    greedy.resources[0].scalar = Some(v1::value::Scalar { value: 1000.0 });
    let mut badid = task("a/b", offer, "true");
    badid.name = "badid".into();
    let ok = task("ok", offer, "serve");
    let dup = task("ok", offer, "serve");
    fw.launch(offer, vec![both, greedy, badid, ok, dup]).await;
    for id in ["both", "greedy", "a/b"] {
        let s = fw.next_update(id).await;
        assert_eq!(
            (state_of(&s), reason_of(&s)),
            (TaskState::TaskError, Some(Reason::TaskInvalid)),
            "{id}"
        );
        assert!(s.message.is_some());
    }
    // "ok" starts; its duplicate is refused.
    let mut saw_dup_error = false;
    for _ in 0..4 {
        let s = fw.next_update("ok").await;
        if state_of(&s) == TaskState::TaskError {
            assert!(s.message.unwrap().contains("duplicate"));
            saw_dup_error = true;
            break;
        }
        fw.ack(&s).await;
    }
    assert!(saw_dup_error);
}
