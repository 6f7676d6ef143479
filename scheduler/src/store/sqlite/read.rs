//! Reading back what was written: the API's queries ([`StoreRead`]) and
//! the engine's start-up load ([`Store::load`]).

use super::migrations;
use super::rows::{self, RowError, RunRow, JOB_COLUMNS, RUN_COLUMNS};
use super::SqliteStore;
use crate::model::change::PendingInfo;
use crate::model::host::{DrainCause, HostMaintenance, HostState};
use crate::model::ids::{InstanceId, JobId, TaskId};
use crate::model::job::{Job, PodControl, Revision};
use crate::model::pool::{Pool, PoolId, PoolSpec};
use crate::model::run::RunHistory;
use crate::model::secret;
use crate::model::state::PodState;
use crate::model::workflow::{WorkflowEvent, WorkflowState};
use crate::store::{PodEventRecord, RunRecord, Snapshot, StoreError, StoreIdentity, StoreRead};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::{BTreeMap, HashMap};

impl SqliteStore {
    fn decode(&self, e: RowError) -> StoreError {
        e.into_store(&self.path)
    }

    /// The `pods` controls of every job (`None`) or of one.
    fn pod_controls(
        &self,
        job: Option<&JobId>,
    ) -> Result<HashMap<String, BTreeMap<u32, PodControl>>, StoreError> {
        // Two statements rather than `?1 IS NULL OR job_id = ?1`, which
        // SQLite cannot answer from the key.
        let sql = match job {
            Some(_) => "SELECT instance, goal, restart_from, job_id FROM pods WHERE job_id = ?1",
            None => "SELECT instance, goal, restart_from, job_id FROM pods",
        };
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let mut rows = match job {
            Some(job) => stmt.query([job.as_str()]),
            None => stmt.query([]),
        }
        .map_err(|e| self.err(e))?;
        let mut controls: HashMap<String, BTreeMap<u32, PodControl>> = HashMap::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let (instance, control) = rows::pod_control(row).map_err(|e| self.decode(e))?;
            // A row with the default control says nothing a job's pods map
            // holds: it was written for the pod's pending reason, or the
            // pod was started again.
            if control == PodControl::default() {
                continue;
            }
            let job = rows::text(row, 3, "job id").map_err(|e| self.decode(e))?;
            controls
                .entry(job.to_owned())
                .or_default()
                .insert(instance, control);
        }
        Ok(controls)
    }

    fn query_jobs(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Job>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params).map_err(|e| self.err(e))?;
        let mut jobs = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            jobs.push(self.job_row(row)?);
        }
        Ok(jobs)
    }

    /// A job row, its secrets' values opened with the writer's key, or
    /// left out by a reader without one.
    fn job_row(&self, row: &rusqlite::Row<'_>) -> Result<Job, StoreError> {
        let Some(sealer) = &self.sealer else {
            return secret::blind(|| rows::job(row)).map_err(|e| self.decode(e));
        };
        match secret::opened_with(sealer, || rows::job(row)) {
            Ok(job) => job.map_err(|e| self.decode(e)),
            Err(secret) => Err(StoreError::SecretKey {
                path: self.path.clone(),
                job: JobId(row.get::<_, String>(0).map_err(|e| self.err(e))?),
                secret,
            }),
        }
    }

    fn query_runs(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<RunRecord>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query(params).map_err(|e| self.err(e))?;
        let mut agents = HashMap::new();
        let mut runs = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let r = RunRow::read(row, &mut agents).map_err(|e| self.decode(e))?;
            runs.push(RunRecord {
                task_id: TaskId::new(InstanceId::new(JobId(r.job_id), r.instance), r.run.run),
                run: r.run,
                hostname: r.hostname,
                message: r.message,
                ports: r.ports,
                image: r.image,
            });
        }
        Ok(runs)
    }

    /// Everything the engine starts from (see [`Store::load`]): one pass
    /// over the jobs, one over the pods and one over the runs in key order.
    pub(super) fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut controls = self.pod_controls(None)?;
        let mut jobs: Vec<(Job, Vec<RunHistory>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for mut job in self.query_jobs(
            &format!("SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at_ms, job_id"),
            [],
        )? {
            job.pods = controls.remove(job.job_id.as_str()).unwrap_or_default();
            let instances = vec![RunHistory::new(); job.spec.instance_count as usize];
            index.insert(job.job_id.0.clone(), jobs.len());
            jobs.push((job, instances));
        }
        let mut hostnames = BTreeMap::new();
        let mut agents = HashMap::new();
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY job_id, instance, run");
        let mut stmt = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let r = RunRow::read(row, &mut agents).map_err(|e| self.decode(e))?;
            // Runs of a job that is gone cannot be: a delete removes them
            // in the same transaction.
            let Some(&at) = index.get(&r.job_id) else {
                return Err(StoreError::CorruptValue {
                    what: "run of an unknown job",
                    value: r.job_id,
                });
            };
            if let (Some(agent), Some(host)) = (&r.run.agent, r.hostname) {
                hostnames.entry(agent.clone()).or_insert(host);
            }
            let instances = &mut jobs[at].1;
            let instance = r.instance as usize;
            if instances.len() <= instance {
                instances.resize_with(instance + 1, RunHistory::new);
            }
            instances[instance].push(r.run);
        }
        Ok(Snapshot {
            identity: self.identity()?,
            framework_id: self.framework_id()?,
            revision: self.revision()?,
            jobs,
            hostnames,
            pools: self.pools()?,
            hosts: self.host_maintenance()?,
            pipeline_runs: self.pipeline_runs()?,
            experiments: self.experiments()?,
        })
    }

    /// Every stored Kubeflow experiment, oldest first.
    pub fn experiments(&self) -> Result<Vec<crate::model::pipeline_run::Experiment>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT experiment_id, name, description, created_at_ms FROM kfp_experiments \
                 ORDER BY created_at_ms, experiment_id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(crate::model::pipeline_run::Experiment {
                    id: row.get(0)?,
                    name: row.get(1)?,
                    description: row.get(2)?,
                    created_at_ms: row.get(3)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Every stored Kubeflow pipeline run, oldest first.
    pub fn pipeline_runs(&self) -> Result<Vec<crate::model::pipeline_run::RunRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT run_id, record FROM pipeline_runs ORDER BY created_at_ms, run_id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut runs = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let id: String = row.get(0).map_err(|e| self.err(e))?;
            let record: String = row.get(1).map_err(|e| self.err(e))?;
            runs.push(
                serde_json::from_str(&record).map_err(|_| StoreError::CorruptValue {
                    what: "pipeline run",
                    value: id,
                })?,
            );
        }
        Ok(runs)
    }

    /// Every stored resource pool, by id.
    pub fn pools(&self) -> Result<Vec<Pool>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT pool_id, spec, version, created_at_ms, updated_at_ms FROM pools \
                 ORDER BY pool_id",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt.query([]).map_err(|e| self.err(e))?;
        let mut pools = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let id: String = row.get(0).map_err(|e| self.err(e))?;
            let spec: String = row.get(1).map_err(|e| self.err(e))?;
            let spec: PoolSpec =
                serde_json::from_str(&spec).map_err(|_| StoreError::CorruptValue {
                    what: "resource pool spec",
                    value: id.clone(),
                })?;
            let version: i64 = row.get(2).map_err(|e| self.err(e))?;
            let created: i64 = row.get(3).map_err(|e| self.err(e))?;
            let updated: i64 = row.get(4).map_err(|e| self.err(e))?;
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
    fn host_maintenance(&self) -> Result<Vec<HostMaintenance>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT hostname, state, cause, since_ms, batch_grace_ms, inverse_offer \
                 FROM host_maintenance ORDER BY hostname",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, i64>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, Option<String>>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut hosts = Vec::new();
        for row in rows {
            let (hostname, state, cause, since, grace, inverse_offer) =
                row.map_err(|e| self.err(e))?;
            let state = HostState::from_name(&state).ok_or(StoreError::CorruptValue {
                what: "host state",
                value: state,
            })?;
            let cause = DrainCause::from_name(&cause).ok_or(StoreError::CorruptValue {
                what: "host drain cause",
                value: cause,
            })?;
            hosts.push(HostMaintenance {
                hostname,
                state,
                cause,
                since,
                batch_grace: std::time::Duration::from_millis(grace.max(0) as u64),
                inverse_offer,
            });
        }
        Ok(hosts)
    }
}

/// One job with its pod controls, read through `conn`.
fn load_job(store: &SqliteStore, conn: &Connection, id: &JobId) -> Result<Option<Job>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?1"))
        .map_err(|e| store.err(e))?;
    let job = stmt
        .query_row([id.as_str()], |row| Ok(store.job_row(row)))
        .optional()
        .map_err(|e| store.err(e))?;
    let Some(mut job) = job.transpose()? else {
        return Ok(None);
    };
    job.pods = store
        .pod_controls(Some(id))?
        .remove(id.as_str())
        .unwrap_or_default();
    Ok(Some(job))
}

/// The store's latest committed revision.
pub(super) fn read_revision(conn: &Connection) -> rusqlite::Result<Revision> {
    conn.query_row("SELECT value FROM revision WHERE id = 1", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|v| v as Revision)
}

/// The framework id the store subscribed as.
pub(super) fn read_framework_id(conn: &Connection) -> rusqlite::Result<Option<String>> {
    conn.query_row("SELECT framework_id FROM framework WHERE id = 1", [], |r| {
        r.get(0)
    })
}

/// Which store it is.
pub(super) fn read_identity(conn: &Connection) -> rusqlite::Result<StoreIdentity> {
    conn.query_row(
        "SELECT store_id, created_at_ms FROM store_info WHERE id = 1",
        [],
        |r| {
            Ok(StoreIdentity {
                store_id: r.get(0)?,
                created_at: r.get(1)?,
            })
        },
    )
}

impl StoreRead for SqliteStore {
    fn revision(&self) -> Result<Revision, StoreError> {
        read_revision(&self.conn).map_err(|e| self.err(e))
    }

    fn framework_id(&self) -> Result<Option<String>, StoreError> {
        read_framework_id(&self.conn).map_err(|e| self.err(e))
    }

    fn identity(&self) -> Result<StoreIdentity, StoreError> {
        read_identity(&self.conn).map_err(|e| self.err(e))
    }

    fn job(&self, id: &JobId) -> Result<Option<Job>, StoreError> {
        load_job(self, &self.conn, id)
    }

    fn jobs(&self, offset: u32, limit: u32) -> Result<(Vec<Job>, u32), StoreError> {
        let total: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let mut jobs = self.query_jobs(
            &format!(
                "SELECT {JOB_COLUMNS} FROM jobs ORDER BY created_at_ms, job_id LIMIT ?1 OFFSET ?2"
            ),
            params![limit, offset],
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
                     timestamp_ms, revision, seq AS ord, ready FROM pod_events \
                     WHERE job_id = ?1 AND instance = ?2 \
                     UNION ALL \
                     SELECT run, '{launching}', NULL, NULL, 'launch intent recorded', NULL, \
                     agent_id, hostname, launched_at_ms, launch_revision, -1, NULL FROM runs \
                     WHERE job_id = ?1 AND instance = ?2 AND launch_revision IS NOT NULL \
                     ORDER BY run, ord",
                    launching = PodState::Launching.as_str()
                ),
            )
            .map_err(|e| self.err(e))?;
        let mut rows = stmt
            .query(params![instance.job.as_str(), instance.instance])
            .map_err(|e| self.err(e))?;
        let mut events = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.err(e))? {
            let decoded = (|| {
                let run: i64 = row.get(0)?;
                let run = u32::try_from(run).map_err(|_| {
                    RowError::Corrupt(StoreError::CorruptValue {
                        what: "run number",
                        value: run.to_string(),
                    })
                })?;
                Ok::<_, RowError>(PodEventRecord {
                    task_id: TaskId::new(instance.clone(), run),
                    state: rows::pod_state(rows::text(row, 1, "pod state")?)?,
                    mesos_state: row.get(2)?,
                    reason: row.get(3)?,
                    message: row.get(4)?,
                    healthy: row.get(5)?,
                    ready: row.get(11)?,
                    agent_id: row.get(6)?,
                    hostname: row.get(7)?,
                    timestamp: row.get(8)?,
                    revision: row.get::<_, i64>(9)? as u64,
                })
            })();
            events.push(decoded.map_err(|e| self.decode(e))?);
        }
        Ok(events)
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

    fn workflow_events(
        &self,
        job: &JobId,
        workflow: u32,
        instance: Option<u32>,
    ) -> Result<Vec<WorkflowEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT instance, state, at_ms FROM workflow_events \
                 WHERE job_id = ?1 AND workflow = ?2 AND instance IS ?3 ORDER BY seq",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![job.as_str(), workflow, instance], |r| {
                Ok((
                    r.get::<_, Option<i64>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut events = Vec::new();
        for row in rows {
            let (instance, state, at) = row.map_err(|e| self.err(e))?;
            let state = WorkflowState::from_peloton_name(&state).ok_or_else(|| {
                StoreError::CorruptValue {
                    what: "workflow state",
                    value: state,
                }
            })?;
            events.push(WorkflowEvent {
                instance: instance.map(|i| i as u32),
                state,
                at,
            });
        }
        Ok(events)
    }
}
