#![allow(clippy::unwrap_used)]

use super::*;

fn task(id: &str) -> TaskInfo {
    TaskInfo {
        task_id: v1::TaskId { value: id.into() },
        ..Default::default()
    }
}

fn key() -> ExecutorKey {
    (0, "fw".into(), "ex".into())
}

fn types(actions: &[ExecAction]) -> Vec<String> {
    actions
        .iter()
        .map(|a| match a {
            ExecAction::Spawn { .. } => "spawn".to_owned(),
            ExecAction::Send { conn, event } => format!(
                "{}@{conn}",
                event::Type::try_from(event.r#type.unwrap())
                    .unwrap()
                    .as_str_name()
            ),
            ExecAction::Close { conn } => format!("close@{conn}"),
            ExecAction::Kill { .. } => "kill".to_owned(),
            ExecAction::KillAt { .. } => "kill-at".to_owned(),
        })
        .collect()
}

fn launched(now: Instant) -> Executors {
    let mut ex = Executors::default();
    let out = ex.on_task(
        key(),
        ExecutorInfo::default(),
        ExecutorKind::Custom,
        "c1".into(),
        Delivery::Task(Box::new(task("t1"))),
        now,
    );
    assert_eq!(types(&out), ["spawn"]);
    ex
}

#[test]
fn a_new_executor_is_spawned_and_gets_its_queued_tasks_after_subscribed() {
    let now = Instant::now();
    let mut ex = launched(now);
    let again = ex.on_task(
        key(),
        ExecutorInfo::default(),
        ExecutorKind::Custom,
        "c2".into(),
        Delivery::Group(vec![task("t2"), task("t3")]),
        now,
    );
    assert!(again.is_empty(), "a known executor is not spawned twice");
    let out = ex.on_subscribe(&key(), 7, of(event::Type::Subscribed));
    assert_eq!(types(&out), ["SUBSCRIBED@7", "LAUNCH@7", "LAUNCH_GROUP@7"]);
    let record = ex.get(&key()).unwrap();
    assert_eq!(record.container_id, "c1");
    assert_eq!(record.delivered().len(), 3);
    let later = ex.on_task(
        key(),
        ExecutorInfo::default(),
        ExecutorKind::Custom,
        "c3".into(),
        Delivery::Task(Box::new(task("t4"))),
        now,
    );
    assert_eq!(types(&later), ["LAUNCH@7"]);
}

#[test]
fn a_resubscription_replaces_the_old_stream_and_delivers_held_events() {
    let now = Instant::now();
    let mut ex = launched(now);
    ex.on_subscribe(&key(), 1, of(event::Type::Subscribed));
    assert_eq!(ex.on_disconnected(1), Some(key()));
    let kill = ex.on_kill(&key(), "t1", None);
    assert!(kill.actions.is_empty() && kill.dropped.is_empty(), "held");
    assert!(ex.on_message(&key(), Bytes::from_static(b"hi")).is_empty());
    let out = ex.on_subscribe(&key(), 2, of(event::Type::Subscribed));
    assert_eq!(types(&out), ["SUBSCRIBED@2", "KILL@2", "MESSAGE@2"]);
    let out = ex.on_subscribe(&key(), 3, of(event::Type::Subscribed));
    assert_eq!(types(&out), ["close@2", "SUBSCRIBED@3"]);
    assert_eq!(ex.get(&key()).unwrap().subscriptions, 3);
    assert_eq!(ex.by_conn(2), None);
}

#[test]
fn killing_the_only_queued_task_drops_it_and_kills_the_executor() {
    let now = Instant::now();
    let mut ex = launched(now);
    let out = ex.on_kill(&key(), "t1", None);
    assert_eq!(out.dropped, ["t1"]);
    assert_eq!(types(&out.actions), ["kill"]);
    let sub = ex.on_subscribe(&key(), 4, of(event::Type::Subscribed));
    assert_eq!(types(&sub), ["SHUTDOWN@4", "close@4"]);
}

#[test]
fn shutdown_sends_the_event_then_kills_at_the_grace_deadline() {
    let now = Instant::now();
    let mut ex = launched(now);
    ex.on_subscribe(&key(), 1, of(event::Type::Subscribed));
    let out = ex.on_shutdown(&key(), Duration::from_secs(5), now);
    assert_eq!(types(&out), ["SHUTDOWN@1", "kill-at"]);
    assert!(
        matches!(&out[1], ExecAction::KillAt { at, .. } if *at == now + Duration::from_secs(5))
    );
    assert!(ex.on_shutdown(&key(), Duration::ZERO, now).is_empty());
    assert!(ex.is_live_container("c1"));
    let gone = ex.on_exited("c1").unwrap();
    assert_eq!(gone.key, key());
    assert!(!ex.is_live_container("c1"));
    assert_eq!(ex.by_conn(1), None);
}

#[test]
fn acknowledgements_reach_a_subscribed_executor_and_are_remembered() {
    let now = Instant::now();
    let mut ex = launched(now);
    let id = v1::TaskId { value: "t1".into() };
    let uuid = Bytes::from_static(&[7; 16]);
    assert!(ex.on_acknowledged(&key(), &id, uuid.clone()).is_empty());
    assert!(ex.is_acknowledged(&key(), &uuid));
    ex.on_subscribe(&key(), 9, of(event::Type::Subscribed));
    let out = ex.acknowledge_now(&key(), &id, uuid.clone());
    assert_eq!(types(&out), ["ACKNOWLEDGED@9"]);
    let ExecAction::Send { event, .. } = &out[0] else {
        unreachable!()
    };
    assert_eq!(event.acknowledged.as_ref().unwrap().uuid, uuid);
}

#[test]
fn an_endpoint_restart_ends_every_stream_of_that_agent_only() {
    let now = Instant::now();
    let mut ex = launched(now);
    let other = (1, "fw".to_owned(), "ex".to_owned());
    ex.on_task(
        other.clone(),
        ExecutorInfo::default(),
        ExecutorKind::Command,
        "c9".into(),
        Delivery::Task(Box::new(task("t9"))),
        now,
    );
    ex.on_subscribe(&key(), 1, of(event::Type::Subscribed));
    ex.on_subscribe(&other, 2, of(event::Type::Subscribed));
    let out = ex.on_endpoint_restart(0, now + Duration::from_secs(1));
    assert_eq!(types(&out), ["close@1"]);
    assert!(ex.is_endpoint_down(0, now));
    assert!(!ex.is_endpoint_down(0, now + Duration::from_secs(1)));
    assert!(!ex.is_endpoint_down(1, now));
    assert!(!ex.get(&key()).unwrap().is_subscribed());
    assert!(ex.get(&other).unwrap().is_subscribed());
    assert_eq!(ex.find(None, "fw", "ex"), None, "ambiguous across agents");
    assert_eq!(ex.find(Some(1), "fw", "ex"), Some(other));
}
