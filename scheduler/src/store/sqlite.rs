//! The embedded [`Store`]: one SQLite file in the data directory (bundled
//! SQLite, WAL journal). Every write method is one transaction that bumps
//! the store-wide revision; `synchronous = FULL` makes each commit durable
//! before the method returns, which is what lets the runner acknowledge a
//! status update right after recording it.
//!
//! This module does I/O (it is the store's drive layer) but takes `now` as
//! an argument like the pure layers, so that tests control time.

use super::migrations;
use super::{
    JobRecord, PendingInfo, PodControl, PodEventRecord, Revision, RunRecord, StoreError, StoreRead,
};
#[cfg(test)]
use super::{LaunchIntent, StatusOutcome, StatusRecord};
use crate::model::ids::{InstanceId, JobId, TaskId};
use crate::model::spec::JobSpec;
use crate::model::state::{JobGoal, PodGoal, PodState};
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The database file's name inside the data directory.
pub const DB_FILE: &str = "drover.sqlite";

/// A SQLite-backed store (one connection).
pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
}

const RUN_COLUMNS: &str = "job_id, instance, run, state, agent_id, hostname, reason, message, \
     healthy, spec_version, launched_at_ms, started_at_ms, completed_at_ms, updated_at_ms, \
     kill_requested_at_ms, kill_reason, ports";

const JOB_COLUMNS: &str =
    "job_id, spec, version, goal, created_at_ms, updated_at_ms, revision, restart_batch_size";

impl SqliteStore {
    /// Opens (creating if needed) the store in `data_dir` and brings its
    /// schema up to date.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::DataDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DB_FILE);
        let mut store = Self::connect(&path)?;
        let found = migrations::current(&store.conn).map_err(|e| store.err(e))?;
        if found > migrations::latest() {
            return Err(StoreError::SchemaTooNew {
                path,
                found,
                known: migrations::latest(),
            });
        }
        migrations::migrate_to(&mut store.conn, migrations::latest()).map_err(|e| store.err(e))?;
        Ok(store)
    }

    /// A second connection to an opened store, for readers.
    pub fn open_reader(data_dir: &Path) -> Result<Self, StoreError> {
        Self::connect(&data_dir.join(DB_FILE))
    }

    fn connect(path: &Path) -> Result<Self, StoreError> {
        let wrap = StoreError::sqlite(path);
        let conn = Connection::open(path).map_err(wrap)?;
        // WAL lets API readers proceed while the runner writes; FULL syncs
        // each commit, the promise behind "acknowledged only once stored".
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(wrap)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(wrap)?;
        // 32 MiB of page cache instead of SQLite's 2 MiB: a batch of a few
        // thousand status updates touches more pages than 2 MiB holds, and
        // the spill (pagerStress: a WAL write and a re-read per page) was a
        // quarter of the runner's time storing 100,000 updates (perf).
        conn.pragma_update(None, "cache_size", -32 * 1024)
            .map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(wrap)?;
        Ok(SqliteStore {
            conn,
            path: path.to_owned(),
        })
    }

    /// Stops this connection's commits from copying the WAL back: a
    /// [`super::checkpoint::Checkpointer`] does that on its own thread.
    /// What stays with the writer is letting the WAL start over: SQLite
    /// rewinds it only when a write begins with every frame copied, which a
    /// writer committing every few ms never lets the other thread achieve,
    /// so in a burst the WAL grew to 130 MB (20,000 tasks) and every commit
    /// paid for new file pages. Past [`WAL_RESTART_PAGES`] the writer copies
    /// the few frames the checkpointer has not yet, so the next write
    /// rewinds.
    pub fn leave_checkpoints_to_thread(&self) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "wal_autocheckpoint", 0)
            .map_err(|e| self.err(e))?;
        self.conn.wal_hook(Some(rewind_when_long));
        Ok(())
    }

    /// Column `i` of `row` as text, borrowed; a stored non-text value is
    /// corrupt.
    fn text<'r>(
        &self,
        row: &'r rusqlite::Row<'_>,
        i: usize,
        what: &'static str,
    ) -> Result<&'r str, StoreError> {
        let value = row.get_ref(i).map_err(|e| self.err(e))?;
        value.as_str().map_err(|_| StoreError::CorruptValue {
            what,
            value: format!("{value:?}"),
        })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    fn job_in(&self, tx: &Connection, id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        load_job(tx, &self.path, id)
    }
}

/// WAL frames (4 KiB pages) past which the writer lets the WAL rewind:
/// 16 MiB, a few hundred ms of a burst.
pub const WAL_RESTART_PAGES: i32 = 4096;

/// The writer's WAL hook, after each commit (see
/// [`SqliteStore::leave_checkpoints_to_thread`]). A PASSIVE checkpoint never
/// waits: if the checkpointer holds the lock, the next commit tries again.
fn rewind_when_long(wal: &rusqlite::hooks::Wal, pages: std::ffi::c_int) -> rusqlite::Result<()> {
    if pages >= WAL_RESTART_PAGES {
        if let Err(e) = wal.checkpoint_v2(rusqlite::hooks::CheckpointMode::PASSIVE) {
            tracing::debug!(error = %e, "WAL not rewound this commit");
        }
    }
    Ok(())
}

/// One job with its pod controls, read through `conn` (a transaction or
/// the connection).
pub(super) fn load_job(
    conn: &Connection,
    path: &Path,
    id: &JobId,
) -> Result<Option<JobRecord>, StoreError> {
    let wrap = StoreError::sqlite(path);
    let raw = conn
        .query_row(
            &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?1"),
            [id.as_str()],
            raw_job,
        )
        .optional()
        .map_err(wrap)?;
    let Some(mut job) = raw.map(RawJob::into_record).transpose()? else {
        return Ok(None);
    };
    job.pods = pod_controls(conn, id).map_err(wrap)?;
    Ok(Some(job))
}

/// The `pods` rows of a job as controls.
pub(super) fn pod_controls(
    conn: &Connection,
    id: &JobId,
) -> rusqlite::Result<BTreeMap<u32, PodControl>> {
    let mut stmt =
        conn.prepare_cached("SELECT instance, goal, restart_from FROM pods WHERE job_id = ?1")?;
    let rows = stmt
        .query_map([id.as_str()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows
        .into_iter()
        .map(|(instance, goal, from)| {
            let control = PodControl {
                // An unknown goal can only come from a newer binary; running
                // is the safe reading (the pod is not lost).
                goal: PodGoal::parse(&goal).unwrap_or_default(),
                restart_from: from as u32,
            };
            (instance as u32, control)
        })
        .collect())
}

/// Bumps and returns the store-wide revision inside `tx`.
fn next_revision(tx: &Transaction<'_>) -> rusqlite::Result<Revision> {
    tx.query_row(
        "UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value",
        [],
        |row| row.get::<_, i64>(0),
    )
    .map(|v| v as Revision)
}

struct RawJob {
    job_id: String,
    spec: String,
    version: i64,
    goal: String,
    created_at: i64,
    updated_at: i64,
    revision: i64,
    restart_batch_size: i64,
}

fn raw_job(row: &Row<'_>) -> rusqlite::Result<RawJob> {
    Ok(RawJob {
        job_id: row.get(0)?,
        spec: row.get(1)?,
        version: row.get(2)?,
        goal: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        revision: row.get(6)?,
        restart_batch_size: row.get(7)?,
    })
}

impl RawJob {
    fn into_record(self) -> Result<JobRecord, StoreError> {
        let job_id = JobId(self.job_id);
        let spec: JobSpec =
            serde_json::from_str(&self.spec).map_err(|source| StoreError::CorruptSpec {
                job: job_id.clone(),
                source,
            })?;
        let goal = JobGoal::parse(&self.goal).ok_or(StoreError::CorruptValue {
            what: "job goal",
            value: self.goal,
        })?;
        Ok(JobRecord {
            job_id,
            spec,
            version: self.version as u64,
            goal,
            created_at: self.created_at,
            updated_at: self.updated_at,
            revision: self.revision as u64,
            restart_batch_size: self.restart_batch_size as u32,
            pods: BTreeMap::new(),
        })
    }
}

struct RawRun {
    job_id: String,
    instance: i64,
    run: i64,
    state: String,
    rest: RunRecord,
}

fn raw_run(row: &Row<'_>) -> rusqlite::Result<RawRun> {
    Ok(RawRun {
        job_id: row.get(0)?,
        instance: row.get(1)?,
        run: row.get(2)?,
        state: row.get(3)?,
        rest: RunRecord {
            task_id: TaskId::new(InstanceId::new(JobId(String::new()), 0), 0),
            state: PodState::Pending,
            agent_id: row.get(4)?,
            hostname: row.get(5)?,
            reason: row.get(6)?,
            message: row.get(7)?,
            healthy: row.get(8)?,
            spec_version: row.get::<_, i64>(9)? as u64,
            launched_at: row.get(10)?,
            started_at: row.get(11)?,
            completed_at: row.get(12)?,
            updated_at: row.get(13)?,
            kill_requested_at: row.get(14)?,
            kill_reason: row.get(15)?,
            ports: row
                .get::<_, Option<String>>(16)?
                .and_then(|p| serde_json::from_str(&p).ok())
                .unwrap_or_default(),
        },
    })
}

impl RawRun {
    fn into_record(self) -> Result<RunRecord, StoreError> {
        let state = PodState::parse(&self.state).ok_or(StoreError::CorruptValue {
            what: "pod state",
            value: self.state.clone(),
        })?;
        Ok(RunRecord {
            task_id: TaskId::new(
                InstanceId::new(JobId(self.job_id), self.instance as u32),
                self.run as u32,
            ),
            state,
            ..self.rest
        })
    }
}

impl SqliteStore {
    fn query_runs(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params, raw_run)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter().map(RawRun::into_record).collect()
    }
}

impl StoreRead for SqliteStore {
    fn revision(&self) -> Result<Revision, StoreError> {
        self.conn
            .query_row("SELECT value FROM revision WHERE id = 1", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|v| v as Revision)
            .map_err(|e| self.err(e))
    }

    fn framework_id(&self) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT framework_id FROM framework WHERE id = 1", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))
    }

    fn job(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError> {
        self.job_in(&self.conn, id)
    }

    fn jobs(&self, offset: u32, limit: u32) -> Result<(Vec<JobRecord>, u32), StoreError> {
        let total: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at_ms, job_id LIMIT ?1 OFFSET ?2"
            ))
            .map_err(|e| self.err(e))?;
        let raws = stmt
            .query_map(params![limit, offset], raw_job)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        let mut jobs = raws
            .into_iter()
            .map(RawJob::into_record)
            .collect::<Result<Vec<_>, _>>()?;
        for job in &mut jobs {
            job.pods = pod_controls(&self.conn, &job.job_id).map_err(|e| self.err(e))?;
        }
        Ok((jobs, total as u32))
    }

    fn runs(&self, job: &JobId) -> Result<Vec<RunRecord>, StoreError> {
        self.query_runs(
            &format!("SELECT {RUN_COLUMNS} FROM runs WHERE job_id = ?1 ORDER BY instance, run"),
            [job.as_str()],
        )
    }

    fn instance_runs(&self, instance: &InstanceId) -> Result<Vec<RunRecord>, StoreError> {
        self.query_runs(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE job_id = ?1 AND instance = ?2 ORDER BY run"
            ),
            params![instance.job.as_str(), instance.instance],
        )
    }

    fn pod_events(&self, instance: &InstanceId) -> Result<Vec<PodEventRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                // Stored events, and the launch intent of each run recorded
                // since schema 4 (older runs have theirs stored), in run
                // order, each run's intent first.
                &format!(
                    "SELECT run, state, mesos_state, reason, message, healthy, agent_id, hostname, \
                     timestamp_ms, revision, seq AS ord FROM pod_events \
                     WHERE job_id = ?1 AND instance = ?2 \
                     UNION ALL \
                     SELECT run, '{launching}', NULL, NULL, 'launch intent recorded', NULL, \
                     agent_id, hostname, launched_at_ms, launch_revision, -1 FROM runs \
                     WHERE job_id = ?1 AND instance = ?2 AND launch_revision IS NOT NULL \
                     ORDER BY run, ord",
                    launching = PodState::Launching.as_str()
                ),
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![instance.job.as_str(), instance.instance], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    PodEventRecord {
                        task_id: TaskId::new(instance.clone(), 0),
                        state: PodState::Pending,
                        mesos_state: row.get(2)?,
                        reason: row.get(3)?,
                        message: row.get(4)?,
                        healthy: row.get(5)?,
                        agent_id: row.get(6)?,
                        hostname: row.get(7)?,
                        timestamp: row.get(8)?,
                        revision: row.get::<_, i64>(9)? as u64,
                    },
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(run, state, event)| {
                let state = PodState::parse(&state).ok_or(StoreError::CorruptValue {
                    what: "pod state",
                    value: state,
                })?;
                Ok(PodEventRecord {
                    task_id: TaskId::new(instance.clone(), run as u32),
                    state,
                    ..event
                })
            })
            .collect()
    }

    fn live_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.query_runs(
            &format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE {} ORDER BY job_id, instance, run",
                migrations::LIVE_RUNS_PREDICATE
            ),
            [],
        )
    }

    fn visit_live_agents(&self, visit: &mut dyn FnMut(&str, u32, &str)) -> Result<(), StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT job_id, instance, agent_id FROM runs WHERE {} AND agent_id IS NOT NULL",
                migrations::LIVE_RUNS_PREDICATE
            ))
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let job = self.text(row, 0, "job id")?;
            let instance: i64 = row.get(1).map_err(|e| self.err(e))?;
            let agent = self.text(row, 2, "agent id")?;
            visit(job, instance as u32, agent);
        }
        Ok(())
    }

    fn pending_reasons(&self, job: &JobId) -> Result<BTreeMap<u32, PendingInfo>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT instance, pending_reason, pending_metrics FROM pods \
                 WHERE job_id = ?1 AND pending_reason IS NOT NULL",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([job.as_str()], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u32,
                    PendingInfo {
                        reason: r.get(1)?,
                        metrics: r.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    },
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<BTreeMap<_, _>>>()
            .map_err(|e| self.err(e))?;
        Ok(rows)
    }
}

#[path = "sqlite_write.rs"]
mod write;

#[cfg(test)]
#[path = "sqlite_tests.rs"]
mod tests;
