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
//!   each call does the most urgent due item only (a job's plan, then
//!   reconciliation, then a placement round, then a batch of status
//!   updates (before the round if one may cancel a launch; see
//!   [`Engine::on_updates`]), then idle offers), so that the runner can
//!   take other inputs (API writes first) between them.
//!
//! # Layout
//! The engine composes parts that each own their state; this file routes
//! inputs to them and stored changes back.
//! - [`action`]: the inputs besides Mesos facts, and the actions out.
//! - [`config`]: the settings, each with its default and why.
//! - [`registry`]: the jobs and runs, as stored.
//! - [`cluster`]: lost agents, zones and hostnames.
//! - [`subscription`]: the framework id, offer interest, reconciliation.
//! - [`job_queue`] with [`plan_due`]: which job is planned next, and when.
//! - [`reconcile`]: one job's plan, over the model's rules; `planning`
//!   makes it into a change and what follows it.
//! - [`recovery`]: a lost store's jobs rebuilt from the master's task list.
//! - `api`: API writes; `api_pools`: resource pool writes, with
//!   [`pool_usage`] (the jobs in each pool and what their runs hold).
//! - `statuses`: status updates (the model's rule per run), stored in
//!   group commits from the [`update_backlog`].
//! - `maintenance`: hosts drained for maintenance (API requests, inverse
//!   offers), found drained, taken DOWN through the master.
//! - [`offers`] with [`offer_book`]: offers held, kept and declined.
//! - [`launches`] with [`pending_runs`] and [`round`]: the runs waiting for
//!   a host, placed a step at a time, each chunk's intents stored before
//!   its ACCEPTs; `placing` drives a round through the engine's parts.
//! - [`pools_admission`]: which waiting runs a round may place, by their
//!   resource pools' limits and fair shares; `preempting`: the runs killed
//!   so that pools below their entitlement get it.

pub mod action;
mod api;
mod api_pools;
pub mod cluster;
pub mod config;
pub mod job_queue;
pub mod launches;
mod maintenance;
pub mod offer_book;
pub mod offers;
pub mod pending_runs;
pub mod pipeline_runs;
mod placing;
pub mod plan_due;
mod planning;
pub mod pool_usage;
pub mod pools_admission;
mod preempting;
pub mod reconcile;
pub mod recovery;
pub mod registry;
pub mod round;
mod statuses;
pub mod subscription;
pub mod update_backlog;

pub use action::{
    Action, ApiRequest, Call, EngineError, JobAmend, LaunchTask, Now, OperatorCall, PoolsView,
    Reply, RequestId, WorkflowAction,
};
pub use config::EngineConfig;

use crate::model::access::Identity;
use crate::model::change::Change;
use crate::model::host::HostMaintenance;
use crate::model::ids::{AgentId, JobId, OfferId, TaskId};
use crate::model::job::Revision;
use crate::model::offer::Offer;
use crate::model::policies::preemption::Standing;
use crate::model::pool::{PoolId, PoolTree};
use crate::model::resources::Resources;
use crate::model::state::PodState;
use crate::model::task_update::TaskUpdate;
use crate::store::{Snapshot, StoreError};
use cluster::ClusterFacts;
use drover_proto::v1::task_status::Reason;
use drover_proto::v1::TaskState;
use job_queue::JobQueue;
use launches::Launches;
use offers::HeldOffers;
use plan_due::Due;
use planning::PlanThen;
use registry::Registry;
use round::{Chunk, RoundEnd};
use statuses::StoredBatch;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use subscription::Subscription;
use update_backlog::UpdateBacklog;

/// The engine. See the module doc for the calling contract.
pub struct Engine {
    config: EngineConfig,
    /// The jobs and runs, as stored.
    registry: Registry,
    /// The resource pools, as stored.
    pools: PoolTree,
    /// Kubeflow pipeline runs, as stored.
    pipeline_runs: pipeline_runs::PipelineRuns,
    cluster: ClusterFacts,
    subscription: Subscription,
    offers: HeldOffers,
    queue: JobQueue,
    launches: Launches,
    /// Status updates received and not yet stored (nor acknowledged).
    backlog: UpdateBacklog,
    /// What the change handed out last is for, until `on_persisted`.
    awaiting: Option<Awaiting>,
    /// Preemptions sent lately and the next look for more.
    preemptions: preempting::Preemptions,
    /// The pools' standings last computed, until taken for the metrics.
    pool_standings: Option<BTreeMap<PoolId, Standing>>,
    /// When to look for draining hosts left empty (set as runs end or a
    /// drain starts; None: nothing to look for).
    hosts_due: Option<Instant>,
    /// Bumped on every change of the hosts' maintenance, for readers.
    hosts_generation: u64,
    /// When to ask the master again to take DRAINED hosts DOWN (after a
    /// failed call, and after a restart that found some).
    retry_down: Option<Instant>,
    /// When a pipeline node's retry backoff ends (None: none waits).
    pipeline_due: Option<Instant>,
}

/// A host as readers see it: its agent, its maintenance state and record.
#[derive(Debug, Clone, PartialEq)]
pub struct HostInfo {
    /// The hostname.
    pub hostname: String,
    /// Its agent, once an offer or a run named it.
    pub agent_id: Option<AgentId>,
    /// Its maintenance state (UP without a record).
    pub state: crate::model::host::HostState,
    /// Its maintenance record, if in maintenance.
    pub maintenance: Option<HostMaintenance>,
}

/// What follows a stored change.
enum Awaiting {
    Api {
        request: RequestId,
        then: api::Then,
    },
    Updates(StoredBatch),
    Plan {
        job: JobId,
        then: PlanThen,
    },
    Subscribed,
    FrameworkRemoved(StoredBatch),
    Chunk(Chunk),
    PendingReasons(RoundEnd),
    Preempted(Vec<preempting::Preemption>),
    /// Hosts found drained: what to ask of the master once stored.
    Drained(Vec<HostMaintenance>),
    /// Hosts' records written for another reason (the master took them
    /// DOWN, an inverse offer came or went).
    HostsWritten,
    /// Pipeline runs moved on from their node jobs' ends.
    Pipeline(api::Then),
}

impl Engine {
    /// An engine over what the store holds; every job is planned at once.
    pub fn recover(snapshot: Snapshot, config: EngineConfig, now: Now) -> Engine {
        let kfp_images = config.kfp_images;
        let mut cluster = ClusterFacts::with_hostnames(snapshot.hostnames);
        cluster.apply_host_writes(
            &snapshot
                .hosts
                .into_iter()
                .map(crate::model::change::HostWrite::Put)
                .collect::<Vec<_>>(),
        );
        let mut engine = Engine {
            config,
            registry: Registry::from_jobs(snapshot.jobs),
            pools: PoolTree::from_pools(snapshot.pools),
            pipeline_runs: pipeline_runs::PipelineRuns::from_records(snapshot.pipeline_runs)
                .with_experiments(snapshot.experiments)
                .with_images(kfp_images),
            cluster,
            subscription: Subscription::new(snapshot.framework_id),
            offers: HeldOffers::default(),
            queue: JobQueue::default(),
            launches: Launches::default(),
            backlog: UpdateBacklog::default(),
            awaiting: None,
            preemptions: preempting::Preemptions::default(),
            pool_standings: None,
            hosts_due: Some(now.instant),
            hosts_generation: 0,
            retry_down: Some(now.instant),
            pipeline_due: None,
        };
        engine.wake_for_pipeline_retries(now);
        engine.enqueue_all(now.instant);
        engine
    }

    /// The framework id to subscribe with.
    pub fn framework_id(&self) -> Option<&str> {
        self.subscription.framework_id.as_deref()
    }

    /// Runs waiting for a host.
    pub fn pending_len(&self) -> usize {
        self.launches.waiting()
    }

    /// Status updates received and not yet stored.
    pub fn backlog_len(&self) -> usize {
        self.backlog.len()
    }

    /// Whether the engine is subscribed (calls reach the master).
    pub fn is_subscribed(&self) -> bool {
        self.subscription.subscribed
    }

    /// The jobs and runs as stored (for tests and the simulation's checks).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The resource pools as stored.
    pub fn pools(&self) -> &PoolTree {
        &self.pools
    }

    /// What each pool's live runs hold now (see [`pool_usage::usage`]):
    /// a pool's allocation, a parent's the sum of its children's.
    pub fn pool_usage(&self) -> std::collections::BTreeMap<PoolId, Resources> {
        pool_usage::usage(&self.registry, &self.pools, &Resources::default())
    }

    /// The jobs whose stored state changed since this was last called,
    /// each as it now is (None: deleted), for readers: what the engine
    /// holds is what the store committed.
    pub fn take_changed_jobs(&mut self) -> Vec<(JobId, Option<crate::model::job::JobView>)> {
        self.registry.take_changed()
    }

    /// Every host Drover knows, with its maintenance state, by hostname.
    pub fn hosts(&self) -> Vec<HostInfo> {
        let mut hosts: std::collections::BTreeMap<&str, HostInfo> = self
            .cluster
            .hostnames
            .iter()
            .map(|(agent, host)| {
                (
                    host.as_str(),
                    HostInfo {
                        hostname: host.clone(),
                        agent_id: Some(agent.clone()),
                        state: self.cluster.host_state(host),
                        maintenance: self.cluster.maintenance.get(host).cloned(),
                    },
                )
            })
            .collect();
        for (host, m) in &self.cluster.maintenance {
            hosts.entry(host.as_str()).or_insert_with(|| HostInfo {
                hostname: host.clone(),
                agent_id: None,
                state: m.state,
                maintenance: Some(m.clone()),
            });
        }
        hosts.into_values().collect()
    }

    /// Bumped whenever [`Engine::hosts`] may have changed.
    pub fn hosts_generation(&self) -> u64 {
        self.hosts_generation + self.cluster.hostnames.len() as u64
    }

    /// Whether a handed-out change awaits [`Engine::on_persisted`].
    pub fn is_awaiting_persist(&self) -> bool {
        self.awaiting.is_some()
    }

    // ----- inputs -------------------------------------------------------

    /// An API request.
    /// `caller` is who asks: refused with PERMISSION_DENIED unless its role
    /// and the job's owner allow it ([`crate::model::access`]), and
    /// recorded on what it changes.
    pub fn on_api(
        &mut self,
        request: RequestId,
        body: ApiRequest,
        caller: &Identity,
        now: Now,
    ) -> Vec<Action> {
        if let Some(actions) = self.on_pipeline_request(request, &body, caller, now) {
            return actions;
        }
        let decision = api::decide(
            &self.registry,
            &self.pools,
            &self.cluster,
            &self.config,
            body,
            caller,
            now.unix_ms,
        );
        match decision {
            api::Decision::Refuse(e) => vec![Action::Reply {
                request,
                result: Err(e),
            }],
            api::Decision::Write(change, then) => {
                self.persist(*change, Awaiting::Api { request, then })
            }
            api::Decision::Answer(reply) => vec![Action::Reply {
                request,
                result: Ok(reply),
            }],
            api::Decision::Replan(job) => {
                self.enqueue(&job.job_id, Duration::ZERO, now.instant);
                vec![Action::Reply {
                    request,
                    result: Ok(Reply::Job(job)),
                }]
            }
        }
    }

    /// A pipeline run request (issue 23), if `body` is one: reads are
    /// answered from what the engine holds, writes stored.
    fn on_pipeline_request(
        &mut self,
        request: RequestId,
        body: &ApiRequest,
        caller: &Identity,
        now: Now,
    ) -> Option<Vec<Action>> {
        let reply = |result| Some(vec![Action::Reply { request, result }]);
        match body {
            ApiRequest::GetPipelineRun { run_id } => reply(
                self.pipeline_runs
                    .get(run_id)
                    .map(|r| Reply::PipelineRun(Box::new(r.clone())))
                    .ok_or_else(|| EngineError::PipelineRunNotFound(run_id.clone())),
            ),
            ApiRequest::ListPipelineRuns => reply(Ok(Reply::PipelineRuns(
                self.pipeline_runs.list().into_iter().cloned().collect(),
            ))),
            ApiRequest::ListExperiments => reply(Ok(Reply::Experiments(
                self.pipeline_runs.experiments().to_vec(),
            ))),
            ApiRequest::CreatePipelineRun(_)
            | ApiRequest::TerminatePipelineRun { .. }
            | ApiRequest::RetryPipelineRun { .. }
            | ApiRequest::SetPipelineRunArchived { .. }
            | ApiRequest::DeletePipelineRun { .. }
            | ApiRequest::ReportPipelineRunMetrics { .. }
            | ApiRequest::CreateExperiment(_) => {
                let owner = caller.recorded_name().to_owned();
                let allowed = crate::model::access::authorize(
                    caller,
                    crate::model::access::Act::Job {
                        owner: &owner,
                        owning_team: "",
                    },
                    || match body {
                        ApiRequest::CreateExperiment(e) => {
                            format!("create experiment {:?}", e.name)
                        }
                        _ => "run a pipeline".to_string(),
                    },
                );
                if let Err(denied) = allowed {
                    return reply(Err(denied.into()));
                }
                let mut body = body.clone();
                if let ApiRequest::CreatePipelineRun(new) = &mut body {
                    // Its node jobs are the creator's, as a job created
                    // through the job API is.
                    new.owner = owner;
                }
                match self.pipeline_runs.decide(&self.registry, body, now.unix_ms) {
                    Ok((change, then)) => {
                        Some(self.persist(change, Awaiting::Api { request, then }))
                    }
                    Err(e) => reply(Err(e)),
                }
            }
            _ => None,
        }
    }

    /// Subscribed (again): persist the framework id, forget old offers, plan
    /// every job, then reconcile every run that may be live explicitly,
    /// then implicitly (see [`Engine::on_tick`]).
    pub fn on_subscribed(&mut self, framework_id: String, _now: Now) -> Vec<Action> {
        self.subscription.framework_id = Some(framework_id.clone());
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
        self.subscription.subscribed = false;
        self.offers.clear();
        Vec::new()
    }

    /// The master removed the framework: its tasks are gone, and a new
    /// framework is being registered.
    pub fn on_framework_removed(&mut self, now: Now) -> Vec<Action> {
        tracing::error!("framework removed by the master; its tasks are lost");
        self.subscription.subscribed = false;
        self.subscription.framework_id = None;
        self.offers.clear();
        let live: Vec<TaskId> = self
            .registry
            .live_runs()
            .map(|(instance, run)| instance.task_id(run.run))
            .collect();
        let mut change = Change {
            framework_id: Some(None),
            ..Change::default()
        };
        let stored = statuses::given_up(
            &live,
            Reason::FrameworkRemoved,
            "framework removed by the master",
            &self.registry,
            &self.cluster,
            now,
            &mut change,
        );
        self.persist(change, Awaiting::FrameworkRemoved(stored))
    }

    /// Offers: held for [`EngineConfig::offer_hold`], then placed on. A
    /// second copy of an offer id still held is ignored (logged at WARN):
    /// the first copy is kept, see [`offer_book::OfferBook::add`].
    pub fn on_offers(&mut self, offers: Vec<Offer>, now: Now) -> Vec<Action> {
        tracing::debug!(
            offers = offers.len(),
            pending = self.launches.waiting(),
            "offers received"
        );
        // A host an inverse offer drains is offered with no window: the
        // operator's maintenance is over (Mesos drops a machine from the
        // schedule when it comes UP, and a restarted agent may keep its
        // id), so its drain ends and the offer is used.
        let windows_over = maintenance::windows_over(&self.cluster, &offers);
        let mut unplaceable = Vec::new();
        for offer in &offers {
            let window_over = windows_over.contains(&offer.hostname);
            if !window_over
                && !self
                    .cluster
                    .is_placeable(offer, now.unix_ms, self.config.maintenance_lookahead)
            {
                // In or near maintenance: nothing goes there. Its agent is
                // still alive and named.
                self.cluster.saw_offer(offer);
                if !self.offers.holds(&offer.id) {
                    unplaceable.push(offer.id.clone());
                }
                continue;
            }
            if !self.offers.add(offer, now.instant, self.config.offer_hold) {
                tracing::warn!(
                    offer = offer.id.as_str(),
                    agent = %offer.agent_id,
                    "offer ignored: an offer with its id is held already; the first copy is kept"
                );
                continue;
            }
            self.cluster.saw_offer(offer);
        }
        let mut actions: Vec<Action> = offers::decline(unplaceable, self.config.refuse)
            .map(Action::Send)
            .into_iter()
            .collect();
        if !windows_over.is_empty() {
            tracing::info!(hosts = ?windows_over, "offered with no maintenance window: drain ended");
            let change = Change {
                hosts: windows_over
                    .into_iter()
                    .map(crate::model::change::HostWrite::Remove)
                    .collect(),
                ..Change::default()
            };
            self.enqueue_all(now.instant);
            actions.extend(self.persist(change, Awaiting::HostsWritten));
        }
        actions
    }

    /// An inverse offer: the master wants `agent` back for maintenance
    /// from `unavailability`'s start. Its host is drained as for
    /// StartMaintenance, and the inverse offer accepted once no Drover
    /// run is left on it ([`maintenance`]).
    pub fn on_inverse_offer(
        &mut self,
        inverse_offer_id: String,
        agent_id: AgentId,
        unavailability: crate::model::host::Unavailability,
        now: Now,
    ) -> Vec<Action> {
        self.cluster
            .unavailability
            .insert(agent_id.clone(), unavailability);
        let Some(record) =
            maintenance::on_inverse_offer(&self.cluster, &inverse_offer_id, &agent_id, now.unix_ms)
        else {
            if self.cluster.hostnames.contains_key(&agent_id) {
                self.hosts_due = Some(now.instant);
            } else {
                tracing::warn!(agent = %agent_id, "inverse offer for an agent Drover has not seen; accepted");
                return vec![Action::Send(Call::AcceptInverseOffers {
                    inverse_offer_ids: vec![inverse_offer_id],
                })];
            }
            return Vec::new();
        };
        tracing::info!(host = %record.hostname, inverse_offer = %inverse_offer_id, "inverse offer: draining");
        // A host drained already gives the agent back at once.
        let mut actions = Vec::new();
        if record.state != crate::model::host::HostState::Draining {
            actions.push(Action::Send(Call::AcceptInverseOffers {
                inverse_offer_ids: vec![inverse_offer_id],
            }));
        }
        let change = Change {
            hosts: vec![crate::model::change::HostWrite::Put(record)],
            ..Change::default()
        };
        self.enqueue_all(now.instant);
        actions.extend(self.persist(change, Awaiting::HostsWritten));
        actions
    }

    /// An inverse offer was rescinded: the drain it started is cancelled.
    pub fn on_inverse_rescind(&mut self, inverse_offer_id: &str, _now: Now) -> Vec<Action> {
        let Some(host) = maintenance::on_inverse_rescind(&self.cluster, inverse_offer_id) else {
            return Vec::new();
        };
        tracing::info!(%host, inverse_offer = %inverse_offer_id, "inverse offer rescinded: drain cancelled");
        let change = Change {
            hosts: vec![crate::model::change::HostWrite::Remove(host)],
            ..Change::default()
        };
        self.persist(change, Awaiting::HostsWritten)
    }

    /// How an operator call went: a START_MAINTENANCE the master took
    /// makes its hosts DOWN; a failed one is tried again after
    /// [`EngineConfig::operator_retry`] (the hosts stay DRAINED).
    pub fn on_operator_result(
        &mut self,
        call: OperatorCall,
        result: Result<(), String>,
        now: Now,
    ) -> Vec<Action> {
        match (call, result) {
            (OperatorCall::StartMaintenance { hostnames }, Ok(())) => {
                let down = maintenance::taken_down(&self.cluster, &hostnames);
                if down.is_empty() {
                    return Vec::new();
                }
                let change = Change {
                    hosts: down
                        .into_iter()
                        .map(crate::model::change::HostWrite::Put)
                        .collect(),
                    ..Change::default()
                };
                self.persist(change, Awaiting::HostsWritten)
            }
            (OperatorCall::StartMaintenance { hostnames }, Err(e)) => {
                tracing::warn!(hosts = ?hostnames, error = %e, "the master did not take the hosts down; retrying");
                self.retry_down = Some(now.instant + self.config.operator_retry);
                Vec::new()
            }
            (OperatorCall::StopMaintenance { hostnames }, Ok(())) => {
                tracing::info!(hosts = ?hostnames, "the master has the hosts up again");
                vec![Action::Send(Call::Revive)]
            }
            (OperatorCall::StopMaintenance { hostnames }, Err(e)) => {
                tracing::warn!(hosts = ?hostnames, error = %e, "the master did not bring the hosts up");
                Vec::new()
            }
        }
    }

    /// Offers the master sent malformed (their reasons were logged where
    /// they were read): declined at once, refusing their agents for
    /// [`EngineConfig::refuse`]. But for an id already held: that is a
    /// second copy, ignored like any other (WARN), since declining the id
    /// would decline the first copy, which is kept.
    pub fn on_invalid_offers(&mut self, offer_ids: Vec<OfferId>, _now: Now) -> Vec<Action> {
        let (copies, invalid): (Vec<_>, Vec<_>) =
            offer_ids.into_iter().partition(|id| self.offers.holds(id));
        for offer_id in copies {
            tracing::warn!(
                offer = offer_id.as_str(),
                "malformed offer ignored: an offer with its id is held already; the first copy is kept"
            );
        }
        offers::decline(invalid, self.config.refuse)
            .map(Action::Send)
            .into_iter()
            .collect()
    }

    /// An offer was rescinded; its host's other offers are declined.
    pub fn on_rescind(&mut self, offer_id: &OfferId, _now: Now) -> Vec<Action> {
        self.offers
            .rescind(offer_id)
            .map(Action::Send)
            .into_iter()
            .collect()
    }

    /// The master reported an agent lost: its runs are unreachable from
    /// now (each job's plan applies its unreachable policy), and its
    /// offers void.
    pub fn on_agent_lost(&mut self, agent_id: AgentId, now: Now) -> Vec<Action> {
        tracing::warn!(agent = %agent_id, "agent lost");
        self.offers.remove_agent(&agent_id);
        self.cluster.lost(agent_id, now.unix_ms);
        self.enqueue_all(now.instant);
        Vec::new()
    }

    /// Status updates: they join the backlog, stored in group commits (see
    /// [`EngineConfig::update_group`]) and acknowledged once stored.
    /// Storing them after a placement round is safe, but for one kind: a
    /// run the engine gave up (its agent lost) that in fact succeeded. Its
    /// instance waits for a relaunch the next round would admit, and a
    /// batch instance that succeeded must not run again; so such an update
    /// makes the backlog go before the round.
    pub fn on_updates(&mut self, updates: Vec<TaskUpdate>, now: Now) -> Vec<Action> {
        for update in &updates {
            if let (TaskState::TaskFinished, Some(data), Ok(task)) =
                (update.state, &update.data, TaskId::parse(&update.task_id))
            {
                self.pipeline_runs
                    .note_outputs(task.instance.job.as_str(), data);
            }
        }
        let succeeded_after_lost = updates.iter().any(|update| {
            update.state == TaskState::TaskFinished
                && TaskId::parse(&update.task_id).is_ok_and(|task| {
                    self.registry.run(&task).is_some_and(|(run, _)| {
                        run.state == PodState::Lost || run.unreachable.is_some()
                    })
                })
        });
        self.backlog.push(updates, now.instant);
        if succeeded_after_lost {
            self.backlog.mark_urgent();
        }
        Vec::new()
    }

    /// When [`Engine::on_tick`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        let updates = self.backlog.since().map(|since| {
            if self.updates_grouped() {
                since
            } else {
                since + self.config.update_linger
            }
        });
        [
            self.queue.next_deadline(),
            self.offers.next_deadline(),
            updates,
            self.subscription.next_reconcile,
            self.preemption_deadline(),
            self.hosts_due,
            self.retry_down,
            self.pipeline_due,
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
        if self.hosts_due.is_some_and(|at| at <= now.instant) {
            self.hosts_due = None;
            let drained = maintenance::newly_drained(&self.cluster, &self.registry);
            if !drained.is_empty() {
                let change = Change {
                    hosts: drained
                        .iter()
                        .cloned()
                        .map(crate::model::change::HostWrite::Put)
                        .collect(),
                    ..Change::default()
                };
                return self.persist(change, Awaiting::Drained(drained));
            }
        }
        if self.pipeline_due.is_some_and(|at| at <= now.instant) {
            self.pipeline_due = None;
            // While a change is out, its `on_persisted` moves the runs on.
            if self.awaiting.is_none() {
                if let Some((change, then)) =
                    self.pipeline_runs.advance(&self.registry, now.unix_ms)
                {
                    return self.persist(change, Awaiting::Pipeline(then));
                }
                // Nothing launched: the wall clock lags the monotonic one
                // (wake again when it reaches the retry), or the run's
                // parallelism has no room (a node's end moves it on).
                self.pipeline_due = self
                    .pipeline_runs
                    .next_retry_ms()
                    .filter(|&at| at > now.unix_ms)
                    .map(|at| now.instant + Duration::from_millis(at.abs_diff(now.unix_ms)));
            }
        }
        if self.retry_down.is_some_and(|at| at <= now.instant) {
            self.retry_down = None;
            let hostnames = maintenance::awaiting_down(&self.cluster);
            if !hostnames.is_empty() {
                return vec![Action::Operator(OperatorCall::StartMaintenance {
                    hostnames,
                })];
            }
        }
        // After the plans, so that a REVIVE for the runs they leave waiting
        // goes first: the master answers a reconciliation on the stream
        // its offers take, and offers that follow the answers to 100,000
        // tasks arrived a second after a restart instead of at once.
        if self.subscription.subscribed
            && self
                .subscription
                .reconcile_due(now.instant, self.config.reconcile_interval)
        {
            return sends(subscription::reconciliation(
                &self.registry,
                self.config.reconcile_chunk,
            ));
        }
        if self.backlog.is_urgent() && self.offers.hold_due(now.instant) {
            return self.store_updates(now);
        }
        if self.offers.hold_over(now.instant) {
            return self.start_round(now);
        }
        if self.preemption_due(now.instant) {
            return self.preempt(now);
        }
        let lingered = self
            .backlog
            .since()
            .is_some_and(|since| since + self.config.update_linger <= now.instant);
        if self.updates_grouped() || lingered {
            return self.store_updates(now);
        }
        if self.offers.idle_over(now.instant) {
            return self.decline_idle_offers();
        }
        Vec::new()
    }

    /// The change handed out last was written (Ok, with its revision) or
    /// not (nothing of it is in the store).
    pub fn on_persisted(
        &mut self,
        change: &Change,
        result: Result<Revision, StoreError>,
        now: Now,
    ) -> Vec<Action> {
        let mut actions = self.after_stored(change, result, now);
        // Pipeline runs move on from what the registry now holds (a node
        // job that ended), one change at a time.
        if self.awaiting.is_none() && !matches!(actions.last(), Some(Action::Persist(_))) {
            if let Some((change, then)) = self.pipeline_runs.advance(&self.registry, now.unix_ms) {
                actions.extend(self.persist(change, Awaiting::Pipeline(then)));
            }
        }
        actions
    }

    /// Pipeline runs a stored change wrote or deleted, held as stored;
    /// and when a node's retry backoff next ends.
    fn pipeline_runs_stored(&mut self, then: &api::Then, now: Now) {
        if let api::Then::PipelineRuns {
            records,
            deleted,
            experiments,
            ..
        } = then
        {
            for record in records {
                self.pipeline_runs.put(record.clone());
            }
            for run_id in deleted {
                self.pipeline_runs.remove(run_id);
            }
            self.pipeline_runs.add_experiments(experiments);
            self.wake_for_pipeline_retries(now);
        }
    }

    /// Sets [`Engine::pipeline_due`] to when the first waiting retry is
    /// due (the runs keep wall-clock times; deadlines are instants).
    fn wake_for_pipeline_retries(&mut self, now: Now) {
        self.pipeline_due = self.pipeline_runs.next_retry_ms().map(|at| {
            let wait = u64::try_from(at.saturating_sub(now.unix_ms)).unwrap_or(0);
            now.instant + Duration::from_millis(wait)
        });
    }

    fn after_stored(
        &mut self,
        change: &Change,
        result: Result<Revision, StoreError>,
        now: Now,
    ) -> Vec<Action> {
        let Some(awaiting) = self.awaiting.take() else {
            tracing::error!("a change was reported stored that the engine did not hand out");
            return Vec::new();
        };
        if result.is_ok() && !change.hosts.is_empty() {
            self.cluster.apply_host_writes(&change.hosts);
            self.hosts_generation += 1;
        }
        match awaiting {
            Awaiting::Pipeline(then) => match result {
                Ok(revision) => {
                    self.pipeline_runs_stored(&then, now);
                    let (_, jobs) = api::apply(&mut self.registry, &mut self.pools, then, revision);
                    for (job, _) in jobs {
                        self.enqueue(&job, Duration::ZERO, now.instant);
                    }
                    Vec::new()
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot record pipeline runs; retried after the next change");
                    Vec::new()
                }
            },
            Awaiting::Drained(drained) => match result {
                Ok(_) => {
                    for m in &drained {
                        tracing::info!(host = %m.hostname, "host drained");
                    }
                    let (operator, calls) = maintenance::after_drained(&drained);
                    let mut actions: Vec<Action> =
                        operator.map(Action::Operator).into_iter().collect();
                    actions.extend(calls.into_iter().map(Action::Send));
                    actions
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot record hosts drained; retrying");
                    self.hosts_due = Some(now.instant + self.config.retry_after_store_error);
                    Vec::new()
                }
            },
            Awaiting::HostsWritten => {
                if let Err(e) = result {
                    tracing::error!(error = %e, "cannot record hosts' maintenance");
                }
                Vec::new()
            }
            Awaiting::Api { request, then } => self.api_stored(request, then, result, now),
            Awaiting::Updates(stored) => match result {
                Ok(_) => self.updates_stored(stored, now),
                Err(e) => {
                    // Not stored, so not acknowledged: the agent resends.
                    tracing::error!(error = %e, "cannot record status updates");
                    Vec::new()
                }
            },
            Awaiting::Plan { job, mut then } => match result {
                Ok(_) => {
                    if let Some(stepped) = then.job.take() {
                        self.registry.set_job(*stepped);
                    }
                    self.registry.set_run_versions(&then.rewrite_versions);
                    if then.forget {
                        self.registry.remove(&job);
                    }
                    if let Some(lost) = &then.lost {
                        self.registry.put_runs(&lost.runs);
                    }
                    self.registry.apply_kills(&change.kills);
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
                    Ok(_) => self.registry.put_runs(&stored.runs),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot record the framework's runs lost")
                    }
                }
                self.enqueue_all(now.instant);
                Vec::new()
            }
            Awaiting::Chunk(chunk) => self.chunk_stored(chunk, result, now),
            Awaiting::Preempted(victims) => self.preemptions_stored(change, victims, result, now),
            Awaiting::PendingReasons(end) => {
                if let Err(e) = result {
                    tracing::warn!(error = %e, "cannot record why runs are pending");
                }
                self.round_ended(end, now)
            }
        }
    }

    // ----- helpers ------------------------------------------------------

    fn persist(&mut self, change: Change, then: Awaiting) -> Vec<Action> {
        debug_assert!(self.awaiting.is_none(), "one change at a time");
        self.awaiting = Some(then);
        vec![Action::Persist(change)]
    }

    /// Plans `job` after `after`, or sooner if already queued sooner.
    /// A pod event the engine writes about `task_id`'s run itself, with
    /// no Mesos update behind it (the run's state, health and readiness as
    /// held): `reason`, and the message `say` makes from the run's
    /// hostname. None when the run is not held.
    fn note_on_run(
        &self,
        task_id: &TaskId,
        reason: Option<Reason>,
        say: impl FnOnce(Option<&str>) -> String,
        now: crate::model::time::UnixMillis,
    ) -> Option<crate::model::change::PodEvent> {
        let (run, _) = self.registry.run(task_id)?;
        let hostname = run
            .agent
            .as_ref()
            .and_then(|a| self.cluster.hostnames.get(a))
            .cloned();
        Some(crate::model::change::PodEvent {
            task_id: task_id.clone(),
            state: run.state,
            mesos_state: None,
            reason,
            message: Some(say(hostname.as_deref())),
            healthy: run.healthy,
            ready: run.ready,
            agent_id: run.agent.clone(),
            hostname,
            timestamp: now,
        })
    }

    fn enqueue(&mut self, job: &JobId, after: Duration, now: Instant) {
        self.queue
            .schedule(job, |queued| Due::deadline(queued, now + after));
    }

    /// Plans `job` once its live status updates pause (see [`plan_due`]);
    /// sooner for a job whose update waits for its pods to come up.
    fn enqueue_settled(&mut self, job: &JobId, now: Instant) {
        let updating = self
            .registry
            .get(job)
            .is_some_and(|e| e.job.workflows.active().is_some());
        let settle = if updating {
            self.config.workflow_settle
        } else {
            self.config.update_settle
        };
        self.queue
            .schedule(job, |queued| Due::settled(queued, now, settle));
    }

    fn enqueue_all(&mut self, now: Instant) {
        for job in self.registry.ids_by_creation() {
            self.enqueue(&job, Duration::ZERO, now);
        }
    }

    /// SUPPRESS or REVIVE, if the waiting runs changed what is wanted.
    fn interest(&mut self) -> Option<Action> {
        self.subscription
            .interest(self.launches.runs_wait())
            .map(Action::Send)
    }

    fn updates_grouped(&self) -> bool {
        self.backlog.len() >= self.config.update_group.max(1)
    }

    // ----- API ----------------------------------------------------------

    fn api_stored(
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
        let reconcile = then.reconcile();
        self.pipeline_runs_stored(&then, now);
        let mut host_actions = Vec::new();
        if let api::Then::Hosts(hosts) = &then {
            host_actions = self.after_host_request(hosts, now);
        }
        let (reply, jobs) = api::apply(&mut self.registry, &mut self.pools, then, revision);
        for (job, exists) in jobs {
            if exists {
                self.enqueue(&job, Duration::ZERO, now.instant);
            } else {
                self.launches.remove_job(&job);
            }
        }
        let mut actions = Vec::new();
        if let (Some((task, agent)), true) = (reconcile, self.subscription.subscribed) {
            actions.push(Action::Send(Call::Reconcile {
                tasks: vec![(task.to_string(), agent)],
            }));
        }
        actions.extend(host_actions);
        actions.push(Action::Reply {
            request,
            result: Ok(reply),
        });
        actions
    }

    /// After a stored maintenance request: held offers of hosts in
    /// maintenance declined, DOWN hosts brought up through the master and
    /// offers revived for hosts UP again, drained hosts looked for.
    fn after_host_request(&mut self, then: &maintenance::Then, now: Now) -> Vec<Action> {
        let mut actions = Vec::new();
        let in_maintenance: Vec<(String, crate::model::host::HostState)> = then
            .hosts
            .iter()
            .filter(|(_, state)| !state.is_placeable())
            .cloned()
            .collect();
        let agents: Vec<AgentId> = maintenance::agents_on(&self.cluster, &in_maintenance)
            .cloned()
            .collect();
        let held: Vec<OfferId> = agents
            .iter()
            .flat_map(|agent| self.offers.take_agent(agent))
            .collect();
        actions.extend(offers::decline(held, self.config.refuse).map(Action::Send));
        if !then.stop.is_empty() {
            actions.push(Action::Operator(OperatorCall::StopMaintenance {
                hostnames: then.stop.clone(),
            }));
        }
        if then.hosts.iter().any(|(_, state)| state.is_placeable()) {
            actions.push(Action::Send(Call::Revive));
        }
        if then.replan {
            self.hosts_due = Some(now.instant);
        }
        actions
    }

    // ----- subscription -------------------------------------------------

    fn subscribed(&mut self, now: Now) -> Vec<Action> {
        self.subscription.start(now.instant);
        self.offers.clear();
        self.enqueue_all(now.instant);
        self.interest().into_iter().collect()
    }

    // ----- planning one job ---------------------------------------------

    fn plan_job(&mut self, job_id: JobId, now: Now) -> Vec<Action> {
        let Some(entry) = self.registry.get(&job_id) else {
            self.launches.remove_job(&job_id);
            return self.interest().into_iter().collect();
        };
        let (change, then) = planning::plan_job(
            &job_id,
            entry,
            &self.registry,
            &self.cluster,
            &self.config,
            self.subscription.subscribed,
            now,
        );
        if change.is_empty() {
            return self.finish_plan(job_id, then, now);
        }
        self.persist(change, Awaiting::Plan { job: job_id, then })
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
        self.launches.set_job(&job_id, then.waiting);
        if let Some(after) = then.requeue_after {
            self.enqueue(&job_id, after, now.instant);
        }
        actions.extend(self.interest());
        if self.launches.runs_wait() && !self.offers.is_empty() {
            self.offers.hold(now.instant, self.config.offer_hold);
        }
        if self.launches.runs_wait() {
            self.arm_preemption(now.instant);
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
        let (change, stored) =
            statuses::from_master(updates, &self.registry, &mut self.cluster, now);
        if change.is_empty() {
            return self.updates_stored(stored, now);
        }
        self.persist(change, Awaiting::Updates(stored))
    }

    fn updates_stored(&mut self, stored: StoredBatch, now: Now) -> Vec<Action> {
        self.registry.put_runs(&stored.runs);
        // A terminal update may need a relaunch now; a live one rarely
        // changes the plan, so its job is looked at once the burst settles
        // (a burst of updates costs one plan per job, not one per batch).
        let draining = self
            .cluster
            .maintenance
            .values()
            .any(|m| m.state == crate::model::host::HostState::Draining);
        if draining && stored.touched.iter().any(|(_, terminal)| *terminal) {
            self.hosts_due = Some(now.instant);
        }
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
}

fn sends(calls: Vec<Call>) -> Vec<Action> {
    calls.into_iter().map(Action::Send).collect()
}
