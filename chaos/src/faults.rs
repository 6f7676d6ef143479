//! Carrying out one fault of the schedule on the cluster, and timing what
//! it cost: for a fault on the leading replica, the time from the fault to
//! a working leader again (see [`crate::leadership`]). A fault aimed at
//! the leader first waits (bounded) for one, so every leader SIGKILL kills
//! a leader at work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::rngs::SmallRng;
use rand::seq::IndexedRandom;
use rand::SeedableRng;
use serde_json::json;

use crate::client;
use crate::cluster::Cluster;
use crate::observe::{leading_master, probe_replica};
use crate::procs;
use crate::schedule::Fault;

/// How long a fault waits for a working leader before or after it.
pub const LEADER_LIMIT: Duration = Duration::from_secs(120);

/// How often the leader is looked for while timing a failover.
const FAILOVER_POLL: Duration = Duration::from_millis(50);

/// What a fault did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Done; the time to a working leader when it hit the leader.
    Done {
        what: String,
        failover: Option<Duration>,
    },
    /// It could not be carried out (no leader to hit, no master to fail
    /// over): the dose is then not what it says, and the run fails.
    NotDone { why: String },
}

/// The working leader: `(replica index, id)`, once one is found within
/// `limit`, skipping `except`.
pub async fn wait_for_working_leader(
    cluster: &Cluster,
    except: Option<usize>,
    limit: Duration,
) -> Option<usize> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(i) = working_leader(cluster, except).await {
            return Some(i);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(FAILOVER_POLL).await;
    }
}

/// The replica that leads and works now, if any (all probed at once: a
/// paused one takes its whole probe limit).
pub async fn working_leader(cluster: &Cluster, except: Option<usize>) -> Option<usize> {
    let probes: Vec<_> = cluster
        .replica_addresses
        .iter()
        .map(|(_, address)| tokio::spawn(probe_replica_owned(address.clone())))
        .collect();
    let mut found = None;
    for (i, probe) in probes.into_iter().enumerate() {
        let working = probe
            .await
            .ok()
            .flatten()
            .and_then(|p| p.metrics)
            .is_some_and(|m| m.is_working());
        if working && Some(i) != except && found.is_none() {
            found = Some(i);
        }
    }
    found
}

async fn probe_replica_owned(address: String) -> Option<crate::observe::ReplicaProbe> {
    probe_replica(&address).await
}

/// The address of the leading master, as any live master names it.
pub async fn find_leading_master(cluster: &Cluster) -> Option<String> {
    for address in &cluster.master_addresses {
        if let Some(leader) = leading_master(address).await {
            return Some(leader);
        }
    }
    None
}

/// Carries out `fault`. `real_agents`: how many of each master's first
/// agents are real (never churned: their executors are processes). Work
/// the fault leaves running (agents to bring back later) is pushed on
/// `background`, for the run to await before it settles.
pub async fn inject(
    cluster: &Arc<Cluster>,
    fault: &Fault,
    real_agents: usize,
    background: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Outcome {
    match fault {
        Fault::KillLeader => kill_leader(cluster).await,
        Fault::KillFollower { nth } => kill_follower(cluster, *nth).await,
        Fault::ExpireLeaderSession { pause } => expire_leader_session(cluster, *pause).await,
        Fault::PartitionLeader { cut } => partition_leader(cluster, *cut).await,
        Fault::FailOverMaster => fail_over_master(cluster).await,
        Fault::ChurnAgents { count, down, pick } => {
            churn_agents(cluster, *count, *down, *pick, real_agents, background).await
        }
        Fault::RestartPostgres => restart_postgres(cluster).await,
    }
}

fn not_done(why: impl Into<String>) -> Outcome {
    Outcome::NotDone { why: why.into() }
}

async fn leader_or(cluster: &Cluster) -> Result<usize, Outcome> {
    wait_for_working_leader(cluster, None, LEADER_LIMIT)
        .await
        .ok_or_else(|| not_done(format!("no working leader within {LEADER_LIMIT:?}")))
}

/// Times the way from `since` to a working leader other than `old`.
async fn failover_from(cluster: &Cluster, old: Option<usize>, since: Instant) -> Option<Duration> {
    wait_for_working_leader(cluster, old, LEADER_LIMIT)
        .await
        .map(|_| since.elapsed())
}

async fn kill_leader(cluster: &Cluster) -> Outcome {
    let leader = match leader_or(cluster).await {
        Ok(i) => i,
        Err(o) => return o,
    };
    let at = Instant::now();
    let id = {
        let mut replicas = cluster.replicas();
        replicas[leader].process.kill(at);
        replicas[leader].id.clone()
    };
    // The killed replica comes back as a follower (its member is the
    // newest); any working leader found now is another process.
    let failover = failover_from(cluster, None, at).await;
    match failover {
        Some(d) => Outcome::Done {
            what: format!("SIGKILLed leader {id}"),
            failover: Some(d),
        },
        None => not_done(format!("SIGKILLed leader {id}; no leader after it")),
    }
}

async fn kill_follower(cluster: &Cluster, nth: usize) -> Outcome {
    let leader = match leader_or(cluster).await {
        Ok(i) => i,
        Err(o) => return o,
    };
    let followers: Vec<usize> = (0..cluster.replica_addresses.len())
        .filter(|i| *i != leader)
        .collect();
    let Some(&target) = followers.get(nth % followers.len().max(1)) else {
        return not_done("no follower");
    };
    let mut replicas = cluster.replicas();
    replicas[target].process.kill(Instant::now());
    Outcome::Done {
        what: format!("SIGKILLed follower {}", replicas[target].id),
        failover: None,
    }
}

async fn expire_leader_session(cluster: &Cluster, pause: Duration) -> Outcome {
    let leader = match leader_or(cluster).await {
        Ok(i) => i,
        Err(o) => return o,
    };
    let at = Instant::now();
    let id = {
        let replicas = cluster.replicas();
        let Some(child) = replicas[leader].process.child() else {
            return not_done("the leader exited before its pause");
        };
        procs::signal(child, Signal::SIGSTOP);
        replicas[leader].id.clone()
    };
    // Timed while it is paused: the successor is elected during the pause.
    let failover = failover_from(cluster, Some(leader), at);
    let resume = async {
        tokio::time::sleep(pause).await;
        let replicas = cluster.replicas();
        if let Some(child) = replicas[leader].process.child() {
            procs::signal(child, Signal::SIGCONT);
        }
    };
    let (failover, ()) = tokio::join!(failover, resume);
    Outcome::Done {
        what: format!("paused leader {id} for {:.1}s", pause.as_secs_f64()),
        failover,
    }
}

async fn partition_leader(cluster: &Cluster, cut: Duration) -> Outcome {
    let leader = match leader_or(cluster).await {
        Ok(i) => i,
        Err(o) => return o,
    };
    let at = Instant::now();
    let id = {
        let replicas = cluster.replicas();
        replicas[leader].proxy.cut();
        replicas[leader].id.clone()
    };
    let failover = failover_from(cluster, Some(leader), at);
    let heal = async {
        tokio::time::sleep(cut).await;
        cluster.replicas()[leader].proxy.heal();
    };
    let (failover, ()) = tokio::join!(failover, heal);
    Outcome::Done {
        what: format!(
            "cut leader {id} off ZooKeeper for {:.1}s",
            cut.as_secs_f64()
        ),
        failover,
    }
}

async fn fail_over_master(cluster: &Cluster) -> Outcome {
    let Some(leader) = find_leading_master(cluster).await else {
        return not_done("no master names a leader");
    };
    let Some(index) = cluster.master_index(&leader) else {
        return not_done(format!("the leading master {leader} is not one of ours"));
    };
    let at = Instant::now();
    cluster.masters()[index].process.kill(at);
    // Back as a standby once the supervisor restarts it; the scheduler
    // must find the new leading master and work there.
    let deadline = at + LEADER_LIMIT;
    let moved = loop {
        if let Some(now_leading) = find_leading_master(cluster).await {
            if now_leading != leader {
                break Some(now_leading);
            }
        }
        if Instant::now() >= deadline {
            break None;
        }
        tokio::time::sleep(FAILOVER_POLL).await;
    };
    let Some(new_leader) = moved else {
        return not_done(format!(
            "SIGKILLed master {leader}; no other master led after it"
        ));
    };
    if wait_for_working_leader(cluster, None, LEADER_LIMIT)
        .await
        .is_none()
    {
        return not_done(format!(
            "SIGKILLed master {leader}; {new_leader} leads; no working scheduler after it"
        ));
    }
    Outcome::Done {
        what: format!(
            "SIGKILLed leading master {leader}; {new_leader} leads; scheduler working again after {:.1}s",
            at.elapsed().as_secs_f64()
        ),
        failover: None,
    }
}

async fn churn_agents(
    cluster: &Arc<Cluster>,
    count: usize,
    down: Duration,
    pick: u64,
    real_agents: usize,
    background: &mut Vec<tokio::task::JoinHandle<()>>,
) -> Outcome {
    let Some(master) = find_leading_master(cluster).await else {
        return not_done("no leading master");
    };
    let Ok(answer) = client::get(&master, "/sim/agents", Duration::from_secs(10)).await else {
        return not_done(format!("GET /sim/agents on {master} failed"));
    };
    let agents = answer.json();
    let ids: Vec<String> = agents
        .as_array()
        .or_else(|| agents["agents"].as_array())
        .into_iter()
        .flatten()
        .skip(real_agents)
        .filter(|a| a["connected"] == true)
        .filter_map(|a| a["id"].as_str().map(str::to_owned))
        .collect();
    let mut rng = SmallRng::seed_from_u64(pick);
    let chosen: Vec<String> = ids.choose_multiple(&mut rng, count).cloned().collect();
    if chosen.is_empty() {
        return not_done(format!("no connected simulated agent on {master}"));
    }
    for id in &chosen {
        let _ = client::post(
            &master,
            &format!("/sim/agents/{id}/fail"),
            &json!({}),
            Duration::from_secs(10),
        )
        .await;
    }
    // They come back on their own time, to whichever master leads then
    // (after a master failover the new leader holds them, journaled as
    // unreachable); the schedule goes on meanwhile.
    let n = chosen.len();
    let cluster = Arc::clone(cluster);
    background.push(tokio::spawn(async move {
        tokio::time::sleep(down).await;
        let deadline = Instant::now() + LEADER_LIMIT;
        let mut left = chosen;
        while !left.is_empty() && Instant::now() < deadline {
            let Some(master) = find_leading_master(&cluster).await else {
                tokio::time::sleep(FAILOVER_POLL).await;
                continue;
            };
            let mut still = Vec::new();
            for id in left {
                // 404: this master never knew the agent (a fresh fleet).
                let settled = client::post(
                    &master,
                    &format!("/sim/agents/{id}/restore"),
                    &json!({}),
                    Duration::from_secs(10),
                )
                .await
                .is_ok_and(|a| a.status == 200 || a.status == 404);
                if !settled {
                    still.push(id);
                }
            }
            left = still;
            if !left.is_empty() {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }));
    Outcome::Done {
        what: format!(
            "removed {n} agents of {master} for {:.1}s",
            down.as_secs_f64()
        ),
        failover: None,
    }
}

async fn restart_postgres(cluster: &Arc<Cluster>) -> Outcome {
    let cluster = Arc::clone(cluster);
    let at = Instant::now();
    let restarted = tokio::task::spawn_blocking(move || {
        let mut pg = cluster.pg.lock().unwrap_or_else(|p| p.into_inner());
        pg.restart();
    })
    .await;
    match restarted {
        Ok(()) => Outcome::Done {
            what: format!("restarted PostgreSQL in {:.1}s", at.elapsed().as_secs_f64()),
            failover: None,
        },
        Err(e) => not_done(format!("PostgreSQL restart failed: {e}")),
    }
}
