//! Real agents' executors driven in memory: the master's executor inputs
//! fed directly on a virtual clock, with no process and no socket.

use std::time::{Duration, Instant};

use bytes::Bytes;
use drover_proto::v1::executor::{call as ecall, event as eevent, Call as ECall, Event as EEvent};
use drover_proto::v1::scheduler::{call, event, Call, Event};
use drover_proto::v1::{self, task_status::Reason, task_status::Source, TaskState};

use super::{Effect, Master, MasterConfig};
use crate::agent::executor_call::ExecutorCallError;
use crate::agent::launch::{ExecutorExit, LaunchSpec};
use crate::agent::RunnerKind;
use crate::config::FleetDefaults;
use crate::resources::Resources;

const FW_CONN: u64 = 1;
const EX_CONN: u64 = 2;

struct Setup {
    m: Master,
    fw: String,
    stream: String,
    agent: v1::AgentId,
    now: Instant,
}

fn setup(checkpoint: bool) -> Setup {
    let now = Instant::now();
    let fleet = FleetDefaults {
        resources: Resources::parse(crate::config::DEFAULT_RESOURCES).unwrap(),
        attributes: Vec::new(),
        zones: Vec::new(),
    };
    let mut specs = fleet.specs(0, 1);
    specs[0].runner = RunnerKind::Real;
    specs[0].endpoint = Some("127.0.0.1:5151".parse().unwrap());
    let mut m = Master::new(MasterConfig::default(), specs, now, 1.7e9);
    let info = v1::FrameworkInfo {
        user: "u".into(),
        name: "n".into(),
        checkpoint: Some(checkpoint),
        ..Default::default()
    };
    let (stream, fx) = m.on_subscribe(
        FW_CONN,
        call::Subscribe {
            framework_info: info,
            ..Default::default()
        },
        now,
    );
    let fw = events(&fx)[0]
        .subscribed
        .as_ref()
        .unwrap()
        .framework_id
        .value
        .clone();
    let agent = m.agents()[0].info().id.unwrap();
    Setup {
        m,
        fw,
        stream,
        agent,
        now,
    }
}

fn events(fx: &[Effect]) -> Vec<Event> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Send { conn, event } if *conn == FW_CONN => Some((**event).clone()),
            _ => None,
        })
        .collect()
}

fn executor_events(fx: &[Effect]) -> Vec<EEvent> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::SendExecutor { conn, event } if *conn == EX_CONN => Some((**event).clone()),
            _ => None,
        })
        .collect()
}

fn ety(e: &EEvent) -> eevent::Type {
    eevent::Type::try_from(e.r#type.unwrap()).unwrap()
}

fn launched(fx: &[Effect]) -> Vec<LaunchSpec> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::LaunchExecutor(spec) => Some((**spec).clone()),
            _ => None,
        })
        .collect()
}

impl Setup {
    fn launch(&mut self, task: &str) -> Vec<Effect> {
        let offer = events(&self.m.on_tick(self.now))[0]
            .offers
            .as_ref()
            .unwrap()
            .offers[0]
            .clone();
        let mut c = Call {
            framework_id: Some(v1::FrameworkId {
                value: self.fw.clone(),
            }),
            r#type: Some(call::Type::Accept as i32),
            ..Default::default()
        };
        c.accept = Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![v1::offer::Operation {
                r#type: Some(v1::offer::operation::Type::Launch as i32),
                launch: Some(v1::offer::operation::Launch {
                    task_infos: vec![v1::TaskInfo {
                        name: task.into(),
                        task_id: v1::TaskId { value: task.into() },
                        agent_id: offer.agent_id.clone(),
                        resources: Resources::parse("cpus:1;mem:128").unwrap().to_protos(None),
                        command: Some(v1::CommandInfo {
                            value: Some("sleep 5".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }],
                }),
                ..Default::default()
            }],
            filters: None,
        });
        let (r, fx) = self.m.on_call(c, Some(&self.stream), self.now);
        assert!(r.is_ok());
        fx
    }

    fn executor_call(&self, executor: &str, ty: ecall::Type) -> ECall {
        ECall {
            r#type: Some(ty as i32),
            framework_id: v1::FrameworkId {
                value: self.fw.clone(),
            },
            executor_id: v1::ExecutorId {
                value: executor.into(),
            },
            ..Default::default()
        }
    }

    fn update(
        &mut self,
        task: &str,
        state: TaskState,
        uuid: [u8; 16],
    ) -> (Result<(), ExecutorCallError>, Vec<Effect>) {
        let mut c = self.executor_call(task, ecall::Type::Update);
        c.update = Some(ecall::Update {
            status: self.status(task, state, uuid),
        });
        self.m.on_executor_call(Some(0), c, self.now)
    }

    fn status(&self, task: &str, state: TaskState, uuid: [u8; 16]) -> v1::TaskStatus {
        v1::TaskStatus {
            task_id: v1::TaskId { value: task.into() },
            state: state as i32,
            source: Some(Source::Executor as i32),
            uuid: Some(Bytes::copy_from_slice(&uuid)),
            ..Default::default()
        }
    }

    fn ack(&mut self, status: &v1::TaskStatus) -> Vec<Effect> {
        let mut c = Call {
            framework_id: Some(v1::FrameworkId {
                value: self.fw.clone(),
            }),
            r#type: Some(call::Type::Acknowledge as i32),
            ..Default::default()
        };
        c.acknowledge = Some(call::Acknowledge {
            agent_id: self.agent.clone(),
            task_id: status.task_id.clone(),
            uuid: status.uuid.clone().unwrap(),
        });
        let (r, fx) = self.m.on_call(c, Some(&self.stream), self.now);
        assert!(r.is_ok());
        fx
    }
}

fn uuid(n: u8) -> [u8; 16] {
    let mut b = [n; 16];
    b[6] = 0x40 | (n & 0x0f);
    b[8] = 0x80 | (n & 0x3f);
    b
}

#[test]
fn a_command_task_starts_its_executor_which_gets_it_after_subscribing() {
    let mut s = setup(true);
    let fx = s.launch("t");
    let spec = &launched(&fx)[0];
    assert_eq!(
        spec.executor_id, "t",
        "a command executor's id is its task's"
    );
    assert!(spec.checkpoint);
    assert_eq!(spec.endpoint.port(), 5151);
    assert!(
        events(&fx).iter().all(|e| e.update.is_none()),
        "no update before the executor sends one"
    );
    let (r, _) = s.update("t", TaskState::TaskRunning, uuid(1));
    assert_eq!(r, Err(ExecutorCallError::NotSubscribed));
    let mut sub = s.executor_call("t", ecall::Type::Subscribe);
    sub.subscribe = Some(ecall::Subscribe::default());
    let (r, fx) = s.m.on_executor_subscribe(Some(0), EX_CONN, sub, s.now);
    assert!(r.is_ok());
    let evs = executor_events(&fx);
    assert_eq!(
        evs.iter().map(ety).collect::<Vec<_>>(),
        [eevent::Type::Subscribed, eevent::Type::Launch]
    );
    let subscribed = evs[0].subscribed.as_ref().unwrap();
    assert_eq!(subscribed.framework_info.id.as_ref().unwrap().value, s.fw);
    assert_eq!(subscribed.executor_info.executor_id.value, "t");
    let mut other = s.executor_call("nope", ecall::Type::Subscribe);
    other.subscribe = Some(ecall::Subscribe::default());
    let (r, _) = s.m.on_executor_subscribe(Some(0), 9, other, s.now);
    assert_eq!(r, Err(ExecutorCallError::ExecutorNotFound));
}

#[test]
fn an_update_reaches_the_framework_and_its_acknowledgement_reaches_the_executor() {
    let mut s = setup(true);
    s.launch("t");
    let mut sub = s.executor_call("t", ecall::Type::Subscribe);
    sub.subscribe = Some(ecall::Subscribe::default());
    assert!(s
        .m
        .on_executor_subscribe(Some(0), EX_CONN, sub, s.now)
        .0
        .is_ok());
    let (r, fx) = s.update("t", TaskState::TaskRunning, uuid(1));
    assert!(r.is_ok());
    let forwarded = events(&fx)[0].update.as_ref().unwrap().status.clone();
    assert_eq!(forwarded.uuid.as_deref(), Some(&uuid(1)[..]));
    assert_eq!(
        forwarded.agent_id.as_ref(),
        Some(&s.agent),
        "the agent fills in its id"
    );
    assert!(
        executor_events(&fx).is_empty(),
        "no ACKNOWLEDGED before the framework's"
    );
    // A re-sent copy in flight is not forwarded twice.
    let (_, again) = s.update("t", TaskState::TaskRunning, uuid(1));
    assert!(events(&again).is_empty() && executor_events(&again).is_empty());
    let acked = s.ack(&forwarded);
    let ack = &executor_events(&acked)[0];
    assert_eq!(ety(ack), eevent::Type::Acknowledged);
    assert_eq!(&ack.acknowledged.as_ref().unwrap().uuid[..], &uuid(1)[..]);
    // A copy of an acknowledged update is acknowledged at once, not forwarded.
    let (_, late) = s.update("t", TaskState::TaskRunning, uuid(1));
    assert!(events(&late).is_empty());
    assert_eq!(ety(&executor_events(&late)[0]), eevent::Type::Acknowledged);
}

#[test]
fn a_resubscription_reprocesses_unacknowledged_updates_and_loses_tasks_never_received() {
    let mut s = setup(true);
    s.launch("t");
    let mut sub = s.executor_call("t", ecall::Type::Subscribe);
    sub.subscribe = Some(ecall::Subscribe::default());
    assert!(s
        .m
        .on_executor_subscribe(Some(0), EX_CONN, sub.clone(), s.now)
        .0
        .is_ok());
    let fx =
        s.m.on_executor_endpoint_restart(&s.agent.value, Duration::from_secs(1), s.now)
            .unwrap();
    assert!(fx.contains(&Effect::Close { conn: EX_CONN }));
    let (r, _) = s.m.on_executor_subscribe(Some(0), 3, sub.clone(), s.now);
    assert_eq!(
        r,
        Err(ExecutorCallError::Recovering),
        "503 while restarting"
    );
    let later = s.now + Duration::from_secs(2);
    // The executor lists neither the task nor an update for it: lost.
    let (r, fx) = s.m.on_executor_subscribe(Some(0), EX_CONN, sub, later);
    assert!(r.is_ok());
    let lost = events(&fx)[0].update.as_ref().unwrap().status.clone();
    assert_eq!(lost.state, TaskState::TaskLost as i32);
    assert_eq!(lost.reason, Some(Reason::AgentRestarted as i32));

    let mut s = setup(true);
    s.launch("t");
    let mut sub = s.executor_call("t", ecall::Type::Subscribe);
    sub.subscribe = Some(ecall::Subscribe::default());
    assert!(s
        .m
        .on_executor_subscribe(Some(0), EX_CONN, sub.clone(), s.now)
        .0
        .is_ok());
    s.m.on_executor_endpoint_restart(&s.agent.value, Duration::ZERO, s.now)
        .unwrap();
    sub.subscribe = Some(ecall::Subscribe {
        unacknowledged_tasks: Vec::new(),
        unacknowledged_updates: vec![ecall::Update {
            status: s.status("t", TaskState::TaskFinished, uuid(5)),
        }],
    });
    let (_, fx) = s.m.on_executor_subscribe(Some(0), EX_CONN, sub, s.now);
    let finished = events(&fx)[0].update.as_ref().unwrap().status.clone();
    assert_eq!(finished.state, TaskState::TaskFinished as i32);
    assert_eq!(finished.uuid.as_deref(), Some(&uuid(5)[..]));
}

#[test]
fn a_command_executor_that_exits_fails_its_tasks_without_a_failure_event() {
    let mut s = setup(false);
    let fx = s.launch("t");
    let container = launched(&fx)[0].container_id.clone();
    let fx =
        s.m.on_executor_exited(&container, ExecutorExit::Signaled(9), s.now);
    let evs = events(&fx);
    let failed = evs[0].update.as_ref().unwrap().status.clone();
    assert_eq!(failed.state, TaskState::TaskFailed as i32);
    assert_eq!(failed.reason, Some(Reason::ExecutorTerminated as i32));
    assert_eq!(failed.source, Some(Source::Agent as i32));
    assert!(
        failed.uuid.is_some(),
        "reliable: the framework acknowledges it"
    );
    assert!(
        evs.iter()
            .all(|e| e.r#type != Some(event::Type::Failure as i32)),
        "no FAILURE for a command executor"
    );
    assert!(s.m.executors().iter().next().is_none());
    assert!(s
        .m
        .on_executor_exited(&container, ExecutorExit::Exited(0), s.now)
        .is_empty());
}

#[test]
fn messages_are_relayed_both_ways_and_shutdown_kills_after_the_grace_period() {
    let mut s = setup(false);
    let fx = s.launch("t");
    let container = launched(&fx)[0].container_id.clone();
    let mut sub = s.executor_call("t", ecall::Type::Subscribe);
    sub.subscribe = Some(ecall::Subscribe::default());
    assert!(s
        .m
        .on_executor_subscribe(Some(0), EX_CONN, sub, s.now)
        .0
        .is_ok());
    let mut msg = s.executor_call("t", ecall::Type::Message);
    msg.message = Some(ecall::Message {
        data: Bytes::from_static(b"up"),
    });
    let (r, fx) = s.m.on_executor_call(Some(0), msg, s.now);
    assert!(r.is_ok());
    let up = events(&fx)[0].message.clone().unwrap();
    assert_eq!(
        (up.executor_id.value.as_str(), &up.data[..]),
        ("t", &b"up"[..])
    );
    let mut down = Call {
        framework_id: Some(v1::FrameworkId {
            value: s.fw.clone(),
        }),
        r#type: Some(call::Type::Message as i32),
        ..Default::default()
    };
    down.message = Some(Box::new(call::Message {
        agent_id: s.agent.clone(),
        executor_id: v1::ExecutorId { value: "t".into() },
        data: Bytes::from_static(b"down"),
    }));
    let (_, fx) = s.m.on_call(down, Some(&s.stream), s.now);
    assert_eq!(
        &executor_events(&fx)[0].message.as_ref().unwrap().data[..],
        b"down"
    );
    let mut shutdown = Call {
        framework_id: Some(v1::FrameworkId {
            value: s.fw.clone(),
        }),
        r#type: Some(call::Type::Shutdown as i32),
        ..Default::default()
    };
    shutdown.shutdown = Some(Box::new(call::Shutdown {
        executor_id: v1::ExecutorId { value: "t".into() },
        agent_id: s.agent.clone(),
    }));
    let (_, fx) = s.m.on_call(shutdown, Some(&s.stream), s.now);
    assert_eq!(ety(&executor_events(&fx)[0]), eevent::Type::Shutdown);
    let kill = Effect::KillExecutor {
        container_id: container.clone(),
    };
    assert!(!s.m.on_tick(s.now + Duration::from_secs(4)).contains(&kill));
    assert!(s.m.on_tick(s.now + Duration::from_secs(5)).contains(&kill));
}
