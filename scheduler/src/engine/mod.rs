//! The goal-state engine: Drover's decisions, as a state machine. Inputs in
//! (API requests, Mesos facts, the passing of time), actions out (persist
//! this change, send these calls, answer this request). No clock reads,
//! sockets, store calls or channels: the time comes in as [`Now`], and the
//! runner (`crate::runner`) carries the actions out.
//!
//! ```text
//!  API request ──▶ on_api ─────────────┐
//!  SUBSCRIBED, offers, rescinds,       │      ┌─▶ Persist(change) ──▶ store ──▶ on_persisted ─┐
//!  updates, agent lost ──▶ on_* ───────┼──▶ actions                                           │
//!  time ──▶ on_tick (one due item) ────┘      └─▶ Send(call) ──▶ master     ◀── actions ──────┘
//!                                             └─▶ Reply ──▶ API
//! ```
//!
//! Calling contract:
//! - Build it with [`Engine::recover`] from what the store holds.
//! - Carry out every returned list of actions in order. A
//!   [`Action::Persist`] is always the last of its list: write its change
//!   in one transaction, then call [`Engine::on_persisted`] with the change
//!   and the outcome before any other input, and carry out what it returns
//!   the same way. Nothing the change decided is sent before it is stored
//!   (intent before action; an update acknowledged only once stored), and
//!   the engine's registry changes only once the store has.
//! - Call [`Engine::on_tick`] when [`Engine::next_deadline`] has passed;
//!   each call does the most urgent due item only (a job's plan, then a
//!   placement round, then a batch of status updates, then idle offers,
//!   then periodic reconciliation), so that the runner can take other
//!   inputs (API writes first) between them.
//!
//! What it decides, and where:
//! - a job's plan: [`reconcile`] (kills, reconciliation, runs to launch,
//!   requeue), over the model's rules ([`crate::model`]);
//! - API writes: `api`;
//! - status updates: `statuses` (the model's rule per run), stored in
//!   group commits from the [`update_backlog`];
//! - launches: [`round`], placement a step at a time with each chunk's
//!   intents stored before its ACCEPTs;
//! - offers: held briefly ([`EngineConfig::offer_hold`]) so that many runs
//!   are placed at once; kept while no run waits
//!   ([`EngineConfig::idle_offer_hold`]); SUPPRESS and REVIVE as runs wait.

pub mod action;
mod api;
pub mod config;
pub mod job_queue;
pub mod offer_book;
pub mod pending_runs;
pub mod plan_due;
pub mod reconcile;
pub mod registry;
pub mod round;
mod statuses;
pub mod update_backlog;

pub use action::{Action, ApiRequest, Call, EngineError, LaunchTask, Now, Reply, RequestId};
pub use config::EngineConfig;

use crate::model::change::{Change, JobWrite, KillRecord, PendingInfo, PendingReason};
use crate::model::demand::pod_demand;
use crate::model::ids::{AgentId, JobId, OfferId, TaskId};
use crate::model::job::Revision;
use crate::model::offer::Offer;
use crate::model::policies::sla_order::SlaKey;
use crate::model::run::{Run, StatusUpdate};
use crate::model::state::PodState;
use crate::model::task_update::TaskUpdate;
use crate::placement::{default_chain, Chain};
use crate::store::{Snapshot, StoreError};
use drover_proto::v1::task_status::Reason;
use job_queue::JobQueue;
use offer_book::{HeldHost, OfferBook};
use pending_runs::PendingRuns;
use plan_due::Due;
use reconcile::ClusterFacts;
use registry::Registry;
use round::{Chunk, Pending, Round, RoundEnd};
use statuses::{StatusBatch, StoredBatch};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use update_backlog::UpdateBacklog;

/// The zone attribute agents carry (zone balance counts instances per zone).
const ZONE_ATTRIBUTE: &str = crate::placement::host_view::ZONE_ATTRIBUTE;

/// The engine. See the module doc for the calling contract.
pub struct Engine {
    config: EngineConfig,
    chain: Arc<Chain>,
    /// The jobs and runs, as stored.
    registry: Registry,
    framework_id: Option<String>,
    facts: ClusterFacts,
    /// The zone and hostname of every agent seen (zone balance counts
    /// instances on agents that are not offering right now too).
    zones: HashMap<AgentId, String>,
    hostnames: HashMap<AgentId, String>,
    subscribed: bool,
    suppressed: Option<bool>,
    next_reconcile: Option<Instant>,
    offers: OfferBook,
    hold_until: Option<Instant>,
    /// When the offers kept while no run needs them are declined.
    idle_until: Option<Instant>,
    queue: JobQueue,
    pending: PendingRuns<Pending>,
    /// The pending reason last recorded per run, so that unchanged reasons
    /// are not written again every round.
    pending_reasons: HashMap<TaskId, String>,
    /// Status updates received and not yet stored (nor acknowledged).
    backlog: UpdateBacklog,
    round: Option<Round>,
    /// What the change handed out last is for, until `on_persisted`.
    awaiting: Option<Awaiting>,
}

/// What follows a stored change.
enum Awaiting {
    Api { request: RequestId, then: api::Then },
    Updates(StoredBatch),
    Plan { job: JobId, then: PlanThen },
    Subscribed,
    FrameworkRemoved(StoredBatch),
    Chunk(Chunk),
    PendingReasons(RoundEnd),
}

/// The rest of a job's plan, carried out once its change is stored.
struct PlanThen {
    lost: Option<StoredBatch>,
    kills: Vec<reconcile::KillOrder>,
    reconcile: Vec<(TaskId, Option<AgentId>)>,
    waiting: Vec<Pending>,
    requeue_after: Option<Duration>,
    forget: bool,
}

impl Engine {
    /// An engine over what the store holds; every job is planned at once.
    pub fn recover(snapshot: Snapshot, config: EngineConfig, now: Now) -> Engine {
        let hostnames = snapshot.hostnames.into_iter().collect();
        let mut engine = Engine {
            config,
            chain: Arc::new(default_chain()),
            registry: Registry::from_jobs(snapshot.jobs),
            framework_id: snapshot.framework_id,
            facts: ClusterFacts::default(),
            zones: HashMap::new(),
            hostnames,
            subscribed: false,
            suppressed: None,
            next_reconcile: None,
            offers: OfferBook::default(),
            hold_until: None,
            idle_until: None,
            queue: JobQueue::default(),
            pending: PendingRuns::default(),
            pending_reasons: HashMap::new(),
            backlog: UpdateBacklog::default(),
            round: None,
            awaiting: None,
        };
        engine.enqueue_all(now.instant);
        engine
    }

    /// The framework id to subscribe with.
    pub fn framework_id(&self) -> Option<&str> {
        self.framework_id.as_deref()
    }

    /// Runs waiting for a host.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Status updates received and not yet stored.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Whether the engine is subscribed (calls reach the master).
    pub fn is_subscribed(&self) -> bool {
        self.subscribed
    }

    /// The jobs and runs as stored (for tests and the simulation's checks).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Whether a handed-out change awaits [`Engine::on_persisted`].
    pub fn is_awaiting_persist(&self) -> bool {
        self.awaiting.is_some()
    }

    // ----- inputs -------------------------------------------------------

    /// An API request.
    pub fn on_api(&mut self, request: RequestId, body: ApiRequest, now: Now) -> Vec<Action> {
        match api::decide(&self.registry, &self.facts, &self.config, body, now.unix_ms) {
            api::Decision::Refuse(e) => vec![Action::Reply {
                request,
                result: Err(e),
            }],
            api::Decision::Write(change, then) => {
                self.persist(change, Awaiting::Api { request, then })
            }
        }
    }

    /// Subscribed (again): persist the framework id, forget old offers,
    /// reconcile every run that may be live explicitly, then implicitly.
    pub fn on_subscribed(&mut self, framework_id: String, _now: Now) -> Vec<Action> {
        self.framework_id = Some(framework_id.clone());
        let change = Change {
            framework_id: Some(Some(framework_id)),
            ..Change::default()
        };
        self.persist(change, Awaiting::Subscribed)
    }

    /// The subscription is gone: calls are dropped until the next one, and
    /// offers are void.
    pub fn on_disconnected(&mut self, _now: Now) -> Vec<Action> {
        tracing::warn!("subscription lost");
        self.subscribed = false;
        self.offers.clear();
        self.hold_until = None;
        Vec::new()
    }

    /// The master removed the framework: its tasks are gone, and a new
    /// framework is being registered.
    pub fn on_framework_removed(&mut self, now: Now) -> Vec<Action> {
        tracing::error!("framework removed by the master; its tasks are lost");
        self.subscribed = false;
        self.offers.clear();
        self.framework_id = None;
        let live: Vec<TaskId> = self
            .registry
            .live_runs()
            .map(|(instance, run)| instance.task_id(run.run))
            .collect();
        let mut change = Change {
            framework_id: Some(None),
            ..Change::default()
        };
        let stored = self.given_up(
            &live,
            Reason::FrameworkRemoved,
            "framework removed by the master",
            now,
            &mut change,
        );
        self.persist(change, Awaiting::FrameworkRemoved(stored))
    }

    /// Offers: held for [`EngineConfig::offer_hold`], then placed on.
    pub fn on_offers(&mut self, offers: Vec<Offer>, now: Now) -> Vec<Action> {
        for offer in &offers {
            // An agent that offers is alive again.
            self.facts.lost_agents.remove(&offer.agent_id);
            if let Some(zone) = offer.attributes.get(ZONE_ATTRIBUTE) {
                self.zones.insert(offer.agent_id.clone(), zone.clone());
            }
            if !self.hostnames.contains_key(&offer.agent_id) {
                self.hostnames
                    .insert(offer.agent_id.clone(), offer.hostname.clone());
            }
            self.offers.add(offer);
        }
        tracing::debug!(
            offers = offers.len(),
            pending = self.pending.len(),
            "offers received"
        );
        if self.hold_until.is_none() && !offers.is_empty() {
            self.hold_until = Some(now.instant + self.config.offer_hold);
        }
        Vec::new()
    }

    /// An offer was rescinded; its host's other offers are declined.
    pub fn on_rescind(&mut self, offer_id: &OfferId, _now: Now) -> Vec<Action> {
        let mut actions = Vec::new();
        let others = self.offers.rescind(offer_id);
        decline(others, Duration::ZERO, &mut actions);
        actions
    }

    /// The master removed an agent: its runs are lost (each job's next plan
    /// marks them), and its offers void.
    pub fn on_agent_lost(&mut self, agent_id: AgentId, now: Now) -> Vec<Action> {
        tracing::warn!(agent = %agent_id, "agent lost");
        let _ = self.offers.remove_agent(&agent_id);
        self.facts.lost_agents.insert(agent_id);
        self.enqueue_all(now.instant);
        Vec::new()
    }

    /// Status updates: they join the backlog, stored in group commits (see
    /// [`EngineConfig::update_group`]) and acknowledged once stored.
    /// Reordering them after offers is safe: an update's effect does not
    /// depend on offers.
    pub fn on_updates(&mut self, updates: Vec<TaskUpdate>, now: Now) -> Vec<Action> {
        self.backlog.push(updates, now.instant);
        Vec::new()
    }

    /// When [`Engine::on_tick`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        let grouped = self.backlog.len() >= self.config.update_group.max(1);
        let updates = self.backlog.since().map(|since| {
            if grouped {
                since
            } else {
                since + self.config.update_linger
            }
        });
        [
            self.queue.next_deadline(),
            self.hold_until,
            updates,
            self.idle_until,
            self.next_reconcile,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Time passes: the most urgent due item, if any (see the module doc).
    pub fn on_tick(&mut self, now: Now) -> Vec<Action> {
        if let Some(job) = self.queue.pop_due(now.instant) {
            return self.plan_job(job, now);
        }
        if self.hold_until.is_some_and(|at| at <= now.instant) {
            self.hold_until = None;
            return self.start_round(now);
        }
        let grouped = self.backlog.len() >= self.config.update_group.max(1);
        let lingered = self
            .backlog
            .since()
            .is_some_and(|since| since + self.config.update_linger <= now.instant);
        if grouped || lingered {
            return self.store_updates(now);
        }
        if self.idle_until.is_some_and(|at| at <= now.instant) {
            self.idle_until = None;
            return self.decline_idle_offers();
        }
        if self.next_reconcile.is_some_and(|at| at <= now.instant) {
            return self.periodic_reconcile(now);
        }
        Vec::new()
    }

    /// The change handed out last was written (Ok, with its revision) or
    /// not (nothing of it is in the store).
    pub fn on_persisted(
        &mut self,
        change: Change,
        result: Result<Revision, StoreError>,
        now: Now,
    ) -> Vec<Action> {
        let Some(awaiting) = self.awaiting.take() else {
            tracing::error!("a change was reported stored that the engine did not hand out");
            return Vec::new();
        };
        match awaiting {
            Awaiting::Api { request, then } => self.api_persisted(request, then, result, now),
            Awaiting::Updates(stored) => match result {
                Ok(_) => self.updates_stored(stored, now),
                Err(e) => {
                    // Not stored, so not acknowledged: the agent resends.
                    tracing::error!(error = %e, "cannot record status updates");
                    Vec::new()
                }
            },
            Awaiting::Plan { job, then } => match result {
                Ok(_) => {
                    if then.forget {
                        self.registry.remove(&job);
                    }
                    if let Some(lost) = &then.lost {
                        self.put_runs(&lost.runs);
                    }
                    self.apply_kills(&change.kills);
                    self.finish_plan(job, then, now)
                }
                Err(e) => {
                    tracing::error!(job = %job, error = %e, "cannot store a job's plan; retrying");
                    self.enqueue(&job, self.config.retry_after_store_error, now.instant);
                    Vec::new()
                }
            },
            Awaiting::Subscribed => {
                if let Err(e) = result {
                    tracing::error!(error = %e, "cannot persist the framework id");
                }
                self.subscribed(now)
            }
            Awaiting::FrameworkRemoved(stored) => {
                match result {
                    Ok(_) => self.put_runs(&stored.runs),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot record the framework's runs lost")
                    }
                }
                self.enqueue_all(now.instant);
                Vec::new()
            }
            Awaiting::Chunk(chunk) => self.chunk_persisted(chunk, result, now),
            Awaiting::PendingReasons(end) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cannot record why runs are pending");
                }
                self.round_ended(end, now)
            }
        }
    }

    // ----- persistence --------------------------------------------------

    fn persist(&mut self, change: Change, then: Awaiting) -> Vec<Action> {
        debug_assert!(self.awaiting.is_none(), "one change at a time");
        self.awaiting = Some(then);
        vec![Action::Persist(change)]
    }

    fn put_runs(&mut self, runs: &[(TaskId, Run)]) {
        for (task, run) in runs {
            self.registry.put_run(&task.instance, run.clone());
        }
    }

    fn apply_kills(&mut self, kills: &[KillRecord]) {
        for kill in kills {
            let Some(entry) = self.registry.get_mut(&kill.task_id.instance.job) else {
                continue;
            };
            let runs = entry
                .instances
                .get_mut(kill.task_id.instance.instance as usize);
            if let Some(run) = runs.and_then(|r| r.iter_mut().rfind(|r| r.run == kill.task_id.run))
            {
                run.kill_requested_at = Some(kill.at);
                if kill.reason.is_some() {
                    run.kill_reason = kill.reason;
                }
            }
        }
    }

    /// Made-up terminal updates for runs the engine gives up on, applied
    /// into `change`.
    fn given_up(
        &self,
        tasks: &[TaskId],
        reason: Reason,
        message: &str,
        now: Now,
        change: &mut Change,
    ) -> StoredBatch {
        let mut batch = StatusBatch::new(&self.registry, &self.hostnames);
        for task in tasks {
            batch.apply(
                Ok(task.clone()),
                StatusUpdate {
                    state: PodState::Lost,
                    mesos_state: None,
                    reason: Some(reason),
                    message: Some(message.to_owned()),
                    healthy: None,
                    agent: None,
                    timestamp: now.unix_ms,
                },
            );
        }
        let (runs, events, stored) = batch.finish();
        change.runs = runs;
        change.events = events;
        stored
    }

    // ----- API ----------------------------------------------------------

    fn api_persisted(
        &mut self,
        request: RequestId,
        then: api::Then,
        result: Result<Revision, StoreError>,
        now: Now,
    ) -> Vec<Action> {
        let revision = match result {
            Ok(revision) => revision,
            Err(e) => {
                return vec![Action::Reply {
                    request,
                    result: Err(EngineError::Store(e)),
                }]
            }
        };
        let (reply, job, exists) = api::apply(&mut self.registry, then, revision);
        if exists {
            self.enqueue(&job, Duration::ZERO, now.instant);
        } else {
            self.pending.remove_job(&job);
        }
        vec![Action::Reply {
            request,
            result: Ok(reply),
        }]
    }

    // ----- subscription -------------------------------------------------

    fn subscribed(&mut self, now: Now) -> Vec<Action> {
        self.subscribed = true;
        self.suppressed = None;
        self.offers.clear();
        let mut actions = self.explicit_reconcile();
        actions.push(Action::Send(Call::Reconcile { tasks: Vec::new() }));
        self.next_reconcile = Some(now.instant + self.config.reconcile_interval);
        self.enqueue_all(now.instant);
        self.update_offer_interest(&mut actions);
        actions
    }

    /// RECONCILE calls for every run that may be live, in chunks.
    fn explicit_reconcile(&self) -> Vec<Action> {
        let live: Vec<(String, Option<AgentId>)> = self
            .registry
            .live_runs()
            .map(|(instance, run)| (instance.task_id(run.run).to_string(), run.agent.clone()))
            .collect();
        tracing::info!(tasks = live.len(), "reconciling live runs");
        live.chunks(self.config.reconcile_chunk.max(1))
            .map(|chunk| {
                Action::Send(Call::Reconcile {
                    tasks: chunk.to_vec(),
                })
            })
            .collect()
    }

    fn periodic_reconcile(&mut self, now: Now) -> Vec<Action> {
        self.next_reconcile = Some(now.instant + self.config.reconcile_interval);
        if !self.subscribed {
            return Vec::new();
        }
        let mut actions = self.explicit_reconcile();
        actions.push(Action::Send(Call::Reconcile { tasks: Vec::new() }));
        actions
    }

    /// SUPPRESS when nothing is pending, REVIVE when something is; only on
    /// change.
    fn update_offer_interest(&mut self, actions: &mut Vec<Action>) {
        if !self.subscribed {
            return;
        }
        let want = !self.pending.is_empty();
        if self.suppressed == Some(!want) {
            return;
        }
        self.suppressed = Some(!want);
        tracing::debug!(revive = want, "offer interest changed");
        actions.push(Action::Send(if want {
            Call::Revive
        } else {
            Call::Suppress
        }));
    }

    // ----- the job queue ------------------------------------------------

    /// Plans `job` after `after`, or sooner if already queued sooner.
    fn enqueue(&mut self, job: &JobId, after: Duration, now: Instant) {
        self.queue
            .schedule(job, |queued| Due::deadline(queued, now + after));
    }

    /// Plans `job` once its live status updates pause (see [`plan_due`]).
    fn enqueue_settled(&mut self, job: &JobId, now: Instant) {
        let settle = self.config.update_settle;
        self.queue
            .schedule(job, |queued| Due::settled(queued, now, settle));
    }

    fn enqueue_all(&mut self, now: Instant) {
        for job in self.registry.ids_by_creation() {
            self.enqueue(&job, Duration::ZERO, now);
        }
    }

    // ----- planning one job ---------------------------------------------

    fn plan_job(&mut self, job_id: JobId, now: Now) -> Vec<Action> {
        let Some(entry) = self.registry.get(&job_id) else {
            self.pending.remove_job(&job_id);
            let mut actions = Vec::new();
            self.update_offer_interest(&mut actions);
            return actions;
        };
        let plan = reconcile::plan(
            &entry.job,
            &entry.instances,
            &self.facts,
            &self.config,
            now.unix_ms,
        );
        tracing::debug!(job = %job_id, launches = plan.launch.len(), "planned");
        let waiting = self.waiting_runs(&job_id, plan.launch);
        let mut change = Change::default();
        let lost = (!plan.mark_lost.is_empty()).then(|| {
            self.given_up(
                &plan.mark_lost,
                Reason::AgentRemoved,
                "agent lost",
                now,
                &mut change,
            )
        });
        let (kills, reconcile) = if self.subscribed {
            (plan.kill, plan.reconcile)
        } else {
            (Vec::new(), Vec::new())
        };
        change.kills = kills
            .iter()
            .map(|k| KillRecord {
                task_id: k.task_id.clone(),
                at: now.unix_ms,
                reason: k.reason,
            })
            .collect();
        if plan.forget {
            change.jobs.push(JobWrite::Delete(job_id.clone()));
        }
        let then = PlanThen {
            lost,
            kills,
            reconcile,
            waiting,
            requeue_after: plan.requeue_after,
            forget: plan.forget,
        };
        if change.is_empty() {
            return self.finish_plan(job_id, then, now);
        }
        self.persist(change, Awaiting::Plan { job: job_id, then })
    }

    /// The runs of `job`'s plan, as placement will take them.
    fn waiting_runs(
        &self,
        job_id: &JobId,
        launches: Vec<reconcile::PendingLaunch>,
    ) -> Vec<Pending> {
        let Some(entry) = self.registry.get(job_id) else {
            return Vec::new();
        };
        let job = &entry.job;
        // The instances without an override of their own share one copy of
        // the default spec.
        let default_pod = Arc::new(job.spec.default_spec.clone());
        let default_demand = pod_demand(&default_pod, &self.config.executor_overhead);
        let sla = SlaKey {
            priority: job.spec.sla.as_ref().map_or(0, |s| s.priority),
            created_at: job.created_at,
        };
        // In the plan's order (instances in order): placement's order
        // within the job.
        launches
            .into_iter()
            .map(|launch| {
                let (pod, demand) = match job.spec.pod_spec(launch.task_id.instance.instance) {
                    Cow::Borrowed(_) => (default_pod.clone(), default_demand),
                    Cow::Owned(own) => {
                        let demand = pod_demand(&own, &self.config.executor_overhead);
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
            .collect()
    }

    fn finish_plan(&mut self, job_id: JobId, then: PlanThen, now: Now) -> Vec<Action> {
        let mut actions = Vec::new();
        for kill in then.kills {
            actions.push(Action::Send(Call::Kill {
                task_id: kill.task_id.to_string(),
                agent_id: kill.agent_id,
                grace: kill.grace,
            }));
        }
        if !then.reconcile.is_empty() {
            let tasks = then
                .reconcile
                .into_iter()
                .map(|(task, agent)| (task.to_string(), agent))
                .collect();
            actions.push(Action::Send(Call::Reconcile { tasks }));
        }
        self.pending.set_job(&job_id, then.waiting);
        if let Some(after) = then.requeue_after {
            self.enqueue(&job_id, after, now.instant);
        }
        self.update_offer_interest(&mut actions);
        if !self.pending.is_empty() && !self.offers.is_empty() && self.hold_until.is_none() {
            self.hold_until = Some(now.instant + self.config.offer_hold);
        }
        actions
    }

    // ----- status updates -----------------------------------------------

    /// Stores the oldest batch of the backlog (then acknowledges it).
    fn store_updates(&mut self, now: Now) -> Vec<Action> {
        let updates = self.backlog.take(self.config.update_batch.max(1));
        if updates.is_empty() {
            return Vec::new();
        }
        let mut batch = StatusBatch::new(&self.registry, &self.hostnames);
        let mut acks = Vec::with_capacity(updates.len());
        let mut revived = Vec::new();
        for update in updates {
            let state = PodState::from_task_state(update.state);
            if let Some(agent) = &update.agent_id {
                if state.is_live() {
                    revived.push(agent.clone());
                }
            }
            if let Some(ack) = update.ack() {
                acks.push(ack);
            }
            let task_id = TaskId::parse(&update.task_id).map_err(|_| update.task_id.clone());
            batch.apply(task_id, status_update(update, state, now));
        }
        for agent in revived {
            self.facts.lost_agents.remove(&agent);
        }
        let (runs, events, mut stored) = batch.finish();
        stored.acks = acks;
        let change = Change {
            runs,
            events,
            ..Change::default()
        };
        if change.is_empty() {
            return self.updates_stored(stored, now);
        }
        self.persist(change, Awaiting::Updates(stored))
    }

    fn updates_stored(&mut self, stored: StoredBatch, now: Now) -> Vec<Action> {
        self.put_runs(&stored.runs);
        // A terminal update may need a relaunch now; a live one rarely
        // changes the plan, so its job is looked at once the burst settles
        // (a burst of updates costs one plan per job, not one per batch).
        for (job, terminal) in &stored.touched {
            if *terminal {
                self.enqueue(job, Duration::ZERO, now.instant);
            } else {
                self.enqueue_settled(job, now.instant);
            }
        }
        let mut actions = Vec::with_capacity(stored.strays.len() + stored.acks.len());
        for (task, agent) in stored.strays {
            tracing::info!(%task, "killing a task that should not be running");
            actions.push(Action::Send(Call::Kill {
                task_id: task,
                agent_id: agent,
                grace: Duration::from_secs(5),
            }));
        }
        actions.extend(
            stored
                .acks
                .into_iter()
                .map(|ack| Action::Send(Call::Acknowledge(ack))),
        );
        actions
    }

    // ----- offers and placement -----------------------------------------

    fn start_round(&mut self, now: Now) -> Vec<Action> {
        if !self.subscribed {
            self.offers.clear();
            return Vec::new();
        }
        if self.offers.is_empty() {
            return Vec::new();
        }
        if self.pending.is_empty() {
            // Nothing to place: no need to look at what runs where.
            let mut actions = Vec::new();
            self.keep_or_decline(Vec::new(), now, &mut actions);
            return actions;
        }
        // Taken out (not cloned: a PodSpec each); what this round does not
        // consume goes back when it ends.
        let pending = self.pending.take_in_sla_order();
        self.round = Some(Round::start(
            pending,
            &self.offers,
            &self.registry,
            &self.zones,
            self.chain.clone(),
            now.instant,
        ));
        self.continue_round(now)
    }

    /// Places until the next chunk is ready (then hands its intents out
    /// to be stored), or ends the round.
    fn continue_round(&mut self, now: Now) -> Vec<Action> {
        loop {
            let Some(round) = self.round.as_mut() else {
                return Vec::new();
            };
            let next = round.next(
                &mut self.offers,
                &self.registry,
                self.config.refuse,
                now.instant,
                now.unix_ms,
            );
            let Some(chunk) = next else {
                let Some(round) = self.round.take() else {
                    return Vec::new();
                };
                return self.end_round(round.end(now.instant), now);
            };
            if chunk.records.is_empty() {
                // Every run of the chunk was refused: their plans are stale.
                for job in &chunk.refused {
                    self.enqueue(job, Duration::ZERO, now.instant);
                }
                continue;
            }
            let change = Change {
                launches: chunk.records.clone(),
                ..Change::default()
            };
            return self.persist(change, Awaiting::Chunk(chunk));
        }
    }

    fn chunk_persisted(
        &mut self,
        chunk: Chunk,
        result: Result<Revision, StoreError>,
        now: Now,
    ) -> Vec<Action> {
        for job in &chunk.refused {
            self.enqueue(job, Duration::ZERO, now.instant);
        }
        if let Err(e) = result {
            // Nothing of this chunk recorded, so nothing of it (or of the
            // chunks after it) is launched: those runs stay pending and
            // their offers are declined.
            tracing::error!(error = %e, "cannot record launch intents; declining");
            if let Some(round) = self.round.as_mut() {
                round.chunk_failed(chunk);
            }
            return self.continue_round(now);
        }
        let mut actions = Vec::with_capacity(chunk.hosts.len() + 1);
        for record in &chunk.records {
            self.registry.put_run(
                &record.task_id.instance,
                Run::launching(
                    record.task_id.run,
                    record.agent_id.clone(),
                    record.spec_version,
                    record.at,
                ),
            );
            self.pending_reasons.remove(&record.task_id);
        }
        for (host, runs) in chunk.hosts {
            let mut tasks = Vec::with_capacity(runs.len());
            for run in runs {
                let job = run.pending.launch.task_id.instance.job.clone();
                self.enqueue(&job, self.config.launch_timeout, now.instant);
                tasks.push(LaunchTask {
                    task_id: run.pending.launch.task_id,
                    pod: run.pending.pod,
                    ports: run.ports,
                });
            }
            tracing::debug!(agent = %host.agent_id, tasks = tasks.len(), "accepting");
            actions.push(Action::Send(Call::Accept {
                offer_ids: host.offer_ids,
                agent_id: host.agent_id,
                allocation_role: host.allocation_role,
                tasks,
                refuse: chunk.refuse,
            }));
        }
        actions.extend(self.continue_round(now));
        actions
    }

    /// Records why the runs left over wait (when that changed), then
    /// finishes the round.
    fn end_round(&mut self, end: RoundEnd, now: Now) -> Vec<Action> {
        if !end.misses.is_empty() {
            tracing::debug!(
                unplaced = end.misses.len(),
                "runs without a fitting offer this round"
            );
        }
        let mut reasons = Vec::new();
        for (at, miss) in &end.misses {
            let task = &end.unplaced_runs[*at].launch.task_id;
            let reason = miss.summary();
            if self.pending_reasons.get(task) == Some(&reason) {
                continue;
            }
            let metrics = serde_json::json!({
                "nodes_evaluated": miss.hosts_evaluated,
                "nodes_filtered": miss.per_filter(),
                "reasons": miss.rejections.iter().map(|(r, n)| {
                    serde_json::json!({"filter": r.filter, "reason": r.reason, "nodes": n})
                }).collect::<Vec<_>>(),
            });
            self.pending_reasons.insert(task.clone(), reason.clone());
            reasons.push(PendingReason {
                pod: task.instance.clone(),
                info: Some(PendingInfo {
                    reason,
                    metrics: metrics.to_string(),
                }),
                at: now.unix_ms,
            });
        }
        if reasons.is_empty() {
            return self.round_ended(end, now);
        }
        let change = Change {
            pending_reasons: reasons,
            ..Change::default()
        };
        self.persist(change, Awaiting::PendingReasons(end))
    }

    fn round_ended(&mut self, end: RoundEnd, now: Now) -> Vec<Action> {
        let round_size = end.unplaced_runs.len() + end.launched;
        for p in end.unplaced_runs {
            self.pending.put_back(p);
        }
        self.pending.forget_empty_jobs();
        let mut actions = Vec::new();
        if end.failed {
            let mut ids = self.offers.take_offer_ids();
            ids.extend(end.unused.into_iter().flat_map(|h| h.offer_ids));
            decline(ids, Duration::ZERO, &mut actions);
            return actions;
        }
        self.keep_or_decline(end.unused, now, &mut actions);
        tracing::debug!(
            pending = round_size,
            placed = end.launched,
            elapsed_ms = end.elapsed.as_secs_f64() * 1e3,
            placement_ms = end.placement.as_secs_f64() * 1e3,
            "placement round"
        );
        actions
    }

    /// Offers a round did not use (those still held, and `taken` ones it
    /// took out and did not use): declined; or, when no run waits, kept
    /// for a while (`idle_offer_hold`), so that the next job launches at
    /// once. Then SUPPRESS or REVIVE as the pending runs say.
    fn keep_or_decline(&mut self, taken: Vec<HeldHost>, now: Now, actions: &mut Vec<Action>) {
        for host in taken {
            self.offers.put_back(host);
        }
        if self.pending.is_empty() && !self.config.idle_offer_hold.is_zero() {
            if self.idle_until.is_none() && !self.offers.is_empty() {
                self.idle_until = Some(now.instant + self.config.idle_offer_hold);
            }
        } else {
            let refuse = if self.pending.is_empty() {
                self.config.refuse
            } else {
                self.config.pending_refuse
            };
            let ids = self.offers.take_offer_ids();
            decline(ids, refuse, actions);
        }
        self.update_offer_interest(actions);
    }

    /// The idle hold is over: declines the kept offers if still no run
    /// needs them (if one does, a placement round is due and uses them).
    fn decline_idle_offers(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        if !self.pending.is_empty() {
            return actions;
        }
        let ids = self.offers.take_offer_ids();
        decline(ids, self.config.refuse, &mut actions);
        actions
    }
}

/// A DECLINE of `offer_ids`, if there are any.
fn decline(offer_ids: Vec<OfferId>, refuse: Duration, actions: &mut Vec<Action>) {
    if offer_ids.is_empty() {
        return;
    }
    tracing::debug!(offers = offer_ids.len(), ?refuse, "declining");
    actions.push(Action::Send(Call::Decline { offer_ids, refuse }));
}

/// A Mesos update in the model's terms.
fn status_update(update: TaskUpdate, state: PodState, now: Now) -> StatusUpdate {
    StatusUpdate {
        state,
        mesos_state: Some(update.state),
        reason: update.reason,
        message: update.message,
        healthy: update.healthy,
        agent: update.agent_id,
        timestamp: update.timestamp.unwrap_or(now.unix_ms),
    }
}
