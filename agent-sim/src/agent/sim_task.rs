//! The lifecycle of one simulated task: what a Mesos agent and its command
//! executor would report for it, with no process behind it. Pure: inputs
//! carry `now`, outputs are reports and timers for the master to arm.
//!
//! ```text
//!  launch ──► STARTING ──► RUNNING ──(exit timer)──► FINISHED | FAILED
//!                             │  ▲ health timer: RUNNING healthy=true/false
//!                             │  ▲ check timer: RUNNING check_status (on change)
//!                             │  └─(consecutive failures)─┐
//!                           kill ──────────────────────► KILLING{deadline} ──(deadline)──► KILLED
//! ```
//!
//! Calling contract: call [`SimTask::on_launch`] once, then [`SimTask::on_timer`]
//! whenever an armed timer is due (stale timers are ignored here, so the
//! caller need not cancel them) and [`SimTask::on_kill`] for each KILL.
//!
//! Behaviour comes from the command (`sleep N`, `true`, `false`, `exit N`;
//! of a script that only prepares its sandbox first, as a pipeline node's
//! does, its last command; anything else runs until killed) and the labels `sim.duration_ms`,
//! `sim.exit_code` and `sim.healthy`, which override it; a task with a
//! Mesos `check` reports its results as [`super::sim_check`] says
//! (`sim.ready`, `sim.ready_after_ms`). A killed task ends
//! when its grace period does, as a process that ignores SIGTERM would; the
//! grace period is the KILL's policy, else the TaskInfo's, else 3 s (the
//! command executor's default, reference 7.2).
//!
//! The command is the task's own; for a task with a custom executor it is
//! the `CommandInfo` the task's `data` carries, when it carries one (how
//! Drover's default executor mode sends the user's command, since Mesos
//! forbids `command` beside `executor`), else the executor's command.

use std::time::{Duration, Instant};

use drover_proto::v1::{task_status::Reason, CommandInfo, TaskInfo, TaskState};
use prost::Message;

use super::sim_check::SimCheck;
use crate::deadline::after;
use drover_proto::duration::from_seconds;
use drover_proto::v1::CheckStatusInfo;

/// The command executor's kill grace period when no policy is given.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// How the simulated process ends on its own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Exits with `code` after `after`.
    ExitAfter { after: Duration, code: i32 },
    /// Runs until killed.
    RunUntilKilled,
}

/// A health check as the built-in executors run it (reference 6.1), with
/// every probe's result decided by `sim.healthy`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HealthSpec {
    pub(crate) delay: Duration,
    pub(crate) interval: Duration,
    pub(crate) grace: Duration,
    pub(crate) consecutive_failures: u32,
    pub(crate) healthy: bool,
}

/// Everything the simulation needs from a TaskInfo.
#[derive(Debug, Clone, PartialEq)]
pub struct SimSpec {
    pub(crate) outcome: Outcome,
    pub(crate) kill_grace: Duration,
    pub(crate) health: Option<HealthSpec>,
    /// Boxed: most tasks have none, and the master holds 100,000s.
    pub(crate) check: Option<Box<SimCheck>>,
    pub(crate) killing_state: bool,
}

impl SimSpec {
    /// Reads the behaviour of `task`; `killing_state` is whether the
    /// framework has the TASK_KILLING_STATE capability.
    pub fn from_task(task: &TaskInfo, killing_state: bool) -> Self {
        let label = |key: &str| {
            task.labels
                .as_ref()
                .and_then(|l| l.labels.iter().find(|x| x.key == key))
                .and_then(|x| x.value.clone())
        };
        let carried = carried_command(task);
        let command = task
            .command
            .as_ref()
            .or(carried.as_ref())
            .or(task.executor.as_ref().and_then(|e| e.command.as_ref()));
        let mut outcome = command
            .map(command_outcome)
            .unwrap_or(Outcome::RunUntilKilled);
        if let Some(ms) = label("sim.duration_ms").and_then(|v| v.trim().parse::<u64>().ok()) {
            let code = match outcome {
                Outcome::ExitAfter { code, .. } => code,
                Outcome::RunUntilKilled => 0,
            };
            outcome = Outcome::ExitAfter {
                after: Duration::from_millis(ms),
                code,
            };
        }
        if let Some(code) = label("sim.exit_code").and_then(|v| v.trim().parse::<i32>().ok()) {
            outcome = match outcome {
                Outcome::ExitAfter { after, .. } => Outcome::ExitAfter { after, code },
                Outcome::RunUntilKilled => Outcome::ExitAfter {
                    after: Duration::ZERO,
                    code,
                },
            };
        }
        let kill_grace = task
            .kill_policy
            .as_ref()
            .and_then(|p| p.grace_period.as_ref())
            .map(|d| Duration::from_nanos(d.nanoseconds.max(0) as u64))
            .unwrap_or(DEFAULT_KILL_GRACE);
        let healthy = label("sim.healthy").is_none_or(|v| v.trim() != "false");
        let health = task.health_check.as_ref().map(|h| HealthSpec {
            delay: h
                .delay_seconds
                .and_then(from_seconds)
                .unwrap_or(Duration::from_secs(15)),
            interval: h
                .interval_seconds
                .and_then(from_seconds)
                .unwrap_or(Duration::from_secs(10)),
            grace: h
                .grace_period_seconds
                .and_then(from_seconds)
                .unwrap_or(Duration::from_secs(10)),
            consecutive_failures: h.consecutive_failures.unwrap_or(3).max(1),
            healthy,
        });
        let check = SimCheck::from_task(task, label).map(Box::new);
        SimSpec {
            outcome,
            kill_grace,
            health,
            check,
            killing_state,
        }
    }

    /// How the task ends on its own.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
}

/// The command a custom executor's task carries in its `data`: bytes that
/// decode as a `CommandInfo` with a command in it (other executors' data
/// is theirs, and seldom decodes so).
fn carried_command(task: &TaskInfo) -> Option<CommandInfo> {
    task.executor.as_ref()?;
    let command = CommandInfo::decode(task.data.as_deref()?).ok()?;
    command
        .value
        .as_deref()
        .is_some_and(|v| !v.trim().is_empty())
        .then_some(command)
}

/// What a shell command would do, for the few commands the simulator knows.
fn command_outcome(cmd: &drover_proto::v1::CommandInfo) -> Outcome {
    let mut words: Vec<&str> = Vec::new();
    let value = cmd.value.as_deref().unwrap_or("");
    let script_words;
    if cmd.shell.unwrap_or(true) && value.contains('\n') {
        script_words = script_command(value).unwrap_or_default();
        words.extend(script_words.iter().map(String::as_str));
    } else if cmd.shell.unwrap_or(true) {
        words.extend(value.split_whitespace());
    } else {
        words.push(value);
        words.extend(cmd.arguments.iter().skip(1).map(String::as_str));
    }
    match words.as_slice() {
        ["true"] | [":"] | ["exit"] => Outcome::ExitAfter {
            after: Duration::ZERO,
            code: 0,
        },
        ["false"] => Outcome::ExitAfter {
            after: Duration::ZERO,
            code: 1,
        },
        ["exit", n] => match n.parse::<i32>() {
            Ok(code) => Outcome::ExitAfter {
                after: Duration::ZERO,
                code: code & 0xff,
            },
            Err(_) => Outcome::ExitAfter {
                after: Duration::ZERO,
                code: 2,
            },
        },
        ["sleep", n] => match n.parse::<f64>().ok().and_then(from_seconds) {
            Some(after) => Outcome::ExitAfter { after, code: 0 },
            None => Outcome::ExitAfter {
                after: Duration::ZERO,
                code: 1,
            },
        },
        _ => Outcome::RunUntilKilled,
    }
}

/// The command that decides how a multi-line script ends: its last line
/// (without `exec`), its words unquoted as `sh` would (bare or in single
/// quotes), when every line before it only prepares the sandbox as the
/// scheduler's pipeline nodes do (`set -e`, `cd "$MESOS_SANDBOX"` (a node
/// in its image), `mkdir -p`, an input file written by
/// `printf ... | base64 -d >`), which a simulated agent takes as done. Any other script is unknown (`None`): it runs until killed.
fn script_command(script: &str) -> Option<Vec<String>> {
    let mut lines: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let last = lines.pop()?;
    let prepares = |l: &&str| {
        *l == "set -e"
            || *l == "cd \"$MESOS_SANDBOX\""
            || l.starts_with("mkdir -p ")
            || l.starts_with("printf '%s' ")
    };
    if !lines.iter().all(prepares) {
        return None;
    }
    let last = last.strip_prefix("exec ").unwrap_or(last);
    shell_words(last)
}

/// `line`'s words as `sh` splits them, for bare and single-quoted words
/// only (`'it'\''s'` included); `None` for anything else.
fn shell_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' => words.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        q => w.push(q),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next()?),
            '"' | '$' | '`' | ';' | '|' | '&' | '<' | '>' => return None,
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    Some(words)
}

/// The task's timers; the master arms them and hands them back when due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimTimer {
    /// The process exits on its own.
    Exit,
    /// The next health probe.
    Health,
    /// The next result of the Mesos check.
    Check,
    /// The kill grace period ends.
    KillDeadline,
}

/// One status update the agent would send for the task.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub state: TaskState,
    pub reason: Option<Reason>,
    pub message: Option<String>,
    pub healthy: Option<bool>,
    /// The Mesos check's result, when it changed (or the first
    /// TASK_RUNNING's empty one).
    pub check_status: Option<CheckStatusInfo>,
}

/// What the master must do for the task.
#[derive(Debug, Clone, PartialEq)]
pub enum SimAction {
    /// Send this status update (reliably, with a uuid).
    Report(Report),
    /// Call [`SimTask::on_timer`] with this timer at this time.
    Arm(SimTimer, Instant),
}

/// Where the task is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Phase {
    Created,
    Running,
    Killing { since: Instant, deadline: Instant },
    Done,
}

/// A simulated task as plain data: what a master's journal keeps of it
/// so that another master can resume it ([`SimTask::resume`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SimSnapshot {
    pub spec: SimSpec,
    pub phase: Phase,
    pub launched_at: Option<Instant>,
    pub consecutive_failures: u32,
    pub reported_healthy: Option<bool>,
    pub killed_by_health: bool,
}

/// One simulated task.
#[derive(Debug, Clone)]
pub struct SimTask {
    spec: SimSpec,
    phase: Phase,
    launched_at: Option<Instant>,
    consecutive_failures: u32,
    reported_healthy: Option<bool>,
    killed_by_health: bool,
}

impl SimTask {
    /// A task that has not been launched yet.
    pub fn new(spec: SimSpec) -> Self {
        SimTask {
            spec,
            phase: Phase::Created,
            launched_at: None,
            consecutive_failures: 0,
            reported_healthy: None,
            killed_by_health: false,
        }
    }

    /// The task as plain data, for the master's journal.
    pub fn snapshot(&self) -> SimSnapshot {
        SimSnapshot {
            spec: self.spec.clone(),
            phase: self.phase,
            launched_at: self.launched_at,
            consecutive_failures: self.consecutive_failures,
            reported_healthy: self.reported_healthy,
            killed_by_health: self.killed_by_health,
        }
    }

    /// A task another master ran, resumed at `now` where it was: a
    /// running task's exit stays due at its launch plus its duration (at
    /// once if that has passed), as its process on a re-registered agent
    /// would end on its own clock; a killed one ends at its kill deadline;
    /// health and check results resume at their next interval. A task
    /// never started starts now.
    pub fn resume(snapshot: SimSnapshot, now: Instant) -> (Self, Vec<SimAction>) {
        let mut task = SimTask {
            spec: snapshot.spec,
            phase: snapshot.phase,
            launched_at: snapshot.launched_at,
            consecutive_failures: snapshot.consecutive_failures,
            reported_healthy: snapshot.reported_healthy,
            killed_by_health: snapshot.killed_by_health,
        };
        let mut out = Vec::new();
        match task.phase {
            Phase::Created => {
                out = task.on_launch(now);
            }
            Phase::Running => {
                let launched = task.launched_at.unwrap_or(now);
                if let Outcome::ExitAfter { after: d, .. } = task.spec.outcome {
                    out.push(SimAction::Arm(SimTimer::Exit, after(launched, d)));
                }
                if let Some(h) = task.spec.health {
                    let due = after(launched, h.delay).max(now);
                    out.push(SimAction::Arm(SimTimer::Health, due));
                }
                if let Some(c) = &task.spec.check {
                    let due = c.first_due(launched).max(now);
                    out.push(SimAction::Arm(SimTimer::Check, due));
                }
            }
            Phase::Killing { deadline, .. } => {
                out.push(SimAction::Arm(SimTimer::KillDeadline, deadline));
            }
            Phase::Done => {}
        }
        (task, out)
    }

    /// Whether the task has ended.
    pub fn is_terminal(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The agent starts the task: STARTING, then RUNNING, then its timers.
    pub fn on_launch(&mut self, now: Instant) -> Vec<SimAction> {
        if self.phase != Phase::Created {
            return Vec::new();
        }
        self.phase = Phase::Running;
        self.launched_at = Some(now);
        let running = Report {
            check_status: self.spec.check.as_ref().map(|c| c.empty_status()),
            ..report(TaskState::TaskRunning, None, None)
        };
        let mut out = vec![
            SimAction::Report(report(TaskState::TaskStarting, None, None)),
            SimAction::Report(running),
        ];
        if let Outcome::ExitAfter {
            after: exit_after, ..
        } = self.spec.outcome
        {
            out.push(SimAction::Arm(SimTimer::Exit, after(now, exit_after)));
        }
        if let Some(h) = self.spec.health {
            out.push(SimAction::Arm(SimTimer::Health, after(now, h.delay)));
        }
        if let Some(c) = &self.spec.check {
            out.push(SimAction::Arm(SimTimer::Check, c.first_due(now)));
        }
        out
    }

    /// A timer armed earlier is due.
    pub fn on_timer(&mut self, timer: SimTimer, now: Instant) -> Vec<SimAction> {
        match (timer, self.phase) {
            (SimTimer::Exit, Phase::Running) => self.exit(),
            (SimTimer::Health, Phase::Running) => self.probe(now),
            (SimTimer::Check, Phase::Running) => self.check(now),
            (SimTimer::KillDeadline, Phase::Killing { deadline, .. }) if now >= deadline => {
                self.phase = Phase::Done;
                let healthy = self.killed_by_health.then_some(false);
                vec![SimAction::Report(Report {
                    healthy,
                    ..report(TaskState::TaskKilled, None, None)
                })]
            }
            _ => Vec::new(),
        }
    }

    /// The grace period a KILL without its own policy gives the task.
    pub fn kill_grace(&self) -> Duration {
        self.spec.kill_grace
    }

    /// A KILL arrives, with the KILL call's own policy if it had one. A
    /// repeated kill can only shorten the remaining grace (reference 7.2).
    pub fn on_kill(&mut self, grace: Option<Duration>, now: Instant) -> Vec<SimAction> {
        let grace = grace.unwrap_or(self.spec.kill_grace);
        match self.phase {
            Phase::Created | Phase::Running => {
                let deadline = after(now, grace);
                self.phase = Phase::Killing {
                    since: now,
                    deadline,
                };
                let mut out = Vec::new();
                if self.spec.killing_state {
                    out.push(SimAction::Report(report(
                        TaskState::TaskKilling,
                        None,
                        None,
                    )));
                }
                out.push(SimAction::Arm(SimTimer::KillDeadline, deadline));
                out
            }
            Phase::Killing { since, deadline } => {
                let shorter = after(since, grace).max(now);
                if shorter < deadline {
                    self.phase = Phase::Killing {
                        since,
                        deadline: shorter,
                    };
                    vec![SimAction::Arm(SimTimer::KillDeadline, shorter)]
                } else {
                    Vec::new()
                }
            }
            Phase::Done => Vec::new(),
        }
    }

    /// The task's process is killed by SIGKILL from outside Mesos (an
    /// operator, the kernel's OOM killer): the executor reports it as Mesos'
    /// command executor reports a signal, TASK_FAILED.
    pub fn on_process_killed(&mut self) -> Vec<SimAction> {
        if matches!(self.phase, Phase::Done) {
            return Vec::new();
        }
        self.phase = Phase::Done;
        let message = Some("Command terminated with signal Killed".to_owned());
        vec![SimAction::Report(report(
            TaskState::TaskFailed,
            None,
            message,
        ))]
    }

    fn exit(&mut self) -> Vec<SimAction> {
        let Outcome::ExitAfter { code, .. } = self.spec.outcome else {
            return Vec::new();
        };
        self.phase = Phase::Done;
        let message = Some(format!("Command exited with status {code}"));
        let state = if code == 0 {
            TaskState::TaskFinished
        } else {
            TaskState::TaskFailed
        };
        vec![SimAction::Report(report(state, None, message))]
    }

    /// A check result is due: reported if it changed, the next one armed.
    fn check(&mut self, now: Instant) -> Vec<SimAction> {
        let launched = self.launched_at.unwrap_or(now);
        let Some(c) = self.spec.check.as_mut() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(status) = c.on_result(launched, now) {
            out.push(SimAction::Report(Report {
                reason: Some(Reason::TaskCheckStatusUpdated),
                check_status: Some(status),
                ..report(TaskState::TaskRunning, None, None)
            }));
        }
        out.push(SimAction::Arm(SimTimer::Check, c.next_due(now)));
        out
    }

    fn probe(&mut self, now: Instant) -> Vec<SimAction> {
        let Some(h) = self.spec.health else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let in_grace = self.launched_at.is_some_and(|t| now < after(t, h.grace))
            && self.reported_healthy.is_none();
        if h.healthy {
            self.consecutive_failures = 0;
            if self.reported_healthy != Some(true) {
                self.reported_healthy = Some(true);
                out.push(SimAction::Report(health_report(true)));
            }
        } else if !in_grace {
            self.consecutive_failures += 1;
            self.reported_healthy = Some(false);
            out.push(SimAction::Report(health_report(false)));
            if self.consecutive_failures >= h.consecutive_failures {
                self.killed_by_health = true;
                out.extend(self.on_kill(None, now));
                return out;
            }
        }
        out.push(SimAction::Arm(SimTimer::Health, after(now, h.interval)));
        out
    }
}

fn report(state: TaskState, reason: Option<Reason>, message: Option<String>) -> Report {
    Report {
        state,
        reason,
        message,
        healthy: None,
        check_status: None,
    }
}

fn health_report(healthy: bool) -> Report {
    Report {
        state: TaskState::TaskRunning,
        reason: Some(Reason::TaskHealthCheckStatusUpdated),
        message: None,
        healthy: Some(healthy),
        check_status: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::{CommandInfo, HealthCheck, Label, Labels};

    fn task(cmd: &str, labels: &[(&str, &str)]) -> TaskInfo {
        TaskInfo {
            command: Some(CommandInfo {
                value: Some(cmd.into()),
                shell: Some(true),
                ..Default::default()
            }),
            labels: Some(Labels {
                labels: labels
                    .iter()
                    .map(|(k, v)| Label {
                        key: (*k).into(),
                        value: Some((*v).into()),
                    })
                    .collect(),
            }),
            ..Default::default()
        }
    }

    fn states(actions: &[SimAction]) -> Vec<TaskState> {
        actions
            .iter()
            .filter_map(|a| match a {
                SimAction::Report(r) => Some(r.state),
                SimAction::Arm(..) => None,
            })
            .collect()
    }

    #[test]
    fn a_custom_executors_task_runs_the_command_its_data_carries() {
        let user = CommandInfo {
            value: Some("sleep 2".into()),
            shell: Some(true),
            ..Default::default()
        };
        let executor = drover_proto::v1::ExecutorInfo {
            command: Some(CommandInfo {
                value: Some("/usr/local/bin/drover-executor".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let drover = TaskInfo {
            executor: Some(Box::new(executor.clone())),
            data: Some(user.encode_to_vec().into()),
            ..Default::default()
        };
        assert_eq!(
            SimSpec::from_task(&drover, false).outcome(),
            Outcome::ExitAfter {
                after: Duration::from_secs(2),
                code: 0
            }
        );
        // Data that is not a command leaves the executor's command.
        let other = TaskInfo {
            executor: Some(Box::new(executor)),
            data: Some(b"\xff\x00 not a CommandInfo".to_vec().into()),
            ..Default::default()
        };
        assert_eq!(
            SimSpec::from_task(&other, false).outcome(),
            Outcome::RunUntilKilled
        );
    }

    #[test]
    fn a_pipeline_nodes_script_ends_as_its_last_command() {
        let script = |value: &str| CommandInfo {
            value: Some(value.into()),
            shell: Some(true),
            ..Default::default()
        };
        let node = "set -e\nmkdir -p './tmp/outputs'\nprintf '%s' 'aGk=' | base64 -d > './in'\nexec 'sleep' '0.5'\n";
        assert_eq!(
            command_outcome(&script(node)),
            Outcome::ExitAfter {
                after: Duration::from_millis(500),
                code: 0
            }
        );
        // A node that runs in its image starts in its sandbox first.
        let in_image = format!("set -e\ncd \"$MESOS_SANDBOX\"\n{node}");
        assert_eq!(
            command_outcome(&script(&in_image)),
            Outcome::ExitAfter {
                after: Duration::from_millis(500),
                code: 0
            }
        );
        assert_eq!(
            command_outcome(&script("set -e\nexec 'exit' '3'\n")),
            Outcome::ExitAfter {
                after: Duration::ZERO,
                code: 3
            }
        );
        // A line the simulator cannot take as done, or a word it cannot
        // unquote, leaves the script unknown: it runs until killed.
        for unknown in [
            "set -e\npython3 -c 'x'\nexec 'sleep' '1'\n",
            "set -e\nexec \"sleep\" 1\n",
        ] {
            assert_eq!(command_outcome(&script(unknown)), Outcome::RunUntilKilled);
        }
        assert_eq!(
            shell_words(r"'it'\''s' a"),
            Some(vec!["it's".to_owned(), "a".to_owned()])
        );
    }

    #[test]
    fn commands_decide_how_the_task_ends() {
        let cases = [
            (
                "sleep 5",
                Outcome::ExitAfter {
                    after: Duration::from_secs(5),
                    code: 0,
                },
            ),
            (
                "true",
                Outcome::ExitAfter {
                    after: Duration::ZERO,
                    code: 0,
                },
            ),
            (
                "false",
                Outcome::ExitAfter {
                    after: Duration::ZERO,
                    code: 1,
                },
            ),
            (
                "exit 7",
                Outcome::ExitAfter {
                    after: Duration::ZERO,
                    code: 7,
                },
            ),
            ("python server.py", Outcome::RunUntilKilled),
        ];
        for (cmd, want) in cases {
            assert_eq!(
                SimSpec::from_task(&task(cmd, &[]), false).outcome(),
                want,
                "{cmd}"
            );
        }
    }

    #[test]
    fn labels_override_the_command() {
        let spec = SimSpec::from_task(
            &task(
                "serve",
                &[("sim.duration_ms", "250"), ("sim.exit_code", "3")],
            ),
            false,
        );
        assert_eq!(
            spec.outcome(),
            Outcome::ExitAfter {
                after: Duration::from_millis(250),
                code: 3
            }
        );
    }

    #[test]
    fn a_task_starts_runs_and_finishes_with_its_exit_code() {
        let now = Instant::now();
        let mut t = SimTask::new(SimSpec::from_task(&task("sleep 2", &[]), false));
        let out = t.on_launch(now);
        assert_eq!(
            states(&out),
            [TaskState::TaskStarting, TaskState::TaskRunning]
        );
        assert!(out.contains(&SimAction::Arm(
            SimTimer::Exit,
            now + Duration::from_secs(2)
        )));
        assert_eq!(
            states(&t.on_timer(SimTimer::Exit, now)),
            [TaskState::TaskFinished]
        );
        assert!(t.is_terminal());
        let mut f = SimTask::new(SimSpec::from_task(&task("exit 4", &[]), false));
        f.on_launch(now);
        assert_eq!(
            states(&f.on_timer(SimTimer::Exit, now)),
            [TaskState::TaskFailed]
        );
    }

    #[test]
    fn kill_waits_for_the_grace_period_and_a_second_kill_only_shortens_it() {
        let now = Instant::now();
        let mut t = SimTask::new(SimSpec::from_task(&task("serve", &[]), true));
        t.on_launch(now);
        let out = t.on_kill(Some(Duration::from_secs(10)), now);
        assert_eq!(states(&out), [TaskState::TaskKilling]);
        assert!(t
            .on_timer(SimTimer::KillDeadline, now + Duration::from_secs(1))
            .is_empty());
        assert!(t.on_kill(Some(Duration::from_secs(20)), now).is_empty());
        let shorter = t.on_kill(Some(Duration::from_secs(2)), now + Duration::from_secs(1));
        assert_eq!(
            shorter,
            [SimAction::Arm(
                SimTimer::KillDeadline,
                now + Duration::from_secs(2)
            )]
        );
        let end = t.on_timer(SimTimer::KillDeadline, now + Duration::from_secs(2));
        assert_eq!(states(&end), [TaskState::TaskKilled]);
        assert!(t.on_timer(SimTimer::Exit, now).is_empty());
    }

    #[test]
    fn an_unhealthy_task_reports_after_its_grace_and_is_killed_after_consecutive_failures() {
        let now = Instant::now();
        let mut info = task("serve", &[("sim.healthy", "false")]);
        info.health_check = Some(Box::new(HealthCheck {
            delay_seconds: Some(0.0),
            interval_seconds: Some(1.0),
            grace_period_seconds: Some(1.5),
            consecutive_failures: Some(2),
            ..Default::default()
        }));
        info.kill_policy = None;
        let mut t = SimTask::new(SimSpec::from_task(&info, false));
        t.on_launch(now);
        let s = Duration::from_secs(1);
        assert!(
            states(&t.on_timer(SimTimer::Health, now)).is_empty(),
            "inside the grace period"
        );
        let first = t.on_timer(SimTimer::Health, now + 2 * s);
        assert!(matches!(&first[0], SimAction::Report(r) if r.healthy == Some(false)));
        let second = t.on_timer(SimTimer::Health, now + 3 * s);
        assert!(second.contains(&SimAction::Arm(
            SimTimer::KillDeadline,
            now + 3 * s + DEFAULT_KILL_GRACE
        )));
        let end = t.on_timer(SimTimer::KillDeadline, now + 3 * s + DEFAULT_KILL_GRACE);
        assert!(
            matches!(&end[0], SimAction::Report(r) if r.state == TaskState::TaskKilled && r.healthy == Some(false))
        );
    }

    #[test]
    fn a_healthy_task_reports_healthy_once() {
        let now = Instant::now();
        let mut info = task("serve", &[]);
        info.health_check = Some(Box::new(HealthCheck {
            delay_seconds: Some(1.0),
            ..Default::default()
        }));
        let mut t = SimTask::new(SimSpec::from_task(&info, false));
        t.on_launch(now);
        let first = t.on_timer(SimTimer::Health, now + Duration::from_secs(1));
        assert!(matches!(&first[0], SimAction::Report(r) if r.healthy == Some(true)));
        let again = t.on_timer(SimTimer::Health, now + Duration::from_secs(11));
        assert!(states(&again).is_empty());
    }

    #[test]
    fn a_checked_task_reports_its_check_on_running_and_on_each_change() {
        let now = Instant::now();
        let mut info = task("serve", &[("sim.ready_after_ms", "1500")]);
        info.check = Some(Box::new(drover_proto::v1::CheckInfo {
            r#type: Some(drover_proto::v1::check_info::Type::Command as i32),
            delay_seconds: Some(1.0),
            interval_seconds: Some(1.0),
            ..Default::default()
        }));
        let mut t = SimTask::new(SimSpec::from_task(&info, false));
        let s = Duration::from_secs(1);
        let launch = t.on_launch(now);
        assert!(launch.iter().any(|a| matches!(a, SimAction::Report(r)
            if r.state == TaskState::TaskRunning
                && r.check_status.as_ref().is_some_and(|c| c.command.as_ref().is_some_and(|c| c.exit_code.is_none())))));
        assert!(launch.contains(&SimAction::Arm(SimTimer::Check, now + s)));
        let exit = |a: &[SimAction]| {
            a.iter().find_map(|a| match a {
                SimAction::Report(r) => r.check_status.as_ref()?.command.as_ref()?.exit_code,
                SimAction::Arm(..) => None,
            })
        };
        assert_eq!(exit(&t.on_timer(SimTimer::Check, now + s)), Some(1));
        assert_eq!(exit(&t.on_timer(SimTimer::Check, now + 2 * s)), Some(0));
        let same = t.on_timer(SimTimer::Check, now + 3 * s);
        assert_eq!(same, [SimAction::Arm(SimTimer::Check, now + 4 * s)]);
    }
}
