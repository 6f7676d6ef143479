//! A job's runs on draining hosts ([`crate::model::host`]), moved off at
//! the pace the job's disruption budget allows
//! ([`allowance`], the one rule every voluntary
//! disruption asks): each is killed with [`DRAIN_REASON`], and since such
//! a run ended well its instance is relaunched the usual way, where
//! placement finds room (never on a host in maintenance).
//!
//! The gate is availability: a moved instance is down until its
//! replacement is RUNNING (and HEALTHY, if checked), and down instances
//! use the budget up, so the next run moves only once the replacement of
//! an earlier one serves. Runs not available go first (moving them takes
//! nothing more down), within the budget the other instances down leave.
//! A batch run is given the drain's grace to finish first, a self-managed
//! job (Titus) its relocation time to move itself; an instance moved as
//! often as a Titus relocation limit allows stays, and holds its host
//! DRAINING until an operator acts.

use super::{Ctx, KillOrder, Plan};
use crate::engine::config::EngineConfig;
use crate::model::host::{drain_verdict, DrainVerdict, HostMaintenance};
use crate::model::job::Job;
use crate::model::policies::disruption_budget::{
    allowance, may_relocate, self_managed_wait, JobAvailability,
};
use crate::model::run::{Run, DRAIN_REASON};
use crate::model::spec::JobType;
use crate::model::time::{millis, UnixMillis};

/// Runs on draining hosts, gathered over a job's instances so the budget
/// can be applied to them together.
#[derive(Debug, Default)]
pub(super) struct Drains {
    /// Killed for a drain already, waiting for their end (down).
    pub in_flight: Vec<(KillOrder, Option<UnixMillis>)>,
    /// Available runs to move, as the budget allows.
    pub waiting: Vec<KillOrder>,
    /// Runs not available (starting, not yet healthy): moved first.
    pub unavailable: Vec<KillOrder>,
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
    if available {
        drains.waiting.push(order);
    } else {
        drains.unavailable.push(order);
    }
    true
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
    plan.kill.extend(drains.unavailable.into_iter().take(first));
    let recent = recent.saturating_add(first as u32);
    let then = allowed(down, recent).min(drains.waiting.len());
    plan.kill.extend(drains.waiting.into_iter().take(then));
    if first + then < total {
        plan.requeue(config.drain_recheck);
    }
}
