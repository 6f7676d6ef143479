//! The master as a pure state machine: frameworks, agents, offers and tasks,
//! advanced by inputs that carry `now` and answered with [`Effect`]s (events
//! to write on a subscription stream, streams to close). It never touches a
//! socket or a clock; `master/driver.rs` feeds it and carries out the effects.
//!
//! ```text
//!             on_subscribe                      on_disconnected
//!  (none) ───────────────► Connected{conn} ─────────────────────► Disconnected{epoch}
//!                            ▲   │ TEARDOWN                          │   │ failover timer
//!                            │   ▼                                   │   ▼
//!                            │  Removed ◄──────────────────────────────  Removed
//!                            └──────────── on_subscribe (same id) ───┘
//! ```
//!
//! Calling contract: feed inputs in the order they happened (`on_subscribe`,
//! `on_call`, `on_disconnected`, fault inputs), call [`Master::on_tick`] no
//! later than [`Master::next_deadline`], and carry out every returned effect
//! in order. Subscriptions are handled in `subscriptions.rs`, allocation and
//! offers in `offers.rs`, calls in `calls.rs`, ACCEPT in `accept.rs`, status
//! updates in `updates.rs` and faults in `faults.rs`; all are `impl Master`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use drover_proto::v1::scheduler::Event;
use drover_proto::v1::{self, framework_info::capability, FrameworkInfo, TaskState};

use super::allocator::Allocator;
use super::events;
use crate::agent::executor_registry::Executors;
use crate::agent::launch::LaunchSpec;
use crate::agent::sim_task::{SimTask, SimTimer};
use crate::agent::{Agent, AgentSpec};
use crate::deadline::after;
use crate::fixed_hash::{HashMap, HashSet};
use crate::ids::IdGen;
use crate::resources::Resources;

/// The shortest period of any repeating timer, so a zero interval from a
/// flag cannot make [`Master::on_tick`] loop forever at one instant.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

pub use crate::ids::{ConnId, TaskKey};

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
        event: Box<drover_proto::v1::executor::Event>,
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
        }
    }
}

/// A framework's live subscription.
#[derive(Debug, Clone)]
pub struct Connection {
    pub conn: ConnId,
    pub stream_id: String,
}

/// A framework the master knows.
#[derive(Debug)]
pub struct Framework {
    pub id: String,
    pub info: FrameworkInfo,
    pub connection: Option<Connection>,
    /// Bumped on every (re)subscription so stale failover timers are ignored.
    pub epoch: u64,
    pub suppressed: HashSet<String>,
    pub tasks: HashSet<String>,
    pub offers: HashSet<String>,
    /// Offered plus used cpus and mem, for the allocator's fair share.
    pub allocated_cpus: f64,
    pub allocated_mem: f64,
    pub registered_at: Instant,
}

impl Framework {
    /// The roles the framework may be offered resources for.
    pub fn roles(&self) -> Vec<String> {
        roles_of(&self.info)
    }

    pub fn has_capability(&self, cap: capability::Type) -> bool {
        self.info
            .capabilities
            .iter()
            .any(|c| c.r#type == Some(cap as i32))
    }

    pub fn is_partition_aware(&self) -> bool {
        self.has_capability(capability::Type::PartitionAware)
    }
}

/// The roles in a FrameworkInfo: `roles` for MULTI_ROLE frameworks, else `role` (default `*`).
pub fn roles_of(info: &FrameworkInfo) -> Vec<String> {
    let multi = info
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(capability::Type::MultiRole as i32));
    if multi {
        info.roles.clone()
    } else {
        #[allow(deprecated)]
        let role = info.role.clone();
        vec![role.unwrap_or_else(|| "*".to_owned())]
    }
}

/// An outstanding offer.
#[derive(Debug, Clone)]
pub struct OfferRecord {
    pub id: String,
    pub framework: String,
    pub agent: usize,
    pub role: String,
    pub resources: Resources,
    pub proto: v1::Offer,
}

/// A task the master knows (live, or terminal but not yet acknowledged).
#[derive(Debug)]
pub struct Task {
    pub framework: String,
    pub task_id: v1::TaskId,
    pub name: String,
    /// The custom or default executor, if the task has one (boxed: rare and large).
    pub executor: Option<Box<v1::ExecutorInfo>>,
    pub agent: usize,
    pub resources: Resources,
    /// The latest state the agent reported (STAGING until the first), with
    /// its health and time. Only this much is kept, not whole TaskInfos and
    /// TaskStatuses, so 100,000 tasks fit in a few hundred MiB.
    pub state: TaskState,
    pub healthy: Option<bool>,
    pub updated_at: f64,
    /// Reliable updates not yet acknowledged; the head is the one in flight.
    pub pending: VecDeque<v1::TaskStatus>,
    pub retry_backoff: Duration,
    /// The head's retry timer, cancelled when it is acknowledged.
    pub retry_timer: Option<u64>,
    /// How the task runs: simulated, or by a real executor.
    pub runner: Runner,
    /// A KILL that arrived while the agent was away, applied when it returns.
    pub kill_pending: Option<Option<Duration>>,
    /// Whether the task's agent is currently failed.
    pub unreachable: bool,
}

impl Task {
    pub fn state(&self) -> TaskState {
        self.state
    }
}

/// How a task runs on its agent.
#[derive(Debug)]
pub enum Runner {
    /// In the master, from `sim_task` (a simulated agent).
    Simulated(SimTask),
    /// By a real executor process (a real agent); its lifecycle comes from
    /// the executor's updates.
    Real,
}

/// A framework that has been removed (torn down or failed over for good).
#[derive(Debug)]
pub struct CompletedFramework {
    pub info: FrameworkInfo,
    pub tasks: Vec<v1::TaskStatus>,
}

/// Timers, kept as data and fired by [`Master::on_tick`].
#[derive(Debug, Clone, PartialEq)]
pub enum Timer {
    Allocate,
    Heartbeat {
        framework: String,
        conn: ConnId,
    },
    Failover {
        framework: String,
        epoch: u64,
    },
    OfferTimeout {
        offer: String,
    },
    Sim {
        task: TaskKey,
        timer: SimTimer,
    },
    UpdateRetry {
        task: TaskKey,
        uuid: bytes::Bytes,
    },
    /// A status update held back by the delay fault.
    DelayedSend {
        task: TaskKey,
        uuid: bytes::Bytes,
    },
    /// An executor's shutdown grace period ended.
    ExecutorKill {
        container_id: String,
    },
}

/// Status-update faults injected through `/sim` (see `faults.rs`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateFaults {
    /// Lose the next N first transmissions (retries still deliver them).
    pub drop_next: u32,
    /// Lose each first transmission with this probability.
    pub drop_probability: f64,
    /// Hold each first transmission back this long.
    pub delay: Option<Duration>,
}

/// Counters for `/metrics` and the benchmark.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    pub calls: HashMap<&'static str, u64>,
    pub offers_sent: u64,
    pub updates_sent: u64,
    pub events_sent: u64,
    pub tasks_launched: u64,
}

/// The master.
#[derive(Debug)]
pub struct Master {
    pub(crate) config: MasterConfig,
    pub(crate) ids: IdGen,
    pub(crate) started_at: Instant,
    pub(crate) started_unix: f64,
    pub(crate) frameworks: HashMap<String, Framework>,
    pub(crate) completed: HashMap<String, CompletedFramework>,
    pub(crate) agents: Vec<Agent>,
    pub(crate) agent_index: HashMap<String, usize>,
    pub(crate) offers: HashMap<String, OfferRecord>,
    pub(crate) tasks: HashMap<TaskKey, Task>,
    pub(crate) allocator: Allocator,
    pub(crate) update_faults: UpdateFaults,
    pub(crate) counters: Counters,
    pub(crate) executors: Executors,
    timers: BinaryHeap<Reverse<(Instant, u64)>>,
    timer_data: HashMap<u64, Timer>,
    next_timer: u64,
    allocation_armed_at: Option<Instant>,
}

impl Master {
    /// A master with the given agents; `now` and `now_unix` (seconds since
    /// the epoch at `now`) anchor every timestamp it writes.
    pub fn new(config: MasterConfig, agents: Vec<AgentSpec>, now: Instant, now_unix: f64) -> Self {
        let mut master = Master {
            ids: IdGen::new(config.seed),
            config,
            started_at: now,
            started_unix: now_unix,
            frameworks: HashMap::default(),
            completed: HashMap::default(),
            agents: Vec::new(),
            agent_index: HashMap::default(),
            offers: HashMap::default(),
            tasks: HashMap::default(),
            allocator: Allocator::default(),
            update_faults: UpdateFaults::default(),
            counters: Counters::default(),
            executors: Executors::default(),
            timers: BinaryHeap::new(),
            timer_data: HashMap::default(),
            next_timer: 0,
            allocation_armed_at: None,
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
    pub(crate) fn unix(&self, now: Instant) -> f64 {
        self.started_unix + now.saturating_duration_since(self.started_at).as_secs_f64()
    }

    /// Adds agents, each with a fresh id; returns their ids.
    pub fn add_agents(&mut self, specs: Vec<AgentSpec>, now: Instant) -> Vec<String> {
        let mut ids = Vec::with_capacity(specs.len());
        for spec in specs {
            let id = self.ids.agent();
            self.agent_index.insert(id.clone(), self.agents.len());
            self.agents.push(Agent::new(id.clone(), spec, now));
            ids.push(id);
        }
        self.allocate_soon(now);
        ids
    }

    pub(crate) fn arm(&mut self, at: Instant, timer: Timer) -> u64 {
        let seq = self.next_timer;
        self.next_timer += 1;
        self.timers.push(Reverse((at, seq)));
        self.timer_data.insert(seq, timer);
        seq
    }

    /// Cancels an armed timer (its heap slot stays, empty, until due).
    pub(crate) fn disarm(&mut self, seq: u64) {
        self.timer_data.remove(&seq);
    }

    /// Runs an allocation cycle at `now` rather than at the next interval
    /// (Mesos also allocates when a framework or agent is added or revives).
    pub(crate) fn allocate_soon(&mut self, now: Instant) {
        if self.allocation_armed_at.is_none_or(|t| t > now) {
            self.allocation_armed_at = Some(now);
            self.arm(now, Timer::Allocate);
        }
    }

    /// When [`Master::on_tick`] must next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Fires every timer due at `now`.
    pub fn on_tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut effects = Vec::new();
        while let Some(Reverse((at, seq))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(timer) = self.timer_data.remove(&seq) else {
                continue;
            };
            self.fire(timer, now, &mut effects);
        }
        effects
    }

    fn fire(&mut self, timer: Timer, now: Instant, effects: &mut Vec<Effect>) {
        match timer {
            Timer::Allocate => {
                // Only the earliest armed cycle runs; it re-arms the periodic one.
                if self.allocation_armed_at.is_some_and(|t| t > now) {
                    return;
                }
                let next = after(now, self.config.allocation_interval.max(MIN_INTERVAL));
                self.allocation_armed_at = Some(next);
                self.arm(next, Timer::Allocate);
                self.allocate(now, effects);
            }
            Timer::Heartbeat { framework, conn } => {
                let live = self
                    .frameworks
                    .get(&framework)
                    .and_then(|f| f.connection.as_ref())
                    .is_some_and(|c| c.conn == conn);
                if live {
                    effects.push(Effect::Send {
                        conn,
                        event: Box::new(events::heartbeat()),
                    });
                    self.arm(
                        after(now, self.config.heartbeat_interval.max(MIN_INTERVAL)),
                        Timer::Heartbeat { framework, conn },
                    );
                }
            }
            Timer::Failover { framework, epoch } => {
                let expired = self
                    .frameworks
                    .get(&framework)
                    .is_some_and(|f| f.epoch == epoch && f.connection.is_none());
                if expired {
                    self.remove_framework(&framework, now, effects);
                }
            }
            Timer::OfferTimeout { offer } => {
                if self.offers.contains_key(&offer) {
                    self.rescind_offer(&offer, effects);
                }
            }
            Timer::Sim { task, timer } => {
                if let Some(Runner::Simulated(sim)) =
                    self.tasks.get_mut(&task).map(|t| &mut t.runner)
                {
                    let actions = sim.on_timer(timer, now);
                    self.apply_sim(&task, actions, now, effects);
                }
            }
            Timer::ExecutorKill { container_id } => {
                if self.executors.is_live_container(&container_id) {
                    effects.push(Effect::KillExecutor { container_id });
                }
            }
            Timer::UpdateRetry { task, uuid } => self.retry_update(&task, &uuid, now, effects),
            Timer::DelayedSend { task, uuid } => self.send_head(&task, &uuid, effects),
        }
    }

    pub(crate) fn count(&mut self, call: &'static str) {
        *self.counters.calls.entry(call).or_default() += 1;
    }

    /// Read access for `/state`, `/metrics` and tests.
    pub fn frameworks(&self) -> impl Iterator<Item = &Framework> {
        self.frameworks.values()
    }

    pub fn completed_frameworks(&self) -> impl Iterator<Item = (&String, &CompletedFramework)> {
        self.completed.iter()
    }

    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    pub fn tasks(&self) -> impl Iterator<Item = &Task> {
        self.tasks.values()
    }

    pub fn offers(&self) -> impl Iterator<Item = &OfferRecord> {
        self.offers.values()
    }

    /// The executors of the real agents.
    pub fn executors(&self) -> &Executors {
        &self.executors
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn started_unix(&self) -> f64 {
        self.started_unix
    }

    /// The number of pending timers (for the benchmark's memory check).
    pub fn timer_count(&self) -> usize {
        self.timer_data.len()
    }
}
