//! Maintenance driven through the master state machine on a virtual
//! clock: operator calls and framework answers fed directly, effects read.

use std::time::{Duration, Instant};

use drover_proto::v1::scheduler::{call, event, Call, Event};
use drover_proto::v1::{self, task_status::Reason, TaskState};

use super::{Effect, Master, MasterConfig};
use crate::config::FleetDefaults;
use crate::operator_proto::{self, CallType, InverseOfferState, ResponseType};
use crate::resources::Resources;

const SECOND: Duration = Duration::from_secs(1);

fn master(agents: usize, now: Instant) -> Master {
    let fleet = FleetDefaults {
        resources: Resources::parse(crate::config::DEFAULT_RESOURCES).unwrap(),
        attributes: Vec::new(),
        zones: vec!["a".into()],
    };
    Master::new(MasterConfig::default(), fleet.specs(0, agents), now, 1.7e9)
}

fn events(fx: &[Effect], conn: u64) -> Vec<Event> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { conn: c, event } if *c == conn => Some((**event).clone()),
            _ => None,
        })
        .collect()
}

fn of_type(fx: &[Effect], conn: u64, ty: event::Type) -> Vec<Event> {
    events(fx, conn)
        .into_iter()
        .filter(|e| e.r#type == Some(ty as i32))
        .collect()
}

fn subscribe(m: &mut Master, conn: u64, now: Instant) -> (String, String) {
    subscribe_with(m, conn, now, Vec::new())
}

fn subscribe_with(
    m: &mut Master,
    conn: u64,
    now: Instant,
    capabilities: Vec<v1::framework_info::Capability>,
) -> (String, String) {
    let info = v1::FrameworkInfo {
        user: "u".into(),
        name: format!("fw{conn}"),
        capabilities,
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
    (id, stream)
}

fn call_of(fw: &str, ty: call::Type) -> Call {
    Call {
        framework_id: Some(v1::FrameworkId { value: fw.into() }),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

fn launch(
    m: &mut Master,
    fw: &str,
    stream: &str,
    offer: &v1::Offer,
    id: &str,
    now: Instant,
) -> Vec<Effect> {
    let mut c = call_of(fw, call::Type::Accept);
    c.accept = Some(call::Accept {
        offer_ids: vec![offer.id.clone()],
        operations: vec![v1::offer::Operation {
            r#type: Some(v1::offer::operation::Type::Launch as i32),
            launch: Some(v1::offer::operation::Launch {
                task_infos: vec![v1::TaskInfo {
                    name: id.into(),
                    task_id: v1::TaskId { value: id.into() },
                    agent_id: offer.agent_id.clone(),
                    resources: Resources::parse("cpus:1;mem:128").unwrap().to_protos(None),
                    command: Some(v1::CommandInfo {
                        value: Some("sleep 1000".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }],
        filters: None,
    });
    let (result, fx) = m.on_call(c, Some(stream), now);
    assert!(result.is_ok());
    fx
}

fn operator(m: &mut Master, call: operator_proto::Call, now: Instant) -> Vec<Effect> {
    let (result, fx) = m.on_operator_call(call, now);
    assert!(result.is_ok(), "{result:?}");
    fx
}

fn schedule_all(m: &mut Master, now: Instant) -> Vec<Effect> {
    let machine_ids = m.agents().iter().map(|a| a.machine_id()).collect();
    let schedule = operator_proto::Schedule {
        windows: vec![operator_proto::Window {
            machine_ids,
            unavailability: v1::Unavailability {
                start: v1::TimeInfo {
                    nanoseconds: 2_000_000_000_000_000_000,
                },
                duration: None,
            },
        }],
    };
    operator(
        m,
        operator_proto::Call {
            r#type: Some(CallType::UpdateMaintenanceSchedule as i32),
            update_maintenance_schedule: Some(operator_proto::UpdateMaintenanceSchedule {
                schedule,
            }),
            ..Default::default()
        },
        now,
    )
}

fn inverse_offer_ids(fx: &[Effect], conn: u64) -> Vec<String> {
    of_type(fx, conn, event::Type::InverseOffers)
        .iter()
        .flat_map(|e| e.inverse_offers.as_ref().unwrap().inverse_offers.clone())
        .map(|o| o.id.value)
        .collect()
}

fn answer(
    m: &mut Master,
    fw: &str,
    stream: &str,
    id: &str,
    accept: bool,
    refuse: f64,
    now: Instant,
) {
    let ids = vec![v1::OfferId { value: id.into() }];
    let filters = Some(v1::Filters {
        refuse_seconds: Some(refuse),
    });
    let c = if accept {
        let mut c = call_of(fw, call::Type::AcceptInverseOffers);
        c.accept_inverse_offers = Some(Box::new(call::AcceptInverseOffers {
            inverse_offer_ids: ids,
            filters,
        }));
        c
    } else {
        let mut c = call_of(fw, call::Type::DeclineInverseOffers);
        c.decline_inverse_offers = Some(Box::new(call::DeclineInverseOffers {
            inverse_offer_ids: ids,
            filters,
        }));
        c
    };
    assert!(m.on_call(c, Some(stream), now).0.is_ok());
}

/// One agent, two frameworks: one runs a task there, the other holds an
/// offer of it. Each gets one inverse offer per window until it answers;
/// an answer with `refuse_seconds: 0` brings the next at once, one with
/// 10 s holds it back that long; both answers are in the status.
#[test]
fn inverse_offers_reach_every_framework_on_the_agent_once_until_answered() {
    let t0 = Instant::now();
    let mut m = master(1, t0);
    let (fw1, s1) = subscribe(&mut m, 1, t0);
    let offer = of_type(&m.on_tick(t0), 1, event::Type::Offers)[0]
        .offers
        .as_ref()
        .unwrap()
        .offers[0]
        .clone();
    launch(&mut m, &fw1, &s1, &offer, "t1", t0);
    let (fw2, s2) = subscribe(&mut m, 2, t0);
    // fw1 filtered what it left for 5 s: the rest goes to fw2.
    let fx = m.on_tick(t0 + SECOND);
    assert_eq!(of_type(&fx, 2, event::Type::Offers).len(), 1);

    let fx = schedule_all(&mut m, t0 + 2 * SECOND);
    assert_eq!(
        of_type(&fx, 2, event::Type::Rescind).len(),
        1,
        "the offer goes, to come back with the window"
    );
    let fx = m.on_tick(t0 + 2 * SECOND);
    let reoffered = of_type(&fx, 2, event::Type::Offers);
    assert!(reoffered[0].offers.as_ref().unwrap().offers[0]
        .unavailability
        .is_some());
    let io1 = inverse_offer_ids(&fx, 1);
    let io2 = inverse_offer_ids(&fx, 2);
    assert_eq!((io1.len(), io2.len()), (1, 1), "{fx:?}");

    let fx = m.on_tick(t0 + 3 * SECOND);
    assert!(inverse_offer_ids(&fx, 1).is_empty() && inverse_offer_ids(&fx, 2).is_empty());

    answer(&mut m, &fw1, &s1, &io1[0], true, 0.0, t0 + 3 * SECOND);
    answer(&mut m, &fw2, &s2, &io2[0], false, 10.0, t0 + 3 * SECOND);
    let status = m.cluster_status();
    let mut answers: Vec<(String, i32)> = status.draining_machines[0]
        .statuses
        .iter()
        .map(|s| (s.framework_id.value.clone(), s.status))
        .collect();
    answers.sort();
    let mut want = vec![
        (fw1.clone(), InverseOfferState::Accept as i32),
        (fw2.clone(), InverseOfferState::Decline as i32),
    ];
    want.sort();
    assert_eq!(answers, want);

    let fx = m.on_tick(t0 + 4 * SECOND);
    assert_eq!(inverse_offer_ids(&fx, 1).len(), 1, "no filter: asked again");
    assert!(inverse_offer_ids(&fx, 2).is_empty(), "declined for 10 s");
    let fx = m.on_tick(t0 + 14 * SECOND);
    assert_eq!(inverse_offer_ids(&fx, 2).len(), 1, "the filter expired");

    // A master failover forgets the answers, not the schedule.
    m.on_drop_connections();
    let status = m.cluster_status();
    assert_eq!(status.draining_machines.len(), 1);
    assert!(status.draining_machines[0].statuses.is_empty());
}

/// DRAIN_AGENT with `mark_gone`: the task is killed within the drain's
/// grace and ends TASK_GONE_BY_OPERATOR, and once that is acknowledged the agent leaves the cluster
/// (every framework gets FAILURE; GET_AGENTS no longer lists it).
#[test]
fn a_drain_that_marks_gone_removes_the_agent_once_its_tasks_are_acknowledged() {
    let t0 = Instant::now();
    let mut m = master(1, t0);
    let (fw, s) = subscribe(&mut m, 1, t0);
    let offer = of_type(&m.on_tick(t0), 1, event::Type::Offers)[0]
        .offers
        .as_ref()
        .unwrap()
        .offers[0]
        .clone();
    let mut pending = launch(&mut m, &fw, &s, &offer, "t1", t0);
    let agent = offer.agent_id.value.clone();
    let drain = operator_proto::Call {
        r#type: Some(CallType::DrainAgent as i32),
        drain_agent: Some(operator_proto::DrainAgent {
            agent_id: offer.agent_id.clone(),
            max_grace_period: Some(operator_proto::ProtoDuration {
                seconds: Some(1),
                nanos: None,
            }),
            mark_gone: Some(true),
        }),
        ..Default::default()
    };
    pending.extend(operator(&mut m, drain, t0));
    // Updates go one at a time until acknowledged: every one but
    // TASK_KILLED is acknowledged as it comes.
    let acknowledge = |m: &mut Master, status: &v1::TaskStatus, now: Instant| {
        let mut ack = call_of(&fw, call::Type::Acknowledge);
        ack.acknowledge = Some(call::Acknowledge {
            agent_id: offer.agent_id.clone(),
            task_id: status.task_id.clone(),
            uuid: status.uuid.clone().unwrap(),
        });
        let (result, fx) = m.on_call(ack, Some(&s), now);
        assert!(result.is_ok());
        fx
    };
    let mut killed = None;
    for step in 1..=6 {
        let now = t0 + step * SECOND / 4;
        pending.extend(m.on_tick(now));
        for e in of_type(&std::mem::take(&mut pending), 1, event::Type::Update) {
            let status = e.update.unwrap().status;
            // Not partition-aware: TASK_KILLED, marked as the drain's,
            // not TASK_GONE_BY_OPERATOR (Mesos' agent keeps that for
            // partition-aware frameworks).
            if status.state == TaskState::TaskKilled as i32 {
                assert_eq!(status.reason, Some(Reason::AgentDraining as i32));
                killed = Some(status);
            } else {
                pending.extend(acknowledge(&mut m, &status, now));
            }
        }
    }
    let killed = killed.expect("the kill within the drain's 1 s grace");
    let fx = m.on_tick(t0 + 3 * SECOND);
    assert!(
        of_type(&fx, 1, event::Type::Failure).is_empty(),
        "still a task to acknowledge"
    );
    let fx = acknowledge(&mut m, &killed, t0 + 3 * SECOND);
    assert!(of_type(&fx, 1, event::Type::Failure).is_empty());
    let fx = m.on_tick(t0 + 4 * SECOND);
    let failure = of_type(&fx, 1, event::Type::Failure);
    assert_eq!(
        failure[0]
            .failure
            .as_ref()
            .unwrap()
            .agent_id
            .as_ref()
            .unwrap()
            .value,
        agent
    );
    let (agents, _) = m.on_operator_call(
        operator_proto::Call {
            r#type: Some(CallType::GetAgents as i32),
            ..Default::default()
        },
        t0 + 4 * SECOND,
    );
    let agents = agents.unwrap();
    assert_eq!(agents.r#type, Some(ResponseType::GetAgents as i32));
    assert!(agents.get_agents.unwrap().agents.is_empty());
}

fn refusal(m: &mut Master, call: operator_proto::Call, now: Instant) -> (u16, String) {
    let (result, _) = m.on_operator_call(call, now);
    let e = result.expect_err("refused");
    (e.status(), e.to_string())
}

fn machines_call(ty: CallType, ids: Vec<v1::MachineId>) -> operator_proto::Call {
    let machines = Some(operator_proto::Machines { machines: ids });
    operator_proto::Call {
        r#type: Some(ty as i32),
        start_maintenance: machines
            .clone()
            .filter(|_| ty == CallType::StartMaintenance),
        stop_maintenance: machines.filter(|_| ty == CallType::StopMaintenance),
        ..Default::default()
    }
}

fn agent_call(ty: CallType, agent: &str) -> operator_proto::Call {
    let agent_id = v1::AgentId {
        value: agent.into(),
    };
    operator_proto::Call {
        r#type: Some(ty as i32),
        drain_agent: (ty == CallType::DrainAgent).then(|| operator_proto::DrainAgent {
            agent_id: agent_id.clone(),
            max_grace_period: None,
            mark_gone: None,
        }),
        reactivate_agent: (ty == CallType::ReactivateAgent)
            .then_some(operator_proto::AgentRef { agent_id }),
        ..Default::default()
    }
}

/// The refusals a by-hand run against a Mesos 1.12 master showed, in its
/// words: an agent's machine out of the schedule is UP (not unknown), a
/// scheduled agent cannot also be drained, REACTIVATE_AGENT of an unknown
/// agent is "not deactivated", a call without a Mesos type is a 400 and a
/// Mesos call the simulator lacks a 501. STOP brings the agent back under
/// its old id.
#[test]
fn operator_refusals_and_the_returning_agent_id_are_as_a_real_master_gives_them() {
    let t0 = Instant::now();
    let mut m = master(2, t0);
    let machine = m.agents()[0].machine_id();
    let agent = m.agents()[0].id.clone();
    let host = machine.hostname.clone().unwrap();
    let ip = machine.ip.clone().unwrap();
    let json = format!(r#"{{"hostname":"{host}","ip":"{ip}"}}"#);
    assert_eq!(
        refusal(
            &mut m,
            machines_call(CallType::StartMaintenance, vec![machine.clone()]),
            t0
        ),
        (
            400,
            format!("Machine '{json}' is not in DRAINING mode and cannot be brought down")
        )
    );
    assert_eq!(
        refusal(
            &mut m,
            machines_call(CallType::StopMaintenance, vec![machine.clone()]),
            t0
        ),
        (
            400,
            format!("Machine '{json}' is not in DOWN mode and cannot be brought up")
        )
    );
    let stranger = v1::MachineId {
        hostname: Some("no-such-host".into()),
        ip: Some("10.9.9.9".into()),
    };
    assert_eq!(
        refusal(&mut m, machines_call(CallType::StartMaintenance, vec![stranger]), t0),
        (
            400,
            r#"Machine '{"hostname":"no-such-host","ip":"10.9.9.9"}' is not part of a maintenance schedule"#
                .to_owned()
        )
    );
    assert_eq!(
        refusal(
            &mut m,
            agent_call(CallType::ReactivateAgent, "no-such-agent"),
            t0
        ),
        (400, "Agent is not deactivated".to_owned())
    );
    assert_eq!(
        refusal(&mut m, operator_proto::Call::default(), t0),
        (
            400,
            "Failed to validate master::Call: Expecting 'type' to be present".to_owned()
        )
    );
    let get_flags = operator_proto::Call {
        r#type: Some(2),
        ..Default::default()
    };
    assert_eq!(refusal(&mut m, get_flags, t0).0, 501);
    let bare = operator_proto::Call {
        r#type: Some(CallType::UpdateMaintenanceSchedule as i32),
        ..Default::default()
    };
    assert_eq!(
        refusal(&mut m, bare, t0).1,
        "Failed to validate master::Call: Expecting 'update_maintenance_schedule' to be present"
    );

    schedule_all(&mut m, t0);
    assert_eq!(
        refusal(&mut m, agent_call(CallType::DrainAgent, &agent), t0),
        (
            400,
            format!("Agent {agent} is part of a maintenance schedule under Machine {host} ({ip})")
        )
    );
    operator(
        &mut m,
        machines_call(CallType::StartMaintenance, vec![machine.clone()]),
        t0,
    );
    assert!(m.agents()[0].removed);
    operator(
        &mut m,
        machines_call(CallType::StopMaintenance, vec![machine.clone()]),
        t0,
    );
    let back = &m.agents()[0];
    assert!(!back.removed);
    assert_eq!(
        back.id, agent,
        "the old id, as a restarted Mesos agent keeps"
    );
    // Out of the schedule again, the machine is UP, not unknown.
    assert_eq!(
        refusal(
            &mut m,
            machines_call(CallType::StopMaintenance, vec![machine]),
            t0
        )
        .1,
        format!("Machine '{json}' is not in DOWN mode and cannot be brought up")
    );
}

/// A drain that marks the agent gone turns a partition-aware framework's
/// kills into TASK_GONE_BY_OPERATOR, still with REASON_AGENT_DRAINING, as
/// the Mesos agent rewrites them.
#[test]
fn a_marked_gone_drain_reports_gone_by_operator_to_a_partition_aware_framework() {
    let t0 = Instant::now();
    let mut m = master(1, t0);
    let aware = v1::framework_info::Capability {
        r#type: Some(v1::framework_info::capability::Type::PartitionAware as i32),
    };
    let (fw, s) = subscribe_with(&mut m, 1, t0, vec![aware]);
    let offer = of_type(&m.on_tick(t0), 1, event::Type::Offers)[0]
        .offers
        .as_ref()
        .unwrap()
        .offers[0]
        .clone();
    let mut pending = launch(&mut m, &fw, &s, &offer, "t1", t0);
    let drain = operator_proto::Call {
        r#type: Some(CallType::DrainAgent as i32),
        drain_agent: Some(operator_proto::DrainAgent {
            agent_id: offer.agent_id.clone(),
            max_grace_period: Some(operator_proto::ProtoDuration {
                seconds: Some(1),
                nanos: None,
            }),
            mark_gone: Some(true),
        }),
        ..Default::default()
    };
    pending.extend(operator(&mut m, drain, t0));
    let mut gone = None;
    for step in 1..=6 {
        let now = t0 + step * SECOND / 4;
        pending.extend(m.on_tick(now));
        for e in of_type(&std::mem::take(&mut pending), 1, event::Type::Update) {
            let status = e.update.unwrap().status;
            if status.state == TaskState::TaskGoneByOperator as i32 {
                gone = Some(status);
            } else if let Some(uuid) = status.uuid.clone() {
                let mut ack = call_of(&fw, call::Type::Acknowledge);
                ack.acknowledge = Some(call::Acknowledge {
                    agent_id: offer.agent_id.clone(),
                    task_id: status.task_id.clone(),
                    uuid,
                });
                let (result, fx) = m.on_call(ack, Some(&s), now);
                assert!(result.is_ok());
                pending.extend(fx);
            }
        }
    }
    let gone = gone.expect("the kill within the drain's 1 s grace");
    assert_eq!(gone.reason, Some(Reason::AgentDraining as i32));
}
