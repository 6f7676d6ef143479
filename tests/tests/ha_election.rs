//! Scheduler replicas elected through a real ZooKeeper (`--zk`), against
//! agent-sim. Each replica has its own SQLite data dir (SQLite's dir lock
//! forbids sharing one), and its own framework name, so the master's
//! `/state` tells whose framework is connected: the checks are who leads
//! (`GET /api/v1/leader` on every replica), who alone is subscribed at the
//! master, what followers answer, and how leadership moves when the
//! leader is SIGKILLed, cut off from ZooKeeper, or paused past its
//! session. (The shared store and its epoch fencing are tested in the
//! store's own tests, `claim_leadership`.)
#![allow(clippy::unwrap_used)]

use drover_test_support::zookeeper::ZooKeeper;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::{get, request, try_get};
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use tempfile::TempDir;

const LIMIT: Duration = Duration::from_secs(60);
/// Short sessions so that a dead leader is replaced within seconds.
const SESSION: &str = "2secs";
/// The exit code of a replica that lost its leadership (ha::EXIT_DEPOSED).
const EXIT_DEPOSED: i32 = 75;

struct Replica {
    name: &'static str,
    scheduler: Scheduler,
    _dir: TempDir,
}

fn replica(name: &'static str, zk: &str, master: &str) -> Replica {
    let dir = tempfile::tempdir().unwrap();
    let framework = format!("drover-{name}");
    let scheduler = Scheduler::start(
        dir.path(),
        master,
        &[
            "--zk",
            zk,
            "--zk-session-timeout",
            SESSION,
            "--replica-id",
            name,
            "--framework-name",
            &framework,
        ],
    );
    Replica {
        name,
        scheduler,
        _dir: dir,
    }
}

/// A replica's `GET /api/v1/leader`: (its role, the leader's id and API).
/// A replica's view of the election. An exchange cut off while the
/// replica hands its port from the follower's server to the leader's (or
/// exits) reads as "unreachable", and the callers poll again: clients of a
/// replica retry across a failover.
async fn leader_view(address: &str) -> (String, Option<(String, String)>) {
    let (status, body) = match try_get(address, "/api/v1/leader").await {
        Ok(answer) => answer,
        Err(error) => return (format!("unreachable ({error})"), None),
    };
    assert_eq!(status, 200, "{body}");
    let role = body["role"].as_str().unwrap_or("").to_owned();
    let leader = body["leader"]["id"].as_str().map(|id| {
        (
            id.to_owned(),
            body["leader"]["api"].as_str().unwrap_or("").to_owned(),
        )
    });
    (role, leader)
}

/// Names of the frameworks connected to the master now.
async fn connected_frameworks(sim: &AgentSim) -> Vec<String> {
    let (_, state) = sim.get("/state").await;
    let mut names: Vec<String> = state["frameworks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["connected"] == true)
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Waits until the replicas at `addresses` agree that `leader` leads, it
/// says so itself, and its framework alone is connected to the master.
async fn wait_for_leader(sim: &AgentSim, replicas: &[&Replica]) -> &'static str {
    let found = wait_for(LIMIT, || async {
        let mut leaders = Vec::new();
        let mut agreed = None;
        for replica in replicas {
            let (role, leader) = leader_view(&replica.scheduler.address).await;
            if role == "leader" {
                leaders.push(replica.name);
            }
            let id = leader?.0;
            if agreed.get_or_insert(id.clone()) != &id {
                return None;
            }
        }
        let [leader] = leaders[..] else {
            return None;
        };
        (agreed.as_deref() == Some(leader)
            && connected_frameworks(sim).await == [format!("drover-{leader}")])
        .then_some(leader)
    })
    .await;
    found.unwrap_or_else(|| panic!("the replicas never agreed on one subscribed leader"))
}

/// What a follower answers: 307 to the leader for reads and writes,
/// gRPC UNAVAILABLE naming it, not ready.
async fn assert_redirects(follower: &str, leader_id: &str, leader_address: &str) {
    for (method, path) in [("GET", "/api/v1/jobs?x=1"), ("POST", "/api/v1/jobs")] {
        let reply = request(
            follower,
            method,
            path,
            &[],
            bytes::Bytes::from_static(b"{}"),
        )
        .await;
        assert_eq!(reply.status, 307, "{method} {path} on a follower");
        assert_eq!(
            reply.headers["location"].to_str().unwrap(),
            format!("http://{leader_address}{path}")
        );
    }
    let grpc = request(
        follower,
        "POST",
        "/peloton.api.v1alpha.job.stateless.svc.JobService/GetJobIDFromJobName",
        &[("content-type", "application/grpc")],
        bytes::Bytes::new(),
    )
    .await;
    assert_eq!(grpc.status, 200);
    assert_eq!(grpc.headers["grpc-status"], "14", "UNAVAILABLE");
    let message = grpc.headers["grpc-message"].to_str().unwrap();
    assert!(
        message.contains(leader_id) && message.contains(leader_address),
        "{message}"
    );
    let (ready, _) = get(follower, "/health/ready").await;
    assert_eq!(ready, 503, "a follower is not ready");
    let (live, _) = get(follower, "/health/live").await;
    assert_eq!(live, 200);
}

fn by_name<'a>(replicas: &'a [Replica], name: &str) -> &'a Replica {
    replicas.iter().find(|r| r.name == name).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_elect_one_and_a_follower_takes_over_from_a_killed_leader() {
    let zk = ZooKeeper::start();
    let sim = AgentSim::for_scheduler(2).start();
    let url = zk.url("/drover");
    let mut replicas: Vec<Replica> = ["a", "b", "c"]
        .into_iter()
        .map(|name| replica(name, &url, &sim.master_url()))
        .collect();

    let all: Vec<&Replica> = replicas.iter().collect();
    let leader = wait_for_leader(&sim, &all).await;
    let leader_address = by_name(&replicas, leader).scheduler.address.clone();
    for follower in replicas.iter().filter(|r| r.name != leader) {
        assert_redirects(&follower.scheduler.address, leader, &leader_address).await;
    }
    create_job(&leader_address, "ha-batch", job_spec("BATCH", 2, "sleep 1")).await;
    wait_for_job_state(&leader_address, "ha-batch", "JOB_STATE_SUCCEEDED", LIMIT).await;

    let killed_at = Instant::now();
    let position = replicas.iter().position(|r| r.name == leader).unwrap();
    replicas[position].scheduler.kill();
    let dead = replicas.remove(position);
    let rest: Vec<&Replica> = replicas.iter().collect();
    let successor = wait_for_leader(&sim, &rest).await;
    let failover = killed_at.elapsed();
    println!(
        "leader {} SIGKILLed: {successor} led and was the subscribed framework after {failover:?} \
         (session timeout {SESSION})",
        dead.name
    );
    assert_ne!(successor, dead.name);
    let successor_address = by_name(&replicas, successor).scheduler.address.clone();
    for follower in replicas.iter().filter(|r| r.name != successor) {
        assert_redirects(&follower.scheduler.address, successor, &successor_address).await;
    }
    create_job(
        &successor_address,
        "ha-after",
        job_spec("BATCH", 1, "sleep 1"),
    )
    .await;
    wait_for_job_state(&successor_address, "ha-after", "JOB_STATE_SUCCEEDED", LIMIT).await;

    // A clean stop (SIGTERM) resigns once the leader has stopped acting:
    // the last replica leads without waiting for a session to expire.
    let position = replicas.iter().position(|r| r.name == successor).unwrap();
    let mut stopped = replicas.remove(position);
    let stopped_at = Instant::now();
    let pid = Pid::from_raw(i32::try_from(stopped.scheduler.pid()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let status = stopped
        .scheduler
        .wait_exit(LIMIT)
        .expect("the stopped leader exits");
    assert_eq!(status.code(), Some(0), "a clean stop: {status}");
    let last: Vec<&Replica> = replicas.iter().collect();
    let third = wait_for_leader(&sim, &last).await;
    println!(
        "leader {successor} stopped with SIGTERM: {third} led and subscribed after {:?}",
        stopped_at.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_zookeeper_exits_before_its_successor_is_elected() {
    let zk = ZooKeeper::start();
    let proxy = zk.proxy();
    let sim = AgentSim::for_scheduler(1).start();
    let mut a = replica("a", &proxy.url("/drover"), &sim.master_url());
    assert_eq!(wait_for_leader(&sim, &[&a]).await, "a");
    let b = replica("b", &zk.url("/drover"), &sim.master_url());
    assert_eq!(wait_for_leader(&sim, &[&a, &b]).await, "a");

    let cut_at = Instant::now();
    proxy.cut();
    let status = a
        .scheduler
        .wait_exit(Duration::from_secs(10))
        .expect("the cut-off leader exits on its own");
    let exited = cut_at.elapsed();
    assert_eq!(status.code(), Some(EXIT_DEPOSED), "{status}");
    assert_eq!(wait_for_leader(&sim, &[&b]).await, "b");
    let succeeded = cut_at.elapsed();
    println!(
        "leader cut off from ZooKeeper: it exited after {exited:?}, its successor led and \
         subscribed after {succeeded:?} (session timeout {SESSION})"
    );
    // The successor could only be elected once the server expired the old
    // session, which is after the old leader had stopped: never both.
    assert!(exited < succeeded);
    assert!(
        exited < Duration::from_secs(2),
        "stopped before its 2 s session could expire"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_paused_past_its_session_exits_when_it_resumes() {
    let zk = ZooKeeper::start();
    let sim = AgentSim::for_scheduler(1).start();
    let url = zk.url("/drover");
    let mut a = replica("a", &url, &sim.master_url());
    assert_eq!(wait_for_leader(&sim, &[&a]).await, "a");
    let b = replica("b", &url, &sim.master_url());
    assert_eq!(wait_for_leader(&sim, &[&a, &b]).await, "a");

    // A stopped process cannot notice anything: the server expires its
    // session and elects b, as after a long GC pause or a VM freeze.
    let pid = Pid::from_raw(i32::try_from(a.scheduler.pid()).unwrap());
    kill(pid, Signal::SIGSTOP).unwrap();
    let b_led = wait_for(LIMIT, || async {
        (leader_view(&b.scheduler.address).await.0 == "leader").then_some(())
    })
    .await;
    kill(pid, Signal::SIGCONT).unwrap();
    assert!(b_led.is_some(), "b never led while a was paused");
    let resumed_at = Instant::now();
    let status = a
        .scheduler
        .wait_exit(Duration::from_secs(15))
        .expect("the resumed leader learns its session expired and exits");
    println!(
        "paused leader exited {:?} after it resumed",
        resumed_at.elapsed()
    );
    assert_eq!(status.code(), Some(EXIT_DEPOSED), "{status}");
    assert_eq!(wait_for_leader(&sim, &[&b]).await, "b");
}
