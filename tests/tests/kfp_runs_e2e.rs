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

use drover_seed_api::kfp::*;
use drover_tests::harness::kfp::{
    compile, create_request, node, output, read, runs_client, RealCluster,
};
use drover_tests::harness::wait::wait_for;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_step_pipeline_runs_to_success_through_a_scheduler_crash() {
    let work = tempfile::tempdir().unwrap();
    let manifest = compile("three_step", work.path()).await;
    let cluster = RealCluster::start(work.path());
    let mut s = cluster.scheduler();
    let mut runs = runs_client(&s.address).await;

    // Refused naming the field, nothing stored.
    let volume = manifest.replacen("spec:\n", "spec:\n  volumes:\n  - {name: data}\n", 1);
    let refused = runs
        .create_run_v1(create_request(
            "three steps",
            &volume,
            &[("greeting", "hi")],
        ))
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
        .create_run_v1(create_request(
            "three steps",
            &manifest,
            &[("greeting", "howdy")],
        ))
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
    let s = cluster.scheduler();
    let mut runs = runs_client(&s.address).await;

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
