//! HTTP to the binaries under test: one request on a fresh loopback
//! connection, read whole ([`request`]) or left streaming ([`send`], for
//! subscriptions), and the JSON exchanges the job API and agent-sim's
//! `/sim` and `/state` take ([`call`], [`get`], [`post`]).
//!
//! Every exchange is bounded by [`REQUEST_LIMIT`]: a test fails, never
//! hangs, on a server that stopped answering.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// The longest a request (until its response head) or the reading of a
/// whole body may take.
pub const REQUEST_LIMIT: Duration = Duration::from_secs(30);

/// A response read whole.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

/// Sends one request to `address` (`host:port`) on a fresh connection and
/// returns the response with its body unread.
pub async fn send(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> http::Response<Incoming> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .unwrap_or_else(|e| panic!("connecting to {address}: {e}"));
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap_or_else(|e| panic!("HTTP handshake with {address}: {e}"));
        tokio::spawn(connection);
        let mut request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", address);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(body))
            .unwrap_or_else(|e| panic!("building {method} {path}: {e}"));
        sender
            .send_request(request)
            .await
            .unwrap_or_else(|e| panic!("{method} http://{address}{path}: {e}"))
    };
    tokio::time::timeout(REQUEST_LIMIT, exchange)
        .await
        .unwrap_or_else(|_| {
            panic!("{method} http://{address}{path}: no answer in {REQUEST_LIMIT:?}")
        })
}

/// One request, its response read whole.
pub async fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let response = send(address, method, path, headers, body).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(REQUEST_LIMIT, response.into_body().collect())
        .await
        .unwrap_or_else(|_| {
            panic!("{method} http://{address}{path}: body not read in {REQUEST_LIMIT:?}")
        })
        .unwrap_or_else(|e| panic!("{method} http://{address}{path}: reading the body: {e}"))
        .to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

/// One JSON exchange: `(status, body)`, the body as JSON, or as a JSON
/// string of its text when it is not JSON (a Prometheus `/metrics` page).
pub async fn call(address: &str, method: &str, path: &str, body: Option<Vec<u8>>) -> (u16, Value) {
    let reply = request(
        address,
        method,
        path,
        &[("Content-Type", "application/json")],
        Bytes::from(body.unwrap_or_default()),
    )
    .await;
    let json = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&reply.body).into_owned()));
    (reply.status, json)
}

/// GET, answered as JSON (see [`call`]).
pub async fn get(address: &str, path: &str) -> (u16, Value) {
    call(address, "GET", path, None).await
}

/// GET of a JSON answer from a server that may be changing hands or
/// exiting (a replica during a leader handover): a refused, cut or
/// unanswered exchange is an `Err` saying which, not a failed test.
pub async fn try_get(address: &str, path: &str) -> Result<(u16, Value), String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| format!("connecting: {e}"))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        tokio::spawn(connection);
        let request = http::Request::get(path)
            .header("Host", address)
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("reading the body: {e}"))?
            .to_bytes();
        Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    };
    tokio::time::timeout(REQUEST_LIMIT, exchange)
        .await
        .unwrap_or_else(|_| Err(format!("no answer in {REQUEST_LIMIT:?}")))
        .map_err(|e| format!("GET http://{address}{path}: {e}"))
}

/// POST of a JSON body, answered as JSON (see [`call`]).
pub async fn post(address: &str, path: &str, body: &Value) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).expect("a serde_json::Value always serializes");
    call(address, "POST", path, Some(bytes)).await
}
