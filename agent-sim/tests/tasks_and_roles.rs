//! Simulated task behaviours and role handling over HTTP: exit codes,
//! labels, health checks, LAUNCH_GROUP, MULTI_ROLE offers, UPDATE_FRAMEWORK,
//! and the `/master` path prefix.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use drover_proto::v1::scheduler::{call, event};
use drover_proto::v1::{self, task_status::Reason, TaskState};
use drover_proto::MediaType;

const FAST: &[&str] = &[
    "--agents",
    "1",
    "--allocation-interval",
    "100ms",
    "--heartbeat-interval",
    "1secs",
    "--status-update-retry-interval",
    "200ms",
];

/// Acknowledges every update of `id` until a terminal one; returns them all.
async fn run_to_end(fw: &mut Framework, id: &str) -> Vec<v1::TaskStatus> {
    let mut seen = Vec::new();
    loop {
        let s = fw.next_update(id).await;
        fw.ack(&s).await;
        let end = !matches!(
            state_of(&s),
            TaskState::TaskStarting | TaskState::TaskRunning | TaskState::TaskKilling
        );
        seen.push(s);
        if end {
            return seen;
        }
    }
}

fn label(key: &str, value: &str) -> v1::Label {
    v1::Label {
        key: key.into(),
        value: Some(value.into()),
    }
}

#[tokio::test]
async fn commands_and_labels_decide_how_tasks_end() {
    let sim = Sim::start(FAST);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("ends")).await;
    let offers = fw.next_offers().await;
    let mut labelled = task("labelled", &offers[0], "serve");
    labelled.labels = Some(v1::Labels {
        labels: vec![label("sim.duration_ms", "50"), label("sim.exit_code", "3")],
    });
    fw.launch(
        &offers[0],
        vec![
            task("ok", &offers[0], "sleep 0.05"),
            task("bad", &offers[0], "exit 7"),
            labelled,
        ],
    )
    .await;
    let cases = [
        ("ok", TaskState::TaskFinished, 0),
        ("bad", TaskState::TaskFailed, 7),
        ("labelled", TaskState::TaskFailed, 3),
    ];
    for (id, want, code) in cases {
        let last = run_to_end(&mut fw, id).await.pop().unwrap();
        assert_eq!(state_of(&last), want, "{id}");
        assert_eq!(
            last.message.unwrap(),
            format!("Command exited with status {code}")
        );
    }
}

#[tokio::test]
async fn health_checks_report_healthy_and_unhealthy_tasks_are_killed() {
    let sim = Sim::start(FAST);
    let mut fw =
        Framework::subscribe(sim.addr, MediaType::Protobuf, framework_info("health")).await;
    let offers = fw.next_offers().await;
    let check = v1::HealthCheck {
        r#type: Some(v1::health_check::Type::Command as i32),
        command: Some(v1::CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }),
        delay_seconds: Some(0.05),
        interval_seconds: Some(0.05),
        grace_period_seconds: Some(0.1),
        consecutive_failures: Some(2),
        ..Default::default()
    };
    let mut good = task("good", &offers[0], "serve");
    good.health_check = Some(Box::new(check.clone()));
    let mut sick = task("sick", &offers[0], "serve");
    sick.health_check = Some(Box::new(check));
    sick.labels = Some(v1::Labels {
        labels: vec![label("sim.healthy", "false")],
    });
    sick.kill_policy = Some(v1::KillPolicy {
        grace_period: Some(v1::DurationInfo { nanoseconds: 0 }),
    });
    fw.launch(&offers[0], vec![good, sick]).await;
    let healthy = loop {
        let s = fw.next_update("good").await;
        fw.ack(&s).await;
        if s.healthy.is_some() {
            break s;
        }
    };
    assert_eq!(
        (state_of(&healthy), healthy.healthy),
        (TaskState::TaskRunning, Some(true))
    );
    assert_eq!(
        reason_of(&healthy),
        Some(Reason::TaskHealthCheckStatusUpdated)
    );
    let all = run_to_end(&mut fw, "sick").await;
    assert!(all
        .iter()
        .any(|s| state_of(s) == TaskState::TaskRunning && s.healthy == Some(false)));
    let last = all.last().unwrap();
    assert_eq!(
        (state_of(last), last.healthy),
        (TaskState::TaskKilled, Some(false))
    );
}

#[tokio::test]
async fn a_task_group_launches_together_and_an_invalid_group_fails_together() {
    let sim = Sim::start(FAST);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("groups")).await;
    let offers = fw.next_offers().await;
    let executor = v1::ExecutorInfo {
        r#type: Some(v1::executor_info::Type::Default as i32),
        executor_id: v1::ExecutorId {
            value: "default".into(),
        },
        ..Default::default()
    };
    let group = |tasks: Vec<v1::TaskInfo>, executor: v1::ExecutorInfo| v1::offer::Operation {
        r#type: Some(v1::offer::operation::Type::LaunchGroup as i32),
        launch_group: Some(Box::new(v1::offer::operation::LaunchGroup {
            executor,
            task_group: v1::TaskGroupInfo { tasks },
        })),
        ..Default::default()
    };
    let mut bad_exec = executor.clone();
    bad_exec.r#type = None;
    let ops = vec![
        group(
            vec![
                task("g1", &offers[0], "true"),
                task("g2", &offers[0], "true"),
            ],
            executor,
        ),
        group(
            vec![
                task("b1", &offers[0], "true"),
                task("b2", &offers[0], "true"),
            ],
            bad_exec,
        ),
    ];
    let accept = fw.call(call::Type::Accept, |c| {
        c.accept = Some(call::Accept {
            offer_ids: vec![offers[0].id.clone()],
            operations: ops,
            filters: None,
        })
    });
    fw.send_ok(&accept).await;
    for id in ["b1", "b2"] {
        let s = fw.next_update(id).await;
        assert_eq!(
            (state_of(&s), reason_of(&s)),
            (TaskState::TaskError, Some(Reason::TaskGroupInvalid))
        );
    }
    for id in ["g1", "g2"] {
        let last = run_to_end(&mut fw, id).await.pop().unwrap();
        assert_eq!(state_of(&last), TaskState::TaskFinished);
        assert_eq!(last.executor_id.unwrap().value, "default");
    }
}

#[tokio::test]
async fn multi_role_offers_carry_their_role_and_update_framework_changes_roles() {
    let sim = Sim::start(FAST);
    let mut info = framework_info("roles");
    info.roles = vec!["dev".into()];
    info.capabilities.push(v1::framework_info::Capability {
        r#type: Some(v1::framework_info::capability::Type::MultiRole as i32),
    });
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, info.clone()).await;
    let offers = fw.next_offers().await;
    let role = offers[0].allocation_info.as_ref().unwrap().role.clone();
    assert_eq!(role.as_deref(), Some("dev"));
    assert!(offers[0].resources.iter().all(|r| r
        .allocation_info
        .as_ref()
        .unwrap()
        .role
        .as_deref()
        == Some("dev")));

    let mut changed = info.clone();
    changed.id = Some(v1::FrameworkId {
        value: fw.id.clone(),
    });
    changed.name = "renamed".into();
    let update = fw.call(call::Type::UpdateFramework, |c| {
        c.update_framework = Some(Box::new(call::UpdateFramework {
            framework_info: changed.clone(),
            ..Default::default()
        }))
    });
    assert_eq!(fw.send(&update).await.0, 200);
    changed.user = "someone-else".into();
    let refused = fw.call(call::Type::UpdateFramework, |c| {
        c.update_framework = Some(Box::new(call::UpdateFramework {
            framework_info: changed,
            ..Default::default()
        }))
    });
    assert_eq!(fw.send(&refused).await.0, 400);
    let (_, state) = sim.get("/master/state").await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    assert!(state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "renamed"));

    let r = request(
        sim.addr,
        "GET",
        "/master/api/v1/scheduler",
        &[],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(r.status, 405);
    let e = fw.stream.next().await.unwrap();
    assert!(!is(event::Type::Error)(&e));
}
