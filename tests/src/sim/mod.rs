//! A deterministic whole-system simulation. Drover's scheduler (its real
//! session, engine and SQLite store, pumped as the binary pumps them) and
//! agent-sim's master state machine with simulated agents run in one
//! process, on virtual time, under a schedule of faults and user requests
//! drawn from one seeded generator: scheduler crashes at any point and
//! restarts from the store, master failovers, dropped, delayed and
//! duplicated status updates, agents lost and returned, offers rescinded,
//! slow acknowledgements. After every step the invariants users rely on
//! are checked ([`invariants`]). The same seed replays the same run exactly
//! ([`Summary::trace_hash`]); a failing seed reports itself.
//!
//! # Layout
//! - [`net`]: messages in flight between the two.
//! - [`scheduler`]: the scheduler as one process that can crash anywhere.
//! - [`workload`]: what the users ask for.
//! - [`invariants`]: what must hold.
//! - this file: the world, its clock, its faults, and the loop.

pub mod invariants;
pub mod net;
pub mod scheduler;
pub mod workload;

use drover_agent_sim::config::FleetDefaults;
use drover_agent_sim::ids::ConnId;
use drover_agent_sim::master::UpdateFaults;
use drover_agent_sim::master::{validate, Effect, Master, MasterConfig};
use drover_agent_sim::resources::Resources;
use drover_proto::v1::scheduler::{event, Event};
use drover_proto::v1::TaskState;
use drover_scheduler::mesos::session::{CallResponse, StreamId, SubscribeResponse};
use drover_scheduler::mesos::task_info::ExecutorMode;
use drover_scheduler::runner::RunnerConfig;
use invariants::{Checks, Held, Violation};
use net::{Incarnation, Msg, Net};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use scheduler::{Crash, CrashPoint, Output, SchedulerProcess};
use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};
use workload::Workload;

/// How big and how long a simulated run is.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Simulated agents (4 cpus, 8 GiB each).
    pub agents: usize,
    /// How long faults and user requests keep coming.
    pub fault_phase: Duration,
    /// How long the system then has to settle, faults healed.
    pub quiet_phase: Duration,
    /// Mean time between faults.
    pub fault_every: Duration,
    /// Mean time between user requests.
    pub request_every: Duration,
    /// Steps kept for a failure's report.
    pub trail: usize,
    /// Also print each step as it happens (to read beside a log).
    pub echo: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            agents: 4,
            fault_phase: Duration::from_secs(120),
            // Long enough for every retry the system makes: launch and
            // kill retries (30 s), retry backoff (60 s at most), a dropped
            // update's re-send (10 s, doubling).
            quiet_phase: Duration::from_secs(300),
            fault_every: Duration::from_secs(8),
            request_every: Duration::from_secs(4),
            trail: 60,
            echo: false,
        }
    }
}

/// What a run that held did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The seed.
    pub seed: u64,
    /// Steps taken.
    pub steps: u64,
    /// A hash of every message delivered, in order, with its time: equal
    /// for two runs of one seed.
    pub trace_hash: u64,
    /// Faults injected, by kind.
    pub faults: BTreeMap<&'static str, u32>,
    /// Tasks launched.
    pub launched: usize,
}

/// A run whose invariant did not hold.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The seed: `DROVER_SIM_SEED=<seed>` replays it.
    pub seed: u64,
    /// What did not hold.
    pub violation: Violation,
    /// When (virtual time).
    pub at: Duration,
    /// The last steps before it.
    pub trail: Vec<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "seed {} broke \"{}\" at {:.3} s: {}",
            self.seed,
            self.violation.invariant,
            self.at.as_secs_f64(),
            self.violation.detail
        )?;
        writeln!(
            f,
            "replay: DROVER_SIM_SEED={} cargo test -p drover-tests --test simulation -- --nocapture",
            self.seed
        )?;
        writeln!(f, "last steps:")?;
        for line in &self.trail {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

/// Runs the simulation for `seed`.
pub fn run(seed: u64, config: &SimConfig) -> Result<Summary, Failure> {
    quiet_crashes();
    let mut world = World::new(seed, config);
    match world.run() {
        Ok(()) => Ok(world.summary()),
        Err(violation) => Err(Failure {
            seed,
            violation,
            at: world.now,
            trail: world.trail.iter().cloned().collect(),
        }),
    }
}

/// Simulated crashes are panics the world catches; they are not reported.
fn quiet_crashes() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<Crash>().is_none() {
                default(info);
            }
        }));
    });
}

/// The wall clock at virtual time zero.
const WALL0: i64 = 1_700_000_000_000;

struct World {
    seed: u64,
    config: SimConfig,
    rng: SmallRng,
    t0: Instant,
    now: Duration,
    master: Master,
    dir: tempfile::TempDir,
    process: Option<SchedulerProcess>,
    incarnation: Incarnation,
    restart_at: Option<Duration>,
    /// Streams: master connection → (process, session generation).
    streams: BTreeMap<ConnId, (Incarnation, u64)>,
    next_conn: ConnId,
    net: Net,
    workload: Workload,
    checks: Checks,
    next_fault: Duration,
    next_request: Duration,
    /// Agents taken away, and when they return.
    away: BTreeMap<String, Duration>,
    /// When the update faults set last are lifted.
    update_faults_until: Option<Duration>,
    /// UPDATE events still to be delivered twice.
    duplicate_updates: u32,
    /// Acknowledgements are slow until then, by this much.
    slow_acks: Option<(Duration, Duration)>,
    /// What the engine held when the process died, if it died between
    /// inputs; the recovered one must hold the same.
    held_at_crash: Option<Option<Held>>,
    steps: u64,
    trace: DefaultHasher,
    trail: VecDeque<String>,
    faults: BTreeMap<&'static str, u32>,
}

impl World {
    fn new(seed: u64, config: &SimConfig) -> World {
        let t0 = Instant::now();
        let fleet = FleetDefaults {
            resources: Resources::parse("cpus:4;mem:8192;disk:65536;ports:[31000-32000]")
                .expect("the simulation's agent resources parse"),
            attributes: Vec::new(),
            zones: vec!["a".into(), "b".into()],
        };
        let master_config = MasterConfig {
            seed,
            ..MasterConfig::default()
        };
        let master = Master::new(
            master_config,
            fleet.specs(0, config.agents),
            t0,
            WALL0 as f64 / 1000.0,
        );
        // A tmpfs when there is one: a seed commits hundreds of times, and
        // fsync there costs nothing (the crashes are simulated, not real).
        let dir = tempfile::tempdir_in("/dev/shm")
            .or_else(|_| tempfile::tempdir())
            .expect("a temporary directory");
        let mut world = World {
            seed,
            config: config.clone(),
            rng: SmallRng::seed_from_u64(seed),
            t0,
            now: Duration::ZERO,
            master,
            dir,
            process: None,
            incarnation: 0,
            restart_at: Some(Duration::ZERO),
            streams: BTreeMap::new(),
            next_conn: 1,
            net: Net::default(),
            workload: Workload::default(),
            checks: Checks::default(),
            next_fault: Duration::ZERO,
            next_request: Duration::ZERO,
            away: BTreeMap::new(),
            update_faults_until: None,
            duplicate_updates: 0,
            slow_acks: None,
            held_at_crash: None,
            steps: 0,
            trace: DefaultHasher::new(),
            trail: VecDeque::new(),
            faults: BTreeMap::new(),
        };
        world.next_fault = world.exponential(config.fault_every);
        world.next_request = world.exponential(config.request_every) / 4;
        world
    }

    fn summary(&self) -> Summary {
        Summary {
            seed: self.seed,
            steps: self.steps,
            trace_hash: self.trace.finish(),
            faults: self.faults.clone(),
            launched: self.checks.launched.len(),
        }
    }

    fn exponential(&mut self, mean: Duration) -> Duration {
        let u: f64 = self.rng.random_range(1e-6..1.0);
        mean.mul_f64(-u.ln()).min(mean * 8)
    }

    fn latency(&mut self) -> Duration {
        Duration::from_micros(self.rng.random_range(200..3000))
    }

    fn note(&mut self, what: String) {
        what.hash(&mut self.trace);
        self.now.hash(&mut self.trace);
        if self.trail.len() == self.config.trail {
            self.trail.pop_front();
        }
        let line = format!("{:>9.3} s  {what}", self.now.as_secs_f64());
        if self.config.echo {
            eprintln!("sim {line}");
        }
        self.trail.push_back(line);
    }

    fn run(&mut self) -> Result<(), Violation> {
        let heal_at = self.config.fault_phase;
        let end = heal_at + self.config.quiet_phase;
        let mut healed = false;
        loop {
            if !healed && self.now >= heal_at {
                self.heal();
                healed = true;
            }
            let next = self.next_time(healed, heal_at).min(end);
            if next >= end && self.now >= end {
                break;
            }
            self.now = next.max(self.now);
            self.step(healed)?;
            self.steps += 1;
            if self.now >= end {
                break;
            }
        }
        let reader = self
            .process
            .as_ref()
            .map(|p| p.reader())
            .expect("the scheduler runs once healed");
        self.checks.settled(&self.master, reader, &self.workload)
    }

    /// The time of the next thing to happen.
    fn next_time(&self, healed: bool, heal_at: Duration) -> Duration {
        let master = self
            .master
            .next_deadline()
            .map(|at| at.saturating_duration_since(self.t0));
        let process = self.process.as_ref().and_then(|p| p.next_deadline());
        let mut times = vec![self.net.next_at(), master, process, self.restart_at];
        if !healed {
            times.extend([
                Some(self.next_fault),
                Some(self.next_request),
                Some(heal_at),
            ]);
        }
        times.extend(self.away.values().map(|at| Some(*at)));
        times.push(self.update_faults_until);
        times
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(self.now + Duration::from_secs(1))
    }

    /// Everything due now, in a fixed order.
    fn step(&mut self, healed: bool) -> Result<(), Violation> {
        while let Some(msg) = self.net.pop_due(self.now) {
            self.deliver(msg)?;
            self.check()?;
        }
        let instant = self.t0 + self.now;
        if self.master.next_deadline().is_some_and(|d| d <= instant) {
            let fx = self.master.on_tick(instant);
            self.master_effects(fx);
        }
        if self
            .process
            .as_ref()
            .and_then(SchedulerProcess::next_deadline)
            .is_some_and(|d| d <= self.now)
        {
            let now = self.now;
            self.in_process(|p| p.on_tick(now))?;
        }
        if self.restart_at.is_some_and(|at| at <= self.now) {
            self.restart()?;
        }
        self.return_agents();
        if self.update_faults_until.is_some_and(|at| at <= self.now) {
            self.update_faults_until = None;
            self.master.on_update_faults(UpdateFaults::default());
        }
        if !healed && self.now >= self.next_request {
            self.user_request()?;
            self.next_request = self.now + self.exponential(self.config.request_every);
        }
        if !healed && self.now >= self.next_fault {
            self.fault();
            self.next_fault = self.now + self.exponential(self.config.fault_every);
        }
        self.check()
    }

    fn check(&mut self) -> Result<(), Violation> {
        self.checks.tasks(&self.master)?;
        if let Some(p) = &self.process {
            self.checks.registry(p.engine())?;
        }
        Ok(())
    }

    // ----- the master's side ----------------------------------------------

    fn master_effects(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { conn, event } => {
                    let at = self.now + self.latency();
                    let twice = is_update(&event) && self.duplicate_updates > 0;
                    if twice {
                        self.duplicate_updates -= 1;
                        self.net.send(
                            at,
                            Msg::Event {
                                conn,
                                event: event.clone(),
                            },
                        );
                    }
                    self.net.send(at, Msg::Event { conn, event });
                }
                Effect::Close { conn } => {
                    let at = self.now + self.latency();
                    self.net.send(at, Msg::Closed { conn });
                }
                // Simulated agents only: no executors run.
                _ => {}
            }
        }
    }

    fn at_master(&mut self, msg: Msg) {
        let instant = self.t0 + self.now;
        match msg {
            Msg::Subscribe {
                incarnation,
                generation,
                subscribe,
            } => {
                let conn = self.next_conn;
                self.next_conn += 1;
                self.streams.insert(conn, (incarnation, generation));
                let (stream_id, fx) = self.master.on_subscribe(conn, *subscribe, instant);
                self.note(format!("master: SUBSCRIBE on stream {conn}"));
                let at = self.now + self.latency();
                self.net.send(
                    at,
                    Msg::Subscribed {
                        incarnation,
                        generation,
                        response: SubscribeResponse::Streaming(StreamId(stream_id)),
                    },
                );
                // The stream's events follow its response.
                self.master_effects_after(fx, at);
            }
            Msg::Call {
                incarnation,
                generation,
                stream_id,
                call,
            } => {
                let kind = call_name(&call);
                let response = match validate::call(&call) {
                    Err(why) => CallResponse::Rejected {
                        status: 400,
                        detail: why,
                    },
                    Ok(_) => {
                        let (result, fx) = self.master.on_call(*call, Some(&stream_id), instant);
                        self.master_effects(fx);
                        match result {
                            Ok(_) => CallResponse::Accepted,
                            Err(e) if e.status() == 403 => CallResponse::NotSubscribed,
                            Err(e) => CallResponse::Rejected {
                                status: e.status(),
                                detail: e.to_string(),
                            },
                        }
                    }
                };
                self.note(format!("master: {kind} -> {response:?}"));
                let at = self.now + self.latency();
                self.net.send(
                    at,
                    Msg::Answered {
                        incarnation,
                        generation,
                        response,
                    },
                );
            }
            Msg::Hangup { conn } => {
                self.note(format!("master: stream {conn} hung up"));
                let fx = self.master.on_disconnected(conn, instant);
                self.master_effects(fx);
            }
            _ => {}
        }
    }

    /// Effects of a SUBSCRIBE, none delivered before `after`.
    fn master_effects_after(&mut self, effects: Vec<Effect>, after: Duration) {
        let now = self.now;
        self.now = after;
        self.master_effects(effects);
        self.now = now;
    }

    // ----- the scheduler's side -------------------------------------------

    fn deliver(&mut self, msg: Msg) -> Result<(), Violation> {
        let target = match &msg {
            Msg::Subscribe { .. } | Msg::Call { .. } | Msg::Hangup { .. } => {
                self.at_master(msg);
                return Ok(());
            }
            Msg::Subscribed {
                incarnation,
                generation,
                ..
            }
            | Msg::Answered {
                incarnation,
                generation,
                ..
            } => Some((*incarnation, *generation)),
            Msg::Event { conn, .. } | Msg::Closed { conn } => self.streams.get(conn).copied(),
        };
        let Some((incarnation, generation)) = target else {
            return Ok(());
        };
        if self.process.as_ref().map(|p| p.incarnation) != Some(incarnation) {
            return Ok(());
        }
        self.note(format!("scheduler: {}", describe(&msg)));
        let now = self.now;
        self.in_process(move |p| p.on_msg(msg, generation, now))
    }

    /// Runs `f` in the scheduler process, then carries out what it
    /// output; a crash inside ends the process.
    fn in_process(
        &mut self,
        f: impl FnOnce(&mut SchedulerProcess) -> Output,
    ) -> Result<(), Violation> {
        match self.run_in_process(f) {
            Some(out) => self.outputs(out),
            None => Ok(()),
        }
    }

    /// Runs `f` in the scheduler process; None if there is none, or it
    /// crashed (and is gone).
    fn run_in_process<T>(&mut self, f: impl FnOnce(&mut SchedulerProcess) -> T) -> Option<T> {
        let process = self.process.as_mut()?;
        match catch_unwind(AssertUnwindSafe(|| f(process))) {
            Ok(value) => Some(value),
            Err(payload) => {
                if payload.downcast_ref::<Crash>().is_none() {
                    std::panic::resume_unwind(payload);
                }
                self.died(false);
                None
            }
        }
    }

    fn outputs(&mut self, out: Output) -> Result<(), Violation> {
        for task in &out.learned {
            self.checks.learned_finished(task, &self.workload);
        }
        if let Some(task) = out.unstored_acks.first() {
            return Err(Violation {
                invariant: "no update acknowledged before it was stored",
                detail: format!("an update of {task} was acknowledged before it was stored"),
            });
        }
        self.checks.launched(&out.launched)?;
        for msg in out.msgs {
            let mut at = self.now + self.latency();
            if let (Msg::Call { call, .. }, Some((until, by))) = (&msg, self.slow_acks) {
                if call_name(call) == "ACKNOWLEDGE" && self.now < until {
                    at += by;
                }
            }
            self.net.send(at, msg);
        }
        let incarnation = self.incarnation;
        for generation in out.closed {
            let conn = self
                .streams
                .iter()
                .find(|(_, s)| **s == (incarnation, generation))
                .map(|(c, _)| *c);
            if let Some(conn) = conn {
                let at = self.now + self.latency();
                self.net.send(at, Msg::Hangup { conn });
            }
        }
        self.answers();
        Ok(())
    }

    fn answers(&mut self) {
        let Some(process) = self.process.as_mut() else {
            return;
        };
        for (id, result) in std::mem::take(&mut process.replies) {
            self.workload.answered(id, &result);
        }
    }

    /// The process is gone. `between_inputs`: it died between two inputs
    /// (its engine and store agree), not inside one.
    fn died(&mut self, between_inputs: bool) {
        let Some(process) = self.process.take() else {
            return;
        };
        self.note(format!("scheduler {} died", process.incarnation));
        self.held_at_crash = Some(between_inputs.then(|| invariants::held(process.engine())));
        self.checks.crashed(process.reader());
        let dead: Vec<ConnId> = self
            .streams
            .iter()
            .filter(|(_, (i, _))| *i == process.incarnation)
            .map(|(c, _)| *c)
            .collect();
        self.net.forget_scheduler(process.incarnation, &dead);
        for conn in dead {
            let at = self.now + self.latency();
            self.net.send(at, Msg::Hangup { conn });
        }
        for job in self.workload.scheduler_died() {
            self.note(format!("the answer about {job} was lost"));
        }
        let after = Duration::from_millis(self.rng.random_range(0..5000));
        self.restart_at = Some(self.now + after);
    }

    fn restart(&mut self) -> Result<(), Violation> {
        self.restart_at = None;
        self.incarnation += 1;
        let started = SchedulerProcess::start(
            self.incarnation,
            self.dir.path(),
            // What `drover-scheduler` runs by default: one drover-executor
            // per task, its overhead placed beside the task and its command
            // carried in `TaskInfo.data` (simulated agents run that).
            RunnerConfig::new(ExecutorMode::drover("drover-executor".into())),
            self.seed,
            self.t0,
            WALL0,
            self.now,
        );
        let (process, out) = started.map_err(|e| Violation {
            invariant: "nothing stored lost across a crash",
            detail: format!("the store could not be opened again: {e}"),
        })?;
        self.note(format!("scheduler {} started", self.incarnation));
        if let Some(before) = self.held_at_crash.take() {
            self.checks
                .recovered(before.as_ref(), process.engine(), &self.workload)?;
        }
        self.reconcile_workload(&process);
        self.workload.unsure.clear();
        self.process = Some(process);
        self.outputs(out)
    }

    /// Requests whose answers died with the scheduler: the store says
    /// whether they happened.
    fn reconcile_workload(&mut self, process: &SchedulerProcess) {
        let registry = process.engine().registry();
        let ids: Vec<_> = self.workload.jobs.keys().cloned().collect();
        for id in ids {
            let entry = registry.get(&id);
            let Some(job) = self.workload.jobs.get_mut(&id) else {
                continue;
            };
            match entry {
                Some(entry) => {
                    job.confirmed = true;
                    job.goal = entry.job.goal;
                    job.stopped_pods = entry
                        .job
                        .pods
                        .iter()
                        .filter(|(_, c)| c.goal == drover_scheduler::model::state::PodGoal::Killed)
                        .map(|(i, _)| *i)
                        .collect();
                    if entry.job.goal == drover_scheduler::model::state::JobGoal::Deleted {
                        job.deleted = true;
                    }
                }
                None if job.confirmed => job.deleted = true,
                None => {
                    self.workload.jobs.remove(&id);
                }
            }
        }
    }

    fn user_request(&mut self) -> Result<(), Violation> {
        if self.process.is_none() {
            return Ok(());
        }
        let Some((request, token)) = self.workload.next_request(&mut self.rng) else {
            return Ok(());
        };
        self.note(format!("user: {}", request_name(&request)));
        let now = self.now;
        let Some((id, out)) = self.run_in_process(|p| p.api(request, now)) else {
            self.workload.lost(token);
            return Ok(());
        };
        // Known as sent before its answer is read.
        self.workload.sent(id, token);
        self.outputs(out)
    }

    // ----- faults -----------------------------------------------------------

    fn fault(&mut self) {
        let kind = self.rng.random_range(0..100);
        let name = match kind {
            0..=19 => self.crash(),
            20..=29 => {
                let fx = self.master.on_drop_connections();
                self.master_effects(fx);
                "master failover"
            }
            30..=49 => self.agent_away(),
            50..=59 => self.rescind(),
            60..=74 => {
                let faults = match self.rng.random_range(0..3) {
                    0 => UpdateFaults {
                        drop_next: self.rng.random_range(1..=3),
                        ..UpdateFaults::default()
                    },
                    1 => UpdateFaults {
                        drop_probability: 0.3,
                        ..UpdateFaults::default()
                    },
                    _ => UpdateFaults {
                        delay: Some(Duration::from_millis(self.rng.random_range(100..5000))),
                        ..UpdateFaults::default()
                    },
                };
                self.master.on_update_faults(faults);
                self.update_faults_until = Some(self.now + Duration::from_secs(20));
                "lost or delayed updates"
            }
            75..=87 => {
                self.duplicate_updates += self.rng.random_range(1..=5);
                "duplicated updates"
            }
            _ => {
                let by = Duration::from_millis(self.rng.random_range(500..10_000));
                self.slow_acks = Some((self.now + Duration::from_secs(30), by));
                "slow acknowledgements"
            }
        };
        self.note(format!("fault: {name}"));
        *self.faults.entry(name).or_default() += 1;
    }

    fn crash(&mut self) -> &'static str {
        let Some(process) = self.process.as_mut() else {
            return "crash (already down)";
        };
        match self.rng.random_range(0..3) {
            0 => {
                self.died(true);
                "crash between inputs"
            }
            1 => {
                process.arm_crash(CrashPoint::AfterCommit(self.rng.random_range(1..4)));
                "crash after a commit"
            }
            _ => {
                process.arm_crash(CrashPoint::AtCall(self.rng.random_range(1..20)));
                "crash as a call leaves"
            }
        }
    }

    fn agent_away(&mut self) -> &'static str {
        let agents: Vec<String> = self
            .master
            .agents()
            .iter()
            .filter(|a| a.connected)
            .map(|a| a.id.clone())
            .collect();
        // Keep one agent: a cluster with none tests nothing.
        if agents.len() <= 1 {
            return "agent lost (none left to lose)";
        }
        let agent = agents[self.rng.random_range(0..agents.len())].clone();
        let instant = self.t0 + self.now;
        if let Ok(fx) = self.master.on_agent_failed(&agent, instant) {
            self.master_effects(fx);
        }
        let back = Duration::from_secs(self.rng.random_range(5..90));
        self.away.insert(agent, self.now + back);
        "agent lost"
    }

    fn return_agents(&mut self) {
        let due: Vec<String> = self
            .away
            .iter()
            .filter(|(_, at)| **at <= self.now)
            .map(|(a, _)| a.clone())
            .collect();
        for agent in due {
            self.away.remove(&agent);
            let instant = self.t0 + self.now;
            if let Ok(fx) = self.master.on_agent_restored(&agent, instant) {
                self.note(format!("agent {agent} back"));
                self.master_effects(fx);
            }
        }
    }

    fn rescind(&mut self) -> &'static str {
        let offers: Vec<String> = self.master.offers().map(|o| o.id.clone()).collect();
        if offers.is_empty() {
            return "rescind (no offer out)";
        }
        let offer = offers[self.rng.random_range(0..offers.len())].clone();
        if let Ok(fx) = self.master.on_rescind_offer(&offer) {
            self.master_effects(fx);
        }
        "offer rescinded"
    }

    /// Faults stop: agents return, updates flow, the scheduler runs.
    fn heal(&mut self) {
        self.note("faults healed".into());
        for at in self.away.values_mut() {
            *at = self.now;
        }
        self.return_agents();
        self.update_faults_until = None;
        self.master.on_update_faults(UpdateFaults::default());
        self.duplicate_updates = 0;
        self.slow_acks = None;
        if self.process.is_none() && self.restart_at.is_none() {
            self.restart_at = Some(self.now);
        }
        if let Some(p) = self.process.as_mut() {
            p.disarm_crash();
        }
    }
}

fn is_update(event: &Event) -> bool {
    event.r#type == Some(event::Type::Update as i32)
}

fn call_name(call: &drover_proto::v1::scheduler::Call) -> &'static str {
    call.r#type
        .and_then(|t| drover_proto::v1::scheduler::call::Type::try_from(t).ok())
        .map_or("UNKNOWN", |t| t.as_str_name())
}

fn describe(msg: &Msg) -> String {
    match msg {
        Msg::Subscribed { response, .. } => format!("SUBSCRIBE answered {response:?}"),
        Msg::Answered { response, .. } => format!("call answered {response:?}"),
        Msg::Closed { conn } => format!("stream {conn} closed"),
        Msg::Event { conn, event } => {
            let kind = event
                .r#type
                .and_then(|t| event::Type::try_from(t).ok())
                .map_or("UNKNOWN", |t| t.as_str_name());
            match &event.update {
                Some(u) => format!(
                    "stream {conn}: UPDATE {} {:?}",
                    u.status.task_id.value,
                    TaskState::try_from(u.status.state).unwrap_or(TaskState::TaskUnknown)
                ),
                None => format!("stream {conn}: {kind}"),
            }
        }
        _ => "?".into(),
    }
}

fn request_name(request: &drover_scheduler::engine::ApiRequest) -> String {
    use drover_scheduler::engine::ApiRequest;
    match request {
        ApiRequest::CreateJob { job_id, spec, .. } => format!(
            "create {job_id} ({:?} x{})",
            spec.job_type, spec.instance_count
        ),
        ApiRequest::SetGoal { job_id, goal, .. } => format!("{job_id} goal {goal:?}"),
        ApiRequest::SetPodGoal { pod, goal } => format!("{} goal {goal:?}", pod.pod_name()),
        ApiRequest::RestartPods { job_id, .. } => format!("restart {job_id}"),
        ApiRequest::DeleteJob { job_id, .. } => format!("delete {job_id}"),
        ApiRequest::AmendJob { job_id, .. } => format!("amend {job_id}"),
        ApiRequest::AmendJobs { amends } => {
            let ids: Vec<_> = amends.iter().map(|a| a.job_id.as_str()).collect();
            format!("amend {}", ids.join(" "))
        }
        ApiRequest::DeletePodEvents { task } => format!("delete events of {task}"),
        ApiRequest::RefreshPod { pod } => format!("refresh {}", pod.pod_name()),
        ApiRequest::CreatePool { pool_id, .. } => format!("create pool {pool_id}"),
        ApiRequest::UpdatePool { pool_id, .. } => format!("update pool {pool_id}"),
        ApiRequest::DeletePool { pool_id } => format!("delete pool {pool_id}"),
        ApiRequest::ReadPools => "read pools".to_owned(),
        ApiRequest::CreatePipelineRun(new) => format!("create pipeline run {}", new.run_id),
        ApiRequest::TerminatePipelineRun { run_id } => format!("terminate pipeline run {run_id}"),
        ApiRequest::GetPipelineRun { run_id } => format!("get pipeline run {run_id}"),
        ApiRequest::RetryPipelineRun { run_id } => format!("retry pipeline run {run_id}"),
        ApiRequest::SetPipelineRunArchived { run_id, archived } => {
            format!("set pipeline run {run_id} archived={archived}")
        }
        ApiRequest::DeletePipelineRun { run_id } => format!("delete pipeline run {run_id}"),
        ApiRequest::CreateExperiment(e) => format!("create experiment {}", e.name),
        ApiRequest::ListExperiments => "list experiments".to_owned(),
        ApiRequest::ListPipelineRuns => "list pipeline runs".to_owned(),
        ApiRequest::ReportPipelineRunMetrics { run_id, .. } => {
            format!("report metrics of pipeline run {run_id}")
        }
        ApiRequest::RefreshJob { job_id } => format!("refresh {job_id}"),
        ApiRequest::SteerWorkflow { job_id, action, .. } => {
            format!("{job_id} workflow {action:?}")
        }
        ApiRequest::UpdateJob { job_id, spec, .. } => {
            format!("update {job_id} (x{})", spec.instance_count)
        }
        ApiRequest::RollbackJob { job_id, .. } => format!("roll back {job_id}"),
        ApiRequest::StartMaintenance { hostnames, .. } => {
            format!("drain {}", hostnames.join(" "))
        }
        ApiRequest::CompleteMaintenance { hostnames } => {
            format!("complete {}", hostnames.join(" "))
        }
    }
}
