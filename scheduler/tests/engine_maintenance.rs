//! Host maintenance in the engine over a real SQLite store, pumped by
//! hand: an operator's drain goes DRAINING → DRAINED (the operator call
//! asked) → DOWN (the master agreed) and back UP, and survives a restart;
//! an inverse offer drains its host and is accepted once the host is
//! empty, and a rescind cancels the drain; offers of hosts in or near
//! maintenance are declined, never used.

#![allow(clippy::unwrap_used)]

use drover_proto::v1::TaskState;
use drover_scheduler::engine::{
    Action, ApiRequest, Call, Engine, EngineConfig, EngineError, Now, OperatorCall, Reply,
    RequestId,
};
use drover_scheduler::model::access::{Identity, Role};
use drover_scheduler::model::host::{HostState, Unavailability};
use drover_scheduler::model::ids::{AgentId, JobId, OfferId};
use drover_scheduler::model::offer::Offer;
use drover_scheduler::model::port_ranges::PortRanges;
use drover_scheduler::model::resources::Resources;
use drover_scheduler::model::spec::JobSpec;
use drover_scheduler::model::task_update::TaskUpdate;
use drover_scheduler::runner::pump::{self, Outbox};
use drover_scheduler::store::{SqliteStore, Store, StoreRead};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const WALL0: i64 = 1_700_000_000_000;

#[derive(Default)]
struct Sent {
    calls: Vec<Call>,
    /// Every call ever sent (`calls` is taken as tests go).
    history: Vec<Call>,
    operator: Vec<OperatorCall>,
    replies: BTreeMap<RequestId, Result<Reply, EngineError>>,
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

struct Harness {
    engine: Engine,
    store: SqliteStore,
    dir: tempfile::TempDir,
    t0: Instant,
    clock: Duration,
    out: Sent,
    next: RequestId,
}

impl Harness {
    fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let t0 = Instant::now();
        let now = Now {
            instant: t0,
            unix_ms: WALL0,
        };
        let engine = Engine::recover(store.load().unwrap(), EngineConfig::default(), now);
        Harness {
            engine,
            store,
            dir,
            t0,
            clock: Duration::ZERO,
            out: Sent::default(),
            next: 0,
        }
    }

    /// The engine as a restarted scheduler builds it from the same store.
    fn restart(&mut self) {
        let reader = SqliteStore::open_reader(self.dir.path()).unwrap();
        self.engine = Engine::recover(reader.load().unwrap(), EngineConfig::default(), self.now());
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

    fn api_as(&mut self, caller: &Identity, request: ApiRequest) -> Result<Reply, EngineError> {
        let id = self.next;
        self.next += 1;
        let actions = self.engine.on_api(id, request, caller, self.now());
        self.carry_out(actions);
        self.out.replies.remove(&id).unwrap()
    }

    fn api(&mut self, request: ApiRequest) -> Result<Reply, EngineError> {
        self.api_as(&Identity::system(), request)
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

    fn offer(&mut self, id: &str, agent: &str, unavailability: Option<Unavailability>) {
        let offer = Offer {
            id: OfferId(id.into()),
            agent_id: AgentId::new(agent),
            hostname: format!("{agent}.host"),
            allocation_role: Some("*".into()),
            resources: Resources {
                cpus: 8.0,
                mem_mib: 4096.0,
                disk_mib: 4096.0,
                gpus: 0.0,
            },
            ports: PortRanges::new([(31000, 31010)]),
            attributes: BTreeMap::new(),
            unavailability,
        };
        let actions = self.engine.on_offers(vec![offer], self.now());
        self.carry_out(actions);
    }

    fn updates(&mut self, updates: Vec<TaskUpdate>) {
        let actions = self.engine.on_updates(updates, self.now());
        self.carry_out(actions);
        self.advance(Duration::from_millis(5));
    }

    fn host(&self, hostname: &str) -> HostState {
        self.engine
            .hosts()
            .into_iter()
            .find(|h| h.hostname == hostname)
            .map_or(HostState::Up, |h| h.state)
    }

    fn take_calls(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.out.calls)
    }
}

fn spec(instances: u32) -> JobSpec {
    serde_json::from_value(serde_json::json!({
        "type": "SERVICE", "name": "t", "instance_count": instances,
        "sla": {"maximum_unavailable_instances": 1},
        "default_spec": {
            "kill_grace_period_seconds": 1,
            "containers": [{
                "resource": {"cpu_limit": 0.5, "mem_limit_mb": 32},
                "command": {"value": "sleep 100"}
            }]
        }
    }))
    .unwrap()
}

fn update(task: &str, agent: &str, state: TaskState, at: i64) -> TaskUpdate {
    TaskUpdate {
        task_id: task.into(),
        state,
        reason: None,
        message: None,
        healthy: None,
        agent_id: Some(AgentId::new(agent)),
        timestamp: Some(WALL0 + at),
        unreachable_since: None,
        data: None,
        uuid: Some(bytes::Bytes::from(format!("{task}-{state:?}-{at}"))),
    }
}

fn kills(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .filter_map(|c| match c {
            Call::Kill { task_id, .. } => Some(task_id.clone()),
            _ => None,
        })
        .collect()
}

/// A 2-instance service RUNNING on agent a1 (host `a1.host`); agent a2
/// has been seen too.
fn running_on_a1(h: &mut Harness) -> JobId {
    let job = JobId::parse("j").unwrap();
    h.api(ApiRequest::CreateJob {
        job_id: job.clone(),
        spec: Box::new(spec(2)),
        create: None,
    })
    .unwrap();
    let actions = h.engine.on_subscribed("fw".into(), h.now());
    h.carry_out(actions);
    h.settle();
    h.offer("o1", "a1", None);
    h.advance(Duration::from_millis(20));
    h.offer("o2", "a2", None);
    h.advance(Duration::from_secs(2));
    let at = h.clock.as_millis() as i64;
    h.updates(vec![
        update("j-0-0", "a1", TaskState::TaskRunning, at),
        update("j-1-0", "a1", TaskState::TaskRunning, at),
    ]);
    h.advance(Duration::from_secs(2));
    h.take_calls();
    job
}

fn drain(hosts: &[&str]) -> ApiRequest {
    ApiRequest::StartMaintenance {
        hostnames: hosts.iter().map(|h| (*h).to_owned()).collect(),
        batch_grace: Duration::ZERO,
    }
}

/// Moves the drain along: each killed run ends, its replacement runs on
/// a2; until a1 has nothing. Returns the most runs killed and not yet
/// replaced at once.
fn move_off_a1(h: &mut Harness) -> usize {
    let mut worst = 0;
    for _ in 0..10 {
        h.advance(Duration::from_secs(1));
        let killed = kills(&h.take_calls());
        worst = worst.max(killed.len());
        if killed.is_empty() && h.host("a1.host") != HostState::Draining {
            break;
        }
        let at = h.clock.as_millis() as i64;
        h.updates(
            killed
                .iter()
                .map(|t| update(t, "a1", TaskState::TaskKilled, at))
                .collect(),
        );
        h.offer(&format!("o-{at}"), "a2", None);
        h.advance(Duration::from_millis(20));
        let launched: Vec<TaskUpdate> = h
            .store
            .runs(&JobId::parse("j").unwrap())
            .unwrap()
            .iter()
            .filter(|r| r.run.state.is_live() && r.run.agent == Some(AgentId::new("a2")))
            .map(|r| update(&r.task_id.to_string(), "a2", TaskState::TaskRunning, at))
            .collect();
        h.updates(launched);
    }
    worst
}

#[test]
fn an_operators_drain_goes_draining_drained_down_and_back_up() {
    let mut h = Harness::new();
    running_on_a1(&mut h);
    // Users may not drain; an unknown host is refused.
    let user = Identity {
        name: "u".into(),
        role: Role::User,
        teams: Vec::new(),
        anonymous: false,
    };
    assert!(matches!(
        h.api_as(&user, drain(&["a1.host"])),
        Err(EngineError::PermissionDenied(_))
    ));
    assert_eq!(
        h.api(drain(&["nowhere"])).unwrap_err().to_string(),
        "host nowhere is not a known agent"
    );
    let reply = h.api(drain(&["a1.host"])).unwrap();
    assert!(matches!(reply, Reply::Hosts(ref hosts) if hosts[0].1 == HostState::Draining));
    // One at a time (max unavailable 1), replacements on a2.
    let worst = move_off_a1(&mut h);
    assert_eq!(worst, 1, "more than the budget moved at once");
    h.advance(Duration::from_secs(1));
    assert_eq!(h.host("a1.host"), HostState::Drained);
    assert_eq!(
        h.out.operator,
        vec![OperatorCall::StartMaintenance {
            hostnames: vec!["a1.host".into()]
        }]
    );
    // A new offer of a1 is declined, never used.
    h.offer("o-a1", "a1", None);
    assert!(h
        .take_calls()
        .iter()
        .any(|c| matches!(c, Call::Decline { offer_ids, .. } if offer_ids[0].0 == "o-a1")));
    // An inverse offer for the drained host is accepted at once.
    let window = Unavailability {
        start: WALL0,
        duration: None,
    };
    let actions = h
        .engine
        .on_inverse_offer("io-9".into(), AgentId::new("a1"), window, h.now());
    h.carry_out(actions);
    assert!(h.out.history.contains(&Call::AcceptInverseOffers {
        inverse_offer_ids: vec!["io-9".into()]
    }));
    assert_eq!(h.host("a1.host"), HostState::Drained);
    // The master agreed: DOWN, and so after a restart.
    let actions = h.engine.on_operator_result(
        OperatorCall::StartMaintenance {
            hostnames: vec!["a1.host".into()],
        },
        Ok(()),
        h.now(),
    );
    h.carry_out(actions);
    assert_eq!(h.host("a1.host"), HostState::Down);
    h.restart();
    assert_eq!(h.host("a1.host"), HostState::Down);
    // Complete: UP, the master told, offers revived.
    h.out.operator.clear();
    let reply = h
        .api(ApiRequest::CompleteMaintenance {
            hostnames: vec!["a1.host".into()],
        })
        .unwrap();
    assert!(matches!(reply, Reply::Hosts(ref hosts) if hosts[0].1 == HostState::Up));
    assert_eq!(
        h.out.operator,
        vec![OperatorCall::StopMaintenance {
            hostnames: vec!["a1.host".into()]
        }]
    );
    assert!(h.take_calls().contains(&Call::Revive));
    assert_eq!(h.host("a1.host"), HostState::Up);
}

#[test]
fn an_inverse_offer_drains_its_host_and_is_accepted_once_empty() {
    let mut h = Harness::new();
    running_on_a1(&mut h);
    let window = Unavailability {
        start: WALL0 + 3_600_000,
        duration: Some(Duration::from_secs(600)),
    };
    let actions = h
        .engine
        .on_inverse_offer("io-1".into(), AgentId::new("a1"), window, h.now());
    h.carry_out(actions);
    assert_eq!(h.host("a1.host"), HostState::Draining);
    move_off_a1(&mut h);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.host("a1.host"), HostState::Drained);
    let calls = h.out.history.clone();
    assert!(
        calls.contains(&Call::AcceptInverseOffers {
            inverse_offer_ids: vec!["io-1".into()]
        }),
        "{calls:?}"
    );
    // Drover takes nothing DOWN itself: the operator does.
    assert!(h.out.operator.is_empty());
    // Rescinded: the drain is over.
    let actions = h.engine.on_inverse_rescind("io-1", h.now());
    h.carry_out(actions);
    assert_eq!(h.host("a1.host"), HostState::Up);
}

#[test]
fn offers_whose_maintenance_window_is_near_are_declined() {
    let mut h = Harness::new();
    let job = JobId::parse("j").unwrap();
    h.api(ApiRequest::CreateJob {
        job_id: job.clone(),
        spec: Box::new(spec(1)),
        create: None,
    })
    .unwrap();
    let actions = h.engine.on_subscribed("fw".into(), h.now());
    h.carry_out(actions);
    h.settle();
    h.take_calls();
    let soon = Unavailability {
        start: WALL0 + 60_000,
        duration: None,
    };
    h.offer("o1", "a1", Some(soon));
    h.advance(Duration::from_millis(20));
    assert!(
        h.store.runs(&job).unwrap().is_empty(),
        "placed on a host going down"
    );
    let later = Unavailability {
        start: WALL0 + 24 * 3_600_000,
        duration: None,
    };
    h.offer("o2", "a2", Some(later));
    h.advance(Duration::from_millis(20));
    let runs = h.store.runs(&job).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run.agent, Some(AgentId::new("a2")));
}

/// Seen against a real Mesos master: after an operator's own window the
/// machine is taken DOWN and brought UP, and the agent comes back with its
/// old id, offered with no window. The drain the inverse offer started
/// must end then (it stayed DRAINED, and nothing was placed there again).
#[test]
fn an_inverse_offers_drain_ends_when_its_host_is_offered_with_no_window() {
    let mut h = Harness::new();
    running_on_a1(&mut h);
    let window = Unavailability {
        start: WALL0 + 3_600_000,
        duration: Some(Duration::from_secs(600)),
    };
    let actions = h
        .engine
        .on_inverse_offer("io-1".into(), AgentId::new("a1"), window, h.now());
    h.carry_out(actions);
    move_off_a1(&mut h);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.host("a1.host"), HostState::Drained);
    // While the window stands, offers carry it: still drained, unused.
    h.offer("o-during", "a1", Some(window));
    h.advance(Duration::from_millis(20));
    assert_eq!(h.host("a1.host"), HostState::Drained);
    // The agent, DOWN and UP again under its old id: offered with no
    // window. The drain is over, kept so across a restart, and the host
    // takes work again.
    h.offer("o-after", "a1", None);
    assert_eq!(h.host("a1.host"), HostState::Up);
    h.restart();
    assert_eq!(h.host("a1.host"), HostState::Up);
    h.api(ApiRequest::CreateJob {
        job_id: JobId::parse("k").unwrap(),
        spec: Box::new(spec(1)),
        create: None,
    })
    .unwrap();
    let actions = h.engine.on_subscribed("fw".into(), h.now());
    h.carry_out(actions);
    h.settle();
    h.offer("o-new", "a1", None);
    h.advance(Duration::from_millis(20));
    let runs = h.store.runs(&JobId::parse("k").unwrap()).unwrap();
    assert_eq!(
        runs.len(),
        1,
        "nothing placed on the host back from maintenance"
    );
    assert_eq!(runs[0].run.agent, Some(AgentId::new("a1")));
}
