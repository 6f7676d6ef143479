//! A misbehaving master, seen by the real `drover-scheduler` binary
//! (issue 17, "a bad master is contained"): a loopback HTTP endpoint
//! stands in for the master, records every call, and answers SUBSCRIBE
//! with a framework id and offers of its choosing.
//!
//! - A SUBSCRIBED for another framework than the one the store holds
//!   stops the scheduler, non-zero, naming both ids; the store keeps ours.
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
use drover_proto::v1::{self, FrameworkId};
use drover_proto::MediaType;
use drover_scheduler::model::change::Change;
use drover_scheduler::store::{SqliteStore, Store, StoreRead};
use std::io::Read;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
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

    let mut child = Command::new(scheduler_bin())
        .args(["--listen", "127.0.0.1:0", "--master"])
        .arg(format!("http://{addr}"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("DROVER_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let log = reader.join().unwrap();
    let status = status.unwrap_or_else(|| {
        panic!("the scheduler still runs 20 s after a SUBSCRIBED for another framework:\n{log}")
    });
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
