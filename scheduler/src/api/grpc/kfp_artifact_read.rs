//! `ReadArtifactV1`'s I/O: the node's artifact file read from its task's
//! sandbox through the agent's files API (`/files/download`, the agent
//! found in the leading master's state as for BrowsePodSandbox), answered
//! as Kubeflow answers it, a gzipped tar of exactly that file
//! ([`crate::api::kfp::artifacts`]). When the sandbox cannot be read (the
//! agent or the master gone, the sandbox cleaned up), the copy the run
//! kept of the file when its node succeeded is answered instead: an
//! artifact stays readable as Kubeflow's object store keeps it. Else
//! NOT_FOUND names what is missing (the node, the artifact, the task's
//! run, the agent or the file); UNAVAILABLE when the master or the agent
//! cannot be reached.

use tonic::Status;

use crate::api::kfp::artifacts::{locate, single_file_tgz, ArtifactLocation};
use crate::api::AppState;
use crate::mesos::agent_files::{self, SandboxError};
use crate::model::ids::{InstanceId, JobId};
use crate::model::pipeline::parse_workflow;
use crate::model::pipeline_run::RunRecord;

/// The gzipped tar of `artifact` of node `node_id` of `record`.
pub async fn read_artifact(
    state: &AppState,
    record: &RunRecord,
    node_id: &str,
    artifact: &str,
) -> Result<Vec<u8>, Status> {
    let pipeline = parse_workflow(&record.manifest).map_err(|e| {
        Status::internal(format!(
            "run {}: its stored manifest no longer parses: {e}",
            record.id()
        ))
    })?;
    let location = locate(record, &pipeline, node_id, artifact)
        .map_err(|e| Status::not_found(e.to_string()))?;
    let content = match from_sandbox(state, node_id, artifact, &location).await {
        Ok(content) => content,
        Err(status) => kept_copy(record, node_id, artifact).ok_or(status)?,
    };
    let finished_s = record
        .run
        .nodes
        .get(node_id)
        .and_then(|n| n.finished_ms)
        .map_or(0, |ms| u64::try_from(ms / 1000).unwrap_or(0));
    single_file_tgz(&location.file_name, &content, finished_s).map_err(|e| {
        Status::internal(format!(
            "artifact {artifact} of node {node_id}: cannot archive it: {e}"
        ))
    })
}

/// The copy of the artifact the run kept when its node succeeded.
fn kept_copy(record: &RunRecord, node_id: &str, artifact: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let kept = record.run.nodes.get(node_id)?.artifacts.get(artifact)?;
    base64::engine::general_purpose::STANDARD.decode(kept).ok()
}

/// The artifact's file as its node's sandbox holds it now.
async fn from_sandbox(
    state: &AppState,
    node_id: &str,
    artifact: &str,
    location: &ArtifactLocation,
) -> Result<Vec<u8>, Status> {
    let pod = InstanceId {
        job: JobId(location.job.clone()),
        instance: 0,
    };
    let lookup = pod.clone();
    let (runs, framework) = state
        .read(move |s| Ok((s.instance_runs(&lookup)?, s.framework_id()?)))
        .await?;
    let what = format!(
        "artifact {artifact} of node {node_id} ({} in the sandbox of job {})",
        location.sandbox_path, location.job
    );
    let (run, agent) = runs
        .iter()
        .rev()
        .find_map(|r| r.run.agent.clone().map(|a| (r, a)))
        .ok_or_else(|| Status::not_found(format!("{what}: the job never ran on an agent")))?;
    let framework =
        framework.ok_or_else(|| Status::unavailable("the scheduler has no framework id yet"))?;
    let executor = run.task_id.to_string();
    agent_files::download_sandbox_file(
        &state.masters,
        agent.as_str(),
        &framework,
        &executor,
        &location.sandbox_path,
    )
    .await
    .map(|bytes| bytes.to_vec())
    .map_err(|e| match e {
        SandboxError::UnknownAgent(_) | SandboxError::NoSandbox { .. } => {
            Status::not_found(format!("{what}: {e}"))
        }
        SandboxError::NoMaster(_) | SandboxError::Agent { .. } => {
            Status::unavailable(format!("{what}: {e}"))
        }
    })
}
