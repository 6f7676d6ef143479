//! A Kubeflow pipeline run's life after create, over gRPC `api.RunService`
//! on the real scheduler and agent-sim with real agents only (issue 23):
//! a step that fails until a host file exists is retried by its
//! `retryStrategy` (with its backoff) and the run fails; the test writes
//! the file, RetryRunV1 reruns only that step (the step before is not run
//! again: each step counts its runs in a host file), the scheduler is
//! SIGKILLed right after the retry and the restarted one carries the run
//! to Succeeded. A long run: RetryRunV1 is refused while it runs,
//! TerminateRunV1 kills it, archive and unarchive are seen by a list
//! filtered on `storage_state`, and DeleteRunV1 makes GetRunV1 NOT_FOUND.
//! An experiment made before the SIGKILL is there after it.
//! Fails, never skips, without Python 3 with venv and pip.
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use drover_seed_api::kfp::*;
use drover_tests::harness::http::request;
use drover_tests::harness::kfp::{compile, create_request, read, runs_client, RealCluster, Runs};
use drover_tests::harness::wait::wait_for;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

fn phase_of(nodes: &Value, display: &str) -> String {
    nodes
        .as_object()
        .and_then(|all| all.values().find(|n| n["displayName"] == display))
        .and_then(|n| n["phase"].as_str())
        .unwrap_or("")
        .to_owned()
}

/// Waits until the run's status is one of `statuses`.
async fn wait_status(runs: &Runs, id: &str, statuses: &[&str]) -> (String, Value) {
    let done = wait_for(LIMIT, || {
        let (mut runs, id) = (runs.clone(), id.to_owned());
        async move {
            let (status, nodes) = read(&mut runs, &id).await;
            statuses
                .contains(&status.as_str())
                .then_some((status, nodes))
        }
    })
    .await;
    match done {
        Some(done) => done,
        None => panic!(
            "never {statuses:?}: {:#?}",
            read(&mut runs.clone(), id).await
        ),
    }
}

/// How many times a step has run (lines in its host file).
fn runs_of(dir: &Path, step: &str) -> usize {
    std::fs::read_to_string(dir.join(format!("{step}.runs")))
        .map(|text| text.lines().count())
        .unwrap_or(0)
}

/// The names of the runs a `storage_state` predicate selects.
async fn listed(runs: &mut Runs, op: &str, state: &str) -> Vec<String> {
    let filter = format!(
        r#"{{"predicates": [{{"key": "storage_state", "op": "{op}", "string_value": "{state}"}}]}}"#
    );
    let page = runs
        .list_runs_v1(ListRunsRequest {
            filter,
            sort_by: "name".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    page.runs.into_iter().map(|r| r.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_terminate_archive_and_delete_runs_on_real_agents() {
    let work = tempfile::tempdir().unwrap();
    let markers = tempfile::tempdir().unwrap();
    // The steps run as their task's user: they must write there.
    std::fs::set_permissions(
        markers.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let retrying = compile("retry_host_file", work.path()).await;
    let long = compile("long_running", work.path()).await;
    let cluster = RealCluster::start(work.path());
    let mut s = cluster.scheduler();
    let mut runs = runs_client(&s.address).await;

    // The step fails until its input exists: its two retries fail too.
    let marker_dir = markers.path().to_str().unwrap();
    let since = std::time::Instant::now();
    let created = runs
        .create_run_v1(create_request(
            "flaky",
            &retrying,
            &[("marker_dir", marker_dir)],
        ))
        .await
        .unwrap()
        .into_inner();
    let flaky = created.run.unwrap().id;
    let (status, nodes) = wait_status(&runs, &flaky, &["Succeeded", "Failed", "Error"]).await;
    assert_eq!(status, "Failed", "{nodes:#}");
    assert_eq!(phase_of(&nodes, "prepare"), "Succeeded", "{nodes:#}");
    assert_eq!(phase_of(&nodes, "flaky"), "Failed", "{nodes:#}");
    assert_eq!(runs_of(markers.path(), "prepare"), 1);
    assert_eq!(runs_of(markers.path(), "flaky"), 3, "a run and 2 retries");
    // Its backoff: 1 s before the first retry, 2 s before the second (a
    // lower bound, so no load makes it flaky).
    assert!(
        since.elapsed() >= Duration::from_secs(3),
        "{:?}",
        since.elapsed()
    );

    // An experiment made now is kept through the crash below.
    let made = request(
        &s.address,
        "POST",
        "/apis/v1beta1/experiments",
        &[("Content-Type", "application/json")],
        Bytes::from_static(br#"{"name": "lifecycle"}"#),
    )
    .await;
    assert_eq!(made.status, 200, "{:?}", made.body);
    let experiment: Value = serde_json::from_slice(&made.body).unwrap();

    // Fixed, retried, and the scheduler killed at once: the retry was
    // stored before it was answered.
    std::fs::write(markers.path().join("input.txt"), "4\n").unwrap();
    runs.retry_run_v1(RetryRunRequest {
        run_id: flaky.clone(),
    })
    .await
    .unwrap();
    s.kill();
    let s = cluster.scheduler();
    let mut runs = runs_client(&s.address).await;
    let (status, nodes) = wait_status(&runs, &flaky, &["Succeeded", "Failed", "Error"]).await;
    assert_eq!(status, "Succeeded", "{nodes:#}");
    assert_eq!(
        runs_of(markers.path(), "prepare"),
        1,
        "prepare is not rerun"
    );
    let path = format!(
        "/apis/v1beta1/experiments/{}",
        experiment["id"].as_str().unwrap()
    );
    let kept = request(&s.address, "GET", &path, &[], Bytes::new()).await;
    assert_eq!(kept.status, 200, "{:?}", kept.body);
    assert_eq!(
        serde_json::from_slice::<Value>(&kept.body).unwrap(),
        experiment
    );
    assert_eq!(runs_of(markers.path(), "flaky"), 4);
    assert_eq!(
        std::fs::read_to_string(markers.path().join("flaky.result")).unwrap(),
        "10",
        "3 * 2 (prepare's kept output) + 4"
    );

    // A long run: not retried while it runs; terminated.
    let created = runs
        .create_run_v1(create_request("long", &long, &[("seconds", "300")]))
        .await
        .unwrap()
        .into_inner();
    let long_id = created.run.unwrap().id;
    let running = wait_for(LIMIT, || {
        let (mut runs, id) = (runs.clone(), long_id.clone());
        async move { (phase_of(&read(&mut runs, &id).await.1, "sleep") == "Running").then_some(()) }
    })
    .await;
    assert!(running.is_some(), "{:#?}", read(&mut runs, &long_id).await);
    let refused = runs
        .retry_run_v1(RetryRunRequest {
            run_id: long_id.clone(),
        })
        .await
        .unwrap_err();
    // As kfp 1.8 refuses it: its BadRequestError is ABORTED.
    assert_eq!(refused.code(), tonic::Code::Aborted);
    assert!(
        refused
            .message()
            .contains("Workflow must be Failed/Error to retry"),
        "{}",
        refused.message()
    );
    runs.terminate_run_v1(TerminateRunRequest {
        run_id: long_id.clone(),
    })
    .await
    .unwrap();
    let (status, nodes) = wait_status(&runs, &long_id, &["Succeeded", "Failed", "Error"]).await;
    assert_eq!(status, "Failed", "{nodes:#}");
    assert_eq!(phase_of(&nodes, "sleep"), "Failed", "{nodes:#}");

    // Archive and unarchive, as a list filtered on storage_state sees.
    runs.archive_run_v1(ArchiveRunRequest {
        id: long_id.clone(),
    })
    .await
    .unwrap();
    let archived = "STORAGESTATE_ARCHIVED";
    assert_eq!(listed(&mut runs, "EQUALS", archived).await, ["long"]);
    assert_eq!(listed(&mut runs, "NOT_EQUALS", archived).await, ["flaky"]);
    runs.unarchive_run_v1(UnarchiveRunRequest {
        id: long_id.clone(),
    })
    .await
    .unwrap();
    assert!(listed(&mut runs, "EQUALS", archived).await.is_empty());
    assert_eq!(
        listed(&mut runs, "EQUALS", "STORAGESTATE_AVAILABLE").await,
        ["flaky", "long"]
    );

    // Deleted: gone from get and list.
    runs.delete_run_v1(DeleteRunRequest {
        id: long_id.clone(),
    })
    .await
    .unwrap();
    let gone = runs
        .get_run_v1(GetRunRequest {
            run_id: long_id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(gone.code(), tonic::Code::NotFound);
    let all = runs
        .list_runs_v1(ListRunsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_size, 1);
    assert_eq!(all.runs[0].id, flaky);
}
