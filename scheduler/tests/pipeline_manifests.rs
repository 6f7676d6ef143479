//! The issue-23 pipelines, compiled by the real kfp 1.8 SDK (the venv
//! `scripts/kfp-env.sh` makes or reuses, as the pymesos tests do) from the
//! Python sources in `tests/fixtures/kfp/`, read into Drover's pipeline
//! model: the DAG's shape, parameters, conditions, loops, retry,
//! deadline, resources and each node's own paths. The three-step
//! pipeline's nodes are then run as the model launches them (host
//! `python3` runs kfp's lightweight components), the two consumers at
//! once, to show the per-node paths keep their outputs apart. Fails,
//! never skips, without Python 3 with venv and pip.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use drover_scheduler::model::pipeline::*;
use drover_scheduler::model::resources::Resources;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs `scripts/kfp-env.sh` once for this test binary and returns the
/// venv's python (its last line of output). Once: the tests run on
/// parallel threads, and two scripts making one fresh venv at the same
/// time would undo each other's work.
fn venv_python() -> PathBuf {
    static PYTHON: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PYTHON.get_or_init(run_kfp_env).clone()
}

fn run_kfp_env() -> PathBuf {
    let script = repo_root().join("scripts/kfp-env.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("bash runs {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "scripts/kfp-env.sh failed ({}): Python 3 with venv and pip, and PyPI, are required",
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    PathBuf::from(
        stdout
            .lines()
            .last()
            .expect("the script prints the venv python")
            .trim(),
    )
}

/// Compiles `tests/fixtures/kfp/<name>.py` with the SDK's v1 compiler and
/// returns the Argo Workflow YAML it wrote.
fn compile(python: &Path, name: &str, dir: &Path) -> String {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kfp")
        .join(format!("{name}.py"));
    let target = dir.join(format!("{name}.yaml"));
    let out = Command::new(python)
        .arg(&source)
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compiling {name}.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&target).unwrap()
}

/// Parses the compiled YAML, and the same manifest as JSON (how the
/// Kubeflow API carries `workflow_manifest`), and checks both read alike.
fn parse_both(yaml: &str) -> Pipeline {
    let from_yaml = parse_workflow(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let value: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    let from_json = parse_workflow(&value.to_string()).unwrap();
    assert_eq!(from_yaml, from_json);
    from_yaml
}

fn dag(p: &Pipeline, template: &str) -> Dag {
    match &p.template(template).unwrap().body {
        TemplateBody::Dag(dag) => dag.clone(),
        other => panic!("{template} is not a dag: {other:?}"),
    }
}

fn shape(dag: &Dag) -> BTreeMap<String, Vec<String>> {
    dag.tasks
        .iter()
        .map(|t| (t.name.clone(), t.dependencies.clone()))
        .collect()
}

fn facts(parameters: BTreeMap<String, String>) -> WorkflowFacts {
    WorkflowFacts {
        name: "run-x1".into(),
        uid: "uid-1".into(),
        namespace: "drover".into(),
        parameters,
    }
}

#[test]
fn sdk_compiled_pipelines_read_into_the_model() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    three_step(&compile(&python, "three_step", dir.path()), dir.path());
    retry(&compile(&python, "retry", dir.path()));
    long_running(&compile(&python, "long_running", dir.path()));
    loop_condition(&compile(&python, "loop_condition", dir.path()));
}

fn three_step(yaml: &str, dir: &Path) {
    let p = parse_both(yaml);
    assert_eq!(p.name, "three-step");
    assert_eq!(p.entrypoint, "three-step");
    assert_eq!(
        p.annotations["pipelines.kubeflow.org/kfp_sdk_version"],
        "1.8.24"
    );
    let d = dag(&p, "three-step");
    let want: BTreeMap<String, Vec<String>> = [
        ("produce", vec![]),
        ("consume", vec!["produce"]),
        ("consume-2", vec!["produce"]),
        ("join", vec!["consume", "consume-2", "produce"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(String::from).collect()))
    .collect();
    assert_eq!(shape(&d), want);

    let produce = p.template("produce").unwrap();
    assert_eq!(
        produce.outputs.parameters[0],
        OutputParameter {
            name: "produce-Output".into(),
            source: ParameterSource::File("/tmp/outputs/Output/data".into()),
            default: None,
        }
    );
    assert!(produce
        .outputs
        .artifacts
        .iter()
        .any(|a| a.name == "produce-report"
            && a.source == ArtifactSource::File("/tmp/outputs/report/data".into())));
    let join = p.template("join").unwrap();
    assert_eq!(join.inputs.artifacts[0].path, "/tmp/inputs/report/data");
    assert_eq!(
        d.task("join").unwrap().artifacts[0].source,
        ArtifactSource::From(ArtifactRef::TaskOutput {
            task: "produce".into(),
            artifact: "produce-report".into()
        })
    );
    let c = produce.container().unwrap();
    assert_eq!(c.image, "python:3.11");

    // Parameters: the default, then an override as pipeline_spec gives it.
    assert_eq!(resolve_parameters(&p, &[]).unwrap()["greeting"], "hello");
    let params = resolve_parameters(&p, &[("greeting".into(), "howdy".into())]).unwrap();
    run_three_step(&p, &d, &params, dir);
}

/// Runs each node's launch as a Drover task would (argv from its own
/// directory, inputs put in place, outputs read back), the consumers at
/// once: each reads the producer's parameter and writes its own output
/// at its own path; the join reads both and the producer's artifact.
fn run_three_step(p: &Pipeline, d: &Dag, params: &BTreeMap<String, String>, dir: &Path) {
    let facts = facts(params.clone());
    let entry_inputs = entry_inputs(p, params).unwrap();
    let mut outputs: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut roots: BTreeMap<String, PathBuf> = BTreeMap::new();

    // A node's inputs come from its task's arguments, rendered in the
    // dag's scope; then the container's launch, in the node's own scope.
    let launch_of = |task: &Task, outputs: &BTreeMap<String, BTreeMap<String, String>>| {
        let dag_scope = NodeScope {
            workflow: &facts,
            inputs: &entry_inputs,
            outputs,
            item: None,
            pod_name: None,
        };
        let inputs: BTreeMap<String, String> = task
            .parameters
            .iter()
            .map(|a| (a.name.clone(), a.value.render(&dag_scope).unwrap()))
            .collect();
        let empty = BTreeMap::new();
        let node_scope = NodeScope {
            workflow: &facts,
            inputs: &inputs,
            outputs: &empty,
            item: None,
            pod_name: Some(&task.name),
        };
        let root = dir.join("nodes").join(&task.name);
        let template = p.template(&task.template).unwrap();
        let launch = container_launch(
            template,
            &task.artifacts,
            &node_scope,
            root.to_str().unwrap(),
        )
        .unwrap()
        .unwrap();
        (root, launch)
    };
    let start = |launch: &NodeLaunch, roots: &BTreeMap<String, PathBuf>| {
        for d in launch.directories() {
            std::fs::create_dir_all(d).unwrap();
        }
        for input in &launch.input_files {
            let node_paths::InputSource::Artifact(ArtifactRef::TaskOutput { task, artifact }) =
                &input.source
            else {
                panic!("the join's input is the producer's artifact")
            };
            let producer = p.template(&d.task(task).unwrap().template).unwrap();
            let compiled = producer
                .outputs
                .artifacts
                .iter()
                .find_map(|a| match (&a.source, a.name == *artifact) {
                    (ArtifactSource::File(path), true) => Some(path.clone()),
                    _ => None,
                })
                .unwrap();
            let from = node_path(roots[task].to_str().unwrap(), &compiled);
            std::fs::copy(from, &input.path).unwrap();
        }
        Command::new(&launch.argv[0])
            .args(&launch.argv[1..])
            .envs(launch.env.iter().cloned())
            .current_dir(dir)
            .stdout(Stdio::null())
            .spawn()
            .unwrap()
    };
    let finish = |child: std::process::Child, launch: &NodeLaunch| -> BTreeMap<String, String> {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{:?}", launch.argv);
        launch
            .output_parameters
            .iter()
            .map(|o| (o.name.clone(), std::fs::read_to_string(&o.path).unwrap()))
            .collect()
    };

    let (root, launch) = launch_of(d.task("produce").unwrap(), &outputs);
    assert!(
        launch.argv.contains(&"howdy".to_string()),
        "{:?}",
        launch.argv
    );
    let child = start(&launch, &roots);
    outputs.insert("produce".into(), finish(child, &launch));
    roots.insert("produce".into(), root);
    assert_eq!(outputs["produce"]["produce-Output"], "HOWDY");

    // Both consumers at once: one compiled output path, two node paths.
    let (left_root, left) = launch_of(d.task("consume").unwrap(), &outputs);
    let (right_root, right) = launch_of(d.task("consume-2").unwrap(), &outputs);
    assert_ne!(
        left.output_parameters[0].path,
        right.output_parameters[0].path
    );
    assert_eq!(
        left.output_parameters[0].compiled_path,
        right.output_parameters[0].compiled_path
    );
    let (l, r) = (start(&left, &roots), start(&right, &roots));
    outputs.insert("consume".into(), finish(l, &left));
    outputs.insert("consume-2".into(), finish(r, &right));
    roots.insert("consume".into(), left_root);
    roots.insert("consume-2".into(), right_root);
    assert_eq!(outputs["consume"]["consume-Output"], "HOWDY-left");
    assert_eq!(outputs["consume-2"]["consume-2-Output"], "HOWDY-right");

    let (_, join) = launch_of(d.task("join").unwrap(), &outputs);
    let child = start(&join, &roots);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let joined = std::fs::read_to_string(&join.output_artifacts[0].path).unwrap();
    assert_eq!(joined, "HOWDY-left|HOWDY-right|howdy report");
}

fn retry(yaml: &str) {
    let p = parse_both(yaml);
    let d = dag(&p, "retry");
    assert_eq!(shape(&d)["flaky"], ["prepare"]);
    let flaky = p.template("flaky").unwrap();
    let retry = flaky.retry.clone().unwrap();
    assert_eq!(retry.limit, Some(2));
    assert_eq!(retry.policy, RetryPolicy::OnFailure);
    assert!(retry.retries(NodeFailure::Failed, 1));
    assert!(!retry.retries(NodeFailure::Failed, 2));
    assert!(p.template("prepare").unwrap().retry.is_none());
    let params = resolve_parameters(&p, &[]).unwrap();
    assert_eq!(params["should_fail"], "True");
    assert_eq!(params["seed"], "3");
    let fixed = resolve_parameters(&p, &[("should_fail".into(), "False".into())]).unwrap();
    assert_eq!(fixed["should_fail"], "False");
}

fn long_running(yaml: &str) {
    let p = parse_both(yaml);
    let sleep = p.template("sleep").unwrap();
    assert_eq!(sleep.active_deadline_seconds, Some(3600));
    let c = sleep.container().unwrap();
    assert_eq!(c.image, "busybox:1.36");
    let r = c.resources.task_resources(&Resources {
        cpus: 0.1,
        mem_mib: 32.0,
        disk_mib: 16.0,
        gpus: 0.0,
    });
    assert_eq!(r.cpus, 1.0);
    assert!(
        (r.mem_mib - 128e6 / 1048576.0).abs() < 1e-9,
        "{}",
        r.mem_mib
    );
    assert_eq!(r.disk_mib, 16.0);
    assert_eq!(c.resources.requests.cpus, Some(0.5));
    assert_eq!(c.resources.requests.mem_mib, Some(64.0));

    let params = resolve_parameters(&p, &[("seconds".into(), "5".into())]).unwrap();
    let facts = facts(params.clone());
    let inputs = entry_inputs(&p, &params).unwrap();
    let empty = BTreeMap::new();
    let scope = NodeScope {
        workflow: &facts,
        inputs: &inputs,
        outputs: &empty,
        item: None,
        pod_name: None,
    };
    let launch = container_launch(sleep, &[], &scope, "/sandbox")
        .unwrap()
        .unwrap();
    assert_eq!(launch.argv, ["sh", "-c", "sleep 5"]);
    assert_eq!(launch.env, [("STAGE".to_string(), "sleeping".to_string())]);
}

fn scope<'a>(
    workflow: &'a WorkflowFacts,
    inputs: &'a BTreeMap<String, String>,
    outputs: &'a BTreeMap<String, BTreeMap<String, String>>,
) -> NodeScope<'a> {
    NodeScope {
        workflow,
        inputs,
        outputs,
        item: None,
        pod_name: None,
    }
}

fn loop_condition(yaml: &str) {
    let p = parse_both(yaml);
    let d = dag(&p, "loop-condition");
    let shape = shape(&d);
    assert_eq!(shape["condition-1"], ["flip"]);
    assert_eq!(shape["for-loop-4"], ["shards"]);
    assert!(shape["for-loop-3"].is_empty());
    assert!(shape["flip"].is_empty() && shape["shards"].is_empty());

    let params = resolve_parameters(&p, &[]).unwrap();
    let facts = facts(params.clone());
    let inputs = entry_inputs(&p, &params).unwrap();
    let mut outputs = BTreeMap::new();

    // The condition, on the flip's output.
    let when = d.task("condition-1").unwrap().when.clone().unwrap();
    for (flip, runs) in [("heads", true), ("tails", false)] {
        outputs.insert(
            "flip".to_string(),
            BTreeMap::from([("flip-Output".to_string(), flip.to_string())]),
        );
        assert_eq!(
            when.evaluate(&scope(&facts, &inputs, &outputs)).unwrap(),
            runs,
            "{flip}"
        );
    }

    // The static loop: three nodes, each passing its item on.
    let letters = d.task("for-loop-3").unwrap();
    let items = expand_loop(
        &letters.name,
        letters.loop_over.as_ref().unwrap(),
        &scope(&facts, &inputs, &outputs),
    )
    .unwrap();
    let names: Vec<&str> = items.iter().map(|i| i.node_name.as_str()).collect();
    assert_eq!(
        names,
        ["for-loop-3(0:a)", "for-loop-3(1:b)", "for-loop-3(2:c)"]
    );
    let item_scope = NodeScope {
        item: Some(&items[1].item),
        ..scope(&facts, &inputs, &outputs)
    };
    assert_eq!(
        letters.parameters[0].value.render(&item_scope).unwrap(),
        "b"
    );
    assert_eq!(p.template("for-loop-3").unwrap().parallelism, None);

    // The loop over a step's output: its JSON list, `{{item.label}}`.
    outputs.insert(
        "shards".to_string(),
        BTreeMap::from([(
            "shards-Output".to_string(),
            r#"[{"index": 0, "label": "shard-0"}, {"index": 1, "label": "shard-1"}]"#.to_string(),
        )]),
    );
    let shards = d.task("for-loop-4").unwrap();
    let items = expand_loop(
        &shards.name,
        shards.loop_over.as_ref().unwrap(),
        &scope(&facts, &inputs, &outputs),
    )
    .unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].node_name, "for-loop-4(0:index:0,label:shard-0)");
    let item_scope = NodeScope {
        item: Some(&items[1].item),
        ..scope(&facts, &inputs, &outputs)
    };
    assert_eq!(
        shards.parameters[0].value.render(&item_scope).unwrap(),
        "shard-1"
    );
}

/// `compile` of one variant of `tests/fixtures/kfp/unsupported.py`.
fn compile_variant(python: &Path, variant: &str, dir: &Path) -> String {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kfp/unsupported.py");
    let target = dir.join(format!("{variant}.yaml"));
    let out = Command::new(python)
        .arg(&source)
        .arg(&target)
        .arg(variant)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compiling unsupported.py {variant}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&target).unwrap()
}

/// The index of the template named `name` in the compiled manifest.
fn template_index(yaml: &str, name: &str) -> usize {
    let value: serde_json::Value = serde_yaml::from_str(yaml).unwrap();
    value["spec"]["templates"]
        .as_array()
        .unwrap()
        .iter()
        .position(|t| t["name"] == name)
        .unwrap()
}

#[test]
fn sdk_features_drover_cannot_honour_are_refused_naming_the_field() {
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();

    let yaml = compile_variant(&python, "exit_handler", dir.path());
    let err = parse_workflow(&yaml).unwrap_err();
    assert!(matches!(err, PipelineError::Unsupported { .. }), "{err:?}");
    assert_eq!(err.field_path(), Some("spec.onExit"));

    // VolumeOp is a resource template; the first template read that asks
    // for what Drover cannot do is the one named.
    let yaml = compile_variant(&python, "volume_op", dir.path());
    let err = parse_workflow(&yaml).unwrap_err();
    assert!(matches!(err, PipelineError::Unsupported { .. }), "{err:?}");
    let make = template_index(&yaml, "make-volume");
    let work = template_index(&yaml, "work");
    let want = if make < work {
        format!("spec.templates[{make}].resource")
    } else {
        format!("spec.templates[{work}].volumes")
    };
    assert_eq!(err.field_path(), Some(want.as_str()));

    let yaml = compile_variant(&python, "secret_env", dir.path());
    let err = parse_workflow(&yaml).unwrap_err();
    assert!(matches!(err, PipelineError::Unsupported { .. }), "{err:?}");
    let work = template_index(&yaml, "work");
    assert_eq!(
        err.field_path(),
        Some(format!("spec.templates[{work}].container.env[0].valueFrom").as_str())
    );
}

#[test]
fn a_compiled_pipeline_with_a_volume_is_refused_naming_the_field() {
    // What `dsl.PipelineVolume` / `add_pvolumes` compile to, on a real SDK
    // manifest: refused at the template's volumes, before anything runs.
    let python = venv_python();
    let dir = tempfile::tempdir().unwrap();
    let yaml = compile(&python, "three_step", dir.path());
    let mut value: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let templates = value["spec"]["templates"].as_array_mut().unwrap();
    let (i, produce) = templates
        .iter_mut()
        .enumerate()
        .find(|(_, t)| t["name"] == "produce")
        .unwrap();
    produce["container"]["volumeMounts"] =
        serde_json::json!([{"name": "data", "mountPath": "/data"}]);
    let err = parse_workflow(&value.to_string()).unwrap_err();
    assert_eq!(
        err.field_path(),
        Some(format!("spec.templates[{i}].container.volumeMounts").as_str())
    );
    assert!(matches!(err, PipelineError::Unsupported { .. }));
}
