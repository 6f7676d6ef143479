//! What the simulated users do: create batch and service jobs, stop and
//! start them, stop and start pods, restart a service's pods, delete jobs.
//! Every choice comes from the world's seeded generator; the workload
//! remembers what it asked for, which is what the invariants hold the
//! system to.

use drover_scheduler::engine::{ApiRequest, EngineError, Reply};
use drover_scheduler::model::ids::{InstanceId, JobId};
use drover_scheduler::model::spec::{JobSpec, JobType};
use drover_scheduler::model::state::{JobGoal, PodGoal};
use rand::rngs::SmallRng;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Most jobs alive at once.
const MAX_JOBS: usize = 6;

/// A job a user created, as the user sees it.
#[derive(Debug, Clone)]
pub struct UserJob {
    /// BATCH or SERVICE.
    pub kind: JobType,
    /// Instances.
    pub instances: u32,
    /// Whether the scheduler confirmed its creation.
    pub confirmed: bool,
    /// What the user last asked of it.
    pub goal: JobGoal,
    /// Pods the user stopped.
    pub stopped_pods: BTreeSet<u32>,
    /// Whether the user deleted it (or asked to).
    pub deleted: bool,
}

/// A request in flight, and what it was about.
#[derive(Debug, Clone)]
enum Pending {
    Create(JobId),
    Goal(JobId, JobGoal),
    PodGoal(InstanceId, PodGoal),
    Delete(JobId),
    Restart,
}

/// The users.
#[derive(Debug, Default)]
pub struct Workload {
    /// Every job asked for, by id.
    pub jobs: BTreeMap<JobId, UserJob>,
    next: u32,
    in_flight: BTreeMap<u64, Pending>,
    /// Jobs a request was about when the scheduler died handling it: it
    /// may or may not have happened, until the store says.
    pub unsure: BTreeSet<JobId>,
}

impl Workload {
    /// The next request a user makes, if any.
    pub fn next_request(&mut self, rng: &mut SmallRng) -> Option<(ApiRequest, PendingToken)> {
        let live: Vec<JobId> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.confirmed && !j.deleted)
            .map(|(id, _)| id.clone())
            .collect();
        let roll = rng.random_range(0..100);
        if live.len() < MAX_JOBS && (live.is_empty() || roll < 40) {
            return Some(self.create(rng));
        }
        let id = live.get(rng.random_range(0..live.len().max(1)))?.clone();
        let job = self.jobs.get(&id)?.clone();
        let instance = rng.random_range(0..job.instances);
        let pod = InstanceId::new(id.clone(), instance);
        let (request, pending) = match roll {
            40..=54 => {
                let goal = if job.goal == JobGoal::Running {
                    JobGoal::Stopped
                } else {
                    JobGoal::Running
                };
                let request = ApiRequest::SetGoal {
                    job_id: id.clone(),
                    goal,
                    expected_version: None,
                };
                (request, Pending::Goal(id, goal))
            }
            55..=69 => {
                let goal = if job.stopped_pods.contains(&instance) {
                    PodGoal::Running
                } else {
                    PodGoal::Killed
                };
                let request = ApiRequest::SetPodGoal {
                    pod: pod.clone(),
                    goal,
                };
                (request, Pending::PodGoal(pod, goal))
            }
            // A restart replaces runs; of a batch job it would rerun what
            // succeeded, which the users here never ask for.
            70..=84 if job.kind == JobType::Service => {
                let request = ApiRequest::RestartPods {
                    job_id: id,
                    instances: (0..job.instances).collect(),
                    batch_size: rng.random_range(0..=2),
                    expected_version: None,
                    bump: true,
                };
                (request, Pending::Restart)
            }
            85..=99 => {
                let request = ApiRequest::DeleteJob {
                    job_id: id.clone(),
                    expected_version: None,
                    force: true,
                };
                (request, Pending::Delete(id))
            }
            _ => return None,
        };
        Some((request, PendingToken(pending)))
    }

    fn create(&mut self, rng: &mut SmallRng) -> (ApiRequest, PendingToken) {
        self.next += 1;
        let id = JobId(format!("job{}", self.next));
        let service = rng.random_bool(0.5);
        let instances = rng.random_range(1..=4);
        let command = if service {
            "sleep 100000".to_owned()
        } else {
            match rng.random_range(0..4) {
                0 => "true".to_owned(),
                1 => "false".to_owned(),
                _ => format!("sleep {}", rng.random_range(1..=30)),
            }
        };
        let spec: JobSpec = job_spec(service, instances, &command, rng.random_range(0..=2));
        self.jobs.insert(
            id.clone(),
            UserJob {
                kind: spec.job_type,
                instances,
                confirmed: false,
                goal: JobGoal::Running,
                stopped_pods: BTreeSet::new(),
                deleted: false,
            },
        );
        let request = ApiRequest::CreateJob {
            job_id: id.clone(),
            spec: Box::new(spec),
            create: None,
        };
        (request, PendingToken(Pending::Create(id)))
    }

    /// The scheduler died while handling the request `token` was for.
    pub fn lost(&mut self, token: PendingToken) {
        match token.0 {
            Pending::Create(job) | Pending::Delete(job) | Pending::Goal(job, _) => {
                self.unsure.insert(job);
            }
            Pending::PodGoal(pod, _) => {
                self.unsure.insert(pod.job);
            }
            Pending::Restart => {}
        }
    }

    /// Remembers that request `id` carries `token`.
    pub fn sent(&mut self, id: u64, token: PendingToken) {
        self.in_flight.insert(id, token.0);
    }

    /// The scheduler answered request `id`.
    pub fn answered(&mut self, id: u64, result: &Result<Reply, EngineError>) {
        let Some(pending) = self.in_flight.remove(&id) else {
            return;
        };
        if result.is_err() {
            if let Pending::Create(job) = pending {
                self.jobs.remove(&job);
            }
            return;
        }
        match pending {
            Pending::Create(job) => {
                if let Some(j) = self.jobs.get_mut(&job) {
                    j.confirmed = true;
                }
            }
            Pending::Goal(job, goal) => {
                if let Some(j) = self.jobs.get_mut(&job) {
                    j.goal = goal;
                }
            }
            Pending::PodGoal(pod, goal) => {
                if let Some(j) = self.jobs.get_mut(&pod.job) {
                    if goal == PodGoal::Killed {
                        j.stopped_pods.insert(pod.instance);
                    } else {
                        j.stopped_pods.remove(&pod.instance);
                    }
                }
            }
            Pending::Delete(job) => {
                if let Some(j) = self.jobs.get_mut(&job) {
                    j.deleted = true;
                }
            }
            Pending::Restart => {}
        }
    }

    /// The scheduler died: what it did not answer may or may not have
    /// happened. A create, goal or delete it may have stored counts as
    /// asked; the checks then read the store for the truth.
    pub fn scheduler_died(&mut self) -> Vec<JobId> {
        let before = self.unsure.len();
        for pending in std::mem::take(&mut self.in_flight).into_values() {
            self.lost(PendingToken(pending));
        }
        self.unsure.iter().skip(before).cloned().collect()
    }

    /// The service instances that must be RUNNING once faults stop: of
    /// live service jobs the users want running, every pod they did not
    /// stop.
    pub fn wanted_running(&self) -> Vec<InstanceId> {
        self.jobs
            .iter()
            .filter(|(_, j)| {
                j.confirmed
                    && !j.deleted
                    && j.kind == JobType::Service
                    && j.goal == JobGoal::Running
            })
            .flat_map(|(id, j)| {
                (0..j.instances)
                    .filter(|i| !j.stopped_pods.contains(i))
                    .map(move |i| InstanceId::new(id.clone(), i))
            })
            .collect()
    }
}

/// What a request was about, until it is answered.
#[derive(Debug)]
pub struct PendingToken(Pending);

fn job_spec(service: bool, instances: u32, command: &str, max_failures: u32) -> JobSpec {
    let kind = if service { "SERVICE" } else { "BATCH" };
    let spec = format!(
        r#"{{"type": "{kind}", "name": "sim", "instance_count": {instances},
            "default_spec": {{
                "restart_policy": {{"max_failures": {max_failures}}},
                "kill_grace_period_seconds": 2,
                "containers": [{{
                    "resource": {{"cpu_limit": 0.5, "mem_limit_mb": 64}},
                    "command": {{"value": "{command}"}}
                }}]
            }}}}"#
    );
    serde_json::from_str(&spec).expect("the simulation's specs are valid")
}
