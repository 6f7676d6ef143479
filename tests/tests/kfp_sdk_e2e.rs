//! Issue 23's first Done-when, with the real kfp 1.8 SDK end to end (the
//! venv `scripts/kfp-env.sh` makes): `kfp.Client.create_run_from_pipeline_func`
//! of the three-step pipeline (a producer writing an output parameter and
//! an artifact, two consumers in parallel, a join) against the real
//! scheduler on agent-sim with real agents only (host `python3` runs the
//! components under drover-executor). The run Succeeds with the parameter
//! passed along; `ReadArtifactV1` through `kfp_server_api` answers a
//! gzipped tar of exactly the artifact's file, read from the node's
//! sandbox through the agent's files API; `ReportRunMetricsV1` answers
//! per-metric results (an invalid name and a missing node id
//! INVALID_ARGUMENT, a repeat DUPLICATE_REPORTING keeping the first value)
//! and `GetRunV1`/`ListRunsV1` show the metrics kept. After a scheduler
//! SIGKILL the metrics are still there (stored before acknowledged) and
//! the artifact is still read over gRPC. Fails, never skips, without
//! Python 3 with venv and pip.
#![allow(clippy::unwrap_used)]

use drover_seed_api::kfp::{run_metric, GetRunRequest, ReadArtifactRequest};
use drover_tests::harness::kfp::{runs_client, script, venv_python, RealCluster};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The venv install (first run), the compile and the run.
const LIMIT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kfp_sdk_runs_the_three_step_pipeline_reads_its_artifact_and_reports_metrics() {
    let python = tokio::task::spawn_blocking(venv_python).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let cluster = RealCluster::start(work.path());
    let mut scheduler = cluster.scheduler();
    let host = format!("http://{}", scheduler.address);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scheduler/tests/fixtures/kfp");

    let out = tokio::time::timeout(
        LIMIT,
        tokio::task::spawn_blocking(move || {
            Command::new(&python)
                .arg(script("sdk_run.py"))
                .arg(&host)
                .arg(&fixtures)
                .env("HOME", std::env::temp_dir())
                .output()
                .unwrap()
        }),
    )
    .await
    .expect("the SDK driver ends in time")
    .unwrap();
    assert!(
        out.status.success(),
        "sdk_run.py: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    assert_eq!(got["status"], "Succeeded", "{got:#}");
    assert_eq!(got["phases"], json!(["Succeeded"]), "{got:#}");
    // The SDK put the run in the Default experiment.
    assert_eq!(got["experiment_refs"], json!(["EXPERIMENT"]), "{got:#}");
    // The parameter passed along: producer → both consumers → join.
    assert_eq!(got["producer_output"], "HOWDY", "{got:#}");
    assert_eq!(
        got["consumer_outputs"],
        json!(["HOWDY-left", "HOWDY-right"]),
        "{got:#}"
    );
    assert_eq!(got["join_output"], "HOWDY-left|HOWDY-right|howdy report");
    // The artifact: a gzipped tar of exactly its one file, as written.
    assert!(
        got["producer_artifacts"]
            .as_array()
            .unwrap()
            .contains(&json!("produce-report")),
        "{got:#}"
    );
    assert_eq!(got["artifact_members"], json!(["data"]), "{got:#}");
    assert_eq!(got["artifact_content"], "howdy report\n");
    assert_eq!(got["missing_artifact"]["status"], 404, "{got:#}");
    let missing = got["missing_artifact"]["body"]["error"].to_string();
    assert!(missing.contains("no-such-artifact"), "{got:#}");
    // Metrics: per-metric results inside 200s, the first value kept.
    assert_eq!(
        got["report_first"],
        json!([
            ["accuracy", "OK"],
            ["Bad_Name", "INVALID_ARGUMENT"],
            ["loss", "INVALID_ARGUMENT"]
        ]),
        "{got:#}"
    );
    assert_eq!(
        got["report_again"],
        json!([["accuracy", "DUPLICATE_REPORTING"], ["loss", "OK"]]),
        "{got:#}"
    );
    assert_eq!(
        got["metrics"],
        json!([
            ["accuracy", true, 0.75, "PERCENTAGE"],
            ["loss", true, 0.5, "RAW"]
        ]),
        "{got:#}"
    );
    assert_eq!(got["listed_metrics"], 2, "{got:#}");

    // A SIGKILL loses nothing acknowledged: the metrics are read back
    // over gRPC, and the artifact is still read from the sandbox.
    scheduler.kill();
    let scheduler = cluster.scheduler();
    let mut runs = runs_client(&scheduler.address).await;
    let run_id = got["run_id"].as_str().unwrap().to_string();
    let run = runs
        .get_run_v1(GetRunRequest {
            run_id: run_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap();
    let metrics: Vec<(String, Option<run_metric::Value>)> = run
        .metrics
        .iter()
        .map(|m| (m.name.clone(), m.value))
        .collect();
    assert_eq!(
        metrics,
        [
            (
                "accuracy".to_string(),
                Some(run_metric::Value::NumberValue(0.75))
            ),
            (
                "loss".to_string(),
                Some(run_metric::Value::NumberValue(0.5))
            )
        ]
    );
    let request = ReadArtifactRequest {
        run_id,
        node_id: run.metrics[0].node_id.clone(),
        artifact_name: "produce-report".into(),
    };
    let read = runs
        .read_artifact_v1(request.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(&read.data[..2], &[0x1f, 0x8b], "a gzip stream");

    // The cluster gone (master and agents, sandboxes with them): the copy
    // the run kept when its node succeeded is read, the same archive.
    drop(cluster.sim);
    let kept = runs
        .read_artifact_v1(request)
        .await
        .unwrap_or_else(|e| panic!("the kept copy is read: {e}"))
        .into_inner();
    assert_eq!(kept.data, read.data, "the same file, the same archive");
}
