//! The HTTP job API (JSON, axum). One file per resource; each handler
//! decodes the request, calls the model, encodes the reply, and holds no
//! logic of its own. Job-level reads (a job, the list, queries) read the
//! jobs as the engine last stored them ([`JobBoard`]); pod-level reads go
//! to a reader handle of the store; writes go to the engine's runner (the
//! store's one writer) and are answered once committed and published.
//!
//! - [`jobs`]: `/api/v1/jobs...` create, get, list, pods, stop, start,
//!   delete; `{id}` is a job's id or name ([`AppState::find_job`]).
//! - [`job_budget`]: a job's disruption budget as the job view shows it.
//! - [`updates`]: changing a running job: update (replace, patch) with
//!   its diff, rollback, pause, resume, abort, scale; the updates and
//!   their events.
//! - [`pods`]: `/api/v1/pods/{pod_name}` and its events.
//! - [`pod_ops`]: stop, start, restart a pod; restart a job's pods.
//! - [`logs`]: a pod's sandbox stdout/stderr through its agent's files API.
//! - [`agents`]: the cluster's agents, from the leading master.
//! - [`pools`]: `/api/v1/pools...` resource pools (list, create, get,
//!   update, delete, lookup by path).
//! - [`hosts`]: hosts and their maintenance: list, drain, complete.
//! - [`ui`]: the web UI's embedded assets at `/ui/`.
//! - [`query`]: QueryJobs and QueryPods with filters and pagination.
//! - [`health`]: `/metrics`, `/health`, `/health/live` and `/health/ready`.
//! - [`grpc`]: the seeds' gRPC services and server reflection, on the
//!   same port (HTTP/2), and the Kubeflow Pipelines v1beta1 REST face of
//!   its services (`/apis/v1beta1/...`, [`grpc::kfp_rest`]).
//! - [`kfp`]: what the kfp SDK calls beside the run service, and the
//!   rules of listing runs.
//! - [`store`]: `/api/v1/store`, which store and framework this is.
//! - [`openapi`]: `/api/v1/openapi.json`, the JSON API's OpenAPI document.
//! - [`body`]: reading a JSON body with a size limit, errors naming the field.
//! - [`uri_limit`]: 414 in the error shape for a URI over `max_uri_bytes`.
//! - [`serve`]: the connections: a cap, and header and body read timeouts.
//! - [`tls`]: a verified client certificate's name in each request.
//! - [`timing`]: each request's latency, by route template, for `/metrics`.
//! - [`shed`]: writes past the runner's queue refused at once (503).
//! - [`views`]: the seed-shaped JSON of jobs and pods.
//! - [`error`]: `{"code", "message"}`.
//! - [`authn`]: who each request comes from (every route but the probes,
//!   the UI's files and the login), and the UI's login.
//! - [`audit`]: one line for every write, whoever asked.

pub mod agents;
pub mod audit;
pub mod authn;
pub mod body;
pub mod error;
pub mod grpc;
pub mod health;
pub mod hosts;
pub mod job_budget;
pub mod jobs;
pub mod kfp;
pub mod logs;
pub mod openapi;
pub mod pod_ops;
pub mod pods;
pub mod pools;
pub mod query;
pub mod rfc3339;
pub mod serve;
pub mod shed;
pub mod store;
pub mod timing;
pub mod tls;
pub mod ui;
pub mod updates;
pub mod uri_limit;
pub mod views;
pub mod watch;

use crate::mesos::agent_files::MasterAccess;
use crate::metrics::Metrics;
use crate::model::ids::JobId;
use crate::model::job::JobView;
use crate::model::task_user::TaskUserPolicy;
use crate::model::validate::JobLimits;
use crate::runner::board::JobBoard;
use crate::runner::watch_log::WatchLog;
use crate::runner::ApiCommand;
use crate::store::StoreRead;
use axum::routing::{get, post};
use axum::Router;
use error::ApiError;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// API settings.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body. Default 1 MiB: a job spec with thousands of
    /// instance overrides fits; anything bigger is a mistake or an attack.
    pub max_body_bytes: usize,
    /// Job size bounds.
    pub limits: JobLimits,
    /// Who tasks run as; a job that would run as root is refused here
    /// unless root tasks are allowed.
    pub task_users: TaskUserPolicy,
    /// Largest page of a list. Default 500.
    pub max_page: u32,
    /// The API is served over TLS (the UI's cookie is then `Secure`).
    pub tls: bool,
    /// Longest request URI (path and query). Default 8 KiB, the limit most
    /// HTTP servers and proxies keep; longer ones get 414.
    pub max_uri_bytes: usize,
    /// Whether Kubeflow steps run in their images or on hosts (the
    /// scheduler's `--kfp-images`): a run's status says when images were
    /// not used.
    pub kfp_images: crate::model::pipeline::ImageUse,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: 1 << 20,
            limits: JobLimits::default(),
            task_users: TaskUserPolicy::default(),
            max_page: 500,
            max_uri_bytes: 8 * 1024,
            tls: false,
            kfp_images: crate::model::pipeline::ImageUse::Image,
        }
    }
}

/// How long a read made while the scheduler loads its store waits for the
/// load before it is answered UNAVAILABLE. The API listens at once (health
/// and metrics answer during the load), and a client that lists the jobs
/// right after a restart is answered once they are known rather than told
/// to retry: loading 100,000 runs takes about 0.2 s.
pub const LOAD_WAIT: Duration = Duration::from_secs(10);

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The jobs as the engine last stored them (job-level reads).
    pub board: Arc<JobBoard>,
    /// Every committed change, for watchers.
    pub watch: Arc<WatchLog>,
    /// Cancelled when the scheduler shuts down: long streams (watches)
    /// end then, rather than hold the shutdown to its grace period.
    pub shutdown: tokio_util::sync::CancellationToken,
    /// A read-only handle of the store (pods, runs, events).
    pub reader: Arc<Mutex<Box<dyn StoreRead>>>,
    /// The runner's command queue; its capacity is the most writes that
    /// may wait (`--max-pending-requests`), more are shed ([`shed`]).
    pub runner: mpsc::Sender<ApiCommand>,
    /// Writes refused because that queue was full, for readiness.
    pub shed: Arc<shed::Shedder>,
    /// Metrics for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The masters, for what only they and their agents know (a pod's
    /// sandbox).
    pub masters: Arc<MasterAccess>,
    /// Who requests come from.
    pub auth: Arc<crate::auth::Authenticator>,
    /// Where the audit trail goes.
    pub audit: Arc<audit::AuditLog>,
    /// Settings.
    pub config: ApiConfig,
}

impl AppState {
    /// The job a route's `{id}` points at, by id or by name (the id wins;
    /// a name several jobs share is INVALID_ARGUMENT listing their ids; see
    /// [`crate::model::job_ref`]), as last stored. While the scheduler is
    /// still loading its store, waits for it up to [`LOAD_WAIT`], then
    /// UNAVAILABLE.
    pub async fn find_job(&self, reference: &str) -> Result<Arc<JobView>, ApiError> {
        if let Some(view) = self.board.get(&JobId(reference.to_owned())) {
            return Ok(view);
        }
        if !self.board.wait_ready(LOAD_WAIT).await {
            return Err(ApiError::starting());
        }
        Ok(self.board.find(reference)?)
    }

    /// The id of the job a route's `{id}` points at (see [`Self::find_job`]).
    pub async fn find_job_id(&self, reference: &str) -> Result<JobId, ApiError> {
        Ok(self.find_job(reference).await?.job.job_id.clone())
    }

    /// Every job as last stored, in creation order. While the scheduler is
    /// still loading its store, waits for it up to [`LOAD_WAIT`], then
    /// UNAVAILABLE.
    pub async fn all_published(&self) -> Result<Vec<Arc<JobView>>, ApiError> {
        if !self.board.wait_ready(LOAD_WAIT).await {
            return Err(ApiError::starting());
        }
        Ok(self.board.all())
    }

    /// Runs a read against the store off the async workers.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn StoreRead) -> Result<T, crate::store::StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let reader = self.reader.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let guard = reader.lock().map_err(|_| ApiError {
                code: error::Code::Internal,
                message: "store reader poisoned".into(),
            })?;
            f(guard.as_ref()).map_err(ApiError::from)
        })
        .await;
        joined.unwrap_or_else(|e| {
            Err(ApiError {
                code: error::Code::Internal,
                message: format!("read task failed: {e}"),
            })
        })
    }
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    let max_uri_bytes = state.config.max_uri_bytes;
    // The Kubeflow v1beta1 REST paths call the same seed routes a gRPC
    // client reaches (after authentication, which runs around them).
    let seed = grpc::routes(&state).with_state(state.clone());
    let max_body_bytes = state.config.max_body_bytes;
    let (listed, got, created) = (state.clone(), state.clone(), state.clone());
    // Every verb, so a known path asked with another one is answered in
    // Kubeflow's shape (UNIMPLEMENTED, as grpc-gateway answers it).
    let rest = move |request: axum::extract::Request| {
        grpc::kfp_rest::transcode(seed.clone(), max_body_bytes, request)
    };
    Router::new()
        .route("/api/v1/jobs", post(jobs::create).get(jobs::list))
        // A literal segment wins over `{id}` for every method: GET and
        // DELETE of this path are the job whose id or name is `query`.
        .route(
            "/api/v1/jobs/query",
            post(query::query_jobs)
                .get(|state| jobs::get(state, axum::extract::Path("query".to_owned())))
                .delete(|state, caller, query| {
                    jobs::delete(
                        state,
                        caller,
                        axum::extract::Path("query".to_owned()),
                        query,
                    )
                }),
        )
        .route("/api/v1/jobs/{id}", get(jobs::get).delete(jobs::delete))
        .route("/api/v1/jobs/{id}/pods/query", post(query::query_pods))
        .route("/api/v1/jobs/{id}/restart", post(pod_ops::restart_job))
        .route("/api/v1/jobs/{id}/pods", get(jobs::pods))
        .route("/api/v1/jobs/{id}/stop", post(jobs::stop))
        .route("/api/v1/jobs/{id}/update", post(updates::replace))
        .route("/api/v1/jobs/{id}/update/diff", post(updates::diff))
        .route("/api/v1/jobs/{id}/patch", post(updates::patch))
        .route("/api/v1/jobs/{id}/rollback", post(updates::rollback))
        .route("/api/v1/jobs/{id}/scale", post(updates::scale))
        .route("/api/v1/jobs/{id}/updates", get(updates::list))
        .route("/api/v1/jobs/{id}/workflow/pause", post(updates::pause))
        .route("/api/v1/jobs/{id}/workflow/resume", post(updates::resume))
        .route("/api/v1/jobs/{id}/workflow/abort", post(updates::abort))
        .route("/api/v1/jobs/{id}/workflow/events", get(updates::events))
        .route("/api/v1/jobs/{id}/start", post(jobs::start))
        .route("/api/v1/pods/{pod_name}", get(pods::get))
        .route("/api/v1/pods/{pod_name}/events", get(pods::events))
        .route("/api/v1/pods/{pod_name}/stop", post(pod_ops::stop))
        .route("/api/v1/pods/{pod_name}/start", post(pod_ops::start))
        .route("/api/v1/pods/{pod_name}/restart", post(pod_ops::restart))
        .route("/api/v1/pods/{pod_name}/logs/{stream}", get(logs::read))
        .route("/api/v1/agents", get(agents::list))
        .route("/api/v1/pools", get(pools::list).post(pools::create))
        // A literal segment wins over `{id}`: `lookup` is no pool's id.
        .route("/api/v1/pools/lookup", get(pools::lookup))
        .route(
            "/api/v1/pools/{id}",
            get(pools::get).put(pools::update).delete(pools::delete),
        )
        .route("/api/v1/hosts", get(hosts::list))
        .route("/api/v1/hosts/drain", post(hosts::drain))
        .route("/api/v1/hosts/complete", post(hosts::complete))
        .route("/api/v1/store", get(store::get))
        .route("/api/v1/login", post(authn::login))
        .route("/api/v1/logout", post(authn::logout))
        .route("/api/v1/whoami", get(authn::whoami))
        .route("/api/v1/openapi.json", get(openapi::serve))
        .route("/api/v1/watch", get(watch::sse::watch))
        .route("/", get(ui::redirect))
        .route("/ui", get(ui::redirect))
        .route("/ui/", get(ui::index))
        .route("/ui/{*path}", get(ui::asset))
        .route("/metrics", get(health::metrics))
        .route("/health", get(health::health))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        // Kubeflow's own paths beside the run service (README: "Kubeflow
        // Pipelines"); more specific than the wildcard, so they win.
        .route(
            "/apis/v1beta1/healthz",
            get(|| async { kfp::experiments::healthz() }),
        )
        .route(
            "/apis/v1beta1/experiments",
            get(
                move |axum::Extension(caller): axum::Extension<authn::Caller>, query| async move {
                    kfp::experiments::list_route(&listed, &caller, query).await
                },
            )
            .post(
                move |axum::Extension(caller): axum::Extension<authn::Caller>,
                      body: axum::body::Bytes| async move {
                    kfp::experiments::create_route(&created, &caller, &body).await
                },
            ),
        )
        .route(
            "/apis/v1beta1/experiments/{id}",
            get(
                move |axum::Extension(caller): axum::Extension<authn::Caller>, id| async move {
                    kfp::experiments::get_route(&got, &caller, id).await
                },
            ),
        )
        .route(
            "/apis/v1beta1/{*rest}",
            get(rest.clone())
                .post(rest.clone())
                .delete(rest.clone())
                .put(rest.clone())
                .patch(rest),
        )
        .merge(grpc::routes(&state))
        .fallback(not_found)
        // A JSON call of a seed method becomes the gRPC call of it.
        .layer(axum::middleware::from_fn_with_state(
            state.config.max_body_bytes,
            grpc::json_face::transcode,
        ))
        // Who it is, before either face's handler runs.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authn::authenticate,
        ))
        .layer(axum::middleware::from_fn(shape_method_not_allowed))
        // Outermost: a URI too long is refused before any route or method
        // is looked at.
        .layer(axum::middleware::from_fn_with_state(
            max_uri_bytes,
            uri_limit::limit_uri,
        ))
        // Around everything, so a request's time is the whole of it.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            timing::time,
        ))
        .with_state(state)
}

async fn not_found(
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if grpc::is_grpc(&headers) {
        return grpc::unknown_method(uri.path());
    }
    axum::response::IntoResponse::into_response(ApiError::not_found(format!(
        "route {}",
        uri.path()
    )))
}

/// axum answers a known route asked with another method 405 with an
/// empty body (and adds `Allow` on the way out); the body becomes the API's
/// error shape, and the headers stay.
async fn shape_method_not_allowed(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let asked = format!("{} {}", request.method(), request.uri().path());
    let response = next.run(request).await;
    if response.status() != axum::http::StatusCode::METHOD_NOT_ALLOWED {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    let error = ApiError {
        code: error::Code::Unimplemented,
        message: format!("{asked}: the route does not take this method (see Allow)"),
    };
    let shaped = axum::response::IntoResponse::into_response(error);
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.extend(shaped.headers().clone());
    axum::response::Response::from_parts(parts, shaped.into_body())
}
