//! Health that tells the truth, with the real binaries: `/health/ready`
//! answers 503 naming each condition that fails (not subscribed, the store
//! not writable, writes shed) and 200 once all hold again, while
//! `/health/live` stays 200. The full disk is real: the scheduler runs in
//! a private mount namespace with a small tmpfs as its data directory, and
//! the test grows it again from outside with `nsenter`. The overload is
//! real too: bursts of concurrent creates past a small
//! `--max-pending-requests`.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::http::{get, post, request};
use drover_tests::harness::job_api::job_spec;
use drover_tests::harness::process::Process;
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

/// One job create of a burst: its id, status, `Retry-After` and body.
struct Created {
    id: String,
    status: u16,
    retry_after: Option<String>,
    body: Value,
}

/// `count` job creates at once, each on its own connection.
async fn burst(address: &str, round: usize, count: usize) -> Vec<Created> {
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..count {
        let address = address.to_owned();
        creates.spawn(async move {
            let id = format!("burst{round}-{i}");
            let body = json!({"job_id": {"value": id}, "spec": job_spec("BATCH", 1, "true")});
            let reply = request(
                &address,
                "POST",
                "/api/v1/jobs",
                &[("Content-Type", "application/json")],
                serde_json::to_vec(&body).unwrap().into(),
            )
            .await;
            Created {
                id,
                status: reply.status,
                retry_after: reply
                    .headers
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().to_owned()),
                body: serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
            }
        });
    }
    let mut all = Vec::with_capacity(count);
    while let Some(created) = creates.join_next().await {
        all.push(created.unwrap());
    }
    all
}

/// A burst of concurrent writes past `--max-pending-requests` is shed:
/// the excess is refused at once with 503 UNAVAILABLE and `Retry-After`
/// rather than queued without bound, `/health/ready` names `shedding`
/// while it lasts (and a few seconds after) and is green again after,
/// `/health/live` and reads stay 200, the refusals are counted in
/// `/metrics`, and every create answered 200 is in the job list (and no
/// refused one is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_names_shedding_when_a_burst_of_writes_passes_the_bound() {
    let sim = AgentSim::for_scheduler(1).start();
    let master = format!("http://{}", sim.address);
    let dir = tempfile::tempdir().unwrap();
    // The bound by its environment variable: a scheduler without it still
    // starts (and, before shedding existed, queued every write).
    let scheduler = Process::start(
        &binaries::scheduler(),
        &[
            "--listen",
            "127.0.0.1:0",
            "--master",
            &master,
            "--data-dir",
            dir.path().to_str().unwrap(),
            "--user",
            "nobody",
            "--allow-anonymous",
        ],
        &[("DROVER_LOG", "warn"), ("DROVER_MAX_PENDING_REQUESTS", "2")],
    );
    let address = scheduler.address.clone();
    wait_ready(&address, (200, Vec::new())).await;

    // Bursts of 100 concurrent creates, at most 5 of them, until one is
    // shed (one commit per create keeps the runner busy far longer than
    // the burst takes to arrive).
    let mut created = Vec::new();
    let mut shed_ready = None;
    for round in 0..5 {
        let answers = burst(&address, round, 100).await;
        let shed = answers.iter().any(|c| c.status == 503);
        created.extend(answers);
        if shed {
            // Within the hold-down after the last refusal.
            shed_ready = Some(get(&address, "/health/ready").await);
            let (status, live) = get(&address, "/health/live").await;
            assert_eq!((status, live), (200, json!({"status": "ok"})));
            let (status, _) = get(&address, "/api/v1/jobs").await;
            assert_eq!(status, 200, "reads are served while writes are shed");
            break;
        }
    }
    let refused: Vec<&Created> = created.iter().filter(|c| c.status == 503).collect();
    let accepted: Vec<&Created> = created.iter().filter(|c| c.status == 200).collect();
    println!(
        "{} creates: {} accepted, {} refused",
        created.len(),
        accepted.len(),
        refused.len()
    );
    assert!(
        !refused.is_empty(),
        "no create of {} was refused with a backlog bound of 2",
        created.len()
    );
    assert_eq!(
        refused.len() + accepted.len(),
        created.len(),
        "a create answered neither 200 nor 503: {:?}",
        created
            .iter()
            .find(|c| c.status != 200 && c.status != 503)
            .map(|c| (c.status, &c.body))
    );
    for c in &refused {
        assert_eq!(c.body["code"], "UNAVAILABLE", "{}", c.body);
        assert!(
            c.body["message"].as_str().unwrap().contains("overloaded"),
            "{}",
            c.body
        );
        let retry: u64 = c
            .retry_after
            .as_deref()
            .unwrap_or_else(|| panic!("503 without Retry-After: {}", c.body))
            .parse()
            .unwrap();
        assert!(retry >= 1);
    }
    println!("a refusal: {}", refused[0].body);

    let (status, ready) = shed_ready.unwrap();
    println!("/health/ready while shedding: {status} {ready}");
    assert_eq!(status, 503, "{ready}");
    let shedding = ready["failing"]
        .as_array()
        .and_then(|list| list.iter().find(|f| f["condition"] == "shedding"))
        .unwrap_or_else(|| panic!("/health/ready does not name shedding: {ready}"));
    assert!(
        shedding["message"].as_str().unwrap().contains("refused"),
        "{shedding}"
    );

    let (_, metrics) = get(&address, "/metrics").await;
    let metrics = metrics.as_str().unwrap();
    let counted = format!("drover_api_requests_shed_total {}\n", refused.len());
    assert!(
        metrics.contains(&counted),
        "wanted {counted:?} in {metrics}"
    );

    // Green again once the hold-down has passed.
    wait_ready(&address, (200, Vec::new())).await;
    println!(
        "/health/ready after: {:?}",
        get(&address, "/health/ready").await
    );
    let body = json!({"job_id": {"value": "after"}, "spec": job_spec("BATCH", 1, "true")});
    let (status, answer) = post(&address, "/api/v1/jobs", &body).await;
    assert_eq!(status, 200, "a write after the burst: {answer}");

    // No accepted create is lost, and no refused one was made.
    let (status, list) = get(&address, "/api/v1/jobs?limit=500").await;
    assert_eq!(status, 200, "{list}");
    let listed: std::collections::HashSet<&str> = list["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"]["value"].as_str().unwrap())
        .collect();
    for c in &accepted {
        assert!(
            listed.contains(c.id.as_str()),
            "accepted {} is not listed",
            c.id
        );
    }
    for c in &refused {
        assert!(
            !listed.contains(c.id.as_str()),
            "refused {} was created",
            c.id
        );
    }
    drop(scheduler);
}
