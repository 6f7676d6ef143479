//! Host maintenance from an operator's and a user's point of view, against
//! agent-sim: `POST /api/v1/hosts/drain` of 3 of 10 hosts running a
//! 30-instance service with `sla.maximum_unavailable_instances: 2` and a
//! Titus disruption budget keeps at most 2 instances not RUNNING and
//! HEALTHY at every sampled moment (the master's `/state`, every 100 ms),
//! hands each service pod over (its replacement RUNNING and HEALTHY
//! before the old task's kill, by the master's task statuses, the pod
//! saying so meanwhile), ends with every instance serving on a host that
//! is UP and the 3 hosts DRAINED or DOWN in `GET /api/v1/hosts`; `POST /api/v1/hosts/complete` brings them back
//! UP and into offers (a job only they have room for runs). Other tests:
//! the hosts end DOWN in the master's GET_MAINTENANCE_STATUS and come back;
//! a SIGKILL mid-drain; an operator's own schedule posted straight to the
//! master drained before its window and its inverse offer accepted.
#![allow(clippy::unwrap_used)]

use drover_seed_api::peloton::api::v1alpha::host::svc::host_service_client::HostServiceClient;
use drover_seed_api::peloton::api::v1alpha::host::svc::{
    CompleteMaintenanceRequest, ListHostPoolsRequest, QueryHostsRequest,
};
use drover_seed_api::peloton::api::v1alpha::host::HostState as PelotonHostState;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::{create_job, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const INSTANCES: usize = 30;
const AGENTS: usize = 10;
const MAX_UNAVAILABLE: usize = 2;
const LIMIT: Duration = Duration::from_secs(90);

/// The service: half a cpu per pod, so binpacking fills 8 per agent and
/// the 30 pods sit on 4 agents (the drained 3 among them), with room for
/// all of them on the 7 left.
fn service() -> Value {
    json!({
        "type": "SERVICE",
        "name": "web",
        "instance_count": INSTANCES,
        "sla": {"maximum_unavailable_instances": MAX_UNAVAILABLE},
        "disruption_budget": {
            "policy": {"availability_percentage": {"percentage_of_healthy": 90.0}},
            "rate": {"per_interval": {"interval_ms": 60000, "limit": 100}}
        },
        "default_spec": {
            "kill_grace_period_seconds": 1,
            "containers": [{
                "resource": {"cpu_limit": 0.5, "mem_limit_mb": 32},
                "command": {"value": "sleep 600"},
                "liveness_check": {
                    "enabled": true, "type": "COMMAND",
                    "command_check": {"command": "true"},
                    "initial_interval_secs": 1, "interval_secs": 1
                }
            }]
        }
    })
}

/// `drover --addr http://<address> <args>`: its stdout; it must succeed.
fn drover(address: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(binaries::drover())
        .arg("--addr")
        .arg(format!("http://{address}"))
        .args(args)
        .env_remove("DROVER_ADDR")
        .env_remove("DROVER_TOKEN")
        .env("DROVER_CONFIG", "/nonexistent/drover-config.yaml")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "drover {args:?}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Each agent's hostname, by agent id (`/sim/agents`).
async fn hostnames(sim: &AgentSim) -> BTreeMap<String, String> {
    let (_, agents) = sim.get("/sim/agents").await;
    agents["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["id"].as_str().unwrap_or("").to_owned(),
                a["hostname"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// The instances of `job` with a TASK_RUNNING task at the master, each
/// with the agent it runs on (`/state`).
async fn running(sim: &AgentSim, job: &str) -> BTreeMap<u32, String> {
    let (_, state) = sim.get("/state").await;
    let mut up = BTreeMap::new();
    let prefix = format!("{job}-");
    for framework in state["frameworks"].as_array().into_iter().flatten() {
        for task in framework["tasks"].as_array().into_iter().flatten() {
            if task["state"] != "TASK_RUNNING" {
                continue;
            }
            let id = task["id"].as_str().unwrap_or("");
            let Some((instance, _run)) = id.strip_prefix(&prefix).and_then(|r| r.split_once('-'))
            else {
                continue;
            };
            if let Ok(instance) = instance.parse() {
                let agent = task["slave_id"].as_str().unwrap_or("").to_owned();
                up.insert(instance, agent);
            }
        }
    }
    up
}

/// One task of a job at the master (`/state`, live and completed).
#[derive(Debug, Clone)]
struct MasterTask {
    instance: u32,
    run: u32,
    agent: String,
    state: String,
    healthy: Option<bool>,
    /// Every state it went through: (state, time in seconds, health).
    statuses: Vec<(String, f64, Option<bool>)>,
}

impl MasterTask {
    /// RUNNING and HEALTHY (the service's pods are checked).
    fn serves(&self) -> bool {
        self.state == "TASK_RUNNING" && self.healthy == Some(true)
    }

    fn is_live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING"
        )
    }

    /// When it was first RUNNING and HEALTHY.
    fn first_served(&self) -> Option<f64> {
        self.statuses
            .iter()
            .find(|(state, _, healthy)| state == "TASK_RUNNING" && *healthy == Some(true))
            .map(|s| s.1)
    }

    /// When it was told to die (TASK_KILLING: Drover asks for that state).
    fn killed_at(&self) -> Option<f64> {
        self.statuses
            .iter()
            .find(|(state, _, _)| state == "TASK_KILLING")
            .map(|s| s.1)
    }
}

/// Every task of `job` the master lists, live and completed.
async fn master_tasks(sim: &AgentSim, job: &str) -> Vec<MasterTask> {
    let (_, state) = sim.get("/state").await;
    let prefix = format!("{job}-");
    let mut out = Vec::new();
    for framework in state["frameworks"].as_array().into_iter().flatten() {
        let lists = ["tasks", "completed_tasks"];
        for task in lists
            .iter()
            .flat_map(|l| framework[*l].as_array().into_iter().flatten())
        {
            let id = task["id"].as_str().unwrap_or("");
            let Some((instance, run)) = id.strip_prefix(&prefix).and_then(|r| r.split_once('-'))
            else {
                continue;
            };
            let (Ok(instance), Ok(run)) = (instance.parse(), run.parse()) else {
                continue;
            };
            let statuses = task["statuses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|st| {
                    (
                        st["state"].as_str().unwrap_or("").to_owned(),
                        st["timestamp"].as_f64().unwrap_or(0.0),
                        st["healthy"].as_bool(),
                    )
                })
                .collect();
            out.push(MasterTask {
                instance,
                run,
                agent: task["slave_id"].as_str().unwrap_or("").to_owned(),
                state: task["state"].as_str().unwrap_or("").to_owned(),
                healthy: task["healthy"].as_bool(),
                statuses,
            });
        }
    }
    out
}

/// Every task of `web` seen so far, by (instance, run), as last seen
/// (the master forgets the tasks of an agent it takes DOWN).
type Seen = BTreeMap<(u32, u32), MasterTask>;

/// The instances of `web` serving (a task RUNNING and HEALTHY), and the
/// live tasks of `web` on `drained` hosts; every task listed goes into
/// `seen`.
async fn serving(
    sim: &AgentSim,
    drained: &[String],
    names: &BTreeMap<String, String>,
    seen: &mut Seen,
) -> (BTreeSet<u32>, usize) {
    let tasks = master_tasks(sim, "web").await;
    for t in &tasks {
        seen.insert((t.instance, t.run), t.clone());
    }
    let up = tasks
        .iter()
        .filter(|t| t.serves())
        .map(|t| t.instance)
        .collect();
    let on_drained = tasks
        .iter()
        .filter(|t| t.is_live())
        .filter(|t| names.get(&t.agent).is_some_and(|h| drained.contains(h)))
        .count();
    (up, on_drained)
}

/// Instances of `web` handing over now: two live tasks not being killed,
/// the newer not serving yet (the budget's disruptions in progress,
/// though nothing is down).
async fn handing_over(sim: &AgentSim) -> usize {
    let mut live: BTreeMap<u32, Vec<MasterTask>> = BTreeMap::new();
    for t in master_tasks(sim, "web").await {
        if t.is_live() && t.state != "TASK_KILLING" {
            live.entry(t.instance).or_default().push(t);
        }
    }
    live.values()
        .filter(|tasks| tasks.len() > 1)
        .filter(|tasks| {
            tasks
                .iter()
                .max_by_key(|t| t.run)
                .is_some_and(|t| !t.serves())
        })
        .count()
}

/// Each moved instance was handed over: a later run of it was RUNNING and
/// HEALTHY before its task on a drained host was told to die. Returns
/// how many instances moved.
fn assert_handed_over(seen: &Seen, drained: &[String], names: &BTreeMap<String, String>) -> usize {
    let tasks: Vec<&MasterTask> = seen.values().collect();
    let mut moved = 0;
    for old in tasks
        .iter()
        .filter(|t| names.get(&t.agent).is_some_and(|h| drained.contains(h)))
    {
        let Some(killed) = old.killed_at() else {
            panic!("{old:?} left its drained host without a kill");
        };
        let served = tasks
            .iter()
            .filter(|t| t.instance == old.instance && t.run > old.run)
            .filter_map(|t| t.first_served())
            .fold(f64::INFINITY, f64::min);
        assert!(
            served <= killed,
            "instance {}: its old run {} was killed at {killed} before a replacement \
             served (first at {served})",
            old.instance,
            old.run
        );
        moved += 1;
    }
    moved
}

/// Each host's state as `GET /api/v1/hosts` shows it.
async fn host_states(address: &str) -> BTreeMap<String, String> {
    let (status, reply) = get(address, "/api/v1/hosts").await;
    assert_eq!(status, 200, "{reply}");
    reply["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            (
                h["hostname"].as_str().unwrap_or("").to_owned(),
                h["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// A scheduler over 10 agents with the service all RUNNING; the three
/// hosts holding most of its pods.
async fn running_service() -> (AgentSim, tempfile::TempDir, Scheduler, Vec<String>) {
    let sim = AgentSim::for_scheduler(AGENTS).start();
    let data = tempfile::tempdir().unwrap();
    let s = Scheduler::start(data.path(), &sim.master_url(), &[]);
    create_job(&s.address, "web", service()).await;
    let all = wait_for(LIMIT, || async {
        let tasks = master_tasks(&sim, "web").await;
        let up = running(&sim, "web").await;
        (up.len() == INSTANCES && tasks.iter().all(MasterTask::serves)).then_some(up)
    })
    .await
    .expect("the service never ran whole and healthy");
    let names = hostnames(&sim).await;
    let mut per_host: BTreeMap<String, usize> = BTreeMap::new();
    for agent in all.values() {
        *per_host.entry(names[agent].clone()).or_default() += 1;
    }
    let mut busiest: Vec<(String, usize)> = per_host.into_iter().collect();
    busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let drained: Vec<String> = busiest.into_iter().take(3).map(|(h, _)| h).collect();
    (sim, data, s, drained)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_of_3_of_10_hosts_keeps_the_budget_and_complete_brings_them_back() {
    let (sim, _data, s, drained) = running_service().await;
    assert_eq!(drained.len(), 3, "the pods sit on fewer than 3 hosts");
    let names = hostnames(&sim).await;

    // A budget Drover cannot serve is refused, naming the field.
    let mut bad = service();
    bad["disruption_budget"]["time_windows"] = json!([{"time_zone": "PST"}]);
    let (status, reply) = post(
        &s.address,
        "/api/v1/jobs",
        &json!({"job_id": {"value": "bad"}, "spec": bad}),
    )
    .await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (400, Some("INVALID_ARGUMENT"))
    );
    let message = reply["message"].as_str().unwrap();
    assert!(
        message.contains("disruption_budget") && message.contains("only UTC"),
        "{message}"
    );

    // An unknown host is named.
    let (status, reply) = post(
        &s.address,
        "/api/v1/hosts/drain",
        &json!({"hostnames": ["no-such-host"]}),
    )
    .await;
    assert_eq!((status, reply["code"].as_str()), (404, Some("NOT_FOUND")));
    assert!(reply["message"].as_str().unwrap().contains("no-such-host"));

    let (status, reply) = post(
        &s.address,
        "/api/v1/hosts/drain",
        &json!({"hostnames": drained}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    for host in reply["hosts"].as_array().unwrap() {
        assert_eq!(host["state"], "HOST_STATE_DRAINING", "{reply}");
    }

    // Sample until no pod is left on the drained hosts and all serve; a
    // pod handing over says so meanwhile.
    let started = Instant::now();
    let mut worst = 0;
    let mut samples = 0;
    let mut said_handing_over = false;
    let mut budget_said = false;
    let mut most_moving = 0;
    let mut seen = Seen::new();
    let (_, to_move) = serving(&sim, &drained, &names, &mut seen).await;
    loop {
        let (up, on_drained) = serving(&sim, &drained, &names, &mut seen).await;
        samples += 1;
        worst = worst.max(INSTANCES - up.len());
        most_moving = most_moving.max(handing_over(&sim).await);
        if up.len() == INSTANCES && on_drained == 0 {
            break;
        }
        if !said_handing_over {
            said_handing_over = pod_says_handing_over(&s.address).await;
        }
        if !budget_said {
            budget_said = budget_says_handing_over(&s.address).await;
        }
        assert!(
            started.elapsed() < LIMIT,
            "the drain did not finish: {} serving, {on_drained} on drained hosts; hosts {:?}",
            up.len(),
            host_states(&s.address).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        worst <= MAX_UNAVAILABLE,
        "{worst} instances were not RUNNING and HEALTHY at once (budget {MAX_UNAVAILABLE}), \
         {samples} samples"
    );
    assert!(samples > 10, "too few samples ({samples}) to say much");
    assert!(
        most_moving <= MAX_UNAVAILABLE,
        "{most_moving} handovers in progress at once (budget {MAX_UNAVAILABLE})"
    );
    let moved = assert_handed_over(&seen, &drained, &names);
    assert_eq!(moved, to_move, "every pod on the drained hosts moved");
    assert!(said_handing_over, "no pod ever said it was handing over");
    assert!(budget_said, "the job's budget never listed a handover");
    eprintln!(
        "drain of {drained:?}: {moved} pods handed over, {samples} samples over {:?}, \
         at most {worst} not serving, {most_moving} handovers at once",
        started.elapsed()
    );

    // The hosts end DRAINED (DOWN once the master takes them down), every
    // other host UP.
    let states = wait_for(Duration::from_secs(20), || async {
        let states = host_states(&s.address).await;
        drained
            .iter()
            .all(|h| {
                matches!(
                    states.get(h).map(String::as_str),
                    Some("HOST_STATE_DRAINED" | "HOST_STATE_DOWN")
                )
            })
            .then_some(states)
    })
    .await
    .expect("the drained hosts never showed DRAINED or DOWN in GET /api/v1/hosts");
    for (host, state) in &states {
        if !drained.contains(host) {
            assert_eq!(state, "HOST_STATE_UP", "{host}");
        }
    }
    // The job's API shows its budget: once its status updates are in,
    // the SLA's 2 (the Titus 90% would allow 3).
    let budget = wait_for(Duration::from_secs(10), || async {
        let (_, job) = get(&s.address, "/api/v1/jobs/web").await;
        let budget = job["disruption_budget"].clone();
        (budget["allowed_now"] == MAX_UNAVAILABLE).then_some(budget)
    })
    .await;
    assert!(
        budget.is_some(),
        "{:?}",
        get(&s.address, "/api/v1/jobs/web").await.1["disruption_budget"]
    );

    // The CLI shows the same: the hosts DRAINED (or DOWN), the budget.
    let hosts = drover(&s.address, &["host", "list", "--state", "DRAINED,DOWN"]);
    for host in &drained {
        assert!(hosts.contains(host.as_str()), "{hosts}");
    }
    assert!(!hosts.contains(" UP "), "{hosts}");
    let job = drover(&s.address, &["job", "get", "web"]);
    assert!(job.contains("2 allowed now"), "{job}");

    // Peloton's HostService says the same over gRPC.
    let mut grpc = HostServiceClient::connect(format!("http://{}", s.address))
        .await
        .unwrap();
    let reply = grpc
        .query_hosts(QueryHostsRequest {
            host_states: vec![
                PelotonHostState::Drained as i32,
                PelotonHostState::Down as i32,
            ],
        })
        .await
        .unwrap()
        .into_inner();
    let listed: BTreeSet<String> = reply.host_infos.into_iter().map(|h| h.hostname).collect();
    assert_eq!(listed, drained.iter().cloned().collect::<BTreeSet<_>>());
    let err = grpc
        .list_host_pools(ListHostPoolsRequest {})
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented);
    assert!(err.message().contains("host pools"), "{}", err.message());
    let err = grpc
        .complete_maintenance(CompleteMaintenanceRequest {
            hostnames: Vec::new(),
            hostname: "never-drained".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), tonic::Code::NotFound, "{}", err.message());

    // Complete: UP again, and into offers. A job needing more than the 7
    // other hosts have left runs only on them.
    let (status, reply) = post(
        &s.address,
        "/api/v1/hosts/complete",
        &json!({"hostnames": drained}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let states = host_states(&s.address).await;
    for host in &drained {
        assert_eq!(states[host], "HOST_STATE_UP");
    }
    let big = json!({
        "type": "SERVICE", "name": "big", "instance_count": 40,
        "default_spec": {"containers": [{
            "resource": {"cpu_limit": 0.5, "mem_limit_mb": 32},
            "command": {"value": "sleep 600"}
        }]}
    });
    create_job(&s.address, "big", big).await;
    wait_for_job_state(&s.address, "big", "JOB_STATE_RUNNING", LIMIT).await;
    // Agents back from DOWN registered again, under their old ids (as a
    // Mesos agent restarted on its work directory does).
    let names = hostnames(&sim).await;
    let placed: BTreeSet<String> = running(&sim, "big")
        .await
        .values()
        .map(|a| names[a.as_str()].clone())
        .collect();
    assert!(
        drained.iter().any(|h| placed.contains(h)),
        "nothing ran on the hosts brought back: {placed:?}"
    );
}

/// Whether a pod of `web` shows its serving run and says a replacement is
/// starting (`GET /api/v1/jobs/web/pods`, the pod's status message).
async fn pod_says_handing_over(address: &str) -> bool {
    let (status, reply) = get(address, "/api/v1/jobs/web/pods").await;
    if status != 200 {
        return false;
    }
    reply
        .to_string()
        .contains("handing over (its host drains): replacement")
}

/// Whether the job's disruption budget lists a handover in progress.
async fn budget_says_handing_over(address: &str) -> bool {
    let (_, job) = get(address, "/api/v1/jobs/web").await;
    job["disruption_budget"]["handovers"]
        .as_array()
        .is_some_and(|h| !h.is_empty())
}

/// Samples the master every 100 ms until every instance of `web` serves
/// and none is on `drained` (or `stop_after` samples were taken); the most
/// instances not RUNNING and HEALTHY at once, and the samples taken.
async fn sample_drain(
    sim: &AgentSim,
    drained: &[String],
    names: &BTreeMap<String, String>,
    stop_after: Option<usize>,
    seen: &mut Seen,
) -> (usize, usize, bool) {
    let started = Instant::now();
    let (mut worst, mut samples) = (0, 0);
    loop {
        let (up, on_drained) = serving(sim, drained, names, seen).await;
        samples += 1;
        worst = worst.max(INSTANCES - up.len());
        if up.len() == INSTANCES && on_drained == 0 {
            return (worst, samples, true);
        }
        if stop_after.is_some_and(|n| samples >= n) {
            return (worst, samples, false);
        }
        assert!(
            started.elapsed() < LIMIT,
            "the drain did not finish: {} serving, {on_drained} on drained hosts",
            up.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduler_killed_mid_drain_finishes_it_after_restart_within_the_budget() {
    let (sim, data, mut s, drained) = running_service().await;
    let names = hostnames(&sim).await;
    let (status, reply) = post(
        &s.address,
        "/api/v1/hosts/drain",
        &json!({"hostnames": drained}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    // Some moves made, then SIGKILL.
    let mut seen = Seen::new();
    let (_, to_move) = serving(&sim, &drained, &names, &mut seen).await;
    let (worst_before, _, done) = sample_drain(&sim, &drained, &names, Some(20), &mut seen).await;
    assert!(
        !done,
        "the drain finished before the kill; nothing was tested"
    );
    s.kill();
    let (worst_down, _, _) = sample_drain(&sim, &drained, &names, Some(10), &mut seen).await;
    let s = Scheduler::start(data.path(), &sim.master_url(), &[]);
    // The drain is remembered, and goes on.
    let states = host_states(&s.address).await;
    for host in &drained {
        assert!(
            matches!(
                states.get(host).map(String::as_str),
                Some("HOST_STATE_DRAINING" | "HOST_STATE_DRAINED" | "HOST_STATE_DOWN")
            ),
            "{host} forgot its drain: {states:?}"
        );
    }
    let (worst_after, samples, done) = sample_drain(&sim, &drained, &names, None, &mut seen).await;
    assert!(done);
    let worst = worst_before.max(worst_down).max(worst_after);
    assert!(
        worst <= MAX_UNAVAILABLE,
        "{worst} instances were unavailable at once across the restart ({samples} samples after)"
    );
    // Handed over across the restart too: no old task killed before its
    // replacement served, none killed twice or left behind.
    let moved = assert_handed_over(&seen, &drained, &names);
    assert_eq!(moved, to_move, "every pod on the drained hosts moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drained_hosts_end_down_in_the_masters_maintenance_status() {
    let (sim, _data, s, drained) = running_service().await;
    let (status, reply) = post(
        &s.address,
        "/api/v1/hosts/drain",
        &json!({"hostnames": drained}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let down = wait_for(LIMIT, || async {
        let states = host_states(&s.address).await;
        drained
            .iter()
            .all(|h| states.get(h).map(String::as_str) == Some("HOST_STATE_DOWN"))
            .then_some(())
    })
    .await;
    assert!(down.is_some(), "{:?}", host_states(&s.address).await);
    let (status, reply) = post(
        &sim.address,
        "/api/v1",
        &json!({"type": "GET_MAINTENANCE_STATUS"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let down_machines: BTreeSet<String> = reply["get_maintenance_status"]["status"]
        ["down_machines"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["hostname"].as_str().map(str::to_owned))
        .collect();
    for host in &drained {
        assert!(down_machines.contains(host), "{host} not DOWN: {reply}");
    }
    let (status, _) = post(
        &s.address,
        "/api/v1/hosts/complete",
        &json!({"hostnames": drained}),
    )
    .await;
    assert_eq!(status, 200);
    let up = wait_for(LIMIT, || async {
        let (_, reply) = post(
            &sim.address,
            "/api/v1",
            &json!({"type": "GET_MAINTENANCE_STATUS"}),
        )
        .await;
        reply["get_maintenance_status"]["status"]["down_machines"]
            .as_array()
            .is_none_or(|m| m.is_empty())
            .then_some(())
    })
    .await;
    assert!(up.is_some(), "the master still has the hosts down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_own_schedule_is_drained_before_its_window_and_its_inverse_offers_accepted() {
    let (sim, _data, s, drained) = running_service().await;
    let names = hostnames(&sim).await;
    let host = drained[0].clone();
    // The machine as Mesos names it: hostname and the agent's IP.
    let (_, agents) = post(&sim.address, "/api/v1", &json!({"type": "GET_AGENTS"})).await;
    let machine =
        drover_scheduler::mesos::operator::machines_of(&agents, std::slice::from_ref(&host))
            .pop()
            .unwrap();
    let start_ns = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        + Duration::from_secs(30))
    .as_nanos() as i64;
    let (status, reply) = post(
        &sim.address,
        "/api/v1",
        &json!({"type": "UPDATE_MAINTENANCE_SCHEDULE", "update_maintenance_schedule": {
            "schedule": {"windows": [{
                "machine_ids": [machine],
                "unavailability": {"start": {"nanoseconds": start_ns},
                                   "duration": {"nanoseconds": 3_600_000_000_000i64}}
            }]}
        }}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    // Drained before the window, within the budget.
    let mut seen = Seen::new();
    let (worst, _, done) =
        sample_drain(&sim, std::slice::from_ref(&host), &names, None, &mut seen).await;
    assert!(done);
    assert!(worst <= MAX_UNAVAILABLE, "{worst} unavailable at once");
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    assert!(now_ns < start_ns, "the drain ended after the window opened");
    // Drover accepted the inverse offer; the host is DRAINED, not DOWN
    // (the operator takes it down).
    let accepted = wait_for(Duration::from_secs(20), || async {
        let (_, reply) = post(
            &sim.address,
            "/api/v1",
            &json!({"type": "GET_MAINTENANCE_STATUS"}),
        )
        .await;
        let draining = reply["get_maintenance_status"]["status"]["draining_machines"].clone();
        let ok = draining.as_array().into_iter().flatten().any(|m| {
            m["id"]["hostname"] == host.as_str()
                && m["statuses"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|st| st["status"] == "ACCEPT")
        });
        ok.then_some(())
    })
    .await;
    assert!(accepted.is_some(), "the inverse offer was not accepted");
    assert_eq!(host_states(&s.address).await[&host], "HOST_STATE_DRAINED");
}
