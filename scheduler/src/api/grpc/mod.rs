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

pub mod peloton_jobs;
pub mod peloton_pods;
pub mod peloton_spec;
pub mod peloton_views;
pub mod status;
pub mod waiting;

use super::AppState;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::job_service_server::JobServiceServer;
use drover_seed_api::FILE_DESCRIPTOR_SET;
use prost_reflect::DescriptorPool;

/// Every `/<service>/<method>` path of the seed services.
pub fn seed_method_paths() -> Vec<String> {
    // The descriptor set is compiled into drover-seed-api, and its own
    // tests decode it; failing here would be a build defect.
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET)
        .expect("drover-seed-api's descriptor set decodes");
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

/// The seed services translated here, each a tonic server over the same
/// [`AppState`] as the JSON API; each answers every method of its service
/// itself (a method waiting for a later capability with
/// [`status::waiting`]).
const SERVED: &[&str] = &[PELOTON_JOBS];

/// Peloton's stateless `JobService` ([`peloton_jobs`]).
const PELOTON_JOBS: &str = "peloton.api.v1alpha.job.stateless.svc.JobService";

/// The gRPC routes: reflection, the translated services, and every other
/// seed method answering UNIMPLEMENTED.
pub fn routes(state: &AppState) -> Router<AppState> {
    let mut router = Router::new();
    let peloton_jobs = JobServiceServer::new(peloton_jobs::PelotonJobs {
        state: state.clone(),
    });
    for path in seed_method_paths() {
        // Each method's own route (not `/{service}/{*method}`), so a
        // method the service lacks reaches `unknown_method` and its
        // message, not tonic's bare UNIMPLEMENTED.
        if path.starts_with(&format!("/{PELOTON_JOBS}/")) {
            router = router.route_service(&path, peloton_jobs.clone());
            continue;
        }
        let served = SERVED
            .iter()
            .any(|service| path.starts_with(&format!("/{service}/")));
        if !served {
            router = router.route(&path, post(not_served_yet));
        }
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
