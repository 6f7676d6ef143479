//! In-memory tests of the executor session: a simulated agent is just the
//! events we feed and the calls we read back.
#![allow(clippy::unwrap_used)]

use super::*;
use drover_proto::v1::{TaskId, TaskState};
use rand::SeedableRng;

fn config(checkpoint: bool) -> SessionConfig {
    SessionConfig {
        framework_id: "fw".into(),
        executor_id: "ex".into(),
        checkpoint,
        recovery_timeout: Duration::from_secs(60),
        subscription_backoff_max: Duration::from_secs(2),
        update_retry_interval: Duration::from_secs(10),
    }
}

fn rng() -> rand::rngs::SmallRng {
    rand::rngs::SmallRng::seed_from_u64(7)
}

fn event(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn launch(task: &str) -> Event {
    let mut e = event(event::Type::Launch);
    e.launch = Some(event::Launch {
        task: TaskInfo {
            task_id: TaskId { value: task.into() },
            ..Default::default()
        },
    });
    e
}

fn ack(task: &str, uuid: &[u8]) -> Event {
    let mut e = event(event::Type::Acknowledged);
    e.acknowledged = Some(event::Acknowledged {
        task_id: TaskId { value: task.into() },
        uuid: uuid.to_vec().into(),
    });
    e
}

fn status(task: &str, state: TaskState) -> TaskStatus {
    TaskStatus {
        task_id: TaskId { value: task.into() },
        state: state as i32,
        ..Default::default()
    }
}

fn subscribe_of(actions: &[Action]) -> call::Subscribe {
    match actions {
        [Action::Subscribe(call)] => call.subscribe.clone().unwrap(),
        other => panic!("expected one Subscribe, got {other:?}"),
    }
}

fn sent_status(actions: &[Action]) -> TaskStatus {
    match actions {
        [Action::Send(call)] => call.update.clone().unwrap().status,
        other => panic!("expected one Send, got {other:?}"),
    }
}

/// A subscribed session with task t1 launched.
fn subscribed(checkpoint: bool, now: Instant) -> ExecutorSession {
    let mut session = ExecutorSession::new(config(checkpoint));
    let first = subscribe_of(&session.start());
    assert!(first.unacknowledged_tasks.is_empty() && first.unacknowledged_updates.is_empty());
    session.on_event(event(event::Type::Subscribed), now);
    session.on_event(launch("t1"), now);
    session
}

#[test]
fn an_update_gets_a_v4_uuid_the_executor_source_and_ids() {
    let now = Instant::now();
    let mut session = subscribed(false, now);
    let sent =
        sent_status(&session.on_status(status("t1", TaskState::TaskRunning), now, 1.5, &mut rng()));
    let uuid = uuid::Uuid::from_slice(sent.uuid.as_ref().unwrap()).unwrap();
    assert_eq!(uuid.get_version_num(), 4);
    assert_eq!(uuid.get_variant(), uuid::Variant::RFC4122);
    assert_eq!(sent.source, Some(task_status::Source::Executor as i32));
    assert_eq!(sent.executor_id.unwrap().value, "ex");
    assert_eq!(sent.timestamp, Some(1.5));
}

#[test]
fn every_update_has_a_new_uuid() {
    let now = Instant::now();
    let mut session = subscribed(false, now);
    let mut rng = rng();
    let a =
        sent_status(&session.on_status(status("t1", TaskState::TaskStarting), now, 0.0, &mut rng));
    let b =
        sent_status(&session.on_status(status("t1", TaskState::TaskRunning), now, 0.0, &mut rng));
    assert_ne!(a.uuid, b.uuid);
}

#[test]
fn without_checkpoint_a_disconnection_shuts_down() {
    let now = Instant::now();
    let mut session = subscribed(false, now);
    assert_eq!(
        session.on_disconnected(now, &mut rng()),
        vec![Action::Shutdown(ShutdownReason::Disconnected)]
    );
}

#[test]
fn an_agent_missing_at_start_without_checkpoint_shuts_down() {
    let mut session = ExecutorSession::new(config(false));
    session.start();
    let actions = session.on_disconnected(Instant::now(), &mut rng());
    assert_eq!(
        actions,
        vec![Action::Shutdown(ShutdownReason::Disconnected)]
    );
}

#[test]
fn resubscribe_carries_unacknowledged_tasks_and_updates_until_acknowledged() {
    let t0 = Instant::now();
    let mut session = subscribed(true, t0);
    let mut rng = rng();
    let running =
        sent_status(&session.on_status(status("t1", TaskState::TaskRunning), t0, 0.0, &mut rng));
    assert!(session.on_disconnected(t0, &mut rng).is_empty());
    // Updates made while disconnected are not sent as calls (4.5)...
    assert!(session
        .on_status(status("t1", TaskState::TaskFinished), t0, 0.0, &mut rng)
        .is_empty());
    // ...but ride in the next SUBSCRIBE, which comes within the backoff cap.
    let retry = session.next_deadline().unwrap();
    assert!(retry <= t0 + Duration::from_secs(2));
    let again = subscribe_of(&session.on_tick(retry));
    assert_eq!(again.unacknowledged_tasks.len(), 1);
    let states: Vec<i32> = again
        .unacknowledged_updates
        .iter()
        .map(|u| u.status.state)
        .collect();
    assert_eq!(
        states,
        vec![
            TaskState::TaskRunning as i32,
            TaskState::TaskFinished as i32
        ]
    );
    assert_eq!(again.unacknowledged_updates[0].status.uuid, running.uuid);

    session.on_event(event(event::Type::Subscribed), retry);
    session.on_event(ack("t1", running.uuid.as_ref().unwrap()), retry);
    assert_eq!(session.unacknowledged_updates(), 1);
    session.on_disconnected(retry, &mut rng);
    let third = subscribe_of(&session.on_tick(session.next_deadline().unwrap()));
    assert!(
        third.unacknowledged_tasks.is_empty(),
        "an acknowledged task is not re-sent"
    );
    assert_eq!(third.unacknowledged_updates.len(), 1);
}

#[test]
fn failed_attempts_give_up_at_the_recovery_timeout_from_the_first_disconnection() {
    let t0 = Instant::now();
    let mut session = subscribed(true, t0);
    let mut rng = rng();
    session.on_disconnected(t0, &mut rng);
    let mut now;
    let mut attempts = 0;
    loop {
        now = session.next_deadline().unwrap();
        let actions = session.on_tick(now);
        match actions.as_slice() {
            [Action::Subscribe(_)] => {
                attempts += 1;
                // Connection refused again.
                let after = session.on_disconnected(now, &mut rng);
                if after == vec![Action::Shutdown(ShutdownReason::RecoveryTimeout)] {
                    break;
                }
            }
            [Action::Shutdown(ShutdownReason::RecoveryTimeout)] => break,
            other => panic!("unexpected {other:?}"),
        }
        assert!(attempts < 10_000);
    }
    assert!(now >= t0 + Duration::from_secs(60) && now <= t0 + Duration::from_secs(62));
    assert!(
        attempts >= 30,
        "backoff is capped at 2 s, so about one attempt a second: {attempts}"
    );
}

#[test]
fn unacknowledged_updates_are_resent_with_the_same_uuid_after_the_retry_interval() {
    let t0 = Instant::now();
    let mut session = subscribed(false, t0);
    let sent =
        sent_status(&session.on_status(status("t1", TaskState::TaskRunning), t0, 0.0, &mut rng()));
    assert!(session.on_tick(t0 + Duration::from_secs(9)).is_empty());
    assert_eq!(session.next_deadline(), Some(t0 + Duration::from_secs(10)));
    let again = sent_status(&session.on_tick(t0 + Duration::from_secs(10)));
    assert_eq!(again.uuid, sent.uuid);
    session.on_event(ack("t1", sent.uuid.as_ref().unwrap()), t0);
    assert_eq!(session.next_deadline(), None);
    assert!(!session.has_unacknowledged("t1"));
}

#[test]
fn events_are_delivered_to_the_executor() {
    let now = Instant::now();
    let mut session = subscribed(false, now);
    let actions = session.on_event(event(event::Type::Shutdown), now);
    assert!(
        matches!(actions.as_slice(), [Action::Deliver(e)] if e.r#type == Some(event::Type::Shutdown as i32))
    );
}
