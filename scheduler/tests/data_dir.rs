//! One scheduler per data directory, with the real binary: a second
//! `drover-scheduler` on a directory in use stops at once, naming the pid
//! that holds it, and changes nothing; the holder's crash frees the
//! directory without anything to clean up.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;
use support::*;

/// No master listens on port 1: the scheduler keeps retrying, the API works.
const NO_MASTER: &str = "http://127.0.0.1:1";

/// How long a scheduler refusing to start may take to exit.
const EXITS_WITHIN: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_scheduler_on_a_data_directory_in_use_stops_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = start_scheduler(dir.path(), NO_MASTER, &[]);
    let body =
        serde_json::json!({"job_id": {"value": "kept"}, "spec": job_spec("BATCH", 1, "true")});
    let (status, _) = post(&first.address, "/api/v1/jobs", &body).await;
    assert_eq!(status, 200);

    let second = scheduler_args(dir.path(), NO_MASTER, &[]);
    let output = run_until_exit(&scheduler_bin(), &second, &[], EXITS_WITHIN)
        .await
        .unwrap_or_else(|_| panic!("a second scheduler on the same data directory kept running"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_data_directory_is_refused_at_start() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "a read-only mount needs root (CI runs as root)"
    );
    let dir = tempfile::tempdir().unwrap();
    // A read-only bind mount of the directory over itself, in a mount
    // namespace of the scheduler's own (root ignores file modes, not a
    // read-only mount).
    let (program, args) = in_mount_namespace(
        r#"mount --bind "$DATA" "$DATA" && mount -o remount,bind,ro "$DATA""#,
        dir.path(),
        &scheduler_bin(),
        scheduler_args(dir.path(), NO_MASTER, &[]),
    );
    let output = run_until_exit(&program, &args, &[], EXITS_WITHIN)
        .await
        .unwrap_or_else(|_| panic!("a scheduler on a read-only data directory kept running"));
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
