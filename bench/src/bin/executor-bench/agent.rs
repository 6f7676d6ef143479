//! The benchmark's agent: just enough of `/api/v1/executor` on 127.0.0.1:0
//! to drive one real executor: it streams SUBSCRIBED and the events the
//! benchmark pushes (protobuf, RecordIO), acknowledges every UPDATE at once
//! and hands each status to the benchmark with the instant it arrived.
//!
//! It is not the test suite's fake agent (no restarts, no recording, no
//! JSON): timing is its only job, so it does as little as it can per call.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use drover_proto::recordio::encode_record;
use drover_proto::v1::executor::{call, event, Call, Event};
use drover_proto::v1::{
    AgentId, AgentInfo, DurationInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo,
    KillPolicy, TaskId, TaskInfo, TaskStatus,
};
use drover_proto::MediaType;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, watch};

/// The framework and executor ids the benchmark's executor runs with.
pub const FRAMEWORK_ID: &str = "bench-framework";
/// See [`FRAMEWORK_ID`].
pub const EXECUTOR_ID: &str = "bench-executor";

/// An UPDATE as the agent received it.
#[derive(Debug)]
pub struct Arrival {
    /// The status the executor sent.
    pub status: TaskStatus,
    /// When its POST reached the agent.
    pub at: Instant,
}

type Stream = mpsc::UnboundedSender<Bytes>;

struct Shared {
    stream: Mutex<Option<Stream>>,
    arrivals: mpsc::UnboundedSender<Arrival>,
    subscribed: watch::Sender<u32>,
}

impl Shared {
    fn push(&self, event: &Event) -> bool {
        let record = encode_record(&MediaType::Protobuf.encode(event));
        let stream = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
        stream.as_ref().is_some_and(|tx| tx.send(record).is_ok())
    }
}

/// The running agent; stops serving when dropped.
pub struct BenchAgent {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for BenchAgent {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn typed(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn subscribed() -> Event {
    let mut e = typed(event::Type::Subscribed);
    let framework_id = FrameworkId {
        value: FRAMEWORK_ID.into(),
    };
    e.subscribed = Some(event::Subscribed {
        executor_info: ExecutorInfo {
            executor_id: ExecutorId {
                value: EXECUTOR_ID.into(),
            },
            framework_id: Some(framework_id.clone()),
            ..Default::default()
        },
        framework_info: FrameworkInfo {
            user: "root".into(),
            name: "drover-executor-bench".into(),
            id: Some(framework_id),
            ..Default::default()
        },
        agent_info: AgentInfo {
            hostname: "localhost".into(),
            id: Some(AgentId {
                value: "bench-agent".into(),
            }),
            ..Default::default()
        },
        container_id: None,
    });
    e
}

/// The subscription's body: records as the benchmark pushes them.
struct EventStream(mpsc::UnboundedReceiver<Bytes>);

impl hyper::body::Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0
            .poll_recv(cx)
            .map(|record| record.map(|bytes| Ok(Frame::data(bytes))))
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn empty(status: hyper::StatusCode) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Full::new(Bytes::new()).boxed());
    *response.status_mut() = status;
    response
}

async fn handle(
    shared: Arc<Shared>,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Body> {
    if request.uri().path() != "/api/v1/executor" {
        return empty(hyper::StatusCode::NOT_FOUND);
    }
    let Ok(body) = request.into_body().collect().await else {
        return empty(hyper::StatusCode::BAD_REQUEST);
    };
    let at = Instant::now();
    let Ok(call) = MediaType::Protobuf.decode::<Call>(&body.to_bytes()) else {
        return empty(hyper::StatusCode::BAD_REQUEST);
    };
    match call.r#type.and_then(|t| call::Type::try_from(t).ok()) {
        Some(call::Type::Subscribe) => {
            let (tx, rx) = mpsc::unbounded_channel();
            *shared.stream.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
            shared.push(&subscribed());
            shared.subscribed.send_modify(|n| *n += 1);
            let mut response = hyper::Response::new(EventStream(rx).boxed());
            response.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(MediaType::Protobuf.as_str()),
            );
            response
        }
        Some(call::Type::Update) => {
            let Some(update) = call.update else {
                return empty(hyper::StatusCode::BAD_REQUEST);
            };
            let status = update.status;
            let mut ack = typed(event::Type::Acknowledged);
            ack.acknowledged = Some(event::Acknowledged {
                task_id: status.task_id.clone(),
                uuid: status.uuid.clone().unwrap_or_default(),
            });
            shared.push(&ack);
            let _ = shared.arrivals.send(Arrival { status, at });
            empty(hyper::StatusCode::ACCEPTED)
        }
        _ => empty(hyper::StatusCode::ACCEPTED),
    }
}

async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let _ = socket.set_nodelay(true);
        let shared = shared.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
        // Reap finished connections so the set does not grow.
        while connections.try_join_next().is_some() {}
    }
}

impl BenchAgent {
    /// Starts serving on 127.0.0.1:0; UPDATEs arrive on the returned channel.
    pub async fn start() -> std::io::Result<(Self, mpsc::UnboundedReceiver<Arrival>)> {
        let (arrivals, received) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            stream: Mutex::new(None),
            arrivals,
            subscribed: watch::channel(0).0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = tokio::spawn(serve(listener, shared.clone()));
        Ok((
            Self {
                addr,
                shared,
                server,
            },
            received,
        ))
    }

    /// `host:port` for MESOS_AGENT_ENDPOINT.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Waits until the executor has subscribed, `limit` at most.
    pub async fn subscribed(&self, limit: Duration) -> bool {
        let mut seen = self.shared.subscribed.subscribe();
        tokio::time::timeout(limit, seen.wait_for(|n| *n > 0))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Pushes LAUNCH; returns the instant it was handed to the stream, or
    /// `None` without a subscription.
    pub fn launch(&self, task: TaskInfo) -> Option<Instant> {
        let mut e = typed(event::Type::Launch);
        e.launch = Some(event::Launch { task });
        let at = Instant::now();
        self.shared.push(&e).then_some(at)
    }

    /// Pushes KILL with a grace period; returns when it was handed over.
    pub fn kill(&self, task_id: &str, grace: Duration) -> Option<Instant> {
        let mut e = typed(event::Type::Kill);
        e.kill = Some(event::Kill {
            task_id: TaskId {
                value: task_id.into(),
            },
            kill_policy: Some(KillPolicy {
                grace_period: Some(DurationInfo {
                    nanoseconds: i64::try_from(grace.as_nanos()).unwrap_or(i64::MAX),
                }),
            }),
        });
        let at = Instant::now();
        self.shared.push(&e).then_some(at)
    }

    /// Pushes SHUTDOWN.
    pub fn shutdown(&self) -> bool {
        self.shared.push(&typed(event::Type::Shutdown))
    }
}
