//! The engine's decisions on API requests: refused at once (unknown job,
//! stale version, a running job deleted without force), or a change to
//! store and, once stored, to make in the registry. Pure: the engine
//! persists the change and applies it.

use super::action::{ApiRequest, EngineError, JobAmend, PoolsView, Reply, WorkflowAction};
use super::api_pools::{self, PoolThen};
use super::cluster::{ClusterFacts, LARGEST_AGENT_FACTOR};
use super::config::EngineConfig;
use super::pool_usage;
use super::reconcile;
use super::registry::{JobEntry, Registry};
use crate::model::access::{self, Act, Denied, Identity};
use crate::model::change::WorkflowEventRecord;
use crate::model::change::{Change, JobWrite};
use crate::model::create_workflow::{self, CreateState, CreateWorkflow};
use crate::model::ids::{AgentId, JobId, TaskId};
use crate::model::job::{Job, PodControl, Revision};
use crate::model::pool::{PoolId, PoolTree};
use crate::model::pool_validate::{self, PoolError};
use crate::model::secret;
use crate::model::spec::{JobSpec, JobType};
use crate::model::state::{JobGoal, PodGoal};
use crate::model::time::UnixMillis;
use crate::model::validate::{secret_error, validate_against_largest_agent};
use crate::model::workflow::{self, UpdateOptions, Workflow, WorkflowEvent};

/// What to do with a request.
pub(super) enum Decision {
    /// Answer with this error; nothing changes.
    Refuse(EngineError),
    /// Store the change, then make `then` in the registry and reply.
    Write(Box<Change>, Then),
    /// Nothing to store: answer with the job as it is and plan it now.
    Replan(Box<Job>),
    /// Nothing to store: answer with this (a read).
    Answer(Reply),
}

/// The registry change that follows a stored request, and the reply.
#[derive(Debug)]
pub(super) enum Then {
    /// A new job.
    Create(Box<Job>),
    /// The job as it now is; `revision`: a user's change, so the job's
    /// revision becomes the commit's. `reply_deleted`: the request was a
    /// delete that waits for the job's runs to end.
    Put {
        job: Box<Job>,
        revision: bool,
        reply_deleted: bool,
    },
    /// Several jobs as they now are, each a user's change (a new
    /// revision); the reply is the first.
    PutMany(Vec<Job>),
    /// The job is gone.
    Delete(JobId),
    /// Hosts' maintenance records changed ([`super::maintenance`]).
    Hosts(super::maintenance::Then),
    /// Nothing changed: plan the job again now, and ask the master for the
    /// state of `reconcile` (the pod's latest run, if it may be live).
    Refresh {
        job_id: JobId,
        reconcile: Option<(TaskId, Option<AgentId>)>,
    },
    /// A resource pool created, updated or deleted.
    Pool(PoolThen),
    /// Pipeline runs as they now are, the node jobs created and the
    /// ones stopped ([`super::pipeline_runs`]); the reply is the first
    /// run.
    PipelineRuns {
        records: Vec<crate::model::pipeline_run::RunRecord>,
        /// Runs deleted, by id.
        deleted: Vec<String>,
        /// Experiments made.
        experiments: Vec<crate::model::pipeline_run::Experiment>,
        created: Vec<Job>,
        stopped: Vec<Job>,
    },
}

impl Then {
    /// The run whose state to ask the master for once stored, if any.
    pub(super) fn reconcile(&self) -> Option<(TaskId, Option<AgentId>)> {
        match self {
            Then::Refresh { reconcile, .. } => reconcile.clone(),
            _ => None,
        }
    }
}

/// Decides `request` by `caller` against the registry: refused unless
/// the caller may make it ([`authorize`]); once made, the change records
/// who made it.
pub(super) fn decide(
    registry: &Registry,
    pools: &PoolTree,
    facts: &ClusterFacts,
    config: &EngineConfig,
    mut request: ApiRequest,
    caller: &Identity,
    now: UnixMillis,
) -> Decision {
    if let ApiRequest::CreateJob { spec, .. } = &mut request {
        // A job created without an owner is its creator's.
        if spec.owner.is_empty() {
            spec.owner = caller.recorded_name().to_owned();
        }
    }
    if let Err(denied) = authorize(registry, caller, &request) {
        return Decision::Refuse(denied.into());
    }
    if let ApiRequest::RefreshJob { job_id } = &request {
        return match job(registry, job_id) {
            Ok(job) => Decision::Replan(Box::new(job.clone())),
            Err(e) => Decision::Refuse(e),
        };
    }
    if let ApiRequest::ReadPools = &request {
        return Decision::Answer(Reply::Pools(Box::new(PoolsView {
            tree: pools.clone(),
            usage: pool_usage::usage(registry, pools, &Default::default()),
            jobs: pool_usage::jobs_in(registry, pools),
        })));
    }
    if let Some(decided) = api_pools::decide(pools, registry, &request, now) {
        return match decided {
            Ok((change, then)) => Decision::Write(Box::new(change), then),
            Err(e) => Decision::Refuse(e),
        };
    }
    if let ApiRequest::CreateJob { spec, .. } | ApiRequest::UpdateJob { spec, .. } = &request {
        if let Err(e) =
            pool_validate::check_job_pool(pools, spec.respool_id.as_deref(), "spec.respool_id")
        {
            return Decision::Refuse(e.into());
        }
    }
    match decide_or_refuse(registry, facts, config, request, caller, now) {
        Ok((mut change, mut then)) => {
            record_caller(&mut change, &mut then, caller.recorded_name());
            Decision::Write(Box::new(change), then)
        }
        Err(e) => Decision::Refuse(e),
    }
}

/// Whether `caller` may make `request`: every job it changes is checked
/// as it is (and a replaced spec as it would be, so that nobody gives a
/// job away to an owner they are not). A job that does not exist is not
/// checked: the request is refused NOT_FOUND after.
fn authorize(registry: &Registry, caller: &Identity, request: &ApiRequest) -> Result<(), Denied> {
    // What a refusal names is made only for a refusal.
    let as_spec = |spec: &JobSpec, what: &dyn Fn() -> String| {
        access::authorize(
            caller,
            Act::Job {
                owner: &spec.owner,
                owning_team: &spec.owning_team,
            },
            what,
        )
    };
    let as_stored = |job_id: &JobId, what: &str| match registry.get(job_id) {
        Some(entry) => as_spec(&entry.job.spec, &|| format!("{what} job {job_id}")),
        None => Ok(()),
    };
    match request {
        ApiRequest::CreateJob { job_id, spec, .. } => {
            as_spec(spec, &|| format!("create job {job_id}"))
        }
        ApiRequest::UpdateJob { job_id, spec, .. } => {
            as_stored(job_id, "update")?;
            as_spec(spec, &|| format!("update job {job_id} to this spec"))
        }
        ApiRequest::RefreshJob { job_id } => as_stored(job_id, "refresh"),
        ApiRequest::SteerWorkflow { job_id, action, .. } => as_stored(job_id, action.verb()),
        ApiRequest::RollbackJob { job_id, .. } => as_stored(job_id, "roll back"),
        ApiRequest::SetGoal { job_id, goal, .. } => as_stored(
            job_id,
            match goal {
                JobGoal::Running => "start",
                _ => "stop",
            },
        ),
        ApiRequest::SetPodGoal { pod, .. } => as_stored(&pod.job, "change a pod of"),
        ApiRequest::RestartPods { job_id, .. } => as_stored(job_id, "restart"),
        ApiRequest::AmendJob { job_id, .. } => as_stored(job_id, "change"),
        ApiRequest::AmendJobs { amends } => amends
            .iter()
            .try_for_each(|one| as_stored(&one.job_id, "change")),
        ApiRequest::DeleteJob { job_id, .. } => as_stored(job_id, "delete"),
        ApiRequest::DeletePodEvents { task } => {
            as_stored(&task.instance.job, "delete pod events of")
        }
        ApiRequest::RefreshPod { pod } => as_stored(&pod.job, "refresh a pod of"),
        ApiRequest::CreatePool { pool_id, .. } => {
            access::authorize(caller, Act::Cluster, || format!("create pool {pool_id}"))
        }
        ApiRequest::UpdatePool { pool_id, .. } => {
            access::authorize(caller, Act::Cluster, || format!("update pool {pool_id}"))
        }
        ApiRequest::DeletePool { pool_id } => {
            access::authorize(caller, Act::Cluster, || format!("delete pool {pool_id}"))
        }
        ApiRequest::ReadPools => access::authorize(caller, Act::Read, || "read pools".into()),
        // Decided by the engine's pipeline part before these rules.
        ApiRequest::CreatePipelineRun(_)
        | ApiRequest::TerminatePipelineRun { .. }
        | ApiRequest::RetryPipelineRun { .. }
        | ApiRequest::SetPipelineRunArchived { .. }
        | ApiRequest::DeletePipelineRun { .. }
        | ApiRequest::CreateExperiment(_)
        | ApiRequest::ListExperiments
        | ApiRequest::GetPipelineRun { .. }
        | ApiRequest::ReportPipelineRunMetrics { .. }
        | ApiRequest::ListPipelineRuns => Ok(()),
        ApiRequest::StartMaintenance { hostnames, .. } => {
            access::authorize(caller, Act::Cluster, || {
                format!("start maintenance of {}", hostnames.join(", "))
            })
        }
        ApiRequest::CompleteMaintenance { hostnames } => {
            access::authorize(caller, Act::Cluster, || {
                format!("complete maintenance of {}", hostnames.join(", "))
            })
        }
    }
}

/// Records who made a stored API change on the jobs it writes (each is a
/// user's change).
fn record_caller(change: &mut Change, then: &mut Then, name: &str) {
    for write in &mut change.jobs {
        match write {
            JobWrite::Create(job) => job.updated_by = name.to_owned(),
            JobWrite::Update {
                updated_by,
                revision: true,
                ..
            } => *updated_by = name.to_owned(),
            _ => {}
        }
    }
    match then {
        Then::Create(job) => job.updated_by = name.to_owned(),
        Then::Put {
            job,
            revision: true,
            ..
        } => job.updated_by = name.to_owned(),
        Then::PutMany(jobs) => jobs.iter_mut().for_each(|j| j.updated_by = name.to_owned()),
        _ => {}
    }
}

fn entry<'a>(registry: &'a Registry, id: &JobId) -> Result<&'a JobEntry, EngineError> {
    registry
        .get(id)
        .ok_or_else(|| EngineError::JobNotFound(id.clone()))
}

fn job<'a>(registry: &'a Registry, id: &JobId) -> Result<&'a Job, EngineError> {
    entry(registry, id).map(|e| &e.job)
}

fn decide_or_refuse(
    registry: &Registry,
    facts: &ClusterFacts,
    config: &EngineConfig,
    request: ApiRequest,
    caller: &Identity,
    now: UnixMillis,
) -> Result<(Change, Then), EngineError> {
    match request {
        ApiRequest::CreateJob {
            job_id,
            spec,
            create,
        } => {
            if registry.contains(&job_id) {
                return Err(EngineError::JobExists(job_id));
            }
            secret::require_values(&spec.secrets).map_err(|e| secret_error("spec", e))?;
            validate_against_largest_agent(
                &spec,
                &facts.largest_agent_ever,
                LARGEST_AGENT_FACTOR,
                "spec",
            )?;
            let mut job = Box::new(Job::new(job_id, *spec, now));
            job.create = create;
            let change = Change {
                jobs: vec![JobWrite::Create(job.clone())],
                ..Change::default()
            };
            Ok((change, Then::Create(job)))
        }
        ApiRequest::SetGoal {
            job_id,
            goal,
            expected_version,
        } => {
            let entry = entry(registry, &job_id)?;
            entry.job.check_version(expected_version)?;
            let mut current = entry.job.clone();
            // Starting a job ends a creation that failed or was aborted:
            // the instances it held back launch by the ordinary rules.
            if goal == JobGoal::Running
                && create_state(entry)
                    .is_some_and(|s| matches!(s, CreateState::Failed | CreateState::Aborted))
            {
                current.create = None;
            }
            Ok(put_goal(&current, goal, now, false))
        }
        ApiRequest::RefreshJob { job_id } => {
            // Answered by `decide` without a change.
            Err(EngineError::JobNotFound(job_id))
        }
        ApiRequest::SteerWorkflow {
            job_id,
            action,
            expected_version,
        } => {
            let entry = entry(registry, &job_id)?;
            entry.job.check_version(expected_version)?;
            if let Some(update) = entry.job.workflows.active() {
                return Ok(steer_update(&entry.job, update, action, now));
            }
            steer_creation(entry, job_id, action, now)
        }
        ApiRequest::UpdateJob {
            job_id,
            mut spec,
            options,
            expected_version,
        } => {
            let entry = entry(registry, &job_id)?;
            entry.job.check_version(expected_version)?;
            // The new version's secrets: the job's unless it names some,
            // and a named one without a value keeps the job's value.
            secret::carry_over(&entry.job.spec.secrets, &mut spec.secrets);
            secret::validate(&spec.secrets)
                .and_then(|()| secret::require_values(&spec.secrets))
                .map_err(|e| secret_error("spec", e))?;
            validate_against_largest_agent(
                &spec,
                &facts.largest_agent_ever,
                LARGEST_AGENT_FACTOR,
                "spec",
            )?;
            Ok(start_update(&entry.job, *spec, options, caller, now)?)
        }
        ApiRequest::RollbackJob {
            job_id,
            expected_version,
        } => {
            let entry = entry(registry, &job_id)?;
            entry.job.check_version(expected_version)?;
            roll_back(&entry.job, now)
        }
        ApiRequest::SetPodGoal { pod, goal } => {
            let current = job(registry, &pod.job)?;
            if !current.has_instance(pod.instance) {
                return Err(EngineError::PodNotFound(pod));
            }
            let mut job = current.clone();
            let control = PodControl {
                goal,
                ..job.pods.get(&pod.instance).copied().unwrap_or_default()
            };
            job.set_pod_control(pod.instance, control);
            // A pod's goal is a user's change of its job (a new revision)
            // but not of the job's spec or goal (the same version).
            let change = Change {
                jobs: vec![
                    JobWrite::Pod {
                        pod,
                        control,
                        at: now,
                    },
                    update(&job, true),
                ],
                ..Change::default()
            };
            Ok((change, put(job, true)))
        }
        ApiRequest::RestartPods {
            job_id,
            instances,
            batch_size,
            expected_version,
            bump,
        } => {
            let entry = entry(registry, &job_id)?;
            entry.job.check_version(expected_version)?;
            if let Some(bad) = instances.iter().find(|i| !entry.job.has_instance(**i)) {
                return Err(EngineError::PodNotFound(entry.job.instance_id(*bad)));
            }
            let mut job = entry.job.clone();
            let mut writes = Vec::with_capacity(instances.len() + 1);
            for &instance in &instances {
                // Every run so far is replaced: the next run number is the
                // boundary. An instance with no run yet needs nothing more.
                let next = entry.history(instance).last().map_or(0, |r| r.run + 1);
                let control = PodControl {
                    goal: PodGoal::Running,
                    restart_from: next,
                };
                job.set_pod_control(instance, control);
                writes.push(JobWrite::Pod {
                    pod: job.instance_id(instance),
                    control,
                    at: now,
                });
            }
            job.restart_batch_size = batch_size;
            if bump {
                job.version += 1;
                job.updated_at = now;
            }
            writes.push(update(&job, bump));
            let change = Change {
                jobs: writes,
                ..Change::default()
            };
            Ok((change, put(job, bump)))
        }
        ApiRequest::AmendJob {
            job_id,
            expected_version,
            amend,
        } => {
            let (job, writes) = amended(
                registry,
                JobAmend {
                    job_id,
                    expected_version,
                    amend,
                },
                now,
            )?;
            let change = Change {
                jobs: writes,
                ..Change::default()
            };
            Ok((change, put(job, true)))
        }
        ApiRequest::AmendJobs { amends } => {
            if amends.is_empty() {
                return Err(EngineError::NoAmendments);
            }
            let mut jobs: Vec<Job> = Vec::with_capacity(amends.len());
            let mut writes = Vec::new();
            // Every job is checked and amended before anything is written:
            // the first refusal refuses the whole request.
            for one in amends {
                if jobs.iter().any(|j| j.job_id == one.job_id) {
                    return Err(EngineError::JobTwice(one.job_id));
                }
                let (job, job_writes) = amended(registry, one, now)?;
                jobs.push(job);
                writes.extend(job_writes);
            }
            let change = Change {
                jobs: writes,
                ..Change::default()
            };
            Ok((change, Then::PutMany(jobs)))
        }
        ApiRequest::DeleteJob {
            job_id,
            expected_version,
            force,
        } => {
            let entry = entry(registry, &job_id)?;
            entry.job.check_version(expected_version)?;
            let live = entry.has_live_run();
            let plan = reconcile::plan(&entry.job, &entry.instances, facts, config, now);
            let running = live || plan.job_state.is_some_and(|s| !s.is_terminal());
            if running && !force {
                return Err(EngineError::StillRunning(job_id));
            }
            if live {
                // Stopped first; the job is forgotten once nothing of it
                // is live (the engine's plan says `forget`).
                let (change, then) = put_goal(&entry.job, JobGoal::Deleted, now, true);
                return Ok((change, then));
            }
            let change = Change {
                jobs: vec![JobWrite::Delete(job_id.clone())],
                ..Change::default()
            };
            Ok((change, Then::Delete(job_id)))
        }
        ApiRequest::DeletePodEvents { task } => {
            let pod = &task.instance;
            let entry = entry(registry, &pod.job)?;
            if !entry.job.has_instance(pod.instance) {
                return Err(EngineError::PodNotFound(pod.clone()));
            }
            let history = entry.history(pod.instance);
            if !history.iter().any(|r| r.run == task.run) {
                return Err(EngineError::RunNotFound(task));
            }
            if history.last().is_some_and(|r| r.run == task.run) {
                return Err(EngineError::LatestRun(task));
            }
            let job = entry.job.clone();
            let change = Change {
                jobs: vec![JobWrite::DeletePodEvents(task)],
                ..Change::default()
            };
            Ok((change, put(job, false)))
        }
        ApiRequest::RefreshPod { pod } => {
            let entry = entry(registry, &pod.job)?;
            if !entry.job.has_instance(pod.instance) {
                return Err(EngineError::PodNotFound(pod));
            }
            let reconcile = entry
                .history(pod.instance)
                .last()
                .filter(|r| !r.state.is_terminal())
                .map(|r| (TaskId::new(pod.clone(), r.run), r.agent.clone()));
            Ok((
                Change::default(),
                Then::Refresh {
                    job_id: pod.job,
                    reconcile,
                },
            ))
        }
        // Decided by `decide` before.
        ApiRequest::CreatePool { pool_id, .. }
        | ApiRequest::UpdatePool { pool_id, .. }
        | ApiRequest::DeletePool { pool_id } => Err(PoolError::NotFound(pool_id).into()),
        ApiRequest::ReadPools => Err(PoolError::NotFound(PoolId::root()).into()),
        ApiRequest::CreatePipelineRun(_)
        | ApiRequest::TerminatePipelineRun { .. }
        | ApiRequest::RetryPipelineRun { .. }
        | ApiRequest::SetPipelineRunArchived { .. }
        | ApiRequest::DeletePipelineRun { .. }
        | ApiRequest::CreateExperiment(_)
        | ApiRequest::ListExperiments
        | ApiRequest::GetPipelineRun { .. }
        | ApiRequest::ReportPipelineRunMetrics { .. }
        | ApiRequest::ListPipelineRuns => Err(EngineError::InvalidPipelineRun(
            "a pipeline request reached the job rules".to_string(),
        )),
        ApiRequest::StartMaintenance {
            hostnames,
            batch_grace,
        } => {
            let (change, then) =
                super::maintenance::decide_start(facts, &hostnames, batch_grace, now)?;
            Ok((change, Then::Hosts(then)))
        }
        ApiRequest::CompleteMaintenance { hostnames } => {
            let (change, then) = super::maintenance::decide_complete(facts, &hostnames)?;
            Ok((change, Then::Hosts(then)))
        }
    }
}

/// One job amended as `one` asks (its version checked, a new version) and
/// the writes that store it.
fn amended(
    registry: &Registry,
    one: JobAmend,
    now: UnixMillis,
) -> Result<(Job, Vec<JobWrite>), EngineError> {
    let JobAmend {
        job_id,
        expected_version,
        amend,
    } = one;
    let current = job(registry, &job_id)?;
    current.check_version(expected_version)?;
    let mut job = amend
        .apply(current)
        .map_err(|e| EngineError::Amend(job_id.clone(), e))?;
    job.version += 1;
    job.updated_at = now;
    let mut writes = vec![JobWrite::Spec {
        job_id,
        spec: Box::new(job.spec.clone()),
    }];
    for &(instance, _) in &amend.pod_goals {
        writes.push(JobWrite::Pod {
            pod: job.instance_id(instance),
            control: job.pods.get(&instance).copied().unwrap_or_default(),
            at: now,
        });
    }
    writes.push(update(&job, true));
    Ok((job, writes))
}

/// Pauses, resumes or aborts the job's update in progress.
fn steer_update(
    current: &Job,
    active: &Workflow,
    action: WorkflowAction,
    now: UnixMillis,
) -> (Change, Then) {
    let mut job = current.clone();
    let mut events = Vec::new();
    if let Some((steered, event)) = active.steer(action, now) {
        events.push(WorkflowEventRecord {
            job_id: job.job_id.clone(),
            workflow: steered.id,
            event,
        });
        job.workflows.current = Some(Box::new(steered));
    }
    job.version += 1;
    job.updated_at = now;
    let change = Change {
        jobs: vec![update(&job, true)],
        workflow_events: events,
        ..Change::default()
    };
    (change, put(job, true))
}

/// Pauses, resumes or aborts the job's creation workflow.
fn steer_creation(
    entry: &JobEntry,
    job_id: JobId,
    action: WorkflowAction,
    now: UnixMillis,
) -> Result<(Change, Then), EngineError> {
    let (Some(workflow), Some(state)) = (entry.job.create, create_state(entry)) else {
        return Err(EngineError::NoActiveWorkflow(
            job_id,
            "no update is in progress and it was created without a create_spec".into(),
        ));
    };
    if !state.is_active() {
        return Err(EngineError::NoActiveWorkflow(
            job_id,
            format!("no update is in progress and its creation has ended ({state:?})"),
        ));
    }
    let workflow = match action {
        WorkflowAction::Pause => CreateWorkflow {
            paused: true,
            ..workflow
        },
        WorkflowAction::Resume => CreateWorkflow {
            paused: false,
            ..workflow
        },
        WorkflowAction::Abort => CreateWorkflow {
            aborted: true,
            ..workflow
        },
    };
    let mut job = entry.job.clone();
    job.create = Some(workflow);
    job.version += 1;
    job.updated_at = now;
    let change = Change {
        jobs: vec![update(&job, true)],
        ..Change::default()
    };
    Ok((change, put(job, true)))
}

/// A new update of `current` to `spec`: refused for a batch job and
/// while another update is in progress (one at a time; pause or abort
/// it, or wait).
fn start_update(
    current: &Job,
    spec: JobSpec,
    options: UpdateOptions,
    caller: &Identity,
    now: UnixMillis,
) -> Result<(Change, Then), EngineError> {
    let job_id = current.job_id.clone();
    if current.spec.job_type != JobType::Service || spec.job_type != JobType::Service {
        return Err(EngineError::NotService(job_id));
    }
    if let Some(active) = current.workflows.active() {
        let state = active.state().peloton_name();
        return Err(EngineError::WorkflowInProgress(job_id, state));
    }
    let mut job = current.clone();
    let version = current.version + 1;
    let mut update = workflow::start(
        job.workflows.next_id(),
        options,
        &current.spec,
        current.spec_version,
        |i| current.desired_pod(i),
        &spec,
        version,
        now,
    );
    update.started_by = caller.recorded_name().to_owned();
    job.spec = spec;
    job.spec_version = version;
    job.version = version;
    job.workflows.start(update);
    Ok(new_target(job, now))
}

/// Rolls the job's current or last update back (it must have moved the
/// job forward: not rolled back already).
fn roll_back(current: &Job, now: UnixMillis) -> Result<(Change, Then), EngineError> {
    let job_id = current.job_id.clone();
    let Some(last) = current.workflows.current.as_deref() else {
        return Err(EngineError::NothingToRollBack(
            job_id,
            "it was never updated".into(),
        ));
    };
    if last.rolling_back {
        return Err(EngineError::NothingToRollBack(
            job_id,
            format!("its last update is {}", last.state().peloton_name()),
        ));
    }
    let (turned, (spec, version)) =
        workflow::rolled_back(last, &current.spec, current.spec_version, now);
    let mut job = current.clone();
    job.workflows.current = Some(Box::new(turned));
    job.spec = *spec;
    job.spec_version = version;
    job.version += 1;
    Ok(new_target(job, now))
}

/// The change that stores `job` with its new target spec and its current
/// workflow just started (or turned round), and records the workflow's
/// state as its first event.
fn new_target(mut job: Job, now: UnixMillis) -> (Change, Then) {
    job.updated_at = now;
    let event = job
        .workflows
        .current
        .as_deref()
        .map(|w| WorkflowEventRecord {
            job_id: job.job_id.clone(),
            workflow: w.id,
            event: WorkflowEvent {
                instance: None,
                state: w.state(),
                at: now,
            },
        });
    let change = Change {
        jobs: vec![
            JobWrite::Spec {
                job_id: job.job_id.clone(),
                spec: Box::new(job.spec.clone()),
            },
            update(&job, true),
        ],
        workflow_events: event.into_iter().collect(),
        ..Change::default()
    };
    (change, put(job, true))
}

/// The state of the job's creation workflow, if it has one.
fn create_state(entry: &super::registry::JobEntry) -> Option<CreateState> {
    let workflow = entry.job.create.as_ref()?;
    let progress = create_workflow::progress(workflow, entry.job.spec.instance_count, |i| {
        entry.history(i)
    });
    Some(progress.state)
}

/// A new goal for `current`: a new version, a user's change.
fn put_goal(current: &Job, goal: JobGoal, now: UnixMillis, reply_deleted: bool) -> (Change, Then) {
    let mut job = current.clone();
    job.goal = goal;
    job.version += 1;
    job.updated_at = now;
    let change = Change {
        jobs: vec![update(&job, true)],
        ..Change::default()
    };
    let then = Then::Put {
        job: Box::new(job),
        revision: true,
        reply_deleted,
    };
    (change, then)
}

fn put(job: Job, revision: bool) -> Then {
    Then::Put {
        job: Box::new(job),
        revision,
        reply_deleted: false,
    }
}

/// The job row's write for `job` as it now is.
fn update(job: &Job, revision: bool) -> JobWrite {
    JobWrite::update_of(job, revision)
}

/// Makes `then` in the registry once its change is stored at `revision`;
/// returns the reply and the jobs to plan, each with whether it still
/// exists (false: it is gone).
pub(super) fn apply(
    registry: &mut Registry,
    pools: &mut PoolTree,
    then: Then,
    revision: Revision,
) -> (Reply, Vec<(JobId, bool)>) {
    match then {
        Then::PipelineRuns {
            records,
            created,
            stopped,
            experiments,
            ..
        } => {
            let mut planned = Vec::new();
            for mut job in created {
                job.revision = revision;
                planned.push((job.job_id.clone(), true));
                registry.insert(job);
            }
            for mut job in stopped {
                job.revision = revision;
                planned.push((job.job_id.clone(), true));
                registry.set_job(job);
            }
            let reply = match records.into_iter().next() {
                Some(record) => Reply::PipelineRun(Box::new(record)),
                None if !experiments.is_empty() => Reply::Experiments(experiments),
                None => Reply::Deleted,
            };
            (reply, planned)
        }
        Then::Pool(then) => {
            let reply = match api_pools::apply(pools, then) {
                Some(pool) => Reply::Pool(Box::new(pool)),
                None => Reply::Deleted,
            };
            (reply, Vec::new())
        }
        Then::PutMany(jobs) => {
            let mut reply = None;
            let mut planned = Vec::with_capacity(jobs.len());
            for mut job in jobs {
                job.revision = revision;
                planned.push((job.job_id.clone(), true));
                reply.get_or_insert_with(|| Box::new(job.clone()));
                registry.set_job(job);
            }
            // Not reachable: an empty request is refused before it is
            // stored; answered as a deletion rather than a panic.
            let reply = reply.map_or(Reply::Deleted, Reply::Job);
            (reply, planned)
        }
        Then::Create(mut job) => {
            job.revision = revision;
            let id = job.job_id.clone();
            registry.insert((*job).clone());
            (Reply::Job(job), vec![(id, true)])
        }
        Then::Put {
            mut job,
            revision: bumped,
            reply_deleted,
        } => {
            if bumped {
                job.revision = revision;
            }
            let id = job.job_id.clone();
            registry.set_job((*job).clone());
            let reply = if reply_deleted {
                Reply::Deleted
            } else {
                Reply::Job(job)
            };
            (reply, vec![(id, true)])
        }
        Then::Delete(id) => {
            registry.remove(&id);
            (Reply::Deleted, vec![(id, false)])
        }
        Then::Hosts(then) => {
            // A drain moves runs of any job: every one is planned.
            let planned = if then.replan {
                registry
                    .ids_by_creation()
                    .into_iter()
                    .map(|id| (id, true))
                    .collect()
            } else {
                Vec::new()
            };
            (Reply::Hosts(then.hosts), planned)
        }
        Then::Refresh { job_id, .. } => match registry.get(&job_id) {
            Some(entry) => (
                Reply::Job(Box::new(entry.job.clone())),
                vec![(job_id, true)],
            ),
            // Not reachable: the engine handles one change at a time, so
            // the job decided on is still there; answered as a deletion.
            None => (Reply::Deleted, vec![(job_id, false)]),
        },
    }
}
