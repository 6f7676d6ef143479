//! The proto2 required-field check that prost does not make.
//!
//! A Mesos master parses bodies with the C++ protobuf library, which refuses a
//! message whose `required` fields (at any depth) are missing, and answers
//! 400 with the missing fields' paths. prost decodes such a message happily,
//! filling in defaults, so we walk the wire bytes once beforehand, with
//! what the walk needs of each message type ([`Shape`]: its required fields
//! as a bit set, its message fields): no allocation unless something is
//! missing. (Asking the descriptors field by field on every message made the
//! check cost as much as the decode itself.)
//!
//! The shapes are a static table that `build.rs` works out from the same
//! descriptors the prost types come from, not derived at run time from
//! [`crate::descriptors::pool`]: decoding that pool cost every process that
//! reads protobuf 2.7 MiB of resident memory for good (a third of an idle
//! executor's). A test checks the table against the pool, message by message.

use prost::bytes::Buf;
use prost::encoding::{decode_key, decode_varint, WireType};

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

/// The same for the Mesos message named `full_name`, which must be one of
/// the compiled Mesos messages.
fn missing_fields_named(full_name: &str, bytes: &[u8]) -> Result<Vec<String>, WireError> {
    let root = shape_named(full_name)
        .expect("every generated type was compiled from a file the shapes were made from");
    let mut missing = Vec::new();
    walk(root, bytes, None, &mut missing, RECURSION_LIMIT)?;
    Ok(missing)
}

/// What the walk needs of one message type.
#[derive(Debug)]
struct Shape {
    /// The message's full name (`mesos.v1.scheduler.Call`); [`SHAPES`] is
    /// sorted by it.
    name: &'static str,
    /// The required fields' numbers and names, in declaration order: the
    /// order protobuf lists missing fields in.
    required: &'static [(u32, &'static str)],
    /// Required fields numbered below 128 (all of Mesos'), as a bit set.
    required_low: u128,
    /// Required fields numbered 128 and above.
    required_high: &'static [u32],
    /// The message-typed fields, sorted by number.
    children: &'static [(u32, Child)],
}

/// A message-typed field of a [`Shape`].
#[derive(Debug)]
struct Child {
    name: &'static str,
    is_list: bool,
    /// The field type's shape: its index in [`SHAPES`].
    shape: usize,
}

// `static SHAPES: &[Shape]`, every Mesos v1 message, written by build.rs.
include!(concat!(env!("OUT_DIR"), "/mesos_v1_shapes.rs"));

/// The index in [`SHAPES`] of the message named `full_name`.
fn shape_named(full_name: &str) -> Option<usize> {
    SHAPES.binary_search_by(|s| s.name.cmp(full_name)).ok()
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
    shape: usize,
    mut buf: &[u8],
    path: Option<&Path<'_>>,
    missing: &mut Vec<String>,
    depth: u32,
) -> Result<(), WireError> {
    if depth == 0 {
        return Err(WireError::Malformed("recursion limit reached"));
    }
    let shape = &SHAPES[shape];
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
                        name: child.name,
                        index,
                    };
                    walk(child.shape, body, Some(&here), missing, depth - 1)?;
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
            .required
            .iter()
            .filter(|(number, _)| !seen.contains(*number))
            .map(|(_, name)| Path::render(path, name))
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
    use prost_reflect::{Cardinality, Kind, MessageDescriptor};

    /// What the walk needs of a message, owned, so that a generated
    /// [`Shape`] and one worked out from the descriptor pool compare.
    #[derive(Debug, PartialEq)]
    struct Described {
        required: Vec<(u32, String)>,
        required_low: u128,
        required_high: Vec<u32>,
        /// (number, name, is_list, the field type's full name).
        children: Vec<(u32, String, bool, String)>,
    }

    impl Described {
        fn of_generated(shape: &Shape) -> Described {
            Described {
                required: (shape.required.iter())
                    .map(|(number, name)| (*number, (*name).to_owned()))
                    .collect(),
                required_low: shape.required_low,
                required_high: shape.required_high.to_vec(),
                children: (shape.children.iter())
                    .map(|(number, c)| {
                        (
                            *number,
                            c.name.to_owned(),
                            c.is_list,
                            SHAPES[c.shape].name.to_owned(),
                        )
                    })
                    .collect(),
            }
        }

        /// As the check worked its shapes out from the pool before
        /// build.rs made them.
        fn of_descriptor(desc: &MessageDescriptor) -> Described {
            let mut described = Described {
                required: Vec::new(),
                required_low: 0,
                required_high: Vec::new(),
                children: Vec::new(),
            };
            for field in desc.fields() {
                let number = field.number();
                if field.cardinality() == Cardinality::Required {
                    described.required.push((number, field.name().to_owned()));
                    if number < 128 {
                        described.required_low |= 1 << number;
                    } else {
                        described.required_high.push(number);
                    }
                }
                if let Kind::Message(child) = field.kind() {
                    described.children.push((
                        number,
                        field.name().to_owned(),
                        field.is_list(),
                        child.full_name().to_owned(),
                    ));
                }
            }
            described.children.sort_by_key(|(number, ..)| *number);
            described
        }
    }

    #[test]
    fn the_generated_shapes_say_what_the_descriptors_say_for_every_message() {
        let pool = crate::descriptors::pool();
        let mut names: Vec<String> = (pool.all_messages())
            .map(|m| m.full_name().to_owned())
            .collect();
        names.sort_unstable();
        let generated: Vec<&str> = SHAPES.iter().map(|s| s.name).collect();
        // The same messages, and in order, so that a binary search finds them.
        assert_eq!(generated, names);
        for desc in pool.all_messages() {
            let shape = &SHAPES[shape_named(desc.full_name()).unwrap()];
            assert_eq!(
                Described::of_generated(shape),
                Described::of_descriptor(&desc),
                "{}",
                desc.full_name()
            );
        }
    }

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
