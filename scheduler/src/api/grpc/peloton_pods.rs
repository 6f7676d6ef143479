//! Peloton v1alpha `PodService`, and the pod reads of `JobService`
//! (`ListPods`, `QueryPods`), translated onto Drover's pods: a thin async
//! layer over the JSON face's handlers ([`pod_ops`], [`query`]) and the
//! pure views of [`peloton_pod_view`].
//!
//! Names: a pod is `<JobID>-<instance>`, a `PodID` its run's Mesos task id
//! `<JobID>-<instance>-<run>`. A malformed one is INVALID_ARGUMENT naming
//! the field; an unknown pod or run is NOT_FOUND.
//!
//! Drover's meaning of Peloton's cache methods: Drover keeps no pod cache
//! apart from its store (the engine commits every change of a pod before
//! it makes it), so `GetPodCache` answers the pod's runtime as the engine
//! last committed it, with its labels; `RefreshPod` has the engine plan the
//! pod's job again at once (launching or killing what its goal asks) and
//! ask the master for the state of the pod's latest run if it may be live
//! (an explicit reconciliation of that one task).

use super::peloton_pod_view as view;
use super::peloton_views::job_ref;
use crate::api::authn::Caller;
use crate::api::error::ApiError;
use crate::api::jobs::{ask, Wrapped};
use crate::api::query::{self, Pagination, PodQuerySpec};
use crate::api::{pod_ops, AppState};
use crate::engine::ApiRequest;
use crate::mesos::agent_files::{self, SandboxError};
use crate::model::change::PendingInfo;
use crate::model::ids::{InstanceId, TaskId};
use crate::model::job::Job;
use crate::model::state::PodGoal;
use crate::store::{PodEventRecord, RunRecord};
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::{
    ListPodsRequest, ListPodsResponse, QueryPodsRequest, QueryPodsResponse,
};
use drover_seed_api::peloton::api::v1alpha::pod::svc::pod_service_server;
use drover_seed_api::peloton::api::v1alpha::pod::svc::*;
use drover_seed_api::peloton::api::v1alpha::{peloton, pod, query as pquery};
use tonic::{Request, Response, Status};

/// Pods per `ListPods` message: the first arrives at once, a large job's
/// pods follow in pieces a client can take.
const LIST_CHUNK: usize = 500;

/// The pod a request's `pod_name` names.
fn pod_name(name: Option<&peloton::PodName>) -> Result<InstanceId, ApiError> {
    let value = name.map(|n| n.value.as_str()).unwrap_or_default();
    if value.is_empty() {
        return Err(ApiError::invalid(
            "pod_name.value",
            "is required (a pod name, <JobID>-<instance>)",
        ));
    }
    InstanceId::parse_pod_name(value).map_err(|e| ApiError::invalid("pod_name.value", e))
}

/// The run a request's optional `pod_id` names; it must be one of `pod`'s.
fn pod_id(id: Option<&peloton::PodId>, pod: &InstanceId) -> Result<Option<TaskId>, ApiError> {
    let value = id.map(|i| i.value.as_str()).unwrap_or_default();
    if value.is_empty() {
        return Ok(None);
    }
    let task = TaskId::parse(value).map_err(|e| ApiError::invalid("pod_id.value", e))?;
    if task.instance != *pod {
        return Err(ApiError::invalid(
            "pod_id.value",
            format!(
                "{value} is a run of pod {}, not of {}",
                task.instance.pod_name(),
                pod.pod_name()
            ),
        ));
    }
    Ok(Some(task))
}

/// A pod as stored: its job, its runs (oldest first), why it waits.
struct StoredPod {
    job: Job,
    runs: Vec<RunRecord>,
    pending: Option<PendingInfo>,
}

impl StoredPod {
    /// The run `task` (NOT_FOUND if the pod has no such run), or the latest
    /// one (None if it never ran).
    fn run(&self, task: Option<&TaskId>) -> Result<Option<&RunRecord>, ApiError> {
        match task {
            None => Ok(self.runs.last()),
            Some(task) => self
                .runs
                .iter()
                .find(|r| r.task_id == *task)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::not_found(format!("run {task} of pod {}", task.instance.pod_name()))
                }),
        }
    }
}

async fn read_pod(state: &AppState, pod: &InstanceId) -> Result<StoredPod, ApiError> {
    let lookup = pod.clone();
    let (job, runs, mut pending) = state
        .read(move |s| {
            Ok((
                s.job(&lookup.job)?,
                s.instance_runs(&lookup)?,
                s.pending_reasons(&lookup.job)?,
            ))
        })
        .await?;
    let job = job
        .filter(|j| j.has_instance(pod.instance))
        .ok_or_else(|| ApiError::not_found(format!("pod {}", pod.pod_name())))?;
    Ok(StoredPod {
        job,
        runs,
        pending: pending.remove(&pod.instance),
    })
}

/// The events of `run` of a pod (all when None).
fn events_of(events: Vec<PodEventRecord>, run: Option<u32>) -> Vec<PodEventRecord> {
    events
        .into_iter()
        .filter(|e| run.is_none_or(|r| e.task_id.run == r))
        .collect()
}

/// Peloton's `PodService` over Drover's pods.
pub struct PodService {
    /// What the JSON API's handlers reach.
    pub state: AppState,
}

impl PodService {
    async fn set_goal(
        &self,
        caller: &Caller,
        name: Option<&peloton::PodName>,
        goal: PodGoal,
    ) -> Result<(), Status> {
        let pod = pod_name(name)?;
        Ok(pod_ops::set_goal_of(&self.state, caller, pod, goal).await?)
    }
}

#[tonic::async_trait]
impl pod_service_server::PodService for PodService {
    async fn start_pod(
        &self,
        request: Request<StartPodRequest>,
    ) -> Result<Response<StartPodResponse>, Status> {
        // A stopped pod's goal becomes RUNNING: the engine launches a new
        // run, so it comes back with a new pod_id.
        let caller = Caller::of(&request)?;
        self.set_goal(
            &caller,
            request.get_ref().pod_name.as_ref(),
            PodGoal::Running,
        )
        .await?;
        Ok(Response::new(StartPodResponse {}))
    }

    async fn stop_pod(
        &self,
        request: Request<StopPodRequest>,
    ) -> Result<Response<StopPodResponse>, Status> {
        let caller = Caller::of(&request)?;
        self.set_goal(
            &caller,
            request.get_ref().pod_name.as_ref(),
            PodGoal::Killed,
        )
        .await?;
        Ok(Response::new(StopPodResponse {}))
    }

    async fn restart_pod(
        &self,
        request: Request<RestartPodRequest>,
    ) -> Result<Response<RestartPodResponse>, Status> {
        let caller = Caller::of(&request)?;
        let pod = pod_name(request.get_ref().pod_name.as_ref())?;
        pod_ops::restart_pod(&self.state, &caller, pod).await?;
        Ok(Response::new(RestartPodResponse {}))
    }

    async fn get_pod(
        &self,
        request: Request<GetPodRequest>,
    ) -> Result<Response<GetPodResponse>, Status> {
        let request = request.into_inner();
        let pod = pod_name(request.pod_name.as_ref())?;
        let stored = read_pod(&self.state, &pod).await?;
        let (current, previous) = view::pod_runs(
            &stored.job,
            pod.instance,
            &stored.runs,
            stored.pending.as_ref(),
            request.status_only,
            request.limit,
        );
        Ok(Response::new(GetPodResponse {
            current: Some(current),
            previous,
        }))
    }

    async fn get_pod_events(
        &self,
        request: Request<GetPodEventsRequest>,
    ) -> Result<Response<GetPodEventsResponse>, Status> {
        let request = request.into_inner();
        let pod = pod_name(request.pod_name.as_ref())?;
        let task = pod_id(request.pod_id.as_ref(), &pod)?;
        let stored = read_pod(&self.state, &pod).await?;
        // The run asked for, else the latest ("events for the latest pod").
        let Some(run) = stored.run(task.as_ref())? else {
            return Ok(Response::new(GetPodEventsResponse { events: vec![] }));
        };
        let run = run.task_id.run;
        let lookup = pod.clone();
        let events = self.state.read(move |s| s.pod_events(&lookup)).await?;
        let events = events_of(events, Some(run))
            .iter()
            .map(|e| view::pod_event(&stored.job, e))
            .collect();
        Ok(Response::new(GetPodEventsResponse { events }))
    }

    async fn browse_pod_sandbox(
        &self,
        request: Request<BrowsePodSandboxRequest>,
    ) -> Result<Response<BrowsePodSandboxResponse>, Status> {
        let request = request.into_inner();
        let pod = pod_name(request.pod_name.as_ref())?;
        let task = pod_id(request.pod_id.as_ref(), &pod)?;
        let stored = read_pod(&self.state, &pod).await?;
        let run = stored.run(task.as_ref())?;
        // The seed: ABORTED if the pod has not been run.
        let Some((run, agent)) = run.and_then(|r| r.run.agent.clone().map(|a| (r, a))) else {
            return Err(Status::aborted(format!(
                "pod {} has not run on an agent yet: it has no sandbox",
                pod.pod_name()
            )));
        };
        let framework = self
            .state
            .read(|s| s.framework_id())
            .await?
            .ok_or_else(|| Status::unavailable("the scheduler has no framework id yet"))?;
        let executor = run.task_id.to_string();
        let sandbox =
            agent_files::browse_sandbox(&self.state.masters, agent.as_str(), &framework, &executor)
                .await
                .map_err(|e| match e {
                    SandboxError::UnknownAgent(_) | SandboxError::NoSandbox { .. } => {
                        Status::not_found(format!("sandbox of {executor}: {e}"))
                    }
                    SandboxError::NoMaster(_) | SandboxError::Agent { .. } => {
                        Status::unavailable(format!("sandbox of {executor}: {e}"))
                    }
                })?;
        let (master_host, master_port) = sandbox
            .master
            .rsplit_once(':')
            .map(|(h, p)| (h.to_owned(), p.to_owned()))
            .unwrap_or((sandbox.master.clone(), String::new()));
        Ok(Response::new(BrowsePodSandboxResponse {
            hostname: sandbox.agent.hostname,
            port: sandbox.agent.port.to_string(),
            paths: sandbox.paths,
            mesos_master_hostname: master_host,
            mesos_master_port: master_port,
        }))
    }

    async fn refresh_pod(
        &self,
        request: Request<RefreshPodRequest>,
    ) -> Result<Response<RefreshPodResponse>, Status> {
        let caller = Caller::of(&request)?;
        let pod = pod_name(request.get_ref().pod_name.as_ref())?;
        ask(&self.state, &caller, ApiRequest::RefreshPod { pod }).await?;
        Ok(Response::new(RefreshPodResponse {}))
    }

    async fn get_pod_cache(
        &self,
        request: Request<GetPodCacheRequest>,
    ) -> Result<Response<GetPodCacheResponse>, Status> {
        let pod = pod_name(request.get_ref().pod_name.as_ref())?;
        let stored = read_pod(&self.state, &pod).await?;
        let status = view::current_status(
            &stored.job,
            pod.instance,
            &stored.runs,
            stored.pending.as_ref(),
        );
        let labels = stored
            .job
            .spec
            .pod_spec(pod.instance)
            .labels
            .iter()
            .map(|l| peloton::Label {
                key: l.key.clone(),
                value: l.value.clone(),
            })
            .collect();
        Ok(Response::new(GetPodCacheResponse {
            status: Some(status),
            labels,
        }))
    }

    async fn delete_pod_events(
        &self,
        request: Request<DeletePodEventsRequest>,
    ) -> Result<Response<DeletePodEventsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let pod = pod_name(request.pod_name.as_ref())?;
        // The seed deletes "the events of a given run": the run is required.
        let task = pod_id(request.pod_id.as_ref(), &pod)?.ok_or_else(|| {
            ApiError::invalid(
                "pod_id.value",
                "is required: the run whose events to delete (<JobID>-<instance>-<run>)",
            )
        })?;
        ask(&self.state, &caller, ApiRequest::DeletePodEvents { task }).await?;
        Ok(Response::new(DeletePodEventsResponse {}))
    }
}

/// `JobService.ListPods`: the messages of its server stream, in order; at
/// least one, so the first comes at once. `range` is instances `from` ≤ i
/// < `to`, cut to the job's; unset (or both 0), every pod.
pub async fn list_pods(
    state: &AppState,
    request: ListPodsRequest,
) -> Result<Vec<ListPodsResponse>, Status> {
    let id = job_ref(request.job_id.as_ref())?;
    let range = match request.range {
        None | Some(pod::InstanceIdRange { from: 0, to: 0 }) => 0..u32::MAX,
        Some(r) if r.from < r.to => r.from..r.to,
        Some(r) => {
            return Err(ApiError::invalid(
                "range",
                format!("from ({}) must be below to ({})", r.from, r.to),
            )
            .into())
        }
    };
    let id = state.find_job_id(id).await?;
    let lookup = id.clone();
    let (job, runs, pending) = state
        .read(move |s| {
            Ok((
                s.job(&lookup)?,
                s.runs(&lookup)?,
                s.pending_reasons(&lookup)?,
            ))
        })
        .await?;
    let job = job.ok_or_else(|| ApiError::not_found(format!("job {id}")))?;
    let pods = view::pod_summaries(&job, &runs, &pending, range);
    let mut messages: Vec<ListPodsResponse> = pods
        .chunks(LIST_CHUNK)
        .map(|chunk| ListPodsResponse {
            pods: chunk.to_vec(),
        })
        .collect();
    if messages.is_empty() {
        messages.push(ListPodsResponse { pods: Vec::new() });
    }
    Ok(messages)
}

/// `JobService.QueryPods`: Drover's pod query ([`query::find_pods`]) with
/// the proto's filters; the request's `pagination`, else the spec's.
pub async fn query_pods(
    state: &AppState,
    request: QueryPodsRequest,
) -> Result<QueryPodsResponse, Status> {
    let id = job_ref(request.job_id.as_ref())?;
    let spec = request.spec.unwrap_or_default();
    let pod_states = spec
        .pod_states
        .iter()
        .enumerate()
        .map(|(i, s)| match pod::PodState::try_from(*s) {
            Ok(state) if state != pod::PodState::Invalid => Ok(state.as_str_name().to_owned()),
            _ => Err(ApiError::invalid(
                &format!("spec.pod_states[{i}]"),
                format!("{s} is not a pod state"),
            )),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let paging = request.pagination.or(spec.pagination).unwrap_or_default();
    let drover_spec = PodQuerySpec {
        pod_states,
        hosts: spec.hosts,
        pod_names: spec
            .names
            .into_iter()
            .map(|n| Wrapped { value: n.value })
            .collect(),
        labels: Vec::new(),
        pagination: Some(Pagination {
            offset: paging.offset,
            limit: paging.limit,
            max_limit: paging.max_limit,
        }),
    };
    let found = query::find_pods(state, id, drover_spec).await?;
    let by_instance = view::pod_summaries(&found.job, &found.runs, &found.pending, 0..u32::MAX);
    let pods = found
        .pods
        .iter()
        .filter_map(|(instance, _)| {
            let status = by_instance.get(*instance as usize)?.status.clone()?;
            Some(view::pod_info(
                &found.job,
                *instance,
                status,
                request.summary_only,
            ))
        })
        .collect();
    Ok(QueryPodsResponse {
        pods,
        pagination: Some(pquery::Pagination {
            offset: found.pagination.offset,
            limit: found.pagination.limit,
            total: u32::try_from(found.pagination.total).unwrap_or(u32::MAX),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names_and_ids_are_checked_naming_their_field() {
        let name = |v: &str| peloton::PodName { value: v.into() };
        let e = pod_name(None).unwrap_err();
        assert!(e.message.contains("pod_name.value"), "{}", e.message);
        let e = pod_name(Some(&name("no-instance-x"))).unwrap_err();
        assert!(e.message.contains("pod_name.value"), "{}", e.message);
        let pod = pod_name(Some(&name("job-1-3"))).unwrap();
        assert_eq!(pod.pod_name(), "job-1-3");
        let id = |v: &str| peloton::PodId { value: v.into() };
        assert_eq!(pod_id(None, &pod).unwrap(), None);
        assert_eq!(
            pod_id(Some(&id("job-1-3-2")), &pod).unwrap().unwrap().run,
            2
        );
        let e = pod_id(Some(&id("job-1-4-2")), &pod).unwrap_err();
        assert!(e.message.contains("pod_id.value"), "{}", e.message);
        assert!(pod_id(Some(&id("job-1-3-x")), &pod).is_err());
    }
}
