//! The JSON face of the seed services: a `POST /<package>.<Service>/<Method>`
//! with a JSON body is the same call as the gRPC one, with the request and
//! answers in canonical protobuf JSON (lowerCamelCase or the proto field
//! names, enum values by their proto names, as a Peloton or Titus JSON
//! client writes them).
//!
//! It is a transcoding layer, not a second set of handlers: the JSON is
//! turned into the protobuf message with the seed descriptors
//! (prost-reflect), framed as a gRPC request, and handed to the very tonic
//! service a gRPC client reaches; its answer is turned back. So every
//! served method has a JSON face with the same checks, codes and messages,
//! and a method not served yet answers UNIMPLEMENTED here too.
//!
//! Answers: a unary method's message as a JSON object; a server stream as
//! newline-delimited JSON, one `{"result": ...}` per message and an
//! `{"error": {"code", "message"}}` line if it fails after its first
//! message (grpc-gateway's shape); a failure before any message is the
//! API's `{"code", "message"}` with the code's HTTP status. Client-streaming
//! methods are gRPC only.

use super::seed_pool;
use crate::api::error::{ApiError, Code};
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use prost::Message;
use prost_reflect::{DeserializeOptions, DynamicMessage, MessageDescriptor, MethodDescriptor};

/// The gRPC frame header: a compression flag and a big-endian length.
const FRAME_HEADER: usize = 5;

/// A JSON call of a seed method becomes a gRPC call of it; anything else
/// passes through. `max_body_bytes` bounds the JSON body as on every route.
pub async fn transcode(
    State(max_body_bytes): State<usize>,
    request: Request,
    next: Next,
) -> Response {
    let Some(method) = json_call_of(&request) else {
        return next.run(request).await;
    };
    if method.is_client_streaming() {
        return unimplemented_here(&method);
    }
    let (parts, body) = request.into_parts();
    let message = match json_to_message(body, max_body_bytes, &method.input()).await {
        Ok(message) => message,
        Err(e) => return e.into_response(),
    };
    let mut grpc = Request::from_parts(parts, Body::from(frame(&message)));
    let headers = grpc.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::ACCEPT_ENCODING);
    headers.remove("grpc-accept-encoding");
    let answer = next.run(grpc).await;
    if method.is_server_streaming() {
        stream_to_json(answer, method.output()).await
    } else {
        unary_to_json(answer, &method.output()).await
    }
}

/// The seed method a request calls with a JSON body, if it does.
fn json_call_of(request: &Request) -> Option<MethodDescriptor> {
    if request.method() != Method::POST {
        return None;
    }
    let is_json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !is_json {
        return None;
    }
    let path = request.uri().path().trim_start_matches('/');
    let (service, method) = path.split_once('/')?;
    seed_pool()
        .get_service_by_name(service)?
        .methods()
        .find(|m| m.name() == method)
}

fn unimplemented_here(method: &MethodDescriptor) -> Response {
    ApiError {
        code: Code::Unimplemented,
        message: format!(
            "{} streams its requests: it is served over gRPC only",
            method.full_name()
        ),
    }
    .into_response_with(StatusCode::NOT_IMPLEMENTED)
}

/// The request body, canonical protobuf JSON of `input`, as its encoding.
/// An empty body is the empty message, as `{}`.
async fn json_to_message(
    body: Body,
    max_body_bytes: usize,
    input: &MessageDescriptor,
) -> Result<Bytes, ApiError> {
    let bytes = axum::body::to_bytes(body, max_body_bytes)
        .await
        .map_err(|_| ApiError {
            code: Code::ResourceExhausted,
            message: format!("the request body is larger than {max_body_bytes} bytes"),
        })?;
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        &bytes
    };
    let mut json = serde_json::Deserializer::from_slice(text);
    let message = DynamicMessage::deserialize_with_options(
        input.clone(),
        &mut json,
        &DeserializeOptions::new(),
    )
    .and_then(|m| json.end().map(|()| m))
    .map_err(|e| ApiError {
        code: Code::InvalidArgument,
        message: format!(
            "the body is not a {} in protobuf JSON: {e}",
            input.full_name()
        ),
    })?;
    Ok(Bytes::from(message.encode_to_vec()))
}

/// One uncompressed gRPC message frame.
pub(super) fn frame(message: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(FRAME_HEADER + message.len());
    framed.push(0);
    // A JSON body is bounded by max_body_bytes, far below 4 GiB.
    framed.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    framed.extend_from_slice(message);
    Bytes::from(framed)
}

/// Takes the complete frames off the front of `buffer`.
pub(super) fn take_frames(buffer: &mut Vec<u8>) -> Result<Vec<Bytes>, ApiError> {
    let mut frames = Vec::new();
    let mut at = 0;
    while buffer.len() - at >= FRAME_HEADER {
        let compressed = buffer[at] != 0;
        let mut length = [0u8; 4];
        length.copy_from_slice(&buffer[at + 1..at + FRAME_HEADER]);
        let length = u32::from_be_bytes(length) as usize;
        if buffer.len() - at - FRAME_HEADER < length {
            break;
        }
        if compressed {
            return Err(internal("the service answered with a compressed message"));
        }
        let start = at + FRAME_HEADER;
        frames.push(Bytes::copy_from_slice(&buffer[start..start + length]));
        at = start + length;
    }
    buffer.drain(..at);
    Ok(frames)
}

pub(super) fn internal(message: &str) -> ApiError {
    ApiError {
        code: Code::Internal,
        message: message.to_owned(),
    }
}

/// A message of `output` as canonical protobuf JSON.
fn message_to_json(
    bytes: Bytes,
    output: &MessageDescriptor,
) -> Result<serde_json::Value, ApiError> {
    let message = DynamicMessage::decode(output.clone(), bytes)
        .map_err(|e| internal(&format!("the service's answer does not decode: {e}")))?;
    serde_json::to_value(&message)
        .map_err(|e| internal(&format!("the service's answer has no JSON form: {e}")))
}

/// The gRPC status of an answer: in its headers (a trailers-only answer)
/// or in its trailers.
pub(super) fn status_of(
    headers: &axum::http::HeaderMap,
    trailers: Option<&axum::http::HeaderMap>,
) -> Option<tonic::Status> {
    tonic::Status::from_header_map(headers)
        .or_else(|| trailers.and_then(tonic::Status::from_header_map))
}

async fn unary_to_json(answer: Response, output: &MessageDescriptor) -> Response {
    let (parts, body) = answer.into_parts();
    let collected = match body.collect().await {
        Ok(collected) => collected,
        Err(e) => return internal(&format!("the service's answer broke off: {e}")).into_response(),
    };
    let trailers = collected.trailers().cloned();
    if let Some(status) = status_of(&parts.headers, trailers.as_ref()) {
        if status.code() != tonic::Code::Ok {
            return error_response(&status);
        }
    }
    let mut buffer = collected.to_bytes().to_vec();
    let result = take_frames(&mut buffer).and_then(|frames| match frames.into_iter().next() {
        Some(message) => message_to_json(message, output),
        None => Err(internal("the service answered no message")),
    });
    match result {
        Ok(json) => axum::Json(json).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A non-OK status as the API's error answer.
fn error_response(status: &tonic::Status) -> Response {
    let (code, http) = code_of(status.code());
    ApiError {
        code,
        message: status.message().to_owned(),
    }
    .into_response_with(http)
}

/// The API's code for a gRPC code, and the HTTP status the JSON face
/// answers it with (grpc-gateway's for UNIMPLEMENTED: 501).
fn code_of(code: tonic::Code) -> (Code, StatusCode) {
    let api = match code {
        tonic::Code::InvalidArgument => Code::InvalidArgument,
        tonic::Code::OutOfRange => Code::OutOfRange,
        tonic::Code::NotFound => Code::NotFound,
        tonic::Code::AlreadyExists => Code::AlreadyExists,
        tonic::Code::Aborted => Code::Aborted,
        tonic::Code::FailedPrecondition => Code::FailedPrecondition,
        tonic::Code::ResourceExhausted => Code::ResourceExhausted,
        tonic::Code::Unimplemented => {
            return (Code::Unimplemented, StatusCode::NOT_IMPLEMENTED);
        }
        tonic::Code::DeadlineExceeded => Code::DeadlineExceeded,
        tonic::Code::Unavailable => Code::Unavailable,
        tonic::Code::Unauthenticated => Code::Unauthenticated,
        tonic::Code::PermissionDenied => Code::PermissionDenied,
        _ => Code::Internal,
    };
    (api, api.status())
}

/// What the stream of JSON lines still has to read.
struct Lines {
    body: Body,
    buffer: Vec<u8>,
    output: MessageDescriptor,
    done: bool,
}

async fn stream_to_json(answer: Response, output: MessageDescriptor) -> Response {
    let (parts, body) = answer.into_parts();
    if let Some(status) = tonic::Status::from_header_map(&parts.headers) {
        if status.code() != tonic::Code::Ok {
            return error_response(&status);
        }
    }
    let mut lines = Lines {
        body,
        buffer: Vec::new(),
        output,
        done: false,
    };
    // The first line (or the error) is read before answering, so a stream
    // that fails at once is answered with the error's status.
    let first = next_lines(&mut lines).await;
    if let Err(status) = &first {
        return error_response(status);
    }
    let first = futures_util::stream::iter(first.map(Ok::<_, std::convert::Infallible>));
    let rest = futures_util::stream::unfold(lines, |mut lines| async move {
        if lines.done {
            return None;
        }
        let chunk = match next_lines(&mut lines).await {
            Ok(chunk) => chunk,
            Err(status) => {
                lines.done = true;
                error_line(&status)
            }
        };
        Some((Ok::<_, std::convert::Infallible>(chunk), lines))
    });
    let mut response =
        Body::from_stream(futures_util::StreamExt::chain(first, rest)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

/// The next JSON lines of a stream: every message the next body frame
/// completes (possibly none), or the stream's end as its error status.
async fn next_lines(lines: &mut Lines) -> Result<Bytes, tonic::Status> {
    loop {
        let Some(frame) = lines.body.frame().await else {
            lines.done = true;
            return Ok(Bytes::new());
        };
        let frame =
            frame.map_err(|e| tonic::Status::internal(format!("the stream broke off: {e}")))?;
        let frame = match frame.into_data() {
            Ok(data) => {
                lines.buffer.extend_from_slice(&data);
                let messages = take_frames(&mut lines.buffer)
                    .map_err(|e| tonic::Status::internal(e.message))?;
                if messages.is_empty() {
                    continue;
                }
                let mut out = Vec::new();
                for message in messages {
                    let json = message_to_json(message, &lines.output)
                        .map_err(|e| tonic::Status::internal(e.message))?;
                    serde_json::to_writer(&mut out, &serde_json::json!({ "result": json }))
                        .map_err(|e| tonic::Status::internal(e.to_string()))?;
                    out.push(b'\n');
                }
                return Ok(Bytes::from(out));
            }
            Err(frame) => frame,
        };
        if let Ok(trailers) = frame.into_trailers() {
            lines.done = true;
            return match tonic::Status::from_header_map(&trailers) {
                Some(status) if status.code() != tonic::Code::Ok => Err(status),
                _ => Ok(Bytes::new()),
            };
        }
    }
}

fn error_line(status: &tonic::Status) -> Bytes {
    let (code, _) = code_of(status.code());
    let mut line = serde_json::to_vec(&serde_json::json!({
        "error": {"code": code.name(), "message": status.message()}
    }))
    .unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_across_reads_are_taken_whole() {
        let mut buffer = frame(b"abc").to_vec();
        buffer.extend_from_slice(&frame(b"de")[..4]);
        let frames = take_frames(&mut buffer).unwrap();
        assert_eq!(frames, vec![Bytes::from_static(b"abc")]);
        assert_eq!(buffer.len(), 4, "the partial frame is kept");
        buffer.extend_from_slice(&frame(b"de")[4..]);
        assert_eq!(
            take_frames(&mut buffer).unwrap(),
            vec![Bytes::from_static(b"de")]
        );
        assert!(buffer.is_empty());
    }

    #[test]
    fn protobuf_json_names_fields_either_way_and_enums_by_name() {
        let input = seed_pool()
            .get_message_by_name("peloton.api.v1alpha.job.stateless.svc.GetJobRequest")
            .unwrap();
        for body in [
            r#"{"jobId": {"value": "j1"}, "summaryOnly": true}"#,
            r#"{"job_id": {"value": "j1"}, "summary_only": true}"#,
        ] {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let bytes = rt
                .block_on(json_to_message(Body::from(body), 1024, &input))
                .unwrap();
            let back = message_to_json(bytes, &input).unwrap();
            assert_eq!(back["jobId"]["value"], "j1");
            assert_eq!(back["summaryOnly"], true);
        }
    }

    #[test]
    fn an_unknown_field_is_invalid_argument_naming_it() {
        let input = seed_pool()
            .get_message_by_name("peloton.api.v1alpha.job.stateless.svc.GetJobRequest")
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let e = rt
            .block_on(json_to_message(
                Body::from(r#"{"jobIdd": 1}"#),
                1024,
                &input,
            ))
            .unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument);
        assert!(e.message.contains("jobIdd"), "{}", e.message);
    }
}
