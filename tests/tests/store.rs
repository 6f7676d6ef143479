//! A store that knows itself, with the real binaries: a scheduler whose
//! store was emptied or deleted while the master still holds its framework
//! refuses to start (unless `--new-framework`), a corrupt store is refused
//! naming the file, and `drover-scheduler backup` of a running scheduler
//! restores into a scheduler with the same jobs and the same framework.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::run::run_until_exit;
use drover_tests::harness::scheduler::Scheduler;
use serde_json::Value;
use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);
const DB_FILE: &str = "drover.sqlite";

/// `(id, name, active)` of every framework the master still knows.
async fn master_frameworks(sim: &AgentSim) -> Vec<(String, String, bool)> {
    let (status, state) = sim.get("/master/state").await;
    assert_eq!(status, 200, "{state}");
    state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["id"].as_str().unwrap().to_owned(),
                f["name"].as_str().unwrap().to_owned(),
                f["active"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// How long a scheduler refusing to start, or a backup, may take to exit.
const REFUSAL: Duration = Duration::from_secs(20);

/// The output of `run`, a scheduler expected to exit on its own; fails
/// the test, with what the master then knows, if it kept running.
async fn exited(sim: &AgentSim, run: Result<Output, Output>) -> Output {
    match run {
        Ok(output) => output,
        Err(output) => panic!(
            "drover-scheduler kept running; the master's frameworks: {:?}; its log:\n{}",
            master_frameworks(sim).await,
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

/// A scheduler whose service job runs, SIGKILLed; its framework id.
async fn framework_with_running_tasks(sim: &AgentSim, data_dir: &Path) -> String {
    let master = format!("http://{}", sim.address);
    let mut s = Scheduler::start(data_dir, &master, &[]);
    create_job(&s.address, "svc", job_spec("SERVICE", 2, "sleep 1000")).await;
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    s.kill();
    let frameworks = master_frameworks(sim).await;
    assert_eq!(frameworks.len(), 1, "{frameworks:?}");
    frameworks[0].0.clone()
}

async fn an_emptied_store_is_refused_while_the_master_holds_our_framework(
    empty: impl FnOnce(&Path),
) {
    let sim = AgentSim::for_scheduler(2).start();
    let master = format!("http://{}", sim.address);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let framework_id = framework_with_running_tasks(&sim, &data_dir).await;
    empty(&data_dir);

    let run = Scheduler::on(&data_dir, &master)
        .run_until_exit(REFUSAL)
        .await;
    let output = exited(&sim, run).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(!output.status.success(), "{stderr}");
    let named = format!("{framework_id} (disconnected, 2 tasks)");
    for needed in [
        named.as_str(),
        "has no framework id",
        "drover-scheduler backup",
        "--new-framework",
    ] {
        assert!(
            stderr.contains(needed),
            "the refusal says {needed:?}: {stderr}"
        );
    }
    let frameworks = master_frameworks(&sim).await;
    assert_eq!(
        frameworks,
        vec![(framework_id.clone(), "drover".to_owned(), false)],
        "no new framework was registered"
    );

    // Told so, it registers a new framework beside the old one.
    let s = Scheduler::start(&data_dir, &master, &["--new-framework"]);
    let deadline = Instant::now() + LIMIT;
    loop {
        let frameworks = master_frameworks(&sim).await;
        if frameworks.iter().any(|f| f.0 != framework_id && f.2) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no new framework: {frameworks:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_data_directory_is_refused_while_the_master_holds_our_framework() {
    an_emptied_store_is_refused_while_the_master_holds_our_framework(|data_dir| {
        std::fs::remove_dir_all(data_dir).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_truncated_to_zero_bytes_is_refused_while_the_master_holds_our_framework() {
    an_emptied_store_is_refused_while_the_master_holds_our_framework(|data_dir| {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(data_dir.join(DB_FILE))
            .unwrap();
        file.set_len(0).unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_with_garbage_in_the_middle_is_refused_naming_the_file() {
    let sim = AgentSim::for_scheduler(4).start();
    let master = format!("http://{}", sim.address);
    let dir = tempfile::tempdir().unwrap();
    let mut s = Scheduler::start(dir.path(), &master, &[]);
    for n in 0..10 {
        let id = format!("batch-{n}");
        create_job(&s.address, &id, job_spec("BATCH", 100, "sleep 0.1")).await;
    }
    for n in 0..10 {
        wait_for_job_state(
            &s.address,
            &format!("batch-{n}"),
            "JOB_STATE_SUCCEEDED",
            LIMIT,
        )
        .await;
    }
    // SIGTERM: its last checkpoint copies the WAL into the file.
    s.stop();
    let path = dir.path().join(DB_FILE);
    let size = std::fs::metadata(&path).unwrap().len();
    assert!(size > 256 * 1024, "a store of many pages: {size} bytes");
    let garbage: Vec<u8> = (0u32..8192)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = (size / 2) as usize;
    bytes[middle..middle + garbage.len()].copy_from_slice(&garbage);
    std::fs::write(&path, bytes).unwrap();

    let run = Scheduler::on(dir.path(), &master)
        .run_until_exit(REFUSAL)
        .await;
    let output = exited(&sim, run).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("{stderr}");
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("{} is corrupt", path.display()))
            && stderr.contains("drover-scheduler backup"),
        "the refusal names the file and the restore: {stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("listening"),
        "it never served"
    );
}

/// The job ids a scheduler lists.
async fn job_ids(address: &str) -> Vec<String> {
    let (status, jobs) = drover_tests::harness::http::get(address, "/api/v1/jobs").await;
    assert_eq!(status, 200, "{jobs}");
    let mut ids: Vec<String> = jobs["jobs"]
        .as_array()
        .unwrap_or_else(|| panic!("no jobs array: {jobs}"))
        .iter()
        .map(|j: &Value| {
            j["job_id"]["value"]
                .as_str()
                .or_else(|| j["id"]["value"].as_str())
                .unwrap_or_else(|| panic!("a job without an id: {j}"))
                .to_owned()
        })
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_a_running_scheduler_restores_its_jobs_and_framework() {
    let sim = AgentSim::for_scheduler(2).start();
    let master = format!("http://{}", sim.address);
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut s = Scheduler::start(&data_dir, &master, &[]);
    create_job(&s.address, "done", job_spec("BATCH", 3, "sleep 0.1")).await;
    create_job(&s.address, "svc", job_spec("SERVICE", 2, "sleep 1000")).await;
    wait_for_job_state(&s.address, "done", "JOB_STATE_SUCCEEDED", LIMIT).await;
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    let before = job_ids(&s.address).await;
    let frameworks = master_frameworks(&sim).await;
    let framework_id = frameworks[0].0.clone();
    let (status, store) = drover_tests::harness::http::get(&s.address, "/api/v1/store").await;
    assert_eq!(status, 200, "{store}");
    assert_eq!(store["framework_id"], framework_id.as_str(), "{store}");
    let store_id = store["store_id"].as_str().unwrap().to_owned();

    // Online: the scheduler keeps running and holding its directory.
    let backup = dir.path().join("drover-backup.sqlite");
    let backup_args = [
        "backup",
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--to",
        backup.to_str().unwrap(),
    ]
    .map(str::to_owned);
    let run = run_until_exit(&binaries::scheduler(), &backup_args, &[], REFUSAL).await;
    let output = exited(&sim, run).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&framework_id) && stdout.contains(&store_id),
        "{stdout}"
    );
    assert_eq!(
        job_ids(&s.address).await,
        before,
        "the scheduler still serves"
    );

    // The disk is lost with the scheduler; the backup goes into a new,
    // empty data directory.
    s.kill();
    let restored = dir.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    std::fs::copy(&backup, restored.join(DB_FILE)).unwrap();
    let s = Scheduler::start(&restored, &master, &[]);
    wait_for_job_state(&s.address, "done", "JOB_STATE_SUCCEEDED", LIMIT).await;
    wait_for_job_state(&s.address, "svc", "JOB_STATE_RUNNING", LIMIT).await;
    assert_eq!(job_ids(&s.address).await, before);
    let (_, restored_store) = drover_tests::harness::http::get(&s.address, "/api/v1/store").await;
    assert_eq!(
        (&restored_store["store_id"], &restored_store["framework_id"]),
        (&store["store_id"], &store["framework_id"]),
        "the same store, as the same framework"
    );
    let deadline = Instant::now() + LIMIT;
    loop {
        let frameworks = master_frameworks(&sim).await;
        if frameworks == vec![(framework_id.clone(), "drover".to_owned(), true)] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the restored scheduler is framework {framework_id} again, and the only one: \
             {frameworks:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
