//! Kubeflow pipeline runs end to end over gRPC `api.RunService` (issue
//! 23): the three-step pipeline compiled by the real kfp 1.8 SDK
//! (the venv `scripts/kfp-env.sh` makes), run by the real scheduler on
//! agent-sim with real agents only (host `python3` runs kfp's lightweight
//! components under drover-executor), the scheduler SIGKILLed and
//! started again while the run goes; it reaches Succeeded with the
//! producer's parameter and artifact passed along. A manifest Drover
//! cannot run is refused naming the field, and nothing is stored. Fails,
//! never skips, without Python 3 with venv and pip.
#![allow(clippy::unwrap_used)]

use drover_seed_api::kfp::run_service_client::RunServiceClient;
use drover_seed_api::kfp::*;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tonic::transport::Channel;

const LIMIT: Duration = Duration::from_secs(120);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The kfp venv's python (`scripts/kfp-env.sh` prints it last).
fn venv_python() -> PathBuf {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/kfp-env.sh"))
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "scripts/kfp-env.sh failed: Python 3 with venv and pip are required"
    );
    PathBuf::from(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .trim(),
    )
}

/// The three-step pipeline as the SDK compiles it (Argo YAML).
fn compile_three_step(dir: &Path) -> String {
    let target = dir.join("three_step.yaml");
    let out = Command::new(venv_python())
        .arg(repo_root().join("scheduler/tests/fixtures/kfp/three_step.py"))
        .arg(&target)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(target).unwrap()
}

fn create_request(manifest: &str, greeting: &str) -> CreateRunRequest {
    CreateRunRequest {
        run: Some(Run {
            name: "three steps".into(),
            pipeline_spec: Some(PipelineSpec {
                workflow_manifest: manifest.into(),
                parameters: vec![Parameter {
                    name: "greeting".into(),
                    value: greeting.into(),
                }],
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

async fn client(address: &str) -> RunServiceClient<Channel> {
    RunServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap()
}

/// The run's status and its workflow's `status.nodes`.
async fn read(runs: &mut RunServiceClient<Channel>, id: &str) -> (String, Value) {
    let detail = runs
        .get_run_v1(GetRunRequest { run_id: id.into() })
        .await
        .unwrap()
        .into_inner();
    let workflow: Value =
        serde_json::from_str(&detail.pipeline_runtime.unwrap().workflow_manifest).unwrap();
    (
        detail.run.unwrap().status,
        workflow["status"]["nodes"].clone(),
    )
}

fn node<'a>(nodes: &'a Value, display: &str) -> &'a Value {
    nodes
        .as_object()
        .unwrap()
        .values()
        .find(|n| n["displayName"] == display)
        .unwrap_or_else(|| panic!("no node {display}: {nodes:#}"))
}

fn output<'a>(node: &'a Value, name: &str) -> &'a str {
    node["outputs"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
        .unwrap_or_else(|| panic!("no output {name}: {node:#}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_step_pipeline_runs_to_success_through_a_scheduler_crash() {
    let work = tempfile::tempdir().unwrap();
    let manifest = compile_three_step(work.path());
    let executor = binaries::executor();
    let sim = AgentSim::for_scheduler(2)
        .real_agents(2, work.path())
        .start();
    let dir = tempfile::tempdir().unwrap();
    let master = format!("http://{}", sim.address);
    let args = ["--executor", executor.to_str().unwrap()];
    let mut s = Scheduler::start(dir.path(), &master, &args);
    let mut runs = client(&s.address).await;

    // Refused naming the field, nothing stored.
    let volume = manifest.replacen("spec:\n", "spec:\n  volumes:\n  - {name: data}\n", 1);
    let refused = runs
        .create_run_v1(create_request(&volume, "hi"))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().contains("spec.volumes"),
        "{}",
        refused.message()
    );
    let listed = runs
        .list_runs_v1(ListRunsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_size, 0);

    let created = runs
        .create_run_v1(create_request(&manifest, "howdy"))
        .await
        .unwrap()
        .into_inner();
    let id = created.run.unwrap().id;

    // SIGKILL once the producer has finished and the consumers are
    // started, then carry on from the store.
    let started = wait_for(LIMIT, || {
        let (mut runs, id) = (runs.clone(), id.clone());
        async move {
            let (_, nodes) = read(&mut runs, &id).await;
            nodes
                .as_object()?
                .values()
                .any(|n| n["displayName"] == "consume" && n["phase"] == "Running")
                .then_some(())
        }
    })
    .await;
    assert!(started.is_some(), "{:#?}", read(&mut runs, &id).await);
    s.kill();
    let s = Scheduler::start(dir.path(), &master, &args);
    let mut runs = client(&s.address).await;

    let done = wait_for(LIMIT, || {
        let (mut runs, id) = (runs.clone(), id.clone());
        async move {
            let (status, nodes) = read(&mut runs, &id).await;
            (status == "Succeeded" || status == "Failed" || status == "Error")
                .then_some((status, nodes))
        }
    })
    .await;
    let (status, nodes) = match done {
        Some(done) => done,
        None => panic!("never finished: {:#?}", read(&mut runs, &id).await),
    };
    assert_eq!(status, "Succeeded", "{nodes:#}");
    assert_eq!(output(node(&nodes, "produce"), "produce-Output"), "HOWDY");
    assert_eq!(
        output(node(&nodes, "consume"), "consume-Output"),
        "HOWDY-left"
    );
    assert_eq!(
        output(node(&nodes, "consume-2"), "consume-2-Output"),
        "HOWDY-right"
    );
    // The join took both consumers' outputs, and succeeded reading the
    // producer's report artifact (its command opens the file); its own
    // output nobody consumes, so kfp compiles it as an artifact only.
    let join = node(&nodes, "join");
    let inputs = &join["inputs"]["parameters"];
    assert!(
        inputs.to_string().contains("HOWDY-left") && inputs.to_string().contains("HOWDY-right"),
        "{join:#}"
    );
    assert_eq!(join["outputs"]["artifacts"][0]["name"], "join-Output");
    assert_eq!(
        node(&nodes, "produce")["outputs"]["artifacts"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    for n in nodes.as_object().unwrap().values() {
        assert_eq!(n["phase"], "Succeeded", "{n:#}");
        assert!(
            n["startedAt"].is_string() && n["finishedAt"].is_string(),
            "{n:#}"
        );
    }
}
