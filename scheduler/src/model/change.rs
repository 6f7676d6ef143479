//! What the engine decided to persist, as data: one [`Change`] is one
//! store transaction. The engine builds it, the store writes it and nothing
//! else; what it means was decided before (a status update's effect on its
//! run by [`super::run`], a launch's admission by [`super::run::may_launch`]).

use super::ids::{AgentId, InstanceId, JobId, TaskId};
use super::job::{Job, PodControl};
use super::spec::JobSpec;
use super::state::{JobGoal, PodState};
use super::time::UnixMillis;
use drover_proto::v1::task_status::Reason;
use drover_proto::v1::TaskState;

/// One transaction's worth of writes.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// Remember (`Some(Some(id))`) or forget (`Some(None)`) the framework id.
    pub framework_id: Option<Option<String>>,
    /// Job writes, in order.
    pub jobs: Vec<JobWrite>,
    /// New runs: launch intents, written before their ACCEPT is sent.
    pub launches: Vec<LaunchRecord>,
    /// Runs a batch of status updates changed, each as the batch left it.
    pub runs: Vec<RunWrite>,
    /// Entries appended to pods' histories.
    pub events: Vec<PodEvent>,
    /// Kills sent, so that they are not repeated at once.
    pub kills: Vec<KillRecord>,
    /// Live runs whose pod spec a new spec leaves as it was: they now run
    /// the new spec version, without a restart.
    pub run_versions: Vec<(TaskId, u64)>,
    /// Entries of jobs' workflow stories.
    pub workflow_events: Vec<WorkflowEventRecord>,
    /// Why pods wait for a host (None: they no longer do). Not a change a
    /// user made: alone, it takes no revision, so reasons refreshed every
    /// placement round do not churn watchers.
    pub pending_reasons: Vec<PendingReason>,
    /// Resource pools created, updated or deleted.
    pub pools: Vec<PoolWrite>,
    /// Hosts whose maintenance record is written or removed.
    pub hosts: Vec<HostWrite>,
    /// Kubeflow pipeline runs, each as it now is (issue 23).
    pub pipeline_runs: Vec<super::pipeline_run::RunRecord>,
    /// Other Kubeflow writes: runs deleted, experiments made (a boxed
    /// slice: `Action::Persist` is at clippy's size limit).
    pub kfp: Box<[KfpWrite]>,
}

/// A Kubeflow write besides a run's record (one list, to keep
/// [`Change`] small).
#[derive(Debug, Clone, PartialEq)]
pub enum KfpWrite {
    /// The pipeline run with this id is deleted.
    DeleteRun(String),
    /// An experiment is made.
    CreateExperiment(super::pipeline_run::Experiment),
}

/// A write of a host's maintenance record.
#[derive(Debug, Clone, PartialEq)]
pub enum HostWrite {
    /// The record as it now is.
    Put(super::host::HostMaintenance),
    /// The host is UP: its record goes.
    Remove(String),
}

impl Change {
    /// Whether the change takes a revision (anything but pending reasons).
    pub fn is_revisioned(&self) -> bool {
        self.framework_id.is_some()
            || !self.jobs.is_empty()
            || !self.launches.is_empty()
            || !self.runs.is_empty()
            || !self.events.is_empty()
            || !self.kills.is_empty()
            || !self.run_versions.is_empty()
            || !self.workflow_events.is_empty()
            || !self.pools.is_empty()
            || !self.hosts.is_empty()
            || !self.pipeline_runs.is_empty()
            || !self.kfp.is_empty()
    }

    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        !self.is_revisioned() && self.pending_reasons.is_empty()
    }
}

/// A write of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum JobWrite {
    /// A new job.
    Create(Box<Job>),
    /// The job's goal, version and restart batch; `revision`: the change
    /// is the user's, so the job's revision becomes the transaction's.
    Update {
        /// The job.
        job_id: JobId,
        /// Its goal.
        goal: JobGoal,
        /// Its entity version.
        version: u64,
        /// When the user changed it (kept unless `revision`).
        updated_at: UnixMillis,
        /// Who changed it (kept unless `revision`).
        updated_by: String,
        /// Its restart batch size.
        restart_batch_size: u32,
        /// Its creation workflow.
        create: Option<crate::model::create_workflow::CreateWorkflow>,
        /// The version of its spec.
        spec_version: u64,
        /// Its update workflows.
        workflows: Box<crate::model::workflow::JobWorkflows>,
        /// A user's change: bump the job's revision.
        revision: bool,
    },
    /// The job's spec, replaced (an amendment: [`super::amend`]).
    Spec {
        /// The job.
        job_id: JobId,
        /// Its spec now.
        spec: Box<JobSpec>,
    },
    /// One pod's goal and restart boundary.
    Pod {
        /// The pod.
        pod: InstanceId,
        /// What the user asked of it.
        control: PodControl,
        /// When.
        at: UnixMillis,
    },
    /// Forget the job, its runs, pods and events.
    Delete(JobId),
    /// Forget the stored events of one run (the run itself stays).
    DeletePodEvents(TaskId),
}

impl JobWrite {
    /// The job row's write for `job` as it now is; `revision`: a user's
    /// change (the job's revision and update time become the change's).
    pub fn update_of(job: &Job, revision: bool) -> JobWrite {
        JobWrite::Update {
            job_id: job.job_id.clone(),
            goal: job.goal,
            version: job.version,
            updated_at: job.updated_at,
            updated_by: job.updated_by.clone(),
            restart_batch_size: job.restart_batch_size,
            create: job.create,
            spec_version: job.spec_version,
            workflows: Box::new(job.workflows.clone()),
            revision,
        }
    }
}

/// A write of a resource pool.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolWrite {
    /// The pool as it now is (created or updated).
    Put(Box<super::pool::Pool>),
    /// Forget the pool.
    Delete(super::pool::PoolId),
}

/// One entry of a job's workflow story.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowEventRecord {
    /// The job.
    pub job_id: JobId,
    /// The workflow's number.
    pub workflow: u32,
    /// The event.
    pub event: crate::model::workflow::WorkflowEvent,
}

/// A run about to be launched.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchRecord {
    /// The new run.
    pub task_id: TaskId,
    /// Where.
    pub agent_id: AgentId,
    /// That agent's hostname.
    pub hostname: String,
    /// The job version it runs.
    pub spec_version: u64,
    /// The ports placement gave it: (name, port).
    pub ports: Vec<(String, u32)>,
    /// When the intent was recorded.
    pub at: UnixMillis,
    /// The live run of the instance it takes over from (a drain's
    /// handover, [`super::run`]): marked handing over in the same write.
    pub hands_over: Option<u32>,
}

/// A run's row after a batch of updates.
#[derive(Debug, Clone, PartialEq)]
pub struct RunWrite {
    /// The run.
    pub task_id: TaskId,
    /// Its state.
    pub state: PodState,
    /// Its agent.
    pub agent_id: Option<AgentId>,
    /// Its latest reason.
    pub reason: Option<Reason>,
    /// Its latest message.
    pub message: Option<String>,
    /// Its health.
    pub healthy: Option<bool>,
    /// Whether its readiness check passes.
    pub ready: Option<bool>,
    /// When it first ran.
    pub started_at: Option<UnixMillis>,
    /// When it ended (terminal states only).
    pub completed_at: Option<UnixMillis>,
    /// Its latest update's time.
    pub updated_at: UnixMillis,
    /// Since when its agent has been unreachable, while it is.
    pub unreachable_since: Option<UnixMillis>,
    /// The image its executor resolved, when this batch's updates said
    /// (absent keeps what is stored).
    pub image: Option<super::image::RunImage>,
}

/// One entry of a pod's history.
#[derive(Debug, Clone, PartialEq)]
pub struct PodEvent {
    /// The run it is about.
    pub task_id: TaskId,
    /// The pod state it reported.
    pub state: PodState,
    /// The Mesos state it came as.
    pub mesos_state: Option<TaskState>,
    /// The Mesos reason.
    pub reason: Option<Reason>,
    /// The message.
    pub message: Option<String>,
    /// The health.
    pub healthy: Option<bool>,
    /// The readiness, when the update carried a check status.
    pub ready: Option<bool>,
    /// The agent.
    pub agent_id: Option<AgentId>,
    /// The agent's hostname.
    pub hostname: Option<String>,
    /// When it happened.
    pub timestamp: UnixMillis,
}

/// A kill sent for a run.
#[derive(Debug, Clone, PartialEq)]
pub struct KillRecord {
    /// The run.
    pub task_id: TaskId,
    /// When.
    pub at: UnixMillis,
    /// Why, when not the job's or pod's goal (kept once set).
    pub reason: Option<Reason>,
}

/// Why a pod waits for a host, or that it no longer does.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingReason {
    /// The pod.
    pub pod: InstanceId,
    /// Why it waits; None once it does not.
    pub info: Option<PendingInfo>,
    /// When the placement round saw it.
    pub at: UnixMillis,
}

/// Why a pod has no host yet, as the last placement round saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingInfo {
    /// One line for humans: "no agent satisfies zone==c (3 agents)".
    pub reason: String,
    /// Hosts rejected per filter and reason, as JSON (Nomad's AllocMetric).
    pub metrics: String,
}
