//! A misbehaving master, seen by the real `drover-scheduler` binary
//! (issue 17, "a bad master is contained"): a loopback HTTP endpoint
//! stands in for the master, records every call, and answers SUBSCRIBE
//! with a framework id and offers of its choosing.
//!
//! - A SUBSCRIBED for another framework than the one the store holds
//!   stops the scheduler, non-zero, naming both ids; the store keeps ours.
//! - Offers with a resource listed twice or an amount that is no amount
//!   are declined and never launched on; a second copy of an offer id in
//!   one event is ignored (only the first copy's resources are used).
#![allow(clippy::unwrap_used)]

mod support;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post as on_post;
use axum::Router;
use bytes::Bytes;
use drover_proto::recordio::encode_record;
use drover_proto::v1::scheduler::{call, event, Call, Event};
use drover_proto::v1::{self, resource, value, FrameworkId, Resource};
use drover_proto::MediaType;
use drover_scheduler::model::change::Change;
use drover_scheduler::store::{SqliteStore, Store, StoreRead};
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::mpsc;

type Chunk = Result<Bytes, std::io::Error>;

/// The fake master: answers SUBSCRIBE with SUBSCRIBED for `framework_id`,
/// every other call with 202, and writes `offers` (once) on the stream
/// when the first REVIVE comes.
#[derive(Clone)]
struct Master {
    framework_id: String,
    offers: Arc<Mutex<Option<Vec<v1::Offer>>>>,
    calls: Arc<Mutex<Vec<Call>>>,
    streams: Arc<Mutex<Vec<mpsc::Sender<Chunk>>>>,
}

const MEDIA: MediaType = MediaType::Protobuf;

fn record(event: &Event) -> Bytes {
    encode_record(&MEDIA.encode(event))
}

async fn answer(State(master): State<Master>, _headers: HeaderMap, body: Bytes) -> Response {
    let call: Call = MEDIA.decode(&body).unwrap();
    master.calls.lock().unwrap().push(call.clone());
    let kind = call.r#type.and_then(|t| call::Type::try_from(t).ok());
    if kind == Some(call::Type::Revive) {
        if let Some(offers) = master.offers.lock().unwrap().take() {
            let event = Event {
                r#type: Some(event::Type::Offers as i32),
                offers: Some(event::Offers { offers }),
                ..Default::default()
            };
            for stream in master.streams.lock().unwrap().iter() {
                let _ = stream.try_send(Ok(record(&event)));
            }
        }
    }
    if kind != Some(call::Type::Subscribe) {
        return Response::builder()
            .status(StatusCode::ACCEPTED)
            .body(Body::empty())
            .unwrap();
    }
    let (tx, mut rx) = mpsc::channel::<Chunk>(16);
    let subscribed = Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(Box::new(event::Subscribed {
            framework_id: FrameworkId {
                value: master.framework_id.clone(),
            },
            heartbeat_interval_seconds: Some(15.0),
            master_info: None,
        })),
        ..Default::default()
    };
    tx.try_send(Ok(record(&subscribed))).unwrap();
    master.streams.lock().unwrap().push(tx);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", MEDIA.as_str())
        .header("mesos-stream-id", "stream-1")
        .body(Body::from_stream(futures_util::stream::poll_fn(
            move |cx| rx.poll_recv(cx),
        )))
        .unwrap()
}

async fn serve(master: Master) -> SocketAddr {
    let router = Router::new()
        .route("/api/v1/scheduler", on_post(answer))
        // The framework guard of a store without a framework id asks
        // first: this master knows no framework.
        .route(
            "/master/state",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"frameworks": []})) }),
        )
        .with_state(master);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

fn master(framework_id: &str, offers: Vec<v1::Offer>) -> Master {
    Master {
        framework_id: framework_id.into(),
        offers: Arc::new(Mutex::new(Some(offers))),
        calls: Arc::default(),
        streams: Arc::default(),
    }
}

/// A master that had us subscribed as `fw-ours` (the store says so)
/// answers a re-subscription for `fw-theirs`. Accepting it would adopt
/// another framework's identity (and orphan ours); the scheduler stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_for_another_framework_stops_the_scheduler_naming_both_ids() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let change = Change {
            framework_id: Some(Some("fw-ours".into())),
            ..Change::default()
        };
        store.commit(&change).unwrap();
    }
    let fake = master("fw-theirs", Vec::new());
    let addr = serve(fake.clone()).await;

    let args = scheduler_args(dir.path(), &format!("http://{addr}"), &[]);
    let run = run_until_exit(
        &scheduler_bin(),
        &args,
        &[("DROVER_LOG", "info")],
        Duration::from_secs(20),
    )
    .await;
    let (Ok(output) | Err(output)) = &run;
    let log = String::from_utf8_lossy(&output.stderr);
    let status = match &run {
        Ok(output) => output.status,
        Err(_) => {
            panic!("the scheduler still runs 20 s after a SUBSCRIBED for another framework:\n{log}")
        }
    };
    assert!(!status.success(), "exit {status}\n{log}");
    // What `main` reports on its way out names both.
    assert!(
        log.lines()
            .any(|l| l.starts_with("Error:") && l.contains("fw-ours") && l.contains("fw-theirs")),
        "no error naming both ids:\n{log}"
    );
    let subscribes = fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.r#type == Some(call::Type::Subscribe as i32))
        .count();
    assert_eq!(subscribes, 1, "it must not retry");
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.framework_id().unwrap().as_deref(), Some("fw-ours"));
}

fn scalar(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.into(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

fn offer(id: &str, agent: &str, resources: Vec<Resource>) -> v1::Offer {
    v1::Offer {
        id: v1::OfferId { value: id.into() },
        framework_id: FrameworkId {
            value: "fw-1".into(),
        },
        agent_id: v1::AgentId {
            value: agent.into(),
        },
        hostname: format!("{agent}.test"),
        resources,
        allocation_info: Some(resource::AllocationInfo {
            role: Some("*".into()),
        }),
        ..Default::default()
    }
}

/// Offer ids named by the master's ACCEPTs (one entry per ACCEPT) with
/// the number of tasks each launched, and the ids it was told to decline.
fn answers(calls: &[Call]) -> (Vec<(Vec<String>, usize)>, BTreeSet<String>) {
    let mut accepted = Vec::new();
    let mut declined = BTreeSet::new();
    for call in calls {
        if let Some(accept) = &call.accept {
            let tasks = accept
                .operations
                .iter()
                .map(|o| o.launch.as_ref().map_or(0, |l| l.task_infos.len()))
                .sum();
            let ids = accept.offer_ids.iter().map(|o| o.value.clone()).collect();
            accepted.push((ids, tasks));
        }
        if let Some(decline) = &call.decline {
            declined.extend(decline.offer_ids.iter().map(|o| o.value.clone()));
        }
    }
    (accepted, declined)
}

/// One OFFERS event with four offers: `o-dup` twice (the first copy fits
/// one task, the second eight), `o-twice` listing `cpus` twice (2 and
/// -10), `o-nan` with a memory of NaN, `o-inf` with infinite cpus. Three
/// one-cpu tasks wait. Before, the copies of `o-dup` were summed (all three
/// tasks on it, the id twice in the ACCEPT) and the bad offers used for
/// what looked usable in them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_are_declined_and_a_duplicate_offer_id_is_not_used_twice() {
    let offers = vec![
        offer(
            "o-dup",
            "a1",
            vec![scalar("cpus", 1.5), scalar("mem", 1024.0)],
        ),
        offer(
            "o-dup",
            "a1",
            vec![scalar("cpus", 8.0), scalar("mem", 8192.0)],
        ),
        offer(
            "o-twice",
            "a2",
            vec![
                scalar("cpus", 2.0),
                scalar("cpus", -10.0),
                scalar("mem", 1024.0),
            ],
        ),
        offer(
            "o-nan",
            "a3",
            vec![scalar("cpus", 4.0), scalar("mem", f64::NAN)],
        ),
        offer(
            "o-inf",
            "a4",
            vec![scalar("cpus", f64::INFINITY), scalar("mem", 1024.0)],
        ),
    ];
    let fake = master("fw-1", offers);
    let addr = serve(fake.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let scheduler = start_scheduler(dir.path(), &format!("http://{addr}"), &[]);
    let mut spec = job_spec("BATCH", 3, "sleep 100");
    spec["default_spec"]["containers"][0]["resource"]["cpu_limit"] = serde_json::json!(1.0);
    let body = serde_json::json!({"job_id": {"value": "three"}, "spec": spec});
    let (status, reply) = post(&scheduler.address, "/api/v1/jobs", &body).await;
    assert_eq!(status, 200, "{reply}");

    let bad: BTreeSet<String> = ["o-inf", "o-nan", "o-twice"].map(String::from).into();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (accepted, declined) = answers(&fake.calls.lock().unwrap());
        let dup_answered = !accepted.is_empty() || declined.contains("o-dup");
        if (dup_answered && bad.is_subset(&declined)) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Time for anything else the round would send.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let calls = fake.calls.lock().unwrap().clone();
    let (accepted, declined) = answers(&calls);
    let summary = format!("ACCEPTs (offers, tasks): {accepted:?}; declined: {declined:?}");
    for (ids, _) in &accepted {
        assert!(
            ids.iter().all(|id| !bad.contains(id)),
            "a bad offer was launched on: {summary}"
        );
    }
    assert!(
        bad.is_subset(&declined),
        "bad offers not declined: {summary}"
    );
    assert_eq!(
        accepted,
        vec![(vec!["o-dup".to_owned()], 1)],
        "only the first copy of o-dup is used, once: {summary}"
    );
}
