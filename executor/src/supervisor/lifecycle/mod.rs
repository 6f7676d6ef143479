//! One task's lifecycle as a state machine, mapping container facts (exit
//! code, signal, OOM, kill) onto Mesos task states and reasons (reference
//! 7.2 and 8; Mesos `src/launcher/executor.cpp`).
//!
//! ```text
//!  Launching --on_launch--> Starting --on_started--> Running
//!                              |                       |  on_kill / health Kill
//!                 on_start_failed                      v
//!                              |              Killing{deadline} --on_tick past deadline--> (SIGKILL all)
//!                              v                       |
//!                           Exited <----on_exited------+  (from Running too)
//! ```
//!
//! Calling contract: `set_check` (if the task has a Mesos check) before
//! `on_started`; `on_launch` once, then `on_started` or
//! `on_start_failed`; `on_kill`, `on_health` and `on_check` any time; `on_tick` at
//! [`Lifecycle::next_deadline`]; `on_exited` once when the main process is
//! gone. Carry out the actions in order. Nothing is reported after the
//! terminal update.

use std::time::{Duration, Instant};

use drover_proto::v1::task_status::Reason;
use drover_proto::v1::{CheckStatusInfo, TaskState};

use crate::health::HealthAction;

/// A status update to send, before the session adds uuid and source.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The state.
    pub state: TaskState,
    /// The reason, if any.
    pub reason: Option<Reason>,
    /// A human-readable message.
    pub message: Option<String>,
    /// The health verdict, once a health check has one.
    pub healthy: Option<bool>,
    /// The Mesos check's latest result (empty until the first), carried
    /// by every update once the task runs, as Mesos' executors do.
    pub check_status: Option<CheckStatusInfo>,
    /// `TaskStatus.labels`: for an image task, the image as asked and its
    /// manifest digest, on every update from TASK_STARTING on.
    pub labels: Vec<(String, String)>,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send this update.
    Report(Report),
    /// SIGTERM every process of the task (the graceful kill).
    Terminate,
    /// SIGKILL every process left in the task's cgroup.
    KillAll,
}

/// How the task's main process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitFacts {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal, if a signal killed it.
    pub signal: Option<i32>,
    /// Whether the cgroup saw an OOM kill.
    pub oom_killed: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Phase {
    Launching,
    Starting,
    Running,
    Killing {
        started: Instant,
        deadline: Option<Instant>,
    },
    Exited,
}

/// One task's lifecycle.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    phase: Phase,
    /// Whether the framework has TASK_KILLING_STATE.
    killing_capable: bool,
    healthy: Option<bool>,
    /// The check's empty result, until the task runs.
    check_empty: Option<CheckStatusInfo>,
    check_status: Option<CheckStatusInfo>,
    labels: Vec<(String, String)>,
}

impl Lifecycle {
    /// A task about to be launched.
    pub fn new(killing_capable: bool) -> Self {
        Self {
            phase: Phase::Launching,
            killing_capable,
            healthy: None,
            check_empty: None,
            check_status: None,
            labels: Vec::new(),
        }
    }

    /// The task has a Mesos check whose empty result is `empty`: its
    /// TASK_RUNNING carries it.
    pub fn set_check(&mut self, empty: CheckStatusInfo) {
        self.check_empty = Some(empty);
    }

    /// Labels every later update carries (call before `on_launch` for
    /// TASK_STARTING to have them).
    pub fn set_labels(&mut self, labels: Vec<(String, String)>) {
        self.labels = labels;
    }

    /// Whether the terminal update has been produced.
    pub fn is_terminal(&self) -> bool {
        self.phase == Phase::Exited
    }

    /// Whether a kill may still do something.
    pub fn can_kill(&self) -> bool {
        matches!(
            self.phase,
            Phase::Starting | Phase::Running | Phase::Killing { .. }
        )
    }

    fn report(&self, state: TaskState, reason: Option<Reason>, message: Option<String>) -> Action {
        Action::Report(Report {
            state,
            reason,
            message,
            healthy: self.healthy,
            check_status: self.check_status,
            labels: self.labels.clone(),
        })
    }

    /// The launch begins.
    pub fn on_launch(&mut self) -> Vec<Action> {
        if self.phase != Phase::Launching {
            return Vec::new();
        }
        self.phase = Phase::Starting;
        vec![self.report(TaskState::TaskStarting, None, None)]
    }

    /// The process runs.
    pub fn on_started(&mut self) -> Vec<Action> {
        if self.phase != Phase::Starting {
            return Vec::new();
        }
        self.phase = Phase::Running;
        self.check_status = self.check_empty.take();
        vec![self.report(TaskState::TaskRunning, None, None)]
    }

    /// The launch failed before the process ran. `invalid` marks bad task
    /// input (TASK_ERROR) as opposed to a failure to start (TASK_FAILED).
    pub fn on_start_failed(&mut self, message: String, invalid: bool) -> Vec<Action> {
        if self.is_terminal() {
            return Vec::new();
        }
        self.phase = Phase::Exited;
        if invalid {
            vec![self.report(
                TaskState::TaskError,
                Some(Reason::TaskInvalid),
                Some(message),
            )]
        } else {
            vec![self.report(
                TaskState::TaskFailed,
                Some(Reason::ContainerLaunchFailed),
                Some(message),
            )]
        }
    }

    /// A kill with this grace period. A repeated kill only shortens the
    /// remaining time (7.2).
    pub fn on_kill(&mut self, grace: Duration, now: Instant) -> Vec<Action> {
        match self.phase {
            Phase::Starting | Phase::Running => {
                let mut actions = Vec::new();
                if self.killing_capable {
                    actions.push(self.report(TaskState::TaskKilling, None, None));
                }
                actions.push(Action::Terminate);
                self.phase = Phase::Killing {
                    started: now,
                    deadline: Some(now + grace),
                };
                if grace.is_zero() {
                    return self.with_tick(actions, now);
                }
                actions
            }
            Phase::Killing {
                started,
                deadline: Some(deadline),
            } => {
                let shorter = started + grace;
                if shorter < deadline {
                    self.phase = Phase::Killing {
                        started,
                        deadline: Some(shorter),
                    };
                    return self.on_tick(now);
                }
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn with_tick(&mut self, mut actions: Vec<Action>, now: Instant) -> Vec<Action> {
        actions.extend(self.on_tick(now));
        actions
    }

    /// The kill deadline.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        if let Phase::Killing {
            started,
            deadline: Some(deadline),
        } = self.phase
        {
            if now >= deadline {
                self.phase = Phase::Killing {
                    started,
                    deadline: None,
                };
                return vec![Action::KillAll];
            }
        }
        Vec::new()
    }

    /// When `on_tick` is due.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::Killing { deadline, .. } => deadline,
            _ => None,
        }
    }

    /// A health verdict (6.1): report health on TASK_RUNNING; kill on
    /// too many failures. Ignored once the task is being killed.
    pub fn on_health(
        &mut self,
        verdict: HealthAction,
        grace: Duration,
        now: Instant,
    ) -> Vec<Action> {
        if self.phase != Phase::Running {
            return Vec::new();
        }
        let reason = Some(Reason::TaskHealthCheckStatusUpdated);
        match verdict {
            HealthAction::ReportHealthy => {
                self.healthy = Some(true);
                vec![self.report(TaskState::TaskRunning, reason, None)]
            }
            HealthAction::ReportUnhealthy { message } => {
                self.healthy = Some(false);
                vec![self.report(TaskState::TaskRunning, reason, Some(message))]
            }
            HealthAction::Kill { message } => {
                self.healthy = Some(false);
                let mut actions = vec![self.report(TaskState::TaskRunning, reason, Some(message))];
                actions.extend(self.on_kill(grace, now));
                actions
            }
        }
    }

    /// A changed result of the Mesos check: TASK_RUNNING with reason
    /// TASK_CHECK_STATUS_UPDATED. Ignored unless the task runs (checks
    /// stop at a kill, as Mesos pauses them).
    pub fn on_check(&mut self, status: CheckStatusInfo) -> Vec<Action> {
        if self.phase != Phase::Running {
            return Vec::new();
        }
        self.check_status = Some(status);
        vec![self.report(
            TaskState::TaskRunning,
            Some(Reason::TaskCheckStatusUpdated),
            None,
        )]
    }

    /// The main process is gone and the cgroup has been inspected.
    pub fn on_exited(&mut self, facts: ExitFacts) -> Vec<Action> {
        if self.is_terminal() {
            return Vec::new();
        }
        let killed = matches!(self.phase, Phase::Killing { .. });
        self.phase = Phase::Exited;
        let how = describe(facts);
        if facts.oom_killed {
            let message = format!("Memory limit exceeded: the OOM killer killed a process; {how}");
            return vec![self.report(
                TaskState::TaskFailed,
                Some(Reason::ContainerLimitationMemory),
                Some(message),
            )];
        }
        if killed {
            return vec![self.report(TaskState::TaskKilled, None, Some(how))];
        }
        if facts.code == Some(0) {
            return vec![self.report(TaskState::TaskFinished, None, Some(how))];
        }
        vec![self.report(TaskState::TaskFailed, None, Some(how))]
    }
}

/// `Command exited with status 1` / `Command terminated with signal Killed`,
/// as Mesos' command executor words it.
pub fn describe(facts: ExitFacts) -> String {
    match (facts.code, facts.signal) {
        (Some(code), _) => format!("Command exited with status {code}"),
        (None, Some(signal)) => {
            let name = nix::sys::signal::Signal::try_from(signal)
                .map(|s| s.as_str())
                .unwrap_or("unknown signal");
            format!("Command terminated with signal {name} ({signal})")
        }
        (None, None) => "Command ended".to_string(),
    }
}

#[cfg(test)]
mod tests;
