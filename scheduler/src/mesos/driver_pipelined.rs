//! Acknowledgements over HTTP/1.1 pipelining: a batch of ACKNOWLEDGE calls
//! is written to one connection at once and their answers are read back in
//! order. Mesos has no batched acknowledgement, and one round trip per
//! update (a write, a read and several task wake-ups on each side) was half
//! of what a launch wave's 40,000 updates cost both processes. libprocess
//! answers pipelined requests in order (its `HttpProxy`), and so does hyper.
//!
//! The wire half only: it frames requests, parses answers (with httparse,
//! hyper's own parser) and keeps idle connections; which calls make a batch
//! is decided by the sender (`driver_calls.rs`).

use super::{basic_auth, call_response, DriverConfig, STREAM_ID_HEADER};
use crate::mesos::session::{CallResponse, Endpoint, StreamId};
use bytes::{Buf, Bytes, BytesMut};
use std::io;
use std::sync::Mutex;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Idle connections kept for reuse: one per batch in flight.
const MAX_IDLE: usize = 64;
/// The largest answer body read; an acknowledgement's answer is empty, an
/// error's a line of text.
const MAX_BODY: usize = 64 * 1024;
/// Headers parsed per answer.
const MAX_HEADERS: usize = 32;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A pool of keep-alive connections for pipelined batches.
#[derive(Debug, Default)]
pub(super) struct Pipes {
    idle: Mutex<Vec<Pipe>>,
}

#[derive(Debug)]
struct Pipe {
    authority: String,
    stream: TcpStream,
    /// Bytes read past the last answer parsed.
    read: BytesMut,
}

impl Pipes {
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

    /// Posts `calls` (each encoded in the driver's media type) to `master`
    /// in one pipelined batch; one answer per call, in order. A call left
    /// unanswered (the connection failed or closed, or the batch timed
    /// out) gets `Rejected` with status 0, as a failed single request would.
    pub(super) async fn post(
        &self,
        config: &DriverConfig,
        master: &Endpoint,
        stream_id: &StreamId,
        calls: &[&Bytes],
    ) -> Vec<CallResponse> {
        let mut answers = Vec::with_capacity(calls.len());
        let failure = match encode_requests(config, master, stream_id, calls) {
            Ok((authority, requests)) => {
                let exchange =
                    self.exchange(master, &authority, &requests, calls.len(), &mut answers);
                match tokio::time::timeout(config.call_timeout, exchange).await {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(_) => Some("timed out".to_owned()),
                }
            }
            Err(detail) => Some(detail),
        };
        if let Some(detail) = failure {
            answers.resize(calls.len(), CallResponse::Rejected { status: 0, detail });
        }
        answers
    }

    async fn exchange(
        &self,
        master: &Endpoint,
        authority: &str,
        requests: &[u8],
        count: usize,
        answers: &mut Vec<CallResponse>,
    ) -> io::Result<()> {
        // A kept connection the master has closed meanwhile answers
        // nothing; then the batch goes again on a new one (nothing of it
        // reached the master).
        if let Some(mut pipe) = self.take(authority) {
            match pipe.exchange(master, requests, count, answers).await {
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
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(authority))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))??;
        stream.set_nodelay(true)?;
        let mut pipe = Pipe {
            authority: authority.to_owned(),
            stream,
            read: BytesMut::with_capacity(16 * 1024),
        };
        if pipe.exchange(master, requests, count, answers).await? {
            self.put(pipe);
        }
        Ok(())
    }
}

impl Pipe {
    /// Writes the batch and reads `count` answers into `answers`; whether
    /// the connection may carry another batch.
    async fn exchange(
        &mut self,
        master: &Endpoint,
        requests: &[u8],
        count: usize,
        answers: &mut Vec<CallResponse>,
    ) -> io::Result<bool> {
        // A kept connection's buffer is empty (see the end).
        self.stream.write_all(requests).await?;
        while answers.len() < count {
            let answer = self.read_answer(master).await?;
            answers.push(answer.response);
            if !answer.keep_alive {
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

    async fn read_answer(&mut self, master: &Endpoint) -> io::Result<Answer> {
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
            let body = String::from_utf8_lossy(&body).into_owned();
            let response = call_response(master, head.status, head.location.as_deref(), body);
            return Ok(Answer {
                response,
                keep_alive,
            });
        }
    }
}

struct Answer {
    response: CallResponse,
    keep_alive: bool,
}

/// How an answer's body ends (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Empty,
    Length(usize),
    Chunked,
    UntilClose,
}

#[derive(Debug, PartialEq, Eq)]
struct Head {
    /// Bytes of the status line and headers.
    len: usize,
    status: u16,
    framing: Framing,
    keep_alive: bool,
    location: Option<String>,
}

fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad answer: {why}"))
}

fn too_large() -> io::Error {
    bad("body larger than 64 KiB")
}

/// The status line and headers at the start of `buf`, if all there.
fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    let len = match answer.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(&e.to_string())),
    };
    let status = answer.code.unwrap_or_default();
    let mut keep_alive = answer.version == Some(1);
    let (mut length, mut chunked, mut location) = (None, false, None);
    for h in answer.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| bad("header not text"))?;
        let value = value.trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            let n: usize = value.parse().map_err(|_| bad("Content-Length"))?;
            if length.is_some_and(|m| m != n) {
                return Err(bad("two Content-Lengths"));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value
                .rsplit(',')
                .next()
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            if !chunked {
                return Err(bad("a transfer coding other than chunked"));
            }
        } else if h.name.eq_ignore_ascii_case("connection") {
            for option in value.split(',').map(str::trim) {
                if option.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if option.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if h.name.eq_ignore_ascii_case("location") {
            location = Some(value.to_owned());
        }
    }
    let framing = if status / 100 == 1 || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(too_large());
        }
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head {
        len,
        status,
        framing,
        keep_alive,
        location,
    }))
}

/// A whole chunked body at the start of `buf`: the body and the bytes it
/// took, trailers included; None if more must be read.
fn parse_chunked(buf: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let (used, size) = match httparse::parse_chunk_size(&buf[at..]) {
            Ok(httparse::Status::Complete(c)) => c,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(bad("chunk size")),
        };
        at += used;
        if size == 0 {
            // Trailers (ignored) end with an empty line.
            let rest = &buf[at..];
            if rest.starts_with(b"\r\n") {
                return Ok(Some((body, at + 2)));
            }
            return Ok(rest
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|end| (body, at + end + 4)));
        }
        let size = usize::try_from(size).map_err(|_| too_large())?;
        if body.len() + size > MAX_BODY {
            return Err(too_large());
        }
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&buf[at..at + size]);
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err(bad("chunk not ended by CRLF"));
        }
        at += size + 2;
    }
}

/// The batch's requests, back to back, and the `host:port` to send them to.
fn encode_requests(
    config: &DriverConfig,
    master: &Endpoint,
    stream_id: &StreamId,
    calls: &[&Bytes],
) -> Result<(String, BytesMut), String> {
    let host = master.host().ok_or("the master's URL has no host")?;
    let port = master.port_u16().unwrap_or(80);
    let authority = match master.authority() {
        Some(a) if a.port().is_some() => a.as_str().to_owned(),
        _ => format!("{host}:{port}"),
    };
    let path = master.path_and_query().map_or("/", |p| p.as_str());
    let auth = basic_auth(config);
    let id = stream_id.0.as_str();
    if !is_header_value(id) || !auth.as_deref().is_none_or(is_header_value) {
        return Err("a header value holds a control character".into());
    }
    let media = config.media.as_str();
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {media}\r\n\
         Accept: {media}\r\n{STREAM_ID_HEADER}: {id}\r\n"
    );
    if let Some(auth) = auth {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    let mut out = BytesMut::new();
    for body in calls {
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
    }
    Ok((authority, out))
}

fn is_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::scheduler::Call;

    #[test]
    fn a_head_tells_how_its_body_ends_and_whether_the_connection_stays() {
        let head = parse_head(b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\nHTTP/1.1")
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.status, head.framing, head.keep_alive),
            (202, Framing::Length(0), true)
        );
        assert_eq!(head.len, 44);
        let head = parse_head(
            b"HTTP/1.1 400 Bad\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!((head.framing, head.keep_alive), (Framing::Chunked, false));
        let head = parse_head(b"HTTP/1.0 307 X\r\nLocation: //m2:5050/api/v1/scheduler\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (head.framing, head.keep_alive),
            (Framing::UntilClose, false)
        );
        assert_eq!(head.location.as_deref(), Some("//m2:5050/api/v1/scheduler"));
        assert_eq!(parse_head(b"HTTP/1.1 202 Acc").unwrap(), None);
    }

    #[test]
    fn malformed_or_oversized_heads_are_errors_not_panics() {
        for head in [
            &b"HTTP/1.1 abc\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert!(
                parse_head(head).is_err(),
                "{}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn chunked_bodies_are_read_whole_or_not_at_all() {
        let whole = b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nHTTP";
        let (body, used) = parse_chunked(whole).unwrap().unwrap();
        assert_eq!(
            (body.as_slice(), used),
            (&b"hello world"[..], whole.len() - 4)
        );
        for cut in 0..whole.len() - 4 {
            assert_eq!(parse_chunked(&whole[..cut]).unwrap(), None, "cut at {cut}");
        }
        let trailers = b"0\r\nX-T: 1\r\n\r\n";
        assert_eq!(
            parse_chunked(trailers).unwrap(),
            Some((vec![], trailers.len()))
        );
        assert!(parse_chunked(b"5\r\nhelloXX").is_err());
        assert!(parse_chunked(b"fffffff\r\n").is_err());
    }

    #[test]
    fn requests_carry_what_a_single_call_would() {
        let mut config = DriverConfig::new(drover_proto::MediaType::Json);
        config.credentials = Some(("p".into(), "s".into()));
        let master: Endpoint = "http://m1:5050/master/api/v1/scheduler".parse().unwrap();
        let call = crate::mesos::calls::acknowledge("a1".into(), "t1".into(), vec![1, 2].into());
        let encoded = Bytes::from(config.media.encode(&call));
        let stream = StreamId("s-1".into());
        let (authority, bytes) =
            encode_requests(&config, &master, &stream, &[&encoded, &encoded]).unwrap();
        assert_eq!(authority, "m1:5050");
        let text = String::from_utf8(bytes.to_vec()).unwrap();
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let httparse::Status::Complete(len) = req.parse(text.as_bytes()).unwrap() else {
            panic!("partial request");
        };
        assert_eq!(req.path, Some("/master/api/v1/scheduler"));
        let header = |name: &str| {
            let h = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .unwrap();
            std::str::from_utf8(h.value).unwrap().to_owned()
        };
        assert_eq!(header("Mesos-Stream-Id"), "s-1");
        assert_eq!(header("Content-Type"), "application/json");
        assert_eq!(header("Authorization"), "Basic cDpz");
        let n: usize = header("Content-Length").parse().unwrap();
        let body = &text.as_bytes()[len..len + n];
        assert_eq!(config.media.decode::<Call>(body).unwrap(), call);
        assert_eq!(text.matches("POST ").count(), 2);
        assert!(
            encode_requests(&config, &master, &StreamId("a\r\nX: y".into()), &[&encoded]).is_err()
        );
    }

    /// A master that answers each connection's requests, as they arrive,
    /// with the next of that connection's scripted answers, and hangs up
    /// when they run out. Returns its address and how many connections it
    /// has taken.
    async fn scripted_master(
        scripts: Vec<Vec<&'static str>>,
    ) -> (Endpoint, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
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
    async fn post(pipes: &Pipes, master: &Endpoint, calls: &[Call]) -> Vec<CallResponse> {
        let config = DriverConfig::new(drover_proto::MediaType::Protobuf);
        let bodies: Vec<Bytes> = calls
            .iter()
            .map(|c| Bytes::from(config.media.encode(c)))
            .collect();
        let bodies: Vec<&Bytes> = bodies.iter().collect();
        pipes
            .post(&config, master, &StreamId("s".into()), &bodies)
            .await
    }

    const ACCEPTED: &str = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n";

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
        assert_eq!(
            answers,
            vec![
                CallResponse::Accepted,
                CallResponse::Rejected {
                    status: 400,
                    detail: "bad uuid".into()
                },
                CallResponse::Redirect("http://m2:5050/api/v1/scheduler".parse().unwrap()),
                CallResponse::NotSubscribed,
            ]
        );
        // The next batch reuses the connection.
        let answers = post(&pipes, &master, &calls[..1]).await;
        assert_eq!(answers, vec![CallResponse::Accepted]);
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
            vec![CallResponse::Accepted]
        );
        // The master hung up on the kept connection after its one answer.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let answers = post(&pipes, &master, &calls).await;
        assert_eq!(answers, vec![CallResponse::Accepted; 2]);
        assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn calls_left_unanswered_are_rejected_not_lost_silently() {
        let closing = "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (master, _) = scripted_master(vec![vec![closing]]).await;
        let pipes = Pipes::default();
        let answers = post(&pipes, &master, &acks(3)).await;
        assert_eq!(answers[0], CallResponse::Accepted);
        for answer in &answers[1..] {
            assert!(
                matches!(answer, CallResponse::Rejected { status: 0, .. }),
                "{answer:?}"
            );
        }
        // Nothing is kept from a connection the master closed.
        assert!(pipes.idle.lock().unwrap().is_empty());
    }
}
