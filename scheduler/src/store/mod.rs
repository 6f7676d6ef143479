//! Durable state behind one trait, phrased in the model: jobs, the launch
//! intent of each run, every status update. SQLite ([`sqlite`]) is the
//! embedded default; a distributed backend can implement the same traits.
//!
//! Rules every implementation keeps:
//! - Intent before action: a run exists in the store (state LAUNCHING) before
//!   the ACCEPT that launches it is sent, so a crash never forgets a task
//!   that may be running.
//! - An instance never has two live runs: [`Store::record_launch_intents`]
//!   refuses a run unless every earlier run of the instance is terminal.
//! - Every committed change bumps one store-wide, increasing revision.
//! - A write returns only once it is durable, so an update can be
//!   acknowledged to Mesos right after [`Store::record_statuses`] returns.
//!
//! One writer (the jobs runner) holds a [`Store`]; readers (the API) hold
//! their own [`StoreRead`] handles.

pub mod checkpoint;
pub mod migrations;
pub mod sqlite;

use crate::model::ids::{InstanceId, JobId, TaskId};
use crate::model::spec::JobSpec;
use crate::model::state::{JobGoal, PodGoal, PodState};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use sqlite::SqliteStore;

/// A store-wide change counter.
pub type Revision = u64;

pub use crate::model::time::UnixMillis;

/// Why the store could not answer or commit.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed; retrying may help if the disk was busy or full.
    #[error("sqlite error on {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        #[source]
        source: rusqlite::Error,
    },
    /// The data directory could not be created.
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The database was written by a newer Drover (unknown schema version).
    #[error("{path} has schema version {found}, newer than this binary's {known}")]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// A stored job spec no longer parses (corruption or a bad migration).
    #[error("stored spec of job {job} is unreadable: {source}")]
    CorruptSpec {
        /// The job.
        job: JobId,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// A stored row holds a value this binary does not know.
    #[error("stored {what} '{value}' is unknown")]
    CorruptValue {
        /// Which column.
        what: &'static str,
        /// The value.
        value: String,
    },
    /// The job does not exist.
    #[error("job {0} not found")]
    JobNotFound(JobId),
    /// The job has no such instance.
    #[error("pod {} not found", .0.pod_name())]
    PodNotFound(InstanceId),
    /// A job with this id exists already.
    #[error("job {0} already exists")]
    JobExists(JobId),
    /// The caller's entity version is not the job's current one.
    #[error("job {job} is at version {current}, not {expected}")]
    VersionMismatch {
        /// The job.
        job: JobId,
        /// Its current version.
        current: u64,
        /// The version the caller sent.
        expected: u64,
    },
}

impl StoreError {
    /// Wraps a SQLite error with the database file it came from; the
    /// closure is `Copy` so one can serve every `map_err` of a method.
    pub(crate) fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + Copy + '_ {
        move |source| StoreError::Sqlite {
            path: path.to_owned(),
            source,
        }
    }
}

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Its id.
    pub job_id: JobId,
    /// Its spec.
    pub spec: JobSpec,
    /// The entity version: bumped by every change the user makes.
    pub version: u64,
    /// What the user wants.
    pub goal: JobGoal,
    /// When it was created.
    pub created_at: UnixMillis,
    /// When the user last changed it.
    pub updated_at: UnixMillis,
    /// The revision of that change.
    pub revision: Revision,
    /// Instances the latest job restart may take down at once (0 = all).
    pub restart_batch_size: u32,
    /// Per-pod goals and restarts; pods absent here run with the defaults.
    pub pods: BTreeMap<u32, PodControl>,
}

/// What the user asked of one pod, beyond the job's goal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PodControl {
    /// RUNNING, or KILLED after a pod stop.
    pub goal: PodGoal,
    /// Runs numbered below this are to be replaced (a restart): a live one
    /// is killed, then a new run launched.
    pub restart_from: u32,
}

/// Why a pod has no host yet, as the last placement round saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInfo {
    /// One line for humans: "no agent satisfies zone==c (3 agents)".
    pub reason: String,
    /// Hosts rejected per filter and reason, as JSON (Nomad's AllocMetric).
    pub metrics: String,
}

/// One run (Mesos task) of an instance.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// `<job>-<instance>-<run>`.
    pub task_id: TaskId,
    /// Latest state.
    pub state: PodState,
    /// The agent it was launched on.
    pub agent_id: Option<String>,
    /// That agent's hostname.
    pub hostname: Option<String>,
    /// Latest Mesos reason (`REASON_...`).
    pub reason: Option<String>,
    /// Latest message.
    pub message: Option<String>,
    /// Latest health.
    pub healthy: Option<bool>,
    /// Job version the run was launched with.
    pub spec_version: u64,
    /// When the launch intent was recorded.
    pub launched_at: UnixMillis,
    /// When it first ran.
    pub started_at: Option<UnixMillis>,
    /// When it became terminal.
    pub completed_at: Option<UnixMillis>,
    /// When the last update (or the intent) was recorded.
    pub updated_at: UnixMillis,
    /// When a kill was last sent for it.
    pub kill_requested_at: Option<UnixMillis>,
    /// Why the scheduler killed it, when not for the job's or pod's goal
    /// (e.g. the runtime limit).
    pub kill_reason: Option<String>,
    /// Ports it was given: (name, port).
    pub ports: Vec<(String, u32)>,
}

/// One entry of a pod's event history.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEventRecord {
    /// The run the event is about.
    pub task_id: TaskId,
    /// The pod state after it.
    pub state: PodState,
    /// The Mesos task state that caused it (`TASK_RUNNING`), if any.
    pub mesos_state: Option<String>,
    /// Mesos reason.
    pub reason: Option<String>,
    /// Message.
    pub message: Option<String>,
    /// Health.
    pub healthy: Option<bool>,
    /// Agent.
    pub agent_id: Option<String>,
    /// Host.
    pub hostname: Option<String>,
    /// When it happened.
    pub timestamp: UnixMillis,
    /// The revision that recorded it.
    pub revision: Revision,
}

/// "This run is about to be launched on this agent."
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchIntent {
    /// The new run.
    pub task_id: TaskId,
    /// Where.
    pub agent_id: String,
    /// The agent's hostname.
    pub hostname: String,
    /// The job version it runs.
    pub spec_version: u64,
    /// The ports placement gave it: (name, port).
    pub ports: Vec<(String, u32)>,
}

/// A status update (from Mesos, or made up by the scheduler when it gives
/// a run up), in the model's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusRecord {
    /// The run.
    pub task_id: TaskId,
    /// The new pod state.
    pub state: PodState,
    /// The Mesos state name, if it came from Mesos.
    pub mesos_state: Option<String>,
    /// Mesos reason.
    pub reason: Option<String>,
    /// Message.
    pub message: Option<String>,
    /// Health.
    pub healthy: Option<bool>,
    /// Agent named by the update.
    pub agent_id: Option<String>,
    /// When it happened.
    pub timestamp: UnixMillis,
}

/// What recording one status did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusOutcome {
    /// The run's state changed (or was confirmed); the job needs a look.
    Applied(JobId),
    /// The run is already terminal in the store, or is not its instance's
    /// latest run; the event was kept but the state not changed. `live`:
    /// the update says the task is alive, so it must be killed.
    Stale {
        /// The job.
        job: JobId,
        /// The task is alive on an agent and should not be.
        live: bool,
    },
    /// The run already holds exactly this update (a resent update or a
    /// reconciliation answer): nothing was written. `live`: the update says
    /// a run that is not its instance's latest is alive, so it must be
    /// killed.
    Unchanged {
        /// The job.
        job: JobId,
        /// The task is alive on an agent and should not be.
        live: bool,
    },
    /// No such run: not a task of any stored job.
    Unknown,
}

/// Read access, for the API and for the runner's own planning.
pub trait StoreRead: Send {
    /// The latest committed revision.
    fn revision(&self) -> Result<Revision, StoreError>;
    /// The framework id to re-subscribe with.
    fn framework_id(&self) -> Result<Option<String>, StoreError>;
    /// One job.
    fn job(&self, id: &JobId) -> Result<Option<JobRecord>, StoreError>;
    /// A page of jobs in creation order, and how many there are.
    fn jobs(&self, offset: u32, limit: u32) -> Result<(Vec<JobRecord>, u32), StoreError>;
    /// Every run of a job, by instance then run.
    fn runs(&self, job: &JobId) -> Result<Vec<RunRecord>, StoreError>;
    /// Every run of one instance, oldest first.
    fn instance_runs(&self, instance: &InstanceId) -> Result<Vec<RunRecord>, StoreError>;
    /// An instance's event history, oldest first.
    fn pod_events(&self, instance: &InstanceId) -> Result<Vec<PodEventRecord>, StoreError>;
    /// Every run that may be live, for reconciliation.
    fn live_runs(&self) -> Result<Vec<RunRecord>, StoreError>;
    /// Calls `visit(job, instance, agent)` for every live run with an
    /// agent, borrowing from the row. Placement reads this every round: at
    /// 80,000 live runs, whole records (and then pod views for every one of
    /// them) were a quarter of a round (perf).
    fn visit_live_agents(&self, visit: &mut dyn FnMut(&str, u32, &str)) -> Result<(), StoreError>;
    /// Why each of a job's pending pods has no host, by instance.
    fn pending_reasons(&self, job: &JobId) -> Result<BTreeMap<u32, PendingInfo>, StoreError>;
}

/// Write access: one holder, the jobs runner.
pub trait Store: StoreRead {
    /// Remembers (or forgets, with None) the framework id.
    fn set_framework_id(&mut self, id: Option<&str>) -> Result<Revision, StoreError>;
    /// Stores a new job at version 1 with goal RUNNING.
    fn create_job(
        &mut self,
        id: &JobId,
        spec: &JobSpec,
        now: UnixMillis,
    ) -> Result<JobRecord, StoreError>;
    /// Changes a job's goal, bumping its version; `expected_version` (if
    /// given) must be the current one.
    fn set_job_goal(
        &mut self,
        id: &JobId,
        goal: JobGoal,
        expected_version: Option<u64>,
        now: UnixMillis,
    ) -> Result<JobRecord, StoreError>;
    /// Forgets a job, its runs and their events.
    fn delete_job(&mut self, id: &JobId) -> Result<Revision, StoreError>;
    /// Records launch intents in one transaction. Returns, per intent,
    /// whether it was recorded: an intent is refused when its job is not
    /// RUNNING, or an earlier run of its instance is live or has a number not
    /// below it.
    fn record_launch_intents(
        &mut self,
        intents: &[LaunchIntent],
        now: UnixMillis,
    ) -> Result<Vec<bool>, StoreError>;
    /// Appends status updates to their pods' histories and applies them, in
    /// one transaction, durable on return.
    fn record_statuses(
        &mut self,
        updates: &[StatusRecord],
    ) -> Result<Vec<StatusOutcome>, StoreError>;
    /// Notes that kills were sent, so they are not repeated at once, with
    /// the reason when it is not the goal's.
    fn record_kills(
        &mut self,
        kills: &[(TaskId, Option<String>)],
        now: UnixMillis,
    ) -> Result<(), StoreError>;
    /// Sets one pod's goal (pod stop and start).
    fn set_pod_goal(
        &mut self,
        pod: &InstanceId,
        goal: PodGoal,
        now: UnixMillis,
    ) -> Result<JobRecord, StoreError>;
    /// Asks for `instances` of a job to be restarted: each gets a new run,
    /// at most `batch_size` down at once (0 = all). With `bump`, the job's
    /// version is bumped (job restart); `expected_version` as for goals.
    fn restart_pods(
        &mut self,
        job: &JobId,
        instances: &[u32],
        batch_size: u32,
        expected_version: Option<u64>,
        bump: bool,
        now: UnixMillis,
    ) -> Result<JobRecord, StoreError>;
    /// Records (Some) or clears (None) why pods are pending.
    fn record_pending_reasons(
        &mut self,
        reasons: &[(InstanceId, Option<PendingInfo>)],
        now: UnixMillis,
    ) -> Result<(), StoreError>;
}
