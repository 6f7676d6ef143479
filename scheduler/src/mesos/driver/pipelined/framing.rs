//! HTTP/1.1 framing for the pipelined batches, as pure functions over
//! bytes: a batch of requests written back to back, an answer's head
//! parsed (how its body ends, whether its connection stays), a chunked
//! body read whole. The connections that carry them are `mod.rs`'s.

use bytes::{Bytes, BytesMut};
use http::Uri;
use std::fmt::Write as _;
use std::io;

/// The largest answer body read; an acknowledgement's answer is empty, an
/// error's a line of text.
pub(crate) const MAX_BODY: usize = 64 * 1024;
/// Headers parsed per answer.
pub(crate) const MAX_HEADERS: usize = 32;

/// How an answer's body ends (RFC 9112 section 6.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (1xx, 204, 304).
    Empty,
    /// `Content-Length` bytes.
    Length(usize),
    /// Chunked transfer coding.
    Chunked,
    /// Everything until the connection closes.
    UntilClose,
}

#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Head {
    /// Bytes of the status line and headers.
    pub len: usize,
    /// The status code.
    pub status: u16,
    /// How its body ends.
    pub framing: Framing,
    /// Whether the connection may carry another exchange.
    pub keep_alive: bool,
    /// The `Location` header, if any.
    pub location: Option<String>,
}

pub(crate) fn bad(why: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("bad answer: {why}"))
}

pub(crate) fn too_large() -> io::Error {
    bad("body larger than 64 KiB")
}

/// The status line and headers at the start of `buf`, if all there.
pub(crate) fn parse_head(buf: &[u8]) -> io::Result<Option<Head>> {
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
pub(crate) fn parse_chunked(buf: &[u8]) -> io::Result<Option<(Vec<u8>, usize)>> {
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
pub(crate) fn encode_requests(
    url: &Uri,
    headers: &[(&str, &str)],
    bodies: &[&Bytes],
) -> Result<(String, BytesMut), String> {
    let host = url.host().ok_or("the master's URL has no host")?;
    let port = url.port_u16().unwrap_or(80);
    let authority = match url.authority() {
        Some(a) if a.port().is_some() => a.as_str().to_owned(),
        _ => format!("{host}:{port}"),
    };
    let path = url.path_and_query().map_or("/", |p| p.as_str());
    if !headers
        .iter()
        .all(|(name, value)| is_header_name(name) && is_header_value(value))
    {
        return Err("a header holds a control character".into());
    }
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    let bytes: usize = bodies.iter().map(|b| b.len()).sum();
    let mut out = BytesMut::with_capacity(bodies.len() * (head.len() + 32) + bytes);
    for body in bodies {
        out.extend_from_slice(head.as_bytes());
        let _ = write!(out, "Content-Length: {}\r\n\r\n", body.len());
        out.extend_from_slice(body);
    }
    Ok((authority, out))
}

fn is_header_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

fn is_header_value(v: &str) -> bool {
    v.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::scheduler::Call;
    use drover_proto::MediaType;

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

    /// What the driver gives every call of a batch (`request::call_headers`,
    /// whose own test checks it matches a single call's).
    const HEADERS: [(&str, &str); 4] = [
        ("Content-Type", "application/json"),
        ("Accept", "application/json"),
        ("Mesos-Stream-Id", "s-1"),
        ("Authorization", "Basic cDpz"),
    ];

    #[test]
    fn requests_carry_what_a_single_call_would() {
        let media = MediaType::Json;
        let master: Uri = "http://m1:5050/master/api/v1/scheduler".parse().unwrap();
        let call = crate::mesos::calls::acknowledge("a1".into(), "t1".into(), vec![1, 2].into());
        let encoded = Bytes::from(media.encode(&call));
        let (authority, bytes) = encode_requests(&master, &HEADERS, &[&encoded, &encoded]).unwrap();
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
        assert_eq!(header("Host"), "m1:5050");
        assert_eq!(header("Mesos-Stream-Id"), "s-1");
        assert_eq!(header("Content-Type"), "application/json");
        assert_eq!(header("Accept"), "application/json");
        assert_eq!(header("Authorization"), "Basic cDpz");
        let n: usize = header("Content-Length").parse().unwrap();
        let body = &text.as_bytes()[len..len + n];
        assert_eq!(media.decode::<Call>(body).unwrap(), call);
        assert_eq!(text.matches("POST ").count(), 2);
        let smuggled = [("Mesos-Stream-Id", "a\r\nX: y")];
        assert!(encode_requests(&master, &smuggled, &[&encoded]).is_err());
        assert!(encode_requests(&master, &[("X: y\r\nZ", "v")], &[&encoded]).is_err());
    }
}
