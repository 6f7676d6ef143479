//! Content negotiation for the v1 scheduler and executor endpoints: the two
//! media types Mesos speaks, how a request's `Content-Type` and `Accept`
//! headers select one, and encoding and decoding a message in either.
//!
//! The rules are the Mesos master's (`src/master/http.cpp`, `scheduler()`;
//! `process::http::Request::acceptsMediaType`), reference section 2.1:
//! `Content-Type` must be exactly one of the two strings (a parameter such as
//! `; charset=utf-8` makes it unsupported), and for a response JSON is chosen
//! whenever `Accept` allows it, protobuf otherwise.
//!
//! HTTP layers map the errors to status codes: `MissingContentType` and
//! `Decode` are 400, `UnsupportedContentType` is 415, `NotAcceptable` is 406.

use crate::{json, required, MesosMessage};

/// `application/json`.
pub const APPLICATION_JSON: &str = "application/json";
/// `application/x-protobuf`.
pub const APPLICATION_PROTOBUF: &str = "application/x-protobuf";

/// The encodings of Mesos v1 calls and events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    /// Binary protobuf, `application/x-protobuf`.
    Protobuf,
    /// Mesos-style JSON (see [`crate::json`]), `application/json`.
    Json,
}

/// Why a request's headers or body cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The request has no `Content-Type` header (Mesos answers 400).
    #[error("Expecting 'Content-Type' to be present")]
    MissingContentType,
    /// `Content-Type` is neither media type (Mesos answers 415).
    #[error("Expecting 'Content-Type' of application/json or application/x-protobuf, got '{0}'")]
    UnsupportedContentType(String),
    /// `Accept` allows neither media type (Mesos answers 406).
    #[error("Expecting 'Accept' to allow application/json or application/x-protobuf, got '{0}'")]
    NotAcceptable(String),
}

/// Why a body could not be decoded into a message (Mesos answers 400).
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a valid protobuf encoding of the message.
    #[error("Failed to parse body into {message} protobuf: {source}")]
    Protobuf {
        /// Name of the message, e.g. `Call`.
        message: &'static str,
        /// What was wrong with the bytes.
        #[source]
        source: required::WireError,
    },
    /// The encoding is valid but required fields are missing.
    #[error("Failed to parse body into {message} protobuf: Missing required fields: {}", fields.join(", "))]
    MissingRequired {
        /// Name of the message, e.g. `Call`.
        message: &'static str,
        /// Dotted paths of the missing fields, e.g. `subscribe.framework_info.user`.
        fields: Vec<String>,
    },
    /// The body is not JSON, or the JSON does not fit the message.
    #[error("Failed to convert JSON into {message} protobuf: {source}")]
    Json {
        /// Name of the message, e.g. `Call`.
        message: &'static str,
        /// What the JSON reader found wrong.
        #[source]
        source: json::JsonError,
    },
}

impl MediaType {
    /// The header value for this media type.
    pub const fn as_str(self) -> &'static str {
        match self {
            MediaType::Protobuf => APPLICATION_PROTOBUF,
            MediaType::Json => APPLICATION_JSON,
        }
    }

    /// The media type of a request body from its `Content-Type` header,
    /// compared byte for byte as Mesos does.
    pub fn from_content_type(header: Option<&str>) -> Result<Self, MediaError> {
        match header {
            None => Err(MediaError::MissingContentType),
            Some(APPLICATION_JSON) => Ok(MediaType::Json),
            Some(APPLICATION_PROTOBUF) => Ok(MediaType::Protobuf),
            Some(other) => Err(MediaError::UnsupportedContentType(other.to_owned())),
        }
    }

    /// The media type of a response, chosen from the request's `Accept`
    /// header: JSON if it is acceptable, else protobuf, else an error. A
    /// missing header accepts anything.
    pub fn negotiate(accept: Option<&str>) -> Result<Self, MediaError> {
        let Some(accept) = accept else {
            return Ok(MediaType::Json);
        };
        if accepts(accept, APPLICATION_JSON) {
            Ok(MediaType::Json)
        } else if accepts(accept, APPLICATION_PROTOBUF) {
            Ok(MediaType::Protobuf)
        } else {
            Err(MediaError::NotAcceptable(accept.to_owned()))
        }
    }

    /// Encodes a message in this media type.
    pub fn encode<M: MesosMessage>(self, message: &M) -> Vec<u8> {
        match self {
            MediaType::Protobuf => message.encode_to_vec(),
            MediaType::Json => json::to_json(message).into_bytes(),
        }
    }

    /// Decodes a message in this media type, checking required fields as a
    /// Mesos master does (a protobuf missing one does not parse).
    pub fn decode<M: MesosMessage>(self, body: &[u8]) -> Result<M, DecodeError> {
        match self {
            MediaType::Protobuf => decode_protobuf(body),
            MediaType::Json => json::from_json(body),
        }
    }
}

/// Decodes binary protobuf, refusing a message whose required fields are not
/// all present.
pub fn decode_protobuf<M: MesosMessage>(body: &[u8]) -> Result<M, DecodeError> {
    let message = full_name::<M>();
    let missing = required::missing_fields_of::<M>(body)
        .map_err(|source| DecodeError::Protobuf { message, source })?;
    if !missing.is_empty() {
        return Err(DecodeError::MissingRequired {
            message,
            fields: missing,
        });
    }
    M::decode(body).map_err(|e| DecodeError::Protobuf {
        message,
        source: e.into(),
    })
}

/// The message's short name, as Mesos puts it in errors ("Call").
pub(crate) fn full_name<M: MesosMessage>() -> &'static str {
    M::NAME
}

/// Whether an `Accept` header value allows `media` (RFC 7231 section 5.3.2):
/// the most specific matching range decides, and `q=0` refuses.
fn accepts(accept: &str, media: &str) -> bool {
    let (want_type, want_sub) = media.split_once('/').unwrap_or((media, ""));
    // (specificity, q) of the most specific range matching `media`.
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((ty, sub)) = parts.next().and_then(|r| r.trim().split_once('/')) else {
            continue;
        };
        let (ty, sub) = (ty.trim(), sub.trim());
        let specificity =
            if ty.eq_ignore_ascii_case(want_type) && sub.eq_ignore_ascii_case(want_sub) {
                3
            } else if ty.eq_ignore_ascii_case(want_type) && sub == "*" {
                2
            } else if ty == "*" && sub == "*" {
                1
            } else {
                continue;
            };
        let q = parts
            .filter_map(|p| p.trim().split_once('='))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
            .and_then(|(_, v)| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.is_some_and(|(_, q)| q > 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_is_compared_byte_for_byte() {
        assert_eq!(
            MediaType::from_content_type(Some("application/json")).unwrap(),
            MediaType::Json
        );
        assert_eq!(
            MediaType::from_content_type(Some("application/x-protobuf")).unwrap(),
            MediaType::Protobuf
        );
        assert!(matches!(
            MediaType::from_content_type(Some("application/json; charset=utf-8")),
            Err(MediaError::UnsupportedContentType(_))
        ));
        assert!(matches!(
            MediaType::from_content_type(Some("text/plain")),
            Err(MediaError::UnsupportedContentType(_))
        ));
        assert!(matches!(
            MediaType::from_content_type(None),
            Err(MediaError::MissingContentType)
        ));
    }

    #[test]
    fn json_wins_whenever_it_is_acceptable() {
        let cases = [
            (None, Some(MediaType::Json)),
            (Some("*/*"), Some(MediaType::Json)),
            (Some("application/*"), Some(MediaType::Json)),
            (Some("application/x-protobuf"), Some(MediaType::Protobuf)),
            (
                Some("application/x-protobuf, application/json;q=0.1"),
                Some(MediaType::Json),
            ),
            (Some("application/json;q=0, */*"), Some(MediaType::Protobuf)),
            (
                Some("application/json;q=0, application/x-protobuf;q=0"),
                None,
            ),
            (Some("text/html"), None),
            (Some("*/*;q=0"), None),
            (Some("garbage"), None),
        ];
        for (accept, want) in cases {
            assert_eq!(
                MediaType::negotiate(accept).ok(),
                want,
                "Accept: {accept:?}"
            );
        }
    }
}
