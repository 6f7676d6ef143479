//! One job's plan, made into what the engine does with it: what must be
//! stored first (runs given up on an agent that stayed unreachable, kills to send, the
//! job forgotten) and what follows once it is (the calls, the job's
//! waiting runs, when to plan it again).

use super::action::Now;
use super::cluster::ClusterFacts;
use super::config::EngineConfig;
use super::launches::waiting_runs;
use super::reconcile::{self, KillOrder};
use super::registry::JobEntry;
use super::registry::Registry;
use super::round::Pending;
use super::statuses::{given_up, StoredBatch};
use crate::model::change::{Change, JobWrite, KillRecord};
use crate::model::ids::{AgentId, JobId, TaskId};
use drover_proto::v1::task_status::Reason;
use std::time::Duration;

/// What follows once a plan's change is stored.
pub(super) struct PlanThen {
    /// Runs given up, as stored.
    pub lost: Option<StoredBatch>,
    /// Kills to send.
    pub kills: Vec<KillOrder>,
    /// Runs to ask the master about.
    pub reconcile: Vec<(TaskId, Option<AgentId>)>,
    /// The job's runs waiting for a host.
    pub waiting: Vec<Pending>,
    /// Plan the job again after this long.
    pub requeue_after: Option<Duration>,
    /// The job is forgotten.
    pub forget: bool,
}

/// Plans `entry` (`job_id`'s) at `now`. Kills and reconciliation are left
/// out while not `subscribed` (calls would be dropped).
pub(super) fn plan_job(
    job_id: &JobId,
    entry: &JobEntry,
    registry: &Registry,
    cluster: &ClusterFacts,
    config: &EngineConfig,
    subscribed: bool,
    now: Now,
) -> (Change, PlanThen) {
    let plan = reconcile::plan(&entry.job, &entry.instances, cluster, config, now.unix_ms);
    tracing::debug!(job = %job_id, launches = plan.launch.len(), "planned");
    let waiting = waiting_runs(&entry.job, plan.launch, &config.executor_overhead);
    let mut change = Change::default();
    let lost = (!plan.mark_lost.is_empty()).then(|| {
        given_up(
            &plan.mark_lost,
            Reason::AgentRemoved,
            "unreachable for longer than the job's unreachable policy waits; given up",
            registry,
            cluster,
            now,
            &mut change,
        )
    });
    let (kills, reconcile) = if subscribed {
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
    (change, then)
}
