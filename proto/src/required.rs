//! The proto2 required-field check that prost does not make.
//!
//! A Mesos master parses bodies with the C++ protobuf library, which refuses a
//! message whose `required` fields (at any depth) are missing, and answers
//! 400 with the missing fields' paths. prost decodes such a message happily,
//! filling in defaults, so we walk the wire bytes once with the descriptor
//! beforehand: no allocation unless something is missing, and only a few
//! percent of a full decode.

use prost::bytes::Buf;
use prost::encoding::{decode_key, decode_varint, WireType};
use prost_reflect::{Cardinality, Kind, MessageDescriptor};

/// Why bytes are not a valid protobuf encoding. Not retryable.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// prost's own wire primitives refused the bytes (bad varint, bad key).
    #[error(transparent)]
    Prost(#[from] prost::DecodeError),
    /// The structure is broken: a length past the end, a group, too deep.
    #[error("{0}")]
    Malformed(&'static str),
}

/// Nesting deeper than this is refused, as prost itself refuses it.
const RECURSION_LIMIT: u32 = 100;

/// The dotted paths of the required fields missing from `bytes`, an encoded
/// `desc` message; an error if the bytes are not a valid encoding.
pub fn missing_fields(desc: &MessageDescriptor, bytes: &[u8]) -> Result<Vec<String>, WireError> {
    let mut missing = Vec::new();
    walk(desc, bytes, None, &mut missing, RECURSION_LIMIT)?;
    Ok(missing)
}

/// Where a nested message sits, kept on the stack so that a valid message
/// costs no allocation.
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    name: &'a str,
    /// The element's position, for an element of a repeated field.
    index: Option<usize>,
}

impl Path<'_> {
    /// `parent.list[2].leaf`, as protobuf's `InitializationErrorString`
    /// names a missing field.
    fn render(path: Option<&Path<'_>>, leaf: &str) -> String {
        let mut names = vec![leaf.to_owned()];
        let mut at = path;
        while let Some(p) = at {
            names.push(match p.index {
                Some(i) => format!("{}[{i}]", p.name),
                None => p.name.to_owned(),
            });
            at = p.parent;
        }
        names.reverse();
        names.join(".")
    }
}

/// Field numbers seen in one message. Mesos' field numbers are all below 128,
/// so a bit set covers them; larger numbers are kept in a list.
#[derive(Default)]
struct Seen {
    low: u128,
    high: Vec<u32>,
}

impl Seen {
    fn insert(&mut self, number: u32) {
        if number < 128 {
            self.low |= 1 << number;
        } else if !self.high.contains(&number) {
            self.high.push(number);
        }
    }
    fn contains(&self, number: u32) -> bool {
        if number < 128 {
            self.low & (1 << number) != 0
        } else {
            self.high.contains(&number)
        }
    }
}

fn walk(
    desc: &MessageDescriptor,
    mut buf: &[u8],
    path: Option<&Path<'_>>,
    missing: &mut Vec<String>,
    depth: u32,
) -> Result<(), WireError> {
    if depth == 0 {
        return Err(WireError::Malformed("recursion limit reached"));
    }
    let mut seen = Seen::default();
    // Missing fields of nested messages are found first, but protobuf lists
    // a message's own missing fields before those of its children.
    let own_missing_at = missing.len();
    // Elements seen so far of each repeated message field, for `[i]` paths.
    let mut repeated_counts: Vec<(u32, usize)> = Vec::new();
    while buf.has_remaining() {
        let (number, wire_type) = decode_key(&mut buf)?;
        seen.insert(number);
        match wire_type {
            WireType::Varint => {
                decode_varint(&mut buf)?;
            }
            WireType::ThirtyTwoBit => skip(&mut buf, 4)?,
            WireType::SixtyFourBit => skip(&mut buf, 8)?,
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf)?;
                let len =
                    usize::try_from(len).map_err(|_| WireError::Malformed("length overflow"))?;
                if len > buf.remaining() {
                    return Err(WireError::Malformed("buffer underflow"));
                }
                let (body, rest) = buf.split_at(len);
                buf = rest;
                if let Some(field) = desc.get_field(number) {
                    if let Kind::Message(child) = field.kind() {
                        let index = field
                            .is_list()
                            .then(|| next_index(&mut repeated_counts, number));
                        let here = Path {
                            parent: path,
                            name: field.name(),
                            index,
                        };
                        walk(&child, body, Some(&here), missing, depth - 1)?;
                    }
                }
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(WireError::Malformed(
                    "groups are not used by Mesos messages",
                ));
            }
        }
    }
    let own: Vec<String> = desc
        .fields()
        .filter(|f| f.cardinality() == Cardinality::Required && !seen.contains(f.number()))
        .map(|f| Path::render(path, f.name()))
        .collect();
    missing.splice(own_missing_at..own_missing_at, own);
    Ok(())
}

fn next_index(counts: &mut Vec<(u32, usize)>, number: u32) -> usize {
    match counts.iter_mut().find(|(n, _)| *n == number) {
        Some((_, count)) => {
            *count += 1;
            *count - 1
        }
        None => {
            counts.push((number, 1));
            0
        }
    }
}

fn skip(buf: &mut &[u8], n: usize) -> Result<(), WireError> {
    if buf.remaining() < n {
        return Err(WireError::Malformed("buffer underflow"));
    }
    buf.advance(n);
    Ok(())
}
