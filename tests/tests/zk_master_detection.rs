//! `--master zk://`: the scheduler finds the leading Mesos master in
//! ZooKeeper and follows it across a master failover. Real processes on a
//! real ZooKeeper (Debian's, started by `scripts/zookeeper-env.sh`): two
//! agent-sim masters contend with `--zk` as Mesos masters do; the
//! scheduler subscribes to the leader, and when the leader is SIGKILLed
//! (its session then expires) it resubscribes to the new leader with the
//! same framework id, and jobs run there.
//!
//! These masters run without `--state-dir`, so the running tasks of the
//! old master are unknown to the new one and the scheduler's service
//! instances are relaunched there; `master_takeover.rs` runs the same
//! failover with the journal, where the standby takes the tasks over.
#![allow(clippy::unwrap_used)]

use drover_test_support::zookeeper::ZooKeeper;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::{get, request};
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use std::time::{Duration, Instant};

const LIMIT: Duration = Duration::from_secs(60);

/// A master of the set at `zk` (ZooKeeper session timeout 2 s, so a
/// SIGKILLed leader is replaced in seconds; Mesos' default is 10 s).
fn master(zk: &str) -> AgentSim {
    AgentSim::for_scheduler(4)
        .args(&[
            "--zk",
            zk,
            "--zk-session-timeout",
            "2secs",
            "--hostname",
            "127.0.0.1",
        ])
        .start()
}

/// Where `/redirect` on `sim` points (`//host:port`), once it answers 307.
async fn redirect_of(sim: &AgentSim) -> Option<String> {
    let reply = request(&sim.address, "GET", "/redirect", &[], Default::default()).await;
    (reply.status == 307)
        .then(|| {
            reply
                .headers
                .get("location")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .flatten()
}

/// Waits until `sim`'s `/redirect` names `leader` (itself when it leads).
async fn wait_for_leader(sim: &AgentSim, leader: &AgentSim) {
    let want = format!("//{}", leader.address);
    let seen = wait_for(LIMIT, || async {
        (redirect_of(sim).await.as_deref() == Some(want.as_str())).then_some(())
    })
    .await;
    assert!(
        seen.is_some(),
        "{} never named {want} as the leader (last: {:?})",
        sim.address,
        redirect_of(sim).await
    );
}

/// The ids of the frameworks subscribed (active) on `sim`.
async fn active_frameworks(sim: &AgentSim) -> Vec<String> {
    let (status, state) = get(&sim.address, "/master/state").await;
    assert_eq!(status, 200, "{state}");
    state["frameworks"]
        .as_array()
        .map(|fws| {
            fws.iter()
                .filter(|f| f["active"] == true)
                .filter_map(|f| f["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_follows_a_master_failover_found_in_zookeeper() {
    let zookeeper = ZooKeeper::start();
    let zk = format!("zk://{}/mesos", zookeeper.connect_string());
    let mut first = master(&zk);
    wait_for_leader(&first, &first).await;
    let second = master(&zk);
    wait_for_leader(&second, &first).await;
    // A standby answers the scheduler API as Mesos' non-leading master.
    let subscribe = request(
        &second.address,
        "POST",
        "/api/v1/scheduler",
        &[("Content-Type", "application/json")],
        r#"{"type":"SUBSCRIBE","subscribe":{"framework_info":{"user":"u","name":"n"}}}"#.into(),
    )
    .await;
    assert_eq!(subscribe.status, 307);
    assert_eq!(
        subscribe.headers["location"],
        format!("//{}/master/api/v1/scheduler", first.address).as_str()
    );

    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(dir.path(), &zk, &[]);
    create_job(
        &scheduler.address,
        "service",
        job_spec("SERVICE", 2, "sleep 600"),
    )
    .await;
    wait_for_job_state(&scheduler.address, "service", "JOB_STATE_RUNNING", LIMIT).await;
    let framework = active_frameworks(&first).await;
    assert_eq!(
        framework.len(),
        1,
        "one framework on the leader: {framework:?}"
    );
    assert!(active_frameworks(&second).await.is_empty());

    let killed = Instant::now();
    first.kill();
    let resubscribed = wait_for(LIMIT, || async {
        (active_frameworks(&second).await == framework).then_some(())
    })
    .await;
    assert!(
        resubscribed.is_some(),
        "the scheduler never subscribed to the new leader as {framework:?}"
    );
    let failover = killed.elapsed();
    println!(
        "master failover: SIGKILL to the scheduler subscribed on the new leader in {failover:?}"
    );
    assert_eq!(
        redirect_of(&second).await,
        Some(format!("//{}", second.address))
    );

    // The new leader runs the framework's work: the service comes back
    // (relaunched: the old master's tasks did not come over, see the
    // module doc) and a new batch job runs to its end.
    wait_for_job_state(&scheduler.address, "service", "JOB_STATE_RUNNING", LIMIT).await;
    create_job(
        &scheduler.address,
        "after",
        job_spec("BATCH", 2, "sleep 0.2"),
    )
    .await;
    wait_for_job_state(&scheduler.address, "after", "JOB_STATE_SUCCEEDED", LIMIT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_started_before_any_master_waits_for_zookeeper_to_name_one() {
    let zookeeper = ZooKeeper::start();
    let zk = format!("zk://{}/mesos", zookeeper.connect_string());
    let dir = tempfile::tempdir().unwrap();
    // The scheduler opens its API once a leading master is known (as a
    // Mesos scheduler driver, it has nowhere to subscribe before), so it
    // is started on a thread of its own while the master joins.
    let path = dir.path().to_owned();
    let starting = {
        let zk = zk.clone();
        std::thread::spawn(move || Scheduler::start(&path, &zk, &[]))
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        !starting.is_finished(),
        "the scheduler started with no master to subscribe to"
    );
    let sim = master(&zk);
    wait_for_leader(&sim, &sim).await;
    let scheduler = starting.join().unwrap();
    let subscribed = wait_for(LIMIT, || async {
        (active_frameworks(&sim).await.len() == 1).then_some(())
    })
    .await;
    assert!(
        subscribed.is_some(),
        "the scheduler never subscribed to the master that joined"
    );
    create_job(
        &scheduler.address,
        "batch",
        job_spec("BATCH", 1, "sleep 0.2"),
    )
    .await;
    wait_for_job_state(&scheduler.address, "batch", "JOB_STATE_SUCCEEDED", LIMIT).await;
}
