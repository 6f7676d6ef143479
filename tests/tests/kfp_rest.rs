//! The Kubeflow Pipelines v1beta1 REST face on the real scheduler, behind
//! its authentication (a bearer token, as `kfp.Client(existing_token=...)`
//! sends it): every `RunService` path reaches its gRPC method through the
//! transcoder: the served ones answer (an empty list, a refused manifest,
//! an unknown run) and the others as the kfp API server answers an
//! unimplemented method: 501 with the grpc-gateway error body (`error`,
//! `code` 12, `message`, `details`), the message naming what it waits for. A malformed query is
//! refused by the transcoder before the service (400, code 3, naming the
//! key); an unknown path is 404 (code 5); a known path with another verb
//! is 501. Creating an experiment is a write: a viewer is refused (403,
//! code 7), a user's is made, and a name is unique (409, code 6).
#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use drover_scheduler::auth::credentials::digest_text;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::{request, Reply};
use drover_tests::harness::scheduler::Scheduler;
use serde_json::Value;
use std::path::Path;

const TOKEN: &str = "kfp-user-token";
const VIEWER_TOKEN: &str = "kfp-viewer-token";

fn credentials_file(dir: &Path) -> std::path::PathBuf {
    let text = format!(
        "users:\n  - name: kfp\n    role: user\n    tokens: [{}]\n  - name: vic\n    role: viewer\n    tokens: [{}]\n",
        digest_text(TOKEN),
        digest_text(VIEWER_TOKEN)
    );
    let path = dir.join("credentials.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

async fn call(address: &str, token: Option<&str>, method: &str, path: &str, body: &str) -> Reply {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    request(
        address,
        method,
        path,
        &headers,
        Bytes::from(body.to_owned()),
    )
    .await
}

/// Every byte but letters and digits as `%XX`, as a query value.
fn percent_encoded(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_service_path_reaches_its_method_behind_authentication() {
    let sim = AgentSim::for_scheduler(1).start();
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let scheduler = Scheduler::on(&dir.path().join("data"), &format!("http://{}", sim.address))
        .args(&["--credentials-file", credentials.to_str().unwrap()])
        .start();
    let a = scheduler.address.as_str();

    let reply = call(a, None, "GET", "/apis/v1beta1/runs", "").await;
    assert_eq!(reply.status, 401, "no token: {:?}", json_of(&reply));
    let reply = call(a, Some("wrong"), "GET", "/apis/v1beta1/runs/r1", "").await;
    assert_eq!(reply.status, 401, "a wrong token: {:?}", json_of(&reply));

    let filter = r#"{"predicates":[{"key":"name","op":"EQUALS","string_value":"x"}]}"#;
    let list = format!(
        "/apis/v1beta1/runs?page_size=5&sort_by=name%20desc&resource_reference_key.type=EXPERIMENT&resource_reference_key.id=e1&filter={}",
        percent_encoded(filter)
    );
    let calls = [
        (
            "POST",
            "/apis/v1beta1/runs".to_owned(),
            r#"{"name": "r", "pipeline_spec": {"workflow_manifest": "{}"}}"#,
            "CreateRunV1",
        ),
        ("GET", "/apis/v1beta1/runs/r1".to_owned(), "", "GetRunV1"),
        ("GET", list, "", "ListRunsV1"),
        (
            "POST",
            "/apis/v1beta1/runs/r1:archive".to_owned(),
            "",
            "ArchiveRunV1",
        ),
        (
            "POST",
            "/apis/v1beta1/runs/r1:unarchive".to_owned(),
            "",
            "UnarchiveRunV1",
        ),
        (
            "DELETE",
            "/apis/v1beta1/runs/r1".to_owned(),
            "",
            "DeleteRunV1",
        ),
        (
            "POST",
            "/apis/v1beta1/runs/r1:reportMetrics".to_owned(),
            r#"{"metrics": [{"name": "acc", "node_id": "n1", "number_value": 0.5}]}"#,
            "ReportRunMetricsV1",
        ),
        (
            "GET",
            "/apis/v1beta1/runs/r1/nodes/n1/artifacts/out:read".to_owned(),
            "",
            "ReadArtifactV1",
        ),
        (
            "POST",
            "/apis/v1beta1/runs/r1/terminate".to_owned(),
            "",
            "TerminateRunV1",
        ),
        (
            "POST",
            "/apis/v1beta1/runs/r1/retry".to_owned(),
            "",
            "RetryRunV1",
        ),
    ];
    for (method, path, body, rpc) in calls {
        let reply = call(a, Some(TOKEN), method, &path, body).await;
        let json = json_of(&reply);
        let served = matches!(
            rpc,
            "CreateRunV1"
                | "GetRunV1"
                | "ListRunsV1"
                | "TerminateRunV1"
                | "ReportRunMetricsV1"
                | "ReadArtifactV1"
                | "RetryRunV1"
                | "ArchiveRunV1"
                | "UnarchiveRunV1"
                | "DeleteRunV1"
        );
        if rpc == "ListRunsV1" {
            // Served: no run matches, an empty page.
            assert_eq!(reply.status, 200, "{method} {path}: {json}");
            assert!(json.get("runs").is_none(), "{json}");
            continue;
        }
        if served {
            // Served, and refused as kfp refuses: a manifest that is no
            // workflow is INVALID_ARGUMENT, an unknown run NOT_FOUND.
            let (status, code) = if rpc == "CreateRunV1" {
                (400, 3)
            } else {
                (404, 5)
            };
            assert_eq!(reply.status, status, "{method} {path}: {json}");
            assert_eq!(json["code"], code, "{method} {path}: {json}");
            assert_eq!(json["error"], json["message"], "{method} {path}: {json}");
            continue;
        }
        assert_eq!(reply.status, 501, "{method} {path}: {json}");
        assert_eq!(json["code"], 12, "{method} {path}: {json}");
        assert_eq!(json["error"], json["message"], "{method} {path}: {json}");
        assert!(json["details"].is_array(), "{method} {path}: {json}");
        let message = json["message"].as_str().unwrap();
        assert!(
            message.contains(rpc) && message.contains("not"),
            "{method} {path}: {message}"
        );
    }

    // The transcoder reads the query before the service is called.
    let reply = call(
        a,
        Some(TOKEN),
        "GET",
        "/apis/v1beta1/runs?page_size=ten",
        "",
    )
    .await;
    let json = json_of(&reply);
    assert_eq!(reply.status, 400, "{json}");
    assert_eq!(json["code"], 3, "{json}");
    assert!(
        json["message"].as_str().unwrap().starts_with("page_size"),
        "{json}"
    );
    let reply = call(a, Some(TOKEN), "POST", "/apis/v1beta1/runs", "{not json").await;
    assert_eq!(reply.status, 400, "{:?}", json_of(&reply));

    let reply = call(a, Some(TOKEN), "GET", "/apis/v1beta1/nonesuch", "").await;
    let json = json_of(&reply);
    assert_eq!(reply.status, 404, "{json}");
    assert_eq!(json["code"], 5, "{json}");
    let reply = call(a, Some(TOKEN), "PUT", "/apis/v1beta1/runs", "").await;
    let json = json_of(&reply);
    assert_eq!(reply.status, 501, "{json}");
    assert_eq!(json["code"], 12, "{json}");

    // Creating an experiment is a write: a viewer is refused, a user is not.
    let body = r#"{"name": "mine", "description": "d"}"#;
    let reply = call(
        a,
        Some(VIEWER_TOKEN),
        "POST",
        "/apis/v1beta1/experiments",
        body,
    )
    .await;
    let json = json_of(&reply);
    assert_eq!(reply.status, 403, "{json}");
    assert_eq!(json["code"], 7, "{json}");
    let reply = call(a, Some(TOKEN), "POST", "/apis/v1beta1/experiments", body).await;
    let json = json_of(&reply);
    assert_eq!(reply.status, 200, "{json}");
    assert_eq!(json["name"], "mine");
    assert_eq!(json["storage_state"], "STORAGESTATE_AVAILABLE");
    let reply = call(
        a,
        Some(VIEWER_TOKEN),
        "GET",
        &format!("/apis/v1beta1/experiments/{}", json["id"].as_str().unwrap()),
        "",
    )
    .await;
    assert_eq!(json_of(&reply)["description"], "d", "a viewer reads it");
    let reply = call(a, Some(TOKEN), "POST", "/apis/v1beta1/experiments", body).await;
    assert_eq!(
        json_of(&reply)["code"],
        6,
        "a name is unique: {:?}",
        json_of(&reply)
    );
    assert_eq!(reply.status, 409);
}
