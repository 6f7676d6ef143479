#![allow(clippy::unwrap_used)]

use super::*;
use drover_proto::v1::scheduler::{call, event};
use rand::SeedableRng;

fn endpoint(host: &str) -> Endpoint {
    format!("http://{host}/api/v1/scheduler").parse().unwrap()
}

fn session(framework_id: Option<&str>, now: Instant) -> Session {
    let info = FrameworkInfo {
        user: "alice".into(),
        name: "drover".into(),
        ..Default::default()
    };
    let config = SessionConfig::new(vec![endpoint("m1:5050"), endpoint("m2:5050")], info);
    let id = framework_id.map(|v| FrameworkId { value: v.into() });
    Session::new(config, id, SmallRng::seed_from_u64(1), now)
}

fn subscribed_event(id: &str) -> Event {
    Event {
        r#type: Some(event::Type::Subscribed as i32),
        subscribed: Some(Box::new(event::Subscribed {
            framework_id: FrameworkId { value: id.into() },
            heartbeat_interval_seconds: Some(15.0),
            master_info: None,
        })),
        ..Default::default()
    }
}

fn typed(kind: event::Type) -> Event {
    Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn error_event(message: &str) -> Event {
    Event {
        r#type: Some(event::Type::Error as i32),
        error: Some(Box::new(event::Error {
            message: message.into(),
        })),
        ..Default::default()
    }
}

/// The generation and SUBSCRIBE call of the single Connect in `actions`.
fn connect_of(actions: &[Action]) -> (Endpoint, u64, Call) {
    let connects: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Connect {
                master,
                generation,
                call,
            } => Some((master.clone(), *generation, (**call).clone())),
            _ => None,
        })
        .collect();
    assert_eq!(connects.len(), 1, "expected one Connect in {actions:?}");
    connects.into_iter().next().unwrap()
}

/// Drives a fresh connection to SUBSCRIBED and returns its generation.
fn subscribe(s: &mut Session, actions: &[Action], id: &str, now: Instant) -> u64 {
    let (_, generation, _) = connect_of(actions);
    let stream = StreamId(format!("stream-{generation}"));
    assert!(s
        .on_subscribe_response(generation, SubscribeResponse::Streaming(stream), now)
        .is_empty());
    let delivered = s.on_event(generation, subscribed_event(id), now);
    assert_eq!(
        delivered,
        vec![Action::Deliver(SessionEvent::Subscribed {
            framework_id: id.into()
        })]
    );
    generation
}

#[test]
fn first_subscribe_registers_a_new_framework_and_calls_carry_its_id_and_stream() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let (master, _, call) = connect_of(&actions);
    assert_eq!(master, endpoint("m1:5050"));
    assert_eq!(call.framework_id, None);
    let info = &call.subscribe.as_ref().unwrap().framework_info;
    assert_eq!(info.id, None);

    let generation = subscribe(&mut s, &actions, "fw-1", now);
    let sent = s.on_call(Call {
        r#type: Some(call::Type::Revive as i32),
        ..Default::default()
    });
    match &sent[..] {
        [Action::Send {
            stream_id,
            call,
            generation: g,
            ..
        }] => {
            assert_eq!(stream_id, &StreamId(format!("stream-{generation}")));
            assert_eq!(call.framework_id.as_ref().unwrap().value, "fw-1");
            assert_eq!(*g, generation);
        }
        other => panic!("expected one Send, got {other:?}"),
    }
}

#[test]
fn calls_are_dropped_while_not_subscribed() {
    let now = Instant::now();
    let mut s = session(None, now);
    let _ = s.on_start(now);
    assert!(s.on_call(Call::default()).is_empty());
}

#[test]
fn a_307_on_subscribe_connects_to_the_leader_named_in_location() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let (_, generation, _) = connect_of(&actions);
    let leader = endpoint("leader:5050");
    let actions =
        s.on_subscribe_response(generation, SubscribeResponse::Redirect(leader.clone()), now);
    assert!(actions.contains(&Action::Close {
        generation,
        reason: "redirected to the leading master"
    }));
    let (master, new_generation, _) = connect_of(&actions);
    assert_eq!(master, leader);
    assert!(new_generation > generation);
    // Reports from the redirected connection are now ignored.
    assert!(s
        .on_event(generation, subscribed_event("fw-x"), now)
        .is_empty());
}

#[test]
fn a_redirect_after_a_redirect_waits_the_backoff_then_follows_it() {
    // A master restarted while its old znode lives on names itself the
    // leader: following every such 307 at once was a SUBSCRIBE storm.
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let (_, generation, _) = connect_of(&actions);
    let leader = endpoint("leader:5050");
    let actions =
        s.on_subscribe_response(generation, SubscribeResponse::Redirect(leader.clone()), now);
    let (_, generation, _) = connect_of(&actions);
    let actions =
        s.on_subscribe_response(generation, SubscribeResponse::Redirect(leader.clone()), now);
    assert!(
        !actions.iter().any(|a| matches!(a, Action::Connect { .. })),
        "the second redirect in a row is not followed at once: {actions:?}"
    );
    let State::Disconnected { retry_at, .. } = s.state().clone() else {
        panic!("waiting: {:?}", s.state());
    };
    assert!(retry_at > now);
    assert!(s.on_tick(now).is_empty());
    let (master, generation, _) = connect_of(&s.on_tick(retry_at));
    assert_eq!(master, leader, "the wait ends at the master it was sent to");
    assert!(generation > 0);
}

#[test]
fn a_307_on_a_call_means_leader_change_and_resubscribes_with_the_same_id() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let generation = subscribe(&mut s, &actions, "fw-1", now);
    let leader = endpoint("m2:5050");
    let actions = s.on_call_response(generation, CallResponse::Redirect(leader.clone()), now);
    assert!(actions.contains(&Action::Deliver(SessionEvent::Disconnected)));
    let (master, _, call) = connect_of(&actions);
    assert_eq!(master, leader);
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
}

#[test]
fn heartbeat_loss_closes_the_stream_and_resubscribes_with_the_same_framework_id() {
    let start = Instant::now();
    let mut s = session(None, start);
    let actions = s.on_start(start);
    let generation = subscribe(&mut s, &actions, "fw-1", start);

    // Heartbeats keep it alive.
    let t1 = start + Duration::from_secs(60);
    assert!(s
        .on_event(generation, typed(event::Type::Heartbeat), t1)
        .is_empty());
    assert!(s.on_tick(start + Duration::from_secs(76)).is_empty());
    assert_eq!(s.next_deadline(), Some(t1 + Duration::from_secs(75)));

    // Then nothing for 5 intervals.
    let dead = t1 + Duration::from_secs(75);
    let actions = s.on_tick(dead);
    assert_eq!(
        actions,
        vec![
            Action::Close {
                generation,
                reason: "heartbeats stopped"
            },
            Action::Deliver(SessionEvent::Disconnected)
        ]
    );
    let State::Disconnected { retry_at, attempt } = s.state().clone() else {
        panic!("expected Disconnected, got {:?}", s.state());
    };
    assert_eq!(attempt, 1);
    assert!(retry_at > dead && retry_at <= dead + Duration::from_millis(250));
    assert!(s.on_tick(dead).is_empty(), "no retry before the backoff");

    let actions = s.on_tick(retry_at);
    let (master, _, call) = connect_of(&actions);
    assert_eq!(master, endpoint("m2:5050"), "the next master in the list");
    assert_eq!(call.framework_id.as_ref().unwrap().value, "fw-1");
    let info = &call.subscribe.as_ref().unwrap().framework_info;
    assert_eq!(info.id.as_ref().unwrap().value, "fw-1");
    assert_eq!(s.reconnects(), 1);
}

#[test]
fn a_stored_framework_id_is_reused_on_the_first_subscribe() {
    let now = Instant::now();
    let mut s = session(Some("fw-old"), now);
    let (_, _, call) = connect_of(&s.on_start(now));
    assert_eq!(call.framework_id.unwrap().value, "fw-old");
}

#[test]
fn framework_removed_registers_a_new_framework_and_reports_the_old_id() {
    let now = Instant::now();
    let mut s = session(Some("fw-old"), now);
    let actions = s.on_start(now);
    let (_, generation, _) = connect_of(&actions);
    s.on_subscribe_response(
        generation,
        SubscribeResponse::Streaming(StreamId("s".into())),
        now,
    );
    let actions = s.on_event(generation, error_event("Framework has been removed"), now);
    assert!(
        actions.contains(&Action::Deliver(SessionEvent::FrameworkRemoved {
            old: "fw-old".into()
        }))
    );
    assert_eq!(s.framework_id(), None);
    let (_, _, call) = connect_of(&s.on_tick(now));
    assert_eq!(call.framework_id, None);
    assert_eq!(call.subscribe.unwrap().framework_info.id, None);
}

#[test]
fn other_errors_back_off_and_keep_the_framework_id() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let generation = subscribe(&mut s, &actions, "fw-1", now);
    let actions = s.on_event(generation, error_event("Framework failed over"), now);
    assert!(actions.contains(&Action::Deliver(SessionEvent::Disconnected)));
    assert!(matches!(s.state(), State::Disconnected { .. }));
    assert_eq!(s.framework_id().unwrap().value, "fw-1");
}

#[test]
fn repeated_failures_back_off_exponentially_up_to_the_cap() {
    let now = Instant::now();
    let mut s = session(None, now);
    let mut t = now;
    let mut actions = s.on_start(t);
    let mut delays = Vec::new();
    for _ in 0..12 {
        let (_, generation, _) = connect_of(&actions);
        s.on_subscribe_response(
            generation,
            SubscribeResponse::Failed {
                status: 503,
                detail: "No leader elected".into(),
            },
            t,
        );
        let State::Disconnected { retry_at, .. } = s.state().clone() else {
            panic!("expected Disconnected");
        };
        delays.push(retry_at - t);
        t = retry_at;
        actions = s.on_tick(t);
    }
    assert!(delays[5] > delays[0] * 4, "{delays:?}");
    assert!(
        delays.iter().all(|d| *d <= Duration::from_secs(15)),
        "{delays:?}"
    );
    assert!(delays[11] >= Duration::from_millis(7500), "{delays:?}");
}

#[test]
fn events_from_a_closed_connection_are_ignored() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let old = subscribe(&mut s, &actions, "fw-1", now);
    s.on_stream_closed(old, now);
    let actions = s.on_tick(now + Duration::from_secs(1));
    let (_, new, _) = connect_of(&actions);
    assert_ne!(old, new);
    assert!(s.on_event(old, typed(event::Type::Offers), now).is_empty());
    assert!(s.on_stream_closed(old, now).is_empty());
    assert!(matches!(s.state(), State::Connecting { .. }));
}

#[test]
fn offers_are_delivered_only_after_subscribed() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let (_, generation, _) = connect_of(&actions);
    s.on_subscribe_response(
        generation,
        SubscribeResponse::Streaming(StreamId("s".into())),
        now,
    );
    assert!(s
        .on_event(generation, typed(event::Type::Offers), now)
        .is_empty());
    s.on_event(generation, subscribed_event("fw"), now);
    let actions = s.on_event(generation, typed(event::Type::Offers), now);
    assert!(matches!(
        &actions[..],
        [Action::Deliver(SessionEvent::Offers(_))]
    ));
}

#[test]
fn stream_events_are_delivered_typed_and_the_unused_ones_dropped() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let generation = subscribe(&mut s, &actions, "fw", now);
    let update = Event {
        update: Some(event::Update {
            status: drover_proto::v1::TaskStatus {
                task_id: drover_proto::v1::TaskId {
                    value: "j-0-0".into(),
                },
                state: drover_proto::v1::TaskState::TaskRunning as i32,
                ..Default::default()
            },
        }),
        ..typed(event::Type::Update)
    };
    match &s.on_event(generation, update, now)[..] {
        [Action::Deliver(SessionEvent::Update(u))] => assert_eq!(u.task_id, "j-0-0"),
        other => panic!("expected one Update, got {other:?}"),
    }
    // Dropped, but still proof of life.
    let later = now + Duration::from_secs(60);
    assert!(s
        .on_event(generation, typed(event::Type::Message), later)
        .is_empty());
    assert_eq!(s.next_deadline(), Some(later + Duration::from_secs(75)));
}

#[test]
fn a_silent_subscribe_times_out() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let (_, generation, _) = connect_of(&actions);
    let later = now + Duration::from_secs(75);
    let actions = s.on_tick(later);
    assert_eq!(
        actions,
        vec![Action::Close {
            generation,
            reason: "subscribe timed out"
        }]
    );
}

/// A master that answers 200 and then writes nothing (not even SUBSCRIBED)
/// held the scheduler for 75 s; the default bound is now a heartbeat
/// interval.
#[test]
fn a_stream_silent_after_its_200_is_given_up_within_the_default_subscribe_bound() {
    let now = Instant::now();
    let mut s = session(Some("fw-1"), now);
    let actions = s.on_start(now);
    let (_, generation, _) = connect_of(&actions);
    let streaming = SubscribeResponse::Streaming(StreamId("s".into()));
    assert!(s
        .on_subscribe_response(generation, streaming, now)
        .is_empty());
    let bound = now + Duration::from_secs(15);
    assert_eq!(s.next_deadline(), Some(bound));
    assert!(s.on_tick(bound - Duration::from_millis(1)).is_empty());
    assert_eq!(
        s.on_tick(bound),
        vec![Action::Close {
            generation,
            reason: "subscribe timed out"
        }]
    );
    // Backoff, then the next master.
    let State::Disconnected { retry_at, .. } = s.state().clone() else {
        panic!("expected Disconnected, got {:?}", s.state());
    };
    let (master, _, _) = connect_of(&s.on_tick(retry_at));
    assert_eq!(master, endpoint("m2:5050"));
}

/// A master may announce any heartbeat interval; a huge one must not let
/// it hold a silent stream for ever.
#[test]
fn an_announced_heartbeat_interval_is_capped() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let (_, generation, _) = connect_of(&actions);
    let streaming = SubscribeResponse::Streaming(StreamId("s".into()));
    s.on_subscribe_response(generation, streaming, now);
    let mut event = subscribed_event("fw-1");
    if let Some(subscribed) = event.subscribed.as_mut() {
        subscribed.heartbeat_interval_seconds = Some(1e12);
    }
    s.on_event(generation, event, now);
    assert!(s.is_subscribed());
    // 5 misses of at most 60 s.
    assert_eq!(s.next_deadline(), Some(now + Duration::from_secs(300)));
}

/// We subscribed as fw-ours (stored); the master answers for fw-theirs.
/// Going on would adopt another framework's identity and orphan ours:
/// the session stops, naming both, and delivers nothing to the engine.
#[test]
fn a_subscribed_for_another_framework_id_stops_the_session() {
    let now = Instant::now();
    let mut s = session(Some("fw-ours"), now);
    let actions = s.on_start(now);
    let (_, generation, _) = connect_of(&actions);
    let streaming = SubscribeResponse::Streaming(StreamId("s".into()));
    s.on_subscribe_response(generation, streaming, now);
    let actions = s.on_event(generation, subscribed_event("fw-theirs"), now);
    let error = SessionError::FrameworkIdChanged {
        subscribed_as: "fw-ours".into(),
        answered: "fw-theirs".into(),
    };
    let message = error.to_string();
    assert!(
        message.contains("fw-ours") && message.contains("fw-theirs"),
        "{message}"
    );
    assert_eq!(
        actions,
        vec![
            Action::Close {
                generation,
                reason: "SUBSCRIBED for another framework"
            },
            Action::Stop(error)
        ]
    );
    assert_eq!(s.state(), &State::Stopped);
    assert_eq!(s.next_deadline(), None);
    assert!(s.on_tick(now + Duration::from_secs(3600)).is_empty());
    assert_eq!(s.framework_id().unwrap().value, "fw-ours", "ours is kept");
}

/// Without a stored id, the first SUBSCRIBED names the framework.
#[test]
fn a_first_registration_takes_the_id_the_master_gives() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    subscribe(&mut s, &actions, "fw-new", now);
    assert_eq!(s.framework_id().unwrap().value, "fw-new");
}

#[test]
fn a_detected_leader_change_resubscribes_there_with_the_same_framework_id() {
    let now = Instant::now();
    let mut s = session(None, now);
    let actions = s.on_start(now);
    let generation = subscribe(&mut s, &actions, "fw-1", now);
    // The detector confirms the master we are on: nothing to do.
    assert!(s.on_leader_detected(endpoint("m1:5050"), now).is_empty());
    let standby = endpoint("m3:5050");
    let actions = s.on_leader_detected(standby.clone(), now);
    assert!(actions.contains(&Action::Close {
        generation,
        reason: "the detector names another leading master"
    }));
    assert!(actions.contains(&Action::Deliver(SessionEvent::Disconnected)));
    let (master, _, call) = connect_of(&actions);
    assert_eq!(master, standby);
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
}

#[test]
fn a_leader_detected_while_waiting_to_retry_is_tried_at_once_and_alone() {
    let now = Instant::now();
    let mut s = session(Some("fw-1"), now);
    let actions = s.on_start(now);
    let (_, generation, _) = connect_of(&actions);
    let failed = SubscribeResponse::Failed {
        status: 0,
        detail: "refused".into(),
    };
    let _ = s.on_subscribe_response(generation, failed, now);
    assert!(matches!(s.state(), State::Disconnected { retry_at, .. } if *retry_at > now));
    // More failures pile up the backoff ...
    for _ in 0..6 {
        let (_, generation, _) = connect_of(&s.on_tick(s.next_deadline().unwrap()));
        let failed = SubscribeResponse::Failed {
            status: 0,
            detail: "refused".into(),
        };
        let _ = s.on_subscribe_response(generation, failed, now);
    }
    let leader = endpoint("m9:5050");
    assert!(s.on_leader_detected(leader.clone(), now).is_empty());
    assert_eq!(s.next_deadline(), Some(now));
    let (master, generation, call) = connect_of(&s.on_tick(now));
    assert_eq!(master, leader);
    assert_eq!(call.framework_id.unwrap().value, "fw-1");
    // ... which the new leader does not inherit: a 503 while it recovers
    // is retried within the first backoff step (250 ms).
    let recovering = SubscribeResponse::Failed {
        status: 503,
        detail: "Master has not finished recovery".into(),
    };
    let _ = s.on_subscribe_response(generation, recovering, now);
    assert!(s.next_deadline().unwrap() <= now + Duration::from_millis(250));
    assert_eq!(connect_of(&s.on_tick(s.next_deadline().unwrap())).0, leader);
}
