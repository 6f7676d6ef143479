//! The goal-state engine: one job's spec and goal, its recorded runs, the
//! cluster facts and `now` in; a [`Plan`] out. Pure: it never touches the
//! store, a socket or the clock, which is what makes it table- and
//! property-testable. [`super::runner`] carries plans out.
//!
//! Rules, per instance (its latest run decides):
//! - no run yet, job RUNNING → launch run 0.
//! - live run on an agent the master reported lost → mark it lost (the next
//!   plan replaces it).
//! - live run, job not RUNNING → kill it (again after `kill_retry`).
//! - live run still LAUNCHING/LAUNCHED after `launch_timeout` with no update
//!   → ask the master about it (explicit reconciliation).
//! - terminal run, job RUNNING:
//!   - SERVICE: launch the next run, whatever the exit.
//!   - BATCH: SUCCEEDED is done; FAILED, or KILLED without our asking,
//!     counts as a failure and is retried while failures ≤ max_failures;
//!     LOST (or a kill we asked for) is relaunched without counting.
//!
//! A launch is only ever proposed for an instance whose latest run is
//! terminal, so the engine never asks for a second live run; the store's
//! `record_launch_intents` enforces the same rule again at commit time.

use super::spec::JobType;
use super::state::{job_state, InstanceOutcome, JobGoal, JobState, PodState};
use crate::ids::{InstanceId, TaskId};
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
    for instance in 0..job.spec.instance_count {
        let mut history = by_instance.remove(&instance).unwrap_or_default();
        history.sort_by_key(|r| r.task_id.run);
        let outcome = plan_instance(job, instance, &history, facts, config, now, &mut plan);
        outcomes.push(outcome);
    }
    plan.job_state = Some(job_state(job.goal, &outcomes, !runs.is_empty()));
    if job.goal == JobGoal::Deleted && !runs.iter().any(|r| r.state.is_live()) {
        plan.forget = true;
    }
    plan
}

fn plan_instance(
    job: &JobRecord,
    instance: u32,
    history: &[&RunRecord],
    facts: &ClusterFacts,
    config: &EngineConfig,
    now: UnixMillis,
    plan: &mut Plan,
) -> InstanceOutcome {
    let pod = job.spec.pod_spec(instance);
    let Some(latest) = history.last() else {
        if job.goal == JobGoal::Running {
            plan.launch.push(PendingLaunch {
                task_id: TaskId::new(InstanceId::new(job.job_id.clone(), instance), 0),
                spec_version: job.version,
            });
        }
        return InstanceOutcome::Waiting;
    };
    if latest.state.is_live() {
        return plan_live_run(
            job,
            latest,
            pod.kill_grace_seconds(),
            facts,
            config,
            now,
            plan,
        );
    }
    if job.goal != JobGoal::Running {
        return if latest.kill_requested_at.is_some() {
            InstanceOutcome::Killed
        } else {
            settled_outcome(latest.state)
        };
    }
    let failures = history.iter().filter(|r| counts_as_failure(r)).count() as u64;
    let relaunch = match job.spec.job_type {
        JobType::Service => true,
        JobType::Batch => match latest.state {
            PodState::Succeeded => false,
            _ if counts_as_failure(latest) => failures <= u64::from(pod.max_failures()),
            _ => true,
        },
    };
    if !relaunch {
        return settled_outcome(latest.state);
    }
    plan.launch.push(PendingLaunch {
        task_id: TaskId::new(latest.task_id.instance.clone(), latest.task_id.run + 1),
        spec_version: job.version,
    });
    InstanceOutcome::Waiting
}

fn plan_live_run(
    job: &JobRecord,
    run: &RunRecord,
    grace_seconds: u32,
    facts: &ClusterFacts,
    config: &EngineConfig,
    now: UnixMillis,
    plan: &mut Plan,
) -> InstanceOutcome {
    let outcome = if run.state == PodState::Running {
        InstanceOutcome::Running
    } else {
        InstanceOutcome::Starting
    };
    if run
        .agent_id
        .as_ref()
        .is_some_and(|a| facts.lost_agents.contains(a))
    {
        plan.mark_lost.push(run.task_id.clone());
        plan.requeue(Duration::ZERO);
        return outcome;
    }
    if job.goal != JobGoal::Running {
        let grace = Duration::from_secs(u64::from(grace_seconds));
        let retry = config.kill_retry + grace;
        let due = run
            .kill_requested_at
            .is_none_or(|at| now.saturating_sub(at) >= millis(retry));
        if due {
            plan.kill.push(KillOrder {
                task_id: run.task_id.clone(),
                agent_id: run.agent_id.clone(),
                grace,
            });
        }
        plan.requeue(retry);
        return outcome;
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

/// A run that ended badly on its own: FAILED, or KILLED without our asking.
pub fn counts_as_failure(run: &RunRecord) -> bool {
    match run.state {
        PodState::Failed => true,
        PodState::Killed => run.kill_requested_at.is_none(),
        _ => false,
    }
}

fn settled_outcome(state: PodState) -> InstanceOutcome {
    match state {
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
