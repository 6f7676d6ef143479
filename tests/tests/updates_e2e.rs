//! Changing a running service, end to end with the real binaries
//! (`drover-scheduler` against `drover-agent-sim`), from a user's point
//! of view: while an update rolls, the master's `/state` and the job's
//! pods are sampled every 100 ms, and the tests assert what a user
//! relies on: never more instances down than the batch (or the SLA)
//! allows, every pod ending on the version it should, the update's events
//! telling the story, rollback after a bad version, pause, resume and
//! abort, and a rolling restart that waits for health. Crashes of the scheduler mid-update, the diff and scaling are in
//! `updates_recovery_e2e.rs`; a real agent with a real HTTP check there
//! too.
#![allow(clippy::unwrap_used)]

mod updates_support;

use std::time::Duration;

use serde_json::json;
use updates_support::*;

/// A 20-instance service updated with batch size 4: never more than 4
/// instances down at any sample, at the master or in the pods list;
/// every pod ends on the new version (its version is its desired one);
/// the workflow's events and one instance's tell the story.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_update_in_batches_of_4_keeps_16_of_20_up_and_ends_on_the_new_version() {
    let c = Cluster::start(5);
    create_healthy(c.api(), "svc", service(20, "1", &[])).await;
    let sampler = Sampler::start(&c.sim.address, Some(c.api()), "svc");
    let (old, new) = update(
        c.api(),
        "svc",
        service(20, "2", &[]),
        json!({"batch_size": 4}),
    )
    .await;
    assert!(new > old, "{old} -> {new}");
    let done = wait_workflow_state(c.api(), "svc", "WORKFLOW_STATE_SUCCEEDED").await;
    wait_all_up(c.api(), "svc", 20).await;
    let samples = sampler.finish().await;
    let (master, pods) = assert_never_more_down(&samples, 20, 4);
    // The sampler saw the update happen: instances did go down.
    assert!(master > 0 && pods > 0, "nothing seen down: {master} {pods}");
    println!(
        "{} samples, most down: master {master}, pods {pods}",
        samples.len()
    );
    assert_no_duplicates(&samples);

    assert_eq!(done["status"]["num_instances_completed"], 20, "{done}");
    assert_eq!(done["status"]["num_instances_failed"], 0, "{done}");
    // The updates list shows it, done.
    let (_, list) = drover_tests::harness::http::get(c.api(), "/api/v1/jobs/svc/updates").await;
    let infos = list["workflow_infos"].as_array().unwrap();
    assert_eq!(infos.len(), 1, "{list}");
    assert_eq!(state_of(&infos[0]), "WORKFLOW_STATE_SUCCEEDED", "{list}");
    assert_eq!(infos[0]["status"]["num_instances_remaining"], 0, "{list}");
    for (i, pod) in pods_now(c.api()).await {
        assert_eq!(
            (pod.version, pod.desired_version),
            (new, new),
            "{i}: {pod:?}"
        );
    }
    // Each instance was replaced once: one task on the old spec, one on
    // the new.
    let revs = revs_by_instance(&master_tasks(&c.sim.address, "svc").await);
    assert_eq!(revs.len(), 20);
    for (i, revs) in &revs {
        assert_eq!(revs, &["1", "2"], "instance {i}");
    }
    let story = event_states(c.api(), "svc", None).await;
    assert_eq!(
        story.first().map(String::as_str),
        Some("WORKFLOW_STATE_ROLLING_FORWARD"),
        "{story:?}"
    );
    assert_eq!(
        story.last().map(String::as_str),
        Some("WORKFLOW_STATE_SUCCEEDED"),
        "{story:?}"
    );
    for instance in [0, 13, 19] {
        let story = event_states(c.api(), "svc", Some(instance)).await;
        assert_eq!(
            story,
            ["WORKFLOW_STATE_ROLLING_FORWARD", "WORKFLOW_STATE_SUCCEEDED"],
            "instance {instance}"
        );
    }
}

async fn pods_now(api: &str) -> std::collections::BTreeMap<u32, Pod> {
    pods(api, "svc").await
}

/// The update options of a bad version's update: each instance may fail
/// twice (one retry), the first failed instance fails the update, and it
/// rolls back.
fn failing_update(batch: u32) -> serde_json::Value {
    json!({
        "batch_size": batch,
        "rollback_on_failure": true,
        "max_instance_retries": 1,
        "max_tolerable_instance_failures": 1,
    })
}

/// A service spec with the SLA's `maximum_unavailable_instances`.
fn with_sla(mut spec: serde_json::Value, max_unavailable: u32) -> serde_json::Value {
    spec["sla"] = json!({"maximum_unavailable_instances": max_unavailable});
    spec
}

/// An update to a version whose health check fails, with
/// `rollback_on_failure`: the workflow fails once an instance has failed
/// its retries, rolls back, and every pod ends on the old version and
/// HEALTHY; the SLA's 2 (below the batch of 4) holds throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_whose_health_check_fails_rolls_back_within_the_sla() {
    let c = Cluster::start(3);
    create_healthy(c.api(), "svc", with_sla(service(6, "1", &[]), 2)).await;
    let sampler = Sampler::start(&c.sim.address, Some(c.api()), "svc");
    let bad = with_sla(service(6, "2", &[("sim.healthy", "false")]), 2);
    let (old, new) = update(c.api(), "svc", bad, failing_update(4)).await;
    let ended = wait_workflow_state(c.api(), "svc", "WORKFLOW_STATE_ROLLED_BACK").await;
    let after = wait_all_up(c.api(), "svc", 6).await;
    let samples = sampler.finish().await;
    let most = assert_never_more_down(&samples, 6, 2);
    println!("{} samples, most down {most:?}; {ended}", samples.len());
    assert_no_duplicates(&samples);

    for (i, pod) in &after {
        assert_eq!(
            (pod.version, pod.desired_version),
            (old, old),
            "{i}: {pod:?}"
        );
        assert_ne!(pod.version, new);
    }
    let story = event_states(c.api(), "svc", None).await;
    let expected = [
        "WORKFLOW_STATE_FAILED",
        "WORKFLOW_STATE_ROLLING_BACKWARD",
        "WORKFLOW_STATE_ROLLED_BACK",
    ];
    let tail: Vec<&str> = story
        .iter()
        .rev()
        .take(3)
        .rev()
        .map(String::as_str)
        .collect();
    assert_eq!(tail, expected, "{story:?}");
    // The bad version ran on at most the SLA's 2 instances, each at most
    // twice (one retry), and each of them is back on one run of the old
    // spec; the others never left their first run.
    let revs = revs_by_instance(&master_tasks(&c.sim.address, "svc").await);
    let touched: Vec<u32> = revs
        .iter()
        .filter(|(_, r)| r.len() > 1)
        .map(|(i, _)| *i)
        .collect();
    assert!(!touched.is_empty() && touched.len() <= 2, "{revs:?}");
    for (i, r) in &revs {
        let bad_runs = r.iter().filter(|x| *x == "2").count();
        assert!(bad_runs <= 2, "instance {i}: {r:?}");
        if r.len() > 1 {
            assert_eq!(r.first().map(String::as_str), Some("1"), "{i}: {r:?}");
            assert_eq!(r.last().map(String::as_str), Some("1"), "{i}: {r:?}");
            assert_eq!(r.iter().filter(|x| *x == "1").count(), 2, "{i}: {r:?}");
        }
    }
}

/// Waits until the update has moved at least `n` instances and none is in
/// flight (no released instance still moving): a stable point.
async fn wait_settled_with(api: &str, n: u64) -> serde_json::Value {
    wait_workflow(api, "svc", "settled", |w| {
        let status = &w["status"];
        status["num_instances_completed"].as_u64().unwrap_or(0) >= n
            && status["instances_current"]
                .as_array()
                .is_some_and(|c| c.is_empty())
    })
    .await
}

/// Samples for `how_long` and fails the test if any pod changed run,
/// version or health, or any live task at the master changed; returns the
/// pods seen.
async fn assert_stable_for(
    c: &Cluster,
    how_long: Duration,
) -> std::collections::BTreeMap<u32, Pod> {
    let before = pods(c.api(), "svc").await;
    let sampler = Sampler::start(&c.sim.address, Some(c.api()), "svc");
    tokio::time::sleep(how_long).await;
    let samples = sampler.finish().await;
    let live = samples[0].live_ids();
    for s in &samples {
        assert_eq!(s.pods.as_ref(), Some(&before), "a pod changed while stable");
        assert_eq!(
            s.live_ids(),
            live,
            "a task changed at the master while stable"
        );
    }
    assert!(before.values().all(Pod::is_up), "{before:?}");
    before
}

/// Pause mid-update: the job stays for 10 s with a mix of versions (no
/// pod changes run or version); resume finishes it. Then another update,
/// aborted mid-way, leaves it mixed and stable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_a_mixed_job_steady_resume_finishes_and_abort_leaves_it_mixed() {
    let c = Cluster::start(3);
    create_healthy(c.api(), "svc", service(10, "1", &[])).await;
    let (_, v2) = update(
        c.api(),
        "svc",
        service(10, "2", &[]),
        json!({"batch_size": 2}),
    )
    .await;
    wait_workflow(c.api(), "svc", "past 2 done", |w| {
        w["status"]["num_instances_completed"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    let paused = job_post(c.api(), "svc", "workflow/pause", json!({})).await;
    assert_eq!(state_of(&paused["workflow_info"]), "WORKFLOW_STATE_PAUSED");
    // The instances already moving finish; nothing else starts.
    let at_pause = wait_settled_with(c.api(), 2).await;
    assert_eq!(state_of(&at_pause), "WORKFLOW_STATE_PAUSED");
    let held = assert_stable_for(&c, Duration::from_secs(10)).await;
    let on_new = held.values().filter(|p| p.version == v2).count();
    assert!((2..10).contains(&on_new), "not mixed: {held:?}");
    assert_eq!(
        on_new as u64,
        at_pause["status"]["num_instances_completed"]
            .as_u64()
            .unwrap()
    );

    let resumed = job_post(c.api(), "svc", "workflow/resume", json!({})).await;
    assert_eq!(
        state_of(&resumed["workflow_info"]),
        "WORKFLOW_STATE_ROLLING_FORWARD"
    );
    wait_workflow_state(c.api(), "svc", "WORKFLOW_STATE_SUCCEEDED").await;
    let all = wait_all_up(c.api(), "svc", 10).await;
    assert!(all.values().all(|p| p.version == v2), "{all:?}");
    let story = event_states(c.api(), "svc", None).await;
    for state in ["WORKFLOW_STATE_PAUSED", "WORKFLOW_STATE_ROLLING_FORWARD"] {
        assert!(story.iter().any(|s| s == state), "{story:?}");
    }

    let (_, v3) = update(
        c.api(),
        "svc",
        service(10, "3", &[]),
        json!({"batch_size": 2}),
    )
    .await;
    wait_workflow(c.api(), "svc", "past 2 done", |w| {
        w["status"]["num_instances_completed"].as_u64().unwrap_or(0) >= 2
    })
    .await;
    let aborted = job_post(c.api(), "svc", "workflow/abort", json!({})).await;
    assert_eq!(
        state_of(&aborted["workflow_info"]),
        "WORKFLOW_STATE_ABORTED"
    );
    // What was moving when it was aborted settles; then nothing moves.
    wait_all_up(c.api(), "svc", 10).await;
    let left = assert_stable_for(&c, Duration::from_secs(3)).await;
    let on_v3 = left.values().filter(|p| p.version == v3).count();
    let on_v2 = left.values().filter(|p| p.version == v2).count();
    assert!(on_v3 >= 2 && on_v2 >= 1 && on_v2 + on_v3 == 10, "{left:?}");
    for (i, pod) in &left {
        assert_eq!(
            pod.version, pod.desired_version,
            "{i}: aborted, yet still to move"
        );
    }
    assert_eq!(
        state_of(&workflow(c.api(), "svc").await),
        "WORKFLOW_STATE_ABORTED"
    );
}

/// A rolling restart with batch size 1 waits for each restarted pod to
/// be RUNNING and HEALTHY before taking the next down: at every sample at
/// least n-1 instances serve, and each instance restarted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_in_batches_of_1_keeps_all_but_one_healthy() {
    let c = Cluster::start(3);
    create_healthy(c.api(), "svc", service(4, "1", &[])).await;
    let before = pods_now(c.api()).await;
    let sampler = Sampler::start(&c.sim.address, Some(c.api()), "svc");
    job_post(c.api(), "svc", "restart", json!({"batch_size": 1})).await;
    let restarted = drover_tests::harness::wait::wait_for(LIMIT, || async {
        let now = pods_now(c.api()).await;
        let all = now.len() == 4
            && now
                .iter()
                .all(|(i, p)| p.is_up() && p.task != before[i].task);
        all.then_some(now)
    })
    .await;
    assert!(restarted.is_some(), "not every pod restarted and came back");
    let samples = sampler.finish().await;
    let most = assert_never_more_down(&samples, 4, 1);
    assert_eq!(most, (1, 1), "the restart never showed");
    assert_no_duplicates(&samples);
    let revs = revs_by_instance(&master_tasks(&c.sim.address, "svc").await);
    for (i, r) in &revs {
        assert_eq!(r, &["1", "1"], "instance {i} restarted once");
    }
}
