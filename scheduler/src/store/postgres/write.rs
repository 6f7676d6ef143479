//! [`Store::commit`] for PostgreSQL: a [`Change`] written as given, in
//! one transaction sent in one flight (the `super` module doc), in
//! SQLite's order (`super::super::sqlite`'s write), after the fencing
//! check. Nothing here decides whether a write is right.
//!
//! The change becomes a [`Plan`] on the caller's thread: statements with
//! owned parameters, the bulky tables (runs, events, kills, pods' pending
//! reasons, workflow events) one statement per table with each column an
//! array (`UNNEST`), the rare writes (jobs, pools, hosts, pipeline runs)
//! one statement each. A table's rows go in one statement only where no
//! row's key repeats: the k-th write of one key goes in the k-th statement
//! ([`rounds`]), so every row is written as if one by one, in order.

use super::schema::FENCED_SQLSTATE;
use super::session::flight;
use super::{borrowed, Param, PostgresStore};
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
use std::collections::HashMap;
use std::hash::Hash;

/// The revision this commit took, in a statement after its bump.
macro_rules! rev {
    () => {
        "(SELECT value FROM revision WHERE id = 1)"
    };
}

/// One statement of a commit.
pub(super) struct Step {
    sql: &'static str,
    params: Vec<Param>,
}

impl Step {
    fn new(sql: &'static str, params: Vec<Param>) -> Self {
        Step { sql, params }
    }
}

/// A commit's statements, in order, after the fencing check and the
/// revision statement (the first and second of the flight).
pub(super) struct Plan {
    fence: Option<Epoch>,
    revisioned: bool,
    steps: Vec<Step>,
}

/// What a commit's flight found.
enum Outcome {
    Written(Revision),
    Fenced { mine: Epoch, current: Epoch },
}

impl Store for PostgresStore {
    fn load(&self) -> Result<Snapshot, StoreError> {
        self.load_snapshot()
    }

    fn commit(&mut self, change: &Change) -> Result<Revision, StoreError> {
        // Specs are written with their secrets' values sealed (the scope is
        // this thread's, so the rows are made here).
        let json =
            secret::sealed_with(self.sealer.as_ref(), || Json::of(change)).map_err(|source| {
                StoreError::Postgres {
                    url: self.display_url(),
                    detail: String::new(),
                    source: Box::new(source),
                }
            })?;
        let plan = Plan {
            fence: self.epoch,
            revisioned: change.is_revisioned(),
            steps: steps(change, &json),
        };
        match self.call(move |s| Box::pin(run(s, plan)))? {
            Outcome::Written(revision) => Ok(revision),
            Outcome::Fenced { mine, current } => Err(StoreError::Fenced { mine, current }),
        }
    }

    fn claim_leadership(&mut self, replica: &str) -> Result<Epoch, StoreError> {
        let replica = replica.to_owned();
        let rows = self.call(move |s| {
            Box::pin(async move {
                s.query(
                    "UPDATE leader_epoch SET epoch = epoch + 1, replica = $1, \
                     claimed_at_ms = (extract(epoch FROM clock_timestamp()) * 1000)::bigint \
                     WHERE id = 1 RETURNING epoch",
                    &[&replica],
                )
                .await
            })
        })?;
        let epoch: i64 = rows
            .first()
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(|e| self.err(e))?
            .unwrap_or_default();
        let epoch = epoch as Epoch;
        self.epoch = Some(epoch);
        Ok(epoch)
    }
}

const FENCE: &str = "SELECT drover_fence($1)";
const BUMP: &str = "UPDATE revision SET value = value + 1 WHERE id = 1 RETURNING value";
const CURRENT: &str = "SELECT value FROM revision WHERE id = 1";

/// Sends `plan` in one flight (BEGIN, fence, revision, steps, COMMIT) and
/// reads the answers.
async fn run(
    session: &mut super::session::Session,
    plan: Plan,
) -> Result<Outcome, tokio_postgres::Error> {
    let head = [if plan.revisioned { BUMP } else { CURRENT }];
    let sqls: Vec<&str> = plan
        .fence
        .map(|_| FENCE)
        .into_iter()
        .chain(head)
        .chain(plan.steps.iter().map(|s| s.sql))
        .collect();
    let (client, statements) = session.prepared(&sqls).await?;
    let mine = plan.fence.map(|e| e as i64);
    let mut params: Vec<Vec<&(dyn tokio_postgres::types::ToSql + Sync)>> = Vec::new();
    if let Some(mine) = &mine {
        params.push(vec![mine]);
    }
    params.push(Vec::new());
    params.extend(plan.steps.iter().map(|s| borrowed(&s.params)));
    // Each request is sent on its first poll; one the client cannot encode
    // fails there, unsent, and then the last request is a ROLLBACK.
    let mut unsent = false;
    let mut requests = Vec::with_capacity(statements.len() + 2);
    requests.push(
        Box::pin(async move { client.batch_execute("BEGIN").await.map(|()| Vec::new()) })
            as futures_util::future::BoxFuture<'_, _>,
    );
    for (statement, params) in statements.iter().zip(&params) {
        requests.push(Box::pin(client.query(statement, params)));
    }
    let answers = {
        let mut sent = Vec::with_capacity(requests.len() + 1);
        for mut request in requests {
            match futures_util::poll!(request.as_mut()) {
                std::task::Poll::Ready(Err(e)) => {
                    unsent = true;
                    sent.push(Box::pin(std::future::ready(Err(e)))
                        as futures_util::future::BoxFuture<'_, _>);
                }
                std::task::Poll::Ready(answer) => sent.push(Box::pin(std::future::ready(answer))),
                std::task::Poll::Pending => sent.push(request),
            }
        }
        let end = if unsent { "ROLLBACK" } else { "COMMIT" };
        sent.push(Box::pin(async move {
            client.batch_execute(end).await.map(|()| Vec::new())
        }));
        flight(sent).await
    };
    let mut answers = answers.into_iter();
    let _begin = answers.next();
    if let Some(mine) = plan.fence {
        if let Some(Err(e)) = answers.next() {
            if let Some(current) = fenced(&e) {
                return Ok(Outcome::Fenced { mine, current });
            }
            return Err(e);
        }
    }
    let revision = answers.next();
    // The first error is the commit's (the later ones only say the
    // transaction was aborted by it); the COMMIT after it rolled back.
    let mut first_error = None;
    let mut rest = Vec::new();
    for answer in answers {
        match answer {
            Err(e) => {
                first_error.get_or_insert(e);
            }
            Ok(rows) => rest.push(rows),
        }
    }
    let revision = match revision {
        Some(Ok(rows)) => rows.first().map(|r| r.try_get::<_, i64>(0)).transpose()?,
        Some(Err(e)) => return Err(e),
        None => None,
    };
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(Outcome::Written(revision.unwrap_or_default() as Revision))
}

/// The current epoch, if `e` is `drover_fence`'s refusal.
fn fenced(e: &tokio_postgres::Error) -> Option<Epoch> {
    let db = e.as_db_error()?;
    if db.code().code() != FENCED_SQLSTATE {
        return None;
    }
    db.detail()?.trim().parse().ok()
}

/// The change's JSON columns, serialized before anything is sent (so that
/// a value that does not serialize writes nothing).
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

/// The statements of `change`, in SQLite's order.
fn steps(change: &Change, json: &Json) -> Vec<Step> {
    let mut steps = Vec::new();
    if let Some(id) = &change.framework_id {
        steps.push(Step::new(
            "UPDATE framework SET framework_id = $1 WHERE id = 1",
            params![id.clone()],
        ));
    }
    for (job, json) in change.jobs.iter().zip(&json.jobs) {
        job_steps(&mut steps, job, json);
    }
    if !change.launches.is_empty() {
        launch_steps(&mut steps, &change.launches, &json.ports);
    }
    for round in rounds(&change.runs, |r| r.task_id.clone()) {
        steps.push(run_step(&round));
    }
    if !change.events.is_empty() {
        steps.push(event_step(&change.events));
    }
    for round in rounds(&change.kills, |k| k.task_id.clone()) {
        steps.push(kill_step(&round));
    }
    for round in rounds(&change.run_versions, |(task, _)| task.clone()) {
        let (job, instance, run) = keys(round.iter().map(|(t, _)| t));
        let versions: Vec<i64> = round.iter().map(|(_, v)| *v as i64).collect();
        steps.push(Step::new(
            concat!(
                "UPDATE runs SET spec_version = u.version, revision = ",
                rev!(),
                " FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) \
                 AS u(job_id, instance, run, version) \
                 WHERE runs.job_id = u.job_id AND runs.instance = u.instance AND runs.run = u.run"
            ),
            params![job, instance, run, versions],
        ));
    }
    if !change.workflow_events.is_empty() {
        steps.push(workflow_event_step(&change.workflow_events));
    }
    for round in rounds(&change.pending_reasons, |p| p.pod.clone()) {
        steps.push(pending_reason_step(&round));
    }
    for (write, spec) in change.pools.iter().zip(&json.pools) {
        steps.push(match write {
            PoolWrite::Put(pool) => Step::new(
                concat!(
                    "INSERT INTO pools (pool_id, spec, version, created_at_ms, updated_at_ms, \
                     revision) VALUES ($1, $2, $3, $4, $5, ",
                    rev!(),
                    ") ON CONFLICT (pool_id) DO UPDATE SET spec = $2, version = $3, \
                     updated_at_ms = $5, revision = EXCLUDED.revision"
                ),
                params![
                    pool.id.as_str().to_owned(),
                    spec.clone(),
                    pool.version as i64,
                    pool.created_ms as i64,
                    pool.updated_ms as i64,
                ],
            ),
            PoolWrite::Delete(id) => Step::new(
                "DELETE FROM pools WHERE pool_id = $1",
                params![id.as_str().to_owned()],
            ),
        });
    }
    for write in &change.hosts {
        steps.push(match write {
            HostWrite::Put(m) => Step::new(
                "INSERT INTO host_maintenance \
                 (hostname, state, cause, since_ms, batch_grace_ms, inverse_offer) \
                 VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT (hostname) DO UPDATE SET state = $2, cause = $3, \
                 since_ms = $4, batch_grace_ms = $5, inverse_offer = $6",
                params![
                    m.hostname.clone(),
                    m.state.peloton_name().to_owned(),
                    m.cause.as_str().to_owned(),
                    m.since,
                    i64::try_from(m.batch_grace.as_millis()).unwrap_or(i64::MAX),
                    m.inverse_offer.clone(),
                ],
            ),
            HostWrite::Remove(host) => Step::new(
                "DELETE FROM host_maintenance WHERE hostname = $1",
                params![host.clone()],
            ),
        });
    }
    for (record, json) in change.pipeline_runs.iter().zip(&json.pipeline_runs) {
        steps.push(Step::new(
            concat!(
                "INSERT INTO pipeline_runs (run_id, record, created_at_ms, revision) \
                 VALUES ($1, $2, $3, ",
                rev!(),
                ") ON CONFLICT (run_id) DO UPDATE SET record = $2, revision = EXCLUDED.revision"
            ),
            params![record.id().to_owned(), json.clone(), record.created_ms],
        ));
    }
    for write in change.kfp.iter() {
        steps.push(match write {
            KfpWrite::CreateExperiment(e) => Step::new(
                "INSERT INTO kfp_experiments (experiment_id, name, description, \
                 created_at_ms) VALUES ($1, $2, $3, $4)",
                params![
                    e.id.clone(),
                    e.name.clone(),
                    e.description.clone(),
                    e.created_at_ms
                ],
            ),
            KfpWrite::DeleteRun(run_id) => Step::new(
                "DELETE FROM pipeline_runs WHERE run_id = $1",
                params![run_id.clone()],
            ),
        });
    }
    steps
}

type JobJson = (Option<String>, Option<String>, Option<String>);

fn job_steps(steps: &mut Vec<Step>, write: &JobWrite, (spec, create, workflows): &JobJson) {
    match write {
        JobWrite::Create(job) => steps.push(Step::new(
            concat!(
                "INSERT INTO jobs (job_id, spec, version, goal, created_at_ms, updated_at_ms, \
                 revision, restart_batch_size, create_workflow, spec_version, workflows, \
                 updated_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, ",
                rev!(),
                ", $7, $8, $9, $10, $11)"
            ),
            params![
                job.job_id.as_str().to_owned(),
                spec.clone(),
                job.version as i64,
                job.goal.as_str().to_owned(),
                job.created_at,
                job.updated_at,
                i64::from(job.restart_batch_size),
                create.clone(),
                job.spec_version as i64,
                workflows.clone(),
                job.updated_by.clone(),
            ],
        )),
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
        } => steps.push(Step::new(
            concat!(
                "UPDATE jobs SET goal = $2, version = $3, restart_batch_size = $4, \
                 create_workflow = $7, spec_version = $8, workflows = $9, \
                 updated_at_ms = CASE WHEN $5 THEN $6 ELSE updated_at_ms END, \
                 updated_by = CASE WHEN $5 THEN $10 ELSE updated_by END, \
                 revision = CASE WHEN $5 THEN ",
                rev!(),
                " ELSE revision END WHERE job_id = $1"
            ),
            params![
                job_id.as_str().to_owned(),
                goal.as_str().to_owned(),
                *version as i64,
                i64::from(*restart_batch_size),
                *bump,
                *updated_at,
                create.clone(),
                *spec_version as i64,
                workflows.clone(),
                updated_by.clone(),
            ],
        )),
        JobWrite::Spec { job_id, .. } => steps.push(Step::new(
            "UPDATE jobs SET spec = $2 WHERE job_id = $1",
            params![job_id.as_str().to_owned(), spec.clone()],
        )),
        JobWrite::Pod { pod, control, at } => steps.push(Step::new(
            "INSERT INTO pods (job_id, instance, goal, restart_from, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (job_id, instance) \
             DO UPDATE SET goal = $3, restart_from = $4, updated_at_ms = $5",
            params![
                pod.job.as_str().to_owned(),
                i64::from(pod.instance),
                control.goal.as_str().to_owned(),
                i64::from(control.restart_from),
                *at,
            ],
        )),
        JobWrite::Delete(id) => {
            for sql in [
                "DELETE FROM jobs WHERE job_id = $1",
                "DELETE FROM runs WHERE job_id = $1",
                "DELETE FROM pod_events WHERE job_id = $1",
                "DELETE FROM pods WHERE job_id = $1",
                "DELETE FROM workflow_events WHERE job_id = $1",
            ] {
                steps.push(Step::new(sql, params![id.as_str().to_owned()]));
            }
        }
        JobWrite::DeletePodEvents(task) => {
            let (job, instance, run) = key(task);
            steps.push(Step::new(
                "DELETE FROM pod_events WHERE job_id = $1 AND instance = $2 AND run = $3",
                params![job.to_owned(), instance, run],
            ));
            // As SQLite's: the launch event is read from the run while
            // `launch_revision` is set.
            steps.push(Step::new(
                "UPDATE runs SET launch_revision = NULL \
                 WHERE job_id = $1 AND instance = $2 AND run = $3",
                params![job.to_owned(), instance, run],
            ));
        }
    }
}

/// A task's row key.
fn key(task: &TaskId) -> (&str, i64, i64) {
    (
        task.instance.job.as_str(),
        i64::from(task.instance.instance),
        i64::from(task.run),
    )
}

/// The key columns of `tasks`.
fn keys<'a>(tasks: impl Iterator<Item = &'a TaskId>) -> (Vec<String>, Vec<i64>, Vec<i64>) {
    let mut columns = (Vec::new(), Vec::new(), Vec::new());
    for task in tasks {
        let (job, instance, run) = key(task);
        columns.0.push(job.to_owned());
        columns.1.push(instance);
        columns.2.push(run);
    }
    columns
}

/// `items` split so that no key repeats within a part, each part in the
/// items' order: the k-th item of a key goes in the k-th part. Usually one
/// part.
pub(super) fn rounds<T, K: Eq + Hash>(items: &[T], key: impl Fn(&T) -> K) -> Vec<Vec<&T>> {
    let mut seen: HashMap<K, usize> = HashMap::new();
    let mut parts: Vec<Vec<&T>> = Vec::new();
    for item in items {
        let count = seen.entry(key(item)).or_insert(0);
        if parts.len() <= *count {
            parts.push(Vec::new());
        }
        parts[*count].push(item);
        *count += 1;
    }
    parts
}

fn launch_steps(steps: &mut Vec<Step>, launches: &[LaunchRecord], ports: &[Option<String>]) {
    // The old runs are marked before their replacements are inserted: the
    // one-live-run trigger allows a second live run only beside a run
    // handing over (or unreachable). (Marking twice is as marking once.)
    let handing: Vec<(&TaskId, u32)> = launches
        .iter()
        .filter_map(|l| l.hands_over.map(|from| (&l.task_id, from)))
        .collect();
    if !handing.is_empty() {
        let (job, instance, _) = keys(handing.iter().map(|(t, _)| *t));
        let from: Vec<i64> = handing.iter().map(|(_, f)| i64::from(*f)).collect();
        steps.push(Step::new(
            concat!(
                "UPDATE runs SET handing_over = TRUE, revision = ",
                rev!(),
                " FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) AS u(job_id, instance, run) \
                 WHERE runs.job_id = u.job_id AND runs.instance = u.instance AND runs.run = u.run"
            ),
            params![job, instance, from],
        ));
    }
    let (job, instance, run) = keys(launches.iter().map(|l| &l.task_id));
    let state = vec![PodState::Launching.as_str().to_owned(); launches.len()];
    let agent: Vec<String> = launches
        .iter()
        .map(|l| l.agent_id.as_str().to_owned())
        .collect();
    let host: Vec<String> = launches.iter().map(|l| l.hostname.clone()).collect();
    let spec_version: Vec<i64> = launches.iter().map(|l| l.spec_version as i64).collect();
    let at: Vec<i64> = launches.iter().map(|l| l.at).collect();
    steps.push(Step::new(
        "INSERT INTO runs (job_id, instance, run, state, agent_id, hostname, spec_version, \
         launched_at_ms, updated_at_ms, revision, ports, launch_revision) \
         SELECT u.job_id, u.instance, u.run, u.state, u.agent_id, u.hostname, \
         u.spec_version, u.at, u.at, r.value, u.ports, r.value \
         FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
         $6::text[], $7::bigint[], $8::bigint[], $9::text[]) \
         AS u(job_id, instance, run, state, agent_id, hostname, spec_version, at, ports), \
         (SELECT value FROM revision WHERE id = 1) AS r",
        params![
            job.clone(),
            instance.clone(),
            run,
            state,
            agent,
            host,
            spec_version,
            at,
            ports.to_vec()
        ],
    ));
    steps.push(Step::new(
        "UPDATE pods SET pending_reason = NULL, pending_metrics = NULL \
         FROM UNNEST($1::text[], $2::bigint[]) AS u(job_id, instance) \
         WHERE pods.job_id = u.job_id AND pods.instance = u.instance",
        params![job, instance],
    ));
}

fn run_step(runs: &[&RunWrite]) -> Step {
    let (job, instance, number) = keys(runs.iter().map(|r| &r.task_id));
    let text = |f: &dyn Fn(&RunWrite) -> Option<String>| -> Vec<Option<String>> {
        runs.iter().map(|r| f(r)).collect()
    };
    let state = text(&|r| Some(r.state.as_str().to_owned()));
    let agent = text(&|r| r.agent_id.as_ref().map(|a| a.as_str().to_owned()));
    let reason = text(&|r| r.reason.map(|r| r.as_str_name().to_owned()));
    let message = text(&|r| r.message.clone());
    // An update that names no image leaves the stored one.
    let image_name = text(&|r| r.image.as_ref().and_then(|i| i.name.clone()));
    let image_digest = text(&|r| r.image.as_ref().and_then(|i| i.digest.clone()));
    let healthy: Vec<Option<bool>> = runs.iter().map(|r| r.healthy).collect();
    let ready: Vec<Option<bool>> = runs.iter().map(|r| r.ready).collect();
    let terminal: Vec<bool> = runs.iter().map(|r| r.state.is_terminal()).collect();
    let started: Vec<Option<i64>> = runs.iter().map(|r| r.started_at).collect();
    let updated: Vec<i64> = runs.iter().map(|r| r.updated_at).collect();
    let unreachable: Vec<Option<i64>> = runs.iter().map(|r| r.unreachable_since).collect();
    let completed: Vec<Option<i64>> = runs.iter().map(|r| r.completed_at).collect();
    // Only a terminal run's update writes its completion time, as SQLite's.
    Step::new(
        concat!(
            "UPDATE runs SET state = u.state, agent_id = u.agent_id, reason = u.reason, \
             message = u.message, healthy = u.healthy, started_at_ms = u.started_at, \
             updated_at_ms = u.updated_at, revision = ",
            rev!(),
            ", unreachable_since_ms = u.unreachable_since, ready = u.ready, \
             completed_at_ms = CASE WHEN u.terminal THEN u.completed_at \
             ELSE runs.completed_at_ms END, \
             image_name = COALESCE(u.image_name, runs.image_name), \
             image_digest = COALESCE(u.image_digest, runs.image_digest) \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::bool[], $9::bigint[], $10::bigint[], $11::bigint[], \
             $12::bool[], $13::bool[], $14::bigint[], $15::text[], $16::text[]) \
             AS u(job_id, instance, run, state, agent_id, reason, message, healthy, started_at, \
             updated_at, unreachable_since, ready, terminal, completed_at, image_name, \
             image_digest) \
             WHERE runs.job_id = u.job_id AND runs.instance = u.instance AND runs.run = u.run"
        ),
        params![
            job,
            instance,
            number,
            state,
            agent,
            reason,
            message,
            healthy,
            started,
            updated,
            unreachable,
            ready,
            terminal,
            completed,
            image_name,
            image_digest
        ],
    )
}

fn event_step(events: &[PodEvent]) -> Step {
    // Events take consecutive numbers after the last one stored, in
    // order; the counter's row lock orders concurrent writers (there is
    // one).
    let (job, instance, run) = keys(events.iter().map(|e| &e.task_id));
    let text = |f: &dyn Fn(&PodEvent) -> Option<String>| -> Vec<Option<String>> {
        events.iter().map(f).collect()
    };
    let state = text(&|e| Some(e.state.as_str().to_owned()));
    let mesos_state = text(&|e| e.mesos_state.map(|s| s.as_str_name().to_owned()));
    let reason = text(&|e| e.reason.map(|r| r.as_str_name().to_owned()));
    let message = text(&|e| e.message.clone());
    let agent = text(&|e| e.agent_id.as_ref().map(|a| a.as_str().to_owned()));
    let host = text(&|e| e.hostname.clone());
    let healthy: Vec<Option<bool>> = events.iter().map(|e| e.healthy).collect();
    let ready: Vec<Option<bool>> = events.iter().map(|e| e.ready).collect();
    let at: Vec<i64> = events.iter().map(|e| e.timestamp).collect();
    Step::new(
        concat!(
            "WITH s AS (UPDATE event_seq SET value = value + $13 WHERE id = 1 RETURNING value) \
             INSERT INTO pod_events (job_id, instance, run, state, mesos_state, reason, \
             message, healthy, agent_id, hostname, timestamp_ms, revision, seq, ready) \
             SELECT u.job_id, u.instance, u.run, u.state, u.mesos_state, u.reason, u.message, \
             u.healthy, u.agent_id, u.hostname, u.at, ",
            rev!(),
            ", s.value - $13 + u.ord, u.ready \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::bool[], $9::text[], $10::text[], $11::bigint[], \
             $12::bool[]) WITH ORDINALITY \
             AS u(job_id, instance, run, state, mesos_state, reason, message, healthy, \
             agent_id, hostname, at, ready, ord), s"
        ),
        params![
            job,
            instance,
            run,
            state,
            mesos_state,
            reason,
            message,
            healthy,
            agent,
            host,
            at,
            ready,
            events.len() as i64
        ],
    )
}

fn kill_step(kills: &[&KillRecord]) -> Step {
    let (job, instance, run) = keys(kills.iter().map(|k| &k.task_id));
    let at: Vec<i64> = kills.iter().map(|k| k.at).collect();
    let reason: Vec<Option<String>> = kills
        .iter()
        .map(|k| k.reason.map(|r| r.as_str_name().to_owned()))
        .collect();
    Step::new(
        concat!(
            "UPDATE runs SET kill_requested_at_ms = u.at, revision = ",
            rev!(),
            ", kill_reason = COALESCE(u.reason, runs.kill_reason) \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::text[]) \
             AS u(job_id, instance, run, at, reason) \
             WHERE runs.job_id = u.job_id AND runs.instance = u.instance AND runs.run = u.run"
        ),
        params![job, instance, run, at, reason],
    )
}

fn workflow_event_step(events: &[WorkflowEventRecord]) -> Step {
    let job: Vec<String> = events
        .iter()
        .map(|e| e.job_id.as_str().to_owned())
        .collect();
    let workflow: Vec<i64> = events.iter().map(|e| i64::from(e.workflow)).collect();
    let instance: Vec<Option<i64>> = events
        .iter()
        .map(|e| e.event.instance.map(i64::from))
        .collect();
    let state: Vec<String> = events
        .iter()
        .map(|e| e.event.state.peloton_name().to_owned())
        .collect();
    let at: Vec<i64> = events.iter().map(|e| e.event.at).collect();
    // Numbered (BIGSERIAL) in the change's order.
    Step::new(
        "INSERT INTO workflow_events (job_id, workflow, instance, state, at_ms) \
         SELECT u.job_id, u.workflow, u.instance, u.state, u.at \
         FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[]) \
         WITH ORDINALITY AS u(job_id, workflow, instance, state, at, ord) ORDER BY u.ord",
        params![job, workflow, instance, state, at],
    )
}

fn pending_reason_step(reasons: &[&PendingReason]) -> Step {
    let job: Vec<String> = reasons
        .iter()
        .map(|p| p.pod.job.as_str().to_owned())
        .collect();
    let instance: Vec<i64> = reasons.iter().map(|p| i64::from(p.pod.instance)).collect();
    let reason: Vec<Option<String>> = reasons
        .iter()
        .map(|p| p.info.as_ref().map(|i| i.reason.clone()))
        .collect();
    let metrics: Vec<Option<String>> = reasons
        .iter()
        .map(|p| p.info.as_ref().map(|i| i.metrics.clone()))
        .collect();
    let at: Vec<i64> = reasons.iter().map(|p| p.at).collect();
    Step::new(
        "INSERT INTO pods (job_id, instance, pending_reason, pending_metrics, updated_at_ms) \
         SELECT u.job_id, u.instance, u.reason, u.metrics, u.at \
         FROM UNNEST($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) \
         AS u(job_id, instance, reason, metrics, at) \
         WHERE EXISTS (SELECT 1 FROM jobs WHERE jobs.job_id = u.job_id) \
         ON CONFLICT (job_id, instance) DO UPDATE SET \
         pending_reason = EXCLUDED.pending_reason, pending_metrics = EXCLUDED.pending_metrics",
        params![job, instance, reason, metrics, at],
    )
}

#[cfg(test)]
mod tests {
    use super::rounds;

    #[test]
    fn rounds_keep_each_keys_writes_in_order_and_never_repeat_a_key_within_one() {
        let items = [("a", 1), ("b", 1), ("a", 2), ("c", 1), ("a", 3), ("b", 2)];
        let parts = rounds(&items, |(k, _)| *k);
        let parts: Vec<Vec<(&str, i32)>> = parts
            .into_iter()
            .map(|p| p.into_iter().copied().collect())
            .collect();
        assert_eq!(
            parts,
            [
                vec![("a", 1), ("b", 1), ("c", 1)],
                vec![("a", 2), ("b", 2)],
                vec![("a", 3)],
            ]
        );
        assert!(rounds(&[] as &[(&str, i32)], |(k, _)| *k).is_empty());
    }
}
