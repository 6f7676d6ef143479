//! One executor of a real agent, as a Mesos agent keeps it: whether it has
//! subscribed, the LAUNCH / LAUNCH_GROUP events queued until it does, the
//! KILL and MESSAGE events held while it is disconnected, and the update
//! uuids already acknowledged to it. Pure: inputs carry `now`, outputs are
//! [`ExecAction`]s that the master turns into effects and timers. It knows
//! nothing of status updates or tasks' states (the master does), nor of the
//! other executors (`executor_registry.rs` finds them and keeps the indexes).
//!
//! ```text
//!  new ──► Launched ──on_subscribe──► Subscribed{conn} ──on_disconnected──► Disconnected
//!             │                          ▲        │ on_shutdown                │
//!             │                          └────────┼──── on_subscribe ──────────┘
//!             │                                   ▼
//!             └──────────── on_shutdown ───► shutting_down (SHUTDOWN, then Kill at the deadline)
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;
use drover_proto::v1::executor::{event, Event};
use drover_proto::v1::{self, ExecutorInfo, KillPolicy, TaskInfo};

use crate::deadline::after;
use crate::fixed_hash::HashSet;
use crate::ids::{ConnId, ExecutorKey};

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

/// An executor event with only its type set.
pub(crate) fn of(ty: event::Type) -> Event {
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

/// What a KILL for a task did.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KillOutcome {
    /// Tasks removed from the queue before the executor saw them; the
    /// agent reports them TASK_KILLED itself.
    pub dropped: Vec<String>,
    pub actions: Vec<ExecAction>,
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
    /// An executor just started for `key`, not yet subscribed.
    pub fn new(
        key: ExecutorKey,
        info: ExecutorInfo,
        kind: ExecutorKind,
        container_id: String,
        now: Instant,
    ) -> Self {
        ExecutorRecord {
            key,
            info,
            kind,
            container_id,
            launched_at: now,
            subscriptions: 0,
            phase: Phase::Launched,
            queued: Vec::new(),
            delivered: HashSet::default(),
            held: Vec::new(),
            acked: HashSet::default(),
            shutting_down: false,
        }
    }

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

    /// Work for it: sent at once if it is subscribed, else queued for its
    /// subscription.
    pub fn on_task(&mut self, delivery: Delivery) -> Option<ExecAction> {
        match self.phase {
            Phase::Subscribed { conn } => {
                self.delivered.extend(delivery.task_ids());
                Some(ExecAction::Send {
                    conn,
                    event: Box::new(delivery.event()),
                })
            }
            Phase::Launched | Phase::Disconnected => {
                self.queued.push(delivery);
                None
            }
        }
    }

    /// A checked SUBSCRIBE on `conn`: an old stream is closed, then
    /// `subscribed` goes out followed by the queued launches and the held
    /// events. An executor being shut down gets only SHUTDOWN.
    pub fn on_subscribe(&mut self, conn: ConnId, subscribed: Event) -> Vec<ExecAction> {
        let mut out = Vec::new();
        if self.shutting_down {
            out.push(ExecAction::Send {
                conn,
                event: Box::new(of(event::Type::Shutdown)),
            });
            out.push(ExecAction::Close { conn });
            return out;
        }
        if let Phase::Subscribed { conn: old } = self.phase {
            out.push(ExecAction::Close { conn: old });
        }
        self.phase = Phase::Subscribed { conn };
        self.subscriptions += 1;
        out.push(ExecAction::Send {
            conn,
            event: Box::new(subscribed),
        });
        for delivery in std::mem::take(&mut self.queued) {
            self.delivered.extend(delivery.task_ids());
            out.push(ExecAction::Send {
                conn,
                event: Box::new(delivery.event()),
            });
        }
        for event in std::mem::take(&mut self.held) {
            out.push(ExecAction::Send {
                conn,
                event: Box::new(event),
            });
        }
        out
    }

    /// Stream `conn` ended; if it was its current one, it is disconnected.
    pub fn on_disconnected(&mut self, conn: ConnId) {
        if self.phase == (Phase::Subscribed { conn }) {
            self.phase = Phase::Disconnected;
        }
    }

    /// Its agent's endpoint restarted: its stream, returned, has ended.
    pub fn on_endpoint_restart(&mut self) -> Option<ConnId> {
        let conn = self.conn()?;
        self.phase = Phase::Disconnected;
        Some(conn)
    }

    /// KILL for `task_id`: sent if it is subscribed, held if not, or, for a
    /// task still queued, dropped from the queue (its whole group with it);
    /// an executor left with nothing to run is killed (Mesos shuts it down).
    pub fn on_kill(&mut self, task_id: &str, policy: Option<KillPolicy>) -> KillOutcome {
        let mut outcome = KillOutcome::default();
        if let Some(i) = self
            .queued
            .iter()
            .position(|d| d.task_ids().iter().any(|t| t == task_id))
        {
            outcome.dropped = self.queued.remove(i).task_ids();
            if self.queued.is_empty() && self.delivered.is_empty() {
                self.shutting_down = true;
                outcome.actions.push(ExecAction::Kill {
                    container_id: self.container_id.clone(),
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
        match self.phase {
            Phase::Subscribed { conn } => outcome.actions.push(ExecAction::Send {
                conn,
                event: Box::new(kill),
            }),
            Phase::Launched | Phase::Disconnected => self.held.push(kill),
        }
        outcome
    }

    /// SHUTDOWN: if subscribed it gets the event and `grace` to exit before
    /// its container is killed; otherwise it is killed now.
    pub fn on_shutdown(&mut self, grace: Duration, now: Instant) -> Vec<ExecAction> {
        if self.shutting_down {
            return Vec::new();
        }
        self.shutting_down = true;
        self.queued.clear();
        let container_id = self.container_id.clone();
        match self.phase {
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

    /// A framework message for it (best effort: held while it is
    /// disconnected, dropped before its first subscription as Mesos does).
    pub fn on_message(&mut self, data: Bytes) -> Vec<ExecAction> {
        let message = Event {
            message: Some(event::Message { data }),
            ..of(event::Type::Message)
        };
        match self.phase {
            Phase::Subscribed { conn } => vec![ExecAction::Send {
                conn,
                event: Box::new(message),
            }],
            Phase::Disconnected => {
                self.held.push(message);
                Vec::new()
            }
            Phase::Launched => Vec::new(),
        }
    }

    /// The framework acknowledged an update it sent: remember the uuid (a
    /// re-sent copy is acknowledged at once) and tell it.
    pub fn on_acknowledged(&mut self, task_id: &v1::TaskId, uuid: Bytes) -> Vec<ExecAction> {
        self.acked.insert(uuid.clone());
        match self.phase {
            Phase::Subscribed { conn } => vec![acknowledged(conn, task_id, uuid)],
            // The executor re-sends it when it re-subscribes.
            _ => Vec::new(),
        }
    }

    /// Whether the framework already acknowledged the update with `uuid`.
    pub fn is_acknowledged(&self, uuid: &[u8]) -> bool {
        self.acked.contains(uuid)
    }

    /// ACKNOWLEDGED for an update the agent takes no further (a duplicate
    /// or one for a task that already ended), as Mesos still acknowledges it.
    pub fn acknowledge_now(&self, task_id: &v1::TaskId, uuid: Bytes) -> Vec<ExecAction> {
        self.conn()
            .map(|conn| vec![acknowledged(conn, task_id, uuid)])
            .unwrap_or_default()
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
