//! The engine's preemptions: while runs wait and resource pools are
//! configured, once every [`super::EngineConfig::preemption_check`] (a
//! full cluster sends no offers, so no placement round comes to look), the
//! pools below their entitlement take it back from pools above theirs.
//! Who gives way is [`crate::model::policies::preemption`]'s; this drives
//! it: the kills are recorded (reason `REASON_CONTAINER_PREEMPTED`) before
//! they are sent, at most [`super::EngineConfig::preemption_rate`] a
//! minute. A preempted batch run is requeued and a service run replaced
//! by its job's own plan: a kill the scheduler asked for is no failure
//! ([`crate::model::run::Run::counts_as_failure`]), so the instance is
//! relaunched, and waits for its pool's share like any other run.
//!
//! A pool's first waiting pod that has no room in its own pool (at its
//! entitlement or limit) preempts preemptible pods of that pool of lower
//! priority, once that pool's earlier preemptions are done.
//!
//! Each look also records why the runs the pools hold wait (as a round
//! would, but a full cluster sends no offers and so has no rounds).
//!
//! After a restart the kills in flight are in the store (the runs'
//! `kill_reason`), so they are counted as freeing their resources and
//! not chosen again: a restart during preemption does not over-preempt.

use super::pools_admission::{self, job_pool};
use super::{Action, Awaiting, Call, Engine, Now};
use crate::model::change::{Change, KillRecord, PendingReason, PodEvent};
use crate::model::demand::pod_demand;
use crate::model::ids::{AgentId, JobId, TaskId};
use crate::model::job::Revision;
use crate::model::policies::disruption_budget::{allowance, job_availability};
use crate::model::policies::preemption::{self, Ask, Blocked, Candidate, Standing};
use crate::model::pool::{PoolId, ResourceKind};
use crate::model::resources::Resources;
use crate::store::StoreError;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::{Duration, Instant};

pub use crate::model::policies::preemption::PREEMPTED_REASON;

/// The window the rate limit counts over.
const RATE_WINDOW: Duration = Duration::from_secs(60);

/// Preemptions sent lately and when to look next.
#[derive(Debug, Default)]
pub struct Preemptions {
    /// When each preemption of the last minute was sent.
    recent: VecDeque<Instant>,
    /// When to look again (None: at the next tick once runs wait).
    next_check: Option<Instant>,
    /// Preemptions sent since the engine started.
    total: u64,
}

/// A run being preempted.
#[derive(Debug, Clone)]
pub struct Preemption {
    task_id: TaskId,
    agent_id: Option<AgentId>,
    grace: Duration,
    reason: String,
    /// A kill sent before (maybe lost, or sent by an engine that died
    /// before sending it), sent again: not a new preemption.
    again: bool,
}

impl Engine {
    /// Preemptions sent since the engine started.
    pub fn preemptions_total(&self) -> u64 {
        self.preemptions.total
    }

    /// The pools' standings computed since this was last called (by a
    /// round's admission or a look for preemptions), by pool path.
    pub fn take_pool_standings(&mut self) -> Option<Vec<(String, Standing)>> {
        let standings = self.pool_standings.take()?;
        Some(
            standings
                .into_iter()
                .map(|(id, s)| (pools_admission::display_path(&self.pools, &id), s))
                .collect(),
        )
    }

    /// When to look for preemptions, if anything may need one.
    pub(super) fn preemption_deadline(&self) -> Option<Instant> {
        if !self.may_preempt() {
            return None;
        }
        self.preemptions.next_check
    }

    /// Whether a look for preemptions is due at `now`.
    pub(super) fn preemption_due(&self, now: Instant) -> bool {
        self.may_preempt() && self.preemptions.next_check.is_none_or(|at| at <= now)
    }

    fn may_preempt(&self) -> bool {
        self.config.preemption_rate > 0
            && self.subscription.subscribed
            && self.launches.runs_wait()
            && pools_admission::pools_matter(&self.pools)
    }

    /// Looks for runs to preempt and records their kills.
    pub(super) fn preempt(&mut self, now: Now) -> Vec<Action> {
        self.preemptions.next_check = Some(now.instant + self.config.preemption_check);
        if self.launches.round.is_some() {
            return Vec::new();
        }
        // Not before the cluster was offered since subscribing (see
        // EngineConfig::preemption_settle).
        if let Some(settled) = self
            .subscription
            .since
            .map(|since| since + self.config.preemption_settle)
            .filter(|settled| *settled > now.instant)
        {
            self.preemptions.next_check = Some(settled);
            return Vec::new();
        }
        let recent = &mut self.preemptions.recent;
        while recent
            .front()
            .is_some_and(|at| now.instant.saturating_duration_since(*at) >= RATE_WINDOW)
        {
            recent.pop_front();
        }
        let max_victims = (self.config.preemption_rate as usize).saturating_sub(recent.len());
        let mut victims = self.kills_to_resend(now);
        let (chosen, standings) = self.choose_victims(max_victims, now);
        victims.extend(chosen);
        self.pool_standings = Some(standings);
        let pending_reasons = self.pool_reasons(now);
        if victims.is_empty() && pending_reasons.is_empty() {
            return Vec::new();
        }
        let change = Change {
            pending_reasons,
            kills: victims
                .iter()
                .map(|v| KillRecord {
                    task_id: v.task_id.clone(),
                    at: now.unix_ms,
                    reason: Some(PREEMPTED_REASON),
                })
                .collect(),
            events: victims
                .iter()
                .filter(|v| !v.again)
                .filter_map(|v| self.preempted_event(v, now))
                .collect(),
            ..Change::default()
        };
        self.persist(change, Awaiting::Preempted(victims))
    }

    /// The pod event that says why `victim` is preempted (which pool
    /// needed room, or which pod), in its pod's events beside the kill's
    /// Mesos reason: the run's state is unchanged until the master reports
    /// the kill.
    fn preempted_event(&self, victim: &Preemption, now: Now) -> Option<PodEvent> {
        self.note_on_run(
            &victim.task_id,
            Some(PREEMPTED_REASON),
            |_| victim.reason.clone(),
            now.unix_ms,
        )
    }

    /// Why the waiting runs the pools hold wait, where that changed: a
    /// full cluster sends no offers, so no round says it.
    fn pool_reasons(&mut self, now: Now) -> Vec<PendingReason> {
        let tree = &self.pools;
        let registry = &self.registry;
        let usage = super::pool_usage::usage(registry, tree, &self.config.executor_overhead);
        let waiting: Vec<_> = self
            .launches
            .waiting_in_order()
            .into_iter()
            .cloned()
            .collect();
        let free = self.offers.book.free();
        let known = self.cluster.capacity();
        let admission = pools_admission::admit(tree, &usage, waiting, &free, &known, |p| {
            job_pool(tree, registry, &p.launch.task_id.instance.job)
        });
        self.launches
            .changed_pool_reasons(&admission.held, now.unix_ms)
    }

    /// Preemptions recorded whose runs still live after the kill retry
    /// (and their grace): the kill was lost, or recorded by an engine that
    /// died before sending it. Sent again, as the goal-state rule does for
    /// its own kills.
    fn kills_to_resend(&self, now: Now) -> Vec<Preemption> {
        let mut again = Vec::new();
        for (instance, run) in self.registry.live_runs() {
            let (Some(asked), Some(PREEMPTED_REASON)) = (run.kill_requested_at, run.kill_reason)
            else {
                continue;
            };
            let Some(entry) = self.registry.get(instance.job) else {
                continue;
            };
            let grace = Duration::from_secs(u64::from(
                entry
                    .job
                    .spec
                    .pod_spec(instance.instance)
                    .kill_grace_seconds(),
            ));
            let retry = (self.config.kill_retry + grace).as_millis() as i64;
            if now.unix_ms.saturating_sub(asked) < retry {
                continue;
            }
            again.push(Preemption {
                task_id: instance.task_id(run.run),
                agent_id: run.agent.clone(),
                grace,
                reason: "preempted: kill sent again".to_string(),
                again: true,
            });
        }
        again
    }

    /// The victims, and the pools' standings they were chosen by.
    fn choose_victims(
        &self,
        max_victims: usize,
        now: Now,
    ) -> (Vec<Preemption>, BTreeMap<PoolId, Standing>) {
        let tree = &self.pools;
        let registry = &self.registry;
        let overhead = &self.config.executor_overhead;
        let usage = super::pool_usage::usage(registry, tree, overhead);
        let mut pools_of: HashMap<&JobId, PoolId> = HashMap::new();
        let mut waiting_runs: BTreeMap<PoolId, Vec<Resources>> = BTreeMap::new();
        // Each pool's first waiting pod: its name, priority and demand.
        let mut first: BTreeMap<PoolId, (String, u32, Resources)> = BTreeMap::new();
        for p in self.launches.waiting_in_order() {
            let job = &p.launch.task_id.instance.job;
            let pool = pools_of
                .entry(job)
                .or_insert_with(|| job_pool(tree, registry, job));
            first.entry(pool.clone()).or_insert_with(|| {
                let name = p.launch.task_id.instance.pod_name();
                (name, p.sla.priority, p.demand)
            });
            waiting_runs.entry(pool.clone()).or_default().push(p.demand);
        }
        let waiting_sum: BTreeMap<PoolId, Resources> = waiting_runs
            .iter()
            .map(|(pool, runs)| {
                let sum = runs.iter().fold(Resources::default(), |s, r| s.plus(r));
                (pool.clone(), sum)
            })
            .collect();
        let free = self.offers.book.free();
        let standings =
            pools_admission::standings(tree, &usage, &waiting_sum, &free, &self.cluster.capacity());
        let mut need = Resources::default();
        let mut short: Vec<PoolId> = Vec::new();
        for (pool, runs) in &waiting_runs {
            let Some(standing) = standings.get(pool) else {
                continue;
            };
            let fits = preemption::fitting_demand(standing, runs);
            if ResourceKind::ALL.into_iter().any(|k| k.of(&fits) > 0.0) {
                need = need.plus(&fits);
                short.push(pool.clone());
            }
        }
        // Pools whose first waiting pod has no room in them.
        let blocked: Vec<Blocked> = first
            .iter()
            .filter(|(pool, (_, _, demand))| {
                standings
                    .get(*pool)
                    .is_some_and(|s| !s.room().contains(demand))
            })
            .map(|(pool, (pod, priority, demand))| Blocked {
                pod: pod.clone(),
                pool: pool.clone(),
                priority: *priority,
                demand: *demand,
            })
            .collect();
        if (short.is_empty() && blocked.is_empty()) || max_victims == 0 {
            return (Vec::new(), standings);
        }
        let mut in_flight = Resources::default();
        let mut in_flight_pools: BTreeSet<PoolId> = BTreeSet::new();
        let mut candidates = Vec::new();
        let mut same_pool = Vec::new();
        let mut grace: HashMap<TaskId, (Option<AgentId>, Duration)> = HashMap::new();
        for (instance, run) in registry.live_runs() {
            let Some(entry) = registry.get(instance.job) else {
                continue;
            };
            let pod = entry.job.spec.pod_spec(instance.instance);
            let pool = pools_of
                .entry(instance.job)
                .or_insert_with(|| job_pool(tree, registry, instance.job));
            if run.kill_requested_at.is_some() {
                if run.kill_reason == Some(PREEMPTED_REASON) {
                    in_flight = in_flight.plus(&pod_demand(&pod, overhead));
                    in_flight_pools.insert(pool.clone());
                }
                continue;
            }
            let above = standings
                .get(pool)
                .is_some_and(|s| ResourceKind::ALL.into_iter().any(|k| s.is_above(k)));
            let in_blocked = blocked.iter().any(|b| b.pool == *pool);
            let sla = entry.job.spec.sla.as_ref();
            if !(above || in_blocked) || !sla.is_some_and(|s| s.preemptible) {
                continue;
            }
            let task_id = instance.task_id(run.run);
            grace.insert(
                task_id.clone(),
                (
                    run.agent.clone(),
                    Duration::from_secs(u64::from(pod.kill_grace_seconds())),
                ),
            );
            let candidate = Candidate {
                key: task_id,
                job: instance.job.clone(),
                pool: pool.clone(),
                priority: sla.map_or(0, |s| s.priority),
                preemptible: true,
                demand: pod_demand(&pod, overhead),
                started_at: run.started_at.unwrap_or(run.launched_at),
            };
            if in_blocked {
                same_pool.push(candidate.clone());
            }
            if above {
                candidates.push(candidate);
            }
        }
        let need = need.minus(&free).minus(&in_flight);
        let mut budgets = self.budgets(candidates.iter().chain(&same_pool).map(|c| &c.job), now);
        let jobs: HashMap<TaskId, JobId> = candidates
            .iter()
            .map(|c| (c.key.clone(), c.job.clone()))
            .collect();
        let mut victims = preemption::select(Ask {
            need,
            standings: &standings,
            waiting: &short,
            candidates,
            allowance: &budgets,
            max_victims,
        });
        // Then pods with no room in their own pool, over lower-priority
        // pods of it: with what the rate and the budgets leave, and not
        // while that pool's earlier preemptions are on their way.
        for v in &victims {
            if let Some(left) = jobs.get(&v.key).and_then(|job| budgets.get_mut(job)) {
                *left = left.saturating_sub(1);
            }
        }
        let blocked: Vec<Blocked> = blocked
            .into_iter()
            .filter(|b| !in_flight_pools.contains(&b.pool))
            .collect();
        same_pool.retain(|c| !victims.iter().any(|v| v.key == c.key));
        victims.extend(preemption::select_for_priority(
            &blocked,
            same_pool,
            &budgets,
            max_victims.saturating_sub(victims.len()),
        ));
        let victims = victims
            .into_iter()
            .map(|v| {
                let (agent_id, grace) = grace.remove(&v.key).unwrap_or_default();
                Preemption {
                    task_id: v.key,
                    agent_id,
                    grace,
                    reason: v
                        .why
                        .describe(|p| tree.path(p).unwrap_or_else(|| p.to_string())),
                    again: false,
                }
            })
            .collect();
        (victims, standings)
    }

    /// How many instances each job may lose now
    /// ([`crate::model::policies::disruption_budget`]).
    fn budgets<'a>(&self, jobs: impl Iterator<Item = &'a JobId>, now: Now) -> HashMap<JobId, u32> {
        let mut out = HashMap::new();
        for job in jobs {
            if out.contains_key(job) {
                continue;
            }
            let Some(entry) = self.registry.get(job) else {
                continue;
            };
            let histories = (0..entry.job.spec.instance_count).map(|i| (i, entry.history(i)));
            let availability = job_availability(&entry.job, histories, now.unix_ms);
            let allowed = allowance(&entry.job.spec, availability, now.unix_ms);
            out.insert(job.clone(), allowed.disruptions);
        }
        out
    }

    /// The preemptions' kills are recorded (or not): send them.
    pub(super) fn preemptions_stored(
        &mut self,
        change: &Change,
        victims: Vec<Preemption>,
        result: Result<Revision, StoreError>,
        now: Now,
    ) -> Vec<Action> {
        if let Err(e) = result {
            tracing::error!(error = %e, "cannot record preemptions; none sent");
            return Vec::new();
        }
        self.registry.apply_kills(&change.kills);
        victims
            .into_iter()
            .map(|v| {
                tracing::info!(task = %v.task_id, reason = %v.reason, "preempting");
                if !v.again {
                    self.preemptions.recent.push_back(now.instant);
                    self.preemptions.total += 1;
                }
                Action::Send(Call::Kill {
                    task_id: v.task_id.to_string(),
                    agent_id: v.agent_id,
                    grace: v.grace,
                })
            })
            .collect()
    }

    /// Runs wait: look for preemptions at the next tick if none is due.
    pub(super) fn arm_preemption(&mut self, now: Instant) {
        if self.preemptions.next_check.is_none() {
            self.preemptions.next_check = Some(now);
        }
    }
}
