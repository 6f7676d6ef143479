//! The engine's runner with a real SQLite store and the driver replaced by its
//! call channel: the order of durable writes and calls, which the crash
//! safety of the whole scheduler rests on.
#![allow(clippy::unwrap_used)]

use drover_proto::v1::scheduler::{call, Call};
use drover_proto::v1::TaskState;
use drover_scheduler::engine::ApiRequest;
use drover_scheduler::mesos::driver::DriverHandle;
use drover_scheduler::mesos::events::SessionEvent;
use drover_scheduler::mesos::task_info::ExecutorMode;
use drover_scheduler::metrics::Metrics;
use drover_scheduler::model::ids::{AgentId, JobId, OfferId};
use drover_scheduler::model::offer::Offer;
use drover_scheduler::model::resources::Resources;
use drover_scheduler::model::spec::JobSpec;
use drover_scheduler::model::state::PodState;
use drover_scheduler::model::task_update::TaskUpdate;
use drover_scheduler::runner::{ApiCommand, Published, Runner, RunnerConfig};
use drover_scheduler::store::{SqliteStore, StoreRead};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

struct Harness {
    dir: tempfile::TempDir,
    events: mpsc::Sender<SessionEvent>,
    api: mpsc::Sender<ApiCommand>,
    calls: mpsc::Receiver<Call>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Harness {
    fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let (call_tx, calls) = mpsc::channel(1024);
        let metrics = Arc::new(Metrics::default());
        // drover-scheduler's default: a drover-executor per task.
        let mut config = RunnerConfig::new(ExecutorMode::drover("drover-executor".into()));
        config.engine.offer_hold = Duration::from_millis(10);
        let runner = Runner::start(
            Box::new(store),
            DriverHandle::new(call_tx, metrics.clone()),
            config,
            Published::default(),
            metrics,
        )
        .unwrap();
        let (events, event_rx) = mpsc::channel(64);
        let (api, api_rx) = mpsc::channel(64);
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runner.run(event_rx, api_rx, shutdown.clone()));
        Harness {
            dir,
            events,
            api,
            calls,
            shutdown,
            task,
        }
    }

    fn reader(&self) -> SqliteStore {
        SqliteStore::open_reader(self.dir.path()).unwrap()
    }

    /// The next call of `kind`, skipping others.
    async fn next_call(&mut self, kind: call::Type) -> Call {
        loop {
            let call = tokio::time::timeout(Duration::from_secs(10), self.calls.recv())
                .await
                .unwrap_or_else(|_| panic!("no {kind:?} call within 10 s"))
                .unwrap();
            if call.r#type == Some(kind as i32) {
                return call;
            }
        }
    }

    async fn create_job(&self, id: &str, instances: u32) {
        let spec: JobSpec = serde_json::from_value(serde_json::json!({
            "type": "BATCH", "name": "t", "instance_count": instances,
            "default_spec": {"containers": [{
                "resource": {"cpu_limit": 1, "mem_limit_mb": 32},
                "command": {"value": "true"}
            }]}
        }))
        .unwrap();
        let (reply, rx) = oneshot::channel();
        self.api
            .send(ApiCommand {
                request: ApiRequest::CreateJob {
                    job_id: JobId(id.into()),
                    spec: Box::new(spec),
                    create: None,
                },
                caller: std::sync::Arc::new(drover_scheduler::model::access::Identity::anonymous()),
                reply,
            })
            .await
            .unwrap();
        rx.await.unwrap().unwrap();
    }

    async fn mesos(&self, event: SessionEvent) {
        self.events.send(event).await.unwrap();
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.unwrap();
    }
}

/// One offer of `cpus` and 1,000 MiB for role `*` (what the session
/// delivers for such a Mesos offer; `mesos/offers.rs` tests that).
fn offer(id: &str, agent: &str, cpus: f64) -> SessionEvent {
    SessionEvent::Offers(vec![Offer {
        id: OfferId(id.into()),
        agent_id: AgentId::new(agent),
        hostname: format!("{agent}.host"),
        allocation_role: Some("*".into()),
        resources: Resources {
            cpus,
            mem_mib: 1000.0,
            ..Default::default()
        },
        ports: Default::default(),
        attributes: Default::default(),
        unavailability: None,
    }])
}

fn update(task: &str, state: TaskState, uuid: Option<&[u8]>) -> SessionEvent {
    SessionEvent::Update(TaskUpdate {
        task_id: task.into(),
        state,
        reason: None,
        message: None,
        healthy: None,
        ready: None,
        agent_id: Some(AgentId::new("a1")),
        timestamp: Some(1_700_000_000_000),
        unreachable_since: None,
        image: None,
        data: None,
        uuid: uuid.map(bytes::Bytes::copy_from_slice),
    })
}

async fn subscribe(h: &mut Harness) {
    h.events
        .send(SessionEvent::Subscribed {
            framework_id: "fw".into(),
        })
        .await
        .unwrap();
    // Implicit reconciliation always follows SUBSCRIBED.
    let reconcile = h.next_call(call::Type::Reconcile).await;
    assert!(reconcile.reconcile.unwrap().tasks.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_intents_are_durable_before_the_accept_is_sent() {
    let mut h = Harness::start();
    subscribe(&mut h).await;
    h.create_job("j", 3).await;
    h.next_call(call::Type::Revive).await;
    // Room for two of the three instances (1 cpu each, and its executor's
    // 0.01).
    h.mesos(offer("o1", "a1", 2.5)).await;
    let accept = h.next_call(call::Type::Accept).await;
    // The moment the ACCEPT leaves, the store already holds every task in it.
    let reader = h.reader();
    let accept = accept.accept.unwrap();
    assert_eq!(accept.offer_ids[0].value, "o1");
    let tasks = &accept.operations[0].launch.as_ref().unwrap().task_infos;
    assert_eq!(tasks.len(), 2);
    let runs = reader.runs(&JobId("j".into())).unwrap();
    for task in tasks {
        let run = runs
            .iter()
            .find(|r| r.task_id.to_string() == task.task_id.value)
            .unwrap_or_else(|| panic!("{} launched without intent", task.task_id.value));
        assert_eq!(run.run.state, PodState::Launching);
        assert_eq!(run.run.agent, Some(AgentId::new("a1")));
    }
    assert_eq!(runs.len(), 2, "the third instance still waits");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_are_acknowledged_only_after_they_are_stored() {
    let mut h = Harness::start();
    subscribe(&mut h).await;
    h.create_job("j", 1).await;
    h.mesos(offer("o1", "a1", 4.0)).await;
    h.next_call(call::Type::Accept).await;
    let uuid = [7u8; 16];
    h.mesos(update("j-0-0", TaskState::TaskRunning, Some(&uuid)))
        .await;
    let ack = h
        .next_call(call::Type::Acknowledge)
        .await
        .acknowledge
        .unwrap();
    assert_eq!(ack.task_id.value, "j-0-0");
    assert_eq!(&ack.uuid[..], &uuid);
    let runs = h.reader().runs(&JobId("j".into())).unwrap();
    assert_eq!(
        runs[0].run.state,
        PodState::Running,
        "stored before the ack"
    );

    // A master-generated update (no uuid) is stored but never acknowledged:
    // the next ack is for the update sent after it.
    h.mesos(update("j-0-0", TaskState::TaskFinished, None))
        .await;
    h.mesos(update(
        "other-0-0",
        TaskState::TaskFinished,
        Some(&[9u8; 16]),
    ))
    .await;
    let next = h
        .next_call(call::Type::Acknowledge)
        .await
        .acknowledge
        .unwrap();
    assert_eq!(next.task_id.value, "other-0-0");
    let runs = h.reader().runs(&JobId("j".into())).unwrap();
    assert_eq!(runs[0].run.state, PodState::Succeeded);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resubscription_reconciles_every_live_run_explicitly() {
    let mut h = Harness::start();
    subscribe(&mut h).await;
    h.create_job("j", 2).await;
    h.mesos(offer("o1", "a1", 4.0)).await;
    h.next_call(call::Type::Accept).await;
    h.events.send(SessionEvent::Disconnected).await.unwrap();
    h.events
        .send(SessionEvent::Subscribed {
            framework_id: "fw".into(),
        })
        .await
        .unwrap();
    let explicit = h.next_call(call::Type::Reconcile).await.reconcile.unwrap();
    let mut tasks: Vec<_> = explicit
        .tasks
        .iter()
        .map(|t| t.task_id.value.clone())
        .collect();
    tasks.sort();
    assert_eq!(tasks, vec!["j-0-0", "j-1-0"]);
    assert!(explicit
        .tasks
        .iter()
        .all(|t| t.agent_id.as_ref().unwrap().value == "a1"));
    let implicit = h.next_call(call::Type::Reconcile).await.reconcile.unwrap();
    assert!(implicit.tasks.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_framework_loses_its_runs_and_its_id_and_the_runs_are_replaced() {
    let mut h = Harness::start();
    subscribe(&mut h).await;
    h.create_job("j", 1).await;
    h.mesos(offer("o1", "a1", 4.0)).await;
    h.next_call(call::Type::Accept).await;
    h.events
        .send(SessionEvent::FrameworkRemoved { old: "fw".into() })
        .await
        .unwrap();
    // A new framework subscribes; the lost run is replaced by run 1.
    h.events
        .send(SessionEvent::Subscribed {
            framework_id: "fw2".into(),
        })
        .await
        .unwrap();
    h.mesos(offer("o2", "a1", 4.0)).await;
    let accept = h.next_call(call::Type::Accept).await.accept.unwrap();
    let task = &accept.operations[0].launch.as_ref().unwrap().task_infos[0];
    assert_eq!(task.task_id.value, "j-0-1");
    let reader = h.reader();
    let runs = reader.runs(&JobId("j".into())).unwrap();
    assert_eq!(runs[0].run.state, PodState::Lost);
    assert_eq!(
        runs[0].run.reason,
        Some(drover_proto::v1::task_status::Reason::FrameworkRemoved)
    );
    assert_eq!(reader.framework_id().unwrap().as_deref(), Some("fw2"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_offers_are_declined_and_live_strangers_are_killed() {
    let mut h = Harness::start();
    subscribe(&mut h).await;
    // Nothing pending: the offer is declined with the long refuse filter.
    h.mesos(offer("o1", "a1", 4.0)).await;
    let decline = h.next_call(call::Type::Decline).await.decline.unwrap();
    assert_eq!(decline.offer_ids[0].value, "o1");
    assert_eq!(decline.filters.unwrap().refuse_seconds, Some(5.0));
    // A live task no job knows is killed (and its update still acknowledged).
    h.mesos(update(
        "ghost-0-0",
        TaskState::TaskRunning,
        Some(&[1u8; 16]),
    ))
    .await;
    let kill = h.next_call(call::Type::Kill).await.kill.unwrap();
    assert_eq!(kill.task_id.value, "ghost-0-0");
    h.next_call(call::Type::Acknowledge).await;
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_offer_is_kept_for_the_next_job_and_declined_when_the_hold_ends() {
    let mut h = Harness::start();
    subscribe(&mut h).await;
    // Nothing pending: the offer is kept (the hold is 1 s by default)...
    h.mesos(offer("o1", "a1", 4.0)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so a job created now launches on it, without waiting for the master.
    h.create_job("j", 1).await;
    let accept = loop {
        let call = tokio::time::timeout(Duration::from_secs(10), h.calls.recv())
            .await
            .unwrap()
            .unwrap();
        assert_ne!(
            call.r#type,
            Some(call::Type::Decline as i32),
            "the idle offer was declined before the job came"
        );
        if call.r#type == Some(call::Type::Accept as i32) {
            break call.accept.unwrap();
        }
    };
    assert_eq!(accept.offer_ids[0].value, "o1");
    // An offer no run needs is declined, with the long filter, once the
    // hold is over.
    h.mesos(offer("o2", "a2", 4.0)).await;
    let decline = h.next_call(call::Type::Decline).await.decline.unwrap();
    assert_eq!(decline.offer_ids[0].value, "o2");
    assert_eq!(decline.filters.unwrap().refuse_seconds, Some(5.0));
    h.stop().await;
}
