use super::*;
use crate::model::ids::AgentId;
use crate::model::state::PodState;

fn spec(count: u32, command: &str) -> JobSpec {
    serde_json::from_value(serde_json::json!({
        "type": "SERVICE", "name": "web", "instance_count": count,
        "default_spec": {"containers": [{"command": {"value": command}}]}
    }))
    .unwrap()
}

fn run(number: u32, version: u64, state: PodState) -> Run {
    let mut r = Run::launching(number, AgentId::new("a"), version, 10);
    r.state = state;
    r
}

fn job<'a>(
    spec: &'a JobSpec,
    version: u64,
    runs: &'a [Vec<Run>],
) -> JobRuns<'a, impl Fn(u32) -> &'a [Run]> {
    JobRuns {
        spec,
        version,
        history: move |i| runs.get(i as usize).map_or(&[][..], Vec::as_slice),
        unavailable: 0,
        max_unavailable: 0,
    }
}

fn update(from: &JobSpec, to: &JobSpec, options: UpdateOptions) -> Workflow {
    start(
        1,
        options,
        from,
        1,
        |i| (i < from.instance_count).then(|| from.pod_spec(i)),
        to,
        2,
        5,
    )
}

#[test]
fn the_diff_names_added_removed_updated_and_unchanged_instances() {
    let mut to = spec(3, "new");
    to.instance_spec.insert(1, to.default_spec.clone());
    let mut from = spec(4, "old");
    from.instance_spec.insert(1, {
        let mut p = from.default_spec.clone();
        p.containers[0].command = to.default_spec.containers[0].command.clone();
        p
    });
    let d = diff(4, |i| (i < 4).then(|| from.pod_spec(i)), &to, false);
    assert_eq!(d.updated, [0, 2]);
    assert_eq!(d.unchanged, [1]);
    assert_eq!(d.removed, [3]);
    let d = diff(2, |i| (i < 2).then(|| to.pod_spec(i)), &to, false);
    assert_eq!((d.added, d.unchanged), (vec![2], vec![0, 1]));
}

#[test]
fn a_window_of_batch_size_instances_moves_and_frees_as_they_come_up() {
    let (from, to) = (spec(5, "old"), spec(5, "new"));
    let w = update(
        &from,
        &to,
        UpdateOptions {
            batch_size: 2,
            ..Default::default()
        },
    );
    assert_eq!(w.order, [0, 1, 2, 3, 4]);
    let runs: Vec<Vec<Run>> = vec![vec![run(0, 1, PodState::Running)]; 5];
    let a = advance(&w, &job(&to, 2, &runs), 6).unwrap();
    assert_eq!(a.workflow.released, 2);
    assert_eq!(a.workflow.current(), [0, 1]);
    assert!(!a.workflow.pending_mask(5)[0] && a.workflow.pending_mask(5)[2]);
    // Nothing came up yet: nothing more is released.
    assert!(advance(&a.workflow, &job(&to, 2, &runs), 7).is_none());
    let mut runs = runs;
    runs[0].push(run(1, 2, PodState::Running));
    let b = advance(&a.workflow, &job(&to, 2, &runs), 8).unwrap();
    assert_eq!(b.workflow.done, [0]);
    assert_eq!(b.workflow.current(), [1, 2]);
    assert_eq!(b.workflow.state(), WorkflowState::RollingForward);
}

#[test]
fn the_sla_bounds_the_window_by_what_is_down_already() {
    let (from, to) = (spec(5, "old"), spec(5, "new"));
    let w = update(
        &from,
        &to,
        UpdateOptions {
            batch_size: 4,
            ..Default::default()
        },
    );
    let runs: Vec<Vec<Run>> = vec![vec![run(0, 1, PodState::Running)]; 5];
    let mut j = job(&to, 2, &runs);
    j.max_unavailable = 2;
    j.unavailable = 1;
    assert_eq!(advance(&w, &j, 6).unwrap().workflow.released, 1);
}

#[test]
fn a_titus_budget_paces_an_update_as_it_paces_a_drain() {
    let from = spec(10, "old");
    let mut to = spec(10, "new");
    to.disruption_budget = Some(
        serde_json::from_value(serde_json::json!({
            "policy": {"availability_percentage": {"percentage_of_healthy": 80.0}}
        }))
        .unwrap(),
    );
    let options = UpdateOptions {
        batch_size: 5,
        ..Default::default()
    };
    let w = update(&from, &to, options);
    let runs: Vec<Vec<Run>> = vec![vec![run(0, 1, PodState::Running)]; 10];
    let mut j = job(&to, 2, &runs);
    // 80% of 10 stay: 2 may go, 1 when one is down already.
    assert_eq!(advance(&w, &j, 6).unwrap().workflow.released, 2);
    j.unavailable = 1;
    assert_eq!(advance(&w, &j, 6).unwrap().workflow.released, 1);
}

/// The instances a rollback moves back are the ones its bad version took
/// down: with the SLA's budget spent on them, releasing them must still
/// go ahead (it takes nothing more down), or the rollback never moves.
#[test]
fn an_instance_already_down_is_released_whatever_the_sla_budget() {
    let (from, to) = (spec(4, "old"), spec(4, "new"));
    let options = UpdateOptions {
        batch_size: 2,
        ..Default::default()
    };
    let w = update(&from, &to, options);
    let mut runs: Vec<Vec<Run>> = vec![vec![run(0, 1, PodState::Running)]; 4];
    runs[0] = vec![run(0, 1, PodState::Failed)];
    let mut j = job(&to, 2, &runs);
    j.max_unavailable = 1;
    j.unavailable = 1;
    let a = advance(&w, &j, 6).expect("instance 0 is down already: moving it costs nothing");
    assert_eq!(
        a.workflow.released, 1,
        "instance 1 is up: moving it would cost one"
    );
}

#[test]
fn a_paused_update_releases_nothing_and_an_aborted_one_ends_where_it_stands() {
    let (from, to) = (spec(2, "old"), spec(2, "new"));
    let w = update(
        &from,
        &to,
        UpdateOptions {
            start_paused: true,
            ..Default::default()
        },
    );
    let runs: Vec<Vec<Run>> = vec![vec![run(0, 1, PodState::Running)]; 2];
    assert_eq!(w.state(), WorkflowState::Paused);
    assert!(advance(&w, &job(&to, 2, &runs), 6).is_none());
    let (resumed, event) = w.steer(WorkflowAction::Resume, 7).unwrap();
    assert_eq!(event.state, WorkflowState::RollingForward);
    assert_eq!(
        advance(&resumed, &job(&to, 2, &runs), 8)
            .unwrap()
            .workflow
            .released,
        2
    );
    let (aborted, _) = w.steer(WorkflowAction::Abort, 9).unwrap();
    assert_eq!(aborted.state(), WorkflowState::Aborted);
    assert!(advance(&aborted, &job(&to, 2, &runs), 10).is_none());
    assert!(
        w.steer(WorkflowAction::Pause, 9).is_none(),
        "paused already"
    );
}

#[test]
fn failed_instances_fail_the_update_and_roll_it_back() {
    let (from, to) = (spec(3, "old"), spec(3, "new"));
    let options = UpdateOptions {
        batch_size: 1,
        max_instance_retries: 1,
        max_tolerable_instance_failures: 1,
        rollback_on_failure: true,
        ..Default::default()
    };
    let w = update(&from, &to, options);
    let mut runs: Vec<Vec<Run>> = vec![vec![run(0, 1, PodState::Running)]; 3];
    let w = advance(&w, &job(&to, 2, &runs), 6).unwrap().workflow;
    runs[0].push(run(1, 2, PodState::Failed));
    assert!(
        advance(&w, &job(&to, 2, &runs), 7).is_none(),
        "one retry left"
    );
    runs[0].push(run(2, 2, PodState::Failed));
    let a = advance(&w, &job(&to, 2, &runs), 8).unwrap();
    assert_eq!(a.workflow.state(), WorkflowState::RollingBackward);
    let (old, version) = a.rolled_back_to.clone().unwrap();
    let command = old.default_spec.containers[0].command.as_ref().unwrap();
    assert_eq!((command.value.as_deref(), version), (Some("old"), 1));
    assert_eq!(a.workflow.order, [0], "only what moved moves back");
    assert_eq!(a.workflow.other_version, 2);
    // Rolling back: instance 0 is released to the old spec and comes up.
    let b = advance(&a.workflow, &job(&old, 1, &runs), 9)
        .unwrap()
        .workflow;
    assert_eq!(b.released, 1);
    runs[0].push(run(3, 1, PodState::Running));
    let c = advance(&b, &job(&old, 1, &runs), 10).unwrap();
    assert_eq!(c.workflow.state(), WorkflowState::RolledBack);
}

#[test]
fn a_health_checked_pod_is_done_only_once_healthy() {
    let from = spec(1, "old");
    let mut to = spec(1, "new");
    to.default_spec.containers[0].liveness_check = Some(
        serde_json::from_value(serde_json::json!({
            "enabled": true, "type": "COMMAND", "command_check": {"command": "true"}
        }))
        .unwrap(),
    );
    let w = update(&from, &to, UpdateOptions::default());
    let mut runs: Vec<Vec<Run>> = vec![vec![
        run(0, 1, PodState::Running),
        run(1, 2, PodState::Running),
    ]];
    let w = advance(&w, &job(&to, 2, &runs), 6).unwrap().workflow;
    assert!(advance(&w, &job(&to, 2, &runs), 7).is_none());
    runs[0][1].healthy = Some(true);
    let done = advance(&w, &job(&to, 2, &runs), 8).unwrap().workflow;
    assert_eq!(done.state(), WorkflowState::Succeeded);
}

#[test]
fn instances_are_listed_as_half_open_ranges() {
    assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), [(0, 3), (5, 6), (7, 9)]);
    assert!(ranges(&[]).is_empty());
}
