//! The drive half of the master: one tokio task owns the [`Master`] state
//! machine, feeds it commands from HTTP handlers and its own deadlines, and
//! carries out its effects by writing RecordIO-framed events into each
//! subscription's bounded channel. It holds no protocol logic.
//!
//! A subscription's HTTP body ([`EventStream`]) holds the channel's receiver
//! and a guard; when hyper drops the body (the client went away) the guard
//! wakes a watcher that reports `Disconnected`. When the master closes a
//! stream, the driver drops the sender and the body ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use drover_proto::recordio::encode_record;
use drover_proto::v1::scheduler::{call, Call};
use drover_proto::MediaType;
use hyper::body::{Body, Frame};
use tokio::sync::{mpsc, oneshot};

use super::state::{ConnId, Effect, Master};
use super::{CallError, CallOk};

/// Work for the master task that needs `&mut Master`; returns effects.
pub type Job = Box<dyn FnOnce(&mut Master, Instant) -> Vec<Effect> + Send>;

enum Command {
    Subscribe {
        subscribe: Box<call::Subscribe>,
        media: MediaType,
        reply: oneshot::Sender<(String, EventStream)>,
    },
    Call {
        call: Box<Call>,
        stream_id: Option<String>,
        reply: oneshot::Sender<Result<CallOk, CallError>>,
    },
    Disconnected {
        conn: ConnId,
    },
    Run(Job),
}

/// The error when the master task has stopped (only during shutdown).
#[derive(Debug, thiserror::Error)]
#[error("the master task has stopped")]
pub struct MasterGone;

/// A cloneable handle to the master task.
#[derive(Clone)]
pub struct MasterHandle {
    tx: mpsc::Sender<Command>,
}

/// Driver settings.
#[derive(Debug, Clone, Copy)]
pub struct DriverConfig {
    /// Events buffered per subscription before a slow reader is cut off
    /// (Mesos buffers without bound; a bound keeps one stuck framework from
    /// holding the simulator's memory).
    pub stream_buffer: usize,
    /// Commands waiting for the master task.
    pub command_buffer: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            stream_buffer: 16 * 1024,
            command_buffer: 4096,
        }
    }
}

/// Starts the master task; it ends when every handle is dropped.
pub fn spawn(master: Master, config: DriverConfig) -> MasterHandle {
    let (tx, rx) = mpsc::channel(config.command_buffer);
    let handle = MasterHandle { tx: tx.clone() };
    let driver = Driver {
        master,
        conns: HashMap::new(),
        next_conn: 1,
        config,
        self_tx: tx.downgrade(),
    };
    tokio::spawn(driver.run(rx));
    handle
}

/// Seconds since the Unix epoch, read once to anchor the master's timestamps.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl MasterHandle {
    /// SUBSCRIBE: returns the stream id and the event stream body.
    pub async fn subscribe(
        &self,
        subscribe: call::Subscribe,
        media: MediaType,
    ) -> Result<(String, EventStream), MasterGone> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Subscribe {
                subscribe: Box::new(subscribe),
                media,
                reply,
            })
            .await
            .map_err(|_| MasterGone)?;
        rx.await.map_err(|_| MasterGone)
    }

    /// Any other call.
    pub async fn call(
        &self,
        call: Call,
        stream_id: Option<String>,
    ) -> Result<Result<CallOk, CallError>, MasterGone> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Call {
            call: Box::new(call),
            stream_id,
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| MasterGone)?;
        rx.await.map_err(|_| MasterGone)
    }

    /// Runs `f` on the master (inspection or a fault) and returns its value.
    pub async fn with<R, F>(&self, f: F) -> Result<R, MasterGone>
    where
        R: Send + 'static,
        F: FnOnce(&mut Master, Instant) -> (R, Vec<Effect>) + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        let job: Job = Box::new(move |m, now| {
            let (value, effects) = f(m, now);
            let _ = reply.send(value);
            effects
        });
        self.tx
            .send(Command::Run(job))
            .await
            .map_err(|_| MasterGone)?;
        rx.await.map_err(|_| MasterGone)
    }
}

struct Driver {
    master: Master,
    conns: HashMap<ConnId, (mpsc::Sender<Bytes>, MediaType)>,
    next_conn: ConnId,
    config: DriverConfig,
    self_tx: mpsc::WeakSender<Command>,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        loop {
            let deadline = self.master.next_deadline();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                () = sleep => {
                    let fx = self.master.on_tick(Instant::now());
                    self.apply(fx);
                }
            }
        }
    }

    fn on_command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Subscribe {
                subscribe,
                media,
                reply,
            } => {
                let conn = self.next_conn;
                self.next_conn += 1;
                let (tx, rx) = mpsc::channel(self.config.stream_buffer);
                let (guard, dropped) = oneshot::channel::<()>();
                self.conns.insert(conn, (tx, media));
                if let Some(self_tx) = self.self_tx.upgrade() {
                    tokio::spawn(async move {
                        let _ = dropped.await;
                        let _ = self_tx.send(Command::Disconnected { conn }).await;
                    });
                }
                let (stream_id, fx) = self.master.on_subscribe(conn, *subscribe, now);
                self.apply(fx);
                // If the client already left, dropping the body reports it.
                let _ = reply.send((stream_id, EventStream { rx, _guard: guard }));
            }
            Command::Call {
                call,
                stream_id,
                reply,
            } => {
                let (result, fx) = self.master.on_call(*call, stream_id.as_deref(), now);
                self.apply(fx);
                let _ = reply.send(result);
            }
            Command::Disconnected { conn } => {
                self.conns.remove(&conn);
                let fx = self.master.on_disconnected(conn, now);
                self.apply(fx);
            }
            Command::Run(job) => {
                let fx = job(&mut self.master, now);
                self.apply(fx);
            }
        }
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        let mut queue = std::collections::VecDeque::from(effects);
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Send { conn, event } => {
                    let Some((tx, media)) = self.conns.get(&conn) else {
                        continue;
                    };
                    let record = encode_record(&media.encode(&*event));
                    self.master.counters.events_sent += 1;
                    if tx.try_send(record).is_err() {
                        tracing::warn!(
                            conn,
                            "subscription cannot keep up or is gone; disconnecting it"
                        );
                        self.conns.remove(&conn);
                        queue.extend(self.master.on_disconnected(conn, Instant::now()));
                    }
                }
                Effect::Close { conn } => {
                    self.conns.remove(&conn);
                }
            }
        }
    }
}

/// The body of a SUBSCRIBE response: RecordIO records until the master
/// closes the stream. Dropping it tells the master the client left.
pub struct EventStream {
    rx: mpsc::Receiver<Bytes>,
    _guard: oneshot::Sender<()>,
}

impl Body for EventStream {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx.poll_recv(cx).map(|r| r.map(|b| Ok(Frame::data(b))))
    }
}
