//! Health that tells the truth, with the real binaries: `/health/ready`
//! answers 503 naming each condition that fails (not subscribed, the store
//! not writable) and 200 once all hold again, while `/health/live` stays
//! 200. The full disk is real: the scheduler runs in a private mount
//! namespace with a small tmpfs as its data directory, and the test grows
//! it again from outside with `nsenter`.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::job_spec;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);

/// The names of the conditions `/health/ready` says fail (none when 200).
async fn failing(address: &str) -> (u16, Vec<String>) {
    let (status, body) = get(address, "/health/ready").await;
    let names = body["failing"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|f| f["condition"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default();
    (status, names)
}

async fn wait_ready(address: &str, want: (u16, Vec<String>)) {
    let reached = wait_for(LIMIT, || {
        let want = want.clone();
        async move { (failing(address).await == want).then_some(()) }
    })
    .await;
    if reached.is_none() {
        let now = failing(address).await;
        panic!("readiness stayed {now:?}, wanted {want:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_goes_red_while_unsubscribed_and_green_once_subscribed() {
    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(dir.path(), "http://127.0.0.1:1", &[]);
    wait_ready(&scheduler.address, (503, vec!["subscribed".into()])).await;
    let (_, body) = get(&scheduler.address, "/health/ready").await;
    assert!(
        body["failing"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not subscribed"),
        "{body}"
    );
    let (status, live) = get(&scheduler.address, "/health/live").await;
    assert_eq!((status, live), (200, json!({"status": "ok"})));
    let (status, health) = get(&scheduler.address, "/health").await;
    assert_eq!(status, 200);
    assert_eq!(
        (&health["ready"], &health["subscribed"]),
        (&json!(false), &json!(false))
    );

    let sim = AgentSim::for_scheduler(1).start();
    let dir = tempfile::tempdir().unwrap();
    let master = format!("http://{}", sim.address);
    let scheduler = Scheduler::start(dir.path(), &master, &[]);
    wait_ready(&scheduler.address, (200, Vec::new())).await;
    let (_, health) = get(&scheduler.address, "/health").await;
    assert_eq!(
        (&health["ready"], &health["subscribed"]),
        (&json!(true), &json!(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_a_full_disk_and_recovers_when_there_is_room_again() {
    require_root();
    let sim = AgentSim::for_scheduler(1).start();
    let master = format!("http://{}", sim.address);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_owned();
    let scheduler = Scheduler::on(dir.path(), &master)
        .in_mount_namespace(r#"mount -t tmpfs -o size=2m drover-health-test "$DATA""#)
        .start();
    let address = scheduler.address.clone();
    wait_ready(&address, (200, Vec::new())).await;

    // Jobs of 64 KiB until the 2 MiB disk refuses one, then small ones
    // until it refuses those too: no write fits any more.
    let mut next = 0;
    for padding in [64 * 1024, 0] {
        let padding = "x".repeat(padding);
        let mut refused: Option<(u16, Value)> = None;
        for _ in 0..400 {
            let mut spec = job_spec("BATCH", 1, "true");
            spec["description"] = json!(padding);
            next += 1;
            let body = json!({"job_id": {"value": format!("fill{next}")}, "spec": spec});
            let (status, answer) = post(&address, "/api/v1/jobs", &body).await;
            if status != 200 {
                refused = Some((status, answer));
                break;
            }
        }
        let (status, answer) = refused.expect("a 2 MiB store took 400 more jobs");
        assert_eq!(status, 500, "{answer}");
    }
    // Tasks of the jobs that fit still report, and a small write may find
    // room a refused one left; so ask again after each refused write until
    // readiness names the store (it says what the last write did).
    let mut named = None;
    for _ in 0..50 {
        next += 1;
        let body = json!({"job_id": {"value": format!("fill{next}")}, "spec": job_spec("BATCH", 1, "true")});
        let (status, _) = post(&address, "/api/v1/jobs", &body).await;
        if status == 200 {
            continue;
        }
        let (status, body) = get(&address, "/health/ready").await;
        let store = body["failing"]
            .as_array()
            .and_then(|list| list.iter().find(|f| f["condition"] == "store_writable"))
            .cloned();
        if let (503, Some(store)) = (status, store) {
            named = Some(store);
            break;
        }
    }
    let store = named.expect("/health/ready never named the full disk");
    assert!(
        store["message"].as_str().unwrap().contains("full"),
        "{store}"
    );
    let (_, metrics) = get(&address, "/metrics").await;
    let metrics = metrics.as_str().unwrap();
    assert!(metrics.contains("drover_store_writable 0\n"), "{metrics}");
    assert!(
        !metrics.contains("drover_store_write_errors_total 0\n"),
        "{metrics}"
    );
    let (status, _) = get(&address, "/health/live").await;
    assert_eq!(status, 200);

    // Room again: the next write succeeds and the scheduler is ready.
    let grown = Command::new("nsenter")
        .args(["-t", &scheduler.pid().to_string(), "-m", "--"])
        .args(["mount", "-o", "remount,size=64m", &data])
        .status()
        .unwrap();
    assert!(grown.success());
    let body = json!({"job_id": {"value": "after"}, "spec": job_spec("BATCH", 1, "true")});
    let (status, answer) = post(&address, "/api/v1/jobs", &body).await;
    assert_eq!(status, 200, "{answer}");
    wait_ready(&address, (200, Vec::new())).await;
    let (_, metrics) = get(&address, "/metrics").await;
    assert!(metrics
        .as_str()
        .unwrap()
        .contains("drover_store_writable 1\n"));
}
