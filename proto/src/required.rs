//! The proto2 required-field check that prost does not make.
//!
//! A Mesos master parses bodies with the C++ protobuf library, which refuses a
//! message whose `required` fields (at any depth) are missing, and answers
//! 400 with the missing fields' paths. prost decodes such a message happily,
//! filling in defaults, so we walk the wire bytes once beforehand, with
//! what the walk needs of each message type ([`Shape`]: its required fields
//! as a bit set, its message fields) worked out once from the descriptors:
//! no allocation unless something is missing. (Asking the descriptors
//! field by field on every message made the check cost as much as the
//! decode itself.)

use prost::bytes::Buf;
use prost::encoding::{decode_key, decode_varint, WireType};
use prost_reflect::{Cardinality, DescriptorPool, Kind, MessageDescriptor};
use std::collections::HashMap;
use std::sync::OnceLock;

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
/// `M`; an error if the bytes are not a valid encoding.
pub fn missing_fields_of<M: crate::MesosMessage>(bytes: &[u8]) -> Result<Vec<String>, WireError> {
    missing_fields_named(&M::full_name(), bytes)
}

/// The same for the Mesos message named `full_name`, which must be in the
/// pool: its shape is found by name, not through its descriptor first.
fn missing_fields_named(full_name: &str, bytes: &[u8]) -> Result<Vec<String>, WireError> {
    let shapes = mesos_shapes();
    let root = *shapes
        .by_name
        .get(full_name)
        .expect("every generated type was compiled from a file in the pool");
    let mut missing = Vec::new();
    walk(shapes, root, bytes, None, &mut missing, RECURSION_LIMIT)?;
    Ok(missing)
}

/// What the walk needs of one message type.
#[derive(Debug)]
struct Shape {
    desc: MessageDescriptor,
    /// Required fields numbered below 128 (all of Mesos'), as a bit set.
    required_low: u128,
    /// Required fields numbered 128 and above.
    required_high: Vec<u32>,
    /// The message-typed fields by number: name, repeated, and the shape.
    children: Vec<(u32, Child)>,
}

#[derive(Debug)]
struct Child {
    name: String,
    is_list: bool,
    shape: usize,
}

impl Shape {
    fn child(&self, number: u32) -> Option<&Child> {
        let at = self
            .children
            .binary_search_by_key(&number, |(n, _)| *n)
            .ok()?;
        Some(&self.children[at].1)
    }

    fn lacks_any(&self, seen: &Seen) -> bool {
        self.required_low & !seen.low != 0 || self.required_high.iter().any(|n| !seen.contains(*n))
    }
}

/// The shapes of every message of a pool, children by index.
#[derive(Debug)]
struct Shapes {
    all: Vec<Shape>,
    by_name: HashMap<String, usize>,
}

fn mesos_shapes() -> &'static Shapes {
    static SHAPES: OnceLock<Shapes> = OnceLock::new();
    SHAPES.get_or_init(|| Shapes::of(crate::descriptors::pool()))
}

impl Shapes {
    fn of(pool: &DescriptorPool) -> Shapes {
        let by_name: HashMap<String, usize> = pool
            .all_messages()
            .enumerate()
            .map(|(i, m)| (m.full_name().to_owned(), i))
            .collect();
        let all = pool
            .all_messages()
            .map(|desc| {
                let mut shape = Shape {
                    desc: desc.clone(),
                    required_low: 0,
                    required_high: Vec::new(),
                    children: Vec::new(),
                };
                for field in desc.fields() {
                    let number = field.number();
                    if field.cardinality() == Cardinality::Required {
                        if number < 128 {
                            shape.required_low |= 1 << number;
                        } else {
                            shape.required_high.push(number);
                        }
                    }
                    if let Kind::Message(child) = field.kind() {
                        let child = Child {
                            name: field.name().to_owned(),
                            is_list: field.is_list(),
                            shape: by_name[child.full_name()],
                        };
                        shape.children.push((number, child));
                    }
                }
                shape.children.sort_by_key(|(n, _)| *n);
                shape
            })
            .collect();
        Shapes { all, by_name }
    }
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
    shapes: &Shapes,
    shape: usize,
    mut buf: &[u8],
    path: Option<&Path<'_>>,
    missing: &mut Vec<String>,
    depth: u32,
) -> Result<(), WireError> {
    if depth == 0 {
        return Err(WireError::Malformed("recursion limit reached"));
    }
    let shape = &shapes.all[shape];
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
                if let Some(child) = shape.child(number) {
                    let index = child
                        .is_list
                        .then(|| next_index(&mut repeated_counts, number));
                    let here = Path {
                        parent: path,
                        name: &child.name,
                        index,
                    };
                    walk(shapes, child.shape, body, Some(&here), missing, depth - 1)?;
                }
            }
            WireType::StartGroup | WireType::EndGroup => {
                return Err(WireError::Malformed(
                    "groups are not used by Mesos messages",
                ));
            }
        }
    }
    if shape.lacks_any(&seen) {
        let own: Vec<String> = shape
            .desc
            .fields()
            .filter(|f| f.cardinality() == Cardinality::Required && !seen.contains(f.number()))
            .map(|f| Path::render(path, f.name()))
            .collect();
        missing.splice(own_missing_at..own_missing_at, own);
    }
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_message_lacks_exactly_its_required_fields() {
        let pool = crate::descriptors::pool();
        for desc in pool.all_messages() {
            let required: Vec<String> = desc
                .fields()
                .filter(|f| f.cardinality() == Cardinality::Required)
                .map(|f| f.name().to_owned())
                .collect();
            assert_eq!(
                missing_fields_named(desc.full_name(), &[]).unwrap(),
                required,
                "{}",
                desc.full_name()
            );
        }
    }

    #[test]
    fn nested_and_repeated_messages_are_checked_at_every_depth() {
        let call = pool_message("mesos.v1.scheduler.Call");
        let accept = call.get_field_by_name("accept").unwrap().number();
        let offer_ids = pool_message("mesos.v1.scheduler.Call.Accept")
            .get_field_by_name("offer_ids")
            .unwrap()
            .number();
        let offer_id = |value: &[u8]| {
            let mut id = Vec::new();
            if !value.is_empty() {
                id.push(0x0a); // field 1 (value), length-delimited
                id.push(value.len() as u8);
                id.extend_from_slice(value);
            }
            let mut field = vec![((offer_ids << 3) | 2) as u8, id.len() as u8];
            field.extend(id);
            field
        };
        // One-byte keys: both fields are numbered below 16.
        assert!(accept < 16 && offer_ids < 16);
        let mut body = offer_id(b"o");
        body.extend(offer_id(b""));
        let mut bytes = vec![((accept << 3) | 2) as u8, body.len() as u8];
        bytes.extend(body);
        assert_eq!(
            missing_fields_named(call.full_name(), &bytes).unwrap(),
            vec!["accept.offer_ids[1].value"]
        );
    }

    fn pool_message(name: &str) -> MessageDescriptor {
        crate::descriptors::pool()
            .get_message_by_name(name)
            .unwrap()
    }
}
