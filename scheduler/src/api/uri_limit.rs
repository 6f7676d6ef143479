//! The longest request URI the API takes. hyper answers a URI over its own
//! limit (65,534 bytes) with 414 and an empty body before any route sees
//! it; this layer, outermost, answers a shorter limit with 414 in the
//! API's error shape on every route and method, so that no client meets
//! that empty answer below 64 KiB. (Past 65,534 bytes hyper still answers
//! first, with its empty 414: it cannot be reached from a layer.)

use super::error::{ApiError, Code};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;

/// Refuses a request whose path and query are longer than `max_bytes`.
pub async fn limit_uri(State(max_bytes): State<usize>, request: Request, next: Next) -> Response {
    let length = request
        .uri()
        .path_and_query()
        .map_or(0, |p| p.as_str().len());
    if length <= max_bytes {
        return next.run(request).await;
    }
    ApiError {
        code: Code::ResourceExhausted,
        message: format!("uri: the request URI is {length} bytes, longer than {max_bytes} bytes"),
    }
    .into_response_with(StatusCode::URI_TOO_LONG)
}
