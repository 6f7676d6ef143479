//! `POST /api/v1/executor` (and `/slave(1)/api/v1/executor`), the real
//! agents' executor endpoint: the HTTP checks a Mesos agent makes
//! (reference 4.2), then SUBSCRIBE becomes a 200 RecordIO stream and every
//! other call is handed to the master task (whose state machine keeps the
//! agents' executors), whose answer becomes 202 or the refusal's status.
//! `scope` is the agent whose own listener took the request (none on the
//! master's listener).

use bytes::Bytes;
use drover_proto::v1::executor::{call, Call};
use drover_proto::MediaType;
use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::driver::MasterHandle;
use crate::agent::executor_call::{kind, ExecutorCallError};
use crate::call_request::{read_call, CallRequest};
use crate::ids::AgentIndex;
use crate::server::{text, ResponseBody};

/// Handles one request to the executor endpoint.
pub async fn executor(
    req: Request<Incoming>,
    master: &MasterHandle,
    scope: Option<AgentIndex>,
    max_body_bytes: usize,
    processes: Option<&crate::agent::processes::Processes>,
) -> Response<ResponseBody> {
    let CallRequest { headers, call } = match read_call::<Call>(req, max_body_bytes).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    if let Some(processes) = processes {
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if !processes.authorizes(
            &call.framework_id.value,
            &call.executor_id.value,
            authorization,
        ) {
            let mut resp = text(
                StatusCode::UNAUTHORIZED,
                "executor authentication required: send 'Authorization: Bearer \
                 $MESOS_EXECUTOR_AUTHENTICATION_TOKEN'",
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"mesos-agent-executor\""),
            );
            return resp;
        }
    }
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
