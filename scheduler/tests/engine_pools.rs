//! Resource pools in the engine over a real SQLite store, pumped by hand:
//! admission before the placement round (limits never exceeded, fair
//! shares, pending reasons) and preemption (a newly active pool gets its
//! share back, the kills recorded, the victims relaunched, no loop).

#![allow(clippy::unwrap_used)]

use drover_proto::v1::task_status::Reason;
use drover_proto::v1::TaskState;
use drover_scheduler::engine::{
    Action, ApiRequest, Call, Engine, EngineConfig, EngineError, Now, Reply, RequestId,
};
use drover_scheduler::model::access::Identity;
use drover_scheduler::model::ids::{AgentId, JobId, OfferId};
use drover_scheduler::model::offer::Offer;
use drover_scheduler::model::pool::{
    Pool, PoolId, PoolResource, PoolSpec, PoolTree, ReservationType, ResourceKind, SchedulingPolicy,
};
use drover_scheduler::model::port_ranges::PortRanges;
use drover_scheduler::model::resources::Resources;
use drover_scheduler::model::spec::JobSpec;
use drover_scheduler::model::task_update::TaskUpdate;
use drover_scheduler::runner::pump::{self, Outbox};
use drover_scheduler::store::{SqliteStore, Store, StoreRead};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WALL0: i64 = 1_700_000_000_000;

struct Harness {
    engine: Engine,
    store: SqliteStore,
    _dir: tempfile::TempDir,
    t0: Instant,
    clock: Duration,
    out: Sent,
    next_request: RequestId,
    next_offer: u32,
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

impl Harness {
    fn new(pools: Vec<Pool>, config: EngineConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let t0 = Instant::now();
        let now = Now {
            instant: t0,
            unix_ms: WALL0,
        };
        let mut engine = Engine::recover(store.load().unwrap(), config, now);
        engine.set_pools(PoolTree::from_pools(pools));
        let mut h = Harness {
            engine,
            store,
            _dir: dir,
            t0,
            clock: Duration::ZERO,
            out: Sent::default(),
            next_request: 0,
            next_offer: 0,
        };
        let actions = h.engine.on_subscribed("fw".into(), h.now());
        h.carry_out(actions);
        h.settle();
        h.out.calls.clear();
        h
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

    fn advance(&mut self, by: Duration) {
        self.clock += by;
        self.settle();
    }

    fn create(&mut self, id: &str, pool: &str, priority: u32, instances: u32) -> JobId {
        let spec: JobSpec = serde_json::from_value(serde_json::json!({
            "type": "BATCH", "name": id, "instance_count": instances,
            "respool_id": pool,
            "sla": {"priority": priority, "preemptible": true},
            "default_spec": {"containers": [{
                "resource": {"cpu_limit": 1.0, "mem_limit_mb": 32},
                "command": {"value": "sleep 100"}
            }]}
        }))
        .unwrap();
        let job_id = JobId::parse(id).unwrap();
        let request = self.next_request;
        self.next_request += 1;
        let actions = self.engine.on_api(
            request,
            ApiRequest::CreateJob {
                job_id: job_id.clone(),
                spec: Box::new(spec),
                create: None,
            },
            &Identity::system(),
            self.now(),
        );
        self.carry_out(actions);
        self.out.replies.remove(&request).unwrap().unwrap();
        self.settle();
        job_id
    }

    /// Offers `cpus` on agent `agent`, lets the round run, and returns the
    /// tasks launched.
    fn offer(&mut self, agent: &str, cpus: f64) -> Vec<String> {
        self.next_offer += 1;
        let offer = Offer {
            id: OfferId(format!("o{}", self.next_offer)),
            agent_id: AgentId::new(agent),
            hostname: format!("{agent}.host"),
            allocation_role: Some("*".into()),
            resources: Resources {
                cpus,
                mem_mib: 65536.0,
                disk_mib: 65536.0,
                gpus: 0.0,
            },
            ports: PortRanges::new([(31000, 31010)]),
            attributes: BTreeMap::new(),
            unavailability: None,
        };
        let actions = self.engine.on_offers(vec![offer], self.now());
        self.carry_out(actions);
        self.advance(Duration::from_millis(20));
        self.take_launches()
    }

    fn take_launches(&mut self) -> Vec<String> {
        let mut launched = Vec::new();
        self.out.calls.retain(|call| match call {
            Call::Accept { tasks, .. } => {
                launched.extend(tasks.iter().map(|t| t.task_id.to_string()));
                false
            }
            _ => true,
        });
        launched
    }

    fn take_kills(&mut self) -> Vec<String> {
        let mut killed = Vec::new();
        self.out.calls.retain(|call| match call {
            Call::Kill { task_id, .. } => {
                killed.push(task_id.clone());
                false
            }
            _ => true,
        });
        killed
    }

    fn report(&mut self, tasks: &[String], state: TaskState) {
        let at = self.now().unix_ms;
        let updates = tasks
            .iter()
            .map(|task| TaskUpdate {
                task_id: task.clone(),
                state,
                reason: None,
                message: None,
                healthy: None,
                agent_id: Some(AgentId::new("a1")),
                timestamp: Some(at),
                unreachable_since: None,
                data: None,
                uuid: Some(bytes::Bytes::from(format!("{task}-{state:?}-{at}"))),
            })
            .collect();
        let actions = self.engine.on_updates(updates, self.now());
        self.carry_out(actions);
        self.advance(Duration::from_millis(5));
    }

    /// The job's live runs, as the registry has them.
    fn held(&self, job: &JobId) -> usize {
        self.engine
            .registry()
            .live_runs()
            .filter(|(instance, _)| instance.job == job)
            .count()
    }
}

/// The memory of each pod: pools here reserve and limit memory in step
/// with cpus (every kind is shared out on its own).
const MIB_PER_CPU: f64 = 32.0;

/// A pool of `reservation`/`limit` cpus (and as many pods' memory).
fn cpu_pool(id: &str, reservation: f64, limit: f64, share: f64) -> Pool {
    Pool {
        id: PoolId(id.into()),
        spec: PoolSpec {
            name: id.into(),
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
        },
        version: 1,
        created_ms: 0,
        updated_ms: 0,
    }
}

fn job_of(task: &str) -> &str {
    task.split('-').next().unwrap()
}

#[test]
fn a_pool_never_runs_past_its_limit_and_its_waiting_pods_say_why() {
    let mut h = Harness::new(
        vec![cpu_pool("capped", 0.0, 3.0, 1.0)],
        EngineConfig::default(),
    );
    let job = h.create("wide", "capped", 0, 5);
    let launched = h.offer("a1", 16.0);
    assert_eq!(launched.len(), 3, "{launched:?}");
    // More offers change nothing: the limit holds.
    assert!(h.offer("a2", 16.0).is_empty());
    assert_eq!(h.held(&job), 3);
    // The metrics see the pool at its limit.
    let standings = h.engine.take_pool_standings().unwrap();
    let (_, capped) = standings
        .iter()
        .find(|(path, _)| path == "/capped")
        .unwrap();
    assert_eq!((capped.allocation.cpus, capped.limit.cpus), (3.0, 3.0));
    let reasons = h.store.pending_reasons(&job).unwrap();
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    for info in reasons.values() {
        assert_eq!(info.reason, "pool /capped at its limit of 3 cpus");
    }
    // A run ends: one more may run.
    h.report(&launched[..1], TaskState::TaskFinished);
    assert_eq!(h.offer("a3", 16.0).len(), 1);
    assert_eq!(h.held(&job), 3);
}

#[test]
fn a_newly_active_pool_takes_its_share_back_by_preemption_without_a_loop() {
    // 8 cpus. "batch" alone takes all of them (its idle neighbour's
    // reservation is lent); then "prod" wants 8 too: it is entitled to its
    // reservation 4 plus half of the other 4, so 6 of batch's runs go.
    let mut h = Harness::new(
        vec![
            cpu_pool("batch", 0.0, f64::INFINITY, 1.0),
            cpu_pool("prod", 4.0, f64::INFINITY, 1.0),
        ],
        EngineConfig::default(),
    );
    let batch = h.create("batchjob", "batch", 0, 20);
    let first = h.offer("a1", 8.0);
    assert_eq!(first.len(), 8);
    h.report(&first, TaskState::TaskRunning);
    assert!(h.take_kills().is_empty());

    let prod = h.create("prodjob", "prod", 0, 8);
    // The cluster is full: no offers come, preemption looks on its own.
    h.advance(Duration::from_secs(2));
    let killed = h.take_kills();
    assert_eq!(killed.len(), 6, "{killed:?}");
    assert!(killed.iter().all(|t| job_of(t) == "batchjob"));
    // Recorded with the reason before they were sent.
    let preempted = h
        .store
        .runs(&batch)
        .unwrap()
        .into_iter()
        .filter(|r| r.run.kill_reason == Some(Reason::ContainerPreempted))
        .count();
    assert_eq!(preempted, 6);
    // No offer came, yet the waiting pods say why they wait.
    let reasons = h.store.pending_reasons(&batch).unwrap();
    assert_eq!(reasons.len(), 12, "{reasons:?}");
    assert!(reasons.values().all(|i| i.reason
        == "waiting for pool share: pool /batch holds 8.000 of its entitlement of 2.000 cpus"));
    // Nothing more while the kills are on their way.
    h.advance(Duration::from_secs(2));
    assert!(h.take_kills().is_empty());

    h.report(&killed, TaskState::TaskKilled);
    // The freed cpus go to prod; batch's requeued runs wait for their share.
    let second = h.offer("a1", 6.0);
    assert_eq!(second.len(), 6, "{second:?}");
    assert!(second.iter().all(|t| job_of(t) == "prodjob"), "{second:?}");
    h.report(&second, TaskState::TaskRunning);
    assert_eq!(h.held(&batch), 2);
    assert_eq!(h.held(&prod), 6);
    let reasons = h.store.pending_reasons(&batch).unwrap();
    assert!(
        reasons
            .values()
            .any(|i| i.reason.starts_with("waiting for pool share: pool /batch")),
        "{reasons:?}"
    );
    // Each holds its entitlement: nobody preempts anybody again.
    h.advance(Duration::from_secs(5));
    assert!(h.take_kills().is_empty());
    assert_eq!(h.engine.preemptions_total(), 6);
}

#[test]
fn preemption_keeps_to_its_rate() {
    let config = EngineConfig {
        preemption_rate: 2,
        ..EngineConfig::default()
    };
    let mut h = Harness::new(
        vec![
            cpu_pool("batch", 0.0, f64::INFINITY, 1.0),
            cpu_pool("prod", 8.0, f64::INFINITY, 1.0),
        ],
        config,
    );
    h.create("batchjob", "batch", 0, 8);
    let first = h.offer("a1", 8.0);
    h.report(&first, TaskState::TaskRunning);
    h.create("prodjob", "prod", 0, 8);
    h.advance(Duration::from_secs(5));
    let killed = h.take_kills();
    assert_eq!(killed.len(), 2);
    h.report(&killed, TaskState::TaskKilled);
    h.advance(Duration::from_secs(30));
    assert!(h.take_kills().is_empty(), "two a minute");
    h.advance(Duration::from_secs(30));
    assert_eq!(h.take_kills().len(), 2);
}

/// A scheduler that restarts while its preemptions are on their way
/// finds them in the store and preempts no more.
#[test]
fn a_restart_during_preemption_does_not_preempt_again() {
    let pools = || {
        vec![
            cpu_pool("batch", 0.0, f64::INFINITY, 1.0),
            cpu_pool("prod", 4.0, f64::INFINITY, 1.0),
        ]
    };
    let mut h = Harness::new(pools(), EngineConfig::default());
    h.create("batchjob", "batch", 0, 20);
    let first = h.offer("a1", 8.0);
    h.report(&first, TaskState::TaskRunning);
    h.create("prodjob", "prod", 0, 8);
    h.advance(Duration::from_secs(2));
    assert_eq!(h.take_kills().len(), 6);

    // The process dies; a new engine recovers from the store.
    let mut engine = Engine::recover(h.store.load().unwrap(), EngineConfig::default(), h.now());
    engine.set_pools(PoolTree::from_pools(pools()));
    h.engine = engine;
    let actions = h.engine.on_subscribed("fw".into(), h.now());
    h.carry_out(actions);
    h.advance(Duration::from_secs(3));
    assert!(h.take_kills().is_empty(), "the 6 in flight are counted");
    assert_eq!(h.engine.preemptions_total(), 0);
    // Their kills may have died with the process: sent again, the same 6.
    h.advance(Duration::from_secs(70));
    let again = h.take_kills();
    assert_eq!(again.len(), 6, "{again:?}");
    assert_eq!(h.engine.preemptions_total(), 0);
}

/// Within a pool at its limit, a higher-priority pod takes the place of
/// lower-priority preemptible ones; they wait behind it, and it is not
/// preempted back.
#[test]
fn a_higher_priority_pod_preempts_lower_ones_of_its_own_pool_at_its_limit() {
    let mut h = Harness::new(
        vec![
            cpu_pool("team", 0.0, 4.0, 1.0),
            cpu_pool("other", 0.0, f64::INFINITY, 1.0),
        ],
        EngineConfig::default(),
    );
    let low = h.create("low", "team", 0, 4);
    let first = h.offer("a1", 16.0);
    assert_eq!(first.len(), 4);
    h.report(&first, TaskState::TaskRunning);
    let high = h.create("high", "team", 5, 2);
    // One pod at a time: each waits for its victim to be gone.
    for _ in 0..2 {
        h.advance(Duration::from_secs(2));
        let killed = h.take_kills();
        assert_eq!(killed.len(), 1, "{killed:?}");
        assert_eq!(job_of(&killed[0]), "low");
        h.report(&killed, TaskState::TaskKilled);
        let placed = h.offer("a1", 12.0);
        assert_eq!(placed.len(), 1, "{placed:?}");
        assert_eq!(job_of(&placed[0]), "high");
        h.report(&placed, TaskState::TaskRunning);
    }
    assert_eq!((h.held(&low), h.held(&high)), (2, 2));
    let reasons = h.store.pending_reasons(&low).unwrap();
    assert!(reasons
        .values()
        .all(|i| i.reason == "pool /team at its limit of 4 cpus"));
    h.advance(Duration::from_secs(5));
    assert!(h.take_kills().is_empty());
}
