//! The master state machine driven in memory on a virtual clock: no
//! sockets, every input and fault fed directly.

use std::time::{Duration, Instant};

use drover_proto::v1::scheduler::{call, event, Call, Event};
use drover_proto::v1::{self, task_status::Reason, TaskState};

use super::{Effect, Master, MasterConfig};
use crate::config::FleetDefaults;
use crate::resources::Resources;

pub(super) fn master(agents: usize, now: Instant) -> Master {
    let fleet = FleetDefaults {
        resources: Resources::parse(crate::config::DEFAULT_RESOURCES).unwrap(),
        attributes: Vec::new(),
        zones: vec!["a".into()],
    };
    let config = MasterConfig {
        update_retry_min: Duration::from_secs(10),
        ..MasterConfig::default()
    };
    Master::new(config, fleet.specs(0, agents), now, 1.7e9)
}

pub(super) fn events(fx: &[Effect], conn: u64) -> Vec<Event> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { conn: c, event } if *c == conn => Some((**event).clone()),
            _ => None,
        })
        .collect()
}

fn ty(e: &Event) -> event::Type {
    event::Type::try_from(e.r#type.unwrap()).unwrap()
}

pub(super) fn subscribe(
    m: &mut Master,
    conn: u64,
    now: Instant,
    failover: f64,
) -> (String, String, Vec<Effect>) {
    let info = v1::FrameworkInfo {
        user: "u".into(),
        name: "n".into(),
        failover_timeout: Some(failover),
        ..Default::default()
    };
    let (stream, fx) = m.on_subscribe(
        conn,
        call::Subscribe {
            framework_info: info,
            ..Default::default()
        },
        now,
    );
    let id = events(&fx, conn)[0]
        .subscribed
        .as_ref()
        .unwrap()
        .framework_id
        .value
        .clone();
    (id, stream, fx)
}

pub(super) fn call_of(fw: &str, ty: call::Type) -> Call {
    Call {
        framework_id: Some(v1::FrameworkId { value: fw.into() }),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

pub(super) fn launch(
    m: &mut Master,
    fw: &str,
    stream: &str,
    offer: &v1::Offer,
    id: &str,
    cmd: &str,
    now: Instant,
) -> Vec<Effect> {
    let mut c = call_of(fw, call::Type::Accept);
    let task = v1::TaskInfo {
        name: id.into(),
        task_id: v1::TaskId { value: id.into() },
        agent_id: offer.agent_id.clone(),
        resources: Resources::parse("cpus:1;mem:128").unwrap().to_protos(None),
        command: Some(v1::CommandInfo {
            value: Some(cmd.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    c.accept = Some(call::Accept {
        offer_ids: vec![offer.id.clone()],
        operations: vec![v1::offer::Operation {
            r#type: Some(v1::offer::operation::Type::Launch as i32),
            launch: Some(v1::offer::operation::Launch {
                task_infos: vec![task],
            }),
            ..Default::default()
        }],
        filters: None,
    });
    let (r, fx) = m.on_call(c, Some(stream), now);
    assert!(r.is_ok());
    fx
}

#[test]
fn subscribe_answers_subscribed_then_heartbeat_and_the_next_tick_offers_every_agent() {
    let now = Instant::now();
    let mut m = master(3, now);
    let (_, _, fx) = subscribe(&mut m, 1, now, 0.0);
    let e = events(&fx, 1);
    assert_eq!(
        e.iter().map(ty).collect::<Vec<_>>(),
        [event::Type::Subscribed, event::Type::Heartbeat]
    );
    let offers = events(&m.on_tick(now), 1);
    assert_eq!(offers[0].offers.as_ref().unwrap().offers.len(), 3);
    let beat = events(&m.on_tick(now + Duration::from_secs(15)), 1);
    assert!(beat.iter().any(|e| ty(e) == event::Type::Heartbeat));
}

#[test]
fn updates_are_retried_with_a_doubling_backoff_until_acknowledged() {
    let t0 = Instant::now();
    let mut m = master(1, t0);
    let (fw, stream, _) = subscribe(&mut m, 1, t0, 0.0);
    let offer = events(&m.on_tick(t0), 1)[0].offers.as_ref().unwrap().offers[0].clone();
    let fx = launch(&mut m, &fw, &stream, &offer, "t", "serve", t0);
    let first = events(&fx, 1)[0].update.as_ref().unwrap().status.clone();
    assert_eq!(first.state, TaskState::TaskStarting as i32);
    let s = Duration::from_secs(1);
    let resent_at = |m: &mut Master, at| {
        events(&m.on_tick(at), 1)
            .into_iter()
            .filter(|e| e.update.is_some())
            .count()
    };
    assert_eq!(resent_at(&mut m, t0 + 9 * s), 0);
    assert_eq!(resent_at(&mut m, t0 + 10 * s), 1);
    assert_eq!(resent_at(&mut m, t0 + 29 * s), 0);
    assert_eq!(resent_at(&mut m, t0 + 30 * s), 1, "10 s, then 20 s later");
    let mut ack = call_of(&fw, call::Type::Acknowledge);
    ack.acknowledge = Some(call::Acknowledge {
        agent_id: offer.agent_id.clone(),
        task_id: first.task_id.clone(),
        uuid: first.uuid.clone().unwrap(),
    });
    let (_, fx) = m.on_call(ack, Some(&stream), t0 + 31 * s);
    let next = events(&fx, 1)[0].update.as_ref().unwrap().status.clone();
    assert_eq!(next.state, TaskState::TaskRunning as i32);
}

#[test]
fn a_failed_agent_is_an_input_like_any_call() {
    let t0 = Instant::now();
    let mut m = master(1, t0);
    let (fw, stream, _) = subscribe(&mut m, 1, t0, 0.0);
    let offer = events(&m.on_tick(t0), 1)[0].offers.as_ref().unwrap().offers[0].clone();
    launch(&mut m, &fw, &stream, &offer, "t", "serve", t0);
    let fx = m.on_agent_failed(&offer.agent_id.value, t0).unwrap();
    let e = events(&fx, 1);
    let lost = e.iter().find_map(|e| e.update.as_ref()).unwrap();
    assert_eq!(lost.status.state, TaskState::TaskLost as i32);
    assert_eq!(lost.status.reason, Some(Reason::AgentRemoved as i32));
    assert!(e.iter().any(|e| ty(e) == event::Type::Failure));
    assert!(m.on_agent_failed("nope", t0).is_err());
}

#[test]
fn a_disconnected_framework_is_removed_when_its_failover_timeout_expires() {
    let t0 = Instant::now();
    let mut m = master(1, t0);
    let (fw, _, _) = subscribe(&mut m, 1, t0, 5.0);
    m.on_disconnected(1, t0);
    m.on_tick(t0 + Duration::from_secs(4));
    assert!(m.frameworks().any(|f| f.id == fw));
    m.on_tick(t0 + Duration::from_secs(5));
    assert!(!m.frameworks().any(|f| f.id == fw));
    assert!(m.completed_frameworks().any(|(id, _)| *id == fw));
}

#[test]
fn calls_are_refused_with_the_status_mesos_uses() {
    let t0 = Instant::now();
    let mut m = master(1, t0);
    let (fw, stream, _) = subscribe(&mut m, 1, t0, 60.0);
    let revive = call_of(&fw, call::Type::Revive);
    assert_eq!(
        m.on_call(revive.clone(), None, t0).0.unwrap_err().status(),
        400
    );
    assert_eq!(
        m.on_call(revive.clone(), Some("other"), t0)
            .0
            .unwrap_err()
            .status(),
        400
    );
    assert!(m.on_call(revive.clone(), Some(&stream), t0).0.is_ok());
    m.on_disconnected(1, t0);
    assert_eq!(
        m.on_call(revive.clone(), Some(&stream), t0)
            .0
            .unwrap_err()
            .status(),
        403
    );
    assert_eq!(
        m.on_call(call_of("nobody", call::Type::Revive), Some(&stream), t0)
            .0
            .unwrap_err()
            .status(),
        400
    );
}

#[test]
fn ten_thousand_agents_are_offered_in_one_cycle() {
    let t0 = Instant::now();
    let mut m = master(10_000, t0);
    subscribe(&mut m, 1, t0, 0.0);
    let offers: usize = events(&m.on_tick(t0), 1)
        .iter()
        .filter_map(|e| e.offers.as_ref())
        .map(|o| o.offers.len())
        .sum();
    assert_eq!(offers, 10_000);
}
