//! Resource pools from an operator's and a user's point of view, against
//! the real scheduler and agent simulator on loopback: Peloton's
//! `ResourcePoolService` over gRPC (tonic client from drover-seed-api),
//! the JSON API at `/api/v1/pools` and the `drover pool` CLI build one
//! tree with Peloton's refusals (ALREADY_EXISTS, INVALID_ARGUMENT naming
//! the field, NOT_FOUND, FAILED_PRECONDITION for a non-leaf or busy
//! pool); jobs run only in existing leaf pools, their running pods show
//! as the pool's allocation, and a restart keeps the pools.
#![allow(clippy::unwrap_used)]

use drover_seed_api::peloton::api::v1alpha::peloton;
use drover_seed_api::peloton::api::v1alpha::respool::resource_pool_service_client::ResourcePoolServiceClient;
use drover_seed_api::peloton::api::v1alpha::respool::*;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::http::{call, get, post};
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use serde_json::{json, Value};
use std::process::{Command, Stdio};
use std::time::Duration;
use tonic::transport::Channel;

type Pools = ResourcePoolServiceClient<Channel>;

fn id(value: &str) -> Option<peloton::ResourcePoolId> {
    Some(peloton::ResourcePoolId {
        value: value.into(),
    })
}

fn cpu(reservation: f64, limit: f64, share: f64) -> ResourceSpec {
    ResourceSpec {
        kind: "cpu".into(),
        reservation,
        limit,
        share,
        r#type: ReservationType::Elastic as i32,
    }
}

fn spec(name: &str, parent: Option<&str>, resources: Vec<ResourceSpec>) -> ResourcePoolSpec {
    ResourcePoolSpec {
        name: name.into(),
        parent: parent.and_then(id),
        resources,
        policy: SchedulingPolicy::PriorityFifo as i32,
        ..Default::default()
    }
}

async fn create(
    pools: &mut Pools,
    pool: &str,
    spec: ResourcePoolSpec,
) -> Result<String, tonic::Status> {
    let answer = pools
        .create_resource_pool(CreateResourcePoolRequest {
            respool_id: id(pool),
            spec: Some(spec),
        })
        .await?;
    Ok(answer.into_inner().respool_id.unwrap().value)
}

async fn get_pool(pools: &mut Pools, pool: &str) -> GetResourcePoolResponse {
    pools
        .get_resource_pool(GetResourcePoolRequest {
            respool_id: id(pool),
            include_child_pools: true,
        })
        .await
        .unwrap()
        .into_inner()
}

fn allocation(info: &ResourcePoolInfo, kind: &str) -> f64 {
    info.usages
        .iter()
        .find(|u| u.kind == kind)
        .map(|u| u.allocation)
        .unwrap_or(-1.0)
}

/// `drover --addr ADDR args...`: (exit code, stdout, stderr), without the
/// user's config file; killed by the harness' 60 s bound.
fn drover(addr: &str, args: &[&str]) -> (i32, String, String) {
    let child = Command::new(binaries::drover())
        .arg("--addr")
        .arg(format!("http://{addr}"))
        .args(args)
        .env_remove("DROVER_ADDR")
        .env_remove("DROVER_TOKEN")
        .env("DROVER_CONFIG", "/nonexistent/drover-config.yaml")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let out = match finished.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out,
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            finished.recv().unwrap()
        }
    }
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pools_are_built_refused_used_and_kept_over_grpc_json_and_the_cli() {
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let master = format!("http://{}", sim.address);
    let mut scheduler = Scheduler::start(dir.path(), &master, &[]);
    let addr = scheduler.address.clone();
    let mut pools = Pools::connect(format!("http://{addr}")).await.unwrap();

    // gRPC: /infra (4 of 8 cpus reserved) with /infra/batch (2 of 6).
    create(
        &mut pools,
        "infra",
        spec("infra", None, vec![cpu(4.0, 8.0, 1.0)]),
    )
    .await
    .unwrap();
    create(
        &mut pools,
        "batch",
        spec("batch", Some("infra"), vec![cpu(2.0, 6.0, 2.0)]),
    )
    .await
    .unwrap();
    let generated = create(&mut pools, "", spec("scratch", Some("infra"), vec![]))
        .await
        .unwrap();
    assert_eq!(generated.len(), 36, "a generated UUID: {generated}");

    // Peloton's refusals, each naming what is wrong.
    let taken = create(&mut pools, "batch2", spec("batch", Some("infra"), vec![]))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), tonic::Code::AlreadyExists, "{taken:?}");
    assert!(taken.message().contains("/infra/batch"), "{taken:?}");
    let over = create(&mut pools, "x", spec("x", None, vec![cpu(5.0, 4.0, 1.0)]))
        .await
        .unwrap_err();
    assert_eq!(over.code(), tonic::Code::InvalidArgument, "{over:?}");
    assert!(
        over.message().starts_with("spec.resources[0].reservation:"),
        "{over:?}"
    );
    let over_parent = create(
        &mut pools,
        "y",
        spec("y", Some("infra"), vec![cpu(3.0, 6.0, 1.0)]),
    )
    .await
    .unwrap_err();
    assert_eq!(over_parent.code(), tonic::Code::InvalidArgument);
    assert!(
        over_parent.message().contains("over its reservation 4"),
        "{over_parent:?}"
    );
    let orphan = create(&mut pools, "z", spec("z", Some("nope"), vec![]))
        .await
        .unwrap_err();
    assert_eq!(orphan.code(), tonic::Code::InvalidArgument);
    assert!(orphan.message().starts_with("spec.parent:"), "{orphan:?}");
    let unknown_kind = create(
        &mut pools,
        "k",
        spec(
            "k",
            None,
            vec![ResourceSpec {
                kind: "bananas".into(),
                ..cpu(0.0, 1.0, 1.0)
            }],
        ),
    )
    .await
    .unwrap_err();
    assert!(
        unknown_kind
            .message()
            .starts_with("spec.resources[0].kind:"),
        "{unknown_kind:?}"
    );

    let found = pools
        .lookup_resource_pool_id(LookupResourcePoolIdRequest {
            path: Some(ResourcePoolPath {
                value: "/infra/batch".into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.respool_id.unwrap().value, "batch");

    // JSON: a pool at the root, then the list.
    let (status, reply) = post(
        &addr,
        "/api/v1/pools",
        &json!({"respool_id": {"value": "web"}, "spec": {
            "name": "web", "resources": [{"kind": "cpu", "reservation": 1, "limit": 4}]
        }}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let (status, dup) = post(
        &addr,
        "/api/v1/pools",
        &json!({"respool_id": {"value": "web"}, "spec": {"name": "web2", "resources": []}}),
    )
    .await;
    assert_eq!(
        (status, dup["code"].as_str()),
        (409, Some("ALREADY_EXISTS"))
    );
    let (_, list) = get(&addr, "/api/v1/pools").await;
    let paths: Vec<&str> = list["respools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"]["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/",
            "/default",
            "/infra",
            "/infra/batch",
            "/infra/scratch",
            "/web"
        ]
    );

    // Jobs run only in leaf pools that exist.
    let mut in_infra = job_spec("BATCH", 1, "sleep 60");
    in_infra["respool_id"] = json!("infra");
    let (status, refused) = post(&addr, "/api/v1/jobs", &json!({"spec": in_infra})).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.respool_id:"),
        "{refused}"
    );
    let mut in_nowhere = job_spec("BATCH", 1, "sleep 60");
    in_nowhere["respool_id"] = json!("nope");
    let (status, refused) = post(&addr, "/api/v1/jobs", &json!({"spec": in_nowhere})).await;
    assert_eq!((status, refused["code"].as_str()), (404, Some("NOT_FOUND")));

    // Two running pods of 0.1 cpu each are /infra/batch's allocation,
    // and /infra's.
    let mut in_batch = job_spec("BATCH", 2, "sleep 600");
    in_batch["respool_id"] = json!("/infra/batch");
    create_job(&addr, "nightly", in_batch).await;
    wait_for_job_state(
        &addr,
        "nightly",
        "JOB_STATE_RUNNING",
        Duration::from_secs(30),
    )
    .await;
    let batch = get_pool(&mut pools, "batch").await.respool.unwrap();
    assert!(
        (allocation(&batch, "cpu") - 0.2).abs() < 1e-9,
        "{:?}",
        batch.usages
    );
    assert!((allocation(&batch, "memory") - 64.0).abs() < 1e-9);
    let infra = get_pool(&mut pools, "infra").await;
    assert!((allocation(infra.respool.as_ref().unwrap(), "cpu") - 0.2).abs() < 1e-9);
    assert_eq!(infra.child_respools.len(), 2);
    assert_eq!(
        infra.respool.unwrap().path.unwrap().value,
        "/infra",
        "the path is shown"
    );

    // Deleting: not a parent, not a busy pool, not the default pool.
    let delete = |pool: &str| DeleteResourcePoolRequest {
        respool_id: id(pool),
    };
    let parent = pools
        .delete_resource_pool(delete("infra"))
        .await
        .unwrap_err();
    assert_eq!(parent.code(), tonic::Code::FailedPrecondition, "{parent:?}");
    assert!(parent.message().contains("child pools"), "{parent:?}");
    let busy = pools
        .delete_resource_pool(delete("batch"))
        .await
        .unwrap_err();
    assert_eq!(busy.code(), tonic::Code::FailedPrecondition, "{busy:?}");
    assert!(busy.message().contains("busy"), "{busy:?}");
    let default = pools
        .delete_resource_pool(delete("default"))
        .await
        .unwrap_err();
    assert_eq!(default.code(), tonic::Code::FailedPrecondition);
    pools
        .delete_resource_pool(delete(&generated))
        .await
        .unwrap();

    // An update keeps the parent and its children within it.
    let shrink = pools
        .update_resource_pool(UpdateResourcePoolRequest {
            respool_id: id("infra"),
            spec: Some(spec("infra", None, vec![cpu(1.0, 8.0, 1.0)])),
            force: false,
        })
        .await
        .unwrap_err();
    assert_eq!(shrink.code(), tonic::Code::InvalidArgument, "{shrink:?}");
    // A spec without a parent keeps the pool's.
    pools
        .update_resource_pool(UpdateResourcePoolRequest {
            respool_id: id("batch"),
            spec: Some(spec("batch", None, vec![cpu(3.0, 6.0, 2.0)])),
            force: false,
        })
        .await
        .unwrap();
    let moved = pools
        .update_resource_pool(UpdateResourcePoolRequest {
            respool_id: id("batch"),
            spec: Some(spec("batch", Some("web"), vec![cpu(3.0, 6.0, 2.0)])),
            force: false,
        })
        .await
        .unwrap_err();
    assert!(moved.message().contains("cannot move"), "{moved:?}");
    // Peloton's force stores a config that fails validation: Drover
    // cannot, and says so naming the field, on both faces, even for a
    // config that would pass.
    let forced = pools
        .update_resource_pool(UpdateResourcePoolRequest {
            respool_id: id("batch"),
            spec: Some(spec("batch", None, vec![cpu(3.0, 6.0, 2.0)])),
            force: true,
        })
        .await
        .unwrap_err();
    assert_eq!(forced.code(), tonic::Code::InvalidArgument, "{forced:?}");
    assert!(forced.message().starts_with("force: "), "{forced:?}");
    let (status, body) = call(
        &addr,
        "PUT",
        "/api/v1/pools/batch",
        Some(br#"{"spec": {"name": "batch"}, "force": true}"#.to_vec()),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().starts_with("force: "),
        "{body}"
    );
    let (status, body) = call(
        &addr,
        "PUT",
        "/api/v1/pools/web",
        Some(
            br#"{"spec": {"name": "web", "resources": [{"kind": "cpu", "limit": "lots"}]}}"#
                .to_vec(),
        ),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.resources[0].limit:"),
        "{body}"
    );

    // The CLI: list, update by path with a flag, get as JSON, delete.
    let (code, out, err) = drover(&addr, &["pool", "list"]);
    assert_eq!(code, 0, "{err}");
    let batch_row = out.lines().find(|l| l.starts_with("/infra/batch")).unwrap();
    let cells: Vec<&str> = batch_row.split_whitespace().collect();
    assert_eq!(
        cells[..8],
        ["/infra/batch", "batch", "1", "3", "6", "2", "0.20", "0"]
    );
    let (code, _, err) = drover(&addr, &["pool", "update", "/web", "--cpu-limit", "10"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = drover(&addr, &["pool", "get", "web", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let web: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(web["respool"]["spec"]["resources"][0]["limit"], 10.0);
    assert_eq!(web["respool"]["spec"]["resources"][0]["reservation"], 1.0);
    assert_eq!(web["respool"]["version"], 2);
    let (code, _, err) = drover(
        &addr,
        &["pool", "create", "--name", "ml", "--gpu-reservation", "1"],
    );
    assert_eq!(code, 2, "a new kind needs its limit: {err}");
    assert!(err.contains("--gpu-limit"), "{err}");
    let (code, out, err) = drover(
        &addr,
        &[
            "pool",
            "create",
            "--id",
            "ml",
            "--name",
            "ml",
            "--cpu-reservation",
            "1",
            "--cpu-limit",
            "2",
        ],
    );
    assert_eq!((code, out.trim()), (0, "ml"), "{err}");
    let example = binaries::repo_root().join("examples/pools/batch.yaml");
    let (code, out, err) = drover(
        &addr,
        &[
            "pool",
            "create",
            "--id",
            "nightly",
            "--file",
            example.to_str().unwrap(),
        ],
    );
    assert_eq!((code, out.trim()), (0, "nightly"), "{err}");
    let (code, out, err) = drover(&addr, &["pool", "get", "/batch", "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let nightly: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(nightly["respool"]["respool_id"]["value"], "nightly");
    assert_eq!(
        nightly["respool"]["spec"]["resources"][1]["reservation"],
        8192.0
    );
    let (code, _, err) = drover(&addr, &["pool", "delete", "/infra"]);
    assert_eq!(code, 1);
    assert!(err.contains("FAILED_PRECONDITION"), "{err}");
    let (code, out, err) = drover(&addr, &["pool", "delete", "/web"]);
    assert_eq!((code, out.trim()), (0, "deleted web"), "{err}");
    let (status, gone) = call(&addr, "DELETE", "/api/v1/pools/web", None).await;
    assert_eq!((status, gone["code"].as_str()), (404, Some("NOT_FOUND")));

    // A restart keeps every pool as it was last changed.
    scheduler.stop();
    let scheduler = Scheduler::start(dir.path(), &master, &[]);
    let mut pools = Pools::connect(format!("http://{}", scheduler.address))
        .await
        .unwrap();
    let all = pools
        .query_resource_pools(QueryResourcePoolsRequest {})
        .await
        .unwrap()
        .into_inner()
        .respools;
    let paths: Vec<String> = all
        .iter()
        .map(|p| p.path.as_ref().unwrap().value.clone())
        .collect();
    assert_eq!(
        paths,
        ["/", "/batch", "/default", "/infra", "/infra/batch", "/ml"]
    );
    let batch = get_pool(&mut pools, "batch").await.respool.unwrap();
    let kept = batch.spec.unwrap();
    assert_eq!(kept.revision.unwrap().version, 2);
    assert_eq!(kept.resources[0].reservation, 3.0);
    assert_eq!(kept.parent.unwrap().value, "infra");
}

/// A scheduler with a credentials file: a viewer, a user, an operator.
fn protected_scheduler(dir: &std::path::Path, sim: &AgentSim) -> Scheduler {
    let mut text = String::from("users:\n");
    for (user, role) in [("vic", "viewer"), ("alice", "user"), ("ops", "operator")] {
        text.push_str(&format!(
            "  - name: {user}\n    role: {role}\n    tokens: [{}]\n",
            drover_scheduler::auth::credentials::digest_text(&format!("{user}-token"))
        ));
    }
    let credentials = dir.join("credentials.yaml");
    std::fs::write(&credentials, text).unwrap();
    Scheduler::on(&dir.join("data"), &format!("http://{}", sim.address))
        .args(&["--credentials-file", credentials.to_str().unwrap()])
        .authenticated_only()
        .start()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_operators_change_pools_and_everyone_reads_them() {
    use drover_tests::harness::http::request;
    let sim = AgentSim::for_scheduler(1).start();
    let dir = tempfile::tempdir().unwrap();
    let scheduler = protected_scheduler(dir.path(), &sim);
    let addr = scheduler.address.clone();
    let as_ = |who: &str, method: &'static str, path: &'static str, body: Value| {
        let addr = addr.clone();
        let auth = format!("Bearer {who}-token");
        async move {
            let reply = request(
                &addr,
                method,
                path,
                &[
                    ("Content-Type", "application/json"),
                    ("Authorization", &auth),
                ],
                bytes::Bytes::from(if body.is_null() {
                    String::new()
                } else {
                    body.to_string()
                }),
            )
            .await;
            let json: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
            (reply.status, json)
        }
    };
    let create =
        json!({"respool_id": {"value": "batch"}, "spec": {"name": "batch", "resources": []}});
    for who in ["vic", "alice"] {
        let (status, body) = as_(who, "POST", "/api/v1/pools", create.clone()).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("PERMISSION_DENIED"))
        );
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("may not create pool batch"),
            "{body}"
        );
    }
    let (status, body) = as_("ops", "POST", "/api/v1/pools", create).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = as_("vic", "GET", "/api/v1/pools", Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["respools"].as_array().unwrap().len(), 3, "{body}");
    let (status, _) = as_("alice", "DELETE", "/api/v1/pools/batch", Value::Null).await;
    assert_eq!(status, 403);

    // gRPC: the same refusal for a user, the same read for a viewer.
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let with = |who: &str| {
        let value: tonic::metadata::MetadataValue<_> =
            format!("Bearer {who}-token").parse().unwrap();
        ResourcePoolServiceClient::with_interceptor(
            channel.clone(),
            move |mut r: tonic::Request<()>| {
                r.metadata_mut().insert("authorization", value.clone());
                Ok(r)
            },
        )
    };
    let denied = with("alice")
        .delete_resource_pool(DeleteResourcePoolRequest {
            respool_id: id("batch"),
        })
        .await
        .unwrap_err();
    assert_eq!(denied.code(), tonic::Code::PermissionDenied, "{denied:?}");
    let listed = with("vic")
        .query_resource_pools(QueryResourcePoolsRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.respools.len(), 3);
    with("ops")
        .delete_resource_pool(DeleteResourcePoolRequest {
            respool_id: id("batch"),
        })
        .await
        .unwrap();
}
