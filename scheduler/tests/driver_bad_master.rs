//! A misbehaving master, seen by the Mesos driver alone (issue 17, "a bad
//! master is contained"): loopback HTTP endpoints that accept SUBSCRIBE
//! and then misbehave on the stream. The driver must leave a master that
//! goes silent (before SUBSCRIBED, or when its heartbeats stop) for the
//! next one, skip one undecodable event without losing the stream, and
//! still drop a stream whose framing is broken.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use drover_proto::recordio::encode_record;
use drover_proto::v1::scheduler::{call, event, Call, Event};
use drover_proto::v1::{AgentId, FrameworkId, FrameworkInfo, TaskId, TaskState, TaskStatus};
use drover_proto::MediaType;
use drover_scheduler::mesos::driver::{self, DriverConfig};
use drover_scheduler::mesos::events::SessionEvent;
use drover_scheduler::mesos::session::{Session, SessionConfig, SessionError};
use drover_scheduler::metrics::Metrics;
use rand::{rngs::SmallRng, SeedableRng};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

type Chunk = Result<Bytes, std::io::Error>;

/// What a fake master writes on the stream of its `n`th SUBSCRIBE (from
/// 0): raw bytes, RecordIO framing included. The stream then stays open
/// and silent until the test ends.
type Script = Arc<dyn Fn(usize) -> Vec<Bytes> + Send + Sync>;

#[derive(Clone)]
struct Master {
    media: MediaType,
    script: Script,
    subscribes: Arc<AtomicUsize>,
    /// Keeps every stream open for as long as the test runs.
    streams: Arc<Mutex<Vec<mpsc::Sender<Chunk>>>>,
}

async fn answer(State(master): State<Master>, headers: HeaderMap, body: Bytes) -> Response {
    let call: Call = master.media.decode(&body).unwrap();
    if headers.contains_key("mesos-stream-id") || call.r#type != Some(call::Type::Subscribe as i32)
    {
        return Response::builder()
            .status(StatusCode::ACCEPTED)
            .body(Body::empty())
            .unwrap();
    }
    let n = master.subscribes.fetch_add(1, Ordering::SeqCst);
    let records = (master.script)(n);
    let (tx, mut rx) = mpsc::channel::<Chunk>(records.len() + 1);
    for record in records {
        tx.try_send(Ok(record)).unwrap();
    }
    master.streams.lock().unwrap().push(tx);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", master.media.as_str())
        .header("mesos-stream-id", format!("stream-{n}"))
        .body(Body::from_stream(futures_util::stream::poll_fn(
            move |cx| rx.poll_recv(cx),
        )))
        .unwrap()
}

/// A fake master at a loopback address, following `script`.
async fn master(media: MediaType, script: Script) -> (SocketAddr, Arc<AtomicUsize>) {
    let state = Master {
        media,
        script,
        subscribes: Arc::new(AtomicUsize::new(0)),
        streams: Arc::default(),
    };
    let subscribes = state.subscribes.clone();
    let router = Router::new()
        .route("/api/v1/scheduler", post(answer))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, subscribes)
}

fn subscribed(media: MediaType, id: &str, heartbeat_seconds: f64) -> Bytes {
    record(
        media,
        &Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(Box::new(event::Subscribed {
                framework_id: FrameworkId { value: id.into() },
                heartbeat_interval_seconds: Some(heartbeat_seconds),
                master_info: None,
            })),
            ..Default::default()
        },
    )
}

fn update(media: MediaType, task: &str) -> Bytes {
    record(
        media,
        &Event {
            r#type: Some(event::Type::Update as i32),
            update: Some(event::Update {
                status: TaskStatus {
                    task_id: TaskId { value: task.into() },
                    state: TaskState::TaskRunning as i32,
                    agent_id: Some(AgentId { value: "a1".into() }),
                    ..Default::default()
                },
            }),
            ..Default::default()
        },
    )
}

fn record(media: MediaType, event: &Event) -> Bytes {
    encode_record(&media.encode(event))
}

/// A driver with the default settings over `masters`, in that order.
fn start(
    media: MediaType,
    masters: &[SocketAddr],
) -> (
    mpsc::Receiver<SessionEvent>,
    CancellationToken,
    JoinHandle<Result<(), SessionError>>,
) {
    let info = FrameworkInfo {
        user: "u".into(),
        name: "drover".into(),
        ..Default::default()
    };
    let masters = masters
        .iter()
        .map(|addr| format!("http://{addr}/api/v1/scheduler").parse().unwrap())
        .collect();
    let session = Session::new(
        SessionConfig::new(masters, info),
        None,
        SmallRng::seed_from_u64(7),
        Instant::now(),
    );
    let shutdown = CancellationToken::new();
    let (_handle, events, task) = driver::spawn(
        session,
        DriverConfig::new(media),
        Arc::new(Metrics::default()),
        shutdown.clone(),
    );
    (events, shutdown, task)
}

/// The next session event, within `within`.
async fn next(
    events: &mut mpsc::Receiver<SessionEvent>,
    within: Duration,
    what: &str,
) -> SessionEvent {
    tokio::time::timeout(within, events.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {within:?}"))
        .unwrap()
}

/// A master that answers SUBSCRIBE with 200 and a stream id and then
/// writes nothing held the scheduler for 75 s (the old bound). With the
/// default settings the driver now gives up on it within the subscribe
/// bound and subscribes to the next master of its list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_silent_after_accepting_subscribe_is_left_for_the_next() {
    let media = MediaType::Protobuf;
    let (silent, silent_subscribes) = master(media, Arc::new(|_| Vec::new())).await;
    let (good, _) = master(
        media,
        Arc::new(move |_| vec![subscribed(media, "fw-1", 15.0)]),
    )
    .await;
    let (mut events, shutdown, task) = start(media, &[silent, good]);
    let started = Instant::now();
    let first = next(
        &mut events,
        Duration::from_secs(30),
        "SUBSCRIBED from the second master",
    )
    .await;
    assert_eq!(
        first,
        SessionEvent::Subscribed {
            framework_id: "fw-1".into()
        }
    );
    assert_eq!(silent_subscribes.load(Ordering::SeqCst), 1);
    eprintln!("left the silent master after {:?}", started.elapsed());
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// A master that announces a heartbeat interval and then stops: the
/// driver drops the stream after a few missed heartbeats and subscribes
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_whose_heartbeats_stop_is_left_within_a_few_intervals() {
    let media = MediaType::Protobuf;
    let (addr, subscribes) = master(
        media,
        Arc::new(move |_| vec![subscribed(media, "fw-1", 0.2)]),
    )
    .await;
    let (mut events, shutdown, task) = start(media, &[addr]);
    let within = Duration::from_secs(10);
    assert!(matches!(
        next(&mut events, within, "first SUBSCRIBED").await,
        SessionEvent::Subscribed { .. }
    ));
    let started = Instant::now();
    assert_eq!(
        next(&mut events, within, "disconnect").await,
        SessionEvent::Disconnected
    );
    // 5 missed intervals of 0.2 s, and some slack for a loaded machine.
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert!(matches!(
        next(&mut events, within, "second SUBSCRIBED").await,
        SessionEvent::Subscribed { .. }
    ));
    assert_eq!(subscribes.load(Ordering::SeqCst), 2);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

/// One record whose framing is intact but whose body decodes to no event
/// used to drop the whole stream (and every call in flight with its stream
/// id). It is skipped: the next event arrives on the same stream.
async fn one_undecodable_event_is_skipped(media: MediaType, garbage: &'static [u8]) {
    let (addr, subscribes) = master(
        media,
        Arc::new(move |_| {
            vec![
                subscribed(media, "fw-1", 15.0),
                encode_record(garbage),
                update(media, "job-0-0"),
            ]
        }),
    )
    .await;
    let (mut events, shutdown, task) = start(media, &[addr]);
    let within = Duration::from_secs(10);
    assert!(matches!(
        next(&mut events, within, "SUBSCRIBED").await,
        SessionEvent::Subscribed { .. }
    ));
    match next(&mut events, within, "the update after the bad record").await {
        SessionEvent::Update(u) => assert_eq!(u.task_id, "job-0-0"),
        other => panic!("expected the update on the same stream, got {other:?}"),
    }
    // Nothing else: no disconnect, no second subscription.
    let more = tokio::time::timeout(Duration::from_millis(500), events.recv()).await;
    assert!(more.is_err(), "unexpected {more:?}");
    assert_eq!(subscribes.load(Ordering::SeqCst), 1);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_undecodable_protobuf_event_is_skipped_and_the_stream_kept() {
    // Field 31 with wire type 7, which does not exist.
    one_undecodable_event_is_skipped(MediaType::Protobuf, &[0xff, 0xff, 0xff]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_undecodable_json_event_is_skipped_and_the_stream_kept() {
    one_undecodable_event_is_skipped(MediaType::Json, b"{\"type\": [not json").await;
}

/// A broken framing cannot be read past: the stream is dropped and the
/// driver subscribes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_framing_still_drops_the_stream() {
    let media = MediaType::Protobuf;
    let (addr, subscribes) = master(
        media,
        Arc::new(move |n| {
            let mut records = vec![subscribed(media, "fw-1", 15.0)];
            if n == 0 {
                records.push(Bytes::from_static(b"not-a-length\n"));
            }
            records
        }),
    )
    .await;
    let (mut events, shutdown, task) = start(media, &[addr]);
    let within = Duration::from_secs(10);
    assert!(matches!(
        next(&mut events, within, "first SUBSCRIBED").await,
        SessionEvent::Subscribed { .. }
    ));
    assert_eq!(
        next(&mut events, within, "disconnect").await,
        SessionEvent::Disconnected
    );
    assert!(matches!(
        next(&mut events, within, "second SUBSCRIBED").await,
        SessionEvent::Subscribed { .. }
    ));
    assert_eq!(subscribes.load(Ordering::SeqCst), 2);
    shutdown.cancel();
    task.await.unwrap().unwrap();
}
