//! The driver: start a run, take a node's end, terminate; each returns the
//! container nodes the engine must launch now.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use serde_json::Value;

use super::{node_id, NodeType, PipelineRun, RunNode, MAX_OUTPUT_BYTES, NODE_ROOT};
use crate::model::pipeline::node_paths::InputSource;
use crate::model::pipeline::{
    container_launch, expand_loop, node_path, readiness, ArtifactRef, ArtifactSource,
    ContainerResources, NodeFailure, NodeLaunch, NodePhase, NodeScope, ParameterSource, Pipeline,
    Readiness, ResolveError, Task, Template, TemplateBody, WorkflowFacts,
};

/// Why a run cannot start.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriveError {
    /// A `steps` template: Drover's driver runs dags and containers.
    #[error("{path}.steps: steps templates are not run by Drover yet (kfp 1.8 compiles pipelines as dags)")]
    Steps { path: String },
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

impl DriveError {
    /// The manifest field it names, for INVALID_ARGUMENT.
    pub fn field(&self) -> Option<String> {
        match self {
            DriveError::Steps { path } => Some(format!("{path}.steps")),
            DriveError::Resolve(_) => None,
        }
    }
}

/// How a node's job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeOutcome {
    /// Exit 0, with the files it named ([`NodeStart::output_paths`]) that
    /// exist, by path.
    Succeeded { files: BTreeMap<String, Vec<u8>> },
    /// The command failed (non-zero exit, killed, deadline).
    Failed { message: String },
    /// Drover could not run it (lost agent, launch error).
    Error { message: String },
    /// It succeeded but its output files never reached the scheduler
    /// (they came with a status stored before a restart): it runs
    /// again, not counted as a retry.
    Lost,
}

/// A container node to launch as a Drover job.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeStart {
    pub node_id: String,
    /// The Drover job id to create (recorded with the node first).
    pub job: String,
    pub attempt: u32,
    pub launch: NodeLaunch,
    pub resources: ContainerResources,
    /// `activeDeadlineSeconds` of its template.
    pub deadline_seconds: Option<u64>,
    /// Input files to write before the command: path and content.
    pub input_contents: Vec<(String, Vec<u8>)>,
}

impl NodeStart {
    /// The files drover-executor reads back after exit 0 (paths relative
    /// to the sandbox).
    pub fn output_paths(&self) -> Vec<String> {
        self.launch
            .output_parameters
            .iter()
            .chain(&self.launch.output_artifacts)
            .map(|o| o.path.clone())
            .collect()
    }

    /// The `sh -c` script the node's task runs: make its directories,
    /// write its inputs, then exec its command (every word quoted).
    pub fn shell_script(&self) -> String {
        let mut script = String::from("set -e\n");
        for dir in self.launch.directories() {
            script.push_str(&format!("mkdir -p {}\n", quote(&dir)));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        for (path, content) in &self.input_contents {
            script.push_str(&format!(
                "printf '%s' {} | base64 -d > {}\n",
                quote(&b64.encode(content)),
                quote(path)
            ));
        }
        let argv: Vec<String> = self.launch.argv.iter().map(|a| quote(a)).collect();
        script.push_str(&format!("exec {}\n", argv.join(" ")));
        script
    }
}

/// `s` in single quotes for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The Drover job id of attempt `attempt` of node `node_id` of run
/// `run_id`.
pub fn job_id(run_id: &str, node_id: &str, attempt: u32) -> String {
    let suffix = node_id.rsplit('-').next().unwrap_or(node_id);
    format!("kfp-{run_id}-{suffix}-{attempt}")
}

impl PipelineRun {
    /// A new run of `pipeline` with `parameters` (resolved), and the
    /// nodes to launch first.
    pub fn start(
        pipeline: &Pipeline,
        id: &str,
        workflow_name: &str,
        parameters: BTreeMap<String, String>,
        now_ms: i64,
    ) -> Result<(PipelineRun, Vec<NodeStart>), DriveError> {
        if let Some(t) = pipeline
            .templates
            .iter()
            .find(|t| matches!(t.body, TemplateBody::Steps(_)))
        {
            return Err(DriveError::Steps {
                path: t.path.clone(),
            });
        }
        let inputs = crate::model::pipeline::entry_inputs(pipeline, &parameters)?;
        let mut run = PipelineRun {
            id: id.to_string(),
            workflow_name: workflow_name.to_string(),
            parameters,
            phase: NodePhase::Running,
            message: None,
            started_ms: now_ms,
            finished_ms: None,
            nodes: BTreeMap::new(),
            terminated: false,
        };
        let call = Call {
            parent: None,
            task: None,
            name: workflow_name.to_string(),
            display_name: workflow_name.to_string(),
            template: pipeline.entrypoint.clone(),
            inputs,
            item: None,
        };
        run.add_call(pipeline, call, now_ms);
        let starts = run.advance(pipeline, now_ms);
        Ok((run, starts))
    }

    /// Node job `job` ended with `outcome`: record it (a job that is not a
    /// node's current one is ignored, so a repeated status is harmless)
    /// and return the nodes to launch now.
    pub fn node_ended(
        &mut self,
        pipeline: &Pipeline,
        job: &str,
        outcome: NodeOutcome,
        now_ms: i64,
    ) -> Vec<NodeStart> {
        let Some(node) = self.node_of_job(job).cloned() else {
            return Vec::new();
        };
        if node.phase.is_terminal() {
            return Vec::new();
        }
        let template = pipeline.template(&node.template);
        if outcome == NodeOutcome::Lost {
            let n = self.node_mut(&node.id);
            n.job = None;
            n.phase = NodePhase::Pending;
            n.message = Some("its outputs were lost in a scheduler restart: run again".to_string());
            return self.advance(pipeline, now_ms);
        }
        let failure = match &outcome {
            NodeOutcome::Succeeded { files } => match template.map(|t| read_outputs(t, files)) {
                Some(Ok((outputs, artifacts))) => {
                    let n = self.node_mut(&node.id);
                    n.outputs = outputs;
                    n.artifacts = artifacts;
                    n.message = None;
                    finish(n, NodePhase::Succeeded, now_ms);
                    None
                }
                Some(Err(message)) => Some((NodeFailure::Error, message)),
                None => Some((NodeFailure::Error, "no such template".to_string())),
            },
            NodeOutcome::Failed { message } => Some((NodeFailure::Failed, message.clone())),
            NodeOutcome::Error { message } => Some((NodeFailure::Error, message.clone())),
            NodeOutcome::Lost => None,
        };
        if let Some((failure, message)) = failure {
            // Only the attempts since the last RetryRunV1 count.
            let retries_done = node
                .attempts
                .saturating_sub(1)
                .saturating_sub(node.attempts_before_retry);
            let since_start = now_ms.saturating_sub(node.started_ms.unwrap_or(now_ms));
            let retry_after = template.and_then(|t| t.retry.as_ref()).and_then(|r| {
                let retries = r.retries(failure, retries_done)
                    && !r.is_out_of_time(u64::try_from(since_start).unwrap_or(0));
                retries.then(|| r.backoff_ms(retries_done + 1))
            });
            let n = self.node_mut(&node.id);
            n.message = Some(message);
            n.job = None;
            if let (Some(wait_ms), false) = (retry_after, self.terminated) {
                let n = self.node_mut(&node.id);
                n.phase = NodePhase::Pending;
                n.retry_at_ms = (wait_ms > 0)
                    .then(|| now_ms.saturating_add(i64::try_from(wait_ms).unwrap_or(i64::MAX)));
            } else {
                let phase = match failure {
                    NodeFailure::Failed => NodePhase::Failed,
                    NodeFailure::Error => NodePhase::Error,
                };
                finish(self.node_mut(&node.id), phase, now_ms);
            }
        }
        self.advance(pipeline, now_ms)
    }

    /// Stops the run: no node starts any more, nodes not launched are
    /// `Omitted`; returns the jobs to kill (their ends come back through
    /// [`PipelineRun::node_ended`] as `Failed`).
    pub fn terminate(&mut self, pipeline: &Pipeline, now_ms: i64) -> Vec<String> {
        if self.is_done() {
            return Vec::new();
        }
        self.terminated = true;
        self.message = Some("Stopped with strategy 'Terminate'".to_string());
        let mut kill = Vec::new();
        for node in self.nodes.values_mut() {
            match (node.phase, &node.job) {
                (NodePhase::Pending, None) if node.node_type == NodeType::Pod => {
                    node.message = Some("terminated before it started".to_string());
                    finish(node, NodePhase::Omitted, now_ms);
                }
                (_, Some(job)) if !node.phase.is_terminal() => kill.push(job.clone()),
                _ => {}
            }
        }
        self.advance(pipeline, now_ms);
        kill
    }

    /// Launches the nodes whose retry backoff has passed by `now_ms`.
    pub fn launch_due(&mut self, pipeline: &Pipeline, now_ms: i64) -> Vec<NodeStart> {
        if self.is_done() {
            return Vec::new();
        }
        self.advance(pipeline, now_ms)
    }

    pub(super) fn node_mut(&mut self, id: &str) -> &mut RunNode {
        self.nodes
            .get_mut(id)
            .expect("the driver only names its own nodes")
    }

    /// Starts every task that may start, closes every dag and group that
    /// is done, and launches pending pods within the parallelism limits.
    pub(super) fn advance(&mut self, pipeline: &Pipeline, now_ms: i64) -> Vec<NodeStart> {
        let mut starts = Vec::new();
        loop {
            self.settle(pipeline, now_ms);
            if self.terminated {
                return starts;
            }
            let (launched, errored) = self.launch_pending(pipeline, now_ms);
            starts.extend(launched);
            // A node that could not launch may close its dag.
            if !errored {
                return starts;
            }
        }
    }

    /// Starts ready tasks and closes done dags until nothing changes,
    /// then sets the run's phase from its root's.
    fn settle(&mut self, pipeline: &Pipeline, now_ms: i64) {
        loop {
            let mut changed = false;
            let open: Vec<String> = self
                .nodes
                .values()
                .filter(|n| !n.phase.is_terminal() && n.node_type == NodeType::Dag)
                .map(|n| n.id.clone())
                .collect();
            for dag in &open {
                changed |= self.start_ready_tasks(pipeline, dag, now_ms);
            }
            let closing: Vec<String> = self
                .nodes
                .values()
                .filter(|n| {
                    !n.phase.is_terminal()
                        && matches!(n.node_type, NodeType::Dag | NodeType::TaskGroup)
                })
                .map(|n| n.id.clone())
                .collect();
            for id in &closing {
                changed |= self.close_if_done(pipeline, id, now_ms);
            }
            if !changed {
                break;
            }
        }
        if let Some(root) = self.root() {
            if root.phase.is_terminal() && !self.phase.is_terminal() {
                let phase = match (root.phase, self.terminated) {
                    (NodePhase::Succeeded | NodePhase::Skipped, false) => NodePhase::Succeeded,
                    (NodePhase::Error, _) => NodePhase::Error,
                    _ => NodePhase::Failed,
                };
                if self.message.is_none() {
                    self.message = root.message.clone();
                }
                self.phase = phase;
                self.finished_ms = Some(now_ms);
            }
        }
    }

    /// The outputs of `dag`'s children, by task name (a loop's group
    /// gives each output as the JSON list of its items' values, as Argo).
    fn sibling_outputs(&self, dag: &str) -> BTreeMap<String, BTreeMap<String, String>> {
        let mut outputs = BTreeMap::new();
        for child in self.nodes[dag]
            .children
            .iter()
            .filter_map(|c| self.nodes.get(c))
        {
            if let Some(task) = &child.task {
                outputs.insert(task.clone(), child.outputs.clone());
            }
        }
        outputs
    }

    fn child_of_task(&self, dag: &str, task: &str) -> Option<&RunNode> {
        self.nodes[dag]
            .children
            .iter()
            .filter_map(|c| self.nodes.get(c))
            .find(|n| n.task.as_deref() == Some(task))
    }

    fn start_ready_tasks(&mut self, pipeline: &Pipeline, dag_id: &str, now_ms: i64) -> bool {
        if self.terminated {
            return false;
        }
        let dag_node = self.nodes[dag_id].clone();
        let Some(TemplateBody::Dag(dag)) = pipeline.template(&dag_node.template).map(|t| &t.body)
        else {
            return false;
        };
        // Each task's node so far, by task name, from one pass over the
        // dag's children: a fan-in task may wait for a thousand, and this
        // runs after every node's end.
        let mut started: HashMap<String, NodePhase> = dag_node
            .children
            .iter()
            .filter_map(|c| self.nodes.get(c))
            .filter_map(|n| Some((n.task.clone()?, n.phase)))
            .collect();
        let mut changed = false;
        for task in &dag.tasks {
            if started.contains_key(&task.name) {
                continue;
            }
            let phases: Vec<NodePhase> = task
                .dependencies
                .iter()
                .map(|d| started.get(d).copied().unwrap_or(NodePhase::Pending))
                .collect();
            let name = format!("{}.{}", dag_node.name, task.name);
            match readiness(phases) {
                Readiness::Wait => continue,
                Readiness::Omit => {
                    let call = self.plain_call(&dag_node, task, name, None, BTreeMap::new());
                    self.add_ended(call, NodeType::Skipped, NodePhase::Omitted, None, now_ms);
                }
                Readiness::Ready => self.start_task(pipeline, &dag_node, task, name, now_ms),
            }
            if let Some(node) = self.child_of_task(dag_id, &task.name) {
                started.insert(task.name.clone(), node.phase);
            }
            changed = true;
        }
        changed
    }

    fn plain_call(
        &self,
        dag_node: &RunNode,
        task: &Task,
        name: String,
        item: Option<(String, Value)>,
        inputs: BTreeMap<String, String>,
    ) -> Call {
        let (display_name, item) = match item {
            Some((display, value)) => (display, Some(value)),
            None => (task.name.clone(), None),
        };
        Call {
            parent: Some(dag_node.id.clone()),
            task: Some(task.name.clone()),
            name,
            display_name,
            template: task.template.clone(),
            inputs,
            item,
        }
    }

    fn start_task(
        &mut self,
        pipeline: &Pipeline,
        dag_node: &RunNode,
        task: &Task,
        name: String,
        now_ms: i64,
    ) {
        let facts = self.facts();
        let outputs = self.sibling_outputs(&dag_node.id);
        let scope = NodeScope {
            workflow: &facts,
            inputs: &dag_node.inputs,
            outputs: &outputs,
            item: None,
            pod_name: None,
        };
        let Some(looped) = &task.loop_over else {
            let call = self.plain_call(dag_node, task, name, None, BTreeMap::new());
            self.start_item(pipeline, call, task, &scope, now_ms);
            return;
        };
        let group = self.plain_call(dag_node, task, name.clone(), None, BTreeMap::new());
        let items = match expand_loop(&task.name, looped, &scope) {
            Ok(items) => items,
            Err(e) => {
                self.add_ended(
                    group,
                    NodeType::TaskGroup,
                    NodePhase::Error,
                    Some(e.to_string()),
                    now_ms,
                );
                return;
            }
        };
        if items.is_empty() {
            let message = Some("the loop's list is empty".to_string());
            self.add_ended(
                group,
                NodeType::Skipped,
                NodePhase::Skipped,
                message,
                now_ms,
            );
            return;
        }
        let group_id = self.add_node(group, NodeType::TaskGroup, NodePhase::Running, now_ms);
        let group_node = self.nodes[&group_id].clone();
        for item in items {
            let item_scope = NodeScope {
                item: Some(&item.item),
                ..scope
            };
            let child_name = format!("{}.{}", dag_node.name, item.node_name);
            let mut call = self.plain_call(
                dag_node,
                task,
                child_name,
                Some((item.node_name.clone(), item.item.clone())),
                BTreeMap::new(),
            );
            call.parent = Some(group_node.id.clone());
            self.start_item(pipeline, call, task, &item_scope, now_ms);
        }
    }

    /// One call of `task`'s template (a loop item, or the task itself):
    /// its `when`, its inputs, then its node.
    fn start_item(
        &mut self,
        pipeline: &Pipeline,
        mut call: Call,
        task: &Task,
        scope: &NodeScope<'_>,
        now_ms: i64,
    ) {
        if let Some(when) = &task.when {
            match when.evaluate(scope) {
                Ok(true) => {}
                Ok(false) => {
                    let message = Some(format!("when '{}' evaluated false", when.source));
                    self.add_ended(call, NodeType::Skipped, NodePhase::Skipped, message, now_ms);
                    return;
                }
                Err(e) => {
                    self.add_ended(
                        call,
                        NodeType::Skipped,
                        NodePhase::Error,
                        Some(e.to_string()),
                        now_ms,
                    );
                    return;
                }
            }
        }
        match call_inputs(pipeline, task, scope) {
            Ok(inputs) => {
                call.inputs = inputs;
                self.add_call(pipeline, call, now_ms);
            }
            Err(e) => self.add_ended(
                call,
                NodeType::Pod,
                NodePhase::Error,
                Some(e.to_string()),
                now_ms,
            ),
        }
    }

    /// Adds the node of a call by its template: a pod waits for launch, a
    /// dag runs.
    fn add_call(&mut self, pipeline: &Pipeline, call: Call, now_ms: i64) {
        match pipeline.template(&call.template).map(|t| &t.body) {
            Some(TemplateBody::Container(_)) => {
                self.add_node(call, NodeType::Pod, NodePhase::Pending, now_ms);
            }
            Some(TemplateBody::Dag(_)) => {
                self.add_node(call, NodeType::Dag, NodePhase::Running, now_ms);
            }
            _ => {
                let message = Some(format!("template {} is not run by Drover", call.template));
                self.add_ended(call, NodeType::Pod, NodePhase::Error, message, now_ms);
            }
        }
    }

    fn add_ended(
        &mut self,
        call: Call,
        node_type: NodeType,
        phase: NodePhase,
        message: Option<String>,
        now_ms: i64,
    ) {
        let id = self.add_node(call, node_type, phase, now_ms);
        let node = self.node_mut(&id);
        node.message = message;
        finish(node, phase, now_ms);
    }

    fn add_node(
        &mut self,
        call: Call,
        node_type: NodeType,
        phase: NodePhase,
        now_ms: i64,
    ) -> String {
        let id = node_id(&self.workflow_name, &call.name);
        if let Some(parent) = call.parent.as_ref().and_then(|p| self.nodes.get_mut(p)) {
            parent.children.push(id.clone());
        }
        self.nodes.insert(
            id.clone(),
            RunNode {
                id: id.clone(),
                name: call.name,
                display_name: call.display_name,
                template: call.template,
                node_type,
                phase,
                message: None,
                parent: call.parent,
                children: Vec::new(),
                task: call.task,
                inputs: call.inputs,
                item: call.item,
                outputs: BTreeMap::new(),
                artifacts: BTreeMap::new(),
                started_ms: Some(now_ms),
                finished_ms: None,
                attempts: 0,
                job: None,
                retry_at_ms: None,
                attempts_before_retry: 0,
            },
        );
        id
    }

    /// Closes a dag or loop group whose children are all done.
    fn close_if_done(&mut self, pipeline: &Pipeline, id: &str, now_ms: i64) -> bool {
        let node = &self.nodes[id];
        let children: Vec<&RunNode> = node
            .children
            .iter()
            .filter_map(|c| self.nodes.get(c))
            .collect();
        if children.iter().any(|c| !c.phase.is_terminal()) {
            return false;
        }
        let template = pipeline.template(&node.template);
        if node.node_type == NodeType::Dag && !self.terminated {
            let all_tasks = match template.map(|t| &t.body) {
                Some(TemplateBody::Dag(dag)) => dag.tasks.len(),
                _ => 0,
            };
            if children.len() < all_tasks {
                return false;
            }
        }
        let phase = if children.iter().any(|c| c.phase == NodePhase::Error) {
            NodePhase::Error
        } else if self.terminated
            || children
                .iter()
                .any(|c| matches!(c.phase, NodePhase::Failed | NodePhase::Omitted))
        {
            NodePhase::Failed
        } else {
            NodePhase::Succeeded
        };
        let message = children
            .iter()
            .find(|c| !c.phase.lets_dependents_run())
            .map(|c| format!("child '{}' {}", c.display_name, c.phase.as_argo()));
        let outputs = match node.node_type {
            NodeType::TaskGroup => group_outputs(&children),
            _ => self.dag_outputs(template, id),
        };
        let node = self.node_mut(id);
        node.outputs = outputs;
        if phase != NodePhase::Succeeded {
            node.message = message;
        }
        finish(node, phase, now_ms);
        true
    }

    /// A dag's `outputs.parameters` taken from its tasks.
    fn dag_outputs(&self, template: Option<&Template>, id: &str) -> BTreeMap<String, String> {
        let Some(template) = template else {
            return BTreeMap::new();
        };
        let facts = self.facts();
        let outputs = self.sibling_outputs(id);
        let scope = NodeScope {
            workflow: &facts,
            inputs: &self.nodes[id].inputs,
            outputs: &outputs,
            item: None,
            pod_name: None,
        };
        template
            .outputs
            .parameters
            .iter()
            .filter_map(|p| match &p.source {
                ParameterSource::Parameter(text) => {
                    text.render(&scope).ok().map(|v| (p.name.clone(), v))
                }
                ParameterSource::File(_) => None,
            })
            .collect()
    }

    fn facts(&self) -> WorkflowFacts {
        WorkflowFacts {
            name: self.workflow_name.clone(),
            uid: self.id.clone(),
            namespace: "drover".to_string(),
            parameters: self.parameters.clone(),
        }
    }

    /// Launches pending pods while the run's and their dag's parallelism
    /// leave room, in node-name order.
    fn launch_pending(&mut self, pipeline: &Pipeline, now_ms: i64) -> (Vec<NodeStart>, bool) {
        let mut pending: Vec<(String, String)> = self
            .nodes
            .values()
            .filter(|n| {
                n.node_type == NodeType::Pod
                    && n.phase == NodePhase::Pending
                    && n.job.is_none()
                    && n.retry_at_ms.is_none_or(|at| at <= now_ms)
            })
            .map(|n| (n.name.clone(), n.id.clone()))
            .collect();
        pending.sort();
        let mut starts = Vec::new();
        let mut errored = false;
        for (_, id) in pending {
            if !self.has_room(pipeline, &id) {
                continue;
            }
            match self.launch(pipeline, &id) {
                Ok(start) => {
                    let node = self.node_mut(&id);
                    node.phase = NodePhase::Running;
                    node.attempts = start.attempt;
                    node.job = Some(start.job.clone());
                    node.retry_at_ms = None;
                    starts.push(start);
                }
                Err(message) => {
                    let node = self.node_mut(&id);
                    node.message = Some(message);
                    finish(node, NodePhase::Error, now_ms);
                    errored = true;
                }
            }
        }
        (starts, errored)
    }

    fn running_pods<'a>(&'a self, among: impl Iterator<Item = &'a String>) -> usize {
        among
            .filter_map(|id| self.nodes.get(id))
            .filter(|n| n.node_type == NodeType::Pod && n.phase == NodePhase::Running)
            .count()
    }

    fn has_room(&self, pipeline: &Pipeline, id: &str) -> bool {
        let limit = |p: Option<u32>| p.filter(|&n| n > 0).map(|n| n as usize);
        if let Some(max) = limit(pipeline.parallelism) {
            if self.running_pods(self.nodes.keys()) >= max {
                return false;
            }
        }
        let Some(parent) = self.nodes[id]
            .parent
            .as_ref()
            .and_then(|p| self.nodes.get(p))
        else {
            return true;
        };
        let dag = match parent.node_type {
            NodeType::TaskGroup => parent.parent.as_ref().and_then(|p| self.nodes.get(p)),
            _ => Some(parent),
        };
        let max = dag
            .and_then(|d| pipeline.template(&d.template))
            .and_then(|t| limit(t.parallelism));
        max.is_none_or(|max| self.running_pods(parent.children.iter()) < max)
    }

    /// The launch of pod node `id`'s next attempt.
    fn launch(&self, pipeline: &Pipeline, id: &str) -> Result<NodeStart, String> {
        let node = &self.nodes[id];
        let template = pipeline
            .template(&node.template)
            .ok_or_else(|| format!("no template {}", node.template))?;
        let container = template.container().ok_or("not a container template")?;
        let (call_artifacts, dag) = self.call_artifacts(pipeline, node);
        let facts = self.facts();
        let empty = BTreeMap::new();
        let scope = NodeScope {
            workflow: &facts,
            inputs: &node.inputs,
            outputs: &empty,
            item: node.item.as_ref(),
            pod_name: Some(&node.id),
        };
        let launch = container_launch(template, &call_artifacts, &scope, NODE_ROOT)
            .ok_or("not a container template")?
            .map_err(|e| e.to_string())?;
        let mut input_contents = Vec::new();
        for input in &launch.input_files {
            let content = match &input.source {
                InputSource::Content(text) => Some(text.clone().into_bytes()),
                InputSource::Artifact(r) => self.artifact(dag.as_deref(), r)?,
            };
            match content {
                Some(bytes) => input_contents.push((input.path.clone(), bytes)),
                None if input.optional => {}
                None => return Err(format!("input artifact {} has no source", input.name)),
            }
        }
        let attempt = node.attempts + 1;
        Ok(NodeStart {
            node_id: node.id.clone(),
            job: job_id(&self.id, &node.id, attempt),
            attempt,
            launch,
            resources: container.resources,
            deadline_seconds: template.active_deadline_seconds,
            input_contents,
        })
    }

    /// The task's `arguments.artifacts` and the dag node it runs in.
    fn call_artifacts(
        &self,
        pipeline: &Pipeline,
        node: &RunNode,
    ) -> (
        Vec<crate::model::pipeline::ArgumentArtifact>,
        Option<String>,
    ) {
        let mut dag_id = node.parent.clone();
        if let Some(parent) = dag_id.as_ref().and_then(|p| self.nodes.get(p)) {
            if parent.node_type == NodeType::TaskGroup {
                dag_id = parent.parent.clone();
            }
        }
        let artifacts = dag_id
            .as_ref()
            .and_then(|d| self.nodes.get(d))
            .and_then(|d| pipeline.template(&d.template))
            .and_then(|t| match &t.body {
                TemplateBody::Dag(dag) => node.task.as_ref().and_then(|task| dag.task(task)),
                _ => None,
            })
            .map(|task| task.artifacts.clone())
            .unwrap_or_default();
        (artifacts, dag_id)
    }

    /// The content of the artifact `r` names, from a sibling in `dag`.
    fn artifact(&self, dag: Option<&str>, r: &ArtifactRef) -> Result<Option<Vec<u8>>, String> {
        let ArtifactRef::TaskOutput { task, artifact } = r else {
            return Err(format!("artifact {r:?} is not passed by Drover yet"));
        };
        let Some(producer) = dag.and_then(|d| self.child_of_task(d, task)) else {
            return Ok(None);
        };
        match producer.artifacts.get(artifact) {
            Some(b64) => base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map(Some)
                .map_err(|e| format!("artifact {artifact}: {e}")),
            None => Ok(None),
        }
    }
}

/// A call of a template, before its node exists.
struct Call {
    parent: Option<String>,
    task: Option<String>,
    name: String,
    display_name: String,
    template: String,
    inputs: BTreeMap<String, String>,
    item: Option<Value>,
}

fn finish(node: &mut RunNode, phase: NodePhase, now_ms: i64) {
    node.phase = phase;
    node.finished_ms = Some(now_ms);
}

/// The callee's inputs: the task's arguments rendered in the dag's scope,
/// then the callee's defaults.
fn call_inputs(
    pipeline: &Pipeline,
    task: &Task,
    scope: &NodeScope<'_>,
) -> Result<BTreeMap<String, String>, ResolveError> {
    let mut inputs = BTreeMap::new();
    for argument in &task.parameters {
        inputs.insert(argument.name.clone(), argument.value.render(scope)?);
    }
    if let Some(template) = pipeline.template(&task.template) {
        for input in &template.inputs.parameters {
            if !inputs.contains_key(&input.name) {
                let value = input
                    .default
                    .clone()
                    .ok_or_else(|| ResolveError::Unresolved {
                        variable: format!("inputs.parameters.{}", input.name),
                    })?;
                inputs.insert(input.name.clone(), value);
            }
        }
    }
    Ok(inputs)
}

/// Output parameters and artifacts from the files a succeeded node left.
type Read = (BTreeMap<String, String>, BTreeMap<String, String>);

fn read_outputs(template: &Template, files: &BTreeMap<String, Vec<u8>>) -> Result<Read, String> {
    let file = |compiled: &str| -> Result<Option<&Vec<u8>>, String> {
        let path = node_path(NODE_ROOT, compiled);
        match files.get(&path) {
            Some(bytes) if bytes.len() > MAX_OUTPUT_BYTES => Err(format!(
                "{compiled} is {} bytes; Drover keeps outputs up to {MAX_OUTPUT_BYTES}",
                bytes.len()
            )),
            found => Ok(found),
        }
    };
    let mut parameters = BTreeMap::new();
    for p in &template.outputs.parameters {
        let ParameterSource::File(compiled) = &p.source else {
            continue;
        };
        let value = match (file(compiled)?, &p.default) {
            (Some(bytes), _) => String::from_utf8_lossy(bytes).into_owned(),
            (None, Some(default)) => default.clone(),
            (None, None) => {
                return Err(format!(
                    "output parameter {}: the command wrote no {compiled}",
                    p.name
                ))
            }
        };
        parameters.insert(p.name.clone(), value);
    }
    let mut artifacts = BTreeMap::new();
    for a in &template.outputs.artifacts {
        let ArtifactSource::File(compiled) = &a.source else {
            continue;
        };
        match file(compiled)? {
            Some(bytes) => {
                artifacts.insert(
                    a.name.clone(),
                    base64::engine::general_purpose::STANDARD.encode(bytes),
                );
            }
            None if a.optional => {}
            None => {
                return Err(format!(
                    "output artifact {}: the command wrote no {compiled}",
                    a.name
                ))
            }
        }
    }
    Ok((parameters, artifacts))
}

/// A loop group's outputs: each name's values, in item order, as a JSON
/// list.
fn group_outputs(children: &[&RunNode]) -> BTreeMap<String, String> {
    let mut lists: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for child in children {
        for (name, value) in &child.outputs {
            let parsed =
                serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.clone()));
            lists.entry(name.clone()).or_default().push(parsed);
        }
    }
    lists
        .into_iter()
        .map(|(name, values)| (name, Value::Array(values).to_string()))
        .collect()
}
