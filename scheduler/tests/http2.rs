//! The job API on HTTP/2 with prior knowledge (h2c), as gRPC clients speak
//! it, on the same port as HTTP/1.1: the protocol is chosen by the
//! connection's first bytes.
#![allow(clippy::unwrap_used)]

mod support;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::*;

const NO_MASTER: &str = "http://127.0.0.1:1";

#[tokio::test]
async fn the_api_answers_http2_and_http1_on_one_port() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &[]);
    let h2: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http();
    let request = http::Request::get(format!("http://{}/health/live", s.address))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = h2.request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    // An unknown route answers in the error shape over HTTP/2 too.
    let request = http::Request::get(format!("http://{}/api/v1/nope", s.address))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = h2.request(request).await.unwrap();
    assert_eq!(response.status(), 404);
    // And HTTP/1.1 still, on the same port.
    let (status, body) = get(&s.address, "/health/live").await;
    assert_eq!(
        (status, &body["status"]),
        (200, &serde_json::json!("ok")),
        "{body}"
    );
}
