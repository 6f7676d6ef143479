//! One scheduler per data directory, with the real binary: a second
//! `drover-scheduler` on a directory in use stops at once, naming the pid
//! that holds it, and changes nothing; the holder's crash frees the
//! directory without anything to clean up.
#![allow(clippy::unwrap_used)]

mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// No master listens on port 1: the scheduler keeps retrying, the API works.
const NO_MASTER: &str = "http://127.0.0.1:1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scheduler_on_a_data_directory_in_use_stops_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start_scheduler(dir.path(), NO_MASTER, &[]);
    let body =
        serde_json::json!({"job_id": {"value": "kept"}, "spec": job_spec("BATCH", 1, "true")});
    let (status, _) = post(&first.address, "/api/v1/jobs", &body).await;
    assert_eq!(status, 200);

    let mut second = Command::new(scheduler_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--master",
            NO_MASTER,
            "--data-dir",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            panic!("a second scheduler on the same data directory kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!status.success(), "{stderr}");
    let holder = format!("pid {}", first.child.id());
    assert!(
        stderr.contains(&holder) && stderr.contains("one scheduler per data directory"),
        "the refusal names the holder ({holder}): {stderr}"
    );
    // The first still serves what it stored.
    let (status, job) = get(&first.address, "/api/v1/jobs/kept").await;
    assert_eq!(status, 200, "{job}");

    // A crash leaves no lock behind: the next scheduler starts and has the job.
    first.kill();
    let third = start_scheduler(dir.path(), NO_MASTER, &[]);
    let (status, job) = get(&third.address, "/api/v1/jobs/kept").await;
    assert_eq!(status, 200, "{job}");
}

#[test]
fn a_read_only_data_directory_is_refused_at_start() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "a read-only mount needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap();
    // A read-only bind mount of the directory over itself, in a mount
    // namespace of the scheduler's own (root ignores file modes, not a
    // read-only mount).
    let script = format!(
        "mount --bind '{data}' '{data}' && mount -o remount,bind,ro '{data}' && exec '{}' \
         --listen 127.0.0.1:0 --master {NO_MASTER} --data-dir '{data}'",
        scheduler_bin().display()
    );
    let mut child = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            &script,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("a scheduler on a read-only data directory kept running");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("drover.lock") && stderr.contains("Read-only file system"),
        "the refusal says why: {stderr}"
    );
    assert!(
        !String::from_utf8_lossy(&output.stdout).contains("listening"),
        "it never served"
    );
}
