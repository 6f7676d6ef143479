//! Facts about Mesos task states that every Drover crate shares, stated
//! once: the scheduler, the executor and agent-sim must agree on them.

use crate::v1::TaskState;

/// Questions a Mesos [`TaskState`] answers.
pub trait TaskStateExt {
    /// Whether no further update can follow: the task is over on its
    /// agent. These are Mesos' own terminal states
    /// (`protobuf::isTerminalState`, `src/common/protobuf_utils.cpp`):
    /// FINISHED, FAILED, KILLED, LOST, ERROR, DROPPED, GONE and
    /// GONE_BY_OPERATOR. UNREACHABLE and UNKNOWN are not terminal: an
    /// unreachable agent may come back with the task still running, and
    /// UNKNOWN only says the master has no record of it.
    fn is_terminal(&self) -> bool;
}

impl TaskStateExt for TaskState {
    fn is_terminal(&self) -> bool {
        matches!(
            *self,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskLost
                | TaskState::TaskError
                | TaskState::TaskDropped
                | TaskState::TaskGone
                | TaskState::TaskGoneByOperator
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_are_the_eight_mesos_names() {
        let terminal: Vec<_> = (0..=20)
            .filter_map(|n| TaskState::try_from(n).ok())
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str_name())
            .collect();
        assert_eq!(
            terminal,
            [
                "TASK_FINISHED",
                "TASK_FAILED",
                "TASK_KILLED",
                "TASK_LOST",
                "TASK_ERROR",
                "TASK_DROPPED",
                "TASK_GONE",
                "TASK_GONE_BY_OPERATOR",
            ]
        );
        assert!(!TaskState::TaskUnreachable.is_terminal());
        assert!(!TaskState::TaskUnknown.is_terminal());
        assert!(!TaskState::TaskKilling.is_terminal());
    }
}
