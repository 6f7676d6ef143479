//! Acknowledgements over HTTP/1.1 pipelining: a batch of ACKNOWLEDGE calls
//! is written to one connection at once and their answers are read back in
//! order. Mesos has no batched acknowledgement, and one round trip per
//! update (a write, a read and several task wake-ups on each side) was half
//! of what a launch wave's 40,000 updates cost both processes. libprocess
//! answers pipelined requests in order (its `HttpProxy`), and so does hyper.
//!
//! The wire half only, and HTTP only: it frames requests with the headers
//! it is given and parses answers (`framing.rs`, pure, with httparse,
//! hyper's own parser), and keeps idle connections (here). What the
//! headers are and what an answer means is the driver's (`request.rs`);
//! which calls make a batch, the sender's (`sender.rs`, by the lanes).

mod framing;

use bytes::{Buf, Bytes, BytesMut};
use framing::{encode_requests, parse_chunked, parse_head, too_large, Framing, MAX_BODY};
use http::Uri;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle connections kept for reuse: one per batch in flight.
const MAX_IDLE: usize = 64;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One answer, as the master wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The status code.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The body (at most 64 KiB), as text.
    pub body: String,
}

/// Why a request of a batch has no answer: the connection failed or
/// closed first, or the batch timed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub(crate) struct Unanswered {
    /// What went wrong, for the log.
    pub detail: String,
}

/// A pool of keep-alive connections for pipelined batches.
#[derive(Debug, Default)]
pub(crate) struct Pipes {
    idle: Mutex<Vec<Pipe>>,
    /// What an `https://` master is verified against; none for `http://`.
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A connection to the master: TCP, or TLS over it.
trait Conn: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Conn for T {}

#[derive(Debug)]
struct Pipe {
    authority: String,
    stream: Box<dyn Conn>,
    /// Bytes read past the last answer parsed.
    read: BytesMut,
}

impl Pipes {
    /// Pipes that speak TLS to `https://` masters, verified with `tls`.
    pub(crate) fn with_tls(tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        Pipes {
            idle: Mutex::default(),
            tls,
        }
    }

    fn take(&self, authority: &str) -> Option<Pipe> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let at = idle.iter().rposition(|p| p.authority == authority)?;
        Some(idle.swap_remove(at))
    }

    fn put(&self, pipe: Pipe) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Connections to a master that is no longer the one written to
        // (a failover) will not be used again.
        idle.retain(|p| p.authority == pipe.authority);
        if idle.len() < MAX_IDLE {
            idle.push(pipe);
        }
    }

    /// POSTs `bodies` to `url` in one pipelined batch, each request with
    /// `headers` (name, value; Host and Content-Length are written here);
    /// one answer per body, in order, within `timeout` for the whole
    /// batch. A request left unanswered (the connection failed or closed,
    /// or the batch timed out) is [`Unanswered`], as a failed single
    /// request would be.
    pub(crate) async fn post(
        &self,
        url: &Uri,
        headers: &[(&str, &str)],
        bodies: &[&Bytes],
        timeout: Duration,
    ) -> Vec<Result<Answer, Unanswered>> {
        let mut answers = Vec::with_capacity(bodies.len());
        let failure = match encode_requests(url, headers, bodies) {
            Ok((authority, requests)) => {
                let https = url.scheme_str() == Some("https");
                let exchange =
                    self.exchange(https, &authority, &requests, bodies.len(), &mut answers);
                match tokio::time::timeout(timeout, exchange).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("timed out".to_owned()),
                }
            }
            Err(detail) => Some(detail),
        };
        if let Some(detail) = failure {
            answers.resize(bodies.len(), Err(Unanswered { detail }));
        }
        answers
    }

    async fn exchange(
        &self,
        https: bool,
        authority: &str,
        requests: &[u8],
        count: usize,
        answers: &mut Vec<Result<Answer, Unanswered>>,
    ) -> io::Result<()> {
        // A kept connection the master has closed meanwhile answers
        // nothing; then the batch goes again on a new one (nothing of it
        // reached the master).
        if let Some(mut pipe) = self.take(authority) {
            match pipe.exchange(requests, count, answers).await {
                Ok(keep) => {
                    if keep {
                        self.put(pipe);
                    }
                    return Ok(());
                }
                Err(e) if !answers.is_empty() => return Err(e),
                Err(_) => {}
            }
        }
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, self.connect(https, authority))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        let mut pipe = Pipe {
            authority: authority.to_owned(),
            stream,
            read: BytesMut::with_capacity(16 * 1024),
        };
        if pipe.exchange(requests, count, answers).await? {
            self.put(pipe);
        }
        Ok(())
    }
}

impl Pipes {
    /// A new connection to `authority`, TLS for an `https://` master.
    async fn connect(&self, https: bool, authority: &str) -> io::Result<Box<dyn Conn>> {
        let stream = TcpStream::connect(authority).await?;
        stream.set_nodelay(true)?;
        if !https {
            return Ok(Box::new(stream));
        }
        let Some(tls) = &self.tls else {
            return Err(io::Error::other(crate::tls::client::NO_CA));
        };
        let host = authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let tls = tokio_rustls::TlsConnector::from(tls.clone())
            .connect(name, stream)
            .await?;
        Ok(Box::new(tls))
    }
}

impl Pipe {
    /// Writes the batch and reads `count` answers into `answers`; whether
    /// the connection may carry another batch.
    async fn exchange(
        &mut self,
        requests: &[u8],
        count: usize,
        answers: &mut Vec<Result<Answer, Unanswered>>,
    ) -> io::Result<bool> {
        // A kept connection's buffer is empty (see the end).
        self.stream.write_all(requests).await?;
        while answers.len() < count {
            let read = self.read_answer().await?;
            answers.push(Ok(read.answer));
            if !read.keep_alive {
                if answers.len() < count {
                    return Err(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the master closed the connection before answering every call",
                    ));
                }
                return Ok(false);
            }
        }
        Ok(self.read.is_empty())
    }

    /// Reads more bytes; an error at the end of the stream.
    async fn fill(&mut self) -> io::Result<()> {
        self.read.reserve(16 * 1024);
        if self.stream.read_buf(&mut self.read).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    async fn read_answer(&mut self) -> io::Result<Read> {
        loop {
            let head = loop {
                if let Some(head) = parse_head(&self.read)? {
                    break head;
                }
                self.fill().await?;
            };
            self.read.advance(head.len);
            if head.status / 100 == 1 {
                continue; // an interim answer (100 Continue); the real one follows
            }
            let body = match head.framing {
                Framing::Empty => Vec::new(),
                Framing::Length(n) => {
                    while self.read.len() < n {
                        self.fill().await?;
                    }
                    self.read.split_to(n).to_vec()
                }
                Framing::Chunked => loop {
                    if let Some((body, used)) = parse_chunked(&self.read)? {
                        self.read.advance(used);
                        break body;
                    }
                    self.fill().await?;
                },
                Framing::UntilClose => {
                    while self.stream.read_buf(&mut self.read).await? > 0 {
                        if self.read.len() > MAX_BODY {
                            return Err(too_large());
                        }
                    }
                    std::mem::take(&mut self.read).to_vec()
                }
            };
            let keep_alive = head.keep_alive && head.framing != Framing::UntilClose;
            let answer = Answer {
                status: head.status,
                location: head.location,
                body: String::from_utf8_lossy(&body).into_owned(),
            };
            return Ok(Read { answer, keep_alive });
        }
    }
}

/// An answer and whether its connection may carry the next.
struct Read {
    answer: Answer,
    keep_alive: bool,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::scheduler::Call;
    use drover_proto::MediaType;
    use framing::MAX_HEADERS;

    /// A master that answers each connection's requests, as they arrive,
    /// with the next of that connection's scripted answers, and hangs up
    /// when they run out. Returns its address and how many connections it
    /// has taken.
    async fn scripted_master(
        scripts: Vec<Vec<&'static str>>,
    ) -> (Uri, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let taken = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = taken.clone();
        tokio::spawn(async move {
            for answers in scripts {
                let (mut conn, _) = listener.accept().await.unwrap();
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = BytesMut::new();
                    for answer in answers {
                        // One whole request (head and body) per answer.
                        loop {
                            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
                            let mut req = httparse::Request::new(&mut headers);
                            if let Ok(httparse::Status::Complete(len)) = req.parse(&buf) {
                                let body: usize = req
                                    .headers
                                    .iter()
                                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                                    .map(|h| std::str::from_utf8(h.value).unwrap().parse().unwrap())
                                    .unwrap_or(0);
                                if buf.len() >= len + body {
                                    buf.advance(len + body);
                                    break;
                                }
                            }
                            if conn.read_buf(&mut buf).await.unwrap() == 0 {
                                return;
                            }
                        }
                        conn.write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        let master = format!("http://{addr}/api/v1/scheduler").parse().unwrap();
        (master, taken)
    }

    fn acks(n: usize) -> Vec<Call> {
        (0..n)
            .map(|i| crate::mesos::calls::acknowledge("a".into(), format!("t{i}"), vec![1].into()))
            .collect()
    }

    /// Posts `calls` as one batch on stream "s".
    async fn post(pipes: &Pipes, master: &Uri, calls: &[Call]) -> Vec<Result<Answer, Unanswered>> {
        let media = MediaType::Protobuf;
        let bodies: Vec<Bytes> = calls.iter().map(|c| Bytes::from(media.encode(c))).collect();
        let bodies: Vec<&Bytes> = bodies.iter().collect();
        let headers = [
            ("Content-Type", media.as_str()),
            ("Accept", media.as_str()),
            ("Mesos-Stream-Id", "s"),
        ];
        pipes
            .post(master, &headers, &bodies, Duration::from_secs(75))
            .await
    }

    const ACCEPTED: &str = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";

    /// An answer with `status`, `location` and `body`.
    fn answer(status: u16, location: Option<&str>, body: &str) -> Result<Answer, Unanswered> {
        Ok(Answer {
            status,
            location: location.map(str::to_owned),
            body: body.to_owned(),
        })
    }

    #[tokio::test]
    async fn a_batch_is_answered_in_order_and_its_connection_kept() {
        let (master, connections) = scripted_master(vec![vec![
            ACCEPTED,
            "HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nbad uuid\r\n0\r\n\r\n",
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: //m2:5050/api/v1/scheduler\r\nContent-Length: 0\r\n\r\n",
            "HTTP/1.1 403 Forbidden\r\nContent-Length: 3\r\n\r\nno!",
            ACCEPTED,
        ]])
        .await;
        let pipes = Pipes::default();
        let calls = acks(4);
        let answers = post(&pipes, &master, &calls).await;
        // What each means to the session: `request::tests::
        // answers_mean_accepted_rejected_redirect_or_not_subscribed`.
        assert_eq!(
            answers,
            vec![
                answer(202, None, ""),
                answer(400, None, "bad uuid"),
                answer(307, Some("//m2:5050/api/v1/scheduler"), ""),
                answer(403, None, "no!"),
            ]
        );
        // The next batch reuses the connection.
        let answers = post(&pipes, &master, &calls[..1]).await;
        assert_eq!(answers, vec![answer(202, None, "")]);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_kept_connection_the_master_closed_is_replaced() {
        let (master, connections) =
            scripted_master(vec![vec![ACCEPTED], vec![ACCEPTED, ACCEPTED]]).await;
        let pipes = Pipes::default();
        let calls = acks(2);
        assert_eq!(
            post(&pipes, &master, &calls[..1]).await,
            vec![answer(202, None, "")]
        );
        // The master hung up on the kept connection after its one answer.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answers = post(&pipes, &master, &calls).await;
        assert_eq!(answers, vec![answer(202, None, ""); 2]);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn calls_left_unanswered_are_rejected_not_lost_silently() {
        let closing = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (master, _) = scripted_master(vec![vec![closing]]).await;
        let pipes = Pipes::default();
        let answers = post(&pipes, &master, &acks(3)).await;
        assert_eq!(answers[0], answer(202, None, ""));
        // The sender makes each of these `Rejected` with status 0.
        for answer in &answers[1..] {
            assert!(answer.is_err(), "{answer:?}");
        }
        // Nothing is kept from a connection the master closed.
        assert!(pipes.idle.lock().unwrap().is_empty());
    }
}
