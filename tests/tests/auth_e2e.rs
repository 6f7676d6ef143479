//! Who may do what, end to end, on a scheduler started as a new user
//! starts one in earnest: with a credentials file (no `--allow-anonymous`).
//!
//! - The authorisation matrix: every write route of the JSON API and the
//!   gRPC faces' writes, for every role, on a job the caller owns and on
//!   another's: allowed exactly when the role and the owner say so, and
//!   a refusal is 403 / PERMISSION_DENIED saying why; every read is open
//!   to every role.
//! - No or wrong credentials: 401 / UNAUTHENTICATED on every face, the
//!   probes and the UI's files open.
//! - HTTP basic, the UI's login session and its CSRF header, a credentials
//!   file edited while the scheduler runs, and the audit trail's lines.
//! - The scheduler refuses to start unprotected.

#![allow(clippy::unwrap_used)]

use base64::Engine;
use bytes::Bytes;
use drover_scheduler::auth::credentials::{digest_text, hash_password};
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::job_service_client::JobServiceClient;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::{
    AbortJobWorkflowRequest, DeleteJobRequest, GetJobRequest, PauseJobWorkflowRequest,
    RefreshJobRequest, RestartJobRequest, ResumeJobWorkflowRequest, StartJobRequest,
    StopJobRequest,
};
use drover_seed_api::peloton::api::v1alpha::peloton::{JobId, PodName};
use drover_seed_api::peloton::api::v1alpha::pod::svc::pod_service_client::PodServiceClient;
use drover_seed_api::peloton::api::v1alpha::pod::svc::{
    RefreshPodRequest, RestartPodRequest, StartPodRequest, StopPodRequest,
};
use drover_seed_api::titus::job_management_service_client::JobManagementServiceClient;
use drover_seed_api::titus::{Capacity, JobAttributesUpdate, JobCapacityUpdate, JobStatusUpdate};
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::{request, Reply};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Code;

/// The roles under test: (user, role, its token).
const PEOPLE: [(&str, &str); 4] = [
    ("vic", "viewer"),
    ("alice", "user"),
    ("ops", "operator"),
    ("admin", "admin"),
];

fn token(user: &str) -> String {
    format!("{user}-token")
}

fn credentials_file(dir: &Path) -> std::path::PathBuf {
    let hash = hash_password("alice-pw").unwrap();
    let mut text = String::from("users:\n");
    for (user, role) in PEOPLE {
        text.push_str(&format!(
            "  - name: {user}\n    role: {role}\n    tokens: [{}]\n",
            digest_text(&token(user))
        ));
        if user == "alice" {
            text.push_str(&format!("    teams: [payments]\n    password: '{hash}'\n"));
        }
    }
    let path = dir.join("credentials.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether `role` may change a job it owns (`own`) or another's.
fn allowed(role: &str, own: bool) -> bool {
    role == "admin" || (own && (role == "user" || role == "operator"))
}

fn spec(owner: &str, team: &str) -> Value {
    json!({
        "type": "SERVICE", "name": "web", "owner": owner, "owning_team": team,
        "instance_count": 1,
        "default_spec": {"containers": [{
            "resource": {"cpu_limit": 0.1, "mem_limit_mb": 32},
            "command": {"value": "sleep 600"}
        }]}
    })
}

async fn call(address: &str, who: Option<&str>, method: &str, path: &str, body: &Value) -> Reply {
    let auth = who.map(|w| format!("Bearer {}", token(w)));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let body = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(body.to_string())
    };
    request(address, method, path, &headers, body).await
}

fn json_of(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body).unwrap_or(Value::Null)
}

/// Creates `id` as the admin, owned by `owner` (team `team`).
async fn create_as_admin(address: &str, id: &str, owner: &str, team: &str) {
    let reply = call(
        address,
        Some("admin"),
        "POST",
        "/api/v1/jobs",
        &json!({"job_id": {"value": id}, "spec": spec(owner, team)}),
    )
    .await;
    assert_eq!(reply.status, 200, "create {id}: {:?}", json_of(&reply));
}

/// The job's owner for `user`: its own name, or somebody else's.
fn owner_for(user: &str, own: bool) -> (&str, &str) {
    if own {
        (user, "")
    } else {
        ("zed", "search")
    }
}

fn start_scheduler(dir: &Path, sim: &AgentSim, extra: &[&str]) -> Scheduler {
    let credentials = credentials_file(dir);
    let audit = dir.join("audit.log");
    let mut args = vec![
        "--credentials-file",
        credentials.to_str().unwrap(),
        "--audit-log",
        audit.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Scheduler::on(&dir.join("data"), &format!("http://{}", sim.address))
        .args(&args)
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_writes_follow_the_role_and_owner_matrix_and_reads_are_open_to_all() {
    let sim = AgentSim::for_scheduler(4).start();
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), &sim, &[]);
    let a = s.address.as_str();

    let mut wrong = Vec::new();
    for (user, role) in PEOPLE {
        for own in [true, false] {
            let (owner, team) = owner_for(user, own);
            let job = format!("{}-{user}", if own { "own" } else { "other" });
            create_as_admin(a, &job, owner, team).await;
            let pod = format!("{job}-0");
            let mut cells: Vec<(&str, String, Value)> = vec![
                (
                    "POST",
                    "/api/v1/jobs".into(),
                    json!({"job_id": {"value": format!("c-{job}")}, "spec": spec(owner, team)}),
                ),
                ("POST", format!("/api/v1/jobs/{job}/stop"), json!({})),
                ("POST", format!("/api/v1/jobs/{job}/start"), json!({})),
                ("POST", format!("/api/v1/jobs/{job}/restart"), json!({})),
                (
                    "POST",
                    format!("/api/v1/jobs/{job}/scale"),
                    json!({"instance_count": 1}),
                ),
                (
                    "POST",
                    format!("/api/v1/jobs/{job}/patch"),
                    json!({"spec": {"description": "patched"}}),
                ),
                (
                    "POST",
                    format!("/api/v1/jobs/{job}/update"),
                    json!({"spec": spec(owner, team)}),
                ),
                (
                    "POST",
                    format!("/api/v1/jobs/{job}/workflow/pause"),
                    json!({}),
                ),
                (
                    "POST",
                    format!("/api/v1/jobs/{job}/workflow/resume"),
                    json!({}),
                ),
                (
                    "POST",
                    format!("/api/v1/jobs/{job}/workflow/abort"),
                    json!({}),
                ),
                ("POST", format!("/api/v1/jobs/{job}/rollback"), json!({})),
                ("POST", format!("/api/v1/pods/{pod}/stop"), json!({})),
                ("POST", format!("/api/v1/pods/{pod}/start"), json!({})),
                ("POST", format!("/api/v1/pods/{pod}/restart"), json!({})),
            ];
            cells.push((
                "DELETE",
                format!("/api/v1/jobs/{job}?force=true"),
                Value::Null,
            ));
            // Reads first, while the job is there: open to every role.
            for path in [
                format!("/api/v1/jobs/{job}"),
                "/api/v1/jobs".to_owned(),
                format!("/api/v1/jobs/{job}/pods"),
                format!("/api/v1/pods/{pod}"),
                format!("/api/v1/pods/{pod}/events"),
                format!("/api/v1/jobs/{job}/updates"),
                "/api/v1/whoami".to_owned(),
                "/metrics".to_owned(),
            ] {
                let reply = call(a, Some(user), "GET", &path, &Value::Null).await;
                if reply.status != 200 {
                    wrong.push(format!(
                        "{role} GET {path}: {} {:?}",
                        reply.status,
                        json_of(&reply)
                    ));
                }
            }
            for (method, path, body) in &cells {
                let reply = call(a, Some(user), method, path, body).await;
                let answer = json_of(&reply);
                let denied = reply.status == 403;
                if allowed(role, own) == denied || matches!(reply.status, 401 | 500..) {
                    wrong.push(format!(
                        "{role} {} {method} {path}: {} {answer}",
                        if own { "own" } else { "other's" },
                        reply.status
                    ));
                }
                if denied {
                    assert_eq!(answer["code"], "PERMISSION_DENIED", "{answer}");
                    let message = answer["message"].as_str().unwrap_or_default();
                    assert!(
                        message.starts_with(&format!("{user} ({role}) may not ")),
                        "{message}"
                    );
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "cells against the matrix:\n{}",
        wrong.join("\n")
    );

    // A job created without an owner is its creator's, and its version
    // says who made it.
    let reply = call(
        a,
        Some("alice"),
        "POST",
        "/api/v1/jobs",
        &json!({"job_id": {"value": "alices"}, "spec": spec("", "")}),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", json_of(&reply));
    let got = json_of(&call(a, Some("vic"), "GET", "/api/v1/jobs/alices", &Value::Null).await);
    assert_eq!(got["job_info"]["spec"]["owner"], "alice", "{got}");
    assert_eq!(
        got["job_info"]["status"]["revision"]["updated_by"], "alice",
        "{got}"
    );
}

/// Adds a bearer token to each call.
type AddToken =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send + Sync>;
type Authorized = InterceptedService<Channel, AddToken>;

fn bearer(user: &str) -> AddToken {
    let value: MetadataValue<_> = format!("Bearer {}", token(user)).parse().unwrap();
    Box::new(move |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("authorization", value.clone());
        Ok(request)
    })
}

struct Clients {
    jobs: JobServiceClient<Authorized>,
    pods: PodServiceClient<Authorized>,
    titus: JobManagementServiceClient<Authorized>,
}

async fn clients(address: &str, user: &str) -> Clients {
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    Clients {
        jobs: JobServiceClient::with_interceptor(channel.clone(), bearer(user)),
        pods: PodServiceClient::with_interceptor(channel.clone(), bearer(user)),
        titus: JobManagementServiceClient::with_interceptor(channel, bearer(user)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_writes_follow_the_same_matrix_and_say_unauthenticated_without_a_token() {
    let sim = AgentSim::for_scheduler(4).start();
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), &sim, &[]);
    let a = s.address.as_str();

    // No token: UNAUTHENTICATED, on the gRPC face and its JSON twin.
    let mut anonymous = JobServiceClient::connect(format!("http://{a}"))
        .await
        .unwrap();
    let status = anonymous
        .get_job(GetJobRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("authentication required"),
        "{status:?}"
    );
    let reply = call(
        a,
        None,
        "POST",
        "/peloton.api.v1alpha.job.stateless.svc.JobService/GetJobIDFromJobName",
        &json!({"jobName": "x"}),
    )
    .await;
    assert_eq!(reply.status, 401, "{:?}", json_of(&reply));
    let mut wrong_token = JobServiceClient::with_interceptor(
        Channel::from_shared(format!("http://{a}"))
            .unwrap()
            .connect()
            .await
            .unwrap(),
        bearer("mallory"),
    );
    let status = wrong_token
        .get_job(GetJobRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let mut wrong = Vec::new();
    for (user, role) in PEOPLE {
        let mut c = clients(a, user).await;
        for own in [true, false] {
            let (owner, team) = owner_for(user, own);
            let job = format!("g-{}-{user}", if own { "own" } else { "other" });
            create_as_admin(a, &job, owner, team).await;
            let id = || Some(JobId { value: job.clone() });
            let pod = || {
                Some(PodName {
                    value: format!("{job}-0"),
                })
            };
            // A read: open to all.
            if let Err(e) = c
                .jobs
                .get_job(GetJobRequest {
                    job_id: id(),
                    ..Default::default()
                })
                .await
            {
                wrong.push(format!("{role} GetJob: {e:?}"));
            }
            let results: Vec<(&str, Result<(), tonic::Status>)> = vec![
                (
                    "StopJob",
                    c.jobs
                        .stop_job(StopJobRequest {
                            job_id: id(),
                            version: None,
                        })
                        .await
                        .map(drop),
                ),
                (
                    "StartJob",
                    c.jobs
                        .start_job(StartJobRequest {
                            job_id: id(),
                            version: None,
                        })
                        .await
                        .map(drop),
                ),
                (
                    "RestartJob",
                    c.jobs
                        .restart_job(RestartJobRequest {
                            job_id: id(),
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                ),
                (
                    "RefreshJob",
                    c.jobs
                        .refresh_job(RefreshJobRequest { job_id: id() })
                        .await
                        .map(drop),
                ),
                (
                    "PauseJobWorkflow",
                    c.jobs
                        .pause_job_workflow(PauseJobWorkflowRequest {
                            job_id: id(),
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                ),
                (
                    "ResumeJobWorkflow",
                    c.jobs
                        .resume_job_workflow(ResumeJobWorkflowRequest {
                            job_id: id(),
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                ),
                (
                    "AbortJobWorkflow",
                    c.jobs
                        .abort_job_workflow(AbortJobWorkflowRequest {
                            job_id: id(),
                            ..Default::default()
                        })
                        .await
                        .map(drop),
                ),
                (
                    "StartPod",
                    c.pods
                        .start_pod(StartPodRequest { pod_name: pod() })
                        .await
                        .map(drop),
                ),
                (
                    "RefreshPod",
                    c.pods
                        .refresh_pod(RefreshPodRequest { pod_name: pod() })
                        .await
                        .map(drop),
                ),
                (
                    "StopPod",
                    c.pods
                        .stop_pod(StopPodRequest { pod_name: pod() })
                        .await
                        .map(drop),
                ),
                (
                    "RestartPod",
                    c.pods
                        .restart_pod(RestartPodRequest {
                            pod_name: pod(),
                            check_sla: false,
                        })
                        .await
                        .map(drop),
                ),
                (
                    "Titus UpdateJobCapacity",
                    c.titus
                        .update_job_capacity(JobCapacityUpdate {
                            job_id: job.clone(),
                            capacity: Some(Capacity {
                                min: 0,
                                max: 3,
                                desired: 1,
                            }),
                        })
                        .await
                        .map(drop),
                ),
                (
                    "Titus UpdateJobAttributes",
                    c.titus
                        .update_job_attributes(JobAttributesUpdate {
                            job_id: job.clone(),
                            attributes: [("team".to_owned(), "x".to_owned())].into(),
                        })
                        .await
                        .map(drop),
                ),
                (
                    "Titus UpdateJobStatus",
                    c.titus
                        .update_job_status(JobStatusUpdate {
                            id: job.clone(),
                            enable_status: true,
                        })
                        .await
                        .map(drop),
                ),
                (
                    "DeleteJob",
                    c.jobs
                        .delete_job(DeleteJobRequest {
                            job_id: id(),
                            version: None,
                            force: true,
                        })
                        .await
                        .map(drop),
                ),
            ];
            for (method, result) in results {
                let denied = matches!(&result, Err(e) if e.code() == Code::PermissionDenied);
                let broken = matches!(&result, Err(e) if matches!(e.code(), Code::Unauthenticated | Code::Internal | Code::Unknown));
                if allowed(role, own) == denied || broken {
                    wrong.push(format!(
                        "{role} {} {method}: {result:?}",
                        if own { "own" } else { "other's" }
                    ));
                }
                if let Err(e) = &result {
                    if denied {
                        assert!(
                            e.message()
                                .starts_with(&format!("{user} ({role}) may not ")),
                            "{e:?}"
                        );
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "cells against the matrix:\n{}",
        wrong.join("\n")
    );
}

fn basic(user: &str, password: &str) -> String {
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {pair}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_basic_sessions_reload_and_the_audit_trail() {
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let s = start_scheduler(dir.path(), &sim, &[]);
    let a = s.address.as_str();

    // Open without credentials: probes, the UI's files, the login.
    for path in ["/health/ready", "/health/live", "/health", "/ui/"] {
        let reply = call(a, None, "GET", path, &Value::Null).await;
        // Ready may still be 503 (subscribing): open is what counts.
        assert!(
            matches!(reply.status, 200 | 503),
            "{path}: {}",
            reply.status
        );
    }
    // Everything else: 401 with a challenge and the reason.
    for (method, path) in [
        ("GET", "/api/v1/jobs"),
        ("GET", "/metrics"),
        ("POST", "/api/v1/jobs"),
    ] {
        let reply = call(a, None, method, path, &json!({})).await;
        assert_eq!(reply.status, 401, "{method} {path}");
        assert_eq!(reply.headers["www-authenticate"], "Bearer realm=\"drover\"");
        assert_eq!(json_of(&reply)["code"], "UNAUTHENTICATED");
    }

    // HTTP basic with the file's argon2 hash; a wrong password is refused.
    let h = |auth: &str| vec![("Authorization", auth.to_owned())];
    let as_headers = |v: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { v.clone() };
    let get_with = |headers: Vec<(&'static str, String)>, path: &'static str| async move {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        request(a, "GET", path, &headers, Bytes::new()).await
    };
    let who = get_with(
        as_headers(&h(&basic("alice", "alice-pw"))),
        "/api/v1/whoami",
    )
    .await;
    assert_eq!(who.status, 200);
    assert_eq!(
        json_of(&who),
        json!({"name": "alice", "role": "user", "teams": ["payments"], "via": "basic"})
    );
    let refused = get_with(h(&basic("alice", "nope")), "/api/v1/whoami").await;
    assert_eq!(refused.status, 401);
    assert!(json_of(&refused)["message"]
        .as_str()
        .unwrap()
        .contains("wrong user name or password"));

    // The UI's login: a cookie with the usual protections, accepted on
    // reads, and on writes only with the CSRF header.
    let login = request(
        a,
        "POST",
        "/api/v1/login",
        &[("Content-Type", "application/json")],
        Bytes::from(json!({"user": "alice", "password": "alice-pw"}).to_string()),
    )
    .await;
    assert_eq!(login.status, 200, "{:?}", json_of(&login));
    let set_cookie = login.headers["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let who = get_with(vec![("Cookie", cookie.clone())], "/api/v1/whoami").await;
    assert_eq!(json_of(&who)["via"], "session");
    create_as_admin(a, "mine", "alice", "").await;
    let stop = |headers: Vec<(&'static str, String)>| async move {
        let mut headers: Vec<(&str, &str)> =
            headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        headers.push(("Content-Type", "application/json"));
        request(
            a,
            "POST",
            "/api/v1/jobs/mine/stop",
            &headers,
            Bytes::from("{}"),
        )
        .await
    };
    let forged = stop(vec![("Cookie", cookie.clone())]).await;
    assert_eq!(forged.status, 403, "{:?}", json_of(&forged));
    assert!(json_of(&forged)["message"]
        .as_str()
        .unwrap()
        .contains("x-drover-csrf"));
    let ok = stop(vec![
        ("Cookie", cookie.clone()),
        ("X-Drover-CSRF", "1".into()),
    ])
    .await;
    assert_eq!(ok.status, 200, "{:?}", json_of(&ok));
    let out = request(
        a,
        "POST",
        "/api/v1/logout",
        &[("Cookie", cookie.as_str())],
        Bytes::new(),
    )
    .await;
    assert_eq!(out.status, 204);
    let after = get_with(vec![("Cookie", cookie.clone())], "/api/v1/whoami").await;
    assert_eq!(after.status, 401);

    // The file edited while the scheduler runs: alice's token revoked,
    // a new user in; a broken edit keeps what was read before.
    let file = dir.path().join("credentials.yaml");
    std::fs::write(
        &file,
        format!(
            "users:\n  - {{name: admin, role: admin, tokens: [{}]}}\n  - {{name: newbie, role: viewer, tokens: [{}]}}\n",
            digest_text(&token("admin")),
            digest_text("newbie-token")
        ),
    )
    .unwrap();
    let revoked = wait_for(Duration::from_secs(10), || async {
        let reply = call(a, Some("alice"), "GET", "/api/v1/whoami", &Value::Null).await;
        (reply.status == 401).then_some(())
    })
    .await;
    assert!(
        revoked.is_some(),
        "alice's token is still taken after the file changed"
    );
    let newbie = get_with(h("Bearer newbie-token"), "/api/v1/whoami").await;
    assert_eq!(json_of(&newbie)["role"], "viewer");
    std::fs::write(&file, "users: [{name: x, role: emperor}]").unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let still = get_with(h("Bearer newbie-token"), "/api/v1/whoami").await;
    assert_eq!(
        still.status, 200,
        "a broken file keeps the credentials read before"
    );

    // The audit trail: one JSON line per write and per refusal, with who,
    // how, through what, to what, how it ended and the request's id.
    let reply = request(
        a,
        "POST",
        "/api/v1/jobs/mine/start",
        &[
            ("Authorization", &format!("Bearer {}", token("admin"))),
            ("X-Request-Id", "req-42"),
            ("Content-Type", "application/json"),
        ],
        Bytes::from("{}"),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["x-request-id"], "req-42");
    let lines: Vec<Value> = std::fs::read_to_string(dir.path().join("audit.log"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let start = lines
        .iter()
        .find(|l| l["request_id"] == "req-42")
        .expect("the start's line");
    for (field, value) in [
        ("identity", "admin"),
        ("role", "admin"),
        ("via", "token"),
        ("face", "json"),
        ("method", "POST /api/v1/jobs/{id}/start"),
        ("target", "mine"),
        ("result", "OK"),
    ] {
        assert_eq!(start[field], value, "{start}");
    }
    assert!(
        lines
            .iter()
            .any(|l| l["method"] == "POST /api/v1/jobs/{id}/stop"
                && l["result"] == "PERMISSION_DENIED"
                && l["identity"] == "alice"),
        "the forged write's refusal is there: {lines:?}"
    );
    assert!(lines.iter().any(|l| l["method"] == "POST /api/v1/login"
        || (l["result"] == "UNAUTHENTICATED" && l["identity"].is_null())));
    let mode = std::fs::metadata(dir.path().join("audit.log")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprotected_scheduler_refuses_to_start_saying_how_to_protect_it() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = credentials_file(dir.path());
    let cases: [(&str, Vec<&str>, &str); 3] = [
        (
            "127.0.0.1:0",
            vec![],
            "no credentials: pass --credentials-file FILE",
        ),
        (
            "0.0.0.0:0",
            vec!["--credentials-file", credentials.to_str().unwrap()],
            "needs TLS and authentication: pass --tls-cert FILE --tls-key FILE",
        ),
        (
            "0.0.0.0:0",
            vec!["--allow-anonymous"],
            "not a loopback address: anybody",
        ),
    ];
    for (listen, flags, expected) in cases {
        let out = Scheduler::on(&dir.path().join("data"), "http://127.0.0.1:1")
            .authenticated_only()
            .listen(listen)
            .args(&flags)
            .run_until_exit(Duration::from_secs(20))
            .await
            .unwrap_or_else(|o| panic!("still running: {o:?}"));
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(expected), "{listen} {flags:?}: {stderr}");
    }
}

/// Protected as a non-loopback listen must be (TLS and a credentials
/// file), the scheduler starts on every address; a client certificate
/// whose name is a user's proves that user, one of another CA ends the
/// handshake, and without any credentials it is 401 as ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_certificate_proves_its_user_on_a_protected_non_loopback_listen() {
    use drover_tests::harness::pki::TestCa;
    let sim = AgentSim::for_scheduler(1).start();
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path(), "api");
    let server = ca.server("server");
    let alice = ca.client("alice", "alice");
    let stranger = TestCa::new(dir.path(), "other").client("stranger", "alice");
    let credentials = credentials_file(dir.path());
    let s = Scheduler::on(&dir.path().join("data"), &format!("http://{}", sim.address))
        .authenticated_only()
        .listen("0.0.0.0:0")
        .args(&[
            "--credentials-file",
            credentials.to_str().unwrap(),
            "--tls-cert",
            server.cert.to_str().unwrap(),
            "--tls-key",
            server.key.to_str().unwrap(),
            "--tls-client-ca",
            ca.ca_file.to_str().unwrap(),
        ])
        .start();
    let port = s.address.rsplit(':').next().unwrap().to_owned();
    let url = format!("https://localhost:{port}/api/v1/whoami");
    let curl = |extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "--cacert",
                ca.ca_file.to_str().unwrap(),
            ])
            .args(extra)
            .arg(&url)
            .output()
            .expect("curl runs");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, out, err) = curl(&[
        "--cert",
        alice.cert.to_str().unwrap(),
        "--key",
        alice.key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let who: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(who["name"], "alice", "{who}");
    assert_eq!(who["via"], "certificate", "{who}");
    let (_, out, _) = curl(&[]);
    assert!(out.contains("UNAUTHENTICATED"), "{out}");
    let (code, _, err) = curl(&[
        "--cert",
        stranger.cert.to_str().unwrap(),
        "--key",
        stranger.key.to_str().unwrap(),
    ]);
    assert_ne!(
        code, 0,
        "a certificate of another CA is refused in the handshake: {err}"
    );
}
