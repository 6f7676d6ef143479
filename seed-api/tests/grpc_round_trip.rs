//! The generated tonic server and client code works end to end: a Peloton
//! JobService built from the generated server trait, served over real HTTP/2
//! on loopback, answers the generated client: a unary call's status code and
//! message come back intact, a request's fields reach the server, and a
//! server stream delivers its messages.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::{
    job_service_client::JobServiceClient,
    job_service_server::{JobService, JobServiceServer},
    *,
};
use drover_seed_api::peloton::api::v1alpha::job::stateless::JobSummary;
use drover_seed_api::peloton::api::v1alpha::peloton::JobId;
use tonic::codegen::tokio_stream;
use tonic::{Code, Request, Response, Status};

/// A JobService that knows no jobs: GetJob answers NOT_FOUND naming the
/// requested id (so the test sees the request was decoded), ListJobs streams
/// two pages, everything else is UNIMPLEMENTED with the method's name.
struct NoJobs;

fn unimplemented<T>(method: &str) -> Result<Response<T>, Status> {
    Err(Status::unimplemented(format!(
        "{method}: not served by this test server"
    )))
}

type Stream<T> = tonic::codegen::BoxStream<T>;

#[tonic::async_trait]
impl JobService for NoJobs {
    async fn create_job(
        &self,
        _: Request<CreateJobRequest>,
    ) -> Result<Response<CreateJobResponse>, Status> {
        unimplemented("CreateJob")
    }
    async fn replace_job(
        &self,
        _: Request<ReplaceJobRequest>,
    ) -> Result<Response<ReplaceJobResponse>, Status> {
        unimplemented("ReplaceJob")
    }
    async fn patch_job(
        &self,
        _: Request<PatchJobRequest>,
    ) -> Result<Response<PatchJobResponse>, Status> {
        unimplemented("PatchJob")
    }
    async fn restart_job(
        &self,
        _: Request<RestartJobRequest>,
    ) -> Result<Response<RestartJobResponse>, Status> {
        unimplemented("RestartJob")
    }
    async fn pause_job_workflow(
        &self,
        _: Request<PauseJobWorkflowRequest>,
    ) -> Result<Response<PauseJobWorkflowResponse>, Status> {
        unimplemented("PauseJobWorkflow")
    }
    async fn resume_job_workflow(
        &self,
        _: Request<ResumeJobWorkflowRequest>,
    ) -> Result<Response<ResumeJobWorkflowResponse>, Status> {
        unimplemented("ResumeJobWorkflow")
    }
    async fn abort_job_workflow(
        &self,
        _: Request<AbortJobWorkflowRequest>,
    ) -> Result<Response<AbortJobWorkflowResponse>, Status> {
        unimplemented("AbortJobWorkflow")
    }
    async fn start_job(
        &self,
        _: Request<StartJobRequest>,
    ) -> Result<Response<StartJobResponse>, Status> {
        unimplemented("StartJob")
    }
    async fn stop_job(
        &self,
        _: Request<StopJobRequest>,
    ) -> Result<Response<StopJobResponse>, Status> {
        unimplemented("StopJob")
    }
    async fn delete_job(
        &self,
        _: Request<DeleteJobRequest>,
    ) -> Result<Response<DeleteJobResponse>, Status> {
        unimplemented("DeleteJob")
    }
    async fn get_job(
        &self,
        request: Request<GetJobRequest>,
    ) -> Result<Response<GetJobResponse>, Status> {
        let id = request.into_inner().job_id.unwrap_or_default().value;
        Err(Status::not_found(format!("job {id} not found")))
    }
    async fn get_job_id_from_job_name(
        &self,
        _: Request<GetJobIdFromJobNameRequest>,
    ) -> Result<Response<GetJobIdFromJobNameResponse>, Status> {
        unimplemented("GetJobIDFromJobName")
    }
    async fn get_workflow_events(
        &self,
        _: Request<GetWorkflowEventsRequest>,
    ) -> Result<Response<GetWorkflowEventsResponse>, Status> {
        unimplemented("GetWorkflowEvents")
    }
    type ListPodsStream = Stream<ListPodsResponse>;
    async fn list_pods(
        &self,
        _: Request<ListPodsRequest>,
    ) -> Result<Response<Self::ListPodsStream>, Status> {
        unimplemented("ListPods")
    }
    async fn query_pods(
        &self,
        _: Request<QueryPodsRequest>,
    ) -> Result<Response<QueryPodsResponse>, Status> {
        unimplemented("QueryPods")
    }
    async fn query_jobs(
        &self,
        _: Request<QueryJobsRequest>,
    ) -> Result<Response<QueryJobsResponse>, Status> {
        unimplemented("QueryJobs")
    }
    type ListJobsStream = Stream<ListJobsResponse>;
    async fn list_jobs(
        &self,
        _: Request<ListJobsRequest>,
    ) -> Result<Response<Self::ListJobsStream>, Status> {
        let page = |name: &str| {
            Ok(ListJobsResponse {
                jobs: vec![JobSummary {
                    name: name.to_owned(),
                    ..JobSummary::default()
                }],
            })
        };
        let pages = vec![page("web"), page("batch")];
        Ok(Response::new(Box::pin(tokio_stream::iter(pages))))
    }
    async fn list_job_workflows(
        &self,
        _: Request<ListJobWorkflowsRequest>,
    ) -> Result<Response<ListJobWorkflowsResponse>, Status> {
        unimplemented("ListJobWorkflows")
    }
    async fn get_replace_job_diff(
        &self,
        _: Request<GetReplaceJobDiffRequest>,
    ) -> Result<Response<GetReplaceJobDiffResponse>, Status> {
        unimplemented("GetReplaceJobDiff")
    }
    async fn refresh_job(
        &self,
        _: Request<RefreshJobRequest>,
    ) -> Result<Response<RefreshJobResponse>, Status> {
        unimplemented("RefreshJob")
    }
    async fn get_job_cache(
        &self,
        _: Request<GetJobCacheRequest>,
    ) -> Result<Response<GetJobCacheResponse>, Status> {
        unimplemented("GetJobCache")
    }
}

/// Serves `NoJobs` on an ephemeral loopback port and connects the generated
/// client to it over HTTP/2.
async fn serve() -> JobServiceClient<tonic::transport::Channel> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(JobServiceServer::new(NoJobs))
            .serve_with_incoming(incoming),
    );
    JobServiceClient::connect(format!("http://{addr}"))
        .await
        .unwrap()
}

#[tokio::test]
async fn a_unary_error_comes_back_with_its_code_and_message() {
    let mut client = serve().await;

    let status = client
        .create_job(CreateJobRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(
        status.message(),
        "CreateJob: not served by this test server"
    );

    // The request's fields reach the server: it names the id it was given.
    let status = client
        .get_job(GetJobRequest {
            job_id: Some(JobId {
                value: "5c2a1f4e-0000-4000-8000-000000000001".to_owned(),
            }),
            ..GetJobRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(
        status.message(),
        "job 5c2a1f4e-0000-4000-8000-000000000001 not found"
    );
}

#[tokio::test]
async fn a_server_stream_delivers_every_message_then_ends() {
    let mut client = serve().await;
    let mut stream = client
        .list_jobs(ListJobsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let mut names = Vec::new();
    while let Some(page) = stream.message().await.unwrap() {
        names.extend(page.jobs.into_iter().map(|j| j.name));
    }
    assert_eq!(names, ["web", "batch"]);
}
