//! Reading a JSON request body: bounded in size, unknown fields and wrong
//! types rejected, every error naming the field by its path.

use super::error::{ApiError, Code};
use super::serve::BodyReadTimeout;
use axum::body::Body;
use http_body_util::{BodyExt, Limited};
use serde::de::DeserializeOwned;

/// Reads and decodes `body` as `T`; an empty body decodes as `{}` when
/// `empty_ok`.
pub async fn read_json<T: DeserializeOwned>(
    body: Body,
    max_bytes: usize,
    empty_ok: bool,
) -> Result<T, ApiError> {
    let bytes = match Limited::new(body, max_bytes).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(ApiError {
                code: Code::ResourceExhausted,
                message: format!("body: request body is larger than {max_bytes} bytes"),
            });
        }
        Err(e) => {
            if let Some(timeout) = timed_out(e.as_ref()) {
                return Err(ApiError {
                    code: Code::DeadlineExceeded,
                    message: format!("body: {timeout}"),
                });
            }
            return Err(ApiError::invalid(
                "body",
                format!("cannot read request body: {e}"),
            ));
        }
    };
    let bytes: &[u8] = if empty_ok && bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let problem = e.inner().to_string();
        ApiError::invalid(&field_of(&path, &problem), problem)
    })?;
    de.end()
        .map_err(|e| ApiError::invalid("body", format!("trailing data: {e}")))?;
    Ok(value)
}

/// The body read timeout behind a body error, if that is what ended it
/// (it reaches here wrapped by the body types in between).
fn timed_out<'a>(mut error: &'a (dyn std::error::Error + 'static)) -> Option<&'a BodyReadTimeout> {
    loop {
        if let Some(timeout) = error.downcast_ref::<BodyReadTimeout>() {
            return Some(timeout);
        }
        error = error.source()?;
    }
}

/// The offending field's full path. serde reports a missing or unknown
/// field at its parent's path, with the name only in the message; join them.
fn field_of(path: &str, problem: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| problem.strip_prefix(prefix))
        .and_then(|rest| rest.split('`').next());
    let parent = (path != ".").then_some(path);
    match (parent, named) {
        (Some(p), Some(name)) if p.rsplit('.').next() != Some(name) => format!("{p}.{name}"),
        (Some(p), _) => p.to_owned(),
        (None, Some(name)) => name.to_owned(),
        (None, None) => "body".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn fields_are_named_by_their_full_path() {
        let cases = [
            (".", "missing field `spec` at line 1 column 2", "spec"),
            ("spec", "missing field `name`", "spec.name"),
            (
                "spec.default_spec",
                "unknown field `x`, expected one of",
                "spec.default_spec.x",
            ),
            (
                "spec.instance_count",
                "invalid type: string",
                "spec.instance_count",
            ),
            (".", "expected value at line 1", "body"),
        ];
        for (path, problem, want) in cases {
            assert_eq!(super::field_of(path, problem), want);
        }
    }
}
