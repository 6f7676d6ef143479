//! The JSON face of the seed services: the same path as the gRPC method,
//! a JSON body in canonical protobuf JSON, answered by the same service
//! (transcoded), over plain HTTP/1.1 as a JSON client sends it.
#![allow(clippy::unwrap_used)]

mod support;

use serde_json::json;
use support::*;

const NO_MASTER: &str = "http://127.0.0.1:1";
const POOLS: &str = "/peloton.api.v1alpha.respool.ResourcePoolService";

#[tokio::test]
async fn a_json_call_is_answered_by_the_grpc_service_with_the_apis_error_shape() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_scheduler(dir.path(), NO_MASTER, &[]);

    // A method not served: UNIMPLEMENTED as the gRPC face says it, in
    // the JSON error shape, 501 as grpc-gateway answers it.
    let (status, body) = post(
        &s.address,
        "/peloton.api.v1alpha.volume.svc.VolumeService/ListVolumes",
        &json!({}),
    )
    .await;
    assert_eq!(status, 501, "{body}");
    assert_eq!(body["code"], "UNIMPLEMENTED", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("does not run"),
        "{body}"
    );

    // A served method, answered in canonical protobuf JSON.
    let (status, body) = post(
        &s.address,
        &format!("{POOLS}/LookupResourcePoolID"),
        &json!({"path": {"value": "/default"}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["respoolId"]["value"], "default", "{body}");

    // A field the message does not have: INVALID_ARGUMENT naming it,
    // before any service sees the call.
    let (status, body) = post(
        &s.address,
        &format!("{POOLS}/LookupResourcePoolID"),
        &json!({"pathh": {"value": "/"}}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "INVALID_ARGUMENT", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("pathh"),
        "{body}"
    );

    // Not JSON at all.
    let (status, body) = call(
        &s.address,
        "POST",
        &format!("{POOLS}/LookupResourcePoolID"),
        Some(b"{not json".to_vec()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "INVALID_ARGUMENT", "{body}");

    // A method whose requests stream is gRPC only, and says so.
    let (status, body) = post(
        &s.address,
        "/com.netflix.titus.JobManagementService/ObserveJobsWithKeepAlive",
        &json!({}),
    )
    .await;
    assert_eq!(status, 501, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("gRPC only"),
        "{body}"
    );

    // The Drover routes are untouched by the face.
    let (status, _) = get(&s.address, "/health/live").await;
    assert_eq!(status, 200);
    s.stop();
}
