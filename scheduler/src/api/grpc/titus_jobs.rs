//! Titus v3 `com.netflix.titus.JobManagementService` over Drover's jobs: a
//! thin async layer over [`super::titus_spec`] (the translations) and the
//! JSON API's handlers' engine requests. Writes of a running job go to the
//! engine as one `AmendJob` each (size, enabled flag, attributes, the kept
//! descriptor, pod goals), computed from the job as last stored and sent
//! with its version, so a concurrent change is never overwritten: the
//! amendment is recomputed from the new version (a few times) instead.
//!
//! - `KillTask` without `shrink` replaces the task (a pod restart); with
//!   `shrink` its instance stops for good and desired drops by one.
//! - `MoveTask` cannot move a live container between jobs: it grows the
//!   target by one and shrinks the source by the task (a new task starts
//!   in the target, the moved one is killed). The jobs must be service
//!   jobs with the same pod spec; both jobs change in one engine request
//!   (`AmendJobs`, one stored change), so a move is stored whole or not
//!   at all.
//! - Task attributes are kept in the job's spec by task id
//!   (`task_attributes`), shown on the task, never acted on.
//! - `ObserveJob(s)` stream the watch log ([`super::titus_watch`]).

use super::titus_spec::{self as spec, CapacityChange, Filter};
use super::titus_watch;
use crate::api::authn::Caller;
use crate::api::error::{ApiError, Code};
use crate::api::jobs::{ask, ask_job};
use crate::api::AppState;
use crate::engine::{ApiRequest, JobAmend};
use crate::model::amend::JobAmendment;
use crate::model::ids::{JobId, TaskId};
use crate::model::job::{Job, JobView};
use crate::model::spec::JobType;
use crate::model::state::JobGoal;
use crate::model::task_user;
use crate::model::validate::validate_job;
use crate::store::RunRecord;
use drover_seed_api::titus::job_management_service_server::JobManagementService;
use drover_seed_api::titus::{
    self, JobAttributesDeleteRequest, JobAttributesUpdate, JobCapacityUpdate,
    JobCapacityUpdateWithOptionalAttributes, JobChangeNotification, JobDescriptor,
    JobDisruptionBudgetUpdate, JobProcessesUpdate, JobQuery, JobQueryResult, JobStatusUpdate,
    ObserveJobsQuery, ObserveJobsWithKeepAliveRequest, TaskAttributesDeleteRequest,
    TaskAttributesUpdate, TaskKillRequest, TaskMoveRequest, TaskQuery, TaskQueryResult,
};
use std::sync::Arc;
use tonic::codegen::BoxStream;
use tonic::{Request, Response, Status, Streaming};

/// How many times an amendment is recomputed when the job changed under it.
const AMEND_ATTEMPTS: usize = 5;

/// The Titus job service over the API's state.
#[derive(Clone)]
pub struct TitusJobs {
    /// What the JSON API's handlers reach.
    pub state: AppState,
}

type Answer<T> = Result<Response<T>, Status>;

fn required(field: &str, value: &str) -> Result<(), ApiError> {
    if value.trim().is_empty() {
        return Err(ApiError::invalid(field, "is required"));
    }
    Ok(())
}

impl TitusJobs {
    async fn job(&self, field: &str, id: &str) -> Result<Arc<JobView>, ApiError> {
        required(field, id)?;
        self.state.find_job(id).await
    }

    /// Makes the amendment `make` computes from the job as last stored,
    /// recomputing it if the job changed in between.
    async fn amend(
        &self,
        caller: &Caller,
        field: &str,
        id: &str,
        make: impl Fn(&Job) -> Result<JobAmendment, ApiError>,
    ) -> Result<Box<Job>, ApiError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let view = self.job(field, id).await?;
            let job = &view.job;
            let amend = make(job)?;
            if let Ok(amended) = amend.apply(job) {
                validate_job(&amended.spec, &self.state.config.limits, "job")?;
            }
            let request = ApiRequest::AmendJob {
                job_id: job.job_id.clone(),
                expected_version: Some(job.version),
                amend: Box::new(amend),
            };
            match ask_job(&self.state, caller, request).await {
                Err(e) if e.code == Code::Aborted && attempt < AMEND_ATTEMPTS => continue,
                other => return other,
            }
        }
    }

    async fn runs(&self, id: &JobId) -> Result<Vec<RunRecord>, ApiError> {
        let id = id.clone();
        self.state.read(move |s| s.runs(&id)).await
    }

    async fn tasks(&self, job: &Job) -> Result<Vec<titus::Task>, ApiError> {
        Ok(spec::tasks_of(job, &self.runs(&job.job_id).await?))
    }

    /// The task `raw` names: its job, instance and run record (None: the
    /// instance's first run, not launched yet).
    async fn task(&self, raw: &str) -> Result<(Arc<JobView>, TaskId, Option<RunRecord>), ApiError> {
        required("taskId", raw)?;
        let id = TaskId::parse(raw).map_err(|e| ApiError::invalid("taskId", e))?;
        let not_found = || ApiError::not_found(format!("task {raw}"));
        let view = self
            .state
            .find_job(id.instance.job.as_str())
            .await
            .map_err(|e| {
                if e.code == Code::NotFound {
                    not_found()
                } else {
                    e
                }
            })?;
        if view.job.job_id != id.instance.job {
            return Err(not_found());
        }
        let instance = id.instance.clone();
        let runs = self.state.read(move |s| s.instance_runs(&instance)).await?;
        let none_yet = runs.is_empty();
        let instance = id.instance.instance;
        match runs.into_iter().find(|r| r.task_id.run == id.run) {
            // A stored run, also of an instance scaled down since (as
            // FindTasks lists it).
            Some(r) => Ok((view, id, Some(r))),
            // The first task of an instance not launched yet.
            None if id.run == 0
                && none_yet
                && view.job.has_instance(instance)
                && view.job.wants_running(instance) =>
            {
                Ok((view, id, None))
            }
            None => Err(not_found()),
        }
    }

    /// Writes `set` over and removes `delete` from an existing task's
    /// attributes.
    async fn set_task_attributes(
        &self,
        caller: &Caller,
        task: &str,
        set: &std::collections::HashMap<String, String>,
        delete: &[String],
    ) -> Result<(), ApiError> {
        let (view, id, _) = self.task(task).await?;
        let task = id.to_string();
        let job_id = view.job.job_id.as_str().to_owned();
        self.amend(caller, "taskId", &job_id, |job| {
            Ok(spec::task_attributes(job, &task, set, delete))
        })
        .await
        .map(drop)
    }

    async fn update_capacity(
        &self,
        caller: &Caller,
        id: &str,
        change: CapacityChange,
        at: &str,
    ) -> Result<(), ApiError> {
        self.amend(caller, "jobId", id, |job| spec::scale(job, change, at))
            .await
            .map(drop)
    }
}

#[tonic::async_trait]
impl JobManagementService for TitusJobs {
    async fn create_job(&self, request: Request<JobDescriptor>) -> Answer<titus::JobId> {
        let caller = Caller::of(&request)?;
        let d = request.into_inner();
        let job_spec = spec::job_spec_from_descriptor(&d)?;
        validate_job(&job_spec, &self.state.config.limits, "jobDescriptor")
            .map_err(ApiError::from)?;
        task_user::check_job(&job_spec, &self.state.config.task_users, "jobDescriptor")
            .map_err(ApiError::from)?;
        let job = ask_job(
            &self.state,
            &caller,
            ApiRequest::CreateJob {
                job_id: JobId::random(),
                spec: Box::new(job_spec),
                create: None,
            },
        )
        .await?;
        Ok(Response::new(titus::JobId {
            id: job.job_id.as_str().to_owned(),
        }))
    }

    async fn update_job_capacity(&self, request: Request<JobCapacityUpdate>) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let c = r
            .capacity
            .ok_or_else(|| ApiError::invalid("Capacity", "is required"))?;
        let change = CapacityChange {
            min: Some(c.min),
            desired: Some(c.desired),
            max: Some(c.max),
        };
        self.update_capacity(&caller, &r.job_id, change, "Capacity")
            .await?;
        Ok(Response::new(()))
    }

    async fn update_job_capacity_with_optional_attributes(
        &self,
        request: Request<JobCapacityUpdateWithOptionalAttributes>,
    ) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let c = r
            .job_capacity_with_optional_attributes
            .ok_or_else(|| ApiError::invalid("jobCapacityWithOptionalAttributes", "is required"))?;
        let change = CapacityChange {
            min: c.min,
            desired: c.desired,
            max: c.max,
        };
        self.update_capacity(
            &caller,
            &r.job_id,
            change,
            "jobCapacityWithOptionalAttributes",
        )
        .await?;
        Ok(Response::new(()))
    }

    async fn update_job_status(&self, request: Request<JobStatusUpdate>) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        self.amend(&caller, "id", &r.id, |job| {
            if job.spec.job_type != JobType::Service {
                return Err(ApiError {
                    code: Code::FailedPrecondition,
                    message: format!(
                        "job {} is a batch job: only a service job is enabled or disabled",
                        job.job_id
                    ),
                });
            }
            Ok(JobAmendment {
                disabled: Some(!r.enable_status),
                ..JobAmendment::default()
            })
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn update_job_processes(&self, request: Request<JobProcessesUpdate>) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let processes = r
            .service_job_processes
            .ok_or_else(|| ApiError::invalid("serviceJobProcesses", "is required"))?;
        self.amend(&caller, "jobId", &r.job_id, |job| {
            spec::set_processes(job, processes)
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn update_job_disruption_budget(
        &self,
        request: Request<JobDisruptionBudgetUpdate>,
    ) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let budget = r
            .disruption_budget
            .ok_or_else(|| ApiError::invalid("disruptionBudget", "is required"))?;
        self.amend(&caller, "jobId", &r.job_id, |job| {
            Ok(spec::set_disruption_budget(job, budget.clone()))
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn find_jobs(&self, request: Request<JobQuery>) -> Answer<JobQueryResult> {
        let q = request.into_inner();
        let filter = Filter::parse(&q.filtering_criteria)?;
        let mut items = Vec::new();
        for view in self.state.all_published().await? {
            let job = spec::job_to_proto(&view);
            if !filter.job_matches(&job) {
                continue;
            }
            if filter.needs_tasks() {
                let tasks = self.tasks(&view.job).await?;
                if !tasks.iter().any(|t| filter.task_matches(t)) {
                    continue;
                }
            }
            items.push(job);
        }
        let (items, pagination) =
            spec::paginate(items, q.page.as_ref(), self.state.config.max_page)?;
        Ok(Response::new(JobQueryResult {
            items,
            pagination: Some(pagination),
        }))
    }

    async fn find_job(&self, request: Request<titus::JobId>) -> Answer<titus::Job> {
        let r = request.into_inner();
        let view = self.job("id", &r.id).await?;
        Ok(Response::new(spec::job_to_proto(&view)))
    }

    type ObserveJobStream = BoxStream<JobChangeNotification>;

    async fn observe_job(&self, request: Request<titus::JobId>) -> Answer<Self::ObserveJobStream> {
        let id = request.into_inner().id;
        Ok(Response::new(
            titus_watch::observe_job(&self.state, &id).await?,
        ))
    }

    type ObserveJobsStream = BoxStream<JobChangeNotification>;

    async fn observe_jobs(
        &self,
        request: Request<ObserveJobsQuery>,
    ) -> Answer<Self::ObserveJobsStream> {
        let query = request.into_inner();
        Ok(Response::new(titus_watch::observe_jobs(
            &self.state,
            &query.filtering_criteria,
        )?))
    }

    type ObserveJobsWithKeepAliveStream = BoxStream<JobChangeNotification>;

    async fn observe_jobs_with_keep_alive(
        &self,
        request: Request<Streaming<ObserveJobsWithKeepAliveRequest>>,
    ) -> Answer<Self::ObserveJobsWithKeepAliveStream> {
        let requests = request.into_inner();
        Ok(Response::new(
            titus_watch::observe_jobs_with_keep_alive(&self.state, requests).await?,
        ))
    }

    async fn kill_job(&self, request: Request<titus::JobId>) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let view = self.job("id", &r.id).await?;
        if view.job.goal != JobGoal::Running {
            return Err(ApiError {
                code: Code::FailedPrecondition,
                message: format!("job {} is being killed already", view.job.job_id),
            }
            .into());
        }
        ask_job(
            &self.state,
            &caller,
            ApiRequest::SetGoal {
                job_id: view.job.job_id.clone(),
                goal: JobGoal::Stopped,
                expected_version: None,
            },
        )
        .await?;
        Ok(Response::new(()))
    }

    async fn update_job_attributes(&self, request: Request<JobAttributesUpdate>) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        check_attributes(&r.attributes)?;
        self.amend(&caller, "jobId", &r.job_id, |job| {
            Ok(JobAmendment {
                labels: Some(spec::attributes(job, &r.attributes, &[])),
                ..JobAmendment::default()
            })
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn delete_job_attributes(
        &self,
        request: Request<JobAttributesDeleteRequest>,
    ) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        if r.keys.is_empty() {
            return Err(ApiError::invalid("keys", "at least one is required").into());
        }
        self.amend(&caller, "jobId", &r.job_id, |job| {
            Ok(JobAmendment {
                labels: Some(spec::attributes(job, &Default::default(), &r.keys)),
                ..JobAmendment::default()
            })
        })
        .await?;
        Ok(Response::new(()))
    }

    async fn find_task(&self, request: Request<titus::TaskId>) -> Answer<titus::Task> {
        let r = request.into_inner();
        let (view, id, record) = self.task(&r.id).await.map_err(|e| {
            // The request's field is `id`.
            if e.message.starts_with("taskId:") {
                ApiError::invalid("id", e.message.trim_start_matches("taskId: "))
            } else {
                e
            }
        })?;
        Ok(Response::new(spec::task_to_proto(
            &view.job,
            id.instance.instance,
            record.as_ref(),
        )))
    }

    async fn find_tasks(&self, request: Request<TaskQuery>) -> Answer<TaskQueryResult> {
        let q = request.into_inner();
        let filter = Filter::parse(&q.filtering_criteria)?;
        let mut items = Vec::new();
        for view in self.state.all_published().await? {
            let job = spec::job_to_proto(&view);
            if !filter.job_matches(&job) {
                continue;
            }
            for task in self.tasks(&view.job).await? {
                if filter.task_matches(&task) {
                    items.push(task);
                }
            }
        }
        let (items, pagination) =
            spec::paginate(items, q.page.as_ref(), self.state.config.max_page)?;
        Ok(Response::new(TaskQueryResult {
            items,
            pagination: Some(pagination),
        }))
    }

    async fn kill_task(&self, request: Request<TaskKillRequest>) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        let (view, id, record) = self.task(&r.task_id).await?;
        let live = record.as_ref().is_none_or(|rec| rec.run.state.is_live());
        if !live {
            return Err(ApiError {
                code: Code::FailedPrecondition,
                message: format!("task {} has finished already", r.task_id),
            }
            .into());
        }
        let instance = id.instance.instance;
        if r.shrink {
            let job_id = view.job.job_id.as_str().to_owned();
            self.amend(&caller, "taskId", &job_id, |job| {
                spec::shrink_one(job, instance, r.prevent_min_size_update)
            })
            .await?;
        } else {
            ask(
                &self.state,
                &caller,
                ApiRequest::RestartPods {
                    job_id: view.job.job_id.clone(),
                    instances: vec![instance],
                    batch_size: 0,
                    expected_version: None,
                    bump: false,
                },
            )
            .await?;
        }
        Ok(Response::new(()))
    }

    async fn update_task_attributes(&self, request: Request<TaskAttributesUpdate>) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        check_attributes(&r.attributes)?;
        self.set_task_attributes(&caller, &r.task_id, &r.attributes, &[])
            .await?;
        Ok(Response::new(()))
    }

    async fn delete_task_attributes(
        &self,
        request: Request<TaskAttributesDeleteRequest>,
    ) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        if r.keys.is_empty() {
            return Err(ApiError::invalid("keys", "at least one is required").into());
        }
        self.set_task_attributes(&caller, &r.task_id, &Default::default(), &r.keys)
            .await?;
        Ok(Response::new(()))
    }

    async fn move_task(&self, request: Request<TaskMoveRequest>) -> Answer<()> {
        let caller = Caller::of(&request)?;
        let r = request.into_inner();
        required("sourceJobId", &r.source_job_id)?;
        required("targetJobId", &r.target_job_id)?;
        let source = self.job("sourceJobId", &r.source_job_id).await?;
        let target = self.job("targetJobId", &r.target_job_id).await?;
        if source.job.job_id == target.job.job_id {
            return Err(ApiError::invalid("targetJobId", "is the source job").into());
        }
        let (_, id, record) = self.task(&r.task_id).await?;
        if id.instance.job != source.job.job_id {
            return Err(ApiError::invalid(
                "taskId",
                format!("task {} is not of job {}", r.task_id, source.job.job_id),
            )
            .into());
        }
        if record.as_ref().is_none_or(|rec| !rec.run.state.is_live()) {
            return Err(ApiError {
                code: Code::FailedPrecondition,
                message: format!("task {} is not started", r.task_id),
            }
            .into());
        }
        let compatible = source.job.spec.job_type == JobType::Service
            && target.job.spec.job_type == JobType::Service
            && source.job.spec.default_spec == target.job.spec.default_spec
            && source.job.spec.instance_spec.is_empty()
            && target.job.spec.instance_spec.is_empty();
        if !compatible {
            return Err(ApiError {
                code: Code::FailedPrecondition,
                message: format!(
                    "jobs {} and {} are not compatible: both must be service jobs with the same \
                     container and placement",
                    source.job.job_id, target.job.job_id
                ),
            }
            .into());
        }
        let instance = id.instance.instance;
        let (source_id, target_id) = (source.job.job_id.clone(), target.job.job_id.clone());
        // One engine request grows the target and stops the source's pod
        // in one stored change: both or neither. A version moved on
        // between the read and the write: both amendments are made again
        // from the jobs as last stored.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let source = self.job("sourceJobId", source_id.as_str()).await?;
            let target = self.job("targetJobId", target_id.as_str()).await?;
            let grow = spec::scale(
                &target.job,
                CapacityChange {
                    desired: Some(spec::desired(&target.job) + 1),
                    ..CapacityChange::default()
                },
                "targetJobId",
            )?;
            let stop = spec::shrink_one(&source.job, instance, false)?;
            for (job, amend) in [(&target.job, &grow), (&source.job, &stop)] {
                if let Ok(amended) = amend.apply(job) {
                    validate_job(&amended.spec, &self.state.config.limits, "job")
                        .map_err(ApiError::from)?;
                }
            }
            let request = ApiRequest::AmendJobs {
                amends: vec![
                    JobAmend {
                        job_id: target_id.clone(),
                        expected_version: Some(target.job.version),
                        amend: Box::new(grow),
                    },
                    JobAmend {
                        job_id: source_id.clone(),
                        expected_version: Some(source.job.version),
                        amend: Box::new(stop),
                    },
                ],
            };
            match ask(&self.state, &caller, request).await {
                Err(e) if e.code == Code::Aborted && attempt < AMEND_ATTEMPTS => continue,
                Err(e) => return Err(e.into()),
                Ok(_) => break,
            }
        }
        Ok(Response::new(()))
    }
}

/// An attributes update names at least one attribute, none with an empty
/// key.
fn check_attributes(
    attributes: &std::collections::HashMap<String, String>,
) -> Result<(), ApiError> {
    if attributes.is_empty() {
        return Err(ApiError::invalid("attributes", "at least one is required"));
    }
    match attributes.keys().find(|k| k.trim().is_empty()) {
        Some(k) => Err(ApiError::invalid(
            "attributes",
            format!("key '{k}' is empty"),
        )),
        None => Ok(()),
    }
}
