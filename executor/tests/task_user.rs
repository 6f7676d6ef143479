//! Who a task runs as, end to end: the `drover-executor` binary, root as
//! agent-sim's real agents leave it, against a fake agent naming the
//! framework's user. The task runs as the framework's user unless its
//! command names one, and root only when the executor is told it may.
//! Root only (cgroups, and switching users).
#![allow(clippy::unwrap_used)]

mod support;

use std::os::unix::fs::PermissionsExt;

use drover_proto::v1::{health_check, task_status::Reason, CommandInfo, HealthCheck, TaskState};
use support::executor::{has_terminal, last, task, Executor};
use support::fake_agent::FakeAgent;
use support::TestParent;

fn nobody_uid() -> u32 {
    nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("this host has a 'nobody' user")
        .uid
        .as_raw()
}

/// A command executor as agent-sim starts it (root), for framework user
/// `framework_user`, with root tasks allowed or not. Its sandbox is made
/// enterable by others, as an agent's work directory is.
async fn command_executor(
    name: &str,
    framework_user: &str,
    allow_root: bool,
) -> (TestParent, FakeAgent, Executor) {
    let parent = TestParent::new(name);
    let agent = FakeAgent::start(true, false).await;
    agent.set_framework_user(framework_user);
    let allow = if allow_root { "true" } else { "false" };
    let executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[
            ("DROVER_EXECUTOR_MODE", "command"),
            ("DROVER_ALLOW_ROOT_TASKS", allow),
        ],
    );
    std::fs::set_permissions(
        executor.sandbox.path(),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    (parent, agent, executor)
}

#[tokio::test]
async fn a_task_naming_no_user_runs_as_the_framework_user_not_as_root() {
    let (_parent, agent, mut executor) = command_executor("user-default", "nobody", false).await;
    agent.launch(task(
        "t1",
        "id -u > uid; echo \"$HOME $USER\" > who; touch \"$MESOS_SANDBOX/canary\"",
    ));
    agent.wait_until("t1 ends", has_terminal("t1")).await;
    let end = agent.with_record(|r| last(&r.updates, "t1"));
    assert_eq!(
        end.state(),
        TaskState::TaskFinished,
        "{:?}\n{}",
        end.message,
        executor.log()
    );
    let sandbox = executor.sandbox.path();
    let uid = std::fs::read_to_string(sandbox.join("uid")).unwrap();
    println!("task uid: {}", uid.trim());
    assert_eq!(uid.trim(), nobody_uid().to_string());
    let home = nix::unistd::User::from_name("nobody").unwrap().unwrap().dir;
    let who = std::fs::read_to_string(sandbox.join("who")).unwrap();
    assert_eq!(who.trim(), format!("{} nobody", home.display()));
    let canary = std::fs::metadata(sandbox.join("canary")).unwrap();
    assert_eq!(
        std::os::unix::fs::MetadataExt::uid(&canary),
        nobody_uid(),
        "the task's files are its user's"
    );
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn the_command_user_overrides_the_framework_user() {
    let (_parent, agent, mut executor) = command_executor("user-override", "root", false).await;
    let mut t = task("t1", "id -u > uid");
    t.command.as_mut().unwrap().user = Some("nobody".into());
    agent.launch(t);
    agent.wait_until("t1 ends", has_terminal("t1")).await;
    let end = agent.with_record(|r| last(&r.updates, "t1"));
    assert_eq!(end.state(), TaskState::TaskFinished, "{:?}", end.message);
    let uid = std::fs::read_to_string(executor.sandbox.path().join("uid")).unwrap();
    assert_eq!(uid.trim(), nobody_uid().to_string());
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn a_root_task_fails_unless_the_executor_is_told_root_is_allowed() {
    for (name, framework_user, command_user) in [
        ("user-root-named", "nobody", Some("root")),
        ("user-root-default", "root", None),
    ] {
        let (_parent, agent, mut executor) = command_executor(name, framework_user, false).await;
        let mut t = task("t1", "touch \"$MESOS_SANDBOX/ran-as-root\"");
        t.command.as_mut().unwrap().user = command_user.map(str::to_owned);
        agent.launch(t);
        agent.wait_until("t1 ends", has_terminal("t1")).await;
        let end = agent.with_record(|r| last(&r.updates, "t1"));
        let message = end.message.clone().unwrap_or_default();
        println!("{name}: {:?}: {message}", end.state());
        assert_eq!(end.state(), TaskState::TaskFailed, "{name}: {message}");
        assert_eq!(end.reason(), Reason::ContainerLaunchFailed);
        assert!(
            message.contains("refusing to run the task as root")
                && message.contains("DROVER_ALLOW_ROOT_TASKS"),
            "{name}: {message}"
        );
        assert!(
            !executor.sandbox.path().join("ran-as-root").exists(),
            "{name}: the task ran"
        );
        assert!(executor.exit().await.success(), "{}", executor.log());
    }

    let (_parent, agent, mut executor) = command_executor("user-root-allowed", "root", true).await;
    agent.launch(task("t1", "id -u > uid"));
    agent.wait_until("t1 ends", has_terminal("t1")).await;
    let end = agent.with_record(|r| last(&r.updates, "t1"));
    assert_eq!(end.state(), TaskState::TaskFinished, "{:?}", end.message);
    let uid = std::fs::read_to_string(executor.sandbox.path().join("uid")).unwrap();
    assert_eq!(uid.trim(), "0", "allowed, root stays root");
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn a_command_health_check_runs_as_the_task_user() {
    let (_parent, agent, mut executor) = command_executor("user-check", "nobody", false).await;
    let mut t = task("t1", "sleep 60");
    // Healthy only as nobody: a check run as root reports unhealthy.
    t.health_check = Some(Box::new(HealthCheck {
        r#type: Some(health_check::Type::Command as i32),
        command: Some(CommandInfo {
            value: Some(format!("test \"$(id -u)\" = {}", nobody_uid())),
            ..Default::default()
        }),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.1),
        timeout_seconds: Some(5.0),
        consecutive_failures: Some(1),
        grace_period_seconds: Some(0.0),
        ..Default::default()
    }));
    agent.launch(t);
    agent
        .wait_until("a health verdict", |r| {
            r.updates
                .iter()
                .any(|u| u.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32))
        })
        .await;
    let verdict = agent.with_record(|r| {
        r.updates
            .iter()
            .find(|u| u.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32))
            .and_then(|u| u.healthy)
    });
    assert_eq!(verdict, Some(true), "{}", executor.log());
    agent.kill("t1", None);
    agent.wait_until("t1 ends", has_terminal("t1")).await;
    assert!(executor.exit().await.success(), "{}", executor.log());
}

/// A custom executor whose sandbox only root may enter (a Mesos agent
/// running executors as root with `--no-switch_user` makes it 0750 root):
/// a task of another user still reaches its own `tasks/<id>` sandbox,
/// because the executor gives others search permission on its sandbox
/// (not read: they cannot list it).
#[tokio::test]
async fn a_custom_executors_task_of_another_user_reaches_its_sandbox_under_a_closed_one() {
    let parent = TestParent::new("user-custom");
    let agent = FakeAgent::start(true, false).await;
    agent.set_framework_user("nobody");
    let mut executor = Executor::start(&agent.endpoint(), &parent, &[]);
    std::fs::set_permissions(
        executor.sandbox.path(),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    agent.launch(task("t1", "id -u > uid"));
    agent.wait_until("t1 ends", has_terminal("t1")).await;
    let end = agent.with_record(|r| last(&r.updates, "t1"));
    assert_eq!(end.state(), TaskState::TaskFinished, "{:?}", end.message);
    let uid = executor.sandbox.path().join("tasks/task.t1/uid");
    assert_eq!(
        std::fs::read_to_string(uid).unwrap().trim(),
        nobody_uid().to_string()
    );
    let mode = std::fs::metadata(executor.sandbox.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o751, "search for others, nothing more");
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
}
