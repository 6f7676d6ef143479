//! The Mesos driver's wire behaviour, checked byte for byte against two
//! small loopback HTTP endpoints standing in for a non-leading and a leading
//! master: it follows the 307, subscribes with the right headers and basic
//! authentication, decodes the RecordIO stream, and posts later calls on
//! another connection with `Mesos-Stream-Id` and the framework id.
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
use drover_proto::v1::{FrameworkId, FrameworkInfo};
use drover_proto::MediaType;
use drover_scheduler::mesos::driver::{self, DriverConfig};
use drover_scheduler::mesos::events::SessionEvent;
use drover_scheduler::mesos::session::{Session, SessionConfig};
use drover_scheduler::metrics::Metrics;
use rand::{rngs::SmallRng, SeedableRng};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// (Mesos-Stream-Id header, Authorization header, content type, call).
type SeenCall = (Option<String>, Option<String>, Option<String>, Call);
type Chunk = Result<Bytes, std::io::Error>;

#[derive(Clone, Default)]
struct Seen {
    calls: Arc<Mutex<Vec<SeenCall>>>,
    /// Keeps the event stream open for as long as the test runs.
    streams: Arc<Mutex<Vec<mpsc::Sender<Chunk>>>>,
    media: Option<MediaType>,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

async fn leader(State(seen): State<Seen>, headers: HeaderMap, body: Bytes) -> Response {
    let media = seen.media.unwrap();
    let content_type = header(&headers, "content-type");
    let call: Call = media.decode(&body).unwrap();
    seen.calls.lock().unwrap().push((
        header(&headers, "mesos-stream-id"),
        header(&headers, "authorization"),
        content_type,
        call.clone(),
    ));
    if call.r#type != Some(call::Type::Subscribe as i32) {
        return Response::builder()
            .status(StatusCode::ACCEPTED)
            .body(Body::empty())
            .unwrap();
    }
    let (tx, rx) = mpsc::channel(8);
    for event in [
        Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(Box::new(event::Subscribed {
                framework_id: FrameworkId {
                    value: "fw-1".into(),
                },
                heartbeat_interval_seconds: Some(15.0),
                master_info: None,
            })),
            ..Default::default()
        },
        Event {
            r#type: Some(event::Type::Heartbeat as i32),
            ..Default::default()
        },
    ] {
        // Split each record in two chunks: chunk and record boundaries differ.
        let record = encode_record(&media.encode(&event));
        let (a, b) = record.split_at(record.len() / 2);
        tx.send(Ok(Bytes::copy_from_slice(a))).await.unwrap();
        tx.send(Ok(Bytes::copy_from_slice(b))).await.unwrap();
    }
    seen.streams.lock().unwrap().push(tx);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", media.as_str())
        .header("mesos-stream-id", "stream-1")
        .body(Body::from_stream(tokio_stream_from(rx)))
        .unwrap()
}

fn tokio_stream_from(mut rx: mpsc::Receiver<Chunk>) -> impl futures_util::Stream<Item = Chunk> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn serve(router: Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn drive(media: MediaType) {
    let seen = Seen {
        media: Some(media),
        ..Default::default()
    };
    let leader_addr = serve(
        Router::new()
            .route("/master/api/v1/scheduler", post(leader))
            .with_state(seen.clone()),
    )
    .await;
    // The non-leader answers as Mesos does: protocol-relative Location.
    let location = format!("//{leader_addr}/master/api/v1/scheduler");
    let follower_addr = serve(Router::new().route(
        "/api/v1/scheduler",
        post(move || {
            let location = location.clone();
            async move {
                Response::builder()
                    .status(StatusCode::TEMPORARY_REDIRECT)
                    .header("location", location)
                    .body(Body::empty())
                    .unwrap()
            }
        }),
    ))
    .await;

    let info = FrameworkInfo {
        user: "u".into(),
        name: "drover".into(),
        ..Default::default()
    };
    let masters = vec![format!("http://{follower_addr}/api/v1/scheduler")
        .parse()
        .unwrap()];
    let session = Session::new(
        SessionConfig::new(masters, info),
        None,
        SmallRng::seed_from_u64(3),
        Instant::now(),
    );
    let mut config = DriverConfig::new(media);
    config.credentials = Some(("p".into(), "s".into()));
    let shutdown = CancellationToken::new();
    let (handle, mut events, task) = driver::spawn(
        session,
        config,
        Arc::new(Metrics::default()),
        shutdown.clone(),
    );

    let first = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("no event within 10 s")
        .unwrap();
    assert_eq!(
        first,
        SessionEvent::Subscribed {
            framework_id: "fw-1".into()
        }
    );
    handle.send(Call {
        r#type: Some(call::Type::Revive as i32),
        ..Default::default()
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while seen.calls.lock().unwrap().len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "REVIVE never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let calls = seen.calls.lock().unwrap().clone();
    let basic = Some("Basic cDpz".to_owned()); // base64("p:s")
    let (stream, auth, content_type, subscribe) = &calls[0];
    assert_eq!(subscribe.r#type, Some(call::Type::Subscribe as i32));
    assert_eq!(stream, &None, "SUBSCRIBE must not carry Mesos-Stream-Id");
    assert_eq!(auth, &basic);
    assert_eq!(content_type.as_deref(), Some(media.as_str()));
    let (stream, auth, _, revive) = &calls[1];
    assert_eq!(revive.r#type, Some(call::Type::Revive as i32));
    assert_eq!(stream.as_deref(), Some("stream-1"));
    assert_eq!(auth, &basic);
    assert_eq!(revive.framework_id.as_ref().unwrap().value, "fw-1");
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_follows_a_redirect_and_speaks_protobuf_with_stream_id_and_auth() {
    drive(MediaType::Protobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_speaks_json_the_same_way() {
    drive(MediaType::Json).await;
}
