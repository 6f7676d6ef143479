//! The PostgreSQL schema as an ordered list of migrations, as SQLite's
//! (`super::super::sqlite::migrations`): `schema_version` holds how many
//! have been applied; opening applies the rest, each in its own
//! transaction under an advisory lock, so replicas starting together
//! migrate once. Version 1 is SQLite's schema 19 in PostgreSQL's types.
//! Never edit a released migration: append a new one.

use tokio_postgres::Client;

/// Migration `i` takes the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's schemas 1-19 hold, and the database's own
    // guard of "one live run per instance" (a handover's old run is the
    // one recorded exception: it is marked before its replacement is
    // inserted).
    "CREATE TABLE framework (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         framework_id TEXT
     );
     INSERT INTO framework (id, framework_id) VALUES (1, NULL);
     CREATE TABLE revision (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         value BIGINT NOT NULL
     );
     INSERT INTO revision (id, value) VALUES (1, 0);
     CREATE TABLE event_seq (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         value BIGINT NOT NULL
     );
     INSERT INTO event_seq (id, value) VALUES (1, 0);
     CREATE TABLE store_info (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         store_id TEXT NOT NULL,
         created_at_ms BIGINT NOT NULL
     );
     INSERT INTO store_info (id, store_id, created_at_ms)
     VALUES (1, replace(gen_random_uuid()::text, '-', ''),
             (extract(epoch FROM clock_timestamp()) * 1000)::bigint);
     CREATE TABLE leader_epoch (
         id INTEGER PRIMARY KEY CHECK (id = 1),
         epoch BIGINT NOT NULL,
         replica TEXT,
         claimed_at_ms BIGINT
     );
     INSERT INTO leader_epoch (id, epoch) VALUES (1, 0);
     CREATE TABLE jobs (
         job_id TEXT PRIMARY KEY,
         spec TEXT NOT NULL,
         version BIGINT NOT NULL,
         goal TEXT NOT NULL,
         created_at_ms BIGINT NOT NULL,
         updated_at_ms BIGINT NOT NULL,
         revision BIGINT NOT NULL,
         restart_batch_size BIGINT NOT NULL DEFAULT 0,
         create_workflow TEXT,
         spec_version BIGINT NOT NULL DEFAULT 1,
         workflows TEXT,
         updated_by TEXT NOT NULL DEFAULT ''
     );
     CREATE TABLE runs (
         job_id TEXT NOT NULL,
         instance BIGINT NOT NULL,
         run BIGINT NOT NULL,
         state TEXT NOT NULL,
         agent_id TEXT,
         hostname TEXT,
         reason TEXT,
         message TEXT,
         healthy BOOLEAN,
         spec_version BIGINT NOT NULL,
         launched_at_ms BIGINT NOT NULL,
         started_at_ms BIGINT,
         completed_at_ms BIGINT,
         updated_at_ms BIGINT NOT NULL,
         kill_requested_at_ms BIGINT,
         revision BIGINT NOT NULL,
         ports TEXT,
         kill_reason TEXT,
         launch_revision BIGINT,
         unreachable_since_ms BIGINT,
         handing_over BOOLEAN NOT NULL DEFAULT FALSE,
         ready BOOLEAN,
         image_name TEXT,
         image_digest TEXT,
         PRIMARY KEY (job_id, instance, run)
     );
     CREATE INDEX runs_live ON runs (job_id, instance, run) WHERE completed_at_ms IS NULL;
     CREATE UNIQUE INDEX runs_one_live_per_instance ON runs (job_id, instance)
         WHERE completed_at_ms IS NULL AND NOT handing_over AND state NOT IN
         ('POD_STATE_SUCCEEDED', 'POD_STATE_FAILED', 'POD_STATE_KILLED', 'POD_STATE_LOST');
     CREATE TABLE pods (
         job_id TEXT NOT NULL,
         instance BIGINT NOT NULL,
         goal TEXT NOT NULL DEFAULT 'RUNNING',
         restart_from BIGINT NOT NULL DEFAULT 0,
         pending_reason TEXT,
         pending_metrics TEXT,
         updated_at_ms BIGINT NOT NULL,
         PRIMARY KEY (job_id, instance)
     );
     CREATE TABLE pod_events (
         job_id TEXT NOT NULL,
         instance BIGINT NOT NULL,
         seq BIGINT NOT NULL,
         run BIGINT NOT NULL,
         state TEXT NOT NULL,
         mesos_state TEXT,
         reason TEXT,
         message TEXT,
         healthy BOOLEAN,
         agent_id TEXT,
         hostname TEXT,
         timestamp_ms BIGINT NOT NULL,
         revision BIGINT NOT NULL,
         ready BOOLEAN,
         PRIMARY KEY (job_id, instance, seq)
     );
     CREATE TABLE workflow_events (
         seq BIGSERIAL PRIMARY KEY,
         job_id TEXT NOT NULL,
         workflow BIGINT NOT NULL,
         instance BIGINT,
         state TEXT NOT NULL,
         at_ms BIGINT NOT NULL
     );
     CREATE INDEX workflow_events_by_job ON workflow_events (job_id, workflow, instance);
     CREATE TABLE pools (
         pool_id TEXT PRIMARY KEY,
         spec TEXT NOT NULL,
         version BIGINT NOT NULL,
         created_at_ms BIGINT NOT NULL,
         updated_at_ms BIGINT NOT NULL,
         revision BIGINT NOT NULL
     );
     CREATE TABLE host_maintenance (
         hostname TEXT PRIMARY KEY,
         state TEXT NOT NULL,
         cause TEXT NOT NULL,
         since_ms BIGINT NOT NULL,
         batch_grace_ms BIGINT NOT NULL,
         inverse_offer TEXT
     );
     CREATE TABLE pipeline_runs (
         run_id TEXT PRIMARY KEY,
         record TEXT NOT NULL,
         created_at_ms BIGINT NOT NULL,
         revision BIGINT NOT NULL
     );
     CREATE TABLE kfp_experiments (
         experiment_id TEXT PRIMARY KEY,
         name TEXT NOT NULL UNIQUE,
         description TEXT NOT NULL,
         created_at_ms BIGINT NOT NULL
     );
     INSERT INTO kfp_experiments (experiment_id, name, description, created_at_ms)
     VALUES ('00000000-0000-4000-8000-00000000d3f0', 'Default',
             'All runs created without specifying an experiment are grouped here.',
             (extract(epoch FROM clock_timestamp()) * 1000)::bigint);",
    // 2: the fencing check as one statement that fails the transaction on
    // a newer epoch, so that a commit can be sent in one flight (BEGIN to
    // COMMIT pipelined, `super` module doc): after its error the COMMIT
    // is a rollback. The share lock is held to the end of the commit, so a
    // claim (an UPDATE of the row) waits for a commit in flight, and a
    // commit waits for a claim in progress.
    "CREATE FUNCTION drover_fence(mine BIGINT) RETURNS BIGINT LANGUAGE plpgsql AS $$
     DECLARE
         current BIGINT;
     BEGIN
         SELECT epoch INTO current FROM leader_epoch WHERE id = 1 FOR SHARE;
         IF current IS DISTINCT FROM mine THEN
             RAISE EXCEPTION 'fenced: leader epoch % claimed since this handle''s %', current, mine
                 USING ERRCODE = 'DR001', DETAIL = current::text;
         END IF;
         RETURN current;
     END
     $$;",
    // 3: "one live run per instance" as the engine rules it
    // (`model::run::may_launch`): a run may be inserted only when every
    // other run of its instance has ended, is handing over, or is
    // unreachable (the partition policy's replacement). Version 1's unique
    // index counted an unreachable run live, so once an agent stayed away
    // past `inactive_after_secs` every launch intent naming the replaced
    // instance failed, and with it the whole commit: the leader launched
    // nothing, in any job, until the unreachable run was given up (the
    // chaos suite's long dose found it). No index can say this rule: the
    // replaced run may come back RUNNING beside its replacement (until the
    // engine kills it), which a unique index would refuse as well. So the
    // rule is checked where runs are inserted, once per statement against
    // the rows it inserted.
    "DROP INDEX runs_one_live_per_instance;
     CREATE FUNCTION drover_one_live_run() RETURNS trigger LANGUAGE plpgsql AS $$
     DECLARE
         clash RECORD;
     BEGIN
         SELECT n.job_id, n.instance, n.run, r.run AS live_run INTO clash
         FROM inserted n
         JOIN runs r ON r.job_id = n.job_id AND r.instance = n.instance AND r.run <> n.run
         WHERE r.completed_at_ms IS NULL
           AND r.state NOT IN
               ('POD_STATE_SUCCEEDED', 'POD_STATE_FAILED', 'POD_STATE_KILLED', 'POD_STATE_LOST')
           AND NOT r.handing_over
           AND r.unreachable_since_ms IS NULL
         LIMIT 1;
         IF FOUND THEN
             RAISE EXCEPTION 'run % of %-% inserted beside its live run %',
                 clash.run, clash.job_id, clash.instance, clash.live_run
                 USING ERRCODE = 'unique_violation';
         END IF;
         RETURN NULL;
     END
     $$;
     CREATE TRIGGER runs_one_live_per_instance AFTER INSERT ON runs
         REFERENCING NEW TABLE AS inserted
         FOR EACH STATEMENT EXECUTE FUNCTION drover_one_live_run();",
];

/// The SQLSTATE `drover_fence` raises; its DETAIL is the current epoch.
pub const FENCED_SQLSTATE: &str = "DR001";

/// The advisory lock every migration holds (any constant: Drover's).
const MIGRATION_LOCK: i64 = 0x0d20_7e20_0024;

/// Which runs are live: as SQLite's `LIVE_RUNS_PREDICATE`.
pub const LIVE_RUNS_PREDICATE: &str = "completed_at_ms IS NULL AND state NOT IN \
     ('POD_STATE_SUCCEEDED', 'POD_STATE_FAILED', 'POD_STATE_KILLED', 'POD_STATE_LOST')";

/// The schema version this binary writes.
pub fn latest() -> i64 {
    MIGRATIONS.len() as i64
}

/// Why the schema could not be brought up to date.
#[derive(Debug)]
pub enum MigrateError {
    /// Written by a newer Drover.
    TooNew {
        /// The stored version.
        found: i64,
        /// This binary's.
        known: i64,
    },
    /// PostgreSQL refused.
    Pg(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for MigrateError {
    fn from(e: tokio_postgres::Error) -> Self {
        MigrateError::Pg(e)
    }
}

/// The database's schema version (0: an empty database).
pub async fn current(client: &Client) -> Result<i64, tokio_postgres::Error> {
    let exists: bool = client
        .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
        .await?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let row = client
        .query_opt("SELECT version FROM schema_version WHERE id = 1", &[])
        .await?;
    Ok(row.map_or(0, |r| r.get(0)))
}

/// Applies the migrations this database lacks, or refuses a newer one.
/// Returns Ok(Ok(())) or the typed refusal, inside the client's result.
pub async fn migrate(
    client: &mut Client,
) -> Result<Result<(), MigrateError>, tokio_postgres::Error> {
    match migrate_inner(client).await {
        Ok(()) => Ok(Ok(())),
        Err(MigrateError::Pg(e)) => Err(e),
        Err(e) => Ok(Err(e)),
    }
}

async fn migrate_inner(client: &mut Client) -> Result<(), MigrateError> {
    // Replicas opening the store at once: the lock serialises them, the
    // first migrates and the others find the schema current.
    loop {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 id INTEGER PRIMARY KEY CHECK (id = 1),
                 version BIGINT NOT NULL
             );
             INSERT INTO schema_version (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;",
        )
        .await?;
        let version: i64 = tx
            .query_one("SELECT version FROM schema_version WHERE id = 1", &[])
            .await?
            .get(0);
        if version > latest() {
            return Err(MigrateError::TooNew {
                found: version,
                known: latest(),
            });
        }
        let Some(sql) = usize::try_from(version)
            .ok()
            .and_then(|v| MIGRATIONS.get(v))
        else {
            tx.commit().await?;
            return Ok(());
        };
        tx.batch_execute(sql).await?;
        tx.execute(
            "UPDATE schema_version SET version = $1 WHERE id = 1",
            &[&(version + 1)],
        )
        .await?;
        tx.commit().await?;
    }
}
