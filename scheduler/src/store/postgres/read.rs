//! Reading back what was written: [`StoreRead`] and the engine's start-up
//! load, with SQLite's queries and decoding (`super::super::sqlite`'s
//! read and rows): a value this binary does not know is a typed
//! corruption error, never a default. Rows are fetched on the store's
//! thread and decoded on the caller's, where the secret scope is. The
//! start-up load is one flight of queries in one read-only snapshot.

use super::schema::LIVE_RUNS_PREDICATE;
use super::session::flight;
use super::{borrowed, Param, PostgresStore};
use crate::model::change::PendingInfo;
use crate::model::host::{DrainCause, HostMaintenance, HostState};
use crate::model::ids::{AgentId, InstanceId, JobId, TaskId};
use crate::model::image::RunImage;
use crate::model::job::{Job, PodControl, Revision};
use crate::model::pool::{Pool, PoolId, PoolSpec};
use crate::model::run::{MessageDigest, Run, RunHistory};
use crate::model::secret;
use crate::model::spec::JobSpec;
use crate::model::state::{JobGoal, PodGoal, PodState};
use crate::model::workflow::{JobWorkflows, WorkflowEvent, WorkflowState};
use crate::store::{PodEventRecord, RunRecord, Snapshot, StoreError, StoreIdentity, StoreRead};
use drover_proto::v1::task_status::Reason;
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::types::FromSqlOwned;
use tokio_postgres::Row;

/// The columns [`PostgresStore::job_row`] reads, in its order.
const JOB_COLUMNS: &str = "job_id, spec, version, goal, created_at_ms, updated_at_ms, revision, \
     restart_batch_size, create_workflow, spec_version, workflows, updated_by";

/// The columns [`run_row`] reads, in its order.
const RUN_COLUMNS: &str = "job_id, instance, run, state, agent_id, hostname, reason, \
     message, healthy, spec_version, launched_at_ms, started_at_ms, completed_at_ms, \
     updated_at_ms, kill_requested_at_ms, kill_reason, ports, unreachable_since_ms, handing_over, \
     ready, image_name, image_digest";

const ALL_POD_CONTROLS: &str = "SELECT instance, goal, restart_from, job_id FROM pods";
const IDENTITY: &str = "SELECT store_id, created_at_ms FROM store_info WHERE id = 1";
const FRAMEWORK_ID: &str = "SELECT framework_id FROM framework WHERE id = 1";
const REVISION: &str = "SELECT value FROM revision WHERE id = 1";
const POOLS: &str = "SELECT pool_id, spec, version, created_at_ms, updated_at_ms FROM pools \
     ORDER BY pool_id";
const HOSTS: &str = "SELECT hostname, state, cause, since_ms, batch_grace_ms, inverse_offer \
     FROM host_maintenance ORDER BY hostname";
const PIPELINE_RUNS: &str =
    "SELECT run_id, record FROM pipeline_runs ORDER BY created_at_ms, run_id";
const EXPERIMENTS: &str = "SELECT experiment_id, name, description, created_at_ms \
     FROM kfp_experiments ORDER BY created_at_ms, experiment_id";

/// The first column of the one row a query must return.
fn one<T: FromSqlOwned>(rows: &[Row]) -> Result<T, RowError> {
    let row = rows
        .first()
        .ok_or_else(|| corrupt("single-row table", "no row"))?;
    Ok(row.try_get(0)?)
}

/// A row failed to decode: the client's own error (a column of another
/// type), or a value the model does not know.
enum RowError {
    Pg(tokio_postgres::Error),
    Corrupt(StoreError),
}

impl From<tokio_postgres::Error> for RowError {
    fn from(e: tokio_postgres::Error) -> Self {
        RowError::Pg(e)
    }
}

fn corrupt(what: &'static str, value: impl std::fmt::Debug) -> RowError {
    RowError::Corrupt(StoreError::CorruptValue {
        what,
        value: format!("{value:?}"),
    })
}

fn small(row: &Row, i: usize, what: &'static str) -> Result<u32, RowError> {
    let n: i64 = row.try_get(i)?;
    u32::try_from(n).map_err(|_| corrupt(what, n))
}

fn count(row: &Row, i: usize, what: &'static str) -> Result<u64, RowError> {
    let n: i64 = row.try_get(i)?;
    u64::try_from(n).map_err(|_| corrupt(what, n))
}

fn pod_state(value: &str) -> Result<PodState, RowError> {
    PodState::parse(value).ok_or_else(|| corrupt("pod state", value))
}

fn reason(value: Option<&str>, what: &'static str) -> Result<Option<Reason>, RowError> {
    value
        .map(|v| Reason::from_str_name(v).ok_or_else(|| corrupt(what, v)))
        .transpose()
}

/// A job row ([`JOB_COLUMNS`]), without its pod controls.
fn job(row: &Row) -> Result<Job, RowError> {
    let job_id = JobId(row.try_get::<_, String>(0)?);
    let spec: JobSpec = serde_json::from_str(row.try_get::<_, &str>(1)?).map_err(|source| {
        RowError::Corrupt(StoreError::CorruptSpec {
            job: job_id.clone(),
            source,
        })
    })?;
    let goal: &str = row.try_get(3)?;
    let goal = JobGoal::parse(goal).ok_or_else(|| corrupt("job goal", goal))?;
    let create = row
        .try_get::<_, Option<&str>>(8)?
        .map(|t| serde_json::from_str(t).map_err(|_| corrupt("create workflow", t)))
        .transpose()?;
    let workflows: JobWorkflows = match row.try_get::<_, Option<&str>>(10)? {
        Some(t) => serde_json::from_str(t).map_err(|_| corrupt("job workflows", t))?,
        None => JobWorkflows::default(),
    };
    Ok(Job {
        job_id,
        spec,
        version: count(row, 2, "job version")?,
        goal,
        created_at: row.try_get(4)?,
        updated_at: row.try_get(5)?,
        updated_by: row.try_get(11)?,
        revision: count(row, 6, "job revision")?,
        restart_batch_size: small(row, 7, "restart batch size")?,
        create,
        spec_version: count(row, 9, "spec version")?,
        workflows,
        pods: BTreeMap::new(),
    })
}

/// A `pods` row `(instance, goal, restart_from, job_id)`.
fn pod_control(row: &Row) -> Result<(String, u32, PodControl), RowError> {
    let goal: &str = row.try_get(1)?;
    let control = PodControl {
        goal: PodGoal::parse(goal).ok_or_else(|| corrupt("pod goal", goal))?,
        restart_from: small(row, 2, "restart boundary")?,
    };
    Ok((row.try_get(3)?, small(row, 0, "instance")?, control))
}

/// A run row ([`RUN_COLUMNS`]): its job, instance, the record.
fn run_row(
    row: &Row,
    agents: &mut HashMap<String, AgentId>,
) -> Result<(String, u32, RunRecord), RowError> {
    let agent = row
        .try_get::<_, Option<&str>>(4)?
        .map(|a| match agents.get(a) {
            Some(id) => id.clone(),
            None => {
                let id = AgentId::new(a);
                agents.insert(a.to_owned(), id.clone());
                id
            }
        });
    let message: Option<String> = row.try_get(7)?;
    let ports = match row.try_get::<_, Option<&str>>(16)? {
        Some(p) => serde_json::from_str(p).map_err(|_| corrupt("ports", p))?,
        None => Vec::new(),
    };
    let run = Run {
        run: small(row, 2, "run number")?,
        state: pod_state(row.try_get(3)?)?,
        healthy: row.try_get(8)?,
        ready: row.try_get(19)?,
        reason: reason(row.try_get(6)?, "reason")?,
        message: message.as_deref().map(MessageDigest::of),
        agent,
        spec_version: count(row, 9, "spec version")?,
        launched_at: row.try_get(10)?,
        started_at: row.try_get(11)?,
        completed_at: row.try_get(12)?,
        updated_at: row.try_get(13)?,
        kill_requested_at: row.try_get(14)?,
        kill_reason: reason(row.try_get(15)?, "kill reason")?,
        unreachable: row
            .try_get::<_, Option<i64>>(17)?
            .and_then(std::num::NonZeroI64::new),
        handing_over: row.try_get(18)?,
    };
    let job_id: String = row.try_get(0)?;
    let instance = small(row, 1, "instance")?;
    let record = RunRecord {
        task_id: TaskId::new(InstanceId::new(JobId(job_id.clone()), instance), run.run),
        run,
        hostname: row.try_get(5)?,
        message,
        ports,
        image: RunImage::from_stored(row.try_get(20)?, row.try_get(21)?),
    };
    Ok((job_id, instance, record))
}

impl PostgresStore {
    fn decode(&self, e: RowError) -> StoreError {
        match e {
            RowError::Pg(source) => self.err(source),
            RowError::Corrupt(e) => e,
        }
    }

    /// Runs one query and returns its rows.
    fn rows(&self, sql: impl Into<String>, params: Vec<Param>) -> Result<Vec<Row>, StoreError> {
        let sql = sql.into();
        self.call(move |s| Box::pin(async move { s.query(&sql, &borrowed(&params)).await }))
    }

    /// Runs `queries` in one flight, in one read-only snapshot, and returns
    /// each one's rows.
    fn rows_at_once(
        &self,
        queries: Vec<(String, Vec<Param>)>,
    ) -> Result<Vec<Vec<Row>>, StoreError> {
        self.call(move |s| {
            Box::pin(async move {
                let sqls: Vec<&str> = queries.iter().map(|(sql, _)| sql.as_str()).collect();
                let (client, statements) = s.prepared(&sqls).await?;
                let params: Vec<_> = queries.iter().map(|(_, p)| borrowed(p)).collect();
                let mut requests: Vec<futures_util::future::BoxFuture<'_, _>> =
                    vec![Box::pin(async move {
                        client
                            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                            .await
                            .map(|()| Vec::new())
                    })];
                for (statement, params) in statements.iter().zip(&params) {
                    requests.push(Box::pin(client.query(statement, params)));
                }
                requests.push(Box::pin(async move {
                    client.batch_execute("COMMIT").await.map(|()| Vec::new())
                }));
                let mut answers = flight(requests)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()?;
                answers.pop();
                answers.remove(0);
                Ok(answers)
            })
        })
    }

    /// The first column of a one-row query.
    fn value<T: FromSqlOwned + Send + 'static>(&self, sql: &'static str) -> Result<T, StoreError> {
        let rows = self.rows(sql, Vec::new())?;
        one(&rows).map_err(|e| self.decode(e))
    }

    /// A job row, its secrets' values opened with the writer's key, or
    /// left out by a reader without one.
    fn job_row(&self, row: &Row) -> Result<Job, StoreError> {
        let Some(sealer) = &self.sealer else {
            return secret::blind(|| job(row)).map_err(|e| self.decode(e));
        };
        match secret::opened_with(sealer, || job(row)) {
            Ok(job) => job.map_err(|e| self.decode(e)),
            Err(secret) => Err(StoreError::SecretKey {
                path: self.display_url().into(),
                job: JobId(row.try_get::<_, String>(0).map_err(|e| self.err(e))?),
                secret,
            }),
        }
    }

    fn query_jobs(&self, sql: String, params: Vec<Param>) -> Result<Vec<Job>, StoreError> {
        self.rows(sql, params)?
            .iter()
            .map(|row| self.job_row(row))
            .collect()
    }

    fn query_runs(&self, sql: String, params: Vec<Param>) -> Result<Vec<RunRecord>, StoreError> {
        let mut agents = HashMap::new();
        self.rows(sql, params)?
            .iter()
            .map(|row| {
                run_row(row, &mut agents)
                    .map(|(_, _, r)| r)
                    .map_err(|e| self.decode(e))
            })
            .collect()
    }

    /// The pod controls of every job (`None`) or of one, by job.
    fn pod_controls(
        &self,
        job: Option<&JobId>,
    ) -> Result<HashMap<String, BTreeMap<u32, PodControl>>, StoreError> {
        let rows = match job {
            Some(job) => self.rows(
                "SELECT instance, goal, restart_from, job_id FROM pods WHERE job_id = $1",
                params![job.as_str().to_owned()],
            )?,
            None => self.rows(ALL_POD_CONTROLS, Vec::new())?,
        };
        self.controls(&rows)
    }

    /// Pod controls from `pods` rows, by job.
    fn controls(
        &self,
        rows: &[Row],
    ) -> Result<HashMap<String, BTreeMap<u32, PodControl>>, StoreError> {
        let mut controls: HashMap<String, BTreeMap<u32, PodControl>> = HashMap::new();
        for row in rows {
            let (job, instance, control) = pod_control(row).map_err(|e| self.decode(e))?;
            // As SQLite's: a default control says nothing a job's pods map
            // holds.
            if control == PodControl::default() {
                continue;
            }
            controls.entry(job).or_default().insert(instance, control);
        }
        Ok(controls)
    }

    /// Everything the engine starts from: every query in one flight, in
    /// one snapshot.
    pub(super) fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
        let queries = [
            ALL_POD_CONTROLS.to_owned(),
            format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at_ms, job_id"),
            format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY job_id, instance, run"),
            IDENTITY.to_owned(),
            FRAMEWORK_ID.to_owned(),
            REVISION.to_owned(),
            POOLS.to_owned(),
            HOSTS.to_owned(),
            PIPELINE_RUNS.to_owned(),
            EXPERIMENTS.to_owned(),
        ];
        let answers = self.rows_at_once(queries.into_iter().map(|q| (q, Vec::new())).collect())?;
        let [controls, jobs_rows, runs, identity, framework_id, revision, pools, hosts, pipeline_runs, experiments]: [Vec<Row>; 10] =
            answers.try_into().map_err(|_| StoreError::CorruptValue {
                what: "start-up load",
                value: "a query's answer is missing".into(),
            })?;
        let mut controls = self.controls(&controls)?;
        let mut jobs: Vec<(Job, Vec<RunHistory>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for row in &jobs_rows {
            let mut job = self.job_row(row)?;
            job.pods = controls.remove(job.job_id.as_str()).unwrap_or_default();
            let instances = vec![RunHistory::new(); job.spec.instance_count as usize];
            index.insert(job.job_id.0.clone(), jobs.len());
            jobs.push((job, instances));
        }
        let mut hostnames = BTreeMap::new();
        let mut agents = HashMap::new();
        for row in &runs {
            let (job_id, instance, r) = run_row(row, &mut agents).map_err(|e| self.decode(e))?;
            let Some(&at) = index.get(&job_id) else {
                return Err(StoreError::CorruptValue {
                    what: "run of an unknown job",
                    value: job_id,
                });
            };
            if let (Some(agent), Some(host)) = (&r.run.agent, r.hostname) {
                hostnames.entry(agent.clone()).or_insert(host);
            }
            let instances = &mut jobs[at].1;
            let instance = instance as usize;
            if instances.len() <= instance {
                instances.resize_with(instance + 1, RunHistory::new);
            }
            instances[instance].push(r.run);
        }
        let revision: i64 = one(&revision).map_err(|e| self.decode(e))?;
        Ok(Snapshot {
            identity: self.identity_from(&identity)?,
            framework_id: one(&framework_id).map_err(|e| self.decode(e))?,
            revision: revision as Revision,
            jobs,
            hostnames,
            pools: self.pools_from(&pools)?,
            hosts: self.hosts_from(&hosts)?,
            pipeline_runs: self.pipeline_runs_from(&pipeline_runs)?,
            experiments: self.experiments_from(&experiments)?,
        })
    }

    fn identity_from(&self, rows: &[Row]) -> Result<StoreIdentity, StoreError> {
        let row = rows.first().ok_or_else(|| StoreError::CorruptValue {
            what: "store_info",
            value: "no row".into(),
        })?;
        Ok(StoreIdentity {
            store_id: row.try_get(0).map_err(|e| self.err(e))?,
            created_at: row.try_get(1).map_err(|e| self.err(e))?,
        })
    }

    /// Every stored Kubeflow experiment, oldest first.
    pub fn experiments(&self) -> Result<Vec<crate::model::pipeline_run::Experiment>, StoreError> {
        self.experiments_from(&self.rows(EXPERIMENTS, Vec::new())?)
    }

    fn experiments_from(
        &self,
        rows: &[Row],
    ) -> Result<Vec<crate::model::pipeline_run::Experiment>, StoreError> {
        rows.iter()
            .map(|row| {
                Ok(crate::model::pipeline_run::Experiment {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    description: row.try_get(2)?,
                    created_at_ms: row.try_get(3)?,
                })
            })
            .collect::<Result<_, tokio_postgres::Error>>()
            .map_err(|e| self.err(e))
    }

    /// Every stored Kubeflow pipeline run, oldest first.
    pub fn pipeline_runs(&self) -> Result<Vec<crate::model::pipeline_run::RunRecord>, StoreError> {
        self.pipeline_runs_from(&self.rows(PIPELINE_RUNS, Vec::new())?)
    }

    fn pipeline_runs_from(
        &self,
        rows: &[Row],
    ) -> Result<Vec<crate::model::pipeline_run::RunRecord>, StoreError> {
        let mut runs = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get(0).map_err(|e| self.err(e))?;
            let record: &str = row.try_get(1).map_err(|e| self.err(e))?;
            runs.push(
                serde_json::from_str(record).map_err(|_| StoreError::CorruptValue {
                    what: "pipeline run",
                    value: id,
                })?,
            );
        }
        Ok(runs)
    }

    /// Every stored resource pool, by id.
    pub fn pools(&self) -> Result<Vec<Pool>, StoreError> {
        self.pools_from(&self.rows(POOLS, Vec::new())?)
    }

    fn pools_from(&self, rows: &[Row]) -> Result<Vec<Pool>, StoreError> {
        let mut pools = Vec::with_capacity(rows.len());
        for row in rows {
            let pg = |e| self.err(e);
            let id: String = row.try_get(0).map_err(pg)?;
            let spec: &str = row.try_get(1).map_err(pg)?;
            let spec: PoolSpec =
                serde_json::from_str(spec).map_err(|_| StoreError::CorruptValue {
                    what: "resource pool spec",
                    value: id.clone(),
                })?;
            let version: i64 = row.try_get(2).map_err(pg)?;
            let created: i64 = row.try_get(3).map_err(pg)?;
            let updated: i64 = row.try_get(4).map_err(pg)?;
            pools.push(Pool {
                id: PoolId(id),
                spec,
                version: version.max(0) as u64,
                created_ms: created.max(0) as u64,
                updated_ms: updated.max(0) as u64,
            });
        }
        Ok(pools)
    }

    /// Every host in maintenance, by hostname.
    fn hosts_from(&self, rows: &[Row]) -> Result<Vec<HostMaintenance>, StoreError> {
        let mut hosts = Vec::with_capacity(rows.len());
        for row in rows {
            let pg = |e| self.err(e);
            let state: String = row.try_get(1).map_err(pg)?;
            let cause: String = row.try_get(2).map_err(pg)?;
            let grace: i64 = row.try_get(4).map_err(pg)?;
            hosts.push(HostMaintenance {
                hostname: row.try_get(0).map_err(pg)?,
                state: HostState::from_name(&state).ok_or(StoreError::CorruptValue {
                    what: "host state",
                    value: state.clone(),
                })?,
                cause: DrainCause::from_name(&cause).ok_or(StoreError::CorruptValue {
                    what: "host drain cause",
                    value: cause.clone(),
                })?,
                since: row.try_get(3).map_err(pg)?,
                batch_grace: std::time::Duration::from_millis(grace.max(0) as u64),
                inverse_offer: row.try_get(5).map_err(pg)?,
            });
        }
        Ok(hosts)
    }

    /// The number of rows of each table, for `migrate-store`'s check.
    pub fn table_counts(&self) -> Result<BTreeMap<&'static str, i64>, StoreError> {
        let queries = COPIED_TABLES
            .iter()
            .map(|table| (format!("SELECT COUNT(*) FROM {table}"), Vec::new()))
            .collect();
        let answers = self.rows_at_once(queries)?;
        let mut counts = BTreeMap::new();
        for (table, rows) in COPIED_TABLES.iter().zip(&answers) {
            counts.insert(*table, one(rows).map_err(|e| self.decode(e))?);
        }
        Ok(counts)
    }
}

/// The tables that hold the store's state (not its counters).
pub const COPIED_TABLES: &[&str] = &[
    "jobs",
    "runs",
    "pods",
    "pod_events",
    "workflow_events",
    "pools",
    "host_maintenance",
    "pipeline_runs",
    "kfp_experiments",
];

impl StoreRead for PostgresStore {
    fn revision(&self) -> Result<Revision, StoreError> {
        let v: i64 = self.value(REVISION)?;
        Ok(v as Revision)
    }

    fn framework_id(&self) -> Result<Option<String>, StoreError> {
        self.value(FRAMEWORK_ID)
    }

    fn identity(&self) -> Result<StoreIdentity, StoreError> {
        self.identity_from(&self.rows(IDENTITY, Vec::new())?)
    }

    fn job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        let rows = self.rows(
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = $1"),
            params![id.as_str().to_owned()],
        )?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let mut job = self.job_row(row)?;
        job.pods = self
            .pod_controls(Some(id))?
            .remove(id.as_str())
            .unwrap_or_default();
        Ok(Some(job))
    }

    fn jobs(&self, offset: u32, limit: u32) -> Result<(Vec<Job>, u32), StoreError> {
        let total: i64 = self.value("SELECT COUNT(*) FROM jobs")?;
        let mut jobs = self.query_jobs(
            format!(
                "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at_ms, job_id LIMIT $1 OFFSET $2"
            ),
            params![i64::from(limit), i64::from(offset)],
        )?;
        for job in &mut jobs {
            job.pods = self
                .pod_controls(Some(&job.job_id))?
                .remove(job.job_id.as_str())
                .unwrap_or_default();
        }
        Ok((jobs, total as u32))
    }

    fn runs(&self, job: &JobId) -> Result<Vec<RunRecord>, StoreError> {
        self.query_runs(
            format!("SELECT {RUN_COLUMNS} FROM runs WHERE job_id = $1 ORDER BY instance, run"),
            params![job.as_str().to_owned()],
        )
    }

    fn instance_runs(&self, instance: &InstanceId) -> Result<Vec<RunRecord>, StoreError> {
        self.query_runs(
            format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE job_id = $1 AND instance = $2 ORDER BY run"
            ),
            params![
                instance.job.as_str().to_owned(),
                i64::from(instance.instance)
            ],
        )
    }

    fn pod_events(&self, instance: &InstanceId) -> Result<Vec<PodEventRecord>, StoreError> {
        // Stored events, and each run's launch intent read from its row,
        // in run order, each run's intent first (as SQLite's).
        let rows = self.rows(
            format!(
                "SELECT run, state, mesos_state, reason, message, healthy, agent_id, hostname, \
                 timestamp_ms, revision, seq AS ord, ready FROM pod_events \
                 WHERE job_id = $1 AND instance = $2 \
                 UNION ALL \
                 SELECT run, '{launching}', NULL, NULL, 'launch intent recorded', NULL, \
                 agent_id, hostname, launched_at_ms, launch_revision, -1, NULL FROM runs \
                 WHERE job_id = $1 AND instance = $2 AND launch_revision IS NOT NULL \
                 ORDER BY run, ord",
                launching = PodState::Launching.as_str()
            ),
            params![
                instance.job.as_str().to_owned(),
                i64::from(instance.instance)
            ],
        )?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let decoded = (|| {
                Ok::<_, RowError>(PodEventRecord {
                    task_id: TaskId::new(instance.clone(), small(row, 0, "run number")?),
                    state: pod_state(row.try_get(1)?)?,
                    mesos_state: row.try_get(2)?,
                    reason: row.try_get(3)?,
                    message: row.try_get(4)?,
                    healthy: row.try_get(5)?,
                    ready: row.try_get(11)?,
                    agent_id: row.try_get(6)?,
                    hostname: row.try_get(7)?,
                    timestamp: row.try_get(8)?,
                    revision: count(row, 9, "revision")?,
                })
            })();
            events.push(decoded.map_err(|e| self.decode(e))?);
        }
        Ok(events)
    }

    fn live_runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.query_runs(
            format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE {LIVE_RUNS_PREDICATE} \
                 ORDER BY job_id, instance, run"
            ),
            Vec::new(),
        )
    }

    fn pending_reasons(&self, job: &JobId) -> Result<BTreeMap<u32, PendingInfo>, StoreError> {
        let rows = self.rows(
            "SELECT instance, pending_reason, pending_metrics FROM pods \
             WHERE job_id = $1 AND pending_reason IS NOT NULL",
            params![job.as_str().to_owned()],
        )?;
        let mut reasons = BTreeMap::new();
        for row in &rows {
            let instance = small(row, 0, "instance").map_err(|e| self.decode(e))?;
            let pg = |e| self.err(e);
            reasons.insert(
                instance,
                PendingInfo {
                    reason: row.try_get(1).map_err(pg)?,
                    metrics: row
                        .try_get::<_, Option<String>>(2)
                        .map_err(pg)?
                        .unwrap_or_default(),
                },
            );
        }
        Ok(reasons)
    }

    fn workflow_events(
        &self,
        job: &JobId,
        workflow: u32,
        instance: Option<u32>,
    ) -> Result<Vec<WorkflowEvent>, StoreError> {
        let rows = self.rows(
            "SELECT instance, state, at_ms FROM workflow_events \
             WHERE job_id = $1 AND workflow = $2 AND instance IS NOT DISTINCT FROM $3 \
             ORDER BY seq",
            params![
                job.as_str().to_owned(),
                i64::from(workflow),
                instance.map(i64::from)
            ],
        )?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            let pg = |e| self.err(e);
            let state: String = row.try_get(1).map_err(pg)?;
            let state = WorkflowState::from_peloton_name(&state).ok_or_else(|| {
                StoreError::CorruptValue {
                    what: "workflow state",
                    value: state.clone(),
                }
            })?;
            events.push(WorkflowEvent {
                instance: row
                    .try_get::<_, Option<i64>>(0)
                    .map_err(pg)?
                    .map(|i| i as u32),
                state,
                at: row.try_get(2).map_err(pg)?,
            });
        }
        Ok(events)
    }
}
