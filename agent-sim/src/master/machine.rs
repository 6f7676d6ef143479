//! The master as a pure state machine: a composition of parts that each
//! own their state ([`Frameworks`], [`Offers`], [`Tasks`] with
//! [`StatusUpdates`], [`Executors`], the [`Fleet`] and [`Timers`]),
//! advanced by inputs that carry `now` and answered with [`Effect`]s
//! (events to write on a stream, streams to close, executors to start or
//! kill). It never touches a socket or a clock, and its only randomness is
//! the seeded [`IdGen`]; `master/driver.rs` feeds it and carries out the
//! effects, and a simulation can feed it directly.
//!
//! Calling contract: feed inputs in the order they happened, call
//! [`Master::on_tick`] no later than [`Master::next_deadline`], and carry
//! out every returned effect in order. The inputs:
//! - scheduler API: [`Master::on_subscribe`], [`Master::on_call`] and
//!   [`Master::on_disconnected`] (`subscriptions.rs`, `calls.rs`, `accept.rs`);
//! - executor API and processes: [`Master::on_executor_subscribe`],
//!   [`Master::on_executor_call`], [`Master::on_executor_exited`]
//!   (`real_agents.rs`);
//! - faults: [`Master::on_agent_failed`], [`Master::on_agent_restored`],
//!   [`Master::on_drop_connections`], [`Master::on_update_faults`],
//!   [`Master::on_rescind_offer`], [`Master::on_task_process_killed`],
//!   [`Master::on_executor_endpoint_restart`], and [`Master::add_agents`]
//!   (`faults.rs`);
//! - time: [`Master::on_tick`];
//! - `--state-dir`: [`Master::adopt`] (a takeover) and the journal's
//!   reads [`Master::journal_turn`] and [`Master::journal_snapshot`]
//!   (`takeover.rs`).
//!
//! The same seed and the same inputs at the same instants give the same
//! effects in the same order, in any process: every map the parts iterate
//! hashes with a fixed seed (`fixed_hash.rs`).

use std::time::{Duration, Instant};

use drover_proto::v1;
use drover_proto::v1::scheduler::Event;

use super::events;
use super::frameworks::{CompletedFramework, Framework, Frameworks};
use super::history::{FrameworkHistory, History, HistoryLimits};
use super::maintenance::Maintenance;
use super::offers::{OfferRecord, Offers};
use super::status_updates::{StatusUpdates, UpdateFaults};
use super::tasks::{Task, Tasks};
use super::timers::{Timer, Timers, MIN_INTERVAL};
use crate::agent::executor_registry::Executors;
use crate::agent::fleet::Fleet;
use crate::agent::launch::LaunchSpec;
use crate::agent::{Agent, AgentSpec};
use crate::deadline::after;
use crate::fixed_hash::{HashMap, HashSet};
use crate::ids::{AgentIndex, ConnId, IdGen, TaskKey};

/// What the driver must do for the master.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Write this event on this stream.
    Send { conn: ConnId, event: Box<Event> },
    /// End this stream (the driver drops its sender, which ends the body).
    Close { conn: ConnId },
    /// Write this event on this executor's stream.
    SendExecutor {
        conn: ConnId,
        event: Box<v1::executor::Event>,
    },
    /// Start an executor process on a real agent.
    LaunchExecutor(Box<LaunchSpec>),
    /// Kill an executor's container (its process group and its tasks).
    KillExecutor { container_id: String },
}

/// The master's settings; each default is Mesos' own.
#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Between HEARTBEAT events (Mesos: 15 s, announced in SUBSCRIBED).
    pub heartbeat_interval: Duration,
    /// Between allocation cycles (Mesos `--allocation_interval`, 1 s).
    pub allocation_interval: Duration,
    /// Rescind offers older than this (Mesos `--offer_timeout`, unset).
    pub offer_timeout: Option<Duration>,
    /// First retry of an unacknowledged status update (agent: 10 s).
    pub update_retry_min: Duration,
    /// Cap of the retry backoff (agent: 10 min).
    pub update_retry_max: Duration,
    /// If set, the only roles frameworks may use (Mesos `--roles`).
    pub role_whitelist: Option<Vec<String>>,
    /// `MasterInfo` fields.
    pub hostname: String,
    pub ip: std::net::Ipv4Addr,
    pub port: u16,
    /// Reported in `/version` and `MasterInfo.version`; purely numeric
    /// because pymesos parses it with `int()`.
    pub version: String,
    /// Seeds every id and random choice.
    pub seed: u64,
    /// An executor's time between SHUTDOWN and the kill of its container
    /// when its ExecutorInfo sets none (agent `--executor_shutdown_grace_period`, 5 s).
    pub executor_shutdown_grace: Duration,
    /// Completed tasks and executors kept per framework for `/state`.
    pub history: HistoryLimits,
}

impl Default for MasterConfig {
    fn default() -> Self {
        MasterConfig {
            heartbeat_interval: Duration::from_secs(15),
            allocation_interval: Duration::from_secs(1),
            offer_timeout: None,
            update_retry_min: Duration::from_secs(10),
            update_retry_max: Duration::from_secs(600),
            role_whitelist: None,
            hostname: "localhost".into(),
            ip: std::net::Ipv4Addr::LOCALHOST,
            port: 5050,
            version: "1.12.0".into(),
            seed: 0,
            executor_shutdown_grace: Duration::from_secs(5),
            history: HistoryLimits::default(),
        }
    }
}

/// Counters for `/metrics` and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub calls: HashMap<&'static str, u64>,
    /// Operator API calls (`/api/v1`), by type.
    pub operator_calls: HashMap<&'static str, u64>,
    pub offers_sent: u64,
    pub updates_sent: u64,
    pub events_sent: u64,
    pub tasks_launched: u64,
    /// Tasks another master ran, adopted at a takeover (`--state-dir`).
    pub tasks_adopted: u64,
}

/// The master.
#[derive(Debug)]
pub struct Master {
    pub(super) config: MasterConfig,
    pub(super) ids: IdGen,
    pub(super) started_at: Instant,
    started_unix: f64,
    pub(super) fleet: Fleet,
    pub(super) frameworks: Frameworks,
    pub(super) offers: Offers,
    pub(super) tasks: Tasks,
    pub(super) history: History,
    pub(super) updates: StatusUpdates,
    pub(super) executors: Executors,
    pub(super) timers: Timers,
    pub(super) counters: Counters,
    pub(super) maintenance: Maintenance,
    /// With `--state-dir`, while leading: whether the agents changed since
    /// the journal last wrote them; None without a journal.
    pub(super) journal_agents: Option<bool>,
    /// Frameworks adopted at a takeover that have not re-subscribed yet:
    /// their unacknowledged updates go out when they do.
    pub(super) awaiting_resubscription: HashSet<String>,
}

impl Master {
    /// A master with the given agents; `now` and `now_unix` (seconds since
    /// the epoch at `now`) anchor every timestamp it writes.
    pub fn new(config: MasterConfig, agents: Vec<AgentSpec>, now: Instant, now_unix: f64) -> Self {
        let mut master = Master {
            ids: IdGen::new(config.seed),
            updates: StatusUpdates::new(config.update_retry_min, config.update_retry_max),
            history: History::new(config.history),
            config,
            started_at: now,
            started_unix: now_unix,
            fleet: Fleet::default(),
            frameworks: Frameworks::default(),
            offers: Offers::default(),
            tasks: Tasks::default(),
            executors: Executors::default(),
            timers: Timers::default(),
            counters: Counters::default(),
            maintenance: Maintenance::default(),
            journal_agents: None,
            awaiting_resubscription: HashSet::default(),
        };
        master.add_agents(agents, now);
        master
    }

    /// The master's id (also the prefix of every id it mints).
    pub fn master_id(&self) -> &str {
        self.ids.master_id()
    }

    pub fn config(&self) -> &MasterConfig {
        &self.config
    }

    /// Seconds since the epoch at `now`, for `TaskStatus.timestamp`.
    pub(super) fn unix(&self, now: Instant) -> f64 {
        self.started_unix + now.saturating_duration_since(self.started_at).as_secs_f64()
    }

    /// Adds agents, each with a fresh id; returns their ids. An input like
    /// any other (`/sim` adds agents at run time); the next allocation
    /// cycle runs at once.
    pub fn add_agents(&mut self, specs: Vec<AgentSpec>, now: Instant) -> Vec<String> {
        let mut ids = Vec::with_capacity(specs.len());
        for spec in specs {
            let id = self.ids.agent();
            self.fleet.add(id.clone(), spec, self.config.ip.into(), now);
            ids.push(id);
        }
        self.note_agents_changed();
        self.timers.allocate_soon(now);
        ids
    }

    /// With a journal: the fleet changed (agents added, failed, returned),
    /// so the turn writes it again.
    pub(super) fn note_agents_changed(&mut self) {
        if self.journal_agents.is_some() {
            self.journal_agents = Some(true);
        }
    }

    /// When [`Master::on_tick`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.next_deadline()
    }

    /// Fires every timer due at `now`.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        while let Some(timer) = self.timers.pop_due(now) {
            self.fire(timer, now, &mut effects);
        }
        effects
    }

    fn fire(&mut self, timer: Timer, now: Instant, fx: &mut Vec<Effect>) {
        match timer {
            Timer::Allocate => {
                if self
                    .timers
                    .start_allocation(now, self.config.allocation_interval)
                {
                    self.allocate(now, fx);
                }
            }
            Timer::Heartbeat { framework, conn } => {
                if self.frameworks.conn(&framework) == Some(conn) {
                    fx.push(Effect::Send {
                        conn,
                        event: Box::new(events::heartbeat()),
                    });
                    self.timers.arm(
                        after(now, self.config.heartbeat_interval.max(MIN_INTERVAL)),
                        Timer::Heartbeat { framework, conn },
                    );
                }
            }
            Timer::Failover { framework, epoch } => {
                if self.frameworks.failover_expired(&framework, epoch) {
                    self.remove_framework(&framework, now, fx);
                }
            }
            Timer::OfferTimeout { offer } => {
                if self.offers.contains(&offer) {
                    self.rescind_offer(&offer, fx);
                }
            }
            Timer::Sim { task, timer } => {
                if let Some(sim) = self.tasks.simulated_mut(&task) {
                    let actions = sim.on_timer(timer, now);
                    self.apply_sim(&task, actions, now, fx);
                }
            }
            Timer::ExecutorKill { container_id } => {
                if self.executors.is_live_container(&container_id) {
                    fx.push(Effect::KillExecutor { container_id });
                }
            }
            Timer::UpdateRetry { task, uuid } => self.retry_update(&task, &uuid, now, fx),
            Timer::DelayedSend { task, uuid } => self.send_head(&task, &uuid, fx),
        }
    }

    /// One allocation cycle: each framework gets one OFFERS event with
    /// what the allocator granted it.
    fn allocate(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let granted = self.offers.allocate(
            self.frameworks.candidates(),
            &mut self.fleet,
            &mut self.ids,
            &mut self.timers,
            self.config.offer_timeout,
            now,
        );
        for (framework, offers) in granted {
            let Some(conn) = self.frameworks.conn(&framework) else {
                continue;
            };
            self.counters.offers_sent += offers.len() as u64;
            fx.push(Effect::Send {
                conn,
                event: Box::new(events::offers(offers)),
            });
        }
        self.maintenance_cycle(now, fx);
    }

    /// Takes an offer back and tells its framework (RESCIND).
    pub(super) fn rescind_offer(&mut self, offer: &str, fx: &mut Vec<Effect>) {
        if let Some(o) = self.offers.discard(offer, &mut self.fleet) {
            if let Some(conn) = self.frameworks.conn(&o.framework) {
                fx.push(Effect::Send {
                    conn,
                    event: Box::new(events::rescind(offer)),
                });
            }
        }
    }

    /// Sends an event to a framework, if it is connected.
    pub(super) fn send_to(&self, framework: &str, event: Event, fx: &mut Vec<Effect>) {
        if let Some(conn) = self.frameworks.conn(framework) {
            fx.push(Effect::Send {
                conn,
                event: Box::new(event),
            });
        }
    }

    pub(super) fn count(&mut self, call: &'static str) {
        *self.counters.calls.entry(call).or_default() += 1;
    }

    /// The driver wrote an event on a stream.
    pub fn count_event_sent(&mut self) {
        self.counters.events_sent += 1;
    }

    /// The `MasterInfo` in SUBSCRIBED and `/state`.
    pub fn master_info(&self) -> v1::MasterInfo {
        let ip = self.config.ip;
        v1::MasterInfo {
            id: self.master_id().to_owned(),
            ip: u32::from_le_bytes(ip.octets()),
            port: u32::from(self.config.port),
            pid: Some(format!("master@{}:{}", ip, self.config.port)),
            hostname: Some(self.config.hostname.clone()),
            version: Some(self.config.version.clone()),
            address: Some(v1::Address {
                hostname: Some(self.config.hostname.clone()),
                ip: Some(ip.to_string()),
                port: i32::from(self.config.port),
            }),
            ..Default::default()
        }
    }

    /// Read access for `/state`, `/metrics`, `/sim` and tests; every
    /// iterator is in a fixed order.
    pub fn frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.frameworks.iter()
    }

    pub fn completed_frameworks(&self) -> impl Iterator<Item = (&String, &CompletedFramework)> {
        self.frameworks.completed()
    }

    pub fn agents(&self) -> &[Agent] {
        self.fleet.as_slice()
    }

    /// How many tasks (live, or ended and unacknowledged) are on an agent.
    pub fn tasks_on_agent(&self, agent: AgentIndex) -> usize {
        self.tasks.count_on_agent(agent)
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.iter()
    }

    /// An active framework's completed tasks and executors.
    pub fn history(&self, framework: &str) -> Option<&FrameworkHistory> {
        self.history.of(framework)
    }

    /// How many of a task's status updates wait for an acknowledgement.
    pub fn unacknowledged_updates(&self, framework: &str, task_id: &str) -> usize {
        let key: TaskKey = (framework.to_owned(), task_id.to_owned());
        self.updates.unacknowledged(&key)
    }

    pub fn offers(&self) -> impl Iterator<Item = &OfferRecord> {
        self.offers.iter()
    }

    /// The executors of the real agents.
    pub fn executors(&self) -> &Executors {
        &self.executors
    }

    /// How status updates are being lost or delayed.
    pub fn update_faults(&self) -> &UpdateFaults {
        self.updates.faults()
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn started_unix(&self) -> f64 {
        self.started_unix
    }

    /// The number of pending timers (for the benchmark's memory check).
    pub fn timer_count(&self) -> usize {
        self.timers.len()
    }
}
