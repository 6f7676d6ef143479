//! Persistence behind two traits. The store decides nothing: the engine
//! hands it a [`Change`] (what the model decided) and it writes it in one
//! transaction; at start it loads everything the engine needs
//! ([`Snapshot`]); readers (the API) query what was written. SQLite
//! ([`sqlite`]) is the embedded default; a replicated backend needs only
//! these traits.
//!
//! What every implementation promises:
//! - A commit is one transaction, durable when [`Store::commit`] returns,
//!   which is what lets the engine send an ACCEPT after recording its
//!   launch intent, and acknowledge an update after recording it.
//! - Every committed change but a pending-reasons-only one bumps one
//!   store-wide, increasing revision.
//! - What cannot be read back as it was written is a typed corruption
//!   error ([`StoreError::CorruptValue`], [`StoreError::CorruptSpec`]),
//!   never a guess; a store damaged or incomplete as a file is refused
//!   when it is opened ([`StoreError::Corrupt`],
//!   [`StoreError::MissingTables`], [`StoreError::SchemaTooNew`]).
//! - Secret values are written sealed with the writer's key and opened
//!   only by the writer's load ([`secret_key`], [`crate::model::secret`]);
//!   readers see secrets' ids and paths, never their values.
//! - A store knows which it is ([`StoreIdentity`]: an id and creation time
//!   made once, kept by its backups) and the framework id it subscribed as.
//!
//! - Fencing: a replica that becomes leader claims the store
//!   ([`Store::claim_leadership`]), which bumps a store-wide leader
//!   [`Epoch`] in one transaction. From then on every commit of that
//!   handle checks, inside its own transaction, that the stored epoch is
//!   still its own, and fails with [`StoreError::Fenced`] once a newer
//!   leader has claimed: two leaders never both write, whatever ZooKeeper
//!   told them. A handle that never claimed (a lone scheduler) is not
//!   checked.
//!
//! One writer (the engine's runner) holds a [`Store`]; readers hold their
//! own [`StoreRead`] handles.

pub mod secret_key;
pub mod sqlite;
pub mod url;

use crate::model::change::{Change, PendingInfo};
use crate::model::ids::{AgentId, InstanceId, JobId, TaskId};
use crate::model::job::Job;
use crate::model::run::{Run, RunHistory};
use crate::model::state::PodState;
use crate::model::time::UnixMillis;
use crate::model::workflow::WorkflowEvent;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::model::job::Revision;
pub use sqlite::SqliteStore;
pub use url::StoreUrl;

/// The store's leader epoch: bumped by each [`Store::claim_leadership`];
/// a handle's commits succeed only while the stored epoch is the one it
/// claimed.
pub type Epoch = u64;

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
    /// The data directory's lock file could not be opened, locked or
    /// written (a read-only or unwritable directory, for one).
    #[error("cannot take the data directory's lock {path}: {source}")]
    LockFile {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Another process holds the data directory: one scheduler per
    /// directory (see `sqlite::dir_lock`).
    #[error(
        "{path} is held by another drover-scheduler{}: one scheduler per data directory",
        holder.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
    )]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The holder's pid, as it wrote it.
        holder: Option<u32>,
    },
    /// The database was written by a newer Drover (unknown schema version).
    /// Not retryable with this binary.
    #[error(
        "{path} has schema version {found}, newer than this binary's {known}: run the \
         drover-scheduler that wrote it, or {RESTORE_HINT}"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        found: i64,
        /// The newest version this binary knows.
        known: i64,
    },
    /// The database is damaged: `PRAGMA quick_check` found problems, or
    /// SQLite met a page that cannot be what it should (`SQLITE_CORRUPT`,
    /// `SQLITE_NOTADB`). Not retryable: the store must be restored.
    #[error("{path} is corrupt ({}); refusing to use it: {RESTORE_HINT}", problems.join("; "))]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite found, a few lines at most.
        problems: Vec<String>,
    },
    /// The database lacks tables its schema version must have (dropped by
    /// hand, or a file that is not Drover's). Not retryable.
    #[error(
        "{path} is at schema version {version} but has no table {}; refusing to use it: \
         {RESTORE_HINT}",
        missing.join(", ")
    )]
    MissingTables {
        /// The database file.
        path: PathBuf,
        /// Its `user_version`.
        version: i64,
        /// The tables it lacks.
        missing: Vec<String>,
    },
    /// A backup's target already exists: a backup never overwrites.
    #[error("backup target {path} already exists; name a new file")]
    BackupTargetExists {
        /// The target.
        path: PathBuf,
    },
    /// The backup could not be written where it was asked to go.
    #[error("cannot write the backup {path}: {source}")]
    BackupTarget {
        /// The target (or its partial file).
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// There is no store to back up in the data directory.
    #[error("no store at {path} to back up")]
    NoStore {
        /// The database file looked for.
        path: PathBuf,
    },
    /// A stored secret does not open with the secret key given: the
    /// scheduler was started with another key than the one that sealed it.
    /// Not retryable; nothing is dropped.
    #[error(
        "secret '{secret}' of job {job} in {path} cannot be decrypted with the secret key given: \
         start the scheduler with the key file that sealed it (--secret-key-file, default \
         secret.key in the data directory); without it the job's secrets are lost, and the \
         job must be deleted with a scheduler holding the right key or re-created"
    )]
    SecretKey {
        /// The database file.
        path: PathBuf,
        /// The job.
        job: JobId,
        /// The secret's id.
        secret: String,
    },
    /// A newer leader claimed the store after this handle did: this
    /// replica is deposed and must stop (the scheduler exits non-zero).
    /// Nothing of the refused commit was written.
    #[error(
        "fenced: this scheduler claimed the store at leader epoch {mine}, but another replica \
         has claimed it since (epoch {current}); stopping so that two leaders never write"
    )]
    Fenced {
        /// The epoch this handle claimed.
        mine: Epoch,
        /// The epoch stored now.
        current: Epoch,
    },
    /// PostgreSQL failed (connection lost, statement refused); the URL is
    /// shown without its password.
    #[error("postgres error on {url}: {source}")]
    Postgres {
        /// The server, password removed.
        url: String,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The PostgreSQL schema was written by a newer Drover. Not retryable
    /// with this binary.
    #[error(
        "the PostgreSQL store at {url} has schema version {found}, newer than this binary's \
         {known}: run the drover-scheduler that wrote it"
    )]
    PostgresSchemaTooNew {
        /// The server, password removed.
        url: String,
        /// The stored version.
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
    /// A stored row holds a value this binary does not know. Not
    /// retryable: the database needs a look.
    #[error("stored {what} '{value}' is unknown")]
    CorruptValue {
        /// Which column.
        what: &'static str,
        /// The value.
        value: String,
    },
}

/// What every refusal of a damaged store tells the operator to do.
pub const RESTORE_HINT: &str = "restore it from a backup: move the data directory's files \
     away, copy a backup made with `drover-scheduler backup` in as drover.sqlite, and start the \
     scheduler again (see \"Backup and restore\" in scheduler/README.md)";

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

/// Which store this is: made once, when the store is created, and kept
/// by its backups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreIdentity {
    /// A random id (32 hex digits) telling this store from any other.
    pub store_id: String,
    /// When the store was created (or upgraded to a schema that records
    /// it).
    pub created_at: UnixMillis,
}

/// Everything the engine starts from.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Which store it is.
    pub identity: StoreIdentity,
    /// The framework id to re-subscribe with.
    pub framework_id: Option<String>,
    /// The latest committed revision.
    pub revision: Revision,
    /// Every job, with each instance's runs (oldest first), indexed by
    /// instance: at least `instance_count` entries.
    pub jobs: Vec<(Job, Vec<RunHistory>)>,
    /// The hostname of every agent a stored run names.
    pub hostnames: BTreeMap<AgentId, String>,
    /// The stored resource pools (the root never is; the default pool once
    /// reconfigured).
    pub pools: Vec<crate::model::pool::Pool>,
    /// Hosts in maintenance.
    pub hosts: Vec<crate::model::host::HostMaintenance>,
    /// Kubeflow pipeline runs, oldest first.
    pub pipeline_runs: Vec<crate::model::pipeline_run::RunRecord>,
    /// Kubeflow experiments, oldest first (`Default` among them).
    pub experiments: Vec<crate::model::pipeline_run::Experiment>,
}

/// A run as stored, for readers: the model's run and what only a reader
/// shows (its host, message and ports).
#[derive(Debug, Clone, PartialEq)]
pub struct RunRecord {
    /// `<job>-<instance>-<run>`.
    pub task_id: TaskId,
    /// The run.
    pub run: Run,
    /// The agent's hostname.
    pub hostname: Option<String>,
    /// Its latest message.
    pub message: Option<String>,
    /// Ports it was given: (name, port).
    pub ports: Vec<(String, u32)>,
}

impl AsRef<Run> for RunRecord {
    fn as_ref(&self) -> &Run {
        &self.run
    }
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
    /// Readiness, when the update carried a check status.
    pub ready: Option<bool>,
    /// Agent.
    pub agent_id: Option<String>,
    /// Host.
    pub hostname: Option<String>,
    /// When it happened.
    pub timestamp: UnixMillis,
    /// The revision that recorded it.
    pub revision: Revision,
}

/// Read access, for the API.
pub trait StoreRead: Send {
    /// The latest committed revision.
    fn revision(&self) -> Result<Revision, StoreError>;
    /// The framework id to re-subscribe with.
    fn framework_id(&self) -> Result<Option<String>, StoreError>;
    /// Which store this is.
    fn identity(&self) -> Result<StoreIdentity, StoreError>;
    /// One job.
    fn job(&self, id: &JobId) -> Result<Option<Job>, StoreError>;
    /// A page of jobs in creation order, and how many there are.
    fn jobs(&self, offset: u32, limit: u32) -> Result<(Vec<Job>, u32), StoreError>;
    /// Every run of a job, by instance then run.
    fn runs(&self, job: &JobId) -> Result<Vec<RunRecord>, StoreError>;
    /// Every run of one instance, oldest first.
    fn instance_runs(&self, instance: &InstanceId) -> Result<Vec<RunRecord>, StoreError>;
    /// An instance's event history, oldest first.
    fn pod_events(&self, instance: &InstanceId) -> Result<Vec<PodEventRecord>, StoreError>;
    /// Every run that may be live.
    fn live_runs(&self) -> Result<Vec<RunRecord>, StoreError>;
    /// Why each of a job's pending pods has no host, by instance.
    fn pending_reasons(&self, job: &JobId) -> Result<BTreeMap<u32, PendingInfo>, StoreError>;
    /// The story of a job's update `workflow`, oldest first: the
    /// workflow's own events (`instance` None) or one instance's.
    fn workflow_events(
        &self,
        job: &JobId,
        workflow: u32,
        instance: Option<u32>,
    ) -> Result<Vec<WorkflowEvent>, StoreError>;
}

/// Write access: one holder, the engine's runner.
pub trait Store: StoreRead {
    /// Everything the engine starts from.
    fn load(&self) -> Result<Snapshot, StoreError>;
    /// Writes `change` in one transaction, durable on return. Returns the
    /// revision it took (the current one, for a change that takes none).
    fn commit(&mut self, change: &Change) -> Result<Revision, StoreError>;
    /// Makes this handle the store's leader: bumps the stored leader epoch
    /// in one transaction (recording `replica`, the claimant's id) and
    /// returns it. Every later [`Store::commit`] of this handle fails with
    /// [`StoreError::Fenced`] once another handle has claimed a newer one.
    fn claim_leadership(&mut self, replica: &str) -> Result<Epoch, StoreError>;
}
