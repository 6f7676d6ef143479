//! Mesos-style JSON (already parsed by serde_json) -> DynamicMessage, with
//! the lenient input rules of Mesos' `protobuf::parse` (stout
//! `protobuf.hpp`). Required fields are checked afterwards, on the encoded
//! message, by the same code that checks protobuf bodies.

use std::collections::HashMap;

use base64::Engine as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, Value};
use serde_json::Value as Json;

use super::JsonError;

/// Deeper JSON than this is refused; Mesos messages nest about ten deep.
const MAX_DEPTH: u32 = 64;

pub(super) fn message_from_value(
    desc: MessageDescriptor,
    json: &Json,
) -> Result<DynamicMessage, JsonError> {
    read_message(desc, json, "", MAX_DEPTH)
}

fn read_message(
    desc: MessageDescriptor,
    json: &Json,
    path: &str,
    depth: u32,
) -> Result<DynamicMessage, JsonError> {
    if depth == 0 {
        return Err(JsonError::TooDeep(MAX_DEPTH));
    }
    let Json::Object(object) = json else {
        return Err(if path.is_empty() {
            JsonError::NotAnObject
        } else {
            wrong_type(path, json)
        });
    };
    let mut message = DynamicMessage::new(desc.clone());
    for (key, value) in object {
        // Unknown keys are ignored, as Mesos ignores them.
        let Some(field) = desc.get_field_by_name(key) else {
            continue;
        };
        if value.is_null() {
            continue;
        }
        let field_path = join(path, key);
        if field.is_map() {
            let map = read_map(&field, value, &field_path, depth)?;
            message.set_field(&field, Value::Map(map));
        } else if field.is_list() {
            // A single value stands for a one-element list (Mesos [impl]).
            let items: &[Json] = match value {
                Json::Array(items) => items,
                single => std::slice::from_ref(single),
            };
            let mut list = Vec::with_capacity(items.len());
            for item in items {
                if let Some(v) = read_single(&field.kind(), item, &field_path, false, depth)? {
                    list.push(v);
                }
            }
            if !list.is_empty() {
                message.set_field(&field, Value::List(list));
            }
        } else {
            if value.is_array() {
                return Err(wrong_type(&field_path, value));
            }
            if let Some(v) = read_single(
                &field.kind(),
                value,
                &field_path,
                field.is_required(),
                depth,
            )? {
                message.set_field(&field, v);
            }
        }
    }
    Ok(message)
}

fn read_map(
    field: &FieldDescriptor,
    json: &Json,
    path: &str,
    depth: u32,
) -> Result<HashMap<MapKey, Value>, JsonError> {
    let Json::Object(object) = json else {
        return Err(wrong_type(path, json));
    };
    let Kind::Message(entry) = field.kind() else {
        unreachable!("a map field's kind is its entry message");
    };
    let key_kind = entry.map_entry_key_field().kind();
    let value_kind = entry.map_entry_value_field().kind();
    let mut map = HashMap::with_capacity(object.len());
    for (key, value) in object {
        let entry_path = join(path, key);
        let key = read_map_key(&key_kind, key, &entry_path)?;
        // A null value makes an entry holding the default, as in Mesos.
        let value = if value.is_null() {
            Some(Value::default_value(&value_kind))
        } else {
            read_single(&value_kind, value, &entry_path, false, depth)?
        };
        if let Some(v) = value {
            map.insert(key, v);
        }
    }
    Ok(map)
}

fn read_map_key(kind: &Kind, key: &str, path: &str) -> Result<MapKey, JsonError> {
    let bad = |expected| JsonError::BadNumber {
        path: path.to_owned(),
        value: key.to_owned(),
        expected,
    };
    Ok(match kind {
        Kind::String => MapKey::String(key.to_owned()),
        Kind::Bool => match key {
            "true" => MapKey::Bool(true),
            "false" => MapKey::Bool(false),
            _ => return Err(bad("bool")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            MapKey::I32(key.parse().map_err(|_| bad("int32"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            MapKey::I64(key.parse().map_err(|_| bad("int64"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().map_err(|_| bad("uint32"))?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().map_err(|_| bad("uint64"))?),
        _ => unreachable!("protobuf map keys are integral, bool or string"),
    })
}

/// One value of a field. `Ok(None)` drops it: an unknown enum name outside a
/// required field, as Mesos drops it.
fn read_single(
    kind: &Kind,
    json: &Json,
    path: &str,
    required: bool,
    depth: u32,
) -> Result<Option<Value>, JsonError> {
    Ok(Some(match kind {
        Kind::Message(desc) => Value::Message(read_message(desc.clone(), json, path, depth - 1)?),
        Kind::Enum(desc) => match json {
            Json::String(name) => match desc.get_value_by_name(name) {
                Some(v) => Value::EnumNumber(v.number()),
                None if required => {
                    return Err(JsonError::UnknownEnumName {
                        path: path.to_owned(),
                        name: name.clone(),
                    })
                }
                None => return Ok(None),
            },
            other => return Err(wrong_type(path, other)),
        },
        Kind::String => match json {
            Json::String(s) => Value::String(s.clone()),
            other => return Err(wrong_type(path, other)),
        },
        Kind::Bytes => match json {
            Json::String(s) => {
                let bytes = decode_base64(s).ok_or_else(|| JsonError::BadBase64 {
                    path: path.to_owned(),
                })?;
                Value::Bytes(bytes.into())
            }
            other => return Err(wrong_type(path, other)),
        },
        Kind::Bool => match json {
            Json::Bool(b) => Value::Bool(*b),
            Json::String(s) => match s.trim() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    return Err(JsonError::BadBool {
                        path: path.to_owned(),
                        value: s.clone(),
                    })
                }
            },
            other => return Err(wrong_type(path, other)),
        },
        Kind::Double => Value::F64(read_double(json, path, "double")?),
        // Mesos keeps doubles for floats until the final cast.
        Kind::Float => Value::F32(read_double(json, path, "float")? as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(read_integer(json, path, "int32")?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(read_integer(json, path, "int64")?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(read_integer(json, path, "uint32")?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(read_integer(json, path, "uint64")?),
    }))
}

/// A JSON number, or a string holding one (Mesos re-parses such strings as
/// JSON, so surrounding white space and exponents are fine).
fn number_of(
    json: &Json,
    path: &str,
    expected: &'static str,
) -> Result<serde_json::Number, JsonError> {
    match json {
        Json::Number(n) => Ok(n.clone()),
        Json::String(s) => serde_json::from_str::<serde_json::Number>(s.trim())
            .map_err(|_| bad_number(path, json, expected)),
        other => Err(wrong_type(path, other)),
    }
}

/// An integer field's value. A fraction is truncated, as Mesos' cast does;
/// a value outside the type's range is an error (Mesos wraps it silently,
/// which no caller can mean).
fn read_integer<T: TryFrom<i128>>(
    json: &Json,
    path: &str,
    expected: &'static str,
) -> Result<T, JsonError> {
    let n = number_of(json, path, expected)?;
    let wide = if let Some(i) = n.as_i64() {
        i128::from(i)
    } else if let Some(u) = n.as_u64() {
        i128::from(u)
    } else {
        let f = n.as_f64().ok_or_else(|| bad_number(path, json, expected))?;
        if !f.is_finite() || f.abs() >= 2f64.powi(64) {
            return Err(bad_number(path, json, expected));
        }
        f.trunc() as i128
    };
    T::try_from(wide).map_err(|_| bad_number(path, json, expected))
}

/// A double field's value: a number, a numeric string, or exactly
/// `"Infinity"` / `"-Infinity"`.
fn read_double(json: &Json, path: &str, expected: &'static str) -> Result<f64, JsonError> {
    match json {
        Json::String(s) if s == "Infinity" => Ok(f64::INFINITY),
        Json::String(s) if s == "-Infinity" => Ok(f64::NEG_INFINITY),
        _ => number_of(json, path, expected)?
            .as_f64()
            .ok_or_else(|| bad_number(path, json, expected)),
    }
}

/// Base64 as Mesos reads it (stout `base64::decode`): standard alphabet,
/// white space skipped, decoding stops at the first `=`, missing padding
/// and leftover bits are fine, anything else outside the alphabet is not.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut data: Vec<u8> = s
        .split('=')
        .next()
        .unwrap_or_default()
        .bytes()
        .filter(|b| !b.is_ascii_whitespace() && *b != 0x0b)
        .collect();
    // A single dangling symbol carries no whole byte; stout drops it.
    if data.len() % 4 == 1 {
        data.pop();
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireNone)
            .with_decode_allow_trailing_bits(true),
    );
    engine.decode(&data).ok()
}

fn bad_number(path: &str, json: &Json, expected: &'static str) -> JsonError {
    JsonError::BadNumber {
        path: path.to_owned(),
        value: json.to_string(),
        expected,
    }
}

fn wrong_type(path: &str, found: &Json) -> JsonError {
    let found = match found {
        Json::Null => "null",
        Json::Bool(_) => "boolean",
        Json::Number(_) => "number",
        Json::String(_) => "string",
        Json::Array(_) => "array",
        Json::Object(_) => "object",
    };
    JsonError::WrongType {
        path: path.to_owned(),
        found,
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}
