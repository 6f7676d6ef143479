//! Test support for the tests of the `drover-agent-sim` binary alone:
//! starts it on 127.0.0.1 port 0, and a small hyper client that speaks the
//! scheduler API in either encoding (calls, and subscription streams read
//! with the RecordDecoder). Tests that run it with other processes (real
//! executors, pymesos) live in `drover-tests` (`tests/` at the workspace
//! root), with its harness.
#![allow(clippy::unwrap_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use drover_proto::recordio::{RecordDecoder, DEFAULT_MAX_RECORD_BYTES};
use drover_proto::v1::scheduler::{call, event, Call, Event};
use drover_proto::v1::{self, FrameworkInfo};
use drover_proto::MediaType;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use drover_test_support::trickle;
// Each test binary includes this module; only slow_clients.rs uses these.
#[allow(unused_imports)]
pub use trickle::{trickle, Trickled};

/// Upper bound for waiting on anything; tests fail (not hang) past it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running simulator, killed when dropped.
pub struct Sim {
    child: Child,
    pub addr: SocketAddr,
}

impl Sim {
    /// Starts the binary with `args` (plus `--listen 127.0.0.1:0`).
    pub fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_drover-agent-sim"))
            .args(["--listen", "127.0.0.1:0", "--seed", "42"])
            .args(args)
            .env("DROVER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the drover-agent-sim binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Sim { child, addr }
    }

    /// A GET to a path, returning status and body text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let r = request(self.addr, "GET", path, &[], Bytes::new()).await;
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    }

    /// A POST of a JSON body to a control path.
    pub async fn post_json(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        let r = request(
            self.addr,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Bytes::from(body.to_owned()),
        )
        .await;
        (
            r.status,
            serde_json::from_slice(&r.body).unwrap_or(serde_json::Value::Null),
        )
    }
}

impl Sim {
    /// SIGTERM, so the simulator stops its executors and removes its
    /// cgroups and temporary work dir; SIGKILL if it has not exited in 15 s.
    pub fn terminate(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// A response read whole.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// One request on a fresh connection.
pub async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let resp = send(addr, method, path, headers, body).await;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

async fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> http::Response<Incoming> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder()
        .method(method)
        .uri(path)
        .header("Host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    sender
        .send_request(req.body(Full::new(body)).unwrap())
        .await
        .unwrap()
}

/// Calls to the scheduler endpoint in one encoding.
pub fn encode_call(media: MediaType, call: &Call) -> Bytes {
    Bytes::from(media.encode(call))
}

/// An open subscription stream.
pub struct Stream {
    pub status: u16,
    pub headers: http::HeaderMap,
    body: Incoming,
    decoder: RecordDecoder,
    media: MediaType,
    pub ended: bool,
}

impl Stream {
    /// The next event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(record) = self.decoder.next_record().unwrap() {
                return Some(self.media.decode::<Event>(&record).unwrap());
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout(PATIENCE, self.body.frame())
                .await
                .expect("an event within PATIENCE")
            {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.decoder.feed(&data);
                    }
                }
                Some(Err(_)) | None => self.ended = true,
            }
        }
    }

    /// Reads events until one matches `want`; panics if the stream ends.
    pub async fn until(&mut self, mut want: impl FnMut(&Event) -> bool) -> Event {
        loop {
            let e = self.next().await.expect("the stream stays open");
            if want(&e) {
                return e;
            }
        }
    }
}

pub fn is(ty: event::Type) -> impl Fn(&Event) -> bool {
    move |e| e.r#type == Some(ty as i32)
}

/// A framework speaking the scheduler API in `media` (calls and events).
pub struct Framework {
    pub addr: SocketAddr,
    pub media: MediaType,
    pub id: String,
    pub stream_id: String,
    pub stream: Stream,
}

pub fn framework_info(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: "tester".into(),
        name: name.into(),
        ..Default::default()
    }
}

/// Opens a SUBSCRIBE stream and returns it before reading any event.
pub async fn open(
    addr: SocketAddr,
    media: MediaType,
    call: &Call,
    extra: &[(&str, &str)],
) -> Stream {
    let mut headers = vec![("Content-Type", media.as_str()), ("Accept", media.as_str())];
    headers.extend_from_slice(extra);
    let resp = send(
        addr,
        "POST",
        "/api/v1/scheduler",
        &headers,
        encode_call(media, call),
    )
    .await;
    Stream {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.into_body(),
        decoder: RecordDecoder::new(DEFAULT_MAX_RECORD_BYTES),
        media,
        ended: false,
    }
}

pub fn subscribe_call(info: FrameworkInfo) -> Call {
    Call {
        framework_id: info.id.clone(),
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(Box::new(call::Subscribe {
            framework_info: info,
            ..Default::default()
        })),
        ..Default::default()
    }
}

impl Framework {
    /// Subscribes and reads SUBSCRIBED and the first HEARTBEAT.
    pub async fn subscribe(addr: SocketAddr, media: MediaType, info: FrameworkInfo) -> Framework {
        let mut stream = open(addr, media, &subscribe_call(info), &[]).await;
        assert_eq!(stream.status, 200);
        let stream_id = stream
            .headers
            .get("Mesos-Stream-Id")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let first = stream.next().await.unwrap();
        assert_eq!(first.r#type, Some(event::Type::Subscribed as i32));
        let id = first.subscribed.unwrap().framework_id.value;
        let second = stream.next().await.unwrap();
        assert_eq!(second.r#type, Some(event::Type::Heartbeat as i32));
        Framework {
            addr,
            media,
            id,
            stream_id,
            stream,
        }
    }

    /// A call of `ty` with this framework's id; `fill` sets the payload.
    pub fn call(&self, ty: call::Type, fill: impl FnOnce(&mut Call)) -> Call {
        let mut c = Call {
            framework_id: Some(v1::FrameworkId {
                value: self.id.clone(),
            }),
            r#type: Some(ty as i32),
            ..Default::default()
        };
        fill(&mut c);
        c
    }

    /// Sends a call with this stream's id; returns the status and body.
    pub async fn send(&self, call: &Call) -> (u16, String) {
        let r = request(
            self.addr,
            "POST",
            "/api/v1/scheduler",
            &[
                ("Content-Type", self.media.as_str()),
                ("Mesos-Stream-Id", &self.stream_id),
            ],
            encode_call(self.media, call),
        )
        .await;
        (r.status, String::from_utf8_lossy(&r.body).into_owned())
    }

    /// Sends and expects 202.
    pub async fn send_ok(&self, call: &Call) {
        let (status, body) = self.send(call).await;
        assert_eq!(status, 202, "{body}");
    }

    pub async fn next_offers(&mut self) -> Vec<v1::Offer> {
        let e = self.stream.until(is(event::Type::Offers)).await;
        e.offers.unwrap().offers
    }

    /// The next UPDATE for `task` (skipping other events).
    pub async fn next_update(&mut self, task: &str) -> v1::TaskStatus {
        let task = task.to_owned();
        let e = self
            .stream
            .until(|e| {
                e.update
                    .as_ref()
                    .is_some_and(|u| u.status.task_id.value == task)
            })
            .await;
        e.update.unwrap().status
    }

    /// ACKNOWLEDGEs an update that carries a uuid.
    pub async fn ack(&self, status: &v1::TaskStatus) {
        let c = self.call(call::Type::Acknowledge, |c| {
            c.acknowledge = Some(call::Acknowledge {
                agent_id: status.agent_id.clone().unwrap(),
                task_id: status.task_id.clone(),
                uuid: status.uuid.clone().unwrap(),
            })
        });
        self.send_ok(&c).await;
    }

    /// Launches tasks on one offer.
    pub async fn launch(&self, offer: &v1::Offer, tasks: Vec<v1::TaskInfo>) {
        let c = self.call(call::Type::Accept, |c| {
            c.accept = Some(call::Accept {
                offer_ids: vec![offer.id.clone()],
                operations: vec![v1::offer::Operation {
                    r#type: Some(v1::offer::operation::Type::Launch as i32),
                    launch: Some(v1::offer::operation::Launch { task_infos: tasks }),
                    ..Default::default()
                }],
                filters: Some(v1::Filters {
                    refuse_seconds: Some(0.0),
                }),
            })
        });
        self.send_ok(&c).await;
    }
}

/// A command task using a little of `offer`.
pub fn task(id: &str, offer: &v1::Offer, cmd: &str) -> v1::TaskInfo {
    let scalar = |name: &str, value: f64| v1::Resource {
        name: name.into(),
        r#type: v1::value::Type::Scalar as i32,
        scalar: Some(v1::value::Scalar { value }),
        ..Default::default()
    };
    v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: vec![scalar("cpus", 0.1), scalar("mem", 32.0)],
        command: Some(v1::CommandInfo {
            value: Some(cmd.into()),
            shell: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn state_of(s: &v1::TaskStatus) -> v1::TaskState {
    v1::TaskState::try_from(s.state).unwrap()
}

pub fn reason_of(s: &v1::TaskStatus) -> Option<v1::task_status::Reason> {
    s.reason
        .map(|r| v1::task_status::Reason::try_from(r).unwrap())
}

pub const BOTH: [MediaType; 2] = [MediaType::Json, MediaType::Protobuf];
