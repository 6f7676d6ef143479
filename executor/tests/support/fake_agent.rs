//! A fake Mesos agent serving `/api/v1/executor` on 127.0.0.1:0, test-only:
//! streams SUBSCRIBED and whatever events the test pushes (RecordIO),
//! records SUBSCRIBE and UPDATE calls, acknowledges updates, and can be
//! restarted on the same port to play an agent restart mid-task.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use drover_proto::recordio::encode_record;
use drover_proto::v1::executor::{call, event, Call, Event};
use drover_proto::v1::{
    framework_info, AgentId, AgentInfo, ExecutorId, ExecutorInfo, FrameworkId, FrameworkInfo,
    TaskInfo, TaskStatus,
};
use drover_proto::MediaType;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// What the agent has seen; shared across restarts.
#[derive(Default)]
pub struct Record {
    /// Every SUBSCRIBE call, in order.
    pub subscribes: Vec<Call>,
    /// Every UPDATE's status, in order (re-sends included).
    pub updates: Vec<TaskStatus>,
    /// Every uuid acknowledged.
    pub acked: Vec<Vec<u8>>,
}

struct Inner {
    record: Record,
    stream: Option<(MediaType, mpsc::UnboundedSender<Bytes>)>,
    auto_ack: bool,
    killing_capable: bool,
    framework_id: String,
    executor_id: String,
    /// `FrameworkInfo.user` in SUBSCRIBED.
    framework_user: String,
}

/// The fake agent.
pub struct FakeAgent {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

fn event(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

impl Inner {
    fn push(&self, event: &Event) -> bool {
        match &self.stream {
            Some((media, tx)) => tx.send(encode_record(&media.encode(event))).is_ok(),
            None => false,
        }
    }

    fn ack(&mut self, status: &TaskStatus) {
        let uuid = status.uuid.clone().unwrap_or_default();
        let mut ack = event(event::Type::Acknowledged);
        ack.acknowledged = Some(event::Acknowledged {
            task_id: status.task_id.clone(),
            uuid: uuid.clone(),
        });
        if self.push(&ack) {
            self.record.acked.push(uuid.to_vec());
        }
    }

    fn subscribed(&self) -> Event {
        let mut capabilities = Vec::new();
        if self.killing_capable {
            let kind = framework_info::capability::Type::TaskKillingState as i32;
            capabilities.push(framework_info::Capability { r#type: Some(kind) });
        }
        let mut e = event(event::Type::Subscribed);
        e.subscribed = Some(event::Subscribed {
            executor_info: ExecutorInfo {
                executor_id: ExecutorId {
                    value: self.executor_id.clone(),
                },
                framework_id: Some(FrameworkId {
                    value: self.framework_id.clone(),
                }),
                ..Default::default()
            },
            framework_info: FrameworkInfo {
                user: self.framework_user.clone(),
                name: "drover-test".into(),
                id: Some(FrameworkId {
                    value: self.framework_id.clone(),
                }),
                capabilities,
                ..Default::default()
            },
            agent_info: AgentInfo {
                hostname: "localhost".into(),
                id: Some(AgentId {
                    value: "agent-1".into(),
                }),
                ..Default::default()
            },
            container_id: None,
        });
        e
    }
}

type Body = BoxBody<Bytes, Infallible>;

fn reply(status: u16, text: &str) -> hyper::Response<Body> {
    let mut response = hyper::Response::new(Full::new(Bytes::from(text.to_string())).boxed());
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response
}

async fn handle(
    inner: Arc<Mutex<Inner>>,
    request: hyper::Request<hyper::body::Incoming>,
) -> hyper::Response<Body> {
    let content_type = request
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let accept = request
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if request.uri().path() != "/api/v1/executor" {
        return reply(404, "no such route");
    }
    let Ok(media) = MediaType::from_content_type(content_type.as_deref()) else {
        return reply(415, "bad type");
    };
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let call: Call = match media.decode(&body) {
        Ok(call) => call,
        Err(e) => return reply(400, &e.to_string()),
    };
    match call.r#type.and_then(|t| call::Type::try_from(t).ok()) {
        Some(call::Type::Subscribe) => {
            let events = MediaType::negotiate(accept.as_deref()).unwrap();
            let (tx, rx) = mpsc::unbounded_channel();
            let mut inner = inner.lock().unwrap();
            inner.stream = Some((events, tx));
            let subscribed = inner.subscribed();
            inner.push(&subscribed);
            let carried = call
                .subscribe
                .clone()
                .unwrap_or_default()
                .unacknowledged_updates;
            inner.record.subscribes.push(call);
            // As a restarted agent re-processes carried updates and acks them.
            if inner.auto_ack {
                for update in carried {
                    inner.record.updates.push(update.status.clone());
                    inner.ack(&update.status);
                }
            }
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv()
                    .await
                    .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
            });
            let mut response = hyper::Response::new(BodyExt::boxed(StreamBody::new(stream)));
            response
                .headers_mut()
                .insert("content-type", events.as_str().parse().unwrap());
            response
        }
        Some(call::Type::Update) => {
            let status = call.update.unwrap().status;
            let mut inner = inner.lock().unwrap();
            inner.record.updates.push(status.clone());
            if inner.auto_ack {
                inner.ack(&status);
            }
            reply(202, "")
        }
        _ => reply(202, ""),
    }
}

async fn serve(listener: tokio::net::TcpListener, inner: Arc<Mutex<Inner>>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            continue;
        };
        let inner = inner.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let inner = inner.clone();
                async move { Ok::<_, Infallible>(handle(inner, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
    // Aborting this task drops the JoinSet, which aborts every connection.
}

impl FakeAgent {
    /// Starts on 127.0.0.1:0 for framework `fw` and executor `ex`.
    pub async fn start(auto_ack: bool, killing_capable: bool) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            record: Record::default(),
            stream: None,
            auto_ack,
            killing_capable,
            framework_id: "fw".into(),
            executor_id: "ex".into(),
            framework_user: "root".into(),
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Some(tokio::spawn(serve(listener, inner.clone())));
        Self {
            addr,
            inner,
            server,
        }
    }

    /// Names `user` as the framework's user in SUBSCRIBED (default root);
    /// call it before the executor subscribes.
    pub fn set_framework_user(&self, user: &str) {
        self.inner.lock().unwrap().framework_user = user.into();
    }

    /// `host:port` for MESOS_AGENT_ENDPOINT.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Pushes an event on the current subscription stream.
    pub fn send(&self, event: &Event) -> bool {
        self.inner.lock().unwrap().push(event)
    }

    /// Sends LAUNCH.
    pub fn launch(&self, task: TaskInfo) {
        let mut e = event(event::Type::Launch);
        e.launch = Some(event::Launch { task });
        assert!(self.send(&e), "no subscription to launch on");
    }

    /// Sends LAUNCH_GROUP.
    pub fn launch_group(&self, tasks: Vec<TaskInfo>) {
        let mut e = event(event::Type::LaunchGroup);
        e.launch_group = Some(event::LaunchGroup {
            task_group: drover_proto::v1::TaskGroupInfo { tasks },
        });
        assert!(self.send(&e), "no subscription to launch on");
    }

    /// Sends KILL.
    pub fn kill(&self, task_id: &str, grace: Option<Duration>) {
        let mut e = event(event::Type::Kill);
        e.kill = Some(event::Kill {
            task_id: drover_proto::v1::TaskId {
                value: task_id.into(),
            },
            kill_policy: grace.map(|g| drover_proto::v1::KillPolicy {
                grace_period: Some(drover_proto::v1::DurationInfo {
                    nanoseconds: g.as_nanos() as i64,
                }),
            }),
        });
        assert!(self.send(&e));
    }

    /// Sends SHUTDOWN.
    pub fn shutdown(&self) {
        assert!(self.send(&event(event::Type::Shutdown)));
    }

    /// Reads the record.
    pub fn with_record<T>(&self, f: impl FnOnce(&Record) -> T) -> T {
        f(&self.inner.lock().unwrap().record)
    }

    /// Polls until `f` holds (10 s at most; the test then fails on it).
    pub async fn wait_until(&self, what: &str, f: impl Fn(&Record) -> bool) {
        for _ in 0..2000 {
            if self.with_record(&f) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let updates = self.with_record(|r| {
            r.updates
                .iter()
                .map(|u| (u.task_id.value.clone(), u.state, u.message.clone()))
                .collect::<Vec<_>>()
        });
        panic!("timed out waiting for {what}; updates so far: {updates:?}");
    }

    /// Stops serving: closes the stream and every connection.
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
        self.inner.lock().unwrap().stream = None;
    }

    /// Starts again on the same port (an agent restart), acknowledging
    /// updates from now on if `auto_ack`.
    pub async fn restart(&mut self, auto_ack: bool) {
        self.stop();
        self.inner.lock().unwrap().auto_ack = auto_ack;
        // The old listener closes once its aborted task is dropped.
        let mut listener = None;
        for _ in 0..200 {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(bound) => {
                    listener = Some(bound);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        let listener = listener.expect("rebinding the agent's port");
        self.server = Some(tokio::spawn(serve(listener, self.inner.clone())));
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.stop();
    }
}
