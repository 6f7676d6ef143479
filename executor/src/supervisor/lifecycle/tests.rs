#![allow(clippy::unwrap_used)]

use super::*;

fn running(killing_capable: bool) -> Lifecycle {
    let mut life = Lifecycle::new(killing_capable);
    life.on_launch();
    life.on_started();
    life
}

fn state_of(actions: &[Action]) -> Vec<TaskState> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Report(r) => Some(r.state),
            _ => None,
        })
        .collect()
}

fn only(actions: Vec<Action>) -> Report {
    match actions.as_slice() {
        [Action::Report(report)] => report.clone(),
        other => panic!("expected one report, got {other:?}"),
    }
}

fn exit(code: Option<i32>, signal: Option<i32>, oom_killed: bool) -> ExitFacts {
    ExitFacts {
        code,
        signal,
        oom_killed,
    }
}

#[test]
fn a_task_goes_starting_running_finished() {
    let mut life = Lifecycle::new(false);
    assert_eq!(state_of(&life.on_launch()), vec![TaskState::TaskStarting]);
    assert_eq!(state_of(&life.on_started()), vec![TaskState::TaskRunning]);
    let end = life.on_exited(exit(Some(0), None, false));
    assert_eq!(
        end,
        vec![Action::Report(Report {
            state: TaskState::TaskFinished,
            reason: None,
            message: Some("Command exited with status 0".into()),
            healthy: None,
            check_status: None,
            labels: Vec::new(),
        })]
    );
    assert!(life.is_terminal());
    assert!(
        life.on_exited(exit(Some(0), None, false)).is_empty(),
        "nothing after the terminal update"
    );
}

#[test]
fn exit_facts_map_to_states_and_reasons() {
    let cases = [
        (
            exit(Some(1), None, false),
            TaskState::TaskFailed,
            None,
            "Command exited with status 1",
        ),
        (
            exit(None, Some(9), false),
            TaskState::TaskFailed,
            None,
            "Command terminated with signal SIGKILL (9)",
        ),
        (
            exit(None, Some(9), true),
            TaskState::TaskFailed,
            Some(Reason::ContainerLimitationMemory),
            "Memory limit exceeded",
        ),
    ];
    for (facts, state, reason, text) in cases {
        let mut life = running(false);
        let report = only(life.on_exited(facts));
        assert_eq!((report.state, report.reason), (state, reason), "{facts:?}");
        assert!(report.message.unwrap().contains(text), "{facts:?}");
    }
}

#[test]
fn kill_sends_killing_only_with_the_capability_then_sigterm_then_sigkill_at_the_deadline() {
    let t0 = Instant::now();
    let grace = Duration::from_secs(3);
    for capable in [false, true] {
        let mut life = running(capable);
        let actions = life.on_kill(grace, t0);
        let mut want = Vec::new();
        if capable {
            want.push(Action::Report(Report {
                state: TaskState::TaskKilling,
                reason: None,
                message: None,
                healthy: None,
                check_status: None,
                labels: Vec::new(),
            }));
        }
        want.push(Action::Terminate);
        assert_eq!(actions, want);
        assert_eq!(life.next_deadline(), Some(t0 + grace));
        assert!(life.on_tick(t0 + Duration::from_secs(2)).is_empty());
        assert_eq!(life.on_tick(t0 + grace), vec![Action::KillAll]);
        assert_eq!(life.next_deadline(), None);
        assert_eq!(
            state_of(&life.on_exited(exit(None, Some(9), false))),
            vec![TaskState::TaskKilled]
        );
    }
}

#[test]
fn a_repeated_kill_only_shortens_the_grace() {
    let t0 = Instant::now();
    let mut life = running(false);
    life.on_kill(Duration::from_secs(10), t0);
    assert!(life
        .on_kill(Duration::from_secs(20), t0 + Duration::from_secs(1))
        .is_empty());
    assert_eq!(life.next_deadline(), Some(t0 + Duration::from_secs(10)));
    assert!(life
        .on_kill(Duration::from_secs(5), t0 + Duration::from_secs(1))
        .is_empty());
    assert_eq!(life.next_deadline(), Some(t0 + Duration::from_secs(5)));
    assert_eq!(
        life.on_kill(Duration::from_secs(1), t0 + Duration::from_secs(2)),
        vec![Action::KillAll]
    );
}

#[test]
fn a_zero_grace_kills_at_once() {
    let mut life = running(false);
    assert_eq!(
        life.on_kill(Duration::ZERO, Instant::now()),
        vec![Action::Terminate, Action::KillAll]
    );
}

#[test]
fn launch_failures_are_failed_or_error() {
    let mut life = Lifecycle::new(false);
    life.on_launch();
    let r = only(life.on_start_failed("no such user".into(), false));
    assert_eq!(
        (r.state, r.reason),
        (TaskState::TaskFailed, Some(Reason::ContainerLaunchFailed))
    );
    let mut life = Lifecycle::new(false);
    let r = only(life.on_start_failed("no command".into(), true));
    assert_eq!(
        (r.state, r.reason),
        (TaskState::TaskError, Some(Reason::TaskInvalid))
    );
}

#[test]
fn health_verdicts_report_running_with_healthy_and_a_kill_ends_killed_and_unhealthy() {
    let t0 = Instant::now();
    let mut life = running(true);
    let r = only(life.on_health(HealthAction::ReportHealthy, Duration::ZERO, t0));
    assert_eq!(
        (r.state, r.reason, r.healthy),
        (
            TaskState::TaskRunning,
            Some(Reason::TaskHealthCheckStatusUpdated),
            Some(true)
        )
    );
    let actions = life.on_health(
        HealthAction::Kill {
            message: "exit 1".into(),
        },
        Duration::from_secs(1),
        t0,
    );
    assert_eq!(
        state_of(&actions),
        vec![TaskState::TaskRunning, TaskState::TaskKilling]
    );
    assert!(actions.contains(&Action::Terminate));
    assert!(
        life.on_health(HealthAction::ReportHealthy, Duration::ZERO, t0)
            .is_empty(),
        "checks stop once killing"
    );
    let end = only(life.on_exited(exit(None, Some(15), false)));
    assert_eq!(
        (end.state, end.healthy),
        (TaskState::TaskKilled, Some(false))
    );
}

#[test]
fn a_checked_task_runs_with_an_empty_result_and_reports_each_change_it_is_given() {
    use drover_proto::v1::{check_info, check_status_info, CheckStatusInfo};
    let exit = |code: Option<i32>| CheckStatusInfo {
        r#type: Some(check_info::Type::Command as i32),
        command: Some(check_status_info::Command { exit_code: code }),
        ..Default::default()
    };
    let mut life = Lifecycle::new(false);
    life.set_check(exit(None));
    assert!(life.on_check(exit(Some(0))).is_empty(), "not running yet");
    life.on_launch();
    let running = only(life.on_started());
    assert_eq!(running.check_status, Some(exit(None)));
    let ready = only(life.on_check(exit(Some(0))));
    assert_eq!(
        (ready.state, ready.reason, ready.check_status),
        (
            TaskState::TaskRunning,
            Some(Reason::TaskCheckStatusUpdated),
            Some(exit(Some(0)))
        )
    );
    // Later updates carry the latest result too.
    let end = only(life.on_exited(exit_facts_ok()));
    assert_eq!(end.check_status, Some(exit(Some(0))));
}

fn exit_facts_ok() -> ExitFacts {
    ExitFacts {
        code: Some(0),
        signal: None,
        oom_killed: false,
    }
}

#[test]
fn labels_set_before_the_launch_ride_on_every_update() {
    let labels = vec![("drover.image.digest".to_string(), "sha256:ab".to_string())];
    let mut life = Lifecycle::new(true);
    life.set_labels(labels.clone());
    let mut reports = life.on_launch();
    reports.extend(life.on_started());
    reports.extend(life.on_kill(Duration::from_secs(1), Instant::now()));
    reports.extend(life.on_exited(exit(None, Some(15), false)));
    let seen: Vec<(TaskState, Vec<(String, String)>)> = reports
        .into_iter()
        .filter_map(|a| match a {
            Action::Report(r) => Some((r.state, r.labels)),
            _ => None,
        })
        .collect();
    assert_eq!(seen.len(), 4, "{seen:?}");
    for (state, got) in seen {
        assert_eq!(got, labels, "{state:?}");
    }
}
