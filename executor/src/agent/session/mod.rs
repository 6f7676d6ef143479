//! The executor <-> agent protocol as a state machine (reference 4.3-4.6;
//! Mesos `src/executor/executor.cpp`).
//!
//! ```text
//!            start                  SUBSCRIBED
//!   Idle ------------> Subscribing ------------> Subscribed
//!                        |    ^                      |
//!       stream closed /  |    | retry_at reached     | stream closed
//!       connect failed   v    |                      v
//!                     Disconnected{retry_at, since} <-
//!                        |
//!                        | now >= since + recovery_timeout, or no checkpoint
//!                        v
//!                      Shutdown (Action::Shutdown)
//! ```
//!
//! Calling contract: call [`ExecutorSession::start`] once; feed every event
//! of the subscription stream to `on_event`, every status the supervisors
//! produce to `on_status`, a closed or failed subscription to
//! `on_disconnected`, and call `on_tick` at [`ExecutorSession::next_deadline`].
//! Carry out the returned actions in order. The session never reads the
//! clock or the RNG itself: `now`, wall-clock seconds and the RNG come in.
//!
//! Reliability (4.5): every update is kept, keyed by uuid, until ACKNOWLEDGED;
//! every TaskInfo until one of its updates is. Both ride in each SUBSCRIBE.
//! While subscribed, an update not acknowledged within
//! `update_retry_interval` is sent again with the same uuid (the agent
//! de-duplicates by uuid).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use drover_proto::v1::executor::{call, event, Call, Event};
use drover_proto::v1::{task_status, ExecutorId, FrameworkId, TaskInfo, TaskStatus};
use rand::Rng;

/// The session's settings, from the agent's environment.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// MESOS_FRAMEWORK_ID.
    pub framework_id: String,
    /// MESOS_EXECUTOR_ID.
    pub executor_id: String,
    /// MESOS_CHECKPOINT == "1": re-subscribe after a disconnection instead
    /// of shutting down. Default false, as for a non-checkpointing framework.
    pub checkpoint: bool,
    /// MESOS_RECOVERY_TIMEOUT: how long to keep re-subscribing, from the
    /// first disconnection. Default 15 minutes, the agent's default.
    pub recovery_timeout: Duration,
    /// MESOS_SUBSCRIPTION_BACKOFF_MAX: the most to wait between attempts
    /// (a uniformly random wait in [0, max]). Default 2 s, the agent's
    /// `--executor_reregistration_timeout`.
    pub subscription_backoff_max: Duration,
    /// How long an unacknowledged update waits before it is re-sent while
    /// subscribed. Default 10 s, the agent's own status-update retry start.
    pub update_retry_interval: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            framework_id: String::new(),
            executor_id: String::new(),
            checkpoint: false,
            recovery_timeout: Duration::from_secs(15 * 60),
            subscription_backoff_max: Duration::from_secs(2),
            update_retry_interval: Duration::from_secs(10),
        }
    }
}

/// Why the session gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownReason {
    /// The connection broke and the framework does not checkpoint (4.6).
    Disconnected,
    /// Re-subscribing did not succeed within the recovery timeout.
    RecoveryTimeout,
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open the subscription stream with this SUBSCRIBE call.
    Subscribe(Box<Call>),
    /// POST this call (UPDATE or MESSAGE) on a separate connection.
    Send(Box<Call>),
    /// Hand this event to the executor (SUBSCRIBED, LAUNCH, KILL, ...).
    Deliver(Box<Event>),
    /// Stop: kill the tasks and exit.
    Shutdown(ShutdownReason),
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Idle,
    Subscribing { since: Option<Instant> },
    Subscribed,
    Disconnected { retry_at: Instant, since: Instant },
    Shutdown,
}

#[derive(Debug, Clone)]
struct Pending {
    update: call::Update,
    /// When it was last sent as an UPDATE call (`None`: not yet).
    sent_at: Option<Instant>,
}

/// The executor side of the executor API.
#[derive(Debug)]
pub struct ExecutorSession {
    config: SessionConfig,
    state: State,
    /// Unacknowledged updates by uuid, in the order they were made
    /// (the sequence number keeps per-task order on re-send).
    updates: BTreeMap<u64, (Vec<u8>, Pending)>,
    next_seq: u64,
    /// Launched tasks with no acknowledged update yet, in launch order.
    tasks: Vec<TaskInfo>,
}

impl ExecutorSession {
    /// A session that has not connected yet.
    pub fn new(config: SessionConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            updates: BTreeMap::new(),
            next_seq: 0,
            tasks: Vec::new(),
        }
    }

    /// Whether the agent has us subscribed now.
    pub fn is_subscribed(&self) -> bool {
        self.state == State::Subscribed
    }

    /// Updates not yet acknowledged.
    pub fn unacknowledged_updates(&self) -> usize {
        self.updates.len()
    }

    /// Whether an update of `task_id` still waits for its acknowledgement.
    pub fn has_unacknowledged(&self, task_id: &str) -> bool {
        self.updates
            .values()
            .any(|(_, p)| p.update.status.task_id.value == task_id)
    }

    /// Begins the first subscription.
    pub fn start(&mut self) -> Vec<Action> {
        self.state = State::Subscribing { since: None };
        vec![Action::Subscribe(Box::new(self.subscribe_call()))]
    }

    fn call(&self, kind: call::Type) -> Call {
        Call {
            r#type: Some(kind as i32),
            executor_id: ExecutorId {
                value: self.config.executor_id.clone(),
            },
            framework_id: FrameworkId {
                value: self.config.framework_id.clone(),
            },
            ..Default::default()
        }
    }

    fn subscribe_call(&self) -> Call {
        let mut call = self.call(call::Type::Subscribe);
        call.subscribe = Some(call::Subscribe {
            unacknowledged_tasks: self.tasks.clone(),
            unacknowledged_updates: self
                .updates
                .values()
                .map(|(_, p)| p.update.clone())
                .collect(),
        });
        call
    }

    fn update_call(&self, update: &call::Update) -> Call {
        let mut call = self.call(call::Type::Update);
        call.update = Some(update.clone());
        call
    }

    /// An event from the subscription stream.
    pub fn on_event(&mut self, event: Event, now: Instant) -> Vec<Action> {
        let kind = event.r#type.and_then(|t| event::Type::try_from(t).ok());
        match kind {
            Some(event::Type::Subscribed) => {
                self.state = State::Subscribed;
                // The agent re-processes the updates carried in SUBSCRIBE and
                // acknowledges them; count them as sent now.
                for (_, pending) in self.updates.values_mut() {
                    pending.sent_at = Some(now);
                }
            }
            Some(event::Type::Launch) => {
                if let Some(launch) = &event.launch {
                    self.tasks.push(launch.task.clone());
                }
            }
            Some(event::Type::LaunchGroup) => {
                if let Some(group) = &event.launch_group {
                    self.tasks.extend(group.task_group.tasks.iter().cloned());
                }
            }
            Some(event::Type::Acknowledged) => {
                if let Some(ack) = &event.acknowledged {
                    self.updates
                        .retain(|_, (uuid, _)| uuid.as_slice() != ack.uuid.as_ref());
                    self.tasks.retain(|t| t.task_id != ack.task_id);
                }
            }
            _ => {}
        }
        vec![Action::Deliver(Box::new(event))]
    }

    /// A status the supervisors want reported. Fills in the executor's part
    /// (uuid, source, executor id, timestamp) and sends it if subscribed.
    pub fn on_status(
        &mut self,
        mut status: TaskStatus,
        now: Instant,
        wall_secs: f64,
        rng: &mut impl Rng,
    ) -> Vec<Action> {
        let uuid = uuid::Builder::from_random_bytes(rng.random()).into_uuid();
        status.uuid = Some(uuid.as_bytes().to_vec().into());
        status.source = Some(task_status::Source::Executor as i32);
        status.executor_id = Some(ExecutorId {
            value: self.config.executor_id.clone(),
        });
        status.timestamp = Some(wall_secs);
        let update = call::Update { status };
        let subscribed = self.is_subscribed();
        let seq = self.next_seq;
        self.next_seq += 1;
        let action = Action::Send(Box::new(self.update_call(&update)));
        self.updates.insert(
            seq,
            (
                uuid.as_bytes().to_vec(),
                Pending {
                    update,
                    sent_at: subscribed.then_some(now),
                },
            ),
        );
        if subscribed {
            vec![action]
        } else {
            Vec::new()
        }
    }

    /// A framework message to send (best effort: dropped if not subscribed).
    pub fn on_message(&mut self, data: bytes::Bytes) -> Vec<Action> {
        if !self.is_subscribed() {
            return Vec::new();
        }
        let mut call = self.call(call::Type::Message);
        call.message = Some(call::Message { data });
        vec![Action::Send(Box::new(call))]
    }

    /// The subscription failed or its stream ended.
    pub fn on_disconnected(&mut self, now: Instant, rng: &mut impl Rng) -> Vec<Action> {
        let since = match self.state {
            State::Shutdown => return Vec::new(),
            State::Subscribing { since: Some(since) } | State::Disconnected { since, .. } => since,
            _ => now,
        };
        if !self.config.checkpoint {
            self.state = State::Shutdown;
            return vec![Action::Shutdown(ShutdownReason::Disconnected)];
        }
        if now.saturating_duration_since(since) >= self.config.recovery_timeout {
            self.state = State::Shutdown;
            return vec![Action::Shutdown(ShutdownReason::RecoveryTimeout)];
        }
        let max = self.config.subscription_backoff_max;
        let wait = max.mul_f64(rng.random_range(0.0..=1.0));
        self.state = State::Disconnected {
            retry_at: now + wait,
            since,
        };
        Vec::new()
    }

    /// Timers: re-subscribe, recovery timeout, update retries.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        match self.state {
            State::Disconnected { retry_at, since } => {
                if now.saturating_duration_since(since) >= self.config.recovery_timeout {
                    self.state = State::Shutdown;
                    return vec![Action::Shutdown(ShutdownReason::RecoveryTimeout)];
                }
                if now >= retry_at {
                    self.state = State::Subscribing { since: Some(since) };
                    return vec![Action::Subscribe(Box::new(self.subscribe_call()))];
                }
                Vec::new()
            }
            State::Subscribed => {
                let retry = self.config.update_retry_interval;
                let mut due = Vec::new();
                for (_, pending) in self.updates.values_mut() {
                    if pending.sent_at.is_none_or(|at| now >= at + retry) {
                        pending.sent_at = Some(now);
                        due.push(pending.update.clone());
                    }
                }
                due.iter()
                    .map(|u| Action::Send(Box::new(self.update_call(u))))
                    .collect()
            }
            _ => Vec::new(),
        }
    }

    /// When `on_tick` must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        match self.state {
            State::Disconnected { retry_at, since } => {
                Some(retry_at.min(since + self.config.recovery_timeout))
            }
            State::Subscribed => self
                .updates
                .values()
                .filter_map(|(_, p)| p.sent_at.map(|at| at + self.config.update_retry_interval))
                .min(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
