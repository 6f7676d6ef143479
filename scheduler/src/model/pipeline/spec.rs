//! Drover's pipeline model: what an Argo `Workflow` compiled by kfp 1.8
//! asks for, once read and checked ([`super::parse`]). Everything here
//! is something Drover honours; what it cannot honour never gets here.

use std::collections::BTreeMap;

use serde_json::Value;

use super::condition::Condition;
use super::text::Text;
use crate::model::resources::Resources;

/// A parsed and checked workflow manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Pipeline {
    /// `metadata.name`, else `metadata.generateName` without its
    /// trailing `-` (what kfp writes: `three-step-`).
    pub name: String,
    /// `metadata.generateName` as written, for naming a run's workflow.
    pub generate_name: Option<String>,
    /// `spec.entrypoint`: the template the run starts.
    pub entrypoint: String,
    /// `spec.arguments.parameters`, in manifest order.
    pub arguments: Vec<WorkflowArgument>,
    /// `spec.templates`, in manifest order; names are unique.
    pub templates: Vec<Template>,
    /// `spec.parallelism`: at most this many container nodes at once in
    /// the whole run (`None`: no limit; Argo reads 0 as no limit).
    pub parallelism: Option<u32>,
    /// `spec.activeDeadlineSeconds`: the run fails when it is older.
    pub active_deadline_seconds: Option<u64>,
    /// `metadata.annotations` (kfp's `pipeline_spec`, sdk version...).
    pub annotations: BTreeMap<String, String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
}

impl Pipeline {
    /// The template named `name`.
    pub fn template(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// The entrypoint's template (present: parsing checks it).
    pub fn entry(&self) -> Option<&Template> {
        self.template(&self.entrypoint)
    }
}

/// One of `spec.arguments.parameters`.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowArgument {
    pub name: String,
    /// Its value in the manifest; `None` when the run must give one.
    pub value: Option<String>,
}

/// One of `spec.templates`.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub name: String,
    /// Where it is in the manifest (`spec.templates[3]`), for messages.
    pub path: String,
    pub body: TemplateBody,
    pub inputs: Inputs,
    pub outputs: Outputs,
    /// `retryStrategy`: how often a failed node of it runs again.
    pub retry: Option<RetryStrategy>,
    /// `activeDeadlineSeconds`: a node of it is killed (and `Failed`)
    /// when it has run this long.
    pub active_deadline_seconds: Option<u64>,
    /// `parallelism` of a dag or steps template: at most this many of
    /// its children at once (a loop's items included). Argo reads 0 as
    /// no limit, and kfp writes 0 on every `ParallelFor`.
    pub parallelism: Option<u32>,
    /// `metadata.labels` and `metadata.annotations` of the pod Argo would
    /// make (kfp's sdk labels, `enable_caching`, component specs): shown,
    /// never acted on.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl Template {
    pub fn container(&self) -> Option<&Container> {
        match &self.body {
            TemplateBody::Container(c) => Some(c),
            _ => None,
        }
    }

    pub fn input_parameter(&self, name: &str) -> Option<&InputParameter> {
        self.inputs.parameters.iter().find(|p| p.name == name)
    }
}

/// What a template does.
#[derive(Debug, Clone, PartialEq)]
pub enum TemplateBody {
    /// Runs one command: a Drover batch task.
    Container(Container),
    /// Runs tasks as their dependencies allow.
    Dag(Dag),
    /// Runs groups of steps in order, the steps of a group at once.
    Steps(Vec<Vec<Task>>),
}

/// Whether a node's command runs in its container's image or on the
/// agent's host: the scheduler's choice (`--kfp-images`), made when a
/// node's job is made, so a node job records which it got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ImageUse {
    /// The node job asks for the image, as Kubeflow runs every step in its
    /// image: drover-executor resolves it from its agent's local image
    /// store. The default.
    #[default]
    Image,
    /// The image is recorded and not asked for: the command runs on the
    /// agent's host (kfp's lightweight components need `python3` there),
    /// for agents without an image store. The run's status says so.
    Host,
}

/// A container template's command.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    /// `container.image` as written.
    pub image: String,
    /// `container.command` (the program and its first arguments).
    pub command: Vec<Text>,
    /// `container.args`, after the command.
    pub args: Vec<Text>,
    /// `container.env` (literal or substituted values only).
    pub env: Vec<EnvVar>,
    /// `container.resources`.
    pub resources: ContainerResources,
}

/// One environment variable.
#[derive(Debug, Clone, PartialEq)]
pub struct EnvVar {
    pub name: String,
    pub value: Text,
}

/// Requests and limits, in Drover's units; `None` where not written.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ResourceAmounts {
    pub cpus: Option<f64>,
    pub mem_mib: Option<f64>,
    pub disk_mib: Option<f64>,
    pub gpus: Option<f64>,
}

/// `container.resources`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ContainerResources {
    pub requests: ResourceAmounts,
    pub limits: ResourceAmounts,
}

impl ContainerResources {
    /// What the node's Drover task asks for. Mesos gives a task one
    /// amount, which the executor also enforces as its cgroup limit; so
    /// each resource is the limit when written (what the pod may use),
    /// else the request, else `defaults`'s.
    pub fn task_resources(&self, defaults: &Resources) -> Resources {
        let pick = |limit: Option<f64>, request: Option<f64>, default: f64| {
            limit.or(request).unwrap_or(default)
        };
        Resources {
            cpus: pick(self.limits.cpus, self.requests.cpus, defaults.cpus),
            mem_mib: pick(self.limits.mem_mib, self.requests.mem_mib, defaults.mem_mib),
            disk_mib: pick(
                self.limits.disk_mib,
                self.requests.disk_mib,
                defaults.disk_mib,
            ),
            gpus: pick(self.limits.gpus, self.requests.gpus, defaults.gpus),
        }
    }
}

/// `inputs`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Inputs {
    pub parameters: Vec<InputParameter>,
    pub artifacts: Vec<InputArtifact>,
}

/// One of `inputs.parameters`.
#[derive(Debug, Clone, PartialEq)]
pub struct InputParameter {
    pub name: String,
    /// `default` (or a fixed `value`), used when the caller passes none.
    pub default: Option<String>,
}

/// One of `inputs.artifacts`: a file the node finds at `path` (per node,
/// see [`super::node_paths`]) before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct InputArtifact {
    pub name: String,
    /// The compiled absolute path.
    pub path: String,
    /// `raw.data`: the file's content, written by Drover.
    pub raw: Option<Text>,
    /// `optional`: the node starts without it when its source has none.
    pub optional: bool,
}

/// `outputs`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Outputs {
    pub parameters: Vec<OutputParameter>,
    pub artifacts: Vec<OutputArtifact>,
}

/// One of `outputs.parameters`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputParameter {
    pub name: String,
    pub source: ParameterSource,
    /// `valueFrom.default`: the value when the file is missing.
    pub default: Option<String>,
}

/// Where an output parameter's value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum ParameterSource {
    /// `valueFrom.path`: the content of the file the command wrote at this
    /// compiled path (read from the node's own path, [`super::node_paths`]).
    File(String),
    /// `valueFrom.parameter`: a dag or steps template passing on a
    /// child's output (`{{tasks.T.outputs.parameters.Y}}`).
    Parameter(Text),
}

/// One of `outputs.artifacts`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputArtifact {
    pub name: String,
    pub source: ArtifactSource,
    /// `optional`: the node succeeds when the file is missing.
    pub optional: bool,
}

/// Where an artifact's file is.
#[derive(Debug, Clone, PartialEq)]
pub enum ArtifactSource {
    /// A file the command wrote at this compiled path; it stays in the
    /// node's sandbox (Drover has no other artifact repository).
    File(String),
    /// `from`: another node's artifact.
    From(ArtifactRef),
    /// `raw.data`: the content, written by Drover.
    Raw(Text),
}

/// An artifact named by `from: '{{...}}'`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactRef {
    /// `{{tasks.T.outputs.artifacts.A}}`.
    TaskOutput { task: String, artifact: String },
    /// `{{steps.S.outputs.artifacts.A}}`.
    StepOutput { step: String, artifact: String },
    /// `{{inputs.artifacts.X}}`: the template's own input.
    Input(String),
}

/// A dag template's `dag`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dag {
    pub tasks: Vec<Task>,
}

impl Dag {
    pub fn task(&self, name: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.name == name)
    }
}

/// A dag task or a step: one call of a template.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub name: String,
    /// Where it is in the manifest (`spec.templates[4].dag.tasks[1]`).
    pub path: String,
    /// The template it runs.
    pub template: String,
    /// `arguments.parameters`, by the callee's input names.
    pub parameters: Vec<ArgumentParameter>,
    /// `arguments.artifacts`.
    pub artifacts: Vec<ArgumentArtifact>,
    /// `dependencies` (and `depends` when it is only `&&` of task names):
    /// tasks of the same dag that must have succeeded (or been skipped,
    /// as Argo counts them) first. Empty for a step.
    pub dependencies: Vec<String>,
    /// `when`: the node is `Skipped` unless it holds.
    pub when: Option<Condition>,
    /// `withItems` / `withParam`: one node per item.
    pub loop_over: Option<Loop>,
}

/// One of a task's `arguments.parameters`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgumentParameter {
    pub name: String,
    pub value: Text,
}

/// One of a task's `arguments.artifacts`.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgumentArtifact {
    pub name: String,
    pub source: ArtifactSource,
}

/// A task's loop.
#[derive(Debug, Clone, PartialEq)]
pub enum Loop {
    /// `withItems`: the list as written (strings may hold variables).
    Items(Vec<Value>),
    /// `withParam`: a text that renders to a JSON list.
    Param(Text),
}

/// `retryStrategy`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryStrategy {
    /// `limit`: retries after the first run; `None` retries without end,
    /// as Argo does when a strategy has no limit.
    pub limit: Option<u32>,
    pub policy: RetryPolicy,
    /// `backoff`: the wait before each retry.
    pub backoff: Option<RetryBackoff>,
}

/// `retryStrategy.retryPolicy` (Argo's default is `OnFailure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Retry a node that failed or errored.
    Always,
    /// Retry a node whose command failed (Argo's default).
    OnFailure,
    /// Retry a node Drover could not run to its end (lost agent, launch
    /// error).
    OnError,
}

/// How a node ended badly, as Argo tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeFailure {
    /// The command exited non-zero or was killed for its deadline
    /// (Argo `Failed`).
    Failed,
    /// Drover could not run it to the end: lost agent, launch error
    /// (Argo `Error`).
    Error,
}

impl RetryStrategy {
    /// Whether a node that ended with `failure` after `retries_done`
    /// retries runs again.
    pub fn retries(&self, failure: NodeFailure, retries_done: u32) -> bool {
        let within = self.limit.is_none_or(|limit| retries_done < limit);
        let policy = match (self.policy, failure) {
            (RetryPolicy::Always, _) => true,
            // As Argo's controller: OnFailure leaves an `Error` node
            // alone, OnError a `Failed` one.
            (RetryPolicy::OnFailure, failure) => failure == NodeFailure::Failed,
            (RetryPolicy::OnError, failure) => failure == NodeFailure::Error,
        };
        within && policy
    }

    /// The wait before retry number `retry` (1 for the first), in ms.
    pub fn backoff_ms(&self, retry: u32) -> u64 {
        let Some(backoff) = &self.backoff else {
            return 0;
        };
        let factor = backoff.factor.unwrap_or(2.0).max(1.0);
        let exponent = i32::try_from(retry.saturating_sub(1)).unwrap_or(i32::MAX);
        let wait = backoff.duration_ms as f64 * factor.powi(exponent);
        wait.min(u64::MAX as f64) as u64
    }

    /// Whether `backoff.maxDuration` has passed since the node first
    /// started: then it is not retried again (Argo's rule).
    pub fn is_out_of_time(&self, since_first_start_ms: u64) -> bool {
        self.backoff
            .as_ref()
            .and_then(|b| b.max_duration_ms)
            .is_some_and(|max| since_first_start_ms >= max)
    }
}

/// `retryStrategy.backoff`.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryBackoff {
    /// `duration`: the first wait.
    pub duration_ms: u64,
    /// `factor`: each wait is the last times this (Argo's default 2).
    pub factor: Option<f64>,
    /// `maxDuration`: no retry starts once this long has passed since
    /// the node's first run started.
    pub max_duration_ms: Option<u64>,
}
