//! Peloton v1alpha `peloton.api.v1alpha.job.stateless.svc.JobService` on
//! Drover's jobs: a thin async layer over the JSON API's handlers and the
//! pure translations ([`super::peloton_spec`], [`super::peloton_views`]).
//!
//! - `CreateJob`: the spec as a SERVICE job; `job_id` optional (a UUID
//!   is made); `create_spec` makes the creation a workflow
//!   ([`crate::model::create_workflow`]: `batch_size` instances being
//!   created at a time, `start_paused`, `max_instance_retries`,
//!   `max_tolerable_instance_failures`), shown in `GetJob`'s
//!   `status.workflow_status` until the job is first updated.
//! - `Pause/Resume/AbortJobWorkflow` act on the update in progress, else
//!   on the creation workflow (FAILED_PRECONDITION when neither is in
//!   progress), and answer the job's new entity version.
//! - `GetJob`: `summary_only` answers the summary alone; `version` must
//!   be one the job had (the spec shown is the current one). Its
//!   `workflow_info` and `status.workflow_status` are the current (or
//!   last) update ([`super::peloton_updates`]), else the creation
//!   workflow; `status.version` is the job's entity version.
//! - `RefreshJob`: the engine plans the job again now (its goal-state
//!   rule re-run over what it holds: launches, kills, reconciliation),
//!   as Peloton reloads a job from its store into its cache.
//! - `GetJobCache`: the job as the scheduler's in-memory board holds it
//!   (what readers see; the engine publishes it after every change).
//! - `QueryJobs`: every filter of the seed's `QuerySpec`; `respool`
//!   matches the `respool_id` the job was created with (pools do not
//!   exist yet); a job's completion time is its last run's end, once the
//!   job is in a terminal state.
//! - `ListJobs`: one stream of every job's summary, in pages, then ends.
//! - `ReplaceJob`, `PatchJob`, `GetReplaceJobDiff`, `GetWorkflowEvents`,
//!   `ListJobWorkflows`: update workflows, in [`super::peloton_updates`].
//!
//! Entity versions are Drover's job versions as decimal strings, as the
//! JSON API's ([`crate::api::views::version`]); a stale one is ABORTED.

use super::peloton_secrets::{secrets_from_proto, secrets_to_proto};
use super::peloton_spec::job_spec_from_proto;
use super::peloton_views::{job_ref, job_status, job_summary, version, workflow_status};
use super::{peloton_pods, peloton_updates};
use crate::api::authn::Caller;
use crate::api::error::ApiError;
use crate::api::jobs::{ask, ask_job, parse_version, CreateSpec};
use crate::api::pod_ops::{instances_in, InstanceRange};
use crate::api::query::{self, JobQuerySpec, Pagination, TimeRange};
use crate::api::AppState;
use crate::engine::{ApiRequest, WorkflowAction};
use crate::model::ids::JobId;
use crate::model::job::JobView;
use crate::model::state::JobGoal;
use crate::model::state_names;
use crate::model::task_user;
use crate::model::validate::validate_job;
use drover_seed_api::peloton::api::v1alpha::job::stateless;
use drover_seed_api::peloton::api::v1alpha::{peloton, query as pquery};
use futures_util::Stream;
use stateless::svc::job_service_server::JobService;
use stateless::svc::*;
use std::pin::Pin;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Summaries per `ListJobs` message.
const LIST_PAGE: usize = 500;

/// The JobService over the API's state.
#[derive(Clone)]
pub struct PelotonJobs {
    /// What the JSON API serves from.
    pub state: AppState,
}

type Stream_<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

fn entity_version(v: &Option<peloton::EntityVersion>) -> Result<Option<u64>, Status> {
    let raw = v
        .as_ref()
        .map(|v| v.value.as_str())
        .filter(|v| !v.is_empty());
    Ok(parse_version("version.value", raw)?)
}

fn no_opaque_data(data: &Option<peloton::OpaqueData>) -> Result<(), Status> {
    match data {
        Some(d) if !d.data.is_empty() => Err(ApiError::invalid(
            "opaque_data",
            "is not supported by Drover: it keeps no opaque data",
        )
        .into()),
        _ => Ok(()),
    }
}

fn time_range(r: &Option<peloton::TimeRange>) -> Option<TimeRange> {
    // Milliseconds of a protobuf timestamp.
    let millis = |seconds: i64, nanos: i32| {
        seconds
            .saturating_mul(1000)
            .saturating_add(i64::from(nanos / 1_000_000))
    };
    r.as_ref().map(|r| TimeRange {
        min: r.min.as_ref().map(|t| millis(t.seconds, t.nanos)),
        max: r.max.as_ref().map(|t| millis(t.seconds, t.nanos)),
    })
}

/// A Peloton job `QuerySpec` as the JSON API's query, states in their
/// canonical names.
fn query_spec(spec: &stateless::QuerySpec) -> Result<JobQuerySpec, Status> {
    let mut states = Vec::with_capacity(spec.job_states.len());
    for (i, s) in spec.job_states.iter().enumerate() {
        let name = stateless::JobState::try_from(*s)
            .map(|s| s.as_str_name())
            .map_err(|_| {
                ApiError::invalid(
                    &format!("spec.job_states[{i}]"),
                    format!("{s} is no JobState"),
                )
            })?;
        states.push(name.to_owned());
    }
    let states = query::canonical_states("spec.job_states", &states, state_names::job_state)?;
    let pagination = spec.pagination.as_ref().map(|p| Pagination {
        offset: p.offset,
        limit: p.limit,
        max_limit: p.max_limit,
    });
    Ok(JobQuerySpec {
        job_states: states,
        labels: super::peloton_spec::labels_from(&spec.labels),
        owner: Some(spec.owner.clone()).filter(|o| !o.is_empty()),
        name: Some(spec.name.clone()).filter(|n| !n.is_empty()),
        keywords: spec.keywords.clone(),
        respool: spec.respool.as_ref().map(|r| crate::api::jobs::Wrapped {
            value: r.value.clone(),
        }),
        creation_time_range: time_range(&spec.creation_time_range),
        completion_time_range: time_range(&spec.completion_time_range),
        pagination,
    })
}

impl PelotonJobs {
    async fn set_goal(
        &self,
        caller: &Caller,
        id: &Option<peloton::JobId>,
        v: &Option<peloton::EntityVersion>,
        goal: JobGoal,
    ) -> Result<Option<peloton::EntityVersion>, Status> {
        let expected = entity_version(v)?;
        let job_id = self.state.find_job_id(job_ref(id.as_ref())?).await?;
        let job = ask_job(
            &self.state,
            caller,
            ApiRequest::SetGoal {
                job_id,
                goal,
                expected_version: expected,
            },
        )
        .await?;
        Ok(Some(version(job.version)))
    }

    async fn workflow(
        &self,
        caller: &Caller,
        id: &Option<peloton::JobId>,
        v: &Option<peloton::EntityVersion>,
        opaque: &Option<peloton::OpaqueData>,
        action: WorkflowAction,
    ) -> Result<Option<peloton::EntityVersion>, Status> {
        no_opaque_data(opaque)?;
        let expected = entity_version(v)?;
        let job_id = self.state.find_job_id(job_ref(id.as_ref())?).await?;
        let job = ask_job(
            &self.state,
            caller,
            ApiRequest::SteerWorkflow {
                job_id,
                action,
                expected_version: expected,
            },
        )
        .await?;
        Ok(Some(version(job.version)))
    }

    /// The workflow `view`'s job shows: its current (or last) update, else
    /// its creation workflow (a status alone, from its runs).
    async fn workflow_of(&self, view: &JobView) -> Result<Option<stateless::WorkflowInfo>, Status> {
        if let Some(info) = peloton_updates::current_info(&self.state, &view.job).await? {
            return Ok(Some(info));
        }
        if view.job.create.is_none() {
            return Ok(None);
        }
        let id = view.job.job_id.clone();
        let runs = self.state.read(move |s| s.runs(&id)).await?;
        Ok(
            workflow_status(&view.job, &runs).map(|status| stateless::WorkflowInfo {
                status: Some(status),
                ..stateless::WorkflowInfo::default()
            }),
        )
    }

    /// When `view`'s job completed: its last run's end, once it is in a
    /// terminal state.
    async fn completed_at(&self, view: &JobView) -> Result<Option<i64>, Status> {
        if !view.state().is_terminal() {
            return Ok(None);
        }
        let id = view.job.job_id.clone();
        let runs = self.state.read(move |s| s.runs(&id)).await?;
        Ok(runs.iter().filter_map(|r| r.run.completed_at).max())
    }
}

#[tonic::async_trait]
impl JobService for PelotonJobs {
    async fn create_job(
        &self,
        request: Request<CreateJobRequest>,
    ) -> Result<Response<CreateJobResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        no_opaque_data(&request.opaque_data)?;
        let spec = request
            .spec
            .as_ref()
            .ok_or_else(|| ApiError::invalid("spec", "is required"))?;
        let mut spec = job_spec_from_proto(spec, "spec")?;
        spec.secrets = secrets_from_proto(&request.secrets, "secrets")?;
        let config = &self.state.config;
        validate_job(&spec, &config.limits, "spec").map_err(ApiError::from)?;
        task_user::check_job(&spec, &config.task_users, "spec").map_err(ApiError::from)?;
        let job_id = match request.job_id.as_ref().filter(|j| !j.value.is_empty()) {
            Some(id) => {
                JobId::parse(&id.value).map_err(|e| ApiError::invalid("job_id.value", e))?
            }
            None => JobId::random(),
        };
        let create = request.create_spec.map(|c| {
            CreateSpec {
                batch_size: c.batch_size,
                max_instance_retries: c.max_instance_retries,
                max_tolerable_instance_failures: c.max_tolerable_instance_failures,
                start_paused: c.start_paused,
            }
            .workflow()
        });
        let job = ask_job(
            &self.state,
            &caller,
            ApiRequest::CreateJob {
                job_id,
                spec: Box::new(spec),
                create,
            },
        )
        .await?;
        Ok(Response::new(CreateJobResponse {
            job_id: Some(peloton::JobId {
                value: job.job_id.as_str().to_owned(),
            }),
            version: Some(version(job.version)),
        }))
    }

    async fn replace_job(
        &self,
        request: Request<ReplaceJobRequest>,
    ) -> Result<Response<ReplaceJobResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = peloton_updates::replace(&self.state, &caller, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn patch_job(
        &self,
        request: Request<PatchJobRequest>,
    ) -> Result<Response<PatchJobResponse>, Status> {
        let caller = Caller::of(&request)?;
        let answer = peloton_updates::patch(&self.state, &caller, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn restart_job(
        &self,
        request: Request<RestartJobRequest>,
    ) -> Result<Response<RestartJobResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        no_opaque_data(&request.opaque_data)?;
        let expected = entity_version(&request.version)?;
        let view = self
            .state
            .find_job(job_ref(request.job_id.as_ref())?)
            .await?;
        let restart = request.restart_spec.unwrap_or_default();
        if restart.in_place {
            return Err(ApiError::invalid(
                "restart_spec.in_place",
                "is not supported by Drover: a restarted pod is placed anew",
            )
            .into());
        }
        let ranges: Option<Vec<InstanceRange>> = (!restart.ranges.is_empty()).then(|| {
            restart
                .ranges
                .iter()
                .map(|r| InstanceRange {
                    from: r.from,
                    to: r.to,
                })
                .collect()
        });
        let instances = instances_in(
            view.job.spec.instance_count,
            ranges.as_deref(),
            "restart_spec.ranges",
        )?;
        let job = ask_job(
            &self.state,
            &caller,
            ApiRequest::RestartPods {
                job_id: view.job.job_id.clone(),
                instances,
                batch_size: restart.batch_size,
                expected_version: expected,
                bump: true,
            },
        )
        .await?;
        Ok(Response::new(RestartJobResponse {
            version: Some(version(job.version)),
        }))
    }

    async fn pause_job_workflow(
        &self,
        request: Request<PauseJobWorkflowRequest>,
    ) -> Result<Response<PauseJobWorkflowResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let version = self
            .workflow(
                &caller,
                &r.job_id,
                &r.version,
                &r.opaque_data,
                WorkflowAction::Pause,
            )
            .await?;
        Ok(Response::new(PauseJobWorkflowResponse { version }))
    }

    async fn resume_job_workflow(
        &self,
        request: Request<ResumeJobWorkflowRequest>,
    ) -> Result<Response<ResumeJobWorkflowResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let version = self
            .workflow(
                &caller,
                &r.job_id,
                &r.version,
                &r.opaque_data,
                WorkflowAction::Resume,
            )
            .await?;
        Ok(Response::new(ResumeJobWorkflowResponse { version }))
    }

    async fn abort_job_workflow(
        &self,
        request: Request<AbortJobWorkflowRequest>,
    ) -> Result<Response<AbortJobWorkflowResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let version = self
            .workflow(
                &caller,
                &r.job_id,
                &r.version,
                &r.opaque_data,
                WorkflowAction::Abort,
            )
            .await?;
        Ok(Response::new(AbortJobWorkflowResponse { version }))
    }

    async fn start_job(
        &self,
        request: Request<StartJobRequest>,
    ) -> Result<Response<StartJobResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let version = self
            .set_goal(&caller, &r.job_id, &r.version, JobGoal::Running)
            .await?;
        Ok(Response::new(StartJobResponse { version }))
    }

    async fn stop_job(
        &self,
        request: Request<StopJobRequest>,
    ) -> Result<Response<StopJobResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let version = self
            .set_goal(&caller, &r.job_id, &r.version, JobGoal::Stopped)
            .await?;
        Ok(Response::new(StopJobResponse { version }))
    }

    async fn delete_job(
        &self,
        request: Request<DeleteJobRequest>,
    ) -> Result<Response<DeleteJobResponse>, Status> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let expected = entity_version(&r.version)?;
        let job_id = self.state.find_job_id(job_ref(r.job_id.as_ref())?).await?;
        ask(
            &self.state,
            &caller,
            ApiRequest::DeleteJob {
                job_id,
                expected_version: expected,
                force: r.force,
            },
        )
        .await?;
        Ok(Response::new(DeleteJobResponse {}))
    }

    async fn get_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        let r = request.into_inner();
        let asked = entity_version(&r.version)?;
        let view = self.state.find_job(job_ref(r.job_id.as_ref())?).await?;
        if let Some(v) = asked {
            if v == 0 || v > view.job.version {
                return Err(ApiError::not_found(format!(
                    "version {v} of job {} (it is at version {})",
                    view.job.job_id, view.job.version
                ))
                .into());
            }
        }
        let workflow = self.workflow_of(&view).await?;
        let workflow_status = workflow.as_ref().and_then(|w| w.status.clone());
        if r.summary_only {
            let mut summary = job_summary(&view);
            if let Some(status) = summary.status.as_mut() {
                status.workflow_status = workflow_status;
            }
            return Ok(Response::new(GetJobResponse {
                summary: Some(summary),
                ..GetJobResponse::default()
            }));
        }
        let mut status = job_status(&view);
        status.workflow_status = workflow_status;
        Ok(Response::new(GetJobResponse {
            job_info: Some(stateless::JobInfo {
                job_id: Some(peloton::JobId {
                    value: view.job.job_id.as_str().to_owned(),
                }),
                spec: Some(super::peloton_spec::job_spec_to_proto(&view.job.spec)),
                status: Some(status),
            }),
            workflow_info: workflow,
            secrets: secrets_to_proto(&view.job.spec.secrets),
            ..GetJobResponse::default()
        }))
    }

    async fn get_job_id_from_job_name(
        &self,
        request: Request<GetJobIdFromJobNameRequest>,
    ) -> Result<Response<GetJobIdFromJobNameResponse>, Status> {
        let name = request.into_inner().job_name;
        if name.is_empty() {
            return Err(ApiError::invalid("job_name", "is required").into());
        }
        let mut named: Vec<Arc<JobView>> = self
            .state
            .all_published()
            .await?
            .into_iter()
            .filter(|v| v.job.spec.name == name)
            .collect();
        if named.is_empty() {
            return Err(ApiError::not_found(format!("job named {name}")).into());
        }
        // Newest first, as Peloton lists them.
        named.reverse();
        Ok(Response::new(GetJobIdFromJobNameResponse {
            job_id: named
                .iter()
                .map(|v| peloton::JobId {
                    value: v.job.job_id.as_str().to_owned(),
                })
                .collect(),
        }))
    }

    async fn get_workflow_events(
        &self,
        request: Request<GetWorkflowEventsRequest>,
    ) -> Result<Response<GetWorkflowEventsResponse>, Status> {
        let answer = peloton_updates::events(&self.state, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    type ListPodsStream = Stream_<ListPodsResponse>;

    async fn list_pods(
        &self,
        request: Request<ListPodsRequest>,
    ) -> Result<Response<Self::ListPodsStream>, Status> {
        let messages = peloton_pods::list_pods(&self.state, request.into_inner()).await?;
        let stream = futures_util::stream::iter(messages.into_iter().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn query_pods(
        &self,
        request: Request<QueryPodsRequest>,
    ) -> Result<Response<QueryPodsResponse>, Status> {
        let answer = peloton_pods::query_pods(&self.state, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn query_jobs(
        &self,
        request: Request<QueryJobsRequest>,
    ) -> Result<Response<QueryJobsResponse>, Status> {
        let asked = request.into_inner().spec.unwrap_or_default();
        let spec = query_spec(&asked)?;
        let mut matching = Vec::new();
        for view in self.state.all_published().await? {
            if !query::job_matches(&spec, &view.job, view.state().as_str()) {
                continue;
            }
            if spec.completion_time_range.is_some() {
                let completed = self.completed_at(&view).await?;
                if !query::completed_within(&spec, completed) {
                    continue;
                }
            }
            matching.push(view);
        }
        let (records, page) = query::page(matching, spec.pagination, self.state.config.max_page);
        let mut summaries = Vec::with_capacity(records.len());
        for view in &records {
            let mut summary = job_summary(view);
            if let Some(status) = summary.status.as_mut() {
                status.workflow_status = self.workflow_of(view).await?.and_then(|w| w.status);
            }
            summaries.push(summary);
        }
        Ok(Response::new(QueryJobsResponse {
            records: summaries,
            pagination: Some(pquery::Pagination {
                offset: page.offset,
                limit: page.limit,
                total: u32::try_from(page.total).unwrap_or(0),
            }),
            spec: Some(asked),
        }))
    }

    type ListJobsStream = Stream_<ListJobsResponse>;

    async fn list_jobs(
        &self,
        _: Request<ListJobsRequest>,
    ) -> Result<Response<Self::ListJobsStream>, Status> {
        let jobs = self.state.all_published().await?;
        let summaries: Vec<_> = jobs.iter().map(|v| job_summary(v)).collect();
        // One message even when there is no job, so a client sees the
        // stream answer at once.
        let mut messages: Vec<_> = summaries
            .chunks(LIST_PAGE)
            .map(|page| ListJobsResponse {
                jobs: page.to_vec(),
            })
            .collect();
        if messages.is_empty() {
            messages.push(ListJobsResponse::default());
        }
        let stream = futures_util::stream::iter(messages.into_iter().map(Ok));
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list_job_workflows(
        &self,
        request: Request<ListJobWorkflowsRequest>,
    ) -> Result<Response<ListJobWorkflowsResponse>, Status> {
        let answer = peloton_updates::list(&self.state, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn get_replace_job_diff(
        &self,
        request: Request<GetReplaceJobDiffRequest>,
    ) -> Result<Response<GetReplaceJobDiffResponse>, Status> {
        let answer = peloton_updates::diff(&self.state, request.into_inner()).await?;
        Ok(Response::new(answer))
    }

    async fn refresh_job(
        &self,
        request: Request<RefreshJobRequest>,
    ) -> Result<Response<RefreshJobResponse>, Status> {
        let caller = Caller::of(&request)?;
        let job_id = self
            .state
            .find_job_id(job_ref(request.into_inner().job_id.as_ref())?)
            .await?;
        ask(&self.state, &caller, ApiRequest::RefreshJob { job_id }).await?;
        Ok(Response::new(RefreshJobResponse {}))
    }

    async fn get_job_cache(
        &self,
        request: Request<GetJobCacheRequest>,
    ) -> Result<Response<GetJobCacheResponse>, Status> {
        let view = self
            .state
            .find_job(job_ref(request.into_inner().job_id.as_ref())?)
            .await?;
        let mut status = job_status(&view);
        status.workflow_status = self.workflow_of(&view).await?.and_then(|w| w.status);
        Ok(Response::new(GetJobCacheResponse {
            spec: Some(super::peloton_spec::job_spec_to_proto(&view.job.spec)),
            status: Some(status),
        }))
    }
}
