//! The real kfp 1.8 SDK (`kfp.Client(host=..., existing_token=...)`, from
//! the venv `scripts/kfp-env.sh` makes) against the real scheduler behind
//! its authentication: the client's construction reads `healthz` (single
//! user: no namespace asked), `get_experiment(experiment_name="Default")`
//! finds Default, `create_experiment` gets or creates by name as
//! `create_run_from_pipeline_package` does, and a missing experiment is
//! the kfp error the SDK raises. `list_runs` of an experiment reaches the
//! run service through the REST face (no run yet: an empty page).
#![allow(clippy::unwrap_used)]

use drover_scheduler::auth::credentials::digest_text;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::kfp::{script, venv_python};
use drover_tests::harness::scheduler::Scheduler;
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const TOKEN: &str = "kfp-sdk-token";
/// The venv install (first run) and the client's calls.
const LIMIT: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kfp_sdk_finds_default_and_gets_or_creates_experiments() {
    let python = tokio::task::spawn_blocking(venv_python).await.unwrap();
    let sim = AgentSim::for_scheduler(1).start();
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials.yaml");
    std::fs::write(
        &credentials,
        format!(
            "users:\n  - name: kfp\n    role: user\n    tokens: [{}]\n",
            digest_text(TOKEN)
        ),
    )
    .unwrap();
    let scheduler = Scheduler::on(&dir.path().join("data"), &format!("http://{}", sim.address))
        .args(&["--credentials-file", credentials.to_str().unwrap()])
        .start();
    let host = format!("http://{}", scheduler.address);

    let run = |token: &'static str| {
        let (python, host) = (python.clone(), host.clone());
        tokio::time::timeout(
            LIMIT,
            tokio::task::spawn_blocking(move || {
                Command::new(&python)
                    .arg(script("client_check.py"))
                    .arg(&host)
                    .arg(token)
                    .env("HOME", std::env::temp_dir())
                    .output()
                    .unwrap()
            }),
        )
    };
    let out = run(TOKEN).await.expect("the driver ends in time").unwrap();
    assert!(
        out.status.success(),
        "client_check.py: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let got: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();

    assert_eq!(got["multi_user"], false, "{got}");
    assert_eq!(got["default_name"], "Default", "{got}");
    assert_eq!(
        got["default_storage_state"], "STORAGESTATE_AVAILABLE",
        "{got}"
    );
    assert!(
        got["default_created_at"].as_str().unwrap().contains('T'),
        "{got}"
    );
    assert_eq!(
        got["default_again_id"], got["default_id"],
        "Default is got, not made again"
    );
    assert_eq!(
        got["created_again_id"], got["created_id"],
        "a name is got, not made again"
    );
    assert_ne!(got["created_id"], got["default_id"]);
    assert_eq!(got["created_by_id_name"], "drover-e2e");
    assert_eq!(got["experiments_total"], 2, "{got}");
    assert_eq!(got["missing"]["status"], 404, "{got}");
    assert_eq!(got["missing"]["body"]["code"], 5, "{got}");
    // The run service through the REST face, with the SDK's own query.
    assert_eq!(got["list_runs"]["status"], 200, "{got}");
    assert!(
        matches!(got["list_runs"]["total_size"].as_i64(), None | Some(0)),
        "{got}"
    );

    // A wrong token is refused before anything is served.
    let out = run("not-the-token")
        .await
        .expect("the driver ends in time")
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("401"), "{stderr}");
}
