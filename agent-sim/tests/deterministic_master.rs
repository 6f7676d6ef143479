//! The master replays exactly: two masters built with the same seed and fed
//! the same inputs at the same instants produce the same effects in the same
//! order, and show the same state. The whole-system simulation (issue 16,
//! item 7) depends on this to replay a failing seed; a `HashMap` with random
//! hashing anywhere an iteration order reaches an effect breaks it.
//!
//! The scenario drives the master only through its public state-machine API,
//! as the simulation will: subscriptions, offers, ACCEPT with LAUNCH on
//! simulated and real agents, status updates under drop and delay faults,
//! acknowledgements, KILL, implicit and explicit RECONCILE, an agent lost and
//! restored, a rescinded offer, a master failover with re-subscriptions, an
//! executor endpoint restart, a process killed outside Mesos, TEARDOWN and a
//! failover timeout.
#![allow(clippy::unwrap_used)]

use std::fmt::Debug;
use std::time::{Duration, Instant};

use drover_agent_sim::agent::RunnerKind;
use drover_agent_sim::config::FleetDefaults;
use drover_agent_sim::master::{Effect, Master, MasterConfig, UpdateFaults};
use drover_agent_sim::operator_proto;
use drover_agent_sim::resources::Resources;
use drover_proto::v1::executor::{call as ecall, Call as ECall};
use drover_proto::v1::scheduler::{call, Call, Event};
use drover_proto::v1::{self, framework_info::capability};

const SEED: u64 = 0x5eed;
const AGENTS: usize = 12;
const EXECUTOR: &str = "ex";

/// Two masters fed in lock step; every answer must be the same.
struct Twin {
    a: Master,
    b: Master,
}

impl Twin {
    fn new(t0: Instant) -> Twin {
        let make = || {
            let fleet = FleetDefaults {
                resources: Resources::parse("cpus:8;mem:16384;disk:65536;ports:[31000-32000]")
                    .unwrap(),
                attributes: Vec::new(),
                zones: vec!["a".into(), "b".into(), "c".into()],
            };
            let mut specs = fleet.specs(0, AGENTS);
            // The last agent runs real executors (none start: no processes here).
            specs[AGENTS - 1].runner = RunnerKind::Real;
            specs[AGENTS - 1].endpoint = Some("127.0.0.1:5151".parse().unwrap());
            let config = MasterConfig {
                seed: SEED,
                offer_timeout: Some(Duration::from_secs(30)),
                update_retry_min: Duration::from_secs(2),
                ..MasterConfig::default()
            };
            Master::new(config, specs, t0, 1.7e9)
        };
        Twin {
            a: make(),
            b: make(),
        }
    }

    /// Runs `input` on both masters and checks they answer alike.
    fn step<R: PartialEq + Debug>(&mut self, what: &str, input: impl Fn(&mut Master) -> R) -> R {
        let a = input(&mut self.a);
        let b = input(&mut self.b);
        if a != b {
            panic!(
                "the masters diverged at: {what}\n{}",
                first_difference(&a, &b)
            );
        }
        a
    }

    /// Everything a reader of `/state` and `/sim` sees, in iteration order.
    fn same_state(&mut self, when: &str) {
        self.step(&format!("the state after {when}"), snapshot);
    }
}

/// The first line where the two answers' pretty forms differ, with context:
/// the answers themselves can run to megabytes.
fn first_difference(a: &impl Debug, b: &impl Debug) -> String {
    let (a, b) = (format!("{a:#?}"), format!("{b:#?}"));
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let i = (0..a.len().max(b.len()))
        .find(|i| a.get(*i) != b.get(*i))
        .unwrap_or(0);
    let from = i.saturating_sub(8);
    format!(
        "line {i}\n--- first master:\n{}\n--- second master:\n{}",
        a[from.min(a.len())..(i + 4).min(a.len())].join("\n"),
        b[from.min(b.len())..(i + 4).min(b.len())].join("\n")
    )
}

fn snapshot(m: &mut Master) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(m.frameworks().map(|f| {
        format!(
            "framework {} connected={} epoch={}",
            f.id,
            f.connection.is_some(),
            f.epoch
        )
    }));
    out.extend(m.completed_frameworks().map(|(id, c)| {
        let tasks: Vec<_> = c
            .history
            .tasks()
            .map(|t| format!("{}={:?}", t.task_id.value, t.state))
            .collect();
        format!("completed {id} {tasks:?}")
    }));
    out.extend(m.offers().map(|o| {
        format!(
            "offer {} to {} on {} {:?}",
            o.id,
            o.framework,
            o.agent,
            o.resources.to_protos(None)
        )
    }));
    out.extend(m.tasks().map(|t| {
        format!(
            "task {}/{} on {} {:?} healthy={:?} statuses {:?}",
            t.framework, t.task_id.value, t.agent, t.state, t.healthy, t.statuses
        )
    }));
    out.extend(m.frameworks().filter_map(|f| {
        let h = m.history(&f.id)?;
        let tasks: Vec<_> = h
            .tasks()
            .map(|t| format!("{}={:?}", t.task_id.value, t.state))
            .collect();
        Some(format!("history {} {tasks:?}", f.id))
    }));
    out.extend(m.agents().iter().map(|a| {
        format!(
            "agent {} connected={} available={:?}",
            a.id,
            a.connected,
            a.available.to_protos(None)
        )
    }));
    out.extend(
        m.executors()
            .iter()
            .map(|r| format!("executor {:?} {} {}", r.key, r.container_id, r.phase_name())),
    );
    out.push(format!("timers {}", m.timer_count()));
    out
}

/// A framework as the scenario plays it.
#[derive(Clone)]
struct Fw {
    id: String,
    stream: String,
    conn: u64,
    info: v1::FrameworkInfo,
    launched: usize,
}

fn framework_info(name: &str, caps: &[capability::Type]) -> v1::FrameworkInfo {
    v1::FrameworkInfo {
        user: "u".into(),
        name: name.into(),
        failover_timeout: Some(60.0),
        capabilities: caps
            .iter()
            .map(|c| v1::framework_info::Capability {
                r#type: Some(*c as i32),
            })
            .collect(),
        ..Default::default()
    }
}

fn subscribe(t: &mut Twin, conn: u64, info: &v1::FrameworkInfo, now: Instant) -> Fw {
    let (stream, fx) = t.step("SUBSCRIBE", |m| {
        m.on_subscribe(
            conn,
            call::Subscribe {
                framework_info: info.clone(),
                ..Default::default()
            },
            now,
        )
    });
    let id = events(&fx, conn)[0]
        .subscribed
        .as_ref()
        .unwrap()
        .framework_id
        .value
        .clone();
    let mut info = info.clone();
    info.id = Some(v1::FrameworkId { value: id.clone() });
    Fw {
        id,
        stream,
        conn,
        info,
        launched: 0,
    }
}

fn events(fx: &[Effect], conn: u64) -> Vec<Event> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { conn: c, event } if *c == conn => Some((**event).clone()),
            _ => None,
        })
        .collect()
}

fn call_of(fw: &Fw, ty: call::Type) -> Call {
    Call {
        framework_id: Some(v1::FrameworkId {
            value: fw.id.clone(),
        }),
        r#type: Some(ty as i32),
        ..Default::default()
    }
}

fn on_call(t: &mut Twin, what: &str, fw: &Fw, c: Call, now: Instant) -> Vec<Effect> {
    let (result, fx) = t.step(what, |m| m.on_call(c.clone(), Some(&fw.stream), now));
    assert!(result.is_ok(), "{what}: {result:?}");
    fx
}

/// Acknowledges every update with a uuid that `fx` carries to `fw`.
fn ack_all(t: &mut Twin, fw: &Fw, fx: &[Effect], now: Instant) -> Vec<Effect> {
    let mut out = Vec::new();
    for e in events(fx, fw.conn) {
        let Some(u) = e.update else { continue };
        let Some(uuid) = u.status.uuid.clone() else {
            continue;
        };
        let mut c = call_of(fw, call::Type::Acknowledge);
        c.acknowledge = Some(call::Acknowledge {
            agent_id: u.status.agent_id.clone().unwrap(),
            task_id: u.status.task_id.clone(),
            uuid,
        });
        out.extend(on_call(t, "ACKNOWLEDGE", fw, c, now));
    }
    out
}

fn task(fw: &mut Fw, agent: &v1::AgentId, cmd: &str, executor: bool) -> v1::TaskInfo {
    fw.launched += 1;
    let id = format!("{}-{}", fw.conn, fw.launched);
    let mut t = v1::TaskInfo {
        name: id.clone(),
        task_id: v1::TaskId { value: id },
        agent_id: agent.clone(),
        resources: Resources::parse("cpus:0.5;mem:256")
            .unwrap()
            .to_protos(None),
        ..Default::default()
    };
    let command = v1::CommandInfo {
        value: Some(cmd.into()),
        ..Default::default()
    };
    if executor {
        t.executor = Some(Box::new(v1::ExecutorInfo {
            executor_id: v1::ExecutorId {
                value: EXECUTOR.into(),
            },
            command: Some(command),
            ..Default::default()
        }));
    } else {
        t.command = Some(command);
    }
    t
}

/// Each framework launches on the offers it got: five simulated tasks
/// (three run until killed, one finishes, one fails), or three tasks under one custom executor on
/// the real agent; one other offer of each framework is declined instead.
fn launch_on_offers(t: &mut Twin, fws: &mut [Fw], fx: &[Effect], real: &str, now: Instant) {
    for fw in fws.iter_mut() {
        let offers: Vec<v1::Offer> = events(fx, fw.conn)
            .into_iter()
            .filter_map(|e| e.offers)
            .flat_map(|o| o.offers)
            .collect();
        let declined = offers
            .iter()
            .position(|o| o.agent_id.value != real)
            .filter(|_| offers.len() > 1);
        for (i, offer) in offers.iter().enumerate() {
            if Some(i) == declined {
                let mut c = call_of(fw, call::Type::Decline);
                c.decline = Some(call::Decline {
                    offer_ids: vec![offer.id.clone()],
                    filters: Some(v1::Filters {
                        refuse_seconds: Some(0.0),
                    }),
                });
                on_call(t, "DECLINE", fw, c, now);
                continue;
            }
            let on_real = offer.agent_id.value == real;
            let tasks = if on_real {
                (0..3)
                    .map(|_| task(fw, &offer.agent_id, "serve", true))
                    .collect()
            } else {
                vec![
                    task(fw, &offer.agent_id, "serve", false),
                    task(fw, &offer.agent_id, "serve", false),
                    task(fw, &offer.agent_id, "serve", false),
                    task(fw, &offer.agent_id, "sleep 3", false),
                    task(fw, &offer.agent_id, "exit 1", false),
                ]
            };
            let mut c = call_of(fw, call::Type::Accept);
            c.accept = Some(call::Accept {
                offer_ids: vec![offer.id.clone()],
                operations: vec![v1::offer::Operation {
                    r#type: Some(v1::offer::operation::Type::Launch as i32),
                    launch: Some(v1::offer::operation::Launch { task_infos: tasks }),
                    ..Default::default()
                }],
                filters: None,
            });
            let fx = on_call(t, "ACCEPT", fw, c, now);
            // Acknowledge only every other first update, so retries run.
            if fw.launched % 2 == 0 {
                ack_all(t, fw, &fx, now);
            }
        }
    }
}

/// Ticks from `from` to `to` in `step`s, acknowledging whatever arrives.
fn run(t: &mut Twin, fws: &[Fw], from: Instant, to: Instant, step: Duration) -> Instant {
    let mut now = from;
    while now < to {
        now += step;
        let fx = t.step("a tick", |m| m.on_tick(now));
        for fw in fws {
            ack_all(t, fw, &fx, now);
        }
    }
    now
}

fn executor_call(fw: &Fw, ty: ecall::Type) -> ECall {
    ECall {
        r#type: Some(ty as i32),
        framework_id: v1::FrameworkId {
            value: fw.id.clone(),
        },
        executor_id: v1::ExecutorId {
            value: EXECUTOR.into(),
        },
        ..Default::default()
    }
}

#[test]
fn the_same_seed_and_inputs_give_the_same_effects_in_the_same_order() {
    let t0 = Instant::now();
    let mut t = Twin::new(t0);
    let real = t.step("the real agent's id", |m| m.agents()[AGENTS - 1].id.clone());
    let mut fws = vec![
        subscribe(&mut t, 1, &framework_info("plain", &[]), t0),
        subscribe(
            &mut t,
            2,
            &framework_info(
                "aware",
                &[
                    capability::Type::PartitionAware,
                    capability::Type::TaskKillingState,
                ],
            ),
            t0,
        ),
        subscribe(&mut t, 3, &framework_info("third", &[]), t0),
    ];
    let offers = t.step("the first allocation", |m| m.on_tick(t0));
    launch_on_offers(&mut t, &mut fws, &offers, &real, t0);
    t.same_state("the launches");

    // The real agent's executor subscribes and gets its tasks, then its
    // endpoint restarts and it comes back listing none of them: lost.
    if let Some(owner) = t.step("who runs on the real agent", |m| {
        m.executors().iter().next().map(|r| r.key.1.clone())
    }) {
        let fw = fws.iter().find(|f| f.id == owner).unwrap().clone();
        let mut sub = executor_call(&fw, ecall::Type::Subscribe);
        sub.subscribe = Some(ecall::Subscribe::default());
        let (r, _) = t.step("executor SUBSCRIBE", |m| {
            m.on_executor_subscribe(None, 100, sub.clone(), t0)
        });
        assert!(r.is_ok());
        t.step("executor endpoint restart", |m| {
            m.on_executor_endpoint_restart(&real, Duration::ZERO, t0)
                .unwrap()
        });
        let fx = t.step("executor re-SUBSCRIBE", |m| {
            m.on_executor_subscribe(None, 101, sub.clone(), t0)
        });
        assert!(fx.0.is_ok());
        ack_all(&mut t, &fw, &fx.1, t0);
    }

    // Updates are lost and held back from now on.
    t.step("update faults", |m| {
        m.on_update_faults(UpdateFaults {
            drop_next: 2,
            drop_probability: 0.3,
            delay: Some(Duration::from_millis(700)),
        })
    });
    let now = run(
        &mut t,
        &fws,
        t0,
        t0 + Duration::from_secs(6),
        Duration::from_millis(500),
    );
    t.same_state("updates under faults");
    t.step("no faults", |m| m.on_update_faults(UpdateFaults::default()));

    // Reconciliation: implicit for one framework, explicit for another.
    let mut implicit = call_of(&fws[0], call::Type::Reconcile);
    implicit.reconcile = Some(call::Reconcile { tasks: Vec::new() });
    let fx = on_call(&mut t, "implicit RECONCILE", &fws[0], implicit, now);
    assert!(
        events(&fx, fws[0].conn).len() > 1,
        "several answers to order"
    );
    let mut explicit = call_of(&fws[1], call::Type::Reconcile);
    explicit.reconcile = Some(call::Reconcile {
        tasks: ["2-1", "2-2", "nope"]
            .iter()
            .map(|id| call::reconcile::Task {
                task_id: v1::TaskId {
                    value: (*id).into(),
                },
                agent_id: None,
            })
            .collect(),
    });
    on_call(&mut t, "explicit RECONCILE", &fws[1], explicit, now);

    // KILL some of the partition-aware framework's tasks.
    for id in ["2-1", "2-4"] {
        let mut kill = call_of(&fws[1], call::Type::Kill);
        kill.kill = Some(Box::new(call::Kill {
            task_id: v1::TaskId { value: id.into() },
            agent_id: None,
            kill_policy: None,
        }));
        on_call(&mut t, "KILL", &fws[1], kill, now);
    }

    // An agent with tasks of several frameworks is lost, then returns.
    let busiest = t.step("the busiest agent", |m| {
        let mut counts = [0usize; AGENTS];
        for task in m.tasks() {
            counts[task.agent] += 1;
        }
        let i = (0..AGENTS).max_by_key(|i| (counts[*i], *i)).unwrap();
        m.agents()[i].id.clone()
    });
    t.step("agent lost", |m| m.on_agent_failed(&busiest, now).unwrap());
    let now = run(
        &mut t,
        &fws,
        now,
        now + Duration::from_secs(4),
        Duration::from_secs(1),
    );
    let fx = t.step("agent back", |m| {
        m.on_agent_restored(&busiest, now).unwrap()
    });
    for fw in &fws {
        ack_all(&mut t, fw, &fx, now);
    }

    // A process dies outside Mesos; an outstanding offer is rescinded.
    let running = t.step("a running simulated task", |m| {
        m.tasks()
            .find(|t| t.agent != AGENTS - 1 && t.state == v1::TaskState::TaskRunning)
            .map(|t| t.task_id.value.clone())
            .unwrap()
    });
    t.step("process killed", |m| {
        m.on_task_process_killed(&running, now).unwrap()
    });
    let fx = t.step("an allocation", |m| m.on_tick(now + Duration::from_secs(1)));
    let now = now + Duration::from_secs(1);
    for fw in &fws {
        ack_all(&mut t, fw, &fx, now);
    }
    let outstanding = t.step("outstanding offers", |m| {
        m.offers().map(|o| o.id.clone()).collect::<Vec<_>>()
    });
    if let Some(offer) = outstanding.first() {
        t.step("offer rescinded", |m| m.on_rescind_offer(offer).unwrap());
    }
    t.same_state("the faults");

    // Maintenance: a machine scheduled (offers carry its window, inverse
    // offers go out), taken DOWN with its tasks, brought back UP.
    let machine = t.step("a machine", |m| m.agents()[0].machine_id());
    let window = operator_proto::Window {
        machine_ids: vec![machine.clone()],
        unavailability: v1::Unavailability {
            start: v1::TimeInfo {
                nanoseconds: 2_000_000_000_000_000_000,
            },
            duration: None,
        },
    };
    let schedule = operator_proto::Call {
        r#type: Some(operator_proto::CallType::UpdateMaintenanceSchedule as i32),
        update_maintenance_schedule: Some(operator_proto::UpdateMaintenanceSchedule {
            schedule: operator_proto::Schedule {
                windows: vec![window],
            },
        }),
        ..Default::default()
    };
    let (result, _) = t.step("schedule", |m| m.on_operator_call(schedule.clone(), now));
    assert!(result.is_ok(), "{result:?}");
    let now = run(
        &mut t,
        &fws,
        now,
        now + Duration::from_secs(3),
        Duration::from_secs(1),
    );
    let machines = Some(operator_proto::Machines {
        machines: vec![machine],
    });
    let down = operator_proto::Call {
        r#type: Some(operator_proto::CallType::StartMaintenance as i32),
        start_maintenance: machines.clone(),
        ..Default::default()
    };
    let (result, fx) = t.step("machine down", |m| m.on_operator_call(down.clone(), now));
    assert!(result.is_ok(), "{result:?}");
    assert!(t.a.agents()[0].removed && !fx.is_empty(), "{fx:?}");
    let now = run(
        &mut t,
        &fws,
        now,
        now + Duration::from_secs(2),
        Duration::from_secs(1),
    );
    let up = operator_proto::Call {
        r#type: Some(operator_proto::CallType::StopMaintenance as i32),
        stop_maintenance: machines.clone(),
        ..Default::default()
    };
    let (result, _) = t.step("machine up", |m| m.on_operator_call(up.clone(), now));
    assert!(result.is_ok(), "{result:?}");
    t.step("maintenance status", |m| m.cluster_status());
    t.same_state("maintenance");

    // Master failover: every stream ends and every framework comes back.
    t.step("connections dropped", |m| m.on_drop_connections());
    for (i, fw) in fws.iter_mut().enumerate() {
        let again = subscribe(&mut t, 10 + i as u64, &fw.info, now);
        assert_eq!(again.id, fw.id);
        fw.conn = again.conn;
        fw.stream = again.stream;
    }
    let now = run(
        &mut t,
        &fws,
        now,
        now + Duration::from_secs(30),
        Duration::from_secs(3),
    );

    // One framework tears down; another's stream ends and its failover
    // timeout expires.
    on_call(
        &mut t,
        "TEARDOWN",
        &fws[1],
        call_of(&fws[1], call::Type::Teardown),
        now,
    );
    t.step("disconnected", |m| m.on_disconnected(fws[2].conn, now));
    run(
        &mut t,
        &fws[..1],
        now,
        now + Duration::from_secs(90),
        Duration::from_secs(5),
    );
    t.same_state("the end");
    assert_eq!(t.a.completed_frameworks().count(), 2);
}
