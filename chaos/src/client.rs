//! HTTP to the processes under chaos: one request on a fresh loopback
//! connection, bounded in time, and every failure an `Err` (a replica or a
//! master may be dead, paused or changing hands at any moment; the chaos
//! run goes on and polls again).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::Value;

/// Why an exchange gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Connecting, the handshake, the request or the body failed.
    #[error("{method} http://{address}{path}: {reason}")]
    Exchange {
        method: &'static str,
        address: String,
        path: String,
        reason: String,
    },
    /// No whole answer within the limit (a paused process).
    #[error("{method} http://{address}{path}: no answer in {limit:?}")]
    Timeout {
        method: &'static str,
        address: String,
        path: String,
        limit: Duration,
    },
}

/// An answer: status, `Location` (for 307s), body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub location: Option<String>,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One exchange with `address` (`host:port`), bounded by `limit`.
pub async fn exchange(
    method: &'static str,
    address: &str,
    path: &str,
    body: Option<&Value>,
    limit: Duration,
) -> Result<Answer, ClientError> {
    let fail = |reason: String| ClientError::Exchange {
        method,
        address: address.to_owned(),
        path: path.to_owned(),
        reason,
    };
    let work = async {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .map_err(|e| fail(format!("connecting: {e}")))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| fail(format!("handshake: {e}")))?;
        tokio::spawn(connection);
        let bytes = match body {
            Some(v) => Bytes::from(serde_json::to_vec(v).map_err(|e| fail(e.to_string()))?),
            None => Bytes::new(),
        };
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("Host", address)
            .header("Content-Type", "application/json")
            .body(Full::new(bytes))
            .map_err(|e| fail(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(format!("reading the body: {e}")))?
            .to_bytes();
        Ok(Answer {
            status,
            location,
            body,
        })
    };
    tokio::time::timeout(limit, work).await.unwrap_or_else(|_| {
        Err(ClientError::Timeout {
            method,
            address: address.to_owned(),
            path: path.to_owned(),
            limit,
        })
    })
}

/// GET, bounded by `limit`.
pub async fn get(address: &str, path: &str, limit: Duration) -> Result<Answer, ClientError> {
    exchange("GET", address, path, None, limit).await
}

/// POST of a JSON body, bounded by `limit`.
pub async fn post(
    address: &str,
    path: &str,
    body: &Value,
    limit: Duration,
) -> Result<Answer, ClientError> {
    exchange("POST", address, path, Some(body), limit).await
}
