//! [`Store::commit`] for SQLite: a [`Change`] written as given, in one
//! transaction, sections in a fixed order (the framework id, jobs, launch
//! intents, runs, events, kills, pending reasons). Nothing here decides
//! whether a write is right; the engine did (see [`crate::model::run`]).

use super::SqliteStore;
use crate::model::change::{
    Change, HostWrite, JobWrite, KillRecord, LaunchRecord, PendingReason, PodEvent, PoolWrite,
    RunWrite, WorkflowEventRecord,
};
use crate::model::ids::TaskId;
use crate::model::job::Revision;
use crate::model::secret;
use crate::model::state::PodState;
use crate::model::workflow::JobWorkflows;
use crate::store::{Epoch, Snapshot, Store, StoreError, StoreRead};
use rusqlite::{params, Transaction};

impl Store for SqliteStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.load_snapshot()
    }

    fn commit(&mut self, change: &Change) -> Result<Revision, StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let mine = self.epoch;
        let tx = self.conn.transaction().map_err(wrap)?;
        if let Some(mine) = mine {
            let current = stored_epoch(&tx).map_err(wrap)?;
            if current != mine {
                return Err(StoreError::Fenced { mine, current });
            }
        }
        let revision = if change.is_revisioned() {
            next_revision(&tx).map_err(wrap)?
        } else {
            current_revision(&tx).map_err(wrap)?
        };
        // Specs are written with their secrets' values sealed.
        secret::sealed_with(self.sealer.as_ref(), || write(&tx, change, revision)).map_err(wrap)?;
        tx.commit().map_err(wrap)?;
        Ok(revision)
    }

    fn claim_leadership(&mut self, replica: &str) -> Result<Epoch, StoreError> {
        let path = self.path.clone();
        let wrap = StoreError::sqlite(&path);
        let epoch = self
            .conn
            .query_row(
                "UPDATE leader_epoch SET epoch = epoch + 1, replica = ?1, \
                 claimed_at_ms = CAST(unixepoch('subsec') * 1000 AS INTEGER) \
                 WHERE id = 1 RETURNING epoch",
                [replica],
                |row| row.get::<_, i64>(0),
            )
            .map_err(wrap)? as Epoch;
        self.epoch = Some(epoch);
        Ok(epoch)
    }
}

/// The store's leader epoch, read inside the commit's transaction.
fn stored_epoch(tx: &Transaction<'_>) -> rusqlite::Result<Epoch> {
    tx.query_row("SELECT epoch FROM leader_epoch WHERE id = 1", [], |row| {
        row.get::<_, i64>(0)
    })
    .map(|v| v as Epoch)
}

fn write(tx: &Transaction<'_>, change: &Change, revision: Revision) -> rusqlite::Result<()> {
    if let Some(id) = &change.framework_id {
        tx.execute(
            "UPDATE framework SET framework_id = ?1 WHERE id = 1",
            [id.as_deref()],
        )?;
    }
    for job in &change.jobs {
        write_job(tx, job, revision)?;
    }
    if !change.launches.is_empty() {
        write_launches(tx, &change.launches, revision)?;
    }
    if !change.runs.is_empty() {
        write_runs(tx, &change.runs, revision)?;
    }
    if !change.events.is_empty() {
        write_events(tx, &change.events, revision)?;
    }
    if !change.kills.is_empty() {
        write_kills(tx, &change.kills, revision)?;
    }
    if !change.run_versions.is_empty() {
        write_run_versions(tx, &change.run_versions, revision)?;
    }
    if !change.workflow_events.is_empty() {
        write_workflow_events(tx, &change.workflow_events)?;
    }
    if !change.pending_reasons.is_empty() {
        write_pending_reasons(tx, &change.pending_reasons)?;
    }
    if !change.pools.is_empty() {
        write_pools(tx, &change.pools, revision)?;
    }
    if !change.hosts.is_empty() {
        write_hosts(tx, &change.hosts)?;
    }
    for record in &change.pipeline_runs {
        write_pipeline_run(tx, record, revision)?;
    }
    for write in &change.kfp {
        match write {
            crate::model::change::KfpWrite::CreateExperiment(e) => tx
                .prepare_cached(
                    "INSERT INTO kfp_experiments (experiment_id, name, description, \
                     created_at_ms) VALUES (?1, ?2, ?3, ?4)",
                )?
                .execute(params![e.id, e.name, e.description, e.created_at_ms])?,
            crate::model::change::KfpWrite::DeleteRun(run_id) => tx
                .prepare_cached("DELETE FROM pipeline_runs WHERE run_id = ?1")?
                .execute(params![run_id])?,
        };
    }
    Ok(())
}

fn write_pipeline_run(
    tx: &Transaction<'_>,
    record: &crate::model::pipeline_run::RunRecord,
    revision: Revision,
) -> rusqlite::Result<()> {
    let json = serde_json::to_string(record)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    tx.prepare_cached(
        "INSERT INTO pipeline_runs (run_id, record, created_at_ms, revision) \
         VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (run_id) DO UPDATE SET record = ?2, revision = ?4",
    )?
    .execute(params![
        record.id(),
        json,
        record.created_ms,
        revision as i64
    ])?;
    Ok(())
}

fn write_pools(
    tx: &Transaction<'_>,
    pools: &[PoolWrite],
    revision: Revision,
) -> rusqlite::Result<()> {
    for write in pools {
        match write {
            PoolWrite::Put(pool) => {
                let spec = serde_json::to_string(&pool.spec)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                tx.prepare_cached(
                    "INSERT INTO pools (pool_id, spec, version, created_at_ms, updated_at_ms, \
                     revision) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                     ON CONFLICT (pool_id) DO UPDATE SET spec = ?2, version = ?3, \
                     updated_at_ms = ?5, revision = ?6",
                )?
                .execute(params![
                    pool.id.as_str(),
                    spec,
                    pool.version as i64,
                    pool.created_ms as i64,
                    pool.updated_ms as i64,
                    revision as i64
                ])?;
            }
            PoolWrite::Delete(id) => {
                tx.prepare_cached("DELETE FROM pools WHERE pool_id = ?1")?
                    .execute([id.as_str()])?;
            }
        }
    }
    Ok(())
}

fn write_hosts(tx: &Transaction<'_>, hosts: &[HostWrite]) -> rusqlite::Result<()> {
    let mut put = tx.prepare_cached(
        "INSERT INTO host_maintenance \
         (hostname, state, cause, since_ms, batch_grace_ms, inverse_offer) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
         ON CONFLICT (hostname) DO UPDATE SET state = ?2, cause = ?3, since_ms = ?4, \
         batch_grace_ms = ?5, inverse_offer = ?6",
    )?;
    let mut remove = tx.prepare_cached("DELETE FROM host_maintenance WHERE hostname = ?1")?;
    for write in hosts {
        match write {
            HostWrite::Put(m) => {
                put.execute(params![
                    m.hostname,
                    m.state.peloton_name(),
                    m.cause.as_str(),
                    m.since,
                    i64::try_from(m.batch_grace.as_millis()).unwrap_or(i64::MAX),
                    m.inverse_offer
                ])?;
            }
            HostWrite::Remove(host) => {
                remove.execute([host])?;
            }
        }
    }
    Ok(())
}

fn write_run_versions(
    tx: &Transaction<'_>,
    versions: &[(TaskId, u64)],
    revision: Revision,
) -> rusqlite::Result<()> {
    let mut update = tx.prepare_cached(
        "UPDATE runs SET spec_version = ?4, revision = ?5 \
         WHERE job_id = ?1 AND instance = ?2 AND run = ?3",
    )?;
    for (task, version) in versions {
        update.execute(params![
            task.instance.job.as_str(),
            task.instance.instance,
            task.run,
            *version as i64,
            revision as i64
        ])?;
    }
    Ok(())
}

fn write_workflow_events(
    tx: &Transaction<'_>,
    events: &[WorkflowEventRecord],
) -> rusqlite::Result<()> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO workflow_events (job_id, workflow, instance, state, at_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for record in events {
        insert.execute(params![
            record.job_id.as_str(),
            record.workflow,
            record.event.instance,
            record.event.state.peloton_name(),
            record.event.at
        ])?;
    }
    Ok(())
}

/// A job's workflows as their column's JSON (NULL for none).
fn workflows_json(workflows: &JobWorkflows) -> rusqlite::Result<Option<String>> {
    if workflows.is_empty() {
        return Ok(None);
    }
    serde_json::to_string(workflows)
        .map(Some)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
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

fn current_revision(tx: &Transaction<'_>) -> rusqlite::Result<Revision> {
    tx.query_row("SELECT value FROM revision WHERE id = 1", [], |row| {
        row.get::<_, i64>(0)
    })
    .map(|v| v as Revision)
}

/// A job's creation workflow as its column's JSON (NULL without one).
fn create_workflow(
    create: Option<&crate::model::create_workflow::CreateWorkflow>,
) -> rusqlite::Result<Option<String>> {
    create
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

fn write_job(tx: &Transaction<'_>, write: &JobWrite, revision: Revision) -> rusqlite::Result<()> {
    match write {
        JobWrite::Create(job) => {
            // A spec that came from the API serializes; anything else is a
            // bug, and storing it half-written would be worse.
            let spec = serde_json::to_string(&job.spec)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            tx.execute(
                "INSERT INTO jobs (job_id, spec, version, goal, created_at_ms, updated_at_ms, \
                 revision, restart_batch_size, create_workflow, spec_version, workflows, \
                 updated_by) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    job.job_id.as_str(),
                    spec,
                    job.version as i64,
                    job.goal.as_str(),
                    job.created_at,
                    job.updated_at,
                    revision as i64,
                    job.restart_batch_size,
                    create_workflow(job.create.as_ref())?,
                    job.spec_version as i64,
                    workflows_json(&job.workflows)?,
                    job.updated_by
                ],
            )?;
        }
        JobWrite::Update {
            job_id,
            goal,
            version,
            updated_at,
            updated_by,
            restart_batch_size,
            create,
            spec_version,
            workflows,
            revision: bump,
        } => {
            tx.execute(
                "UPDATE jobs SET goal = ?2, version = ?3, restart_batch_size = ?4, \
                 create_workflow = ?8, spec_version = ?9, workflows = ?10, \
                 updated_at_ms = CASE WHEN ?5 THEN ?6 ELSE updated_at_ms END, \
                 updated_by = CASE WHEN ?5 THEN ?11 ELSE updated_by END, \
                 revision = CASE WHEN ?5 THEN ?7 ELSE revision END WHERE job_id = ?1",
                params![
                    job_id.as_str(),
                    goal.as_str(),
                    *version as i64,
                    restart_batch_size,
                    bump,
                    updated_at,
                    revision as i64,
                    create_workflow(create.as_ref())?,
                    *spec_version as i64,
                    workflows_json(workflows)?,
                    updated_by
                ],
            )?;
        }
        JobWrite::Spec { job_id, spec } => {
            let spec = serde_json::to_string(spec)
                .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
            tx.execute(
                "UPDATE jobs SET spec = ?2 WHERE job_id = ?1",
                params![job_id.as_str(), spec],
            )?;
        }
        JobWrite::Pod { pod, control, at } => {
            tx.execute(
                "INSERT INTO pods (job_id, instance, goal, restart_from, updated_at_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (job_id, instance) \
                 DO UPDATE SET goal = ?3, restart_from = ?4, updated_at_ms = ?5",
                params![
                    pod.job.as_str(),
                    pod.instance,
                    control.goal.as_str(),
                    control.restart_from,
                    at
                ],
            )?;
        }
        JobWrite::Delete(id) => {
            for table in ["jobs", "runs", "pod_events", "pods", "workflow_events"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE job_id = ?1"),
                    [id.as_str()],
                )?;
            }
        }
        JobWrite::DeletePodEvents(task) => {
            let run = params![task.instance.job.as_str(), task.instance.instance, task.run];
            tx.execute(
                "DELETE FROM pod_events WHERE job_id = ?1 AND instance = ?2 AND run = ?3",
                run,
            )?;
            // The run's launch event is read from its row (`pod_events` in
            // read.rs) while `launch_revision` is set, which nothing else
            // reads: clearing it forgets that event too.
            tx.execute(
                "UPDATE runs SET launch_revision = NULL \
                 WHERE job_id = ?1 AND instance = ?2 AND run = ?3",
                run,
            )?;
        }
    }
    Ok(())
}

fn write_launches(
    tx: &Transaction<'_>,
    launches: &[LaunchRecord],
    revision: Revision,
) -> rusqlite::Result<()> {
    // Each statement is taken from the cache once per transaction, not
    // once per intent (a lookup by the statement's text each time).
    let mut insert = tx.prepare_cached(
        "INSERT INTO runs (job_id, instance, run, state, agent_id, hostname, spec_version, \
         launched_at_ms, updated_at_ms, revision, ports, launch_revision) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9, ?10, ?9)",
    )?;
    let mut clear_pending = tx.prepare_cached(
        "UPDATE pods SET pending_reason = NULL, pending_metrics = NULL \
         WHERE job_id = ?1 AND instance = ?2",
    )?;
    for launch in launches {
        let task = &launch.task_id;
        let ports = (!launch.ports.is_empty())
            .then(|| serde_json::to_string(&launch.ports).unwrap_or_default());
        insert.execute(params![
            task.instance.job.as_str(),
            task.instance.instance,
            task.run,
            PodState::Launching.as_str(),
            launch.agent_id.as_str(),
            launch.hostname,
            launch.spec_version as i64,
            launch.at,
            revision as i64,
            ports
        ])?;
        // The pod's "launch intent recorded" event is read from this row
        // (`pod_events` in read.rs), not stored again.
        clear_pending.execute(params![task.instance.job.as_str(), task.instance.instance])?;
        if let Some(from) = launch.hands_over {
            tx.prepare_cached(
                "UPDATE runs SET handing_over = 1, revision = ?4 \
                 WHERE job_id = ?1 AND instance = ?2 AND run = ?3",
            )?
            .execute(params![
                task.instance.job.as_str(),
                task.instance.instance,
                from,
                revision as i64
            ])?;
        }
    }
    Ok(())
}

fn write_runs(tx: &Transaction<'_>, runs: &[RunWrite], revision: Revision) -> rusqlite::Result<()> {
    // Only a terminal run's row writes the completion time: the column is
    // indexed (it is how live runs are found), and an UPDATE that does not
    // name an indexed column leaves that index alone, so STARTING and
    // RUNNING touch no index at all.
    macro_rules! update_run {
        ($also:literal) => {
            concat!(
                "UPDATE runs SET state = ?4, agent_id = ?5, reason = ?6, message = ?7, \
                 healthy = ?8, started_at_ms = ?9, updated_at_ms = ?10, revision = ?11, \
                 unreachable_since_ms = ?12, ready = ?13",
                $also,
                " WHERE job_id = ?1 AND instance = ?2 AND run = ?3"
            )
        };
    }
    let mut live = tx.prepare_cached(update_run!(""))?;
    let mut terminal = tx.prepare_cached(update_run!(", completed_at_ms = ?14"))?;
    for run in runs {
        let task = &run.task_id;
        let values = params![
            task.instance.job.as_str(),
            task.instance.instance,
            task.run,
            run.state.as_str(),
            run.agent_id.as_ref().map(|a| a.as_str()),
            run.reason.map(|r| r.as_str_name()),
            run.message,
            run.healthy,
            run.started_at,
            run.updated_at,
            revision as i64,
            run.unreachable_since,
            run.ready,
        ];
        if run.state.is_terminal() {
            let mut values = values.to_vec();
            values.push(&run.completed_at);
            terminal.execute(&*values)?;
        } else {
            live.execute(values)?;
        }
    }
    Ok(())
}

fn write_events(
    tx: &Transaction<'_>,
    events: &[PodEvent],
    revision: Revision,
) -> rusqlite::Result<()> {
    // Events take consecutive numbers after the last one stored.
    let first: i64 = tx.query_row("SELECT value FROM event_seq WHERE id = 1", [], |row| {
        row.get(0)
    })?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO pod_events (job_id, instance, run, state, mesos_state, reason, message, \
         healthy, agent_id, hostname, timestamp_ms, revision, seq, ready) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    let mut seq = first;
    for event in events {
        seq += 1;
        let task = &event.task_id;
        insert.execute(params![
            task.instance.job.as_str(),
            task.instance.instance,
            task.run,
            event.state.as_str(),
            event.mesos_state.map(|s| s.as_str_name()),
            event.reason.map(|r| r.as_str_name()),
            event.message,
            event.healthy,
            event.agent_id.as_ref().map(|a| a.as_str()),
            event.hostname,
            event.timestamp,
            revision as i64,
            seq,
            event.ready
        ])?;
    }
    tx.execute("UPDATE event_seq SET value = ?1 WHERE id = 1", [seq])?;
    Ok(())
}

fn write_kills(
    tx: &Transaction<'_>,
    kills: &[KillRecord],
    revision: Revision,
) -> rusqlite::Result<()> {
    let mut update = tx.prepare_cached(
        "UPDATE runs SET kill_requested_at_ms = ?4, revision = ?5, \
         kill_reason = COALESCE(?6, kill_reason) \
         WHERE job_id = ?1 AND instance = ?2 AND run = ?3",
    )?;
    for kill in kills {
        let task = &kill.task_id;
        update.execute(params![
            task.instance.job.as_str(),
            task.instance.instance,
            task.run,
            kill.at,
            revision as i64,
            kill.reason.map(|r| r.as_str_name())
        ])?;
    }
    Ok(())
}

fn write_pending_reasons(tx: &Transaction<'_>, reasons: &[PendingReason]) -> rusqlite::Result<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO pods (job_id, instance, pending_reason, pending_metrics, updated_at_ms) \
         SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ?1) \
         ON CONFLICT (job_id, instance) DO UPDATE SET pending_reason = ?3, \
         pending_metrics = ?4",
    )?;
    for PendingReason { pod, info, at } in reasons {
        upsert.execute(params![
            pod.job.as_str(),
            pod.instance,
            info.as_ref().map(|i| i.reason.as_str()),
            info.as_ref().map(|i| i.metrics.as_str()),
            at
        ])?;
    }
    Ok(())
}

impl SqliteStore {
    /// The number of runs recorded for a job (tests and metrics).
    pub fn run_count(&self, job: &crate::model::ids::JobId) -> Result<usize, StoreError> {
        Ok(self.runs(job)?.len())
    }
}
