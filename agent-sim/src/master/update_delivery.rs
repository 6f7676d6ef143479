//! How status updates travel from an agent to its framework (reference
//! 3.8), joining the parts they pass: a simulated task's report, or a real
//! executor's update, moves the task registry's view on at once (an ended
//! task's resources go back to its agent and out of its framework's
//! allocation), then waits in the status update manager's stream until the
//! framework acknowledges it; the head goes out while both the agent and
//! the framework are there to carry it. Master-generated updates
//! (reconciliation, refused launches, agent loss) have no uuid and are
//! sent once.

use std::time::Instant;

use bytes::Bytes;
use drover_proto::v1::scheduler::call;
use drover_proto::v1::{self, task_status::Reason, task_status::Source, TaskState};
use drover_proto::TaskStateExt;

use super::events;
use super::history::{CompletedExecutor, CompletedTask};
use super::machine::{Effect, Master};
use super::tasks::Removed;
use super::timers::Timer;
use crate::agent::sim_task::{Report, SimAction};
use crate::ids::TaskKey;

impl Master {
    /// Carries out a simulated task's actions.
    pub(super) fn apply_sim(
        &mut self,
        key: &TaskKey,
        actions: Vec<SimAction>,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        for action in actions {
            match action {
                SimAction::Report(report) => self.report(key, report, now, fx),
                SimAction::Arm(timer, at) => {
                    self.timers.arm(
                        at,
                        Timer::Sim {
                            task: key.clone(),
                            timer,
                        },
                    );
                }
            }
        }
    }

    /// A simulated agent reports a new status for a task, as its command
    /// executor would (SOURCE_EXECUTOR, with a uuid).
    fn report(&mut self, key: &TaskKey, report: Report, now: Instant, fx: &mut Vec<Effect>) {
        let uuid = Bytes::copy_from_slice(self.ids.uuid().as_bytes());
        let timestamp = self.unix(now);
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        let executor_id = v1::ExecutorId {
            value: task.executor_id(key).to_owned(),
        };
        let status = v1::TaskStatus {
            task_id: task.task_id.clone(),
            state: report.state as i32,
            message: report.message,
            source: Some(Source::Executor as i32),
            reason: report.reason.map(|r| r as i32),
            agent_id: Some(v1::AgentId {
                value: self.fleet[task.agent].id.clone(),
            }),
            executor_id: Some(executor_id),
            timestamp: Some(timestamp),
            uuid: Some(uuid),
            healthy: report.healthy,
            check_status: report.check_status,
            ..Default::default()
        };
        self.enqueue_update(key, status, now, fx);
    }

    /// The agent has a new status (with a uuid) for a task: the master's
    /// view advances at once, resources of an ended task go back to its
    /// agent, and the update joins the task's reliable stream. A draining
    /// agent marks its updates first (`drain_mark`).
    pub(super) fn enqueue_update(
        &mut self,
        key: &TaskKey,
        mut status: v1::TaskStatus,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        self.drain_mark(key, &mut status);
        let timestamp = status.timestamp.unwrap_or_else(|| self.unix(now));
        let state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskStaging);
        let Some(moved) = self.tasks.on_status(key, state, status.healthy, timestamp) else {
            return;
        };
        let first = self.updates.push(key, status);
        if let Some((agent, resources)) = moved.freed {
            self.fleet.give_back(agent, &resources);
            self.offers.credit(&key.0, &resources);
        }
        if first {
            self.transmit(key, true, now, fx);
        }
    }

    /// What a Mesos agent does to an update while it drains (`slave.cpp`,
    /// `statusUpdate`): TASK_KILLING and TASK_KILLED get
    /// REASON_AGENT_DRAINING, and, if the drain marks the agent gone,
    /// become TASK_GONE_BY_OPERATOR for a partition-aware framework.
    /// Other states pass as they are. The agent drops its drain config
    /// once drained, so only a DRAINING agent marks.
    fn drain_mark(&self, key: &TaskKey, status: &mut v1::TaskStatus) {
        let Some(drain) = self
            .tasks
            .get(key)
            .and_then(|t| self.fleet[t.agent].drain.as_ref())
            .filter(|d| d.state == v1::DrainState::Draining as i32)
        else {
            return;
        };
        let state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskStaging);
        if !matches!(state, TaskState::TaskKilling | TaskState::TaskKilled) {
            return;
        }
        status.reason = Some(Reason::AgentDraining as i32);
        if drain.config.mark_gone == Some(true) && self.frameworks.is_partition_aware(&key.0) {
            status.state = TaskState::TaskGoneByOperator as i32;
        }
    }

    /// Transmits the head of a task's stream, unless a fault loses or
    /// delays it.
    pub(super) fn transmit(
        &mut self,
        key: &TaskKey,
        first_attempt: bool,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let uuid = self
            .updates
            .transmit(key, first_attempt, now, &mut self.timers, &mut self.ids);
        if let Some(uuid) = uuid {
            self.send_head(key, &uuid, fx);
        }
    }

    /// Writes the head update on the framework's stream if it is still the
    /// head and both the agent and the framework are there to carry it.
    pub(super) fn send_head(&mut self, key: &TaskKey, uuid: &Bytes, fx: &mut Vec<Effect>) {
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        let Some(head) = self.updates.head(key, uuid) else {
            return;
        };
        if !self.fleet[task.agent].connected {
            return;
        }
        let Some(conn) = self.frameworks.conn(&key.0) else {
            return;
        };
        let status = head.clone();
        self.counters.updates_sent += 1;
        fx.push(Effect::Send {
            conn,
            event: Box::new(events::update(status)),
        });
    }

    /// The retry timer of an update fired: re-send it if still unacknowledged.
    pub(super) fn retry_update(
        &mut self,
        key: &TaskKey,
        uuid: &Bytes,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        if self.updates.head(key, uuid).is_some() {
            self.transmit(key, false, now, fx);
        }
    }

    /// ACKNOWLEDGE: pops the head if the uuid matches, relays it to a real
    /// executor, forwards the next update, and forgets a task whose
    /// terminal update was acknowledged.
    pub(super) fn acknowledge(
        &mut self,
        key: &TaskKey,
        agent_id: &str,
        uuid: &[u8],
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        let agent = &self.fleet[task.agent];
        if agent.id != agent_id || !agent.connected {
            return;
        }
        let real = agent.is_real();
        let Some(acked) = self.updates.acknowledge(key, uuid, &mut self.timers) else {
            return;
        };
        if real {
            self.relay_acknowledgement(key, &acked.status, fx);
        }
        if acked.more {
            self.transmit(key, true, now, fx);
            return;
        }
        let ended = TaskState::try_from(acked.status.state)
            .unwrap_or(TaskState::TaskStaging)
            .is_terminal();
        if ended {
            if let Some(removed) = self.tasks.remove(key) {
                self.record_completed(&key.0, removed);
            }
        }
    }

    /// Keeps a forgotten task (and the executor it was the last task of)
    /// in its framework's history.
    pub(super) fn record_completed(&mut self, framework: &str, removed: Removed) {
        let (task, executor) = CompletedTask::from_task(removed.task);
        let agent = task.agent;
        self.history.on_task_completed(framework, task);
        if let (true, Some(info)) = (removed.executor_ended, executor) {
            self.history
                .on_executor_completed(framework, CompletedExecutor { info, agent });
        }
    }

    /// Sends a master-generated update (no uuid, sent once) to a framework.
    pub(super) fn send_master_update(
        &mut self,
        framework: &str,
        status: v1::TaskStatus,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(conn) = self.frameworks.conn(framework) {
            self.counters.updates_sent += 1;
            fx.push(Effect::Send {
                conn,
                event: Box::new(events::update(status)),
            });
        }
    }

    /// RECONCILE (reference 3.9): implicit (no tasks) answers for every
    /// task of the framework; explicit answers for each listed one.
    pub(super) fn reconcile(
        &mut self,
        fw_id: &str,
        tasks: &[call::reconcile::Task],
        now: Instant,
        fx: &mut Vec<Effect>,
    ) {
        let aware = self.frameworks.is_partition_aware(fw_id);
        let unix = self.unix(now);
        let statuses: Vec<v1::TaskStatus> = if tasks.is_empty() {
            self.tasks
                .of_framework(fw_id)
                .iter()
                .filter_map(|key| self.tasks.latest(key, &self.fleet, aware, unix))
                .collect()
        } else {
            tasks
                .iter()
                .map(|t| {
                    self.tasks.reconcile(
                        fw_id,
                        &t.task_id,
                        t.agent_id.as_ref(),
                        &self.fleet,
                        aware,
                        unix,
                    )
                })
                .collect()
        };
        for s in statuses {
            self.send_master_update(fw_id, s, fx);
        }
    }

    /// The reconciliation answer for one task id.
    pub(super) fn reconcile_one(
        &self,
        framework: &str,
        task_id: &v1::TaskId,
        agent: Option<&v1::AgentId>,
        now: Instant,
    ) -> v1::TaskStatus {
        let aware = self.frameworks.is_partition_aware(framework);
        self.tasks.reconcile(
            framework,
            task_id,
            agent,
            &self.fleet,
            aware,
            self.unix(now),
        )
    }
}
