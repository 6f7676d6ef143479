//! The HTTP server: accepts loopback (or any) TCP connections, serves each
//! with hyper's HTTP/1.1 server, and routes requests by path to the
//! scheduler endpoint or the control endpoints. Every route also answers
//! under the `/master` prefix (reference 1.1), and a trailing `/` or extra
//! segments after the scheduler path still reach it.
//!
//! No hyper timer is installed, so idle keep-alive connections are never
//! closed by the server: pymesos keeps one call connection open for its
//! whole life and dies if it is closed (research note, pymesos §4). Slow
//! clients are cut off by [`TimedIo`] instead, whose deadlines bound a
//! request's head and body only (`request_clock.rs`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::agent::{files, monitor};
use crate::control::{self, ControlContext};
use crate::ha::StandbyAnswer;
use crate::ids::AgentIndex;
use crate::master::call_log::CallLog;
use crate::master::driver::MasterHandle;
use crate::master::{executor_api, operator_api, scheduler_api};
use crate::request_clock::ReadTimeouts;
use crate::timed_io::TimedIo;

/// Every response body: a fixed buffer or an event stream.
pub type ResponseBody = BoxBody<Bytes, Infallible>;

/// What every request handler can reach.
#[derive(Clone)]
pub struct ServerContext {
    pub master: MasterHandle,
    pub control: ControlContext,
    /// Bodies larger than this are refused with 413.
    pub max_body_bytes: usize,
    /// The real agent whose own listener this is (none: the master's).
    pub scope: Option<AgentIndex>,
    /// The real agents' work directory, whose files `/files` serves.
    pub work_dir: Option<std::path::PathBuf>,
    /// The real agents' executors, for `/monitor/statistics`.
    pub processes: Option<crate::agent::processes::Processes>,
    /// How long a request's head and body may take to arrive.
    pub read_timeouts: ReadTimeouts,
    /// TLS on this listener (`--tls-cert`, `--tls-key`), if any.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Every scheduler call received, with its connection (`/sim/calls`).
    pub calls: CallLog,
    /// This instance's role in its master set (`--zk`); none: it leads.
    pub role: Option<tokio::sync::watch::Receiver<crate::ha::Role>>,
}

/// A plain-text response, as Mesos sends its errors.
pub fn text(status: StatusCode, body: &str) -> Response<ResponseBody> {
    let mut resp = Response::new(BoxBody::new(Full::new(Bytes::from(body.to_owned()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<ResponseBody> {
    let mut resp = Response::new(BoxBody::new(Full::new(Bytes::from(value.to_string()))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// Serves connections from `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, ctx: Arc<ServerContext>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let connection = ctx.calls.next_connection();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let tls = ctx.tls.clone();
            let timeouts = ctx.read_timeouts;
            let service = service_fn(move |req| {
                let ctx = ctx.clone();
                async move { Ok::<_, Infallible>(route(req, &ctx, connection, peer).await) }
            });
            // Pipelined requests (a framework's acknowledgements) are
            // answered in one write, not one each.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.pipeline_flush(true);
            let result = match tls {
                None => {
                    let io = TimedIo::new(stream, timeouts);
                    builder.serve_connection(TokioIo::new(io), service).await
                }
                Some(tls) => {
                    // The handshake is bounded like a request head; the
                    // read deadlines then apply to the decrypted requests.
                    let accept = tokio_rustls::TlsAcceptor::from(tls).accept(stream);
                    match tokio::time::timeout(timeouts.header, accept).await {
                        Ok(Ok(stream)) => {
                            let io = TimedIo::new(stream, timeouts);
                            builder.serve_connection(TokioIo::new(io), service).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, %peer, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
        });
    }
}

async fn route(
    req: Request<Incoming>,
    ctx: &ServerContext,
    connection: u64,
    peer: SocketAddr,
) -> Response<ResponseBody> {
    let full = req.uri().path().to_owned();
    let path = ["/master", "/slave(1)"]
        .iter()
        .find_map(|prefix| {
            full.strip_prefix(prefix)
                .filter(|p| p.is_empty() || p.starts_with('/'))
        })
        .unwrap_or(&full);
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    if ctx.scope.is_none() {
        if let Some(role) = &ctx.role {
            let answer = crate::ha::redirect_for(&role.borrow(), path);
            match answer {
                Some(StandbyAnswer::Redirect(location)) => {
                    let mut resp = text(StatusCode::TEMPORARY_REDIRECT, "");
                    if let Ok(v) = header::HeaderValue::from_str(&location) {
                        resp.headers_mut().insert(header::LOCATION, v);
                    }
                    return resp;
                }
                Some(StandbyAnswer::NoLeader) => {
                    return text(StatusCode::SERVICE_UNAVAILABLE, "No leader elected")
                }
                None => {}
            }
        }
    }
    if path == "/api/v1/scheduler" || path.starts_with("/api/v1/scheduler/") {
        let origin = scheduler_api::Origin {
            calls: &ctx.calls,
            connection,
            peer,
        };
        return scheduler_api::scheduler(req, &ctx.master, ctx.max_body_bytes, origin).await;
    }
    if path == "/api/v1/executor" || path.starts_with("/api/v1/executor/") {
        return executor_api::executor(
            req,
            &ctx.master,
            ctx.scope,
            ctx.max_body_bytes,
            ctx.processes.as_ref(),
        )
        .await;
    }
    if path == "/api/v1" {
        return operator_api::operator(req, &ctx.master, ctx.max_body_bytes).await;
    }
    if let Some(rest) = path.strip_prefix("/sim") {
        if rest.is_empty() || rest.starts_with('/') {
            return control::sim::handle(req, rest.to_owned(), ctx).await;
        }
    }
    match path {
        "/version" => control::info::version(&ctx.control),
        "/health" => text(StatusCode::OK, ""),
        "/redirect" => control::info::redirect(&ctx.control),
        "/state" => control::state::handle(&ctx.master, &ctx.control).await,
        "/metrics" => control::metrics::handle(&ctx.master).await,
        "/maintenance/schedule" => {
            operator_api::maintenance_schedule(req, &ctx.master, ctx.max_body_bytes).await
        }
        "/machine/down" => operator_api::machines(req, &ctx.master, ctx.max_body_bytes, true).await,
        "/machine/up" => operator_api::machines(req, &ctx.master, ctx.max_body_bytes, false).await,
        "/maintenance/status" => operator_api::status(&ctx.master).await,
        "/files/browse" | "/files/browse.json" => {
            files::browse(ctx.work_dir.as_deref(), req.uri().query())
        }
        "/files/read" | "/files/read.json" => {
            files::read(ctx.work_dir.as_deref(), req.uri().query())
        }
        "/files/download" | "/files/download.json" => {
            files::download(ctx.work_dir.as_deref(), req.uri().query())
        }
        "/monitor/statistics" | "/monitor/statistics.json" => {
            let running: Vec<_> = ctx
                .processes
                .as_ref()
                .map(|p| p.running())
                .unwrap_or_default()
                .into_iter()
                .filter(|r| ctx.scope.is_none_or(|a| a == r.spec.agent))
                .collect();
            monitor::statistics(&running)
        }
        p if p.starts_with("/redirect/") => text(StatusCode::NOT_FOUND, ""),
        _ => text(StatusCode::NOT_FOUND, ""),
    }
}
