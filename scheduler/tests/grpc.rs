//! The seeds' gRPC services on the scheduler's port, through real gRPC
//! clients over HTTP/2 on loopback: server reflection lists every seed
//! service, and every method the reference tables list answers (a method
//! not translated yet with UNIMPLEMENTED naming what it waits for, never a
//! bare 404 or an empty message; every Peloton JobService method is
//! translated).
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use drover_scheduler::api::grpc::seed_method_paths;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::job_service_client::JobServiceClient;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::GetJobRequest;
use drover_seed_api::peloton::api::v1alpha::peloton::JobId;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::*;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
use tonic_reflection::pb::v1::ServerReflectionRequest;

const NO_MASTER: &str = "http://127.0.0.1:1";

#[tokio::test]
async fn reflection_lists_the_seed_services_and_every_method_answers_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_scheduler(dir.path(), NO_MASTER, &[]);
    let url = format!("http://{}", s.address);

    // Reflection, as grpcurl's `list` asks it.
    let channel = tonic::transport::Endpoint::from_shared(url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut answers = reflection
        .server_reflection_info(tokio_stream_once(request))
        .await
        .unwrap()
        .into_inner();
    let answer = answers.message().await.unwrap().unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = answer.message_response else {
        panic!("not a service list: {answer:?}");
    };
    let listed: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for service in drover_seed_api::SERVICES {
        assert!(
            listed.iter().any(|l| l == service),
            "{service} in {listed:?}"
        );
    }

    // The generated Peloton client, as a Peloton user's would call.
    let mut jobs = JobServiceClient::connect(url).await.unwrap();
    let status = jobs
        .get_job(GetJobRequest {
            job_id: Some(JobId {
                value: "web".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound, "{status:?}");
    assert!(status.message().contains("web"), "{status:?}");

    // Every method the tables list, by its path: a gRPC status, with a
    // message unless OK, never a bare HTTP error; a method not served yet
    // is UNIMPLEMENTED.
    let h2: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let paths = seed_method_paths();
    assert_eq!(paths.len(), 48 + 20 + 13, "every seed method is routed");
    let unknown = "/peloton.api.v1alpha.job.stateless.svc.JobService/NoSuchMethod".to_owned();
    for path in paths.iter().chain([&unknown]) {
        let request = http::Request::post(format!("http://{}{path}", s.address))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            // One empty message: the 5-byte frame header alone.
            .body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0])))
            .unwrap();
        let response = h2.request(request).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        if path.ends_with("JobManagementService/ObserveJobs") {
            // An empty query observes every job: a stream that stays open
            // (no status yet), never UNIMPLEMENTED.
            assert!(response.headers().get("grpc-status").is_none(), "{path}");
            continue;
        }
        let mut headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap();
        if let Some(trailers) = body.trailers() {
            headers.extend(trailers.clone());
        }
        let code = headers
            .get("grpc-status")
            .map(|v| v.to_str().unwrap().to_owned());
        let served = (path.contains("stateless.svc.JobService/")
            || path.contains("pod.svc.PodService/")
            || path.contains("watch.svc.WatchService/")
            || path.contains("respool.ResourcePoolService/")
            || path.contains("com.netflix.titus.JobManagementService/")
            // Host maintenance is served; host pools answer UNIMPLEMENTED.
            || (path.contains("host.svc.HostService/") && !path.contains("HostPool"))
            // Kubeflow runs: every method (the report service is not).
            || path.contains("api.RunService/"))
            && *path != unknown;
        if !served {
            assert_eq!(code.as_deref(), Some("12"), "{path}: {headers:?}");
        }
        // Every Peloton JobService method is translated, the update
        // workflows included, and every ResourcePoolService method: none
        // answers UNIMPLEMENTED any more.
        if (path.contains("stateless.svc.JobService/")
            || path.contains("respool.ResourcePoolService/"))
            && *path != unknown
        {
            assert_ne!(code.as_deref(), Some("12"), "{path}: {headers:?}");
        }
        if path.contains("host.svc.HostService/") && !path.contains("HostPool") {
            assert_ne!(code.as_deref(), Some("12"), "{path}: {headers:?}");
        }
        let code = code.unwrap_or_else(|| panic!("{path}: no grpc-status: {headers:?}"));
        let message = headers
            .get("grpc-message")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        assert!(code == "0" || !message.is_empty(), "{path}: no message");
    }
    s.stop();
}

/// A one-message request stream.
fn tokio_stream_once<T: Send + 'static>(item: T) -> impl tonic::IntoStreamingRequest<Message = T> {
    tonic::codegen::tokio_stream::iter(vec![item])
}
