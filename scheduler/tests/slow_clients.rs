//! Slow clients cannot hold the job API: a request head or body sent a
//! byte at a time is cut off within its read timeout, and connections past
//! `--max-connections` wait for a free slot, while normal clients are
//! served.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::*;

const NO_MASTER: &str = "http://127.0.0.1:1";

const SLOW_HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: x\r\n";
const ENDLESS_HEADERS: &[u8] = b"X-Slow: yes\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_sent_a_byte_at_a_time_is_cut_off_within_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &["--header-read-timeout", "1secs"]);
    let slow = tokio::spawn({
        let address = s.address.clone();
        async move {
            trickle(
                &address,
                SLOW_HEAD,
                ENDLESS_HEADERS,
                Duration::from_millis(50),
                Duration::from_secs(6),
            )
            .await
        }
    });
    // Meanwhile a normal client is served.
    let (status, _) = get(&s.address, "/health/live").await;
    assert_eq!(status, 200);
    let slow = slow.await.unwrap();
    let closed = slow.closed_after.expect("the slow connection is closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_body_sent_a_byte_at_a_time_gets_408_within_the_body_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), NO_MASTER, &["--body-read-timeout", "1secs"]);
    let head = b"POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    let slow = trickle(
        &s.address,
        head,
        b" ",
        Duration::from_millis(50),
        Duration::from_secs(6),
    )
    .await;
    let closed = slow.closed_after.expect("the slow connection is closed");
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    assert!(slow.answer.starts_with("HTTP/1.1 408"), "{}", slow.answer);
    assert!(
        slow.answer.contains("\"DEADLINE_EXCEEDED\""),
        "{}",
        slow.answer
    );
    let (status, _) = get(&s.address, "/health/live").await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_slow_clients_are_all_cut_off_and_past_the_connection_cap_clients_wait() {
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(
        dir.path(),
        NO_MASTER,
        &["--header-read-timeout", "1secs", "--max-connections", "50"],
    );
    // Connections are accepted in order: the API is up before the flood.
    assert_eq!(get(&s.address, "/health/live").await.0, 200);
    let slow: Vec<_> = (0..50)
        .map(|_| {
            let address = s.address.clone();
            tokio::spawn(async move {
                trickle(
                    &address,
                    SLOW_HEAD,
                    ENDLESS_HEADERS,
                    Duration::from_millis(100),
                    Duration::from_secs(8),
                )
                .await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Every slot is held: a normal client waits until the slow ones are
    // cut off, then is served.
    let started = Instant::now();
    let (status, _) = get(&s.address, "/health/live").await;
    let waited = started.elapsed();
    assert_eq!(status, 200);
    assert!(
        waited > Duration::from_millis(300),
        "waited only {waited:?}"
    );
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    for t in slow {
        let t = t.await.unwrap();
        let closed = t.closed_after.expect("every slow connection is closed");
        assert!(closed < Duration::from_secs(4), "closed after {closed:?}");
    }
}
