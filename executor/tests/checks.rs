//! End-to-end tests of the `drover-executor` binary's Mesos checks
//! (TaskInfo `check`: Drover's readiness checks) against the fake agent:
//! a real check command and a real HTTP server. A check reports its result
//! in `check_status`, only when the result changes, and never kills its
//! task. Root only.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use drover_proto::v1::task_status::Reason;
use drover_proto::v1::{
    check_info, value, CheckInfo, CommandInfo, Resource, TaskState, TaskStatus,
};
use support::executor::{has_terminal, last, task, Executor};
use support::fake_agent::{FakeAgent, Record};
use support::TestParent;

/// Checks every 0.1 s from the start: many results, few changes.
fn check(kind: check_info::Type) -> CheckInfo {
    CheckInfo {
        r#type: Some(kind as i32),
        delay_seconds: Some(0.0),
        interval_seconds: Some(0.1),
        timeout_seconds: Some(2.0),
        ..Default::default()
    }
}

/// The check updates of `id` (TASK_RUNNING, TASK_CHECK_STATUS_UPDATED).
fn check_updates(record: &Record, id: &str) -> Vec<TaskStatus> {
    record
        .updates
        .iter()
        .filter(|u| {
            u.task_id.value == id
                && u.state() == TaskState::TaskRunning
                && u.reason == Some(Reason::TaskCheckStatusUpdated as i32)
        })
        .cloned()
        .collect()
}

fn exit_codes(updates: &[TaskStatus]) -> Vec<Option<i32>> {
    updates
        .iter()
        .map(|u| u.check_status.as_ref().unwrap().command.unwrap().exit_code)
        .collect()
}

#[tokio::test]
async fn a_command_check_reports_not_ready_then_ready_once_each_and_never_kills() {
    let parent = TestParent::new("e2e-command-check");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[("DROVER_EXECUTOR_MODE", "command")],
    );
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    let mut info = task("svc", "sleep 60");
    let mut ready = check(check_info::Type::Command);
    ready.command = Some(check_info::Command {
        command: CommandInfo {
            value: Some("test -f ready".into()),
            shell: Some(true),
            ..Default::default()
        },
    });
    info.check = Some(Box::new(ready));
    agent.launch(info);
    agent
        .wait_until("a failing check result", |r| {
            exit_codes(&check_updates(r, "svc")) == [Some(1)]
        })
        .await;
    // The first TASK_RUNNING carried the empty result.
    let running = agent.with_record(|r| {
        r.updates
            .iter()
            .find(|u| u.task_id.value == "svc" && u.state() == TaskState::TaskRunning)
            .cloned()
            .unwrap()
    });
    let empty = running.check_status.unwrap();
    assert_eq!(empty.r#type, Some(check_info::Type::Command as i32));
    assert_eq!(empty.command.unwrap().exit_code, None);
    // Ten more failing results change nothing: no update.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        agent.with_record(|r| exit_codes(&check_updates(r, "svc"))),
        [Some(1)]
    );
    // The task makes itself ready (the check runs in its sandbox).
    std::fs::write(executor.sandbox.path().join("ready"), b"").unwrap();
    agent
        .wait_until("a passing check result", |r| {
            exit_codes(&check_updates(r, "svc")) == [Some(1), Some(0)]
        })
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        agent.with_record(|r| exit_codes(&check_updates(r, "svc"))),
        [Some(1), Some(0)],
        "one update per change"
    );
    // Not ready again: reported, and the task keeps running.
    std::fs::remove_file(executor.sandbox.path().join("ready")).unwrap();
    agent
        .wait_until("failing again", |r| {
            exit_codes(&check_updates(r, "svc")) == [Some(1), Some(0), Some(1)]
        })
        .await;
    let now = agent.with_record(|r| last(&r.updates, "svc"));
    assert_eq!(now.state(), TaskState::TaskRunning, "a check never kills");
    agent.kill("svc", Some(Duration::from_millis(200)));
    agent.wait_until("TASK_KILLED", has_terminal("svc")).await;
    let end = agent.with_record(|r| last(&r.updates, "svc"));
    assert_eq!(
        end.check_status.unwrap().command.unwrap().exit_code,
        Some(1),
        "later updates carry the latest result"
    );
    // The command executor ends with its task.
    assert!(executor.exit().await.success(), "{}", executor.log());
    assert!(parent.children().is_empty(), "{:?}", parent.children());
}

#[tokio::test]
async fn an_http_check_reports_each_status_code_change_of_a_real_server() {
    let parent = TestParent::new("e2e-http-ready");
    let agent = FakeAgent::start(true, false).await;
    let mut executor = Executor::start(
        &agent.endpoint(),
        &parent,
        &[("DROVER_EXECUTOR_MODE", "command")],
    );
    agent
        .wait_until("SUBSCRIBE", |r| !r.subscribes.is_empty())
        .await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut info = task("web", "exec python3 -m http.server $PORT0 --bind 127.0.0.1");
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
    let mut http = check(check_info::Type::Http);
    http.http = Some(check_info::Http {
        port: port.into(),
        path: Some("/ready".into()),
    });
    info.check = Some(Box::new(http));
    agent.launch(info);
    let codes = |r: &Record| -> Vec<Option<u32>> {
        check_updates(r, "web")
            .iter()
            .map(|u| u.check_status.as_ref().unwrap().http.unwrap().status_code)
            .collect()
    };
    // Refused while the server starts (an empty result, the same as the
    // first TASK_RUNNING's: no update), then 404 for the missing page.
    agent
        .wait_until("HTTP 404", |r| codes(r).last() == Some(&Some(404)))
        .await;
    std::fs::write(executor.sandbox.path().join("ready"), b"ok").unwrap();
    agent
        .wait_until("HTTP 200", |r| codes(r).last() == Some(&Some(200)))
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = agent.with_record(codes);
    assert_eq!(
        seen.iter().filter(|c| **c == Some(200)).count(),
        1,
        "one update for the change to 200, none for the same answer: {seen:?}"
    );
    agent.shutdown();
    assert!(executor.exit().await.success(), "{}", executor.log());
    assert!(parent.children().is_empty(), "{:?}", parent.children());
}
