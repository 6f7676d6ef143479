#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::spec::JobSpec;
use crate::store::Store;

pub(crate) fn batch_spec(instances: u32) -> JobSpec {
    serde_json::from_value(serde_json::json!({
        "type": "BATCH", "name": "test", "instance_count": instances,
        "default_spec": {"containers": [{
            "resource": {"cpu_limit": 0.1, "mem_limit_mb": 16},
            "command": {"value": "true"}
        }]}
    }))
    .unwrap()
}

fn task(job: &JobId, instance: u32, run: u32) -> TaskId {
    TaskId::new(InstanceId::new(job.clone(), instance), run)
}

fn intent(job: &JobId, instance: u32, run: u32) -> LaunchIntent {
    LaunchIntent {
        task_id: task(job, instance, run),
        agent_id: "agent-1".into(),
        hostname: "host-1".into(),
        spec_version: 1,
        ports: Vec::new(),
    }
}

fn status(job: &JobId, instance: u32, run: u32, state: PodState) -> StatusRecord {
    StatusRecord {
        task_id: task(job, instance, run),
        state,
        mesos_state: Some("TASK_X".into()),
        reason: None,
        message: Some("m".into()),
        healthy: None,
        agent_id: Some("agent-1".into()),
        timestamp: 10,
    }
}

#[test]
fn a_new_store_is_at_the_latest_schema_and_reopening_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let job = JobId::parse("j1").unwrap();
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(
            migrations::current(&store.conn).unwrap(),
            migrations::latest()
        );
        store.create_job(&job, &batch_spec(2), 1).unwrap();
        store.set_framework_id(Some("fw-1")).unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.job(&job).unwrap().unwrap().spec, batch_spec(2));
    assert_eq!(store.framework_id().unwrap().as_deref(), Some("fw-1"));
}

#[test]
fn an_old_schema_is_migrated_forward_without_losing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let mut conn = Connection::open(&path).unwrap();
        migrations::migrate_to(&mut conn, 1).unwrap();
        assert_eq!(migrations::current(&conn).unwrap(), 1);
        conn.execute(
            "INSERT INTO jobs VALUES ('old', ?1, 1, 'RUNNING', 5, 5, 1)",
            [serde_json::to_string(&batch_spec(1)).unwrap()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        migrations::current(&store.conn).unwrap(),
        migrations::latest()
    );
    let old = store.job(&JobId("old".into())).unwrap().unwrap();
    assert_eq!(old.restart_batch_size, 0);
    assert!(old.pods.is_empty());
}

#[test]
fn a_schema_newer_than_the_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    assert!(matches!(
        SqliteStore::open(dir.path()),
        Err(StoreError::SchemaTooNew { found: 99, .. })
    ));
}

#[test]
fn every_commit_bumps_the_revision() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = JobId::parse("j").unwrap();
    let r0 = store.revision().unwrap();
    let r1 = store.create_job(&job, &batch_spec(1), 1).unwrap().revision;
    store
        .record_launch_intents(&[intent(&job, 0, 0)], 2)
        .unwrap();
    let r2 = store.revision().unwrap();
    store
        .record_statuses(&[status(&job, 0, 0, PodState::Running)])
        .unwrap();
    let r3 = store.revision().unwrap();
    assert!(r0 < r1 && r1 < r2 && r2 < r3, "{r0} {r1} {r2} {r3}");
}

#[test]
fn creating_a_job_twice_is_refused_and_stale_versions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = JobId::parse("j").unwrap();
    store.create_job(&job, &batch_spec(1), 1).unwrap();
    assert!(matches!(
        store.create_job(&job, &batch_spec(1), 1),
        Err(StoreError::JobExists(_))
    ));
    let stopped = store
        .set_job_goal(&job, JobGoal::Stopped, Some(1), 2)
        .unwrap();
    assert_eq!(stopped.version, 2);
    assert!(matches!(
        store.set_job_goal(&job, JobGoal::Running, Some(1), 3),
        Err(StoreError::VersionMismatch {
            current: 2,
            expected: 1,
            ..
        })
    ));
    assert_eq!(store.job(&job).unwrap().unwrap().goal, JobGoal::Stopped);
}

#[test]
fn an_instance_never_gets_a_second_live_run() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = JobId::parse("j").unwrap();
    store.create_job(&job, &batch_spec(2), 1).unwrap();
    assert_eq!(
        store
            .record_launch_intents(
                &[intent(&job, 0, 0), intent(&job, 0, 1), intent(&job, 1, 0)],
                1
            )
            .unwrap(),
        vec![true, false, true]
    );
    // Still live: no run 1.
    assert_eq!(
        store
            .record_launch_intents(&[intent(&job, 0, 1)], 2)
            .unwrap(),
        vec![false]
    );
    store
        .record_statuses(&[status(&job, 0, 0, PodState::Failed)])
        .unwrap();
    // Terminal: run 1 may go, but not a reused run number.
    assert_eq!(
        store
            .record_launch_intents(&[intent(&job, 0, 0)], 3)
            .unwrap(),
        vec![false]
    );
    assert_eq!(
        store
            .record_launch_intents(&[intent(&job, 0, 1)], 3)
            .unwrap(),
        vec![true]
    );
    // A stopped job launches nothing.
    store.set_job_goal(&job, JobGoal::Stopped, None, 4).unwrap();
    store
        .record_statuses(&[status(&job, 1, 0, PodState::Killed)])
        .unwrap();
    assert_eq!(
        store
            .record_launch_intents(&[intent(&job, 1, 1)], 5)
            .unwrap(),
        vec![false]
    );
}

#[test]
fn a_launch_intent_survives_a_crash_and_is_listed_for_reconciliation() {
    let dir = tempfile::tempdir().unwrap();
    let job = JobId::parse("j").unwrap();
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.create_job(&job, &batch_spec(1), 1).unwrap();
        store
            .record_launch_intents(&[intent(&job, 0, 0)], 2)
            .unwrap();
        // No orderly shutdown: the process "dies" right after the commit,
        // before any ACCEPT could have been sent.
        std::mem::forget(store);
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let live = store.live_runs().unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].task_id, task(&job, 0, 0));
    assert_eq!(live[0].state, PodState::Launching);
    assert_eq!(live[0].agent_id.as_deref(), Some("agent-1"));
}

/// A run's updates stored in one batch leave the store as they would
/// one batch each: the batch compares each update with what the one
/// before left, and writes each run once at the end.
#[test]
fn a_batch_of_updates_stores_what_one_at_a_time_would() {
    let job = JobId::parse("j").unwrap();
    let with = |instance, state, ts, healthy: Option<bool>, reason: Option<&str>| StatusRecord {
        timestamp: ts,
        healthy,
        reason: reason.map(str::to_owned),
        ..status(&job, instance, 0, state)
    };
    let updates = [
        with(0, PodState::Starting, 10, None, None),
        with(1, PodState::Starting, 11, None, None),
        with(0, PodState::Running, 20, None, None),
        with(0, PodState::Running, 21, Some(false), None),
        // A resend of the update before: nothing to write.
        with(0, PodState::Running, 21, Some(false), None),
        with(1, PodState::Running, 22, Some(true), None),
        with(
            0,
            PodState::Running,
            30,
            None,
            Some("REASON_TASK_HEALTH_CHECK_STATUS_UPDATED"),
        ),
        with(
            1,
            PodState::Failed,
            40,
            None,
            Some("REASON_COMMAND_EXECUTOR_FAILED"),
        ),
        // After the terminal state: an event, but the run stays failed.
        with(1, PodState::Running, 50, None, None),
    ];
    let stored = |batches: Vec<&[StatusRecord]>| {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(dir.path()).unwrap();
        store.create_job(&job, &batch_spec(2), 1).unwrap();
        store
            .record_launch_intents(&[intent(&job, 0, 0), intent(&job, 1, 0)], 1)
            .unwrap();
        let outcomes: Vec<_> = batches
            .into_iter()
            .flat_map(|b| store.record_statuses(b).unwrap())
            .collect();
        let runs = store.runs(&job).unwrap();
        let events: Vec<_> = (0..2)
            .flat_map(|i| store.pod_events(&InstanceId::new(job.clone(), i)).unwrap())
            .map(|e| PodEventRecord { revision: 0, ..e })
            .collect();
        (outcomes, runs, events)
    };
    let one_batch = stored(vec![&updates[..]]);
    let one_each = stored(updates.iter().map(std::slice::from_ref).collect());
    assert_eq!(one_batch, one_each);
    let (_, runs, events) = one_batch;
    assert_eq!(runs[0].state, PodState::Running);
    assert_eq!(runs[0].started_at, Some(20));
    assert_eq!(runs[0].healthy, Some(false));
    assert_eq!(runs[0].updated_at, 30);
    assert_eq!(runs[1].state, PodState::Failed);
    assert_eq!(runs[1].completed_at, Some(40));
    assert_eq!(events.len(), 2 + 8);
}

#[test]
fn statuses_are_appended_to_history_and_terminal_states_are_final() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = JobId::parse("j").unwrap();
    store.create_job(&job, &batch_spec(1), 1).unwrap();
    store
        .record_launch_intents(&[intent(&job, 0, 0)], 1)
        .unwrap();
    let outcomes = store
        .record_statuses(&[
            status(&job, 0, 0, PodState::Running),
            status(&job, 0, 0, PodState::Succeeded),
            status(&job, 0, 0, PodState::Running),
            status(&job, 0, 7, PodState::Running),
        ])
        .unwrap();
    assert_eq!(
        outcomes,
        vec![
            StatusOutcome::Applied(job.clone()),
            StatusOutcome::Applied(job.clone()),
            StatusOutcome::Stale {
                job: job.clone(),
                live: true
            },
            StatusOutcome::Unknown,
        ]
    );
    let runs = store.runs(&job).unwrap();
    assert_eq!(runs[0].state, PodState::Succeeded);
    assert_eq!(runs[0].started_at, Some(10));
    assert_eq!(runs[0].completed_at, Some(10));
    let events = store.pod_events(&InstanceId::new(job.clone(), 0)).unwrap();
    let states: Vec<_> = events.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        vec![
            PodState::Launching,
            PodState::Running,
            PodState::Succeeded,
            PodState::Running
        ]
    );
    assert!(store.live_runs().unwrap().is_empty());
}

#[test]
fn deleting_a_job_forgets_its_runs_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = JobId::parse("j").unwrap();
    store.create_job(&job, &batch_spec(1), 1).unwrap();
    store
        .record_launch_intents(&[intent(&job, 0, 0)], 1)
        .unwrap();
    store.delete_job(&job).unwrap();
    assert!(store.job(&job).unwrap().is_none());
    assert!(store.runs(&job).unwrap().is_empty());
    assert!(store
        .pod_events(&InstanceId::new(job.clone(), 0))
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.delete_job(&job),
        Err(StoreError::JobNotFound(_))
    ));
}

#[test]
fn a_reader_connection_sees_committed_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let reader = SqliteStore::open_reader(dir.path()).unwrap();
    let job = JobId::parse("j").unwrap();
    store.create_job(&job, &batch_spec(1), 1).unwrap();
    let (jobs, total) = reader.jobs(0, 10).unwrap();
    assert_eq!(total, 1);
    assert_eq!(jobs[0].job_id, job);
}

#[test]
fn pod_goals_restarts_pending_reasons_ports_and_kill_reasons_round_trip() {
    use crate::model::state::PodGoal;
    use crate::store::PendingInfo;
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = JobId("j".into());
    store.create_job(&job, &batch_spec(3), 1).unwrap();
    let mut with_ports = intent(&job, 0, 0);
    with_ports.ports = vec![("http".into(), 31002)];
    assert_eq!(
        store.record_launch_intents(&[with_ports], 2).unwrap(),
        vec![true]
    );
    let run = &store.runs(&job).unwrap()[0];
    assert_eq!(run.ports, vec![("http".to_owned(), 31002)]);

    let stopped = store
        .set_pod_goal(&InstanceId::new(job.clone(), 1), PodGoal::Killed, 3)
        .unwrap();
    assert_eq!(stopped.pods[&1].goal, PodGoal::Killed);
    assert_eq!(stopped.version, 1, "a pod stop leaves the job's version");
    assert!(matches!(
        store.set_pod_goal(&InstanceId::new(job.clone(), 9), PodGoal::Killed, 3),
        Err(StoreError::PodNotFound(_))
    ));

    let restarted = store
        .restart_pods(&job, &[0, 1], 2, Some(1), true, 4)
        .unwrap();
    assert_eq!(restarted.version, 2);
    assert_eq!(restarted.restart_batch_size, 2);
    assert_eq!(
        restarted.pods[&0].restart_from, 1,
        "run 0 exists: replace it"
    );
    assert_eq!(restarted.pods[&1].restart_from, 0, "no run yet");
    assert_eq!(
        restarted.pods[&1].goal,
        PodGoal::Running,
        "a restart starts a stopped pod"
    );
    assert!(matches!(
        store.restart_pods(&job, &[0], 0, Some(1), true, 5),
        Err(StoreError::VersionMismatch { .. })
    ));

    let info = PendingInfo {
        reason: "no agent satisfies zone==c (3 agents)".into(),
        metrics: "{}".into(),
    };
    store
        .record_pending_reasons(&[(InstanceId::new(job.clone(), 2), Some(info.clone()))], 6)
        .unwrap();
    assert_eq!(store.pending_reasons(&job).unwrap()[&2], info);
    assert_eq!(
        store
            .record_launch_intents(&[intent(&job, 2, 0)], 7)
            .unwrap(),
        vec![true]
    );
    assert!(
        store.pending_reasons(&job).unwrap().is_empty(),
        "a launch clears it"
    );

    let task = task(&job, 0, 0);
    store
        .record_kills(
            &[(
                task.clone(),
                Some("REASON_MAX_COMPLETION_TIME_REACHED".into()),
            )],
            8,
        )
        .unwrap();
    store.record_kills(&[(task, None)], 9).unwrap();
    let run = &store.runs(&job).unwrap()[0];
    assert_eq!(run.kill_requested_at, Some(9));
    assert_eq!(
        run.kill_reason.as_deref(),
        Some("REASON_MAX_COMPLETION_TIME_REACHED")
    );
    store.delete_job(&job).unwrap();
    assert!(store.job(&job).unwrap().is_none());
}

#[test]
fn a_resent_update_or_reconciliation_answer_is_not_stored_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = JobId::parse("j").unwrap();
    store.create_job(&job, &batch_spec(1), 1).unwrap();
    store
        .record_launch_intents(&[intent(&job, 0, 0)], 1)
        .unwrap();
    let running = status(&job, 0, 0, PodState::Running);
    let reconciled = StatusRecord {
        reason: Some("REASON_RECONCILIATION".into()),
        message: Some("Reconciliation: latest task status".into()),
        ..running.clone()
    };
    let healthy = StatusRecord {
        healthy: Some(true),
        ..running.clone()
    };
    let outcomes = store
        .record_statuses(&[
            running.clone(),
            running.clone(),
            reconciled,
            healthy.clone(),
            healthy,
        ])
        .unwrap();
    let unchanged = StatusOutcome::Unchanged {
        job: job.clone(),
        live: false,
    };
    assert_eq!(
        outcomes,
        vec![
            StatusOutcome::Applied(job.clone()),
            unchanged.clone(),
            unchanged.clone(),
            // Same state, new health: a change, stored.
            StatusOutcome::Applied(job.clone()),
            unchanged,
        ]
    );
    let events = store.pod_events(&InstanceId::new(job.clone(), 0)).unwrap();
    assert_eq!(events.len(), 3, "intent, RUNNING, RUNNING+healthy");
    let run = &store.runs(&job).unwrap()[0];
    assert_eq!(run.reason, None, "a reconciliation answer changes nothing");
    assert_eq!(run.healthy, Some(true));
}

#[test]
fn a_run_launched_before_schema_4_keeps_its_one_stored_launch_event() {
    // A version-3 database with one run and its stored intent event.
    let (_dir, mut store) = migrated_from(
        3,
        "INSERT INTO runs (job_id, instance, run, task_id, state, agent_id, hostname, \
         spec_version, launched_at_ms, updated_at_ms, revision) \
         VALUES ('j', 0, 0, 'j-0-0', 'POD_STATE_LAUNCHING', 'a', 'h', 1, 7, 7, 2); \
         INSERT INTO pod_events (job_id, instance, run, state, agent_id, hostname, message, \
         timestamp_ms, revision) VALUES ('j', 0, 0, 'POD_STATE_LAUNCHING', 'a', 'h', \
         'launch intent recorded', 7, 2);",
    );
    let job = JobId::parse("j").unwrap();
    // A run recorded now: its intent event is read from the run.
    store
        .record_launch_intents(&[intent(&job, 1, 0)], 9)
        .unwrap();
    for (instance, at) in [(0, 7), (1, 9)] {
        let events = store
            .pod_events(&InstanceId::new(job.clone(), instance))
            .unwrap();
        assert_eq!(events.len(), 1, "instance {instance}: {events:?}");
        assert_eq!(events[0].state, PodState::Launching);
        assert_eq!(events[0].timestamp, at);
        assert_eq!(events[0].message.as_deref(), Some("launch intent recorded"));
        assert!(events[0].revision > 0);
    }
}

#[test]
fn schema_5_keeps_every_column_of_a_run_and_its_liveness() {
    // A version-4 database: one live run with every column set, one
    // finished run.
    let (_dir, store) = migrated_from(
        4,
        "INSERT INTO runs (job_id, instance, run, task_id, state, agent_id, hostname, reason, \
         message, healthy, spec_version, launched_at_ms, started_at_ms, completed_at_ms, \
         updated_at_ms, kill_requested_at_ms, revision, ports, kill_reason, launch_revision) \
         VALUES ('j', 0, 3, 'j-0-3', 'POD_STATE_RUNNING', 'a', 'h', 'R', 'm', 1, 2, 7, 8, \
         NULL, 9, 10, 11, '[[\"http\",31000]]', 'k', 6); \
         INSERT INTO runs (job_id, instance, run, task_id, state, spec_version, \
         launched_at_ms, completed_at_ms, updated_at_ms, revision) \
         VALUES ('j', 1, 0, 'j-1-0', 'POD_STATE_SUCCEEDED', 1, 7, 9, 9, 3);",
    );
    let job = JobId::parse("j").unwrap();
    let runs = store.runs(&job).unwrap();
    assert_eq!(runs.len(), 2);
    let live = &runs[0];
    assert_eq!(live.task_id, task(&job, 0, 3));
    assert_eq!(live.state, PodState::Running);
    assert_eq!(
        (live.agent_id.as_deref(), live.hostname.as_deref()),
        (Some("a"), Some("h"))
    );
    assert_eq!(
        (live.reason.as_deref(), live.message.as_deref()),
        (Some("R"), Some("m"))
    );
    assert_eq!(live.healthy, Some(true));
    assert_eq!(live.spec_version, 2);
    assert_eq!(
        (live.launched_at, live.started_at, live.completed_at),
        (7, Some(8), None)
    );
    assert_eq!(live.kill_reason.as_deref(), Some("k"));
    assert_eq!(live.ports, vec![("http".to_owned(), 31000)]);
    let listed: Vec<_> = store
        .live_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.task_id)
        .collect();
    assert_eq!(listed, vec![task(&job, 0, 3)]);
}

#[test]
fn live_runs_are_read_through_their_index_and_leave_it_when_they_end() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = JobId::parse("j").unwrap();
    store.create_job(&job, &batch_spec(3), 1).unwrap();
    store
        .record_launch_intents(
            &[intent(&job, 0, 0), intent(&job, 1, 0), intent(&job, 2, 0)],
            1,
        )
        .unwrap();
    store
        .record_statuses(&[
            status(&job, 0, 0, PodState::Starting),
            status(&job, 0, 0, PodState::Running),
            status(&job, 1, 0, PodState::Running),
            status(&job, 1, 0, PodState::Failed),
            status(&job, 2, 0, PodState::Lost),
        ])
        .unwrap();
    let live: Vec<_> = store
        .live_runs()
        .unwrap()
        .into_iter()
        .map(|r| (r.task_id, r.state))
        .collect();
    assert_eq!(live, vec![(task(&job, 0, 0), PodState::Running)]);
    let plan: Vec<String> = store
        .conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN SELECT {RUN_COLUMNS} FROM runs WHERE {} \
             ORDER BY job_id, instance, run",
            migrations::LIVE_RUNS_PREDICATE
        ))
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        plan.iter().any(|step| step.contains("runs_by_completion")),
        "live runs read without their index: {plan:?}"
    );
    assert!(
        !plan.iter().any(|step| step.contains("TEMP B-TREE")),
        "the index should give the key order: {plan:?}"
    );
}

#[test]
fn schema_6_keeps_a_pods_events_in_order_and_new_ones_follow() {
    // A version-5 database: a live run and two stored events, stored
    // out of pod order (instance 1's first), as a busy store does.
    let (_dir, mut store) = migrated_from(
        5,
        "INSERT INTO runs (job_id, instance, run, state, agent_id, spec_version, \
         launched_at_ms, updated_at_ms, revision) \
         VALUES ('j', 0, 0, 'POD_STATE_STARTING', 'agent-1', 1, 7, 8, 3); \
         INSERT INTO pod_events (job_id, instance, run, state, message, timestamp_ms, \
         revision) VALUES ('j', 1, 0, 'POD_STATE_STARTING', 'other pod', 8, 2); \
         INSERT INTO pod_events (job_id, instance, run, state, message, timestamp_ms, \
         revision) VALUES ('j', 0, 0, 'POD_STATE_STARTING', 'first', 8, 3);",
    );
    let job = JobId::parse("j").unwrap();
    let mut running = status(&job, 0, 0, PodState::Running);
    running.message = Some("second".into());
    store.record_statuses(&[running]).unwrap();
    let mut failed = status(&job, 0, 0, PodState::Failed);
    failed.message = Some("third".into());
    store.record_statuses(&[failed]).unwrap();
    let events = store.pod_events(&InstanceId::new(job.clone(), 0)).unwrap();
    let messages: Vec<_> = events.iter().map(|e| e.message.as_deref()).collect();
    assert_eq!(messages, [Some("first"), Some("second"), Some("third")]);
    let other = store.pod_events(&InstanceId::new(job, 1)).unwrap();
    assert_eq!(other.len(), 1);
    assert_eq!(other[0].message.as_deref(), Some("other pod"));
    let seqs: Vec<i64> = store
        .conn
        .prepare("SELECT seq FROM pod_events ORDER BY seq")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(seqs, [1, 2, 3, 4], "new events continue the old numbering");
}

/// A store opened (so migrated to the latest schema) on a database made at
/// schema `version`, holding job `j` (see [`old_database`]) and what `sql`
/// wrote there; with the directory that holds it.
fn migrated_from(version: i64, sql: &str) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    old_database(&dir.path().join(DB_FILE), version)
        .execute_batch(sql)
        .unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (dir, store)
}

/// A database at schema `version` holding job `j` (a 2-instance batch job).
fn old_database(path: &std::path::Path, version: i64) -> Connection {
    let mut conn = Connection::open(path).unwrap();
    migrations::migrate_to(&mut conn, version).unwrap();
    conn.execute(
        "INSERT INTO jobs (job_id, spec, version, goal, created_at_ms, updated_at_ms, revision) \
         VALUES ('j', ?1, 1, 'RUNNING', 5, 5, 1)",
        [serde_json::to_string(&batch_spec(2)).unwrap()],
    )
    .unwrap();
    conn
}
