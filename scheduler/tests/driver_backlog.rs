//! Regression test for issue 7's lost 38,680 of 100,000 tasks: the driver
//! must read the event stream as fast as the master writes it, even while
//! the engine is busy. A master bounds what it buffers per subscriber
//! (agent-sim disconnects a subscriber `--stream-buffer` events behind); a
//! driver that stops reading when its engine lags gets disconnected, and
//! every call queued with the old stream id is refused: ACCEPTs,
//! ACKNOWLEDGEs, all.
//!
//! Here a loopback master writes a burst of updates far larger than any
//! socket buffer while the test does not consume a single session event;
//! the master must still get the whole burst out.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use drover_proto::recordio::encode_record;
use drover_proto::v1::scheduler::{event, Event};
use drover_proto::v1::{AgentId, FrameworkId, FrameworkInfo, TaskId, TaskState, TaskStatus};
use drover_proto::MediaType;
use drover_scheduler::mesos::calls;
use drover_scheduler::mesos::driver::{self, DriverConfig};
use drover_scheduler::mesos::events::SessionEvent;
use drover_scheduler::mesos::session::{Session, SessionConfig};
use drover_scheduler::metrics::Metrics;
use rand::{rngs::SmallRng, SeedableRng};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;

type Chunk = Result<Bytes, std::io::Error>;

/// Updates in the burst: ~1 KiB each, so ~60 MiB, beyond what loopback
/// socket buffers and any small queue can hide.
const BURST: usize = 60_000;

fn update(i: usize) -> Event {
    Event {
        r#type: Some(event::Type::Update as i32),
        update: Some(event::Update {
            status: TaskStatus {
                task_id: TaskId {
                    value: format!("job-{i}-0"),
                },
                state: TaskState::TaskStarting as i32,
                agent_id: Some(AgentId { value: "a1".into() }),
                message: Some("x".repeat(1000)),
                ..Default::default()
            },
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_drains_a_burst_the_engine_has_not_read_yet() {
    let media = MediaType::Protobuf;
    let (addr, written_rx, server) = bursting_master(media, None, Arc::new(Notify::new())).await;

    let session = session_with(addr);
    let shutdown = CancellationToken::new();
    let (_handle, mut events, task) = driver::spawn(
        session,
        DriverConfig::new(media),
        Arc::new(Metrics::default()),
        shutdown.clone(),
    );

    // Nothing is read from `events` until the master has written it all.
    let drained = tokio::time::timeout(Duration::from_secs(60), written_rx).await;
    assert!(
        matches!(drained, Ok(Ok(()))),
        "the master could not write its burst: the driver stopped reading the stream"
    );

    let mut updates = 0;
    let mut subscribed = false;
    while updates < BURST {
        match events.recv().await.unwrap() {
            SessionEvent::Subscribed { .. } => subscribed = true,
            SessionEvent::Update(u) => {
                assert_eq!(u.task_id, format!("job-{updates}-0"), "in stream order");
                updates += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(subscribed);
    shutdown.cancel();
    task.await.unwrap().unwrap();
    server.abort();
}

/// A master whose SUBSCRIBE answer writes `BURST` updates (the receiver
/// fires once all are written), once `start` is notified if given, and
/// which never answers any other call (`called` is notified of each).
async fn bursting_master(
    media: MediaType,
    start: Option<Arc<Notify>>,
    called: Arc<Notify>,
) -> (
    std::net::SocketAddr,
    oneshot::Receiver<()>,
    tokio::task::JoinHandle<()>,
) {
    let (written_tx, written_rx) = oneshot::channel::<()>();
    let written_tx = Arc::new(std::sync::Mutex::new(Some(written_tx)));
    let router = Router::new().route(
        "/api/v1/scheduler",
        post(move |headers: axum::http::HeaderMap| {
            let written_tx = written_tx.clone();
            let (start, called) = (start.clone(), called.clone());
            async move {
                if headers.contains_key("mesos-stream-id") {
                    // A call on the stream: never answered.
                    called.notify_one();
                    std::future::pending::<()>().await;
                }
                // A one-slot body channel: the writer only gets ahead when
                // the driver reads.
                let (tx, mut rx) = mpsc::channel::<Chunk>(1);
                tokio::spawn(async move {
                    let subscribed = Event {
                        r#type: Some(event::Type::Subscribed as i32),
                        subscribed: Some(Box::new(event::Subscribed {
                            framework_id: FrameworkId {
                                value: "fw-1".into(),
                            },
                            heartbeat_interval_seconds: Some(600.0),
                            master_info: None,
                        })),
                        ..Default::default()
                    };
                    let record = encode_record(&media.encode(&subscribed));
                    tx.send(Ok(record)).await.unwrap();
                    if let Some(start) = start {
                        start.notified().await;
                    }
                    for i in 0..BURST {
                        let record = encode_record(&media.encode(&update(i)));
                        if tx.send(Ok(record)).await.is_err() {
                            return;
                        }
                    }
                    if let Some(done) = written_tx.lock().unwrap().take() {
                        let _ = done.send(());
                    }
                    // Keep the stream open until the test ends.
                    tx.closed().await;
                });
                Response::builder()
                    .status(StatusCode::OK)
                    .header("content-type", media.as_str())
                    .header("mesos-stream-id", "stream-1")
                    .body(Body::from_stream(futures_util::stream::poll_fn(
                        move |cx| rx.poll_recv(cx),
                    )))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, written_rx, server)
}

/// The master stops answering calls, so the driver's outbox fills; the
/// driver must still read the burst that follows (it once waited on the
/// full outbox, stopped reading the stream, and agent-sim dropped the
/// subscription).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_the_master_does_not_answer_never_stop_the_stream() {
    let media = MediaType::Protobuf;
    let (start, called) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (addr, written_rx, server) =
        bursting_master(media, Some(start.clone()), called.clone()).await;
    let session = session_with(addr);
    let mut config = DriverConfig::new(media);
    config.call_queue = 4;
    config.call_window = 1;
    let shutdown = CancellationToken::new();
    let (handle, mut events, task) = driver::spawn(
        session,
        config,
        Arc::new(Metrics::default()),
        shutdown.clone(),
    );
    match events.recv().await.unwrap() {
        SessionEvent::Subscribed { .. } => {}
        other => panic!("unexpected {other:?}"),
    }
    // More acknowledgements than the window and the queues hold, paced
    // so that the driver takes each before the next; the burst starts once
    // they are sent and the master holds the first.
    for i in 0..20 {
        let ack = calls::acknowledge("a1".into(), format!("job-{i}-0"), Bytes::from_static(b"u"));
        handle.send(ack);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    called.notified().await;
    start.notify_one();
    let drained = tokio::time::timeout(Duration::from_secs(20), written_rx).await;
    assert!(
        matches!(drained, Ok(Ok(()))),
        "the master could not write its burst: the driver stopped reading the stream"
    );
    let mut updates = 0;
    while updates < BURST {
        match events.recv().await.unwrap() {
            SessionEvent::Update(u) => {
                assert_eq!(u.task_id, format!("job-{updates}-0"), "in stream order");
                updates += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    shutdown.cancel();
    task.await.unwrap().unwrap();
    server.abort();
}

/// A fresh session for the master at `addr`.
fn session_with(addr: std::net::SocketAddr) -> Session {
    let info = FrameworkInfo {
        user: "u".into(),
        name: "drover".into(),
        ..Default::default()
    };
    let masters = vec![format!("http://{addr}/api/v1/scheduler").parse().unwrap()];
    Session::new(
        SessionConfig::new(masters, info),
        None,
        SmallRng::seed_from_u64(1),
        Instant::now(),
    )
}
