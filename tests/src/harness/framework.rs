//! A minimal Mesos framework speaking the v1 scheduler API to agent-sim,
//! in either encoding: SUBSCRIBE and read the RecordIO event stream, send
//! calls with the stream id, accept offers with command tasks, acknowledge
//! updates. What the tests of real agents drive agent-sim with, where the
//! Drover scheduler would hide the protocol.
//!
//! agent-sim's own protocol tests (`agent-sim/tests/common`) keep a client
//! of their own: they test one binary and do not depend on this crate.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use drover_proto::recordio::{RecordDecoder, DEFAULT_MAX_RECORD_BYTES};
use drover_proto::v1::scheduler::{call, event, Call, Event};
use drover_proto::v1::{self, FrameworkInfo};
use drover_proto::MediaType;
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::http;

/// The longest a test waits for the next event on a stream.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// An open subscription stream.
pub struct Stream {
    pub status: u16,
    pub headers: ::http::HeaderMap,
    body: Incoming,
    decoder: RecordDecoder,
    media: MediaType,
    pub ended: bool,
}

impl Stream {
    /// The next event, or `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Event> {
        loop {
            let record = self
                .decoder
                .next_record()
                .unwrap_or_else(|e| panic!("a malformed RecordIO stream: {e}"));
            if let Some(record) = record {
                let event = self
                    .media
                    .decode::<Event>(&record)
                    .unwrap_or_else(|e| panic!("an undecodable event: {e}"));
                return Some(event);
            }
            if self.ended {
                return None;
            }
            match tokio::time::timeout(PATIENCE, self.body.frame())
                .await
                .unwrap_or_else(|_| panic!("no event within {PATIENCE:?}"))
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

    /// Reads events until one matches `want`; fails if the stream ends.
    pub async fn until(&mut self, mut want: impl FnMut(&Event) -> bool) -> Event {
        loop {
            let event = self.next().await.expect("the stream stays open");
            if want(&event) {
                return event;
            }
        }
    }
}

/// Matches events of type `ty`.
pub fn is(ty: event::Type) -> impl Fn(&Event) -> bool {
    move |e| e.r#type == Some(ty as i32)
}

/// A FrameworkInfo for user `nobody` (a user every host has: real agents
/// run tasks as their framework's user) named `name`.
pub fn framework_info(name: &str) -> FrameworkInfo {
    FrameworkInfo {
        user: "nobody".into(),
        name: name.into(),
        ..Default::default()
    }
}

/// A subscribed framework, its calls and events in `media`.
pub struct Framework {
    pub addr: SocketAddr,
    pub media: MediaType,
    pub id: String,
    pub stream_id: String,
    pub stream: Stream,
}

impl Framework {
    /// Subscribes and reads SUBSCRIBED and the first HEARTBEAT.
    pub async fn subscribe(addr: SocketAddr, media: MediaType, info: FrameworkInfo) -> Framework {
        let subscribe = Call {
            framework_id: info.id.clone(),
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(Box::new(call::Subscribe {
                framework_info: info,
                ..Default::default()
            })),
            ..Default::default()
        };
        let response = http::send(
            &addr.to_string(),
            "POST",
            "/api/v1/scheduler",
            &[("Content-Type", media.as_str()), ("Accept", media.as_str())],
            Bytes::from(media.encode(&subscribe)),
        )
        .await;
        let mut stream = Stream {
            status: response.status().as_u16(),
            headers: response.headers().clone(),
            body: response.into_body(),
            decoder: RecordDecoder::new(DEFAULT_MAX_RECORD_BYTES),
            media,
            ended: false,
        };
        assert_eq!(stream.status, 200);
        let stream_id = stream
            .headers
            .get("Mesos-Stream-Id")
            .and_then(|v| v.to_str().ok())
            .expect("SUBSCRIBE answers with a Mesos-Stream-Id")
            .to_owned();
        let first = stream.next().await.expect("a SUBSCRIBED event");
        assert_eq!(first.r#type, Some(event::Type::Subscribed as i32));
        let id = first
            .subscribed
            .expect("SUBSCRIBED carries its payload")
            .framework_id
            .value;
        let second = stream.next().await.expect("a HEARTBEAT event");
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
        let reply = http::request(
            &self.addr.to_string(),
            "POST",
            "/api/v1/scheduler",
            &[
                ("Content-Type", self.media.as_str()),
                ("Mesos-Stream-Id", &self.stream_id),
            ],
            Bytes::from(self.media.encode(call)),
        )
        .await;
        (
            reply.status,
            String::from_utf8_lossy(&reply.body).into_owned(),
        )
    }

    /// Sends and expects 202.
    pub async fn send_ok(&self, call: &Call) {
        let (status, body) = self.send(call).await;
        assert_eq!(status, 202, "{body}");
    }

    /// The next OFFERS event's offers (skipping other events).
    pub async fn next_offers(&mut self) -> Vec<v1::Offer> {
        let e = self.stream.until(is(event::Type::Offers)).await;
        e.offers.expect("OFFERS carries its payload").offers
    }

    /// The next UPDATE for `task` (skipping other events).
    pub async fn next_update(&mut self, task: &str) -> v1::TaskStatus {
        let e = self
            .stream
            .until(|e| {
                e.update
                    .as_ref()
                    .is_some_and(|u| u.status.task_id.value == task)
            })
            .await;
        e.update.expect("the event matched on its update").status
    }

    /// ACKNOWLEDGEs an update that carries a uuid.
    pub async fn ack(&self, status: &v1::TaskStatus) {
        let c = self.call(call::Type::Acknowledge, |c| {
            c.acknowledge = Some(call::Acknowledge {
                agent_id: status
                    .agent_id
                    .clone()
                    .expect("an update to acknowledge names its agent"),
                task_id: status.task_id.clone(),
                uuid: status
                    .uuid
                    .clone()
                    .expect("an update to acknowledge has a uuid"),
            })
        });
        self.send_ok(&c).await;
    }

    /// Launches tasks on one offer, refusing nothing afterwards.
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

/// A shell command task `id` using a little of `offer` (0.1 cpu, 32 MB).
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

/// An update's state; fails on a value outside the enum.
pub fn state_of(s: &v1::TaskStatus) -> v1::TaskState {
    v1::TaskState::try_from(s.state).unwrap_or_else(|_| panic!("an unknown TaskState {}", s.state))
}

/// An update's reason, if it has one; fails on a value outside the enum.
pub fn reason_of(s: &v1::TaskStatus) -> Option<v1::task_status::Reason> {
    s.reason.map(|r| {
        v1::task_status::Reason::try_from(r).unwrap_or_else(|_| panic!("an unknown Reason {r}"))
    })
}
