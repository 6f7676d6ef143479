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

use bytes::{Bytes, BytesMut};
use drover_proto::recordio::encode_record;
use drover_proto::v1::scheduler::{call, Call};
use drover_proto::MediaType;
use hyper::body::{Body, Frame};
use tokio::sync::{mpsc, oneshot};

use super::journal::{JournalDir, JournalError, JournalWriter, Recovered};
use super::machine::{Effect, Master};
use super::{Adopted, CallError, CallOk};
use crate::agent::executor_call::ExecutorCallError;
use crate::agent::launch::ExecutorExit;
use crate::agent::processes::Processes;
use crate::ids::{AgentIndex, ConnId};

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
    ExecutorSubscribe {
        scope: Option<AgentIndex>,
        call: Box<drover_proto::v1::executor::Call>,
        media: MediaType,
        reply: oneshot::Sender<Result<EventStream, ExecutorCallError>>,
    },
    ExecutorCall {
        scope: Option<AgentIndex>,
        call: Box<drover_proto::v1::executor::Call>,
        reply: oneshot::Sender<Result<(), ExecutorCallError>>,
    },
    ExecutorExited {
        container_id: String,
        exit: ExecutorExit,
    },
    Run(Job),
    TakeOver {
        recovered: Box<Recovered>,
        dir: JournalDir,
        reply: oneshot::Sender<Result<Adopted, JournalError>>,
    },
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
    /// holding the simulator's memory). Default 1,048,576: the master
    /// itself answers a reconciliation of N tasks with N events at once
    /// (and its tasks' updates with as many again), which no reader drains
    /// as fast as they are made; a bound of 16,384 cut off every framework
    /// that reconciled more tasks than that, which Mesos never does.
    pub stream_buffer: usize,
    /// Commands waiting for the master task.
    pub command_buffer: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        DriverConfig {
            stream_buffer: 1 << 20,
            command_buffer: 4096,
        }
    }
}

/// Starts the master task; it ends when every handle is dropped.
pub fn spawn(master: Master, config: DriverConfig) -> MasterHandle {
    spawn_with_processes(master, config, None)
}

/// Starts the master task with the processes of the real agents, which
/// it launches and kills as the master says.
pub fn spawn_with_processes(
    master: Master,
    config: DriverConfig,
    processes: Option<Processes>,
) -> MasterHandle {
    let (tx, rx) = mpsc::channel(config.command_buffer);
    let handle = MasterHandle { tx: tx.clone() };
    let driver = Driver {
        master,
        conns: HashMap::new(),
        next_conn: 1,
        config,
        self_tx: tx.downgrade(),
        processes,
        journal: None,
        journal_frames: Vec::new(),
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

    /// An executor's SUBSCRIBE (to the agent at `scope`, or any agent):
    /// the event stream, or why it is refused.
    pub async fn executor_subscribe(
        &self,
        scope: Option<AgentIndex>,
        call: drover_proto::v1::executor::Call,
        media: MediaType,
    ) -> Result<Result<EventStream, ExecutorCallError>, MasterGone> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::ExecutorSubscribe {
            scope,
            call: Box::new(call),
            media,
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| MasterGone)?;
        rx.await.map_err(|_| MasterGone)
    }

    /// Any other executor call.
    pub async fn executor_call(
        &self,
        scope: Option<AgentIndex>,
        call: drover_proto::v1::executor::Call,
    ) -> Result<Result<(), ExecutorCallError>, MasterGone> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::ExecutorCall {
            scope,
            call: Box::new(call),
            reply,
        };
        self.tx.send(cmd).await.map_err(|_| MasterGone)?;
        rx.await.map_err(|_| MasterGone)
    }

    /// `--state-dir`: adopts what the journal said the previous leader had
    /// (see `master::takeover`), starts this master's own journal in
    /// `dir` with a snapshot of it, and from then on journals every turn.
    pub async fn take_over(
        &self,
        recovered: Recovered,
        dir: JournalDir,
    ) -> Result<Result<Adopted, JournalError>, MasterGone> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::TakeOver {
            recovered: Box::new(recovered),
            dir,
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
    processes: Option<Processes>,
    /// The journal, once this master leads with `--state-dir`.
    journal: Option<JournalWriter>,
    /// A turn's frames, reused from turn to turn.
    journal_frames: Vec<u8>,
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
                let stream = self.open_stream(conn, media);
                let (stream_id, fx) = self.master.on_subscribe(conn, *subscribe, now);
                self.apply(fx);
                // If the client already left, dropping the body reports it.
                let _ = reply.send((stream_id, stream));
            }
            Command::ExecutorSubscribe {
                scope,
                call,
                media,
                reply,
            } => {
                let conn = self.next_conn;
                self.next_conn += 1;
                let stream = self.open_stream(conn, media);
                let (result, fx) = self.master.on_executor_subscribe(scope, conn, *call, now);
                if result.is_err() {
                    self.conns.remove(&conn);
                }
                self.apply(fx);
                let _ = reply.send(result.map(|()| stream));
            }
            Command::ExecutorCall { scope, call, reply } => {
                let (result, fx) = self.master.on_executor_call(scope, *call, now);
                self.apply(fx);
                let _ = reply.send(result);
            }
            Command::ExecutorExited { container_id, exit } => {
                let fx = self.master.on_executor_exited(&container_id, exit, now);
                self.apply(fx);
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
            Command::TakeOver {
                recovered,
                dir,
                reply,
            } => {
                let result = self.take_over(*recovered, &dir, now);
                let _ = reply.send(result);
            }
        }
    }

    /// Adopts the journal's state, then starts journaling: the snapshot of
    /// what was adopted goes to this master's own journal file before any
    /// effect of the adoption is carried out.
    fn take_over(
        &mut self,
        recovered: Recovered,
        dir: &JournalDir,
        now: Instant,
    ) -> Result<Adopted, JournalError> {
        let (adopted, fx) = self.master.adopt(recovered, now);
        self.master.start_journal();
        let mut snapshot = Vec::new();
        self.master.journal_snapshot(now, &mut snapshot);
        // What the snapshot holds need not be written again.
        self.master.journal_turn(now, &mut Vec::new());
        let writer = dir.begin(self.master.master_id(), &snapshot)?;
        self.journal = Some(writer);
        self.apply(fx);
        Ok(adopted)
    }

    /// Writes the turn's journal records (one `write()`), and compacts the
    /// journal when it has grown enough. A journal that cannot be written
    /// is dropped, loudly: the master goes on, but a takeover after it
    /// would adopt a stale state.
    fn write_journal(&mut self) {
        let Some(writer) = &mut self.journal else {
            return;
        };
        let now = Instant::now();
        self.journal_frames.clear();
        self.master.journal_turn(now, &mut self.journal_frames);
        let mut result = Ok(());
        if !self.journal_frames.is_empty() {
            result = writer.append(&self.journal_frames);
        }
        if result.is_ok() && writer.wants_compaction() {
            self.journal_frames.clear();
            self.master.journal_snapshot(now, &mut self.journal_frames);
            result = writer.compact(&self.journal_frames);
            self.journal_frames = Vec::new();
        }
        if let Err(error) = result {
            tracing::error!(%error, "the journal cannot be written; journaling stops (a takeover would adopt a stale state)");
            self.journal = None;
        }
    }

    /// A bounded event channel for stream `conn`, whose body reports
    /// `Disconnected` when dropped.
    fn open_stream(&mut self, conn: ConnId, media: MediaType) -> EventStream {
        let (tx, rx) = mpsc::channel(self.config.stream_buffer);
        let (guard, dropped) = oneshot::channel::<()>();
        self.conns.insert(conn, (tx, media));
        if let Some(self_tx) = self.self_tx.upgrade() {
            tokio::spawn(async move {
                let _ = dropped.await;
                let _ = self_tx.send(Command::Disconnected { conn }).await;
            });
        }
        EventStream { rx, _guard: guard }
    }

    /// Carries out the effects of a turn, after journaling it (so no
    /// framework hears of what the journal would not know).
    fn apply(&mut self, effects: Vec<Effect>) {
        self.write_journal();
        let mut queue = std::collections::VecDeque::from(effects);
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Send { conn, event } => {
                    let Some((tx, media)) = self.conns.get(&conn) else {
                        continue;
                    };
                    let record = encode_record(&media.encode(&*event));
                    self.master.count_event_sent();
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
                Effect::SendExecutor { conn, event } => {
                    let Some((tx, media)) = self.conns.get(&conn) else {
                        continue;
                    };
                    let record = encode_record(&media.encode(&*event));
                    if tx.try_send(record).is_err() {
                        tracing::warn!(
                            conn,
                            "executor stream cannot keep up or is gone; closing it"
                        );
                        self.conns.remove(&conn);
                        queue.extend(self.master.on_disconnected(conn, Instant::now()));
                    }
                }
                Effect::LaunchExecutor(spec) => self.launch_executor(*spec),
                Effect::KillExecutor { container_id } => {
                    if let Some(p) = &self.processes {
                        p.kill(&container_id);
                    }
                }
            }
        }
        // What the effects changed (a stream cut off).
        self.write_journal();
    }
}

impl Driver {
    fn launch_executor(&mut self, spec: crate::agent::launch::LaunchSpec) {
        let container_id = spec.container_id.clone();
        let Some(processes) = &self.processes else {
            // A real agent without processes (a library user's setup): the
            // executor can never start.
            let fx = self.master.on_executor_exited(
                &container_id,
                ExecutorExit::LaunchFailed("this simulator runs no processes".into()),
                Instant::now(),
            );
            self.apply(fx);
            return;
        };
        let self_tx = self.self_tx.clone();
        processes.launch(spec, move |container_id, exit| {
            if let Some(tx) = self_tx.upgrade() {
                tokio::spawn(async move {
                    let _ = tx
                        .send(Command::ExecutorExited { container_id, exit })
                        .await;
                });
            }
        });
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

    /// Every record already queued goes out in the same frame: hyper
    /// writes (and the kernel sends) each frame on its own, so a burst of
    /// 40,000 updates cost 40,000 writes. RecordIO does not care where
    /// chunks end, and neither does any client that reads it correctly.
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let first = match self.rx.poll_recv(cx) {
            Poll::Ready(Some(record)) => record,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        let mut frame: Option<BytesMut> = None;
        while frame.as_ref().map_or(first.len(), BytesMut::len) < MAX_FRAME {
            let Ok(next) = self.rx.try_recv() else { break };
            let frame = frame.get_or_insert_with(|| {
                let mut f = BytesMut::with_capacity(first.len() * 8 + next.len());
                f.extend_from_slice(&first);
                f
            });
            frame.extend_from_slice(&next);
        }
        let data = frame.map_or(first, BytesMut::freeze);
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}

/// The most bytes of queued records [`EventStream`] joins into one frame.
const MAX_FRAME: usize = 256 * 1024;
