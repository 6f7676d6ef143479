//! What goes into the engine besides Mesos facts (API requests, the time)
//! and everything that comes out of it: actions to carry out, in order.

use crate::model::access::Denied;
use crate::model::amend::{AmendError, JobAmendment};
use crate::model::change::Change;
use crate::model::create_workflow::CreateWorkflow;
use crate::model::host::{HostError, HostState};
use crate::model::ids::{AgentId, InstanceId, JobId, OfferId, TaskId};
use crate::model::job::{Job, VersionMismatch};
use crate::model::pool::{Pool, PoolId, PoolSpec, PoolTree};
use crate::model::pool_validate::PoolError;
use crate::model::resources::Resources;
use crate::model::secret::SecretSpec;
use crate::model::spec::{JobSpec, PodSpec};
use crate::model::state::{JobGoal, PodGoal};
use crate::model::task_update::Ack;
use crate::model::time::UnixMillis;
use crate::model::validate::SpecError;
use crate::model::workflow::UpdateOptions;
use crate::store::StoreError;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The time, as the engine is told it: a monotonic instant for its timers
/// and the wall clock for what it records. Read by the caller, once per
/// input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// For deadlines.
    pub instant: Instant,
    /// For records: milliseconds since the Unix epoch.
    pub unix_ms: UnixMillis,
}

/// The caller's handle for an API request, echoed in its [`Action::Reply`].
pub type RequestId = u64;

/// What the API asks of the engine; each is answered with one reply, once
/// its change is stored (or at once, if it is refused).
#[derive(Debug, Clone, PartialEq)]
pub enum ApiRequest {
    /// Start a Kubeflow pipeline run (issue 23): validated, stored with
    /// the jobs of its first nodes.
    CreatePipelineRun(Box<crate::engine::pipeline_runs::NewRun>),
    /// Stop a pipeline run: its running nodes are killed, the rest never
    /// start.
    TerminatePipelineRun {
        /// The run.
        run_id: String,
    },
    /// Run a Failed or Error pipeline run again: its succeeded nodes are
    /// kept, every other node runs again.
    RetryPipelineRun {
        /// The run.
        run_id: String,
    },
    /// Archive a pipeline run (`archived`) or make it available again.
    SetPipelineRunArchived {
        /// The run.
        run_id: String,
        /// STORAGESTATE_ARCHIVED when true, else STORAGESTATE_AVAILABLE.
        archived: bool,
    },
    /// Delete a pipeline run: its running nodes are killed, its record
    /// removed.
    DeletePipelineRun {
        /// The run.
        run_id: String,
    },
    /// Make a Kubeflow experiment (its id and time picked by the API).
    CreateExperiment(Box<crate::model::pipeline_run::Experiment>),
    /// Every Kubeflow experiment, oldest first.
    ListExperiments,
    /// One pipeline run, as the engine holds it.
    GetPipelineRun {
        /// The run.
        run_id: String,
    },
    /// Every pipeline run, oldest first.
    ListPipelineRuns,
    /// Keep the valid metrics of one `ReportRunMetricsV1` with a run,
    /// each only if its `(node_id, name)` has none yet.
    ReportPipelineRunMetrics {
        /// The run.
        run_id: String,
        /// The report's valid metrics, in its order.
        metrics: Vec<crate::model::pipeline_run::RunMetric>,
    },
    /// Store a new job.
    CreateJob {
        /// Its id.
        job_id: JobId,
        /// Its (validated) spec.
        spec: Box<JobSpec>,
        /// How to create it (Peloton `CreateSpec`); None: every instance
        /// at once.
        create: Option<CreateWorkflow>,
    },
    /// Plan the job again now (Peloton `RefreshJob`): its goal-state rule
    /// re-run over what the engine holds; nothing is stored.
    RefreshJob {
        /// The job.
        job_id: JobId,
    },
    /// Pause, resume or abort a job's update in progress, or else its
    /// creation workflow.
    SteerWorkflow {
        /// The job.
        job_id: JobId,
        /// What to do.
        action: WorkflowAction,
        /// The version the caller saw.
        expected_version: Option<u64>,
    },
    /// Move a running service job to a new spec (Peloton ReplaceJob and
    /// PatchJob): a new version, and an update workflow that moves the
    /// pods whose spec changes ([`crate::model::workflow`]).
    UpdateJob {
        /// The job.
        job_id: JobId,
        /// Its new (validated) spec.
        spec: Box<JobSpec>,
        /// How to roll.
        options: UpdateOptions,
        /// The version the caller saw.
        expected_version: Option<u64>,
    },
    /// Roll the job's current or last update back: the old spec is the
    /// target again and the moved pods move back, through the same window.
    RollbackJob {
        /// The job.
        job_id: JobId,
        /// The version the caller saw.
        expected_version: Option<u64>,
    },
    /// Stop or start a job.
    SetGoal {
        /// The job.
        job_id: JobId,
        /// Running or Stopped.
        goal: JobGoal,
        /// The version the caller saw.
        expected_version: Option<u64>,
    },
    /// Stop or start one pod.
    SetPodGoal {
        /// The pod.
        pod: InstanceId,
        /// Running or Killed.
        goal: PodGoal,
    },
    /// Restart pods: replace their runs, `batch_size` at a time.
    RestartPods {
        /// The job.
        job_id: JobId,
        /// Which instances.
        instances: Vec<u32>,
        /// Most down at once (0 = all).
        batch_size: u32,
        /// The version the caller saw (job restarts).
        expected_version: Option<u64>,
        /// Bump the job's version (a job restart, not a pod restart).
        bump: bool,
    },
    /// Change a job without restarting its pods: grow it, enable or
    /// disable it, set its labels or kept seed message, stop or start pods
    /// (see [`crate::model::amend`]). A user's change: a new version.
    AmendJob {
        /// The job.
        job_id: JobId,
        /// The version the caller saw.
        expected_version: Option<u64>,
        /// What changes.
        amend: Box<JobAmendment>,
    },
    /// Amend several jobs in one stored change, all or nothing: every
    /// job's version is checked and every amendment made before anything
    /// is written, and any refusal refuses the whole request (Titus'
    /// MoveTask grows one job and stops a pod of another). Each job at
    /// most once. Answered with the first job as it left it.
    AmendJobs {
        /// The jobs and what changes in each, at least one.
        amends: Vec<JobAmend>,
    },
    /// Delete a job (stop it first if `force`).
    DeleteJob {
        /// The job.
        job_id: JobId,
        /// The version the caller saw.
        expected_version: Option<u64>,
        /// Stop it if running.
        force: bool,
    },
    /// Forget the stored events of one run of a pod: an ended run, not the
    /// pod's latest, whose history is still being written (Peloton's
    /// DeletePodEvents bounds the growth of old runs' histories).
    DeletePodEvents {
        /// The run.
        task: TaskId,
    },
    /// Plan the pod's job again now, and ask the master for the state of
    /// the pod's latest run if it may be live (Peloton's RefreshPod).
    RefreshPod {
        /// The pod.
        pod: InstanceId,
    },
    /// Create a resource pool (an operator's act).
    CreatePool {
        /// Its id.
        pool_id: PoolId,
        /// Its configuration.
        spec: Box<PoolSpec>,
    },
    /// Reconfigure a resource pool (an operator's act): a new version.
    UpdatePool {
        /// The pool.
        pool_id: PoolId,
        /// Its new configuration (same parent).
        spec: Box<PoolSpec>,
    },
    /// Delete a leaf resource pool no job runs in (an operator's act).
    DeletePool {
        /// The pool.
        pool_id: PoolId,
    },
    /// Read the pools with what each holds now ([`PoolsView`]); nothing is
    /// stored.
    ReadPools,
    /// Drain hosts for maintenance (Peloton `StartMaintenance`), then take
    /// them DOWN through the master ([`crate::engine::maintenance`]).
    StartMaintenance {
        /// The hosts.
        hostnames: Vec<String>,
        /// How long a batch run is left to finish before it is moved.
        batch_grace: Duration,
    },
    /// Bring hosts back from maintenance (Peloton `CompleteMaintenance`).
    CompleteMaintenance {
        /// The hosts.
        hostnames: Vec<String>,
    },
}

impl ApiRequest {
    /// What it changes, as the audit trail names it: a job's id, a pod's
    /// name, a run's task id, or several jobs' ids.
    pub fn target(&self) -> String {
        match self {
            ApiRequest::CreateJob { job_id, .. }
            | ApiRequest::RefreshJob { job_id }
            | ApiRequest::SteerWorkflow { job_id, .. }
            | ApiRequest::UpdateJob { job_id, .. }
            | ApiRequest::RollbackJob { job_id, .. }
            | ApiRequest::SetGoal { job_id, .. }
            | ApiRequest::RestartPods { job_id, .. }
            | ApiRequest::AmendJob { job_id, .. }
            | ApiRequest::DeleteJob { job_id, .. } => job_id.to_string(),
            ApiRequest::SetPodGoal { pod, .. } | ApiRequest::RefreshPod { pod } => pod.pod_name(),
            ApiRequest::DeletePodEvents { task } => task.to_string(),
            ApiRequest::CreatePool { pool_id, .. }
            | ApiRequest::UpdatePool { pool_id, .. }
            | ApiRequest::DeletePool { pool_id } => format!("pool {pool_id}"),
            ApiRequest::ReadPools => "pools".to_owned(),
            ApiRequest::CreatePipelineRun(new) => format!("pipeline run {}", new.run_id),
            ApiRequest::TerminatePipelineRun { run_id }
            | ApiRequest::RetryPipelineRun { run_id }
            | ApiRequest::SetPipelineRunArchived { run_id, .. }
            | ApiRequest::DeletePipelineRun { run_id }
            | ApiRequest::GetPipelineRun { run_id }
            | ApiRequest::ReportPipelineRunMetrics { run_id, .. } => {
                format!("pipeline run {run_id}")
            }
            ApiRequest::ListPipelineRuns => "pipeline runs".to_owned(),
            ApiRequest::CreateExperiment(e) => format!("experiment {}", e.id),
            ApiRequest::ListExperiments => "experiments".to_owned(),
            ApiRequest::StartMaintenance { hostnames, .. }
            | ApiRequest::CompleteMaintenance { hostnames } => hostnames.join(","),
            ApiRequest::AmendJobs { amends } => amends
                .iter()
                .map(|a| a.job_id.to_string())
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// One job's part of [`ApiRequest::AmendJobs`].
#[derive(Debug, Clone, PartialEq)]
pub struct JobAmend {
    /// The job.
    pub job_id: JobId,
    /// The version the caller saw.
    pub expected_version: Option<u64>,
    /// What changes.
    pub amend: Box<JobAmendment>,
}

pub use crate::model::workflow::WorkflowAction;

/// A successful answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// A pipeline run as the request left it.
    PipelineRun(Box<crate::model::pipeline_run::RunRecord>),
    /// Every pipeline run, oldest first.
    PipelineRuns(Vec<crate::model::pipeline_run::RunRecord>),
    /// Kubeflow experiments (a create's: the one made).
    Experiments(Vec<crate::model::pipeline_run::Experiment>),
    /// The job as the request left it.
    Job(Box<Job>),
    /// The job is deleted, or will be once its runs are down (or the pool
    /// is deleted).
    Deleted,
    /// The pool as the request left it.
    Pool(Box<Pool>),
    /// The pools as they are now.
    Pools(Box<PoolsView>),
    /// The hosts a maintenance request named, as it left them.
    Hosts(Vec<(String, HostState)>),
}

/// The resource pools as the engine holds them, and what runs in each.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolsView {
    /// The tree.
    pub tree: PoolTree,
    /// What each pool's live runs hold (its pods' resources, no executor
    /// overhead), a parent holding its children's; see
    /// [`super::Engine::pool_usage`].
    pub usage: BTreeMap<PoolId, Resources>,
    /// How many jobs run in each leaf pool.
    pub jobs: BTreeMap<PoolId, usize>,
}

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The job does not exist.
    #[error("job {0} not found")]
    JobNotFound(JobId),
    /// The job has no such instance.
    #[error("pod {} not found", .0.pod_name())]
    PodNotFound(InstanceId),
    /// A job with this id exists already.
    #[error("job {0} already exists")]
    JobExists(JobId),
    /// The caller's entity version is stale.
    #[error(transparent)]
    VersionMismatch(#[from] VersionMismatch),
    /// The spec asks for what no agent could hold.
    #[error(transparent)]
    InvalidSpec(#[from] SpecError),
    /// An amendment the job cannot take.
    #[error("job {0}: {1}")]
    Amend(JobId, #[source] AmendError),
    /// A request to amend several jobs names none.
    #[error("no job to amend")]
    NoAmendments,
    /// A request to amend several jobs names one twice.
    #[error("job {0} is named twice in one request")]
    JobTwice(JobId),
    /// The pod has no such run.
    #[error("pod {} has no run {}", .0.instance.pod_name(), .0)]
    RunNotFound(TaskId),
    /// The run is the pod's latest: its history is still being written.
    #[error("run {0} is its pod's latest run; only the events of earlier runs can be deleted")]
    LatestRun(TaskId),
    /// The job has no creation workflow in progress to act on.
    #[error("job {0} has no workflow in progress: {1}")]
    NoActiveWorkflow(JobId, String),
    /// An update of a job with an update in progress (one at a time).
    #[error("job {0} has an update in progress ({1}); pause, abort or wait for it first")]
    WorkflowInProgress(JobId, &'static str),
    /// A change Drover makes only to service jobs.
    #[error("job {0} is a batch job; only service jobs are updated in place")]
    NotService(JobId),
    /// A rollback with nothing to roll back.
    #[error("job {0} has no update to roll back: {1}")]
    NothingToRollBack(JobId, String),
    /// DELETE of a job that is still running, without `force`.
    #[error("job {0} is still running; stop it first or delete with force")]
    StillRunning(JobId),
    /// The caller's role or the job's owner forbid it.
    #[error(transparent)]
    PermissionDenied(#[from] Denied),
    /// A resource pool change refused, or a job naming a pool it cannot
    /// run in.
    #[error(transparent)]
    Pool(#[from] PoolError),
    /// A maintenance request the hosts cannot take.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The change could not be stored; nothing changed. Retrying may help.
    #[error("the change was not stored: {0}")]
    Store(#[source] StoreError),
    /// A pipeline run refused at create: a manifest Drover cannot run, or
    /// parameters that do not fit it. Nothing is stored.
    #[error("{0}")]
    InvalidPipelineRun(String),
    /// No pipeline run has this id.
    #[error("run {0} not found")]
    PipelineRunNotFound(String),
    /// A pipeline run with this id exists already.
    #[error("run {0} already exists")]
    PipelineRunExists(String),
    /// A pipeline run that cannot be retried (it has not failed): kfp 1.8
    /// answers ABORTED (its BadRequestError), in these words.
    #[error("Retry run failed.: BadRequestError: {0}")]
    PipelineRunNotRetryable(String),
    /// A Kubeflow experiment not made (no name, a name taken).
    #[error(transparent)]
    ExperimentRefused(#[from] crate::model::pipeline_run::experiment::ExperimentRefused),
}

/// What the engine asks its driver to do. Carried out in order.
#[derive(Debug)]
pub enum Action {
    /// Write this change in one transaction, then call
    /// [`super::Engine::on_persisted`] with it and the outcome before
    /// anything else. Always the last action of a list: what depends on it
    /// comes back from `on_persisted`.
    Persist(Change),
    /// Send this call to the master.
    Send(Call),
    /// Send this call to the master's operator API (`/api/v1`), then
    /// report its outcome with [`super::Engine::on_operator_result`].
    Operator(OperatorCall),
    /// Answer API request `request`.
    Reply {
        /// The request.
        request: RequestId,
        /// The answer.
        result: Result<Reply, EngineError>,
    },
}

/// A call to the master, in the engine's terms (the Mesos edge builds the
/// proto).
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    /// Launch `tasks` on offers of one agent and role; the rest of the
    /// offers is declined with `refuse`.
    Accept {
        /// The offers used.
        offer_ids: Vec<OfferId>,
        /// Their agent.
        agent_id: AgentId,
        /// The role they were allocated to.
        allocation_role: Option<String>,
        /// What to launch.
        tasks: Vec<LaunchTask>,
        /// The refuse filter for what is left.
        refuse: Duration,
    },
    /// Decline offers.
    Decline {
        /// The offers.
        offer_ids: Vec<OfferId>,
        /// Keep them away this long.
        refuse: Duration,
    },
    /// Kill a task.
    Kill {
        /// The task, as Mesos knows it.
        task_id: String,
        /// Its agent, if known.
        agent_id: Option<AgentId>,
        /// SIGTERM-to-SIGKILL grace period.
        grace: Duration,
    },
    /// Ask for the state of these tasks (explicit), or of every task
    /// (implicit: empty).
    Reconcile {
        /// (task, agent) pairs.
        tasks: Vec<(String, Option<AgentId>)>,
    },
    /// Stop sending offers.
    Suppress,
    /// Send offers again.
    Revive,
    /// Acknowledge a stored status update.
    Acknowledge(Ack),
    /// Give agents back to the master (ACCEPT_INVERSE_OFFERS).
    AcceptInverseOffers {
        /// The inverse offers.
        inverse_offer_ids: Vec<String>,
    },
}

/// A call to the master's operator API (Mesos maintenance primitives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorCall {
    /// Schedule the hosts' machines (UPDATE_MAINTENANCE_SCHEDULE, kept
    /// with the windows already there), then START_MAINTENANCE: the
    /// master takes them DOWN.
    StartMaintenance {
        /// The hosts.
        hostnames: Vec<String>,
    },
    /// STOP_MAINTENANCE, then the hosts' windows removed from the schedule.
    StopMaintenance {
        /// The hosts.
        hostnames: Vec<String>,
    },
}

/// One task of an ACCEPT.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchTask {
    /// The run.
    pub task_id: TaskId,
    /// What it runs.
    pub pod: Arc<PodSpec>,
    /// Its job's spec, carried as a label ([`crate::model::spec_label`]).
    pub spec_label: Option<Arc<str>>,
    /// Its job's secrets, delivered as files in the task's sandbox; their
    /// `Debug` is redacted.
    pub secrets: Arc<[SecretSpec]>,
    /// The ports placement gave it: (name, port).
    pub ports: Vec<(String, u32)>,
}
