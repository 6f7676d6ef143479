//! Pod and job states (Peloton `PodState`, `JobState`), how a Mesos
//! `TaskState` maps onto a pod state, and how a job's state follows from its
//! pods. Pure; the names are the seed's, so they are also the API's.

use drover_proto::v1::TaskState;
use serde::{Deserialize, Serialize};

/// The state of one run of an instance (Peloton `PodState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PodState {
    /// Waiting for resources (no run recorded yet).
    #[serde(rename = "POD_STATE_PENDING")]
    Pending,
    /// Launch intent recorded; the ACCEPT may or may not have reached the master.
    #[serde(rename = "POD_STATE_LAUNCHING")]
    Launching,
    /// The master or agent has the task (TASK_STAGING).
    #[serde(rename = "POD_STATE_LAUNCHED")]
    Launched,
    /// TASK_STARTING.
    #[serde(rename = "POD_STATE_STARTING")]
    Starting,
    /// TASK_RUNNING.
    #[serde(rename = "POD_STATE_RUNNING")]
    Running,
    /// TASK_KILLING.
    #[serde(rename = "POD_STATE_KILLING")]
    Killing,
    /// TASK_FINISHED.
    #[serde(rename = "POD_STATE_SUCCEEDED")]
    Succeeded,
    /// TASK_FAILED or TASK_ERROR.
    #[serde(rename = "POD_STATE_FAILED")]
    Failed,
    /// TASK_KILLED.
    #[serde(rename = "POD_STATE_KILLED")]
    Killed,
    /// Lost, dropped, gone, unknown or unreachable: the run is given up.
    #[serde(rename = "POD_STATE_LOST")]
    Lost,
}

/// The state of a job (Peloton `JobState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobState {
    /// Stored, nothing launched yet.
    #[serde(rename = "JOB_STATE_INITIALIZED")]
    Initialized,
    /// Instances exist but none is running.
    #[serde(rename = "JOB_STATE_PENDING")]
    Pending,
    /// At least one instance is running.
    #[serde(rename = "JOB_STATE_RUNNING")]
    Running,
    /// Every instance succeeded (batch).
    #[serde(rename = "JOB_STATE_SUCCEEDED")]
    Succeeded,
    /// Every instance is done and at least one failed for good (batch).
    #[serde(rename = "JOB_STATE_FAILED")]
    Failed,
    /// Stopped by the user and everything is terminal.
    #[serde(rename = "JOB_STATE_KILLED")]
    Killed,
    /// Stopped by the user, kills in progress.
    #[serde(rename = "JOB_STATE_KILLING")]
    Killing,
}

/// What the user wants of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JobGoal {
    /// Run it.
    #[serde(rename = "JOB_STATE_RUNNING")]
    Running,
    /// Kill every instance and launch nothing.
    #[serde(rename = "JOB_STATE_KILLED")]
    Stopped,
    /// Stop, then forget the job.
    #[serde(rename = "JOB_STATE_DELETED")]
    Deleted,
}

/// What the user wants of one pod (pod stop / start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum PodGoal {
    /// Run it (as the job's goal allows).
    #[default]
    #[serde(rename = "POD_STATE_RUNNING")]
    Running,
    /// Keep it killed until started again.
    #[serde(rename = "POD_STATE_KILLED")]
    Killed,
}

impl PodGoal {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            PodGoal::Running => "RUNNING",
            PodGoal::Killed => "KILLED",
        }
    }

    /// Parses [`PodGoal::as_str`].
    pub fn parse(s: &str) -> Option<PodGoal> {
        [PodGoal::Running, PodGoal::Killed]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

impl PodState {
    /// The pod state for a Mesos task state. UNREACHABLE counts as lost:
    /// the instance is replaced, and the task is killed if it comes back.
    pub fn from_task_state(state: TaskState) -> PodState {
        match state {
            TaskState::TaskStaging => PodState::Launched,
            TaskState::TaskStarting => PodState::Starting,
            TaskState::TaskRunning => PodState::Running,
            TaskState::TaskKilling => PodState::Killing,
            TaskState::TaskFinished => PodState::Succeeded,
            TaskState::TaskFailed | TaskState::TaskError => PodState::Failed,
            TaskState::TaskKilled => PodState::Killed,
            TaskState::TaskLost
            | TaskState::TaskDropped
            | TaskState::TaskUnreachable
            | TaskState::TaskGone
            | TaskState::TaskGoneByOperator
            | TaskState::TaskUnknown => PodState::Lost,
        }
    }

    /// Whether the run is over as far as the scheduler is concerned.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PodState::Succeeded | PodState::Failed | PodState::Killed | PodState::Lost
        )
    }

    /// Whether a task may be live on an agent (launching counts: it may be).
    pub fn is_live(self) -> bool {
        !self.is_terminal() && self != PodState::Pending
    }

    /// Whether a kill makes sense.
    pub fn can_kill(self) -> bool {
        self.is_live()
    }

    /// The name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            PodState::Pending => "POD_STATE_PENDING",
            PodState::Launching => "POD_STATE_LAUNCHING",
            PodState::Launched => "POD_STATE_LAUNCHED",
            PodState::Starting => "POD_STATE_STARTING",
            PodState::Running => "POD_STATE_RUNNING",
            PodState::Killing => "POD_STATE_KILLING",
            PodState::Succeeded => "POD_STATE_SUCCEEDED",
            PodState::Failed => "POD_STATE_FAILED",
            PodState::Killed => "POD_STATE_KILLED",
            PodState::Lost => "POD_STATE_LOST",
        }
    }

    /// Parses [`PodState::as_str`].
    pub fn parse(s: &str) -> Option<PodState> {
        ALL_POD_STATES.iter().copied().find(|p| p.as_str() == s)
    }
}

/// Every pod state, in lifecycle order.
pub const ALL_POD_STATES: [PodState; 10] = [
    PodState::Pending,
    PodState::Launching,
    PodState::Launched,
    PodState::Starting,
    PodState::Running,
    PodState::Killing,
    PodState::Succeeded,
    PodState::Failed,
    PodState::Killed,
    PodState::Lost,
];

impl JobState {
    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Initialized => "JOB_STATE_INITIALIZED",
            JobState::Pending => "JOB_STATE_PENDING",
            JobState::Running => "JOB_STATE_RUNNING",
            JobState::Succeeded => "JOB_STATE_SUCCEEDED",
            JobState::Failed => "JOB_STATE_FAILED",
            JobState::Killed => "JOB_STATE_KILLED",
            JobState::Killing => "JOB_STATE_KILLING",
        }
    }

    /// Whether the job will do nothing more without a user's request.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Killed
        )
    }
}

impl JobGoal {
    /// The name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            JobGoal::Running => "RUNNING",
            JobGoal::Stopped => "STOPPED",
            JobGoal::Deleted => "DELETED",
        }
    }

    /// Parses [`JobGoal::as_str`].
    pub fn parse(s: &str) -> Option<JobGoal> {
        [JobGoal::Running, JobGoal::Stopped, JobGoal::Deleted]
            .into_iter()
            .find(|g| g.as_str() == s)
    }
}

/// What one instance looks like when the job's state is summed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstanceOutcome {
    /// No run yet, or waiting for a new one.
    Waiting,
    /// A run is live but not yet running.
    Starting,
    /// A run is running.
    Running,
    /// Done: succeeded.
    Succeeded,
    /// Done: failed and out of retries.
    Failed,
    /// Done: killed on the user's request.
    Killed,
}

/// A job's state from its goal and its instances' outcomes.
pub fn job_state(goal: JobGoal, outcomes: &[InstanceOutcome], any_run_ever: bool) -> JobState {
    let live = outcomes
        .iter()
        .any(|o| matches!(o, InstanceOutcome::Starting | InstanceOutcome::Running));
    if goal != JobGoal::Running {
        return if live {
            JobState::Killing
        } else {
            JobState::Killed
        };
    }
    if outcomes.contains(&InstanceOutcome::Running) {
        return JobState::Running;
    }
    let all_done = outcomes.iter().all(|o| {
        matches!(
            o,
            InstanceOutcome::Succeeded | InstanceOutcome::Failed | InstanceOutcome::Killed
        )
    });
    if all_done && !outcomes.is_empty() {
        if outcomes.contains(&InstanceOutcome::Failed) {
            return JobState::Failed;
        }
        if outcomes.contains(&InstanceOutcome::Killed) {
            return JobState::Killed;
        }
        return JobState::Succeeded;
    }
    if any_run_ever {
        JobState::Pending
    } else {
        JobState::Initialized
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use InstanceOutcome::*;

    #[test]
    fn job_states_follow_their_instances() {
        let table = [
            (
                JobGoal::Running,
                vec![Waiting, Waiting],
                false,
                JobState::Initialized,
            ),
            (
                JobGoal::Running,
                vec![Waiting, Starting],
                true,
                JobState::Pending,
            ),
            (
                JobGoal::Running,
                vec![Running, Succeeded],
                true,
                JobState::Running,
            ),
            (
                JobGoal::Running,
                vec![Succeeded, Succeeded],
                true,
                JobState::Succeeded,
            ),
            (
                JobGoal::Running,
                vec![Succeeded, Failed],
                true,
                JobState::Failed,
            ),
            (
                JobGoal::Running,
                vec![Failed, Waiting],
                true,
                JobState::Pending,
            ),
            (
                JobGoal::Stopped,
                vec![Running, Waiting],
                true,
                JobState::Killing,
            ),
            (
                JobGoal::Stopped,
                vec![Killed, Succeeded],
                true,
                JobState::Killed,
            ),
        ];
        for (goal, outcomes, ever, want) in table {
            assert_eq!(
                job_state(goal, &outcomes, ever),
                want,
                "{goal:?} {outcomes:?}"
            );
        }
    }

    #[test]
    fn task_states_map_to_pod_states() {
        assert_eq!(
            PodState::from_task_state(TaskState::TaskFinished),
            PodState::Succeeded
        );
        assert_eq!(
            PodState::from_task_state(TaskState::TaskError),
            PodState::Failed
        );
        assert_eq!(
            PodState::from_task_state(TaskState::TaskUnreachable),
            PodState::Lost
        );
        assert!(PodState::Launching.is_live());
        assert!(!PodState::Lost.is_live());
        for s in ALL_POD_STATES {
            assert_eq!(PodState::parse(s.as_str()), Some(s));
        }
    }
}
