//! The REST face of the Kubeflow Pipelines v1beta1 seed services at
//! `/apis/v1beta1/...`, as the kfp API server (grpc-gateway v1) serves it:
//! a transcoder onto the very tonic services a gRPC client reaches, as
//! [`super::json_face`] is for `POST /<pkg>.<Svc>/<Method>`. The REST
//! request becomes the method's request message ([`super::kfp_rest_routes`]),
//! is framed as a gRPC call of `/<service>/<method>` with the caller's
//! headers and extensions (who it is, from the authentication layer) and
//! handed to the seed routes; the answer is written as grpc-gateway v1's
//! default marshaler writes it: the proto field names (snake_case), enums
//! by name, 64-bit integers as strings, Timestamps in RFC 3339, default
//! values left out (an empty answer is `{}`); a failure is the kfp error
//! body with grpc-gateway's status ([`crate::api::kfp::gateway_error`]).
//! So each method has its REST face the moment its service serves it, and
//! answers UNIMPLEMENTED (501) with the service's message until then.

use super::json_face::{frame, internal, status_of, take_frames};
use super::kfp_rest_routes::{request_message, route_of, ROUTES};
use crate::api::kfp::gateway_error;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt;
use prost::Message;
use prost_reflect::{DynamicMessage, MessageDescriptor, SerializeOptions};
use tonic::codegen::Service;

/// Serves a `/apis/v1beta1/...` request no route of its own takes: a seed
/// method's REST path is called on `seed` (the seed services' routes);
/// anything else is NOT_FOUND, or UNIMPLEMENTED for a known path asked
/// with another verb, as grpc-gateway answers them.
pub async fn transcode(seed: Router, max_body_bytes: usize, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some((route, variables)) = route_of(request.method(), &path) else {
        return no_route(request.method(), &path);
    };
    let Some(method) = route.descriptor() else {
        return gateway_error::from_api(internal(&format!(
            "{}/{} is not in the seed's descriptors",
            route.service, route.method
        )));
    };
    let (mut parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, max_body_bytes).await {
        Ok(body) => body,
        Err(_) => {
            return gateway_error::response(
                tonic::Code::ResourceExhausted,
                &format!("the request body is larger than {max_body_bytes} bytes"),
            )
        }
    };
    let message =
        match request_message(route, &method.input(), &variables, parts.uri.query(), &body) {
            Ok(message) => message,
            Err(e) => return gateway_error::from_api(e),
        };
    let grpc_path = format!("/{}/{}", route.service, route.method);
    parts.uri = match grpc_path.parse() {
        Ok(uri) => uri,
        Err(e) => return gateway_error::from_api(internal(&format!("{grpc_path}: {e}"))),
    };
    parts.method = Method::POST;
    let headers = &mut parts.headers;
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    headers.remove(header::CONTENT_LENGTH);
    headers.remove(header::ACCEPT_ENCODING);
    headers.remove("grpc-accept-encoding");
    let call = Request::from_parts(parts, Body::from(frame(&message.encode_to_vec())));
    let mut seed = seed;
    // A Router is always ready: no poll_ready needed before the call.
    let answer = match seed.call(call).await {
        Ok(answer) => answer,
        Err(never) => match never {},
    };
    answer_as_gateway(answer, &method.output()).await
}

/// The answer to a path no seed method has.
fn no_route(verb: &Method, path: &str) -> Response {
    let other_verb = ROUTES
        .iter()
        .any(|r| Method::from_bytes(r.verb.as_bytes()).is_ok_and(|v| route_of(&v, path).is_some()));
    if other_verb {
        return gateway_error::response(
            tonic::Code::Unimplemented,
            &format!("{verb} {path}: the path does not take this method"),
        );
    }
    gateway_error::response(
        tonic::Code::NotFound,
        &format!("{verb} {path}: no Kubeflow Pipelines v1beta1 method has this path"),
    )
}

/// grpc-gateway v1's default marshaler: proto names, enums by name,
/// int64 as strings, defaults left out.
fn gateway_json(
    bytes: axum::body::Bytes,
    output: &MessageDescriptor,
) -> Result<serde_json::Value, String> {
    let message = DynamicMessage::decode(output.clone(), bytes)
        .map_err(|e| format!("the service's answer does not decode: {e}"))?;
    let options = SerializeOptions::new()
        .use_proto_field_name(true)
        .stringify_64_bit_integers(true)
        .skip_default_fields(true);
    message
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|e| format!("the service's answer has no JSON form: {e}"))
}

async fn answer_as_gateway(answer: Response, output: &MessageDescriptor) -> Response {
    let (parts, body) = answer.into_parts();
    let collected = match body.collect().await {
        Ok(collected) => collected,
        Err(e) => {
            return gateway_error::response(
                tonic::Code::Internal,
                &format!("the service's answer broke off: {e}"),
            )
        }
    };
    let trailers = collected.trailers().cloned();
    if let Some(status) = status_of(&parts.headers, trailers.as_ref()) {
        if status.code() != tonic::Code::Ok {
            return gateway_error::from_status(&status);
        }
    }
    let mut buffer = collected.to_bytes().to_vec();
    let first = match take_frames(&mut buffer) {
        Ok(frames) => frames.into_iter().next(),
        Err(e) => return gateway_error::from_api(e),
    };
    let Some(first) = first else {
        return gateway_error::response(tonic::Code::Internal, "the service answered no message");
    };
    match gateway_json(first, output) {
        Ok(json) => axum::Json(json).into_response(),
        Err(message) => gateway_error::response(tonic::Code::Internal, &message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::grpc::seed_pool;

    #[test]
    fn answers_use_proto_names_enum_names_and_int64_strings() {
        let detail = seed_pool().get_message_by_name("api.RunDetail").unwrap();
        let json = serde_json::json!({
            "run": {
                "id": "r1",
                "storageState": "STORAGESTATE_ARCHIVED",
                "createdAt": "2026-12-07T06:00:00Z",
                "pipelineSpec": {"workflowManifest": "{}"},
                "metrics": [{"name": "m", "nodeId": "n", "numberValue": 1.5}]
            },
            "pipelineRuntime": {"workflowManifest": "{\"status\":{}}"}
        });
        let message = DynamicMessage::deserialize(detail.clone(), json).unwrap();
        let out = gateway_json(message.encode_to_vec().into(), &detail).unwrap();
        assert_eq!(out["run"]["storage_state"], "STORAGESTATE_ARCHIVED");
        assert_eq!(out["run"]["created_at"], "2026-12-07T06:00:00Z");
        assert_eq!(out["run"]["pipeline_spec"]["workflow_manifest"], "{}");
        assert_eq!(out["run"]["metrics"][0]["node_id"], "n");
        assert_eq!(
            out["pipeline_runtime"]["workflow_manifest"],
            "{\"status\":{}}"
        );
        assert!(out["run"].get("name").is_none(), "defaults are left out");

        let list = seed_pool()
            .get_message_by_name("api.ListRunsResponse")
            .unwrap();
        let message =
            DynamicMessage::deserialize(list.clone(), serde_json::json!({"totalSize": 3})).unwrap();
        let out = gateway_json(message.encode_to_vec().into(), &list).unwrap();
        assert_eq!(out, serde_json::json!({"total_size": 3}));

        let empty = seed_pool()
            .get_message_by_name("google.protobuf.Empty")
            .unwrap();
        let out = gateway_json(axum::body::Bytes::new(), &empty).unwrap();
        assert_eq!(out, serde_json::json!({}));
    }
}
