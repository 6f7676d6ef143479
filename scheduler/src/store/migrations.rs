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
];

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
