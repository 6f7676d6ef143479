//! The I/O half of the subscription: one tokio task (the loop here) owns
//! the [`Session`] and carries out its actions with hyper. No protocol
//! decisions are made here.
//!
//! - `subscription`: the SUBSCRIBE stream, on its own connection (a
//!   dedicated client), decoded incrementally and read as fast as the
//!   master writes it (events queue for the engine here, see
//!   [`DriverConfig::event_queue`]).
//! - `sender`: every other call, through one task on separate
//!   connections, carrying `Mesos-Stream-Id`, in the order the lanes
//!   (`mesos/lanes.rs`) decide: in order, but for acknowledgements and
//!   offer answers.
//! - `pipelined`: acknowledgements go in batches over HTTP/1.1
//!   pipelining, a transport that knows nothing of Mesos.
//! - `request`: what every exchange shares: the POST of a call (protobuf
//!   by default, JSON when configured; HTTP basic authentication when a
//!   principal and secret are given) and what its answer means.
//!
//! The driver ends when told to shut down (`Ok`), or when the session
//! stops for good ([`SessionError`], e.g. a SUBSCRIBED for another
//! framework): it then cancels the shutdown token it was given, so that
//! the rest of the scheduler stops too, and returns the error for `main`
//! to report (exit non-zero).
//!
//! - `ack_clock`: when each update awaiting acknowledgement arrived, for
//!   the acknowledgement histogram.
//!
//! The driver alone keeps the acknowledgement accounting: the
//! `pending_acks` gauge goes up when [`DriverHandle::send`] queues an
//! ACKNOWLEDGE and down when the driver settles it: answered (the
//! sender), or dropped unsent (a full queue, no subscription, or a
//! connection since replaced).

mod ack_clock;
mod pipelined;
mod request;
mod sender;
mod subscription;

pub(crate) use request::{basic_auth_header, client, HttpClient};
pub use request::{resolve_location, STREAM_ID_HEADER};

use super::events::SessionEvent;
use super::session::{
    Action, CallResponse, Endpoint, Session, SessionError, State, SubscribeResponse,
};
use crate::metrics::{Metrics, SubscriptionGauge};
use ack_clock::AckClock;
use drover_proto::v1::scheduler::{call, Call, Event};
use drover_proto::MediaType;
use sender::{send_calls, Outbound};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use subscription::subscribe;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Driver settings.
#[derive(Debug, Clone)]
pub struct DriverConfig {
    /// Encoding of calls and events.
    pub media: MediaType,
    /// `(principal, secret)` for basic authentication.
    pub credentials: Option<(String, String)>,
    /// Largest event accepted. Default: drover-proto's default.
    pub max_record_bytes: usize,
    /// Calls that may wait to be sent. Default 65,536: a burst of
    /// acknowledgements and launches for a job of thousands of instances fits
    /// many times over; beyond it calls are dropped (see [`DriverHandle`]).
    pub call_queue: usize,
    /// How long a call may take. Default 75 s, as the Mesos docs advise
    /// for call responses (reference 3.6).
    pub call_timeout: Duration,
    /// Events that may wait for the engine. Default 1,048,576 (tokio only
    /// allocates what is used): the stream must be read as fast as the
    /// master writes it, or a master that bounds its per-subscriber buffer
    /// (agent-sim: `--stream-buffer` events) disconnects the framework, and
    /// every call in flight is lost with the old stream id. A burst of 100,000 launches
    /// is followed by 100,000 STARTING updates in about a second, far faster
    /// than they can be stored, so the backlog has to wait here.
    pub event_queue: usize,
    /// Calls in flight at once: acknowledgements, and ACCEPTs and DECLINEs,
    /// overlap (see `mesos/lanes.rs`); any other call goes once the calls
    /// before it in its lane are answered. Default 32: each is one HTTP round trip and Mesos has no batched form,
    /// so one at a time caps acknowledgements, and the hundreds of ACCEPTs
    /// of a launch round, at the master's round-trip rate. They commute (an
    /// agent has one unacknowledged update per task in flight; an ACCEPT or
    /// DECLINE is about its own offers), so only they overlap; every other
    /// call waits for the ones before it in its lane (acknowledgements have
    /// a lane of their own, see `mesos/lanes.rs`). At 100,000 tasks, with
    /// acknowledgements the limit after the launch, 32 saw all RUNNING in
    /// 5.6-6.1 s where 8 took 6.35 s (64: 5.4-5.6 s, on more connections).
    pub call_window: usize,
    /// Acknowledgements pipelined in one slot of the window, on one
    /// connection (`pipelined.rs`). Default 64: at 20,000 tasks on
    /// 1,000 agents the framework saw all RUNNING in 0.69-0.71 s; batches
    /// of 8 took 0.80 s, of 32 and of 256 0.63-0.76 s, and one call per
    /// acknowledgement 1.06-1.36 s.
    pub ack_batch: usize,
    /// What `https://` masters are verified against (`--master-ca-file`);
    /// none for plain `http://` masters.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// The leading master as a master detector (`--master zk://`) names
    /// it; each new value is handed to the session. None: the masters
    /// are the configured list.
    pub leader: Option<watch::Receiver<Option<Endpoint>>>,
}

impl DriverConfig {
    /// Defaults for `media`.
    pub fn new(media: MediaType) -> Self {
        DriverConfig {
            media,
            credentials: None,
            max_record_bytes: drover_proto::recordio::DEFAULT_MAX_RECORD_BYTES,
            call_queue: 65_536,
            call_timeout: Duration::from_secs(75),
            event_queue: 1 << 20,
            call_window: 32,
            ack_batch: 64,
            tls: None,
            leader: None,
        }
    }
}

/// How the engine asks for calls to be sent.
///
/// The engine never waits for the driver: the driver waits for the engine
/// when it delivers events (backpressure on the event stream), so waiting in
/// both directions could deadlock. A call that finds the queue full is
/// dropped and counted, which Mesos' own contract allows (calls are
/// unreliable; reconciliation and redelivered updates close the gap).
#[derive(Debug, Clone)]
pub struct DriverHandle {
    calls: mpsc::Sender<Call>,
    metrics: Arc<Metrics>,
}

impl DriverHandle {
    /// A handle whose calls go to `calls` ([`spawn`] wires it to a driver;
    /// tests read the channel directly).
    pub fn new(calls: mpsc::Sender<Call>, metrics: Arc<Metrics>) -> Self {
        DriverHandle { calls, metrics }
    }

    /// Queues a call; it is dropped (as Mesos would) if not subscribed.
    pub fn send(&self, call: Call) {
        let is_ack = call.r#type == Some(call::Type::Acknowledge as i32);
        // Counted before it is queued: the driver may settle it before
        // `try_send` returns.
        if is_ack {
            self.metrics.ack_queued();
        }
        match self.calls.try_send(call) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(call)) => {
                self.metrics.calls_dropped.inc();
                if is_ack {
                    self.metrics.ack_settled();
                }
                tracing::warn!(kind = ?call.r#type, "call queue full; call dropped");
            }
            // The driver is shutting down; the call goes nowhere.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                if is_ack {
                    self.metrics.ack_settled();
                }
            }
        }
    }
}

/// What a connection task reports to the driver loop, tagged with the
/// generation of the connection it is about.
pub(crate) enum ConnEvent {
    /// The answer to a SUBSCRIBE.
    Subscribe(u64, SubscribeResponse),
    /// An event decoded from the stream.
    Event(u64, Box<Event>),
    /// The stream ended.
    Closed(u64),
    /// A call was not accepted (202 answers are not reported).
    CallDone(u64, CallResponse),
}

/// Starts the driver. Session events go to the returned receiver. The
/// task ends with `Ok` once `shutdown` is cancelled, or with the error
/// that stopped the session (having cancelled `shutdown` itself).
pub fn spawn(
    session: Session,
    config: DriverConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> (
    DriverHandle,
    mpsc::Receiver<SessionEvent>,
    JoinHandle<Result<(), SessionError>>,
) {
    spawn_after(std::future::ready(true), session, config, metrics, shutdown)
}

/// [`spawn`], but the driver first waits for `gate` and never connects if
/// it says `false` (the framework guard: `main` checks the master before
/// a store without a framework id subscribes). The handle takes calls at
/// once; they wait in its queue.
pub fn spawn_after(
    gate: impl std::future::Future<Output = bool> + Send + 'static,
    session: Session,
    config: DriverConfig,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> (
    DriverHandle,
    mpsc::Receiver<SessionEvent>,
    JoinHandle<Result<(), SessionError>>,
) {
    let (call_tx, call_rx) = mpsc::channel(config.call_queue);
    let (event_tx, event_rx) = mpsc::channel(config.event_queue.max(1));
    let handle = DriverHandle::new(call_tx, metrics.clone());
    let task = tokio::spawn(async move {
        if !gate.await {
            return Ok(());
        }
        let driver = Driver::new(session, config, metrics, event_tx);
        driver.run(call_rx, shutdown).await
    });
    (handle, event_rx, task)
}

/// The next leader the detector names; never ready without a detector,
/// or once it has stopped.
async fn next_leader(leader: &mut Option<watch::Receiver<Option<Endpoint>>>) -> Option<Endpoint> {
    let Some(rx) = leader.as_mut() else {
        return std::future::pending().await;
    };
    if rx.changed().await.is_err() {
        *leader = None;
        return std::future::pending().await;
    }
    let named = rx.borrow_and_update().clone();
    named
}

struct Driver {
    session: Session,
    config: DriverConfig,
    metrics: Arc<Metrics>,
    /// When each update awaiting acknowledgement arrived (the sender
    /// reads it when the ACKNOWLEDGE is answered).
    acks: Arc<AckClock>,
    events: mpsc::Sender<SessionEvent>,
    conn_tx: mpsc::Sender<ConnEvent>,
    conn_rx: mpsc::Receiver<ConnEvent>,
    subscription: Option<(u64, JoinHandle<()>)>,
    /// The newest connection's generation, shared with the sender, which
    /// drops calls stamped with an older one instead of posting them.
    generation: Arc<AtomicU64>,
    outbox: mpsc::Sender<Outbound>,
    sender: JoinHandle<()>,
    stream_client: HttpClient,
    /// Set by an [`Action::Stop`]: the loop ends with it.
    stopped: Option<SessionError>,
}

impl Driver {
    fn new(
        session: Session,
        config: DriverConfig,
        metrics: Arc<Metrics>,
        events: mpsc::Sender<SessionEvent>,
    ) -> Self {
        let (conn_tx, conn_rx) = mpsc::channel(1024);
        // Small: the sender takes calls out at once into its own lanes,
        // which hold up to `call_queue` (sender.rs).
        let (outbox, outbox_rx) = mpsc::channel(config.call_window.max(1));
        let generation = Arc::new(AtomicU64::new(0));
        let acks = Arc::new(AckClock::default());
        let stream_client = client(config.tls.as_ref());
        let sender = tokio::spawn(send_calls(
            client(config.tls.as_ref()),
            config.clone(),
            outbox_rx,
            conn_tx.clone(),
            metrics.clone(),
            acks.clone(),
            generation.clone(),
        ));
        Driver {
            session,
            config,
            metrics,
            acks,
            events,
            conn_tx,
            conn_rx,
            subscription: None,
            generation,
            outbox,
            sender,
            stream_client,
            stopped: None,
        }
    }

    async fn run(
        mut self,
        mut calls: mpsc::Receiver<Call>,
        shutdown: CancellationToken,
    ) -> Result<(), SessionError> {
        let mut leader = self.config.leader.take();
        if let Some(rx) = leader.as_mut() {
            // The leader known now is where the first SUBSCRIBE goes.
            let known = rx.borrow_and_update().clone();
            if let Some(endpoint) = known {
                let _ = self.session.on_leader_detected(endpoint, Instant::now());
            }
        }
        let actions = self.session.on_start(Instant::now());
        self.execute(actions).await;
        // A slot of the outbox held for the next call (see below).
        let mut room = None;
        while self.stopped.is_none() {
            let deadline = self
                .session
                .next_deadline()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            let actions = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(event) = self.conn_rx.recv() => self.on_conn_event(event),
                // A call is taken only with a slot of the outbox held, so
                // that handing it on never waits: a loop waiting on a full
                // outbox would stop reading the event stream, and a master
                // that bounds its buffer per subscriber (agent-sim) then
                // drops the subscription. Calls wait in their own queue
                // meanwhile. Waiting for the slot is a branch of its own,
                // so that the loop wakes when the sender frees one.
                permit = self.outbox.clone().reserve_owned(), if room.is_none() => {
                    match permit {
                        Ok(permit) => room = Some(permit),
                        Err(_) => {
                            // Only if the sender task ended (panicked).
                            tracing::error!("the call sender has stopped; the driver stops");
                            break;
                        }
                    }
                    Vec::new()
                }
                Some(call) = calls.recv(), if room.is_some() => {
                    // Freed for this call's Send; only this loop sends.
                    room = None;
                    let is_ack = call.r#type == Some(call::Type::Acknowledge as i32);
                    let actions = self.session.on_call(call);
                    if is_ack && actions.is_empty() {
                        self.metrics.ack_settled();
                    }
                    actions
                }
                detected = next_leader(&mut leader) => match detected {
                    Some(endpoint) => {
                        tracing::info!(master = %endpoint, "following the detected leading master");
                        self.session.on_leader_detected(endpoint, Instant::now())
                    }
                    // No leader known: the subscription is kept (see
                    // `mesos::detector`).
                    None => Vec::new(),
                },
                _ = tokio::time::sleep_until(deadline) => self.session.on_tick(Instant::now()),
            };
            self.execute(actions).await;
        }
        if let Some((_, task)) = self.subscription.take() {
            task.abort();
        }
        self.sender.abort();
        match self.stopped.take() {
            Some(error) => {
                shutdown.cancel();
                Err(error)
            }
            None => Ok(()),
        }
    }

    fn on_conn_event(&mut self, event: ConnEvent) -> Vec<Action> {
        let now = Instant::now();
        match event {
            ConnEvent::Subscribe(generation, response) => {
                if let SubscribeResponse::Failed { status, detail } = &response {
                    tracing::warn!(status, %detail, "SUBSCRIBE failed");
                }
                self.session
                    .on_subscribe_response(generation, response, now)
            }
            ConnEvent::Event(generation, event) => {
                let uuid = event.update.as_ref().and_then(|u| u.status.uuid.as_ref());
                if let Some(uuid) = uuid.filter(|u| !u.is_empty()) {
                    self.acks.arrived(uuid.clone(), now);
                }
                self.session.on_event(generation, *event, now)
            }
            ConnEvent::Closed(generation) => self.session.on_stream_closed(generation, now),
            ConnEvent::CallDone(generation, response) => {
                self.session.on_call_response(generation, response, now)
            }
        }
    }

    async fn execute(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Connect {
                    master,
                    generation,
                    call,
                } => {
                    tracing::info!(%master, generation, "subscribing");
                    self.generation.fetch_max(generation, Ordering::Relaxed);
                    if let Some((_, old)) = self.subscription.take() {
                        old.abort();
                    }
                    let task = tokio::spawn(subscribe(
                        self.stream_client.clone(),
                        self.config.clone(),
                        master,
                        generation,
                        *call,
                        self.conn_tx.clone(),
                    ));
                    self.subscription = Some((generation, task));
                }
                Action::Close { generation, reason } => {
                    tracing::info!(generation, reason, "closing subscription");
                    if let Some((g, task)) = self.subscription.take() {
                        if g == generation {
                            task.abort();
                        } else {
                            self.subscription = Some((g, task));
                        }
                    }
                }
                Action::Send {
                    master,
                    stream_id,
                    generation,
                    call,
                } => {
                    // Sends come only from `on_call`, one per call taken
                    // with its slot freed (`room`), so this never waits.
                    let _ = self
                        .outbox
                        .send((generation, master, stream_id, call))
                        .await;
                }
                Action::Deliver(event) => {
                    if matches!(event, SessionEvent::Subscribed { .. }) {
                        tracing::info!(?event, "subscribed");
                    }
                    let _ = self.events.send(event).await;
                }
                Action::Stop(error) => {
                    // Nothing after it is carried out.
                    self.stopped = Some(error);
                    break;
                }
            }
        }
        self.metrics.set_subscription(match self.session.state() {
            State::Disconnected { .. } | State::Stopped => SubscriptionGauge::Disconnected,
            State::Connecting { .. } => SubscriptionGauge::Connecting,
            State::Subscribing { .. } => SubscriptionGauge::Subscribing,
            State::Subscribed { .. } => SubscriptionGauge::Subscribed,
        });
        self.metrics
            .reconnects
            .inner()
            .store(self.session.reconnects(), Ordering::Relaxed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::mesos::calls;
    use crate::mesos::session::SessionConfig;
    use drover_proto::v1::FrameworkInfo;
    use rand::{rngs::SmallRng, SeedableRng};

    fn ack() -> Call {
        calls::acknowledge("a1".into(), "t1".into(), bytes::Bytes::from_static(b"u"))
    }

    fn pending(metrics: &Metrics) -> u64 {
        metrics.pending_acks.get()
    }

    #[tokio::test]
    async fn the_handle_counts_acknowledgements_it_queues_and_those_it_drops() {
        let metrics = Arc::new(Metrics::default());
        let (tx, mut rx) = mpsc::channel(1);
        let handle = DriverHandle::new(tx, metrics.clone());
        handle.send(calls::revive(Vec::new()));
        assert_eq!(pending(&metrics), 0, "only acknowledgements count");
        rx.recv().await.unwrap();
        handle.send(ack());
        assert_eq!(pending(&metrics), 1);
        // The queue is full: dropped, so settled at once.
        handle.send(ack());
        assert_eq!(pending(&metrics), 1);
        assert_eq!(metrics.calls_dropped.get(), 1);
        // The driver is gone: nothing will settle it later.
        drop(rx);
        handle.send(ack());
        assert_eq!(pending(&metrics), 1);
    }

    #[tokio::test]
    async fn an_acknowledgement_with_no_subscription_to_go_on_is_settled() {
        // Nothing listens there: the session never subscribes.
        let master = "http://127.0.0.1:1/api/v1/scheduler".parse().unwrap();
        let session = Session::new(
            SessionConfig::new(vec![master], FrameworkInfo::default()),
            None,
            SmallRng::seed_from_u64(1),
            Instant::now(),
        );
        let metrics = Arc::new(Metrics::default());
        let shutdown = CancellationToken::new();
        let (handle, _events, task) = spawn(
            session,
            DriverConfig::new(MediaType::Protobuf),
            metrics.clone(),
            shutdown.clone(),
        );
        handle.send(ack());
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while pending(&metrics) != 0 {
            assert!(tokio::time::Instant::now() < deadline, "never settled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
