//! The goal-state engine: one job's spec and goal, its recorded runs, the
//! cluster facts and `now` in; a [`Plan`] out. Pure: it never touches the
//! store, a socket or the clock, which is what makes it table- and
//! property-testable. [`super::runner`] carries plans out.
//!
//! Rules, per instance (its latest run decides; "wanted" means the job's
//! goal is RUNNING and the pod's own goal is not KILLED):
//! - no run yet, wanted → launch run 0.
//! - live run on an agent the master reported lost → mark it lost (the next
//!   plan replaces it).
//! - live run, not wanted → kill it (again after `kill_retry`).
//! - live run numbered below the pod's `restart_from` (a restart) → kill
//!   it, as far as the restart budget allows ([`policies::restart_budget`]).
//! - live batch run past its runtime limit → kill it with the limit's
//!   reason ([`policies::runtime_limit`]).
//! - live run still LAUNCHING/LAUNCHED after `launch_timeout` with no update
//!   → ask the master about it (explicit reconciliation).
//! - terminal run, wanted:
//!   - numbered below `restart_from` → launch the next run.
//!   - killed by the runtime limit → a failure; retried only with
//!     `retry_on_runtime_limit`, else the instance is FAILED.
//!   - SERVICE: launch the next run, whatever the exit.
//!   - BATCH: SUCCEEDED is done; FAILED, or KILLED without our asking,
//!     counts as a failure and is retried while failures ≤ max_failures;
//!     LOST (or a kill we asked for) is relaunched without counting.
//!   - a relaunch after consecutive failures waits for the retry backoff
//!     ([`policies::backoff`]).
//!
//! A launch is only ever proposed for an instance whose latest run is
//! terminal, so the engine never asks for a second live run; the store's
//! `record_launch_intents` enforces the same rule again at commit time.

use super::policies::backoff::Backoff;
use super::policies::restart_budget::restart_budget;
use super::policies::runtime_limit::{self, RuntimeVerdict, RUNTIME_LIMIT_REASON};
use crate::model::ids::{InstanceId, TaskId};
use crate::model::spec::{JobType, PodSpec};
use crate::model::state::PodGoal;
use crate::model::state::{job_state, InstanceOutcome, JobGoal, JobState, PodState};
use crate::store::{JobRecord, RunRecord, UnixMillis};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// Engine timing; every value has a documented default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    /// A run with no update this long after its intent is reconciled
    /// explicitly. Default 30 s: long enough for an ACCEPT to reach an agent
    /// and report STAGING, short enough that a lost ACCEPT is noticed.
    pub launch_timeout: Duration,
    /// A kill with no terminal update after this long (plus the grace
    /// period) is sent again. Default 30 s.
    pub kill_retry: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            launch_timeout: Duration::from_secs(30),
            kill_retry: Duration::from_secs(30),
        }
    }
}

/// What the scheduler knows about the cluster beyond the store.
#[derive(Debug, Clone, Default)]
pub struct ClusterFacts {
    /// Agents the master reported removed (FAILURE with only an agent id).
    pub lost_agents: HashSet<String>,
}

/// A run to launch once placement finds it a home.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PendingLaunch {
    /// The new run's id (the instance's next run number).
    pub task_id: TaskId,
    /// The job version it will run.
    pub spec_version: u64,
}

/// A kill to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillOrder {
    /// The run.
    pub task_id: TaskId,
    /// Where it runs, if known.
    pub agent_id: Option<String>,
    /// SIGTERM-to-SIGKILL grace period.
    pub grace: Duration,
    /// Why, when it is not the job's or pod's goal (e.g. the runtime limit).
    pub reason: Option<String>,
}

/// What to do for one job now.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// The job's state as the plan sees it.
    pub job_state: Option<JobState>,
    /// Runs to place and launch.
    pub launch: Vec<PendingLaunch>,
    /// Runs to kill.
    pub kill: Vec<KillOrder>,
    /// Runs to record as lost (their agent is gone).
    pub mark_lost: Vec<TaskId>,
    /// Runs to ask the master about: (task, agent).
    pub reconcile: Vec<(TaskId, Option<String>)>,
    /// Look at the job again after this long even if nothing happens.
    pub requeue_after: Option<Duration>,
    /// The job was deleted and nothing of it is live: forget it.
    pub forget: bool,
}

impl Plan {
    fn requeue(&mut self, after: Duration) {
        self.requeue_after = Some(self.requeue_after.map_or(after, |d| d.min(after)));
    }
}

/// Computes the plan for `job`. `runs` are all its recorded runs (any order).
pub fn plan(
    job: &JobRecord,
    runs: &[RunRecord],
    facts: &ClusterFacts,
    config: &EngineConfig,
    now: UnixMillis,
) -> Plan {
    let mut by_instance: BTreeMap<u32, Vec<&RunRecord>> = BTreeMap::new();
    for run in runs {
        by_instance
            .entry(run.task_id.instance.instance)
            .or_default()
            .push(run);
    }
    let mut plan = Plan::default();
    let mut outcomes = Vec::with_capacity(job.spec.instance_count as usize);
    let mut restarts = Restarts::default();
    for instance in 0..job.spec.instance_count {
        let mut history = by_instance.remove(&instance).unwrap_or_default();
        history.sort_by_key(|r| r.task_id.run);
        let ctx = Ctx {
            job,
            facts,
            config,
            now,
        };
        let outcome = plan_instance(&ctx, instance, &history, &mut plan, &mut restarts);
        outcomes.push(outcome);
    }
    plan_restarts(job, restarts, &outcomes, config, now, &mut plan);
    plan.job_state = Some(job_state(job.goal, &outcomes, !runs.is_empty()));
    if job.goal == JobGoal::Deleted && !runs.iter().any(|r| r.state.is_live()) {
        plan.forget = true;
    }
    plan
}

/// The fixed inputs of one plan.
struct Ctx<'a> {
    job: &'a JobRecord,
    facts: &'a ClusterFacts,
    config: &'a EngineConfig,
    now: UnixMillis,
}

/// Live runs a restart wants down, gathered over the instances so the
/// restart budget can be applied to them together.
#[derive(Default)]
struct Restarts {
    /// Killed already, waiting for the terminal update (they are down).
    in_flight: Vec<(KillOrder, Option<UnixMillis>)>,
    /// Still running, to be killed as the budget allows.
    waiting: Vec<KillOrder>,
}

fn wanted(job: &JobRecord, instance: u32) -> bool {
    let pod_goal = job.pods.get(&instance).map_or(PodGoal::Running, |c| c.goal);
    job.goal == JobGoal::Running && pod_goal == PodGoal::Running
}

fn restart_from(job: &JobRecord, instance: u32) -> u32 {
    job.pods.get(&instance).map_or(0, |c| c.restart_from)
}

fn plan_instance(
    ctx: &Ctx<'_>,
    instance: u32,
    history: &[&RunRecord],
    plan: &mut Plan,
    restarts: &mut Restarts,
) -> InstanceOutcome {
    let job = ctx.job;
    let pod = job.spec.pod_spec(instance);
    let wanted = wanted(job, instance);
    let Some(latest) = history.last() else {
        if wanted {
            plan.launch.push(PendingLaunch {
                task_id: TaskId::new(InstanceId::new(job.job_id.clone(), instance), 0),
                spec_version: job.version,
            });
        }
        return InstanceOutcome::Waiting;
    };
    if latest.state.is_live() {
        return plan_live_run(ctx, &pod, latest, wanted, plan, restarts);
    }
    if !wanted {
        return if latest.kill_requested_at.is_some() && latest.kill_reason.is_none() {
            InstanceOutcome::Killed
        } else {
            settled_outcome(latest)
        };
    }
    let failures = history.iter().filter(|r| counts_as_failure(r)).count() as u64;
    let within_budget = failures <= u64::from(pod.max_failures());
    let relaunch = if latest.task_id.run < restart_from(job, instance) {
        true
    } else if latest.kill_reason.as_deref() == Some(RUNTIME_LIMIT_REASON) {
        pod.retry_on_runtime_limit.unwrap_or(false) && within_budget
    } else {
        match job.spec.job_type {
            JobType::Service => true,
            JobType::Batch => match latest.state {
                PodState::Succeeded => false,
                _ if counts_as_failure(latest) => within_budget,
                _ => true,
            },
        }
    };
    if !relaunch {
        return settled_outcome(latest);
    }
    if let Some(at) = retry_at(&pod, history) {
        if at > ctx.now {
            plan.requeue(Duration::from_millis((at - ctx.now) as u64));
            return InstanceOutcome::Waiting;
        }
    }
    plan.launch.push(PendingLaunch {
        task_id: TaskId::new(latest.task_id.instance.clone(), latest.task_id.run + 1),
        spec_version: job.version,
    });
    InstanceOutcome::Waiting
}

/// When the next run of a pod whose runs are `history` (oldest first) may
/// start, if its latest runs failed in a row; None if nothing holds it back.
pub fn retry_at(pod: &PodSpec, history: &[&RunRecord]) -> Option<UnixMillis> {
    let latest = history.last()?;
    if !latest.state.is_terminal() {
        return None;
    }
    let consecutive = history
        .iter()
        .rev()
        .take_while(|r| counts_as_failure(r))
        .count() as u32;
    if consecutive == 0 {
        return None;
    }
    let ended = latest.completed_at.unwrap_or(latest.updated_at);
    let backoff = Backoff::of(pod.restart_policy.as_ref());
    Some(backoff.next_retry_at(ended, consecutive, &latest.task_id))
}

fn plan_live_run(
    ctx: &Ctx<'_>,
    pod: &PodSpec,
    run: &RunRecord,
    wanted: bool,
    plan: &mut Plan,
    restarts: &mut Restarts,
) -> InstanceOutcome {
    let (job, config, now) = (ctx.job, ctx.config, ctx.now);
    let outcome = if run.state == PodState::Running {
        InstanceOutcome::Running
    } else {
        InstanceOutcome::Starting
    };
    if run
        .agent_id
        .as_ref()
        .is_some_and(|a| ctx.facts.lost_agents.contains(a))
    {
        plan.mark_lost.push(run.task_id.clone());
        plan.requeue(Duration::ZERO);
        return outcome;
    }
    let grace = Duration::from_secs(u64::from(pod.kill_grace_seconds()));
    let order = |reason: Option<&str>| KillOrder {
        task_id: run.task_id.clone(),
        agent_id: run.agent_id.clone(),
        grace,
        reason: reason.map(str::to_owned),
    };
    if !wanted {
        kill_when_due(run, order(None), config, now, plan);
        return outcome;
    }
    if run.task_id.run < restart_from(job, run.task_id.instance.instance) {
        if run.kill_requested_at.is_some() {
            restarts
                .in_flight
                .push((order(None), run.kill_requested_at));
        } else {
            restarts.waiting.push(order(None));
        }
        return outcome;
    }
    if job.spec.job_type == JobType::Batch && run.state == PodState::Running {
        match runtime_limit::check(pod.runtime_limit_secs, run.started_at, now) {
            RuntimeVerdict::Exceeded => {
                kill_when_due(run, order(Some(RUNTIME_LIMIT_REASON)), config, now, plan);
                return outcome;
            }
            RuntimeVerdict::Within(left) => plan.requeue(left),
            RuntimeVerdict::Unlimited => {}
        }
    }
    if matches!(run.state, PodState::Launching | PodState::Launched) {
        let quiet = now.saturating_sub(run.updated_at);
        if quiet >= millis(config.launch_timeout) {
            plan.reconcile
                .push((run.task_id.clone(), run.agent_id.clone()));
            plan.requeue(config.launch_timeout);
        } else {
            let left = millis(config.launch_timeout) - quiet;
            plan.requeue(Duration::from_millis(left.max(0) as u64));
        }
    }
    outcome
}

/// Sends `order` unless a kill went out less than `kill_retry` + grace ago.
fn kill_when_due(
    run: &RunRecord,
    order: KillOrder,
    config: &EngineConfig,
    now: UnixMillis,
    plan: &mut Plan,
) {
    let retry = config.kill_retry + order.grace;
    let due = run
        .kill_requested_at
        .is_none_or(|at| now.saturating_sub(at) >= millis(retry));
    if due {
        plan.kill.push(order);
    }
    plan.requeue(retry);
}

/// Kills restarting runs, at most as many as the budget allows: in-flight
/// restarts and instances not running count as down already.
fn plan_restarts(
    job: &JobRecord,
    restarts: Restarts,
    outcomes: &[InstanceOutcome],
    config: &EngineConfig,
    now: UnixMillis,
    plan: &mut Plan,
) {
    let down = outcomes
        .iter()
        .filter(|o| matches!(o, InstanceOutcome::Waiting | InstanceOutcome::Starting))
        .count()
        + restarts
            .in_flight
            .iter()
            .filter(|(o, _)| {
                // Counted above unless it was still reported running.
                outcomes
                    .get(o.task_id.instance.instance as usize)
                    .is_some_and(|x| *x == InstanceOutcome::Running)
            })
            .count();
    for (order, at) in restarts.in_flight {
        let retry = config.kill_retry + order.grace;
        if at.is_none_or(|at| now.saturating_sub(at) >= millis(retry)) {
            plan.kill.push(order);
        }
        plan.requeue(retry);
    }
    let max_unavailable = job
        .spec
        .sla
        .as_ref()
        .map_or(0, |s| s.maximum_unavailable_instances);
    let budget = restart_budget(
        job.restart_batch_size,
        max_unavailable,
        job.spec.instance_count,
        down as u32,
    );
    for order in restarts.waiting.into_iter().take(budget as usize) {
        plan.kill.push(order);
    }
}

/// A run that ended badly: FAILED, KILLED without our asking (a failed
/// health check, an OOM), or killed by its runtime limit.
pub fn counts_as_failure(run: &RunRecord) -> bool {
    match run.state {
        PodState::Failed => true,
        PodState::Killed => {
            run.kill_requested_at.is_none()
                || run.kill_reason.as_deref() == Some(RUNTIME_LIMIT_REASON)
        }
        _ => false,
    }
}

fn settled_outcome(run: &RunRecord) -> InstanceOutcome {
    if run.kill_reason.as_deref() == Some(RUNTIME_LIMIT_REASON) && run.state.is_terminal() {
        return InstanceOutcome::Failed;
    }
    match run.state {
        PodState::Succeeded => InstanceOutcome::Succeeded,
        PodState::Killed => InstanceOutcome::Killed,
        PodState::Failed => InstanceOutcome::Failed,
        _ => InstanceOutcome::Waiting,
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
