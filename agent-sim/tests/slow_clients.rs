//! Slow clients cannot hold the simulator: a request head or body sent a
//! byte at a time is cut off within its read timeout; but a subscription
//! stream, and an idle keep-alive connection between calls (pymesos keeps
//! one for its whole life), are never cut.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use drover_proto::v1::scheduler::{call, event};
use drover_proto::MediaType;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUTS: &[&str] = &[
    "--header-read-timeout",
    "1secs",
    "--body-read-timeout",
    "1secs",
    "--allocation-interval",
    "100ms",
    "--heartbeat-interval",
    "100ms",
];

/// How often a slow client sends its next byte, and when it gives up.
const GAP: Duration = Duration::from_millis(50);
const GIVE_UP: Duration = Duration::from_secs(6);

#[tokio::test]
async fn a_request_head_sent_a_byte_at_a_time_is_cut_off_within_the_header_read_timeout() {
    let sim = Sim::start(TIMEOUTS);
    let slow = tokio::spawn(async move {
        let head = b"GET /state HTTP/1.1\r\nHost: x\r\n";
        trickle(
            &sim.addr.to_string(),
            head,
            b"X-Slow: yes\r\n",
            GAP,
            GIVE_UP,
        )
        .await
    });
    // Meanwhile a normal client is served.
    assert_eq!(sim.get("/health").await.0, 200);
    let slow = slow.await.unwrap();
    let closed = slow.closed_after.expect("the slow connection is closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
}

#[tokio::test]
async fn a_call_body_sent_a_byte_at_a_time_is_cut_off_within_the_body_read_timeout() {
    let sim = Sim::start(TIMEOUTS);
    let head = b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    let slow = trickle(&sim.addr.to_string(), head, b" ", GAP, GIVE_UP).await;
    let closed = slow.closed_after.expect("the slow connection is closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    assert!(slow.answer.starts_with("HTTP/1.1 408"), "{:?}", slow.answer);
    assert_eq!(sim.get("/health").await.0, 200);
}

#[tokio::test]
async fn a_chunked_call_body_sent_a_byte_at_a_time_is_cut_off_too() {
    let sim = Sim::start(TIMEOUTS);
    let head = b"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    let slow = trickle(&sim.addr.to_string(), head, b"1\r\n \r\n", GAP, GIVE_UP).await;
    let closed = slow.closed_after.expect("the slow connection is closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
}

/// A SUPPRESS call with this framework's stream id.
fn suppress(fw: &Framework) -> http::Request<Full<Bytes>> {
    let c = fw.call(call::Type::Suppress, |_| {});
    http::Request::builder()
        .method("POST")
        .uri("/api/v1/scheduler")
        .header("Host", fw.addr.to_string())
        .header("Content-Type", fw.media.as_str())
        .header("Mesos-Stream-Id", fw.stream_id.as_str())
        .body(Full::new(encode_call(fw.media, &c)))
        .unwrap()
}

#[tokio::test]
async fn subscriptions_and_idle_keep_alive_connections_outlive_the_timeouts() {
    let sim = Sim::start(TIMEOUTS);
    let mut fw = Framework::subscribe(sim.addr, MediaType::Json, framework_info("long")).await;
    // One keep-alive call connection, as pymesos keeps.
    let stream = TcpStream::connect(sim.addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let first = sender.send_request(suppress(&fw)).await.unwrap();
    assert_eq!(first.status(), 202);
    first.into_body().collect().await.unwrap();

    // Three times the timeouts: the stream keeps delivering heartbeats...
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        fw.stream.until(is(event::Type::Heartbeat)).await;
    }
    assert!(!conn.is_finished(), "the idle call connection was closed");
    // ...and the idle call connection still carries calls.
    sender.ready().await.unwrap();
    let second = sender.send_request(suppress(&fw)).await.unwrap();
    assert_eq!(second.status(), 202);
    // A chunked call works, and its connection is idle, not mid-body, after.
    let c = fw.call(call::Type::Revive, |_| {});
    let body = encode_call(fw.media, &c);
    let mut raw = TcpStream::connect(sim.addr).await.unwrap();
    let request = format!(
        "POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: {}\r\nMesos-Stream-Id: {}\r\nTransfer-Encoding: chunked\r\n\r\n{:x};ext=1\r\n",
        fw.media.as_str(),
        fw.stream_id,
        body.len()
    );
    raw.write_all(request.as_bytes()).await.unwrap();
    raw.write_all(&body).await.unwrap();
    raw.write_all(b"\r\n0\r\nX-Trailer: t\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 12];
    raw.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 202");
    tokio::time::sleep(Duration::from_millis(2500)).await;
    raw.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut rest = vec![0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut seen = String::new();
    while !seen.contains("HTTP/1.1 200") && Instant::now() < deadline {
        let n = tokio::time::timeout(Duration::from_secs(5), raw.read(&mut rest))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the connection was closed: {seen:?}");
        seen.push_str(&String::from_utf8_lossy(&rest[..n]));
    }
    assert!(seen.contains("HTTP/1.1 200"), "{seen:?}");
}
