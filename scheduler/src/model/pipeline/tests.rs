//! Unit tests on hand-written manifests shaped as kfp 1.8 writes them:
//! what is read, what is refused (each refusal naming its field), and the
//! run-time rules (substitution, `when`, loops, parameters, node paths).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::*;

/// A small pipeline in kfp 1.8's shape: `produce` writes a parameter and
/// an artifact, `consume` (a loop over `withParam`) reads the parameter,
/// `report` takes the artifact when the parameter says so.
const BASE: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: base-
  annotations: {pipelines.kubeflow.org/kfp_sdk_version: 1.8.24}
  labels: {pipelines.kubeflow.org/kfp_sdk_version: 1.8.24}
spec:
  entrypoint: base
  serviceAccountName: pipeline-runner
  arguments:
    parameters:
    - {name: greeting, value: hello}
    - {name: shards}
  templates:
  - name: base
    inputs:
      parameters:
      - {name: greeting}
      - {name: shards}
    dag:
      tasks:
      - name: produce
        template: produce
        arguments:
          parameters:
          - {name: greeting, value: '{{inputs.parameters.greeting}}'}
      - name: consume
        template: consume
        dependencies: [produce]
        withParam: '{{inputs.parameters.shards}}'
        arguments:
          parameters:
          - {name: word, value: '{{tasks.produce.outputs.parameters.produce-Output}}'}
          - {name: shard, value: '{{item.name}}'}
      - name: report
        template: report
        dependencies: [consume, produce]
        when: '"{{tasks.produce.outputs.parameters.produce-Output}}" == "HELLO"'
        arguments:
          artifacts:
          - {name: produce-report, from: '{{tasks.produce.outputs.artifacts.produce-report}}'}
  - name: produce
    metadata:
      labels: {pipelines.kubeflow.org/enable_caching: "true"}
      annotations: {pipelines.kubeflow.org/component_ref: '{}'}
    inputs:
      parameters:
      - {name: greeting}
    container:
      image: python:3.11
      command: [sh, -ec, 'python3 -c "$0" "$@"', 'print(1)']
      args: [--greeting, '{{inputs.parameters.greeting}}', --report, /tmp/outputs/report/data,
             '----output-paths', /tmp/outputs/Output/data]
      env:
      - {name: RUN, value: '{{workflow.uid}}'}
      resources:
        requests: {cpu: 500m, memory: 64Mi}
        limits: {cpu: '1', memory: 128Mi, ephemeral-storage: 1Gi}
    outputs:
      parameters:
      - name: produce-Output
        valueFrom: {path: /tmp/outputs/Output/data}
      artifacts:
      - {name: produce-Output, path: /tmp/outputs/Output/data}
      - {name: produce-report, path: /tmp/outputs/report/data}
    retryStrategy: {limit: 2}
    activeDeadlineSeconds: 60
  - name: consume
    inputs:
      parameters:
      - {name: word}
      - {name: shard}
    container:
      image: python:3.11
      command: [echo]
      args: ['{{inputs.parameters.word}}-{{inputs.parameters.shard}}']
  - name: report
    inputs:
      artifacts:
      - {name: produce-report, path: /tmp/inputs/report/data}
    container:
      image: python:3.11
      command: [cat, /tmp/inputs/report/data]
"#;

fn base() -> Value {
    serde_yaml::from_str(BASE).unwrap()
}

fn parse(value: &Value) -> Result<Pipeline, PipelineError> {
    parse_workflow(&value.to_string())
}

/// `value` with `patch` applied at the JSON pointer `at` (the last part
/// is the key set).
fn with(mut value: Value, at: &str, patch: Value) -> Value {
    let (parent, key) = at.rsplit_once('/').unwrap();
    let key = key.replace("~1", "/").replace("~0", "~");
    let target = value.pointer_mut(parent).unwrap();
    match target {
        Value::Object(map) => {
            map.insert(key, patch);
        }
        Value::Array(list) => list[key.parse::<usize>().unwrap()] = patch,
        _ => panic!("{parent} is not a container"),
    }
    value
}

fn refused_path(value: &Value) -> String {
    let err = parse(value).unwrap_err();
    err.field_path().unwrap().to_string()
}

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
    assert_eq!(c.image_use, ImageUse::Host);
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
fn an_unknown_or_misspelt_field_is_refused_too() {
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
    ];
    for (at, patch, want) in cases {
        let value = with(base(), at, patch);
        let err = parse(&value).unwrap_err();
        assert_eq!(err.field_path(), Some(want), "{at}: {err}");
    }
    // A missing input parameter of the callee.
    let value = with(base(), "/spec/templates/0/dag/tasks/0/arguments", json!({}));
    let err = parse(&value).unwrap_err();
    assert!(matches!(err, PipelineError::Missing { .. }), "{err:?}");
    assert!(err.to_string().contains("greeting"), "{err}");
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

fn facts() -> WorkflowFacts {
    WorkflowFacts {
        name: "base-x7k2q".into(),
        uid: "run-1".into(),
        namespace: "drover".into(),
        parameters: BTreeMap::from([("greeting".to_string(), "hello".to_string())]),
    }
}

#[test]
fn every_variable_kind_substitutes_from_the_scope() {
    let facts = facts();
    let inputs = BTreeMap::from([("word".to_string(), "HELLO".to_string())]);
    let outputs = BTreeMap::from([(
        "produce".to_string(),
        BTreeMap::from([("produce-Output".to_string(), "42".to_string())]),
    )]);
    let item = json!({"name": "shard-0", "index": 0});
    let scope = NodeScope {
        workflow: &facts,
        inputs: &inputs,
        outputs: &outputs,
        item: Some(&item),
        pod_name: Some("base-x7k2q-123"),
    };
    let cases = [
        ("{{inputs.parameters.word}}!", "HELLO!"),
        ("{{tasks.produce.outputs.parameters.produce-Output}}", "42"),
        ("{{steps.produce.outputs.parameters.produce-Output}}", "42"),
        ("{{item.name}}/{{item.index}}", "shard-0/0"),
        ("{{item}}", r#"{"index":0,"name":"shard-0"}"#),
        ("{{workflow.parameters.greeting}}", "hello"),
        (
            "{{workflow.name}} {{workflow.uid}} {{workflow.namespace}}",
            "base-x7k2q run-1 drover",
        ),
        ("{{workflow.uid}}-{{pod.name}}", "run-1-base-x7k2q-123"),
        ("no variables", "no variables"),
        ("{{ inputs.parameters.word }}", "HELLO"),
    ];
    for (text, want) in cases {
        let parsed = Text::parse(text, "t").unwrap();
        assert_eq!(parsed.render(&scope).unwrap(), want, "{text}");
    }
    let missing = Text::parse("{{tasks.other.outputs.parameters.x}}", "t").unwrap();
    assert_eq!(
        missing.render(&scope).unwrap_err(),
        ResolveError::Unresolved {
            variable: "tasks.other.outputs.parameters.x".into()
        }
    );
    let no_field = Text::parse("{{item.size}}", "t").unwrap();
    assert!(matches!(
        no_field.render(&scope).unwrap_err(),
        ResolveError::NoItemField { .. }
    ));
}

fn scope_with<'a>(
    facts: &'a WorkflowFacts,
    inputs: &'a BTreeMap<String, String>,
    outputs: &'a BTreeMap<String, BTreeMap<String, String>>,
) -> NodeScope<'a> {
    NodeScope {
        workflow: facts,
        inputs,
        outputs,
        item: None,
        pod_name: None,
    }
}

#[test]
fn when_compares_strings_quoted_and_numbers_unquoted() {
    let facts = facts();
    let inputs = BTreeMap::from([
        ("coin".to_string(), "heads".to_string()),
        ("n".to_string(), "7".to_string()),
        ("tricky".to_string(), "a\" == \"a".to_string()),
    ]);
    let outputs = BTreeMap::new();
    let scope = scope_with(&facts, &inputs, &outputs);
    let cases = [
        (r#""{{inputs.parameters.coin}}" == "heads""#, true),
        (r#""{{inputs.parameters.coin}}" != "heads""#, false),
        (r#""{{inputs.parameters.coin}}" == "tails""#, false),
        ("{{inputs.parameters.n}} > 5", true),
        ("{{inputs.parameters.n}} >= 7", true),
        ("{{inputs.parameters.n}} < 7", false),
        ("{{inputs.parameters.n}} <= 6.5", false),
        ("{{inputs.parameters.n}} == 7.0", true),
        (
            r#"{{inputs.parameters.n}} > 9 || "{{inputs.parameters.coin}}" == "heads""#,
            true,
        ),
        (
            r#"{{inputs.parameters.n}} > 5 && "{{inputs.parameters.coin}}" == "tails""#,
            false,
        ),
        // A value holding quotes and == cannot change what is compared.
        (r#""{{inputs.parameters.tricky}}" == "a""#, false),
    ];
    for (source, want) in cases {
        let condition = Condition::parse(source, "when").unwrap();
        assert_eq!(condition.evaluate(&scope).unwrap(), want, "{source}");
    }
    let not_number = Condition::parse("{{inputs.parameters.coin}} > 5", "when").unwrap();
    assert!(matches!(
        not_number.evaluate(&scope).unwrap_err(),
        ResolveError::NotANumber { .. }
    ));
    for bad in ["", "a", "(a == b)", "!a", "a == ", "\"a == b", "a ==== b"] {
        let err = Condition::parse(bad, "spec.x.when").unwrap_err();
        assert_eq!(err.field_path(), Some("spec.x.when"), "{bad:?}");
    }
}

#[test]
fn loops_expand_one_node_per_item_named_as_argo_names_them() {
    let facts = facts();
    let inputs = BTreeMap::from([(
        "shards".to_string(),
        r#"[{"name": "s0", "index": 0}, {"name": "s1", "index": 1}]"#.to_string(),
    )]);
    let outputs = BTreeMap::from([(
        "flip".to_string(),
        BTreeMap::from([("flip-Output".to_string(), "heads".to_string())]),
    )]);
    let scope = scope_with(&facts, &inputs, &outputs);

    let items = Loop::Items(vec![json!("a"), json!("b"), json!(3)]);
    let expanded = expand_loop("for-loop-3", &items, &scope).unwrap();
    let names: Vec<&str> = expanded.iter().map(|e| e.node_name.as_str()).collect();
    assert_eq!(
        names,
        ["for-loop-3(0:a)", "for-loop-3(1:b)", "for-loop-3(2:3)"]
    );

    let with_vars = Loop::Items(vec![
        json!({"side": "{{tasks.flip.outputs.parameters.flip-Output}}"}),
    ]);
    let expanded = expand_loop("l", &with_vars, &scope).unwrap();
    assert_eq!(expanded[0].item, json!({"side": "heads"}));
    assert_eq!(expanded[0].node_name, "l(0:side:heads)");

    let param = Loop::Param(Text::parse("{{inputs.parameters.shards}}", "p").unwrap());
    let expanded = expand_loop("for-loop-4", &param, &scope).unwrap();
    assert_eq!(expanded.len(), 2);
    assert_eq!(expanded[1].node_name, "for-loop-4(1:index:1,name:s1)");
    let item_scope = NodeScope {
        item: Some(&expanded[1].item),
        ..scope
    };
    let text = Text::parse("{{item.name}}", "t").unwrap();
    assert_eq!(text.render(&item_scope).unwrap(), "s1");

    let not_list = Loop::Param(Text::literal("{\"a\": 1}"));
    assert!(matches!(
        expand_loop("x", &not_list, &scope).unwrap_err(),
        ResolveError::NotAList { .. }
    ));
    let empty = Loop::Param(Text::literal("[]"));
    assert!(expand_loop("x", &empty, &scope).unwrap().is_empty());
}

#[test]
fn run_parameters_take_overrides_and_refuse_unknown_or_missing_ones() {
    let p = parse_workflow(BASE).unwrap();
    let given = vec![("shards".to_string(), "[]".to_string())];
    let values = resolve_parameters(&p, &given).unwrap();
    assert_eq!(values["greeting"], "hello");
    assert_eq!(values["shards"], "[]");
    let values = resolve_parameters(
        &p,
        &[
            ("shards".into(), "[1]".into()),
            ("greeting".into(), "hi".into()),
        ],
    )
    .unwrap();
    assert_eq!(values["greeting"], "hi");
    assert_eq!(entry_inputs(&p, &values).unwrap()["greeting"], "hi");
    assert_eq!(
        resolve_parameters(&p, &[]).unwrap_err(),
        ResolveError::MissingParameter {
            name: "shards".into()
        }
    );
    assert_eq!(
        resolve_parameters(&p, &[("nope".into(), "1".into())]).unwrap_err(),
        ResolveError::UnknownParameter {
            name: "nope".into()
        }
    );
}

#[test]
fn each_node_gets_its_own_paths_in_its_files_and_its_command() {
    let p = parse_workflow(BASE).unwrap();
    let produce = p.template("produce").unwrap();
    let facts = facts();
    let inputs = BTreeMap::from([(
        "greeting".to_string(),
        "/tmp/outputs/Output/data".to_string(),
    )]);
    let outputs = BTreeMap::new();
    let scope = scope_with(&facts, &inputs, &outputs);
    let a = container_launch(produce, &[], &scope, "/sandbox/a/")
        .unwrap()
        .unwrap();
    let b = container_launch(produce, &[], &scope, "/sandbox/b")
        .unwrap()
        .unwrap();
    assert_eq!(
        a.argv[4..],
        [
            "--greeting",
            // A substituted value is the user's, never rewritten.
            "/tmp/outputs/Output/data",
            "--report",
            "/sandbox/a/tmp/outputs/report/data",
            "----output-paths",
            "/sandbox/a/tmp/outputs/Output/data",
        ]
    );
    assert_eq!(
        a.output_parameters[0].path,
        "/sandbox/a/tmp/outputs/Output/data"
    );
    assert_eq!(
        b.output_parameters[0].path,
        "/sandbox/b/tmp/outputs/Output/data"
    );
    assert_eq!(
        a.output_parameters[0].compiled_path,
        "/tmp/outputs/Output/data"
    );
    assert_ne!(a.output_artifacts[1].path, b.output_artifacts[1].path);
    assert_eq!(a.env, [("RUN".to_string(), "run-1".to_string())]);
    assert_eq!(
        a.directories(),
        [
            "/sandbox/a/tmp/outputs/Output",
            "/sandbox/a/tmp/outputs/report"
        ]
    );

    let report = p.template("report").unwrap();
    let TemplateBody::Dag(dag) = &p.entry().unwrap().body else {
        panic!()
    };
    let call = &dag.task("report").unwrap().artifacts;
    let launch = container_launch(report, call, &scope, "/sandbox/c")
        .unwrap()
        .unwrap();
    assert_eq!(launch.argv, ["cat", "/sandbox/c/tmp/inputs/report/data"]);
    assert_eq!(
        launch.input_files[0].source,
        node_paths::InputSource::Artifact(ArtifactRef::TaskOutput {
            task: "produce".into(),
            artifact: "produce-report".into()
        })
    );
    assert!(container_launch(p.entry().unwrap(), &[], &scope, "/x").is_none());
}

#[test]
fn path_rewriting_moves_whole_paths_only() {
    let compiled = vec!["/tmp/outputs/Output/data".to_string()];
    let cases = [
        ("/tmp/outputs/Output/data", "/r/tmp/outputs/Output/data"),
        (
            "--out=/tmp/outputs/Output/data",
            "--out=/r/tmp/outputs/Output/data",
        ),
        (
            "cat /tmp/outputs/Output/data; ls",
            "cat /r/tmp/outputs/Output/data; ls",
        ),
        ("/tmp/outputs/Output/data2", "/tmp/outputs/Output/data2"),
        ("/x/tmp/outputs/Output/data", "/x/tmp/outputs/Output/data"),
        (
            "ünï /tmp/outputs/Output/data",
            "ünï /r/tmp/outputs/Output/data",
        ),
    ];
    for (s, want) in cases {
        assert_eq!(node_paths::rewrite_str(s, &compiled, "/r"), want, "{s}");
    }
}

#[test]
fn task_resources_take_the_limit_then_the_request_then_the_default() {
    let resources = ContainerResources {
        requests: ResourceAmounts {
            cpus: Some(0.5),
            mem_mib: Some(64.0),
            ..Default::default()
        },
        limits: ResourceAmounts {
            cpus: Some(1.0),
            ..Default::default()
        },
    };
    let defaults = crate::model::resources::Resources {
        cpus: 0.1,
        mem_mib: 32.0,
        disk_mib: 10.0,
        gpus: 0.0,
    };
    let got = resources.task_resources(&defaults);
    assert_eq!(
        (got.cpus, got.mem_mib, got.disk_mib, got.gpus),
        (1.0, 64.0, 10.0, 0.0)
    );
}

#[test]
fn retry_follows_limit_policy_and_backoff() {
    let value = with(
        base(),
        "/spec/templates/1/retryStrategy",
        json!({"limit": "2", "retryPolicy": "OnError",
               "backoff": {"duration": "1s", "factor": 3, "maxDuration": "1m"}}),
    );
    let p = parse(&value).unwrap();
    let retry = p.template("produce").unwrap().retry.clone().unwrap();
    assert_eq!(retry.limit, Some(2));
    assert!(retry.retries(NodeFailure::Error, 0));
    assert!(retry.retries(NodeFailure::Error, 1));
    assert!(!retry.retries(NodeFailure::Error, 2));
    assert!(!retry.retries(NodeFailure::Failed, 0));
    assert_eq!(retry.backoff_ms(1), 1000);
    assert_eq!(retry.backoff_ms(3), 9000);
    assert!(!retry.is_out_of_time(59_999));
    assert!(retry.is_out_of_time(60_000));

    let default = RetryStrategy {
        limit: None,
        policy: RetryPolicy::OnFailure,
        backoff: None,
    };
    assert!(default.retries(NodeFailure::Failed, 1000));
    assert!(!default.retries(NodeFailure::Error, 0));
    assert_eq!(default.backoff_ms(4), 0);
    assert_eq!(parse::parse_duration_ms("1h30m"), Some(5_400_000));
    assert_eq!(parse::parse_duration_ms("250ms"), Some(250));
    assert_eq!(parse::parse_duration_ms("5"), Some(5000));
    assert_eq!(parse::parse_duration_ms("soon"), None);
}

#[test]
fn parallelism_zero_means_no_limit_as_in_argo() {
    let value = with(base(), "/spec/templates/0/parallelism", json!(0));
    let value = with(value, "/spec/parallelism", json!(3));
    let p = parse(&value).unwrap();
    assert_eq!(p.entry().unwrap().parallelism, None);
    assert_eq!(p.parallelism, Some(3));
    let value = with(base(), "/spec/templates/0/parallelism", json!(2));
    assert_eq!(parse(&value).unwrap().entry().unwrap().parallelism, Some(2));
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

mod never_panics {
    use super::super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused(s in "\\PC{0,64}") {
            let _ = parse_workflow(&s);
            let _ = Text::parse(&s, "x");
            let _ = Condition::parse(&s, "x");
            let _ = quantity::parse_quantity(&s);
            let _ = parse::parse_duration_ms(&s);
        }

        #[test]
        fn conditions_of_braces_quotes_and_operators_never_panic(s in "[{}\"=!<>&| aé0-9.]{0,40}") {
            let _ = Condition::parse(&s, "x");
        }
    }
}
