//! A scheduler leader partitioned from ZooKeeper, as on separate machines
//! (root: network namespaces, `drover_test_support::netns`): three
//! replicas on one PostgreSQL store, ZooKeeper, PostgreSQL and agent-sim
//! (the Mesos master) each on a host of their own. The leader's host is
//! cut from ZooKeeper only (a blackhole route), so it still reaches the
//! master and the database: the case fencing exists for.
//!
//! Checked from the outside, where a user would see two leaders:
//! - the master's call log (`GET /sim/calls`): after the new leader's
//!   SUBSCRIBE, no call arrives from the old leader's host, on any of its
//!   connections;
//! - PostgreSQL's own statement log: no write from the old leader's host
//!   after the new leader claimed the store's epoch;
//! - the old replica exits 75 (`ha::EXIT_DEPOSED`: "restart me"); after
//!   the heal, restarted as a supervisor would, it follows the new leader
//!   and does not subscribe; no instance has two live tasks.
#![allow(clippy::unwrap_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use drover_test_support::netns::{Host, Lab};
use drover_test_support::postgres::Postgres;
use drover_test_support::zookeeper::ZooKeeper;
use drover_tests::harness::agent_sim::{duplicate_live_tasks, sim_tasks, AgentSim};
use drover_tests::harness::http::try_get;
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::Value;
use tempfile::TempDir;

const LIMIT: Duration = Duration::from_secs(60);
/// Short sessions: the successor is elected ~2 s after the cut.
const SESSION: &str = "2secs";
/// The exit code of a replica that lost its leadership (ha::EXIT_DEPOSED).
const EXIT_DEPOSED: i32 = 75;
const NAMES: [&str; 3] = ["r1", "r2", "r3"];

struct Replica {
    name: &'static str,
    host: Host,
    dir: TempDir,
    scheduler: Scheduler,
}

fn start_replica(
    name: &str,
    host: &Host,
    dir: &std::path::Path,
    master: &str,
    zk: &str,
    store: &str,
) -> Scheduler {
    Scheduler::on(dir, master)
        .args(&[
            "--zk",
            zk,
            "--zk-session-timeout",
            SESSION,
            "--replica-id",
            name,
            "--store",
            store,
        ])
        .in_host(host)
        .start()
}

/// A replica's role as it tells it (`GET /api/v1/leader`), and the id of
/// the leader it names; "unreachable" while its port changes hands.
async fn role_of(replica: &Replica) -> (String, Option<String>) {
    match try_get(&replica.scheduler.address, "/api/v1/leader").await {
        Ok((200, body)) => (
            body["role"].as_str().unwrap_or("").to_owned(),
            body["leader"]["id"].as_str().map(str::to_owned),
        ),
        Ok((status, body)) => (format!("{status}: {body}"), None),
        Err(e) => (format!("unreachable ({e})"), None),
    }
}

/// The master's call log after `after` (its `seq`).
async fn calls(sim: &AgentSim, after: u64) -> Vec<Value> {
    let (status, list) = sim.get(&format!("/sim/calls?after={after}")).await;
    assert_eq!(status, 200, "{list}");
    list.as_array().cloned().unwrap_or_default()
}

fn peer_ip(call: &Value) -> IpAddr {
    let peer: std::net::SocketAddr = call["peer"].as_str().unwrap().parse().unwrap();
    peer.ip()
}

fn seq(call: &Value) -> u64 {
    call["seq"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_from_zookeeper_sends_nothing_after_its_successor_subscribes() {
    let started = Instant::now();
    let lab = Lab::new();
    let zk_host = lab.host("zk");
    let db_host = lab.host("db");
    let master_host = lab.host("master");
    let zk = ZooKeeper::start_in(&zk_host);
    let pg = Postgres::start_in(&db_host);
    let store = pg.create_database("drover");
    // Every modifying statement in the server's log, with its client's
    // address and a millisecond time: the store's side of the fencing.
    pg.psql("ALTER SYSTEM SET log_statement = 'mod'");
    pg.psql("ALTER SYSTEM SET log_line_prefix = '%m [%h] '");
    pg.psql("SELECT pg_reload_conf()");
    let sim = AgentSim::for_scheduler(3).in_host(&master_host).start();
    let master = sim.master_url();
    let zk_url = zk.url("/drover");

    let mut replicas: Vec<Replica> = NAMES
        .into_iter()
        .map(|name| {
            let host = lab.host(name);
            let dir = tempfile::tempdir().unwrap();
            let scheduler = start_replica(name, &host, dir.path(), &master, &zk_url, &store);
            Replica {
                name,
                host,
                dir,
                scheduler,
            }
        })
        .collect();

    let leader = leader_among(&replicas, &[]).await;
    let old = replicas.iter().position(|r| r.name == leader).unwrap();
    let old_ip = IpAddr::V4(replicas[old].host.addr());
    let leader_address = replicas[old].scheduler.address.clone();
    create_job(&leader_address, "svc", job_spec("SERVICE", 3, "sleep 600")).await;
    wait_for_job_state(&leader_address, "svc", "JOB_STATE_RUNNING", LIMIT).await;

    // The old leader is busy at the master (declines, acknowledgements)
    // right up to the cut: its calls are what must stop.
    let before = calls(&sim, 0).await;
    let old_connections: std::collections::BTreeSet<u64> = before
        .iter()
        .filter(|c| peer_ip(c) == old_ip)
        .map(|c| c["connection"].as_u64().unwrap())
        .collect();
    assert!(
        before
            .iter()
            .any(|c| peer_ip(c) == old_ip && c["type"] == "SUBSCRIBE"),
        "the leader's SUBSCRIBE is not in the master's call log: {before:?}"
    );
    let cut_seq = before.last().map_or(0, seq);
    let cut_at = Instant::now();
    replicas[old].host.block(zk_host.addr());

    let status = replicas[old]
        .scheduler
        .wait_exit(Duration::from_secs(15))
        .expect("the leader cut from ZooKeeper exits on its own");
    let exited = cut_at.elapsed();
    assert_eq!(status.code(), Some(EXIT_DEPOSED), "{status}");

    let successor = leader_among(&replicas, &[leader]).await;
    let new_ip = IpAddr::V4(
        replicas
            .iter()
            .find(|r| r.name == successor)
            .unwrap()
            .host
            .addr(),
    );
    let subscribe = wait_for(LIMIT, || async {
        calls(&sim, cut_seq)
            .await
            .into_iter()
            .find(|c| c["type"] == "SUBSCRIBE" && peer_ip(c) == new_ip)
    })
    .await
    .unwrap_or_else(|| panic!("{successor} leads but never subscribed"));
    let subscribed = cut_at.elapsed();

    // The new leader acts (its calls arrive), and the master is watched
    // for a second more: the old leader is silent throughout, on every
    // connection it ever had.
    let acted = wait_for(LIMIT, || async {
        calls(&sim, seq(&subscribe))
            .await
            .iter()
            .any(|c| peer_ip(c) == new_ip)
            .then_some(())
    })
    .await;
    assert!(
        acted.is_some(),
        "the new leader made no call after subscribing"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let log = calls(&sim, cut_seq).await;
    let late: Vec<&Value> = log
        .iter()
        .filter(|c| seq(c) > seq(&subscribe))
        .filter(|c| {
            peer_ip(c) == old_ip || old_connections.contains(&c["connection"].as_u64().unwrap())
        })
        .collect();
    assert!(
        late.is_empty(),
        "calls from the old leader after its successor's SUBSCRIBE: {late:?}"
    );
    let last_old = calls(&sim, 0)
        .await
        .iter()
        .filter(|c| peer_ip(c) == old_ip)
        .map(|c| c["at_ms"].as_u64().unwrap())
        .max();
    println!(
        "leader {leader} cut from ZooKeeper: exited 75 after {exited:?}; {successor} \
         subscribed after {subscribed:?} (session {SESSION}); the old leader's last call \
         came {} ms before the new SUBSCRIBE",
        last_old.map_or("(none at all?)".to_owned(), |at| subscribe["at_ms"]
            .as_u64()
            .unwrap()
            .saturating_sub(at)
            .to_string())
    );
    assert_no_write_after_claim(&pg, old_ip, new_ip);

    // Healed and restarted, as its supervisor would on exit 75: it
    // follows, and the master hears no SUBSCRIBE from it.
    replicas[old].host.unblock(zk_host.addr());
    let (name, host, dir) = {
        let r = &replicas[old];
        (r.name, r.host.clone(), r.dir.path().to_owned())
    };
    let restarted_from = calls(&sim, 0).await.last().map_or(0, seq);
    replicas[old].scheduler = start_replica(name, &host, &dir, &master, &zk_url, &store);
    let follows = wait_for(LIMIT, || async {
        let (role, leads) = role_of(&replicas[old]).await;
        (role == "follower" && leads.as_deref() == Some(successor)).then_some(())
    })
    .await;
    assert!(
        follows.is_some(),
        "the healed replica does not follow {successor}: {:?}",
        role_of(&replicas[old]).await
    );
    assert_eq!(leader_among(&replicas, &[]).await, successor);
    let resubscribed: Vec<Value> = calls(&sim, restarted_from)
        .await
        .into_iter()
        .filter(|c| peer_ip(c) == old_ip)
        .collect();
    assert!(
        resubscribed.is_empty(),
        "the follower called the master: {resubscribed:?}"
    );
    let tasks = sim_tasks(&sim.address).await;
    assert_eq!(duplicate_live_tasks(&tasks), Vec::new(), "{tasks:?}");
    println!("ha_partition took {:?}", started.elapsed());
    // Followers first: a follower stopped after the leader would be
    // elected on the way down, and stop in the middle of its takeover.
    for replica in replicas.iter_mut().filter(|r| r.name != successor) {
        replica.scheduler.stop();
    }
}

/// The one replica (not in `except`) that says it leads and that every
/// other replica not in `except` names.
async fn leader_among(replicas: &[Replica], except: &[&str]) -> &'static str {
    let found = wait_for(LIMIT, || async {
        let mut leader = None;
        let mut named = Vec::new();
        for replica in replicas.iter().filter(|r| !except.contains(&r.name)) {
            let (role, leads) = role_of(replica).await;
            if role == "leader" {
                if leader.is_some() {
                    return None;
                }
                leader = Some(replica.name);
            }
            named.push(leads?);
        }
        let leader = leader?;
        named.iter().all(|n| n == leader).then_some(leader)
    })
    .await;
    found.unwrap_or_else(|| panic!("the replicas never agreed on one leader"))
}

/// From PostgreSQL's statement log: the new leader's epoch claim, and no
/// modifying statement from the old leader's address after it.
fn assert_no_write_after_claim(pg: &Postgres, old_ip: IpAddr, new_ip: IpAddr) {
    let log = pg.log();
    let lines: Vec<&str> = log.lines().collect();
    let from = |ip: IpAddr| format!("[{ip}]");
    // `statement:` (simple protocol) or `execute <name>:` (extended).
    let is_write = |line: &str| {
        line.contains("LOG:") && (line.contains("statement: ") || line.contains("execute "))
    };
    let claim = lines
        .iter()
        .rposition(|l| {
            is_write(l) && l.contains(&from(new_ip)) && l.contains("UPDATE leader_epoch")
        })
        .unwrap_or_else(|| panic!("no epoch claim from the new leader in the log:\n{log}"));
    assert!(
        lines[..claim]
            .iter()
            .any(|l| is_write(l) && l.contains(&from(old_ip))),
        "the old leader's writes are not in the statement log: the check would be empty"
    );
    let late: Vec<&&str> = lines[claim..]
        .iter()
        .filter(|l| is_write(l) && l.contains(&from(old_ip)))
        .collect();
    assert!(
        late.is_empty(),
        "writes from the old leader after the new leader's claim: {late:?}"
    );
}
