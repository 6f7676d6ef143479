//! Where a connection is in its current request, from the bytes read on
//! it, so that read timeouts bound a request's head and body and nothing
//! else. Pure: fed the bytes as they are read and `now`; answers the
//! deadline by which the current part must have arrived.
//!
//! ```text
//!  Idle ──first byte──► Head{deadline} ──blank line──► Body{deadline} ──last byte──► Idle
//!                                         └─(no body)──────────────────────────────► Idle
//!  anything not understood (hyper refuses it and closes) ──► Untracked (no deadline)
//! ```
//!
//! hyper's own header read timeout cannot be used here: it also runs on a
//! connection idle between requests, and pymesos keeps one call connection
//! open for its whole life and dies when it is closed. An idle connection,
//! and one whose response is a stream (SUBSCRIBE), has no deadline here.
//! A body is framed as hyper frames it: `Content-Length`, or `chunked`
//! (size lines, data, trailers), so the next head is found even when
//! requests are pipelined.

use std::time::{Duration, Instant};

/// Heads longer than this are not kept to be parsed (hyper refuses them
/// at about 400 KiB anyway); their end is still found and timed.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Chunk size and trailer lines longer than this are not understood.
const MAX_LINE_BYTES: usize = 4 * 1024;

/// How long each part of a request may take to arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTimeouts {
    /// From a head's first byte to its blank line.
    pub header: Duration,
    /// From the end of the head to the body's last byte.
    pub body: Duration,
}

/// Which part of a request a deadline bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Head,
    Body,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading a size line.
    Size,
    /// This many data bytes left.
    Data(u64),
    /// This many bytes of the CRLF after the data left.
    DataEnd(u8),
    /// Reading trailer lines until a blank one.
    Trailer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Head { deadline: Instant },
    Length { deadline: Instant, left: u64 },
    Chunked { deadline: Instant, chunk: Chunk },
    Untracked,
}

/// One connection's request framing, as far as the timeouts need it.
#[derive(Debug)]
pub struct RequestClock {
    timeouts: ReadTimeouts,
    phase: Phase,
    /// The head so far, or the current chunk size or trailer line.
    line: Vec<u8>,
    /// Bytes of the head seen past [`MAX_HEAD_BYTES`] (not kept).
    overflow: usize,
    /// Bytes of the head's current line so far (across reads).
    line_len: usize,
    /// The head's last byte so far.
    last: u8,
    /// Whether a non-blank line (the request line) has begun the head.
    seen_request_line: bool,
}

impl RequestClock {
    pub fn new(timeouts: ReadTimeouts) -> Self {
        RequestClock {
            timeouts,
            phase: Phase::Idle,
            line: Vec::new(),
            overflow: 0,
            line_len: 0,
            last: 0,
            seen_request_line: false,
        }
    }

    /// The deadline of the part being read, if one is.
    pub fn deadline(&self) -> Option<(Instant, Part)> {
        match self.phase {
            Phase::Head { deadline } => Some((deadline, Part::Head)),
            Phase::Length { deadline, .. } | Phase::Chunked { deadline, .. } => {
                Some((deadline, Part::Body))
            }
            Phase::Idle | Phase::Untracked => None,
        }
    }

    /// The timeout that bounds `part`.
    pub fn timeout(&self, part: Part) -> Duration {
        match part {
            Part::Head => self.timeouts.header,
            Part::Body => self.timeouts.body,
        }
    }

    /// Bytes were read from the connection at `now`.
    pub fn on_read(&mut self, mut bytes: &[u8], now: Instant) {
        while !bytes.is_empty() {
            let used = match self.phase {
                Phase::Idle => {
                    self.start_head(now);
                    0
                }
                Phase::Head { .. } => self.read_head(bytes, now),
                Phase::Length { deadline, left } => {
                    let used = left.min(bytes.len() as u64);
                    self.phase = match left - used {
                        0 => Phase::Idle,
                        left => Phase::Length { deadline, left },
                    };
                    used as usize
                }
                Phase::Chunked { deadline, chunk } => self.read_chunked(bytes, deadline, chunk),
                Phase::Untracked => bytes.len(),
            };
            bytes = &bytes[used..];
        }
    }

    fn start_head(&mut self, now: Instant) {
        self.phase = Phase::Head {
            deadline: now + self.timeouts.header,
        };
        self.line.clear();
        self.overflow = 0;
        self.line_len = 0;
        self.last = 0;
        self.seen_request_line = false;
    }

    /// Takes head bytes up to its end (a blank line after the request
    /// line); returns how many it took. Searches line ends rather than
    /// looking at each byte: this runs on every request.
    fn read_head(&mut self, bytes: &[u8], now: Instant) -> usize {
        let mut from = 0;
        while let Some(nl) = bytes[from..].iter().position(|b| *b == b'\n') {
            let end = from + nl;
            let line = self.line_len + nl;
            let blank = line == 0 || (line == 1 && self.last_before(bytes, end) == b'\r');
            self.keep(&bytes[from..=end]);
            from = end + 1;
            self.line_len = 0;
            if blank {
                // Blank lines before a request line are ignored (RFC 9112 2.2).
                if self.seen_request_line {
                    self.on_head_end(now);
                    return from;
                }
            } else {
                self.seen_request_line = true;
            }
        }
        self.line_len += bytes.len() - from;
        self.keep(&bytes[from..]);
        bytes.len()
    }

    /// The byte before `end` in this read, or the last one kept.
    fn last_before(&self, bytes: &[u8], end: usize) -> u8 {
        match end {
            0 => self.last,
            _ => bytes[end - 1],
        }
    }

    /// Keeps head bytes to parse, up to [`MAX_HEAD_BYTES`].
    fn keep(&mut self, part: &[u8]) {
        if let Some(&b) = part.last() {
            self.last = b;
        }
        let room = MAX_HEAD_BYTES.saturating_sub(self.line.len());
        self.line.extend_from_slice(&part[..room.min(part.len())]);
        self.overflow += part.len().saturating_sub(room);
    }

    fn on_head_end(&mut self, now: Instant) {
        let deadline = now + self.timeouts.body;
        self.phase = match (self.overflow, body_framing(&self.line)) {
            (0, Some(Framing::None)) => Phase::Idle,
            (0, Some(Framing::Length(left))) => Phase::Length { deadline, left },
            (0, Some(Framing::Chunked)) => Phase::Chunked {
                deadline,
                chunk: Chunk::Size,
            },
            _ => Phase::Untracked,
        };
        self.line.clear();
    }

    /// Takes chunked body bytes; returns how many it took.
    fn read_chunked(&mut self, bytes: &[u8], deadline: Instant, chunk: Chunk) -> usize {
        let (used, next) = match chunk {
            Chunk::Size | Chunk::Trailer => {
                let Some(line_end) = self.take_line(bytes) else {
                    return bytes.len();
                };
                let next = if chunk == Chunk::Trailer {
                    let blank = self.line == b"\r\n" || self.line == b"\n";
                    if blank {
                        None
                    } else {
                        Some(Chunk::Trailer)
                    }
                } else {
                    match httparse::parse_chunk_size(&self.line) {
                        Ok(httparse::Status::Complete((_, 0))) => Some(Chunk::Trailer),
                        Ok(httparse::Status::Complete((_, size))) => Some(Chunk::Data(size)),
                        _ => {
                            self.phase = Phase::Untracked;
                            return line_end;
                        }
                    }
                };
                self.line.clear();
                (line_end, next)
            }
            Chunk::Data(left) => {
                let used = left.min(bytes.len() as u64);
                let next = match left - used {
                    0 => Chunk::DataEnd(2),
                    left => Chunk::Data(left),
                };
                (used as usize, Some(next))
            }
            Chunk::DataEnd(left) => {
                let used = usize::from(left).min(bytes.len());
                let next = match usize::from(left) - used {
                    0 => Chunk::Size,
                    left => Chunk::DataEnd(left as u8),
                };
                (used, Some(next))
            }
        };
        self.phase = match next {
            Some(chunk) => Phase::Chunked { deadline, chunk },
            None => Phase::Idle,
        };
        used
    }

    /// Adds bytes to the current line; returns how many bytes ended it,
    /// or `None` if it goes on (or is too long, then untracked).
    fn take_line(&mut self, bytes: &[u8]) -> Option<usize> {
        let end = bytes.iter().position(|b| *b == b'\n');
        let part = &bytes[..end.map_or(bytes.len(), |e| e + 1)];
        if self.line.len() + part.len() > MAX_LINE_BYTES {
            self.phase = Phase::Untracked;
            return None;
        }
        self.line.extend_from_slice(part);
        end.map(|e| e + 1)
    }
}

/// How a request's body is framed.
enum Framing {
    None,
    Length(u64),
    Chunked,
}

/// The body framing a complete head announces, as hyper reads it; `None`
/// for a head hyper refuses (or an upgrade, whose bytes are not HTTP).
fn body_framing(head: &[u8]) -> Option<Framing> {
    let start = head.iter().position(|b| *b != b'\r' && *b != b'\n')?;
    let mut headers = [httparse::EMPTY_HEADER; 100];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(&head[start..]) {
        Ok(httparse::Status::Complete(_)) => {}
        _ => return None,
    }
    let mut framing = Framing::None;
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            let value = std::str::from_utf8(h.value).ok()?;
            let last = value.rsplit(',').next().unwrap_or("").trim();
            if !last.eq_ignore_ascii_case("chunked") {
                return None;
            }
            framing = Framing::Chunked;
        } else if h.name.eq_ignore_ascii_case("content-length") {
            if matches!(framing, Framing::Chunked) {
                continue;
            }
            let length = std::str::from_utf8(h.value).ok()?.trim().parse().ok()?;
            framing = Framing::Length(length);
        } else if h.name.eq_ignore_ascii_case("upgrade") {
            return None;
        }
    }
    if matches!(framing, Framing::Length(0)) {
        framing = Framing::None;
    }
    Some(framing)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: ReadTimeouts = ReadTimeouts {
        header: Duration::from_secs(1),
        body: Duration::from_secs(5),
    };

    fn feed_bytewise(clock: &mut RequestClock, bytes: &[u8], now: Instant) {
        for b in bytes {
            clock.on_read(std::slice::from_ref(b), now);
        }
    }

    #[test]
    fn an_idle_connection_has_no_deadline_and_a_head_its_first_byte_starts_one() {
        let now = Instant::now();
        let mut c = RequestClock::new(T);
        assert_eq!(c.deadline(), None);
        c.on_read(b"G", now);
        assert_eq!(c.deadline(), Some((now + T.header, Part::Head)));
        let later = now + Duration::from_millis(500);
        c.on_read(b"ET / HTTP/1.1\r\nHost: x\r\n", later);
        // Later bytes of the same head do not push the deadline back.
        assert_eq!(c.deadline(), Some((now + T.header, Part::Head)));
        c.on_read(b"\r\n", later);
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn a_body_has_its_own_deadline_until_its_last_byte() {
        let now = Instant::now();
        let mut c = RequestClock::new(T);
        c.on_read(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", now);
        assert_eq!(c.deadline(), Some((now + T.body, Part::Body)));
        c.on_read(b"cd", now);
        assert!(c.deadline().is_some());
        c.on_read(b"e", now);
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn pipelined_requests_in_one_read_leave_the_clock_on_the_last_partial_head() {
        let now = Instant::now();
        let mut c = RequestClock::new(T);
        c.on_read(
            b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\nGET /c HTT",
            now,
        );
        assert_eq!(c.deadline(), Some((now + T.header, Part::Head)));
        c.on_read(b"P/1.1\r\n\r\n", now);
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn a_chunked_body_ends_after_its_last_chunk_and_trailers_however_it_is_split() {
        let request: &[u8] = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
            5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n";
        for split in [false, true] {
            let now = Instant::now();
            let mut c = RequestClock::new(T);
            let body_start = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            if split {
                feed_bytewise(&mut c, request, now);
            } else {
                c.on_read(&request[..body_start], now);
                assert_eq!(c.deadline(), Some((now + T.body, Part::Body)));
                c.on_read(&request[body_start..], now);
            }
            assert_eq!(c.deadline(), None, "split {split}");
            c.on_read(b"G", now);
            assert_eq!(c.deadline(), Some((now + T.header, Part::Head)));
        }
    }

    #[test]
    fn blank_lines_before_a_request_line_do_not_end_its_head() {
        let now = Instant::now();
        let mut c = RequestClock::new(T);
        c.on_read(b"\r\n\r\nGET / HTTP/1.1\r\n", now);
        assert_eq!(c.deadline(), Some((now + T.header, Part::Head)));
        feed_bytewise(&mut c, b"Host: x\r\n\r\n", now);
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn a_head_hyper_refuses_is_left_to_hyper() {
        let now = Instant::now();
        let mut c = RequestClock::new(T);
        c.on_read(b"NOT HTTP AT ALL\r\n\r\n", now);
        assert_eq!(c.deadline(), None);
        c.on_read(b"more", now);
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn an_endless_head_keeps_its_first_deadline() {
        let now = Instant::now();
        let mut c = RequestClock::new(T);
        c.on_read(b"GET / HTTP/1.1\r\n", now);
        for _ in 0..10_000 {
            c.on_read(b"X-Slow: yes\r\n", now + Duration::from_secs(9));
        }
        assert_eq!(c.deadline(), Some((now + T.header, Part::Head)));
    }
}
