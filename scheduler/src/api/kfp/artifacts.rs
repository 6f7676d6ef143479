//! `ReadArtifactV1` as Kubeflow answers it, the pure part: where a node's
//! output artifact is (the node's Drover job and the file's path in its
//! sandbox, from the compiled `outputs.artifacts[].path`), and the answer's
//! bytes: a gzipped tar holding exactly that one file, named by its base
//! name, as Argo archives an artifact and Kubeflow returns it unchanged.
//!
//! Kubeflow finds the artifact in the run's workflow status
//! (`status.nodes[node_id].outputs.artifacts[name]`); one not there is
//! NOT_FOUND naming `runs/<run>/nodes/<node>/artifacts/<name>`. Drover's
//! workflow status lists the artifacts a node left when it succeeded
//! (`RunNode::artifacts`), so the same rule holds here.

use std::io::Write as _;

use crate::model::pipeline::{node_path, ArtifactSource, Pipeline};
use crate::model::pipeline_run::{RunRecord, NODE_ROOT};

/// Where one node's artifact is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactLocation {
    /// The Drover job of the node's attempt that wrote it (its pod is
    /// instance 0).
    pub job: String,
    /// The file's path relative to the task's sandbox.
    pub sandbox_path: String,
    /// The name of the one entry of the tar (the file's base name).
    pub file_name: String,
}

/// What is missing, as Kubeflow's NOT_FOUND says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("artifact runs/{run}/nodes/{node}/artifacts/{artifact} not found: {why}")]
pub struct ArtifactNotFound {
    pub run: String,
    pub node: String,
    pub artifact: String,
    /// Which part is missing.
    pub why: String,
}

/// The location of `artifact` of node `node_id` of `record` (whose
/// manifest parsed as `pipeline`).
pub fn locate(
    record: &RunRecord,
    pipeline: &Pipeline,
    node_id: &str,
    artifact: &str,
) -> Result<ArtifactLocation, ArtifactNotFound> {
    let missing = |why: String| ArtifactNotFound {
        run: record.id().to_string(),
        node: node_id.to_string(),
        artifact: artifact.to_string(),
        why,
    };
    let node = record
        .run
        .nodes
        .get(node_id)
        .ok_or_else(|| missing(format!("the run has no node {node_id}")))?;
    if !node.artifacts.contains_key(artifact) {
        let left: Vec<&str> = node.artifacts.keys().map(String::as_str).collect();
        return Err(missing(if left.is_empty() {
            format!(
                "node {} ({}) left no artifacts",
                node.display_name,
                node.phase.as_argo()
            )
        } else {
            format!("node {} left only {}", node.display_name, left.join(", "))
        }));
    }
    let job = node
        .job
        .clone()
        .ok_or_else(|| missing(format!("node {} ran no task", node.display_name)))?;
    let compiled = pipeline
        .template(&node.template)
        .and_then(|t| t.outputs.artifacts.iter().find(|a| a.name == artifact))
        .and_then(|a| match &a.source {
            ArtifactSource::File(path) => Some(path.clone()),
            _ => None,
        })
        .ok_or_else(|| missing(format!("template {} writes no file for it", node.template)))?;
    let path = node_path(NODE_ROOT, &compiled);
    let sandbox_path = path
        .trim_start_matches("./")
        .trim_start_matches('/')
        .to_string();
    let file_name = sandbox_path
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or(artifact)
        .to_string();
    Ok(ArtifactLocation {
        job,
        sandbox_path,
        file_name,
    })
}

/// A gzipped tar of one file `name` holding `content` (mode 0644,
/// modified at `mtime_s`).
pub fn single_file_tgz(name: &str, content: &[u8], mtime_s: u64) -> std::io::Result<Vec<u8>> {
    let gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gzip);
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(mtime_s);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, name, content)?;
    let mut gzip = tar.into_inner()?;
    gzip.flush()?;
    gzip.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::pipeline::{parse_workflow, resolve_parameters};
    use crate::model::pipeline_run::{NodeOutcome, PipelineRun};
    use std::collections::BTreeMap;
    use std::io::Read as _;

    const PRODUCER: &str = r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
      "metadata": {"generateName": "p-"},
      "spec": {"entrypoint": "p", "templates": [
        {"name": "p", "dag": {"tasks": [{"name": "make", "template": "make"}]}},
        {"name": "make", "container": {"image": "alpine", "command": ["sh", "-c", "true"]},
         "outputs": {"artifacts": [{"name": "make-report", "path": "/tmp/outputs/report/data"}]}}]}}"#;

    fn record(succeed: bool) -> (RunRecord, Pipeline) {
        let pipeline = parse_workflow(PRODUCER).unwrap();
        let params = resolve_parameters(&pipeline, &[]).unwrap();
        let (mut run, starts) = PipelineRun::start(&pipeline, "r1", "p-r1", params, 1).unwrap();
        if succeed {
            let files = BTreeMap::from([(
                node_path(NODE_ROOT, "/tmp/outputs/report/data"),
                b"hello".to_vec(),
            )]);
            run.node_ended(
                &pipeline,
                &starts[0].job,
                NodeOutcome::Succeeded { files },
                2,
            );
        }
        let record = RunRecord {
            name: "r".into(),
            description: String::new(),
            manifest: PRODUCER.into(),
            overrides: Vec::new(),
            experiment_id: None,
            storage_state: "STORAGESTATE_AVAILABLE".into(),
            created_ms: 1,
            run,
            metrics: Vec::new(),
            owner: String::new(),
        };
        (record, pipeline)
    }

    fn make_node(record: &RunRecord) -> String {
        record
            .run
            .nodes
            .values()
            .find(|n| n.display_name == "make")
            .unwrap()
            .id
            .clone()
    }

    #[test]
    fn an_artifact_a_node_left_is_its_file_in_the_sandbox_of_its_job() {
        let (record, pipeline) = record(true);
        let node = make_node(&record);
        let found = locate(&record, &pipeline, &node, "make-report").unwrap();
        assert_eq!(found.sandbox_path, "tmp/outputs/report/data");
        assert_eq!(found.file_name, "data");
        assert_eq!(Some(&found.job), record.run.nodes[&node].job.as_ref());
    }

    #[test]
    fn what_is_missing_is_named() {
        let (record, pipeline) = record(true);
        let node = make_node(&record);
        let e = locate(&record, &pipeline, "p-r1-1", "make-report").unwrap_err();
        assert!(e.to_string().contains("no node p-r1-1"), "{e}");
        let e = locate(&record, &pipeline, &node, "other").unwrap_err();
        assert!(e.to_string().contains("left only make-report"), "{e}");
        assert!(e
            .to_string()
            .starts_with(&format!("artifact runs/r1/nodes/{node}/artifacts/other")));
        let (running, pipeline) = super::tests::record(false);
        let e = locate(&running, &pipeline, &make_node(&running), "make-report").unwrap_err();
        assert!(e.to_string().contains("(Running) left no artifacts"), "{e}");
    }

    #[test]
    fn the_answer_is_a_gzipped_tar_of_exactly_the_one_file() {
        let tgz = single_file_tgz("data", b"hello report\n", 1_700_000_000).unwrap();
        assert_eq!(&tgz[..2], &[0x1f, 0x8b], "gzip magic");
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&tgz[..]));
        let mut entries = archive.entries().unwrap();
        let mut entry = entries.next().unwrap().unwrap();
        assert_eq!(entry.path().unwrap().to_str(), Some("data"));
        let mut content = String::new();
        entry.read_to_string(&mut content).unwrap();
        assert_eq!(content, "hello report\n");
        drop(entry);
        assert!(entries.next().is_none(), "one file only");
    }
}
