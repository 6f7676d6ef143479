//! The goal-state rule for one job: its spec and goal, its runs, the
//! cluster facts and `now` in; a [`Plan`] out. Pure and level-triggered: it
//! is never told why it runs, and the same inputs give the same plan. The
//! engine ([`super::Engine`]) carries plans out.
//!
//! Rules, per instance (its latest run decides; "wanted" means the job's
//! goal is RUNNING and the pod's own goal is not KILLED):
//! - no run yet, wanted → launch run 0.
//! - live run its agent cannot be reached from (TASK_UNREACHABLE, or the
//!   master reported the agent lost): waited for, then replaced beside it,
//!   then given up (marked LOST), as the job's unreachable policy says
//!   ([`policies::unreachable`]); a replaced run still live is given up
//!   the same way.
//! - live batch run of an instance whose earlier run (given up on, or
//!   replaced while unreachable) succeeded after all → kill it: the
//!   instance ran once.
//! - live run, not wanted → kill it (again after `kill_retry`).
//! - live run numbered below the pod's `restart_from` (a restart) → kill
//!   it, as far as the restart budget allows ([`policies::restart_budget`]):
//!   instances not available ([`crate::model::availability`]: RUNNING,
//!   and HEALTHY if the pod has a check) use the budget up, so a batch
//!   advances only once the replacements of the last one serve (a health
//!   update is a live update: the job is planned again once it settles).
//!   Runs not available go first, since that takes nothing more down;
//!   still no more than the budget left by the other instances down, as
//!   they may serve after all (their health update may be on its way).
//! - live run on a draining host (host maintenance) → moved off as the
//!   job's disruption budget allows ([`drain`]): a service run handed
//!   over (a replacement launched beside it, marked as its handover), a
//!   batch run killed after its grace; the restarts and the drain share
//!   the one budget ([`crate::model::policies::disruption_budget`]), a
//!   handover in progress using it up as a disruption.
//! - a handover in progress (an earlier live run marked handing over,
//!   [`crate::model::run`]) → [`drain::plan_handover`]: the old run is
//!   killed once the latest serves, or with it when the instance is not
//!   wanted; a replacement that ended is relaunched after its backoff;
//!   the instance's outcome is its serving run's.
//! - live batch run past its runtime limit → kill it with the limit's
//!   reason ([`policies::runtime_limit`]).
//! - live run still LAUNCHING/LAUNCHED after `launch_timeout` with no update
//!   → ask the master about it (explicit reconciliation).
//! - terminal run, wanted: the next run, as [`crate::model::outcome`]'s
//!   relaunch rule says and after its retry backoff.
//! - a disabled job (Titus' disabled service) launches nothing: no first
//!   run, no relaunch, no replacement beside an unreachable run; its live
//!   runs are left alone, and it is looked at again when enabled.
//!
//! - an update in progress ([`crate::model::workflow`]): an instance runs
//!   the spec its job's workflow says ([`Job::desired_spec`]). A live run
//!   of a released instance on another spec version is killed (the next
//!   run launches on the target); a live run of an instance the update
//!   does not move, on another version, runs an identical pod and is
//!   recorded on the new version without a restart; an instance the spec
//!   it should run does not have (removed, or added and not released) is
//!   not wanted.
//!
//! - a job created with a create workflow (Peloton `CreateSpec`): its
//!   instances not created yet launch as the workflow admits them, a
//!   batch at a time and nothing while paused ([`create_workflow`]).
//!
//! A launch is only ever proposed for an instance whose latest run is
//! terminal or unreachable past the policy's wait, or as a drain's
//! handover (the one recorded second live run: the replacement's intent
//! marks the old run), so the engine never asks for an unrecorded second
//! live run its agent can reach; the engine checks
//! [`crate::model::run::may_launch`] (or, for a handover,
//! [`crate::model::run::may_hand_over`]) again when it records the
//! launch intent.

use super::cluster::ClusterFacts;
use super::config::EngineConfig;
use crate::model::availability::is_available;
use crate::model::create_workflow;
use crate::model::ids::{AgentId, InstanceId, TaskId};
use crate::model::job::Job;
use crate::model::outcome::{
    batch_done, instance_outcome, retry_at, settled_outcome, wants_relaunch,
};
use crate::model::policies::disruption_budget::{allowance, recent_disruptions, JobAvailability};
use crate::model::policies::restart_budget::restart_budget;
use crate::model::policies::runtime_limit::{self, RuntimeVerdict};
use crate::model::policies::unreachable::{self, UnreachablePolicy, UnreachableVerdict};
use crate::model::run::{handover_in, Run, RunHistory, DRAIN_REASON, RUNTIME_LIMIT_REASON};
use crate::model::spec::{JobType, PodSpec};
use crate::model::state::{job_state, InstanceOutcome, JobGoal, JobState, PodState};
use crate::model::time::{millis, UnixMillis};
use drover_proto::v1::task_status::Reason;
use std::time::Duration;

/// A run to launch once placement finds it a home.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PendingLaunch {
    /// The new run's id (the instance's next run number).
    pub task_id: TaskId,
    /// The job version it will run.
    pub spec_version: u64,
    /// The agent placement tries first: the one the instance's last run
    /// was on, when an update with `in_place` replaces it.
    pub in_place: Option<AgentId>,
    /// The live run this one takes its instance over from (a drain's
    /// handover, [`drain`]): that run keeps serving meanwhile.
    pub hands_over: Option<u32>,
}

/// A kill to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillOrder {
    /// The run.
    pub task_id: TaskId,
    /// Where it runs, if known.
    pub agent_id: Option<AgentId>,
    /// SIGTERM-to-SIGKILL grace period.
    pub grace: Duration,
    /// Why, when it is not the job's or pod's goal (the runtime limit).
    pub reason: Option<Reason>,
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
    /// Runs to record as lost (unreachable for longer than the job's
    /// unreachable policy waits).
    pub mark_lost: Vec<TaskId>,
    /// Runs to ask the master about: (task, agent).
    pub reconcile: Vec<(TaskId, Option<AgentId>)>,
    /// Live runs whose pod an update left as it was, to record on the
    /// version their instance should run (no restart).
    pub rewrite_versions: Vec<(TaskId, u64)>,
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

/// Computes the plan for `job`, whose runs are `instances` (each
/// instance's runs oldest first, indexed by instance).
pub fn plan(
    job: &Job,
    instances: &[RunHistory],
    facts: &ClusterFacts,
    config: &EngineConfig,
    now: UnixMillis,
) -> Plan {
    let mut plan = Plan::default();
    let mut outcomes = Vec::with_capacity(job.spec.instance_count as usize);
    // Past the job's instances: runs of instances an update or a scale
    // down removed, killed as unwanted and not counted in its state.
    let span = (job.instance_span() as usize).max(instances.len()) as u32;
    let mut restarts = Restarts::default();
    let ctx = Ctx {
        job,
        facts,
        config,
        now,
    };
    for instance in 0..span {
        let history = instances
            .get(instance as usize)
            .map_or(&[][..], RunHistory::as_slice);
        let outcome = plan_instance(&ctx, instance, history, &mut plan, &mut restarts);
        if instance < job.spec.instance_count {
            outcomes.push(outcome);
        }
    }
    hold_for_creation(job, instances, &mut plan);
    let any_run = instances.iter().any(|runs| !runs.is_empty());
    let recent = recent_disruptions(
        job,
        instances
            .iter()
            .enumerate()
            .map(|(i, h)| (i as u32, h.as_slice())),
        now,
    );
    let (down, drains) = plan_restarts(job, restarts, &outcomes, recent, config, now, &mut plan);
    drain::plan_drains(job, drains, down, recent, config, now, &mut plan);
    plan.job_state = Some(job_state(job.goal, &outcomes, any_run));
    let live = instances
        .iter()
        .any(|runs| runs.iter().any(|r| r.state.is_live()));
    if job.goal == JobGoal::Deleted && !live {
        plan.forget = true;
    }
    plan
}

/// Drops the launches the job's creation workflow does not admit yet
/// ([`create_workflow`]: a batch at a time, nothing while paused); the
/// plan is made again when a run starts or the user resumes.
fn hold_for_creation(job: &Job, instances: &[RunHistory], plan: &mut Plan) {
    let Some(workflow) = &job.create else {
        return;
    };
    let progress = create_workflow::progress(workflow, job.spec.instance_count, |i| {
        instances
            .get(i as usize)
            .map_or(&[][..], RunHistory::as_slice)
    });
    plan.launch
        .retain(|l| progress.admits(l.task_id.instance.instance));
}

/// The fixed inputs of one plan.
struct Ctx<'a> {
    job: &'a Job,
    facts: &'a ClusterFacts,
    config: &'a EngineConfig,
    now: UnixMillis,
}

/// Live runs a restart wants down, gathered over the instances so the
/// restart budget can be applied to them together, and the RUNNING
/// instances that are down all the same.
#[derive(Default)]
struct Restarts {
    /// Killed already, waiting for the terminal update (they are down).
    in_flight: Vec<(KillOrder, Option<UnixMillis>)>,
    /// Still available, to be killed as the budget allows.
    waiting: Vec<KillOrder>,
    /// Still live but not available (not RUNNING, not healthy yet,
    /// unreachable): killed first.
    unavailable: Vec<KillOrder>,
    /// Instances whose latest run is RUNNING but not available (among
    /// them a replacement whose check has not passed yet): down.
    not_ready: usize,
    /// Instances whose run an update has released (it is being replaced
    /// on the update's spec) and still reports RUNNING: down all the same,
    /// so a restart issued while an update runs does not add its own
    /// batch on top of the update's.
    released: usize,
    /// Runs on draining hosts, moved within the budget the restarts
    /// leave.
    drains: drain::Drains,
}

fn task_id(job: &Job, instance: u32, run: u32) -> TaskId {
    TaskId::new(InstanceId::new(job.job_id.clone(), instance), run)
}

fn plan_instance(
    ctx: &Ctx<'_>,
    instance: u32,
    history: &[Run],
    plan: &mut Plan,
    restarts: &mut Restarts,
) -> InstanceOutcome {
    let job = ctx.job;
    let pod = job
        .desired_pod(instance)
        .unwrap_or(std::borrow::Cow::Borrowed(&job.spec.default_spec));
    let wanted = job.wants_running(instance);
    let spec_version = job.desired_spec(instance).1;
    let Some(latest) = history.last() else {
        if wanted && !job.spec.disabled {
            plan.launch.push(PendingLaunch {
                task_id: task_id(job, instance, 0),
                spec_version,
                in_place: None,
                hands_over: None,
            });
        }
        return InstanceOutcome::Waiting;
    };
    give_up_replaced_runs(ctx, instance, history, plan);
    if let Some(old) = handover_in(history) {
        let (outcome, not_ready) = drain::plan_handover(
            ctx,
            instance,
            &pod,
            history,
            old,
            wanted,
            plan,
            &mut restarts.drains,
        );
        restarts.not_ready += usize::from(not_ready);
        return outcome;
    }
    if latest.state.is_live() {
        if batch_done(job, instance, history) {
            let order = KillOrder {
                task_id: task_id(job, instance, latest.run),
                agent_id: latest.agent.clone(),
                grace: Duration::from_secs(u64::from(pod.kill_grace_seconds())),
                reason: None,
            };
            kill_when_due(latest, order, ctx.config, ctx.now, plan);
            return settled_outcome(job, instance, history);
        }
        return plan_live_run(ctx, instance, &pod, history, wanted, plan, restarts);
    }
    if !wanted {
        return instance_outcome(job, instance, &pod, history);
    }
    if !wants_relaunch(job, instance, &pod, history) {
        return settled_outcome(job, instance, history);
    }
    if job.spec.disabled {
        return InstanceOutcome::Waiting;
    }
    let pod_id = job.instance_id(instance);
    if let Some(at) = retry_at(&pod_id, &pod, history) {
        if at > ctx.now {
            plan.requeue(Duration::from_millis((at - ctx.now) as u64));
            return InstanceOutcome::Waiting;
        }
    }
    // An update that asks to keep pods where they were: the run it
    // replaced was on this agent.
    let in_place = job
        .workflows
        .active()
        .filter(|w| w.options.in_place && w.released_contains(instance))
        .and(latest.agent.clone());
    plan.launch.push(PendingLaunch {
        task_id: TaskId::new(pod_id, latest.run + 1),
        spec_version,
        in_place,
        hands_over: None,
    });
    InstanceOutcome::Waiting
}

fn plan_live_run(
    ctx: &Ctx<'_>,
    instance: u32,
    pod: &PodSpec,
    history: &[Run],
    wanted: bool,
    plan: &mut Plan,
    restarts: &mut Restarts,
) -> InstanceOutcome {
    let (job, config, now) = (ctx.job, ctx.config, ctx.now);
    let Some(run) = history.last() else {
        return InstanceOutcome::Waiting;
    };
    let outcome = if run.state == PodState::Running {
        InstanceOutcome::Running
    } else {
        InstanceOutcome::Starting
    };
    let id = task_id(job, instance, run.run);
    let unreachable = unreachable_verdict(ctx, run);
    // Its agent reported lost counts as unreachable too.
    let available = unreachable.is_none() && is_available(pod, run);
    match unreachable {
        Some(UnreachableVerdict::GiveUp) => {
            plan.mark_lost.push(id);
            plan.requeue(Duration::ZERO);
            return outcome;
        }
        Some(UnreachableVerdict::Wait(left) | UnreachableVerdict::Replace(left)) => {
            plan.requeue(left)
        }
        None => {}
    }
    let grace = Duration::from_secs(u64::from(pod.kill_grace_seconds()));
    let order = |reason: Option<Reason>| KillOrder {
        task_id: id.clone(),
        agent_id: run.agent.clone(),
        grace,
        reason,
    };
    if !wanted {
        kill_when_due(run, order(None), config, now, plan);
        return outcome;
    }
    // Only a run marked unreachable (its own TASK_UNREACHABLE, which a
    // partition-aware master sends) gets a replacement beside it; an
    // agent reported lost alone waits for that, or for the give-up.
    let replace = matches!(unreachable, Some(UnreachableVerdict::Replace(_)));
    let spec_version = job.desired_spec(instance).1;
    if replace && run.unreachable.is_some() && !job.spec.disabled {
        plan.launch.push(PendingLaunch {
            task_id: task_id(job, instance, run.run + 1),
            spec_version,
            in_place: None,
            hands_over: None,
        });
        return InstanceOutcome::Waiting;
    }
    if run.spec_version != spec_version {
        match job.workflows.current.as_deref() {
            // Released by the update: replaced by a run on its spec.
            Some(w) if w.released_contains(instance) => {
                kill_when_due(run, order(None), config, now, plan);
                restarts.released += usize::from(outcome == InstanceOutcome::Running);
                return outcome;
            }
            // Waiting for the update to reach it: left as it is.
            Some(w) if w.order_contains(instance) => {}
            // Its pod is the same on the spec it should run.
            _ => plan.rewrite_versions.push((id.clone(), spec_version)),
        }
    }
    let restarting = run.run < job.restart_from(instance);
    if restarting && run.kill_requested_at.is_some() {
        // Counted down as in flight.
        restarts
            .in_flight
            .push((order(None), run.kill_requested_at));
        return outcome;
    }
    restarts.not_ready += usize::from(outcome == InstanceOutcome::Running && !available);
    if restarting {
        if available {
            restarts.waiting.push(order(None));
        } else {
            restarts.unavailable.push(order(None));
        }
        return outcome;
    }
    let draining = run.agent.as_ref().and_then(|a| ctx.facts.drain_of(a));
    if let Some(host) = draining {
        let order = order(Some(DRAIN_REASON));
        if drain::consider(
            ctx,
            host,
            history,
            available,
            order,
            &mut restarts.drains,
            plan,
        ) {
            return outcome;
        }
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
            plan.reconcile.push((id, run.agent.clone()));
            plan.requeue(config.launch_timeout);
        } else {
            let left = millis(config.launch_timeout) - quiet;
            plan.requeue(Duration::from_millis(left.max(0) as u64));
        }
    }
    outcome
}

/// Since when `run` cannot be reached: its own TASK_UNREACHABLE, else the
/// master's report that its agent is lost.
fn unreachable_since(ctx: &Ctx<'_>, run: &Run) -> Option<UnixMillis> {
    run.unreachable_since().or_else(|| {
        let agent = run.agent.as_ref()?;
        ctx.facts.lost_agents.get(agent).copied()
    })
}

/// What the job's unreachable policy says of `run` now, if it cannot be
/// reached.
fn unreachable_verdict(ctx: &Ctx<'_>, run: &Run) -> Option<UnreachableVerdict> {
    let since = unreachable_since(ctx, run)?;
    let spec = &ctx.job.spec;
    let waits = UnreachablePolicy::waits(spec.unreachable_policy.as_ref(), spec.job_type);
    Some(unreachable::verdict(waits, since, ctx.now))
}

/// Runs replaced while unreachable that are still live: given up once the
/// policy's give-up time passes (until then, if they come back alive they
/// are killed as strays; if they finish, that is recorded).
fn give_up_replaced_runs(ctx: &Ctx<'_>, instance: u32, history: &[Run], plan: &mut Plan) {
    let job = ctx.job;
    let replaced = &history[..history.len().saturating_sub(1)];
    for run in replaced.iter().filter(|r| r.state.is_live()) {
        let Some(verdict) = unreachable_verdict(ctx, run) else {
            continue;
        };
        match verdict {
            UnreachableVerdict::GiveUp => plan.mark_lost.push(task_id(job, instance, run.run)),
            UnreachableVerdict::Wait(left) | UnreachableVerdict::Replace(left) => {
                plan.requeue(left)
            }
        }
    }
}

/// Sends `order` unless a kill went out less than `kill_retry` + grace ago.
fn kill_when_due(
    run: &Run,
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
/// restarts, instances not available and runs an update has released
/// count as down already. Restarting
/// runs not available go first, as many as the budget left by the other
/// instances down allows: were the scheduler's view of their health stale
/// (an update on its way), killing them all could take down more than the
/// budget; available ones go only within the budget left by all. The
/// budget is the restart's batch size and the job's disruption budget
/// ([`allowance`], `recent` disruptions within its rate interval).
/// Returns the instances down once these kills are made, and the drain's
/// runs, for [`drain::plan_drains`].
fn plan_restarts(
    job: &Job,
    restarts: Restarts,
    outcomes: &[InstanceOutcome],
    recent: u32,
    config: &EngineConfig,
    now: UnixMillis,
    plan: &mut Plan,
) -> (usize, drain::Drains) {
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
            .count()
        + restarts.not_ready
        + restarts.released
        // A handover in progress is a disruption in progress, though its
        // old run serves (its instance is not down).
        + restarts.drains.handing_over
        + restarts
            .drains
            .in_flight
            .iter()
            .filter(|(o, _)| {
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
    let budget = |down: usize, recent: u32| {
        let down = u32::try_from(down).unwrap_or(u32::MAX);
        let batch = restart_budget(job.restart_batch_size, 0, job.spec.instance_count, down);
        let allowed = allowance(
            &job.spec,
            JobAvailability {
                wanted: job.spec.instance_count,
                unavailable: down,
                recent_disruptions: recent,
            },
            now,
        );
        batch.min(allowed.disruptions) as usize
    };
    // `down` counts each of them once already.
    let others_down = down.saturating_sub(restarts.unavailable.len());
    let first = budget(others_down, recent).min(restarts.unavailable.len());
    plan.kill
        .extend(restarts.unavailable.into_iter().take(first));
    let recent = recent.saturating_add(first as u32);
    let then = budget(down, recent).min(restarts.waiting.len());
    plan.kill.extend(restarts.waiting.into_iter().take(then));
    (down + then, restarts.drains)
}

mod drain;

#[cfg(test)]
mod drain_tests;
#[cfg(test)]
mod tests;
