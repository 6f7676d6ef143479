//! A takeover driven in memory: one master journals, a second adopts the
//! replayed journal (whole, or cut mid-record) and carries on as the
//! first would have, on the same clock.

use std::time::{Duration, Instant};

use drover_proto::v1::scheduler::{call, Event};
use drover_proto::v1::{self, TaskState};

use super::journal::{encode_frame, replay, CutReason, Entry, Kind};
use super::tests::{call_of, events, launch, master, subscribe};
use super::{Master, MasterConfig};
use crate::config::FleetDefaults;
use crate::resources::Resources;

/// A standby made from the same flags as [`master`] but another seed, so
/// its own master and agent ids differ from the first master's.
fn standby(agents: usize, now: Instant) -> Master {
    let fleet = FleetDefaults {
        resources: Resources::parse(crate::config::DEFAULT_RESOURCES).unwrap(),
        attributes: Vec::new(),
        zones: vec!["a".into()],
    };
    let config = MasterConfig {
        seed: 99,
        ..MasterConfig::default()
    };
    Master::new(config, fleet.specs(0, agents), now, 1.7e9 + 2.0)
}

fn update_states(events: &[Event]) -> Vec<(String, TaskState)> {
    events
        .iter()
        .filter_map(|e| e.update.as_ref())
        .map(|u| {
            (
                u.status.task_id.value.clone(),
                TaskState::try_from(u.status.state).unwrap(),
            )
        })
        .collect()
}

fn acknowledge(
    m: &mut Master,
    fw: &str,
    stream: &str,
    status: &v1::TaskStatus,
    now: Instant,
) -> Vec<Event> {
    let mut ack = call_of(fw, call::Type::Acknowledge);
    ack.acknowledge = Some(call::Acknowledge {
        agent_id: status.agent_id.clone().unwrap(),
        task_id: status.task_id.clone(),
        uuid: status.uuid.clone().unwrap(),
    });
    let (r, fx) = m.on_call(ack, Some(stream), now);
    assert!(r.is_ok());
    events(&fx, 1)
}

/// The first master: a framework with a batch task (5 s) whose RUNNING
/// is not acknowledged and a service whose updates all are. Returns the
/// journal, the framework id, the batch's RUNNING update and the first
/// master.
fn journaled(t0: Instant) -> (Vec<u8>, String, v1::TaskStatus, Master) {
    let mut m = master(2, t0);
    m.start_journal();
    let mut journal = Vec::new();
    let (fw, stream, _) = subscribe(&mut m, 1, t0, 60.0);
    let offers = events(&m.on_tick(t0), 1)[0].offers.clone().unwrap().offers;
    let batch = events(
        &launch(&mut m, &fw, &stream, &offers[0], "batch", "sleep 5", t0),
        1,
    );
    let service = events(
        &launch(&mut m, &fw, &stream, &offers[1], "service", "serve", t0),
        1,
    );
    m.journal_turn(t0, &mut journal);
    let starting = |e: &[Event]| e[0].update.as_ref().unwrap().status.clone();
    let batch_running = acknowledge(&mut m, &fw, &stream, &starting(&batch), t0)[0]
        .update
        .clone()
        .unwrap()
        .status;
    let service_running = acknowledge(&mut m, &fw, &stream, &starting(&service), t0)[0]
        .update
        .clone()
        .unwrap()
        .status;
    assert_eq!(service_running.state, TaskState::TaskRunning as i32);
    acknowledge(&mut m, &fw, &stream, &service_running, t0);
    m.journal_turn(t0, &mut journal);
    (journal, fw, batch_running, m)
}

#[test]
fn a_new_master_adopts_the_journaled_agents_and_tasks_and_resends_what_was_not_acknowledged() {
    let t0 = Instant::now();
    let (journal, fw, batch_running, old) = journaled(t0);
    let s = Duration::from_secs(1);
    let (recovered, cut) = replay(&journal);
    assert_eq!(cut, None);

    // The standby was made from the same flags (its own agent ids) and
    // another seed (its own master id).
    let mut new = standby(2, t0 + 2 * s);
    assert_ne!(new.agents()[0].id, old.agents()[0].id);
    let (adopted, fx) = new.adopt(recovered, t0 + 2 * s);
    assert!(fx.is_empty(), "nothing to say before the framework is back");
    assert_eq!(
        (
            adopted.agents,
            adopted.frameworks,
            adopted.tasks,
            adopted.updates
        ),
        (2, 1, 2, 1)
    );
    let ids = |m: &Master| m.agents().iter().map(|a| a.id.clone()).collect::<Vec<_>>();
    assert_eq!(
        ids(&new),
        ids(&old),
        "the agents re-registered with their ids"
    );
    let states: Vec<_> = {
        let mut v: Vec<_> = new
            .tasks()
            .map(|t| {
                (
                    t.task_id.value.clone(),
                    t.state(),
                    new.agents()[t.agent].id.clone(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let want: Vec<_> = {
        let mut v: Vec<_> = old
            .tasks()
            .map(|t| {
                (
                    t.task_id.value.clone(),
                    t.state(),
                    old.agents()[t.agent].id.clone(),
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(states, want);
    assert_eq!(new.counters().tasks_launched, 0, "adopted, not launched");
    assert_eq!(new.counters().tasks_adopted, 2);
    for agent in new.agents() {
        assert_eq!(
            agent.available.scalar("cpus"),
            agent.total.scalar("cpus") - 1.0,
            "{}",
            agent.id
        );
    }

    // The framework re-subscribes with its id: it is known, and the update
    // it never acknowledged comes again (same uuid).
    let info = v1::FrameworkInfo {
        user: "u".into(),
        name: "n".into(),
        id: Some(v1::FrameworkId { value: fw.clone() }),
        failover_timeout: Some(60.0),
        ..Default::default()
    };
    let (stream, fx) = new.on_subscribe(
        1,
        call::Subscribe {
            framework_info: info,
            ..Default::default()
        },
        t0 + 3 * s,
    );
    let sent = events(&fx, 1);
    assert_eq!(sent[0].subscribed.as_ref().unwrap().framework_id.value, fw);
    let resent: Vec<_> = sent.iter().filter_map(|e| e.update.as_ref()).collect();
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].status, batch_running);

    // Reconciliation answers the real state.
    let answer = new.reconcile_one(
        &fw,
        &v1::TaskId {
            value: "service".into(),
        },
        None,
        t0 + 3 * s,
    );
    assert_eq!(answer.state, TaskState::TaskRunning as i32);

    // The batch task ends on its own clock (launched at t0, 5 s), and the
    // offers count only what the tasks do not hold.
    acknowledge(&mut new, &fw, &stream, &batch_running, t0 + 3 * s);
    let mut offered = 0.0;
    let mut ended = Vec::new();
    for at in [4, 5, 6, 7] {
        let sent = events(&new.on_tick(t0 + at * s), 1);
        ended.extend(update_states(&sent).into_iter().map(|u| (at, u)));
        offered += sent
            .iter()
            .filter_map(|e| e.offers.as_ref())
            .flat_map(|o| o.offers.iter())
            .flat_map(|o| o.resources.iter())
            .filter(|r| r.name == "cpus")
            .map(|r| r.scalar.as_ref().unwrap().value)
            .sum::<f64>();
    }
    assert_eq!(ended, [(5, ("batch".to_owned(), TaskState::TaskFinished))]);
    let total: f64 = new.agents().iter().map(|a| a.total.scalar("cpus")).sum();
    assert_eq!(offered, total - 1.0, "the service still holds its cpu");
}

#[test]
fn a_journal_cut_mid_record_is_adopted_up_to_its_last_whole_record() {
    let t0 = Instant::now();
    let (mut journal, _, _, _) = journaled(t0);
    let whole = journal.len();
    // One more record, cut short: a task that the dead master was writing.
    let mut extra = Vec::new();
    encode_frame(
        &Entry {
            kind: Some(Kind::TaskGone(super::journal::entry::TaskKeyEntry {
                framework: "x".into(),
                task_id: "service".into(),
            })),
        },
        &mut extra,
    );
    journal.extend_from_slice(&extra[..extra.len() - 3]);
    let (recovered, cut) = replay(&journal);
    let cut = cut.unwrap();
    assert_eq!((cut.offset, cut.why), (whole, CutReason::Truncated));
    let mut new = standby(2, t0);
    let (adopted, _) = new.adopt(recovered, t0);
    assert_eq!(adopted.tasks, 2);
}

#[test]
fn the_journal_compacts_into_a_snapshot_that_replays_the_same() {
    let t0 = Instant::now();
    let (journal, _, _, old) = journaled(t0);
    let mut snapshot = Vec::new();
    old.journal_snapshot(t0, &mut snapshot);
    let (from_journal, _) = replay(&journal);
    let (from_snapshot, _) = replay(&snapshot);
    assert_eq!(from_journal.agents, from_snapshot.agents);
    assert_eq!(from_journal.frameworks, from_snapshot.frameworks);
    assert_eq!(from_journal.tasks, from_snapshot.tasks);
    assert!(from_snapshot.records < from_journal.records + 1);
}

#[test]
fn an_agent_away_at_the_takeover_is_adopted_away_and_re_registers_when_it_returns() {
    let t0 = Instant::now();
    let (mut journal, fw, _, mut old) = journaled(t0);
    let service_agent = |m: &Master| {
        let task = m.tasks().find(|t| t.task_id.value == "service").unwrap();
        m.agents()[task.agent].id.clone()
    };
    let away = service_agent(&old);
    old.on_agent_failed(&away, t0).unwrap();
    old.journal_turn(t0, &mut journal);
    let service = v1::TaskId {
        value: "service".into(),
    };

    let (recovered, _) = replay(&journal);
    let mut new = standby(2, t0);
    new.adopt(recovered, t0);
    let agent = new.agents().iter().find(|a| a.id == away).unwrap();
    assert!(!agent.connected, "adopted as it was: away");
    assert_ne!(
        new.reconcile_one(&fw, &service, None, t0).state,
        TaskState::TaskRunning as i32,
        "its task is unreachable until it returns"
    );
    // Its return re-registers it with the new master, task and all.
    new.on_agent_restored(&away, t0).unwrap();
    assert!(
        new.agents()
            .iter()
            .find(|a| a.id == away)
            .unwrap()
            .connected
    );
    assert_eq!(
        new.reconcile_one(&fw, &service, None, t0).state,
        TaskState::TaskRunning as i32
    );

    // An agent that returned before the takeover is adopted connected.
    old.on_agent_restored(&away, t0).unwrap();
    old.journal_turn(t0, &mut journal);
    let (recovered, _) = replay(&journal);
    let mut later = standby(2, t0);
    later.adopt(recovered, t0);
    assert!(
        later
            .agents()
            .iter()
            .find(|a| a.id == away)
            .unwrap()
            .connected
    );
    assert_eq!(
        later.reconcile_one(&fw, &service, None, t0).state,
        TaskState::TaskRunning as i32
    );
}
