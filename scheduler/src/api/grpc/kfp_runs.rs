//! Kubeflow Pipelines v1beta1 `api.RunService` over Drover's pipeline
//! runs (issue 23): a thin async layer over the engine's pipeline
//! requests and the pure translation of [`kfp_run_view`]. Create
//! validates in the engine (INVALID_ARGUMENT naming the field, nothing
//! stored); runs are read from the engine, which holds what the store
//! committed.
//!
//! Served: CreateRunV1, GetRunV1, ListRunsV1 (Kubeflow's filter, sort
//! and paging rules: [`crate::api::kfp::list`]), TerminateRunV1,
//! RetryRunV1, ArchiveRunV1, UnarchiveRunV1, DeleteRunV1,
//! ReportRunMetricsV1 (per-metric results: [`kfp_metrics_view`]) and
//! ReadArtifactV1 (from the node's sandbox: [`kfp_artifact_read`]): every
//! method of the run service.

use super::kfp_artifact_read as artifact_reads;
use super::kfp_metrics_view as metrics_view;
use super::kfp_run_view as view;
use crate::api::authn::Caller;
use crate::api::error::{ApiError, Code};
use crate::api::jobs::ask;
use crate::api::kfp::list::{list, RunListing};
use crate::api::AppState;
use crate::engine::pipeline_runs::NewRun;
use crate::engine::{ApiRequest, Reply};
use crate::model::pipeline_run::RunRecord;
use drover_seed_api::kfp::run_service_server::RunService;
use drover_seed_api::kfp::*;
use tonic::{Request, Response, Status};

#[derive(Clone)]
pub struct KfpRuns {
    pub state: AppState,
}

async fn one_run(
    state: &AppState,
    caller: &Caller,
    request: ApiRequest,
) -> Result<RunRecord, Status> {
    match ask(state, caller, request).await? {
        Reply::PipelineRun(record) => Ok(*record),
        _ => Err(ApiError {
            code: Code::Internal,
            message: "the engine answered a run request with something else than a run".into(),
        }
        .into()),
    }
}

/// The run a create request carries, read for the engine.
fn new_run(run: Option<Run>) -> Result<NewRun, Status> {
    let run = run.ok_or_else(|| Status::invalid_argument("run: a run is required"))?;
    if run.name.trim().is_empty() {
        return Err(Status::invalid_argument("run.name: a run needs a name"));
    }
    let spec = run
        .pipeline_spec
        .ok_or_else(|| Status::invalid_argument("run.pipeline_spec: required"))?;
    if spec.workflow_manifest.trim().is_empty() {
        let field = if spec.pipeline_id.is_empty() {
            "run.pipeline_spec.workflow_manifest: required (Drover runs the manifest it is given)"
        } else {
            "run.pipeline_spec.pipeline_id: stored pipelines are not run yet; send workflow_manifest"
        };
        return Err(Status::invalid_argument(field));
    }
    let experiment_id = run
        .resource_references
        .iter()
        .filter_map(|r| r.key.as_ref())
        .find(|k| k.r#type == ResourceType::Experiment as i32)
        .map(|k| k.id.clone());
    Ok(NewRun {
        run_id: uuid::Uuid::new_v4().to_string(),
        name: run.name,
        description: run.description,
        manifest: spec.workflow_manifest,
        parameters: spec
            .parameters
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect(),
        experiment_id,
        // The engine's to set, from the caller.
        owner: String::new(),
    })
}

#[tonic::async_trait]
impl RunService for KfpRuns {
    async fn create_run_v1(
        &self,
        request: Request<CreateRunRequest>,
    ) -> Result<Response<RunDetail>, Status> {
        let caller = Caller::of(&request)?;
        let new = new_run(request.into_inner().run)?;
        let record = one_run(
            &self.state,
            &caller,
            ApiRequest::CreatePipelineRun(Box::new(new)),
        )
        .await?;
        Ok(Response::new(view::run_detail(
            &record,
            self.state.config.kfp_images,
        )))
    }

    async fn get_run_v1(
        &self,
        request: Request<GetRunRequest>,
    ) -> Result<Response<RunDetail>, Status> {
        let caller = Caller::of(&request)?;
        let run_id = request.into_inner().run_id;
        let record = one_run(&self.state, &caller, ApiRequest::GetPipelineRun { run_id }).await?;
        Ok(Response::new(view::run_detail(
            &record,
            self.state.config.kfp_images,
        )))
    }

    async fn list_runs_v1(
        &self,
        request: Request<ListRunsRequest>,
    ) -> Result<Response<ListRunsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let runs = match ask(&self.state, &caller, ApiRequest::ListPipelineRuns).await? {
            Reply::PipelineRuns(runs) => runs,
            _ => {
                return Err(Status::internal(
                    "the engine answered a list with something else",
                ))
            }
        };
        // Kubeflow's list rules (filter, sort, pages) over what the
        // listing needs of each run; the page's runs are then rendered.
        let listings: Vec<RunListing> = runs.iter().map(view::run_listing).collect();
        let page = list(&listings, request.get_ref())?;
        let by_id: std::collections::HashMap<&str, &RunRecord> =
            runs.iter().map(|r| (r.id(), r)).collect();
        let runs: Vec<Run> = page
            .runs
            .iter()
            .filter_map(|listing| by_id.get(listing.id.as_str()))
            .map(|record| view::run_message(record))
            .collect();
        Ok(Response::new(ListRunsResponse {
            total_size: page.total_size,
            runs,
            next_page_token: page.next_page_token,
        }))
    }

    async fn archive_run_v1(
        &self,
        request: Request<ArchiveRunRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?;
        let run_id = request.into_inner().id;
        let archive = ApiRequest::SetPipelineRunArchived {
            run_id,
            archived: true,
        };
        one_run(&self.state, &caller, archive).await?;
        Ok(Response::new(()))
    }

    async fn unarchive_run_v1(
        &self,
        request: Request<UnarchiveRunRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?;
        let run_id = request.into_inner().id;
        let unarchive = ApiRequest::SetPipelineRunArchived {
            run_id,
            archived: false,
        };
        one_run(&self.state, &caller, unarchive).await?;
        Ok(Response::new(()))
    }

    async fn delete_run_v1(
        &self,
        request: Request<DeleteRunRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?;
        let run_id = request.into_inner().id;
        match ask(
            &self.state,
            &caller,
            ApiRequest::DeletePipelineRun { run_id },
        )
        .await?
        {
            Reply::Deleted => Ok(Response::new(())),
            _ => Err(Status::internal(
                "the engine answered a delete with something else than Deleted",
            )),
        }
    }

    async fn report_run_metrics_v1(
        &self,
        request: Request<ReportRunMetricsRequest>,
    ) -> Result<Response<ReportRunMetricsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let report = uuid::Uuid::new_v4().to_string();
        let checked = metrics_view::check_report(&request.metrics, &report);
        let valid = metrics_view::valid_metrics(&checked);
        let stored = match ask(
            &self.state,
            &caller,
            ApiRequest::ReportPipelineRunMetrics {
                run_id: request.run_id,
                metrics: valid,
            },
        )
        .await
        {
            Ok(Reply::PipelineRun(record)) => Ok(record.metrics),
            Ok(_) => Err("the engine answered a report with something else than a run".into()),
            // Kubeflow: a metric its store failed to keep is INTERNAL_ERROR,
            // inside the 200; the run not found (or the caller refused)
            // fails the call.
            Err(e) if e.code == Code::Internal => Err(e.message),
            Err(e) => return Err(e.into()),
        };
        Ok(Response::new(ReportRunMetricsResponse {
            results: metrics_view::results(&checked, stored.as_deref().map_err(String::as_str)),
        }))
    }

    async fn read_artifact_v1(
        &self,
        request: Request<ReadArtifactRequest>,
    ) -> Result<Response<ReadArtifactResponse>, Status> {
        let caller = Caller::of(&request)?;
        let request = request.into_inner();
        let record = one_run(
            &self.state,
            &caller,
            ApiRequest::GetPipelineRun {
                run_id: request.run_id.clone(),
            },
        )
        .await?;
        let data = artifact_reads::read_artifact(
            &self.state,
            &record,
            &request.node_id,
            &request.artifact_name,
        )
        .await?;
        Ok(Response::new(ReadArtifactResponse { data }))
    }

    async fn terminate_run_v1(
        &self,
        request: Request<TerminateRunRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?;
        let run_id = request.into_inner().run_id;
        one_run(
            &self.state,
            &caller,
            ApiRequest::TerminatePipelineRun { run_id },
        )
        .await?;
        Ok(Response::new(()))
    }

    async fn retry_run_v1(
        &self,
        request: Request<RetryRunRequest>,
    ) -> Result<Response<()>, Status> {
        let caller = Caller::of(&request)?;
        let run_id = request.into_inner().run_id;
        one_run(
            &self.state,
            &caller,
            ApiRequest::RetryPipelineRun { run_id },
        )
        .await?;
        Ok(Response::new(()))
    }
}
