//! Mesos maintenance against agent-sim, from an operator's side (the
//! operator API, `POST /api/v1`, in JSON and protobuf) and a framework's
//! (a raw v1 scheduler client): what each sees when a machine is
//! scheduled for maintenance, brought DOWN and UP again, and when an agent
//! is drained, deactivated and reactivated.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use drover_agent_sim::operator_proto::{self, AgentRef, Call, CallType, DrainAgent, ProtoDuration};
use drover_proto::v1::scheduler::{call, event, Event};
use drover_proto::v1::{self, task_status::Reason, task_status::Source, TaskState};
use drover_proto::MediaType;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::framework::{framework_info, is, reason_of, state_of, task, Framework};
use drover_tests::harness::operator::{now_nanos, Operator};
use serde_json::{json, Value};

const HOUR_NS: i64 = 3_600_000_000_000;

/// Launches a long task on `offer` and reads it to TASK_RUNNING, acknowledged.
async fn run_task(fw: &mut Framework, id: &str, offer: &v1::Offer) {
    fw.launch(offer, vec![task(id, offer, "sleep 1000")]).await;
    loop {
        let status = fw.next_update(id).await;
        fw.ack(&status).await;
        if state_of(&status) == TaskState::TaskRunning {
            return;
        }
    }
}

fn offers_of(e: &Event) -> Vec<v1::Offer> {
    e.offers
        .as_ref()
        .map(|o| o.offers.clone())
        .unwrap_or_default()
}

fn inverse_offers_of(e: &Event) -> Vec<v1::InverseOffer> {
    e.inverse_offers
        .as_ref()
        .map(|o| o.inverse_offers.clone())
        .unwrap_or_default()
}

fn on_agent(agent: &str) -> impl Fn(&v1::InverseOffer) -> bool + '_ {
    move |o| o.agent_id.as_ref().is_some_and(|a| a.value == agent)
}

/// A framework with a task on the first agent sees the scheduled window in
/// that agent's offers and in an inverse offer, which it accepts; the
/// operator sees the answer in the maintenance status. START_MAINTENANCE
/// takes the agent away with its task (TASK_LOST), STOP_MAINTENANCE brings
/// it back into offers. Refusals carry Mesos' 400 and words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_machine_is_inverse_offered_then_taken_down_and_brought_back() {
    let sim = AgentSim::for_scheduler(3).start();
    let op = Operator::new(&sim.address);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("maint")).await;
    let offers = fw.next_offers().await;
    let first = offers[0].clone();
    let agent = first.agent_id.value.clone();
    run_task(&mut fw, "t1", &first).await;

    let machine = op.machine_of(&agent).await;
    assert_eq!(machine["hostname"], first.hostname.as_str());
    let other_agent = offers
        .iter()
        .find(|o| o.agent_id.value != agent)
        .map(|o| o.agent_id.value.clone())
        .unwrap();
    let other = op.machine_of(&other_agent).await;

    // Refusals, before any schedule exists.
    let start = now_nanos() + HOUR_NS;
    let (status, body) = op
        .schedule(&[
            (vec![machine.clone()], start, HOUR_NS),
            (vec![machine.clone()], start, HOUR_NS),
        ])
        .await;
    assert_eq!(status, 400);
    assert_eq!(
        body.as_str().unwrap(),
        format!(
            "Machine '{}' appears more than once in the schedule",
            machine
        )
    );
    let (status, body) = op.schedule(&[(vec![machine.clone()], start, -1)]).await;
    assert_eq!(
        (status, body.as_str().unwrap()),
        (400, "Unavailability 'duration' is negative")
    );
    // The agent's machine is known to the master, UP, before any schedule
    // (a real master answers so); only a machine never seen is "not part
    // of a maintenance schedule".
    let (status, body) = op.start_maintenance(std::slice::from_ref(&machine)).await;
    assert_eq!(
        (status, body.as_str().unwrap()),
        (
            400,
            format!("Machine '{machine}' is not in DRAINING mode and cannot be brought down")
                .as_str()
        )
    );
    let (status, body) = op.stop_maintenance(std::slice::from_ref(&machine)).await;
    assert_eq!(
        (status, body.as_str().unwrap()),
        (
            400,
            format!("Machine '{machine}' is not in DOWN mode and cannot be brought up").as_str()
        )
    );
    let stranger = json!({"hostname": "no-such-host", "ip": "10.9.9.9"});
    let (status, body) = op.start_maintenance(std::slice::from_ref(&stranger)).await;
    assert_eq!(
        (status, body.as_str().unwrap()),
        (
            400,
            format!("Machine '{stranger}' is not part of a maintenance schedule").as_str()
        )
    );

    // The window: offers of the agent carry it, and an inverse offer comes.
    let (status, body) = op
        .schedule(&[(vec![machine.clone()], start, HOUR_NS)])
        .await;
    assert_eq!(status, 200, "{body}");
    let schedule = op.get_schedule().await;
    assert_eq!(schedule["windows"][0]["machine_ids"][0], machine);
    assert_eq!(
        schedule["windows"][0]["unavailability"]["start"]["nanoseconds"],
        start
    );
    let mut offered_window = None;
    let mut inverse = None;
    let deadline = Instant::now() + Duration::from_secs(20);
    while (offered_window.is_none() || inverse.is_none()) && Instant::now() < deadline {
        let e = fw.stream.next().await.unwrap();
        if let Some(o) = offers_of(&e)
            .into_iter()
            .find(|o| o.agent_id.value == agent)
        {
            offered_window = Some(o.unavailability);
        }
        if let Some(o) = inverse_offers_of(&e).into_iter().find(on_agent(&agent)) {
            inverse = Some(o);
        }
    }
    let window = offered_window
        .expect("an offer of the agent")
        .expect("with its window");
    assert_eq!(window.start.nanoseconds, start);
    assert_eq!(window.duration.unwrap().nanoseconds, HOUR_NS);
    let inverse = inverse.expect("an inverse offer for the agent with the task");
    assert_eq!(inverse.unavailability.start.nanoseconds, start);
    assert_eq!(inverse.framework_id.value, fw.id);
    assert!(inverse.resources.is_empty(), "the whole agent");

    let status = op.status().await;
    assert_eq!(status["draining_machines"][0]["id"], machine);
    assert!(status["draining_machines"][0].get("statuses").is_none());
    // A scheduled agent is taken down by the schedule, not drained.
    let (status, body) = op
        .call(&json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": agent}}}))
        .await;
    assert_eq!(
        (status, body.as_str().unwrap()),
        (
            400,
            format!(
                "Agent {agent} is part of a maintenance schedule under Machine {} ({})",
                machine["hostname"].as_str().unwrap(),
                machine["ip"].as_str().unwrap()
            )
            .as_str()
        )
    );
    let accept = fw.call(call::Type::AcceptInverseOffers, |c| {
        c.accept_inverse_offers = Some(Box::new(call::AcceptInverseOffers {
            inverse_offer_ids: vec![inverse.id.clone()],
            filters: None,
        }))
    });
    fw.send_ok(&accept).await;
    let status = op.status().await;
    let answer = &status["draining_machines"][0]["statuses"][0];
    assert_eq!(answer["status"], "ACCEPT");
    assert_eq!(answer["framework_id"]["value"], fw.id.as_str());
    assert!(answer["timestamp"]["nanoseconds"].as_i64().unwrap() > 0);

    let (status, body) = op.stop_maintenance(std::slice::from_ref(&machine)).await;
    assert_eq!(status, 400);
    assert!(
        body.as_str()
            .unwrap()
            .ends_with("is not in DOWN mode and cannot be brought up"),
        "{body}"
    );
    let (status, body) = op.start_maintenance(std::slice::from_ref(&other)).await;
    assert_eq!(status, 400, "{body}");

    // DOWN: the task is lost with the agent, which leaves the cluster.
    let (status, body) = op.start_maintenance(std::slice::from_ref(&machine)).await;
    assert_eq!(status, 200, "{body}");
    let lost = fw.next_update("t1").await;
    assert_eq!(state_of(&lost), TaskState::TaskLost);
    assert_eq!(reason_of(&lost), Some(Reason::AgentRemoved));
    assert_eq!(lost.source, Some(Source::Master as i32));
    assert_eq!(
        lost.message.unwrap(),
        format!(
            "Agent {} removed: Operator initiated 'Machine DOWN'",
            first.hostname
        )
    );
    let failure = fw.stream.until(is(event::Type::Failure)).await;
    assert_eq!(failure.failure.unwrap().agent_id.unwrap().value, agent);
    let status = op.status().await;
    assert_eq!(status["down_machines"], json!([machine]));
    assert!(status.get("draining_machines").is_none(), "{status}");
    let agents = op.agents().await;
    assert_eq!(agents.len(), 2);
    assert!(agents
        .iter()
        .all(|a| a["agent_info"]["id"]["value"] != agent.as_str()));
    let (_, state) = sim.get("/state").await;
    assert_eq!(
        state["maintenance"]["status"]["down_machines"],
        json!([machine])
    );
    assert!(state["slaves"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["id"] != agent.as_str()));
    let (status, old) = sim.get("/maintenance/status").await;
    assert_eq!((status, &old["down_machines"]), (200, &json!([machine])));
    // A DOWN machine cannot leave the schedule but through STOP.
    let (status, body) = op.schedule(&[]).await;
    assert_eq!(status, 400);
    assert!(
        body.as_str()
            .unwrap()
            .ends_with("is deactivated and cannot be removed from the schedule"),
        "{body}"
    );

    // UP: the agent registers again under its old id, as a real Mesos
    // agent restarted on its work directory does, and is offered without a
    // window.
    let (status, body) = op.stop_maintenance(std::slice::from_ref(&machine)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(op.get_schedule().await, json!({}));
    assert_eq!(op.status().await, json!({}));
    let back = fw
        .stream
        .until(|e| offers_of(e).iter().any(|o| o.hostname == first.hostname))
        .await;
    let offer = offers_of(&back)
        .into_iter()
        .find(|o| o.hostname == first.hostname)
        .unwrap();
    assert!(offer.unavailability.is_none());
    assert_eq!(offer.agent_id.value, agent, "the agent's old id");
    let agents = op.agents().await;
    assert_eq!(agents.len(), 3);
    assert_eq!(op.machine_of(&agent).await, machine);
    let back = agents
        .iter()
        .find(|a| a["agent_info"]["id"]["value"] == agent.as_str())
        .unwrap();
    assert!(back["reregistered_time"]["nanoseconds"].as_i64().unwrap() > 0);
}

fn partition_aware(name: &str) -> v1::FrameworkInfo {
    let mut info = framework_info(name);
    info.capabilities.push(v1::framework_info::Capability {
        r#type: Some(v1::framework_info::capability::Type::PartitionAware as i32),
    });
    info
}

fn agent_call(ty: CallType, agent: &str) -> Call {
    let agent_ref = Some(AgentRef {
        agent_id: v1::AgentId {
            value: agent.into(),
        },
    });
    Call {
        r#type: Some(ty as i32),
        deactivate_agent: agent_ref
            .clone()
            .filter(|_| ty == CallType::DeactivateAgent),
        reactivate_agent: agent_ref.filter(|_| ty == CallType::ReactivateAgent),
        ..Default::default()
    }
}

async fn get_agents_protobuf(op: &Operator) -> Vec<operator_proto::AgentEntry> {
    let (status, body) = op
        .call_protobuf(&Call {
            r#type: Some(CallType::GetAgents as i32),
            ..Default::default()
        })
        .await;
    assert_eq!(status, 200);
    operator_proto::response_from_protobuf(&body)
        .unwrap()
        .get_agents
        .unwrap()
        .agents
}

/// Over protobuf: DRAIN_AGENT kills the agent's task within the drain's
/// grace, keeps the agent out of offers, and reports DRAINING then DRAINED
/// in GET_AGENTS; REACTIVATE_AGENT is refused until then and returns it to
/// offers. A schedule dropped before the window rescinds the inverse
/// offer, and a partition-aware framework's task on a DOWN machine is
/// TASK_GONE_BY_OPERATOR.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_agent_stops_being_offered_and_down_means_gone_for_partition_aware_frameworks() {
    let sim = AgentSim::for_scheduler(3).start();
    let op = Operator::new(&sim.address);
    let mut fw =
        Framework::subscribe(sim.addr, MediaType::Protobuf, partition_aware("drain")).await;
    let offers = fw.next_offers().await;
    assert!(offers.len() >= 2, "{offers:?}");
    let (b, c) = (offers[0].clone(), offers[1].clone());
    run_task(&mut fw, "tb", &b).await;
    run_task(&mut fw, "tc", &c).await;
    let agent_b = b.agent_id.value.clone();

    let (status, body) = op
        .call_protobuf(&agent_call(CallType::DeactivateAgent, "no-such-agent"))
        .await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (400, "Unknown agent")
    );
    // Mesos looks only at its deactivated agents here.
    let (status, body) = op
        .call_protobuf(&agent_call(CallType::ReactivateAgent, "no-such-agent"))
        .await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (400, "Agent is not deactivated")
    );
    let (status, body) = op
        .call_protobuf(&agent_call(CallType::ReactivateAgent, &agent_b))
        .await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (400, "Agent is not deactivated")
    );

    let drain = Call {
        r#type: Some(CallType::DrainAgent as i32),
        drain_agent: Some(DrainAgent {
            agent_id: v1::AgentId {
                value: agent_b.clone(),
            },
            max_grace_period: Some(ProtoDuration {
                seconds: Some(0),
                nanos: Some(200_000_000),
            }),
            mark_gone: Some(false),
        }),
        ..Default::default()
    };
    assert_eq!(op.call_protobuf(&drain).await.0, 200);
    // The kill's update is not acknowledged yet, so the agent still drains.
    let (status, body) = op
        .call_protobuf(&agent_call(CallType::ReactivateAgent, &agent_b))
        .await;
    assert_eq!(
        (status, String::from_utf8_lossy(&body).as_ref()),
        (400, "Agent is still in the DRAINING state")
    );
    let entry = get_agents_protobuf(&op)
        .await
        .into_iter()
        .find(|a| a.agent_info.id.as_ref().unwrap().value == agent_b)
        .unwrap();
    assert_eq!(entry.deactivated, Some(true));
    assert!(!entry.active);
    assert!(entry.estimated_drain_start_time.is_some());
    assert!(entry
        .capabilities
        .iter()
        .any(|c| c.r#type == Some(v1::agent_info::capability::Type::AgentDraining as i32)));
    let info = entry.drain_info.unwrap();
    assert_eq!(info.state, v1::DrainState::Draining as i32);
    assert_eq!(
        info.config.max_grace_period.unwrap().nanoseconds,
        200_000_000
    );
    let killed_at = Instant::now();
    let killed = loop {
        let s = fw.next_update("tb").await;
        fw.ack(&s).await;
        if state_of(&s) == TaskState::TaskKilled {
            break s;
        }
    };
    assert_eq!(state_of(&killed), TaskState::TaskKilled);
    assert_eq!(
        reason_of(&killed),
        Some(Reason::AgentDraining),
        "the Mesos agent marks a drain's kills"
    );
    assert!(
        killed_at.elapsed() < Duration::from_secs(3),
        "the drain's 200 ms grace, not the task's 3 s"
    );
    let (_, offered) = sim.get("/sim/offers").await;
    assert!(
        offered["offers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["agent_id"] != agent_b.as_str()),
        "a deactivated agent is not offered: {offered}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let entry = get_agents_protobuf(&op)
            .await
            .into_iter()
            .find(|a| a.agent_info.id.as_ref().unwrap().value == agent_b)
            .unwrap();
        if entry.drain_info.as_ref().unwrap().state == v1::DrainState::Drained as i32 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the emptied agent never became DRAINED"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, _) = op
        .call_protobuf(&agent_call(CallType::ReactivateAgent, &agent_b))
        .await;
    assert_eq!(status, 200);
    fw.stream
        .until(|e| offers_of(e).iter().any(|o| o.agent_id.value == agent_b))
        .await;

    // A window dropped before it starts: the inverse offer is rescinded.
    let agent_c = c.agent_id.value.clone();
    let machine_c = op.machine_of(&agent_c).await;
    let start = now_nanos() + HOUR_NS;
    assert_eq!(
        op.schedule(&[(vec![machine_c.clone()], start, HOUR_NS)])
            .await
            .0,
        200
    );
    let e = fw
        .stream
        .until(|e| inverse_offers_of(e).iter().any(on_agent(&agent_c)))
        .await;
    let inverse = inverse_offers_of(&e)
        .into_iter()
        .find(on_agent(&agent_c))
        .unwrap();
    assert_eq!(op.schedule(&[]).await.0, 200);
    let rescinded = fw.stream.until(is(event::Type::RescindInverseOffer)).await;
    assert_eq!(
        rescinded.rescind_inverse_offer.unwrap().inverse_offer_id,
        inverse.id
    );

    // DOWN for a partition-aware framework: TASK_GONE_BY_OPERATOR.
    assert_eq!(
        op.schedule(&[(vec![machine_c.clone()], start, HOUR_NS)])
            .await
            .0,
        200
    );
    let (status, body) = op.start_maintenance(std::slice::from_ref(&machine_c)).await;
    assert_eq!(status, 200, "{body}");
    let gone = fw.next_update("tc").await;
    assert_eq!(state_of(&gone), TaskState::TaskGoneByOperator);
    assert_eq!(reason_of(&gone), Some(Reason::AgentRemovedByOperator));
    let (_, state) = sim.get("/state").await;
    let slaves: Vec<&Value> = state["slaves"].as_array().unwrap().iter().collect();
    assert_eq!(slaves.len(), 2);
    let b_state = slaves.iter().find(|s| s["id"] == agent_b.as_str()).unwrap();
    assert_eq!(b_state["maintenance_mode"], "UP");
    assert_eq!(b_state["deactivated"], false);
    assert_eq!(b_state["machine_id"], op.machine_of(&agent_b).await);
    assert_eq!(
        state["maintenance"]["status"]["down_machines"],
        json!([machine_c])
    );
}

/// Mesos' older maintenance endpoints take the same inputs: POST
/// `/maintenance/schedule`, `/machine/down`, `/machine/up`, read back
/// through GET `/maintenance/schedule` and `/maintenance/status`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_older_maintenance_endpoints_schedule_and_bring_machines_down_and_up() {
    let sim = AgentSim::for_scheduler(2).start();
    let op = Operator::new(&sim.address);
    let agent = op.agents().await[0]["agent_info"]["id"]["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let machine = op.machine_of(&agent).await;
    let start = now_nanos() + HOUR_NS;
    let schedule = json!({"windows": [{"machine_ids": [machine],
        "unavailability": {"start": {"nanoseconds": start}}}]});
    let (status, body) = sim.post("/machine/up", &json!([machine])).await;
    assert_eq!(status, 400);
    assert!(
        body.as_str()
            .unwrap()
            .ends_with("is not in DOWN mode and cannot be brought up"),
        "{body}"
    );
    assert_eq!(sim.post("/maintenance/schedule", &schedule).await.0, 200);
    assert_eq!(sim.get("/maintenance/schedule").await, (200, schedule));
    let (_, status) = sim.get("/maintenance/status").await;
    assert_eq!(status["draining_machines"][0]["id"], machine);
    assert_eq!(sim.post("/machine/down", &json!([machine])).await.0, 200);
    assert_eq!(op.status().await["down_machines"], json!([machine]));
    assert_eq!(op.agents().await.len(), 1);
    let (_, metrics) = sim.get("/metrics").await;
    let metrics = metrics.as_str().unwrap();
    for line in [
        "drover_sim_machines_down 1",
        "drover_sim_machines_draining 0",
        "drover_sim_operator_calls_total{type=\"START_MAINTENANCE\"} 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in {metrics}"
        );
    }
    assert_eq!(sim.post("/machine/up", &json!([machine])).await.0, 200);
    assert_eq!(sim.get("/maintenance/status").await, (200, json!({})));
    assert_eq!(op.agents().await.len(), 2);
}

/// The operator API's refusals of malformed calls and GET_AGENTS' shape,
/// word for word as a Mesos 1.12 master gave them in a by-hand run: the
/// `Failed to validate master::Call: ` prefix, indexed field paths, a type
/// name Mesos does not know refused as a missing type (400), a Mesos call
/// the simulator lacks 501; GET_AGENTS lists a task's resources as
/// allocated and writes both lists even when the cluster is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_operator_calls_are_refused_in_mesos_words_and_get_agents_has_its_shape() {
    let sim = AgentSim::for_scheduler(1).start();
    let op = Operator::new(&sim.address);
    let window = |machine: Value| {
        json!({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule":
            {"schedule": {"windows": [{"machine_ids": [machine],
              "unavailability": {"start": {"nanoseconds": now_nanos() + HOUR_NS}}}]}}})
    };
    for (call, want) in [
        (
            json!({"type": "UPDATE_MAINTENANCE_SCHEDULE"}),
            (400, "Failed to validate master::Call: Expecting 'update_maintenance_schedule' to be present"),
        ),
        (
            json!({"type": "NO_SUCH_CALL"}),
            (400, "Failed to validate master::Call: Expecting 'type' to be present"),
        ),
        (
            window(json!({"hostname": "x", "ip": "300.1.1.1"})),
            (400, "Failed to parse IPv4: 300.1.1.1"),
        ),
        (
            json!({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule":
                {"schedule": {"windows": [{"machine_ids": [{"hostname": "x"}]}]}}}),
            (400, "Failed to convert JSON into Call protobuf: Missing required fields: update_maintenance_schedule.schedule.windows[0].unavailability"),
        ),
        (
            json!({"type": "DRAIN_AGENT", "drain_agent": {"agent_id": {"value": "S0"},
                "max_grace_period": "2s"}}),
            (400, "Failed to convert JSON into Call protobuf: Not expecting a JSON string for field 'max_grace_period'"),
        ),
    ] {
        let (status, body) = op.call(&call).await;
        assert_eq!((status, body.as_str().unwrap()), want, "{call}");
    }
    assert_eq!(op.call(&json!({"type": "GET_FLAGS"})).await.0, 501);

    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("shape")).await;
    let offer = fw.next_offers().await[0].clone();
    run_task(&mut fw, "t1", &offer).await;
    let agent = &op.agents().await[0];
    let allocated = agent["allocated_resources"].as_array().unwrap();
    assert!(
        allocated
            .iter()
            .any(|r| r["name"] == "cpus" && r["allocation_info"]["role"] == "*"),
        "{agent}"
    );
    assert!(agent["agent_info"]["resources"][0].get("role").is_none());
    assert!(agent.get("drain_info").is_none());

    // Every machine DOWN: an empty cluster still lists both, empty.
    let machine = op.machine_of(&offer.agent_id.value).await;
    op.ok(&window(machine.clone())).await;
    let (status, body) = op.start_maintenance(&[machine]).await;
    assert_eq!(status, 200, "{body}");
    let reply = op.ok(&json!({"type": "GET_AGENTS"})).await;
    assert_eq!(
        reply["get_agents"],
        json!({"agents": [], "recovered_agents": []})
    );
}
