//! Host maintenance in the engine over a real SQLite store, pumped by
//! hand: an operator's drain goes DRAINING → DRAINED (the operator call
//! asked) → DOWN (the master agreed) and back UP, and survives a restart;
//! an inverse offer drains its host and is accepted once the host is
//! empty, and a rescind cancels the drain; offers of hosts in or near
//! maintenance are declined, never used.

#![allow(clippy::unwrap_used)]

use drover_proto::v1::TaskState;
use drover_scheduler::api::job_budget::{budget_view, BudgetView};
use drover_scheduler::engine::{ApiRequest, Call, EngineError, OperatorCall, Reply};
use drover_scheduler::model::access::{Identity, Role};
use drover_scheduler::model::host::{HostState, Unavailability};
use drover_scheduler::model::ids::{AgentId, JobId};
use drover_scheduler::model::offer::Offer;
use drover_scheduler::model::spec::JobSpec;
use drover_scheduler::model::task_update::TaskUpdate;
use drover_scheduler::store::StoreRead;
use std::time::Duration;

mod support;

use support::engine::{kills, offer_of, update_on, Harness, WALL0};

/// The steps of these tests alone.
impl Harness {
    /// The master offers 8 cpus on agent `agent`, its host in or near
    /// `unavailability`.
    fn offer(&mut self, id: &str, agent: &str, unavailability: Option<Unavailability>) {
        self.give(Offer {
            unavailability,
            ..offer_of(id, agent, 8.0)
        });
    }

    fn host(&self, hostname: &str) -> HostState {
        self.engine
            .hosts()
            .into_iter()
            .find(|h| h.hostname == hostname)
            .map_or(HostState::Up, |h| h.state)
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
    update_on(task, agent, state, at)
}

/// A 2-instance service RUNNING on agent a1 (host `a1.host`); agent a2
/// has been seen too.
fn running_on_a1(h: &mut Harness) -> JobId {
    running_on_a1_as(h, spec(2))
}

/// Job `j` of `spec` (2 instances) RUNNING on agent a1, as
/// [`running_on_a1`].
fn running_on_a1_as(h: &mut Harness, spec: JobSpec) -> JobId {
    let job = JobId::parse("j").unwrap();
    h.api(ApiRequest::CreateJob {
        job_id: job.clone(),
        spec: Box::new(spec),
        create: None,
    })
    .unwrap();
    h.subscribe();
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

/// The job view's budget (`disruption_budget.allowed_now`) as the API
/// counts it now, from the stored runs.
fn budget_now(h: &Harness, job: &JobId) -> BudgetView {
    let stored = &h.engine.registry().get(job).unwrap().job;
    budget_view(stored, &h.store.runs(job).unwrap(), h.now().unix_ms)
}

/// A Titus rate budget (one disruption an hour) paces a drain, and the
/// job view's budget says what the engine does: once one instance was
/// handed over (its replacement serving, the old run killed), none may
/// move until the hour is over, though both instances run again.
#[test]
fn the_job_views_budget_counts_the_rates_recent_disruptions_as_the_engine_does() {
    let mut h = Harness::new();
    let mut rated = spec(2);
    rated.disruption_budget = Some(
        serde_json::from_value(serde_json::json!({
            "rate": {"per_interval": {"interval_ms": 3_600_000, "limit": 1}}
        }))
        .unwrap(),
    );
    let job = running_on_a1_as(&mut h, rated);
    assert_eq!(budget_now(&h, &job).allowed_now, 1);
    h.api(drain(&["a1.host"])).unwrap();
    h.offer("o3", "a2", None);
    h.advance(Duration::from_millis(20));
    let first = launched(&h.take_calls());
    assert_eq!(first.len(), 1, "one handover: {first:?}");
    // The replacement runs on a2: the old run goes, for the drain.
    let at = h.clock.as_millis() as i64;
    h.updates(vec![update(&first[0], "a2", TaskState::TaskRunning, at)]);
    h.advance(Duration::from_secs(1));
    let killed = kills(&h.take_calls());
    assert_eq!(killed.len(), 1, "{killed:?}");
    let at = h.clock.as_millis() as i64;
    h.updates(vec![update(&killed[0], "a1", TaskState::TaskKilled, at)]);
    // Both run; the rate holds the other: the view and the engine agree.
    let view = budget_now(&h, &job);
    assert_eq!(view.allowed_now, 0, "{view:?}");
    assert!(view.held_by.unwrap().contains("rate"));
    h.offer("o4", "a2", None);
    h.advance(Duration::from_secs(600));
    let calls = h.take_calls();
    assert!(
        kills(&calls).is_empty() && launched(&calls).is_empty(),
        "{calls:?}"
    );
    assert_eq!(h.host("a1.host"), HostState::Draining);
    // The hour over, the engine moves the other, which the view allowed.
    h.clock = Duration::from_millis(at as u64 + 3_601_000);
    assert_eq!(budget_now(&h, &job).allowed_now, 1);
    h.offer("o5", "a2", None);
    h.advance(Duration::from_secs(30));
    assert_eq!(launched(&h.take_calls()).len(), 1);
    assert_eq!(budget_now(&h, &job).allowed_now, 0, "the handover counts");
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

/// The tasks `calls` launch.
fn launched(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .flat_map(|c| match c {
            Call::Accept { tasks, .. } => tasks.iter().map(|t| t.task_id.to_string()).collect(),
            _ => Vec::new(),
        })
        .collect()
}

/// Whether run `task` of job `j` is marked handing over in the store.
fn handing_over(h: &Harness, task: &str) -> bool {
    h.store
        .runs(&JobId::parse("j").unwrap())
        .unwrap()
        .iter()
        .any(|r| r.task_id.to_string() == task && r.run.handing_over)
}

/// A drained service run keeps serving until its replacement runs: the
/// replacement is launched first (the old run marked handing over in the
/// store), the old run killed with the drain's reason only once the
/// replacement is RUNNING. A scheduler restarted mid-handover (as after a
/// SIGKILL) neither kills either run nor launches the replacement again,
/// and finishes the handover once the replacement serves.
#[test]
fn a_drained_service_run_is_handed_over_and_a_restart_mid_handover_continues_it() {
    let mut h = Harness::new();
    let job = running_on_a1(&mut h);
    h.api(drain(&["a1.host"])).unwrap();
    h.advance(Duration::from_millis(20));
    assert!(kills(&h.take_calls()).is_empty(), "nothing killed first");
    h.offer("o-a2", "a2", None);
    h.advance(Duration::from_millis(20));
    let calls = h.take_calls();
    assert_eq!(launched(&calls), vec!["j-0-1"], "one at a time (budget 1)");
    assert!(kills(&calls).is_empty());
    assert!(handing_over(&h, "j-0-0"));
    let events = h
        .store
        .pod_events(&drover_scheduler::model::ids::InstanceId::new(
            job.clone(),
            0,
        ))
        .unwrap();
    assert!(
        events.iter().any(|e| e
            .message
            .as_deref()
            .is_some_and(|m| m.contains("replacement run 1 starting on host a2.host"))),
        "{events:?}"
    );

    // SIGKILL: a new engine from the store.
    h.restart();
    let actions = h.engine.on_subscribed("fw".into(), h.now());
    h.carry_out(actions);
    h.settle();
    h.offer("o-a2-again", "a2", None);
    h.advance(Duration::from_millis(20));
    let at = h.clock.as_millis() as i64;
    // Reconciliation answers: both runs are known, neither is a stray.
    h.updates(vec![
        update("j-0-0", "a1", TaskState::TaskRunning, at),
        update("j-0-1", "a2", TaskState::TaskStaging, at),
        update("j-1-0", "a1", TaskState::TaskRunning, at),
    ]);
    h.advance(Duration::from_secs(1));
    let calls = h.take_calls();
    assert!(launched(&calls).is_empty(), "launched again: {calls:?}");
    assert!(kills(&calls).is_empty(), "killed wrongly: {calls:?}");

    // The replacement runs: now the old run goes, for the drain.
    let at = h.clock.as_millis() as i64;
    h.updates(vec![update("j-0-1", "a2", TaskState::TaskRunning, at)]);
    h.advance(Duration::from_secs(1));
    assert_eq!(kills(&h.take_calls()), vec!["j-0-0"]);
    let runs = h.store.runs(&job).unwrap();
    let old = runs
        .iter()
        .find(|r| r.task_id.to_string() == "j-0-0")
        .unwrap();
    assert_eq!(
        old.run.kill_reason,
        Some(drover_proto::v1::task_status::Reason::AgentDraining),
        "the kill and its reason are recorded"
    );
    // Its end frees the budget: instance 1 is handed over next.
    let at = h.clock.as_millis() as i64;
    h.updates(vec![update("j-0-0", "a1", TaskState::TaskKilled, at)]);
    h.offer("o-a2-3", "a2", None);
    h.advance(Duration::from_millis(20));
    assert_eq!(launched(&h.take_calls()), vec!["j-1-1"]);
    let at = h.clock.as_millis() as i64;
    h.updates(vec![update("j-1-1", "a2", TaskState::TaskRunning, at)]);
    h.advance(Duration::from_secs(1));
    assert_eq!(kills(&h.take_calls()), vec!["j-1-0"]);
    let at = h.clock.as_millis() as i64;
    h.updates(vec![update("j-1-0", "a1", TaskState::TaskKilled, at)]);
    h.advance(Duration::from_secs(1));
    assert_eq!(h.host("a1.host"), HostState::Drained);
}

/// A replacement that fails leaves the old run serving (no kill), is
/// retried elsewhere, and the host stays DRAINING meanwhile; killing the
/// job mid-handover kills both runs.
#[test]
fn a_failed_replacement_is_retried_and_a_kill_mid_handover_kills_both_runs() {
    let mut h = Harness::new();
    let job = running_on_a1(&mut h);
    h.api(drain(&["a1.host"])).unwrap();
    h.offer("o-a2", "a2", None);
    h.advance(Duration::from_millis(20));
    assert_eq!(launched(&h.take_calls()), vec!["j-0-1"]);
    let at = h.clock.as_millis() as i64;
    h.updates(vec![update("j-0-1", "a2", TaskState::TaskFailed, at)]);
    h.offer("o-a2-2", "a2", None);
    h.advance(Duration::from_millis(20));
    let calls = h.take_calls();
    assert_eq!(
        launched(&calls),
        vec!["j-0-2"],
        "retried at once (first failure)"
    );
    assert!(kills(&calls).is_empty(), "the old run serves on: {calls:?}");
    assert_eq!(h.host("a1.host"), HostState::Draining);
    assert!(handing_over(&h, "j-0-0"));
    h.api(ApiRequest::SetGoal {
        job_id: job.clone(),
        goal: drover_scheduler::model::state::JobGoal::Stopped,
        expected_version: None,
    })
    .unwrap();
    h.advance(Duration::from_millis(20));
    let mut killed = kills(&h.take_calls());
    killed.sort();
    assert_eq!(killed, vec!["j-0-0", "j-0-2", "j-1-0"]);
}

/// A drain cancelled (CompleteMaintenance) mid-handover finishes the
/// handover begun: the replacement is kept, the old run killed once the
/// replacement runs; nothing else moves off the host, UP again.
#[test]
fn a_drain_cancelled_mid_handover_finishes_the_handover_begun_and_moves_nothing_more() {
    let mut h = Harness::new();
    running_on_a1(&mut h);
    h.api(drain(&["a1.host"])).unwrap();
    h.offer("o-a2", "a2", None);
    h.advance(Duration::from_millis(20));
    assert_eq!(launched(&h.take_calls()), vec!["j-0-1"]);
    h.api(ApiRequest::CompleteMaintenance {
        hostnames: vec!["a1.host".into()],
    })
    .unwrap();
    assert_eq!(h.host("a1.host"), HostState::Up);
    h.advance(Duration::from_secs(1));
    assert!(kills(&h.take_calls()).is_empty(), "the old run serves on");
    let at = h.clock.as_millis() as i64;
    h.updates(vec![update("j-0-1", "a2", TaskState::TaskRunning, at)]);
    h.advance(Duration::from_secs(1));
    assert_eq!(kills(&h.take_calls()), vec!["j-0-0"]);
    let at = h.clock.as_millis() as i64;
    h.updates(vec![update("j-0-0", "a1", TaskState::TaskKilled, at)]);
    h.offer("o-a2-2", "a2", None);
    h.advance(Duration::from_secs(1));
    let calls = h.take_calls();
    assert!(launched(&calls).is_empty(), "j-1 stays on a1: {calls:?}");
    assert!(kills(&calls).is_empty(), "{calls:?}");
}
