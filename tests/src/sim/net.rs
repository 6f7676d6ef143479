//! The simulated network between the scheduler and the master: messages in
//! flight, each delivered at a virtual time. A subscription stream is a
//! TCP connection: its events arrive in the order they were sent. A
//! scheduler's calls arrive in the order it sent them, as its driver sends
//! them (the next of its ordered lane only once the one before is
//! answered), but for acknowledgements, which have a lane of their own and
//! commute with everything: each of those arrives after its own latency.

use drover_agent_sim::ids::ConnId;
use drover_proto::v1::scheduler::{call, Call, Event};
use drover_scheduler::mesos::session::{CallResponse, SubscribeResponse};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// A scheduler process, numbered from 1 across its restarts: what was
/// addressed to one that died is lost with it.
pub type Incarnation = u64;

/// A message between the two.
#[derive(Debug, Clone)]
pub enum Msg {
    /// Scheduler → master: SUBSCRIBE on a new connection.
    Subscribe {
        /// The sender.
        incarnation: Incarnation,
        /// The session's tag for the connection.
        generation: u64,
        /// The call.
        subscribe: Box<call::Subscribe>,
    },
    /// Scheduler → master: any other call.
    Call {
        /// The sender.
        incarnation: Incarnation,
        /// The connection it belongs to.
        generation: u64,
        /// Its `Mesos-Stream-Id`.
        stream_id: String,
        /// The call.
        call: Box<Call>,
    },
    /// Scheduler → master: the scheduler closed its end of a stream (or
    /// its process died).
    Hangup {
        /// The stream.
        conn: ConnId,
    },
    /// Master → scheduler: the HTTP response to a SUBSCRIBE.
    Subscribed {
        /// The receiver.
        incarnation: Incarnation,
        /// The connection.
        generation: u64,
        /// What it said.
        response: SubscribeResponse,
    },
    /// Master → scheduler: an event on a stream.
    Event {
        /// The stream.
        conn: ConnId,
        /// The event.
        event: Box<Event>,
    },
    /// Master → scheduler: the master ended a stream.
    Closed {
        /// The stream.
        conn: ConnId,
    },
    /// Master → scheduler: the HTTP response to a call.
    Answered {
        /// The receiver.
        incarnation: Incarnation,
        /// The connection the call belonged to.
        generation: u64,
        /// What it said.
        response: CallResponse,
    },
}

/// Messages in flight.
#[derive(Debug, Default)]
pub struct Net {
    in_flight: BTreeMap<(Duration, u64), Msg>,
    seq: u64,
    /// When the last event sent on each stream arrives: later ones may
    /// not overtake it.
    stream_tail: HashMap<ConnId, Duration>,
    /// When each scheduler process's last ordered call arrives.
    call_tail: HashMap<Incarnation, Duration>,
}

impl Net {
    /// Sends `msg`, to arrive at `at`; events keep their stream's order.
    pub fn send(&mut self, at: Duration, msg: Msg) {
        let at = match &msg {
            Msg::Event { conn, .. } | Msg::Closed { conn } => {
                let tail = self.stream_tail.entry(*conn).or_default();
                *tail = (*tail).max(at);
                *tail
            }
            Msg::Call {
                incarnation, call, ..
            } if call.r#type != Some(call::Type::Acknowledge as i32) => {
                let tail = self.call_tail.entry(*incarnation).or_default();
                *tail = (*tail).max(at);
                *tail
            }
            _ => at,
        };
        self.seq += 1;
        self.in_flight.insert((at, self.seq), msg);
    }

    /// When the next message arrives.
    pub fn next_at(&self) -> Option<Duration> {
        self.in_flight.keys().next().map(|(at, _)| *at)
    }

    /// The next message due by `now`.
    pub fn pop_due(&mut self, now: Duration) -> Option<Msg> {
        let (&key, _) = self.in_flight.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.in_flight.remove(&key)
    }

    /// Drops what is addressed to a scheduler process that died.
    pub fn forget_scheduler(&mut self, incarnation: Incarnation, dead_streams: &[ConnId]) {
        self.in_flight.retain(|_, msg| match msg {
            Msg::Subscribed { incarnation: i, .. } | Msg::Answered { incarnation: i, .. } => {
                *i != incarnation
            }
            Msg::Event { conn, .. } | Msg::Closed { conn } => !dead_streams.contains(conn),
            _ => true,
        });
    }

    /// Messages in flight.
    pub fn len(&self) -> usize {
        self.in_flight.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }
}
