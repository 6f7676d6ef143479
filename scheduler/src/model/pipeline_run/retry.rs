//! RetryRunV1, as Kubeflow retries an Argo workflow: only a run that
//! ended Failed or Error is retried; its succeeded nodes stay as they are
//! (with their outputs, never run again), every other node runs again.
//!
//! - A container node that ran is reset to `Pending` and keeps its
//!   attempt count, so its next Drover job has a new id; its
//!   `retryStrategy` counts only the attempts made after the retry.
//! - A node that never ran as a task of a dag (Omitted, Skipped, a
//!   loop that could not expand, a call whose inputs failed) is removed:
//!   the dag starts the task again, judging its dependencies, `when` and
//!   inputs anew.
//! - Dags and loop groups that did not succeed run again, and close
//!   again once their children are done.

use super::{NodeType, PipelineRun, RunNode};
use crate::model::pipeline::{NodePhase, Pipeline};

use super::drive::NodeStart;

/// Why a run cannot be retried (kfp 1.8 answers ABORTED, its
/// BadRequestError, in these words, then says which run it is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "Workflow must be Failed/Error to retry: workflow cannot be retried (run {run_id} is {phase})"
)]
pub struct RetryRefused {
    pub run_id: String,
    pub phase: &'static str,
}

impl PipelineRun {
    /// Retries the run at `now_ms`: the nodes to launch now.
    pub fn retry(
        &mut self,
        pipeline: &Pipeline,
        now_ms: i64,
    ) -> Result<Vec<NodeStart>, RetryRefused> {
        if !matches!(self.phase, NodePhase::Failed | NodePhase::Error) {
            return Err(RetryRefused {
                run_id: self.id.clone(),
                phase: self.phase.as_argo(),
            });
        }
        let again: Vec<String> = self
            .nodes
            .values()
            .filter(|n| n.phase != NodePhase::Succeeded && !is_skipped_by_when(n))
            .map(|n| n.id.clone())
            .collect();
        for id in again {
            let Some(node) = self.nodes.get(&id) else {
                continue;
            };
            if self.is_rebuilt_by_its_dag(node) {
                self.remove(&id);
            } else {
                reset(self.node_mut(&id), now_ms);
            }
        }
        self.phase = NodePhase::Running;
        self.message = None;
        self.finished_ms = None;
        self.terminated = false;
        Ok(self.advance(pipeline, now_ms))
    }

    /// Whether `node` never ran and is a dag's task: removing it lets the
    /// dag start the task anew.
    fn is_rebuilt_by_its_dag(&self, node: &RunNode) -> bool {
        let in_dag = node
            .parent
            .as_ref()
            .and_then(|p| self.nodes.get(p))
            .is_some_and(|p| p.node_type == NodeType::Dag);
        let never_ran = match node.node_type {
            NodeType::Skipped => true,
            NodeType::Pod => node.attempts == 0,
            NodeType::TaskGroup | NodeType::Dag => node.children.is_empty(),
        };
        in_dag && never_ran
    }

    /// Removes leaf node `id` and its place among its parent's children.
    fn remove(&mut self, id: &str) {
        let Some(node) = self.nodes.remove(id) else {
            return;
        };
        if let Some(parent) = node.parent.and_then(|p| self.nodes.get_mut(&p)) {
            parent.children.retain(|c| c != id);
        }
    }
}

/// A node skipped by its `when` (it let its dependents run: it stays).
fn is_skipped_by_when(node: &RunNode) -> bool {
    node.phase == NodePhase::Skipped
}

/// A node made to run again: a pod waits for its launch, a dag or group
/// for its children.
fn reset(node: &mut RunNode, now_ms: i64) {
    node.phase = match node.node_type {
        NodeType::Pod => NodePhase::Pending,
        _ => NodePhase::Running,
    };
    node.message = None;
    node.finished_ms = None;
    node.started_ms = Some(now_ms);
    node.job = None;
    node.retry_at_ms = None;
    node.attempts_before_retry = node.attempts;
}
