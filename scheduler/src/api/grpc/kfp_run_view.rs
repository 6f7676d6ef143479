//! Kubeflow v1beta1 run messages from Drover's pipeline runs, and the
//! run's `pipeline_runtime.workflow_manifest`: the Argo Workflow as
//! submitted, with a `status` as Argo's controller writes it (phase,
//! times, message and `nodes` keyed by node id, each with `id`, `name`,
//! `displayName`, `type`, `templateName`, `phase`, `startedAt`,
//! `finishedAt`, `outputs.parameters` and `children`), which is what the
//! Kubeflow UI and `kfp.Client` read. Pure.

use drover_seed_api::kfp::{
    run, PipelineRuntime, PipelineSpec, ResourceKey, ResourceReference, ResourceType, Run,
    RunDetail,
};
use serde_json::{json, Map, Value};

use crate::api::kfp::list::RunListing;
use crate::model::pipeline::ImageUse;
use crate::model::pipeline_run::{PipelineRun, RunNode, RunRecord};

/// The `Run` message of `record`.
pub fn run_message(record: &RunRecord) -> Run {
    let storage_state = if record.storage_state == "STORAGESTATE_ARCHIVED" {
        run::StorageState::StoragestateArchived
    } else {
        run::StorageState::StoragestateAvailable
    };
    Run {
        id: record.id().to_string(),
        name: record.name.clone(),
        storage_state: storage_state as i32,
        description: record.description.clone(),
        pipeline_spec: Some(PipelineSpec {
            workflow_manifest: record.manifest.clone(),
            parameters: record
                .overrides
                .iter()
                .map(|(name, value)| drover_seed_api::kfp::Parameter {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
            ..Default::default()
        }),
        resource_references: record
            .experiment_id
            .iter()
            .map(|id| ResourceReference {
                key: Some(ResourceKey {
                    r#type: ResourceType::Experiment as i32,
                    id: id.clone(),
                }),
                relationship: drover_seed_api::kfp::Relationship::Owner as i32,
                ..Default::default()
            })
            .collect(),
        created_at: Some(timestamp(record.created_ms)),
        scheduled_at: Some(timestamp(record.run.started_ms)),
        finished_at: record.run.finished_ms.map(timestamp),
        status: record.run.phase.as_argo().to_string(),
        error: record.run.message.clone().unwrap_or_default(),
        metrics: record
            .metrics
            .iter()
            .map(super::kfp_metrics_view::metric_message)
            .collect(),
        ..Default::default()
    }
}

/// What Kubeflow's list rules ([`crate::api::kfp::list`]) read of
/// `record`: the same fields [`run_message`] shows.
pub fn run_listing(record: &RunRecord) -> RunListing {
    RunListing {
        id: record.id().to_string(),
        name: record.name.clone(),
        description: record.description.clone(),
        created_at_ms: record.created_ms,
        scheduled_at_ms: record.run.started_ms,
        archived: record.storage_state == "STORAGESTATE_ARCHIVED",
        status: record.run.phase.as_argo().to_string(),
        experiment_id: record.experiment_id.clone().unwrap_or_default(),
    }
}

/// The `RunDetail` of `record`; `images`: whether its steps ran in their
/// images (the scheduler's `--kfp-images`).
pub fn run_detail(record: &RunRecord, images: ImageUse) -> RunDetail {
    RunDetail {
        run: Some(run_message(record)),
        pipeline_runtime: Some(PipelineRuntime {
            workflow_manifest: workflow_manifest(record, images).to_string(),
            ..Default::default()
        }),
    }
}

/// The Argo Workflow of the run: the manifest as sent (JSON or YAML),
/// named as the run's workflow, with its status. With steps on hosts
/// (`images` [`ImageUse::Host`]) the status says their images were not
/// used, in Argo's own condition for what a spec asked that was not done.
pub fn workflow_manifest(record: &RunRecord, images: ImageUse) -> Value {
    let mut workflow: Value = serde_yaml::from_str(&record.manifest).unwrap_or(json!({}));
    if !workflow.is_object() {
        workflow = json!({});
    }
    let run = &record.run;
    workflow["metadata"]["name"] = json!(run.workflow_name);
    workflow["metadata"]["uid"] = json!(run.id);
    let mut status = Map::new();
    status.insert("phase".into(), json!(run.phase.as_argo()));
    status.insert("startedAt".into(), json!(rfc3339(run.started_ms)));
    status.insert(
        "finishedAt".into(),
        run.finished_ms.map_or(Value::Null, |ms| json!(rfc3339(ms))),
    );
    if let Some(message) = &run.message {
        status.insert("message".into(), json!(message));
    }
    status.insert("nodes".into(), Value::Object(nodes(run)));
    let unused = match images {
        ImageUse::Host => container_images(&workflow),
        ImageUse::Image => Default::default(),
    };
    if !unused.is_empty() {
        // Argo's own condition for what a spec asked that was not done.
        status.insert(
            "conditions".into(),
            json!([{
                "type": "SpecWarning",
                "status": "True",
                "message": format!(
                    "container images are not pulled: each step's command runs on its \
                     agent's host ({})",
                    unused.into_iter().collect::<Vec<_>>().join(", ")
                ),
            }]),
        );
    }
    workflow["status"] = Value::Object(status);
    workflow
}

/// The images the manifest's container templates name.
fn container_images(workflow: &Value) -> std::collections::BTreeSet<&str> {
    workflow["spec"]["templates"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["container"]["image"].as_str())
        .collect()
}

fn nodes(run: &PipelineRun) -> Map<String, Value> {
    run.nodes
        .values()
        .map(|n| (n.id.clone(), node(n)))
        .collect()
}

fn node(n: &RunNode) -> Value {
    let mut v = json!({
        "id": n.id,
        "name": n.name,
        "displayName": n.display_name,
        "type": n.node_type.as_argo(),
        "templateName": n.template,
        "phase": n.phase.as_argo(),
        "startedAt": n.started_ms.map(rfc3339),
        "finishedAt": n.finished_ms.map(rfc3339),
    });
    if let Some(message) = &n.message {
        v["message"] = json!(message);
    }
    if let Some(parent) = &n.parent {
        v["boundaryID"] = json!(parent);
    }
    if !n.children.is_empty() {
        v["children"] = json!(n.children);
    }
    if !n.inputs.is_empty() {
        v["inputs"] = json!({"parameters": params(&n.inputs)});
    }
    if !n.outputs.is_empty() || !n.artifacts.is_empty() {
        let mut outputs = json!({"parameters": params(&n.outputs)});
        if !n.artifacts.is_empty() {
            outputs["artifacts"] = n
                .artifacts
                .keys()
                .map(|name| json!({"name": name}))
                .collect();
        }
        v["outputs"] = outputs;
    }
    if let Some(job) = &n.job {
        // The Drover job the node runs as (its pod is `<job>-0`).
        v["hostNodeName"] = json!(job);
    }
    v
}

fn params(values: &std::collections::BTreeMap<String, String>) -> Value {
    values
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect()
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

/// `ms` as RFC 3339 in whole seconds, as Argo writes times.
fn rfc3339(ms: i64) -> String {
    let whole = crate::api::rfc3339::format(ms - ms.rem_euclid(1000));
    whole.replace(".000Z", "Z")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::pipeline::{parse_workflow, resolve_parameters};
    use crate::model::pipeline_run::PipelineRun;

    const ONE: &str = r#"{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
      "metadata": {"generateName": "one-"},
      "spec": {"entrypoint": "one", "templates": [
        {"name": "one", "dag": {"tasks": [{"name": "say", "template": "say"}]}},
        {"name": "say", "container": {"image": "alpine", "command": ["echo", "hi"]}}]}}"#;

    #[test]
    fn the_workflow_reports_each_node_keyed_by_id_as_argo_does() {
        let pipeline = parse_workflow(ONE).unwrap();
        let params = resolve_parameters(&pipeline, &[]).unwrap();
        let (run, _) = PipelineRun::start(&pipeline, "r1", "one-abc", params, 1_500).unwrap();
        let record = RunRecord {
            name: "a run".into(),
            description: String::new(),
            manifest: ONE.into(),
            overrides: Vec::new(),
            experiment_id: Some("e1".into()),
            storage_state: "STORAGESTATE_AVAILABLE".into(),
            created_ms: 1_000,
            run,
            metrics: Vec::new(),
            owner: String::new(),
        };
        let workflow = workflow_manifest(&record, ImageUse::Host);
        assert_eq!(workflow["metadata"]["name"], "one-abc");
        assert_eq!(workflow["status"]["phase"], "Running");
        let nodes = workflow["status"]["nodes"].as_object().unwrap();
        let root = &nodes["one-abc"];
        assert_eq!(root["type"], "DAG");
        let child = root["children"][0].as_str().unwrap();
        let say = &nodes[child];
        assert_eq!(say["id"], child);
        assert_eq!(
            (
                say["displayName"].as_str(),
                say["templateName"].as_str(),
                say["type"].as_str()
            ),
            (Some("say"), Some("say"), Some("Pod"))
        );
        assert_eq!(say["phase"], "Running");
        assert_eq!(say["startedAt"], "1970-01-01T00:00:01Z");
        // Where the command ran, as the issue asks the status to say.
        let condition = &workflow["status"]["conditions"][0];
        assert_eq!(condition["type"], "SpecWarning");
        let text = condition["message"].as_str().unwrap();
        assert!(text.contains("agent's host (alpine)"), "{text}");
        // Steps in their images (the default) did what the spec asked.
        let in_images = workflow_manifest(&record, ImageUse::Image);
        assert!(in_images["status"].get("conditions").is_none());
        let message = run_message(&record);
        assert_eq!(message.status, "Running");
        assert_eq!(message.created_at.unwrap().seconds, 1);
        assert_eq!(
            message.resource_references[0].key.as_ref().unwrap().id,
            "e1"
        );
    }
}
