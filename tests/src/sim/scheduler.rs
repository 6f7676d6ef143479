//! The scheduler as one simulated process: the real session state machine,
//! the real engine and a real SQLite store, pumped by the production pump
//! (`runner::pump`, `runner::edge`), with its sockets replaced by messages.
//!
//! A crash is a panic with a [`Crash`] payload, raised at a chosen point
//! inside the process (right after a commit is durable, before the engine
//! hears of it; or as a call leaves) and caught by the world, which then
//! drops the process whole: what it held in memory is gone, what it
//! committed stays in its data directory.

use super::net::{Incarnation, Msg};
use drover_proto::v1::scheduler::{call, Call};
use drover_proto::v1::{FrameworkId, TaskState};
use drover_scheduler::engine::{
    Action, ApiRequest, Call as EngineCall, Engine, EngineError, Now, Reply, RequestId,
};
use drover_scheduler::mesos::calls::{self, FrameworkConfig};
use drover_scheduler::mesos::events::SessionEvent;
use drover_scheduler::mesos::session::{self, Session, SessionConfig};
use drover_scheduler::mesos::task_info::ExecutorMode;
use drover_scheduler::model::change::Change;
use drover_scheduler::model::ids::{InstanceId, TaskId};
use drover_scheduler::model::job::Revision;
use drover_scheduler::model::state::PodState;
use drover_scheduler::model::task_user::TaskUserPolicy;
use drover_scheduler::runner::pump::{self, Outbox};
use drover_scheduler::runner::{edge, RunnerConfig};
use drover_scheduler::store::{Snapshot, SqliteStore, Store, StoreError, StoreRead};
use rand::rngs::SmallRng;
use rand::SeedableRng;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

/// The payload of a simulated crash.
#[derive(Debug)]
pub struct Crash;

/// Where the next crash falls, counted from when it is armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// Right after the n-th commit (from 1) is durable, before the engine
    /// is told.
    AfterCommit(u32),
    /// As the n-th call (from 1) is about to leave.
    AtCall(u32),
}

/// What the world must do and check after the process handled an input.
#[derive(Debug, Default)]
pub struct Output {
    /// Messages to send.
    pub msgs: Vec<Msg>,
    /// Streams (by the session's generation) the process closed.
    pub closed: Vec<u64>,
    /// Updates acknowledged: (task id, uuid).
    pub acks: Vec<(String, bytes::Bytes)>,
    /// Tasks launched: every task id in an ACCEPT that left.
    pub launched: Vec<String>,
    /// An acknowledgement left before its update was stored.
    pub unstored_acks: Vec<String>,
    /// Tasks whose TASK_FINISHED the session delivered to the engine.
    pub learned: Vec<String>,
}

/// The store, with a crash that can be armed after a commit.
struct CrashingStore {
    store: SqliteStore,
    crash_after_commit: Option<u32>,
}

impl StoreRead for CrashingStore {
    fn revision(&self) -> Result<Revision, StoreError> {
        self.store.revision()
    }
    fn framework_id(&self) -> Result<Option<String>, StoreError> {
        self.store.framework_id()
    }
    fn identity(&self) -> Result<drover_scheduler::store::StoreIdentity, StoreError> {
        self.store.identity()
    }
    fn job(
        &self,
        id: &drover_scheduler::model::ids::JobId,
    ) -> Result<Option<drover_scheduler::model::job::Job>, StoreError> {
        self.store.job(id)
    }
    fn jobs(
        &self,
        offset: u32,
        limit: u32,
    ) -> Result<(Vec<drover_scheduler::model::job::Job>, u32), StoreError> {
        self.store.jobs(offset, limit)
    }
    fn runs(
        &self,
        job: &drover_scheduler::model::ids::JobId,
    ) -> Result<Vec<drover_scheduler::store::RunRecord>, StoreError> {
        self.store.runs(job)
    }
    fn instance_runs(
        &self,
        instance: &InstanceId,
    ) -> Result<Vec<drover_scheduler::store::RunRecord>, StoreError> {
        self.store.instance_runs(instance)
    }
    fn pod_events(
        &self,
        instance: &InstanceId,
    ) -> Result<Vec<drover_scheduler::store::PodEventRecord>, StoreError> {
        self.store.pod_events(instance)
    }
    fn live_runs(&self) -> Result<Vec<drover_scheduler::store::RunRecord>, StoreError> {
        self.store.live_runs()
    }
    fn pending_reasons(
        &self,
        job: &drover_scheduler::model::ids::JobId,
    ) -> Result<BTreeMap<u32, drover_scheduler::model::change::PendingInfo>, StoreError> {
        self.store.pending_reasons(job)
    }
    fn workflow_events(
        &self,
        job: &drover_scheduler::model::ids::JobId,
        workflow: u32,
        instance: Option<u32>,
    ) -> Result<Vec<drover_scheduler::model::workflow::WorkflowEvent>, StoreError> {
        self.store.workflow_events(job, workflow, instance)
    }
}

impl Store for CrashingStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.store.load()
    }

    fn commit(&mut self, change: &Change) -> Result<Revision, StoreError> {
        let revision = self.store.commit(change)?;
        if let Some(n) = self.crash_after_commit.as_mut() {
            *n -= 1;
            if *n == 0 {
                std::panic::panic_any(Crash);
            }
        }
        Ok(revision)
    }

    fn claim_leadership(
        &mut self,
        replica: &str,
    ) -> Result<drover_scheduler::store::Epoch, StoreError> {
        self.store.claim_leadership(replica)
    }
}

/// Engine calls and replies, gathered while the pump runs.
#[derive(Default)]
struct Gathered {
    calls: Vec<EngineCall>,
    replies: Vec<(RequestId, Result<Reply, EngineError>)>,
}

impl Outbox for Gathered {
    fn send(&mut self, call: EngineCall) {
        self.calls.push(call);
    }
    fn reply(&mut self, request: RequestId, result: Result<Reply, EngineError>) {
        self.replies.push((request, result));
    }
}

/// The scheduler process.
pub struct SchedulerProcess {
    /// Which life of the scheduler this is.
    pub incarnation: Incarnation,
    session: Session,
    engine: Engine,
    store: CrashingStore,
    /// What acknowledgements are checked against.
    reader: SqliteStore,
    crash_at_call: Option<u32>,
    t0: Instant,
    wall0: i64,
    next_request: RequestId,
    /// Answers to API requests, by request.
    pub replies: BTreeMap<RequestId, Result<Reply, EngineError>>,
    /// The state each update this process received said, by uuid: what an
    /// acknowledgement is checked against.
    received: HashMap<bytes::Bytes, TaskState>,
    /// How tasks are executed, as `drover-scheduler`'s `--executor-mode`.
    executor: ExecutorMode,
    /// Who tasks run as.
    task_users: TaskUserPolicy,
}

/// The endpoint the session believes it talks to (never dialled).
const MASTER: &str = "http://master.sim:5050/api/v1/scheduler";

impl SchedulerProcess {
    /// Starts a scheduler on the store in `dir`, as `drover-scheduler`
    /// does: load, recover, subscribe.
    pub fn start(
        incarnation: Incarnation,
        dir: &Path,
        config: RunnerConfig,
        seed: u64,
        t0: Instant,
        wall0: i64,
        now: Duration,
    ) -> Result<(Self, Output), StoreError> {
        let store = SqliteStore::open(dir)?;
        let reader = SqliteStore::open_reader(dir)?;
        let clock = Now {
            instant: t0 + now,
            unix_ms: wall0 + now.as_millis() as i64,
        };
        let RunnerConfig {
            engine: engine_config,
            executor,
            task_users,
        } = config;
        let engine = Engine::recover(store.load()?, engine_config, clock);
        let framework = calls::framework_info(&FrameworkConfig {
            name: "drover".into(),
            user: "sim".into(),
            roles: vec!["*".into()],
            principal: None,
            failover_timeout: Duration::from_secs(7 * 24 * 3600),
        });
        let master = session::Endpoint::from_static(MASTER);
        let framework_id = engine.framework_id().map(|id| FrameworkId {
            value: id.to_owned(),
        });
        let session = Session::new(
            SessionConfig::new(vec![master], framework),
            framework_id,
            SmallRng::seed_from_u64(seed ^ incarnation),
            t0 + now,
        );
        let mut process = SchedulerProcess {
            incarnation,
            session,
            engine,
            store: CrashingStore {
                store,
                crash_after_commit: None,
            },
            reader,
            crash_at_call: None,
            t0,
            wall0,
            next_request: 0,
            replies: BTreeMap::new(),
            received: HashMap::new(),
            executor,
            task_users,
        };
        let mut out = Output::default();
        let actions = process.session.on_start(t0 + now);
        process.session_actions(actions, now, &mut out);
        Ok((process, out))
    }

    /// Arms a crash.
    pub fn arm_crash(&mut self, point: CrashPoint) {
        match point {
            CrashPoint::AfterCommit(n) => self.store.crash_after_commit = Some(n.max(1)),
            CrashPoint::AtCall(n) => self.crash_at_call = Some(n.max(1)),
        }
    }

    /// Disarms any crash armed.
    pub fn disarm_crash(&mut self) {
        self.store.crash_after_commit = None;
        self.crash_at_call = None;
    }

    /// The engine (for checks).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The store's reader (for checks).
    pub fn reader(&self) -> &SqliteStore {
        &self.reader
    }

    fn now(&self, at: Duration) -> Now {
        Now {
            instant: self.t0 + at,
            unix_ms: self.wall0 + at.as_millis() as i64,
        }
    }

    /// When the process must next be ticked.
    pub fn next_deadline(&self) -> Option<Duration> {
        [self.session.next_deadline(), self.engine.next_deadline()]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_duration_since(self.t0))
    }

    /// Time passes: the session's timers, then the engine's due work.
    pub fn on_tick(&mut self, at: Duration) -> Output {
        let mut out = Output::default();
        let instant = self.t0 + at;
        if self.session.next_deadline().is_some_and(|d| d <= instant) {
            let actions = self.session.on_tick(instant);
            self.session_actions(actions, at, &mut out);
        }
        while self.engine.next_deadline().is_some_and(|d| d <= instant) {
            let actions = self.engine.on_tick(self.now(at));
            self.engine_actions(actions, at, &mut out);
        }
        out
    }

    /// An API request; its answer lands in [`SchedulerProcess::replies`].
    pub fn api(&mut self, request: ApiRequest, at: Duration) -> (RequestId, Output) {
        let id = self.next_request;
        self.next_request += 1;
        let mut out = Output::default();
        // The simulated users are admins: access is tested apart.
        let caller = drover_scheduler::model::access::Identity::system();
        let actions = self.engine.on_api(id, request, &caller, self.now(at));
        self.engine_actions(actions, at, &mut out);
        (id, out)
    }

    /// A message from the master, for the session's connection `generation`.
    pub fn on_msg(&mut self, msg: Msg, generation: u64, at: Duration) -> Output {
        let mut out = Output::default();
        let instant = self.t0 + at;
        let actions = match msg {
            Msg::Subscribed { response, .. } => self
                .session
                .on_subscribe_response(generation, response, instant),
            Msg::Event { event, .. } => {
                if let Some(status) = event.update.as_ref().map(|u| &u.status) {
                    if let Some(uuid) = &status.uuid {
                        self.received.insert(uuid.clone(), status.state());
                    }
                }
                self.session.on_event(generation, *event, instant)
            }
            Msg::Closed { .. } => self.session.on_stream_closed(generation, instant),
            Msg::Answered { response, .. } => {
                self.session.on_call_response(generation, response, instant)
            }
            Msg::Subscribe { .. } | Msg::Call { .. } | Msg::Hangup { .. } => Vec::new(),
        };
        self.session_actions(actions, at, &mut out);
        out
    }

    fn session_actions(&mut self, actions: Vec<session::Action>, at: Duration, out: &mut Output) {
        let mut updates = Vec::new();
        for action in actions {
            match action {
                session::Action::Connect {
                    generation, call, ..
                } => {
                    let Some(subscribe) = call.subscribe else {
                        continue;
                    };
                    out.msgs.push(Msg::Subscribe {
                        incarnation: self.incarnation,
                        generation,
                        subscribe,
                    });
                }
                session::Action::Close { generation, .. } => out.closed.push(generation),
                session::Action::Send {
                    stream_id,
                    generation,
                    call,
                    ..
                } => self.leave(*call, stream_id.0, generation, out),
                session::Action::Deliver(SessionEvent::Update(update)) => {
                    if update.state == TaskState::TaskFinished {
                        out.learned.push(update.task_id.clone());
                    }
                    updates.push(update);
                }
                session::Action::Deliver(event) => {
                    let now = self.now(at);
                    let actions = edge::deliver(&mut self.engine, event, now);
                    self.engine_actions(actions, at, out);
                }
                // The simulated master answers for the framework it was
                // asked for: a stop here is a bug in the simulation.
                session::Action::Stop(error) => panic!("the simulated session stopped: {error}"),
            }
        }
        // A session delivers a stream's updates as they come; the runner
        // batches what arrived together, and so does this.
        if !updates.is_empty() {
            let actions = self.engine.on_updates(updates, self.now(at));
            self.engine_actions(actions, at, out);
        }
    }

    /// Carries out the engine's actions through the production pump; the
    /// calls then go through the session, as the driver sends them.
    fn engine_actions(&mut self, actions: Vec<Action>, at: Duration, out: &mut Output) {
        let mut gathered = Gathered::default();
        let (t0, wall0) = (self.t0, self.wall0);
        let mut now = move || Now {
            instant: t0 + at,
            unix_ms: wall0 + at.as_millis() as i64,
        };
        pump::carry_out(
            &mut self.engine,
            &mut self.store,
            actions,
            &mut now,
            &mut gathered,
        );
        for (request, result) in gathered.replies {
            self.replies.insert(request, result);
        }
        for call in gathered.calls {
            let proto = edge::to_mesos(call, &self.executor, &self.task_users);
            let actions = self.session.on_call(proto);
            self.session_actions(actions, at, out);
        }
    }

    /// A call leaves for the master (the crash point, and the checks of
    /// what leaves).
    fn leave(&mut self, call: Call, stream_id: String, generation: u64, out: &mut Output) {
        if let Some(n) = self.crash_at_call.as_mut() {
            *n -= 1;
            if *n == 0 {
                std::panic::panic_any(Crash);
            }
        }
        match call.r#type.and_then(|t| call::Type::try_from(t).ok()) {
            Some(call::Type::Acknowledge) => {
                if let Some(ack) = &call.acknowledge {
                    if !self.is_stored(&ack.task_id.value, &ack.uuid) {
                        out.unstored_acks.push(ack.task_id.value.clone());
                    }
                    out.acks.push((ack.task_id.value.clone(), ack.uuid.clone()));
                }
            }
            Some(call::Type::Accept) => {
                if let Some(accept) = &call.accept {
                    for op in &accept.operations {
                        if let Some(launch) = &op.launch {
                            out.launched
                                .extend(launch.task_infos.iter().map(|t| t.task_id.value.clone()));
                        }
                    }
                }
            }
            _ => {}
        }
        out.msgs.push(Msg::Call {
            incarnation: self.incarnation,
            generation,
            stream_id,
            call: Box::new(call),
        });
    }

    /// Whether the update an acknowledgement is for is in the store: its
    /// task's run holds the update's state, or its pod's history records
    /// it. Updates for tasks that are not a stored job's are not stored at
    /// all, and count as stored.
    fn is_stored(&self, task: &str, uuid: &bytes::Bytes) -> bool {
        let Some(&state) = self.received.get(uuid) else {
            return true;
        };
        let Ok(task) = TaskId::parse(task) else {
            return true;
        };
        let Ok(Some(_)) = self.reader.job(&task.instance.job) else {
            return true;
        };
        let runs = self
            .reader
            .instance_runs(&task.instance)
            .unwrap_or_default();
        let Some(run) = runs.iter().find(|r| r.task_id.run == task.run) else {
            return true;
        };
        let state = PodState::from_task_state(state);
        if run.run.state == state {
            return true;
        }
        self.reader
            .pod_events(&task.instance)
            .unwrap_or_default()
            .iter()
            .any(|e| e.task_id.run == task.run && e.state == state)
    }
}
