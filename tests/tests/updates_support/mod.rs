//! What the update tests share: a simulated cluster, a service spec with a
//! health check and a `rev` label (pod labels travel to the master as task
//! labels, so the master tells which spec each task ran), the update API
//! as a user calls it, and a sampler that reads, every 100 ms, the
//! master's `/state` and the job's pods: what a user watching the service
//! sees while it changes.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::create_job;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};

/// The longest a test waits for one state.
pub const LIMIT: Duration = Duration::from_secs(60);

/// A master with simulated agents and a scheduler on a data dir of its own.
pub struct Cluster {
    pub sim: AgentSim,
    pub scheduler: Scheduler,
    pub data: tempfile::TempDir,
}

impl Cluster {
    /// `agents` simulated agents (4 cpus each) and a scheduler.
    pub fn start(agents: usize) -> Cluster {
        let sim = AgentSim::for_scheduler(agents).start();
        let data = tempfile::tempdir().unwrap();
        let scheduler = Scheduler::start(data.path(), &sim_url(&sim), &[]);
        Cluster {
            sim,
            scheduler,
            data,
        }
    }

    /// The scheduler's API address.
    pub fn api(&self) -> &str {
        &self.scheduler.address
    }

    /// SIGKILLs the scheduler and starts another on the same data dir.
    pub fn crash_and_restart(&mut self) {
        self.scheduler.kill();
        self.scheduler = Scheduler::start(self.data.path(), &sim_url(&self.sim), &[]);
    }
}

fn sim_url(sim: &AgentSim) -> String {
    format!("http://{}", sim.address)
}

/// A service of `instances` whose pods carry the label `rev` and a
/// COMMAND liveness check judged after 1 s, every 1 s, failing once is
/// enough to kill (the simulator answers probes: `sim.healthy=false` in
/// `extra_labels` makes them fail); kills take 1 s.
pub fn service(instances: u32, rev: &str, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = vec![json!({"key": "rev", "value": rev})];
    labels.extend(
        extra_labels
            .iter()
            .map(|(k, v)| json!({"key": k, "value": v})),
    );
    json!({
        "type": "SERVICE",
        "name": "svc",
        "instance_count": instances,
        "default_spec": {
            "labels": labels,
            "containers": [{
                "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32, "disk_limit_mb": 0},
                "command": {"value": "serve"},
                "liveness_check": {
                    "enabled": true, "type": "COMMAND",
                    "initial_interval_secs": 1, "interval_secs": 1, "timeout_secs": 1,
                    "max_consecutive_failures": 1,
                    "command_check": {"command": "true"},
                },
            }],
            "kill_grace_period_seconds": 1,
        },
    })
}

/// Creates `job` from `spec` and waits until all its pods are RUNNING and
/// HEALTHY.
pub async fn create_healthy(api: &str, job: &str, spec: Value) {
    let instances = spec["instance_count"].as_u64().unwrap() as usize;
    create_job(api, job, spec).await;
    wait_all_up(api, job, instances).await;
}

/// Waits until `job` has exactly `instances` pods, all RUNNING+HEALTHY.
pub async fn wait_all_up(api: &str, job: &str, instances: usize) -> BTreeMap<u32, Pod> {
    let last = std::cell::RefCell::new(BTreeMap::new());
    let up = wait_for(LIMIT, || async {
        let now = pods(api, job).await;
        *last.borrow_mut() = now.clone();
        (now.len() == instances && now.values().all(Pod::is_up)).then_some(now)
    })
    .await;
    up.unwrap_or_else(|| {
        panic!(
            "{job}: not all {instances} pods up; last {:?}",
            last.borrow()
        )
    })
}

/// POST `path` under `/api/v1/jobs/{job}/` with `body`; a refusal fails
/// the test.
pub async fn job_post(api: &str, job: &str, path: &str, body: Value) -> Value {
    let (status, reply) = post(api, &format!("/api/v1/jobs/{job}/{path}"), &body).await;
    assert_eq!(status, 200, "POST {path} {body}: {reply}");
    reply
}

/// Starts an update of `job` to `spec` with `update_spec`; returns the
/// workflow's (old, new) spec versions.
pub async fn update(api: &str, job: &str, spec: Value, update_spec: Value) -> (u64, u64) {
    let reply = job_post(
        api,
        job,
        "update",
        json!({"spec": spec, "update_spec": update_spec}),
    )
    .await;
    let status = &reply["workflow_info"]["status"];
    (
        version(&status["prev_version"]),
        version(&status["version"]),
    )
}

/// A `{"value": "N"}` version.
pub fn version(v: &Value) -> u64 {
    v["value"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a version: {v}"))
}

/// The job's current (or last) workflow.
pub async fn workflow(api: &str, job: &str) -> Value {
    let (status, reply) = get(api, &format!("/api/v1/jobs/{job}")).await;
    assert_eq!(status, 200, "{reply}");
    reply["workflow_info"].clone()
}

/// The state of the job's workflow (`WORKFLOW_STATE_...`).
pub fn state_of(workflow: &Value) -> &str {
    workflow["status"]["state"].as_str().unwrap_or("")
}

/// Waits until the job's workflow satisfies `done`; returns it.
pub async fn wait_workflow(
    api: &str,
    job: &str,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let last = std::cell::RefCell::new(Value::Null);
    let found = wait_for(LIMIT, || async {
        let w = workflow(api, job).await;
        *last.borrow_mut() = w.clone();
        done(&w).then_some(w)
    })
    .await;
    found.unwrap_or_else(|| panic!("{job}: workflow never {what}; last {}", last.borrow()))
}

/// Waits until the job's workflow is in `state`.
pub async fn wait_workflow_state(api: &str, job: &str, state: &str) -> Value {
    wait_workflow(api, job, state, |w| state_of(w) == state).await
}

/// The states of the workflow's events (`instance`: one instance's).
pub async fn event_states(api: &str, job: &str, instance: Option<u32>) -> Vec<String> {
    let path = match instance {
        Some(i) => format!("/api/v1/jobs/{job}/workflow/events?instance={i}"),
        None => format!("/api/v1/jobs/{job}/workflow/events"),
    };
    let (status, reply) = get(api, &path).await;
    assert_eq!(status, 200, "{reply}");
    reply["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["state"].as_str().unwrap().to_owned())
        .collect()
}

/// One pod as the job's pods list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pod {
    pub state: String,
    pub healthy: String,
    pub version: u64,
    pub desired_version: u64,
    /// Its current run's task id (empty before its first run).
    pub task: String,
}

impl Pod {
    /// RUNNING and HEALTHY.
    pub fn is_up(&self) -> bool {
        self.state == "POD_STATE_RUNNING" && self.healthy == "HEALTHY"
    }
}

/// The job's pods by instance.
pub async fn pods(api: &str, job: &str) -> BTreeMap<u32, Pod> {
    let (status, reply) = get(api, &format!("/api/v1/jobs/{job}/pods")).await;
    assert_eq!(status, 200, "{reply}");
    let text = |v: &Value| v.as_str().unwrap_or("").to_owned();
    reply["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let name = p["pod_name"]["value"].as_str().unwrap();
            let instance = name.rsplit_once('-').unwrap().1.parse().unwrap();
            let s = &p["status"];
            let pod = Pod {
                state: text(&s["state"]),
                healthy: text(&s["healthy"]),
                version: version(&s["version"]),
                desired_version: version(&s["desired_version"]),
                task: text(&s["pod_id"]["value"]),
            };
            (instance, pod)
        })
        .collect()
}

/// One task of the job as the master lists it (live or completed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: String,
    pub instance: u32,
    pub run: u32,
    pub state: String,
    pub healthy: Option<bool>,
    /// Its `rev` label: the spec it was launched with.
    pub rev: String,
}

impl Task {
    /// Not ended.
    pub fn is_live(&self) -> bool {
        matches!(
            self.state.as_str(),
            "TASK_STAGING" | "TASK_STARTING" | "TASK_RUNNING" | "TASK_KILLING"
        )
    }

    /// RUNNING and judged healthy.
    pub fn is_up(&self) -> bool {
        self.state == "TASK_RUNNING" && self.healthy == Some(true)
    }
}

/// Every task of `job` the master's `/state` lists (`<job>-<instance>-<run>`).
pub async fn master_tasks(sim: &str, job: &str) -> Vec<Task> {
    let (status, state) = get(sim, "/state").await;
    assert_eq!(status, 200, "{state}");
    let prefix = format!("{job}-");
    let mut out = Vec::new();
    for framework in state["frameworks"].as_array().unwrap() {
        for list in ["tasks", "completed_tasks"] {
            for t in framework[list].as_array().into_iter().flatten() {
                let id = t["id"].as_str().unwrap_or("");
                let Some((instance, run)) =
                    id.strip_prefix(&prefix).and_then(|r| r.split_once('-'))
                else {
                    continue;
                };
                let rev = t["labels"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|l| l["key"] == "rev")
                    .and_then(|l| l["value"].as_str())
                    .unwrap_or("")
                    .to_owned();
                out.push(Task {
                    id: id.to_owned(),
                    instance: instance.parse().unwrap(),
                    run: run.parse().unwrap(),
                    state: t["state"].as_str().unwrap_or("").to_owned(),
                    healthy: t["healthy"].as_bool(),
                    rev,
                });
            }
        }
    }
    out.sort_by_key(|t| (t.instance, t.run));
    out.dedup_by(|a, b| a.id == b.id);
    out
}

/// The revs of each instance's tasks, in run order.
pub fn revs_by_instance(tasks: &[Task]) -> BTreeMap<u32, Vec<String>> {
    let mut out: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for t in tasks {
        out.entry(t.instance).or_default().push(t.rev.clone());
    }
    out
}

/// What one look at the cluster saw.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub master: Vec<Task>,
    /// The job's pods (None when the sampler reads only the master).
    pub pods: Option<BTreeMap<u32, Pod>>,
}

impl Sample {
    /// Instances below `count` with no task RUNNING+healthy at the master.
    pub fn master_down(&self, count: u32) -> Vec<u32> {
        let up: BTreeSet<u32> = self
            .master
            .iter()
            .filter(|t| t.is_up())
            .map(|t| t.instance)
            .collect();
        (0..count).filter(|i| !up.contains(i)).collect()
    }

    /// Pods not RUNNING+HEALTHY.
    pub fn pods_down(&self) -> Vec<u32> {
        self.pods
            .iter()
            .flatten()
            .filter(|(_, p)| !p.is_up())
            .map(|(i, _)| *i)
            .collect()
    }

    /// Instances with more than one live task at the master.
    pub fn duplicates(&self) -> Vec<(u32, Vec<String>)> {
        let mut live: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        for t in self.master.iter().filter(|t| t.is_live()) {
            live.entry(t.instance).or_default().push(t.id.clone());
        }
        live.into_iter().filter(|(_, t)| t.len() > 1).collect()
    }

    /// The live tasks at the master, by id.
    pub fn live_ids(&self) -> BTreeSet<String> {
        self.master
            .iter()
            .filter(|t| t.is_live())
            .map(|t| t.id.clone())
            .collect()
    }
}

/// Samples the cluster every 100 ms in the background until stopped.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Samples the master at `sim` and, with `api`, the job's pods too.
    pub fn start(sim: &str, api: Option<&str>, job: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let (sim, api, job) = (sim.to_owned(), api.map(str::to_owned), job.to_owned());
        let flag = stop.clone();
        let handle = tokio::spawn(async move {
            let mut samples = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let at = Instant::now();
                let master = master_tasks(&sim, &job).await;
                let pods = match &api {
                    Some(api) => Some(pods(api, &job).await),
                    None => None,
                };
                samples.push(Sample { at, master, pods });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            samples
        });
        Sampler { stop, handle }
    }

    /// Stops and returns what it saw (a failed read fails the test here).
    pub async fn finish(self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.await {
            Ok(samples) => samples,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
}

/// The most instances any sample saw down, at the master (of the first
/// `count`) and in the pods list, with the samples where that happened.
pub fn most_down(samples: &[Sample], count: u32) -> (usize, usize) {
    let master = samples
        .iter()
        .map(|s| s.master_down(count).len())
        .max()
        .unwrap_or(0);
    let pods = samples
        .iter()
        .map(|s| s.pods_down().len())
        .max()
        .unwrap_or(0);
    (master, pods)
}

/// Fails the test when any sample saw more than `max` of the first
/// `count` instances down, at the master or in the pods list, naming the
/// first such sample; returns the most seen down (master, pods).
pub fn assert_never_more_down(samples: &[Sample], count: u32, max: usize) -> (usize, usize) {
    assert!(!samples.is_empty(), "no samples");
    let start = samples[0].at;
    for s in samples {
        let (m, p) = (s.master_down(count), s.pods_down());
        assert!(
            m.len() <= max && p.len() <= max,
            "at {:?}: more than {max} down: master {m:?}, pods {p:?}; pods {:?}",
            s.at - start,
            s.pods
        );
    }
    most_down(samples, count)
}

/// Fails the test when any sample saw two live tasks of one instance.
pub fn assert_no_duplicates(samples: &[Sample]) {
    for s in samples {
        let d = s.duplicates();
        assert!(d.is_empty(), "two live tasks of one instance: {d:?}");
    }
}
