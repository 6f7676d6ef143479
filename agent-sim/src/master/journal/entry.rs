//! The journal's records (wire): protobuf messages, so a task's
//! `ExecutorInfo`, resources, labels and unacknowledged `TaskStatus`es are
//! kept as the Mesos messages they are, and the conversions between a
//! simulated task and its record (pure; times as unix seconds, because the
//! master that reads them is another process with another `Instant`).

use std::time::{Duration, Instant};

use drover_proto::v1;

use crate::agent::sim_check::SimCheck;
use crate::agent::sim_task::{HealthSpec, Outcome, Phase, SimSnapshot, SimSpec};

/// One journal record.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(oneof = "Kind", tags = "1, 2, 3, 4, 5")]
    pub kind: Option<Kind>,
}

/// What a record says; the latest record about a thing replaces earlier ones.
// Records live one at a time while encoded or replayed: their size
// costs nothing worth a box per task record.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Kind {
    /// A simulated agent (its id, place in the fleet and resources).
    #[prost(message, tag = "1")]
    Agent(AgentEntry),
    /// A framework as it last subscribed (its id set), as a Mesos agent
    /// checkpoints the FrameworkInfo of the frameworks it runs tasks for.
    #[prost(message, tag = "2")]
    Framework(v1::FrameworkInfo),
    /// A framework was removed (TEARDOWN, failover timeout).
    #[prost(string, tag = "3")]
    FrameworkGone(String),
    /// A task, whole: what the master knows of it and its unacknowledged updates.
    #[prost(message, tag = "4")]
    Task(TaskEntry),
    /// A task was forgotten (its terminal update acknowledged).
    #[prost(message, tag = "5")]
    TaskGone(TaskKeyEntry),
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct AgentEntry {
    /// Its place in the fleet, kept so that a master started with the same
    /// flags puts it where its own agent of that place was.
    #[prost(uint64, tag = "1")]
    pub index: u64,
    #[prost(string, tag = "2")]
    pub id: String,
    #[prost(string, tag = "3")]
    pub hostname: String,
    #[prost(message, repeated, tag = "4")]
    pub resources: Vec<v1::Resource>,
    #[prost(message, repeated, tag = "5")]
    pub attributes: Vec<v1::Attribute>,
    /// Failed (`/sim/agents/{id}/fail`) and not yet returned: a new leader
    /// adopts it unreachable, and it re-registers when it returns.
    #[prost(bool, tag = "6")]
    pub disconnected: bool,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct TaskKeyEntry {
    #[prost(string, tag = "1")]
    pub framework: String,
    #[prost(string, tag = "2")]
    pub task_id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskEntry {
    #[prost(string, tag = "1")]
    pub framework: String,
    #[prost(string, tag = "2")]
    pub task_id: String,
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(message, optional, tag = "4")]
    pub executor: Option<v1::ExecutorInfo>,
    #[prost(string, tag = "5")]
    pub agent_id: String,
    #[prost(message, repeated, tag = "6")]
    pub resources: Vec<v1::Resource>,
    #[prost(message, optional, tag = "7")]
    pub labels: Option<v1::Labels>,
    /// The latest state the agent reported (a `TaskState`).
    #[prost(int32, tag = "8")]
    pub state: i32,
    #[prost(bool, optional, tag = "9")]
    pub healthy: Option<bool>,
    #[prost(message, repeated, tag = "10")]
    pub statuses: Vec<StatusMarkEntry>,
    /// A KILL waiting for the agent: its grace (none: the task's own).
    #[prost(message, optional, tag = "11")]
    pub kill_pending: Option<KillPendingEntry>,
    #[prost(double, optional, tag = "12")]
    pub unreachable_since: Option<f64>,
    #[prost(message, optional, tag = "13")]
    pub sim: Option<SimEntry>,
    /// The updates the framework has not acknowledged, oldest (the one in
    /// flight) first.
    #[prost(message, repeated, tag = "14")]
    pub pending: Vec<v1::TaskStatus>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusMarkEntry {
    #[prost(int32, tag = "1")]
    pub state: i32,
    #[prost(double, tag = "2")]
    pub timestamp: f64,
    #[prost(bool, optional, tag = "3")]
    pub healthy: Option<bool>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct KillPendingEntry {
    #[prost(uint64, optional, tag = "1")]
    pub grace_ns: Option<u64>,
}

/// A simulated task: its behaviour (from its TaskInfo and labels) and where
/// it is in its lifecycle.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SimEntry {
    /// None: runs until killed.
    #[prost(uint64, optional, tag = "1")]
    pub exit_after_ns: Option<u64>,
    #[prost(int32, tag = "2")]
    pub exit_code: i32,
    #[prost(uint64, tag = "3")]
    pub kill_grace_ns: u64,
    #[prost(message, optional, tag = "4")]
    pub health: Option<HealthEntry>,
    #[prost(message, optional, tag = "5")]
    pub check: Option<CheckEntry>,
    #[prost(bool, tag = "6")]
    pub killing_state: bool,
    /// 0 created, 1 running, 2 killing, 3 done.
    #[prost(uint32, tag = "7")]
    pub phase: u32,
    #[prost(double, tag = "8")]
    pub killing_since: f64,
    #[prost(double, tag = "9")]
    pub killing_deadline: f64,
    #[prost(double, optional, tag = "10")]
    pub launched_at: Option<f64>,
    #[prost(uint32, tag = "11")]
    pub consecutive_failures: u32,
    #[prost(bool, optional, tag = "12")]
    pub reported_healthy: Option<bool>,
    #[prost(bool, tag = "13")]
    pub killed_by_health: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthEntry {
    #[prost(uint64, tag = "1")]
    pub delay_ns: u64,
    #[prost(uint64, tag = "2")]
    pub interval_ns: u64,
    #[prost(uint64, tag = "3")]
    pub grace_ns: u64,
    #[prost(uint32, tag = "4")]
    pub consecutive_failures: u32,
    #[prost(bool, tag = "5")]
    pub healthy: bool,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct CheckEntry {
    #[prost(int32, tag = "1")]
    pub kind: i32,
    #[prost(uint64, tag = "2")]
    pub delay_ns: u64,
    #[prost(uint64, tag = "3")]
    pub interval_ns: u64,
    #[prost(uint64, optional, tag = "4")]
    pub passes_after_ns: Option<u64>,
    #[prost(bool, optional, tag = "5")]
    pub reported: Option<bool>,
}

/// Converts between a process's `Instant`s and unix seconds: `now` is
/// `now_unix` seconds since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    pub now: Instant,
    pub now_unix: f64,
}

impl Clock {
    pub fn unix(&self, at: Instant) -> f64 {
        if at >= self.now {
            self.now_unix + (at - self.now).as_secs_f64()
        } else {
            self.now_unix - (self.now - at).as_secs_f64()
        }
    }

    /// The `Instant` at `unix` seconds (a time too far back or ahead to
    /// represent is taken as `now`).
    pub fn instant(&self, unix: f64) -> Instant {
        let delta = unix - self.now_unix;
        let Ok(d) = Duration::try_from_secs_f64(delta.abs()) else {
            return self.now;
        };
        if delta >= 0.0 {
            self.now.checked_add(d).unwrap_or(self.now)
        } else {
            self.now.checked_sub(d).unwrap_or(self.now)
        }
    }
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A simulated task's record.
pub fn sim_entry(s: &SimSnapshot, clock: &Clock) -> SimEntry {
    let (exit_after_ns, exit_code) = match s.spec.outcome {
        Outcome::ExitAfter { after, code } => (Some(ns(after)), code),
        Outcome::RunUntilKilled => (None, 0),
    };
    let (phase, killing_since, killing_deadline) = match s.phase {
        Phase::Created => (0, 0.0, 0.0),
        Phase::Running => (1, 0.0, 0.0),
        Phase::Killing { since, deadline } => (2, clock.unix(since), clock.unix(deadline)),
        Phase::Done => (3, 0.0, 0.0),
    };
    SimEntry {
        exit_after_ns,
        exit_code,
        kill_grace_ns: ns(s.spec.kill_grace),
        health: s.spec.health.map(|h| HealthEntry {
            delay_ns: ns(h.delay),
            interval_ns: ns(h.interval),
            grace_ns: ns(h.grace),
            consecutive_failures: h.consecutive_failures,
            healthy: h.healthy,
        }),
        check: s.spec.check.as_deref().map(|c| CheckEntry {
            kind: c.kind as i32,
            delay_ns: ns(c.delay),
            interval_ns: ns(c.interval),
            passes_after_ns: c.passes_after.map(ns),
            reported: c.reported,
        }),
        killing_state: s.spec.killing_state,
        phase,
        killing_since,
        killing_deadline,
        launched_at: s.launched_at.map(|t| clock.unix(t)),
        consecutive_failures: s.consecutive_failures,
        reported_healthy: s.reported_healthy,
        killed_by_health: s.killed_by_health,
    }
}

/// The simulated task a record describes, with its times in `clock`'s
/// `Instant`s. A phase number this build does not know reads as running.
pub fn sim_snapshot(e: &SimEntry, clock: &Clock) -> SimSnapshot {
    use drover_proto::v1::check_info;
    let outcome = match e.exit_after_ns {
        Some(after) => Outcome::ExitAfter {
            after: Duration::from_nanos(after),
            code: e.exit_code,
        },
        None => Outcome::RunUntilKilled,
    };
    let spec = SimSpec {
        outcome,
        kill_grace: Duration::from_nanos(e.kill_grace_ns),
        health: e.health.as_ref().map(|h| HealthSpec {
            delay: Duration::from_nanos(h.delay_ns),
            interval: Duration::from_nanos(h.interval_ns),
            grace: Duration::from_nanos(h.grace_ns),
            consecutive_failures: h.consecutive_failures.max(1),
            healthy: h.healthy,
        }),
        check: e.check.as_ref().map(|c| {
            Box::new(SimCheck {
                kind: check_info::Type::try_from(c.kind).unwrap_or(check_info::Type::Command),
                delay: Duration::from_nanos(c.delay_ns),
                interval: Duration::from_nanos(c.interval_ns).max(Duration::from_millis(1)),
                passes_after: c.passes_after_ns.map(Duration::from_nanos),
                reported: c.reported,
            })
        }),
        killing_state: e.killing_state,
    };
    let phase = match e.phase {
        0 => Phase::Created,
        2 => Phase::Killing {
            since: clock.instant(e.killing_since),
            deadline: clock.instant(e.killing_deadline),
        },
        3 => Phase::Done,
        _ => Phase::Running,
    };
    SimSnapshot {
        spec,
        phase,
        launched_at: e.launched_at.map(|t| clock.instant(t)),
        consecutive_failures: e.consecutive_failures,
        reported_healthy: e.reported_healthy,
        killed_by_health: e.killed_by_health,
    }
}
