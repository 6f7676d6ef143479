#![allow(clippy::unwrap_used)]

use super::migrations;
use super::rows::RUN_COLUMNS;
use super::*;
use crate::model::change::{
    Change, JobWrite, KillRecord, LaunchRecord, PendingInfo, PendingReason, PodEvent, RunWrite,
};
use crate::model::ids::{AgentId, InstanceId, JobId, TaskId};
use crate::model::job::{Job, PodControl};
use crate::model::run::MessageDigest;
use crate::model::spec::JobSpec;
use crate::model::state::{JobGoal, PodGoal, PodState};
use crate::store::{Store, StoreRead};
use drover_proto::v1::task_status::Reason;
use drover_proto::v1::TaskState;

pub(crate) fn batch_spec(instances: u32) -> JobSpec {
    serde_json::from_value(serde_json::json!({
        "type": "BATCH", "name": "test", "instance_count": instances,
        "default_spec": {"containers": [{
            "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
            "command": {"value": "true"}
        }]}
    }))
    .unwrap()
}

fn task(job: &JobId, instance: u32, run: u32) -> TaskId {
    TaskId::new(InstanceId::new(job.clone(), instance), run)
}

pub(super) fn create(store: &mut SqliteStore, id: &str, instances: u32, now: i64) -> JobId {
    let job = JobId::parse(id).unwrap();
    let change = Change {
        jobs: vec![JobWrite::Create(Box::new(Job::new(
            job.clone(),
            batch_spec(instances),
            now,
        )))],
        ..Change::default()
    };
    store.commit(&change).unwrap();
    job
}

fn launch(job: &JobId, instance: u32, run: u32, at: i64) -> LaunchRecord {
    LaunchRecord {
        task_id: task(job, instance, run),
        agent_id: AgentId::new("agent-1"),
        hostname: "host-1".into(),
        spec_version: 1,
        ports: Vec::new(),
        at,
        hands_over: None,
    }
}

fn launches(store: &mut SqliteStore, records: Vec<LaunchRecord>) {
    store
        .commit(&Change {
            launches: records,
            ..Change::default()
        })
        .unwrap();
}

/// A run's row after an update to `state` at 10, and its event.
fn updated(job: &JobId, instance: u32, run: u32, state: PodState) -> (RunWrite, PodEvent) {
    let write = RunWrite {
        task_id: task(job, instance, run),
        state,
        agent_id: Some(AgentId::new("agent-1")),
        reason: None,
        message: Some("m".into()),
        healthy: None,
        ready: None,
        started_at: (state == PodState::Running).then_some(10),
        completed_at: state.is_terminal().then_some(10),
        updated_at: 10,
        unreachable_since: None,
    };
    let event = PodEvent {
        task_id: task(job, instance, run),
        state,
        mesos_state: Some(TaskState::TaskRunning),
        reason: None,
        message: Some("m".into()),
        healthy: None,
        ready: None,
        agent_id: Some(AgentId::new("agent-1")),
        hostname: Some("host-1".into()),
        timestamp: 10,
    };
    (write, event)
}

fn statuses(store: &mut SqliteStore, updates: Vec<(RunWrite, PodEvent)>) {
    let (runs, events) = updates.into_iter().unzip();
    store
        .commit(&Change {
            runs,
            events,
            ..Change::default()
        })
        .unwrap();
}

#[test]
fn a_new_store_is_at_the_latest_schema_and_reopening_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let job = {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(
            migrations::current(&store.conn).unwrap(),
            migrations::latest()
        );
        let job = create(&mut store, "j1", 2, 1);
        store
            .commit(&Change {
                framework_id: Some(Some("fw-1".into())),
                ..Change::default()
            })
            .unwrap();
        job
    };
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
fn every_commit_bumps_the_revision_but_pending_reasons_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let r0 = store.revision().unwrap();
    let job = create(&mut store, "j", 1, 1);
    let r1 = store.revision().unwrap();
    assert_eq!(store.job(&job).unwrap().unwrap().revision, r1);
    launches(&mut store, vec![launch(&job, 0, 0, 2)]);
    let r2 = store.revision().unwrap();
    statuses(&mut store, vec![updated(&job, 0, 0, PodState::Running)]);
    let r3 = store.revision().unwrap();
    assert!(r0 < r1 && r1 < r2 && r2 < r3, "{r0} {r1} {r2} {r3}");
    let reasons = Change {
        pending_reasons: vec![PendingReason {
            pod: InstanceId::new(job, 0),
            info: None,
            at: 3,
        }],
        ..Change::default()
    };
    assert_eq!(store.commit(&reasons).unwrap(), r3);
    assert_eq!(store.revision().unwrap(), r3);
}

#[test]
fn a_change_that_fails_writes_nothing_of_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = create(&mut store, "j", 2, 1);
    launches(&mut store, vec![launch(&job, 0, 0, 2)]);
    let before = store.revision().unwrap();
    // The second launch reuses a run's key: the whole change is refused.
    let change = Change {
        framework_id: Some(Some("fw".into())),
        launches: vec![launch(&job, 1, 0, 3), launch(&job, 0, 0, 3)],
        ..Change::default()
    };
    assert!(matches!(
        store.commit(&change),
        Err(StoreError::Sqlite { .. })
    ));
    assert_eq!(store.revision().unwrap(), before);
    assert_eq!(store.framework_id().unwrap(), None);
    assert_eq!(store.runs(&job).unwrap().len(), 1);
}

#[test]
fn everything_committed_loads_back_for_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = create(&mut store, "j", 3, 1);
    let other = create(&mut store, "k", 1, 2);
    let control = PodControl {
        goal: PodGoal::Killed,
        restart_from: 1,
    };
    let mut first = launch(&job, 0, 0, 3);
    first.ports = vec![("http".into(), 31002)];
    store
        .commit(&Change {
            framework_id: Some(Some("fw".into())),
            jobs: vec![JobWrite::Pod {
                pod: InstanceId::new(job.clone(), 2),
                control,
                at: 3,
            }],
            launches: vec![first, launch(&job, 1, 0, 3), launch(&other, 0, 0, 3)],
            ..Change::default()
        })
        .unwrap();
    let (mut failed, event) = updated(&job, 0, 0, PodState::Failed);
    failed.reason = Some(Reason::CommandExecutorFailed);
    statuses(&mut store, vec![(failed, event)]);
    launches(&mut store, vec![launch(&job, 0, 1, 11)]);
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.framework_id.as_deref(), Some("fw"));
    assert_eq!(snapshot.revision, store.revision().unwrap());
    let ids: Vec<_> = snapshot
        .jobs
        .iter()
        .map(|(j, _)| j.job_id.clone())
        .collect();
    assert_eq!(ids, [job.clone(), other], "in creation order");
    let (loaded, instances) = &snapshot.jobs[0];
    assert_eq!(loaded.pods[&2], control);
    assert_eq!(instances.len(), 3);
    let history: Vec<_> = instances[0].iter().map(|r| (r.run, r.state)).collect();
    assert_eq!(history, [(0, PodState::Failed), (1, PodState::Launching)]);
    let ended = &instances[0][0];
    assert_eq!(ended.reason, Some(Reason::CommandExecutorFailed));
    assert_eq!(ended.message, Some(MessageDigest::of("m")));
    assert_eq!(ended.completed_at, Some(10));
    assert_eq!(ended.agent, Some(AgentId::new("agent-1")));
    assert!(instances[2].is_empty());
    assert_eq!(
        snapshot
            .hostnames
            .get(&AgentId::new("agent-1"))
            .map(String::as_str),
        Some("host-1")
    );
}

#[test]
fn a_value_the_model_does_not_know_is_a_typed_corruption_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = create(&mut store, "j", 1, 1);
    launches(&mut store, vec![launch(&job, 0, 0, 2)]);
    let corrupt = |sql: &str| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(dir_db(&store), dir.path().join(DB_FILE)).unwrap();
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.execute_batch(sql).unwrap();
        drop(conn);
        let store = SqliteStore::open(dir.path()).unwrap();
        (
            store.load().unwrap_err(),
            store.runs(&JobId("j".into())).err(),
        )
    };
    let (load, read) = corrupt("UPDATE runs SET state = 'POD_STATE_BOGUS'");
    assert!(
        matches!(&load, StoreError::CorruptValue { what: "pod state", value } if value.contains("BOGUS")),
        "{load}"
    );
    assert!(matches!(read, Some(StoreError::CorruptValue { .. })));
    let (load, _) = corrupt("UPDATE runs SET reason = 'REASON_NOT_A_REASON'");
    assert!(
        matches!(load, StoreError::CorruptValue { what: "reason", .. }),
        "{load}"
    );
    let (load, _) = corrupt("UPDATE jobs SET spec = '{not json'");
    assert!(matches!(load, StoreError::CorruptSpec { .. }), "{load}");
    let (load, _) = corrupt("UPDATE jobs SET goal = 'MAYBE'");
    assert!(
        matches!(
            load,
            StoreError::CorruptValue {
                what: "job goal",
                ..
            }
        ),
        "{load}"
    );
    let (load, _) = corrupt(
        "INSERT INTO runs (job_id, instance, run, state, spec_version, \
         launched_at_ms, updated_at_ms, revision) VALUES ('gone', 0, 0, 'POD_STATE_RUNNING', \
         1, 1, 1, 1)",
    );
    assert!(matches!(load, StoreError::CorruptValue { .. }), "{load}");
}

/// The database file of an open store, copied with its WAL folded in.
fn dir_db(store: &SqliteStore) -> std::path::PathBuf {
    store
        .conn
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    store.path.clone()
}

#[test]
fn a_launch_intent_survives_a_crash_and_is_listed_for_reconciliation() {
    let dir = tempfile::tempdir().unwrap();
    let job = {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let job = create(&mut store, "j", 1, 1);
        launches(&mut store, vec![launch(&job, 0, 0, 2)]);
        // No orderly shutdown: the process "dies" right after the commit,
        // before any ACCEPT could have been sent. (Its exit would free the
        // directory's lock; so is it freed here.)
        let SqliteStore { conn, _lock, .. } = store;
        std::mem::forget(conn);
        drop(_lock);
        job
    };
    let store = SqliteStore::open(dir.path()).unwrap();
    let live = store.live_runs().unwrap();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].task_id, task(&job, 0, 0));
    assert_eq!(live[0].run.state, PodState::Launching);
    assert_eq!(live[0].run.agent, Some(AgentId::new("agent-1")));
    let loaded = store.load().unwrap();
    assert_eq!(loaded.jobs[0].1[0][0].state, PodState::Launching);
}

#[test]
fn run_writes_and_events_are_stored_as_given_and_events_keep_their_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = create(&mut store, "j", 1, 1);
    launches(&mut store, vec![launch(&job, 0, 0, 1)]);
    let (running, running_event) = updated(&job, 0, 0, PodState::Running);
    let (mut done, done_event) = updated(&job, 0, 0, PodState::Succeeded);
    done.started_at = Some(10);
    done.healthy = Some(true);
    statuses(&mut store, vec![(running, running_event)]);
    statuses(&mut store, vec![(done, done_event)]);
    let run = &store.runs(&job).unwrap()[0];
    assert_eq!(run.run.state, PodState::Succeeded);
    assert_eq!(run.run.started_at, Some(10));
    assert_eq!(run.run.completed_at, Some(10));
    assert_eq!(run.run.healthy, Some(true));
    assert_eq!(run.message.as_deref(), Some("m"));
    let events = store.pod_events(&InstanceId::new(job.clone(), 0)).unwrap();
    let states: Vec<_> = events.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        vec![PodState::Launching, PodState::Running, PodState::Succeeded]
    );
    assert_eq!(events[1].mesos_state.as_deref(), Some("TASK_RUNNING"));
    assert_eq!(events[1].hostname.as_deref(), Some("host-1"));
    assert!(store.live_runs().unwrap().is_empty());
}

#[test]
fn deleting_a_job_forgets_its_runs_pods_and_events() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = create(&mut store, "j", 1, 1);
    launches(&mut store, vec![launch(&job, 0, 0, 1)]);
    statuses(&mut store, vec![updated(&job, 0, 0, PodState::Running)]);
    store
        .commit(&Change {
            jobs: vec![JobWrite::Delete(job.clone())],
            ..Change::default()
        })
        .unwrap();
    assert!(store.job(&job).unwrap().is_none());
    assert!(store.runs(&job).unwrap().is_empty());
    assert!(store
        .pod_events(&InstanceId::new(job.clone(), 0))
        .unwrap()
        .is_empty());
    assert!(store.load().unwrap().jobs.is_empty());
}

#[test]
fn a_reader_connection_sees_committed_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let reader = SqliteStore::open_reader(dir.path()).unwrap();
    let job = create(&mut store, "j", 1, 1);
    let (jobs, total) = reader.jobs(0, 10).unwrap();
    assert_eq!(total, 1);
    assert_eq!(jobs[0].job_id, job);
}

#[test]
fn an_amended_spec_replaces_the_stored_one_and_comes_back_on_load() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = create(&mut store, "j", 2, 1);
    let mut spec = batch_spec(5);
    spec.disabled = true;
    spec.seed_message = Some(crate::model::spec::SeedMessage {
        type_name: "com.netflix.titus.JobDescriptor".into(),
        base64: "CgA=".into(),
    });
    store
        .commit(&Change {
            jobs: vec![JobWrite::Spec {
                job_id: job.clone(),
                spec: Box::new(spec.clone()),
            }],
            ..Change::default()
        })
        .unwrap();
    drop(store);
    let store = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(store.job(&job).unwrap().unwrap().spec, spec);
}

#[test]
fn goals_pod_controls_pending_reasons_ports_and_kill_reasons_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = SqliteStore::open(dir.path()).unwrap();
    let job = create(&mut store, "j", 3, 1);
    let mut with_ports = launch(&job, 0, 0, 2);
    with_ports.ports = vec![("http".into(), 31002)];
    launches(&mut store, vec![with_ports]);
    let run = &store.runs(&job).unwrap()[0];
    assert_eq!(run.ports, vec![("http".to_owned(), 31002)]);

    let killed = PodControl {
        goal: PodGoal::Killed,
        restart_from: 0,
    };
    let restarted = PodControl {
        goal: PodGoal::Running,
        restart_from: 1,
    };
    store
        .commit(&Change {
            jobs: vec![
                JobWrite::Pod {
                    pod: InstanceId::new(job.clone(), 1),
                    control: killed,
                    at: 3,
                },
                JobWrite::Pod {
                    pod: InstanceId::new(job.clone(), 0),
                    control: restarted,
                    at: 3,
                },
                JobWrite::Update {
                    job_id: job.clone(),
                    goal: JobGoal::Stopped,
                    version: 2,
                    updated_at: 3,
                    updated_by: "alice".into(),
                    restart_batch_size: 2,
                    create: None,
                    spec_version: 1,
                    workflows: Box::default(),
                    revision: true,
                },
            ],
            ..Change::default()
        })
        .unwrap();
    let stored = store.job(&job).unwrap().unwrap();
    assert_eq!(stored.pods[&1], killed);
    assert_eq!(stored.pods[&0], restarted);
    assert_eq!(
        (stored.goal, stored.version, stored.restart_batch_size),
        (JobGoal::Stopped, 2, 2)
    );
    assert_eq!(
        (
            stored.updated_at,
            stored.updated_by.as_str(),
            stored.revision
        ),
        (3, "alice", store.revision().unwrap())
    );
    // Not the user's change: the job's revision and time stay.
    store
        .commit(&Change {
            jobs: vec![JobWrite::Update {
                job_id: job.clone(),
                goal: JobGoal::Running,
                version: 2,
                updated_at: 9,
                updated_by: "bob".into(),
                restart_batch_size: 2,
                create: None,
                spec_version: 1,
                workflows: Box::default(),
                revision: false,
            }],
            ..Change::default()
        })
        .unwrap();
    let again = store.job(&job).unwrap().unwrap();
    assert_eq!(
        (
            again.goal,
            again.updated_at,
            again.updated_by.as_str(),
            again.revision
        ),
        (JobGoal::Running, 3, "alice", stored.revision)
    );

    let info = PendingInfo {
        reason: "no agent satisfies zone==c (3 agents)".into(),
        metrics: "{}".into(),
    };
    let pending = |pod: u32, info: Option<PendingInfo>| PendingReason {
        pod: InstanceId::new(job.clone(), pod),
        info,
        at: 6,
    };
    store
        .commit(&Change {
            pending_reasons: vec![pending(2, Some(info.clone())), pending(1, None)],
            ..Change::default()
        })
        .unwrap();
    assert_eq!(store.pending_reasons(&job).unwrap()[&2], info);
    launches(&mut store, vec![launch(&job, 2, 0, 7)]);
    assert!(
        store.pending_reasons(&job).unwrap().is_empty(),
        "a launch clears it"
    );
    // The reason of a job that is gone is not stored.
    store
        .commit(&Change {
            pending_reasons: vec![PendingReason {
                pod: InstanceId::new(JobId("gone".into()), 0),
                info: Some(info),
                at: 7,
            }],
            ..Change::default()
        })
        .unwrap();
    assert!(store
        .pending_reasons(&JobId("gone".into()))
        .unwrap()
        .is_empty());

    let kill = |at, reason| Change {
        kills: vec![KillRecord {
            task_id: task(&job, 0, 0),
            at,
            reason,
        }],
        ..Change::default()
    };
    store
        .commit(&kill(8, Some(Reason::MaxCompletionTimeReached)))
        .unwrap();
    store.commit(&kill(9, None)).unwrap();
    let run = &store.runs(&job).unwrap()[0];
    assert_eq!(run.run.kill_requested_at, Some(9));
    assert_eq!(
        run.run.kill_reason,
        Some(Reason::MaxCompletionTimeReached),
        "a reason, once set, stays"
    );
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
    launches(&mut store, vec![launch(&job, 1, 0, 9)]);
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
         VALUES ('j', 0, 3, 'j-0-3', 'POD_STATE_RUNNING', 'a', 'h', 'REASON_COMMAND_EXECUTOR_FAILED', \
         'm', 1, 2, 7, 8, NULL, 9, 10, 11, '[[\"http\",31000]]', \
         'REASON_MAX_COMPLETION_TIME_REACHED', 6); \
         INSERT INTO runs (job_id, instance, run, task_id, state, spec_version, \
         launched_at_ms, completed_at_ms, updated_at_ms, revision) \
         VALUES ('j', 1, 0, 'j-1-0', 'POD_STATE_SUCCEEDED', 1, 7, 9, 9, 3);",
    );
    let job = JobId::parse("j").unwrap();
    let runs = store.runs(&job).unwrap();
    assert_eq!(runs.len(), 2);
    let live = &runs[0];
    assert_eq!(live.task_id, task(&job, 0, 3));
    assert_eq!(live.run.state, PodState::Running);
    assert_eq!(
        (
            live.run.agent.as_ref().map(AgentId::as_str),
            live.hostname.as_deref()
        ),
        (Some("a"), Some("h"))
    );
    assert_eq!(
        (live.run.reason, live.message.as_deref()),
        (Some(Reason::CommandExecutorFailed), Some("m"))
    );
    assert_eq!(live.run.healthy, Some(true));
    // Migration 10: a run recorded the job's entity version, and no spec
    // had ever changed, so every run is on spec version 1.
    assert_eq!(live.run.spec_version, 1);
    assert_eq!(
        (
            live.run.launched_at,
            live.run.started_at,
            live.run.completed_at
        ),
        (7, Some(8), None)
    );
    assert_eq!(live.run.kill_reason, Some(Reason::MaxCompletionTimeReached));
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
    let job = create(&mut store, "j", 3, 1);
    launches(
        &mut store,
        vec![
            launch(&job, 0, 0, 1),
            launch(&job, 1, 0, 1),
            launch(&job, 2, 0, 1),
        ],
    );
    statuses(
        &mut store,
        vec![
            updated(&job, 0, 0, PodState::Running),
            updated(&job, 1, 0, PodState::Failed),
            updated(&job, 2, 0, PodState::Lost),
        ],
    );
    let live: Vec<_> = store
        .live_runs()
        .unwrap()
        .into_iter()
        .map(|r| (r.task_id, r.run.state))
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
    let (mut running, mut running_event) = updated(&job, 0, 0, PodState::Running);
    running.message = Some("second".into());
    running_event.message = Some("second".into());
    statuses(&mut store, vec![(running, running_event)]);
    let (mut failed, mut failed_event) = updated(&job, 0, 0, PodState::Failed);
    failed.message = Some("third".into());
    failed_event.message = Some("third".into());
    statuses(&mut store, vec![(failed, failed_event)]);
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

#[test]
fn a_store_is_given_its_id_and_creation_time_once() {
    let dir = tempfile::tempdir().unwrap();
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = SqliteStore::open(dir.path()).unwrap().identity().unwrap();
    assert_eq!(first.store_id.len(), 32, "{first:?}");
    assert!(
        first.created_at >= before - 1,
        "{first:?} made before {before}"
    );
    // Reopened, it is the same store; another directory is another one.
    let reopened = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(reopened.identity().unwrap(), first);
    assert_eq!(reopened.load().unwrap().identity, first);
    let other = tempfile::tempdir().unwrap();
    let second = SqliteStore::open(other.path()).unwrap().identity().unwrap();
    assert_ne!(second.store_id, first.store_id);
}

#[test]
fn pools_are_stored_updated_reloaded_and_deleted_each_with_a_revision() {
    use crate::model::change::PoolWrite;
    use crate::model::pool::{Pool, PoolId, PoolSpec};
    let dir = tempfile::tempdir().unwrap();
    let spec: PoolSpec = serde_json::from_value(serde_json::json!({
        "name": "batch",
        "resources": [{"kind": "cpu", "reservation": 2.0, "limit": 8.0}]
    }))
    .unwrap();
    let pool = Pool {
        id: PoolId("batch".into()),
        spec,
        version: 1,
        created_ms: 10,
        updated_ms: 10,
    };
    {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let put = |p: &Pool| Change {
            pools: vec![PoolWrite::Put(Box::new(p.clone()))],
            ..Change::default()
        };
        let first = store.commit(&put(&pool)).unwrap();
        let mut updated = pool.clone();
        updated.version = 2;
        updated.updated_ms = 20;
        updated.spec.description = "nightly".into();
        let second = store.commit(&put(&updated)).unwrap();
        assert!(second > first, "each pool change takes a revision");
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    let loaded = store.load().unwrap().pools;
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].version, 2);
    assert_eq!(
        loaded[0].created_ms, 10,
        "an update keeps the creation time"
    );
    assert_eq!(loaded[0].spec.description, "nightly");
    assert_eq!(
        loaded[0].spec.resources[0].share, 1.0,
        "share defaults to 1"
    );
    assert_eq!(
        loaded[0].spec.parent,
        PoolId::root(),
        "parent defaults to the root"
    );
    drop(store);
    let mut store = SqliteStore::open(dir.path()).unwrap();
    store
        .commit(&Change {
            pools: vec![PoolWrite::Delete(PoolId("batch".into()))],
            ..Change::default()
        })
        .unwrap();
    assert!(store.load().unwrap().pools.is_empty());
}

/// A handover's mark is written with its replacement's launch intent and
/// survives a reopen (a scheduler killed mid-handover knows both runs),
/// and a status update of the old run leaves it set.
#[test]
fn a_handovers_mark_is_stored_with_the_replacements_intent() {
    let dir = tempfile::tempdir().unwrap();
    let job = {
        let mut store = SqliteStore::open(dir.path()).unwrap();
        let job = create(&mut store, "svc", 1, 1);
        launches(&mut store, vec![launch(&job, 0, 0, 1)]);
        statuses(&mut store, vec![updated(&job, 0, 0, PodState::Running)]);
        launches(
            &mut store,
            vec![LaunchRecord {
                hands_over: Some(0),
                ..launch(&job, 0, 1, 2)
            }],
        );
        statuses(&mut store, vec![updated(&job, 0, 0, PodState::Running)]);
        job
    };
    let store = SqliteStore::open(dir.path()).unwrap();
    let runs = store.runs(&job).unwrap();
    assert_eq!(runs.len(), 2);
    assert!(runs[0].run.handing_over, "the old run hands over");
    assert!(!runs[1].run.handing_over);
    assert_eq!(runs[1].run.state, PodState::Launching);
}

#[test]
fn a_handle_whose_claim_was_overtaken_is_fenced_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = SqliteStore::open(dir.path()).unwrap();
    // A handle that never claimed (a lone scheduler) commits as before.
    let job = create(&mut old, "j", 2, 1);
    assert_eq!(old.claim_leadership("replica-a").unwrap(), 1);
    launches(&mut old, vec![launch(&job, 0, 0, 2)]);
    let mut new = SqliteStore::open_reader(dir.path()).unwrap();
    assert_eq!(new.claim_leadership("replica-b").unwrap(), 2);
    let before = old.revision().unwrap();
    let refused = old.commit(&Change {
        launches: vec![launch(&job, 1, 0, 3)],
        ..Change::default()
    });
    assert!(
        matches!(
            refused,
            Err(StoreError::Fenced {
                mine: 1,
                current: 2
            })
        ),
        "{refused:?}"
    );
    assert_eq!(old.revision().unwrap(), before);
    assert_eq!(old.runs(&job).unwrap().len(), 1);
    // The new leader writes.
    new.commit(&Change {
        launches: vec![launch(&job, 1, 0, 3)],
        ..Change::default()
    })
    .unwrap();
    assert_eq!(new.runs(&job).unwrap().len(), 2);
}
