//! Each refusal names its field.

#![allow(clippy::unwrap_used)]

use serde_json::json;

use super::super::*;
use super::*;

#[test]
fn every_unsupported_field_is_refused_naming_its_path() {
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/spec/volumes",
            json!([{"name": "v", "emptyDir": {}}]),
            "spec.volumes",
        ),
        ("/spec/onExit", json!("exit-handler"), "spec.onExit"),
        (
            "/spec/podGC",
            json!({"strategy": "OnPodSuccess"}),
            "spec.podGC",
        ),
        (
            "/spec/ttlStrategy",
            json!({"secondsAfterCompletion": 5}),
            "spec.ttlStrategy",
        ),
        (
            "/spec/nodeSelector",
            json!({"disk": "ssd"}),
            "spec.nodeSelector",
        ),
        (
            "/spec/imagePullSecrets",
            json!([{"name": "s"}]),
            "spec.imagePullSecrets",
        ),
        (
            "/spec/artifactRepositoryRef",
            json!({"key": "k"}),
            "spec.artifactRepositoryRef",
        ),
        ("/status", json!({"phase": "Running"}), "status"),
        (
            "/metadata/namespace",
            json!("kubeflow"),
            "metadata.namespace",
        ),
        (
            "/spec/templates/1/container/volumeMounts",
            json!([{"name": "v", "mountPath": "/data"}]),
            "spec.templates[1].container.volumeMounts",
        ),
        (
            "/spec/templates/1/container/securityContext",
            json!({"privileged": true}),
            "spec.templates[1].container.securityContext",
        ),
        (
            "/spec/templates/1/container/workingDir",
            json!("/work"),
            "spec.templates[1].container.workingDir",
        ),
        (
            "/spec/templates/1/sidecars",
            json!([{"name": "s", "image": "x"}]),
            "spec.templates[1].sidecars",
        ),
        (
            "/spec/templates/1/initContainers",
            json!([{"name": "i", "image": "x"}]),
            "spec.templates[1].initContainers",
        ),
        (
            "/spec/templates/1/volumes",
            json!([{"name": "v"}]),
            "spec.templates[1].volumes",
        ),
        (
            "/spec/templates/1/nodeSelector",
            json!({"a": "b"}),
            "spec.templates[1].nodeSelector",
        ),
        (
            "/spec/templates/1/tolerations",
            json!([{"key": "k"}]),
            "spec.templates[1].tolerations",
        ),
        (
            "/spec/templates/1/podSpecPatch",
            json!("{}"),
            "spec.templates[1].podSpecPatch",
        ),
        (
            "/spec/templates/1/script",
            json!({"image": "x", "source": "print(1)"}),
            "spec.templates[1].script",
        ),
        (
            "/spec/templates/1/resource",
            json!({"action": "create", "manifest": "{}"}),
            "spec.templates[1].resource",
        ),
        (
            "/spec/templates/1/container/env/0/valueFrom",
            json!({"secretKeyRef": {"name": "s", "key": "k"}}),
            "spec.templates[1].container.env[0].valueFrom",
        ),
        (
            "/spec/templates/1/outputs/artifacts/1/s3",
            json!({"key": "k"}),
            "spec.templates[1].outputs.artifacts[1].s3",
        ),
        (
            "/spec/templates/1/outputs/artifacts/1/archive",
            json!({"tar": {}}),
            "spec.templates[1].outputs.artifacts[1].archive.tar",
        ),
        (
            "/spec/templates/1/outputs/parameters/0/valueFrom/jsonPath",
            json!("{.status}"),
            "spec.templates[1].outputs.parameters[0].valueFrom.jsonPath",
        ),
        (
            "/spec/templates/1/retryStrategy/retryPolicy",
            json!("OnTransientError"),
            "spec.templates[1].retryStrategy.retryPolicy",
        ),
        (
            "/spec/templates/0/dag/tasks/1/continueOn",
            json!({"failed": true}),
            "spec.templates[0].dag.tasks[1].continueOn",
        ),
        (
            "/spec/templates/0/dag/tasks/1/templateRef",
            json!({"name": "t", "template": "x"}),
            "spec.templates[0].dag.tasks[1].templateRef",
        ),
        (
            "/spec/templates/0/dag/tasks/1/onExit",
            json!("x"),
            "spec.templates[0].dag.tasks[1].onExit",
        ),
    ];
    for (at, patch, want) in cases {
        let value = with(base(), at, patch);
        let err = parse(&value).expect_err(at);
        assert!(
            matches!(err, PipelineError::Unsupported { .. }),
            "{at}: {err:?}"
        );
        assert_eq!(err.field_path(), Some(want), "{at}: {err}");
        assert!(err.to_string().starts_with(want), "{err}");
    }
}

#[test]
fn an_unknown_field_or_a_container_without_command_is_refused_too() {
    let mut value = base();
    value["spec"]["templates"][2]["container"]
        .as_object_mut()
        .unwrap()
        .remove("command");
    let err = parse(&value).unwrap_err();
    assert!(matches!(err, PipelineError::Unsupported { .. }), "{err:?}");
    assert_eq!(
        err.field_path(),
        Some("spec.templates[2].container.command")
    );

    let value = with(base(), "/spec/templates/1/contianer", json!({}));
    let err = parse(&value).unwrap_err();
    assert!(matches!(err, PipelineError::UnknownField { .. }), "{err:?}");
    assert_eq!(err.field_path(), Some("spec.templates[1].contianer"));

    let value = with(
        base(),
        "/spec/templates/1/container/resources/limits/example.com~1fpga",
        json!("1"),
    );
    // The JSON pointer's `~1` is a `/` in the key.
    assert_eq!(
        refused_path(&value),
        "spec.templates[1].container.resources.limits.example.com/fpga"
    );
}

#[test]
fn empty_refused_fields_ask_for_nothing_and_are_read_as_absent() {
    let value = with(base(), "/spec/volumes", json!([]));
    let value = with(value, "/spec/templates/1/sidecars", json!(null));
    let value = with(value, "/spec/templates/1/container/volumeMounts", json!([]));
    assert!(parse(&value).is_ok());
}

#[test]
fn malformed_references_are_refused_naming_the_field() {
    let cases: Vec<(&str, Value, &str)> = vec![
        ("/apiVersion", json!("argoproj.io/v2"), "apiVersion"),
        ("/kind", json!("CronWorkflow"), "kind"),
        ("/spec/entrypoint", json!("nowhere"), "spec.entrypoint"),
        (
            "/spec/templates/0/dag/tasks/1/template",
            json!("nowhere"),
            "spec.templates[0].dag.tasks[1].template",
        ),
        (
            "/spec/templates/0/dag/tasks/0/dependencies",
            json!(["report"]),
            "spec.templates[0].dag.tasks",
        ),
        (
            "/spec/templates/0/dag/tasks/1/dependencies",
            json!(["ghost"]),
            "spec.templates[0].dag.tasks[1].dependencies",
        ),
        // `consume` reads produce's output without depending on it.
        (
            "/spec/templates/0/dag/tasks/1/dependencies",
            json!([]),
            "spec.templates[0].dag.tasks[1].arguments.parameters",
        ),
        (
            "/spec/templates/0/dag/tasks/2/when",
            json!("!{{tasks.produce.outputs.parameters.produce-Output}}"),
            "spec.templates[0].dag.tasks[2].when",
        ),
        (
            "/spec/templates/0/dag/tasks/2/when",
            json!("\"{{tasks.produce.outputs.parameters.nope}}\" == \"a\""),
            "spec.templates[0].dag.tasks[2].when",
        ),
        (
            "/spec/templates/1/container/args/1",
            json!("{{inputs.parameters.nope}}"),
            "spec.templates[1].container",
        ),
        (
            "/spec/templates/1/container/args/1",
            json!("{{item}}"),
            "spec.templates[1].container",
        ),
        (
            "/spec/templates/1/container/args/1",
            json!("{{secrets.token}}"),
            "spec.templates[1].container.args[1]",
        ),
        (
            "/spec/templates/1/container/args/1",
            json!("{{inputs.parameters.greeting"),
            "spec.templates[1].container.args[1]",
        ),
        (
            "/spec/templates/1/outputs/parameters/0/valueFrom/path",
            json!("relative/data"),
            "spec.templates[1].outputs.parameters[0].valueFrom.path",
        ),
        (
            "/spec/templates/1/container/resources/limits/memory",
            json!("lots"),
            "spec.templates[1].container.resources.limits.memory",
        ),
        (
            "/spec/templates/1/retryStrategy/limit",
            json!("two"),
            "spec.templates[1].retryStrategy.limit",
        ),
        (
            "/spec/templates/1/container/env/0/value",
            json!("{{workflow.parameters.nope}}"),
            "spec.templates[1].container",
        ),
    ];
    for (at, patch, want) in cases {
        let value = with(base(), at, patch);
        let err = parse(&value).unwrap_err();
        assert_eq!(err.field_path(), Some(want), "{at}: {err}");
    }
    // The entrypoint's input with no workflow argument.
    let value = with(
        base(),
        "/spec/arguments/parameters",
        json!([{"name": "greeting"}]),
    );
    let err = parse(&value).unwrap_err();
    assert_eq!(err.field_path(), Some("spec.arguments.parameters"));
    assert!(err.to_string().contains("shards"), "{err}");
    // A missing input parameter of the callee.
    let value = with(base(), "/spec/templates/0/dag/tasks/0/arguments", json!({}));
    let err = parse(&value).unwrap_err();
    assert_eq!(
        err.field_path(),
        Some("spec.templates[0].dag.tasks[0].arguments.parameters")
    );
    assert!(err.to_string().contains("greeting"), "{err}");
    // A missing input artifact of the callee.
    let value = with(base(), "/spec/templates/0/dag/tasks/2/arguments", json!({}));
    let err = parse(&value).unwrap_err();
    assert_eq!(
        err.field_path(),
        Some("spec.templates[0].dag.tasks[2].arguments.artifacts")
    );
    assert!(err.to_string().contains("produce-report"), "{err}");
}

#[test]
fn expression_templates_and_result_depends_are_refused_as_unsupported() {
    let value = with(
        base(),
        "/spec/templates/1/container/args/1",
        json!("{{=inputs.parameters.greeting}}"),
    );
    let err = parse(&value).unwrap_err();
    assert!(matches!(err, PipelineError::Unsupported { .. }));
    assert_eq!(
        err.field_path(),
        Some("spec.templates[1].container.args[1]")
    );

    let mut value = base();
    let task = value.pointer_mut("/spec/templates/0/dag/tasks/2").unwrap();
    task.as_object_mut().unwrap().remove("dependencies");
    task["depends"] = json!("consume.Succeeded || produce.Failed");
    let err = parse(&value).unwrap_err();
    assert!(matches!(err, PipelineError::Unsupported { .. }));
    assert_eq!(
        err.field_path(),
        Some("spec.templates[0].dag.tasks[2].depends")
    );

    task_depends_plain_names_read_as_dependencies();
}

fn task_depends_plain_names_read_as_dependencies() {
    let mut value = base();
    let task = value.pointer_mut("/spec/templates/0/dag/tasks/2").unwrap();
    task.as_object_mut().unwrap().remove("dependencies");
    task["depends"] = json!("consume && produce");
    let p = parse(&value).unwrap();
    let TemplateBody::Dag(dag) = &p.entry().unwrap().body else {
        panic!()
    };
    assert_eq!(
        dag.task("report").unwrap().dependencies,
        ["consume", "produce"]
    );
}

#[test]
fn a_recursive_template_is_refused() {
    let value = with(
        base(),
        "/spec/templates/0/dag/tasks/0/template",
        json!("base"),
    );
    let value = with(
        value,
        "/spec/templates/0/dag/tasks/0/arguments",
        json!({"parameters": [
        {"name": "greeting", "value": "x"}, {"name": "shards", "value": "[]"}]}),
    );
    let err = parse(&value).unwrap_err();
    assert!(matches!(err, PipelineError::Unsupported { .. }), "{err:?}");
    assert_eq!(err.field_path(), Some("spec.templates[0].name"));
}
