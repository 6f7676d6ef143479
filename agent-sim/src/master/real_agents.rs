//! Real agents' executors as inputs to the master: tasks handed to
//! executors, executor calls (SUBSCRIBE, UPDATE, MESSAGE, HEARTBEAT;
//! reference 4.2-4.6), acknowledgements relayed back, kills and shutdowns,
//! executors that exit (reference 4.7) and executor endpoints that restart.
//! The executors' own bookkeeping is the registry's
//! (`agent/executor_registry.rs`); this file joins it to the task registry
//! and the reliable update path. Pure.
//!
//! An executor's UPDATE joins the task's reliable queue with the
//! executor's own uuid; ACKNOWLEDGED goes back to the executor when the
//! framework acknowledges that uuid, so an update the executor still holds
//! is one the framework has not confirmed (Mesos acknowledges on receipt
//! because its agent checkpoints; the simulator's agents keep no disk state,
//! so the framework's acknowledgement is the durable point).

use std::time::{Duration, Instant};

use bytes::Bytes;
use drover_proto::v1::executor::{call, event, Call, Event};
use drover_proto::v1::{
    self, executor_info, task_status::Reason, task_status::Source, ExecutorInfo, TaskState,
};
use drover_proto::TaskStateExt;

use super::events;
use super::faults::FaultError;
use super::history::CompletedExecutor;
use super::machine::{Effect, Master};
use super::tasks::Runner;
use super::timers::Timer;
use crate::agent::executor::{Delivery, ExecAction, ExecutorKind};
use crate::agent::executor_call::{self, ExecutorCallError};
use crate::agent::launch::{ExecutorExit, LaunchSpec};
use crate::deadline::after;
use crate::ids::{AgentIndex, ConnId, ExecutorKey, TaskKey};

impl Master {
    /// Hands tasks placed on a real agent to their executor, starting it
    /// if needed: `executor` is the tasks' ExecutorInfo, or `None` for a
    /// CommandInfo task (its executor id is the task id).
    pub(super) fn start_on_executor(
        &mut self,
        fw_id: &str,
        agent: AgentIndex,
        executor: Option<ExecutorInfo>,
        delivery: Delivery,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let (info, kind) = match (executor, &delivery) {
            (Some(info), _) => {
                let kind = if info.command.is_some()
                    && info.r#type != Some(executor_info::Type::Default as i32)
                {
                    ExecutorKind::Custom
                } else {
                    ExecutorKind::Default
                };
                (info, kind)
            }
            (None, Delivery::Task(task)) => (command_executor_info(task), ExecutorKind::Command),
            (None, Delivery::Group(_)) => return,
        };
        let mut info = info;
        info.framework_id = Some(v1::FrameworkId {
            value: fw_id.to_owned(),
        });
        let key = (agent, fw_id.to_owned(), info.executor_id.value.clone());
        let container_id = self.ids.uuid().to_string();
        let actions = self
            .executors
            .on_task(key, info, kind, container_id, delivery, now);
        self.apply_exec(actions, now, fx);
    }

    /// Carries out the executor registry's actions.
    pub(super) fn apply_exec(
        &mut self,
        actions: Vec<ExecAction>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        for action in actions {
            match action {
                ExecAction::Spawn { key } => {
                    if let Some(spec) = self.launch_spec(&key) {
                        fx.push(Effect::LaunchExecutor(Box::new(spec)));
                    }
                }
                ExecAction::Send { conn, event } => fx.push(Effect::SendExecutor { conn, event }),
                ExecAction::Close { conn } => fx.push(Effect::Close { conn }),
                ExecAction::Kill { container_id } => fx.push(Effect::KillExecutor { container_id }),
                ExecAction::KillAt { container_id, at } => {
                    self.timers
                        .arm(at.max(now), Timer::ExecutorKill { container_id });
                }
            }
        }
    }

    fn launch_spec(&self, key: &ExecutorKey) -> Option<LaunchSpec> {
        let record = self.executors.get(key)?;
        Some(LaunchSpec {
            agent: key.0,
            agent_id: self.fleet[key.0].id.clone(),
            framework_id: key.1.clone(),
            executor_id: key.2.clone(),
            container_id: record.container_id.clone(),
            kind: record.kind,
            command: record.info.command.clone(),
            checkpoint: self
                .frameworks
                .get(&key.1)
                .and_then(|f| f.info.checkpoint)
                .unwrap_or(false),
            shutdown_grace: self.shutdown_grace(&record.info),
            endpoint: self.fleet[key.0]
                .endpoint
                .unwrap_or_else(|| std::net::SocketAddr::from((self.config.ip, self.config.port))),
        })
    }

    fn shutdown_grace(&self, info: &ExecutorInfo) -> Duration {
        info.shutdown_grace_period
            .as_ref()
            .map(|d| Duration::from_nanos(d.nanoseconds.max(0) as u64))
            .unwrap_or(self.config.executor_shutdown_grace)
    }

    /// Finds the executor a call names, as the agent at `scope` (or, on
    /// the master's listener, any real agent) sees it.
    fn find_executor(
        &self,
        scope: Option<AgentIndex>,
        call: &Call,
    ) -> Result<ExecutorKey, ExecutorCallError> {
        if !self.frameworks.contains(&call.framework_id.value) {
            return Err(ExecutorCallError::FrameworkNotFound);
        }
        self.executors
            .find(scope, &call.framework_id.value, &call.executor_id.value)
            .ok_or(ExecutorCallError::ExecutorNotFound)
    }

    /// An executor's SUBSCRIBE on stream `conn` (reference 4.3.1): its
    /// unacknowledged updates are processed again, tasks it never received
    /// are lost, then SUBSCRIBED and the queued launches go out.
    pub fn on_executor_subscribe(
        &mut self,
        scope: Option<AgentIndex>,
        conn: ConnId,
        call: Call,
        now: Instant,
    ) -> (Result<(), ExecutorCallError>, Vec<Effect>) {
        let mut fx = Vec::new();
        let result = self.executor_subscribe(scope, conn, call, now, &mut fx);
        (result, fx)
    }

    fn executor_subscribe(
        &mut self,
        scope: Option<AgentIndex>,
        conn: ConnId,
        call: Call,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Result<(), ExecutorCallError> {
        executor_call::validate(&call)?;
        let key = self.find_executor(scope, &call)?;
        if self.executors.is_endpoint_down(key.0, now) {
            return Err(ExecutorCallError::Recovering);
        }
        let subscribe = call.subscribe.unwrap_or_default();
        let resubscribing = self.executors.get(&key).is_some_and(|r| r.has_subscribed());
        if resubscribing {
            self.lose_undelivered(&key, &subscribe, now, fx);
        }
        let subscribed = self.subscribed_event(&key);
        let actions = self.executors.on_subscribe(&key, conn, subscribed);
        self.apply_exec(actions, now, fx);
        for update in subscribe.unacknowledged_updates {
            if executor_call::update_status(&update.status, &key.2).is_ok() {
                self.executor_update(&key, update.status, now, fx);
            }
        }
        Ok(())
    }

    /// Tasks delivered to the executor that it does not list, that are still
    /// STAGING and have no update on the way never reached it: TASK_LOST
    /// (TASK_DROPPED if partition-aware) with REASON_AGENT_RESTARTED.
    fn lose_undelivered(
        &mut self,
        key: &ExecutorKey,
        subscribe: &call::Subscribe,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(record) = self.executors.get(key) else {
            return;
        };
        let listed = |id: &str| {
            subscribe
                .unacknowledged_tasks
                .iter()
                .any(|t| t.task_id.value == id)
                || subscribe
                    .unacknowledged_updates
                    .iter()
                    .any(|u| u.status.task_id.value == id)
        };
        let lost: Vec<String> = record
            .delivered()
            .iter()
            .filter(|id| !listed(id))
            .filter(|id| {
                self.tasks
                    .get(&(key.1.clone(), (*id).clone()))
                    .is_some_and(|t| t.state() == TaskState::TaskStaging)
            })
            .cloned()
            .collect();
        let aware = self.frameworks.is_partition_aware(&key.1);
        let state = if aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        for id in lost {
            let task = (key.1.clone(), id);
            self.agent_update(
                &task,
                state,
                Reason::AgentRestarted,
                "Task launched during agent restart",
                now,
                fx,
            );
        }
    }

    fn subscribed_event(&self, key: &ExecutorKey) -> Event {
        let record = self.executors.get(key);
        Event {
            r#type: Some(event::Type::Subscribed as i32),
            subscribed: Some(event::Subscribed {
                executor_info: record.map(|r| r.info.clone()).unwrap_or_default(),
                framework_info: self
                    .frameworks
                    .get(&key.1)
                    .map(|f| f.info.clone())
                    .unwrap_or_default(),
                agent_info: self.fleet[key.0].info(),
                container_id: record.map(|r| v1::ContainerId {
                    value: r.container_id.clone(),
                    parent: None,
                }),
            }),
            ..Default::default()
        }
    }

    /// A non-SUBSCRIBE executor call (reference 4.2 and 4.3).
    pub fn on_executor_call(
        &mut self,
        scope: Option<AgentIndex>,
        call: Call,
        now: Instant,
    ) -> (Result<(), ExecutorCallError>, Vec<Effect>) {
        let mut fx = Vec::new();
        let result = self.executor_call(scope, call, now, &mut fx);
        (result, fx)
    }

    fn executor_call(
        &mut self,
        scope: Option<AgentIndex>,
        call: Call,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Result<(), ExecutorCallError> {
        let ty = executor_call::validate(&call)?;
        if ty == call::Type::Heartbeat {
            return Ok(());
        }
        let key = self.find_executor(scope, &call)?;
        if self.executors.is_endpoint_down(key.0, now) {
            return Err(ExecutorCallError::Recovering);
        }
        if !self.executors.get(&key).is_some_and(|r| r.is_subscribed()) {
            return Err(ExecutorCallError::NotSubscribed);
        }
        match ty {
            call::Type::Update => {
                if let Some(update) = call.update {
                    self.executor_update(&key, update.status, now, fx);
                }
            }
            call::Type::Message => {
                if let Some(message) = call.message {
                    let event = events::message(&self.fleet[key.0].id, &key.2, message.data);
                    self.send_to(&key.1, event, fx);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// An executor's status update: a copy of one in flight is ignored; one
    /// the framework already acknowledged, or one for a task that has
    /// ended or is unknown, is acknowledged at once and dropped (Mesos
    /// acknowledges what it drops); any other joins the reliable queue.
    fn executor_update(
        &mut self,
        key: &ExecutorKey,
        mut status: v1::TaskStatus,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let uuid = status.uuid.clone().unwrap_or_default();
        let task_key = (key.1.clone(), status.task_id.value.clone());
        if self.updates.is_pending(&task_key, &uuid) {
            return;
        }
        let takes = !self.executors.is_acknowledged(key, &uuid)
            && self.tasks.get(&task_key).is_some_and(|t| {
                !t.state().is_terminal() && matches!(t.runner, Runner::Real) && t.agent == key.0
            });
        if !takes {
            let actions = self.executors.acknowledge_now(key, &status.task_id, uuid);
            self.apply_exec(actions, now, fx);
            return;
        }
        status.agent_id = Some(v1::AgentId {
            value: self.fleet[key.0].id.clone(),
        });
        status.source = Some(Source::Executor as i32);
        if status.timestamp.is_none() {
            status.timestamp = Some(self.unix(now));
        }
        self.enqueue_update(&task_key, status, now, fx);
    }

    /// The framework acknowledged `status` of a real agent's task: tell
    /// the executor that sent it.
    pub(super) fn relay_acknowledgement(
        &mut self,
        key: &TaskKey,
        status: &v1::TaskStatus,
        fx: &mut Vec<Effect>,
    ) {
        if status.source != Some(Source::Executor as i32) {
            return;
        }
        let (Some(executor), Some(uuid)) = (self.tasks.executor_of(key), status.uuid.clone())
        else {
            return;
        };
        let actions = self
            .executors
            .on_acknowledged(&executor, &status.task_id, uuid);
        // ACKNOWLEDGED arms no timers.
        self.apply_exec(actions, self.started_at, fx);
    }

    /// A status the agent itself generates for a task (SOURCE_AGENT, with
    /// a uuid, so it is delivered reliably).
    fn agent_update(
        &mut self,
        key: &TaskKey,
        state: TaskState,
        reason: Reason,
        message: &str,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(executor) = self.tasks.executor_of(key) else {
            return;
        };
        let status = v1::TaskStatus {
            task_id: v1::TaskId {
                value: key.1.clone(),
            },
            state: state as i32,
            message: Some(message.to_owned()),
            source: Some(Source::Agent as i32),
            reason: Some(reason as i32),
            agent_id: Some(v1::AgentId {
                value: self.fleet[executor.0].id.clone(),
            }),
            executor_id: Some(v1::ExecutorId { value: executor.2 }),
            timestamp: Some(self.unix(now)),
            uuid: Some(Bytes::copy_from_slice(self.ids.uuid().as_bytes())),
            ..Default::default()
        };
        self.enqueue_update(key, status, now, fx);
    }

    /// KILL of a real agent's task: the executor gets KILL with the call's
    /// kill policy (or `grace` as one); a task it has not received yet is
    /// TASK_KILLED by the agent.
    pub(super) fn kill_real(
        &mut self,
        key: &TaskKey,
        policy: Option<v1::KillPolicy>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(executor) = self.tasks.executor_of(key) else {
            return;
        };
        let outcome = self.executors.on_kill(&executor, &key.1, policy);
        for id in outcome.dropped {
            let task = (key.0.clone(), id);
            self.agent_update(
                &task,
                TaskState::TaskKilled,
                Reason::TaskKilledDuringLaunch,
                "Killed before delivery to the executor",
                now,
                fx,
            );
        }
        self.apply_exec(outcome.actions, now, fx);
    }

    /// SHUTDOWN of an executor: the SHUTDOWN event, then its container is
    /// killed when its shutdown grace period ends (reference 4.8).
    pub(super) fn shutdown_real(&mut self, key: &ExecutorKey, now: Instant, fx: &mut Vec<Effect>) {
        let Some(record) = self.executors.get(key) else {
            return;
        };
        let grace = self.shutdown_grace(&record.info);
        let actions = self.executors.on_shutdown(key, grace, now);
        self.apply_exec(actions, now, fx);
    }

    /// A scheduler MESSAGE for an executor of a real agent.
    pub(super) fn message_to_executor(
        &mut self,
        fw_id: &str,
        message: drover_proto::v1::scheduler::call::Message,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(agent) = self.fleet.index_of(&message.agent_id.value) else {
            return;
        };
        let key = (agent, fw_id.to_owned(), message.executor_id.value);
        let actions = self.executors.on_message(&key, message.data);
        self.apply_exec(actions, now, fx);
    }

    /// An executor's process ended: its tasks that have not ended fail
    /// with REASON_EXECUTOR_TERMINATED (REASON_CONTAINER_LAUNCH_FAILED if
    /// it never started) and, for a custom executor, the framework gets
    /// FAILURE with the executor id and wait status (reference 4.7).
    pub fn on_executor_exited(
        &mut self,
        container_id: &str,
        exit: ExecutorExit,
        now: Instant,
    ) -> Vec<Effect> {
        let mut fx = Vec::new();
        let Some(record) = self.executors.on_exited(container_id) else {
            return fx;
        };
        if let Some(conn) = record.conn() {
            fx.push(Effect::Close { conn });
        }
        let (agent, fw_id, executor_id) = record.key.clone();
        let keys: Vec<TaskKey> = self
            .tasks
            .on_agent(agent)
            .into_iter()
            .filter(|k| k.0 == fw_id)
            .filter(|k| self.tasks.executor_of(k).is_some_and(|e| e == record.key))
            .filter(|k| self.tasks.get(k).is_some_and(|t| !t.state().is_terminal()))
            .collect();
        let reason = match exit {
            ExecutorExit::LaunchFailed(_) => Reason::ContainerLaunchFailed,
            _ => Reason::ExecutorTerminated,
        };
        let message = exit.describe();
        for key in keys {
            self.agent_update(&key, TaskState::TaskFailed, reason, &message, now, &mut fx);
        }
        if record.kind.reports_failure() {
            let event =
                events::executor_failure(&self.fleet[agent].id, &executor_id, exit.wait_status());
            self.send_to(&fw_id, event, &mut fx);
        }
        // A removed framework's history went with it; its executors'
        // later exits are not recorded.
        if self.frameworks.contains(&fw_id) {
            self.history.on_executor_completed(
                &fw_id,
                CompletedExecutor {
                    info: Box::new(record.info),
                    agent,
                },
            );
        }
        fx
    }

    /// Fault: the agent's executor endpoint restarts; every executor
    /// connection to it ends and it answers 503 for `down`.
    pub fn on_executor_endpoint_restart(
        &mut self,
        agent_id: &str,
        down: Duration,
        now: Instant,
    ) -> Result<Vec<Effect>, FaultError> {
        let agent = self
            .fleet
            .index_of(agent_id)
            .ok_or_else(|| FaultError::UnknownAgent(agent_id.to_owned()))?;
        let actions = self.executors.on_endpoint_restart(agent, after(now, down));
        let mut fx = Vec::new();
        self.apply_exec(actions, now, &mut fx);
        Ok(fx)
    }
}

/// The ExecutorInfo Mesos makes for a CommandInfo task's command executor.
fn command_executor_info(task: &v1::TaskInfo) -> ExecutorInfo {
    let command = task
        .command
        .as_ref()
        .and_then(|c| c.value.clone())
        .unwrap_or_default();
    ExecutorInfo {
        executor_id: v1::ExecutorId {
            value: task.task_id.value.clone(),
        },
        name: Some(format!(
            "Command Executor (Task: {}) (Command: sh -c '{}')",
            task.task_id.value, command
        )),
        source: Some(task.task_id.value.clone()),
        resources: Vec::new(),
        ..Default::default()
    }
}
