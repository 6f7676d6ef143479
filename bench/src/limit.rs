//! The no-policy limit: the least a framework can do to launch N tasks.
//! It subscribes, and fills every offer first-fit with ready-made
//! TaskInfos (no store, no policy, no placement), acknowledges every
//! update, and stops when all N are RUNNING. What it reaches is what
//! agent-sim and the wire allow; Drover is judged as a fraction of it.

use crate::fleet::Fleet;
use crate::http::Http;
use crate::stats::unix_now;
use anyhow::{bail, Context};
use bytes::Bytes;
use drover_proto::v1::scheduler::{event, Call, Event};
use drover_proto::v1::{
    CommandInfo, FrameworkId, FrameworkInfo, Offer, Resource, TaskId, TaskInfo, TaskState,
};
use drover_proto::{MediaType, RecordDecoder};
use drover_scheduler::mesos::calls;
use http_body_util::{BodyExt, Full};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Mutex};

/// Concurrent call senders (HTTP/1.1 keeps one request per connection).
const SENDERS: usize = 4;

/// The task shape of every launch scenario.
pub const CPUS: f64 = 0.1;
/// Memory per task, MB.
pub const MEM: f64 = 32.0;

/// Launches `n` long-running tasks on `fleet`; returns the subscribe time
/// (Unix seconds), when it saw the last RUNNING, and the tasks' RUNNING
/// times, read while still subscribed.
pub async fn run(
    http: &Http,
    fleet: &Fleet,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<(f64, f64, Vec<f64>)> {
    let media = MediaType::Protobuf;
    let url = format!("{}/api/v1/scheduler", fleet.master);
    let info = FrameworkInfo {
        user: "bench".into(),
        name: "no-policy-limit".into(),
        ..Default::default()
    };
    let created = unix_now();
    let req = http::Request::post(&url)
        .header(http::header::CONTENT_TYPE, media.as_str())
        .header(http::header::ACCEPT, media.as_str())
        .body(Full::new(Bytes::from(
            media.encode(&calls::subscribe(&info, None)),
        )))?;
    let resp = http.send(req).await?;
    if !resp.status().is_success() {
        bail!("SUBSCRIBE answered {}", resp.status());
    }
    let stream_id = resp
        .headers()
        .get("Mesos-Stream-Id")
        .and_then(|v| v.to_str().ok())
        .context("no Mesos-Stream-Id")?
        .to_owned();
    let mut body = resp.into_body();
    let (tx, rx) = mpsc::unbounded_channel::<Call>();
    let rx = Arc::new(Mutex::new(rx));
    let mut senders = Vec::new();
    for _ in 0..SENDERS {
        let (rx, http, url, stream_id) = (rx.clone(), http.clone(), url.clone(), stream_id.clone());
        senders.push(tokio::spawn(async move {
            loop {
                let Some(call) = rx.lock().await.recv().await else {
                    break;
                };
                let req = http::Request::post(&url)
                    .header(http::header::CONTENT_TYPE, media.as_str())
                    .header("Mesos-Stream-Id", &stream_id)
                    .body(Full::new(Bytes::from(media.encode(&call))));
                if let Ok(req) = req {
                    if let Ok(resp) = http.send(req).await {
                        let _ = resp.into_body().collect().await;
                    }
                }
            }
        }));
    }
    let deadline = Instant::now() + timeout;
    let mut decoder = RecordDecoder::new(drover_proto::recordio::DEFAULT_MAX_RECORD_BYTES);
    let mut client = Client {
        framework_id: None,
        next_task: 0,
        n,
        running: HashSet::new(),
        tx,
    };
    let result = async {
        while client.running.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match tokio::time::timeout(left, body.frame()).await {
                Err(_) => bail!("timed out with {} of {n} RUNNING", client.running.len()),
                Ok(None) => bail!("the master closed the subscription"),
                Ok(Some(frame)) => frame?,
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            decoder.feed(&data);
            while let Some(record) = decoder.next_record()? {
                client.on_event(media.decode::<Event>(&record)?);
            }
        }
        Ok(())
    }
    .await;
    let observed = unix_now();
    let times = match result {
        Ok(()) => fleet.running_times(http).await,
        Err(e) => Err(e),
    };
    drop(client);
    for s in senders {
        s.abort();
    }
    Ok((created, observed, times?))
}

struct Client {
    framework_id: Option<FrameworkId>,
    next_task: usize,
    n: usize,
    running: HashSet<String>,
    tx: mpsc::UnboundedSender<Call>,
}

impl Client {
    fn on_event(&mut self, event: Event) {
        match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
            Some(event::Type::Subscribed) => {
                self.framework_id = event.subscribed.map(|s| s.framework_id);
            }
            Some(event::Type::Offers) => {
                for offer in event.offers.map(|o| o.offers).unwrap_or_default() {
                    let tasks = self.fill(&offer);
                    let ids = vec![offer.id.value.clone()];
                    let call = if tasks.is_empty() {
                        calls::decline(ids, Duration::from_secs(60))
                    } else {
                        calls::accept(ids, tasks, Duration::ZERO)
                    };
                    self.send(call);
                }
            }
            Some(event::Type::Update) => {
                let Some(status) = event.update.map(|u| u.status) else {
                    return;
                };
                if status.state == TaskState::TaskRunning as i32 {
                    self.running.insert(status.task_id.value.clone());
                }
                if let (Some(uuid), Some(agent)) = (status.uuid, status.agent_id) {
                    self.send(calls::acknowledge(agent.value, status.task_id.value, uuid));
                }
            }
            _ => {}
        }
    }

    fn send(&self, mut call: Call) {
        call.framework_id = self.framework_id.clone();
        let _ = self.tx.send(call);
    }

    /// Ready-made TaskInfos, first-fit, until the offer or the tasks run out.
    fn fill(&mut self, offer: &Offer) -> Vec<TaskInfo> {
        let (Some(cpus), Some(mem)) = (scalar(offer, "cpus"), scalar(offer, "mem")) else {
            return Vec::new();
        };
        let (mut cpu_left, mut mem_left) = (value(cpus), value(mem));
        let mut tasks = Vec::new();
        while self.next_task < self.n && cpu_left >= CPUS - 1e-6 && mem_left >= MEM - 1e-6 {
            let id = format!("limit-{}", self.next_task);
            self.next_task += 1;
            cpu_left -= CPUS;
            mem_left -= MEM;
            tasks.push(TaskInfo {
                name: id.clone(),
                task_id: TaskId { value: id },
                agent_id: offer.agent_id.clone(),
                resources: vec![with_value(cpus, CPUS), with_value(mem, MEM)],
                command: Some(CommandInfo {
                    value: Some("sleep 100000".into()),
                    shell: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        tasks
    }
}

fn scalar<'a>(offer: &'a Offer, name: &str) -> Option<&'a Resource> {
    offer
        .resources
        .iter()
        .find(|r| r.name == name && r.scalar.is_some())
}

fn value(r: &Resource) -> f64 {
    r.scalar.as_ref().map_or(0.0, |s| s.value)
}

/// The offered resource (role, allocation info and all) with a new amount.
fn with_value(r: &Resource, v: f64) -> Resource {
    let mut out = r.clone();
    if let Some(s) = out.scalar.as_mut() {
        s.value = v;
    }
    out
}
