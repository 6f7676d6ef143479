//! The framework's subscription to the Mesos master as a pure state machine.
//!
//! It decides *when* to subscribe, to *which* master, what every call must
//! carry (`framework_id`, `Mesos-Stream-Id`), and when a connection is dead;
//! it never opens a socket, reads the clock or draws a random number of its
//! own. [`super::driver`] owns the sockets and feeds it. What it delivers
//! to the engine is typed: [`SessionEvent`], the stream's events translated
//! by [`super::events`].
//!
//! ```text
//!            start / retry_at reached
//!  Disconnected ───────────────────────▶ Connecting{master}
//!     ▲   ▲                                 │ 200 + Mesos-Stream-Id
//!     │   │ 503, error, timeout             ▼        307 Location
//!     │   └──────────────────────────── Subscribing{stream_id} ──▶ Connecting{leader}
//!     │                                      │ SUBSCRIBED event
//!     │ stream closed, heartbeat lost,       ▼               SUBSCRIBED for another
//!     └───── ERROR, 307/403 on a call ── Subscribed{...}    framework id ──▶ Stopped
//! ```
//!
//! (`Subscribed{framework_id, stream_id, heartbeat_deadline}`; a SUBSCRIBED
//! naming a framework other than the stored one moves `Subscribing` to
//! `Stopped`, for good.)
//!
//! Calling contract:
//! - Call [`Session::on_start`] once, then carry out the returned actions in
//!   order.
//! - Every connection the driver opens for an [`Action::Connect`] is tagged
//!   with its `generation`; report its response, events and end with that
//!   tag. Reports from an older generation are ignored, so a driver never
//!   has to worry about a connection it has already been told to close.
//! - Call [`Session::on_tick`] no later than [`Session::next_deadline`].
//! - [`Action::Stop`] ends the subscription for good (the session is
//!   [`State::Stopped`] and does nothing more): the driver stops, and the
//!   scheduler with it, reporting the error.
//! - Calls for the master go through [`Session::on_call`]; while not
//!   subscribed they are dropped, as Mesos itself would reject them with 403
//!   (reference 3.7): reconciliation after the next SUBSCRIBED closes the gap.
//!
//! - With a master detector, [`Session::on_leader_detected`] names the
//!   leading master whenever it changes; it replaces the list.
//!
//! Mesos behaviours matched: re-subscription reuses the framework id (3.3);
//! the stream is dead after 5 missed heartbeats (3.6); `Framework has been
//! removed` means the id can never subscribe again, so a new framework is
//! registered and the old one's tasks are gone (3.4.1, 3.7).
//!
//! A bad master is contained: a SUBSCRIBE must reach its SUBSCRIBED within
//! [`SessionConfig::subscribe_timeout`], an announced heartbeat interval
//! counts for at most [`SessionConfig::max_heartbeat_interval`], and a
//! SUBSCRIBED for a framework id other than the one we subscribed with
//! stops the session ([`SessionError::FrameworkIdChanged`]).

mod error;

pub use error::SessionError;

use super::backoff::Backoff;
use super::events::{self, SessionEvent};
use drover_proto::v1::scheduler::{event, Call, Event};
use drover_proto::v1::{FrameworkId, FrameworkInfo};
use rand::rngs::SmallRng;
use std::time::{Duration, Instant};

/// Where SUBSCRIBE and the calls are posted: a full URL such as
/// `http://master:5050/api/v1/scheduler`.
pub type Endpoint = http::Uri;

/// The `Mesos-Stream-Id` the master gave this subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId(pub String);

/// How the session behaves; every bound has a documented default.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Masters to try, in order; a redirect may lead to one not listed.
    pub masters: Vec<Endpoint>,
    /// The FrameworkInfo to subscribe with; its `id` is filled in by the
    /// session.
    pub framework_info: FrameworkInfo,
    /// Re-subscription backoff.
    pub backoff: Backoff,
    /// Heartbeats that may be missed before the stream is considered dead.
    /// Default 5, the Mesos recommendation (reference 3.6).
    pub heartbeat_misses: u32,
    /// Heartbeat interval assumed when SUBSCRIBED does not announce one.
    /// Default 15 s, the value every Mesos master uses.
    pub default_heartbeat_interval: Duration,
    /// The longest announced heartbeat interval taken at its word. Default
    /// 60 s, four times what every Mesos master announces: a master
    /// announcing more (or an absurd value) could otherwise hold a silent
    /// stream open for as long as it likes.
    pub max_heartbeat_interval: Duration,
    /// How long a SUBSCRIBE may go without its SUBSCRIBED event (no HTTP
    /// response, or a 200 and a silent stream). Default 15 s, one heartbeat
    /// interval: a Mesos master writes SUBSCRIBED as the stream's first
    /// record, with the 200 (master.cpp, `Master::_subscribe`), so a
    /// stream silent that long is not coming; the next master is tried,
    /// after the backoff. (It was 75 s, and a master that accepted the
    /// SUBSCRIBE and wrote nothing held the scheduler that long.)
    pub subscribe_timeout: Duration,
}

impl SessionConfig {
    /// A configuration with the documented defaults.
    pub fn new(masters: Vec<Endpoint>, framework_info: FrameworkInfo) -> Self {
        SessionConfig {
            masters,
            framework_info,
            backoff: Backoff::default(),
            heartbeat_misses: 5,
            default_heartbeat_interval: Duration::from_secs(15),
            max_heartbeat_interval: Duration::from_secs(60),
            subscribe_timeout: Duration::from_secs(15),
        }
    }
}

/// Where the subscription stands.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// No connection; the next attempt is number `attempt` at `retry_at`.
    Disconnected {
        /// Failed attempts since the last successful subscription.
        attempt: u32,
        /// When to connect again.
        retry_at: Instant,
    },
    /// SUBSCRIBE posted, waiting for the HTTP response.
    Connecting {
        /// The master the SUBSCRIBE went to.
        master: Endpoint,
        /// Tag of the connection.
        generation: u64,
        /// When the SUBSCRIBE was posted.
        since: Instant,
        /// Failed attempts so far, kept for the backoff if this one fails.
        attempt: u32,
    },
    /// 200 received, waiting for the SUBSCRIBED event.
    Subscribing {
        /// The master streaming to us.
        master: Endpoint,
        /// Tag of the connection.
        generation: u64,
        /// The stream id from the response headers.
        stream_id: StreamId,
        /// When the SUBSCRIBE was posted.
        since: Instant,
        /// Failed attempts so far.
        attempt: u32,
    },
    /// SUBSCRIBED received: calls may be sent.
    Subscribed {
        /// The leading master.
        master: Endpoint,
        /// Tag of the connection.
        generation: u64,
        /// The framework id the master confirmed.
        framework_id: FrameworkId,
        /// The stream id every call must carry.
        stream_id: StreamId,
        /// The stream is dead if nothing arrives before this.
        heartbeat_deadline: Instant,
        /// Time allowed between events: misses × interval.
        heartbeat_window: Duration,
    },
    /// The master answered for another framework: nothing more is done
    /// (see [`Action::Stop`]).
    Stopped,
}

/// What the HTTP response to a SUBSCRIBE said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscribeResponse {
    /// 200: the event stream follows.
    Streaming(StreamId),
    /// 307 to the leading master (Location already resolved to a URL).
    Redirect(Endpoint),
    /// Anything else, or a failed connection; `status` 0 for the latter.
    Failed {
        /// HTTP status, 0 when there was no response.
        status: u16,
        /// The response body or the I/O error, for the log.
        detail: String,
    },
}

/// What the HTTP response to a non-SUBSCRIBE call said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallResponse {
    /// 202 or 200.
    Accepted,
    /// 307: the master is no longer the leader.
    Redirect(Endpoint),
    /// 403: the master thinks we are not subscribed (our stream is gone).
    NotSubscribed,
    /// Any other answer (400 ...): the call was refused; nothing to do but log.
    Rejected {
        /// HTTP status, 0 when there was no response.
        status: u16,
        /// The response body or the I/O error.
        detail: String,
    },
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Open a new connection to `master` and post this SUBSCRIBE on it.
    Connect {
        /// Where to post.
        master: Endpoint,
        /// Tag for every report about this connection.
        generation: u64,
        /// The SUBSCRIBE call.
        call: Box<Call>,
    },
    /// Close the connection with this tag (if still open).
    Close {
        /// The connection.
        generation: u64,
        /// Why, for the log.
        reason: &'static str,
    },
    /// Post this call on a connection other than the subscription's.
    Send {
        /// Where to post.
        master: Endpoint,
        /// The `Mesos-Stream-Id` header.
        stream_id: StreamId,
        /// The connection the call belongs to, for its response.
        generation: u64,
        /// The call, with `framework_id` set.
        call: Box<Call>,
    },
    /// Hand this to the engine.
    Deliver(SessionEvent),
    /// Stop for good, reporting this: going on would be wrong (the
    /// scheduler exits non-zero). The session is [`State::Stopped`].
    Stop(SessionError),
}

/// The subscription state machine. See the module doc for the contract.
pub struct Session {
    config: SessionConfig,
    state: State,
    framework_id: Option<FrameworkId>,
    next_master: usize,
    /// The master a SUBSCRIBE was redirected to, when the session waits
    /// before following it (a redirect after a redirect): the next attempt
    /// goes there rather than to the next master in the list.
    follow: Option<Endpoint>,
    /// SUBSCRIBEs answered by a redirect since the last other answer.
    redirects_in_a_row: u32,
    generation: u64,
    rng: SmallRng,
    reconnects: u64,
}

impl Session {
    /// A session that will reuse `framework_id` (from the store) if given.
    /// `rng` drives the backoff jitter; seed it for reproducible tests.
    pub fn new(
        config: SessionConfig,
        framework_id: Option<FrameworkId>,
        rng: SmallRng,
        now: Instant,
    ) -> Self {
        Session {
            config,
            state: State::Disconnected {
                attempt: 0,
                retry_at: now,
            },
            framework_id,
            next_master: 0,
            follow: None,
            redirects_in_a_row: 0,
            generation: 0,
            rng,
            reconnects: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The framework id to subscribe with (None: register a new framework).
    pub fn framework_id(&self) -> Option<&FrameworkId> {
        self.framework_id.as_ref()
    }

    /// Whether calls can be sent now.
    pub fn is_subscribed(&self) -> bool {
        matches!(self.state, State::Subscribed { .. })
    }

    /// How many times a subscription was lost and retried.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// Starts: subscribe to the first master.
    pub fn on_start(&mut self, now: Instant) -> Vec<Action> {
        self.connect(self.pick_master(), 0, now)
    }

    /// When [`Session::on_tick`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.state {
            State::Disconnected { retry_at, .. } => Some(*retry_at),
            State::Connecting { since, .. } | State::Subscribing { since, .. } => {
                Some(*since + self.config.subscribe_timeout)
            }
            State::Subscribed {
                heartbeat_deadline, ..
            } => Some(*heartbeat_deadline),
            State::Stopped => None,
        }
    }

    /// Time passes: retry, or give up on a silent connection.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        match self.state.clone() {
            State::Disconnected { attempt, retry_at } if now >= retry_at => {
                let master = self.follow.take().unwrap_or_else(|| self.pick_master());
                self.connect(master, attempt, now)
            }
            State::Connecting {
                generation,
                since,
                attempt,
                ..
            }
            | State::Subscribing {
                generation,
                since,
                attempt,
                ..
            } if now >= since + self.config.subscribe_timeout => {
                self.fail(generation, attempt, "subscribe timed out", now)
            }
            State::Subscribed {
                generation,
                heartbeat_deadline,
                ..
            } if now >= heartbeat_deadline => self.fail(generation, 0, "heartbeats stopped", now),
            _ => Vec::new(),
        }
    }

    /// The HTTP response to the SUBSCRIBE of connection `generation`.
    pub fn on_subscribe_response(
        &mut self,
        generation: u64,
        response: SubscribeResponse,
        now: Instant,
    ) -> Vec<Action> {
        let State::Connecting {
            master,
            generation: current,
            since,
            attempt,
        } = self.state.clone()
        else {
            return Vec::new();
        };
        if current != generation {
            return Vec::new();
        }
        match response {
            SubscribeResponse::Streaming(stream_id) => {
                self.redirects_in_a_row = 0;
                self.state = State::Subscribing {
                    master,
                    generation,
                    stream_id,
                    since,
                    attempt,
                };
                Vec::new()
            }
            SubscribeResponse::Redirect(leader) => {
                let mut actions = vec![Action::Close {
                    generation,
                    reason: "redirected to the leading master",
                }];
                // The first redirect is followed at once (the usual case: a
                // standby names the leader). A redirect after a redirect
                // waits the backoff: a master restarted while its previous
                // incarnation's znode lives on names itself as the leader,
                // and following at once posted thousands of SUBSCRIBEs a
                // second until that session expired (the chaos suite saw
                // it after master failovers).
                let waits = self.redirects_in_a_row;
                self.redirects_in_a_row = waits.saturating_add(1);
                if waits == 0 {
                    actions.extend(self.connect(leader, attempt, now));
                } else {
                    let delay = self.config.backoff.delay(waits - 1, &mut self.rng);
                    self.follow = Some(leader);
                    self.state = State::Disconnected {
                        attempt,
                        retry_at: now + delay,
                    };
                }
                actions
            }
            SubscribeResponse::Failed { .. } => {
                self.fail(generation, attempt, "subscribe refused", now)
            }
        }
    }

    /// An event decoded from the stream of connection `generation`.
    pub fn on_event(&mut self, generation: u64, event: Event, now: Instant) -> Vec<Action> {
        if self.current_generation() != Some(generation) {
            return Vec::new();
        }
        let kind = event.r#type.and_then(|t| event::Type::try_from(t).ok());
        // The state is looked at, not cloned: this runs for every event
        // of a burst, and a clone of `Subscribed` copies two strings.
        match (&self.state, kind) {
            (_, Some(event::Type::Error)) => {
                let message = event.error.map(|e| e.message).unwrap_or_default();
                self.on_error_event(generation, &message, now)
            }
            (
                State::Subscribing {
                    master, stream_id, ..
                },
                Some(event::Type::Subscribed),
            ) => {
                let (master, stream_id) = (master.clone(), stream_id.clone());
                let Some(subscribed) = event.subscribed else {
                    return self.fail(generation, 0, "SUBSCRIBED without payload", now);
                };
                self.on_subscribed(master, generation, stream_id, *subscribed, now)
            }
            (State::Subscribed { .. }, kind) => {
                self.refresh_heartbeat(now);
                match kind {
                    // Heartbeats only prove liveness; an unknown type is ignored
                    // as the API asks (reference 3.5).
                    Some(event::Type::Heartbeat) | Some(event::Type::Unknown) | None => Vec::new(),
                    Some(event::Type::Subscribed) => Vec::new(),
                    Some(_) => events::translate(event)
                        .into_iter()
                        .map(Action::Deliver)
                        .collect(),
                }
            }
            // Nothing but SUBSCRIBED (or ERROR) may come first.
            _ => Vec::new(),
        }
    }

    /// The stream of connection `generation` ended (EOF or I/O error).
    pub fn on_stream_closed(&mut self, generation: u64, now: Instant) -> Vec<Action> {
        if self.current_generation() != Some(generation) {
            return Vec::new();
        }
        let attempt = self.current_attempt();
        self.fail(generation, attempt, "stream closed", now)
    }

    /// The engine wants `call` sent. Fills in `framework_id`; dropped when
    /// not subscribed.
    pub fn on_call(&mut self, mut call: Call) -> Vec<Action> {
        let State::Subscribed {
            master,
            generation,
            framework_id,
            stream_id,
            ..
        } = &self.state
        else {
            return Vec::new();
        };
        call.framework_id = Some(framework_id.clone());
        vec![Action::Send {
            master: master.clone(),
            stream_id: stream_id.clone(),
            generation: *generation,
            call: Box::new(call),
        }]
    }

    /// The response to a call sent on behalf of connection `generation`.
    pub fn on_call_response(
        &mut self,
        generation: u64,
        response: CallResponse,
        now: Instant,
    ) -> Vec<Action> {
        if !self.is_subscribed() || self.current_generation() != Some(generation) {
            return Vec::new();
        }
        match response {
            CallResponse::Accepted | CallResponse::Rejected { .. } => Vec::new(),
            // The master lost leadership: follow it at once, like a 307 on SUBSCRIBE.
            CallResponse::Redirect(leader) => {
                let mut actions = self.disconnect(generation, "call redirected to a new leader");
                actions.extend(self.connect(leader, 0, now));
                actions
            }
            CallResponse::NotSubscribed => {
                self.fail(generation, 0, "master says not subscribed", now)
            }
        }
    }

    /// The master detector (`--master zk://`) names `leader` as the
    /// leading master. From now on it is the only master tried. A
    /// connection to another master is closed and the leader subscribed to
    /// at once, with the same framework id (a failover as Mesos' scheduler
    /// library does it on a detector change); a connection to the leader
    /// itself is kept, and a wait between attempts ends now, the backoff
    /// starting over.
    pub fn on_leader_detected(&mut self, leader: Endpoint, now: Instant) -> Vec<Action> {
        self.config.masters = vec![leader.clone()];
        self.next_master = 0;
        match &self.state {
            State::Stopped => Vec::new(),
            // The failures so far were another master's: the new leader
            // starts from the shortest backoff (a Mesos master just
            // elected answers 503 until it has recovered, for a moment).
            State::Disconnected { .. } => {
                self.state = State::Disconnected {
                    attempt: 0,
                    retry_at: now,
                };
                Vec::new()
            }
            State::Connecting {
                master, generation, ..
            }
            | State::Subscribing {
                master, generation, ..
            }
            | State::Subscribed {
                master, generation, ..
            } => {
                if master.authority() == leader.authority() {
                    return Vec::new();
                }
                let generation = *generation;
                let mut actions =
                    self.disconnect(generation, "the detector names another leading master");
                actions.extend(self.connect(leader, 0, now));
                actions
            }
        }
    }

    fn on_subscribed(
        &mut self,
        master: Endpoint,
        generation: u64,
        stream_id: StreamId,
        subscribed: event::Subscribed,
        now: Instant,
    ) -> Vec<Action> {
        let framework_id = subscribed.framework_id;
        if let Some(ours) = &self.framework_id {
            if ours.value != framework_id.value {
                let error = SessionError::FrameworkIdChanged {
                    subscribed_as: ours.value.clone(),
                    answered: framework_id.value,
                };
                self.state = State::Stopped;
                return vec![
                    Action::Close {
                        generation,
                        reason: "SUBSCRIBED for another framework",
                    },
                    Action::Stop(error),
                ];
            }
        }
        let interval = subscribed
            .heartbeat_interval_seconds
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(|s| {
                Duration::from_secs_f64(s.min(self.config.max_heartbeat_interval.as_secs_f64()))
            })
            .unwrap_or(self.config.default_heartbeat_interval);
        let window = interval.saturating_mul(self.config.heartbeat_misses.max(1));
        self.framework_id = Some(framework_id.clone());
        self.state = State::Subscribed {
            master,
            generation,
            framework_id: framework_id.clone(),
            stream_id,
            heartbeat_deadline: now + window,
            heartbeat_window: window,
        };
        vec![Action::Deliver(SessionEvent::Subscribed {
            framework_id: framework_id.value,
        })]
    }

    fn on_error_event(&mut self, generation: u64, message: &str, now: Instant) -> Vec<Action> {
        // Mesos' text for an id that was torn down or timed out (3.3).
        if message.contains("Framework has been removed") {
            let mut actions = self.disconnect(generation, "framework removed");
            if let Some(old) = self.framework_id.take() {
                actions.push(Action::Deliver(SessionEvent::FrameworkRemoved {
                    old: old.value,
                }));
            }
            // A new framework can register at once; there is nothing to wait for.
            self.state = State::Disconnected {
                attempt: 0,
                retry_at: now,
            };
            return actions;
        }
        let attempt = self.current_attempt();
        self.fail(generation, attempt, "ERROR event", now)
    }

    fn refresh_heartbeat(&mut self, now: Instant) {
        if let State::Subscribed {
            heartbeat_deadline,
            heartbeat_window,
            ..
        } = &mut self.state
        {
            *heartbeat_deadline = now + *heartbeat_window;
        }
    }

    fn connect(&mut self, master: Endpoint, attempt: u32, now: Instant) -> Vec<Action> {
        self.generation += 1;
        let generation = self.generation;
        self.state = State::Connecting {
            master: master.clone(),
            generation,
            since: now,
            attempt,
        };
        vec![Action::Connect {
            master,
            generation,
            call: Box::new(self.subscribe_call()),
        }]
    }

    /// Closes the connection and tells the engine if it was subscribed.
    fn disconnect(&mut self, generation: u64, reason: &'static str) -> Vec<Action> {
        let mut actions = vec![Action::Close { generation, reason }];
        if self.is_subscribed() {
            self.reconnects += 1;
            actions.push(Action::Deliver(SessionEvent::Disconnected));
        }
        actions
    }

    /// Closes, then waits out the backoff for attempt `attempt` and moves on
    /// to the next master in the list.
    fn fail(
        &mut self,
        generation: u64,
        attempt: u32,
        reason: &'static str,
        now: Instant,
    ) -> Vec<Action> {
        let actions = self.disconnect(generation, reason);
        self.follow = None;
        self.redirects_in_a_row = 0;
        self.next_master = (self.next_master + 1) % self.config.masters.len().max(1);
        let delay = self.config.backoff.delay(attempt, &mut self.rng);
        self.state = State::Disconnected {
            attempt: attempt.saturating_add(1),
            retry_at: now + delay,
        };
        actions
    }

    fn pick_master(&self) -> Endpoint {
        self.config
            .masters
            .get(self.next_master)
            .cloned()
            .unwrap_or_else(|| Endpoint::from_static("http://127.0.0.1:5050/api/v1/scheduler"))
    }

    fn current_generation(&self) -> Option<u64> {
        match &self.state {
            State::Disconnected { .. } | State::Stopped => None,
            State::Connecting { generation, .. }
            | State::Subscribing { generation, .. }
            | State::Subscribed { generation, .. } => Some(*generation),
        }
    }

    fn current_attempt(&self) -> u32 {
        match &self.state {
            State::Disconnected { attempt, .. }
            | State::Connecting { attempt, .. }
            | State::Subscribing { attempt, .. } => *attempt,
            State::Subscribed { .. } | State::Stopped => 0,
        }
    }

    fn subscribe_call(&self) -> Call {
        super::calls::subscribe(&self.config.framework_info, self.framework_id.clone())
    }
}

#[cfg(test)]
mod tests;
