//! A Kubeflow pipeline run as the engine drives it (issue 23): the run's
//! state (every Argo node with its phase, inputs and outputs) and the pure
//! driver that moves it on when a node's Drover job ends. No I/O and no
//! clock: the engine passes `now_ms`, starts the jobs the driver asks for
//! and feeds back how they ended. The whole state is serde, so the store
//! keeps it as one JSON row per run and a restarted scheduler carries on
//! from it (a node is launched only once per attempt: its `job` is
//! recorded before the job is created).
//!
//! # Nodes, as Argo names them
//! - The root is the entrypoint's node: name and id are the run's
//!   workflow name.
//! - A task `T` of a dag node named `N` is the node `N.T`; a looped task
//!   is a `TaskGroup` node `N.T` whose children are `N.T(i:item)`.
//! - Every other node's id is `<workflow name>-<fnv32a(node name)>`, the
//!   hash Argo uses, so ids are stable across restarts.
//!
//! # What happens when (Argo's rules)
//! - A dag task starts when its dependencies' nodes are terminal and all
//!   let dependents run ([`super::pipeline::readiness`]); one that did
//!   not gives an `Omitted` node. A false `when` gives a `Skipped` node;
//!   so does an empty loop.
//! - A container node is `Pending` until the run's `parallelism` (and its
//!   dag's) leaves room, then the driver hands the engine its launch.
//! - A failed node runs again while its template's `retryStrategy`
//!   allows, after its `backoff` (the node is `Pending` with
//!   `retry_at_ms`; the engine wakes for it); each attempt is a new
//!   Drover job.
//! - RetryRunV1 ([`retry`]) runs a failed run again from its succeeded
//!   nodes.
//! - A dag is done when every task has a terminal node: `Error` if any
//!   child errored, else `Failed` if any failed, else `Succeeded`. The
//!   run's phase is its root's.
//!
//! # Outputs and artifacts
//! A node's command runs in its Mesos sandbox and every compiled path is
//! moved under `.` (the sandbox: [`NODE_ROOT`]). When the command exits
//! 0, drover-executor reads the files the task names (see
//! [`NodeStart::output_paths`]) and puts them in the terminal status; the
//! engine passes them to [`PipelineRun::node_ended`]. Output parameters
//! and artifacts are kept with the run (at most [`MAX_OUTPUT_BYTES`] per
//! file: a larger one fails the node), and a consumer's input artifacts
//! are written by its command's preamble.

mod drive;
pub mod experiment;
pub mod metrics;
mod node_id;
pub mod node_job;
mod record;
mod retry;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use drive::{job_id, DriveError, NodeOutcome, NodeStart};
pub use experiment::Experiment;
pub use metrics::RunMetric;
pub use node_id::node_id;
pub use record::RunRecord;
pub use retry::RetryRefused;

/// Where a node's compiled paths go: its command's working directory,
/// the Mesos sandbox (unique per task and kept with its logs).
pub const NODE_ROOT: &str = ".";

/// The largest output file (parameter or artifact) kept with a run.
pub const MAX_OUTPUT_BYTES: usize = 256 * 1024;

/// A node's phase, as Argo spells it (serialized by name).
pub use super::pipeline::NodePhase;

/// Argo's node types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum NodeType {
    #[serde(rename = "DAG")]
    Dag,
    Pod,
    TaskGroup,
    Skipped,
}

impl NodeType {
    pub fn as_argo(self) -> &'static str {
        match self {
            NodeType::Dag => "DAG",
            NodeType::Pod => "Pod",
            NodeType::TaskGroup => "TaskGroup",
            NodeType::Skipped => "Skipped",
        }
    }
}

/// One Argo node of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunNode {
    pub id: String,
    /// Argo's full name: `wf.task.subtask`.
    pub name: String,
    /// The task's name (or `task(0:item)`); the root's is the workflow's.
    pub display_name: String,
    pub template: String,
    #[serde(rename = "type")]
    pub node_type: NodeType,
    #[serde(with = "phase_name")]
    pub phase: NodePhase,
    pub message: Option<String>,
    pub parent: Option<String>,
    pub children: Vec<String>,
    /// The task of the parent dag it runs (a loop item: its task's).
    pub task: Option<String>,
    /// Its template's input parameters, resolved.
    pub inputs: BTreeMap<String, String>,
    /// The loop item it runs, for a loop's child.
    pub item: Option<serde_json::Value>,
    /// Output parameters, by name.
    pub outputs: BTreeMap<String, String>,
    /// Output artifacts kept with the run, by name (base64).
    pub artifacts: BTreeMap<String, String>,
    pub started_ms: Option<i64>,
    pub finished_ms: Option<i64>,
    /// A container node: attempts made (1 on the first launch).
    pub attempts: u32,
    /// A container node's current Drover job, set when launched.
    pub job: Option<String>,
    /// A container node waiting for its `retryStrategy.backoff`: not
    /// launched before this time (ms since the epoch).
    #[serde(default)]
    pub retry_at_ms: Option<i64>,
    /// Attempts made before the last RetryRunV1: its `retryStrategy`
    /// counts only the attempts since.
    #[serde(default)]
    pub attempts_before_retry: u32,
}

/// A run of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRun {
    /// The run's id (the Kubeflow run id, Argo's workflow uid).
    pub id: String,
    /// The workflow name (Argo's `metadata.name`).
    pub workflow_name: String,
    /// The run's parameters after overrides.
    pub parameters: BTreeMap<String, String>,
    #[serde(with = "phase_name")]
    pub phase: NodePhase,
    pub message: Option<String>,
    pub started_ms: i64,
    pub finished_ms: Option<i64>,
    /// Nodes by id.
    pub nodes: BTreeMap<String, RunNode>,
    /// Set by terminate: no node starts any more.
    pub terminated: bool,
}

impl PipelineRun {
    /// The root node (the entrypoint's).
    pub fn root(&self) -> Option<&RunNode> {
        self.nodes.get(&self.workflow_name)
    }

    /// Whether the run has finished.
    pub fn is_done(&self) -> bool {
        self.phase.is_terminal()
    }

    /// The earliest time a node waits for (its retry's backoff), if any.
    pub fn next_retry_ms(&self) -> Option<i64> {
        if self.is_done() || self.terminated {
            return None;
        }
        self.nodes.values().filter_map(|n| n.retry_at_ms).min()
    }

    /// The node whose current job is `job`.
    pub fn node_of_job(&self, job: &str) -> Option<&RunNode> {
        self.nodes.values().find(|n| n.job.as_deref() == Some(job))
    }
}

/// [`NodePhase`] as its Argo name in JSON.
mod phase_name {
    use super::NodePhase;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(phase: &NodePhase, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(phase.as_argo())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NodePhase, D::Error> {
        let name = String::deserialize(d)?;
        parse(&name).ok_or_else(|| serde::de::Error::custom(format!("no node phase {name:?}")))
    }

    pub fn parse(name: &str) -> Option<NodePhase> {
        use NodePhase::*;
        [Pending, Running, Succeeded, Failed, Error, Skipped, Omitted]
            .into_iter()
            .find(|p| p.as_argo() == name)
    }
}
