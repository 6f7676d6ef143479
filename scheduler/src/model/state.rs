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

/// Every job state.
pub const ALL_JOB_STATES: [JobState; 7] = [
    JobState::Initialized,
    JobState::Pending,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Killed,
    JobState::Killing,
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

impl InstanceOutcome {
    /// Every outcome, in declaration order.
    pub const ALL: [InstanceOutcome; 6] = [
        InstanceOutcome::Waiting,
        InstanceOutcome::Starting,
        InstanceOutcome::Running,
        InstanceOutcome::Succeeded,
        InstanceOutcome::Failed,
        InstanceOutcome::Killed,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

impl PodState {
    fn index(self) -> usize {
        self as usize
    }
}

/// How many of a job's instances are in each pod state (of their latest
/// run; PENDING for none) and each outcome: a job's status, kept up to
/// date one instance at a time instead of recounted from every run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InstanceCounts {
    states: [u32; ALL_POD_STATES.len()],
    outcomes: [u32; InstanceOutcome::ALL.len()],
    /// Instances that ever had a run.
    with_runs: u32,
}

impl InstanceCounts {
    /// Counts one more instance in `state` with `outcome` (`ran`: it has a
    /// run).
    pub fn add(&mut self, state: PodState, outcome: InstanceOutcome, ran: bool) {
        self.states[state.index()] += 1;
        self.outcomes[outcome.index()] += 1;
        self.with_runs += u32::from(ran);
    }

    /// Counts one instance less, as [`InstanceCounts::add`] counted it.
    pub fn remove(&mut self, state: PodState, outcome: InstanceOutcome, ran: bool) {
        let s = &mut self.states[state.index()];
        *s = s.saturating_sub(1);
        let o = &mut self.outcomes[outcome.index()];
        *o = o.saturating_sub(1);
        self.with_runs = self.with_runs.saturating_sub(u32::from(ran));
    }

    /// Instances in `state`.
    pub fn in_state(&self, state: PodState) -> u32 {
        self.states[state.index()]
    }

    /// Instances with `outcome`.
    pub fn with_outcome(&self, outcome: InstanceOutcome) -> u32 {
        self.outcomes[outcome.index()]
    }

    /// Instances counted.
    pub fn instances(&self) -> u32 {
        self.outcomes.iter().sum()
    }

    /// The pod states with their counts, those with none left out.
    pub fn pod_stats(&self) -> impl Iterator<Item = (PodState, u32)> + '_ {
        ALL_POD_STATES
            .iter()
            .map(|s| (*s, self.in_state(*s)))
            .filter(|(_, n)| *n > 0)
    }

    /// The job's state for goal `goal`.
    pub fn job_state(&self, goal: JobGoal) -> JobState {
        use InstanceOutcome::*;
        let live = self.with_outcome(Starting) + self.with_outcome(Running) > 0;
        if goal != JobGoal::Running {
            return if live {
                JobState::Killing
            } else {
                JobState::Killed
            };
        }
        if self.with_outcome(Running) > 0 {
            return JobState::Running;
        }
        let done =
            self.with_outcome(Succeeded) + self.with_outcome(Failed) + self.with_outcome(Killed);
        if done == self.instances() && done > 0 {
            if self.with_outcome(Failed) > 0 {
                return JobState::Failed;
            }
            if self.with_outcome(Killed) > 0 {
                return JobState::Killed;
            }
            return JobState::Succeeded;
        }
        if self.with_runs > 0 {
            JobState::Pending
        } else {
            JobState::Initialized
        }
    }
}

/// A job's state from its goal and its instances' outcomes.
pub fn job_state(goal: JobGoal, outcomes: &[InstanceOutcome], any_run_ever: bool) -> JobState {
    let mut counts = InstanceCounts::default();
    for outcome in outcomes {
        counts.add(PodState::Pending, *outcome, false);
    }
    counts.with_runs = u32::from(any_run_ever);
    counts.job_state(goal)
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
