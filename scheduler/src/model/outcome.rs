//! What an instance's runs add up to: whether an instance whose latest run
//! has ended gets another, when its next try may start, and the instance's
//! outcome, from which a job's state follows. The engine plans with these
//! and the API shows them, so the two never disagree.
//!
//! The relaunch rule, for an instance that is wanted and whose latest run
//! is terminal:
//! - numbered below the pod's `restart_from` (a restart) → relaunch.
//! - killed by the runtime limit → a failure; relaunched only with
//!   `retry_on_runtime_limit` and within `max_failures`.
//! - SERVICE: relaunch, whatever the exit.
//! - BATCH: an instance one of whose runs (since its last restart)
//!   SUCCEEDED is done, even when a replacement of a run given up on is
//!   what ended last; FAILED, or KILLED without the scheduler asking,
//!   counts as a failure and is relaunched while failures ≤ max_failures;
//!   LOST (or a kill the scheduler asked for) is relaunched without
//!   counting.
//!
//! A relaunch after consecutive failures waits for the retry backoff
//! ([`super::policies::backoff`]).

use super::ids::{InstanceId, TaskId};
use super::job::Job;
use super::policies::backoff::Backoff;
use super::run::{serving_run, Run, RUNTIME_LIMIT_REASON};
use super::spec::{JobType, PodSpec};
use super::state::{InstanceCounts, InstanceOutcome, JobState, PodState};
use super::time::UnixMillis;

/// Whether instance `instance` of `job`, wanted and with `latest` (the last
/// of `history`, oldest first) terminal, gets a new run (see the module doc).
pub fn wants_relaunch<R: AsRef<Run>>(
    job: &Job,
    instance: u32,
    pod: &PodSpec,
    history: &[R],
) -> bool {
    let Some(latest) = history.last().map(AsRef::as_ref) else {
        return true;
    };
    let failures = history
        .iter()
        .filter(|r| r.as_ref().counts_as_failure())
        .count() as u64;
    let within_budget = failures <= u64::from(pod.max_failures());
    if latest.run < job.restart_from(instance) {
        true
    } else if latest.kill_reason == Some(RUNTIME_LIMIT_REASON) {
        pod.retry_on_runtime_limit.unwrap_or(false) && within_budget
    } else {
        match job.spec.job_type {
            JobType::Service => true,
            JobType::Batch if succeeded(job, instance, history) => false,
            JobType::Batch if latest.counts_as_failure() => within_budget,
            JobType::Batch => true,
        }
    }
}

/// Whether `instance` of a batch job is done: one of its runs since its
/// last restart succeeded (a run given up on, or replaced while its agent
/// was unreachable, may succeed after its replacement started).
pub fn batch_done<R: AsRef<Run>>(job: &Job, instance: u32, history: &[R]) -> bool {
    job.spec.job_type == JobType::Batch && succeeded(job, instance, history)
}

/// Whether a batch `instance` is done: one of its runs since its last
/// restart succeeded.
fn succeeded<R: AsRef<Run>>(job: &Job, instance: u32, history: &[R]) -> bool {
    let since = job.restart_from(instance);
    history.iter().any(|r| {
        let r = r.as_ref();
        r.state == PodState::Succeeded && r.run >= since
    })
}

/// When the next run of `instance` (whose runs are `history`, oldest
/// first) may start, if its latest runs failed in a row; None if nothing
/// holds it back.
pub fn retry_at<R: AsRef<Run>>(
    instance: &InstanceId,
    pod: &PodSpec,
    history: &[R],
) -> Option<UnixMillis> {
    let latest = history.last()?.as_ref();
    if !latest.state.is_terminal() {
        return None;
    }
    let consecutive = history
        .iter()
        .rev()
        .take_while(|r| r.as_ref().counts_as_failure())
        .count() as u32;
    if consecutive == 0 {
        return None;
    }
    let ended = latest.completed_at.unwrap_or(latest.updated_at);
    let backoff = Backoff::of(pod.restart_policy.as_ref());
    let task = TaskId::new(instance.clone(), latest.run);
    Some(backoff.next_retry_at(ended, consecutive, &task))
}

/// What one instance looks like when its job's state is summed up: its
/// latest run's, or during a handover ([`super::run`]) the old run's
/// until the replacement runs.
pub fn instance_outcome<R: AsRef<Run>>(
    job: &Job,
    instance: u32,
    pod: &PodSpec,
    history: &[R],
) -> InstanceOutcome {
    let Some(latest) = history.last().map(AsRef::as_ref) else {
        return InstanceOutcome::Waiting;
    };
    // A run handing over serves until its replacement runs.
    let old = history[..history.len() - 1]
        .iter()
        .map(AsRef::as_ref)
        .rfind(|r| r.handing_over && r.state.is_live());
    if let Some(old) = old.filter(|_| latest.state != PodState::Running) {
        return if old.state == PodState::Running {
            InstanceOutcome::Running
        } else {
            InstanceOutcome::Starting
        };
    }
    if latest.state.is_live() {
        return if latest.state == PodState::Running {
            InstanceOutcome::Running
        } else {
            InstanceOutcome::Starting
        };
    }
    if !job.wants_running(instance) {
        return if latest.kill_requested_at.is_some() && latest.kill_reason.is_none() {
            InstanceOutcome::Killed
        } else {
            settled_outcome(job, instance, history)
        };
    }
    if wants_relaunch(job, instance, pod, history) {
        InstanceOutcome::Waiting
    } else {
        settled_outcome(job, instance, history)
    }
}

/// The outcome of an instance whose latest run ended and stays ended: a
/// batch instance with a run that succeeded is SUCCEEDED, whatever ended
/// last; otherwise its latest run says.
pub fn settled_outcome<R: AsRef<Run>>(job: &Job, instance: u32, history: &[R]) -> InstanceOutcome {
    if job.spec.job_type == JobType::Batch && succeeded(job, instance, history) {
        return InstanceOutcome::Succeeded;
    }
    history.last().map_or(InstanceOutcome::Waiting, |latest| {
        run_outcome(latest.as_ref())
    })
}

/// The outcome a run that ended gives its instance.
fn run_outcome(run: &Run) -> InstanceOutcome {
    if run.kill_reason == Some(RUNTIME_LIMIT_REASON) && run.state.is_terminal() {
        return InstanceOutcome::Failed;
    }
    match run.state {
        PodState::Succeeded => InstanceOutcome::Succeeded,
        PodState::Killed => InstanceOutcome::Killed,
        PodState::Failed => InstanceOutcome::Failed,
        _ => InstanceOutcome::Waiting,
    }
}

/// The state of `job` from its instances' runs: `histories` yields each
/// instance's runs (oldest first) in instance order, and an instance it
/// does not reach has no run yet.
pub fn job_state_of<'a, R: AsRef<Run> + 'a>(
    job: &Job,
    histories: impl IntoIterator<Item = &'a [R]>,
) -> JobState {
    counts_of(job, histories).job_state(job.goal)
}

impl AsRef<Run> for Run {
    fn as_ref(&self) -> &Run {
        self
    }
}

/// Where one instance stands, as its job's [`InstanceCounts`] count it: the
/// state of its latest run (PENDING for none), its outcome, and whether it
/// ever had a run.
pub fn standing<R: AsRef<Run>>(
    job: &Job,
    instance: u32,
    history: &[R],
) -> (PodState, InstanceOutcome, bool) {
    let pod = job.spec.pod_spec(instance);
    // During a drain's handover the old run stands for the instance until
    // its replacement runs.
    let state = serving_run(history, |r| r.state == PodState::Running)
        .map_or(PodState::Pending, |at| history[at].as_ref().state);
    let outcome = instance_outcome(job, instance, &pod, history);
    (state, outcome, !history.is_empty())
}

/// The counts of every instance of `job`, whose runs `histories` yields
/// per instance in order (an instance it does not reach has none).
pub fn counts_of<'a, R: AsRef<Run> + 'a>(
    job: &Job,
    histories: impl IntoIterator<Item = &'a [R]>,
) -> InstanceCounts {
    let mut histories = histories.into_iter();
    let mut counts = InstanceCounts::default();
    for instance in 0..job.spec.instance_count {
        let history = histories.next().unwrap_or(&[]);
        let (state, outcome, ran) = standing(job, instance, history);
        counts.add(state, outcome, ran);
    }
    counts
}
