//! RecordIO framing, the way Mesos frames the events of a subscription stream:
//! `<decimal length>\n<length bytes>`, repeated, with nothing between records.
//!
//! The decoder is incremental and does no I/O: a drive layer feeds it the
//! de-chunked bytes of an HTTP body as they arrive, in any chunking, and asks
//! for whole records. "Not enough bytes yet" is `Ok(None)`, never an error.
//! The length prefix is checked against the maximum as soon as it is parsed,
//! before any of the record's body is buffered, so a hostile or corrupt peer
//! cannot make us allocate more than the maximum.
//!
//! Mesos' own decoder (stout `recordio::Decoder`) has no size limit and accepts
//! a zero-length record; we accept the empty record too and add the limit.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// The default largest record a decoder accepts: 64 MiB.
///
/// The largest legitimate record on a scheduler stream is an OFFERS event: a
/// master with 10,000 agents sends one offer per agent in one event, about
/// 1-2 KiB each in JSON, so 10-20 MiB. 64 MiB leaves room for fleets several
/// times that size while still bounding what a corrupt length prefix can make
/// a client buffer.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 64 * 1024 * 1024;

/// Decimal digits in the largest u64; a longer prefix cannot be valid.
const MAX_PREFIX_DIGITS: usize = 20;

/// What can go wrong while decoding a RecordIO stream. After any of these the
/// stream is unusable: the decoder keeps returning the same error, and the
/// caller should drop the connection (none of them is retryable on the same
/// stream).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// The bytes before the newline are not a decimal length: empty, a
    /// non-digit (sign, space, letter), or more digits than any u64 has.
    #[error("bad RecordIO length prefix {prefix:?}: {why}")]
    BadLengthPrefix {
        /// The offending prefix bytes, lossily decoded, at most 32 of them.
        prefix: String,
        /// Which rule the prefix broke.
        why: &'static str,
    },
    /// A record announces more bytes than this decoder accepts.
    #[error("RecordIO record of {length} bytes exceeds the maximum of {max} bytes")]
    RecordTooLarge {
        /// The announced length.
        length: u64,
        /// The decoder's configured maximum.
        max: usize,
    },
    /// The stream ended inside a record (in its prefix or its body).
    #[error(
        "RecordIO stream truncated: ended {received} bytes into a record that needs {expected}"
    )]
    Truncated {
        /// Bytes the unfinished record needs, prefix and newline included
        /// (for an unfinished prefix, the bytes seen plus one for the newline).
        expected: u64,
        /// Bytes of it that arrived.
        received: u64,
    },
}

/// Appends one record (`len\npayload`) to `dst`.
pub fn write_record(dst: &mut BytesMut, payload: &[u8]) {
    let digits = itoa_u64(payload.len() as u64);
    dst.reserve(digits.len() + 1 + payload.len());
    dst.put_slice(digits.as_bytes());
    dst.put_u8(b'\n');
    dst.put_slice(payload);
}

/// One record as a standalone buffer, for writing as one HTTP body chunk.
pub fn encode_record(payload: &[u8]) -> Bytes {
    let mut dst = BytesMut::new();
    write_record(&mut dst, payload);
    dst.freeze()
}

/// Decimal digits of `n`, without allocating.
struct Digits {
    buf: [u8; MAX_PREFIX_DIGITS],
    start: usize,
}

impl Digits {
    fn len(&self) -> usize {
        MAX_PREFIX_DIGITS - self.start
    }
    fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_u64(mut n: u64) -> Digits {
    let mut buf = [0u8; MAX_PREFIX_DIGITS];
    let mut start = MAX_PREFIX_DIGITS;
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start }
}

/// An incremental RecordIO decoder.
///
/// Calling contract: `feed` bytes as they arrive; call `next_record` until it
/// returns `Ok(None)`; at the end of the stream call `finish`, which tells a
/// clean end (no partial record buffered) from a truncated one.
#[derive(Debug)]
pub struct RecordDecoder {
    buf: BytesMut,
    max_record_bytes: usize,
    /// The body length of the record being read, once its prefix is parsed.
    pending_body: Option<usize>,
    /// Bytes of the prefix (digits and newline) of the record being read.
    pending_prefix_len: usize,
    failed: Option<RecordIoError>,
}

impl Default for RecordDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RECORD_BYTES)
    }
}

impl RecordDecoder {
    /// A decoder that rejects records longer than `max_record_bytes`.
    pub fn new(max_record_bytes: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_record_bytes,
            pending_body: None,
            pending_prefix_len: 0,
            failed: None,
        }
    }

    /// The configured maximum record size.
    pub fn max_record_bytes(&self) -> usize {
        self.max_record_bytes
    }

    /// Buffers bytes that arrived on the stream.
    pub fn feed(&mut self, chunk: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(chunk);
        }
    }

    /// The next whole record, `Ok(None)` if more bytes are needed.
    pub fn next_record(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.step() {
            Ok(record) => Ok(record),
            Err(err) => {
                self.failed = Some(err.clone());
                self.buf = BytesMut::new();
                Err(err)
            }
        }
    }

    fn step(&mut self) -> Result<Option<Bytes>, RecordIoError> {
        let body_len = match self.pending_body {
            Some(len) => len,
            None => match self.parse_prefix()? {
                Some(len) => len,
                None => return Ok(None),
            },
        };
        if self.buf.len() < body_len {
            // Reserve up front so a large record is not copied on every
            // chunk; the length was checked against the maximum already.
            self.buf.reserve(body_len - self.buf.len());
            return Ok(None);
        }
        self.pending_body = None;
        self.pending_prefix_len = 0;
        Ok(Some(self.buf.split_to(body_len).freeze()))
    }

    /// Parses and consumes a complete length prefix, checking it at once.
    fn parse_prefix(&mut self) -> Result<Option<usize>, RecordIoError> {
        let newline = self.buf.iter().position(|&b| b == b'\n');
        let digits = &self.buf[..newline.unwrap_or(self.buf.len())];
        let mut length: u64 = 0;
        for &b in digits {
            if !b.is_ascii_digit() {
                return Err(bad_prefix(digits, "not a decimal digit"));
            }
            length = length
                .checked_mul(10)
                .and_then(|l| l.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| bad_prefix(digits, "larger than a 64-bit length"))?;
            // Checked per digit so that an endless run of digits is refused
            // as soon as it passes the maximum, not when its newline arrives.
            if length > self.max_record_bytes as u64 {
                return Err(RecordIoError::RecordTooLarge {
                    length,
                    max: self.max_record_bytes,
                });
            }
        }
        let Some(newline) = newline else {
            return Ok(None);
        };
        if newline == 0 {
            return Err(bad_prefix(b"", "empty"));
        }
        self.buf.advance(newline + 1);
        // `length <= max_record_bytes`, a usize, so this cannot truncate.
        let length = length as usize;
        self.pending_body = Some(length);
        self.pending_prefix_len = newline + 1;
        Ok(Some(length))
    }

    /// Ends the stream: `Ok` when nothing is left over, `Truncated` when the
    /// stream stopped inside a record.
    pub fn finish(&self) -> Result<(), RecordIoError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.pending_body {
            Some(body) => Err(RecordIoError::Truncated {
                expected: (self.pending_prefix_len + body) as u64,
                received: (self.pending_prefix_len + self.buf.len()) as u64,
            }),
            None if self.buf.is_empty() => Ok(()),
            None => Err(RecordIoError::Truncated {
                expected: self.buf.len() as u64 + 1,
                received: self.buf.len() as u64,
            }),
        }
    }

    /// Decodes a complete stream held in memory: every record, or the first
    /// error (including truncation at the end).
    pub fn decode_all(max_record_bytes: usize, stream: &[u8]) -> Result<Vec<Bytes>, RecordIoError> {
        let mut decoder = Self::new(max_record_bytes);
        decoder.feed(stream);
        let mut records = Vec::new();
        while let Some(record) = decoder.next_record()? {
            records.push(record);
        }
        decoder.finish()?;
        Ok(records)
    }
}

fn bad_prefix(digits: &[u8], why: &'static str) -> RecordIoError {
    let shown = &digits[..digits.len().min(32)];
    RecordIoError::BadLengthPrefix {
        prefix: String::from_utf8_lossy(shown).into_owned(),
        why,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(max: usize, stream: &[u8]) -> Result<Vec<Vec<u8>>, RecordIoError> {
        RecordDecoder::decode_all(max, stream).map(|r| r.into_iter().map(|b| b.to_vec()).collect())
    }

    #[test]
    fn encodes_length_newline_payload_with_no_separator() {
        let mut dst = BytesMut::new();
        write_record(&mut dst, br#"{"type":"HEARTBEAT"}"#);
        write_record(&mut dst, b"");
        write_record(&mut dst, b"xy");
        assert_eq!(&dst[..], b"20\n{\"type\":\"HEARTBEAT\"}0\n2\nxy");
    }

    #[test]
    fn the_reference_example_decodes_to_two_records() {
        let first = r#"{"type":"SUBSCRIBED","subscribed":{"framework_id":{"value":"a5f8c3e1-29b4-4a7c-9d1e-0c4b7e2f6a10-0000"},"heartbeat_interval_seconds":15.0}}"#;
        let stream = format!("139\n{first}20\n{{\"type\":\"HEARTBEAT\"}}");
        let records = decode(DEFAULT_MAX_RECORD_BYTES, stream.as_bytes()).unwrap();
        assert_eq!(
            records,
            vec![
                first.as_bytes().to_vec(),
                br#"{"type":"HEARTBEAT"}"#.to_vec()
            ]
        );
    }

    #[test]
    fn length_counts_bytes_not_characters() {
        let payload = "é€";
        let framed = encode_record(payload.as_bytes());
        assert_eq!(&framed[..2], b"5\n");
        assert_eq!(
            decode(100, &framed).unwrap(),
            vec![payload.as_bytes().to_vec()]
        );
    }

    #[test]
    fn a_partial_record_is_not_an_error_until_the_stream_ends() {
        let mut d = RecordDecoder::new(100);
        d.feed(b"5\nab");
        assert_eq!(d.next_record(), Ok(None));
        assert_eq!(
            d.finish(),
            Err(RecordIoError::Truncated {
                expected: 7,
                received: 4
            })
        );
        d.feed(b"cde3");
        assert_eq!(d.next_record().unwrap().as_deref(), Some(&b"abcde"[..]));
        assert_eq!(d.next_record(), Ok(None));
        assert_eq!(
            d.finish(),
            Err(RecordIoError::Truncated {
                expected: 2,
                received: 1
            })
        );
        d.feed(b"\nxyz");
        assert_eq!(d.next_record().unwrap().as_deref(), Some(&b"xyz"[..]));
        assert_eq!(d.finish(), Ok(()));
    }

    #[test]
    fn an_oversize_length_is_refused_before_its_body_arrives() {
        let mut d = RecordDecoder::new(10);
        d.feed(b"11\n");
        assert_eq!(
            d.next_record(),
            Err(RecordIoError::RecordTooLarge {
                length: 11,
                max: 10
            })
        );
        // Poisoned: the same error again, and nothing more is buffered.
        d.feed(b"0123456789a");
        assert_eq!(
            d.next_record(),
            Err(RecordIoError::RecordTooLarge {
                length: 11,
                max: 10
            })
        );
    }

    #[test]
    fn an_endless_run_of_digits_is_refused_without_a_newline() {
        let mut d = RecordDecoder::new(1000);
        d.feed(b"99999");
        assert!(matches!(
            d.next_record(),
            Err(RecordIoError::RecordTooLarge { .. })
        ));
    }

    #[test]
    fn bad_prefixes_are_typed_errors() {
        for (stream, why) in [
            (&b"\nabc"[..], "empty"),
            (b"+3\nabc", "not a decimal digit"),
            (b" 3\nabc", "not a decimal digit"),
            (b"3 \nabc", "not a decimal digit"),
            (b"0x3\nabc", "not a decimal digit"),
            (b"-1\n", "not a decimal digit"),
        ] {
            match decode(usize::MAX, stream) {
                Err(RecordIoError::BadLengthPrefix { why: got, .. }) => {
                    assert_eq!(got, why, "{stream:?}")
                }
                other => panic!("{stream:?}: {other:?}"),
            }
        }
        assert!(matches!(
            decode(usize::MAX, b"99999999999999999999999\n"),
            Err(RecordIoError::BadLengthPrefix {
                why: "larger than a 64-bit length",
                ..
            })
        ));
    }

    #[test]
    fn leading_zeros_and_empty_records_are_accepted() {
        assert_eq!(
            decode(10, b"003\nabc0\n").unwrap(),
            vec![b"abc".to_vec(), vec![]]
        );
    }

    #[test]
    fn an_empty_stream_is_a_clean_end() {
        assert_eq!(decode(10, b"").unwrap(), Vec::<Vec<u8>>::new());
    }
}
