//! The engine's driver: one tokio task that owns the [`Engine`], the store's
//! only writer and the handle to the Mesos driver, and pumps. It reads an
//! input (an API write, session events, or the engine's next deadline),
//! hands it to the engine, and carries out the actions it returns, in
//! order: a change is written (one transaction) and reported back before
//! anything else, calls go to the master, replies to the API. It decides
//! nothing.
//!
//! Inputs are taken in this order when several are ready: API writes (a
//! user waits on each), session events (offers and subscription changes
//! are handled at once; status updates only join the engine's backlog),
//! then the engine's due work, one item at a time, so that an API write
//! never waits behind a burst of status updates.
//!
//! SQLite calls are blocking but short (one transaction per change);
//! `block_in_place` keeps them off the other tasks' worker.
//!
//! - [`board`]: the jobs as last stored, published for the API.
//! - [`board_metrics`]: the jobs and pods by state, counted from the
//!   board at each scrape.
//! - [`edge`]: a session event as an engine input, an engine call as a
//!   Mesos call.
//! - [`pump`]: carrying out a list of actions (store, then engine again;
//!   calls and replies to an outbox), shared with tests and the simulation.
//! - [`watch_log`]: every committed change as the jobs and pods it
//!   changed, for watchers, fed after each commit; [`watch_metrics`]: its
//!   gauges.
//! - [`heap_trim`]: memory freed after a burst goes back to the OS.
//! - [`launch_clock`]: how long each launch takes to TASK_RUNNING, for
//!   the launch histogram.
//! - [`framework_start`]: which framework the scheduler starts as (the
//!   framework guard and `--recover-from-master`), before the engine runs.

pub mod board;
pub mod board_metrics;
pub mod edge;
pub mod framework_start;
pub mod heap_trim;
pub mod launch_clock;
pub mod pump;
pub mod watch_log;
pub mod watch_metrics;

use crate::engine::{
    Action, ApiRequest, Call, Engine, EngineConfig, EngineError, Now, OperatorCall, Reply,
    RequestId,
};
use crate::mesos::driver::DriverHandle;
use crate::mesos::events::SessionEvent;
use crate::mesos::operator::OperatorClient;
use crate::mesos::task_info::ExecutorMode;
use crate::metrics::pools::PoolMetrics;
use crate::metrics::Metrics;
use crate::model::access::Identity;
use crate::model::change::Change;
use crate::model::job::Revision;
use crate::model::task_user::TaskUserPolicy;
use crate::model::time::UnixMillis;
use crate::store::{Store, StoreError};
use board::JobBoard;
use launch_clock::LaunchClock;
use pump::Outbox;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use watch_log::WatchLog;

/// Runner settings.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// The engine's settings.
    pub engine: EngineConfig,
    /// How tasks are executed.
    pub executor: ExecutorMode,
    /// Who tasks run as.
    pub task_users: TaskUserPolicy,
}

impl RunnerConfig {
    /// Defaults, with tasks run by `executor`.
    pub fn new(executor: ExecutorMode) -> Self {
        let engine = EngineConfig {
            executor_overhead: executor.overhead(),
            ..EngineConfig::default()
        };
        RunnerConfig {
            engine,
            executor,
            task_users: TaskUserPolicy::default(),
        }
    }
}

/// Where the runner publishes what it stored, for readers.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// The jobs as last stored.
    pub board: Arc<JobBoard>,
    /// Every committed change, for watchers.
    pub watch: Arc<WatchLog>,
}

/// An API write and where its answer goes, once committed.
#[derive(Debug)]
pub struct ApiCommand {
    /// The write.
    pub request: ApiRequest,
    /// Who asks.
    pub caller: Arc<Identity>,
    /// The answer.
    pub reply: oneshot::Sender<Result<Reply, EngineError>>,
}

/// Wall-clock milliseconds; the runner is a drive layer and may read it.
pub fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn now() -> Now {
    Now {
        instant: Instant::now(),
        unix_ms: now_millis(),
    }
}

/// The engine's driver. See the module doc.
pub struct Runner {
    engine: Engine,
    store: Box<dyn Store>,
    out: Outgoing,
    board: Arc<JobBoard>,
    metrics: Arc<Metrics>,
    /// The resource pools' families, and the preemptions counted so far.
    pool_metrics: PoolMetrics,
    preemptions_counted: u64,
    next_request: RequestId,
    /// Operator calls' outcomes, back from their tasks.
    operator_results: mpsc::Receiver<(OperatorCall, Result<(), String>)>,
    /// The hosts' generation last published.
    hosts_published: Option<u64>,
}

/// Where the engine's calls and replies go: the Mesos driver (calls built
/// into protos here, at the edge) and the API's waiting requests.
struct Outgoing {
    driver: DriverHandle,
    executor: ExecutorMode,
    task_users: TaskUserPolicy,
    metrics: Arc<Metrics>,
    /// When each launch in flight was sent, until its TASK_RUNNING.
    launches: LaunchClock,
    replies: HashMap<RequestId, oneshot::Sender<Result<Reply, EngineError>>>,
    /// Where committed changes go for watchers.
    watch: Arc<WatchLog>,
    /// Answers given while carrying out actions, sent once the jobs they
    /// changed are published (a client that reads right after its write
    /// sees it).
    answered: Vec<(RequestId, Result<Reply, EngineError>)>,
    /// The master's operator API, if the runner was given one.
    operator: Option<Arc<OperatorClient>>,
    /// Where operator calls' outcomes go.
    operator_results: mpsc::Sender<(OperatorCall, Result<(), String>)>,
}

impl Runner {
    /// A runner over what `store` holds, calling the master through
    /// `driver`, publishing its jobs on `board` and its changes on
    /// `watch`. Fails when the store cannot be read back whole.
    pub fn start(
        store: Box<dyn Store>,
        driver: DriverHandle,
        config: RunnerConfig,
        published: Published,
        metrics: Arc<Metrics>,
    ) -> Result<Self, StoreError> {
        let Published { board, watch } = published;
        let (snapshot, revision) = tokio::task::block_in_place(|| {
            Ok::<_, StoreError>((store.load()?, store.revision()?))
        })?;
        let engine = Engine::recover(snapshot, config.engine, now());
        // Before the board says the store is loaded: a watcher waits for
        // that, and then finds the log at the store's revision.
        let (operator_tx, operator_rx) = mpsc::channel(64);
        let current = tokio::task::block_in_place(|| {
            watch_log::capture::seed(engine.registry(), |job| store.runs(job))
        })?;
        watch.start_at(revision, current);
        let mut runner = Runner {
            engine,
            store,
            out: Outgoing {
                driver,
                executor: config.executor,
                task_users: config.task_users,
                metrics: metrics.clone(),
                launches: LaunchClock::new(launch_clock::MAX_IN_FLIGHT),
                replies: HashMap::new(),
                watch,
                answered: Vec::new(),
                operator: None,
                operator_results: operator_tx,
            },
            board,
            pool_metrics: PoolMetrics::register(&metrics),
            preemptions_counted: 0,
            metrics,
            next_request: 0,
            operator_results: operator_rx,
            hosts_published: None,
        };
        runner.publish();
        Ok(runner)
    }

    /// Maintenance calls go to the master's operator API through
    /// `client` (without one, hosts Drover drains stay DRAINED).
    pub fn with_operator(mut self, client: OperatorClient) -> Self {
        self.out.operator = Some(Arc::new(client));
        self
    }

    /// Runs until `shutdown`.
    pub async fn run(
        mut self,
        mut session_events: mpsc::Receiver<SessionEvent>,
        mut api: mpsc::Receiver<ApiCommand>,
        shutdown: CancellationToken,
    ) {
        let far = Duration::from_secs(3600);
        loop {
            let deadline = self
                .engine
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            let far_away = tokio::time::Instant::now() + far;
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(command) = api.recv() => self.on_api(command),
                Some((call, result)) = self.operator_results.recv() => {
                    let actions = self.engine.on_operator_result(call, result, now());
                    self.carry_out(actions);
                }
                Some(event) = session_events.recv() => {
                    let mut batch = Vec::with_capacity(1 + session_events.len());
                    batch.push(event);
                    while let Ok(e) = session_events.try_recv() {
                        batch.push(e);
                    }
                    self.on_session_events(batch);
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or(far_away)), if deadline.is_some() => {
                    let actions = self.engine.on_tick(now());
                    self.carry_out(actions);
                }
            }
            self.metrics
                .pending_tasks
                .set(self.engine.pending_len() as u64);
            self.publish_pools();
        }
    }

    /// The pools' standings and preemptions, when the engine has news.
    fn publish_pools(&mut self) {
        if let Some(standings) = self.engine.take_pool_standings() {
            self.pool_metrics.publish(&standings);
        }
        let total = self.engine.preemptions_total();
        if total > self.preemptions_counted {
            self.pool_metrics
                .preemptions
                .inc_by(total - self.preemptions_counted);
            self.preemptions_counted = total;
        }
    }

    fn on_api(&mut self, command: ApiCommand) {
        let id = self.next_request;
        self.next_request += 1;
        self.out.replies.insert(id, command.reply);
        let actions = self
            .engine
            .on_api(id, command.request, &command.caller, now());
        self.carry_out(actions);
    }

    /// Offers, rescinds, failures and subscription changes are handled at
    /// once, in order; the batch's status updates join the engine's
    /// backlog together.
    fn on_session_events(&mut self, batch: Vec<SessionEvent>) {
        // Sized once: after a busy spell a batch holds thousands of
        // updates, and growing the list by doubling copied them and
        // faulted in fresh pages each time (a tenth of the scheduler's CPU
        // in a 20,000-task launch, perf).
        let mut updates = Vec::with_capacity(batch.len());
        let taken = Instant::now();
        for event in batch {
            match &event {
                SessionEvent::Update(update) => {
                    self.metrics.count_update(update.state.as_str_name());
                    let launched = self
                        .out
                        .launches
                        .updated(&update.task_id, update.state, taken);
                    if let Some(took) = launched {
                        self.metrics.launch_latency.observe(took.as_secs_f64());
                    }
                }
                SessionEvent::Offers(offers) => {
                    self.metrics.offers_received.inc_by(offers.len() as u64);
                }
                SessionEvent::InvalidOffers(offer_ids) => {
                    self.metrics.offers_received.inc_by(offer_ids.len() as u64);
                }
                SessionEvent::Rescind { .. } => {
                    self.metrics.offers_rescinded.inc();
                }
                _ => {}
            }
            if let SessionEvent::Update(update) = event {
                updates.push(update);
                continue;
            }
            let actions = edge::deliver(&mut self.engine, event, now());
            self.carry_out(actions);
        }
        if !updates.is_empty() {
            let actions = self.engine.on_updates(updates, now());
            self.carry_out(actions);
        }
    }

    /// Carries out `actions` in order; a change is written, and the
    /// engine's answer to it carried out, before anything after it.
    fn carry_out(&mut self, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        let (engine, store, out) = (&mut self.engine, self.store.as_mut(), &mut self.out);
        // Only a change blocks (SQLite): calls alone are queued at once.
        if matches!(actions.last(), Some(Action::Persist(_))) {
            tokio::task::block_in_place(|| pump::carry_out(engine, store, actions, &mut now, out));
        } else {
            pump::carry_out(engine, store, actions, &mut now, out);
        }
        self.publish();
    }

    /// Publishes the jobs that changed, then sends the answers waiting.
    fn publish(&mut self) {
        let generation = self.engine.hosts_generation();
        if self.hosts_published != Some(generation) {
            self.board.publish_hosts(self.engine.hosts());
            self.hosts_published = Some(generation);
        }
        let changes = self.engine.take_changed_jobs();
        if !changes.is_empty() || !self.board.is_ready() {
            self.board.publish(changes);
        }
        for (request, result) in self.out.answered.drain(..) {
            if let Some(reply) = self.out.replies.remove(&request) {
                let _ = reply.send(result);
            }
        }
    }
}

impl Outbox for Outgoing {
    fn fenced(&mut self, mine: crate::store::Epoch, current: crate::store::Epoch) {
        // At once, as Marathon abdicates: no call may leave after a newer
        // leader claimed the store, and the process's sockets close with it
        // (exit status `ha::EXIT_DEPOSED`; its supervisor restarts it and it
        // campaigns again).
        crate::ha::abdicate(&format!(
            "another replica claimed the store as leader (epoch {current}, ours {mine})"
        ));
    }

    fn reply(&mut self, request: RequestId, result: Result<Reply, EngineError>) {
        self.answered.push((request, result));
    }

    fn stored(&mut self, result: &Result<Revision, StoreError>) {
        // (A fenced commit never gets here: `pump` calls `fenced` first.)
        self.metrics
            .store_written(result.as_ref().err().map(ToString::to_string));
    }

    fn committed(&mut self, change: &Change, revision: Revision, engine: &Engine) {
        let entry = self.watch.with_current(|current| {
            watch_log::capture::capture(change, engine.registry(), current, revision, now_millis())
        });
        self.watch.append(entry);
    }

    fn operator(&mut self, call: OperatorCall) {
        let Some(client) = self.operator.clone() else {
            tracing::warn!(?call, "no operator API client: maintenance call dropped");
            return;
        };
        let results = self.operator_results.clone();
        tokio::spawn(async move {
            let result = client.call(&call).await.map_err(|e| e.to_string());
            match &result {
                Ok(()) => tracing::info!(?call, "operator call done"),
                Err(e) => tracing::warn!(?call, error = %e, "operator call failed"),
            }
            let _ = results.send((call, result)).await;
        });
    }

    fn send(&mut self, call: Call) {
        match &call {
            Call::Accept { tasks, .. } => {
                self.metrics.launches.inc_by(tasks.len() as u64);
                let now = Instant::now();
                for task in tasks {
                    self.launches.launched(task.task_id.to_string(), now);
                }
            }
            Call::Decline { offer_ids, .. } => {
                self.metrics.offers_declined.inc_by(offer_ids.len() as u64);
            }
            Call::Kill { .. } => {
                self.metrics.kills.inc();
            }
            _ => {}
        }
        self.driver
            .send(edge::to_mesos(call, &self.executor, &self.task_users));
    }
}
