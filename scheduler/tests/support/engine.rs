//! The engine in process, over a real SQLite store, pumped by hand on a
//! clock the test moves (no sockets, no tokio): what `engine.rs`,
//! `engine_pools.rs` and `engine_maintenance.rs` drive. Each of those
//! adds the few steps of its own in an `impl Harness` block of its own.

use drover_proto::v1::TaskState;
use drover_scheduler::engine::{
    Action, ApiRequest, Call, Engine, EngineConfig, EngineError, Now, OperatorCall, Reply,
    RequestId,
};
use drover_scheduler::model::access::Identity;
use drover_scheduler::model::ids::{AgentId, InstanceId, JobId, OfferId};
use drover_scheduler::model::offer::Offer;
use drover_scheduler::model::port_ranges::PortRanges;
use drover_scheduler::model::resources::Resources;
use drover_scheduler::model::spec::JobSpec;
use drover_scheduler::model::task_update::TaskUpdate;
use drover_scheduler::runner::pump::{self, Outbox};
use drover_scheduler::store::{PodEventRecord, RunRecord, SqliteStore, Store, StoreRead};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// The wall clock (unix ms) at the harness's time zero.
pub const WALL0: i64 = 1_700_000_000_000;

/// What the engine sent and answered.
#[derive(Default)]
pub struct Sent {
    /// Calls for the master not yet taken by the test.
    pub calls: Vec<Call>,
    /// Every call ever sent (`calls` is taken as tests go).
    pub history: Vec<Call>,
    /// Calls for the master's operator API.
    pub operator: Vec<OperatorCall>,
    /// Answers to API requests not yet taken.
    pub replies: BTreeMap<RequestId, Result<Reply, EngineError>>,
}

impl Outbox for Sent {
    fn send(&mut self, call: Call) {
        self.history.push(call.clone());
        self.calls.push(call);
    }

    fn operator(&mut self, call: OperatorCall) {
        self.operator.push(call);
    }

    fn reply(&mut self, request: RequestId, result: Result<Reply, EngineError>) {
        self.replies.insert(request, result);
    }
}

/// An engine, its store, the test's clock, and what the engine sent.
pub struct Harness {
    pub engine: Engine,
    pub store: SqliteStore,
    pub dir: tempfile::TempDir,
    pub config: EngineConfig,
    pub t0: Instant,
    /// Time since `t0`, moved only by the test.
    pub clock: Duration,
    pub out: Sent,
    pub next_request: RequestId,
    /// Numbers offers made by [`Harness::offer_cpus`].
    pub next_offer: u32,
}

impl Harness {
    /// An engine with the default configuration over an empty store.
    pub fn new() -> Harness {
        Harness::with_config(EngineConfig::default())
    }

    /// An engine with `config` over an empty store.
    pub fn with_config(config: EngineConfig) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let t0 = Instant::now();
        let now = Now {
            instant: t0,
            unix_ms: WALL0,
        };
        let engine = Engine::recover(store.load().unwrap(), config.clone(), now);
        Harness {
            engine,
            store,
            dir,
            config,
            t0,
            clock: Duration::ZERO,
            out: Sent::default(),
            next_request: 0,
            next_offer: 0,
        }
    }

    /// The engine as a restarted scheduler builds it from the same store
    /// (what the process held in memory is gone; it is not subscribed).
    pub fn restart(&mut self) {
        let reader = SqliteStore::open_reader(self.dir.path()).unwrap();
        self.engine = Engine::recover(reader.load().unwrap(), self.config.clone(), self.now());
    }

    pub fn now(&self) -> Now {
        Now {
            instant: self.t0 + self.clock,
            unix_ms: WALL0 + self.clock.as_millis() as i64,
        }
    }

    /// Carries out the engine's actions as the runner does.
    pub fn carry_out(&mut self, actions: Vec<Action>) {
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

    pub fn api(&mut self, request: ApiRequest) -> Result<Reply, EngineError> {
        self.api_as(&Identity::system(), request)
    }

    pub fn api_as(&mut self, caller: &Identity, request: ApiRequest) -> Result<Reply, EngineError> {
        let id = self.next_request;
        self.next_request += 1;
        let actions = self.engine.on_api(id, request, caller, self.now());
        self.carry_out(actions);
        self.out
            .replies
            .remove(&id)
            .expect("every request is answered")
    }

    /// Creates job `id` (it must be accepted).
    pub fn create(&mut self, id: &str, spec: JobSpec) -> JobId {
        let job_id = JobId::parse(id).unwrap();
        self.api(ApiRequest::CreateJob {
            job_id: job_id.clone(),
            spec: Box::new(spec),
            create: None,
        })
        .unwrap();
        job_id
    }

    /// Runs every due tick at the current time.
    pub fn settle(&mut self) {
        while self
            .engine
            .next_deadline()
            .is_some_and(|d| d <= self.now().instant)
        {
            let actions = self.engine.on_tick(self.now());
            self.carry_out(actions);
        }
    }

    pub fn advance(&mut self, by: Duration) {
        self.clock += by;
        self.settle();
    }

    /// The session subscribed: the engine may send calls.
    pub fn subscribe(&mut self) {
        let actions = self.engine.on_subscribed("fw".into(), self.now());
        self.carry_out(actions);
        self.settle();
    }

    /// The master offers `offer`.
    pub fn give(&mut self, offer: Offer) {
        let actions = self.engine.on_offers(vec![offer], self.now());
        self.carry_out(actions);
    }

    /// Feeds updates in one session batch, then lets the engine store them.
    pub fn updates(&mut self, updates: Vec<TaskUpdate>) {
        let actions = self.engine.on_updates(updates, self.now());
        self.carry_out(actions);
        self.advance(Duration::from_millis(5));
    }

    pub fn runs(&self, job: &JobId) -> Vec<RunRecord> {
        self.store.runs(job).unwrap()
    }

    pub fn events(&self, job: &JobId, instance: u32) -> Vec<PodEventRecord> {
        self.store
            .pod_events(&InstanceId::new(job.clone(), instance))
            .unwrap()
    }

    pub fn take_calls(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.out.calls)
    }
}

/// Offer `id` of `cpus`, 4 GiB of memory and of disk and ports
/// 31000-31010, from agent `agent` on host `{agent}.host`, in no
/// maintenance window.
pub fn offer_of(id: &str, agent: &str, cpus: f64) -> Offer {
    Offer {
        id: OfferId(id.into()),
        agent_id: AgentId::new(agent),
        hostname: format!("{agent}.host"),
        allocation_role: Some("*".into()),
        resources: Resources {
            cpus,
            mem_mib: 4096.0,
            disk_mib: 4096.0,
            gpus: 0.0,
        },
        ports: PortRanges::new([(31000, 31010)]),
        attributes: BTreeMap::new(),
        unavailability: None,
    }
}

/// A status update for `task` on `agent` at `at` ms after time zero (its
/// uuid says which, so a resent update is the same).
pub fn update_on(task: &str, agent: &str, state: TaskState, at: i64) -> TaskUpdate {
    TaskUpdate {
        task_id: task.into(),
        state,
        reason: None,
        message: None,
        healthy: None,
        ready: None,
        agent_id: Some(AgentId::new(agent)),
        timestamp: Some(WALL0 + at),
        unreachable_since: None,
        image: None,
        data: None,
        uuid: Some(bytes::Bytes::from(format!("{task}-{state:?}-{at}"))),
    }
}

/// The tasks the calls kill, in order.
pub fn kills(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Kill { task_id, .. } => Some(task_id.clone()),
            _ => None,
        })
        .collect()
}
