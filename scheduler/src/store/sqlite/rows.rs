//! Rows into the model's values. A value this binary does not know is a
//! typed corruption error naming the column and the value: never read as
//! some default (an unknown state read as LOST would relaunch a task that
//! may be running).

use crate::model::ids::{AgentId, JobId};
use crate::model::image::RunImage;
use crate::model::job::{Job, PodControl};
use crate::model::run::{MessageDigest, Run};
use crate::model::spec::JobSpec;
use crate::model::state::{JobGoal, PodGoal, PodState};
use crate::model::workflow::JobWorkflows;
use crate::store::StoreError;
use drover_proto::v1::task_status::Reason;
use rusqlite::types::ValueRef;
use rusqlite::Row;
use std::collections::{BTreeMap, HashMap};

/// The columns [`job`] reads, in its order.
pub(super) const JOB_COLUMNS: &str = "job_id, spec, version, goal, created_at_ms, \
     updated_at_ms, revision, restart_batch_size, create_workflow, spec_version, workflows, updated_by";

/// The columns [`RunRow::read`] reads, in its order.
pub(super) const RUN_COLUMNS: &str = "job_id, instance, run, state, agent_id, hostname, reason, \
     message, healthy, spec_version, launched_at_ms, started_at_ms, completed_at_ms, \
     updated_at_ms, kill_requested_at_ms, kill_reason, ports, unreachable_since_ms, handing_over, \
     ready, image_name, image_digest";

/// A row failed to decode: SQLite's own error, or a value the model does
/// not know.
pub(super) enum RowError {
    Sqlite(rusqlite::Error),
    Corrupt(StoreError),
}

impl From<rusqlite::Error> for RowError {
    fn from(e: rusqlite::Error) -> Self {
        RowError::Sqlite(e)
    }
}

impl RowError {
    /// As a store error, SQLite's own naming the database file.
    pub(super) fn into_store(self, path: &std::path::Path) -> StoreError {
        match self {
            RowError::Sqlite(e) => StoreError::sqlite(path)(e),
            RowError::Corrupt(e) => e,
        }
    }
}

fn corrupt(what: &'static str, value: impl std::fmt::Debug) -> RowError {
    RowError::Corrupt(StoreError::CorruptValue {
        what,
        value: format!("{value:?}"),
    })
}

/// Column `i`: a job's creation workflow (JSON), or NULL for none.
fn create_workflow(
    row: &Row<'_>,
    i: usize,
) -> Result<Option<crate::model::create_workflow::CreateWorkflow>, RowError> {
    let raw: Option<String> = row.get(i)?;
    raw.map(|text| serde_json::from_str(&text).map_err(|_| corrupt("create workflow", text)))
        .transpose()
}

/// Column `i`: a job's workflows (JSON), or NULL for none yet.
fn workflows(row: &Row<'_>, i: usize) -> Result<JobWorkflows, RowError> {
    let raw: Option<String> = row.get(i)?;
    raw.map_or(Ok(JobWorkflows::default()), |text| {
        serde_json::from_str(&text).map_err(|_| corrupt("job workflows", text))
    })
}

/// Column `i` as text, borrowed; anything but text is corrupt.
pub(super) fn text<'r>(
    row: &'r Row<'_>,
    i: usize,
    what: &'static str,
) -> Result<&'r str, RowError> {
    match row.get_ref(i)? {
        ValueRef::Text(bytes) => std::str::from_utf8(bytes).map_err(|_| corrupt(what, bytes)),
        other => Err(corrupt(what, other)),
    }
}

/// Column `i` as optional text.
fn opt_text<'r>(
    row: &'r Row<'_>,
    i: usize,
    what: &'static str,
) -> Result<Option<&'r str>, RowError> {
    match row.get_ref(i)? {
        ValueRef::Null => Ok(None),
        _ => text(row, i, what).map(Some),
    }
}

/// A stored pod state.
pub(super) fn pod_state(value: &str) -> Result<PodState, RowError> {
    PodState::parse(value).ok_or_else(|| corrupt("pod state", value))
}

/// A stored Mesos reason (`REASON_...`).
fn reason(value: Option<&str>, what: &'static str) -> Result<Option<Reason>, RowError> {
    value
        .map(|v| Reason::from_str_name(v).ok_or_else(|| corrupt(what, v)))
        .transpose()
}

/// A number column that must fit `u32`.
fn small(row: &Row<'_>, i: usize, what: &'static str) -> Result<u32, RowError> {
    let n: i64 = row.get(i)?;
    u32::try_from(n).map_err(|_| corrupt(what, n))
}

/// A number column that must not be negative.
fn count(row: &Row<'_>, i: usize, what: &'static str) -> Result<u64, RowError> {
    let n: i64 = row.get(i)?;
    u64::try_from(n).map_err(|_| corrupt(what, n))
}

/// A job row ([`JOB_COLUMNS`]), without its pod controls.
pub(super) fn job(row: &Row<'_>) -> Result<Job, RowError> {
    let job_id = JobId(text(row, 0, "job id")?.to_owned());
    let spec: JobSpec = serde_json::from_str(text(row, 1, "job spec")?).map_err(|source| {
        RowError::Corrupt(StoreError::CorruptSpec {
            job: job_id.clone(),
            source,
        })
    })?;
    let goal = text(row, 3, "job goal")?;
    let goal = JobGoal::parse(goal).ok_or_else(|| corrupt("job goal", goal))?;
    Ok(Job {
        job_id,
        spec,
        version: count(row, 2, "job version")?,
        goal,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        updated_by: row.get(11)?,
        revision: count(row, 6, "job revision")?,
        restart_batch_size: small(row, 7, "restart batch size")?,
        create: create_workflow(row, 8)?,
        spec_version: count(row, 9, "spec version")?,
        workflows: workflows(row, 10)?,
        pods: BTreeMap::new(),
    })
}

/// A `pods` row `(instance, goal, restart_from)` as a control.
pub(super) fn pod_control(row: &Row<'_>) -> Result<(u32, PodControl), RowError> {
    let goal = text(row, 1, "pod goal")?;
    let control = PodControl {
        goal: PodGoal::parse(goal).ok_or_else(|| corrupt("pod goal", goal))?,
        restart_from: small(row, 2, "restart boundary")?,
    };
    Ok((small(row, 0, "instance")?, control))
}

/// A run row ([`RUN_COLUMNS`]) and what only readers show of it.
pub(super) struct RunRow {
    pub job_id: String,
    pub instance: u32,
    pub run: Run,
    pub hostname: Option<String>,
    pub message: Option<String>,
    pub ports: Vec<(String, u32)>,
    pub image: Option<RunImage>,
}

impl RunRow {
    /// Decodes a row; `agents` shares one id between the runs of an agent.
    pub(super) fn read(
        row: &Row<'_>,
        agents: &mut HashMap<String, AgentId>,
    ) -> Result<RunRow, RowError> {
        let agent = opt_text(row, 4, "agent id")?.map(|a| match agents.get(a) {
            Some(id) => id.clone(),
            None => {
                let id = AgentId::new(a);
                agents.insert(a.to_owned(), id.clone());
                id
            }
        });
        let message: Option<String> = row.get(7)?;
        let ports = match opt_text(row, 16, "ports")? {
            Some(p) => serde_json::from_str(p).map_err(|_| corrupt("ports", p))?,
            None => Vec::new(),
        };
        let run = Run {
            run: small(row, 2, "run number")?,
            state: pod_state(text(row, 3, "pod state")?)?,
            healthy: row.get(8)?,
            ready: row.get(19)?,
            reason: reason(opt_text(row, 6, "reason")?, "reason")?,
            message: message.as_deref().map(MessageDigest::of),
            agent,
            spec_version: count(row, 9, "spec version")?,
            launched_at: row.get(10)?,
            started_at: row.get(11)?,
            completed_at: row.get(12)?,
            updated_at: row.get(13)?,
            kill_requested_at: row.get(14)?,
            kill_reason: reason(opt_text(row, 15, "kill reason")?, "kill reason")?,
            unreachable: row
                .get::<_, Option<i64>>(17)?
                .and_then(std::num::NonZeroI64::new),
            handing_over: row.get(18)?,
        };
        Ok(RunRow {
            job_id: text(row, 0, "job id")?.to_owned(),
            instance: small(row, 1, "instance")?,
            run,
            hostname: row.get(5)?,
            message,
            ports,
            image: RunImage::from_stored(row.get(20)?, row.get(21)?),
        })
    }
}
