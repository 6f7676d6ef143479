//! The drain's plans: runs on a draining host move off as the job's
//! disruption budget allows; a service run is handed over (a replacement
//! first, the old run killed once it serves), a batch run killed.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::host::{DrainCause, HostMaintenance, HostState};
use crate::model::ids::JobId;
use crate::model::spec::JobSpec;

const NOW: UnixMillis = 1_000_000;

fn job(job_type: &str, instances: u32, extra: serde_json::Value) -> Job {
    let mut spec = serde_json::json!({
        "type": job_type, "name": "t", "instance_count": instances,
        "default_spec": {
            "kill_grace_period_seconds": 5,
            "containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": {"value": "sleep 100"}
            }]
        }
    });
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    let spec: JobSpec = serde_json::from_value(spec).unwrap();
    Job {
        revision: 1,
        goal: JobGoal::Running,
        ..Job::new(JobId("job".into()), spec, 0)
    }
}

/// Agent a1 is on host h1, which drains since `since` with `grace` for
/// batch runs; a2 is on h2, UP.
fn draining(since: UnixMillis, grace: Duration) -> ClusterFacts {
    let mut facts = ClusterFacts::with_hostnames([
        (AgentId::new("a1"), "h1".to_owned()),
        (AgentId::new("a2"), "h2".to_owned()),
    ]);
    facts.maintenance.insert(
        "h1".into(),
        HostMaintenance {
            hostname: "h1".into(),
            state: HostState::Draining,
            cause: DrainCause::Operator,
            since,
            batch_grace: grace,
            inverse_offer: None,
        },
    );
    facts
}

fn running(agent: &str, run: u32) -> Run {
    Run {
        state: PodState::Running,
        ..Run::launching(run, AgentId::new(agent), 1, 0)
    }
}

/// Instances `0..on_h1` run on a1 (draining), the rest on a2.
fn histories(count: u32, on_h1: u32) -> Vec<RunHistory> {
    (0..count)
        .map(|i| {
            let mut h = RunHistory::new();
            h.push(running(if i < on_h1 { "a1" } else { "a2" }, 0));
            h
        })
        .collect()
}

fn drain_kills(plan: &Plan) -> Vec<u32> {
    plan.kill
        .iter()
        .filter(|k| k.reason == Some(DRAIN_REASON))
        .map(|k| k.task_id.instance.instance)
        .collect()
}

fn sla(max_unavailable: u32) -> serde_json::Value {
    serde_json::json!({"sla": {"maximum_unavailable_instances": max_unavailable}})
}

/// Instances handed over by `plan`: the replacements it launches beside
/// their live run.
fn handovers(plan: &Plan) -> Vec<u32> {
    plan.launch
        .iter()
        .filter(|l| l.hands_over.is_some())
        .map(|l| l.task_id.instance.instance)
        .collect()
}

#[test]
fn a_drain_hands_over_no_more_service_runs_than_the_budget_allows_at_once() {
    let job = job("SERVICE", 10, sla(2));
    let facts = draining(NOW, Duration::ZERO);
    let plan = super::plan(
        &job,
        &histories(10, 4),
        &facts,
        &EngineConfig::default(),
        NOW,
    );
    assert_eq!(handovers(&plan), vec![0, 1]);
    // Each replacement is the instance's next run, beside the live one.
    assert_eq!(plan.launch[0].task_id.run, 1);
    assert_eq!(plan.launch[0].hands_over, Some(0));
    // Nothing is killed before a replacement serves.
    assert!(plan.kill.is_empty(), "{:?}", plan.kill);
    // Those left are looked at again, even if nothing else happens.
    assert!(plan.requeue_after.is_some());
    assert_eq!(plan.job_state, Some(JobState::Running));
}

/// Instance `i`'s run 0 on a1 hands over to run 1 on a2, in `state`.
fn handing_over(replacement: Run) -> RunHistory {
    let mut h = RunHistory::new();
    h.push(Run {
        handing_over: true,
        ..running("a1", 0)
    });
    h.push(replacement);
    h
}

#[test]
fn handovers_in_progress_use_the_budget_until_their_replacement_serves() {
    let job = job("SERVICE", 10, sla(2));
    let facts = draining(NOW, Duration::ZERO);
    let config = EngineConfig::default();
    let mut instances = histories(10, 4);
    instances[0] = handing_over(Run::launching(1, AgentId::new("a2"), 1, NOW));
    instances[1] = handing_over(Run::launching(1, AgentId::new("a2"), 1, NOW));
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert!(handovers(&plan).is_empty(), "two in progress already");
    assert!(plan.kill.is_empty(), "old runs serve until replaced");
    assert_eq!(plan.job_state, Some(JobState::Running), "nothing is down");
    // Instance 0's replacement runs: its old run goes, for the drain, and
    // one more handover may start.
    instances[0][1].state = PodState::Running;
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert_eq!(drain_kills(&plan), vec![0]);
    assert_eq!(plan.kill[0].task_id.run, 0);
    assert_eq!(handovers(&plan), vec![2]);
}

#[test]
fn a_checked_replacement_must_be_healthy_before_the_old_run_goes() {
    let mut job = job("SERVICE", 2, sla(1));
    job.spec.default_spec.containers[0].liveness_check = Some(
        serde_json::from_value(serde_json::json!({
            "enabled": true, "type": "COMMAND", "command_check": {"command": "true"}
        }))
        .unwrap(),
    );
    let facts = draining(NOW, Duration::ZERO);
    let config = EngineConfig::default();
    let healthy = |r: Run| Run {
        healthy: Some(true),
        ..r
    };
    let mut instances = vec![
        handing_over(running("a2", 1)),
        RunHistory::from_vec(vec![healthy(running("a1", 0))]),
    ];
    instances[0][0].healthy = Some(true);
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert!(
        plan.kill.is_empty(),
        "RUNNING but not judged: {:?}",
        plan.kill
    );
    assert!(handovers(&plan).is_empty(), "the budget is in use");
    instances[0][1].healthy = Some(false);
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert!(plan.kill.is_empty(), "unhealthy: {:?}", plan.kill);
    instances[0][1].healthy = Some(true);
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert_eq!(drain_kills(&plan), vec![0]);
    assert_eq!(handovers(&plan), vec![1]);
}

#[test]
fn a_failed_replacement_is_retried_with_backoff_while_the_old_run_serves() {
    let job = job("SERVICE", 1, sla(1));
    let facts = draining(NOW, Duration::ZERO);
    let config = EngineConfig::default();
    let failed = Run {
        state: PodState::Failed,
        completed_at: Some(NOW - 10),
        ..running("a2", 1)
    };
    // The first retry is at once (the usual backoff)...
    let mut instances = vec![handing_over(failed.clone())];
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert_eq!(plan.launch.len(), 1);
    assert_eq!(plan.launch[0].task_id.run, 2);
    assert_eq!(
        plan.launch[0].hands_over, None,
        "the old run is marked already"
    );
    assert!(plan.kill.is_empty());
    // ... the next after a delay.
    instances[0].push(Run { run: 2, ..failed });
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert!(plan.launch.is_empty(), "backoff first: {:?}", plan.launch);
    assert!(plan.kill.is_empty());
    assert!(plan.requeue_after.is_some());
    assert_eq!(plan.job_state, Some(JobState::Running));
    let later = NOW + 3_600_000;
    let plan = super::plan(&job, &instances, &facts, &config, later);
    assert_eq!(plan.launch.len(), 1);
    assert_eq!(plan.launch[0].task_id.run, 3);
    assert!(plan.kill.is_empty());
}

#[test]
fn an_old_run_that_ends_mid_handover_leaves_the_replacement_as_the_instances_run() {
    let job = job("SERVICE", 1, sla(1));
    let facts = draining(NOW, Duration::ZERO);
    let config = EngineConfig::default();
    let mut instances = vec![handing_over(Run::launching(1, AgentId::new("a2"), 1, NOW))];
    instances[0][0].state = PodState::Failed;
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert!(plan.kill.is_empty() && plan.launch.is_empty(), "{plan:?}");
    assert_eq!(plan.job_state, Some(JobState::Pending));
}

#[test]
fn a_job_killed_or_scaled_down_mid_handover_kills_both_runs() {
    let mut job = job("SERVICE", 1, sla(1));
    let facts = draining(NOW, Duration::ZERO);
    let config = EngineConfig::default();
    let instances = vec![handing_over(Run::launching(1, AgentId::new("a2"), 1, NOW))];
    job.goal = JobGoal::Stopped;
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    let mut killed: Vec<_> = plan.kill.iter().map(|k| k.task_id.run).collect();
    killed.sort_unstable();
    assert_eq!(killed, vec![0, 1]);
    assert!(plan.launch.is_empty());
    // Scaled down to 0: instance 0 is no longer wanted either.
    let mut job = self::job("SERVICE", 0, sla(1));
    job.goal = JobGoal::Running;
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert_eq!(plan.kill.len(), 2, "{:?}", plan.kill);
}

#[test]
fn a_restart_mid_handover_replaces_the_replacement_and_the_old_run_serves_on() {
    use crate::model::job::PodControl;
    let mut job = job("SERVICE", 1, sla(1));
    job.pods.insert(
        0,
        PodControl {
            restart_from: 2,
            ..Default::default()
        },
    );
    let facts = draining(NOW, Duration::ZERO);
    let config = EngineConfig::default();
    let mut instances = vec![handing_over(Run::launching(1, AgentId::new("a2"), 1, NOW))];
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    let killed: Vec<_> = plan.kill.iter().map(|k| k.task_id.run).collect();
    assert_eq!(killed, vec![1], "the replacement only");
    // Killed, it is relaunched (a restart's kill is no failure), the old
    // run still serving.
    instances[0][1].state = PodState::Killed;
    instances[0][1].kill_requested_at = Some(NOW);
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert_eq!(plan.launch.len(), 1);
    assert_eq!(plan.launch[0].task_id.run, 2);
    assert!(plan.kill.is_empty());
}

#[test]
fn a_drain_cancelled_mid_handover_finishes_the_handover() {
    let job = job("SERVICE", 1, sla(1));
    // h1 is UP again.
    let facts = ClusterFacts::with_hostnames([
        (AgentId::new("a1"), "h1".to_owned()),
        (AgentId::new("a2"), "h2".to_owned()),
    ]);
    let config = EngineConfig::default();
    let mut instances = vec![handing_over(Run::launching(1, AgentId::new("a2"), 1, NOW))];
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert!(plan.kill.is_empty(), "the old run serves until replaced");
    instances[0][1].state = PodState::Running;
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert_eq!(drain_kills(&plan), vec![0]);
}

#[test]
fn a_batch_drain_still_kills_and_counts_the_killed_down_until_replaced() {
    let job = job("BATCH", 10, sla(2));
    let facts = draining(NOW, Duration::ZERO);
    let config = EngineConfig::default();
    let mut instances = histories(10, 4);
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert_eq!(drain_kills(&plan), vec![0, 1]);
    assert!(handovers(&plan).is_empty());
    // Instance 0 was moved: its run killed, its replacement starting on a2.
    instances[0] = RunHistory::new();
    instances[0].push(Run {
        state: PodState::Killed,
        kill_requested_at: Some(NOW - 10),
        kill_reason: Some(DRAIN_REASON),
        ..running("a1", 0)
    });
    instances[0].push(Run::launching(1, AgentId::new("a2"), 1, NOW));
    // Instance 1's kill is in flight: still RUNNING as far as Drover knows.
    instances[1] = RunHistory::new();
    instances[1].push(Run {
        kill_requested_at: Some(NOW - 10),
        kill_reason: Some(DRAIN_REASON),
        ..running("a1", 0)
    });
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert_eq!(drain_kills(&plan), Vec::<u32>::new(), "two down already");
    // The replacement of 0 runs: one more may go.
    instances[0].last_mut().unwrap().state = PodState::Running;
    let plan = super::plan(&job, &instances, &facts, &config, NOW);
    assert_eq!(drain_kills(&plan), vec![2]);
}

#[test]
fn a_run_killed_by_a_drain_is_relaunched_batch_or_service() {
    for kind in ["SERVICE", "BATCH"] {
        let job = job(kind, 1, serde_json::json!({}));
        let facts = draining(NOW, Duration::ZERO);
        let mut h = RunHistory::new();
        h.push(Run {
            state: PodState::Killed,
            kill_requested_at: Some(NOW - 10),
            kill_reason: Some(DRAIN_REASON),
            ..running("a1", 0)
        });
        let plan = super::plan(&job, &[h], &facts, &EngineConfig::default(), NOW);
        assert_eq!(plan.launch.len(), 1, "{kind}");
        assert_eq!(plan.launch[0].task_id.run, 1);
    }
}

#[test]
fn a_batch_run_is_given_the_drains_grace_to_finish() {
    let job = job("BATCH", 1, serde_json::json!({}));
    let config = EngineConfig::default();
    let facts = draining(NOW - 4_000, Duration::from_secs(10));
    let plan = super::plan(&job, &histories(1, 1), &facts, &config, NOW);
    assert!(drain_kills(&plan).is_empty());
    assert_eq!(plan.requeue_after, Some(Duration::from_secs(6)));
    let facts = draining(NOW - 10_000, Duration::from_secs(10));
    let plan = super::plan(&job, &histories(1, 1), &facts, &config, NOW);
    assert_eq!(drain_kills(&plan), vec![0]);
}

#[test]
fn a_titus_budget_paces_the_drain_too() {
    let budget = serde_json::json!({"disruption_budget": {
        "policy": {"availability_percentage": {"percentage_of_healthy": 90.0}}
    }});
    let job = job("SERVICE", 10, budget);
    let facts = draining(NOW, Duration::ZERO);
    let plan = super::plan(
        &job,
        &histories(10, 5),
        &facts,
        &EngineConfig::default(),
        NOW,
    );
    assert_eq!(handovers(&plan), vec![0]);
    let rate = serde_json::json!({"disruption_budget": {
        "rate": {"per_interval": {"interval_ms": 60000, "limit": 1}}
    }});
    let job = self::job("SERVICE", 10, rate);
    let mut instances = histories(10, 5);
    // One disruption within the interval already (instance 9, long done).
    instances[9] = RunHistory::new();
    instances[9].push(Run {
        state: PodState::Killed,
        kill_requested_at: Some(NOW - 30_000),
        kill_reason: Some(DRAIN_REASON),
        ..running("a1", 0)
    });
    instances[9].push(running("a2", 1));
    let plan = super::plan(&job, &instances, &facts, &EngineConfig::default(), NOW);
    assert!(drain_kills(&plan).is_empty(), "{:?}", plan.kill);
    assert!(handovers(&plan).is_empty(), "{:?}", plan.launch);
}

#[test]
fn runs_on_hosts_that_are_up_are_never_moved() {
    let job = job("SERVICE", 4, sla(1));
    let facts = draining(NOW, Duration::ZERO);
    let plan = super::plan(
        &job,
        &histories(4, 0),
        &facts,
        &EngineConfig::default(),
        NOW,
    );
    assert!(plan.kill.is_empty());
}
