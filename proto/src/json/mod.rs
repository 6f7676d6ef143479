//! Mesos-style JSON for every Mesos v1 message, both ways.
//!
//! Mesos does not use the proto3 JSON mapping: it has its own reflection
//! based converter (stout `protobuf.hpp`, `jsonify.hpp`), and peers such as
//! pymesos depend on its exact form. The rules (reference section 2.3):
//!
//! - keys are the `.proto` field names, in declaration order;
//! - enums are written by value name; bytes as padded standard base64;
//!   64-bit integers as JSON numbers;
//! - doubles are written as rapidjson writes them (Grisu2: `15.0`, `0.1`,
//!   `1e21`), infinities as the strings `"Infinity"`/`"-Infinity"`, NaN as
//!   the bare token `NaN`;
//! - empty repeated fields are omitted; unset optional fields too, except
//!   those with an explicit `[default]` that are not deprecated, which are
//!   written with their default;
//! - on input, unknown keys are ignored, `null` means unset, numbers may be
//!   strings, bools may be `"true"`/`"false"`, a single value stands for a
//!   one-element list, and an unknown enum name drops an optional field but
//!   fails a required one. Missing required fields are an error.
//!
//! Both directions go through `prost-reflect`'s `DynamicMessage`, so every
//! message of the pool is covered without per-message code. The protobuf
//! binary path never touches this module.

mod read;
mod write;

use prost_reflect::DynamicMessage;

use crate::media::{decode_protobuf, DecodeError};
use crate::{descriptors, MesosMessage};

/// What the JSON reader found wrong. Every variant names the dotted path of
/// the offending field (empty for the top-level value). None is retryable:
/// the input itself is wrong.
#[derive(Debug, thiserror::Error)]
pub enum JsonError {
    /// The body is not JSON at all.
    #[error("Failed to parse body into JSON: {0}")]
    Syntax(#[from] serde_json::Error),
    /// The top-level value is not an object.
    #[error("Expecting a JSON object")]
    NotAnObject,
    /// A JSON value of a kind the field cannot take, e.g. a string for a
    /// message, a number for an enum, or an array for a singular field.
    #[error("Not expecting a JSON {found} for field '{path}'")]
    WrongType {
        /// Dotted path of the field.
        path: String,
        /// What was found: "string", "number", "boolean", "array", "object".
        found: &'static str,
    },
    /// A number (or numeric string) that does not fit the field's type.
    #[error(
        "Failed to parse '{value}' as a JSON number for field '{path}': not a valid {expected}"
    )]
    BadNumber {
        /// Dotted path of the field.
        path: String,
        /// The offending value as written.
        value: String,
        /// The field's type, e.g. "uint32".
        expected: &'static str,
    },
    /// A string for a bool field that is not `"true"` or `"false"`.
    #[error("Failed to parse '{value}' as a JSON boolean for field '{path}'")]
    BadBool {
        /// Dotted path of the field.
        path: String,
        /// The string given.
        value: String,
    },
    /// A name that is not a value of the enum, in a required field (in an
    /// optional or repeated one it is dropped, as Mesos drops it).
    #[error("Failed to find enum for '{name}' (field '{path}')")]
    UnknownEnumName {
        /// Dotted path of the field.
        path: String,
        /// The name given.
        name: String,
    },
    /// A bytes field whose string is not standard base64.
    #[error("Failed to base64 decode bytes field '{path}'")]
    BadBase64 {
        /// Dotted path of the field.
        path: String,
    },
    /// Required fields are missing after parsing.
    #[error("Missing required fields: {}", fields.join(", "))]
    MissingRequired {
        /// Dotted paths of the missing fields.
        fields: Vec<String>,
    },
    /// Nesting deeper than the reader allows.
    #[error("JSON nested deeper than {0} levels")]
    TooDeep(u32),
}

/// Writes a message as Mesos-style JSON.
pub fn to_json<M: MesosMessage>(message: &M) -> String {
    let dynamic = DynamicMessage::decode(
        descriptors::message::<M>(),
        message.encode_to_vec().as_slice(),
    )
    .expect("bytes prost just encoded decode with the same descriptors");
    write::message_to_string(&dynamic)
}

/// Writes a dynamic message as Mesos-style JSON.
pub fn dynamic_to_json(message: &DynamicMessage) -> String {
    write::message_to_string(message)
}

/// Reads a message from Mesos-style JSON.
pub fn from_json<M: MesosMessage>(body: &[u8]) -> Result<M, DecodeError> {
    let message = M::NAME;
    let json_error = |source| DecodeError::Json { message, source };
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| json_error(JsonError::Syntax(e)))?;
    let dynamic =
        read::message_from_value(descriptors::message::<M>(), &value).map_err(json_error)?;
    match decode_protobuf::<M>(&dynamic.encode_to_vec()) {
        Err(DecodeError::MissingRequired { fields, .. }) => {
            Err(json_error(JsonError::MissingRequired { fields }))
        }
        other => other,
    }
}

use prost::Message as _;
