//! `POST /api/v1/scheduler`: the HTTP checks in the order the Mesos master
//! makes them (reference 3.2, rows 5-12), then SUBSCRIBE becomes a 200
//! streaming response and every other call is handed to the master task,
//! whose answer becomes 202, 200 or the error status of rows 13-21. Every
//! decoded call is first recorded in the [`CallLog`] with its connection.

use bytes::Bytes;
use drover_proto::v1::scheduler::{call::Type, Call};
use drover_proto::MediaType;
use http::{header, HeaderMap, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use std::net::SocketAddr;

use super::call_log::CallLog;
use super::driver::MasterHandle;
use super::validate;
use crate::call_request::{read_call, CallRequest};
use crate::server::{text, ResponseBody};

/// The name of the stream id header.
pub const STREAM_ID: &str = "Mesos-Stream-Id";

/// Where a request came from: its connection, for the call log.
pub struct Origin<'a> {
    /// The log the call is recorded in.
    pub calls: &'a CallLog,
    /// The HTTP connection's number.
    pub connection: u64,
    /// The connection's remote address.
    pub peer: SocketAddr,
}

/// Handles one request to the scheduler endpoint.
pub async fn scheduler(
    req: Request<Incoming>,
    master: &MasterHandle,
    max_body_bytes: usize,
    origin: Origin<'_>,
) -> Response<ResponseBody> {
    let CallRequest { headers, call } = match read_call::<Call>(req, max_body_bytes).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let stream_header = headers
        .get(STREAM_ID)
        .map(|v| String::from_utf8_lossy(v.as_bytes()));
    origin.calls.record(
        origin.connection,
        origin.peer,
        stream_header.as_deref(),
        &call,
    );
    let ty = match validate::call(&call) {
        Ok(t) => t,
        Err(why) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("Failed to validate scheduler::Call: {why}"),
            )
        }
    };
    if ty == Type::Subscribe {
        return subscribe(call, &headers, master).await;
    }
    let stream_id = stream_header.map(std::borrow::Cow::into_owned);
    match master.call(call, stream_id).await {
        Ok(Ok(super::CallOk::Accepted)) => empty(StatusCode::ACCEPTED),
        Ok(Ok(super::CallOk::Applied)) => empty(StatusCode::OK),
        Ok(Err(e)) => text(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            &e.to_string(),
        ),
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

async fn subscribe(
    call: Call,
    headers: &HeaderMap,
    master: &MasterHandle,
) -> Response<ResponseBody> {
    let accept = headers
        .get(header::ACCEPT)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let events = match MediaType::negotiate(accept) {
        Ok(m) => m,
        Err(e) => return text(StatusCode::NOT_ACCEPTABLE, &e.to_string()),
    };
    if headers.contains_key(STREAM_ID) {
        return text(
            StatusCode::BAD_REQUEST,
            "Subscribe calls should not include the 'Mesos-Stream-Id' header",
        );
    }
    let Some(subscribe) = call.subscribe else {
        return text(
            StatusCode::BAD_REQUEST,
            "Expecting 'subscribe' to be present",
        );
    };
    match master.subscribe(*subscribe, events).await {
        Ok((stream_id, body)) => {
            let mut resp = Response::new(ResponseBody::new(body));
            *resp.status_mut() = StatusCode::OK;
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(events.as_str()),
            );
            if let Ok(v) = header::HeaderValue::from_str(&stream_id) {
                h.insert(STREAM_ID, v);
            }
            resp
        }
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    }
}

fn empty(status: StatusCode) -> Response<ResponseBody> {
    let mut resp = Response::new(ResponseBody::new(Full::new(Bytes::new())));
    *resp.status_mut() = status;
    resp
}
