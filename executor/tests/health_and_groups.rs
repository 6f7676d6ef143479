//! End-to-end tests of the `drover-executor` binary against the fake agent
//! (tests/support/fake_agent.rs): HTTP and TCP health checks on a real
//! server, task groups that live and die together, and the graceful kill
//! of a task in its own PID namespace. Root only.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use drover_proto::v1::task_status::Reason;
use drover_proto::v1::{health_check, value, HealthCheck, Resource, TaskInfo, TaskState};
use support::executor::{has_terminal, last, states, task, Executor};
use support::fake_agent::{FakeAgent, Record};
use support::TestParent;

/// A loopback port free right now, for a task to serve on.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A task that serves its working directory over HTTP on `port`, which
/// the TaskInfo names as its one port (so it arrives as `$PORT0`).
fn web_server(id: &str, port: u16, before: &str) -> TaskInfo {
    let mut info = task(
        id,
        &format!("{before} exec python3 -m http.server $PORT0 --bind 127.0.0.1"),
    );
    info.resources = vec![Resource {
        name: "ports".into(),
        ranges: Some(value::Ranges {
            range: vec![value::Range {
                begin: port.into(),
                end: port.into(),
            }],
        }),
        ..Default::default()
    }];
    info
}

/// Checks every 0.1 s from the start; failures before the first success
/// are forgiven for 10 s (the server's start-up), then two in a row kill.
fn check(kind: health_check::Type) -> HealthCheck {
    HealthCheck {
        r#type: Some(kind as i32),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.1),
        timeout_seconds: Some(2.0),
        consecutive_failures: Some(2),
        grace_period_seconds: Some(10.0),
        ..Default::default()
    }
}

fn reported_healthy(id: &'static str) -> impl Fn(&Record) -> bool {
    move |r| {
        r.updates.iter().any(|u| {
            u.task_id.value == id
                && u.state() == TaskState::TaskRunning
                && u.healthy == Some(true)
                && u.reason == Some(Reason::TaskHealthCheckStatusUpdated as i32)
        })
    }
}

async fn subscribed(agent: &FakeAgent) {
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
}

#[tokio::test]
async fn an_http_health_check_reports_healthy_then_kills_the_task_when_its_page_goes() {
    let parent = TestParent::new("e2e-http-check");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[("DROVER_EXECUTOR_MODE", "command")],
    );
    subscribed(&agent).await;
    let port = free_port();
    let mut web = web_server("web", port, "touch ok;");
    let mut http = check(health_check::Type::Http);
    http.http = Some(health_check::HttpCheckInfo {
        port: port.into(),
        path: Some("/ok".into()),
        ..Default::default()
    });
    web.health_check = Some(Box::new(http));
    agent.launch(web);
    agent
        .wait_until("a healthy TASK_RUNNING", reported_healthy("web"))
        .await;
    // The page goes: GET /ok now answers 404.
    std::fs::remove_file(executor.sandbox.path().join("ok")).unwrap();
    agent.wait_until("TASK_KILLED", has_terminal("web")).await;
    let updates = agent.with_record(|r| r.updates.clone());
    let unhealthy: Vec<String> = updates
        .iter()
        .filter(|u| u.healthy == Some(false) && u.state() == TaskState::TaskRunning)
        .filter_map(|u| u.message.clone())
        .collect();
    assert_eq!(
        unhealthy,
        vec!["HTTP health check returned 404"; 2],
        "one unhealthy update per failure, two in a row kill"
    );
    let end = last(&updates, "web");
    assert_eq!(
        (end.state(), end.healthy),
        (TaskState::TaskKilled, Some(false))
    );
    assert!(executor.exit().await.success(), "{}", executor.log());
    assert!(parent.children().is_empty(), "{:?}", parent.children());
}

#[tokio::test]
async fn a_tcp_health_check_passes_a_listening_task_and_kills_one_nobody_answers() {
    let parent = TestParent::new("e2e-tcp-check");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(&agent.endpoint(), &parent, &[]);
    subscribed(&agent).await;
    let port = free_port();
    let mut listening = web_server("listening", port, "");
    let mut tcp = check(health_check::Type::Tcp);
    tcp.tcp = Some(health_check::TcpCheckInfo {
        port: port.into(),
        ..Default::default()
    });
    listening.health_check = Some(Box::new(tcp));
    agent.launch(listening);

    let mut deaf = task("deaf", "sleep 60");
    let mut tcp = check(health_check::Type::Tcp);
    tcp.tcp = Some(health_check::TcpCheckInfo {
        port: free_port().into(),
        ..Default::default()
    });
    // Never healthy, and no grace: the first two refusals kill it.
    tcp.grace_period_seconds = Some(0.0);
    deaf.health_check = Some(Box::new(tcp));
    agent.launch(deaf);

    agent
        .wait_until("a healthy TASK_RUNNING", reported_healthy("listening"))
        .await;
    agent.wait_until("deaf killed", has_terminal("deaf")).await;
    let end = agent.with_record(|r| last(&r.updates, "deaf"));
    assert_eq!(
        (end.state(), end.healthy),
        (TaskState::TaskKilled, Some(false))
    );
    let refusal = agent.with_record(|r| {
        r.updates
            .iter()
            .find(|u| u.task_id.value == "deaf" && u.healthy == Some(false))
            .and_then(|u| u.message.clone())
            .unwrap()
    });
    assert!(refusal.contains("connecting to 127.0.0.1"), "{refusal}");
    let listening = agent.with_record(|r| last(&r.updates, "listening"));
    assert_eq!(
        (listening.state(), listening.healthy),
        (TaskState::TaskRunning, Some(true)),
        "the listening task stays healthy and running"
    );
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
    let end = agent.with_record(|r| last(&r.updates, "listening"));
    assert_eq!(end.state(), TaskState::TaskKilled);
    assert!(parent.children().is_empty(), "{:?}", parent.children());
}

#[tokio::test]
async fn a_task_group_is_killed_whole_and_a_failed_member_takes_its_group_down() {
    let parent = TestParent::new("e2e-group");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(&agent.endpoint(), &parent, &[]);
    subscribed(&agent).await;
    agent.launch_group(vec![task("a1", "sleep 60"), task("a2", "sleep 60")]);
    agent
        .wait_until("both running", |r| {
            ["a1", "a2"]
                .iter()
                .all(|id| states(&r.updates, id).contains(&TaskState::TaskRunning))
        })
        .await;
    // As Mesos' default executor: a KILL for one task kills its group.
    agent.kill("a1", Some(Duration::from_millis(500)));
    for id in ["a1", "a2"] {
        agent.wait_until(id, has_terminal(id)).await;
    }

    agent.launch_group(vec![
        task("b-ok", "sleep 60"),
        task("b-bad", "sleep 0.3; exit 2"),
    ]);
    for id in ["b-ok", "b-bad"] {
        agent.wait_until(id, has_terminal(id)).await;
    }
    let updates = agent.with_record(|r| r.updates.clone());
    for id in ["a1", "a2", "b-ok"] {
        assert_eq!(
            states(&updates, id),
            vec![
                TaskState::TaskStarting,
                TaskState::TaskRunning,
                TaskState::TaskKilled
            ],
            "{id}"
        );
    }
    let bad = last(&updates, "b-bad");
    assert_eq!(bad.state(), TaskState::TaskFailed);
    assert_eq!(bad.message.as_deref(), Some("Command exited with status 2"));
    assert!(parent.children().is_empty(), "{:?}", parent.children());
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
}

#[tokio::test]
async fn in_its_own_pid_namespace_a_killed_task_gets_sigterm_and_exits_cleanly() {
    let parent = TestParent::new("e2e-ns-kill");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[
            ("DROVER_EXECUTOR_MODE", "command"),
            ("DROVER_NAMESPACES", "true"),
        ],
    );
    subscribed(&agent).await;
    agent.launch(task(
        "graceful",
        "trap 'echo bye from $$; exit 0' TERM; touch ready; while :; do sleep 0.05; done",
    ));
    let ready = executor.sandbox.path().join("ready");
    for _ in 0..2000 {
        if ready.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(ready.exists(), "never ready: {}", executor.log());
    agent.kill("graceful", Some(Duration::from_secs(30)));
    agent
        .wait_until("TASK_KILLED", has_terminal("graceful"))
        .await;
    let end = agent.with_record(|r| last(&r.updates, "graceful"));
    assert_eq!(end.state(), TaskState::TaskKilled);
    assert_eq!(
        end.message.as_deref(),
        Some("Command exited with status 0"),
        "the task's own SIGTERM handler ended it, within its grace"
    );
    assert!(executor.exit().await.success(), "{}", executor.log());
    let stdout = std::fs::read_to_string(executor.sandbox.path().join("stdout")).unwrap();
    assert_eq!(stdout, "bye from 2\n", "PID 2, under the namespace's init");
}

/// A COMMAND check of a task in its own PID and mount namespaces runs
/// inside them (as Mesos' checker enters the task's `pid` and `mnt`): it
/// sees the task's shell as PID 2 and a tmpfs the task mounted in its
/// private mount namespace. From the host's namespaces neither is there
/// (PID 2 is kthreadd, the mount is private), so the check passes only
/// from inside.
#[tokio::test]
async fn a_command_check_of_a_namespaced_task_runs_in_its_pid_and_mount_namespaces() {
    let parent = TestParent::new("hc-ns");
    let agent = FakeAgent::start(true, false).await;
    let mut executor =
        Executor::start(&agent.endpoint(), &parent, &[("DROVER_NAMESPACES", "true")]);
    subscribed(&agent).await;
    let mut info = task(
        "ns",
        "mkdir -p m && mount -t tmpfs drover-check m && echo inside > m/seen; sleep 60; : drover-ns-marker",
    );
    let mut health = check(health_check::Type::Command);
    health.command = Some(drover_proto::v1::CommandInfo {
        value: Some("grep -q drover-ns-marker /proc/2/cmdline && grep -q inside m/seen".into()),
        ..Default::default()
    });
    info.health_check = Some(Box::new(health));
    agent.launch(info);
    agent.wait_until("ns healthy", reported_healthy("ns")).await;
    assert!(
        !executor
            .sandbox
            .path()
            .join("tasks/task.ns/m/seen")
            .exists(),
        "the task's mount leaked into the host's namespace"
    );
    agent.kill("ns", Some(Duration::from_secs(1)));
    agent.wait_until("ns killed", has_terminal("ns")).await;
    let updates = agent.with_record(|r| r.updates.clone());
    assert_eq!(last(&updates, "ns").state(), TaskState::TaskKilled);
    assert!(
        updates.iter().all(|u| u.healthy != Some(false)),
        "an unhealthy report: the check ran outside the namespaces"
    );
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
    assert!(parent.children().is_empty(), "{:?}", parent.children());
}
