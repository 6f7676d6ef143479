//! A job's runs on draining hosts ([`crate::model::host`]), moved off at
//! the pace the job's disruption budget allows
//! ([`allowance`], the one rule every voluntary
//! disruption asks), never onto a host in maintenance (placement's rule).
//!
//! A service run is handed over: a replacement of its instance is
//! launched elsewhere while it keeps serving (the launch intent marks it
//! handing over, [`crate::model::run`]), and it is killed with
//! [`DRAIN_REASON`] only once a replacement is RUNNING (and HEALTHY, if
//! checked). Until then the handover is a disruption in progress: it uses
//! the budget up as a down instance would (so at most the allowance is
//! handed over at once), though the instance is not down. A replacement
//! that fails is relaunched with the usual backoff, the old run serving
//! on; its host stays DRAINING meanwhile (a live run is left on it). If
//! the old run ends first, the replacement simply is the instance's run.
//! If the instance is not wanted any more (the job or pod killed, scaled
//! down, deleted), both runs are killed. A restart or an update that
//! overtakes a handover replaces the replacement (killed, and relaunched
//! on the version the instance should run) while the old run serves on.
//! A drain cancelled (`CompleteMaintenance`) mid-handover finishes the
//! handovers begun: the old run goes once its replacement serves, as
//! Peloton and Marathon never move a task back to a host returned from
//! maintenance; killing the replacement would throw away a start (or a
//! serving run) to keep a task on a host the operator just had drained.
//!
//! A batch run is killed with [`DRAIN_REASON`] (it ended well, and is
//! relaunched the usual way, where placement finds room), after the
//! drain's grace to finish; a self-managed job (Titus) is given its
//! relocation time to move itself, and a service of a disabled job (it
//! launches nothing) is killed too. A killed run's instance is down until
//! its replacement serves, and down instances use the budget up. Runs not
//! available go first (moving them takes nothing more down), within the
//! budget the other instances down leave. An instance moved as often as
//! a Titus relocation limit allows stays, and holds its host DRAINING
//! until an operator acts.

use super::{kill_when_due, task_id, unreachable_verdict, Ctx, KillOrder, PendingLaunch, Plan};
use crate::engine::config::EngineConfig;
use crate::model::availability::is_available;
use crate::model::host::{drain_verdict, DrainVerdict, HostMaintenance};
use crate::model::ids::TaskId;
use crate::model::job::Job;
use crate::model::outcome::{retry_at, wants_relaunch};
use crate::model::policies::disruption_budget::{
    allowance, may_relocate, self_managed_wait, JobAvailability,
};
use crate::model::policies::unreachable::UnreachableVerdict;
use crate::model::run::{may_hand_over, Run, DRAIN_REASON};
use crate::model::spec::{JobType, PodSpec};
use crate::model::state::{InstanceOutcome, PodState};
use crate::model::time::{millis, UnixMillis};
use std::time::Duration;

/// Runs on draining hosts, gathered over a job's instances so the budget
/// can be applied to them together.
#[derive(Debug, Default)]
pub(super) struct Drains {
    /// Killed for a drain already, waiting for their end (down).
    pub in_flight: Vec<(KillOrder, Option<UnixMillis>)>,
    /// Available runs to move, as the budget allows.
    pub waiting: Vec<Move>,
    /// Runs not available (starting, not yet healthy): moved first.
    pub unavailable: Vec<Move>,
    /// Instances with a handover in progress (no replacement serves yet):
    /// a disruption each, though their old run serves.
    pub handing_over: usize,
}

/// How a run leaves a draining host.
#[derive(Debug)]
pub(super) enum Move {
    /// Killed, its instance relaunched elsewhere afterwards (batch).
    Kill(KillOrder),
    /// Handed over: a replacement launched elsewhere first (service).
    HandOver(PendingLaunch),
}

impl Move {
    fn into_plan(self, plan: &mut Plan) {
        match self {
            Move::Kill(order) => plan.kill.push(order),
            Move::HandOver(launch) => plan.launch.push(launch),
        }
    }
}

/// Takes `history`'s latest run (live, wanted, on a host `drain` is
/// draining) into `drains`, or leaves it where it is for now (a grace, a
/// relocation limit), requeueing the plan for when that ends. True when
/// the run is the drain's: the caller plans nothing else for it.
pub(super) fn consider(
    ctx: &Ctx<'_>,
    drain: &HostMaintenance,
    history: &[Run],
    available: bool,
    order: KillOrder,
    drains: &mut Drains,
    plan: &mut Plan,
) -> bool {
    let (job, now) = (ctx.job, ctx.now);
    let Some(run) = history.last() else {
        return false;
    };
    if run.kill_requested_at.is_some() && run.kill_reason == Some(DRAIN_REASON) {
        drains.in_flight.push((order, run.kill_requested_at));
        return true;
    }
    let batch_grace = (job.spec.job_type == JobType::Batch && !drain.batch_grace.is_zero())
        .then_some(drain.batch_grace);
    let self_managed = self_managed_wait(&job.spec);
    if let DrainVerdict::Wait(left) = drain_verdict(drain.since, batch_grace, self_managed, now) {
        plan.requeue(left);
        return false;
    }
    let relocations = history
        .iter()
        .filter(|r| r.kill_reason == Some(DRAIN_REASON))
        .count();
    if !may_relocate(&job.spec, u32::try_from(relocations).unwrap_or(u32::MAX)) {
        return false;
    }
    let instance = order.task_id.instance.instance;
    // Only where the model admits the replacement (not beside an
    // unreachable run, or one replaced while unreachable): else the
    // placement would refuse it, and the job be planned again at once.
    let hand_over = job.spec.job_type == JobType::Service
        && !job.spec.disabled
        && may_hand_over(history, run.run, run.run.saturating_add(1));
    let moved = if hand_over {
        Move::HandOver(PendingLaunch {
            task_id: TaskId::new(order.task_id.instance.clone(), run.run.saturating_add(1)),
            spec_version: job.desired_spec(instance).1,
            in_place: None,
            hands_over: Some(run.run),
        })
    } else {
        Move::Kill(order)
    };
    if available {
        drains.waiting.push(moved);
    } else {
        drains.unavailable.push(moved);
    }
    true
}

/// Plans an instance with a handover in progress: `history[old]` hands
/// over to the latest run (see the module doc for each case). Returns
/// the instance's outcome (its serving run's), and whether it is RUNNING
/// without serving (not ready, down for the budget).
#[allow(clippy::too_many_arguments)]
pub(super) fn plan_handover(
    ctx: &Ctx<'_>,
    instance: u32,
    pod: &PodSpec,
    history: &[Run],
    old: usize,
    wanted: bool,
    plan: &mut Plan,
    drains: &mut Drains,
) -> (InstanceOutcome, bool) {
    let (job, config, now) = (ctx.job, ctx.config, ctx.now);
    let (Some(old_run), Some(latest)) = (history.get(old), history.last()) else {
        return (InstanceOutcome::Waiting, false);
    };
    let grace = Duration::from_secs(u64::from(pod.kill_grace_seconds()));
    let order = |run: &Run, reason| KillOrder {
        task_id: task_id(job, instance, run.run),
        agent_id: run.agent.clone(),
        grace,
        reason,
    };
    let serves =
        |run: &Run| run.state.is_live() && run.unreachable.is_none() && is_available(pod, run);
    let running = [old_run, latest]
        .iter()
        .any(|r| r.state == PodState::Running);
    let outcome = if running {
        InstanceOutcome::Running
    } else {
        InstanceOutcome::Starting
    };
    if !wanted {
        for run in [old_run, latest].into_iter().filter(|r| r.state.is_live()) {
            kill_when_due(run, order(run, None), config, now, plan);
        }
        return (outcome, false);
    }
    if serves(latest) {
        // The replacement serves: the old run goes, for the drain.
        kill_when_due(
            old_run,
            order(old_run, Some(DRAIN_REASON)),
            config,
            now,
            plan,
        );
        return (InstanceOutcome::Running, false);
    }
    // Counted down already when its old run does not serve either.
    drains.handing_over += usize::from(serves(old_run));
    let not_ready = running && !serves(old_run);
    let spec_version = job.desired_spec(instance).1;
    if latest.state.is_live() {
        let released = job
            .workflows
            .current
            .as_deref()
            .is_some_and(|w| w.released_contains(instance));
        let overtaken = latest.run < job.restart_from(instance)
            || (latest.spec_version != spec_version && released);
        if overtaken && latest.kill_requested_at.is_none() {
            kill_when_due(latest, order(latest, None), config, now, plan);
            return (outcome, not_ready);
        }
        match unreachable_verdict(ctx, latest) {
            Some(UnreachableVerdict::GiveUp) => {
                plan.mark_lost.push(task_id(job, instance, latest.run));
                plan.requeue(Duration::ZERO);
            }
            Some(UnreachableVerdict::Wait(left) | UnreachableVerdict::Replace(left)) => {
                plan.requeue(left)
            }
            None if matches!(latest.state, PodState::Launching | PodState::Launched) => {
                let quiet = now.saturating_sub(latest.updated_at);
                if quiet >= millis(config.launch_timeout) {
                    plan.reconcile
                        .push((task_id(job, instance, latest.run), latest.agent.clone()));
                }
                plan.requeue(config.launch_timeout);
            }
            None => {}
        }
        return (outcome, not_ready);
    }
    // The replacement ended without serving: another, after the usual
    // backoff, while the old run serves on.
    if job.spec.disabled || !wants_relaunch(job, instance, pod, history) {
        return (outcome, not_ready);
    }
    let pod_id = job.instance_id(instance);
    if let Some(at) = retry_at(&pod_id, pod, history) {
        if at > now {
            plan.requeue(Duration::from_millis((at - now) as u64));
            return (outcome, not_ready);
        }
    }
    plan.launch.push(PendingLaunch {
        task_id: TaskId::new(pod_id, latest.run.saturating_add(1)),
        spec_version,
        in_place: None,
        hands_over: None,
    });
    (outcome, not_ready)
}

/// Kills what the budget allows of `drains`, given `down` instances down
/// already (those in flight among them) and `recent` disruptions within
/// the budget's rate interval; kills in flight are sent again when due.
/// A drain the budget holds is looked at again after
/// [`EngineConfig::drain_recheck`] (a rate or a time window frees it with
/// time alone).
pub(super) fn plan_drains(
    job: &Job,
    drains: Drains,
    down: usize,
    recent: u32,
    config: &EngineConfig,
    now: UnixMillis,
    plan: &mut Plan,
) {
    for (order, at) in drains.in_flight {
        let retry = config.kill_retry + order.grace;
        if at.is_none_or(|at| now.saturating_sub(at) >= millis(retry)) {
            plan.kill.push(order);
        }
        plan.requeue(retry);
    }
    if drains.unavailable.is_empty() && drains.waiting.is_empty() {
        return;
    }
    let allowed = |down: usize, recent: u32| {
        allowance(
            &job.spec,
            JobAvailability {
                wanted: job.spec.instance_count,
                unavailable: u32::try_from(down).unwrap_or(u32::MAX),
                recent_disruptions: recent,
            },
            now,
        )
        .disruptions as usize
    };
    let total = drains.unavailable.len() + drains.waiting.len();
    // `down` counts the unavailable ones once already.
    let others_down = down.saturating_sub(drains.unavailable.len());
    let first = allowed(others_down, recent).min(drains.unavailable.len());
    for moved in drains.unavailable.into_iter().take(first) {
        moved.into_plan(plan);
    }
    let recent = recent.saturating_add(first as u32);
    let then = allowed(down, recent).min(drains.waiting.len());
    for moved in drains.waiting.into_iter().take(then) {
        moved.into_plan(plan);
    }
    if first + then < total {
        plan.requeue(config.drain_recheck);
    }
}
