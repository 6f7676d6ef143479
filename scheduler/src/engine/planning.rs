//! One job's plan, made into what the engine does with it: what must be
//! stored first (its update's step, runs given up on an agent that stayed
//! unreachable, kills to send, the job forgotten) and what follows once it
//! is (the calls, the job's waiting runs, when to plan it again).
//!
//! An update in progress moves first ([`step_workflow`]), and the job is
//! planned as the step left it: the instances a step releases have their
//! runs killed in the same stored change that releases them.

use super::action::Now;
use super::cluster::ClusterFacts;
use super::config::EngineConfig;
use super::launches::waiting_runs;
use super::reconcile::{self, KillOrder};
use super::registry::JobEntry;
use super::registry::Registry;
use super::round::Pending;
use super::statuses::{given_up, StoredBatch};
use crate::model::availability::is_available;
use crate::model::change::{Change, JobWrite, KillRecord, WorkflowEventRecord};
use crate::model::ids::{AgentId, JobId, TaskId};
use crate::model::job::Job;
use crate::model::run::serving_run;
use crate::model::state::JobGoal;
use crate::model::time::UnixMillis;
use crate::model::workflow::{self, JobRuns};
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
    /// The job as its update's step left it, to hold once stored.
    pub job: Option<Box<Job>>,
    /// Live runs now recorded on another spec version.
    pub rewrite_versions: Vec<(TaskId, u64)>,
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
    let stepped = step_workflow(entry, now.unix_ms);
    let job = stepped.as_ref().map_or(&entry.job, |(job, _)| job);
    let plan = reconcile::plan(job, &entry.instances, cluster, config, now.unix_ms);
    tracing::debug!(job = %job_id, launches = plan.launch.len(), "planned");
    let waiting = waiting_runs(job, plan.launch, &config.executor_overhead);
    let mut change = Change::default();
    if let Some((job, events)) = &stepped {
        if job.spec_version != entry.job.spec_version {
            change.jobs.push(JobWrite::Spec {
                job_id: job_id.clone(),
                spec: Box::new(job.spec.clone()),
            });
        }
        change.jobs.push(JobWrite::update_of(job, false));
        change.workflow_events.extend(events.iter().cloned());
    }
    change.run_versions.clone_from(&plan.rewrite_versions);
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
        job: stepped.map(|(job, _)| Box::new(job)),
        rewrite_versions: plan.rewrite_versions,
    };
    (change, then)
}

/// One step of the job's update, if one is in progress and the job is
/// meant to run (a stopped job's update waits): the job as it leaves it,
/// and the events to record.
fn step_workflow(entry: &JobEntry, now: UnixMillis) -> Option<(Job, Vec<WorkflowEventRecord>)> {
    let job = &entry.job;
    let current = job.workflows.current.as_deref()?;
    if current.ended.is_some() || job.goal != JobGoal::Running {
        return None;
    }
    let unavailable = (0..job.spec.instance_count)
        .filter(|&i| job.wants_running(i))
        .filter(|&i| {
            let Some(pod) = job.desired_pod(i) else {
                return true;
            };
            // During a handover, the old run serves until its replacement does.
            let history = entry.history(i);
            let serving = serving_run(history, |r| is_available(&pod, r));
            !serving.is_some_and(|at| is_available(&pod, &history[at]))
        })
        .count() as u32;
    let runs = JobRuns {
        spec: &job.spec,
        version: job.spec_version,
        history: |i| entry.history(i),
        unavailable,
        max_unavailable: job
            .spec
            .sla
            .as_ref()
            .map_or(0, |s| s.maximum_unavailable_instances),
    };
    let step = workflow::advance(current, &runs, now)?;
    let mut next = job.clone();
    if let Some((spec, version)) = step.rolled_back_to {
        // The old spec is the target again: a new entity version, so a
        // write based on the failed one is refused.
        next.spec = *spec;
        next.spec_version = version;
        next.version += 1;
    }
    let id = step.workflow.id;
    next.workflows.current = Some(Box::new(step.workflow));
    let events = step
        .events
        .into_iter()
        .map(|event| WorkflowEventRecord {
            job_id: job.job_id.clone(),
            workflow: id,
            event,
        })
        .collect();
    Some((next, events))
}
