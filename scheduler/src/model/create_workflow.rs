//! A job's creation as a workflow (Peloton `CreateSpec`): instances are
//! launched `batch_size` at a time, the creation may start paused and be
//! paused, resumed or aborted, and it fails when more instances than it
//! tolerates fail more often than it retries them. Pure: what is stored
//! is the user's intent ([`CreateWorkflow`]); its progress is read off the
//! instances' runs ([`progress`]) each time, so it is never out of date.
//!
//! An instance is *created* once one of its runs reached RUNNING (or
//! ended SUCCEEDED). While the workflow is active (rolling forward or
//! paused), an instance not created yet is launched only as the workflow
//! allows ([`CreateProgress::admits`]): none while paused, and at most
//! `batch_size` not-yet-created instances launching at a time. An instance
//! whose runs failed more than `max_instance_retries` times before it was
//! created is a failed instance of the workflow and not retried by it.
//! Once the workflow has SUCCEEDED the job runs by the ordinary rules;
//! once it FAILED or was ABORTED, instances not created stay unlaunched
//! until the job is started again (StartJob ends the workflow).

use super::run::Run;
use super::state::PodState;
use serde::{Deserialize, Serialize};

/// What the user asked of the job's creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkflow {
    /// Most instances being created at once (0 = all at once).
    #[serde(default)]
    pub batch_size: u32,
    /// Failed runs an instance may have before it is created. With
    /// `max_tolerable_instance_failures` also 0 (Peloton's defaults) no
    /// failure is counted ([`CreateWorkflow::limits_failures`]).
    #[serde(default)]
    pub max_instance_retries: u32,
    /// Failed instances the creation tolerates before it fails.
    #[serde(default)]
    pub max_tolerable_instance_failures: u32,
    /// Paused by the user (or created paused).
    #[serde(default)]
    pub paused: bool,
    /// Aborted by the user.
    #[serde(default)]
    pub aborted: bool,
}

/// Where a creation stands (Peloton's workflow states).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateState {
    /// Launching instances.
    RollingForward,
    /// Paused: nothing new launches.
    Paused,
    /// Every instance was created.
    Succeeded,
    /// More instances failed than tolerated.
    Failed,
    /// Aborted by the user.
    Aborted,
}

impl CreateState {
    /// Whether the workflow still paces launches.
    pub fn is_active(self) -> bool {
        matches!(self, CreateState::RollingForward | CreateState::Paused)
    }
}

/// A creation's progress, from the instances' runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateProgress {
    /// Its state.
    pub state: CreateState,
    /// Instances created.
    pub completed: u32,
    /// Instances neither created nor failed.
    pub remaining: u32,
    /// Instances that failed more often than retried.
    pub failed: u32,
    /// Instances being created now (a live run, not created yet).
    pub current: Vec<u32>,
    /// Instances the workflow holds back from launching (not created,
    /// and over the batch, paused, failed or the workflow ended badly).
    held: Vec<bool>,
}

impl CreateWorkflow {
    /// Whether failures are counted at all: Peloton's zero defaults for
    /// both limits mean "no limit".
    pub fn limits_failures(&self) -> bool {
        self.max_instance_retries > 0 || self.max_tolerable_instance_failures > 0
    }
}

fn created(history: &[Run]) -> bool {
    history
        .iter()
        .any(|r| r.started_at.is_some() || r.state == PodState::Succeeded)
}

/// The progress of `workflow` over a job's `instance_count` instances,
/// whose runs (oldest first) `history` gives.
pub fn progress<'a>(
    workflow: &CreateWorkflow,
    instance_count: u32,
    history: impl Fn(u32) -> &'a [Run],
) -> CreateProgress {
    let mut completed = 0;
    let mut failed = 0;
    let mut current = Vec::new();
    let mut waiting = Vec::new();
    let mut held = vec![false; instance_count as usize];
    for instance in 0..instance_count {
        let runs = history(instance);
        if created(runs) {
            completed += 1;
            continue;
        }
        let failures = runs.iter().filter(|r| r.counts_as_failure()).count() as u32;
        if workflow.limits_failures() && failures > workflow.max_instance_retries {
            failed += 1;
            held[instance as usize] = true;
            continue;
        }
        if runs.last().is_some_and(|r| r.state.is_live()) {
            current.push(instance);
        } else {
            waiting.push(instance);
        }
    }
    let remaining = instance_count - completed - failed;
    let state = if workflow.aborted {
        CreateState::Aborted
    } else if workflow.limits_failures() && failed > workflow.max_tolerable_instance_failures {
        CreateState::Failed
    } else if remaining == 0 {
        CreateState::Succeeded
    } else if workflow.paused {
        CreateState::Paused
    } else {
        CreateState::RollingForward
    };
    let slots = match state {
        CreateState::RollingForward if workflow.batch_size == 0 => usize::MAX,
        CreateState::RollingForward => (workflow.batch_size as usize).saturating_sub(current.len()),
        // Succeeded: nothing is waiting. Otherwise nothing new launches.
        _ => 0,
    };
    for instance in waiting.into_iter().skip(slots) {
        held[instance as usize] = true;
    }
    CreateProgress {
        state,
        completed,
        remaining,
        failed,
        current,
        held,
    }
}

impl CreateProgress {
    /// Whether the workflow lets `instance` launch now.
    pub fn admits(&self, instance: u32) -> bool {
        !self.held.get(instance as usize).copied().unwrap_or(false)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn run(state: PodState, started: bool) -> Run {
        let mut r = Run::launching(0, crate::model::ids::AgentId::new("a"), 1, 0);
        r.state = state;
        r.started_at = started.then_some(1);
        r
    }

    fn wf(batch: u32) -> CreateWorkflow {
        CreateWorkflow {
            batch_size: batch,
            ..CreateWorkflow::default()
        }
    }

    #[test]
    fn at_most_a_batch_of_instances_is_being_created_at_once() {
        let runs: Vec<Vec<Run>> = vec![
            vec![run(PodState::Running, true)],
            vec![run(PodState::Launched, false)],
            vec![],
            vec![],
            vec![],
        ];
        let p = progress(&wf(2), 5, |i| &runs[i as usize]);
        assert_eq!(p.state, CreateState::RollingForward);
        assert_eq!((p.completed, p.remaining, p.failed), (1, 4, 0));
        assert_eq!(p.current, [1]);
        // One launching, so one more of the batch of 2.
        assert!(p.admits(2));
        assert!(!p.admits(3) && !p.admits(4));
        // Created and current instances are not held.
        assert!(p.admits(0) && p.admits(1));
    }

    #[test]
    fn a_paused_creation_launches_nothing_new_and_a_finished_one_paces_nothing() {
        let runs: Vec<Vec<Run>> = vec![vec![], vec![]];
        let paused = CreateWorkflow {
            paused: true,
            ..wf(0)
        };
        let p = progress(&paused, 2, |i| &runs[i as usize]);
        assert_eq!(p.state, CreateState::Paused);
        assert!(!p.admits(0) && !p.admits(1));
        let done: Vec<Vec<Run>> = vec![vec![run(PodState::Failed, true)]];
        let p = progress(&paused, 1, |i| &done[i as usize]);
        assert_eq!(p.state, CreateState::Succeeded);
        assert!(p.admits(0));
    }

    #[test]
    fn too_many_failed_instances_fail_the_creation() {
        let runs: Vec<Vec<Run>> = vec![
            vec![run(PodState::Failed, false), run(PodState::Failed, false)],
            vec![run(PodState::Failed, false)],
            vec![],
        ];
        let w = CreateWorkflow {
            max_instance_retries: 1,
            max_tolerable_instance_failures: 0,
            ..wf(0)
        };
        let p = progress(&w, 3, |i| &runs[i as usize]);
        assert_eq!(p.failed, 1);
        assert_eq!(p.state, CreateState::Failed);
        assert!(!p.admits(0), "a failed instance is not retried");
        assert!(!p.admits(2), "a failed creation launches nothing new");
        let aborted = CreateWorkflow { aborted: true, ..w };
        assert_eq!(
            progress(&aborted, 3, |i| &runs[i as usize]).state,
            CreateState::Aborted
        );
    }
}
