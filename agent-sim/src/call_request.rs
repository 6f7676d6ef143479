//! The HTTP checks a Mesos master and agent make on a v1 API call before
//! looking at what it says (reference 3.2 rows 5-8, 4.2): POST only, a
//! supported `Content-Type`, a body within the limit that decodes into the
//! call message. Shared by `/api/v1/scheduler` and `/api/v1/executor`.

use drover_proto::{MediaError, MediaType, MesosMessage};
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::server::{text, ResponseBody};

/// A call that passed the HTTP checks.
pub struct CallRequest<M> {
    /// The request's headers, for `Accept` and `Mesos-Stream-Id`.
    pub headers: HeaderMap,
    /// The decoded call.
    pub call: M,
}

/// Whether a body error comes from a read that timed out.
fn timed_out(mut error: &(dyn std::error::Error + 'static)) -> bool {
    loop {
        if error
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        match error.source() {
            Some(source) => error = source,
            None => return false,
        }
    }
}

/// Reads and decodes a call, or answers as Mesos does: 405 with `Allow`, 400
/// for a missing content type or a body that does not parse, 415 for an
/// unsupported content type, 413 past `max_body_bytes` (Mesos has no limit;
/// the simulator needs one to stay up).
pub async fn read_call<M: MesosMessage>(
    req: Request<Incoming>,
    max_body_bytes: usize,
) -> Result<CallRequest<M>, Response<ResponseBody>> {
    if req.method() != Method::POST {
        let mut resp = text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!(
                "405 Method Not Allowed. Expecting one of {{ 'POST' }}, but received '{}'.",
                req.method()
            ),
        );
        resp.headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static("POST"));
        return Err(resp);
    }
    let headers = req.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let media = match MediaType::from_content_type(content_type) {
        Ok(m) => m,
        Err(e @ MediaError::MissingContentType) => {
            return Err(text(StatusCode::BAD_REQUEST, &e.to_string()))
        }
        Err(e) => return Err(text(StatusCode::UNSUPPORTED_MEDIA_TYPE, &e.to_string())),
    };
    let body = match Limited::new(req.into_body(), max_body_bytes)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return Err(text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "Request body is larger than the simulator's limit of {max_body_bytes} bytes"
                ),
            ))
        }
        Err(e) => {
            // The body read timeout (`timed_io.rs`) ends the read with TimedOut.
            let status = if timed_out(e.as_ref()) {
                StatusCode::REQUEST_TIMEOUT
            } else {
                StatusCode::BAD_REQUEST
            };
            return Err(text(status, &format!("Failed to read body: {e}")));
        }
    };
    let call: M = media
        .decode(&body)
        .map_err(|e| text(StatusCode::BAD_REQUEST, &e.to_string()))?;
    Ok(CallRequest { headers, call })
}
