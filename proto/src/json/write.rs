//! DynamicMessage -> Mesos-style JSON text. Written by hand rather than
//! through serde_json because Mesos' output is not strict JSON (bare
//! `Infinity`/`NaN`) and because its number format is its own.

use std::fmt::Write as _;

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, ReflectMessage, Value};

pub(super) fn message_to_string(message: &DynamicMessage) -> String {
    let mut out = String::with_capacity(256);
    write_message(&mut out, message);
    out
}

/// Whether Mesos writes this field: set fields, non-empty repeated fields,
/// and unset optional fields with an explicit, non-deprecated default
/// (stout `protobuf.hpp`, `json(ObjectWriter*, const Protobuf&)`).
fn is_written(message: &DynamicMessage, field: &FieldDescriptor) -> bool {
    if field.is_list() || field.is_map() {
        return message.has_field(field);
    }
    if message.has_field(field) {
        return true;
    }
    let proto = field.field_descriptor_proto();
    let deprecated = proto.options.as_ref().is_some_and(|o| o.deprecated());
    proto.default_value.is_some() && !deprecated
}

fn write_message(out: &mut String, message: &DynamicMessage) {
    out.push('{');
    let mut first = true;
    // Declaration order, as Mesos iterates `descriptor->field(i)`;
    // prost-reflect's `fields()` would give field-number order.
    let desc = message.descriptor();
    for number in desc.descriptor_proto().field.iter().map(|f| f.number()) {
        let field = desc
            .get_field(number as u32)
            .expect("the number comes from this descriptor's own field list");
        if !is_written(message, &field) {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        write_string(out, field.name());
        out.push(':');
        let value = message.get_field(&field);
        write_field_value(out, &field, &value);
    }
    out.push('}');
}

fn write_field_value(out: &mut String, field: &FieldDescriptor, value: &Value) {
    match value {
        Value::List(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, &field.kind(), item);
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let value_kind = match field.kind() {
                Kind::Message(entry) => entry.map_entry_value_field().kind(),
                other => other,
            };
            // Sorted so that the output is deterministic; Mesos' own order
            // is the map's internal one, which no reader may depend on.
            let mut sorted: Vec<_> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_map_key(out, key);
                out.push(':');
                write_value(out, &value_kind, item);
            }
            out.push('}');
        }
        single => write_value(out, &field.kind(), single),
    }
}

fn write_map_key(out: &mut String, key: &MapKey) {
    match key {
        MapKey::String(s) => write_string(out, s),
        MapKey::Bool(b) => write_string(out, if *b { "true" } else { "false" }),
        MapKey::I32(n) => write_string(out, &n.to_string()),
        MapKey::I64(n) => write_string(out, &n.to_string()),
        MapKey::U32(n) => write_string(out, &n.to_string()),
        MapKey::U64(n) => write_string(out, &n.to_string()),
    }
}

fn write_value(out: &mut String, kind: &Kind, value: &Value) {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::I32(n) => push_display(out, n),
        Value::I64(n) => push_display(out, n),
        Value::U32(n) => push_display(out, n),
        Value::U64(n) => push_display(out, n),
        // Mesos widens a float to a double before writing it.
        Value::F32(f) => out.push_str(&format_double(f64::from(*f))),
        Value::F64(f) => out.push_str(&format_double(*f)),
        Value::String(s) => write_string(out, s),
        Value::Bytes(b) => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(b);
            write_string(out, &encoded);
        }
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => match e.get_value(*n) {
                Some(v) => write_string(out, v.name()),
                // A number prost kept but the enum does not name: C++
                // protobuf would have kept it as an unknown field; the
                // number is the most honest thing to show.
                None => push_display(out, n),
            },
            _ => push_display(out, n),
        },
        Value::Message(m) => write_message(out, m),
        // Lists and maps only occur at the field level.
        Value::List(_) | Value::Map(_) => out.push_str("null"),
    }
}

fn push_display(out: &mut String, value: impl std::fmt::Display) {
    write!(out, "{value}").expect("writing to a String cannot fail");
}

/// Formats a double as Mesos does: rapidjson's Grisu2 and `Prettify`, which
/// the `dtoa` crate ports exactly (`15.0`, `0.1`, `1e21`, `1.5e-7`). Mesos
/// patches rapidjson to write the infinities as the strings `"Infinity"` and
/// `"-Infinity"`, which its reader accepts back; NaN stays the bare token
/// `NaN`, which is not JSON but is what a Mesos master writes.
pub(crate) fn format_double(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 {
            "\"Infinity\""
        } else {
            "\"-Infinity\""
        }
        .to_owned();
    }
    dtoa::Buffer::new().format_finite(value).to_owned()
}

/// Writes a JSON string: quotes, backslashes and control characters escaped,
/// everything else as UTF-8.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                write!(out, "\\u{:04X}", c as u32).expect("writing to a String cannot fail");
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::format_double;

    #[test]
    fn doubles_are_written_as_mesos_writes_them() {
        for (value, want) in [
            (15.0, "15.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (0.1 + 0.2, "0.30000000000000007"),
            (604800.0, "604800.0"),
            (1e20, "100000000000000000000.0"),
            (1e21, "1e21"),
            (1.5e-7, "1.5e-7"),
            (0.000001, "0.000001"),
            (f64::INFINITY, "\"Infinity\""),
            (f64::NEG_INFINITY, "\"-Infinity\""),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(format_double(value), want, "{value:e}");
        }
    }
}
