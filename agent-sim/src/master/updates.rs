//! Task status updates, as a Mesos agent's status update manager and the
//! master forward them (reference 3.8): agent-generated updates carry a
//! uuid, are queued per task, and only the queue's head is in flight; it is
//! re-sent with a doubling backoff until acknowledged. Master-generated
//! updates (reconciliation, invalid launches, agent loss) have no uuid and
//! are sent once. Also turns a simulated task's actions into updates and
//! timers.

use drover_proto::TaskStateExt;
use std::time::Instant;

use bytes::Bytes;
use drover_proto::v1::{self, task_status::Reason, task_status::Source, TaskState};

use super::events;
use super::state::{Effect, Master, TaskKey, Timer};
use crate::agent::sim_task::{Report, SimAction};

impl Master {
    /// Carries out a simulated task's actions.
    pub(crate) fn apply_sim(
        &mut self,
        key: &TaskKey,
        actions: Vec<SimAction>,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        for action in actions {
            match action {
                SimAction::Report(report) => self.report(key, report, now, effects),
                SimAction::Arm(timer, at) => {
                    self.arm(
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

    /// A simulated agent reports a new status for a task.
    fn report(&mut self, key: &TaskKey, report: Report, now: Instant, effects: &mut Vec<Effect>) {
        let uuid = Bytes::copy_from_slice(self.ids.uuid().as_bytes());
        let timestamp = self.unix(now);
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        let agent_id = self.agents[task.agent].id.clone();
        let executor_id = task
            .executor
            .as_ref()
            .map(|e| e.executor_id.clone())
            .unwrap_or_else(|| v1::ExecutorId {
                value: task.task_id.value.clone(),
            });
        let status = v1::TaskStatus {
            task_id: task.task_id.clone(),
            state: report.state as i32,
            message: report.message,
            source: Some(Source::Executor as i32),
            reason: report.reason.map(|r| r as i32),
            agent_id: Some(v1::AgentId { value: agent_id }),
            executor_id: Some(executor_id),
            timestamp: Some(timestamp),
            uuid: Some(uuid),
            healthy: report.healthy,
            ..Default::default()
        };
        self.enqueue_update(key, status, now, effects);
    }

    /// The agent has a new status (with a uuid) for a task: the master's
    /// view advances at once, resources of an ended task go back to its
    /// agent, and the update joins the task's reliable queue.
    pub(crate) fn enqueue_update(
        &mut self,
        key: &TaskKey,
        status: v1::TaskStatus,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        let timestamp = status.timestamp.unwrap_or_else(|| self.unix(now));
        let state = TaskState::try_from(status.state).unwrap_or(TaskState::TaskStaging);
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        let was_terminal = task.state().is_terminal();
        task.state = state;
        task.healthy = status.healthy.or(task.healthy);
        task.updated_at = timestamp;
        task.pending.push_back(status);
        let first = task.pending.len() == 1;
        let freed =
            (!was_terminal && state.is_terminal()).then(|| (task.agent, task.resources.clone()));
        if let Some((agent, resources)) = freed {
            self.agents[agent].available.add(&resources);
            if let Some(fw) = self.frameworks.get_mut(&key.0) {
                fw.allocated_cpus -= resources.scalar("cpus");
                fw.allocated_mem -= resources.scalar("mem");
            }
        }
        if first {
            self.transmit_head(key, true, now, effects);
        }
    }

    /// Sends (or, under a fault, loses or delays) the head of a task's
    /// queue, and arms its retry.
    pub(crate) fn transmit_head(
        &mut self,
        key: &TaskKey,
        first_attempt: bool,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        let Some(head) = task.pending.front() else {
            return;
        };
        let uuid = head.uuid.clone().unwrap_or_default();
        let backoff = task.retry_backoff.max(super::state::MIN_INTERVAL);
        task.retry_backoff = (backoff * 2).min(self.config.update_retry_max);
        if let Some(old) = task.retry_timer.take() {
            self.disarm(old);
        }
        let timer = self.arm(
            crate::deadline::after(now, backoff),
            Timer::UpdateRetry {
                task: key.clone(),
                uuid: uuid.clone(),
            },
        );
        if let Some(task) = self.tasks.get_mut(key) {
            task.retry_timer = Some(timer);
        }
        if first_attempt {
            let faults = &mut self.update_faults;
            if faults.drop_next > 0 {
                faults.drop_next -= 1;
                return;
            }
            if faults.drop_probability > 0.0
                && self.ids.unit() < self.update_faults.drop_probability
            {
                return;
            }
            if let Some(delay) = self.update_faults.delay {
                self.arm(
                    crate::deadline::after(now, delay),
                    Timer::DelayedSend {
                        task: key.clone(),
                        uuid,
                    },
                );
                return;
            }
        }
        self.send_head(key, &uuid, effects);
    }

    /// Writes the head update on the framework's stream if it is still the
    /// head and both the agent and the framework are there to carry it.
    pub(crate) fn send_head(&mut self, key: &TaskKey, uuid: &Bytes, effects: &mut Vec<Effect>) {
        let Some(task) = self.tasks.get(key) else {
            return;
        };
        let Some(head) = task.pending.front() else {
            return;
        };
        if head.uuid.as_ref() != Some(uuid) || !self.agents[task.agent].connected {
            return;
        }
        let Some(conn) = self
            .frameworks
            .get(&key.0)
            .and_then(|f| f.connection.as_ref())
            .map(|c| c.conn)
        else {
            return;
        };
        let status = head.clone();
        self.counters.updates_sent += 1;
        effects.push(Effect::Send {
            conn,
            event: Box::new(events::update(status)),
        });
    }

    /// The retry timer of an update fired: re-send it if still unacknowledged.
    pub(crate) fn retry_update(
        &mut self,
        key: &TaskKey,
        uuid: &Bytes,
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        let still_head = self
            .tasks
            .get(key)
            .and_then(|t| t.pending.front())
            .is_some_and(|h| h.uuid.as_ref() == Some(uuid));
        if still_head {
            self.transmit_head(key, false, now, effects);
        }
    }

    /// ACKNOWLEDGE: pops the head if the uuid matches, forwards the next
    /// update, and forgets a task whose terminal update was acknowledged.
    pub(crate) fn acknowledge(
        &mut self,
        key: &TaskKey,
        agent: &str,
        uuid: &[u8],
        now: Instant,
        effects: &mut Vec<Effect>,
    ) {
        let Some(task) = self.tasks.get_mut(key) else {
            return;
        };
        if self.agents[task.agent].id != agent || !self.agents[task.agent].connected {
            return;
        }
        if task.pending.front().and_then(|h| h.uuid.as_deref()) != Some(uuid) {
            return;
        }
        let acked = task.pending.pop_front();
        let real = self.agents[task.agent].is_real();
        task.retry_backoff = self.config.update_retry_min;
        if task.pending.is_empty() {
            // Give the queue's memory back: most tasks sit idle for long.
            task.pending = Default::default();
        }
        let retry = task.retry_timer.take();
        let more = !task.pending.is_empty();
        if let Some(t) = retry {
            self.disarm(t);
        }
        if let Some(status) = acked.as_ref().filter(|_| real) {
            self.relay_acknowledgement(key, status, effects);
        }
        if more {
            self.transmit_head(key, true, now, effects);
            return;
        }
        let ended = acked.is_some_and(|s| {
            TaskState::try_from(s.state)
                .unwrap_or(TaskState::TaskStaging)
                .is_terminal()
        });
        if ended {
            if let Some(task) = self.tasks.remove(key) {
                self.agents[task.agent].tasks.remove(key);
            }
            if let Some(fw) = self.frameworks.get_mut(&key.0) {
                fw.tasks.remove(&key.1);
            }
        }
    }

    /// Sends a master-generated update (no uuid, sent once) to a framework.
    pub(crate) fn send_master_update(
        &mut self,
        framework: &str,
        status: v1::TaskStatus,
        effects: &mut Vec<Effect>,
    ) {
        if let Some(c) = self
            .frameworks
            .get(framework)
            .and_then(|f| f.connection.as_ref())
        {
            self.counters.updates_sent += 1;
            effects.push(Effect::Send {
                conn: c.conn,
                event: Box::new(events::update(status)),
            });
        }
    }

    /// A master-generated status for a task id.
    pub(crate) fn master_status(
        &self,
        task_id: &v1::TaskId,
        state: TaskState,
        reason: Reason,
        message: &str,
        agent: Option<&str>,
        now: Instant,
    ) -> v1::TaskStatus {
        v1::TaskStatus {
            task_id: task_id.clone(),
            state: state as i32,
            message: Some(message.to_owned()),
            source: Some(Source::Master as i32),
            reason: Some(reason as i32),
            agent_id: agent.map(|a| v1::AgentId {
                value: a.to_owned(),
            }),
            timestamp: Some(self.unix(now)),
            ..Default::default()
        }
    }

    /// The reconciliation answer for one task id (reference 3.9).
    pub(crate) fn reconcile_one(
        &self,
        framework: &str,
        task_id: &v1::TaskId,
        agent: Option<&v1::AgentId>,
        now: Instant,
    ) -> Option<v1::TaskStatus> {
        let partition_aware = self
            .frameworks
            .get(framework)
            .is_some_and(|f| f.is_partition_aware());
        let key = (framework.to_owned(), task_id.value.clone());
        if let Some(task) = self.tasks.get(&key) {
            if agent.is_some_and(|a| a.value != self.agents[task.agent].id) {
                // The task is not on the named agent: answer as for an unknown task there.
            } else {
                return Some(self.latest_for_reconcile(&key, now));
            }
        }
        let lost = |state| {
            if partition_aware {
                state
            } else {
                TaskState::TaskLost
            }
        };
        let (state, message) = match agent.and_then(|a| self.agent_index.get(&a.value)) {
            Some(&i) if self.agents[i].connected => (
                lost(TaskState::TaskGone),
                "Reconciliation: Task is unknown to the agent",
            ),
            Some(_) => (
                lost(TaskState::TaskUnreachable),
                "Reconciliation: Task is unreachable",
            ),
            None => (
                lost(TaskState::TaskUnknown),
                "Reconciliation: Task is unknown",
            ),
        };
        let mut status = self.master_status(
            task_id,
            state,
            Reason::Reconciliation,
            message,
            agent.map(|a| a.value.as_str()),
            now,
        );
        if state == TaskState::TaskUnreachable {
            status.unreachable_time = Some(v1::TimeInfo {
                nanoseconds: (self.unix(now) * 1e9) as i64,
            });
        }
        Some(status)
    }

    /// A known task's latest state as a reconciliation answer.
    pub(crate) fn latest_for_reconcile(&self, key: &TaskKey, now: Instant) -> v1::TaskStatus {
        let task = &self.tasks[key];
        let partition_aware = self
            .frameworks
            .get(&key.0)
            .is_some_and(|f| f.is_partition_aware());
        let mut state = task.state();
        if task.unreachable && !state.is_terminal() {
            state = if partition_aware {
                TaskState::TaskUnreachable
            } else {
                TaskState::TaskLost
            };
        }
        let mut status = self.master_status(
            &task.task_id,
            state,
            Reason::Reconciliation,
            "Reconciliation: Latest task state",
            Some(&self.agents[task.agent].id),
            now,
        );
        status.healthy = task.healthy;
        status
    }
}
