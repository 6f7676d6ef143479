//! The SQLite schema as an ordered list of migrations. `PRAGMA user_version`
//! holds how many have been applied; opening a database applies the rest,
//! each in its own transaction, so a crash mid-upgrade leaves a database at
//! a known version. Never edit a released migration: append a new one.

use rusqlite::Connection;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: jobs, runs, pod events, the framework id and the revision counter.
    "CREATE TABLE framework (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         framework_id TEXT
     );
     INSERT INTO framework (id, framework_id) VALUES (1, NULL);
     CREATE TABLE revision (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         value INTEGER NOT NULL
     );
     INSERT INTO revision (id, value) VALUES (1, 0);
     CREATE TABLE jobs (
         job_id TEXT PRIMARY KEY,
         spec TEXT NOT NULL,
         version INTEGER NOT NULL,
         goal TEXT NOT NULL,
         created_at_ms INTEGER NOT NULL,
         updated_at_ms INTEGER NOT NULL,
         revision INTEGER NOT NULL
     );
     CREATE TABLE runs (
         job_id TEXT NOT NULL,
         instance INTEGER NOT NULL,
         run INTEGER NOT NULL,
         task_id TEXT NOT NULL UNIQUE,
         state TEXT NOT NULL,
         agent_id TEXT,
         hostname TEXT,
         reason TEXT,
         message TEXT,
         healthy INTEGER,
         spec_version INTEGER NOT NULL,
         launched_at_ms INTEGER NOT NULL,
         started_at_ms INTEGER,
         completed_at_ms INTEGER,
         updated_at_ms INTEGER NOT NULL,
         kill_requested_at_ms INTEGER,
         revision INTEGER NOT NULL,
         PRIMARY KEY (job_id, instance, run)
     );
     CREATE TABLE pod_events (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         job_id TEXT NOT NULL,
         instance INTEGER NOT NULL,
         run INTEGER NOT NULL,
         state TEXT NOT NULL,
         mesos_state TEXT,
         reason TEXT,
         message TEXT,
         healthy INTEGER,
         agent_id TEXT,
         hostname TEXT,
         timestamp_ms INTEGER NOT NULL,
         revision INTEGER NOT NULL
     );",
    // 2: indexes for the two hot reads: live runs (reconciliation) and a
    // pod's history (the API).
    "CREATE INDEX runs_by_state ON runs (state);
     CREATE INDEX pod_events_by_pod ON pod_events (job_id, instance, seq);",
    // 3: per-pod goal state and restarts, why a pod is pending, the ports a
    // run was given, and why the scheduler killed a run.
    "ALTER TABLE runs ADD COLUMN ports TEXT;
     ALTER TABLE runs ADD COLUMN kill_reason TEXT;
     ALTER TABLE jobs ADD COLUMN restart_batch_size INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE pods (
         job_id TEXT NOT NULL,
         instance INTEGER NOT NULL,
         goal TEXT NOT NULL DEFAULT 'RUNNING',
         restart_from INTEGER NOT NULL DEFAULT 0,
         pending_reason TEXT,
         pending_metrics TEXT,
         updated_at_ms INTEGER NOT NULL,
         PRIMARY KEY (job_id, instance)
     );",
    // 4: the revision of a run's launch intent. The intent's pod event is
    // no longer stored as a row of its own but read from the run (a third
    // of the cost of recording an intent, measured in a 20,000-task
    // launch); runs recorded before this version keep their stored event.
    "ALTER TABLE runs ADD COLUMN launch_revision INTEGER;",
    // 5: runs stored by their key alone. Each launch intent wrote four
    // b-trees (the rowid table, the key's index, a unique index on task_id
    // and the state index) and each status update moved its run between two
    // pages of the state index. Now one WITHOUT ROWID table keyed by
    // (job_id, instance, run), which is all a task id says, so the task_id
    // column goes; and live runs are found by their unset completion time
    // (`LIVE_RUNS_PREDICATE`), a column only a run's terminal update
    // writes, so STARTING -> RUNNING touches no index at all. (Partial
    // indexes on the state were measured slower than either.)
    "CREATE TABLE runs_v5 (
         job_id TEXT NOT NULL,
         instance INTEGER NOT NULL,
         run INTEGER NOT NULL,
         state TEXT NOT NULL,
         agent_id TEXT,
         hostname TEXT,
         reason TEXT,
         message TEXT,
         healthy INTEGER,
         spec_version INTEGER NOT NULL,
         launched_at_ms INTEGER NOT NULL,
         started_at_ms INTEGER,
         completed_at_ms INTEGER,
         updated_at_ms INTEGER NOT NULL,
         kill_requested_at_ms INTEGER,
         revision INTEGER NOT NULL,
         ports TEXT,
         kill_reason TEXT,
         launch_revision INTEGER,
         PRIMARY KEY (job_id, instance, run)
     ) WITHOUT ROWID;
     INSERT INTO runs_v5 (job_id, instance, run, state, agent_id, hostname, reason, message,
         healthy, spec_version, launched_at_ms, started_at_ms, completed_at_ms, updated_at_ms,
         kill_requested_at_ms, revision, ports, kill_reason, launch_revision)
     SELECT job_id, instance, run, state, agent_id, hostname, reason, message,
         healthy, spec_version, launched_at_ms, started_at_ms, completed_at_ms, updated_at_ms,
         kill_requested_at_ms, revision, ports, kill_reason, launch_revision FROM runs;
     DROP TABLE runs;
     ALTER TABLE runs_v5 RENAME TO runs;
     CREATE INDEX runs_by_completion ON runs (completed_at_ms);",
    // 6: a pod's events kept in the order a pod's history reads them, not
    // in a rowid table plus an index on (job, instance, seq): one B-tree
    // write per status update instead of two and no AUTOINCREMENT
    // bookkeeping (storing an update: 4.4 -> 3.9 us). `seq` still orders
    // every event ever stored; the store hands it out from `event_seq`.
    "CREATE TABLE pod_events_v6 (
         job_id TEXT NOT NULL,
         instance INTEGER NOT NULL,
         seq INTEGER NOT NULL,
         run INTEGER NOT NULL,
         state TEXT NOT NULL,
         mesos_state TEXT,
         reason TEXT,
         message TEXT,
         healthy INTEGER,
         agent_id TEXT,
         hostname TEXT,
         timestamp_ms INTEGER NOT NULL,
         revision INTEGER NOT NULL,
         PRIMARY KEY (job_id, instance, seq)
     ) WITHOUT ROWID;
     INSERT INTO pod_events_v6 (job_id, instance, seq, run, state, mesos_state, reason,
         message, healthy, agent_id, hostname, timestamp_ms, revision)
     SELECT job_id, instance, seq, run, state, mesos_state, reason, message, healthy,
         agent_id, hostname, timestamp_ms, revision FROM pod_events;
     CREATE TABLE event_seq (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         value INTEGER NOT NULL
     );
     INSERT INTO event_seq VALUES (1, (SELECT COALESCE(MAX(seq), 0) FROM pod_events));
     DROP TABLE pod_events;
     DELETE FROM sqlite_sequence WHERE name = 'pod_events';
     ALTER TABLE pod_events_v6 RENAME TO pod_events;",
    // 7: the store's own identity, made once: a random id that tells one
    // store (and its backups) from another, and when it was made. A store
    // older than this version gets them at its upgrade, the earliest time
    // this binary can vouch for. Both are made by SQLite inside the
    // migration's transaction, so a crash never leaves a store without them.
    "CREATE TABLE store_info (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         store_id TEXT NOT NULL,
         created_at_ms INTEGER NOT NULL
     );
     INSERT INTO store_info (id, store_id, created_at_ms)
     VALUES (1, lower(hex(randomblob(16))), CAST(unixepoch('subsec') * 1000 AS INTEGER));",
    // 8: since when a run's agent has been unreachable (partition-aware
    // Mesos): its policy's clock survives a restart.
    "ALTER TABLE runs ADD COLUMN unreachable_since_ms INTEGER;",
    // 9: a job's creation workflow (Peloton CreateSpec: batch size,
    // retries, paused, aborted) as JSON; NULL for a job created without.
    "ALTER TABLE jobs ADD COLUMN create_workflow TEXT;",
    // 10: versions and updates. A job's spec has its own version (the
    // entity version it was accepted at); until now a spec never changed,
    // so every job's spec and every run is at spec version 1. A job's
    // update workflows (JSON) and their per-instance story.
    "ALTER TABLE jobs ADD COLUMN spec_version INTEGER NOT NULL DEFAULT 1;
     ALTER TABLE jobs ADD COLUMN workflows TEXT;
     UPDATE runs SET spec_version = 1;
     CREATE TABLE workflow_events (
         seq INTEGER PRIMARY KEY AUTOINCREMENT,
         job_id TEXT NOT NULL,
         workflow INTEGER NOT NULL,
         instance INTEGER,
         state TEXT NOT NULL,
         at_ms INTEGER NOT NULL
     );
     CREATE INDEX workflow_events_by_job ON workflow_events (job_id, workflow, instance);",
    // 11: who made a job's current version (issue 21); jobs stored before
    // say nobody.
    "ALTER TABLE jobs ADD COLUMN updated_by TEXT NOT NULL DEFAULT '';",
    // 12: resource pools (issue 22): each pool's configuration as JSON
    // (the model's `PoolSpec`), its version and times. The root is never
    // stored; the default pool only once reconfigured.
    "CREATE TABLE pools (
         pool_id TEXT PRIMARY KEY,
         spec TEXT NOT NULL,
         version INTEGER NOT NULL,
         created_at_ms INTEGER NOT NULL,
         updated_at_ms INTEGER NOT NULL,
         revision INTEGER NOT NULL
     );",
    // 13 (issue 22): hosts in maintenance (a host without a row is UP).
    "CREATE TABLE host_maintenance (
         hostname TEXT PRIMARY KEY,
         state TEXT NOT NULL,
         cause TEXT NOT NULL,
         since_ms INTEGER NOT NULL,
         batch_grace_ms INTEGER NOT NULL,
         inverse_offer TEXT
     );",
    // 14 (issue 22): a run handing its instance over to a replacement (a
    // drain's handover): set with the replacement's launch intent, so a
    // restarted scheduler knows the two live runs of the instance.
    "ALTER TABLE runs ADD COLUMN handing_over INTEGER NOT NULL DEFAULT 0;",
    // 15 (issue 19): whether a run's readiness check (its Mesos `check`)
    // last passed, on the run and on each update that said. Runs and
    // events stored before say nothing (NULL).
    "ALTER TABLE runs ADD COLUMN ready INTEGER;
     ALTER TABLE pod_events ADD COLUMN ready INTEGER;",
    // 16 (issue 23): Kubeflow pipeline runs, each the model's
    // `pipeline_run::RunRecord` as JSON (what the API was given and the
    // driver's state, every node's phase and outputs).
    "CREATE TABLE pipeline_runs (
         run_id TEXT PRIMARY KEY,
         record TEXT NOT NULL,
         created_at_ms INTEGER NOT NULL,
         revision INTEGER NOT NULL
     );",
    // 17 (issue 23): Kubeflow experiments (names unique), with `Default`
    // (its fixed id: `pipeline_run::experiment::DEFAULT_EXPERIMENT_ID`)
    // made when the store is.
    "CREATE TABLE kfp_experiments (
         experiment_id TEXT PRIMARY KEY,
         name TEXT NOT NULL UNIQUE,
         description TEXT NOT NULL,
         created_at_ms INTEGER NOT NULL
     );
     INSERT INTO kfp_experiments (experiment_id, name, description, created_at_ms)
     VALUES ('00000000-0000-4000-8000-00000000d3f0', 'Default',
             'All runs created without specifying an experiment are grouped here.',
             CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));",
    // 18 (issue 25): the image a run's executor resolved (its status
    // labels `drover.image.name` and `drover.image.digest`), shown in the
    // pod views; runs stored before, and runs without an image, say none.
    "ALTER TABLE runs ADD COLUMN image_name TEXT;
     ALTER TABLE runs ADD COLUMN image_digest TEXT;",
    // 19 (issue 24): the leader epoch behind fencing (`Store::claim_leadership`):
    // bumped by each replica that becomes leader; a handle that claimed
    // commits only while it is still its own. 0: nobody ever claimed.
    "CREATE TABLE leader_epoch (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         epoch INTEGER NOT NULL,
         replica TEXT,
         claimed_at_ms INTEGER
     );
     INSERT INTO leader_epoch (id, epoch) VALUES (1, 0);",
];

/// The tables each schema version has, with the version that made each:
/// what the `integrity` check expects of a store at a given version.
pub const TABLES: &[(i64, &str)] = &[
    (1, "framework"),
    (1, "revision"),
    (1, "jobs"),
    (1, "runs"),
    (1, "pod_events"),
    (3, "pods"),
    (6, "event_seq"),
    (7, "store_info"),
    (10, "workflow_events"),
    (12, "pools"),
    (13, "host_maintenance"),
    (16, "pipeline_runs"),
    (17, "kfp_experiments"),
    (19, "leader_epoch"),
];

/// Which runs are live, for the `runs_by_completion` index (migration 5):
/// a run's completion time is set by the update that makes it terminal and
/// never otherwise; the state test makes sure of it.
pub const LIVE_RUNS_PREDICATE: &str = "completed_at_ms IS NULL AND state NOT IN \
     ('POD_STATE_SUCCEEDED', 'POD_STATE_FAILED', 'POD_STATE_KILLED', 'POD_STATE_LOST')";

/// The schema version this binary writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// The database's schema version.
pub fn current(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
}

/// Applies migrations until the schema is at version `target`.
pub fn migrate_to(conn: &mut Connection, target: i64) -> rusqlite::Result<()> {
    let mut version = current(conn)?;
    while version < target {
        let Some(sql) = MIGRATIONS.get(version as usize) else {
            break;
        };
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
        version += 1;
    }
    Ok(())
}
