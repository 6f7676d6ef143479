//! Unit tests on hand-written manifests shaped as kfp 1.8 writes them:
//! what is read ([`reading`]), what is refused, each refusal naming its
//! field ([`refusals`]), and the rules while a run goes: substitution,
//! `when`, loops, parameters, node paths ([`running`]).

#![allow(clippy::unwrap_used)]

mod reading;
mod refusals;
mod running;

use serde_json::Value;

use super::*;

/// A small pipeline in kfp 1.8's shape: `produce` writes a parameter and
/// an artifact, `consume` (a loop over `withParam`) reads the parameter,
/// `report` takes the artifact when the parameter says so.
pub(super) const BASE: &str = r#"
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

pub(super) fn base() -> Value {
    serde_yaml::from_str(BASE).unwrap()
}

pub(super) fn parse(value: &Value) -> Result<Pipeline, PipelineError> {
    parse_workflow(&value.to_string())
}

/// `value` with `patch` applied at the JSON pointer `at` (the last part
/// is the key set).
pub(super) fn with(mut value: Value, at: &str, patch: Value) -> Value {
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

pub(super) fn refused_path(value: &Value) -> String {
    let err = parse(value).unwrap_err();
    err.field_path().unwrap().to_string()
}
