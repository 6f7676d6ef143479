//! Changing a running service, end to end, continued (see
//! `updates_e2e.rs`): a scheduler SIGKILLed mid-update and mid-rollback
//! carries on where it was; `update/diff` names exactly the instances the
//! update then touches; scaling while an update rolls; and one update on
//! a real agent with a real HTTP health check.
#![allow(clippy::unwrap_used)]

mod updates_support;

use std::collections::{BTreeMap, BTreeSet};

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::job_api::create_job;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use updates_support::*;

/// The workflow's id and how many times the update was started (the
/// updates list: one entry per workflow).
async fn workflows(api: &str) -> Vec<Value> {
    let (_, list) = drover_tests::harness::http::get(api, "/api/v1/jobs/svc/updates").await;
    list["workflow_infos"].as_array().unwrap().clone()
}

/// A scheduler SIGKILLed mid-update comes back and finishes the same
/// workflow: the instances it had moved are not moved again (each
/// instance ran exactly one task on the new spec), and the master never
/// held two live tasks of one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_killed_mid_update_finishes_it_without_moving_an_instance_twice() {
    let mut c = Cluster::start(3);
    create_healthy(c.api(), "svc", service(8, "1", &[])).await;
    let sampler = Sampler::start(&c.sim.address, None, "svc");
    let (_, new) = update(
        c.api(),
        "svc",
        service(8, "2", &[]),
        json!({"batch_size": 2}),
    )
    .await;
    let before = wait_workflow(c.api(), "svc", "mid-way", |w| {
        let done = w["status"]["num_instances_completed"].as_u64().unwrap_or(0);
        (2..8).contains(&done)
    })
    .await;
    c.crash_and_restart();
    let after = wait_workflow_state(c.api(), "svc", "WORKFLOW_STATE_SUCCEEDED").await;
    let pods = wait_all_up(c.api(), "svc", 8).await;
    let samples = sampler.finish().await;
    assert_no_duplicates(&samples);
    assert_never_more_down(&samples, 8, 2);
    assert_eq!(
        after["workflow_id"], before["workflow_id"],
        "the same workflow"
    );
    assert_eq!(
        workflows(c.api()).await.len(),
        1,
        "one update, not restarted"
    );
    assert_eq!(after["status"]["num_instances_completed"], 8, "{after}");
    for (i, pod) in &pods {
        assert_eq!((pod.version, pod.desired_version), (new, new), "{i}");
    }
    let revs = revs_by_instance(&master_tasks(&c.sim.address, "svc").await);
    for (i, r) in &revs {
        assert_eq!(r, &["1", "2"], "instance {i} was moved once: {revs:?}");
    }
}

/// A scheduler SIGKILLed while an update rolls back comes back and
/// finishes the rollback: every pod on the old version and HEALTHY, no
/// instance moved back twice, never two live tasks of one instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_killed_mid_rollback_finishes_it() {
    let mut c = Cluster::start(3);
    create_healthy(c.api(), "svc", service(6, "1", &[])).await;
    let sampler = Sampler::start(&c.sim.address, None, "svc");
    let bad = service(6, "2", &[("sim.healthy", "false")]);
    let options = json!({
        "batch_size": 2, "rollback_on_failure": true,
        "max_instance_retries": 1, "max_tolerable_instance_failures": 1,
    });
    let (old, _) = update(c.api(), "svc", bad, options).await;
    let before = wait_workflow_state(c.api(), "svc", "WORKFLOW_STATE_ROLLING_BACKWARD").await;
    c.crash_and_restart();
    let after = wait_workflow_state(c.api(), "svc", "WORKFLOW_STATE_ROLLED_BACK").await;
    let pods = wait_all_up(c.api(), "svc", 6).await;
    let samples = sampler.finish().await;
    assert_no_duplicates(&samples);
    assert_eq!(
        after["workflow_id"], before["workflow_id"],
        "the same workflow"
    );
    for (i, pod) in &pods {
        assert_eq!((pod.version, pod.desired_version), (old, old), "{i}");
    }
    // Each instance went 1 → (2, at most twice) → 1 at most once.
    let revs = revs_by_instance(&master_tasks(&c.sim.address, "svc").await);
    for (i, r) in &revs {
        let ones = r.iter().filter(|x| *x == "1").count();
        let twos = r.len() - ones;
        assert!(twos <= 2, "instance {i}: {r:?}");
        assert_eq!(ones, if twos > 0 { 2 } else { 1 }, "instance {i}: {r:?}");
        assert_eq!(
            r.last().map(String::as_str),
            Some("1"),
            "instance {i}: {r:?}"
        );
    }
    assert!(
        revs.values().any(|r| r.len() > 1),
        "nothing was rolled: {revs:?}"
    );
}

/// Instances a diff's `{from, to}` ranges name.
fn instances(ranges: &Value) -> BTreeSet<u32> {
    ranges
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["from"].as_u64().unwrap() as u32..r["to"].as_u64().unwrap() as u32)
        .collect()
}

/// `update/diff` before an update names exactly the instances the update
/// then touches: the ones it gives new runs are the updated and the
/// added, and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_diff_names_exactly_the_instances_the_update_touches() {
    let c = Cluster::start(3);
    create_healthy(c.api(), "svc", service(10, "1", &[])).await;
    // Instances 3 and 7 change their labels; 10 and 11 are new.
    let mut next = service(12, "1", &[]);
    let changed = json!({"labels": [{"key": "rev", "value": "2"}]});
    next["instance_spec"] = json!({"3": changed, "7": changed});
    let diff = job_post(c.api(), "svc", "update/diff", json!({"spec": next})).await;
    assert_eq!(
        instances(&diff["instances_updated"]),
        BTreeSet::from([3, 7]),
        "{diff}"
    );
    assert_eq!(
        instances(&diff["instances_added"]),
        BTreeSet::from([10, 11]),
        "{diff}"
    );
    assert!(instances(&diff["instances_removed"]).is_empty(), "{diff}");
    let unchanged = instances(&diff["instances_unchanged"]);
    assert_eq!(
        unchanged,
        (0..10).filter(|i| ![3, 7].contains(i)).collect(),
        "{diff}"
    );

    let before: BTreeSet<String> = master_tasks(&c.sim.address, "svc")
        .await
        .into_iter()
        .map(|t| t.id)
        .collect();
    update(c.api(), "svc", next, json!({"batch_size": 2})).await;
    wait_workflow_state(c.api(), "svc", "WORKFLOW_STATE_SUCCEEDED").await;
    wait_all_up(c.api(), "svc", 12).await;
    let touched: BTreeSet<u32> = master_tasks(&c.sim.address, "svc")
        .await
        .into_iter()
        .filter(|t| !before.contains(&t.id))
        .map(|t| t.instance)
        .collect();
    let named: BTreeSet<u32> = instances(&diff["instances_updated"])
        .union(&instances(&diff["instances_added"]))
        .copied()
        .collect();
    assert_eq!(touched, named);
}

/// Scale 10 → 50 → 5 while an update rolls: the job ends with 5
/// instances, all on the new version, instances 5..49 gone at the
/// master; scaling restarted nothing (each instance kept ran one task per
/// spec), and growing again later leaves the running ones alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_up_and_down_during_an_update_ends_on_the_new_version_and_restarts_nothing() {
    let c = Cluster::start(4);
    create_healthy(c.api(), "svc", service(10, "1", &[])).await;
    let sampler = Sampler::start(&c.sim.address, None, "svc");
    let (_, new) = update(
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
    job_post(c.api(), "svc", "scale", json!({"instance_count": 50})).await;
    // Let the added instances launch before shrinking.
    let launched = wait_for(LIMIT, || async {
        let tasks = master_tasks(&c.sim.address, "svc").await;
        let grown: BTreeSet<u32> = tasks
            .iter()
            .filter(|t| t.instance >= 10)
            .map(|t| t.instance)
            .collect();
        (grown.len() >= 20).then_some(grown.len())
    })
    .await;
    assert!(launched.is_some(), "the added instances never launched");
    job_post(c.api(), "svc", "scale", json!({"instance_count": 5})).await;
    wait_workflow_state(c.api(), "svc", "WORKFLOW_STATE_SUCCEEDED").await;
    let pods = wait_all_up(c.api(), "svc", 5).await;
    for (i, pod) in &pods {
        assert_eq!((pod.version, pod.desired_version), (new, new), "{i}");
    }
    let gone = wait_for(LIMIT, || async {
        let tasks = master_tasks(&c.sim.address, "svc").await;
        let live: Vec<String> = tasks
            .iter()
            .filter(|t| t.instance >= 5 && t.is_live())
            .map(|t| t.id.clone())
            .collect();
        live.is_empty().then_some(())
    })
    .await;
    assert!(gone.is_some(), "instances 5.. still live at the master");
    let samples = sampler.finish().await;
    assert_no_duplicates(&samples);
    let revs = revs_by_instance(&master_tasks(&c.sim.address, "svc").await);
    for i in 0..5 {
        assert_eq!(revs[&i], ["1", "2"], "instance {i}: {revs:?}");
    }

    // Growing again launches the new instances and leaves 0..4 running.
    let running: BTreeMap<u32, String> = pods.iter().map(|(i, p)| (*i, p.task.clone())).collect();
    job_post(c.api(), "svc", "scale", json!({"instance_count": 8})).await;
    let grown = wait_all_up(c.api(), "svc", 8).await;
    for (i, task) in &running {
        assert_eq!(
            &grown[i].task, task,
            "instance {i} was restarted by scaling"
        );
    }
}

/// A 2-instance web service on a real agent (drover-executor, python's
/// HTTP server, a real HTTP check) updated one instance at a time: at
/// every sample at least one instance is RUNNING and HEALTHY, at the
/// master and in the pods list, and both end on the new version.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_web_service_updated_one_at_a_time_always_has_one_healthy_instance() {
    require_root();
    let executor = binaries::executor();
    let work = tempfile::tempdir().unwrap();
    let sim = AgentSim::for_scheduler(1)
        .real_agents(1, work.path())
        .start();
    let data = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        data.path(),
        &format!("http://{}", sim.address),
        &["--executor", executor.to_str().unwrap()],
    );
    let web = |rev: &str| {
        json!({
            "type": "SERVICE",
            "name": "web",
            "instance_count": 2,
            "default_spec": {
                "labels": [{"key": "rev", "value": rev}],
                "containers": [{
                    "resource": {"cpu_limit": 0.1, "mem_limit_mb": 64},
                    "ports": [{"name": "http", "value": 0, "env_name": "PORT_HTTP"}],
                    "command": {"value": format!(
                        "mkdir -p www && echo {rev} > www/rev && cd www && exec python3 -m http.server \"$PORT_HTTP\" --bind 127.0.0.1"
                    )},
                    "liveness_check": {
                        "enabled": true, "type": "HTTP",
                        "initial_interval_secs": 1, "interval_secs": 1, "timeout_secs": 2,
                        "max_consecutive_failures": 3,
                        "http_get": {"scheme": "http", "port": 0, "path": "/rev"},
                    },
                }],
                "kill_grace_period_seconds": 1,
            },
        })
    };
    create_job(&s.address, "svc", web("1")).await;
    wait_all_up(&s.address, "svc", 2).await;
    let sampler = Sampler::start(&sim.address, Some(&s.address), "svc");
    let (_, new) = update(&s.address, "svc", web("2"), json!({"batch_size": 1})).await;
    wait_workflow_state(&s.address, "svc", "WORKFLOW_STATE_SUCCEEDED").await;
    let pods = wait_all_up(&s.address, "svc", 2).await;
    let samples = sampler.finish().await;
    let most = assert_never_more_down(&samples, 2, 1);
    assert!(
        most.0 == 1 && most.1 == 1,
        "the update never showed: {most:?}"
    );
    assert_no_duplicates(&samples);
    for (i, pod) in &pods {
        assert_eq!((pod.version, pod.desired_version), (new, new), "{i}");
    }
    let revs = revs_by_instance(&master_tasks(&sim.address, "svc").await);
    for (i, r) in &revs {
        assert_eq!(r, &["1", "2"], "instance {i}");
    }
}
