//! [`Store::commit`] for PostgreSQL: a [`Change`] written as given, in
//! one transaction, in SQLite's order (`super::super::sqlite`'s write),
//! after the fencing check. Nothing here decides whether a write is right.

use super::PostgresStore;
use crate::model::change::{
    Change, HostWrite, JobWrite, KfpWrite, KillRecord, LaunchRecord, PendingReason, PodEvent,
    PoolWrite, RunWrite, WorkflowEventRecord,
};
use crate::model::ids::TaskId;
use crate::model::job::Revision;
use crate::model::secret;
use crate::model::state::PodState;
use crate::model::workflow::JobWorkflows;
use crate::store::{Epoch, Snapshot, Store, StoreError};
use postgres::Transaction;

/// What a commit's transaction found: written, or fenced.
enum Outcome {
    Written(Revision),
    Fenced {
        mine: Epoch,
        current: Epoch,
    },
    /// A value that does not serialize (a bug upstream): nothing written.
    Unserializable(serde_json::Error),
}

impl Store for PostgresStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.load_snapshot()
    }

    fn commit(&mut self, change: &Change) -> Result<Revision, StoreError> {
        let mine = self.epoch;
        let sealer = self.sealer.clone();
        let outcome = self.call(move |client| {
            let mut tx = client.transaction()?;
            if let Some(mine) = mine {
                // FOR SHARE: a claim (an UPDATE of this row) waits for this
                // commit to end, and this commit waits for a claim in
                // progress, so no write lands after a newer claim.
                let current: i64 = tx
                    .query_one("SELECT epoch FROM leader_epoch WHERE id = 1 FOR SHARE", &[])?
                    .get(0);
                let current = current as Epoch;
                if current != mine {
                    return Ok(Outcome::Fenced { mine, current });
                }
            }
            let revision: i64 = if change.is_revisioned() {
                tx.query_one(
                    "UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value",
                    &[],
                )?
                .get(0)
            } else {
                tx.query_one("SELECT value FROM revision WHERE id = 1", &[])?
                    .get(0)
            };
            // Specs are written with their secrets' values sealed (the
            // scope is this thread's: the call's own).
            let json = secret::sealed_with(sealer.as_ref(), || Json::of(change));
            let json = match json {
                Ok(json) => json,
                Err(e) => return Ok(Outcome::Unserializable(e)),
            };
            write(&mut tx, change, &json, revision)?;
            tx.commit()?;
            Ok(Outcome::Written(revision as Revision))
        })?;
        match outcome {
            Outcome::Written(revision) => Ok(revision),
            Outcome::Fenced { mine, current } => Err(StoreError::Fenced { mine, current }),
            Outcome::Unserializable(source) => Err(StoreError::Postgres {
                url: self.display_url(),
                detail: String::new(),
                source: Box::new(source),
            }),
        }
    }

    fn claim_leadership(&mut self, replica: &str) -> Result<Epoch, StoreError> {
        let epoch: i64 = self.call(|client| {
            Ok(client
                .query_one(
                    "UPDATE leader_epoch SET epoch = epoch + 1, replica = $1, \
                     claimed_at_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
                     WHERE id = 1 RETURNING epoch",
                    &[&replica],
                )?
                .get(0))
        })?;
        let epoch = epoch as Epoch;
        self.epoch = Some(epoch);
        Ok(epoch)
    }
}

/// The change's JSON columns, serialized before the transaction writes
/// (so that a value that does not serialize writes nothing).
struct Json {
    /// Per `change.jobs` entry: (spec, create workflow, workflows).
    jobs: Vec<(Option<String>, Option<String>, Option<String>)>,
    pools: Vec<Option<String>>,
    pipeline_runs: Vec<String>,
    ports: Vec<Option<String>>,
}

impl Json {
    fn of(change: &Change) -> Result<Json, serde_json::Error> {
        let create = |c: Option<&crate::model::create_workflow::CreateWorkflow>| {
            c.map(serde_json::to_string).transpose()
        };
        let workflows = |w: &JobWorkflows| {
            if w.is_empty() {
                Ok(None)
            } else {
                serde_json::to_string(w).map(Some)
            }
        };
        let mut jobs = Vec::with_capacity(change.jobs.len());
        for write in &change.jobs {
            jobs.push(match write {
                JobWrite::Create(job) => (
                    Some(serde_json::to_string(&job.spec)?),
                    create(job.create.as_ref())?,
                    workflows(&job.workflows)?,
                ),
                JobWrite::Update {
                    create: c,
                    workflows: w,
                    ..
                } => (None, create(c.as_ref())?, workflows(w)?),
                JobWrite::Spec { spec, .. } => (Some(serde_json::to_string(spec)?), None, None),
                _ => (None, None, None),
            });
        }
        let mut pools = Vec::with_capacity(change.pools.len());
        for write in &change.pools {
            pools.push(match write {
                PoolWrite::Put(pool) => Some(serde_json::to_string(&pool.spec)?),
                PoolWrite::Delete(_) => None,
            });
        }
        let pipeline_runs = change
            .pipeline_runs
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()?;
        let ports = change
            .launches
            .iter()
            .map(|l| {
                (!l.ports.is_empty())
                    .then(|| serde_json::to_string(&l.ports))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        Ok(Json {
            jobs,
            pools,
            pipeline_runs,
            ports,
        })
    }
}

fn write(
    tx: &mut Transaction<'_>,
    change: &Change,
    json: &Json,
    revision: i64,
) -> Result<(), postgres::Error> {
    if let Some(id) = &change.framework_id {
        tx.execute(
            "UPDATE framework SET framework_id = $1 WHERE id = 1",
            &[&id.as_deref()],
        )?;
    }
    for (job, json) in change.jobs.iter().zip(&json.jobs) {
        write_job(tx, job, json, revision)?;
    }
    if !change.launches.is_empty() {
        write_launches(tx, &change.launches, &json.ports, revision)?;
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
    for (write, spec) in change.pools.iter().zip(&json.pools) {
        match write {
            PoolWrite::Put(pool) => {
                tx.execute(
                    "INSERT INTO pools (pool_id, spec, version, created_at_ms, updated_at_ms, \
                     revision) VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (pool_id) DO UPDATE SET spec = $2, version = $3, \
                     updated_at_ms = $5, revision = $6",
                    &[
                        &pool.id.as_str(),
                        spec,
                        &(pool.version as i64),
                        &(pool.created_ms as i64),
                        &(pool.updated_ms as i64),
                        &revision,
                    ],
                )?;
            }
            PoolWrite::Delete(id) => {
                tx.execute("DELETE FROM pools WHERE pool_id = $1", &[&id.as_str()])?;
            }
        }
    }
    for write in &change.hosts {
        match write {
            HostWrite::Put(m) => {
                tx.execute(
                    "INSERT INTO host_maintenance \
                     (hostname, state, cause, since_ms, batch_grace_ms, inverse_offer) \
                     VALUES ($1, $2, $3, $4, $5, $6) \
                     ON CONFLICT (hostname) DO UPDATE SET state = $2, cause = $3, \
                     since_ms = $4, batch_grace_ms = $5, inverse_offer = $6",
                    &[
                        &m.hostname,
                        &m.state.peloton_name(),
                        &m.cause.as_str(),
                        &m.since,
                        &i64::try_from(m.batch_grace.as_millis()).unwrap_or(i64::MAX),
                        &m.inverse_offer,
                    ],
                )?;
            }
            HostWrite::Remove(host) => {
                tx.execute("DELETE FROM host_maintenance WHERE hostname = $1", &[host])?;
            }
        }
    }
    for (record, json) in change.pipeline_runs.iter().zip(&json.pipeline_runs) {
        tx.execute(
            "INSERT INTO pipeline_runs (run_id, record, created_at_ms, revision) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (run_id) DO UPDATE SET record = $2, revision = $4",
            &[&record.id(), json, &record.created_ms, &revision],
        )?;
    }
    for write in change.kfp.iter() {
        match write {
            KfpWrite::CreateExperiment(e) => tx.execute(
                "INSERT INTO kfp_experiments (experiment_id, name, description, \
                 created_at_ms) VALUES ($1, $2, $3, $4)",
                &[&e.id, &e.name, &e.description, &e.created_at_ms],
            )?,
            KfpWrite::DeleteRun(run_id) => {
                tx.execute("DELETE FROM pipeline_runs WHERE run_id = $1", &[run_id])?
            }
        };
    }
    Ok(())
}

type JobJson = (Option<String>, Option<String>, Option<String>);

fn write_job(
    tx: &mut Transaction<'_>,
    write: &JobWrite,
    (spec, create, workflows): &JobJson,
    revision: i64,
) -> Result<(), postgres::Error> {
    match write {
        JobWrite::Create(job) => {
            tx.execute(
                "INSERT INTO jobs (job_id, spec, version, goal, created_at_ms, updated_at_ms, \
                 revision, restart_batch_size, create_workflow, spec_version, workflows, \
                 updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                &[
                    &job.job_id.as_str(),
                    spec,
                    &(job.version as i64),
                    &job.goal.as_str(),
                    &job.created_at,
                    &job.updated_at,
                    &revision,
                    &i64::from(job.restart_batch_size),
                    create,
                    &(job.spec_version as i64),
                    workflows,
                    &job.updated_by,
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
            spec_version,
            revision: bump,
            ..
        } => {
            tx.execute(
                "UPDATE jobs SET goal = $2, version = $3, restart_batch_size = $4, \
                 create_workflow = $8, spec_version = $9, workflows = $10, \
                 updated_at_ms = CASE WHEN $5 THEN $6 ELSE updated_at_ms END, \
                 updated_by = CASE WHEN $5 THEN $11 ELSE updated_by END, \
                 revision = CASE WHEN $5 THEN $7 ELSE revision END WHERE job_id = $1",
                &[
                    &job_id.as_str(),
                    &goal.as_str(),
                    &(*version as i64),
                    &i64::from(*restart_batch_size),
                    bump,
                    updated_at,
                    &revision,
                    create,
                    &(*spec_version as i64),
                    workflows,
                    updated_by,
                ],
            )?;
        }
        JobWrite::Spec { job_id, .. } => {
            tx.execute(
                "UPDATE jobs SET spec = $2 WHERE job_id = $1",
                &[&job_id.as_str(), spec],
            )?;
        }
        JobWrite::Pod { pod, control, at } => {
            tx.execute(
                "INSERT INTO pods (job_id, instance, goal, restart_from, updated_at_ms) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, instance) \
                 DO UPDATE SET goal = $3, restart_from = $4, updated_at_ms = $5",
                &[
                    &pod.job.as_str(),
                    &i64::from(pod.instance),
                    &control.goal.as_str(),
                    &i64::from(control.restart_from),
                    at,
                ],
            )?;
        }
        JobWrite::Delete(id) => {
            for table in ["jobs", "runs", "pod_events", "pods", "workflow_events"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE job_id = $1"),
                    &[&id.as_str()],
                )?;
            }
        }
        JobWrite::DeletePodEvents(task) => {
            let (job, instance, run) = key(task);
            tx.execute(
                "DELETE FROM pod_events WHERE job_id = $1 AND instance = $2 AND run = $3",
                &[&job, &instance, &run],
            )?;
            // As SQLite's: the launch event is read from the run while
            // `launch_revision` is set.
            tx.execute(
                "UPDATE runs SET launch_revision = NULL \
                 WHERE job_id = $1 AND instance = $2 AND run = $3",
                &[&job, &instance, &run],
            )?;
        }
    }
    Ok(())
}

/// A task's row key.
fn key(task: &TaskId) -> (&str, i64, i64) {
    (
        task.instance.job.as_str(),
        i64::from(task.instance.instance),
        i64::from(task.run),
    )
}

fn write_launches(
    tx: &mut Transaction<'_>,
    launches: &[LaunchRecord],
    ports: &[Option<String>],
    revision: i64,
) -> Result<(), postgres::Error> {
    let insert = tx.prepare(
        "INSERT INTO runs (job_id, instance, run, state, agent_id, hostname, spec_version, \
         launched_at_ms, updated_at_ms, revision, ports, launch_revision) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $9)",
    )?;
    let clear_pending = tx.prepare(
        "UPDATE pods SET pending_reason = NULL, pending_metrics = NULL \
         WHERE job_id = $1 AND instance = $2",
    )?;
    let hand_over = tx.prepare(
        "UPDATE runs SET handing_over = TRUE, revision = $4 \
         WHERE job_id = $1 AND instance = $2 AND run = $3",
    )?;
    for (launch, ports) in launches.iter().zip(ports) {
        let (job, instance, run) = key(&launch.task_id);
        // The old run is marked before its replacement is inserted: the
        // one-live-run index allows a second live run only beside a run
        // handing over.
        if let Some(from) = launch.hands_over {
            tx.execute(&hand_over, &[&job, &instance, &i64::from(from), &revision])?;
        }
        tx.execute(
            &insert,
            &[
                &job,
                &instance,
                &run,
                &PodState::Launching.as_str(),
                &launch.agent_id.as_str(),
                &launch.hostname,
                &(launch.spec_version as i64),
                &launch.at,
                &revision,
                ports,
            ],
        )?;
        tx.execute(&clear_pending, &[&job, &instance])?;
    }
    Ok(())
}

fn write_runs(
    tx: &mut Transaction<'_>,
    runs: &[RunWrite],
    revision: i64,
) -> Result<(), postgres::Error> {
    // Only a terminal run's update writes its completion time, as SQLite's.
    let update = tx.prepare(
        "UPDATE runs SET state = $4, agent_id = $5, reason = $6, message = $7, \
         healthy = $8, started_at_ms = $9, updated_at_ms = $10, revision = $11, \
         unreachable_since_ms = $12, ready = $13, \
         completed_at_ms = CASE WHEN $14 THEN $15 ELSE completed_at_ms END, \
         image_name = COALESCE($16, image_name), image_digest = COALESCE($17, image_digest) \
         WHERE job_id = $1 AND instance = $2 AND run = $3",
    )?;
    for run in runs {
        let (job, instance, number) = key(&run.task_id);
        tx.execute(
            &update,
            &[
                &job,
                &instance,
                &number,
                &run.state.as_str(),
                &run.agent_id.as_ref().map(|a| a.as_str()),
                &run.reason.map(|r| r.as_str_name()),
                &run.message,
                &run.healthy,
                &run.started_at,
                &run.updated_at,
                &revision,
                &run.unreachable_since,
                &run.ready,
                &run.state.is_terminal(),
                &run.completed_at,
                // An update that names no image leaves the stored one.
                &run.image.as_ref().and_then(|i| i.name.as_deref()),
                &run.image.as_ref().and_then(|i| i.digest.as_deref()),
            ],
        )?;
    }
    Ok(())
}

fn write_events(
    tx: &mut Transaction<'_>,
    events: &[PodEvent],
    revision: i64,
) -> Result<(), postgres::Error> {
    // Events take consecutive numbers after the last one stored; the
    // counter's row lock orders concurrent writers (there is one).
    let count = events.len() as i64;
    let last: i64 = tx
        .query_one(
            "UPDATE event_seq SET value = value + $1 WHERE id = 1 RETURNING value",
            &[&count],
        )?
        .get(0);
    let insert = tx.prepare(
        "INSERT INTO pod_events (job_id, instance, run, state, mesos_state, reason, message, \
         healthy, agent_id, hostname, timestamp_ms, revision, seq, ready) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
    )?;
    let mut seq = last - count;
    for event in events {
        seq += 1;
        let (job, instance, run) = key(&event.task_id);
        tx.execute(
            &insert,
            &[
                &job,
                &instance,
                &run,
                &event.state.as_str(),
                &event.mesos_state.map(|s| s.as_str_name()),
                &event.reason.map(|r| r.as_str_name()),
                &event.message,
                &event.healthy,
                &event.agent_id.as_ref().map(|a| a.as_str()),
                &event.hostname,
                &event.timestamp,
                &revision,
                &seq,
                &event.ready,
            ],
        )?;
    }
    Ok(())
}

fn write_kills(
    tx: &mut Transaction<'_>,
    kills: &[KillRecord],
    revision: i64,
) -> Result<(), postgres::Error> {
    let update = tx.prepare(
        "UPDATE runs SET kill_requested_at_ms = $4, revision = $5, \
         kill_reason = COALESCE($6, kill_reason) \
         WHERE job_id = $1 AND instance = $2 AND run = $3",
    )?;
    for kill in kills {
        let (job, instance, run) = key(&kill.task_id);
        tx.execute(
            &update,
            &[
                &job,
                &instance,
                &run,
                &kill.at,
                &revision,
                &kill.reason.map(|r| r.as_str_name()),
            ],
        )?;
    }
    Ok(())
}

fn write_run_versions(
    tx: &mut Transaction<'_>,
    versions: &[(TaskId, u64)],
    revision: i64,
) -> Result<(), postgres::Error> {
    let update = tx.prepare(
        "UPDATE runs SET spec_version = $4, revision = $5 \
         WHERE job_id = $1 AND instance = $2 AND run = $3",
    )?;
    for (task, version) in versions {
        let (job, instance, run) = key(task);
        tx.execute(
            &update,
            &[&job, &instance, &run, &(*version as i64), &revision],
        )?;
    }
    Ok(())
}

fn write_workflow_events(
    tx: &mut Transaction<'_>,
    events: &[WorkflowEventRecord],
) -> Result<(), postgres::Error> {
    let insert = tx.prepare(
        "INSERT INTO workflow_events (job_id, workflow, instance, state, at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )?;
    for record in events {
        tx.execute(
            &insert,
            &[
                &record.job_id.as_str(),
                &i64::from(record.workflow),
                &record.event.instance.map(i64::from),
                &record.event.state.peloton_name(),
                &record.event.at,
            ],
        )?;
    }
    Ok(())
}

fn write_pending_reasons(
    tx: &mut Transaction<'_>,
    reasons: &[PendingReason],
) -> Result<(), postgres::Error> {
    let upsert = tx.prepare(
        "INSERT INTO pods (job_id, instance, pending_reason, pending_metrics, updated_at_ms) \
         SELECT $1::text, $2::bigint, $3::text, $4::text, $5::bigint WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = $1) \
         ON CONFLICT (job_id, instance) DO UPDATE SET pending_reason = $3, \
         pending_metrics = $4",
    )?;
    for PendingReason { pod, info, at } in reasons {
        tx.execute(
            &upsert,
            &[
                &pod.job.as_str(),
                &i64::from(pod.instance),
                &info.as_ref().map(|i| i.reason.as_str()),
                &info.as_ref().map(|i| i.metrics.as_str()),
                at,
            ],
        )?;
    }
    Ok(())
}
