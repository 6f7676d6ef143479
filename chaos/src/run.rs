//! One chaos run, in named steps: print the seed and the schedule, start
//! the cluster, wait for a working leader, then run four loops side by
//! side (the supervisor, the leadership watch that sums leaderless time,
//! the auditor, the job submitter) while the injector carries out the
//! schedule; then heal, let the system settle (every batch instance
//! succeeded, every service instance running), audit once more, count
//! what was lost, and summarise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::audit::{Audit, Instance, MasterView};
use crate::calls::CallAudit;
use crate::cluster::{Cluster, ClusterConfig};
use crate::dose::Dose;
use crate::faults::{self, Outcome};
use crate::leadership::Leaderless;
use crate::observe;
use crate::report::Summary;
use crate::schedule;
use crate::workload;

/// How long the first leader may take (ZooKeeper and PostgreSQL are up;
/// the replicas elect one and it subscribes).
const FIRST_LEADER_LIMIT: Duration = Duration::from_secs(180);
/// How long one job's creation may take across failovers.
const SUBMIT_LIMIT: Duration = Duration::from_secs(300);
/// How often the supervisor looks at its processes.
const SUPERVISE_EVERY: Duration = Duration::from_millis(100);
/// How often the leadership watch probes the replicas.
const WATCH_EVERY: Duration = Duration::from_millis(200);
/// How often the settle step checks.
const SETTLE_EVERY: Duration = Duration::from_secs(2);

/// What a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub dose: Dose,
    pub seed: u64,
    pub run_dir: PathBuf,
    pub master_state_dir: bool,
}

/// A line of the run's log, stamped with the time since `start`.
fn say(start: Instant, line: &str) {
    println!("[{:8.1}s] {line}", start.elapsed().as_secs_f64());
}

/// Runs the dose and returns its summary.
pub async fn run(config: RunConfig) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let dose = config.dose.clone();
    let plan = schedule::plan(&dose, config.seed);
    let jobs = workload::plan(&dose.workload, config.seed);
    print_header(&config, &plan);

    let cluster_config = ClusterConfig {
        dose: dose.clone(),
        seed: config.seed,
        run_dir: config.run_dir.clone(),
        master_state_dir: config.master_state_dir,
    };
    let cluster = tokio::task::spawn_blocking(move || Cluster::start(&cluster_config))
        .await
        .context("starting the cluster")??;
    let cluster = Arc::new(cluster);
    say(
        started,
        "cluster started: ZooKeeper, PostgreSQL, masters, replicas",
    );
    let stop = Arc::new(AtomicBool::new(false));
    let supervisor = tokio::spawn(supervise(Arc::clone(&cluster), Arc::clone(&stop), started));

    let first = faults::wait_for_working_leader(&cluster, None, FIRST_LEADER_LIMIT).await;
    let Some(first) = first else {
        stop.store(true, Ordering::SeqCst);
        let _ = supervisor.await;
        anyhow::bail!(
            "no replica led and worked within {FIRST_LEADER_LIMIT:?}; logs in {}",
            config.run_dir.display()
        );
    };
    say(
        started,
        &format!(
            "{} leads and works: the dose begins",
            cluster.replica_addresses[first].0
        ),
    );
    let start = Instant::now();

    let leaderless = Arc::new(Mutex::new(Leaderless::default()));
    let watch = tokio::spawn(watch_leadership(
        Arc::clone(&cluster),
        Arc::clone(&leaderless),
        Arc::clone(&stop),
    ));
    let batch_jobs = jobs.iter().filter(|j| j.batch).map(|j| j.id.clone());
    let audit = Arc::new(Mutex::new(Audit::new(batch_jobs)));
    let call_audit = Arc::new(Mutex::new(CallAudit::default()));
    let auditor = tokio::spawn(audit_loop(
        Arc::clone(&cluster),
        Arc::clone(&audit),
        Arc::clone(&call_audit),
        Arc::clone(&stop),
        dose.audit_interval,
    ));
    let addresses: Vec<String> = cluster
        .replica_addresses
        .iter()
        .map(|(_, a)| a.clone())
        .collect();
    let submitter = tokio::spawn(submit_all(jobs.clone(), addresses, start));

    let mut summary = Summary::default();
    let mut background = Vec::new();
    for planned in &plan {
        tokio::time::sleep_until((start + planned.at).into()).await;
        say(started, &format!("fault: {}", planned.fault));
        let outcome =
            faults::inject(&cluster, &planned.fault, dose.real_agents, &mut background).await;
        match outcome {
            Outcome::Done { what, failover } => {
                let took = failover
                    .map(|d| format!(": working leader after {:.2}s", d.as_secs_f64()))
                    .unwrap_or_default();
                say(started, &format!("  {what}{took}"));
                *summary
                    .faults_done
                    .entry(planned.fault.kind().to_owned())
                    .or_default() += 1;
                match (&planned.fault, failover) {
                    (schedule::Fault::KillLeader, Some(d)) => summary.failovers.push(d),
                    (_, Some(d)) => summary.other_failovers.push(d),
                    _ => {}
                }
            }
            Outcome::NotDone { why } => {
                say(started, &format!("  NOT DONE: {why}"));
                summary.not_done.push(format!("{}: {why}", planned.fault));
            }
        }
    }
    match submitter.await {
        Ok(errors) => summary.not_done.extend(errors),
        Err(e) => summary
            .not_done
            .push(format!("the job submitter failed: {e}")),
    }
    for handle in background {
        let _ = handle.await;
    }
    for replica in cluster.replicas().iter() {
        replica.proxy.heal();
    }
    let faults_over = Instant::now();
    say(started, "faults over; settling");

    let expected = workload::instances(&jobs);
    let settled = settle(&cluster, &expected, dose.settle_limit).await;
    summary.settled_after = settled.as_ref().ok().map(|_| faults_over.elapsed());
    say(
        started,
        &match &settled {
            Ok(_) => "settled: every batch instance succeeded, every service instance runs".into(),
            Err(n) => format!(
                "did not settle within {:?}: {n} instances not done",
                dose.settle_limit
            ),
        },
    );
    // One last round with the system at rest, then the loops stop.
    let last = final_round(&cluster, &audit).await;
    stop.store(true, Ordering::SeqCst);
    let _ = tokio::join!(watch, auditor);
    let lost = match last {
        Some((runs, leader)) => Audit::lost(&expected, &runs, &leader),
        None => expected
            .iter()
            .map(|(i, _)| {
                (
                    i.clone(),
                    "the store or the leading master could not be read".to_owned(),
                )
            })
            .collect(),
    };

    fill_counts(
        &mut summary,
        &audit.lock().unwrap_or_else(|p| p.into_inner()),
        &lost,
    );
    fill_calls(
        &mut summary,
        &call_audit.lock().unwrap_or_else(|p| p.into_inner()),
    );
    summary.leaderless = leaderless.lock().unwrap_or_else(|p| p.into_inner()).total();
    summary.dose = dose.name.to_owned();
    summary.seed = config.seed;
    summary.instances = dose.workload.instances();
    summary.agents = dose.agents;
    summary.real_agents = dose.real_agents;
    summary.masters = dose.masters;
    summary.replicas = dose.replicas;
    summary.master_state_dir = config.master_state_dir;
    summary.elapsed = started.elapsed();
    summary.processes = cluster.process_report();

    let _ = supervisor.await;
    let cluster = Arc::try_unwrap(cluster).ok();
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .context("stopping the cluster")?;
    Ok(summary)
}

fn print_header(config: &RunConfig, plan: &[schedule::Planned]) {
    let dose = &config.dose;
    println!(
        "drover-chaos: dose {} seed {} (replay: --seed {}{})",
        dose.name,
        config.seed,
        config.seed,
        if dose.name == "long" { " --long" } else { "" }
    );
    println!(
        "cluster: {} replicas, {} masters, {} simulated + {} real agents; {} instances ({} batch jobs x {}, {} service jobs x {})",
        dose.replicas,
        dose.masters,
        dose.agents,
        dose.real_agents,
        dose.workload.instances(),
        dose.workload.batch_jobs,
        dose.workload.batch_instances,
        dose.workload.service_jobs,
        dose.workload.service_instances,
    );
    println!("run dir: {}", config.run_dir.display());
    println!(
        "schedule ({} faults, from the first working leader):",
        plan.len()
    );
    print!("{}", schedule::describe(plan));
}

async fn supervise(cluster: Arc<Cluster>, stop: Arc<AtomicBool>, started: Instant) {
    while !stop.load(Ordering::SeqCst) {
        for line in cluster.supervise(Instant::now()) {
            say(started, &format!("supervisor: {line}"));
        }
        tokio::time::sleep(SUPERVISE_EVERY).await;
    }
}

async fn watch_leadership(
    cluster: Arc<Cluster>,
    leaderless: Arc<Mutex<Leaderless>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let working = faults::working_leader(&cluster, None).await.is_some();
        leaderless
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .on_probe(Instant::now(), working);
        tokio::time::sleep(WATCH_EVERY).await;
    }
}

/// Every master's view, read one after the other (a dead one is skipped).
async fn read_masters(cluster: &Cluster) -> Vec<MasterView> {
    let mut views = Vec::new();
    for address in &cluster.master_addresses {
        if let Some(view) = observe::read_master(address).await {
            views.push(view);
        }
    }
    views
}

async fn audit_loop(
    cluster: Arc<Cluster>,
    audit: Arc<Mutex<Audit>>,
    call_audit: Arc<Mutex<CallAudit>>,
    stop: Arc<AtomicBool>,
    every: Duration,
) {
    while !stop.load(Ordering::SeqCst) {
        // The masters first, the store after: what a master shows as
        // acknowledged was stored before it was acknowledged.
        let views = read_masters(&cluster).await;
        let runs = observe::read_store(&cluster.store_url).await;
        audit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .on_round(&views, runs.as_deref());
        read_call_logs(&cluster, &call_audit).await;
        tokio::time::sleep(every).await;
    }
}

async fn submit_all(
    jobs: Vec<workload::JobPlan>,
    replicas: Vec<String>,
    start: Instant,
) -> Vec<String> {
    let mut errors = Vec::new();
    for job in &jobs {
        tokio::time::sleep_until((start + job.at).into()).await;
        if let Err(e) = workload::submit(job, &replicas, SUBMIT_LIMIT).await {
            errors.push(e);
        }
    }
    errors
}

/// Each master process's new call log records (a restarted master is a
/// new process, with a new log: keyed by address and pid).
async fn read_call_logs(cluster: &Cluster, call_audit: &Mutex<CallAudit>) {
    let masters: Vec<String> = cluster
        .masters()
        .iter()
        .filter_map(|m| {
            let pid = m.process.child()?.id();
            Some(format!("{}#{pid}", m.process.address))
        })
        .collect();
    for key in masters {
        let address = key.split('#').next().unwrap_or_default();
        let after = call_audit
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .after(&key);
        if let Some(records) = observe::read_calls(address, after).await {
            call_audit
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .on_records(&key, &records);
        }
    }
}

/// The store's runs and the leading master's view, read once.
async fn read_final(cluster: &Cluster) -> Option<(Vec<crate::audit::StoreRun>, MasterView)> {
    let leader = faults::find_leading_master(cluster).await?;
    let view = observe::read_master(&leader).await?;
    let runs = observe::read_store(&cluster.store_url).await?;
    Some((runs, view))
}

/// Waits until nothing is lost, up to `limit`: `Err` with how many
/// instances were still not done then.
async fn settle(
    cluster: &Cluster,
    expected: &[(Instance, bool)],
    limit: Duration,
) -> Result<(), usize> {
    let deadline = Instant::now() + limit;
    let mut missing = expected.len();
    loop {
        if let Some((runs, leader)) = read_final(cluster).await {
            missing = Audit::lost(expected, &runs, &leader).len();
            if missing == 0 {
                return Ok(());
            }
        }
        if Instant::now() >= deadline {
            return Err(missing);
        }
        tokio::time::sleep(SETTLE_EVERY).await;
    }
}

/// The last audit round, and what the lost count is read from.
async fn final_round(
    cluster: &Cluster,
    audit: &Mutex<Audit>,
) -> Option<(Vec<crate::audit::StoreRun>, MasterView)> {
    let views = read_masters(cluster).await;
    let runs = observe::read_store(&cluster.store_url).await;
    audit
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .on_round(&views, runs.as_deref());
    read_final(cluster).await
}

/// The checker's findings into the summary.
fn fill_counts(summary: &mut Summary, audit: &Audit, lost: &BTreeMap<Instance, String>) {
    let name = |(job, i): &Instance| format!("{job}-{i}");
    summary.duplicated = audit
        .duplicated
        .iter()
        .map(|(i, tasks)| (name(i), tasks.join(", ")))
        .collect();
    summary.re_run = audit
        .re_run
        .iter()
        .map(|(i, (done, again))| {
            (
                name(i),
                format!("run {done} finished, run {again} launched after it"),
            )
        })
        .collect();
    summary.acked_not_stored = audit.acked_not_stored.clone();
    summary.lost = lost.iter().map(|(i, why)| (name(i), why.clone())).collect();
    summary.audit_rounds = audit.rounds;
    summary.coverage = audit.coverage();
}

/// The call logs' figures into the summary.
fn fill_calls(summary: &mut Summary, calls: &CallAudit) {
    summary.calls = (calls.calls, calls.subscribes, calls.acknowledges);
    summary.calls_from_replaced_streams = calls
        .from_replaced_streams
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
}
