//! The goal-state engine's driver: one tokio task that owns the store's
//! only writer, a delay queue keyed by job id, the pending runs and the held
//! offers. It feeds jobs to [`super::reconcile::plan`] and carries plans out;
//! it turns session events into store writes, and placement results into
//! launch intents (recorded first) and then ACCEPT calls.
//!
//! Its loop, one input at a time:
//! - session events (batched): SUBSCRIBED → reconcile everything; offers →
//!   hold briefly; updates → store, then acknowledge; failures → lost agents.
//! - API commands: job writes, answered once committed.
//! - an expired job in the delay queue → plan it.
//! - the offer hold expires → place, record intents, ACCEPT, decline the rest.
//! - the periodic reconciliation timer.
//!
//! SQLite calls are blocking but short (one transaction per batch);
//! `block_in_place` keeps them off the other tasks' worker.

use super::launch::ExecutorMode;
use super::offer_book::OfferBook;
use super::pending_runs::{PendingRuns, WaitingRun};
use super::plan_due::Due;
use super::policies::sla_order::SlaKey;
use super::reconcile::{self, ClusterFacts, EngineConfig, PendingLaunch};
use super::update_backlog::UpdateBacklog;
use crate::mesos::calls;
use crate::mesos::driver::DriverHandle;
use crate::mesos::events::SessionEvent;
use crate::metrics::Metrics;
use crate::model::ids::{InstanceId, JobId, TaskId};
use crate::model::resources::Resources;
use crate::model::spec::{JobSpec, PodSpec};
use crate::model::state::{JobGoal, PodGoal, PodState};
use crate::store::{JobRecord, Store, StoreError, UnixMillis};
use futures_util::StreamExt;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::time::{delay_queue, DelayQueue};

#[path = "runner_events.rs"]
mod events;
#[path = "runner_launch.rs"]
mod launching;

/// Runner settings; every value has a documented default.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Engine timing.
    pub engine: EngineConfig,
    /// How tasks are executed.
    pub executor: ExecutorMode,
    /// How long offers are held so that many tasks are placed at once.
    /// Default 10 ms: a master sends a framework all of one allocation
    /// cycle's offers in one OFFERS event, so a short hold only needs to
    /// gather the jobs created at about the same time; every ms of it is
    /// added to each launch. Job plans that fall due during the hold are
    /// made before it ends (the loop's order), so a job created while the
    /// hold runs joins the round however long its own planning takes.
    /// (100 ms was a seventh of a 20,000-task launch; 25 ms measured 15 ms
    /// slower than 10 ms at 20,000 tasks.)
    pub offer_hold: Duration,
    /// How long offers no run needs are kept (instead of declined at once).
    /// Default 1 s: a user who creates jobs one after another, or a job
    /// whose runs end and are replaced, launches on them at once instead of
    /// waiting for a REVIVE and the master's next allocation (Aurora keeps
    /// idle offers for minutes for the same reason; a second is enough to
    /// bridge API calls while keeping resources from other frameworks only
    /// briefly).
    pub idle_offer_hold: Duration,
    /// Refuse filter on declines while nothing waits. Default 5 s (the
    /// Mesos default).
    pub refuse: Duration,
    /// Refuse filter on declines while runs wait for offers. Default 1 s:
    /// a Mesos master lifts a filter as soon as more resources free up on
    /// the agent, but some masters filter the whole agent, and a long filter
    /// there would stall every launch wave behind it.
    pub pending_refuse: Duration,
    /// Periodic implicit reconciliation. Default 15 min (Mesos docs).
    pub reconcile_interval: Duration,
    /// Tasks per RECONCILE call. Default 1,000, to keep calls small.
    pub reconcile_chunk: usize,
    /// Most status updates stored per transaction. Default 16,384: one
    /// synchronous commit per batch, so bigger batches store (and then
    /// acknowledge) updates faster when they arrive in bursts, while a
    /// batch stays short enough (about 100 ms) not to delay launches long.
    pub update_batch: usize,
    /// Updates that make a batch worth its commit at once. Default 256.
    /// Fewer wait up to [`RunnerConfig::update_linger`] for company.
    pub update_group: usize,
    /// Longest a status update waits for others to share its commit.
    /// Default 2 ms. A commit costs about 0.4 ms of fsync whatever its
    /// size; while a launch wave's RUNNING updates trickle in behind their
    /// STARTING acknowledgements, storing each few at once spent most of
    /// the runner's time on fsync (1,100 commits/s of 19 updates at
    /// 100,000 tasks). Group commit, as databases do it.
    pub update_linger: Duration,
    /// How long live (non-terminal) status updates of a job must pause
    /// before it is planned again (and at most [`super::plan_due::SETTLE_LIMIT`]
    /// times this after the first). Default 500 ms: such updates rarely
    /// change a plan, and planning a job of 10,000 instances during its
    /// own launch holds the runner from launching. Terminal updates plan
    /// their job at once (a relaunch may be due).
    pub update_settle: Duration,
}

impl RunnerConfig {
    /// Defaults, with tasks run by `executor`.
    pub fn new(executor: ExecutorMode) -> Self {
        RunnerConfig {
            engine: EngineConfig::default(),
            executor,
            offer_hold: Duration::from_millis(10),
            idle_offer_hold: Duration::from_secs(1),
            refuse: Duration::from_secs(5),
            pending_refuse: Duration::from_secs(1),
            reconcile_interval: Duration::from_secs(15 * 60),
            reconcile_chunk: 1000,
            update_batch: 16384,
            update_group: 256,
            update_linger: Duration::from_millis(2),
            update_settle: Duration::from_millis(500),
        }
    }
}

/// Why a job command failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// DELETE of a job that is still running, without `force`.
    #[error("job {0} is still running; stop it first or delete with force")]
    StillRunning(JobId),
    /// The runner has stopped.
    #[error("the scheduler is shutting down")]
    ShuttingDown,
}

/// Writes the API asks for; each answered once committed.
#[derive(Debug)]
pub enum ApiCommand {
    /// Store a new job.
    CreateJob {
        /// Its id.
        job_id: JobId,
        /// Its (validated) spec.
        spec: Box<JobSpec>,
        /// The answer.
        reply: oneshot::Sender<Result<JobRecord, RunnerError>>,
    },
    /// Stop or start a job.
    SetGoal {
        /// The job.
        job_id: JobId,
        /// Running or Stopped.
        goal: JobGoal,
        /// The version the caller saw.
        expected_version: Option<u64>,
        /// The answer.
        reply: oneshot::Sender<Result<JobRecord, RunnerError>>,
    },
    /// Stop or start one pod.
    SetPodGoal {
        /// The pod.
        pod: InstanceId,
        /// Running or Killed.
        goal: PodGoal,
        /// The answer.
        reply: oneshot::Sender<Result<JobRecord, RunnerError>>,
    },
    /// Restart pods: replace their runs, `batch_size` at a time.
    RestartPods {
        /// The job.
        job_id: JobId,
        /// Which instances.
        instances: Vec<u32>,
        /// Most down at once (0 = all).
        batch_size: u32,
        /// The version the caller saw (job restarts).
        expected_version: Option<u64>,
        /// Bump the job's version (a job restart, not a pod restart).
        bump: bool,
        /// The answer.
        reply: oneshot::Sender<Result<JobRecord, RunnerError>>,
    },
    /// Delete a job (stop it first if `force`).
    DeleteJob {
        /// The job.
        job_id: JobId,
        /// The version the caller saw.
        expected_version: Option<u64>,
        /// Stop it if running.
        force: bool,
        /// The answer.
        reply: oneshot::Sender<Result<(), RunnerError>>,
    },
}

/// A run waiting for an offer.
#[derive(Debug, Clone)]
struct Pending {
    launch: PendingLaunch,
    pod: Arc<PodSpec>,
    demand: Resources,
    /// Its job's SLA priority and creation time (placement order).
    sla: SlaKey,
    /// Its job's type (the default placement strategy).
    job_type: crate::model::spec::JobType,
}

impl WaitingRun for Pending {
    fn job(&self) -> &JobId {
        &self.launch.task_id.instance.job
    }

    fn sla(&self) -> SlaKey {
        self.sla
    }
}

/// The engine driver. See the module doc.
pub struct Runner {
    store: Box<dyn Store>,
    driver: DriverHandle,
    config: RunnerConfig,
    metrics: Arc<Metrics>,
    queue: DelayQueue<JobId>,
    queued: HashMap<JobId, (delay_queue::Key, Due)>,
    pending: PendingRuns<Pending>,
    offers: OfferBook,
    /// The zone of every agent seen in an offer: zone balance counts
    /// instances on agents that are not offering right now too.
    agent_zones: HashMap<String, String>,
    /// The pending reason last recorded per run, so that unchanged reasons
    /// are not written again every round.
    pending_reasons: HashMap<TaskId, String>,
    facts: ClusterFacts,
    subscribed: bool,
    suppressed: Option<bool>,
    hold_until: Option<Instant>,
    /// When the offers kept while no run needs them are declined.
    idle_until: Option<Instant>,
    next_reconcile: Option<Instant>,
    /// Status updates received and not yet stored (nor acknowledged).
    update_backlog: UpdateBacklog,
}

/// Wall-clock milliseconds; the runner is a drive layer and may read it.
pub fn now_millis() -> UnixMillis {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Runner {
    /// A runner writing to `store` and calling the master through `driver`.
    pub fn new(
        store: Box<dyn Store>,
        driver: DriverHandle,
        config: RunnerConfig,
        metrics: Arc<Metrics>,
    ) -> Self {
        Runner {
            store,
            driver,
            config,
            metrics,
            queue: DelayQueue::new(),
            queued: HashMap::new(),
            pending: PendingRuns::default(),
            offers: OfferBook::default(),
            agent_zones: HashMap::new(),
            pending_reasons: HashMap::new(),
            facts: ClusterFacts::default(),
            subscribed: false,
            suppressed: None,
            hold_until: None,
            idle_until: None,
            next_reconcile: None,
            update_backlog: UpdateBacklog::default(),
        }
    }

    /// Runs until `shutdown`.
    pub async fn run(
        mut self,
        mut session_events: mpsc::Receiver<SessionEvent>,
        mut api: mpsc::Receiver<ApiCommand>,
        shutdown: CancellationToken,
    ) {
        self.enqueue_all_jobs();
        let far = Duration::from_secs(3600);
        loop {
            let hold = self.hold_until.map(tokio::time::Instant::from_std);
            let idle = self.idle_until.map(tokio::time::Instant::from_std);
            let periodic = self.next_reconcile.map(tokio::time::Instant::from_std);
            let far_away = tokio::time::Instant::now() + far;
            // Biased, in this order: API writes (a user waits on each),
            // session events (offers and subscription changes are handled
            // at once; status updates only join the backlog), due job plans
            // (before the round, so a job created during the hold is in
            // it), a due placement round, then one batch of the update
            // backlog. In a launch burst the master streams tens of
            // thousands of updates; storing them first would hold offers
            // and launches behind them (hundreds of ms at 20,000 tasks).
            // A backlog too small for its commit lingers (group commit).
            let grouped = self.update_backlog.len() >= self.config.update_group.max(1);
            let linger = self
                .update_backlog
                .since()
                .filter(|_| !grouped)
                .map(|since| tokio::time::Instant::from_std(since + self.config.update_linger));
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(command) = api.recv() => self.on_api(command),
                Some(event) = session_events.recv() => {
                    let mut batch = Vec::with_capacity(1 + session_events.len());
                    batch.push(event);
                    while let Ok(e) = session_events.try_recv() {
                        batch.push(e);
                    }
                    self.on_session_events(batch).await;
                }
                Some(expired) = self.queue.next(), if !self.queue.is_empty() => {
                    let job = expired.into_inner();
                    self.queued.remove(&job);
                    self.evaluate(&job).await;
                }
                _ = tokio::time::sleep_until(hold.unwrap_or(far_away)), if hold.is_some() => {
                    self.hold_until = None;
                    self.place_and_launch().await;
                }
                _ = std::future::ready(()), if grouped => self.store_update_batch().await,
                _ = tokio::time::sleep_until(linger.unwrap_or(far_away)), if linger.is_some() => {
                    self.store_update_batch().await;
                }
                _ = tokio::time::sleep_until(idle.unwrap_or(far_away)), if idle.is_some() => {
                    self.idle_until = None;
                    self.decline_idle_offers().await;
                }
                _ = tokio::time::sleep_until(periodic.unwrap_or(far_away)), if periodic.is_some() => {
                    self.periodic_reconcile().await;
                }
            }
            self.metrics
                .pending_tasks
                .store(self.pending.len() as u64, Ordering::Relaxed);
        }
    }

    /// Plans `job_id` now-ish: after `after`, or sooner if already queued sooner.
    fn enqueue(&mut self, job_id: &JobId, after: Duration) {
        let now = Instant::now();
        self.schedule(job_id, now, |queued| Due::deadline(queued, now + after));
    }

    /// Plans `job_id` once its live status updates pause (see [`super::plan_due`]).
    fn enqueue_settled(&mut self, job_id: &JobId) {
        let (now, settle) = (Instant::now(), self.config.update_settle);
        self.schedule(job_id, now, |queued| Due::settled(queued, now, settle));
    }

    /// Queues `job_id` for the time `due` works out from its queued one.
    /// A queued job is updated in place: a launch round calls this once per
    /// task it launches, mostly leaving the time as it was.
    fn schedule(&mut self, job_id: &JobId, now: Instant, due: impl FnOnce(Option<Due>) -> Due) {
        if let Some((key, queued)) = self.queued.get_mut(job_id) {
            let next = due(Some(*queued));
            if next.at != queued.at {
                self.queue
                    .reset(key, next.at.saturating_duration_since(now));
            }
            *queued = next;
            return;
        }
        let next = due(None);
        let key = self
            .queue
            .insert(job_id.clone(), next.at.saturating_duration_since(now));
        self.queued.insert(job_id.clone(), (key, next));
    }

    fn enqueue_all_jobs(&mut self) {
        let mut offset = 0;
        loop {
            let page = tokio::task::block_in_place(|| self.store.jobs(offset, 500));
            match page {
                Ok((jobs, _)) if !jobs.is_empty() => {
                    offset += jobs.len() as u32;
                    for job in jobs {
                        self.enqueue(&job.job_id, Duration::ZERO);
                    }
                }
                Ok(_) => break,
                Err(e) => {
                    tracing::error!(error = %e, "cannot list jobs");
                    break;
                }
            }
        }
    }

    fn on_api(&mut self, command: ApiCommand) {
        let now = now_millis();
        match command {
            ApiCommand::CreateJob {
                job_id,
                spec,
                reply,
            } => {
                let result =
                    tokio::task::block_in_place(|| self.store.create_job(&job_id, &spec, now));
                if result.is_ok() {
                    self.enqueue(&job_id, Duration::ZERO);
                }
                let _ = reply.send(result.map_err(RunnerError::from));
            }
            ApiCommand::SetGoal {
                job_id,
                goal,
                expected_version,
                reply,
            } => {
                let result = tokio::task::block_in_place(|| {
                    self.store
                        .set_job_goal(&job_id, goal, expected_version, now)
                });
                if result.is_ok() {
                    self.enqueue(&job_id, Duration::ZERO);
                }
                let _ = reply.send(result.map_err(RunnerError::from));
            }
            ApiCommand::SetPodGoal { pod, goal, reply } => {
                let result =
                    tokio::task::block_in_place(|| self.store.set_pod_goal(&pod, goal, now));
                if result.is_ok() {
                    self.enqueue(&pod.job, Duration::ZERO);
                }
                let _ = reply.send(result.map_err(RunnerError::from));
            }
            ApiCommand::RestartPods {
                job_id,
                instances,
                batch_size,
                expected_version,
                bump,
                reply,
            } => {
                let result = tokio::task::block_in_place(|| {
                    self.store.restart_pods(
                        &job_id,
                        &instances,
                        batch_size,
                        expected_version,
                        bump,
                        now,
                    )
                });
                if result.is_ok() {
                    self.enqueue(&job_id, Duration::ZERO);
                }
                let _ = reply.send(result.map_err(RunnerError::from));
            }
            ApiCommand::DeleteJob {
                job_id,
                expected_version,
                force,
                reply,
            } => {
                let result = self.delete_job(&job_id, expected_version, force, now);
                let _ = reply.send(result);
            }
        }
    }

    fn delete_job(
        &mut self,
        job_id: &JobId,
        expected_version: Option<u64>,
        force: bool,
        now: UnixMillis,
    ) -> Result<(), RunnerError> {
        let (job, runs) = tokio::task::block_in_place(|| {
            let job = self.store.job(job_id)?;
            let runs = self.store.runs(job_id)?;
            Ok::<_, StoreError>((job, runs))
        })?;
        let job = job.ok_or_else(|| StoreError::JobNotFound(job_id.clone()))?;
        if let Some(expected) = expected_version {
            if expected != job.version {
                return Err(StoreError::VersionMismatch {
                    job: job_id.clone(),
                    current: job.version,
                    expected,
                }
                .into());
            }
        }
        let live = runs.iter().any(|r| r.state.is_live());
        let plan = reconcile::plan(&job, &runs, &self.facts, &self.config.engine, now);
        tracing::debug!(job = %job_id, runs = runs.len(), launches = plan.launch.len(), "planned");
        let running = live || plan.job_state.is_some_and(|s| !s.is_terminal());
        if running && !force {
            return Err(RunnerError::StillRunning(job_id.clone()));
        }
        if live {
            tokio::task::block_in_place(|| {
                self.store
                    .set_job_goal(job_id, JobGoal::Deleted, Some(job.version), now)
            })?;
            self.enqueue(job_id, Duration::ZERO);
        } else {
            tokio::task::block_in_place(|| self.store.delete_job(job_id))?;
            self.pending.remove_job(job_id);
        }
        Ok(())
    }

    /// Plans one job and carries the plan out.
    async fn evaluate(&mut self, job_id: &JobId) {
        let now = now_millis();
        let loaded = tokio::task::block_in_place(|| {
            let job = self.store.job(job_id)?;
            let runs = self.store.runs(job_id)?;
            Ok::<_, StoreError>((job, runs))
        });
        let (job, runs) = match loaded {
            Ok((Some(job), runs)) => (job, runs),
            Ok((None, _)) => {
                self.pending.remove_job(job_id);
                self.update_offer_interest().await;
                return;
            }
            Err(e) => {
                tracing::error!(job = %job_id, error = %e, "cannot load job; retrying");
                self.enqueue(job_id, Duration::from_secs(1));
                return;
            }
        };
        let plan = reconcile::plan(&job, &runs, &self.facts, &self.config.engine, now);
        tracing::debug!(job = %job_id, runs = runs.len(), launches = plan.launch.len(), "planned");
        if !plan.mark_lost.is_empty() {
            self.mark_lost(&plan.mark_lost, "REASON_AGENT_REMOVED", "agent lost", now);
        }
        if !plan.kill.is_empty() && self.subscribed {
            let tasks: Vec<_> = plan
                .kill
                .iter()
                .map(|k| (k.task_id.clone(), k.reason.clone()))
                .collect();
            for kill in plan.kill {
                self.metrics.kills.fetch_add(1, Ordering::Relaxed);
                self.driver
                    .send(calls::kill(
                        kill.task_id.to_string(),
                        kill.agent_id,
                        kill.grace,
                    ))
                    .await;
            }
            if let Err(e) = tokio::task::block_in_place(|| self.store.record_kills(&tasks, now)) {
                tracing::error!(error = %e, "cannot record kills");
            }
        }
        if !plan.reconcile.is_empty() && self.subscribed {
            let tasks = plan
                .reconcile
                .into_iter()
                .map(|(t, a)| (t.to_string(), a))
                .collect();
            self.driver.send(calls::reconcile(tasks)).await;
        }
        // The instances without an override of their own share one copy of
        // the default spec.
        let default_pod = Arc::new(job.spec.default_spec.clone());
        let default_demand = super::launch::demand(&default_pod, &self.config.executor);
        let sla = SlaKey {
            priority: job.spec.sla.as_ref().map_or(0, |s| s.priority),
            created_at: job.created_at,
        };
        // In the plan's order (instances in order): placement's order
        // within the job.
        let waiting = plan
            .launch
            .into_iter()
            .map(|launch| {
                let (pod, demand) = match job.spec.pod_spec(launch.task_id.instance.instance) {
                    Cow::Borrowed(_) => (default_pod.clone(), default_demand),
                    Cow::Owned(own) => {
                        let demand = super::launch::demand(&own, &self.config.executor);
                        (Arc::new(own), demand)
                    }
                };
                Pending {
                    launch,
                    pod,
                    demand,
                    sla,
                    job_type: job.spec.job_type,
                }
            })
            .collect();
        self.pending.set_job(job_id, waiting);
        if let Some(after) = plan.requeue_after {
            self.enqueue(job_id, after);
        }
        if plan.forget {
            if let Err(e) = tokio::task::block_in_place(|| self.store.delete_job(job_id)) {
                tracing::error!(job = %job_id, error = %e, "cannot delete job");
            }
        }
        self.update_offer_interest().await;
        if !self.pending.is_empty() && !self.offers.is_empty() && self.hold_until.is_none() {
            self.hold_until = Some(Instant::now() + self.config.offer_hold);
        }
    }

    /// Records made-up terminal statuses for runs the scheduler gives up on.
    fn mark_lost(&mut self, tasks: &[TaskId], reason: &str, message: &str, now: UnixMillis) {
        let statuses: Vec<_> = tasks
            .iter()
            .map(|t| crate::store::StatusRecord {
                task_id: t.clone(),
                state: PodState::Lost,
                mesos_state: None,
                reason: Some(reason.to_owned()),
                message: Some(message.to_owned()),
                healthy: None,
                agent_id: None,
                timestamp: now,
            })
            .collect();
        if let Err(e) = tokio::task::block_in_place(|| self.store.record_statuses(&statuses)) {
            tracing::error!(error = %e, "cannot record lost runs");
        }
    }

    /// SUPPRESS when nothing is pending, REVIVE when something is; only on change.
    async fn update_offer_interest(&mut self) {
        if !self.subscribed {
            return;
        }
        let want = !self.pending.is_empty();
        if self.suppressed == Some(!want) {
            return;
        }
        self.suppressed = Some(!want);
        tracing::debug!(revive = want, "offer interest changed");
        let call = if want {
            calls::revive(Vec::new())
        } else {
            calls::suppress(Vec::new())
        };
        self.driver.send(call).await;
    }
}
