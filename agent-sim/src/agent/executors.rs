//! The executors of the real agents, as a Mesos agent keeps them: which
//! executor runs which framework's tasks, whether it has subscribed, the
//! LAUNCH / LAUNCH_GROUP events queued until it does, the KILL and MESSAGE
//! events held while it is disconnected, and the update uuids already
//! acknowledged to it. Pure: inputs carry `now`, outputs are
//! [`ExecAction`]s that the master turns into effects and timers. It knows
//! nothing of status updates or tasks' states; `master/executors.rs` does.
//!
//! ```text
//!  on_task (new) ──► Launched ──on_subscribe──► Subscribed{conn} ──on_disconnected──► Disconnected
//!                       │                          ▲        │ on_shutdown                │
//!                       │                          └────────┼──── on_subscribe ──────────┘
//!                       │                                   ▼
//!                       └──────────── on_shutdown ───► shutting_down (SHUTDOWN, then Kill at the deadline)
//!                         on_exited (any state) ──► forgotten
//! ```
//!
//! Calling contract: [`Executors::on_task`] for every task placed on a
//! real agent; [`Executors::on_subscribe`] after the master has checked the
//! call; [`Executors::on_disconnected`] when a stream ends;
//! [`Executors::on_exited`] when the process is gone. Every returned action
//! must be carried out in order.

use std::time::{Duration, Instant};

use bytes::Bytes;
use drover_proto::v1::executor::{event, Event};
use drover_proto::v1::{self, ExecutorInfo, KillPolicy, TaskInfo};

use crate::deadline::after;
use crate::fixed_hash::{HashMap, HashSet};
use crate::master::state::ConnId;

/// An executor: its agent (index), framework id and executor id.
pub type ExecutorKey = (usize, String, String);

/// Which program runs as the executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecutorKind {
    /// `ExecutorInfo.command`, the framework's own executor.
    Custom,
    /// `drover-executor` in command mode, for a CommandInfo task (as
    /// `mesos-executor`); its id is the task id.
    Command,
    /// `drover-executor` in custom mode, standing in for Mesos' default
    /// executor (an ExecutorInfo of type DEFAULT in a LAUNCH_GROUP).
    Default,
}

impl ExecutorKind {
    /// Whether Mesos reports the executor's end to the framework with a
    /// FAILURE event (it does not for command executors; slave.cpp
    /// `executorTerminated`).
    pub fn reports_failure(self) -> bool {
        self != ExecutorKind::Command
    }
}

/// Work for an executor: one task, or a task group launched atomically.
#[derive(Debug, Clone, PartialEq)]
pub enum Delivery {
    Task(Box<TaskInfo>),
    Group(Vec<TaskInfo>),
}

impl Delivery {
    fn task_ids(&self) -> Vec<String> {
        match self {
            Delivery::Task(t) => vec![t.task_id.value.clone()],
            Delivery::Group(g) => g.iter().map(|t| t.task_id.value.clone()).collect(),
        }
    }

    fn event(&self) -> Event {
        match self {
            Delivery::Task(t) => Event {
                launch: Some(event::Launch {
                    task: t.as_ref().clone(),
                }),
                ..of(event::Type::Launch)
            },
            Delivery::Group(tasks) => Event {
                launch_group: Some(event::LaunchGroup {
                    task_group: v1::TaskGroupInfo {
                        tasks: tasks.clone(),
                    },
                }),
                ..of(event::Type::LaunchGroup)
            },
        }
    }
}

fn of(ty: event::Type) -> Event {
    Event {
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

/// What the master must do for the executors.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecAction {
    /// Start this executor's process.
    Spawn { key: ExecutorKey },
    /// Write this event on this executor stream.
    Send { conn: ConnId, event: Box<Event> },
    /// End this executor stream.
    Close { conn: ConnId },
    /// Kill the executor's container now.
    Kill { container_id: String },
    /// Kill the executor's container at `at` unless it has exited.
    KillAt { container_id: String, at: Instant },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Started, never subscribed.
    Launched,
    Subscribed {
        conn: ConnId,
    },
    /// Its stream ended; it may re-subscribe.
    Disconnected,
}

/// One executor.
#[derive(Debug, Clone)]
pub struct ExecutorRecord {
    pub key: ExecutorKey,
    /// As SUBSCRIBED carries it (framework id set).
    pub info: ExecutorInfo,
    pub kind: ExecutorKind,
    pub container_id: String,
    pub launched_at: Instant,
    /// How many SUBSCRIBE calls it made that were answered with SUBSCRIBED.
    pub subscriptions: u32,
    phase: Phase,
    queued: Vec<Delivery>,
    delivered: HashSet<String>,
    held: Vec<Event>,
    acked: HashSet<Bytes>,
    shutting_down: bool,
}

impl ExecutorRecord {
    /// The stream it is subscribed on, if any.
    pub fn conn(&self) -> Option<ConnId> {
        match self.phase {
            Phase::Subscribed { conn } => Some(conn),
            _ => None,
        }
    }

    pub fn is_subscribed(&self) -> bool {
        self.conn().is_some()
    }

    /// Whether it subscribed at least once (a SUBSCRIBE now is a re-subscription).
    pub fn has_subscribed(&self) -> bool {
        self.phase != Phase::Launched
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// Task ids sent to it in LAUNCH / LAUNCH_GROUP events.
    pub fn delivered(&self) -> &HashSet<String> {
        &self.delivered
    }

    /// Task ids still queued for its subscription.
    pub fn queued_task_ids(&self) -> Vec<String> {
        self.queued.iter().flat_map(Delivery::task_ids).collect()
    }

    /// The phase as `/sim/executors` shows it.
    pub fn phase_name(&self) -> &'static str {
        match (self.shutting_down, self.phase) {
            (true, _) => "TERMINATING",
            (false, Phase::Launched) => "REGISTERING",
            (false, Phase::Subscribed { .. }) => "RUNNING",
            (false, Phase::Disconnected) => "DISCONNECTED",
        }
    }
}

/// Every executor of every real agent.
#[derive(Debug, Default)]
pub struct Executors {
    records: HashMap<ExecutorKey, ExecutorRecord>,
    by_container: HashMap<String, ExecutorKey>,
    by_conn: HashMap<ConnId, ExecutorKey>,
    down_until: HashMap<usize, Instant>,
}

/// What a KILL for a task did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KillOutcome {
    /// Tasks removed from the queue before the executor saw them; the
    /// agent reports them TASK_KILLED itself.
    pub dropped: Vec<String>,
    pub actions: Vec<ExecAction>,
}

impl Executors {
    pub fn get(&self, key: &ExecutorKey) -> Option<&ExecutorRecord> {
        self.records.get(key)
    }

    pub fn iter(&self) -> impl Iterator<Item = &ExecutorRecord> {
        self.records.values()
    }

    /// The executor a call names: on `agent` if the call came to that
    /// agent's endpoint, else the only live one with these ids.
    pub fn find(
        &self,
        agent: Option<usize>,
        framework: &str,
        executor: &str,
    ) -> Option<ExecutorKey> {
        match agent {
            Some(a) => {
                let key = (a, framework.to_owned(), executor.to_owned());
                self.records.contains_key(&key).then_some(key)
            }
            None => {
                let mut found = self
                    .records
                    .keys()
                    .filter(|k| k.1 == framework && k.2 == executor);
                let first = found.next().cloned();
                // Ambiguous without the agent's own endpoint.
                if found.next().is_some() {
                    None
                } else {
                    first
                }
            }
        }
    }

    /// The executor subscribed on `conn`.
    pub fn by_conn(&self, conn: ConnId) -> Option<&ExecutorKey> {
        self.by_conn.get(&conn)
    }

    /// A task for the executor `key`: a new executor is started (with
    /// `info`, `kind` and `container_id`) and the work queued; a
    /// subscribed one gets it at once.
    pub fn on_task(
        &mut self,
        key: ExecutorKey,
        info: ExecutorInfo,
        kind: ExecutorKind,
        container_id: String,
        delivery: Delivery,
        now: Instant,
    ) -> Vec<ExecAction> {
        let mut out = Vec::new();
        let record = self.records.entry(key.clone()).or_insert_with(|| {
            out.push(ExecAction::Spawn { key: key.clone() });
            ExecutorRecord {
                key: key.clone(),
                info,
                kind,
                container_id: container_id.clone(),
                launched_at: now,
                subscriptions: 0,
                phase: Phase::Launched,
                queued: Vec::new(),
                delivered: HashSet::default(),
                held: Vec::new(),
                acked: HashSet::default(),
                shutting_down: false,
            }
        });
        self.by_container
            .insert(record.container_id.clone(), key.clone());
        match record.phase {
            Phase::Subscribed { conn } => {
                record.delivered.extend(delivery.task_ids());
                out.push(ExecAction::Send {
                    conn,
                    event: Box::new(delivery.event()),
                });
            }
            Phase::Launched | Phase::Disconnected => record.queued.push(delivery),
        }
        out
    }

    /// A checked SUBSCRIBE on `conn`: an old stream is closed, then
    /// `subscribed` goes out followed by the queued launches and the held
    /// events. An executor being shut down gets only SHUTDOWN.
    pub fn on_subscribe(
        &mut self,
        key: &ExecutorKey,
        conn: ConnId,
        subscribed: Event,
    ) -> Vec<ExecAction> {
        let Some(record) = self.records.get_mut(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if record.shutting_down {
            out.push(ExecAction::Send {
                conn,
                event: Box::new(of(event::Type::Shutdown)),
            });
            out.push(ExecAction::Close { conn });
            return out;
        }
        if let Phase::Subscribed { conn: old } = record.phase {
            self.by_conn.remove(&old);
            out.push(ExecAction::Close { conn: old });
        }
        record.phase = Phase::Subscribed { conn };
        record.subscriptions += 1;
        self.by_conn.insert(conn, key.clone());
        out.push(ExecAction::Send {
            conn,
            event: Box::new(subscribed),
        });
        for delivery in std::mem::take(&mut record.queued) {
            record.delivered.extend(delivery.task_ids());
            out.push(ExecAction::Send {
                conn,
                event: Box::new(delivery.event()),
            });
        }
        for event in std::mem::take(&mut record.held) {
            out.push(ExecAction::Send {
                conn,
                event: Box::new(event),
            });
        }
        out
    }

    /// An executor stream ended; returns whose it was.
    pub fn on_disconnected(&mut self, conn: ConnId) -> Option<ExecutorKey> {
        let key = self.by_conn.remove(&conn)?;
        if let Some(record) = self.records.get_mut(&key) {
            if record.phase == (Phase::Subscribed { conn }) {
                record.phase = Phase::Disconnected;
            }
        }
        Some(key)
    }

    /// KILL for `task_id`: sent to a subscribed executor, held for a
    /// disconnected one, or, for a task still queued, dropped from the
    /// queue (its whole group with it); an executor left with nothing to
    /// run is killed (Mesos shuts it down).
    pub fn on_kill(
        &mut self,
        key: &ExecutorKey,
        task_id: &str,
        policy: Option<KillPolicy>,
    ) -> KillOutcome {
        let Some(record) = self.records.get_mut(key) else {
            return KillOutcome::default();
        };
        let mut outcome = KillOutcome::default();
        if let Some(i) = record
            .queued
            .iter()
            .position(|d| d.task_ids().iter().any(|t| t == task_id))
        {
            outcome.dropped = record.queued.remove(i).task_ids();
            if record.queued.is_empty() && record.delivered.is_empty() {
                record.shutting_down = true;
                outcome.actions.push(ExecAction::Kill {
                    container_id: record.container_id.clone(),
                });
            }
            return outcome;
        }
        let kill = Event {
            kill: Some(event::Kill {
                task_id: v1::TaskId {
                    value: task_id.to_owned(),
                },
                kill_policy: policy,
            }),
            ..of(event::Type::Kill)
        };
        match record.phase {
            Phase::Subscribed { conn } => outcome.actions.push(ExecAction::Send {
                conn,
                event: Box::new(kill),
            }),
            Phase::Launched | Phase::Disconnected => record.held.push(kill),
        }
        outcome
    }

    /// SHUTDOWN: a subscribed executor gets the event and `grace` to exit
    /// before its container is killed; any other is killed now.
    pub fn on_shutdown(
        &mut self,
        key: &ExecutorKey,
        grace: Duration,
        now: Instant,
    ) -> Vec<ExecAction> {
        let Some(record) = self.records.get_mut(key) else {
            return Vec::new();
        };
        if record.shutting_down {
            return Vec::new();
        }
        record.shutting_down = true;
        record.queued.clear();
        let container_id = record.container_id.clone();
        match record.phase {
            Phase::Subscribed { conn } => vec![
                ExecAction::Send {
                    conn,
                    event: Box::new(of(event::Type::Shutdown)),
                },
                ExecAction::KillAt {
                    container_id,
                    at: after(now, grace),
                },
            ],
            Phase::Launched | Phase::Disconnected => vec![ExecAction::Kill { container_id }],
        }
    }

    /// A framework message for the executor (best effort: held while it is
    /// disconnected, dropped before its first subscription as Mesos does).
    pub fn on_message(&mut self, key: &ExecutorKey, data: Bytes) -> Vec<ExecAction> {
        let Some(record) = self.records.get_mut(key) else {
            return Vec::new();
        };
        let message = Event {
            message: Some(event::Message { data }),
            ..of(event::Type::Message)
        };
        match record.phase {
            Phase::Subscribed { conn } => vec![ExecAction::Send {
                conn,
                event: Box::new(message),
            }],
            Phase::Disconnected => {
                record.held.push(message);
                Vec::new()
            }
            Phase::Launched => Vec::new(),
        }
    }

    /// The framework acknowledged an update the executor sent: remember the
    /// uuid (a re-sent copy is acknowledged at once) and tell the executor.
    pub fn on_acknowledged(
        &mut self,
        key: &ExecutorKey,
        task_id: &v1::TaskId,
        uuid: Bytes,
    ) -> Vec<ExecAction> {
        let Some(record) = self.records.get_mut(key) else {
            return Vec::new();
        };
        record.acked.insert(uuid.clone());
        match record.phase {
            Phase::Subscribed { conn } => vec![acknowledged(conn, task_id, uuid)],
            // The executor re-sends it when it re-subscribes.
            _ => Vec::new(),
        }
    }

    /// An update the framework already acknowledged came again: acknowledge
    /// it to the executor at once.
    pub fn is_acknowledged(&self, key: &ExecutorKey, uuid: &[u8]) -> bool {
        self.records
            .get(key)
            .is_some_and(|r| r.acked.contains(uuid))
    }

    /// ACKNOWLEDGED for an update the agent takes no further (a duplicate
    /// or one for a task that already ended), as Mesos still acknowledges it.
    pub fn acknowledge_now(
        &self,
        key: &ExecutorKey,
        task_id: &v1::TaskId,
        uuid: Bytes,
    ) -> Vec<ExecAction> {
        self.records
            .get(key)
            .and_then(ExecutorRecord::conn)
            .map(|conn| vec![acknowledged(conn, task_id, uuid)])
            .unwrap_or_default()
    }

    /// The executor's process is gone: forgets it and returns its record.
    pub fn on_exited(&mut self, container_id: &str) -> Option<ExecutorRecord> {
        let key = self.by_container.remove(container_id)?;
        let record = self.records.remove(&key)?;
        if let Some(conn) = record.conn() {
            self.by_conn.remove(&conn);
        }
        Some(record)
    }

    /// The container id of an executor being shut down, if its kill
    /// deadline should still fire.
    pub fn is_live_container(&self, container_id: &str) -> bool {
        self.by_container.contains_key(container_id)
    }

    /// The agent's executor endpoint restarts: every executor stream on it
    /// ends and the endpoint refuses calls until `until`.
    pub fn on_endpoint_restart(&mut self, agent: usize, until: Instant) -> Vec<ExecAction> {
        self.down_until.insert(agent, until);
        let mut out = Vec::new();
        for record in self.records.values_mut().filter(|r| r.key.0 == agent) {
            if let Phase::Subscribed { conn } = record.phase {
                self.by_conn.remove(&conn);
                record.phase = Phase::Disconnected;
                out.push(ExecAction::Close { conn });
            }
        }
        out
    }

    /// Whether the agent's executor endpoint is down (restarting) at `now`.
    pub fn is_endpoint_down(&self, agent: usize, now: Instant) -> bool {
        self.down_until.get(&agent).is_some_and(|t| now < *t)
    }

    /// Every executor of a framework.
    pub fn of_framework(&self, framework: &str) -> Vec<ExecutorKey> {
        self.records
            .keys()
            .filter(|k| k.1 == framework)
            .cloned()
            .collect()
    }
}

fn acknowledged(conn: ConnId, task_id: &v1::TaskId, uuid: Bytes) -> ExecAction {
    ExecAction::Send {
        conn,
        event: Box::new(Event {
            acknowledged: Some(event::Acknowledged {
                task_id: task_id.clone(),
                uuid,
            }),
            ..of(event::Type::Acknowledged)
        }),
    }
}

#[cfg(test)]
#[path = "executors_tests.rs"]
mod tests;
