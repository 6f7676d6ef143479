//! The write half of [`super::SqliteStore`]: each method is one transaction
//! that bumps the revision, and holds the rules of [`crate::store`] (intent
//! only for an instance with no live run; terminal states are final).

use super::{next_revision, SqliteStore, JOB_COLUMNS};
use crate::model::ids::{InstanceId, JobId, TaskId};
use crate::model::spec::JobSpec;
use crate::model::state::{JobGoal, PodGoal, PodState};
use crate::store::{
    JobRecord, LaunchIntent, PendingInfo, Revision, StatusOutcome, StatusRecord, Store, StoreError,
    StoreRead, UnixMillis,
};
use rusqlite::{params, CachedStatement, OptionalExtension, Transaction};
use std::collections::HashMap;

impl Store for SqliteStore {
    fn set_framework_id(&mut self, id: Option<&str>) -> Result<Revision, StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        let revision = next_revision(&tx).map_err(wrap)?;
        tx.execute("UPDATE framework SET framework_id = ?1 WHERE id = 1", [id])
            .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(revision)
    }

    fn create_job(
        &mut self,
        id: &JobId,
        spec: &JobSpec,
        now: UnixMillis,
    ) -> Result<JobRecord, StoreError> {
        let spec_json = serde_json::to_string(spec).map_err(|source| StoreError::CorruptSpec {
            job: id.clone(),
            source,
        })?;
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        let exists: Option<i64> = tx
            .query_row("SELECT 1 FROM jobs WHERE job_id = ?1", [id.as_str()], |r| {
                r.get(0)
            })
            .optional()
            .map_err(wrap)?;
        if exists.is_some() {
            return Err(StoreError::JobExists(id.clone()));
        }
        let revision = next_revision(&tx).map_err(wrap)?;
        tx.execute(
            "INSERT INTO jobs (job_id, spec, version, goal, created_at_ms, updated_at_ms, revision) \
             VALUES (?1, ?2, 1, ?3, ?4, ?4, ?5)",
            params![id.as_str(), spec_json, JobGoal::Running.as_str(), now, revision as i64],
        )
        .map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(JobRecord {
            job_id: id.clone(),
            spec: spec.clone(),
            version: 1,
            goal: JobGoal::Running,
            created_at: now,
            updated_at: now,
            revision,
            restart_batch_size: 0,
            pods: Default::default(),
        })
    }

    fn set_job_goal(
        &mut self,
        id: &JobId,
        goal: JobGoal,
        expected_version: Option<u64>,
        now: UnixMillis,
    ) -> Result<JobRecord, StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        let current: Option<i64> = tx
            .query_row(
                "SELECT version FROM jobs WHERE job_id = ?1",
                [id.as_str()],
                |r| r.get(0),
            )
            .optional()
            .map_err(wrap)?;
        let Some(current) = current.map(|v| v as u64) else {
            return Err(StoreError::JobNotFound(id.clone()));
        };
        if let Some(expected) = expected_version {
            if expected != current {
                return Err(StoreError::VersionMismatch {
                    job: id.clone(),
                    current,
                    expected,
                });
            }
        }
        let revision = next_revision(&tx).map_err(wrap)?;
        tx.execute(
            "UPDATE jobs SET goal = ?2, version = version + 1, updated_at_ms = ?3, revision = ?4 \
             WHERE job_id = ?1",
            params![id.as_str(), goal.as_str(), now, revision as i64],
        )
        .map_err(wrap)?;
        let raw = tx
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?1"),
                [id.as_str()],
                super::raw_job,
            )
            .map_err(wrap)?;
        let pods = super::pod_controls(&tx, id).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        let mut job = raw.into_record()?;
        job.pods = pods;
        Ok(job)
    }

    fn delete_job(&mut self, id: &JobId) -> Result<Revision, StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        let deleted = tx
            .execute("DELETE FROM jobs WHERE job_id = ?1", [id.as_str()])
            .map_err(wrap)?;
        if deleted == 0 {
            return Err(StoreError::JobNotFound(id.clone()));
        }
        tx.execute("DELETE FROM runs WHERE job_id = ?1", [id.as_str()])
            .map_err(wrap)?;
        tx.execute("DELETE FROM pod_events WHERE job_id = ?1", [id.as_str()])
            .map_err(wrap)?;
        tx.execute("DELETE FROM pods WHERE job_id = ?1", [id.as_str()])
            .map_err(wrap)?;
        let revision = next_revision(&tx).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(revision)
    }

    fn record_launch_intents(
        &mut self,
        intents: &[LaunchIntent],
        now: UnixMillis,
    ) -> Result<Vec<bool>, StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        let revision = next_revision(&tx).map_err(wrap)?;
        let mut recorded = Vec::with_capacity(intents.len());
        // A round places thousands of runs of a handful of jobs: read each
        // job's goal once.
        let mut goals: HashMap<&str, bool> = HashMap::new();
        // Each statement is taken from the cache once per transaction, not
        // once per intent (a lookup by the statement's text each time).
        let mut runs_of = tx.prepare_cached(MAY_LAUNCH).map_err(wrap)?;
        let mut insert = tx.prepare_cached(INSERT_INTENT).map_err(wrap)?;
        let mut clear_pending = tx.prepare_cached(CLEAR_PENDING_REASON).map_err(wrap)?;
        for intent in intents {
            let job = intent.task_id.instance.job.as_str();
            let wants_running = match goals.get(job) {
                Some(&running) => running,
                None => {
                    let running = job_wants_running(&tx, job).map_err(wrap)?;
                    goals.insert(job, running);
                    running
                }
            };
            let ok = wants_running && may_launch(&mut runs_of, &intent.task_id).map_err(wrap)?;
            if ok {
                insert_intent(&mut insert, &mut clear_pending, intent, now, revision)
                    .map_err(wrap)?;
            }
            recorded.push(ok);
        }
        drop((runs_of, insert, clear_pending));
        tx.commit().map_err(wrap)?;
        Ok(recorded)
    }

    fn record_statuses(
        &mut self,
        updates: &[StatusRecord],
    ) -> Result<Vec<StatusOutcome>, StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        let revision = next_revision(&tx).map_err(wrap)?;
        let mut outcomes = Vec::with_capacity(updates.len());
        let mut statements = StatusStatements::new(&tx).map_err(wrap)?;
        let first_seq = last_event_seq(&tx).map_err(wrap)? + 1;
        let mut seq = first_seq;
        let mut runs = BatchRuns::with_capacity(updates.len());
        for update in updates {
            let outcome = apply_status(&mut statements, &mut runs, update, revision, &mut seq);
            outcomes.push(outcome.map_err(wrap)?);
        }
        runs.write(&mut statements, revision).map_err(wrap)?;
        drop(statements);
        if seq != first_seq {
            set_last_event_seq(&tx, seq - 1).map_err(wrap)?;
        }
        tx.commit().map_err(wrap)?;
        Ok(outcomes)
    }

    fn record_kills(
        &mut self,
        kills: &[(TaskId, Option<String>)],
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        let revision = next_revision(&tx).map_err(wrap)?;
        for (task, reason) in kills {
            tx.execute(
                "UPDATE runs SET kill_requested_at_ms = ?4, revision = ?5, \
                 kill_reason = COALESCE(?6, kill_reason) \
                 WHERE job_id = ?1 AND instance = ?2 AND run = ?3",
                params![
                    task.instance.job.as_str(),
                    task.instance.instance,
                    task.run,
                    now,
                    revision as i64,
                    reason
                ],
            )
            .map_err(wrap)?;
        }
        tx.commit().map_err(wrap)?;
        Ok(())
    }

    fn set_pod_goal(
        &mut self,
        pod: &InstanceId,
        goal: PodGoal,
        now: UnixMillis,
    ) -> Result<JobRecord, StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        let Some(job) = super::load_job(&tx, &path, &pod.job)? else {
            return Err(StoreError::JobNotFound(pod.job.clone()));
        };
        if pod.instance >= job.spec.instance_count {
            return Err(StoreError::PodNotFound(pod.clone()));
        }
        let revision = next_revision(&tx).map_err(wrap)?;
        tx.execute(
            "INSERT INTO pods (job_id, instance, goal, updated_at_ms) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (job_id, instance) DO UPDATE SET goal = ?3, updated_at_ms = ?4",
            params![pod.job.as_str(), pod.instance, goal.as_str(), now],
        )
        .map_err(wrap)?;
        tx.execute(
            "UPDATE jobs SET revision = ?2 WHERE job_id = ?1",
            params![pod.job.as_str(), revision as i64],
        )
        .map_err(wrap)?;
        let pods = super::pod_controls(&tx, &pod.job).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(JobRecord { pods, ..job })
    }

    fn restart_pods(
        &mut self,
        job_id: &JobId,
        instances: &[u32],
        batch_size: u32,
        expected_version: Option<u64>,
        bump: bool,
        now: UnixMillis,
    ) -> Result<JobRecord, StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        let Some(job) = super::load_job(&tx, &path, job_id)? else {
            return Err(StoreError::JobNotFound(job_id.clone()));
        };
        if let Some(expected) = expected_version {
            if expected != job.version {
                return Err(StoreError::VersionMismatch {
                    job: job_id.clone(),
                    current: job.version,
                    expected,
                });
            }
        }
        if let Some(bad) = instances.iter().find(|i| **i >= job.spec.instance_count) {
            return Err(StoreError::PodNotFound(InstanceId::new(
                job_id.clone(),
                *bad,
            )));
        }
        let revision = next_revision(&tx).map_err(wrap)?;
        for instance in instances {
            // Every run so far is replaced: the next run number is the
            // boundary. An instance with no run yet needs nothing.
            let next: i64 = tx
                .query_row(
                    "SELECT COALESCE(MAX(run) + 1, 0) FROM runs WHERE job_id = ?1 AND instance = ?2",
                    params![job_id.as_str(), instance],
                    |r| r.get(0),
                )
                .map_err(wrap)?;
            tx.execute(
                "INSERT INTO pods (job_id, instance, restart_from, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT (job_id, instance) \
                 DO UPDATE SET restart_from = ?3, goal = 'RUNNING', updated_at_ms = ?4",
                params![job_id.as_str(), instance, next, now],
            )
            .map_err(wrap)?;
        }
        let bump = i64::from(bump);
        tx.execute(
            "UPDATE jobs SET restart_batch_size = ?2, version = version + ?3, \
             updated_at_ms = CASE WHEN ?3 = 1 THEN ?4 ELSE updated_at_ms END, \
             revision = CASE WHEN ?3 = 1 THEN ?5 ELSE revision END WHERE job_id = ?1",
            params![job_id.as_str(), batch_size, bump, now, revision as i64],
        )
        .map_err(wrap)?;
        let job = super::load_job(&tx, &path, job_id)?;
        tx.commit().map_err(wrap)?;
        job.ok_or_else(|| StoreError::JobNotFound(job_id.clone()))
    }

    fn record_pending_reasons(
        &mut self,
        reasons: &[(InstanceId, Option<PendingInfo>)],
        now: UnixMillis,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let tx = self.conn.transaction().map_err(wrap)?;
        for (pod, info) in reasons {
            tx.execute(
                "INSERT INTO pods (job_id, instance, pending_reason, pending_metrics, updated_at_ms) \
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ?1) \
                 ON CONFLICT (job_id, instance) DO UPDATE SET pending_reason = ?3, \
                 pending_metrics = ?4",
                params![
                    pod.job.as_str(),
                    pod.instance,
                    info.as_ref().map(|i| i.reason.as_str()),
                    info.as_ref().map(|i| i.metrics.as_str()),
                    now
                ],
            )
            .map_err(wrap)?;
        }
        // Not a user-visible change of a job: no revision bump, so pending
        // reasons refreshed every placement round do not churn watchers.
        tx.commit().map_err(wrap)?;
        Ok(())
    }
}

/// Whether a job's goal is to run (no launches for stopped or deleted jobs).
fn job_wants_running(tx: &Transaction<'_>, job: &str) -> rusqlite::Result<bool> {
    let goal: Option<String> = tx
        .prepare_cached("SELECT goal FROM jobs WHERE job_id = ?1")?
        .query_row([job], |r| r.get(0))
        .optional()?;
    Ok(goal.as_deref() == Some(JobGoal::Running.as_str()))
}

/// The rule that keeps an instance to one live run (given a job that wants
/// to run): every existing run of the instance is terminal and numbered
/// lower.
const MAY_LAUNCH: &str = "SELECT run, state FROM runs WHERE job_id = ?1 AND instance = ?2";

fn may_launch(runs_of: &mut CachedStatement<'_>, task: &TaskId) -> rusqlite::Result<bool> {
    let mut rows = runs_of.query(params![task.instance.job.as_str(), task.instance.instance])?;
    while let Some(row) = rows.next()? {
        let run: i64 = row.get(0)?;
        let state = row.get_ref(1)?.as_str().ok().and_then(PodState::parse);
        if run >= i64::from(task.run) || !state.is_some_and(PodState::is_terminal) {
            return Ok(false);
        }
    }
    Ok(true)
}

const INSERT_INTENT: &str = "INSERT INTO runs (job_id, instance, run, state, agent_id, \
    hostname, spec_version, launched_at_ms, updated_at_ms, revision, ports, launch_revision) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?9)";

const CLEAR_PENDING_REASON: &str = "UPDATE pods SET pending_reason = NULL, \
    pending_metrics = NULL WHERE job_id = ?1 AND instance = ?2";

fn insert_intent(
    insert: &mut CachedStatement<'_>,
    clear_pending: &mut CachedStatement<'_>,
    intent: &LaunchIntent,
    now: UnixMillis,
    revision: Revision,
) -> rusqlite::Result<()> {
    let task = &intent.task_id;
    let state = PodState::Launching;
    let ports = (!intent.ports.is_empty())
        .then(|| serde_json::to_string(&intent.ports).unwrap_or_default());
    insert.execute(params![
        task.instance.job.as_str(),
        task.instance.instance,
        task.run,
        state.as_str(),
        intent.agent_id,
        intent.hostname,
        intent.spec_version as i64,
        now,
        revision as i64,
        ports
    ])?;
    clear_pending.execute(params![task.instance.job.as_str(), task.instance.instance])?;
    // The pod's "launch intent recorded" event is read from this row
    // (`pod_events` in sqlite.rs), not stored again.
    Ok(())
}

/// The statements a status update runs, taken from the cache once per
/// transaction rather than once per update.
struct StatusStatements<'tx> {
    stored_run: CachedStatement<'tx>,
    insert_event: CachedStatement<'tx>,
    update_live: CachedStatement<'tx>,
    update_terminal: CachedStatement<'tx>,
}

impl<'tx> StatusStatements<'tx> {
    fn new(tx: &'tx Transaction<'_>) -> rusqlite::Result<Self> {
        // Only the terminal update writes the completion time: the column
        // is indexed (it is how live runs are found), and an UPDATE that
        // does not name an indexed column leaves that index alone.
        macro_rules! update_run {
            ($also:literal) => {
                concat!(
                    "UPDATE runs SET state = ?4, agent_id = ?5, reason = ?6, message = ?7, \
                     healthy = COALESCE(?8, healthy), started_at_ms = COALESCE(started_at_ms, ?9), \
                     updated_at_ms = ?10, revision = ?11",
                    $also,
                    " WHERE job_id = ?1 AND instance = ?2 AND run = ?3"
                )
            };
        }
        Ok(StatusStatements {
            // The run and, if there is one, the instance's next run: one
            // walk along the key rather than a lookup and a MAX(run).
            stored_run: tx.prepare_cached(
                "SELECT run, state, agent_id, hostname, reason, message, healthy \
                 FROM runs WHERE job_id = ?1 AND instance = ?2 AND run >= ?3 \
                 ORDER BY run LIMIT 2",
            )?,
            insert_event: tx.prepare_cached(
                "INSERT INTO pod_events (job_id, instance, run, state, mesos_state, reason, message, \
                 healthy, agent_id, hostname, timestamp_ms, revision, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?,
            update_live: tx.prepare_cached(update_run!(""))?,
            update_terminal: tx.prepare_cached(update_run!(
                ", completed_at_ms = COALESCE(completed_at_ms, ?10)"
            ))?,
        })
    }
}

/// The runs a batch of updates touched, each as the batch left it so far.
/// A launch's STARTING and RUNNING arrive together and land in one batch:
/// the second is compared with what the first left, not read again, and
/// each run's row is written once, when the batch is done (a third of
/// what storing a launch's updates cost).
struct BatchRuns {
    index: HashMap<TaskId, usize>,
    runs: Vec<(TaskId, BatchRun)>,
}

/// One run of a batch.
struct BatchRun {
    now: StoredRun,
    /// What the row's update needs beyond `now`, once an update changed it.
    changed: Option<RunChange>,
}

/// The columns an update of the run sets that `StoredRun` does not hold.
struct RunChange {
    /// The first RUNNING timestamp of the batch (the row keeps an earlier one).
    started: Option<UnixMillis>,
    updated_at: UnixMillis,
}

impl BatchRuns {
    /// Room for a batch of `updates` (at most one run each).
    fn with_capacity(updates: usize) -> Self {
        BatchRuns {
            index: HashMap::with_capacity(updates),
            runs: Vec::with_capacity(updates),
        }
    }

    /// The run as the batch left it, read from the store the first time.
    fn get(
        &mut self,
        statements: &mut StatusStatements<'_>,
        task: &TaskId,
    ) -> rusqlite::Result<Option<&mut BatchRun>> {
        if let Some(&i) = self.index.get(task) {
            return Ok(Some(&mut self.runs[i].1));
        }
        let Some(now) = read_run(statements, task)? else {
            return Ok(None);
        };
        self.index.insert(task.clone(), self.runs.len());
        self.runs
            .push((task.clone(), BatchRun { now, changed: None }));
        Ok(self.runs.last_mut().map(|(_, run)| run))
    }

    /// Writes each changed run once, in the order the batch first touched
    /// them. (Only a terminal update writes the completion time; after it
    /// the run takes no other, so the last state decides.)
    fn write(
        self,
        statements: &mut StatusStatements<'_>,
        revision: Revision,
    ) -> rusqlite::Result<()> {
        for (task, run) in self.runs {
            let Some(change) = run.changed else {
                continue;
            };
            let now = run.now;
            let update_run = if now.state.is_terminal() {
                &mut statements.update_terminal
            } else {
                &mut statements.update_live
            };
            update_run.execute(params![
                task.instance.job.as_str(),
                task.instance.instance,
                task.run,
                now.state.as_str(),
                now.agent,
                now.reason,
                now.message,
                now.healthy,
                change.started,
                change.updated_at,
                revision as i64
            ])?;
        }
        Ok(())
    }
}

fn read_run(
    statements: &mut StatusStatements<'_>,
    task: &TaskId,
) -> rusqlite::Result<Option<StoredRun>> {
    let mut rows = statements.stored_run.query(params![
        task.instance.job.as_str(),
        task.instance.instance,
        task.run
    ])?;
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    if r.get::<_, i64>(0)? != i64::from(task.run) {
        return Ok(None);
    }
    let state: String = r.get(1)?;
    let mut run = StoredRun {
        state: PodState::parse(&state).unwrap_or(PodState::Lost),
        agent: r.get(2)?,
        hostname: r.get(3)?,
        reason: r.get(4)?,
        message: r.get(5)?,
        healthy: r.get(6)?,
        is_latest: true,
    };
    // A second row is a later run of the instance.
    run.is_latest = rows.next()?.is_none();
    Ok(Some(run))
}

/// Stores one update's event; its effect on the run goes into `runs`,
/// written when the batch is done. An event takes `seq`, which then moves
/// on.
fn apply_status(
    statements: &mut StatusStatements<'_>,
    runs: &mut BatchRuns,
    update: &StatusRecord,
    revision: Revision,
    seq: &mut i64,
) -> rusqlite::Result<StatusOutcome> {
    let task = &update.task_id;
    let job = task.instance.job.clone();
    let Some(run) = runs.get(statements, task)? else {
        return Ok(StatusOutcome::Unknown);
    };
    let stored = &run.now;
    let is_latest = stored.is_latest;
    let stored_state = stored.state;
    let agent = update.agent_id.clone().or(stored.agent.clone());
    // A reconciliation answer only confirms the state; its reason and
    // message describe the reconciliation, not the task.
    let confirms = update.reason.as_deref() == Some(RECONCILIATION_REASON)
        || (update.reason == stored.reason && update.message == stored.message);
    if stored_state == update.state
        && agent == stored.agent
        && confirms
        && update.healthy.is_none_or(|h| stored.healthy == Some(h))
    {
        // A resent update (the agent's retry) or a reconciliation answer
        // the store holds already: writing it again would only grow the
        // pod's history (100,000 rows per reconciliation of 100,000 tasks).
        // The caller still acknowledges a resent update.
        return Ok(StatusOutcome::Unchanged {
            job,
            live: update.state.is_live() && !is_latest,
        });
    }
    statements.insert_event.execute(params![
        job.as_str(),
        task.instance.instance,
        task.run,
        update.state.as_str(),
        update.mesos_state,
        update.reason,
        update.message,
        update.healthy,
        agent,
        stored.hostname,
        update.timestamp,
        revision as i64,
        *seq
    ])?;
    *seq += 1;
    if stored_state.is_terminal() || !is_latest {
        return Ok(StatusOutcome::Stale {
            job,
            live: update.state.is_live(),
        });
    }
    let started = (update.state == PodState::Running).then_some(update.timestamp);
    run.now = StoredRun {
        state: update.state,
        agent,
        hostname: run.now.hostname.take(),
        reason: update.reason.clone(),
        message: update.message.clone(),
        healthy: update.healthy.or(run.now.healthy),
        is_latest,
    };
    run.changed = Some(RunChange {
        started: run.changed.as_ref().and_then(|c| c.started).or(started),
        updated_at: update.timestamp,
    });
    Ok(StatusOutcome::Applied(job))
}

/// The `seq` of the last pod event stored (0 before the first).
fn last_event_seq(tx: &Transaction<'_>) -> rusqlite::Result<i64> {
    tx.query_row("SELECT value FROM event_seq WHERE id = 1", [], |row| {
        row.get(0)
    })
}

fn set_last_event_seq(tx: &Transaction<'_>, seq: i64) -> rusqlite::Result<()> {
    tx.execute("UPDATE event_seq SET value = ?1 WHERE id = 1", [seq])
        .map(drop)
}

/// Mesos' reason on the answers to a RECONCILE call.
const RECONCILIATION_REASON: &str = "REASON_RECONCILIATION";

/// The columns of a run that a status update is compared with.
struct StoredRun {
    state: PodState,
    agent: Option<String>,
    hostname: Option<String>,
    reason: Option<String>,
    message: Option<String>,
    healthy: Option<bool>,
    /// No later run of its instance exists.
    is_latest: bool,
}

impl SqliteStore {
    /// The number of runs recorded for a job (tests and metrics).
    pub fn run_count(&self, job: &JobId) -> Result<usize, StoreError> {
        Ok(self.runs(job)?.len())
    }
}
