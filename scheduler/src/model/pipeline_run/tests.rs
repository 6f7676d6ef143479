//! The driver on the issue's three-step shape (a producer writing a
//! parameter and an artifact, two consumers at once, a join), written as
//! kfp 1.8 compiles it; and on a loop with a condition.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::model::pipeline::{parse_workflow, resolve_parameters, ImageUse, Pipeline};

const THREE_STEP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: three-step-}
spec:
  entrypoint: three-step
  parallelism: 2
  arguments:
    parameters:
    - {name: greeting, value: hello}
  templates:
  - name: three-step
    inputs:
      parameters:
      - {name: greeting}
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
        arguments:
          parameters:
          - {name: word, value: '{{tasks.produce.outputs.parameters.produce-Output}}'}
      - name: consume-2
        template: consume
        dependencies: [produce]
        arguments:
          parameters:
          - {name: word, value: '{{tasks.produce.outputs.parameters.produce-Output}}'}
      - name: join
        template: join
        dependencies: [consume, consume-2, produce]
        arguments:
          parameters:
          - {name: left, value: '{{tasks.consume.outputs.parameters.consume-Output}}'}
          artifacts:
          - {name: produce-report, from: '{{tasks.produce.outputs.artifacts.produce-report}}'}
  - name: produce
    inputs:
      parameters:
      - {name: greeting}
    container:
      image: python:3.11
      command: [sh, -c, 'echo "$0" | tr a-z A-Z > /tmp/outputs/Output/data; echo report > /tmp/outputs/report/data', '{{inputs.parameters.greeting}}']
      resources:
        requests: {cpu: 500m, memory: 64Mi}
    outputs:
      parameters:
      - name: produce-Output
        valueFrom: {path: /tmp/outputs/Output/data}
      artifacts:
      - {name: produce-report, path: /tmp/outputs/report/data}
  - name: consume
    inputs:
      parameters:
      - {name: word}
    container:
      image: python:3.11
      command: [sh, -c, 'echo "$0-x" > /tmp/outputs/Output/data', '{{inputs.parameters.word}}']
    outputs:
      parameters:
      - name: consume-Output
        valueFrom: {path: /tmp/outputs/Output/data}
  - name: join
    retryStrategy: {limit: 1}
    inputs:
      parameters:
      - {name: left}
      artifacts:
      - {name: produce-report, path: /tmp/inputs/report/data}
    container:
      image: python:3.11
      command: [sh, -c, 'cat /tmp/inputs/report/data', '{{inputs.parameters.left}}']
"#;

fn pipeline(yaml: &str) -> Pipeline {
    parse_workflow(yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn start(p: &Pipeline, overrides: &[(String, String)]) -> (PipelineRun, Vec<NodeStart>) {
    let params = resolve_parameters(p, overrides).unwrap();
    PipelineRun::start(p, "r1", "three-step-abc", params, 1_000).unwrap()
}

fn names(run: &PipelineRun, starts: &[NodeStart]) -> Vec<String> {
    starts
        .iter()
        .map(|s| run.nodes[&s.node_id].display_name.clone())
        .collect()
}

fn succeeded(files: &[(&str, &str)]) -> NodeOutcome {
    NodeOutcome::Succeeded {
        files: files
            .iter()
            .map(|(p, c)| (p.to_string(), c.as_bytes().to_vec()))
            .collect(),
    }
}

fn phase_of(run: &PipelineRun, display: &str) -> NodePhase {
    run.nodes
        .values()
        .find(|n| n.display_name == display)
        .unwrap()
        .phase
}

#[test]
fn three_steps_run_in_dependency_order_passing_parameters_and_artifacts() {
    let p = pipeline(THREE_STEP);
    let (mut run, starts) = start(&p, &[("greeting".into(), "howdy".into())]);
    assert_eq!(names(&run, &starts), ["produce"]);
    let produce = &starts[0];
    let spec = node_job::node_job_spec("r1", "alice", "produce", produce, ImageUse::Image).unwrap();
    crate::model::validate::validate_job(&spec, &Default::default(), "spec").unwrap();
    // Kubeflow's way by default: the step asks for its image, and its
    // script starts in the sandbox whatever the image's WorkingDir.
    let container = &spec.default_spec.containers[0];
    assert_eq!(container.image.as_deref(), Some("python:3.11"));
    let script = container.command.as_ref().unwrap().value.clone().unwrap();
    assert!(
        script.starts_with("set -e\ncd \"$MESOS_SANDBOX\"\n"),
        "{script}"
    );
    let on_host =
        node_job::node_job_spec("r1", "alice", "produce", produce, ImageUse::Host).unwrap();
    let host_container = &on_host.default_spec.containers[0];
    assert_eq!(
        host_container.image, None,
        "--kfp-images=host asks for none"
    );
    assert_eq!(
        host_container.command.as_ref().unwrap().value.as_deref(),
        Some(produce.shell_script().as_str())
    );
    assert_eq!(spec.instance_count, 1);
    assert_eq!(spec.owner, "alice");
    let resource = spec.default_spec.containers[0].resource.unwrap();
    assert_eq!((resource.cpu_limit, resource.mem_limit_mb), (0.5, 64.0));
    assert!(spec
        .labels
        .iter()
        .any(|l| l.key == node_job::NODE_LABEL && l.value == produce.node_id));
    assert!(produce.launch.argv.contains(&"howdy".to_string()));
    assert!(produce
        .shell_script()
        .contains("mkdir -p './tmp/outputs/Output'"));
    assert_eq!(
        produce.output_paths(),
        ["./tmp/outputs/Output/data", "./tmp/outputs/report/data"]
    );
    assert_eq!(run.root().unwrap().phase, NodePhase::Running);
    assert_eq!(phase_of(&run, "produce"), NodePhase::Running);

    let next = run.node_ended(
        &p,
        &produce.job,
        succeeded(&[
            ("./tmp/outputs/Output/data", "HOWDY"),
            ("./tmp/outputs/report/data", "report"),
        ]),
        2_000,
    );
    // Both consumers at once, each given the producer's parameter.
    assert_eq!(names(&run, &next), ["consume", "consume-2"]);
    assert!(next.iter().all(|s| s.launch.argv.contains(&"HOWDY".into())));
    // A repeated end of a finished job changes nothing.
    assert!(run
        .node_ended(&p, &produce.job, succeeded(&[]), 2_001)
        .is_empty());
    assert!(run
        .node_ended(
            &p,
            &next[0].job,
            succeeded(&[("./tmp/outputs/Output/data", "HOWDY-x")]),
            3_000
        )
        .is_empty());
    let join = run.node_ended(
        &p,
        &next[1].job,
        succeeded(&[("./tmp/outputs/Output/data", "HOWDY-x")]),
        3_000,
    );
    assert_eq!(
        names(&run, &join),
        ["join"],
        "{:#?}",
        run.nodes.values().find(|n| n.display_name == "join")
    );
    assert_eq!(
        join[0].input_contents,
        [("./tmp/inputs/report/data".to_string(), b"report".to_vec())]
    );
    assert!(join[0]
        .shell_script()
        .contains("base64 -d > './tmp/inputs/report/data'"));

    // The join fails once, is retried as a new job, then succeeds.
    let retry = run.node_ended(
        &p,
        &join[0].job,
        NodeOutcome::Failed {
            message: "exit 1".into(),
        },
        4_000,
    );
    assert_eq!(names(&run, &retry), ["join"]);
    assert_ne!(retry[0].job, join[0].job);
    assert_eq!(retry[0].attempt, 2);
    assert!(run
        .node_ended(&p, &retry[0].job, succeeded(&[]), 5_000)
        .is_empty());
    assert_eq!(run.phase, NodePhase::Succeeded);
    assert_eq!(run.finished_ms, Some(5_000));
    let produce_node = run
        .nodes
        .values()
        .find(|n| n.display_name == "produce")
        .unwrap();
    assert_eq!(produce_node.outputs["produce-Output"], "HOWDY");
    assert_eq!(run.root().unwrap().children.len(), 4);

    // The whole state survives a store round trip.
    let json = serde_json::to_string(&run).unwrap();
    assert!(json.contains("\"phase\":\"Succeeded\""));
    assert_eq!(serde_json::from_str::<PipelineRun>(&json).unwrap(), run);
}

#[test]
fn a_failure_past_its_retries_fails_the_run_and_omits_dependents() {
    let p = pipeline(THREE_STEP);
    let (mut run, starts) = start(&p, &[]);
    let failed = NodeOutcome::Failed {
        message: "exit 2".into(),
    };
    assert!(run.node_ended(&p, &starts[0].job, failed, 2_000).is_empty());
    assert_eq!(phase_of(&run, "produce"), NodePhase::Failed);
    for omitted in ["consume", "consume-2", "join"] {
        assert_eq!(phase_of(&run, omitted), NodePhase::Omitted, "{omitted}");
    }
    assert_eq!(run.phase, NodePhase::Failed);
    assert_eq!(run.root().unwrap().phase, NodePhase::Failed);
}

#[test]
fn a_missing_output_file_is_an_error() {
    let p = pipeline(THREE_STEP);
    let (mut run, starts) = start(&p, &[]);
    run.node_ended(&p, &starts[0].job, succeeded(&[]), 2_000);
    let produce = run
        .nodes
        .values()
        .find(|n| n.display_name == "produce")
        .unwrap();
    assert_eq!(produce.phase, NodePhase::Error);
    assert!(produce.message.as_ref().unwrap().contains("produce-Output"));
    assert_eq!(run.phase, NodePhase::Error);
}

#[test]
fn parallelism_holds_nodes_pending_until_a_slot_frees() {
    let yaml = THREE_STEP.replace("parallelism: 2", "parallelism: 1");
    let p = pipeline(&yaml);
    let (mut run, starts) = start(&p, &[]);
    let next = run.node_ended(
        &p,
        &starts[0].job,
        succeeded(&[
            ("./tmp/outputs/Output/data", "HELLO"),
            ("./tmp/outputs/report/data", "r"),
        ]),
        2_000,
    );
    assert_eq!(names(&run, &next), ["consume"]);
    assert_eq!(phase_of(&run, "consume-2"), NodePhase::Pending);
    let after = run.node_ended(
        &p,
        &next[0].job,
        succeeded(&[("./tmp/outputs/Output/data", "x")]),
        3_000,
    );
    assert_eq!(names(&run, &after), ["consume-2"]);
}

#[test]
fn terminate_kills_running_nodes_and_omits_the_rest() {
    let p = pipeline(THREE_STEP);
    let (mut run, starts) = start(&p, &[]);
    assert_eq!(run.terminate(&p, 1_500), [starts[0].job.clone()]);
    let none = run.node_ended(
        &p,
        &starts[0].job,
        NodeOutcome::Failed {
            message: "killed".into(),
        },
        1_600,
    );
    assert!(none.is_empty());
    assert_eq!(run.phase, NodePhase::Failed);
    assert_eq!(
        run.message.as_deref(),
        Some("Stopped with strategy 'Terminate'")
    );
    assert!(run.terminate(&p, 1_700).is_empty());
}

const LOOP_WHEN: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: loops-}
spec:
  entrypoint: loops
  arguments:
    parameters:
    - {name: go, value: "yes"}
  templates:
  - name: loops
    inputs:
      parameters:
      - {name: go}
    dag:
      tasks:
      - name: each
        template: echo
        withItems: [a, b]
        arguments:
          parameters:
          - {name: word, value: '{{item}}'}
      - name: maybe
        template: echo
        dependencies: [each]
        when: '"{{inputs.parameters.go}}" == "yes"'
        arguments:
          parameters:
          - {name: word, value: '{{tasks.each.outputs.parameters.echo-Output}}'}
  - name: echo
    inputs:
      parameters:
      - {name: word}
    container:
      image: alpine
      command: [sh, -c, 'echo "$0" > /tmp/outputs/Output/data', '{{inputs.parameters.word}}']
    outputs:
      parameters:
      - name: echo-Output
        valueFrom: {path: /tmp/outputs/Output/data}
"#;

#[test]
fn loops_make_a_group_of_item_nodes_and_when_skips() {
    let p = pipeline(LOOP_WHEN);
    let params = resolve_parameters(&p, &[]).unwrap();
    let (mut run, starts) = PipelineRun::start(&p, "r2", "loops-x", params, 0).unwrap();
    assert_eq!(names(&run, &starts), ["each(0:a)", "each(1:b)"]);
    let group = run
        .nodes
        .values()
        .find(|n| n.display_name == "each")
        .unwrap();
    assert_eq!(group.node_type, NodeType::TaskGroup);
    assert_eq!(group.children.len(), 2);
    run.node_ended(
        &p,
        &starts[0].job,
        succeeded(&[("./tmp/outputs/Output/data", "a")]),
        1,
    );
    let next = run.node_ended(
        &p,
        &starts[1].job,
        succeeded(&[("./tmp/outputs/Output/data", "b")]),
        2,
    );
    // The group's output is the list of its items' outputs, as Argo.
    assert_eq!(names(&run, &next), ["maybe"]);
    assert!(next[0].launch.argv.contains(&r#"["a","b"]"#.to_string()));

    let params = resolve_parameters(&p, &[("go".into(), "no".into())]).unwrap();
    let (mut run, starts) = PipelineRun::start(&p, "r3", "loops-y", params, 0).unwrap();
    run.node_ended(
        &p,
        &starts[0].job,
        succeeded(&[("./tmp/outputs/Output/data", "a")]),
        1,
    );
    assert!(run
        .node_ended(
            &p,
            &starts[1].job,
            succeeded(&[("./tmp/outputs/Output/data", "b")]),
            2
        )
        .is_empty());
    assert_eq!(phase_of(&run, "maybe"), NodePhase::Skipped);
    assert_eq!(run.phase, NodePhase::Succeeded);
}

fn produced() -> NodeOutcome {
    succeeded(&[
        ("./tmp/outputs/Output/data", "HELLO"),
        ("./tmp/outputs/report/data", "report"),
    ])
}

fn failed(message: &str) -> NodeOutcome {
    NodeOutcome::Failed {
        message: message.into(),
    }
}

#[test]
fn retry_reruns_only_what_did_not_succeed_keeping_outputs() {
    let p = pipeline(THREE_STEP);
    let (mut run, starts) = start(&p, &[]);
    let consumers = run.node_ended(&p, &starts[0].job, produced(), 2_000);
    assert_eq!(names(&run, &consumers), ["consume", "consume-2"]);
    let ok = succeeded(&[("./tmp/outputs/Output/data", "HELLO-x")]);
    run.node_ended(&p, &consumers[0].job, ok.clone(), 3_000);
    let join = run.node_ended(&p, &consumers[1].job, ok, 3_100);
    // `join` retries once (its retryStrategy), then fails the run.
    let again = run.node_ended(&p, &join[0].job, failed("exit 1"), 4_000);
    assert_eq!(again[0].attempt, 2);
    assert!(run
        .node_ended(&p, &again[0].job, failed("exit 1"), 4_100)
        .is_empty());
    assert_eq!(run.phase, NodePhase::Failed);
    let produce_before = run.nodes[&starts[0].node_id].clone();

    // Still running: refused.
    let mut running = start(&p, &[]).0;
    assert!(running.retry(&p, 4_200).is_err());

    let retried = run.retry(&p, 5_000).unwrap();
    assert_eq!(names(&run, &retried), ["join"]);
    assert_eq!(
        retried[0].attempt, 3,
        "a new Drover job: {}",
        retried[0].job
    );
    assert_ne!(retried[0].job, again[0].job);
    assert_eq!(run.phase, NodePhase::Running);
    assert_eq!(run.finished_ms, None);
    assert_eq!(run.nodes[&starts[0].node_id], produce_before);
    assert_eq!(phase_of(&run, "consume"), NodePhase::Succeeded);
    // Its retryStrategy counts again from the retry: one more retry.
    let once_more = run.node_ended(&p, &retried[0].job, failed("exit 1"), 5_100);
    assert_eq!(once_more[0].attempt, 4);
    assert!(run
        .node_ended(&p, &once_more[0].job, succeeded(&[]), 5_200)
        .is_empty());
    assert_eq!(run.phase, NodePhase::Succeeded);
    assert!(
        run.retry(&p, 6_000).is_err(),
        "a succeeded run is not retried"
    );
}

#[test]
fn retry_starts_omitted_tasks_anew() {
    let p = pipeline(THREE_STEP);
    let (mut run, starts) = start(&p, &[]);
    run.node_ended(&p, &starts[0].job, failed("exit 2"), 2_000);
    assert_eq!(phase_of(&run, "join"), NodePhase::Omitted);
    let retried = run.retry(&p, 3_000).unwrap();
    assert_eq!(names(&run, &retried), ["produce"]);
    assert_eq!(retried[0].attempt, 2);
    assert!(
        !run.nodes.values().any(|n| n.display_name == "join"),
        "the omitted nodes go, to be judged again"
    );
    let consumers = run.node_ended(&p, &retried[0].job, produced(), 4_000);
    assert_eq!(names(&run, &consumers), ["consume", "consume-2"]);
}

#[test]
fn a_terminated_run_is_retried() {
    let p = pipeline(THREE_STEP);
    let (mut run, starts) = start(&p, &[]);
    run.terminate(&p, 1_500);
    run.node_ended(&p, &starts[0].job, failed("killed"), 1_600);
    let retried = run.retry(&p, 2_000).unwrap();
    assert_eq!(names(&run, &retried), ["produce"]);
    assert!(!run.terminated);
    assert_eq!(run.message, None);
}

#[test]
fn retry_backoff_delays_the_next_attempt() {
    let yaml = THREE_STEP.replace(
        "retryStrategy: {limit: 1}",
        "retryStrategy: {limit: 3, backoff: {duration: '2s', factor: 2, maxDuration: '5s'}}",
    );
    let p = pipeline(&yaml);
    let (mut run, starts) = start(&p, &[]);
    let consumers = run.node_ended(&p, &starts[0].job, produced(), 2_000);
    let ok = succeeded(&[("./tmp/outputs/Output/data", "x")]);
    run.node_ended(&p, &consumers[0].job, ok.clone(), 3_000);
    let join = run.node_ended(&p, &consumers[1].job, ok, 3_000);
    // The first retry waits 2 s.
    assert!(run
        .node_ended(&p, &join[0].job, failed("exit 1"), 4_000)
        .is_empty());
    assert_eq!(run.next_retry_ms(), Some(6_000));
    assert!(run.launch_due(&p, 5_999).is_empty());
    let second = run.launch_due(&p, 6_000);
    assert_eq!(second[0].attempt, 2);
    assert_eq!(run.next_retry_ms(), None);
    // The next waits 4 s; then maxDuration (5 s since the node started
    // at 3 s) has passed: no more retries.
    run.node_ended(&p, &second[0].job, failed("exit 1"), 6_500);
    assert_eq!(run.next_retry_ms(), Some(10_500));
    let third = run.launch_due(&p, 10_500);
    run.node_ended(&p, &third[0].job, failed("exit 1"), 11_000);
    assert_eq!(phase_of(&run, "join"), NodePhase::Failed);
    assert_eq!(run.phase, NodePhase::Failed);
}
