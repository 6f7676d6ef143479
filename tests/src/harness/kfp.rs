//! The Kubeflow Pipelines 1.8 clients (the `kfp` SDK and `kfp-server-api`),
//! in the venv `scripts/kfp-env.sh` makes (or reuses) under
//! `target/kfp-venv`, and the Python drivers in this crate's `kfp/`
//! directory. Fails, never skips, without Python 3, venv and pip. And
//! what the run tests share: the run service's client, the SDK's compile
//! of a fixture, a run's nodes, and a cluster of real agents.

use std::path::{Path, PathBuf};
use std::process::Command;

use drover_seed_api::kfp::run_service_client::RunServiceClient;
use drover_seed_api::kfp::{CreateRunRequest, GetRunRequest, Parameter, PipelineSpec, Run};
use serde_json::Value;
use tempfile::TempDir;
use tonic::transport::Channel;

use super::agent_sim::AgentSim;
use super::binaries::{self, repo_root};
use super::scheduler::Scheduler;
use super::venv;

/// Runs `scripts/kfp-env.sh` and returns the venv's python. Blocking: call
/// it from `spawn_blocking` in async tests.
#[track_caller]
pub fn venv_python() -> PathBuf {
    venv::python("kfp-env.sh")
}

/// The Python driver `name` (`client_check.py`) in this crate's `kfp/`
/// directory.
pub fn script(name: &str) -> PathBuf {
    venv::program("kfp", name)
}

/// The scheduler's Kubeflow run service over gRPC.
pub type Runs = RunServiceClient<Channel>;

/// A client of the run service at `address`.
pub async fn runs_client(address: &str) -> Runs {
    RunServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap_or_else(|e| panic!("connecting to the run service at {address}: {e}"))
}

/// The kfp fixture `name` (`scheduler/tests/fixtures/kfp/<name>.py`)
/// compiled by the SDK into `dir`: the Argo Workflow as YAML.
pub async fn compile(name: &str, dir: &Path) -> String {
    let target = dir.join(format!("{name}.yaml"));
    let fixture = repo_root()
        .join("scheduler/tests/fixtures/kfp")
        .join(format!("{name}.py"));
    let out = {
        let target = target.clone();
        tokio::task::spawn_blocking(move || {
            Command::new(venv_python())
                .arg(fixture)
                .arg(target)
                .output()
        })
        .await
        .expect("the compile task")
        .expect("the kfp venv's python runs")
    };
    assert!(
        out.status.success(),
        "compiling {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(target).expect("the compiled pipeline")
}

/// A CreateRunV1 request: `manifest` with its `parameters`.
pub fn create_request(name: &str, manifest: &str, parameters: &[(&str, &str)]) -> CreateRunRequest {
    CreateRunRequest {
        run: Some(Run {
            name: name.into(),
            pipeline_spec: Some(PipelineSpec {
                workflow_manifest: manifest.into(),
                parameters: parameters
                    .iter()
                    .map(|(name, value)| Parameter {
                        name: name.to_string(),
                        value: value.to_string(),
                    })
                    .collect(),
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// The run's status and its workflow's `status.nodes`.
pub async fn read(runs: &mut Runs, id: &str) -> (String, Value) {
    let detail = runs
        .get_run_v1(GetRunRequest { run_id: id.into() })
        .await
        .unwrap_or_else(|e| panic!("GetRunV1 {id}: {e}"))
        .into_inner();
    let manifest = detail
        .pipeline_runtime
        .unwrap_or_default()
        .workflow_manifest;
    let workflow: Value = serde_json::from_str(&manifest)
        .unwrap_or_else(|e| panic!("the run's workflow_manifest: {e}: {manifest}"));
    let status = detail.run.unwrap_or_default().status;
    (status, workflow["status"]["nodes"].clone())
}

/// The node of `nodes` (a workflow's `status.nodes`) displayed as
/// `display`.
pub fn node<'a>(nodes: &'a Value, display: &str) -> &'a Value {
    nodes
        .as_object()
        .and_then(|all| all.values().find(|n| n["displayName"] == display))
        .unwrap_or_else(|| panic!("no node {display}: {nodes:#}"))
}

/// `node`'s output parameter `name`.
pub fn output<'a>(node: &'a Value, name: &str) -> &'a str {
    node["outputs"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["value"].as_str())
        .unwrap_or_else(|| panic!("no output {name}: {node:#}"))
}

/// A scheduler's cluster for pipeline runs: agent-sim with two real
/// agents (a run's steps are host commands under drover-executor: the
/// scheduler runs with `--kfp-images host`, as the python steps need the
/// host's kfp venv), and a data dir that outlives the scheduler's restarts.
pub struct RealCluster {
    pub sim: AgentSim,
    pub data: TempDir,
    executor: PathBuf,
}

impl RealCluster {
    /// Two real agents whose sandboxes are under `work`.
    pub fn start(work: &Path) -> RealCluster {
        RealCluster {
            executor: binaries::executor(),
            sim: AgentSim::for_scheduler(2).real_agents(2, work).start(),
            data: tempfile::tempdir().expect("a data dir"),
        }
    }

    /// A scheduler on it (again, after a kill: the same data dir).
    pub fn scheduler(&self) -> Scheduler {
        let master = format!("http://{}", self.sim.address);
        let executor = self.executor.to_str().expect("a UTF-8 path");
        Scheduler::start(
            self.data.path(),
            &master,
            &["--executor", executor, "--kfp-images", "host"],
        )
    }
}
