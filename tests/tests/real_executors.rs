//! Real agents: tasks on them run under real executor processes that
//! speak `/api/v1/executor` to the simulator. CommandInfo tasks run under
//! `drover-executor` in command mode (found beside the test binaries, or
//! built there by the harness); these tests need root, because
//! drover-executor puts every task in its own cgroup, and fail (never
//! skip) without it.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::time::Duration;

use drover_proto::v1::scheduler::{call, event};
use drover_proto::v1::{self, task_status::Reason, task_status::Source, TaskState};
use drover_proto::MediaType;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::{self, require_root};
use drover_tests::harness::framework::{framework_info, is, reason_of, state_of, task, Framework};

/// A simulator with one real agent, its work dir and cgroup parent our own.
fn real_sim(work: &tempfile::TempDir, extra: &[&str]) -> AgentSim {
    require_root();
    binaries::executor();
    AgentSim::builder()
        .agents(1)
        .real_agents(1, work.path())
        .args(&[
            "--allocation-interval",
            "100ms",
            "--executor-reregistration-timeout",
            "300ms",
        ])
        .args(extra)
        .start()
}

fn checkpointing(name: &str) -> v1::FrameworkInfo {
    let mut info = framework_info(name);
    info.checkpoint = Some(true);
    info.capabilities.push(v1::framework_info::Capability {
        r#type: Some(v1::framework_info::capability::Type::TaskKillingState as i32),
    });
    info
}

/// Reads updates for `task`, acknowledging each that needs it, until a
/// terminal one; returns them all.
async fn updates_until_terminal(fw: &mut Framework, task: &str) -> Vec<v1::TaskStatus> {
    let mut seen = Vec::new();
    loop {
        let s = fw.next_update(task).await;
        if s.uuid.is_some() {
            fw.ack(&s).await;
        }
        let terminal = matches!(
            state_of(&s),
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskLost
                | TaskState::TaskError
        );
        seen.push(s);
        if terminal {
            return seen;
        }
    }
}

fn states(updates: &[v1::TaskStatus]) -> Vec<TaskState> {
    updates.iter().map(state_of).collect()
}

async fn json(sim: &AgentSim, path: &str) -> serde_json::Value {
    let (code, body) = sim.get(path).await;
    assert_eq!(code, 200, "{path}: {body}");
    assert!(!body.is_string(), "{path}: not JSON: {body}");
    body
}

/// Waits until the simulator has no executor left (each one exited).
async fn executors_gone(sim: &AgentSim) {
    for _ in 0..300 {
        if json(sim, "/sim/executors").await["executors"]
            .as_array()
            .unwrap()
            .is_empty()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "executors still running: {}",
        json(sim, "/sim/executors").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_task_runs_under_drover_executor_and_finishes_with_a_real_exit_code() {
    let work = tempfile::tempdir().unwrap();
    let mut sim = real_sim(&work, &[]);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, checkpointing("real")).await;
    let offer = fw.next_offers().await.remove(0);
    let url = offer.url.clone().unwrap();
    assert_ne!(
        url.address.port, 5051,
        "a real agent offers its own endpoint"
    );
    fw.launch(
        &offer,
        vec![task("hello", &offer, "echo hello-from-task; exit 0")],
    )
    .await;
    let updates = updates_until_terminal(&mut fw, "hello").await;
    assert_eq!(
        states(&updates),
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    for u in &updates {
        assert_eq!(u.source, Some(Source::Executor as i32));
        assert_eq!(u.agent_id.as_ref().unwrap(), &offer.agent_id);
        assert_eq!(u.uuid.as_ref().unwrap().len(), 16);
    }
    executors_gone(&sim).await;

    // The sandbox follows Mesos' layout and the files API serves it.
    let runs = work
        .path()
        .join("agents")
        .join(&offer.agent_id.value)
        .join("frameworks")
        .join(&fw.id)
        .join("executors/hello/runs");
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let listing = json(&sim, &format!("/files/browse?path={}", run.display())).await;
    let names: Vec<String> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["path"]
                .as_str()
                .unwrap()
                .rsplit('/')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(names.contains(&"stdout".to_owned()), "{names:?}");
    let read = json(
        &sim,
        &format!("/files/read?path={}/stdout&offset=0", run.display()),
    )
    .await;
    assert!(
        read["data"].as_str().unwrap().contains("hello-from-task"),
        "{read}"
    );
    assert_eq!(read["offset"], 0);
    let size = json(&sim, &format!("/files/read?path={}/stdout", run.display())).await;
    assert_eq!(size["data"], "");
    assert!(size["offset"].as_u64().unwrap() >= "hello-from-task".len() as u64);
    let (code, _) = sim.get("/files/read?path=/etc/passwd&offset=0").await;
    assert_eq!(code, 404, "nothing outside the work dir is served");
    let parent = sim.cgroup_parent().unwrap().name().to_owned();
    sim.stop();
    assert!(
        !cgroup::exists(&parent),
        "the simulator removed its cgroup parent at exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_task_ends_task_failed_with_its_exit_status() {
    let work = tempfile::tempdir().unwrap();
    let mut sim = real_sim(&work, &[]);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, checkpointing("fail")).await;
    let offer = fw.next_offers().await.remove(0);
    fw.launch(&offer, vec![task("bad", &offer, "exit 3")]).await;
    let updates = updates_until_terminal(&mut fw, "bad").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskFailed);
    assert!(
        last.message.as_deref().unwrap_or("").contains('3'),
        "the exit status is in the message: {last:?}"
    );
    executors_gone(&sim).await;
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_reaches_the_executor_with_its_grace_period_and_ends_task_killed() {
    let work = tempfile::tempdir().unwrap();
    let mut sim = real_sim(&work, &[]);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, checkpointing("kill")).await;
    let offer = fw.next_offers().await.remove(0);
    fw.launch(
        &offer,
        vec![task("stubborn", &offer, "trap '' TERM; sleep 60")],
    )
    .await;
    loop {
        let s = fw.next_update("stubborn").await;
        fw.ack(&s).await;
        if state_of(&s) == TaskState::TaskRunning {
            break;
        }
    }
    // While it runs, the agent reports the executor's usage.
    let stats = json(&sim, "/monitor/statistics").await;
    let entry = &stats.as_array().unwrap()[0];
    assert_eq!(entry["executor_id"], "stubborn");
    assert!(
        entry["statistics"]["processes"].as_u64().unwrap() >= 2,
        "the executor and its task: {stats}"
    );
    let kill = fw.call(call::Type::Kill, |c| {
        c.kill = Some(Box::new(call::Kill {
            task_id: v1::TaskId {
                value: "stubborn".into(),
            },
            agent_id: Some(offer.agent_id.clone()),
            kill_policy: Some(v1::KillPolicy {
                grace_period: Some(v1::DurationInfo {
                    nanoseconds: 500_000_000,
                }),
            }),
        }))
    });
    fw.send_ok(&kill).await;
    let updates = updates_until_terminal(&mut fw, "stubborn").await;
    assert_eq!(
        states(&updates),
        [TaskState::TaskKilling, TaskState::TaskKilled],
        "TASK_KILLING first (the framework has the capability), then TASK_KILLED once SIGKILL ended what ignored SIGTERM"
    );
    executors_gone(&sim).await;
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_restart_mid_task_ends_with_the_executor_resubscribed_and_every_update_delivered_once_acknowledged(
) {
    let work = tempfile::tempdir().unwrap();
    let mut sim = real_sim(&work, &[]);
    let mut fw =
        Framework::subscribe(sim.addr, MediaType::Protobuf, checkpointing("restart")).await;
    let offer = fw.next_offers().await.remove(0);
    fw.launch(&offer, vec![task("long", &offer, "sleep 2")])
        .await;
    let mut uuids = HashSet::new();
    let mut seen = Vec::new();
    loop {
        let s = fw.next_update("long").await;
        assert!(
            uuids.insert(s.uuid.clone().unwrap()),
            "a duplicate after its ack: {s:?}"
        );
        fw.ack(&s).await;
        seen.push(state_of(&s));
        if state_of(&s) == TaskState::TaskRunning {
            break;
        }
    }
    let agent = &offer.agent_id.value;
    let (code, body) = sim
        .post(
            &format!("/sim/agents/{agent}/restart"),
            &serde_json::json!({"down_ms": 800}),
        )
        .await;
    assert_eq!(code, 200, "{body}");
    // The executor re-subscribes once the endpoint is back.
    let mut resubscribed = false;
    for _ in 0..200 {
        let ex = json(&sim, "/sim/executors").await;
        if let Some(e) = ex["executors"].as_array().unwrap().first() {
            if e["subscriptions"].as_u64() == Some(2) && e["state"] == "RUNNING" {
                resubscribed = true;
                break;
            }
        } else {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        resubscribed,
        "the executor did not re-subscribe: {}",
        json(&sim, "/sim/executors").await
    );
    loop {
        let s = fw.next_update("long").await;
        assert!(
            uuids.insert(s.uuid.clone().unwrap()),
            "a duplicate after its ack: {s:?}"
        );
        fw.ack(&s).await;
        seen.push(state_of(&s));
        if state_of(&s) == TaskState::TaskFinished {
            break;
        }
    }
    assert_eq!(
        seen,
        [
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    // The executor got ACKNOWLEDGED for its terminal update and exited,
    // and nothing is left unacknowledged.
    executors_gone(&sim).await;
    let tasks = json(&sim, "/sim/tasks").await;
    assert!(tasks["tasks"].as_array().unwrap().is_empty(), "{tasks}");
    sim.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_that_exits_mid_task_fails_its_task_and_the_framework_gets_failure() {
    let work = tempfile::tempdir().unwrap();
    let mut sim = real_sim(&work, &[]);
    let parent = sim.cgroup_parent().unwrap().name().to_owned();
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, checkpointing("exit")).await;
    let offer = fw.next_offers().await.remove(0);
    // A custom executor: drover-executor in custom mode, set up through
    // its CommandInfo's environment, running a task group whose one task
    // kills it (its parent) mid-task.
    let env = |k: &str, v: &str| v1::environment::Variable {
        name: k.into(),
        value: Some(v.into()),
        ..Default::default()
    };
    let executor = v1::ExecutorInfo {
        r#type: Some(v1::executor_info::Type::Custom as i32),
        executor_id: v1::ExecutorId {
            value: "custom-drover".into(),
        },
        command: Some(v1::CommandInfo {
            value: Some(binaries::executor().to_string_lossy().into_owned()),
            shell: Some(false),
            arguments: vec!["drover-executor".into()],
            environment: Some(v1::Environment {
                variables: vec![
                    env("DROVER_EXECUTOR_MODE", "custom"),
                    env("DROVER_CGROUPS_ROOT", &format!("{parent}/custom")),
                    // The task must be root to kill its root executor.
                    env("DROVER_ALLOW_ROOT_TASKS", "true"),
                ],
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut t = task("orphan", &offer, "sleep 0.5; kill -9 $PPID; sleep 30");
    t.command.as_mut().unwrap().user = Some("root".into());
    let accept = fw.call(call::Type::Accept, |c| {
        c.accept = Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![v1::offer::Operation {
                r#type: Some(v1::offer::operation::Type::LaunchGroup as i32),
                launch_group: Some(Box::new(v1::offer::operation::LaunchGroup {
                    executor,
                    task_group: v1::TaskGroupInfo { tasks: vec![t] },
                })),
                ..Default::default()
            }],
            filters: None,
        })
    });
    fw.send_ok(&accept).await;
    let updates = updates_until_terminal(&mut fw, "orphan").await;
    let last = updates.last().unwrap();
    assert_eq!(state_of(last), TaskState::TaskFailed, "{updates:?}");
    assert_eq!(
        reason_of(last),
        Some(Reason::ExecutorTerminated),
        "{last:?}"
    );
    assert_eq!(last.source, Some(Source::Agent as i32));
    let failure = fw.stream.until(is(event::Type::Failure)).await;
    let failure = failure.failure.unwrap();
    assert_eq!(failure.executor_id.unwrap().value, "custom-drover");
    assert_eq!(failure.agent_id.unwrap(), offer.agent_id);
    assert!(failure.status.is_some());
    executors_gone(&sim).await;
    sim.stop();
    assert!(
        !cgroup::exists(&parent),
        "what the dead executor left was killed and its cgroups removed at exit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_group_for_the_default_executor_runs_under_drover_executor() {
    let work = tempfile::tempdir().unwrap();
    let mut sim = real_sim(&work, &[]);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Protobuf, checkpointing("group")).await;
    let offer = fw.next_offers().await.remove(0);
    let executor = v1::ExecutorInfo {
        r#type: Some(v1::executor_info::Type::Default as i32),
        executor_id: v1::ExecutorId {
            value: "default".into(),
        },
        ..Default::default()
    };
    let tasks = vec![task("g1", &offer, "true"), task("g2", &offer, "sleep 0.2")];
    let accept = fw.call(call::Type::Accept, |c| {
        c.accept = Some(call::Accept {
            offer_ids: vec![offer.id.clone()],
            operations: vec![v1::offer::Operation {
                r#type: Some(v1::offer::operation::Type::LaunchGroup as i32),
                launch_group: Some(Box::new(v1::offer::operation::LaunchGroup {
                    executor,
                    task_group: v1::TaskGroupInfo { tasks },
                })),
                ..Default::default()
            }],
            filters: None,
        })
    });
    fw.send_ok(&accept).await;
    let mut finished = HashSet::new();
    while finished.len() < 2 {
        let e = fw.stream.until(is(event::Type::Update)).await;
        let s = e.update.unwrap().status;
        fw.ack(&s).await;
        match state_of(&s) {
            TaskState::TaskFinished => {
                finished.insert(s.task_id.value.clone());
            }
            TaskState::TaskStarting | TaskState::TaskRunning => {}
            other => panic!("unexpected {other:?}: {s:?}"),
        }
    }
    let executors = json(&sim, "/sim/executors").await;
    let e = &executors["executors"][0];
    assert_eq!(e["kind"], "Default");
    assert_eq!(e["subscriptions"], 1);
    // The framework's SHUTDOWN ends the executor.
    let shutdown = fw.call(call::Type::Shutdown, |c| {
        c.shutdown = Some(Box::new(call::Shutdown {
            executor_id: v1::ExecutorId {
                value: "default".into(),
            },
            agent_id: offer.agent_id.clone(),
        }))
    });
    fw.send_ok(&shutdown).await;
    executors_gone(&sim).await;
    sim.stop();
}
