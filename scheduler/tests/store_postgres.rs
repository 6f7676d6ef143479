//! The PostgreSQL store against a real PostgreSQL server
//! (`drover_test_support::postgres`, started by this test and stopped when
//! it ends), held to the same contract as SQLite: the bodies below take
//! `&mut dyn Store` and run on both backends.
#![allow(clippy::unwrap_used)]

use drover_proto::v1::task_status::Reason;
use drover_proto::v1::TaskState;
use drover_scheduler::model::change::{
    Change, HostWrite, JobWrite, KillRecord, LaunchRecord, PendingInfo, PendingReason, PodEvent,
    PoolWrite, RunWrite, WorkflowEventRecord,
};
use drover_scheduler::model::host::{DrainCause, HostMaintenance, HostState};
use drover_scheduler::model::ids::{AgentId, InstanceId, JobId, TaskId};
use drover_scheduler::model::image::RunImage;
use drover_scheduler::model::job::{Job, PodControl};
use drover_scheduler::model::pool::{Pool, PoolId, PoolSpec};
use drover_scheduler::model::spec::JobSpec;
use drover_scheduler::model::state::{PodGoal, PodState};
use drover_scheduler::model::workflow::{WorkflowEvent, WorkflowState};
use drover_scheduler::store::postgres::schema;
use drover_scheduler::store::{PostgresStore, SqliteStore, Store, StoreError, StoreRead};
use drover_test_support::postgres::Postgres;
use std::time::{Duration, Instant};

fn spec(instances: u32) -> JobSpec {
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

fn create(store: &mut dyn Store, id: &str, instances: u32, now: i64) -> JobId {
    let job = JobId::parse(id).unwrap();
    store
        .commit(&Change {
            jobs: vec![JobWrite::Create(Box::new(Job::new(
                job.clone(),
                spec(instances),
                now,
            )))],
            ..Change::default()
        })
        .unwrap();
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

fn launches(store: &mut dyn Store, records: Vec<LaunchRecord>) {
    store
        .commit(&Change {
            launches: records,
            ..Change::default()
        })
        .unwrap();
}

fn updated(job: &JobId, instance: u32, run: u32, state: PodState) -> (RunWrite, PodEvent) {
    let write = RunWrite {
        task_id: task(job, instance, run),
        state,
        agent_id: Some(AgentId::new("agent-1")),
        reason: None,
        message: Some("m".into()),
        healthy: Some(true),
        ready: None,
        started_at: (state == PodState::Running).then_some(10),
        completed_at: state.is_terminal().then_some(10),
        updated_at: 10,
        unreachable_since: None,
        image: None,
    };
    let event = PodEvent {
        task_id: task(job, instance, run),
        state,
        mesos_state: Some(TaskState::TaskRunning),
        reason: None,
        message: Some("m".into()),
        healthy: Some(true),
        ready: Some(false),
        agent_id: Some(AgentId::new("agent-1")),
        hostname: Some("host-1".into()),
        timestamp: 10,
    };
    (write, event)
}

fn statuses(store: &mut dyn Store, updates: Vec<(RunWrite, PodEvent)>) {
    let (runs, events) = updates.into_iter().unzip();
    store
        .commit(&Change {
            runs,
            events,
            ..Change::default()
        })
        .unwrap();
}

// ---- the contract, on either backend ----

fn revisions_are_bumped_by_every_commit_but_pending_reasons_alone(store: &mut dyn Store) {
    let r0 = store.revision().unwrap();
    let job = create(store, "j", 1, 1);
    let r1 = store.revision().unwrap();
    assert_eq!(store.job(&job).unwrap().unwrap().revision, r1);
    launches(store, vec![launch(&job, 0, 0, 2)]);
    let r2 = store.revision().unwrap();
    statuses(store, vec![updated(&job, 0, 0, PodState::Running)]);
    let r3 = store.revision().unwrap();
    assert!(r0 < r1 && r1 < r2 && r2 < r3, "{r0} {r1} {r2} {r3}");
    let reasons = Change {
        pending_reasons: vec![PendingReason {
            pod: InstanceId::new(job.clone(), 0),
            info: Some(PendingInfo {
                reason: "no offer fits".into(),
                metrics: "{}".into(),
            }),
            at: 3,
        }],
        ..Change::default()
    };
    assert_eq!(store.commit(&reasons).unwrap(), r3);
    assert_eq!(store.revision().unwrap(), r3);
    assert_eq!(
        store.pending_reasons(&job).unwrap()[&0].reason,
        "no offer fits"
    );
}

fn a_change_that_fails_writes_nothing_of_itself(store: &mut dyn Store) {
    let job = create(store, "j", 2, 1);
    launches(store, vec![launch(&job, 0, 0, 2)]);
    let before = store.revision().unwrap();
    let change = Change {
        framework_id: Some(Some("fw".into())),
        launches: vec![launch(&job, 1, 0, 3), launch(&job, 0, 0, 3)],
        ..Change::default()
    };
    assert!(store.commit(&change).is_err());
    assert_eq!(store.revision().unwrap(), before);
    assert_eq!(store.framework_id().unwrap(), None);
    assert_eq!(store.runs(&job).unwrap().len(), 1);
}

fn everything_committed_loads_back(store: &mut dyn Store) {
    let job = create(store, "j", 3, 1);
    let other = create(store, "k", 1, 2);
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
    statuses(store, vec![(failed, event)]);
    launches(store, vec![launch(&job, 0, 1, 11)]);
    store
        .commit(&Change {
            kills: vec![KillRecord {
                task_id: task(&job, 1, 0),
                at: 12,
                reason: Some(Reason::TaskKilledDuringLaunch),
            }],
            pools: vec![PoolWrite::Put(Box::new(Pool {
                id: PoolId("pool-a".into()),
                spec: serde_json::from_value::<PoolSpec>(serde_json::json!({"name": "a"})).unwrap(),
                version: 2,
                created_ms: 5,
                updated_ms: 6,
            }))],
            hosts: vec![HostWrite::Put(HostMaintenance {
                hostname: "host-9".into(),
                state: HostState::Draining,
                cause: DrainCause::Operator,
                since: 7,
                batch_grace: Duration::from_millis(1500),
                inverse_offer: None,
            })],
            workflow_events: vec![WorkflowEventRecord {
                job_id: job.clone(),
                workflow: 1,
                event: WorkflowEvent {
                    instance: Some(2),
                    state: WorkflowState::RollingForward,
                    at: 13,
                },
            }],
            ..Change::default()
        })
        .unwrap();
    let snapshot = store.load().unwrap();
    assert_eq!(snapshot.framework_id.as_deref(), Some("fw"));
    assert_eq!(snapshot.revision, store.revision().unwrap());
    assert_eq!(snapshot.identity.store_id.len(), 32);
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
    assert_eq!(ended.completed_at, Some(10));
    assert_eq!(ended.healthy, Some(true));
    assert_eq!(instances[1][0].kill_requested_at, Some(12));
    assert_eq!(
        instances[1][0].kill_reason,
        Some(Reason::TaskKilledDuringLaunch)
    );
    assert!(instances[2].is_empty());
    assert_eq!(snapshot.pools.len(), 1);
    assert_eq!(snapshot.pools[0].spec.name, "a");
    assert_eq!(snapshot.hosts[0].batch_grace, Duration::from_millis(1500));
    assert_eq!(snapshot.experiments.len(), 1, "the Default experiment");
    let runs = store.runs(&job).unwrap();
    assert_eq!(runs[0].ports, [("http".to_string(), 31002)]);
    assert_eq!(runs[0].message.as_deref(), Some("m"));
    let events = store.pod_events(&InstanceId::new(job.clone(), 0)).unwrap();
    let story: Vec<_> = events.iter().map(|e| (e.task_id.run, e.state)).collect();
    assert_eq!(
        story,
        [
            (0, PodState::Launching),
            (0, PodState::Failed),
            (1, PodState::Launching)
        ]
    );
    assert_eq!(events[1].ready, Some(false));
    assert_eq!(events[1].mesos_state.as_deref(), Some("TASK_RUNNING"));
    let live: Vec<_> = store
        .live_runs()
        .unwrap()
        .into_iter()
        .map(|r| r.task_id.to_string())
        .collect();
    assert_eq!(live.len(), 3, "{live:?}");
    let flow = store.workflow_events(&job, 1, Some(2)).unwrap();
    assert_eq!(flow.len(), 1);
    assert!(store.workflow_events(&job, 1, None).unwrap().is_empty());
    let (page, total) = store.jobs(1, 10).unwrap();
    assert_eq!((page.len(), total), (1, 2));
    // Deleting a job forgets its runs, pods and events.
    store
        .commit(&Change {
            jobs: vec![JobWrite::Delete(job.clone())],
            ..Change::default()
        })
        .unwrap();
    assert!(store.job(&job).unwrap().is_none());
    assert!(store.runs(&job).unwrap().is_empty());
    assert!(store
        .pod_events(&InstanceId::new(job, 0))
        .unwrap()
        .is_empty());
}

/// `new` is a second handle on the same store as `old`.
fn a_handle_overtaken_by_a_newer_claim_is_fenced(old: &mut dyn Store, new: &mut dyn Store) {
    let job = create(old, "fenced", 2, 1);
    let a = old.claim_leadership("replica-a").unwrap();
    launches(old, vec![launch(&job, 0, 0, 2)]);
    let b = new.claim_leadership("replica-b").unwrap();
    assert!(b > a);
    let before = old.revision().unwrap();
    let refused = old.commit(&Change {
        launches: vec![launch(&job, 1, 0, 3)],
        ..Change::default()
    });
    match refused {
        Err(StoreError::Fenced { mine, current }) => assert_eq!((mine, current), (a, b)),
        other => panic!("expected Fenced, got {other:?}"),
    }
    assert_eq!(old.revision().unwrap(), before, "nothing of it written");
    assert_eq!(old.runs(&job).unwrap().len(), 1);
    launches(new, vec![launch(&job, 1, 0, 3)]);
    assert_eq!(new.runs(&job).unwrap().len(), 2);
}

type Body = fn(&mut dyn Store);

/// The digest an executor reported is kept by later updates that do not
/// name it, and loads back.
fn a_runs_image_is_kept_by_updates_that_do_not_name_it(store: &mut dyn Store) {
    let job = create(store, "img", 1, 1);
    launches(store, vec![launch(&job, 0, 0, 1)]);
    let image = RunImage {
        name: Some("drover-test/busybox:1".into()),
        digest: Some(format!("sha256:{}", "5a".repeat(32))),
    };
    let (mut starting, event) = updated(&job, 0, 0, PodState::Starting);
    starting.image = Some(image.clone());
    statuses(store, vec![(starting, event)]);
    statuses(store, vec![updated(&job, 0, 0, PodState::Succeeded)]);
    let run = &store.runs(&job).unwrap()[0];
    assert_eq!(run.run.state, PodState::Succeeded);
    assert_eq!(run.image, Some(image));
}

/// One commit may name a run (or a pod) twice: the writes land in
/// order, as if one by one (the PostgreSQL store batches a table's rows
/// into one statement only where no key repeats).
fn writes_of_one_key_in_one_commit_land_in_order(store: &mut dyn Store) {
    let job = create(store, "twice", 2, 1);
    launches(store, vec![launch(&job, 0, 0, 1), launch(&job, 1, 0, 1)]);
    let image = RunImage {
        name: Some("drover-test/busybox:1".into()),
        digest: Some(format!("sha256:{}", "7b".repeat(32))),
    };
    let (mut starting, first) = updated(&job, 0, 0, PodState::Starting);
    starting.image = Some(image.clone());
    let (running, second) = updated(&job, 0, 0, PodState::Running);
    let (other, third) = updated(&job, 1, 0, PodState::Running);
    let reason = |text: &str| PendingReason {
        pod: InstanceId::new(job.clone(), 1),
        info: Some(PendingInfo {
            reason: text.into(),
            metrics: "{}".into(),
        }),
        at: 5,
    };
    store
        .commit(&Change {
            runs: vec![starting, other, running],
            events: vec![first, third, second],
            pending_reasons: vec![reason("first"), reason("second")],
            ..Change::default()
        })
        .unwrap();
    let runs = store.runs(&job).unwrap();
    assert_eq!(runs[0].run.state, PodState::Running, "the later write wins");
    assert_eq!(runs[0].image, Some(image), "kept by the write naming none");
    assert_eq!(runs[1].run.state, PodState::Running);
    assert_eq!(store.pending_reasons(&job).unwrap()[&1].reason, "second");
    let story: Vec<_> = store
        .pod_events(&InstanceId::new(job.clone(), 0))
        .unwrap()
        .iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        story,
        [PodState::Launching, PodState::Starting, PodState::Running]
    );
}

const CONTRACT: &[(&str, Body)] = &[
    ("twice", writes_of_one_key_in_one_commit_land_in_order),
    ("image", a_runs_image_is_kept_by_updates_that_do_not_name_it),
    (
        "revisions",
        revisions_are_bumped_by_every_commit_but_pending_reasons_alone,
    ),
    (
        "failed_change",
        a_change_that_fails_writes_nothing_of_itself,
    ),
    ("load_back", everything_committed_loads_back),
];

#[test]
fn postgres_and_sqlite_keep_the_same_contract() {
    let pg = Postgres::start();
    for (name, body) in CONTRACT {
        let dir = tempfile::tempdir().unwrap();
        body(&mut SqliteStore::open(dir.path()).unwrap());
        let url = pg.create_database(name);
        body(&mut PostgresStore::open(&url).unwrap());
    }
    let dir = tempfile::tempdir().unwrap();
    a_handle_overtaken_by_a_newer_claim_is_fenced(
        &mut SqliteStore::open(dir.path()).unwrap(),
        &mut SqliteStore::open_reader(dir.path()).unwrap(),
    );
    let url = pg.create_database("fencing");
    a_handle_overtaken_by_a_newer_claim_is_fenced(
        &mut PostgresStore::open(&url).unwrap(),
        &mut PostgresStore::open(&url).unwrap(),
    );
}

#[test]
fn the_database_refuses_a_second_live_run_of_an_instance_but_a_handover_or_a_replacement() {
    let pg = Postgres::start();
    let mut store = PostgresStore::open(&pg.create_database("live")).unwrap();
    let job = create(&mut store, "j", 1, 1);
    launches(&mut store, vec![launch(&job, 0, 0, 2)]);
    let second = store.commit(&Change {
        launches: vec![launch(&job, 0, 1, 3)],
        ..Change::default()
    });
    let err = second.expect_err("two live runs of one instance");
    assert!(
        format!("{:?}", err).contains("run 1 of j-0 inserted beside its live run 0"),
        "{err:?}"
    );
    // A handover's replacement is the one exception.
    let mut replacement = launch(&job, 0, 1, 3);
    replacement.hands_over = Some(0);
    launches(&mut store, vec![replacement]);
    // Once the old run ended, a third may start after the second ends.
    statuses(&mut store, vec![updated(&job, 0, 0, PodState::Killed)]);
    statuses(&mut store, vec![updated(&job, 0, 1, PodState::Succeeded)]);
    launches(&mut store, vec![launch(&job, 0, 2, 20)]);
    assert_eq!(store.live_runs().unwrap().len(), 1);

    // The partition policy's replacement: a run unreachable past the
    // policy's wait is replaced beside it, and the replaced run may come
    // back RUNNING (its agent returned) until the engine kills it. Other
    // instances' launches in the same commit are not refused with it.
    let (mut away, event) = updated(&job, 0, 2, PodState::Running);
    away.unreachable_since = Some(30);
    statuses(&mut store, vec![(away, event)]);
    let other = create(&mut store, "k", 2, 1);
    launches(
        &mut store,
        vec![launch(&job, 0, 3, 40), launch(&other, 0, 0, 40)],
    );
    statuses(&mut store, vec![updated(&job, 0, 2, PodState::Running)]);
    assert_eq!(store.live_runs().unwrap().len(), 3);
    // Two runs inserted for one instance in one statement are refused too.
    let twice = store.commit(&Change {
        launches: vec![launch(&other, 1, 0, 50), launch(&other, 1, 1, 50)],
        ..Change::default()
    });
    twice.expect_err("two live runs of one instance in one commit");
}

#[test]
fn a_newer_schema_is_refused_and_replicas_migrate_once() {
    let pg = Postgres::start();
    let url = pg.create_database("schema");
    // Replicas opening a new store at once: one migrates, all open.
    let openers: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PostgresStore::open(&url).map(|_| ()))
        })
        .collect();
    for opener in openers {
        opener.join().unwrap().unwrap();
    }
    assert_eq!(
        pg.psql_on("schema", "SELECT version FROM schema_version"),
        schema::latest().to_string()
    );
    pg.psql_on("schema", "UPDATE schema_version SET version = 99");
    match PostgresStore::open(&url) {
        Err(StoreError::PostgresSchemaTooNew { found: 99, url, .. }) => {
            assert!(!url.contains(drover_test_support::postgres::PASSWORD))
        }
        Err(other) => panic!("expected PostgresSchemaTooNew, got {other}"),
        Ok(_) => panic!("a newer schema was opened"),
    }
}

#[test]
fn a_restarted_server_keeps_every_acknowledged_commit_and_the_store_reconnects() {
    let mut pg = Postgres::start();
    let url = pg.create_database("restart");
    let mut store = PostgresStore::open(&url).unwrap();
    let job = create(&mut store, "j", 50, 1);
    let mut acknowledged = 0;
    for i in 0..50 {
        launches(&mut store, vec![launch(&job, i, 0, 2)]);
        acknowledged += 1;
    }
    let revision = store.revision().unwrap();
    pg.restart();
    // The first call after the restart may meet the dead connection; the
    // one after it reconnects.
    let started = Instant::now();
    let mut again = store.revision();
    while again.is_err() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        again = store.revision();
    }
    assert_eq!(again.unwrap(), revision);
    assert_eq!(store.runs(&job).unwrap().len(), acknowledged);
    statuses(&mut store, vec![updated(&job, 0, 0, PodState::Succeeded)]);
    launches(&mut store, vec![launch(&job, 0, 1, 3)]);
    assert_eq!(store.runs(&job).unwrap().len(), acknowledged + 1);
}

#[test]
fn a_claim_waits_for_a_commit_in_flight_and_the_loser_writes_nothing_after() {
    // Many commits racing a claim from another handle: every commit
    // either landed before the claim (and is stored) or was fenced.
    let pg = Postgres::start();
    let url = pg.create_database("race");
    let mut old = PostgresStore::open(&url).unwrap();
    let job = create(&mut old, "j", 400, 1);
    old.claim_leadership("a").unwrap();
    let claimer = {
        let url = url.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut new = PostgresStore::open(&url).unwrap();
            new.claim_leadership("b").unwrap()
        })
    };
    let mut stored = 0;
    let mut fenced_at = None;
    for i in 0..400 {
        match old.commit(&Change {
            launches: vec![launch(&job, i, 0, 2)],
            ..Change::default()
        }) {
            Ok(_) => {
                assert!(fenced_at.is_none(), "a commit after being fenced landed");
                stored += 1;
            }
            Err(StoreError::Fenced { .. }) => {
                fenced_at.get_or_insert(i);
            }
            Err(e) => panic!("{e}"),
        }
    }
    claimer.join().unwrap();
    assert!(fenced_at.is_some(), "the claim never overtook the commits");
    assert_eq!(old.runs(&job).unwrap().len(), stored);
}
