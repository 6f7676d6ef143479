//! The executor loop: one tokio task that owns the agent session and the
//! table of running tasks, and wires events to supervisors and supervisors'
//! reports to updates. It decides only what belongs to no single task:
//! which mode we run in, task groups, shutdown and when to exit.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use drover_proto::v1::executor::{event, Event};
use drover_proto::v1::{framework_info, TaskId, TaskInfo, TaskState, TaskStatus};
use drover_proto::MediaType;
use rand::SeedableRng;
use tokio::sync::mpsc;

use crate::agent::driver::{AgentDriver, DriverError, Incoming};
use crate::agent::{Action, ExecutorSession, SessionConfig, ShutdownReason};
use crate::supervisor::lifecycle::Report;
use crate::supervisor::task::{self, PlanContext, DEFAULT_KILL_GRACE};
use crate::supervisor::{self, Command, SupervisorContext, SupervisorEvent, TaskRun};

/// Which executor we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// One CommandInfo task, then exit (as Mesos' `mesos-executor`).
    Command,
    /// Any number of tasks and task groups until SHUTDOWN.
    Custom,
}

/// Everything the loop needs.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// The protocol session's settings.
    pub session: SessionConfig,
    /// MESOS_AGENT_ENDPOINT (`host:port`).
    pub agent_endpoint: String,
    /// MESOS_EXECUTOR_AUTHENTICATION_TOKEN, sent on every call.
    pub authentication_token: Option<String>,
    /// Encoding of calls and events.
    pub media: MediaType,
    /// Command or custom executor.
    pub mode: Mode,
    /// MESOS_SANDBOX.
    pub sandbox: PathBuf,
    /// MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD.
    pub shutdown_grace: Duration,
    /// Container settings for every task.
    pub supervisor: SupervisorContext,
    /// Whether cpus also become a CFS quota.
    pub cfs_quota: bool,
    /// A pids limit for every task.
    pub pids_max: Option<u64>,
    /// How long to wait for the agent's ACK of the last terminal update
    /// before exiting anyway (Mesos' command executor: 60 s).
    pub ack_fail_safe: Duration,
}

/// Why the executor stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The endpoint is unusable.
    #[error(transparent)]
    Driver(#[from] DriverError),
    /// The agent could not be reached, or was lost for good.
    #[error("gave up on the agent at {endpoint}: {reason:?}; last error: {last_error}")]
    AgentLost {
        /// The agent.
        endpoint: String,
        /// The session's reason.
        reason: ShutdownReason,
        /// The last connection error.
        last_error: String,
    },
}

struct TaskEntry {
    commands: mpsc::Sender<Command>,
    kill_grace: Duration,
    group: Option<usize>,
    terminal: bool,
    finished: bool,
    /// Files to send back with a TASK_FINISHED ([`crate::outputs`]).
    outputs: Option<(std::path::PathBuf, Vec<String>)>,
}

struct Executor {
    config: ExecutorConfig,
    session: ExecutorSession,
    driver: AgentDriver,
    epoch: u64,
    rng: rand::rngs::SmallRng,
    tasks: HashMap<String, TaskEntry>,
    groups: Vec<Vec<String>>,
    killing_capable: bool,
    /// The user of tasks whose command names none (see [`PlanContext`]).
    default_user: Option<String>,
    supervisor: Arc<SupervisorContext>,
    reports: mpsc::Sender<SupervisorEvent>,
    shutdown_deadline: Option<Instant>,
    agent_gone: Option<ShutdownReason>,
    last_error: String,
    ack_deadline: Option<Instant>,
}

fn wall_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Runs the executor until it is done.
pub async fn run(config: ExecutorConfig) -> Result<(), ExecutorError> {
    let (incoming_tx, mut incoming) = mpsc::channel(256);
    let (reports, mut supervisor_events) = mpsc::channel(256);
    let driver = AgentDriver::new(
        &config.agent_endpoint,
        config.media,
        config.authentication_token.as_deref(),
        incoming_tx,
    )?;
    let mut executor = Executor {
        session: ExecutorSession::new(config.session.clone()),
        supervisor: Arc::new(config.supervisor.clone()),
        config,
        driver,
        epoch: 0,
        rng: rand::rngs::SmallRng::from_os_rng(),
        tasks: HashMap::new(),
        groups: Vec::new(),
        killing_capable: false,
        default_user: None,
        reports,
        shutdown_deadline: None,
        agent_gone: None,
        last_error: String::new(),
        ack_deadline: None,
    };
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| tracing::warn!(error = %e, "cannot watch SIGTERM"))
        .ok();
    let actions = executor.session.start();
    executor.apply(actions);
    loop {
        if let Some(done) = executor.done() {
            return done;
        }
        let deadline = executor.next_deadline();
        tokio::select! {
            Some(message) = incoming.recv() => executor.on_incoming(message),
            Some(event) = supervisor_events.recv() => executor.on_supervisor(event),
            _ = sleep_until(deadline) => {
                let actions = executor.session.on_tick(Instant::now());
                executor.apply(actions);
            }
            _ = recv_signal(&mut terminate) => {
                tracing::info!("SIGTERM: shutting down");
                executor.begin_shutdown();
            }
        }
    }
}

async fn recv_signal(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl Executor {
    fn next_deadline(&self) -> Option<Instant> {
        // Past exit deadlines only matter when something else wakes us
        // (a task finishing); keeping them would spin the loop.
        let now = Instant::now();
        let exits = [self.shutdown_deadline, self.ack_deadline]
            .into_iter()
            .flatten()
            .filter(|d| *d > now);
        self.session.next_deadline().into_iter().chain(exits).min()
    }

    fn all_finished(&self) -> bool {
        self.tasks.values().all(|t| t.finished)
    }

    /// Whether to stop, and how.
    fn done(&self) -> Option<Result<(), ExecutorError>> {
        let now = Instant::now();
        if let Some(reason) = &self.agent_gone {
            if self.all_finished() {
                return Some(Err(ExecutorError::AgentLost {
                    endpoint: self.config.agent_endpoint.clone(),
                    reason: reason.clone(),
                    last_error: self.last_error.clone(),
                }));
            }
            return None;
        }
        let acked = self.session.unacknowledged_updates() == 0;
        let past = |deadline: Option<Instant>| deadline.is_some_and(|d| now >= d);
        if self.shutdown_deadline.is_some()
            && self.all_finished()
            && (acked || past(self.shutdown_deadline))
        {
            tracing::info!("all tasks ended after SHUTDOWN; exiting");
            return Some(Ok(()));
        }
        if self.config.mode == Mode::Command && !self.tasks.is_empty() && self.all_finished() {
            if acked {
                tracing::info!("the task's terminal update was acknowledged; exiting");
                return Some(Ok(()));
            }
            if past(self.ack_deadline) {
                tracing::warn!("no acknowledgement of the terminal update in time; exiting");
                return Some(Ok(()));
            }
        }
        None
    }

    fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Subscribe(call) => {
                    self.epoch += 1;
                    self.driver.subscribe(&call, self.epoch);
                }
                Action::Send(call) => self.driver.send(&call),
                Action::Deliver(event) => self.on_event(*event),
                Action::Shutdown(reason) => {
                    tracing::error!(?reason, last_error = %self.last_error, "giving up on the agent");
                    self.agent_gone = Some(reason);
                    self.begin_shutdown();
                }
            }
        }
    }

    fn on_incoming(&mut self, message: Incoming) {
        match message {
            Incoming::Event(epoch, event) if epoch == self.epoch => {
                let actions = self.session.on_event(*event, Instant::now());
                self.apply(actions);
            }
            Incoming::Closed(epoch, reason) if epoch == self.epoch => {
                tracing::warn!(%reason, "subscription to the agent ended");
                self.last_error = reason;
                let actions = self.session.on_disconnected(Instant::now(), &mut self.rng);
                self.apply(actions);
            }
            _ => {}
        }
    }

    fn on_event(&mut self, event: Event) {
        match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
            Some(event::Type::Subscribed) => {
                if let Some(subscribed) = event.subscribed {
                    let killing = framework_info::capability::Type::TaskKillingState as i32;
                    self.killing_capable = subscribed
                        .framework_info
                        .capabilities
                        .iter()
                        .any(|c| c.r#type == Some(killing));
                    self.default_user = subscribed
                        .executor_info
                        .command
                        .as_ref()
                        .and_then(|c| c.user.clone())
                        .filter(|u| !u.is_empty())
                        .or(Some(subscribed.framework_info.user).filter(|u| !u.is_empty()));
                    tracing::info!(agent = ?subscribed.agent_info.hostname, "subscribed to the agent");
                }
            }
            Some(event::Type::Launch) => {
                if let Some(launch) = event.launch {
                    self.launch(launch.task, None);
                }
            }
            Some(event::Type::LaunchGroup) => {
                if let Some(group) = event.launch_group {
                    self.launch_group(group.task_group.tasks);
                }
            }
            Some(event::Type::Kill) => {
                if let Some(kill) = event.kill {
                    let grace = kill
                        .kill_policy
                        .and_then(|k| k.grace_period)
                        .map(|g| task::grace(&g));
                    self.kill(&kill.task_id.value, grace);
                }
            }
            Some(event::Type::Message) => {
                let bytes = event.message.map(|m| m.data.len()).unwrap_or(0);
                tracing::info!(
                    bytes,
                    "framework message received (this executor has no use for it)"
                );
            }
            Some(event::Type::Shutdown) => {
                tracing::info!("SHUTDOWN from the agent");
                self.begin_shutdown();
            }
            Some(event::Type::Error) => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                tracing::error!(%message, "ERROR event from the agent");
            }
            Some(event::Type::Acknowledged) | Some(event::Type::Heartbeat) => {}
            _ => tracing::warn!(kind = ?event.r#type, "ignoring an event of unknown type"),
        }
    }

    fn report(&mut self, task_id: &str, report: Report) {
        let data = match (report.state, self.tasks.get(task_id)) {
            (TaskState::TaskFinished, Some(entry)) => entry
                .outputs
                .as_ref()
                .map(|(sandbox, paths)| crate::outputs::read(sandbox, paths).into()),
            _ => None,
        };
        let status = TaskStatus {
            data,
            task_id: TaskId {
                value: task_id.to_string(),
            },
            state: report.state as i32,
            message: report.message,
            reason: report.reason.map(|r| r as i32),
            healthy: report.healthy,
            check_status: report.check_status,
            labels: (!report.labels.is_empty()).then(|| drover_proto::v1::Labels {
                labels: report
                    .labels
                    .into_iter()
                    .map(|(key, value)| drover_proto::v1::Label {
                        key,
                        value: Some(value),
                    })
                    .collect(),
            }),
            ..Default::default()
        };
        let actions = self
            .session
            .on_status(status, Instant::now(), wall_secs(), &mut self.rng);
        self.apply(actions);
    }

    fn launch_group(&mut self, tasks: Vec<TaskInfo>) {
        if self.config.mode == Mode::Command {
            for task in tasks {
                let report = Report {
                    state: TaskState::TaskFailed,
                    reason: None,
                    message: Some(
                        "the command executor does not run task groups (LAUNCH_GROUP)".into(),
                    ),
                    healthy: None,
                    check_status: None,
                    labels: Vec::new(),
                };
                self.report(&task.task_id.value, report);
            }
            return;
        }
        let group = self.groups.len();
        self.groups
            .push(tasks.iter().map(|t| t.task_id.value.clone()).collect());
        for task in tasks {
            self.launch(task, Some(group));
        }
    }

    fn launch(&mut self, task: TaskInfo, group: Option<usize>) {
        let task_id = task.task_id.value.clone();
        if self.tasks.contains_key(&task_id) {
            tracing::warn!(task = %task_id, "ignoring a second LAUNCH of a known task");
            return;
        }
        if self.shutdown_deadline.is_some() {
            let message = Some("the executor is shutting down".to_string());
            self.report(
                &task_id,
                Report {
                    state: TaskState::TaskFailed,
                    reason: None,
                    message,
                    healthy: None,
                    check_status: None,
                    labels: Vec::new(),
                },
            );
            return;
        }
        if self.config.mode == Mode::Command && !self.tasks.is_empty() {
            let message = Some("the command executor runs a single task".to_string());
            self.report(
                &task_id,
                Report {
                    state: TaskState::TaskFailed,
                    reason: None,
                    message,
                    healthy: None,
                    check_status: None,
                    labels: Vec::new(),
                },
            );
            return;
        }
        let sandbox = match self.config.mode {
            Mode::Command => self.config.sandbox.clone(),
            Mode::Custom => self
                .config
                .sandbox
                .join("tasks")
                .join(supervisor::cgroup_name("task", &task_id)),
        };
        let context = PlanContext {
            framework_id: &self.config.session.framework_id,
            executor_id: &self.config.session.executor_id,
            sandbox: &sandbox,
            cfs_quota: self.config.cfs_quota,
            pids_max: self.config.pids_max,
            default_user: self.default_user.as_deref(),
        };
        let plan = task::plan(&task, &context);
        let kill_grace = plan
            .as_ref()
            .map(|p| p.kill_grace)
            .unwrap_or(DEFAULT_KILL_GRACE);
        let (commands, receiver) = mpsc::channel(16);
        self.tasks.insert(
            task_id.clone(),
            TaskEntry {
                commands,
                kill_grace,
                group,
                terminal: false,
                finished: false,
                outputs: crate::outputs::wanted(&task).map(|paths| (sandbox.clone(), paths)),
            },
        );
        let run = TaskRun {
            task_id,
            plan,
            sandbox,
            killing_capable: self.killing_capable,
        };
        tokio::spawn(supervisor::supervise(
            run,
            self.supervisor.clone(),
            receiver,
            self.reports.clone(),
        ));
    }

    fn kill(&mut self, task_id: &str, grace: Option<Duration>) {
        let Some(entry) = self.tasks.get(task_id) else {
            tracing::warn!(task = %task_id, "ignoring KILL for a task this executor does not know");
            return;
        };
        // A KILL for one task of a group kills the whole group (reference 8).
        let members = match entry.group {
            Some(group) => self.groups[group].clone(),
            None => vec![task_id.to_string()],
        };
        for member in members {
            if let Some(entry) = self.tasks.get(&member) {
                if !entry.terminal {
                    let grace = grace.unwrap_or(entry.kill_grace);
                    let _ = entry.commands.try_send(Command::Kill { grace });
                }
            }
        }
    }

    fn on_supervisor(&mut self, event: SupervisorEvent) {
        match event {
            SupervisorEvent::Report(task_id, report) => {
                let terminal = matches!(
                    report.state,
                    TaskState::TaskFinished
                        | TaskState::TaskFailed
                        | TaskState::TaskKilled
                        | TaskState::TaskError
                );
                let sibling_kill =
                    matches!(report.state, TaskState::TaskFailed | TaskState::TaskKilled);
                if terminal {
                    if let Some(entry) = self.tasks.get_mut(&task_id) {
                        entry.terminal = true;
                    }
                }
                self.report(&task_id, report);
                if sibling_kill && self.shutdown_deadline.is_none() {
                    self.kill_group_of(&task_id);
                }
            }
            SupervisorEvent::Finished(task_id) => {
                if let Some(entry) = self.tasks.get_mut(&task_id) {
                    entry.finished = true;
                    entry.terminal = true;
                }
                if self.all_finished() && self.ack_deadline.is_none() {
                    self.ack_deadline = Some(Instant::now() + self.config.ack_fail_safe);
                }
            }
        }
    }

    fn kill_group_of(&mut self, task_id: &str) {
        let Some(group) = self.tasks.get(task_id).and_then(|t| t.group) else {
            return;
        };
        for member in self.groups[group].clone() {
            if let Some(entry) = self.tasks.get(&member) {
                if !entry.terminal {
                    let _ = entry.commands.try_send(Command::Kill {
                        grace: entry.kill_grace,
                    });
                }
            }
        }
    }

    /// Kills every task with what is left of the shutdown grace (Mesos
    /// keeps 1 s back so the terminal updates go out before the agent
    /// destroys the container, reference 7.2).
    fn begin_shutdown(&mut self) {
        if self.shutdown_deadline.is_some() {
            return;
        }
        let grace = self
            .config
            .shutdown_grace
            .saturating_sub(Duration::from_secs(1));
        self.shutdown_deadline = Some(Instant::now() + self.config.shutdown_grace);
        for entry in self.tasks.values() {
            if !entry.terminal {
                let _ = entry.commands.try_send(Command::Kill { grace });
            }
        }
    }
}
