//! The resource pools scenario (`--only pools`), in process: Drover's
//! engine over a real SQLite store, pumped as the scheduler pumps it, on
//! virtual time against a small simulated master (agents with cpus, an
//! allocation interval that offers each agent's free cpus, tasks that run
//! for a seeded while and finish, kills that end them).
//!
//! - Contention: three pools under batch jobs larger than the cluster,
//!   the third becoming active after a minute. Sampled every second: each
//!   pool's running cpus against its max-min fair share of the cluster
//!   (`fair_share::entitlements` over what each still has to run), the
//!   fairness error (the L1 distance, as a fraction of the cluster,
//!   averaged over the run), preemptions per minute, the time the late
//!   pool takes to hold its reservation, and limit violations (which must
//!   be none).
//! - Launch cost: 20,000 tasks (three jobs) placed on one allocation's
//!   offers, with no pool configured and with three pools, wall time of
//!   the engine and its store, as a ratio measured in one run (three of
//!   each, alternated; medians).
//!
//! The pools are made as an operator makes them, by the engine's
//! `CreatePool` request (stored, then applied).

use drover_proto::v1::TaskState;
use drover_scheduler::engine::{Action, ApiRequest, Call, Engine, EngineConfig, Now, Reply};
use drover_scheduler::engine::{EngineError, RequestId};
use drover_scheduler::model::access::Identity;
use drover_scheduler::model::demand::pod_demand;
use drover_scheduler::model::ids::{AgentId, JobId, OfferId};
use drover_scheduler::model::offer::Offer;
use drover_scheduler::model::policies::fair_share;
use drover_scheduler::model::pool::{
    PoolId, PoolResource, PoolSpec, ReservationType, ResourceKind, SchedulingPolicy,
};
use drover_scheduler::model::port_ranges::PortRanges;
use drover_scheduler::model::resources::Resources;
use drover_scheduler::model::spec::JobSpec;
use drover_scheduler::model::task_update::TaskUpdate;
use drover_scheduler::runner::pump::{self, Outbox};
use drover_scheduler::store::{SqliteStore, Store};
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

const WALL0: i64 = 1_700_000_000_000;
/// Memory per pod and per cpu of a pool's reservation and limit.
const MIB_PER_CPU: f64 = 32.0;

/// What the scenario measured.
#[derive(Debug, Clone)]
pub struct PoolsResult {
    /// Mean L1 distance of the pools' running cpus from their max-min fair
    /// shares, as a fraction of the cluster.
    pub fairness_error: f64,
    /// The same over the last half of the run (after the late pool's
    /// arrival has settled).
    pub fairness_error_settled: f64,
    /// Preemptions per minute of virtual time.
    pub preemptions_per_min: f64,
    /// Seconds from the late pool's jobs to its reservation held (None:
    /// never within the run).
    pub reservation_back_secs: Option<f64>,
    /// Samples where a pool ran over its limit.
    pub limit_violations: usize,
    /// Launch rate with no pool configured, tasks/s.
    pub launch_plain: f64,
    /// The same launch with three pools, tasks/s.
    pub launch_pooled: f64,
}

/// Runs both parts.
pub fn run(contention_secs: u64, launch_tasks: usize) -> anyhow::Result<PoolsResult> {
    let contention = contention(Duration::from_secs(contention_secs))?;
    // Alternated, three of each, medians: the first launch of a process
    // pays for warming allocators and caches, whichever it is.
    let (mut plain, mut pooled) = (Vec::new(), Vec::new());
    for _ in 0..LAUNCH_REPEAT {
        plain.push(launch(launch_tasks, false)?);
        pooled.push(launch(launch_tasks, true)?);
    }
    let launch_plain = median(&mut plain);
    let launch_pooled = median(&mut pooled);
    Ok(PoolsResult {
        launch_plain,
        launch_pooled,
        ..contention
    })
}

/// Launches of each kind, alternated.
const LAUNCH_REPEAT: usize = 3;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

/// A limit far past the cluster's size: a pool a user leaves unbounded.
const NO_LIMIT: f64 = 1e6;

/// A pool under the root: (name, cpus reserved, cpus limit, share); its
/// id is its name.
fn pool(name: &str, reservation: f64, limit: f64, share: f64) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        owning_team: String::new(),
        ldap_groups: Vec::new(),
        description: String::new(),
        resources: [
            (ResourceKind::Cpu, 1.0),
            (ResourceKind::Memory, MIB_PER_CPU),
        ]
        .into_iter()
        .map(|(kind, scale)| PoolResource {
            kind,
            reservation: reservation * scale,
            limit: limit * scale,
            share,
            reservation_type: ReservationType::Elastic,
        })
        .collect(),
        parent: PoolId::root(),
        policy: SchedulingPolicy::PriorityFifo,
        controller_limit_percent: None,
        slack_limit_percent: None,
    }
}

/// A batch job's spec, in `pool` (None: the default pool).
fn batch_spec(name: &str, pool: Option<&str>, instances: u32, preemptible: bool) -> JobSpec {
    let value = serde_json::json!({
        "type": "BATCH", "name": name, "instance_count": instances,
        "respool_id": pool,
        "sla": {"priority": 0, "preemptible": preemptible},
        "default_spec": {"containers": [{
            "resource": {"cpu_limit": 1.0, "mem_limit_mb": MIB_PER_CPU},
            "command": {"value": "sleep 60"}
        }]}
    });
    // A literal spec: it parses, or the bench is broken.
    serde_json::from_value(value).expect("the bench's job spec is valid")
}

/// The engine, its store and the simulated master.
struct Sim {
    engine: Engine,
    store: SqliteStore,
    _dir: tempfile::TempDir,
    t0: Instant,
    clock: Duration,
    out: Sent,
    next_request: RequestId,
    next_offer: u64,
    /// Per agent: total and used cpus, and whether an offer is out.
    agents: Vec<SimAgent>,
    offers: HashMap<OfferId, usize>,
    /// Live tasks: agent, cpus, when they finish.
    tasks: HashMap<String, SimTask>,
    /// Updates due: (when, update).
    due: Vec<(Duration, TaskUpdate)>,
    /// Runs finished per job.
    finished: HashMap<String, u32>,
}

struct SimAgent {
    total: f64,
    used: f64,
    offered: bool,
}

struct SimTask {
    agent: usize,
    cpus: f64,
}

#[derive(Default)]
struct Sent {
    calls: Vec<Call>,
    replies: BTreeMap<RequestId, Result<Reply, EngineError>>,
}

impl Outbox for Sent {
    fn send(&mut self, call: Call) {
        self.calls.push(call);
    }

    fn reply(&mut self, request: RequestId, result: Result<Reply, EngineError>) {
        self.replies.insert(request, result);
    }
}

impl Sim {
    fn new(agents: usize, cpus: f64, pools: Vec<PoolSpec>) -> anyhow::Result<Sim> {
        let dir = tempfile::tempdir()?;
        let store = SqliteStore::open(dir.path())?;
        let t0 = Instant::now();
        let now = Now {
            instant: t0,
            unix_ms: WALL0,
        };
        let engine = Engine::recover(store.load()?, EngineConfig::default(), now);
        let mut sim = Sim {
            engine,
            store,
            _dir: dir,
            t0,
            clock: Duration::ZERO,
            out: Sent::default(),
            next_request: 0,
            next_offer: 0,
            agents: (0..agents)
                .map(|_| SimAgent {
                    total: cpus,
                    used: 0.0,
                    offered: false,
                })
                .collect(),
            offers: HashMap::new(),
            tasks: HashMap::new(),
            due: Vec::new(),
            finished: HashMap::new(),
        };
        for spec in pools {
            let name = spec.name.clone();
            sim.request(ApiRequest::CreatePool {
                pool_id: PoolId(name.clone()),
                spec: Box::new(spec),
            })
            .map_err(|e| anyhow::anyhow!("cannot create pool {name}: {e}"))?;
        }
        let actions = sim.engine.on_subscribed("fw".into(), sim.now());
        sim.carry_out(actions);
        sim.settle();
        Ok(sim)
    }

    fn now(&self) -> Now {
        Now {
            instant: self.t0 + self.clock,
            unix_ms: WALL0 + self.clock.as_millis() as i64,
        }
    }

    fn carry_out(&mut self, actions: Vec<Action>) {
        let (t0, clock) = (self.t0, self.clock);
        let mut now = move || Now {
            instant: t0 + clock,
            unix_ms: WALL0 + clock.as_millis() as i64,
        };
        pump::carry_out(
            &mut self.engine,
            &mut self.store,
            actions,
            &mut now,
            &mut self.out,
        );
        self.master();
    }

    fn settle(&mut self) {
        while self
            .engine
            .next_deadline()
            .is_some_and(|d| d <= self.now().instant)
        {
            let actions = self.engine.on_tick(self.now());
            self.carry_out(actions);
        }
    }

    /// Asks the engine as the system operator would, through the API.
    fn request(&mut self, request: ApiRequest) -> anyhow::Result<Reply> {
        let id = self.next_request;
        self.next_request += 1;
        let actions = self
            .engine
            .on_api(id, request, &Identity::system(), self.now());
        self.carry_out(actions);
        match self.out.replies.remove(&id) {
            Some(result) => Ok(result?),
            None => anyhow::bail!("request {id} was not answered"),
        }
    }

    fn create(&mut self, id: &str, spec: JobSpec) -> anyhow::Result<()> {
        self.request(ApiRequest::CreateJob {
            job_id: JobId::parse(id)?,
            spec: Box::new(spec),
            create: None,
        })
        .map_err(|e| anyhow::anyhow!("cannot create {id}: {e}"))?;
        Ok(())
    }

    /// The master's side of the calls sent: launches, kills, declines.
    fn master(&mut self) {
        for call in std::mem::take(&mut self.out.calls) {
            match call {
                Call::Accept {
                    offer_ids, tasks, ..
                } => {
                    let Some(&agent) = offer_ids.first().and_then(|id| self.offers.get(id)) else {
                        continue;
                    };
                    for id in &offer_ids {
                        self.offers.remove(id);
                    }
                    self.agents[agent].offered = false;
                    for task in tasks {
                        let cpus = pod_demand(&task.pod, &Resources::default()).cpus;
                        self.agents[agent].used += cpus;
                        let id = task.task_id.to_string();
                        let runs_for = Duration::from_secs(30 + splitmix(&id) % 60);
                        self.due.push((
                            self.clock + Duration::from_millis(50),
                            update(&id, TaskState::TaskRunning, agent),
                        ));
                        self.due.push((
                            self.clock + runs_for,
                            update(&id, TaskState::TaskFinished, agent),
                        ));
                        self.tasks.insert(id, SimTask { agent, cpus });
                    }
                }
                Call::Decline { offer_ids, .. } => {
                    for id in offer_ids {
                        if let Some(agent) = self.offers.remove(&id) {
                            self.agents[agent].offered = false;
                        }
                    }
                }
                Call::Kill { task_id, .. } => {
                    if let Some(task) = self.tasks.get(&task_id) {
                        let agent = task.agent;
                        self.due.push((
                            self.clock + Duration::from_millis(100),
                            update(&task_id, TaskState::TaskKilled, agent),
                        ));
                    }
                }
                _ => {}
            }
        }
    }

    /// Delivers the updates due; a terminal one frees its cpus.
    fn deliver(&mut self) {
        let clock = self.clock;
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.due)
            .into_iter()
            .partition(|(at, _)| *at <= clock);
        self.due = later;
        let mut updates = Vec::new();
        for (_, u) in ready {
            let live = self.tasks.contains_key(&u.task_id);
            if !live {
                continue;
            }
            if u.state != TaskState::TaskRunning {
                if let Some(task) = self.tasks.remove(&u.task_id) {
                    self.agents[task.agent].used -= task.cpus;
                }
                if u.state == TaskState::TaskFinished {
                    *self.finished.entry(job_of(&u.task_id)).or_insert(0) += 1;
                }
            }
            updates.push(u);
        }
        if !updates.is_empty() {
            let actions = self.engine.on_updates(updates, self.now());
            self.carry_out(actions);
        }
    }

    /// An allocation: every agent with free cpus and no offer out offers
    /// them.
    fn allocate(&mut self) {
        let mut offers = Vec::new();
        for (i, agent) in self.agents.iter_mut().enumerate() {
            let free = agent.total - agent.used;
            if agent.offered || free < 1.0 {
                continue;
            }
            agent.offered = true;
            self.next_offer += 1;
            let id = OfferId(format!("o{}", self.next_offer));
            self.offers.insert(id.clone(), i);
            offers.push(Offer {
                id,
                agent_id: AgentId::new(&format!("a{i}")),
                hostname: format!("a{i}.host"),
                allocation_role: Some("*".into()),
                resources: Resources {
                    cpus: free,
                    mem_mib: free * MIB_PER_CPU * 4.0,
                    disk_mib: 65536.0,
                    gpus: 0.0,
                },
                ports: PortRanges::new([(31000, 31010)]),
                attributes: BTreeMap::new(),
                unavailability: None,
            });
        }
        if !offers.is_empty() {
            let actions = self.engine.on_offers(offers, self.now());
            self.carry_out(actions);
        }
    }

    /// Running cpus per job.
    fn running_by_job(&self) -> HashMap<String, f64> {
        let mut out = HashMap::new();
        for (id, task) in &self.tasks {
            *out.entry(job_of(id)).or_insert(0.0) += task.cpus;
        }
        out
    }
}

/// The job of a task id (`<job>-<instance>-<run>`; the bench's job ids
/// have no dash).
fn job_of(task: &str) -> String {
    task.split('-').next().unwrap_or_default().to_string()
}

fn update(task: &str, state: TaskState, agent: usize) -> TaskUpdate {
    TaskUpdate {
        task_id: task.into(),
        state,
        reason: None,
        message: None,
        healthy: None,
        ready: None,
        agent_id: Some(AgentId::new(&format!("a{agent}"))),
        timestamp: None,
        unreachable_since: None,
        image: None,
        data: None,
        uuid: Some(bytes::Bytes::from(format!("{task}-{state:?}"))),
    }
}

/// A stable pseudo-random number of a text (splitmix64 over its FNV hash).
fn splitmix(text: &str) -> u64 {
    let mut x = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// The contention part (see the module doc).
fn contention(length: Duration) -> anyhow::Result<PoolsResult> {
    const AGENTS: usize = 40;
    const CPUS: f64 = 4.0;
    let capacity = AGENTS as f64 * CPUS;
    // (pool, reservation, limit, share); the jobs: (job, pool, instances,
    // preemptible, arrives after).
    let pools = vec![
        pool("batcha", 20.0, NO_LIMIT, 1.0),
        pool("batchb", 0.0, 100.0, 2.0),
        pool("prod", 60.0, NO_LIMIT, 1.0),
    ];
    let jobs = [
        ("joba", "batcha", 2000, true, 0),
        ("jobb", "batchb", 2000, true, 0),
        ("jobprod", "prod", 1000, false, 60),
    ];
    let mut sim = Sim::new(AGENTS, CPUS, pools)?;
    let tree = sim.engine.pools().clone();
    let step = Duration::from_millis(50);
    let mut created = [false; 3];
    let (mut error_sum, mut samples, mut settled_sum, mut settled_samples) = (0.0, 0, 0.0, 0);
    let mut violations = 0;
    let mut reservation_back = None;
    let mut next_sample = Duration::ZERO;
    let mut next_allocation = Duration::ZERO;
    while sim.clock < length {
        for (i, (job, pool_id, instances, preemptible, after)) in jobs.iter().enumerate() {
            if !created[i] && sim.clock >= Duration::from_secs(*after) {
                sim.create(
                    job,
                    batch_spec(job, Some(pool_id), *instances, *preemptible),
                )?;
                created[i] = true;
            }
        }
        sim.deliver();
        if sim.clock >= next_allocation {
            sim.allocate();
            next_allocation += Duration::from_secs(1);
        }
        sim.settle();
        if sim.clock >= next_sample {
            next_sample += Duration::from_secs(1);
            let running = sim.running_by_job();
            let mut demand = BTreeMap::new();
            let mut held = BTreeMap::new();
            for (i, (job, pool_id, instances, _, _)) in jobs.iter().enumerate() {
                if !created[i] {
                    continue;
                }
                let done = sim.finished.get(*job).copied().unwrap_or(0);
                let wants = f64::from(instances.saturating_sub(done));
                let cpus = |n: f64| Resources {
                    cpus: n,
                    ..Resources::default()
                };
                demand.insert(PoolId((*pool_id).into()), cpus(wants));
                held.insert(*pool_id, running.get(*job).copied().unwrap_or(0.0));
            }
            let fair = fair_share::entitlements(
                &tree,
                &demand,
                &Resources {
                    cpus: capacity,
                    ..Resources::default()
                },
            );
            let error: f64 = held
                .iter()
                .map(|(pool_id, cpus)| {
                    let share = fair.get(&PoolId((*pool_id).into())).map_or(0.0, |r| r.cpus);
                    (cpus - share).abs()
                })
                .sum::<f64>()
                / capacity;
            error_sum += error;
            samples += 1;
            if sim.clock >= length / 2 {
                settled_sum += error;
                settled_samples += 1;
            }
            if held.get("batchb").copied().unwrap_or(0.0) > 100.0 + 1e-9 {
                violations += 1;
            }
            if created[2]
                && reservation_back.is_none()
                && held.get("prod").copied().unwrap_or(0.0) >= 60.0
            {
                reservation_back = Some(sim.clock.as_secs_f64() - 60.0);
            }
        }
        sim.clock += step;
    }
    let minutes = length.as_secs_f64() / 60.0;
    Ok(PoolsResult {
        fairness_error: error_sum / f64::from(samples.max(1)),
        fairness_error_settled: settled_sum / f64::from(settled_samples.max(1)),
        preemptions_per_min: sim.engine.preemptions_total() as f64 / minutes,
        reservation_back_secs: reservation_back,
        limit_violations: violations,
        launch_plain: 0.0,
        launch_pooled: 0.0,
    })
}

/// The launch part: `tasks` 1-cpu tasks as three jobs onto one
/// allocation's offers; tasks/s of the engine and its store.
fn launch(tasks: usize, pooled: bool) -> anyhow::Result<f64> {
    const CPUS: f64 = 100.0;
    let agents = tasks.div_ceil(CPUS as usize) + 2;
    let pools = if pooled {
        let share = tasks as f64 / 3.0;
        vec![
            pool("batcha", share, NO_LIMIT, 1.0),
            pool("batchb", 0.0, NO_LIMIT, 2.0),
            pool("prod", share / 2.0, NO_LIMIT, 1.0),
        ]
    } else {
        Vec::new()
    };
    let mut sim = Sim::new(agents, CPUS, pools)?;
    let per_job = tasks / 3;
    for (i, (job, pool_id)) in [("joba", "batcha"), ("jobb", "batchb"), ("jobprod", "prod")]
        .into_iter()
        .enumerate()
    {
        let n = if i == 2 { tasks - 2 * per_job } else { per_job };
        // Without pools the jobs name none: a pool that does not exist is
        // refused.
        let pool = pooled.then_some(pool_id);
        sim.create(job, batch_spec(job, pool, n as u32, true))?;
    }
    let started = Instant::now();
    sim.allocate();
    // Virtual time moves only for the offer hold; the wall clock measures
    // the engine's work.
    for _ in 0..200 {
        sim.clock += Duration::from_millis(10);
        sim.settle();
        if sim.tasks.len() >= tasks {
            break;
        }
    }
    let took = started.elapsed().as_secs_f64();
    if sim.tasks.len() < tasks {
        anyhow::bail!(
            "pools launch: {} of {tasks} tasks launched (pooled: {pooled})",
            sim.tasks.len()
        );
    }
    Ok(tasks as f64 / took.max(1e-9))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Both launches of the comparison run to the end (the plain one
    /// names no pool: a job naming one that does not exist is refused).
    #[test]
    fn the_launch_runs_with_and_without_pools() {
        for pooled in [false, true] {
            let rate = launch(300, pooled).unwrap();
            assert!(rate > 0.0, "pooled: {pooled}");
        }
    }
}
