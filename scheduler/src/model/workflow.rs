//! Changing a running job (Peloton's update workflow, `UpdateSpec`): the
//! pods move from the spec they run to a new one a window at a time, a
//! window slot freeing only when its pod is up on the new spec (RUNNING,
//! and HEALTHY if it has a health check: [`super::availability`]), and
//! the whole may be paused, resumed, aborted, or rolled back on failure.
//! Pure: the engine stores a [`Workflow`], and each plan of the job moves
//! it on ([`advance`]) from the instances' runs.
//!
//! # Two specs, one target
//! A job always has one *target* spec (`Job::spec`, at `Job::spec_version`)
//! and, while some of its pods still run an earlier one, the workflow's
//! *other* spec. An instance runs the other spec while it is in the
//! workflow's `order` and not yet released; every other instance runs the
//! target ([`Workflow::pending_mask`]). Releasing an instance is a stored
//! decision (intent before action): from then its live run on the other
//! spec is killed and the next run launches on the target. So a scheduler
//! killed at any step resumes where it was: an instance released is never
//! released twice, and one not released is not touched.
//!
//! Rolling back swaps the two: the old spec becomes the target again and
//! the instances the update released move back, through the same window.
//!
//! # Progress, level-triggered
//! A released instance is *done* once its latest run is on the target and
//! available; it has *failed* once its runs on the target since the phase
//! began failed more than `max_instance_retries` times (0: retried for
//! ever). Both are recorded, so that an instance that was done and later
//! crashes does not hold the window. The workflow FAILS when as many
//! instances failed as `max_tolerable_instance_failures` (0: never), and
//! then rolls back if `rollback_on_failure`. It SUCCEEDS (or is ROLLED
//! BACK) when every instance of its order is done or failed.
//!
//! # The window
//! At most `batch_size` released instances are neither done nor failed
//! (0: all at once), and, with the job's `sla.maximum_unavailable_instances`
//! set, no release takes the job's unavailable instances past it.

use super::availability::is_available;
use super::run::Run;
use super::spec::JobSpec;
use super::time::UnixMillis;
use crate::model::policies::disruption_budget::{allowance, JobAvailability};
use serde::{Deserialize, Serialize};

/// How an update rolls (Peloton `UpdateSpec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct UpdateOptions {
    /// Most instances being moved at once (0: all).
    pub batch_size: u32,
    /// Roll every moved instance back when the update fails.
    pub rollback_on_failure: bool,
    /// Failed runs on the new spec an instance may have before it counts
    /// as failed (0: retried for ever).
    pub max_instance_retries: u32,
    /// Failed instances at which the update fails (0: never).
    pub max_tolerable_instance_failures: u32,
    /// Created paused: nothing moves until resumed.
    pub start_paused: bool,
    /// Try to place a moved instance on its current host.
    pub in_place: bool,
}

/// Where a workflow stands (Peloton `WorkflowState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WorkflowState {
    /// Moving instances to the new spec.
    RollingForward,
    /// Paused by the user: nothing new moves.
    Paused,
    /// Every instance moved.
    Succeeded,
    /// Ended by the user where it stood.
    Aborted,
    /// Too many instances failed.
    Failed,
    /// Moving instances back to the old spec after a failure.
    RollingBackward,
    /// Every moved instance is back on the old spec.
    RolledBack,
}

impl WorkflowState {
    /// Whether the workflow has ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            WorkflowState::Succeeded
                | WorkflowState::Aborted
                | WorkflowState::Failed
                | WorkflowState::RolledBack
        )
    }

    /// Every state.
    pub const ALL: [WorkflowState; 7] = [
        WorkflowState::RollingForward,
        WorkflowState::Paused,
        WorkflowState::Succeeded,
        WorkflowState::Aborted,
        WorkflowState::Failed,
        WorkflowState::RollingBackward,
        WorkflowState::RolledBack,
    ];

    /// The state Peloton names `name`.
    pub fn from_peloton_name(name: &str) -> Option<WorkflowState> {
        WorkflowState::ALL
            .into_iter()
            .find(|s| s.peloton_name() == name)
    }

    /// Peloton's name (`WORKFLOW_STATE_...`).
    pub fn peloton_name(self) -> &'static str {
        match self {
            WorkflowState::RollingForward => "WORKFLOW_STATE_ROLLING_FORWARD",
            WorkflowState::Paused => "WORKFLOW_STATE_PAUSED",
            WorkflowState::Succeeded => "WORKFLOW_STATE_SUCCEEDED",
            WorkflowState::Aborted => "WORKFLOW_STATE_ABORTED",
            WorkflowState::Failed => "WORKFLOW_STATE_FAILED",
            WorkflowState::RollingBackward => "WORKFLOW_STATE_ROLLING_BACKWARD",
            WorkflowState::RolledBack => "WORKFLOW_STATE_ROLLED_BACK",
        }
    }
}

/// Which instances a new spec adds, removes, changes and leaves alone
/// (Peloton `GetReplaceJobDiff`), each list in instance order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct SpecDiff {
    /// Instances the new spec adds.
    pub added: Vec<u32>,
    /// Instances the new spec no longer has.
    pub removed: Vec<u32>,
    /// Instances whose pod spec changes: their pods are replaced.
    pub updated: Vec<u32>,
    /// Instances whose pod spec stays: never restarted.
    pub unchanged: Vec<u32>,
}

/// The diff between what each instance of `job` runs now (`current`
/// gives instance `i`'s pod spec, None past the job's instances) and
/// `next`. `secrets_changed`: the job's secrets differ from `next`'s,
/// which every pod gets, so every kept pod is updated.
pub fn diff<'a>(
    current_count: u32,
    current: impl Fn(u32) -> Option<std::borrow::Cow<'a, super::spec::PodSpec>>,
    next: &JobSpec,
    secrets_changed: bool,
) -> SpecDiff {
    let mut d = SpecDiff::default();
    for instance in 0..current_count.max(next.instance_count) {
        match (current(instance), instance < next.instance_count) {
            (None, true) => d.added.push(instance),
            (Some(_), false) => d.removed.push(instance),
            (Some(pod), true) if !secrets_changed && *pod == *next.pod_spec(instance) => {
                d.unchanged.push(instance)
            }
            (Some(_), true) => d.updated.push(instance),
            (None, false) => {}
        }
    }
    d
}

/// `instances` (ascending) as half-open ranges `[from, to)`, the way
/// Peloton's `InstanceIDRange` lists them.
pub fn ranges(instances: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &i in instances {
        match out.last_mut() {
            Some((_, to)) if *to == i => *to = i + 1,
            _ => out.push((i, i + 1)),
        }
    }
    out
}

/// One entry of a workflow's story (Peloton `WorkflowEvent`): the
/// workflow's state, or one instance's, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkflowEvent {
    /// The instance, or None for the workflow itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<u32>,
    /// The state it entered.
    pub state: WorkflowState,
    /// When.
    pub at: UnixMillis,
}

/// An update of a job in progress, or the last one (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    /// The job's workflows are numbered from 1.
    pub id: u32,
    /// How it rolls.
    pub options: UpdateOptions,
    /// The spec version the job had before the update.
    pub from_version: u64,
    /// The spec version the update moves the job to.
    pub to_version: u64,
    /// The spec instances not released yet run (forward: the old spec;
    /// rolling back: the new one), at `other_version`.
    pub other_spec: Box<JobSpec>,
    /// Its version.
    pub other_version: u64,
    /// What the update changes, as decided when it was made.
    pub diff: SpecDiff,
    /// The instances this phase moves to the target, ascending: they
    /// move in instance order, and the ones not released yet are a
    /// sorted tail that one binary search reads.
    pub order: Vec<u32>,
    /// How many of `order` are released (a prefix).
    pub released: u32,
    /// Released instances up on the target, ascending.
    pub done: Vec<u32>,
    /// Released instances that failed on the target, ascending.
    pub failed: Vec<u32>,
    /// Paused by the user.
    pub paused: bool,
    /// Aborted by the user.
    pub aborted: bool,
    /// Rolling back after a failure.
    pub rolling_back: bool,
    /// Set once it has ended, with how.
    pub ended: Option<WorkflowState>,
    /// When it was made.
    pub created_at: UnixMillis,
    /// Who started it (an identity's name; empty when anonymous, or for
    /// an update stored before identities were recorded).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub started_by: String,
    /// When its state last changed.
    pub updated_at: UnixMillis,
    /// When the current phase (forward, or rolling back) began: runs
    /// launched before do not count as its failures.
    pub phase_started_at: UnixMillis,
}

/// A workflow as [`Workflow::summary`] keeps it once a later one
/// replaced it: what `ListJobUpdates` shows of past updates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowSummary {
    /// Its number.
    pub id: u32,
    /// How it rolled.
    pub options: UpdateOptions,
    /// Its versions.
    pub from_version: u64,
    /// Its versions.
    pub to_version: u64,
    /// How it ended (or stood when replaced).
    pub state: WorkflowState,
    /// What it changed.
    pub diff: SpecDiff,
    /// Instances done, failed, and left.
    pub completed: u32,
    /// Instances that failed.
    pub failed: u32,
    /// Instances not done.
    pub remaining: u32,
    /// When it was made.
    pub created_at: UnixMillis,
    /// Who started it (see [`Workflow::started_by`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub started_by: String,
    /// When its state last changed.
    pub updated_at: UnixMillis,
}

/// The workflows of a job: the current (or last) one, and a bounded
/// history of earlier ones, newest last.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobWorkflows {
    /// The current or last workflow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current: Option<Box<Workflow>>,
    /// Earlier ones.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub past: Vec<WorkflowSummary>,
}

/// How many past workflows a job keeps.
pub const PAST_WORKFLOWS_KEPT: usize = 50;

impl JobWorkflows {
    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.current.is_none() && self.past.is_empty()
    }

    /// The number the next workflow takes.
    pub fn next_id(&self) -> u32 {
        let last = self
            .current
            .as_ref()
            .map(|w| w.id)
            .or_else(|| self.past.last().map(|p| p.id));
        last.map_or(1, |id| id + 1)
    }

    /// Makes `workflow` the current one, keeping the one it replaces.
    pub fn start(&mut self, workflow: Workflow) {
        if let Some(old) = self.current.take() {
            self.past.push(old.summary());
            if self.past.len() > PAST_WORKFLOWS_KEPT {
                self.past.remove(0);
            }
        }
        self.current = Some(Box::new(workflow));
    }

    /// The active workflow, if one is rolling or paused.
    pub fn active(&self) -> Option<&Workflow> {
        self.current.as_deref().filter(|w| !w.state().is_terminal())
    }
}

impl Workflow {
    /// Its state now.
    pub fn state(&self) -> WorkflowState {
        if let Some(ended) = self.ended {
            ended
        } else if self.aborted {
            WorkflowState::Aborted
        } else if self.paused {
            WorkflowState::Paused
        } else if self.rolling_back {
            WorkflowState::RollingBackward
        } else {
            WorkflowState::RollingForward
        }
    }

    /// Instances of this phase that are neither done nor failed.
    pub fn remaining(&self) -> u32 {
        self.order.len() as u32 - self.done.len() as u32 - self.failed.len() as u32
    }

    /// The released instances neither done nor failed (Peloton
    /// `instances_current`).
    pub fn current(&self) -> Vec<u32> {
        self.order[..self.released as usize]
            .iter()
            .copied()
            .filter(|i| {
                self.done.binary_search(i).is_err() && self.failed.binary_search(i).is_err()
            })
            .collect()
    }

    /// Per instance below `count`, whether it still runs the other spec.
    pub fn pending_mask(&self, count: usize) -> Vec<bool> {
        let mut mask = vec![false; count];
        for &instance in &self.order[(self.released as usize).min(self.order.len())..] {
            if let Some(slot) = mask.get_mut(instance as usize) {
                *slot = true;
            }
        }
        mask
    }

    /// The job was scaled to `count` instances: both specs have that many,
    /// and the instances past it leave the window (a released instance
    /// past it no longer counts; one not released is not moved).
    pub fn resize(&mut self, count: u32) {
        self.other_spec.instance_count = count;
        let released = self.order[..self.released as usize]
            .iter()
            .filter(|&&i| i < count)
            .count();
        self.order.retain(|&i| i < count);
        self.released = released as u32;
        self.done.retain(|&i| i < count);
        self.failed.retain(|&i| i < count);
    }

    /// Whether this phase has released `instance` (it moves to the
    /// target, or has).
    pub fn released_contains(&self, instance: u32) -> bool {
        self.order[..(self.released as usize).min(self.order.len())]
            .binary_search(&instance)
            .is_ok()
    }

    /// Whether this phase moves `instance` at all.
    pub fn order_contains(&self, instance: u32) -> bool {
        self.order.binary_search(&instance).is_ok()
    }

    /// Whether `instance` still runs the other spec.
    pub fn runs_other(&self, instance: u32) -> bool {
        self.order[(self.released as usize).min(self.order.len())..]
            .binary_search(&instance)
            .is_ok()
    }

    /// What is kept of it once a later workflow replaces it.
    pub fn summary(&self) -> WorkflowSummary {
        WorkflowSummary {
            id: self.id,
            options: self.options,
            from_version: self.from_version,
            to_version: self.to_version,
            state: self.state(),
            diff: self.diff.clone(),
            completed: self.done.len() as u32,
            failed: self.failed.len() as u32,
            remaining: self.remaining(),
            created_at: self.created_at,
            started_by: self.started_by.clone(),
            updated_at: self.updated_at,
        }
    }

    /// Pauses, resumes or aborts it, recording the event; None when that
    /// changes nothing (resuming a running one).
    pub fn steer(
        &self,
        action: WorkflowAction,
        now: UnixMillis,
    ) -> Option<(Workflow, WorkflowEvent)> {
        let mut next = self.clone();
        match action {
            WorkflowAction::Pause if !self.paused => next.paused = true,
            WorkflowAction::Resume if self.paused => next.paused = false,
            WorkflowAction::Abort => {
                next.aborted = true;
                next.ended = Some(WorkflowState::Aborted);
            }
            _ => return None,
        }
        next.updated_at = now;
        let event = WorkflowEvent {
            instance: None,
            state: next.state(),
            at: now,
        };
        Some((next, event))
    }
}

/// What a user does to a workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowAction {
    /// Move nothing new until resumed.
    Pause,
    /// Carry on.
    Resume,
    /// End it where it stands.
    Abort,
}

impl WorkflowAction {
    /// What it does to a job's workflow, as a verb.
    pub fn verb(self) -> &'static str {
        match self {
            WorkflowAction::Pause => "pause the workflow of",
            WorkflowAction::Resume => "resume the workflow of",
            WorkflowAction::Abort => "abort the workflow of",
        }
    }
}

/// A new update of a job from `from` (at `from_version`; its instances
/// run what `current` says) to `to` (at `to_version`), made at `now`.
/// The instances whose pods change move first, then the added ones; the
/// removed ones are stopped at once (they are no longer the job's).
#[allow(clippy::too_many_arguments)]
pub fn start<'a>(
    id: u32,
    options: UpdateOptions,
    from: &JobSpec,
    from_version: u64,
    current: impl Fn(u32) -> Option<std::borrow::Cow<'a, super::spec::PodSpec>>,
    to: &JobSpec,
    to_version: u64,
    now: UnixMillis,
) -> Workflow {
    let diff = diff(
        from.instance_count,
        current,
        to,
        super::secret::differ(&from.secrets, &to.secrets),
    );
    let mut order: Vec<u32> = diff.updated.iter().chain(&diff.added).copied().collect();
    order.sort_unstable();
    Workflow {
        id,
        options,
        from_version,
        to_version,
        other_spec: Box::new(from.clone()),
        other_version: from_version,
        diff,
        order,
        released: 0,
        done: Vec::new(),
        failed: Vec::new(),
        paused: options.start_paused,
        aborted: false,
        rolling_back: false,
        ended: None,
        created_at: now,
        started_by: String::new(),
        updated_at: now,
        phase_started_at: now,
    }
}

/// What one step of a workflow decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    /// The workflow as it now stands.
    pub workflow: Workflow,
    /// The events of the step.
    pub events: Vec<WorkflowEvent>,
    /// The workflow began rolling back: the job's target becomes the old
    /// spec (`workflow.other_spec` is now the new one).
    pub rolled_back_to: Option<(Box<JobSpec>, u64)>,
}

/// The job's side of a step: its target spec and version, and each
/// instance's runs (oldest first; empty past the job's runs).
pub struct JobRuns<'a, H: Fn(u32) -> &'a [Run]> {
    /// The target spec.
    pub spec: &'a JobSpec,
    /// Its version.
    pub version: u64,
    /// The runs of an instance.
    pub history: H,
    /// Instances of the job not available now, whatever the reason (the
    /// SLA's count).
    pub unavailable: u32,
    /// `sla.maximum_unavailable_instances` (0: no limit).
    pub max_unavailable: u32,
}

/// One step of `workflow` over the job's runs at `now`: instances done or
/// failed are recorded, the workflow fails, rolls back or ends as its
/// rules say, and more instances are released as the window allows.
/// None when nothing changes.
pub fn advance<'a, H: Fn(u32) -> &'a [Run]>(
    workflow: &Workflow,
    job: &JobRuns<'a, H>,
    now: UnixMillis,
) -> Option<Advance> {
    if workflow.ended.is_some() {
        return None;
    }
    let mut w = workflow.clone();
    let mut events = Vec::new();
    let event = |instance: Option<u32>, state: WorkflowState| WorkflowEvent {
        instance,
        state,
        at: now,
    };
    let phase_done = if w.rolling_back {
        WorkflowState::RolledBack
    } else {
        WorkflowState::Succeeded
    };
    for instance in w.current() {
        let runs = (job.history)(instance);
        let pod = job.spec.pod_spec(instance);
        let on_target = runs.last().filter(|r| r.spec_version == job.version);
        if on_target.is_some_and(|r| is_available(&pod, r)) {
            insert_sorted(&mut w.done, instance);
            events.push(event(Some(instance), phase_done));
            continue;
        }
        let failures = runs
            .iter()
            .filter(|r| {
                r.spec_version == job.version
                    && r.launched_at >= w.phase_started_at
                    && r.counts_as_failure()
            })
            .count() as u32;
        let retries = w.options.max_instance_retries;
        if retries > 0 && failures > retries {
            insert_sorted(&mut w.failed, instance);
            events.push(event(Some(instance), WorkflowState::Failed));
        }
    }
    let tolerable = w.options.max_tolerable_instance_failures;
    let mut rolled_back_to = None;
    if !w.aborted && tolerable > 0 && w.failed.len() as u32 >= tolerable {
        if w.options.rollback_on_failure && !w.rolling_back {
            rolled_back_to = Some(roll_back(&mut w, job.spec, job.version, now));
            events.push(event(None, WorkflowState::Failed));
            events.push(event(None, WorkflowState::RollingBackward));
        } else {
            w.ended = Some(WorkflowState::Failed);
            events.push(event(None, WorkflowState::Failed));
        }
    } else if !w.aborted && w.remaining() == 0 {
        w.ended = Some(phase_done);
        events.push(event(None, phase_done));
    } else if !w.aborted && !w.paused {
        let in_flight = w.current().len() as u32;
        let window = match w.options.batch_size {
            0 => u32::MAX,
            batch => batch.saturating_sub(in_flight),
        };
        let sla_bound = match job.max_unavailable {
            0 => u32::MAX,
            max => max.saturating_sub(job.unavailable),
        };
        // The one budget rule ([`allowance`]) holds too: a Titus budget's
        // percentage, rate and time windows pace an update as a drain.
        let budget = allowance(
            job.spec,
            JobAvailability {
                wanted: job.spec.instance_count,
                unavailable: job.unavailable,
                recent_disruptions: 0,
            },
            now,
        );
        let mut sla = sla_bound.min(budget.disruptions);
        // Releasing an instance that is down already takes nothing more
        // down: it costs no SLA budget. Without this a rollback whose
        // failed instances spent the budget would never move them back.
        let unreleased = &w.order[w.released as usize..];
        let mut release = 0;
        for &instance in unreleased.iter().take(window as usize) {
            let cost = u32::from(is_up(&w, job, instance));
            if cost > sla {
                break;
            }
            sla -= cost;
            release += 1;
        }
        let phase = w.state();
        for &instance in &w.order[w.released as usize..(w.released + release) as usize] {
            events.push(event(Some(instance), phase));
        }
        w.released += release;
    }
    if events.is_empty() {
        return None;
    }
    w.updated_at = now;
    Some(Advance {
        workflow: w,
        events,
        rolled_back_to,
    })
}

/// `workflow` turned round by the user (`target` at `version` is the
/// job's spec now): see [`roll_back`]. An update that ended (succeeded,
/// failed or aborted) starts again, rolling backward.
pub fn rolled_back(
    workflow: &Workflow,
    target: &JobSpec,
    version: u64,
    now: UnixMillis,
) -> (Workflow, (Box<JobSpec>, u64)) {
    let mut w = workflow.clone();
    let old = roll_back(&mut w, target, version, now);
    w.ended = None;
    w.aborted = false;
    w.paused = false;
    w.updated_at = now;
    (w, old)
}

/// Turns `w` round: the instances it released move back to the old spec
/// (and the instances it removed come back); returns the old spec and
/// version, the job's target from now (`target`, at `version`, becomes
/// the other spec).
fn roll_back(
    w: &mut Workflow,
    target: &JobSpec,
    version: u64,
    now: UnixMillis,
) -> (Box<JobSpec>, u64) {
    let old_count = w.other_spec.instance_count;
    let moved = w.order[..w.released as usize]
        .iter()
        .copied()
        .filter(|&i| i < old_count);
    let mut order: Vec<u32> = moved.chain(w.diff.removed.iter().copied()).collect();
    order.sort_unstable();
    order.dedup();
    let old = std::mem::replace(&mut w.other_spec, Box::new(target.clone()));
    let old_version = w.other_version;
    w.other_version = version;
    w.order = order;
    w.released = 0;
    w.done.clear();
    w.failed.clear();
    w.rolling_back = true;
    w.phase_started_at = now;
    (old, old_version)
}

/// Whether `instance`'s latest run serves (on whichever of the two specs
/// it runs).
fn is_up<'a, H: Fn(u32) -> &'a [Run]>(w: &Workflow, job: &JobRuns<'a, H>, instance: u32) -> bool {
    (job.history)(instance).last().is_some_and(|run| {
        let spec = if run.spec_version == job.version {
            job.spec
        } else {
            &w.other_spec
        };
        is_available(&spec.pod_spec(instance), run)
    })
}

fn insert_sorted(list: &mut Vec<u32>, value: u32) {
    if let Err(at) = list.binary_search(&value) {
        list.insert(at, value);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
