#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::ids::JobId;
use crate::model::run::RUNTIME_LIMIT_REASON;
use crate::model::spec::JobSpec;
use proptest::prelude::*;

fn job(job_type: &str, instances: u32, max_failures: u32, goal: JobGoal) -> Job {
    let spec: JobSpec = serde_json::from_value(serde_json::json!({
        "type": job_type, "name": "t", "instance_count": instances,
        "default_spec": {
            "restart_policy": {"max_failures": max_failures},
            "kill_grace_period_seconds": 5,
            "containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
                "command": {"value": "true"}
            }]
        }
    }))
    .unwrap();
    Job {
        revision: 1,
        goal,
        created_at: 0,
        updated_at: 0,
        ..Job::new(JobId("job".into()), spec, 0)
    }
}

/// A run named by its task id: the tests keep a job's runs as one list.
#[derive(Debug, Clone)]
struct TestRun {
    task_id: TaskId,
    run: Run,
}

impl std::ops::Deref for TestRun {
    type Target = Run;
    fn deref(&self) -> &Run {
        &self.run
    }
}

impl std::ops::DerefMut for TestRun {
    fn deref_mut(&mut self) -> &mut Run {
        &mut self.run
    }
}

fn run(instance: u32, run: u32, state: PodState) -> TestRun {
    TestRun {
        task_id: TaskId::new(InstanceId::new(JobId("job".into()), instance), run),
        run: Run {
            state,
            launched_at: 0,
            updated_at: 0,
            ..Run::launching(run, AgentId::new("a1"), 1, 0)
        },
    }
}

/// [`super::plan`] over a flat list of runs.
fn plan(
    job: &Job,
    runs: &[TestRun],
    facts: &ClusterFacts,
    config: &EngineConfig,
    now: UnixMillis,
) -> Plan {
    let mut instances = vec![RunHistory::new(); job.spec.instance_count as usize];
    for r in runs {
        instances[r.task_id.instance.instance as usize].push(r.run.clone());
    }
    for history in &mut instances {
        history.sort_by_key(|r| r.run);
    }
    super::plan(job, &instances, facts, config, now)
}

fn launches(plan: &Plan) -> Vec<(u32, u32)> {
    plan.launch
        .iter()
        .map(|l| (l.task_id.instance.instance, l.task_id.run))
        .collect()
}

const NOW: UnixMillis = 1_000;

#[test]
fn plans_follow_the_rules_table() {
    use PodState::*;
    struct Case {
        name: &'static str,
        job: Job,
        runs: Vec<TestRun>,
        launch: Vec<(u32, u32)>,
        kill: usize,
        state: JobState,
    }
    let cases = vec![
        Case {
            name: "new batch job launches every instance",
            job: job("BATCH", 3, 0, JobGoal::Running),
            runs: vec![],
            launch: vec![(0, 0), (1, 0), (2, 0)],
            kill: 0,
            state: JobState::Initialized,
        },
        Case {
            name: "live runs are left alone",
            job: job("BATCH", 2, 0, JobGoal::Running),
            runs: vec![run(0, 0, Running), run(1, 0, Launching)],
            launch: vec![],
            kill: 0,
            state: JobState::Running,
        },
        Case {
            name: "batch success is final",
            job: job("BATCH", 2, 0, JobGoal::Running),
            runs: vec![run(0, 0, Succeeded), run(1, 0, Succeeded)],
            launch: vec![],
            kill: 0,
            state: JobState::Succeeded,
        },
        Case {
            name: "batch failure is retried up to max_failures",
            job: job("BATCH", 1, 2, JobGoal::Running),
            runs: vec![run(0, 0, Failed), run(0, 1, Failed)],
            launch: vec![(0, 2)],
            kill: 0,
            state: JobState::Pending,
        },
        Case {
            name: "batch failure beyond max_failures is final",
            job: job("BATCH", 1, 1, JobGoal::Running),
            runs: vec![run(0, 0, Failed), run(0, 1, Failed)],
            launch: vec![],
            kill: 0,
            state: JobState::Failed,
        },
        Case {
            name: "lost runs are relaunched without counting as failures",
            job: job("BATCH", 1, 0, JobGoal::Running),
            runs: vec![run(0, 0, Lost), run(0, 1, Lost)],
            launch: vec![(0, 2)],
            kill: 0,
            state: JobState::Pending,
        },
        Case {
            name: "service replaces any exit, success included",
            job: job("SERVICE", 3, 0, JobGoal::Running),
            runs: vec![run(0, 0, Succeeded), run(1, 0, Killed), run(2, 0, Running)],
            launch: vec![(0, 1), (1, 1)],
            kill: 0,
            state: JobState::Running,
        },
        Case {
            name: "stopping kills live runs and launches nothing",
            job: job("SERVICE", 3, 0, JobGoal::Stopped),
            runs: vec![run(0, 0, Running), run(1, 0, Starting), run(2, 0, Failed)],
            launch: vec![],
            kill: 2,
            state: JobState::Killing,
        },
        Case {
            name: "a stopped job with nothing live is killed",
            job: job("SERVICE", 1, 0, JobGoal::Stopped),
            runs: vec![run(0, 0, Killed)],
            launch: vec![],
            kill: 0,
            state: JobState::Killed,
        },
    ];
    for case in cases {
        let plan = plan(
            &case.job,
            &case.runs,
            &ClusterFacts::default(),
            &EngineConfig::default(),
            NOW,
        );
        assert_eq!(launches(&plan), case.launch, "{}", case.name);
        assert_eq!(plan.kill.len(), case.kill, "{}", case.name);
        assert_eq!(plan.job_state, Some(case.state), "{}", case.name);
    }
}

#[test]
fn a_kill_is_not_repeated_before_kill_retry_plus_grace() {
    let job = job("SERVICE", 1, 0, JobGoal::Stopped);
    let mut r = run(0, 0, PodState::Running);
    r.kill_requested_at = Some(NOW - 1_000);
    let config = EngineConfig::default();
    let p = plan(
        &job,
        std::slice::from_ref(&r),
        &ClusterFacts::default(),
        &config,
        NOW,
    );
    assert!(p.kill.is_empty());
    assert_eq!(p.requeue_after, Some(Duration::from_secs(35)));
    let later = NOW + 35_000;
    let p = plan(&job, &[r], &ClusterFacts::default(), &config, later);
    assert_eq!(p.kill.len(), 1);
    assert_eq!(p.kill[0].grace, Duration::from_secs(5));
}

#[test]
fn runs_on_lost_agents_are_waited_for_then_marked_lost() {
    let job = job("BATCH", 2, 0, JobGoal::Running);
    let mut facts = ClusterFacts::default();
    facts.lost_agents.insert(AgentId::new("a1"), NOW);
    let mut other = run(1, 0, PodState::Running);
    other.agent = Some(AgentId::new("a2"));
    let runs = [run(0, 0, PodState::Running), other];
    let config = EngineConfig::default();
    let p = plan(&job, &runs, &facts, &config, NOW + 1_000);
    assert!(p.mark_lost.is_empty(), "a batch run may still finish");
    assert!(p.launch.is_empty());
    assert_eq!(p.requeue_after, Some(Duration::from_secs(3599)));
    let p = plan(&job, &runs, &facts, &config, NOW + 3_600_000);
    assert_eq!(p.mark_lost.len(), 1);
    assert_eq!(p.mark_lost[0].instance.instance, 0);
    assert_eq!(p.requeue_after, Some(Duration::ZERO));
}

#[test]
fn an_unreachable_service_run_is_replaced_beside_it_then_given_up() {
    let job = job("SERVICE", 1, 0, JobGoal::Running);
    let config = EngineConfig::default();
    let facts = ClusterFacts::default();
    let mut gone = run(0, 0, PodState::Running);
    gone.mark_unreachable(NOW);
    let p = plan(&job, &[gone.clone()], &facts, &config, NOW + 60_000);
    assert!(p.launch.is_empty() && p.mark_lost.is_empty(), "waited for");
    assert_eq!(p.requeue_after, Some(Duration::from_secs(240)));
    let p = plan(&job, &[gone.clone()], &facts, &config, NOW + 300_000);
    assert_eq!(p.launch.len(), 1, "replaced after inactive_after");
    assert_eq!(p.launch[0].task_id.run, 1);
    assert!(p.mark_lost.is_empty(), "the unreachable run is kept");
    // The replacement is the latest run now; the unreachable one is given
    // up once expunge_after passes.
    let replacement = run(0, 1, PodState::Running);
    let both = [gone, replacement];
    let p = plan(&job, &both, &facts, &config, NOW + 400_000);
    assert!(p.mark_lost.is_empty() && p.launch.is_empty());
    assert_eq!(p.requeue_after, Some(Duration::from_secs(200)));
    let p = plan(&job, &both, &facts, &config, NOW + 600_000);
    assert_eq!(p.mark_lost.len(), 1);
    assert_eq!(p.mark_lost[0].run, 0);
}

#[test]
fn a_batch_replacement_is_killed_when_the_run_it_replaced_succeeded() {
    let job = job("BATCH", 1, 0, JobGoal::Running);
    let came_back = run(0, 0, PodState::Succeeded);
    let replacement = run(0, 1, PodState::Running);
    let p = plan(
        &job,
        &[came_back, replacement],
        &ClusterFacts::default(),
        &EngineConfig::default(),
        NOW,
    );
    assert_eq!(p.kill.len(), 1);
    assert_eq!(p.kill[0].task_id.run, 1);
    assert_eq!(p.job_state, Some(JobState::Succeeded));
}

#[test]
fn a_silent_launch_is_reconciled_after_the_launch_timeout() {
    let job = job("BATCH", 1, 0, JobGoal::Running);
    let r = run(0, 0, PodState::Launching);
    let config = EngineConfig::default();
    let early = plan(
        &job,
        std::slice::from_ref(&r),
        &ClusterFacts::default(),
        &config,
        10_000,
    );
    assert!(early.reconcile.is_empty());
    assert_eq!(early.requeue_after, Some(Duration::from_secs(20)));
    let late = plan(&job, &[r], &ClusterFacts::default(), &config, 30_000);
    assert_eq!(late.reconcile.len(), 1);
}

#[test]
fn a_deleted_job_is_forgotten_once_nothing_is_live() {
    let job = job("SERVICE", 1, 0, JobGoal::Deleted);
    let live = plan(
        &job,
        &[run(0, 0, PodState::Running)],
        &ClusterFacts::default(),
        &EngineConfig::default(),
        NOW,
    );
    assert!(!live.forget);
    let done = plan(
        &job,
        &[run(0, 0, PodState::Killed)],
        &ClusterFacts::default(),
        &EngineConfig::default(),
        NOW,
    );
    assert!(done.forget);
}

/// One step of a random history.
#[derive(Debug, Clone)]
enum Step {
    /// Carry out the current plan's launches (record intents).
    Launch,
    /// A status update for the latest run of an instance.
    Update(u32, PodState),
    /// The agent of an instance's latest run is lost.
    LoseAgent(u32),
    /// The user stops or starts the job.
    Goal(bool),
}

fn step() -> impl Strategy<Value = Step> {
    let states = prop::sample::select(crate::model::state::ALL_POD_STATES.to_vec());
    prop_oneof![
        3 => Just(Step::Launch),
        5 => (0u32..4, states).prop_map(|(i, s)| Step::Update(i, s)),
        1 => (0u32..4).prop_map(Step::LoseAgent),
        1 => any::<bool>().prop_map(Step::Goal),
    ]
}

proptest! {
    /// Whatever happens, carrying out the engine's plans never gives an
    /// instance two live runs, and every launch is the instance's next run.
    #[test]
    fn an_instance_never_has_two_live_runs(
        service in any::<bool>(),
        max_failures in 0u32..3,
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let kind = if service { "SERVICE" } else { "BATCH" };
        let mut job = job(kind, 4, max_failures, JobGoal::Running);
        let mut runs: Vec<TestRun> = Vec::new();
        let mut facts = ClusterFacts::default();
        let mut now = NOW;
        let mut agent_seq = 0;
        for step in steps {
            now += 1_000;
            let p = plan(&job, &runs, &facts, &EngineConfig::default(), now);
            for lost in &p.mark_lost {
                let r = runs.iter_mut().find(|r| &r.task_id == lost).unwrap();
                r.state = PodState::Lost;
            }
            match step {
                Step::Launch => {
                    for launch in &p.launch {
                        let instance = launch.task_id.instance.instance;
                        let latest = runs
                            .iter()
                            .filter(|r| r.task_id.instance.instance == instance)
                            .max_by_key(|r| r.task_id.run);
                        prop_assert!(latest.is_none_or(|r| !r.state.is_live()),
                            "launch proposed for instance {} with a live run", instance);
                        prop_assert_eq!(launch.task_id.run, latest.map_or(0, |r| r.task_id.run + 1));
                        agent_seq += 1;
                        let mut r = run(instance, launch.task_id.run, PodState::Launching);
                        r.agent = Some(AgentId::new(&format!("a{agent_seq}")));
                        runs.push(r);
                    }
                }
                Step::Update(instance, state) => {
                    if let Some(r) = runs
                        .iter_mut()
                        .filter(|r| r.task_id.instance.instance == instance)
                        .max_by_key(|r| r.task_id.run)
                    {
                        // The store keeps terminal states final.
                        if !r.state.is_terminal() && state != PodState::Pending {
                            r.state = state;
                        }
                    }
                }
                Step::LoseAgent(instance) => {
                    if let Some(r) = runs
                        .iter()
                        .filter(|r| r.task_id.instance.instance == instance)
                        .max_by_key(|r| r.task_id.run)
                    {
                        facts.lost_agents.insert(r.agent.clone().unwrap(), -10_000_000_000);
                    }
                }
                Step::Goal(run_it) => {
                    job.goal = if run_it { JobGoal::Running } else { JobGoal::Stopped };
                    for k in &p.kill {
                        let r = runs.iter_mut().find(|r| r.task_id == k.task_id).unwrap();
                        r.kill_requested_at = Some(now);
                    }
                }
            }
            for instance in 0..4 {
                let live = runs
                    .iter()
                    .filter(|r| r.task_id.instance.instance == instance && r.state.is_live())
                    .count();
                prop_assert!(live <= 1, "instance {} has {} live runs", instance, live);
            }
        }
    }
}

#[test]
fn a_stopped_pod_is_killed_and_not_relaunched_until_started() {
    use crate::model::job::PodControl;
    use crate::model::state::PodGoal;
    let mut job = job("SERVICE", 2, 0, JobGoal::Running);
    job.pods.insert(
        1,
        PodControl {
            goal: PodGoal::Killed,
            restart_from: 0,
        },
    );
    let config = EngineConfig::default();
    let facts = ClusterFacts::default();
    let live = [run(0, 0, PodState::Running), run(1, 0, PodState::Running)];
    let p = plan(&job, &live, &facts, &config, NOW);
    assert_eq!(p.kill.len(), 1);
    assert_eq!(p.kill[0].task_id.instance.instance, 1);
    let mut killed = run(1, 0, PodState::Killed);
    killed.kill_requested_at = Some(NOW);
    let p = plan(
        &job,
        &[live[0].clone(), killed.clone()],
        &facts,
        &config,
        NOW,
    );
    assert!(p.launch.is_empty() && p.kill.is_empty());
    job.pods.clear();
    let p = plan(&job, &[live[0].clone(), killed], &facts, &config, NOW);
    assert_eq!(launches(&p), vec![(1, 1)], "started again");
}

#[test]
fn a_restart_replaces_runs_batch_by_batch() {
    use crate::model::job::PodControl;
    let mut job = job("SERVICE", 4, 0, JobGoal::Running);
    job.restart_batch_size = 2;
    for i in 0..4 {
        job.pods.insert(
            i,
            PodControl {
                restart_from: 1,
                ..Default::default()
            },
        );
    }
    let config = EngineConfig::default();
    let facts = ClusterFacts::default();
    let mut runs: Vec<_> = (0..4).map(|i| run(i, 0, PodState::Running)).collect();
    let p = plan(&job, &runs, &facts, &config, NOW);
    let killed: Vec<_> = p.kill.iter().map(|k| k.task_id.instance.instance).collect();
    assert_eq!(killed, vec![0, 1], "two at a time");
    // 0 is killed and relaunched, 1 is still being killed: one slot left.
    runs[0].state = PodState::Killed;
    runs[0].kill_requested_at = Some(NOW);
    runs[1].kill_requested_at = Some(NOW);
    runs[1].state = PodState::Killing;
    let p = plan(&job, &runs, &facts, &config, NOW);
    assert_eq!(launches(&p), vec![(0, 1)]);
    assert!(
        p.kill.is_empty(),
        "0 waiting + 1 killing use the budget of 2"
    );
    // With an SLA of one unavailable instance, the tighter bound wins.
    job.spec.sla = Some(crate::model::spec::SlaSpec {
        priority: 0,
        maximum_unavailable_instances: 1,
        ..Default::default()
    });
    let fresh: Vec<_> = (0..4).map(|i| run(i, 0, PodState::Running)).collect();
    let p = plan(&job, &fresh, &facts, &config, NOW);
    assert_eq!(p.kill.len(), 1);
}

/// A restarted pod with a health check is down until HEALTHY: the next
/// batch waits for that, not for RUNNING alone (seen: a rolling restart
/// with batch size 1 took a second instance down while the first was
/// RUNNING but not yet judged healthy).
#[test]
fn a_restart_waits_for_the_restarted_pod_to_be_healthy() {
    use crate::model::job::PodControl;
    let mut job = job("SERVICE", 3, 0, JobGoal::Running);
    job.spec.default_spec.containers[0].liveness_check =
        serde_json::from_value(serde_json::json!({
            "enabled": true, "type": "COMMAND", "command_check": {"command": "true"}
        }))
        .unwrap();
    job.restart_batch_size = 1;
    for i in 0..3 {
        job.pods.insert(
            i,
            PodControl {
                restart_from: 1,
                ..Default::default()
            },
        );
    }
    let (config, facts) = (EngineConfig::default(), ClusterFacts::default());
    let mut old0 = run(0, 0, PodState::Killed);
    old0.kill_requested_at = Some(NOW);
    let mut runs = vec![old0, run(0, 1, PodState::Running)];
    for i in 1..3 {
        let mut r = run(i, 0, PodState::Running);
        r.healthy = Some(true);
        runs.push(r);
    }
    let p = plan(&job, &runs, &facts, &config, NOW);
    assert!(
        p.kill.is_empty(),
        "instance 0 is RUNNING but not yet HEALTHY"
    );
    runs[1].healthy = Some(true);
    let p = plan(&job, &runs, &facts, &config, NOW);
    let killed: Vec<_> = p.kill.iter().map(|k| k.task_id.instance.instance).collect();
    assert_eq!(killed, vec![1], "0 serves again: the next one goes");
}

/// With a readiness check the gate is readiness, not liveness: a
/// restarted pod that is RUNNING and HEALTHY but not yet READY (a service
/// warming its cache) holds the next batch back.
#[test]
fn a_restart_waits_for_readiness_not_liveness() {
    use crate::model::job::PodControl;
    let mut job = job("SERVICE", 3, 0, JobGoal::Running);
    let container = &mut job.spec.default_spec.containers[0];
    container.liveness_check = serde_json::from_value(serde_json::json!({
        "enabled": true, "type": "COMMAND", "command_check": {"command": "true"}
    }))
    .unwrap();
    container.readiness_check = serde_json::from_value(serde_json::json!({
        "enabled": true, "type": "COMMAND", "command_check": {"command": "test -f ready"}
    }))
    .unwrap();
    job.restart_batch_size = 1;
    for i in 0..3 {
        job.pods.insert(
            i,
            PodControl {
                restart_from: 1,
                ..Default::default()
            },
        );
    }
    let (config, facts) = (EngineConfig::default(), ClusterFacts::default());
    let mut old0 = run(0, 0, PodState::Killed);
    old0.kill_requested_at = Some(NOW);
    let mut runs = vec![old0, run(0, 1, PodState::Running)];
    for i in 1..3 {
        let mut r = run(i, 0, PodState::Running);
        r.healthy = Some(true);
        r.ready = Some(true);
        runs.push(r);
    }
    runs[1].healthy = Some(true);
    runs[1].ready = Some(false);
    let p = plan(&job, &runs, &facts, &config, NOW);
    assert!(
        p.kill.is_empty(),
        "instance 0 is HEALTHY but not READY: the next one waits"
    );
    runs[1].ready = Some(true);
    let p = plan(&job, &runs, &facts, &config, NOW);
    let killed: Vec<_> = p.kill.iter().map(|k| k.task_id.instance.instance).collect();
    assert_eq!(killed, vec![1], "0 is ready: the next one goes");
}

#[test]
fn the_runtime_limit_kills_and_retries_only_when_asked() {
    let mut job = job("BATCH", 1, 2, JobGoal::Running);
    job.spec.default_spec.runtime_limit_secs = Some(10);
    let config = EngineConfig::default();
    let facts = ClusterFacts::default();
    let mut r = run(0, 0, PodState::Running);
    r.started_at = Some(0);
    let early = plan(&job, std::slice::from_ref(&r), &facts, &config, 4_000);
    assert!(early.kill.is_empty());
    assert_eq!(early.requeue_after, Some(Duration::from_secs(6)));
    let late = plan(&job, std::slice::from_ref(&r), &facts, &config, 10_000);
    assert_eq!(late.kill[0].reason, Some(RUNTIME_LIMIT_REASON));
    r.state = PodState::Killed;
    r.kill_requested_at = Some(10_000);
    r.kill_reason = Some(RUNTIME_LIMIT_REASON);
    let p = plan(&job, std::slice::from_ref(&r), &facts, &config, 20_000);
    assert!(p.launch.is_empty());
    assert_eq!(p.job_state, Some(JobState::Failed));
    job.spec.default_spec.retry_on_runtime_limit = Some(true);
    let p = plan(&job, &[r], &facts, &config, 20_000);
    assert_eq!(launches(&p), vec![(0, 1)]);
}

#[test]
fn consecutive_failures_back_off_before_the_next_launch() {
    let job = job("BATCH", 1, 5, JobGoal::Running);
    let config = EngineConfig::default();
    let facts = ClusterFacts::default();
    let mut runs = vec![run(0, 0, PodState::Failed), run(0, 1, PodState::Failed)];
    runs[1].completed_at = Some(100_000);
    let soon = plan(&job, &runs, &facts, &config, 100_100);
    assert!(soon.launch.is_empty(), "second failure waits");
    let wait = soon.requeue_after.unwrap();
    assert!(
        wait > Duration::from_millis(600) && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    let later = plan(&job, &runs, &facts, &config, 101_000);
    assert_eq!(launches(&later), vec![(0, 2)]);
}

#[test]
fn a_disabled_job_launches_nothing_and_leaves_live_runs_alone() {
    use PodState::*;
    let mut job = job("SERVICE", 3, 0, JobGoal::Running);
    job.spec.disabled = true;
    // Instance 0 runs, 1 ended (would be replaced), 2 never ran.
    let runs = vec![run(0, 0, Running), run(1, 0, Failed)];
    let config = EngineConfig::default();
    let disabled = plan(&job, &runs, &ClusterFacts::default(), &config, NOW);
    assert_eq!(launches(&disabled), vec![]);
    assert!(disabled.kill.is_empty());
    job.spec.disabled = false;
    let enabled = plan(&job, &runs, &ClusterFacts::default(), &config, NOW);
    assert_eq!(launches(&enabled), vec![(1, 1), (2, 0)]);
}

/// A service of `instances` whose pods have an enabled COMMAND liveness
/// check, every pod restarting from run 1 with batch size 1.
fn checked_restart(instances: u32) -> Job {
    use crate::model::job::PodControl;
    let mut job = job("SERVICE", instances, 0, JobGoal::Running);
    job.spec.default_spec.containers[0].liveness_check = Some(
        serde_json::from_value(serde_json::json!({
            "enabled": true, "type": "COMMAND",
            "command_check": {"command": "test -f ready"}
        }))
        .unwrap(),
    );
    job.restart_batch_size = 1;
    for i in 0..instances {
        job.pods.insert(
            i,
            PodControl {
                restart_from: 1,
                ..Default::default()
            },
        );
    }
    job
}

fn healthy(mut r: TestRun, health: Option<bool>) -> TestRun {
    r.healthy = health;
    r
}

fn killed_instances(plan: &Plan) -> Vec<u32> {
    plan.kill
        .iter()
        .map(|k| k.task_id.instance.instance)
        .collect()
}

#[test]
fn a_restart_waits_for_the_replacement_to_be_healthy_before_the_next_kill() {
    use PodState::*;
    let job = checked_restart(3);
    let (config, facts) = (EngineConfig::default(), ClusterFacts::default());
    let mut old0 = healthy(run(0, 0, Killed), Some(true));
    old0.kill_requested_at = Some(NOW);
    let old = |i| healthy(run(i, 0, Running), Some(true));
    // Instance 0's replacement runs, its check has not passed yet.
    for health in [None, Some(false)] {
        let runs = [
            old0.clone(),
            healthy(run(0, 1, Running), health),
            old(1),
            old(2),
        ];
        let p = plan(&job, &runs, &facts, &config, NOW);
        assert_eq!(
            killed_instances(&p),
            Vec::<u32>::new(),
            "replacement healthy {health:?}: instance 0 is not available yet"
        );
    }
    // Its check passed: the next instance goes.
    let runs = [
        old0,
        healthy(run(0, 1, Running), Some(true)),
        old(1),
        old(2),
    ];
    let p = plan(&job, &runs, &facts, &config, NOW);
    assert_eq!(killed_instances(&p), vec![1]);
}

#[test]
fn a_restart_of_a_pod_without_a_check_advances_once_its_replacement_runs() {
    use crate::model::job::PodControl;
    use PodState::*;
    let mut job = job("SERVICE", 2, 0, JobGoal::Running);
    job.restart_batch_size = 1;
    for i in 0..2 {
        job.pods.insert(
            i,
            PodControl {
                restart_from: 1,
                ..Default::default()
            },
        );
    }
    let (config, facts) = (EngineConfig::default(), ClusterFacts::default());
    let mut old0 = run(0, 0, Killed);
    old0.kill_requested_at = Some(NOW);
    let starting = [old0.clone(), run(0, 1, Starting), run(1, 0, Running)];
    assert!(plan(&job, &starting, &facts, &config, NOW).kill.is_empty());
    // No check: RUNNING is available, whatever health says (none).
    let running = [old0, run(0, 1, Running), run(1, 0, Running)];
    let p = plan(&job, &running, &facts, &config, NOW);
    assert_eq!(killed_instances(&p), vec![1]);
}

#[test]
fn a_restart_takes_unhealthy_old_runs_first() {
    use PodState::*;
    // Restarting is how users mend unhealthy pods: an old run that is not
    // available already goes first, and the healthy ones one by one after.
    let job = checked_restart(3);
    let (config, facts) = (EngineConfig::default(), ClusterFacts::default());
    let runs = [
        healthy(run(0, 0, Running), Some(true)),
        healthy(run(1, 0, Running), Some(false)),
        healthy(run(2, 0, Running), Some(true)),
    ];
    let p = plan(&job, &runs, &facts, &config, NOW);
    assert_eq!(
        killed_instances(&p),
        vec![1],
        "instance 1 goes first; it is down already, so the budget of 1 is used"
    );
    // Two that never get well: still one at a time, never stuck.
    let runs = [
        healthy(run(0, 0, Running), Some(true)),
        healthy(run(1, 0, Running), Some(false)),
        healthy(run(2, 0, Running), Some(false)),
    ];
    let p = plan(&job, &runs, &facts, &config, NOW);
    assert_eq!(killed_instances(&p), vec![1]);
}

#[test]
fn a_run_being_killed_for_a_restart_is_counted_down_once() {
    use PodState::*;
    let mut job = checked_restart(3);
    job.restart_batch_size = 2;
    let (config, facts) = (EngineConfig::default(), ClusterFacts::default());
    // 0-0 was killed and still runs (its health no longer known): one of
    // the two slots; 1-0 takes the other.
    let mut going = healthy(run(0, 0, Running), None);
    going.kill_requested_at = Some(NOW);
    let runs = [
        going,
        healthy(run(1, 0, Running), Some(true)),
        healthy(run(2, 0, Running), Some(true)),
    ];
    let p = plan(&job, &runs, &facts, &config, NOW);
    assert_eq!(killed_instances(&p), vec![1]);
}

#[test]
fn old_runs_not_available_go_no_more_than_the_batch_at_a_time() {
    use PodState::*;
    // Runs may serve before the scheduler has stored their health (the
    // update is on its way): were all the runs it sees as not available
    // killed at once, two of three could go.
    let job = checked_restart(3);
    let (config, facts) = (EngineConfig::default(), ClusterFacts::default());
    let runs = [
        healthy(run(0, 0, Running), Some(true)),
        healthy(run(1, 0, Running), None),
        healthy(run(2, 0, Running), None),
    ];
    let p = plan(&job, &runs, &facts, &config, NOW);
    assert_eq!(killed_instances(&p), vec![1]);
    let mut job = job;
    job.restart_batch_size = 2;
    let p = plan(&job, &runs, &facts, &config, NOW);
    assert_eq!(killed_instances(&p), vec![1, 2], "0 waits: 2 are down");
}

/// A service of 2 updated to a new command, instance 0 released.
fn updated(in_place: bool) -> Job {
    let mut job = job("SERVICE", 2, 0, JobGoal::Running);
    let mut next = job.spec.clone();
    next.default_spec.containers[0].command =
        serde_json::from_value(serde_json::json!({"value": "sleep 5"})).unwrap();
    let options = crate::model::workflow::UpdateOptions {
        batch_size: 1,
        in_place,
        ..Default::default()
    };
    let current = job.clone();
    let mut update = crate::model::workflow::start(
        1,
        options,
        &current.spec,
        1,
        |i| current.desired_pod(i),
        &next,
        2,
        0,
    );
    update.released = 1;
    job.workflows.start(update);
    job.spec = next;
    job.spec_version = 2;
    job
}

/// A restart issued while an update runs counts the pod the update has
/// released (being replaced, still reported RUNNING) as down: with batch
/// size 1 it takes nothing more down until that pod serves again.
#[test]
fn a_restart_during_an_update_counts_the_updates_released_pod_as_down() {
    use crate::model::job::PodControl;
    let mut job = updated(false);
    job.restart_batch_size = 1;
    for i in 0..2 {
        job.pods.insert(
            i,
            PodControl {
                restart_from: 1,
                ..Default::default()
            },
        );
    }
    let runs = [run(0, 0, PodState::Running), run(1, 0, PodState::Running)];
    let (config, facts) = (EngineConfig::default(), ClusterFacts::default());
    let p = plan(&job, &runs, &facts, &config, 1_000);
    let killed: Vec<_> = p.kill.iter().map(|k| k.task_id.to_string()).collect();
    assert_eq!(killed, ["job-0-0"], "the update's kill only: 0 is down");
    // Batch size 2 leaves room for one more.
    job.restart_batch_size = 2;
    let p = plan(&job, &runs, &facts, &config, 1_000);
    let killed: Vec<_> = p.kill.iter().map(|k| k.task_id.to_string()).collect();
    assert_eq!(killed, ["job-0-0", "job-1-0"]);
}

#[test]
fn a_released_pod_is_replaced_on_the_new_version_and_in_place_on_its_agent() {
    let mut old0 = run(0, 0, PodState::Running);
    old0.agent = Some(AgentId::new("a7"));
    let runs = [old0.clone(), run(1, 0, PodState::Running)];
    let config = EngineConfig::default();
    let p = plan(
        &updated(true),
        &runs,
        &ClusterFacts::default(),
        &config,
        1_000,
    );
    let killed: Vec<_> = p.kill.iter().map(|k| k.task_id.to_string()).collect();
    assert_eq!(killed, ["job-0-0"], "only the released pod");
    let mut ended = old0;
    ended.state = PodState::Killed;
    ended.kill_requested_at = Some(500);
    let runs = [ended, run(1, 0, PodState::Running)];
    let p = plan(
        &updated(true),
        &runs,
        &ClusterFacts::default(),
        &config,
        1_000,
    );
    assert_eq!(p.launch.len(), 1);
    assert_eq!(p.launch[0].task_id.to_string(), "job-0-1");
    assert_eq!(p.launch[0].spec_version, 2);
    assert_eq!(p.launch[0].in_place, Some(AgentId::new("a7")));
    let p = plan(
        &updated(false),
        &runs,
        &ClusterFacts::default(),
        &config,
        1_000,
    );
    assert_eq!(p.launch[0].in_place, None, "placed anew without in_place");
}
