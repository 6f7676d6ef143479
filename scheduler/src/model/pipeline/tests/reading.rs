//! What a kfp-shaped manifest reads into.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::super::*;
use super::*;

#[test]
fn a_kfp_shaped_manifest_reads_into_the_model() {
    let p = parse_workflow(BASE).unwrap();
    assert_eq!(p.name, "base");
    assert_eq!(p.generate_name.as_deref(), Some("base-"));
    assert_eq!(p.entrypoint, "base");
    assert_eq!(
        p.arguments,
        vec![
            WorkflowArgument {
                name: "greeting".into(),
                value: Some("hello".into())
            },
            WorkflowArgument {
                name: "shards".into(),
                value: None
            },
        ]
    );
    let TemplateBody::Dag(dag) = &p.entry().unwrap().body else {
        panic!("the entrypoint is a dag")
    };
    let deps: Vec<(&str, Vec<String>)> = dag
        .tasks
        .iter()
        .map(|t| (t.name.as_str(), t.dependencies.clone()))
        .collect();
    assert_eq!(
        deps,
        vec![
            ("produce", vec![]),
            ("consume", vec!["produce".to_string()]),
            ("report", vec!["consume".to_string(), "produce".to_string()]),
        ]
    );
    assert!(matches!(
        dag.task("consume").unwrap().loop_over,
        Some(Loop::Param(_))
    ));
    assert!(dag.task("report").unwrap().when.is_some());
    assert_eq!(
        dag.task("report").unwrap().artifacts[0].source,
        ArtifactSource::From(ArtifactRef::TaskOutput {
            task: "produce".into(),
            artifact: "produce-report".into()
        })
    );

    let produce = p.template("produce").unwrap();
    let c = produce.container().unwrap();
    assert_eq!(c.image, "python:3.11");
    assert_eq!(c.resources.requests.cpus, Some(0.5));
    assert_eq!(c.resources.requests.mem_mib, Some(64.0));
    assert_eq!(c.resources.limits.mem_mib, Some(128.0));
    assert_eq!(c.resources.limits.disk_mib, Some(1024.0));
    assert_eq!(
        produce.outputs.parameters[0].source,
        ParameterSource::File("/tmp/outputs/Output/data".into())
    );
    assert_eq!(produce.retry.as_ref().unwrap().limit, Some(2));
    assert_eq!(
        produce.retry.as_ref().unwrap().policy,
        RetryPolicy::OnFailure
    );
    assert_eq!(produce.active_deadline_seconds, Some(60));
    assert_eq!(
        produce.labels["pipelines.kubeflow.org/enable_caching"],
        "true"
    );
}

#[test]
fn json_and_yaml_of_one_manifest_read_the_same() {
    let from_yaml = parse_workflow(BASE).unwrap();
    let from_json = parse_workflow(&serde_json::to_string_pretty(&base()).unwrap()).unwrap();
    assert_eq!(from_yaml, from_json);
}

#[test]
fn text_that_is_neither_json_nor_yaml_is_a_syntax_error() {
    let err = parse_workflow("{\"apiVersion\": ").unwrap_err();
    assert!(matches!(err, PipelineError::Syntax { .. }), "{err:?}");
    assert_eq!(err.field_path(), None);
    let err = parse_workflow("- just\n- a list").unwrap_err();
    assert!(matches!(err, PipelineError::Malformed { .. }), "{err:?}");
}

#[test]
fn steps_templates_read_their_groups_and_earlier_outputs() {
    let value = with(
        base(),
        "/spec/templates/0",
        json!({
            "name": "base",
            "inputs": {"parameters": [{"name": "greeting"}, {"name": "shards"}]},
            "steps": [
                [{"name": "produce", "template": "produce",
                  "arguments": {"parameters": [{"name": "greeting", "value": "{{inputs.parameters.greeting}}"}]}}],
                [{"name": "consume", "template": "consume",
                  "withItems": ["a", "b"],
                  "arguments": {"parameters": [
                      {"name": "word", "value": "{{steps.produce.outputs.parameters.produce-Output}}"},
                      {"name": "shard", "value": "{{item}}"}]}}]
            ]
        }),
    );
    let p = parse(&value).unwrap();
    let TemplateBody::Steps(groups) = &p.entry().unwrap().body else {
        panic!("steps")
    };
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[1][0].name, "consume");

    // A step cannot read a step of its own group.
    let mut bad = value.clone();
    let first = bad
        .pointer_mut("/spec/templates/0/steps/1/0")
        .unwrap()
        .clone();
    bad.pointer_mut("/spec/templates/0/steps/0")
        .unwrap()
        .as_array_mut()
        .unwrap()
        .push(first);
    bad.pointer_mut("/spec/templates/0/steps")
        .unwrap()
        .as_array_mut()
        .unwrap()
        .pop();
    assert_eq!(
        refused_path(&bad),
        "spec.templates[0].steps[0][1].arguments.parameters"
    );
}
