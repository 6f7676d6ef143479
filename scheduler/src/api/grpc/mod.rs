//! The seeds' gRPC services (Peloton v1alpha, Titus v3, Kubeflow Pipelines
//! v1beta1, from `drover-seed-api`) on the job API's port. A gRPC call is
//! an HTTP/2 `POST /<package>.<Service>/<Method>` (`serve` takes HTTP/2 on
//! the same port), so the services are routes beside `/api/v1/...`:
//! - server reflection (`grpc.reflection.v1` and `v1alpha`, tonic's), so
//!   `grpcurl`-style tools list and describe every service;
//! - every method of the seed services the tables list: a method not
//!   translated yet answers UNIMPLEMENTED naming what it waits for
//!   ([`waiting`]), so none is silently missing, and each translation
//!   replaces its routes as it lands.

pub mod json_face;
pub mod kfp_artifact_read;
pub mod kfp_metrics_view;
pub mod kfp_rest;
pub mod kfp_rest_routes;
pub mod kfp_run_view;
pub mod kfp_runs;
pub mod peloton_hosts;
pub mod peloton_jobs;
pub mod peloton_patch;
pub mod peloton_pod_view;
pub mod peloton_pods;
pub mod peloton_pool_view;
pub mod peloton_pools;
pub mod peloton_secrets;
pub mod peloton_spec;
pub mod peloton_updates;
pub mod peloton_views;
pub mod peloton_watch;
pub mod peloton_watch_view;
pub mod peloton_workflow;
pub mod status;
pub mod titus_budget;
pub mod titus_jobs;
pub mod titus_spec;
pub mod titus_watch;
pub mod titus_watch_view;
pub mod waiting;
pub mod watch_stream;

use super::AppState;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use drover_seed_api::kfp::run_service_server::RunServiceServer;
use drover_seed_api::peloton::api::v1alpha::host::svc::host_service_server::HostServiceServer;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::job_service_server::JobServiceServer;
use drover_seed_api::peloton::api::v1alpha::pod::svc::pod_service_server::PodServiceServer;
use drover_seed_api::peloton::api::v1alpha::respool::resource_pool_service_server::ResourcePoolServiceServer;
use drover_seed_api::peloton::api::v1alpha::watch::svc::watch_service_server::WatchServiceServer;
use drover_seed_api::titus::job_management_service_server::JobManagementServiceServer;
use drover_seed_api::FILE_DESCRIPTOR_SET;
use prost_reflect::DescriptorPool;

/// The seed services' descriptors, decoded once.
pub fn seed_pool() -> &'static DescriptorPool {
    static POOL: std::sync::LazyLock<DescriptorPool> = std::sync::LazyLock::new(|| {
        // The descriptor set is compiled into drover-seed-api, and its own
        // tests decode it; failing here would be a build defect.
        DescriptorPool::decode(FILE_DESCRIPTOR_SET)
            .expect("drover-seed-api's descriptor set decodes")
    });
    &POOL
}

/// Every `/<service>/<method>` path of the seed services.
pub fn seed_method_paths() -> Vec<String> {
    let pool = seed_pool();
    drover_seed_api::SERVICES
        .iter()
        .filter_map(|name| pool.get_service_by_name(name))
        .flat_map(|service| {
            service
                .methods()
                .map(|m| format!("/{}/{}", service.full_name(), m.name()))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Peloton's stateless `JobService` ([`peloton_jobs`]).
const PELOTON_JOBS: &str = "peloton.api.v1alpha.job.stateless.svc.JobService";
/// Peloton's `PodService` ([`peloton_pods`]).
const PELOTON_PODS: &str = "peloton.api.v1alpha.pod.svc.PodService";
/// Peloton's `ResourcePoolService` ([`peloton_pools`]).
const PELOTON_POOLS: &str = "peloton.api.v1alpha.respool.ResourcePoolService";
/// Peloton's `WatchService` ([`peloton_watch`]).
const PELOTON_WATCH: &str = "peloton.api.v1alpha.watch.svc.WatchService";
/// Peloton's `HostService` ([`peloton_hosts`]).
const PELOTON_HOSTS: &str = "peloton.api.v1alpha.host.svc.HostService";
/// Kubeflow Pipelines v1beta1 `RunService` ([`kfp_runs`]).
const KFP_RUNS: &str = "api.RunService";
/// Titus' `JobManagementService` ([`titus_jobs`]).
const TITUS_JOBS: &str = "com.netflix.titus.JobManagementService";

/// Whether `path` is a method of `service`.
fn of_service(path: &str, service: &str) -> bool {
    path.strip_prefix('/')
        .and_then(|p| p.strip_prefix(service))
        .is_some_and(|p| p.starts_with('/'))
}

/// The gRPC routes: reflection, the translated services (each a tonic
/// server over the same [`AppState`] as the JSON API, answering every
/// method of its service itself), and every other seed method answering
/// UNIMPLEMENTED (naming what it waits for, [`waiting`]).
pub fn routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    let peloton_jobs = JobServiceServer::new(peloton_jobs::PelotonJobs {
        state: state.clone(),
    });
    let peloton_pods = PodServiceServer::new(peloton_pods::PodService {
        state: state.clone(),
    });
    let peloton_watch = WatchServiceServer::new(peloton_watch::PelotonWatch {
        state: state.clone(),
        watches: std::sync::Arc::default(),
    });
    let peloton_hosts = HostServiceServer::new(peloton_hosts::PelotonHosts {
        state: state.clone(),
    });
    let titus_jobs = JobManagementServiceServer::new(titus_jobs::TitusJobs {
        state: state.clone(),
    });
    let peloton_pools = ResourcePoolServiceServer::new(peloton_pools::PelotonPools {
        state: state.clone(),
    });
    let kfp_runs = RunServiceServer::new(kfp_runs::KfpRuns {
        state: state.clone(),
    });
    // Each method's own route (not `/{service}/{*method}`), so a method
    // the service lacks reaches `unknown_method` and its message, not
    // tonic's bare UNIMPLEMENTED.
    for path in seed_method_paths() {
        router = if of_service(&path, PELOTON_JOBS) {
            router.route_service(&path, peloton_jobs.clone())
        } else if of_service(&path, PELOTON_PODS) {
            router.route_service(&path, peloton_pods.clone())
        } else if of_service(&path, PELOTON_WATCH) {
            router.route_service(&path, peloton_watch.clone())
        } else if of_service(&path, PELOTON_POOLS) {
            router.route_service(&path, peloton_pools.clone())
        } else if of_service(&path, PELOTON_HOSTS) {
            router.route_service(&path, peloton_hosts.clone())
        } else if of_service(&path, KFP_RUNS) {
            router.route_service(&path, kfp_runs.clone())
        } else if of_service(&path, TITUS_JOBS) {
            router.route_service(&path, titus_jobs.clone())
        } else {
            router.route(&path, post(not_served_yet))
        };
    }
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
    };
    match (reflection().build_v1(), reflection().build_v1alpha()) {
        (Ok(v1), Ok(v1alpha)) => router
            .route_service("/grpc.reflection.v1.ServerReflection/{*method}", v1)
            .route_service(
                "/grpc.reflection.v1alpha.ServerReflection/{*method}",
                v1alpha,
            ),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "gRPC server reflection is not served");
            router
        }
    }
}

/// A seed method not translated yet.
async fn not_served_yet(uri: axum::http::Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    let message = format!(
        "{service}/{method} is not served yet: it waits for {}",
        waiting::waits_for(service, method)
    );
    tonic::Status::unimplemented(message)
        .into_http::<axum::body::Body>()
        .into_response()
}

/// Whether a request is a gRPC call (`application/grpc`, `+proto`, ...).
pub fn is_grpc(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The answer to a gRPC call of a method no service here has.
pub fn unknown_method(path: &str) -> Response {
    tonic::Status::unimplemented(format!("unknown gRPC method {path}"))
        .into_http::<axum::body::Body>()
        .into_response()
}
