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
//! - With TLS (`--tls-cert`, `--tls-key`), the handshake takes the place
//!   of the sniff and is bounded by `header_read_timeout` too; ALPN
//!   chooses the protocol, and a verified client certificate's name goes
//!   into every request of the connection (`tls.rs`). A plain-HTTP client
//!   gets a 400 saying to use https, then the connection closes.
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

use super::tls::{client_cert_name, ClientCertName, WithClientCert};
use crate::tls::reload::ReloadingServerConfig;
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
/// returns once all have closed, or after [`SHUTDOWN_GRACE`]. With `tls`,
/// every connection is TLS, each handshake with the configuration current
/// when it starts.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: ServeConfig,
    tls: Option<Arc<ReloadingServerConfig>>,
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
        let tls = tls.as_ref().map(|tls| tls.current());
        tokio::spawn(async move {
            let result = match tls {
                None => match sniff(&stream, header_read_timeout).await {
                    Some(protocol) => {
                        let service = WithClientCert {
                            inner: service,
                            name: None,
                        };
                        serve_connection(stream, protocol, service, watcher, header_read_timeout)
                            .await
                    }
                    // Closed, or silent past the timeout: dropped unserved.
                    None => Ok(()),
                },
                Some(tls) => match handshake(stream, tls, header_read_timeout).await {
                    Some((stream, protocol, name)) => {
                        let service = WithClientCert {
                            inner: service,
                            name,
                        };
                        serve_connection(stream, protocol, service, watcher, header_read_timeout)
                            .await
                    }
                    None => Ok(()),
                },
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

/// Serves one connection, already past its protocol choice (and TLS
/// handshake), until it closes or the server shuts down.
async fn serve_connection<I, S>(
    io: I,
    protocol: Protocol,
    service: S,
    watcher: hyper_util::server::graceful::Watcher,
    header_read_timeout: Duration,
) -> Result<(), hyper::Error>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            http::Request<hyper::body::Incoming>,
            Response = http::Response<Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    match protocol {
        Protocol::Http1 => {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            watcher.watch(connection).await
        }
        Protocol::Http2 => {
            let mut builder = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
            builder
                .timer(TokioTimer::new())
                .max_concurrent_streams(H2_MAX_STREAMS)
                .keep_alive_interval(Some(header_read_timeout))
                .keep_alive_timeout(H2_PING_TIMEOUT);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            watcher.watch(connection).await
        }
    }
}

/// The TLS handshake of a new connection, bounded like a request head by
/// `limit`: its protocol (by ALPN: `h2` is HTTP/2, anything else
/// HTTP/1.1) and its verified client certificate's name. None when the
/// client is silent, closes, fails the handshake, or speaks plain HTTP (it
/// is told to use https first).
async fn handshake(
    stream: tokio::net::TcpStream,
    config: Arc<rustls::ServerConfig>,
    limit: Duration,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    Protocol,
    Option<ClientCertName>,
)> {
    // Nagle off: a handshake flight, and an answer's head and body, leave
    // as several TLS records (separate writes); with Nagle on, each write
    // after the first waits for the peer's delayed ACK (tens of ms).
    // Plain HTTP/1.1 answers go out in one write and do not need it.
    let _ = stream.set_nodelay(true);
    let accept = async {
        let mut first = [0u8; 1];
        let n = stream.peek(&mut first).await.ok()?;
        if n == 0 {
            return None;
        }
        if !is_tls_handshake(first[0]) {
            refuse_plaintext(stream).await;
            return None;
        }
        match tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
            Ok(tls) => Some(tls),
            Err(e) => {
                tracing::debug!(error = %e, "API TLS handshake failed");
                None
            }
        }
    };
    let tls = tokio::time::timeout(limit, accept).await.ok().flatten()?;
    let session = tls.get_ref().1;
    let protocol = match session.alpn_protocol() {
        Some(b"h2") => Protocol::Http2,
        _ => Protocol::Http1,
    };
    let name = client_cert_name(session.peer_certificates());
    Some((tls, protocol, name))
}

/// Whether a connection's first byte opens a TLS handshake record (RFC
/// 8446, section 5.1: content type 22). Plain HTTP starts with a method's
/// letter, HTTP/2 with prior knowledge with `P`.
pub fn is_tls_handshake(first: u8) -> bool {
    first == 0x16
}

/// What a plain-HTTP client on the TLS port is told before the connection
/// closes, as Go's and nginx's servers do, so that `curl http://` says
/// what is wrong instead of "empty reply".
const PLAINTEXT_REFUSAL: &[u8] = b"HTTP/1.1 400 Bad Request\r\n\
content-type: application/json\r\n\
connection: close\r\n\
content-length: 79\r\n\r\n\
{\"code\":\"INVALID_ARGUMENT\",\"message\":\"this port serves TLS only: use https://\"}";

async fn refuse_plaintext(mut stream: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = stream.write_all(PLAINTEXT_REFUSAL).await;
    let _ = stream.shutdown().await;
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
    fn a_plaintext_client_on_the_tls_port_reads_a_whole_answer() {
        let mut headers = [httparse::EMPTY_HEADER; 8];
        let mut response = httparse::Response::new(&mut headers);
        let head = response.parse(PLAINTEXT_REFUSAL).unwrap();
        let httparse::Status::Complete(head_len) = head else {
            panic!("incomplete head");
        };
        assert_eq!(response.code, Some(400));
        let length = response
            .headers
            .iter()
            .find(|h| h.name == "content-length")
            .map(|h| {
                std::str::from_utf8(h.value)
                    .unwrap()
                    .parse::<usize>()
                    .unwrap()
            });
        let body = &PLAINTEXT_REFUSAL[head_len..];
        assert_eq!(length, Some(body.len()));
        let json: serde_json::Value = serde_json::from_slice(body).unwrap();
        assert_eq!(json["code"], "INVALID_ARGUMENT");
        assert!(!is_tls_handshake(b'G') && !is_tls_handshake(b'P') && is_tls_handshake(0x16));
    }

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
