//! Request latency for the metrics: every request is timed from its head
//! to its response's head, and counted in
//! `drover_http_request_duration_seconds` (JSON and the rest of HTTP, by
//! route template, method and status class) or
//! `drover_grpc_request_duration_seconds` (gRPC calls, by service, method
//! and status code).
//!
//! Labels are bounded: a route is its template (`/api/v1/jobs/{id}`, from
//! axum's [`MatchedPath`]), never the raw path, and `unmatched` for a
//! request no route took; a method the API does not serve is `OTHER`. A
//! gRPC call's path names a seed method (a route of its own, see
//! `grpc::routes`), or is `unmatched` too.
//!
//! The time ends at the response's head, not its last byte: a stream (a
//! watch) lasts as long as its client reads it, and its first answer is
//! what a caller waits for. A gRPC error is a head with `grpc-status`
//! (tonic answers a failed call "trailers-only"); a head without it is
//! `OK` (a status in the trailers of a stream that fails later is not
//! seen here).

use super::grpc::is_grpc;
use super::AppState;
use crate::metrics::{GrpcLabels, HttpLabels};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The label of a route no route took.
pub const UNMATCHED: &str = "unmatched";

/// Times the request (see the module doc).
pub async fn time(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let grpc = is_grpc(request.headers());
    let method = method_label(request.method());
    let response = next.run(request).await;
    let took = started.elapsed().as_secs_f64();
    let metrics = &state.metrics;
    if grpc {
        let (service, method) = match &route {
            Some(route) => split_grpc_path(route),
            None => (UNMATCHED.to_owned(), UNMATCHED.to_owned()),
        };
        let labels = GrpcLabels {
            service,
            method,
            code: grpc_code(&response),
        };
        metrics.grpc_latency.get_or_create(&labels).observe(took);
    } else {
        let labels = HttpLabels {
            method,
            route: route.unwrap_or_else(|| UNMATCHED.to_owned()),
            status: status_class(response.status()),
        };
        metrics.http_latency.get_or_create(&labels).observe(took);
    }
    response
}

/// A method as a label: the ones HTTP defines, else `OTHER`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// `2xx`, `4xx`...
pub fn status_class(status: StatusCode) -> &'static str {
    match status.as_u16() / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

/// `/pkg.Service/Method` (or a reflection route's
/// `/grpc.reflection.v1.ServerReflection/{*method}`) as (service, method).
pub fn split_grpc_path(route: &str) -> (String, String) {
    let path = route.trim_start_matches('/');
    match path.split_once('/') {
        Some((service, method)) => (service.to_owned(), method.to_owned()),
        None => (path.to_owned(), String::new()),
    }
}

/// The gRPC status a response's head carries, `OK` when it carries none.
fn grpc_code(response: &Response) -> &'static str {
    let code = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok());
    match code {
        None => "OK",
        Some(n) => code_name(tonic::Code::from_i32(n)),
    }
}

/// The canonical name of a gRPC status code.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_bounded() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").unwrap_or(Method::TRACE)),
            "OTHER"
        );
        assert_eq!(status_class(StatusCode::OK), "2xx");
        assert_eq!(status_class(StatusCode::NOT_FOUND), "4xx");
        assert_eq!(status_class(StatusCode::SERVICE_UNAVAILABLE), "5xx");
        assert_eq!(
            split_grpc_path("/peloton.api.v1alpha.job.stateless.svc.JobService/GetJob"),
            (
                "peloton.api.v1alpha.job.stateless.svc.JobService".to_owned(),
                "GetJob".to_owned()
            )
        );
        assert_eq!(code_name(tonic::Code::from_i32(5)), "NOT_FOUND");
    }
}
