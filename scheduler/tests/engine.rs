//! The engine over a real SQLite store, pumped by hand (no sockets, no
//! tokio): its decisions on API writes and status updates, and what they
//! leave in the store.

#![allow(clippy::unwrap_used)]

use drover_proto::v1::task_status::Reason;
use drover_proto::v1::TaskState;
use drover_scheduler::engine::{
    ApiRequest, Call, Engine, EngineConfig, EngineError, JobAmend, Reply, WorkflowAction,
};
use drover_scheduler::model::access::{Identity, Role};
use drover_scheduler::model::amend::{AmendError, JobAmendment};
use drover_scheduler::model::create_workflow::CreateWorkflow;
use drover_scheduler::model::ids::{AgentId, InstanceId, JobId, OfferId, TaskId};
use drover_scheduler::model::spec::JobSpec;
use drover_scheduler::model::state::{JobGoal, PodGoal, PodState};
use drover_scheduler::model::task_update::TaskUpdate;
use drover_scheduler::model::workflow::{UpdateOptions, WorkflowState};
use drover_scheduler::store::{PodEventRecord, Store, StoreRead};
use std::time::Duration;

mod support;

use support::engine::{kills, offer_of, update_on, Harness, WALL0};

/// The steps of these tests alone.
impl Harness {
    /// The master offers `cpus` on agent `agent`.
    fn offer(&mut self, id: &str, agent: &str, cpus: f64) {
        self.give(offer_of(id, agent, cpus));
    }
}

fn spec(kind: &str, instances: u32) -> JobSpec {
    serde_json::from_value(serde_json::json!({
        "type": kind, "name": "t", "instance_count": instances,
        "default_spec": {"containers": [{
            "resource": {"cpu_limit": 0.5, "mem_limit_mb": 32},
            "command": {"value": "sleep 100"}
        }]}
    }))
    .unwrap()
}

fn update(task: &str, state: TaskState, at: i64) -> TaskUpdate {
    TaskUpdate {
        message: Some("m".into()),
        ..update_on(task, "a1", state, at)
    }
}

/// A job with `instances` runs launched (LAUNCHING) on agent a1.
fn launched(h: &mut Harness, kind: &str, instances: u32) -> JobId {
    let job = h.create("j", spec(kind, instances));
    h.subscribe();
    h.offer("o1", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.runs(&job).len(), instances as usize);
    h.take_calls();
    job
}

fn person(name: &str, role: Role, teams: &[&str]) -> Identity {
    Identity {
        name: name.into(),
        role,
        teams: teams.iter().map(|t| (*t).to_owned()).collect(),
        anonymous: false,
    }
}

/// The engine decides who may change which job: a refusal changes
/// nothing, a job created without an owner is its creator's, and every
/// stored change and update records who made it.
#[test]
fn writes_are_authorised_by_role_and_owner_and_record_who_made_them() {
    let mut h = Harness::new();
    let alice = person("alice", Role::User, &["payments"]);
    let bob = person("bob", Role::User, &[]);
    let viewer = person("vic", Role::Viewer, &[]);
    let admin = person("root-admin", Role::Admin, &[]);
    let mut team_spec = spec("SERVICE", 1);
    team_spec.owning_team = "payments".into();
    let mine = JobId::parse("mine").unwrap();
    let create = |id: &JobId, spec: JobSpec| ApiRequest::CreateJob {
        job_id: id.clone(),
        spec: Box::new(spec),
        create: None,
    };
    // A viewer creates nothing; a user creates only for itself or its team.
    let denied = h
        .api_as(&viewer, create(&mine, spec("SERVICE", 1)))
        .unwrap_err();
    assert!(
        matches!(denied, EngineError::PermissionDenied(_)),
        "{denied}"
    );
    let mut bobs = spec("SERVICE", 1);
    bobs.owner = "bob".into();
    let denied = h.api_as(&alice, create(&mine, bobs)).unwrap_err();
    assert_eq!(
        denied.to_string(),
        "alice (user) may not create job mine: the job belongs to owner 'bob', team '', \
         neither of which is 'alice' or one of its teams (payments)"
    );
    assert!(
        h.store.job(&mine).unwrap().is_none(),
        "a refusal stores nothing"
    );
    // Without an owner, the job is its creator's.
    h.api_as(&alice, create(&mine, spec("SERVICE", 1))).unwrap();
    let stored = h.store.job(&mine).unwrap().unwrap();
    assert_eq!(
        (stored.spec.owner.as_str(), stored.updated_by.as_str()),
        ("alice", "alice")
    );
    let team = JobId::parse("team").unwrap();
    h.api_as(&alice, create(&team, team_spec)).unwrap();

    let stop = |id: &JobId| ApiRequest::SetGoal {
        job_id: id.clone(),
        goal: JobGoal::Stopped,
        expected_version: None,
    };
    for job in [&mine, &team] {
        let denied = h.api_as(&bob, stop(job)).unwrap_err();
        assert!(
            matches!(denied, EngineError::PermissionDenied(_)),
            "{denied}"
        );
        assert!(matches!(
            h.api_as(&viewer, stop(job)),
            Err(EngineError::PermissionDenied(_))
        ));
    }
    assert_eq!(h.store.job(&mine).unwrap().unwrap().goal, JobGoal::Running);
    // Not found before not allowed: a missing job is NOT_FOUND for anyone.
    let ghost = JobId::parse("ghost").unwrap();
    assert!(matches!(
        h.api_as(&bob, stop(&ghost)),
        Err(EngineError::JobNotFound(_))
    ));
    // The owner, and an admin, may; each change records who made it.
    h.api_as(&alice, stop(&team)).unwrap();
    assert_eq!(h.store.job(&team).unwrap().unwrap().updated_by, "alice");
    h.api_as(&admin, stop(&mine)).unwrap();
    assert_eq!(
        h.store.job(&mine).unwrap().unwrap().updated_by,
        "root-admin"
    );

    // An update records who started it; giving the job away is refused.
    let mut next = h.store.job(&team).unwrap().unwrap().spec;
    if let Some(command) = next.default_spec.containers[0].command.as_mut() {
        command.value = Some("sleep 200".into());
    }
    let update = |spec: JobSpec| ApiRequest::UpdateJob {
        job_id: team.clone(),
        spec: Box::new(spec),
        options: UpdateOptions::default(),
        expected_version: None,
    };
    let mut away = next.clone();
    away.owner = "bob".into();
    away.owning_team = "search".into();
    assert!(matches!(
        h.api_as(&alice, update(away)),
        Err(EngineError::PermissionDenied(_))
    ));
    h.api_as(&alice, update(next)).unwrap();
    let updated = h.store.job(&team).unwrap().unwrap();
    let workflow = updated.workflows.current.as_deref().unwrap();
    assert_eq!(workflow.started_by, "alice");
    // Anonymous callers (admins) change anything and are recorded as nobody.
    h.api_as(&Identity::anonymous(), stop(&team)).unwrap();
    assert_eq!(h.store.job(&team).unwrap().unwrap().updated_by, "");
}

#[test]
fn writes_on_unknown_jobs_stale_versions_and_taken_ids_are_refused_and_change_nothing() {
    let mut h = Harness::new();
    let job = h.create("j", spec("BATCH", 2));
    assert!(matches!(
        h.api(ApiRequest::CreateJob {
            job_id: job.clone(),
            spec: Box::new(spec("BATCH", 1)),
            create: None,
        }),
        Err(EngineError::JobExists(_))
    ));
    let revision = h.store.revision().unwrap();
    let stopped = h
        .api(ApiRequest::SetGoal {
            job_id: job.clone(),
            goal: JobGoal::Stopped,
            expected_version: Some(1),
        })
        .unwrap();
    let Reply::Job(stopped) = stopped else {
        panic!("a job")
    };
    assert_eq!(stopped.version, 2);
    assert!(stopped.revision > revision);
    let stale = h.api(ApiRequest::SetGoal {
        job_id: job.clone(),
        goal: JobGoal::Running,
        expected_version: Some(1),
    });
    assert!(matches!(
        stale,
        Err(EngineError::VersionMismatch(ref m)) if m.current == 2 && m.expected == 1
    ));
    assert_eq!(h.store.job(&job).unwrap().unwrap().goal, JobGoal::Stopped);
    assert!(matches!(
        h.api(ApiRequest::SetPodGoal {
            pod: InstanceId::new(job.clone(), 9),
            goal: PodGoal::Killed,
        }),
        Err(EngineError::PodNotFound(_))
    ));
    assert!(matches!(
        h.api(ApiRequest::DeleteJob {
            job_id: JobId::parse("nope").unwrap(),
            expected_version: None,
            force: false,
        }),
        Err(EngineError::JobNotFound(_))
    ));
}

#[test]
fn pod_goals_and_restarts_are_stored_as_the_engine_decides_them() {
    let mut h = Harness::new();
    let job = launched(&mut h, "SERVICE", 2);
    h.updates(vec![
        update("j-0-0", TaskState::TaskRunning, 10),
        update("j-1-0", TaskState::TaskRunning, 10),
    ]);
    let Reply::Job(stopped) = h
        .api(ApiRequest::SetPodGoal {
            pod: InstanceId::new(job.clone(), 1),
            goal: PodGoal::Killed,
        })
        .unwrap()
    else {
        panic!("a job")
    };
    assert_eq!(stopped.pods[&1].goal, PodGoal::Killed);
    assert_eq!(stopped.version, 1, "a pod stop leaves the job's version");
    let Reply::Job(restarted) = h
        .api(ApiRequest::RestartPods {
            job_id: job.clone(),
            instances: vec![0, 1],
            batch_size: 2,
            expected_version: Some(1),
            bump: true,
        })
        .unwrap()
    else {
        panic!("a job")
    };
    assert_eq!(restarted.version, 2);
    assert_eq!(restarted.restart_batch_size, 2);
    assert_eq!(
        restarted.pods[&0].restart_from, 1,
        "run 0 exists: replace it"
    );
    assert_eq!(
        restarted.pods[&1].goal,
        PodGoal::Running,
        "a restart starts a stopped pod"
    );
    let stored = h.store.job(&job).unwrap().unwrap();
    assert_eq!(stored.pods, restarted.pods);
    assert_eq!(stored.version, 2);
    assert!(matches!(
        h.api(ApiRequest::RestartPods {
            job_id: job.clone(),
            instances: vec![0],
            batch_size: 0,
            expected_version: Some(1),
            bump: true,
        }),
        Err(EngineError::VersionMismatch(_))
    ));
    // The pod stop killed run 1-0; the restart kills 0-0 (the batch of 2
    // counts 1-0, down already) once planned.
    h.advance(Duration::from_millis(1));
    let mut kills: Vec<_> = h
        .take_calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Kill { task_id, .. } => Some(task_id),
            _ => None,
        })
        .collect();
    kills.sort();
    assert_eq!(kills, ["j-0-0", "j-1-0"]);
    assert!(h
        .runs(&job)
        .iter()
        .all(|r| r.run.kill_requested_at.is_some()));
}

#[test]
fn an_old_runs_events_are_deleted_and_a_refresh_reconciles_the_pods_live_run() {
    let mut h = Harness::new();
    let job = launched(&mut h, "SERVICE", 1);
    h.updates(vec![update("j-0-0", TaskState::TaskRunning, 10)]);
    // A restart gives the pod run 1; run 0 ends KILLED.
    h.api(ApiRequest::RestartPods {
        job_id: job.clone(),
        instances: vec![0],
        batch_size: 0,
        expected_version: None,
        bump: false,
    })
    .unwrap();
    h.advance(Duration::from_millis(1));
    h.updates(vec![update("j-0-0", TaskState::TaskKilled, 20)]);
    h.offer("o2", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.runs(&job).len(), 2, "{:?}", h.runs(&job));
    let run = |n: u32| TaskId::new(InstanceId::new(job.clone(), 0), n);
    let of = |h: &Harness, n: u32| {
        h.events(&job, 0)
            .into_iter()
            .filter(|e| e.task_id.run == n)
            .count()
    };
    assert!(of(&h, 0) >= 3, "launch, running, killed");
    let latest = of(&h, 1);
    assert!(latest >= 1);
    // The latest run's history is still being written: refused.
    assert!(matches!(
        h.api(ApiRequest::DeletePodEvents { task: run(1) }),
        Err(EngineError::LatestRun(_))
    ));
    assert!(matches!(
        h.api(ApiRequest::DeletePodEvents { task: run(7) }),
        Err(EngineError::RunNotFound(_))
    ));
    h.api(ApiRequest::DeletePodEvents { task: run(0) }).unwrap();
    assert_eq!(of(&h, 0), 0, "every event of run 0, its launch's too");
    assert_eq!(of(&h, 1), latest, "run 1's are kept");
    assert_eq!(h.runs(&job).len(), 2, "the runs stay");

    // RefreshPod: the master is asked for the live run's state.
    h.take_calls();
    h.api(ApiRequest::RefreshPod {
        pod: InstanceId::new(job.clone(), 0),
    })
    .unwrap();
    let asked: Vec<_> = h
        .take_calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Reconcile { tasks } => Some(tasks),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "{asked:?}");
    assert_eq!(asked[0][0].0, "j-0-1");
    assert!(matches!(
        h.api(ApiRequest::RefreshPod {
            pod: InstanceId::new(job.clone(), 5),
        }),
        Err(EngineError::PodNotFound(_))
    ));
}

#[test]
fn a_running_job_is_deleted_only_with_force_and_forgotten_once_its_runs_end() {
    let mut h = Harness::new();
    let job = launched(&mut h, "SERVICE", 1);
    assert!(matches!(
        h.api(ApiRequest::DeleteJob {
            job_id: job.clone(),
            expected_version: None,
            force: false,
        }),
        Err(EngineError::StillRunning(_))
    ));
    assert!(matches!(
        h.api(ApiRequest::DeleteJob {
            job_id: job.clone(),
            expected_version: None,
            force: true,
        }),
        Ok(Reply::Deleted)
    ));
    assert_eq!(h.store.job(&job).unwrap().unwrap().goal, JobGoal::Deleted);
    h.advance(Duration::from_millis(1));
    assert!(h
        .take_calls()
        .iter()
        .any(|c| matches!(c, Call::Kill { task_id, .. } if task_id == "j-0-0")));
    h.updates(vec![update("j-0-0", TaskState::TaskKilled, 50)]);
    h.advance(Duration::from_millis(1));
    assert!(h.store.job(&job).unwrap().is_none(), "forgotten");
    assert!(h.engine.registry().get(&job).is_none());
}

#[test]
fn statuses_are_appended_to_history_terminal_states_are_final_and_strays_killed() {
    let mut h = Harness::new();
    let job = launched(&mut h, "BATCH", 1);
    h.updates(vec![
        update("j-0-0", TaskState::TaskRunning, 10),
        update("j-0-0", TaskState::TaskFinished, 10),
        update("j-0-0", TaskState::TaskRunning, 12),
        update("j-0-7", TaskState::TaskRunning, 12),
        update("stranger", TaskState::TaskRunning, 12),
    ]);
    let run = &h.runs(&job)[0];
    assert_eq!(run.run.state, PodState::Succeeded);
    assert_eq!(run.run.started_at, Some(WALL0 + 10));
    assert_eq!(run.run.completed_at, Some(WALL0 + 10));
    let states: Vec<_> = h.events(&job, 0).iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        [
            PodState::Launching,
            PodState::Running,
            PodState::Succeeded,
            PodState::Running
        ]
    );
    let calls = h.take_calls();
    let killed: Vec<_> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Kill { task_id, .. } => Some(task_id.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(killed, ["j-0-0", "j-0-7", "stranger"]);
    let acks = calls
        .iter()
        .filter(|c| matches!(c, Call::Acknowledge(_)))
        .count();
    assert_eq!(acks, 5, "every update is acknowledged once stored");
}

#[test]
fn a_resent_update_or_reconciliation_answer_is_not_stored_again() {
    let mut h = Harness::new();
    let job = launched(&mut h, "SERVICE", 1);
    let running = update("j-0-0", TaskState::TaskRunning, 10);
    let reconciled = TaskUpdate {
        reason: Some(Reason::Reconciliation),
        message: Some("Reconciliation: latest task status".into()),
        data: None,
        uuid: None,
        ..running.clone()
    };
    let healthy = TaskUpdate {
        healthy: Some(true),
        ..running.clone()
    };
    h.updates(vec![
        running.clone(),
        running,
        reconciled,
        healthy.clone(),
        healthy,
    ]);
    assert_eq!(
        h.events(&job, 0).len(),
        3,
        "intent, RUNNING, RUNNING+healthy"
    );
    let run = &h.runs(&job)[0];
    assert_eq!(
        run.run.reason, None,
        "a reconciliation answer changes nothing"
    );
    assert_eq!(run.run.healthy, Some(true));
    let acks = h
        .take_calls()
        .iter()
        .filter(|c| matches!(c, Call::Acknowledge(_)))
        .count();
    assert_eq!(
        acks, 4,
        "the resend too; the reconciliation answer has no uuid"
    );
}

/// A run's updates stored in one batch leave the store as they would one
/// batch each: the batch compares each update with what the one before
/// left, and writes each run once at the end.
#[test]
fn a_batch_of_updates_stores_what_one_at_a_time_would() {
    let with = |task: &str, state, at, healthy: Option<bool>, reason: Option<Reason>| TaskUpdate {
        healthy,
        reason,
        message: None,
        ..update(task, state, at)
    };
    let updates = vec![
        with("j-0-0", TaskState::TaskStarting, 10, None, None),
        with("j-1-0", TaskState::TaskStarting, 11, None, None),
        with("j-0-0", TaskState::TaskRunning, 20, None, None),
        with("j-0-0", TaskState::TaskRunning, 21, Some(false), None),
        // A resend of the update before: nothing to write.
        with("j-0-0", TaskState::TaskRunning, 21, Some(false), None),
        with("j-1-0", TaskState::TaskRunning, 22, Some(true), None),
        with(
            "j-0-0",
            TaskState::TaskRunning,
            30,
            None,
            Some(Reason::TaskHealthCheckStatusUpdated),
        ),
        with(
            "j-1-0",
            TaskState::TaskFailed,
            40,
            None,
            Some(Reason::CommandExecutorFailed),
        ),
        // After the terminal state: an event, but the run stays failed.
        with("j-1-0", TaskState::TaskRunning, 50, None, None),
    ];
    let stored = |batches: Vec<Vec<TaskUpdate>>| {
        let mut h = Harness::new();
        let job = launched(&mut h, "BATCH", 2);
        for batch in batches {
            h.updates(batch);
        }
        let runs: Vec<_> = h.runs(&job);
        let events: Vec<_> = (0..2)
            .flat_map(|i| h.events(&job, i))
            .map(|e| PodEventRecord { revision: 0, ..e })
            .collect();
        let registry: Vec<_> = (0..2)
            .map(|i| h.engine.registry().get(&job).unwrap().history(i).to_vec())
            .collect();
        (runs, events, registry)
    };
    let one_batch = stored(vec![updates.clone()]);
    let one_each = stored(updates.iter().map(|u| vec![u.clone()]).collect());
    assert_eq!(one_batch, one_each);
    let (runs, events, registry) = one_batch;
    assert_eq!(runs[0].run.state, PodState::Running);
    assert_eq!(runs[0].run.started_at, Some(WALL0 + 20));
    assert_eq!(runs[0].run.healthy, Some(false));
    assert_eq!(runs[0].run.updated_at, WALL0 + 30);
    assert_eq!(runs[1].run.state, PodState::Failed);
    assert_eq!(runs[1].run.completed_at, Some(WALL0 + 40));
    assert_eq!(events.len(), 2 + 8);
    assert_eq!(
        registry,
        vec![vec![runs[0].run.clone()], vec![runs[1].run.clone()]],
        "the engine holds what the store holds"
    );
}

#[test]
fn an_engine_recovered_from_the_store_holds_what_the_first_one_did() {
    let mut h = Harness::new();
    let job = launched(&mut h, "SERVICE", 3);
    h.updates(vec![
        update("j-0-0", TaskState::TaskRunning, 10),
        update("j-1-0", TaskState::TaskFailed, 11),
    ]);
    h.advance(Duration::from_secs(2));
    let before: Vec<_> = (0..3)
        .map(|i| h.engine.registry().get(&job).unwrap().history(i).to_vec())
        .collect();
    let recovered = Engine::recover(h.store.load().unwrap(), EngineConfig::default(), h.now());
    let after: Vec<_> = (0..3)
        .map(|i| recovered.registry().get(&job).unwrap().history(i).to_vec())
        .collect();
    assert_eq!(before, after);
    assert_eq!(recovered.framework_id(), Some("fw"));
    let _ = TaskId::new(InstanceId::new(job, 0), 0);
}

#[test]
fn a_batch_run_given_up_on_that_finishes_after_all_leaves_its_instance_done() {
    let mut h = Harness::new();
    let job = launched(&mut h, "BATCH", 1);
    h.updates(vec![update("j-0-0", TaskState::TaskRunning, 10)]);
    // Its agent goes away: the run is given up on and replaced elsewhere.
    let actions = h.engine.on_agent_lost(AgentId::new("a1"), h.now());
    h.carry_out(actions);
    // A batch run may still finish: it is given up only after the
    // unreachable policy's expunge_after (an hour by default).
    h.advance(Duration::from_secs(3600));
    h.offer("o2", "a2", 8.0);
    h.advance(Duration::from_millis(20));
    let states: Vec<_> = h.runs(&job).iter().map(|r| r.run.state).collect();
    assert_eq!(states, [PodState::Lost, PodState::Launching]);
    // The agent comes back: the first run had finished.
    h.updates(vec![update("j-0-0", TaskState::TaskFinished, 30)]);
    assert_eq!(h.runs(&job)[0].run.state, PodState::Succeeded);
    // However the replacement ends, the instance is not run again.
    let mut failed = update("j-0-1", TaskState::TaskFailed, 40);
    failed.agent_id = Some(AgentId::new("a2"));
    h.updates(vec![failed]);
    h.offer("o3", "a2", 8.0);
    h.advance(Duration::from_secs(5));
    assert_eq!(
        h.runs(&job).len(),
        2,
        "no third run: the instance succeeded"
    );
    let Some(entry) = h.engine.registry().get(&job) else {
        panic!("the job is known")
    };
    let state = drover_scheduler::model::outcome::job_state_of(
        &entry.job,
        entry
            .instances
            .iter()
            .map(drover_scheduler::model::run::RunHistory::as_slice),
    );
    assert_eq!(state, drover_scheduler::model::state::JobState::Succeeded);
}

#[test]
fn a_given_up_run_reported_finished_before_its_replacement_is_placed_is_not_replaced() {
    let mut h = Harness::new();
    let job = launched(&mut h, "BATCH", 1);
    h.updates(vec![update("j-0-0", TaskState::TaskRunning, 10)]);
    let actions = h.engine.on_agent_lost(AgentId::new("a1"), h.now());
    h.carry_out(actions);
    // A batch run may still finish: it is given up only after the
    // unreachable policy's expunge_after (an hour by default).
    h.advance(Duration::from_secs(3600));
    // An offer comes for the replacement and, before its round, the agent
    // comes back with the first run finished.
    h.offer("o2", "a2", 8.0);
    let actions = h
        .engine
        .on_updates(vec![update("j-0-0", TaskState::TaskFinished, 30)], h.now());
    h.carry_out(actions);
    h.advance(Duration::from_secs(5));
    let states: Vec<_> = h.runs(&job).iter().map(|r| r.run.state).collect();
    assert_eq!(states, [PodState::Succeeded], "no replacement launched");
    assert!(
        !h.take_calls()
            .iter()
            .any(|call| matches!(call, Call::Accept { .. })),
        "no offer accepted"
    );
}

/// A second copy of an offer id while the first is held (a broken or
/// replaying master) is ignored: the first copy's resources are used, once,
/// and the id is named once in the ACCEPT. A malformed copy of a held id
/// is not declined (that would decline the first); other malformed offers
/// are declined at once.
#[test]
fn a_second_copy_of_a_held_offer_is_ignored_and_malformed_offers_declined() {
    let mut h = Harness::new();
    h.subscribe();
    h.take_calls();
    h.offer("o1", "a1", 1.0);
    h.offer("o1", "a1", 8.0);
    let actions = h
        .engine
        .on_invalid_offers(vec![OfferId("o1".into()), OfferId("bad".into())], h.now());
    h.carry_out(actions);
    assert_eq!(
        h.take_calls(),
        vec![Call::Decline {
            offer_ids: vec![OfferId("bad".into())],
            refuse: EngineConfig::default().refuse,
        }]
    );
    // Three runs of 0.5 cpus: two fit the first copy's one cpu.
    let job = h.create("j", spec("BATCH", 3));
    h.advance(Duration::from_millis(20));
    let accepts: Vec<_> = h
        .take_calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Accept {
                offer_ids, tasks, ..
            } => Some((offer_ids, tasks.len())),
            _ => None,
        })
        .collect();
    assert_eq!(accepts, vec![(vec![OfferId("o1".into())], 2)]);
    assert_eq!(h.runs(&job).len(), 2);
}

#[test]
fn a_create_workflow_starts_paused_then_launches_a_batch_at_a_time_and_survives_recovery() {
    let mut h = Harness::new();
    let job = JobId::parse("j").unwrap();
    h.api(ApiRequest::CreateJob {
        job_id: job.clone(),
        spec: Box::new(spec("SERVICE", 5)),
        create: Some(CreateWorkflow {
            batch_size: 2,
            paused: true,
            ..CreateWorkflow::default()
        }),
    })
    .unwrap();
    h.subscribe();
    h.offer("o1", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    assert!(h.runs(&job).is_empty(), "nothing launches while paused");
    let recovered = Engine::recover(h.store.load().unwrap(), EngineConfig::default(), h.now());
    assert_eq!(
        recovered.registry().get(&job).unwrap().job.create,
        h.engine.registry().get(&job).unwrap().job.create,
        "the workflow is stored"
    );
    let resumed = h
        .api(ApiRequest::SteerWorkflow {
            job_id: job.clone(),
            action: WorkflowAction::Resume,
            expected_version: Some(1),
        })
        .unwrap();
    let Reply::Job(resumed) = resumed else {
        panic!("a job")
    };
    assert_eq!(resumed.version, 2);
    h.offer("o2", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.runs(&job).len(), 2, "a batch of 2");
    h.updates(vec![update("j-0-0", TaskState::TaskRunning, 10)]);
    // A live update is planned once its burst settles.
    h.advance(Duration::from_secs(2));
    h.offer("o3", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.runs(&job).len(), 3, "one created, so one more launches");
    // Pausing a workflow needs the current version; aborting an ended one
    // is refused.
    assert!(matches!(
        h.api(ApiRequest::SteerWorkflow {
            job_id: job.clone(),
            action: WorkflowAction::Pause,
            expected_version: Some(1),
        }),
        Err(EngineError::VersionMismatch(_))
    ));
    let other = h.create("k", spec("SERVICE", 1));
    assert!(matches!(
        h.api(ApiRequest::SteerWorkflow {
            job_id: other,
            action: WorkflowAction::Abort,
            expected_version: None,
        }),
        Err(EngineError::NoActiveWorkflow(..))
    ));
}

/// Titus' MoveTask as the engine is asked it: the target grows by one, the
/// source stops `instance` (KILLED: not replaced), each at the version
/// given.
fn move_task(
    h: &mut Harness,
    source: (&JobId, u64),
    target: (&JobId, u64),
    instance: u32,
) -> Result<Reply, EngineError> {
    let count = h.store.job(target.0).unwrap().unwrap().spec.instance_count;
    let grow = JobAmendment {
        instance_count: Some(count + 1),
        ..JobAmendment::default()
    };
    let stop = JobAmendment {
        pod_goals: vec![(instance, PodGoal::Killed)],
        ..JobAmendment::default()
    };
    h.api(ApiRequest::AmendJobs {
        amends: vec![
            JobAmend {
                job_id: target.0.clone(),
                expected_version: Some(target.1),
                amend: Box::new(grow),
            },
            JobAmend {
                job_id: source.0.clone(),
                expected_version: Some(source.1),
                amend: Box::new(stop),
            },
        ],
    })
}

#[test]
fn a_move_stores_both_jobs_in_one_change() {
    let mut h = Harness::new();
    let source = h.create("src", spec("SERVICE", 2));
    let target = h.create("dst", spec("SERVICE", 1));
    let revision = h.store.revision().unwrap();
    let Reply::Job(first) = move_task(&mut h, (&source, 1), (&target, 1), 1).unwrap() else {
        panic!("a job")
    };
    assert_eq!(first.job_id, target, "the reply is the first job named");
    let after = h.store.revision().unwrap();
    let grown = h.store.job(&target).unwrap().unwrap();
    let shrunk = h.store.job(&source).unwrap().unwrap();
    assert_eq!(grown.version, 2);
    assert_eq!(grown.spec.instance_count, 2, "the target grew");
    assert_eq!(shrunk.version, 2);
    assert_eq!(
        shrunk.pod_goal(1),
        PodGoal::Killed,
        "the source's pod stops"
    );
    assert_eq!(shrunk.pod_goal(0), PodGoal::Running);
    // One change: both jobs at the revision of its one commit.
    assert!(grown.revision > revision && grown.revision <= after);
    assert_eq!(shrunk.revision, grown.revision, "one commit for both jobs");
    // Each job named once.
    let twice = h.api(ApiRequest::AmendJobs {
        amends: vec![
            JobAmend {
                job_id: target.clone(),
                expected_version: None,
                amend: Box::default(),
            };
            2
        ],
    });
    assert!(matches!(twice, Err(EngineError::JobTwice(ref j)) if *j == target));
    assert!(matches!(
        h.api(ApiRequest::AmendJobs { amends: vec![] }),
        Err(EngineError::NoAmendments)
    ));
    assert_eq!(h.store.job(&target).unwrap().unwrap().version, 2);
}

#[test]
fn a_move_whose_source_part_is_refused_stores_nothing_of_the_target() {
    let mut h = Harness::new();
    let source = h.create("src", spec("SERVICE", 2));
    let target = h.create("dst", spec("SERVICE", 1));
    // A stale version for the source: the whole move is refused.
    let refused = move_task(&mut h, (&source, 7), (&target, 1), 0);
    assert!(matches!(
        refused,
        Err(EngineError::VersionMismatch(ref m)) if m.current == 1 && m.expected == 7
    ));
    let untouched = |h: &Harness| {
        let stored = h.store.job(&target).unwrap().unwrap();
        assert_eq!(stored.version, 1, "the target's version is unchanged");
        assert_eq!(stored.spec.instance_count, 1, "the target did not grow");
    };
    untouched(&h);
    // An instance the source lacks: refused too.
    let refused = move_task(&mut h, (&source, 1), (&target, 1), 9);
    assert!(matches!(
        refused,
        Err(EngineError::Amend(ref j, AmendError::NoInstance(9))) if *j == source
    ));
    untouched(&h);
    let stored = h.store.job(&source).unwrap().unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.pod_goal(0), PodGoal::Running);
}

fn killed_tasks(calls: &[Call]) -> Vec<String> {
    let mut tasks = kills(calls);
    tasks.sort();
    tasks.dedup();
    tasks
}

fn with_command(mut spec: JobSpec, command: &str) -> JobSpec {
    spec.default_spec.containers[0].command =
        Some(serde_json::from_value(serde_json::json!({ "value": command })).unwrap());
    spec
}

/// Reports `tasks` RUNNING (then lets the burst settle and replan).
fn running(h: &mut Harness, tasks: &[&str]) {
    h.updates(
        tasks
            .iter()
            .map(|t| update(t, TaskState::TaskRunning, h.clock.as_millis() as i64))
            .collect(),
    );
    h.advance(Duration::from_secs(2));
}

fn spec_versions(h: &Harness, job: &JobId) -> Vec<(String, u64)> {
    h.runs(job)
        .iter()
        .map(|r| (r.task_id.to_string(), r.run.spec_version))
        .collect()
}

fn workflow_state(h: &Harness, job: &JobId) -> WorkflowState {
    let entry = h.engine.registry().get(job).unwrap();
    entry.job.workflows.current.as_ref().unwrap().state()
}

#[test]
fn an_update_moves_pods_a_window_at_a_time_and_survives_recovery() {
    let mut h = Harness::new();
    let job = launched(&mut h, "SERVICE", 4);
    running(&mut h, &["j-0-0", "j-1-0", "j-2-0", "j-3-0"]);
    h.take_calls();
    let reply = h
        .api(ApiRequest::UpdateJob {
            job_id: job.clone(),
            spec: Box::new(with_command(spec("SERVICE", 4), "sleep 200")),
            options: UpdateOptions {
                batch_size: 2,
                ..UpdateOptions::default()
            },
            expected_version: Some(1),
        })
        .unwrap();
    let Reply::Job(updated) = reply else {
        panic!("a job")
    };
    assert_eq!((updated.version, updated.spec_version), (2, 2));
    h.advance(Duration::from_millis(10));
    assert_eq!(
        killed_tasks(&h.take_calls()),
        ["j-0-0", "j-1-0"],
        "a window of 2"
    );
    // A scheduler restarted now holds the same update, released as stored.
    let recovered = Engine::recover(h.store.load().unwrap(), EngineConfig::default(), h.now());
    assert_eq!(
        recovered.registry().get(&job).unwrap().job,
        h.engine.registry().get(&job).unwrap().job
    );
    h.updates(vec![
        update("j-0-0", TaskState::TaskKilled, 3_000),
        update("j-1-0", TaskState::TaskKilled, 3_000),
    ]);
    h.offer("o2", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    let versions = spec_versions(&h, &job);
    assert!(versions.contains(&("j-0-1".into(), 2)) && versions.contains(&("j-1-1".into(), 2)));
    assert!(
        killed_tasks(&h.take_calls()).is_empty(),
        "nothing more until the window's pods are up"
    );
    running(&mut h, &["j-0-1", "j-1-1"]);
    assert_eq!(killed_tasks(&h.take_calls()), ["j-2-0", "j-3-0"]);
    h.updates(vec![
        update("j-2-0", TaskState::TaskKilled, 6_000),
        update("j-3-0", TaskState::TaskKilled, 6_000),
    ]);
    h.offer("o3", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    running(&mut h, &["j-2-1", "j-3-1"]);
    assert_eq!(workflow_state(&h, &job), WorkflowState::Succeeded);
    let story: Vec<WorkflowState> = h
        .store
        .workflow_events(&job, 1, None)
        .unwrap()
        .iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        story,
        [WorkflowState::RollingForward, WorkflowState::Succeeded]
    );
    let pod0: Vec<WorkflowState> = h
        .store
        .workflow_events(&job, 1, Some(0))
        .unwrap()
        .iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        pod0,
        [WorkflowState::RollingForward, WorkflowState::Succeeded]
    );
}

#[test]
fn an_update_leaves_unchanged_pods_running_and_a_scale_down_stops_the_highest() {
    let mut h = Harness::new();
    let job = launched(&mut h, "SERVICE", 3);
    running(&mut h, &["j-0-0", "j-1-0", "j-2-0"]);
    h.take_calls();
    let mut next = spec("SERVICE", 3);
    next.instance_spec.insert(
        1,
        with_command(spec("SERVICE", 1), "sleep 300").default_spec,
    );
    h.api(ApiRequest::UpdateJob {
        job_id: job.clone(),
        spec: Box::new(next),
        options: UpdateOptions::default(),
        expected_version: None,
    })
    .unwrap();
    h.advance(Duration::from_millis(10));
    assert_eq!(
        killed_tasks(&h.take_calls()),
        ["j-1-0"],
        "only the changed pod"
    );
    let versions = spec_versions(&h, &job);
    assert!(
        versions.contains(&("j-0-0".into(), 2)) && versions.contains(&("j-2-0".into(), 2)),
        "unchanged pods are on the new version without a restart: {versions:?}"
    );
    h.api(ApiRequest::AmendJob {
        job_id: job.clone(),
        expected_version: None,
        amend: Box::new(JobAmendment {
            instance_count: Some(1),
            ..JobAmendment::default()
        }),
    })
    .unwrap();
    h.advance(Duration::from_millis(10));
    // j-1-0's kill went out for the update moments ago and is not resent.
    assert_eq!(killed_tasks(&h.take_calls()), ["j-2-0"]);
    let entry = h.engine.registry().get(&job).unwrap();
    assert_eq!(entry.counts().instances(), 1, "the job counts one instance");
}

#[test]
fn a_failing_update_rolls_back_to_the_old_version() {
    let mut h = Harness::new();
    let job = launched(&mut h, "SERVICE", 2);
    running(&mut h, &["j-0-0", "j-1-0"]);
    h.take_calls();
    h.api(ApiRequest::UpdateJob {
        job_id: job.clone(),
        spec: Box::new(with_command(spec("SERVICE", 2), "false")),
        options: UpdateOptions {
            batch_size: 1,
            max_instance_retries: 1,
            max_tolerable_instance_failures: 1,
            rollback_on_failure: true,
            ..UpdateOptions::default()
        },
        expected_version: None,
    })
    .unwrap();
    h.advance(Duration::from_millis(10));
    assert_eq!(killed_tasks(&h.take_calls()), ["j-0-0"]);
    h.updates(vec![update("j-0-0", TaskState::TaskKilled, 3_000)]);
    for (run, at) in [(1, 4_000), (2, 70_000)] {
        h.offer(&format!("o{run}"), "a1", 8.0);
        h.advance(Duration::from_millis(20));
        h.updates(vec![update(
            &format!("j-0-{run}"),
            TaskState::TaskFailed,
            at,
        )]);
        // Past the retry backoff.
        h.advance(Duration::from_secs(60));
    }
    assert_eq!(workflow_state(&h, &job), WorkflowState::RollingBackward);
    h.offer("o9", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    let latest = h
        .runs(&job)
        .into_iter()
        .rfind(|r| r.task_id.instance.instance == 0)
        .unwrap();
    assert_eq!(latest.run.spec_version, 1, "relaunched on the old spec");
    let name = latest.task_id.to_string();
    running(&mut h, &[&name]);
    assert_eq!(workflow_state(&h, &job), WorkflowState::RolledBack);
    let entry = h.engine.registry().get(&job).unwrap();
    assert_eq!(entry.job.spec_version, 1);
    assert!(entry.job.version > 2, "a rollback is a new entity version");
}

#[test]
fn a_restart_waiting_on_health_kills_the_next_pod_once_the_health_update_settles() {
    let mut h = Harness::new();
    let mut checked = spec("SERVICE", 2);
    checked.default_spec.containers[0].liveness_check = Some(
        serde_json::from_value(serde_json::json!({
            "enabled": true, "type": "COMMAND",
            "command_check": {"command": "test -f ready"}
        }))
        .unwrap(),
    );
    let job = h.create("j", checked);
    h.subscribe();
    h.offer("o1", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    h.take_calls();
    let running = |task: &str, at: i64, healthy: Option<bool>| TaskUpdate {
        healthy,
        ..update(task, TaskState::TaskRunning, at)
    };
    h.updates(vec![
        running("j-0-0", 10, Some(true)),
        running("j-1-0", 10, Some(true)),
    ]);
    h.api(ApiRequest::RestartPods {
        job_id: job.clone(),
        instances: vec![0, 1],
        batch_size: 1,
        expected_version: None,
        bump: true,
    })
    .unwrap();
    h.advance(Duration::from_millis(1));
    let kills = |h: &mut Harness| -> Vec<String> {
        h.take_calls()
            .into_iter()
            .filter_map(|c| match c {
                Call::Kill { task_id, .. } => Some(task_id.to_string()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(kills(&mut h), ["j-0-0"], "one at a time");
    h.updates(vec![update("j-0-0", TaskState::TaskKilled, 20)]);
    h.offer("o2", "a1", 8.0);
    h.advance(Duration::from_millis(20));
    assert_eq!(h.runs(&job).len(), 3, "0-1 launched");
    h.take_calls();
    // The replacement runs, its check has not passed: 1-0 stays.
    h.updates(vec![running("j-0-1", 30, None)]);
    h.advance(Duration::from_secs(2));
    assert_eq!(kills(&mut h), Vec::<String>::new());
    h.updates(vec![running("j-0-1", 40, Some(false))]);
    h.advance(Duration::from_secs(2));
    assert_eq!(kills(&mut h), Vec::<String>::new());
    // Its check passes: the health update alone gets the job planned
    // again (once updates settle), and the next pod goes.
    h.updates(vec![running("j-0-1", 50, Some(true))]);
    h.advance(EngineConfig::default().update_settle);
    assert_eq!(kills(&mut h), ["j-1-0"]);
}

#[test]
fn the_image_a_runs_executor_resolved_is_stored_once_said_and_kept() {
    use drover_scheduler::model::image::RunImage;
    let mut h = Harness::new();
    let job = launched(&mut h, "SERVICE", 1);
    assert_eq!(h.runs(&job)[0].image, None, "nothing said yet");
    let image = RunImage {
        name: Some("drover-test/busybox:1".into()),
        digest: Some(format!("sha256:{}", "c3".repeat(32))),
    };
    // STARTING and RUNNING in one batch, as a launch's arrive: the first
    // names the image, the second does not; a later one neither.
    h.updates(vec![
        TaskUpdate {
            image: Some(image.clone()),
            ..update("j-0-0", TaskState::TaskStarting, 10)
        },
        update("j-0-0", TaskState::TaskRunning, 11),
    ]);
    assert_eq!(h.runs(&job)[0].run.state, PodState::Running);
    assert_eq!(h.runs(&job)[0].image, Some(image.clone()));
    h.updates(vec![update("j-0-0", TaskState::TaskFailed, 20)]);
    let run = &h.runs(&job)[0];
    assert_eq!(run.run.state, PodState::Failed);
    assert_eq!(run.image, Some(image), "an end without the labels keeps it");
}
