//! `POST /api/v1/executor` (and `/slave(1)/api/v1/executor`): the HTTP
//! checks a Mesos agent makes (reference 4.2), then SUBSCRIBE becomes a 200
//! RecordIO stream and every other call is handed to the master task,
//! whose answer becomes 202 or the refusal's status. `scope` is the agent
//! whose own listener took the request (none on the master's listener).

use bytes::Bytes;
use drover_proto::v1::executor::{call, Call};
use drover_proto::{MediaError, MediaType};
use http::{header, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;

use super::executor_call::{kind, ExecutorCallError};
use crate::master::driver::MasterHandle;
use crate::server::{text, ResponseBody};

/// Handles one request to the executor endpoint.
pub async fn executor(
    req: Request<Incoming>,
    master: &MasterHandle,
    scope: Option<usize>,
    max_body_bytes: usize,
) -> Response<ResponseBody> {
    if req.method() != Method::POST {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!(
                "405 Method Not Allowed. Expecting one of {{ 'POST' }}, but received '{}'.",
                req.method()
            ),
        );
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return resp;
    }
    let headers = req.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let media = match MediaType::from_content_type(content_type) {
        Ok(m) => m,
        Err(e @ MediaError::MissingContentType) => {
            return text(StatusCode::BAD_REQUEST, &e.to_string())
        }
        Err(e) => return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e.to_string()),
    };
    let body = match Limited::new(req.into_body(), max_body_bytes)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "Request body is larger than the simulator's limit of {max_body_bytes} bytes"
                ),
            )
        }
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to read body: {e}"),
            )
        }
    };
    let call: Call = match media.decode(&body) {
        Ok(c) => c,
        Err(e) => return text(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    if kind(&call) == Ok(call::Type::Subscribe) {
        let accept = headers
            .get(header::ACCEPT)
            .map(|v| v.to_str().unwrap_or("\u{fffd}"));
        let events = match MediaType::negotiate(accept) {
            Ok(m) => m,
            Err(e) => return text(StatusCode::NOT_ACCEPTABLE, &e.to_string()),
        };
        return match master.executor_subscribe(scope, call, events).await {
            Ok(Ok(stream)) => {
                let mut resp = Response::new(ResponseBody::new(stream));
                resp.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static(events.as_str()),
                );
                resp
            }
            Ok(Err(e)) => refusal(&e),
            Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
        };
    }
    match master.executor_call(scope, call).await {
        Ok(Ok(())) => {
            let mut resp = Response::new(ResponseBody::new(Full::new(Bytes::new())));
            *resp.status_mut() = StatusCode::ACCEPTED;
            resp
        }
        Ok(Err(e)) => refusal(&e),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn refusal(e: &ExecutorCallError) -> Response<ResponseBody> {
    text(
        StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
        &e.to_string(),
    )
}
