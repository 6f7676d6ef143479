//! Serving the job API over HTTP/1.1 and HTTP/2 on one port: the accept
//! loop, bounded, and each connection's read timeouts, so that slow or idle
//! clients cannot hold the scheduler (issue 17: 50 connections sending a
//! byte at a time were never closed).
//!
//! - A connection's first bytes choose its protocol ([`protocol_of`]): the
//!   HTTP/2 connection preface (cleartext HTTP/2 with prior knowledge, what
//!   gRPC clients send) is served as HTTP/2, anything else as HTTP/1.1.
//!   They must arrive within `header_read_timeout`, like a request head.
//! - At most `max_connections` connections are served at once. One more
//!   is not accepted until one closes: it waits in the kernel's listen
//!   backlog (mini-redis `src/server.rs`), so a flood slows new clients
//!   down rather than exhausting the scheduler's memory or descriptors.
//! - A request head must arrive whole within `header_read_timeout`
//!   (hyper's own timer); it runs from the moment the connection waits for
//!   a head, so an idle keep-alive connection is also closed after it.
//! - A request body must arrive whole within `body_read_timeout` of its
//!   head; past it, reading the body fails with [`BodyReadTimeout`] and the
//!   handler answers 408 DEADLINE_EXCEEDED (`body.rs`), and the connection
//!   closes.
//!
//! Responses are never timed: a stream (a watch, later) lasts as long as
//! its client reads it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Sleep;

/// How the API's connections are bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeConfig {
    /// Connections served at once. Default 1024: far more than the CLI,
    /// dashboards and automation of one cluster open, and well under the
    /// usual 65,536 open files.
    pub max_connections: usize,
    /// Time for a whole request head (and an idle keep-alive connection's
    /// next one). Default 30 s, hyper's own default.
    pub header_read_timeout: Duration,
    /// Time for a whole request body after its head. Default 60 s: the
    /// largest body (`--max-body-bytes`, 1 MiB) at a slow 20 KiB/s.
    pub body_read_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then stops
/// accepting, lets each connection finish its request in flight, and
/// returns once all have closed, or after [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let body_timeout = config.body_read_timeout;
    let app = app.layer(axum::middleware::from_fn(
        move |request: axum::extract::Request, next: axum::middleware::Next| {
            next.run(request.map(|body| Body::new(TimedBody::new(body, body_timeout))))
        },
    ));
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        // The permit is taken before the accept: past the cap, connections
        // wait in the backlog.
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &permits) => accepted,
        };
        let Some((stream, permit)) = accepted else {
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let watcher = graceful.watcher();
        let header_read_timeout = config.header_read_timeout;
        tokio::spawn(async move {
            let result = match sniff(&stream, header_read_timeout).await {
                Some(Protocol::Http1) => {
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(header_read_timeout);
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                Some(Protocol::Http2) => {
                    let mut builder =
                        hyper::server::conn::http2::Builder::new(TokioExecutor::new());
                    builder
                        .timer(TokioTimer::new())
                        .max_concurrent_streams(H2_MAX_STREAMS)
                        .keep_alive_interval(Some(header_read_timeout))
                        .keep_alive_timeout(H2_PING_TIMEOUT);
                    let connection = builder.serve_connection(TokioIo::new(stream), service);
                    watcher.watch(connection).await
                }
                // Closed, or silent past the timeout: dropped unserved.
                None => Ok(()),
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "API connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    // Connections finish their requests in flight, but a peer that keeps
    // its connection open (an HTTP/2 client that does not answer GOAWAY, a
    // watch stream) does not hold the scheduler's exit past the grace.
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::info!(
            grace = ?SHUTDOWN_GRACE,
            "API connections still open after the shutdown grace; closing them"
        );
    }
}

/// How long a stopping scheduler waits for its API connections to close.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// What an HTTP/2 client sends first (RFC 9113, section 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Streams one HTTP/2 connection may have open at once: a gRPC client
/// multiplexes its calls, watches included, over one connection.
const H2_MAX_STREAMS: u32 = 256;
/// How long an HTTP/2 keep-alive ping may go unanswered before the
/// connection is closed (a peer that vanished without a FIN).
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1 (or 1.0).
    Http1,
    /// HTTP/2 with prior knowledge (h2c).
    Http2,
}

/// The protocol a connection's first bytes choose; None while they are a
/// proper prefix of the HTTP/2 preface and more must be read to tell.
pub fn protocol_of(first: &[u8]) -> Option<Protocol> {
    if first.len() >= H2_PREFACE.len() {
        Some(if first.starts_with(H2_PREFACE) {
            Protocol::Http2
        } else {
            Protocol::Http1
        })
    } else if H2_PREFACE.starts_with(first) {
        None
    } else {
        Some(Protocol::Http1)
    }
}

/// Peeks at `stream`'s first bytes (leaving them to the server) until they
/// choose a protocol. None when the client closes, or sends too little to
/// tell within `limit`.
async fn sniff(stream: &tokio::net::TcpStream, limit: Duration) -> Option<Protocol> {
    let mut first = [0u8; H2_PREFACE.len()];
    let read = async {
        loop {
            let n = stream.peek(&mut first).await.ok()?;
            if n == 0 {
                return None;
            }
            if let Some(protocol) = protocol_of(&first[..n]) {
                return Some(protocol);
            }
            // A part of the preface: peek returns at once while those bytes
            // are unread, so wait a little for the rest.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(limit, read).await.ok().flatten()
}

/// Waits for a free slot, then for a connection.
async fn accept(
    listener: &TcpListener,
    permits: &Arc<Semaphore>,
) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
    let permit = permits
        .clone()
        .acquire_owned()
        .await
        .expect("the semaphore is never closed");
    match listener.accept().await {
        Ok((stream, _)) => Some((stream, permit)),
        Err(e) => {
            // Out of descriptors or a connection reset before accept: wait
            // a little rather than spin.
            tracing::warn!(error = %e, "cannot accept an API connection");
            tokio::time::sleep(Duration::from_millis(50)).await;
            None
        }
    }
}

/// A request body that did not arrive within the body read timeout.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {}s", .0.as_secs_f64())]
pub struct BodyReadTimeout(pub Duration);

/// A request body that fails with [`BodyReadTimeout`] if it has not ended
/// when its timer (started with the head) fires.
struct TimedBody {
    inner: Body,
    timer: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl TimedBody {
    fn new(inner: Body, timeout: Duration) -> Self {
        TimedBody {
            inner,
            timer: Box::pin(tokio::time::sleep(timeout)),
            timeout,
        }
    }
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Pending => {}
            ready => return ready,
        }
        match this.timer.as_mut().poll(cx) {
            Poll::Ready(()) => {
                Poll::Ready(Some(Err(axum::Error::new(BodyReadTimeout(this.timeout)))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_bytes_choose_the_protocol() {
        assert_eq!(protocol_of(H2_PREFACE), Some(Protocol::Http2));
        let mut more = H2_PREFACE.to_vec();
        more.extend_from_slice(b"\0\0\x12\x04");
        assert_eq!(protocol_of(&more), Some(Protocol::Http2));
        for http1 in [
            &b"GET / HTTP/1.1\r\n"[..],
            b"POST",
            b"PUT",
            b"X",
            b"PRI * HTTP/1.1\r\n\r\nxxxxxxxxx",
        ] {
            assert_eq!(protocol_of(http1), Some(Protocol::Http1), "{http1:?}");
        }
        for undecided in [&b"P"[..], b"PRI", b"PRI * HTTP/2.0\r\n"] {
            assert_eq!(protocol_of(undecided), None, "{undecided:?}");
        }
    }
}
