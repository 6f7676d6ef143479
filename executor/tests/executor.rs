//! End-to-end tests of the `drover-executor` binary against a fake agent
//! (tests/support/fake_agent.rs), with real tasks in real cgroups. Root only.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use drover_proto::v1::task_status::Reason;
use drover_proto::v1::{
    health_check, task_status, value, CommandInfo, HealthCheck, Resource, TaskState,
};
use drover_proto::TaskStateExt;
use support::executor::{has_terminal, last, states, task, Executor};
use support::fake_agent::FakeAgent;
use support::TestParent;

#[tokio::test]
async fn a_command_task_reports_starting_running_finished_then_the_executor_exits() {
    let parent = TestParent::new("e2e-finish");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[("DROVER_EXECUTOR_MODE", "command")],
    );
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    agent.launch(task("t1", "echo hello from $MESOS_TASK_ID"));
    agent.wait_until("TASK_FINISHED", has_terminal("t1")).await;
    let status = executor.exit().await;
    assert!(
        status.success(),
        "executor exited {status:?}:\n{}",
        executor.log()
    );
    let updates = agent.with_record(|r| r.updates.clone());
    assert_eq!(
        states(&updates, "t1"),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
    let mut uuids = Vec::new();
    for update in &updates {
        assert_eq!(update.source, Some(task_status::Source::Executor as i32));
        assert_eq!(update.executor_id.as_ref().unwrap().value, "ex");
        let uuid = uuid::Uuid::from_slice(update.uuid.as_ref().unwrap()).unwrap();
        assert_eq!(uuid.get_version_num(), 4);
        uuids.push(uuid);
    }
    uuids.dedup();
    assert_eq!(uuids.len(), 3, "every update has its own uuid");
    let stdout = std::fs::read_to_string(executor.sandbox.path().join("stdout")).unwrap();
    assert_eq!(stdout, "hello from t1\n");
    assert!(
        parent.children().is_empty(),
        "task cgroups left: {:?}",
        parent.children()
    );
}

#[tokio::test]
async fn json_events_and_a_failing_task_then_shutdown() {
    let parent = TestParent::new("e2e-json");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[("DROVER_CONTENT_TYPE", "json")],
    );
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    agent.launch(task("t1", "exit 3"));
    agent.wait_until("TASK_FAILED", has_terminal("t1")).await;
    let failed = agent.with_record(|r| last(&r.updates, "t1"));
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert_eq!(
        failed.message.as_deref(),
        Some("Command exited with status 3")
    );
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn a_task_ignoring_sigterm_is_killed_after_its_grace() {
    let parent = TestParent::new("e2e-kill");
    let agent = FakeAgent::start(true, true).await;
    let mut executor = Executor::start(&agent.endpoint(), &parent, &[]);
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    agent.launch(task(
        "stubborn",
        "trap '' TERM; touch ready; while :; do sleep 0.1; done",
    ));
    agent
        .wait_until("TASK_RUNNING", |r| {
            states(&r.updates, "stubborn").contains(&TaskState::TaskRunning)
        })
        .await;
    // KILL only once the trap is in place: before it, SIGTERM would work.
    let ready = executor.sandbox.path().join("tasks/task.stubborn/ready");
    for _ in 0..2000 {
        if ready.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(
        ready.exists(),
        "the task never got ready: {}",
        executor.log()
    );
    agent.kill("stubborn", Some(Duration::from_millis(500)));
    agent
        .wait_until("TASK_KILLED", has_terminal("stubborn"))
        .await;
    let updates = agent.with_record(|r| r.updates.clone());
    assert_eq!(
        states(&updates, "stubborn"),
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskKilling,
            TaskState::TaskKilled
        ]
    );
    let killed = last(&updates, "stubborn");
    assert!(
        killed.message.as_deref().unwrap_or("").contains("SIGKILL"),
        "SIGTERM was ignored, so SIGKILL ended it: {killed:?}"
    );
    assert!(
        parent.children().is_empty(),
        "task cgroups left: {:?}",
        parent.children()
    );
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn a_memory_hog_fails_with_the_memory_limitation_reason() {
    let parent = TestParent::new("e2e-oom");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[("DROVER_EXECUTOR_MODE", "command")],
    );
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    let mut hog = task("hog", "exec dd if=/dev/zero of=/dev/null bs=256M count=1");
    hog.resources = vec![Resource {
        name: "mem".into(),
        scalar: Some(value::Scalar { value: 64.0 }),
        ..Default::default()
    }];
    agent.launch(hog);
    agent
        .wait_until("terminal update", has_terminal("hog"))
        .await;
    let failed = agent.with_record(|r| last(&r.updates, "hog"));
    assert_eq!(failed.state(), TaskState::TaskFailed);
    assert_eq!(
        failed.reason,
        Some(Reason::ContainerLimitationMemory as i32),
        "{failed:?}"
    );
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn a_failing_health_check_reports_unhealthy_and_kills_its_task() {
    let parent = TestParent::new("e2e-health");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[("DROVER_EXECUTOR_MODE", "command")],
    );
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    let mut sick = task("sick", "sleep 60");
    sick.health_check = Some(Box::new(HealthCheck {
        r#type: Some(health_check::Type::Command as i32),
        command: Some(CommandInfo {
            value: Some("test -e /no/such/file".into()),
            ..Default::default()
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.1),
        timeout_seconds: Some(5.0),
        consecutive_failures: Some(2),
        grace_period_seconds: Some(0.0),
        ..Default::default()
    }));
    sick.kill_policy = Some(drover_proto::v1::KillPolicy {
        grace_period: Some(drover_proto::v1::DurationInfo {
            nanoseconds: 200_000_000,
        }),
    });
    agent.launch(sick);
    agent
        .wait_until("terminal update", has_terminal("sick"))
        .await;
    let updates = agent.with_record(|r| r.updates.clone());
    let health: Vec<_> = updates
        .iter()
        .filter(|u| u.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32))
        .map(|u| (u.state(), u.healthy))
        .collect();
    assert_eq!(
        health,
        vec![
            (TaskState::TaskRunning, Some(false)),
            (TaskState::TaskRunning, Some(false))
        ]
    );
    let end = last(&updates, "sick");
    assert_eq!(
        (end.state(), end.healthy),
        (TaskState::TaskKilled, Some(false))
    );
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn after_an_agent_restart_the_executor_resubscribes_and_every_update_is_acknowledged() {
    let parent = TestParent::new("e2e-restart");
    // The first agent acknowledges nothing: the updates stay pending.
    let mut agent = FakeAgent::start(false, false).await;
    let env = [
        ("DROVER_EXECUTOR_MODE", "command"),
        ("MESOS_CHECKPOINT", "1"),
        ("MESOS_RECOVERY_TIMEOUT", "20secs"),
        ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "200ms"),
    ];
    let mut executor = Executor::start(&agent.endpoint(), &parent, &env);
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    let marker = tempfile::tempdir().unwrap();
    let go = marker.path().join("go");
    agent.launch(task(
        "t1",
        &format!("while [ ! -e {} ]; do sleep 0.05; done", go.display()),
    ));
    agent
        .wait_until("TASK_RUNNING", |r| {
            states(&r.updates, "t1").contains(&TaskState::TaskRunning)
        })
        .await;
    agent.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent.restart(true).await;
    agent
        .wait_until("a second SUBSCRIBE", |r| r.subscribes.len() >= 2)
        .await;
    let again = agent.with_record(|r| r.subscribes[1].subscribe.clone().unwrap());
    assert_eq!(
        again.unacknowledged_tasks.len(),
        1,
        "the task had no acknowledged update"
    );
    let carried: Vec<TaskState> = again
        .unacknowledged_updates
        .iter()
        .map(|u| u.status.state())
        .collect();
    assert_eq!(
        carried,
        vec![TaskState::TaskStarting, TaskState::TaskRunning]
    );
    std::fs::write(&go, "").unwrap();
    agent.wait_until("TASK_FINISHED", has_terminal("t1")).await;
    let status = executor.exit().await;
    assert!(status.success(), "{status:?}\n{}", executor.log());
    let (updates, acked) = agent.with_record(|r| (r.updates.clone(), r.acked.clone()));
    for update in &updates {
        assert!(
            acked.contains(&update.uuid.as_ref().unwrap().to_vec()),
            "update {:?} never acknowledged",
            update.state()
        );
    }
    let mut distinct: Vec<_> = updates
        .iter()
        .map(|u| (u.uuid.clone(), u.state()))
        .collect();
    distinct.sort_by_key(|(uuid, _)| uuid.clone());
    distinct.dedup();
    let mut states: Vec<TaskState> = distinct.iter().map(|(_, s)| *s).collect();
    states.sort_by_key(|s| *s as i32);
    assert_eq!(
        states,
        vec![
            TaskState::TaskStarting,
            TaskState::TaskRunning,
            TaskState::TaskFinished
        ]
    );
}

#[tokio::test]
async fn bad_input_gets_clear_terminal_updates_and_never_hangs() {
    let parent = TestParent::new("e2e-bad");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(&agent.endpoint(), &parent, &[]);
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    agent.kill("never-launched", None);
    let mut no_command = task("no-command", "");
    no_command.command = None;
    agent.launch(no_command);
    let mut missing = task("missing", "");
    missing.command = Some(CommandInfo {
        shell: Some(false),
        value: Some("/no/such/program".into()),
        ..Default::default()
    });
    agent.launch(missing);
    let mut stranger = task("stranger", "true");
    stranger.command.as_mut().unwrap().user = Some("no-such-user-drover".into());
    agent.launch(stranger);
    for id in ["no-command", "missing", "stranger"] {
        let wait = move |r: &support::fake_agent::Record| {
            r.updates
                .iter()
                .any(|u| u.task_id.value == id && u.state().is_terminal())
        };
        agent.wait_until(id, wait).await;
    }
    let updates = agent.with_record(|r| r.updates.clone());
    let end = |id| last(&updates, id);
    assert_eq!(end("no-command").state(), TaskState::TaskError);
    assert!(end("no-command").message.unwrap().contains("no command"));
    assert_eq!(end("missing").state(), TaskState::TaskFailed);
    assert!(end("missing").message.unwrap().contains("/no/such/program"));
    assert_eq!(end("stranger").state(), TaskState::TaskFailed);
    assert!(end("stranger")
        .message
        .unwrap()
        .contains("no-such-user-drover"));
    assert!(states(&updates, "never-launched").is_empty());
    agent.launch(task("fine", "true"));
    agent
        .wait_until("the next task to finish", has_terminal("fine"))
        .await;
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn an_agent_that_is_not_there_makes_the_executor_exit_with_a_reason() {
    let parent = TestParent::new("e2e-noagent");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = closed.local_addr().unwrap().to_string();
    drop(closed);
    let mut executor = Executor::start(&endpoint, &parent, &[]);
    let status = executor.exit().await;
    assert!(!status.success());
    assert!(
        executor.log().contains("gave up on the agent"),
        "{}",
        executor.log()
    );

    let mut patient = Executor::start(
        &endpoint,
        &parent,
        &[
            ("MESOS_CHECKPOINT", "1"),
            ("MESOS_RECOVERY_TIMEOUT", "1secs"),
            ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "100ms"),
        ],
    );
    let status = patient.exit().await;
    assert!(!status.success());
    assert!(
        patient.log().contains("RecoveryTimeout"),
        "{}",
        patient.log()
    );
}
