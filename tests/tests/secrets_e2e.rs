//! Secrets end to end, on agent-sim's real agent (tasks under the real
//! drover-executor): a job's secret, given in the JSON spec and through
//! Peloton's CreateJob, reaches its task as a file in the sandbox (the
//! task checks the contents by hash, the mode 0400 and that it owns it,
//! and runs only if all are right), survives a scheduler restart (a run
//! relaunched by the restarted scheduler gets it too), follows a patch
//! (a new value) and a replace naming none (kept), and is nowhere
//! else: not in any log of the scheduler, agent-sim or the executors, not
//! in the store's files (database, WAL) in the clear, and not in any
//! answer reachable (JSON job get, list, query, pods, pod events, the SSE
//! watch, gRPC GetJob and GetPod, agent-sim's `/state`, `/master/state`,
//! `/sim/tasks`). Then a scheduler given another key refuses the store.
//! Root only (real cgroups, the task runs as `nobody`).
#![allow(clippy::unwrap_used)]

use base64::Engine as _;
use drover_seed_api::peloton::api::v1alpha::job::stateless::{
    self,
    svc::{
        job_service_client::JobServiceClient, CreateJobRequest, GetJobRequest, ReplaceJobRequest,
    },
};
use drover_seed_api::peloton::api::v1alpha::pod::svc::{
    pod_service_client::PodServiceClient, GetPodRequest,
};
use drover_seed_api::peloton::api::v1alpha::{peloton, pod};
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use prost::Message;
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
/// The marker a task leaves once it has found its secret right, by the
/// secret's hash: `checked-<first 16 hex digits>`.
fn checked(sha: &str) -> String {
    format!("checked-{}", &sha[..16])
}

fn sha256_hex(bytes: &[u8]) -> String {
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .expect("sha256sum runs");
    String::from_utf8(out.stdout).unwrap()[..64].to_owned()
}

/// A shell command that runs only if `path` (in the sandbox) has bytes
/// hashing to one of `shas`, mode 0400, owned by the task's own user: it
/// leaves [`checked`] of the hash it found and sleeps; otherwise it says
/// what was wrong and exits 3.
fn checking_command(path: &str, shas: &[String]) -> String {
    let known: Vec<&str> = shas.iter().map(String::as_str).collect();
    format!(
        "cd \"$MESOS_SANDBOX\" || exit 3; \
         mode=$(stat -c %a {path}); owner=$(stat -c %u {path}); \
         [ \"$mode\" = 400 ] || {{ echo \"mode $mode\"; exit 3; }}; \
         [ \"$owner\" = \"$(id -u)\" ] || {{ echo \"owner $owner\"; exit 3; }}; \
         sha=$(sha256sum {path} | cut -c1-64); \
         case \"$sha\" in {}) ;; *) echo 'contents differ'; exit 3;; esac; \
         touch checked-$(echo $sha | cut -c1-16); exec sleep 600",
        known.join("|")
    )
}

/// Every file under `dir`, but the secret files themselves (named
/// `skip`: the one place the bytes belong).
fn files(dir: &Path, skip: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            files(&path, skip, out);
        } else if meta.is_file() && !skip.iter().any(|s| path.ends_with(s)) {
            out.push(path);
        }
    }
}

fn count_named(dir: &Path, name: &str) -> usize {
    let mut all = Vec::new();
    files(dir, &[], &mut all);
    all.iter().filter(|p| p.ends_with(name)).count()
}

/// Where `needle` occurs in `haystack`, if anywhere.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What the test must find nowhere: each secret's bytes and base64.
struct Needles(Vec<(String, Vec<u8>)>);

impl Needles {
    fn new(secrets: &[&[u8]]) -> Self {
        let mut all = Vec::new();
        for (i, s) in secrets.iter().enumerate() {
            all.push((format!("secret {i}"), s.to_vec()));
            let b64 = base64::engine::general_purpose::STANDARD.encode(s);
            all.push((format!("secret {i} as base64"), b64.into_bytes()));
        }
        Needles(all)
    }

    #[track_caller]
    fn absent(&self, what: &str, bytes: &[u8]) {
        for (name, needle) in &self.0 {
            if let Some(at) = find(bytes, needle) {
                let from = at.saturating_sub(200);
                let to = (at + needle.len() + 200).min(bytes.len());
                panic!(
                    "{name} found in {what} at byte {at}: ...{}...",
                    String::from_utf8_lossy(&bytes[from..to])
                );
            }
        }
    }
}

/// Every answer a user or operator can read about the jobs, as bytes.
async fn answers(api: &str, sim: &AgentSim, jobs: &[&str]) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut json =
        |what: String, v: serde_json::Value| out.push((what, v.to_string().into_bytes()));
    for job in jobs {
        json(
            format!("GET job {job}"),
            get(api, &format!("/api/v1/jobs/{job}")).await.1,
        );
        json(
            format!("GET job {job} pods"),
            get(api, &format!("/api/v1/jobs/{job}/pods")).await.1,
        );
        json(
            format!("GET job {job} updates"),
            get(api, &format!("/api/v1/jobs/{job}/updates")).await.1,
        );
        json(
            format!("GET pod {job}-0"),
            get(api, &format!("/api/v1/pods/{job}-0")).await.1,
        );
        json(
            format!("GET pod {job}-0 events"),
            get(api, &format!("/api/v1/pods/{job}-0/events")).await.1,
        );
        json(
            format!("query pods of {job}"),
            post(
                api,
                &format!("/api/v1/jobs/{job}/pods/query"),
                &serde_json::json!({}),
            )
            .await
            .1,
        );
    }
    json("GET jobs".into(), get(api, "/api/v1/jobs").await.1);
    json(
        "query jobs".into(),
        post(api, "/api/v1/jobs/query", &serde_json::json!({}))
            .await
            .1,
    );
    json("GET agents".into(), get(api, "/api/v1/agents").await.1);
    json("GET store".into(), get(api, "/api/v1/store").await.1);
    json("metrics".into(), get(api, "/metrics").await.1);
    json("agent-sim /state".into(), sim.get("/state").await.1);
    json(
        "agent-sim /master/state".into(),
        sim.get("/master/state").await.1,
    );
    json("agent-sim /sim/tasks".into(), sim.get("/sim/tasks").await.1);
    json(
        "agent-sim /sim/executors".into(),
        sim.get("/sim/executors").await.1,
    );
    // The SSE watch: its snapshot and what follows for a moment.
    let sse = std::process::Command::new("curl")
        .args(["-sN", "--max-time", "2"])
        .arg(format!("http://{api}/api/v1/watch"))
        .output()
        .expect("curl runs");
    assert!(!sse.stdout.is_empty(), "the watch answered nothing");
    out.push(("the SSE watch".into(), sse.stdout));
    // gRPC: GetJob of every job and GetPod of its pod, encoded and as
    // Debug text.
    let mut jobs_client = JobServiceClient::connect(format!("http://{api}"))
        .await
        .unwrap();
    let mut pods_client = PodServiceClient::connect(format!("http://{api}"))
        .await
        .unwrap();
    for job in jobs {
        let answer = jobs_client
            .get_job(GetJobRequest {
                job_id: Some(peloton::JobId {
                    value: (*job).into(),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.push((format!("gRPC GetJob {job}"), answer.encode_to_vec()));
        out.push((
            format!("gRPC GetJob {job} (Debug)"),
            format!("{answer:?}").into_bytes(),
        ));
        let pod = pods_client
            .get_pod(GetPodRequest {
                pod_name: Some(peloton::PodName {
                    value: format!("{job}-0"),
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        out.push((format!("gRPC GetPod {job}-0"), pod.encode_to_vec()));
    }
    out
}

fn peloton_job(name: &str, command: &str) -> stateless::JobSpec {
    stateless::JobSpec {
        name: name.into(),
        instance_count: 1,
        default_spec: Some(pod::PodSpec {
            containers: vec![pod::ContainerSpec {
                name: "main".into(),
                resource: Some(pod::ResourceSpec {
                    cpu_limit: 0.1,
                    mem_limit_mb: 32.0,
                    ..Default::default()
                }),
                command: Some(drover_proto::v1::CommandInfo {
                    value: Some(command.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            kill_grace_period_seconds: 1,
            ..Default::default()
        }),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_reaches_its_task_as_its_users_file_and_appears_nowhere_else() {
    require_root();
    let executor = binaries::executor();
    let executor = executor.to_str().unwrap();
    let work = tempfile::tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let sim = AgentSim::for_scheduler(1)
        .real_agents(1, work.path())
        .log_to(&logs.path().join("agent-sim.log"), "debug")
        .start();
    let master = format!("http://{}", sim.address);
    let scheduler_log = logs.path().join("scheduler.log");
    let start = || {
        Scheduler::on(data.path(), &master)
            .args(&["--executor", executor])
            .log_to(&scheduler_log, "debug")
            .start()
    };
    let mut scheduler = start();

    // Two secrets of random bytes, printable so a log could hold them.
    let json_secret = format!("json-secret-{}", uuid::Uuid::new_v4().simple());
    let grpc_secret = format!("grpc-secret-{}", uuid::Uuid::new_v4().simple());
    // The JSON job's next value, given by a patch.
    let json_secret_2 = format!("json-secret-2-{}", uuid::Uuid::new_v4().simple());
    let needles = Needles::new(&[
        json_secret.as_bytes(),
        grpc_secret.as_bytes(),
        json_secret_2.as_bytes(),
    ]);
    let (json_sha, json_sha_2, grpc_sha) = (
        sha256_hex(json_secret.as_bytes()),
        sha256_hex(json_secret_2.as_bytes()),
        sha256_hex(grpc_secret.as_bytes()),
    );
    let seen_times = |sha: &str, times: usize| {
        let name = checked(sha);
        let work = work.path().to_owned();
        async move {
            wait_for(LIMIT, || async {
                (count_named(&work, &name) == times).then_some(())
            })
            .await
            .is_some()
        }
    };

    // The JSON face: `secrets` in the spec, the value base64.
    let mut spec = job_spec(
        "SERVICE",
        1,
        &checking_command("conf/db.pass", &[json_sha.clone(), json_sha_2.clone()]),
    );
    spec["secrets"] = serde_json::json!([{
        "id": "db",
        "path": "conf/db.pass",
        "value": base64::engine::general_purpose::STANDARD.encode(&json_secret),
    }]);
    create_job(&scheduler.address, "secret", spec).await;

    // The gRPC face: Peloton's CreateJobRequest.secrets, data base64.
    let mut client = JobServiceClient::connect(format!("http://{}", scheduler.address))
        .await
        .unwrap();
    client
        .create_job(CreateJobRequest {
            job_id: Some(peloton::JobId {
                value: "grpcsecret".into(),
            }),
            spec: Some(peloton_job(
                "grpcsecret",
                &checking_command("tls.key", std::slice::from_ref(&grpc_sha)),
            )),
            secrets: vec![peloton::Secret {
                secret_id: Some(peloton::SecretId {
                    value: "tls".into(),
                }),
                path: "tls.key".into(),
                value: Some(peloton::secret::Value {
                    data: base64::engine::general_purpose::STANDARD
                        .encode(&grpc_secret)
                        .into_bytes(),
                }),
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    for job in ["secret", "grpcsecret"] {
        wait_for_job_state(&scheduler.address, job, "JOB_STATE_RUNNING", LIMIT).await;
    }
    assert!(
        seen_times(&json_sha, 1).await && seen_times(&grpc_sha, 1).await,
        "the tasks did not both find their secrets right: {}",
        get(&scheduler.address, "/api/v1/pods/secret-0").await.1
    );

    // Bad secrets are refused on both faces, naming the field and never
    // quoting a value.
    let mut bad = job_spec("SERVICE", 1, "sleep 1");
    bad["secrets"] = serde_json::json!([{"path": "../escape", "value": "eA=="}]);
    let (status, reply) = post(
        &scheduler.address,
        "/api/v1/jobs",
        &serde_json::json!({"job_id": {"value": "bad"}, "spec": bad}),
    )
    .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["code"], "INVALID_ARGUMENT", "{reply}");
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .starts_with("spec.secrets[0].path:"),
        "{reply}"
    );
    let refused = client
        .create_job(CreateJobRequest {
            spec: Some(peloton_job("bad", "sleep 1")),
            secrets: vec![peloton::Secret {
                path: "x".into(),
                value: Some(peloton::secret::Value {
                    data: json_secret.clone().into_bytes(),
                }),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    assert!(
        refused.message().contains("secrets[0].value.data"),
        "{refused:?}"
    );
    needles.absent("a refusal", refused.message().as_bytes());

    // GetJob answers each secret's id and path, never its value.
    let answer = client
        .get_job(GetJobRequest {
            job_id: Some(peloton::JobId {
                value: "grpcsecret".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.secrets.len(), 1);
    assert_eq!(answer.secrets[0].path, "tls.key");
    assert_eq!(answer.secrets[0].secret_id.as_ref().unwrap().value, "tls");
    assert!(answer.secrets[0].value.is_none());
    let (_, job) = get(&scheduler.address, "/api/v1/jobs/secret").await;
    assert_eq!(
        job["job_info"]["spec"]["secrets"],
        serde_json::json!([{"id": "db", "path": "conf/db.pass"}]),
        "{job}"
    );

    let mut seen = answers(&scheduler.address, &sim, &["secret", "grpcsecret"]).await;

    // A restart: the restarted scheduler opens the sealed secrets, and a
    // run it launches (the pod restarted) gets the file as the first did.
    scheduler.stop();
    scheduler = start();
    let (status, reply) = post(
        &scheduler.address,
        "/api/v1/pods/secret-0/restart",
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        seen_times(&json_sha, 2).await,
        "the run relaunched after the restart did not find its secret right: {}",
        get(&scheduler.address, "/api/v1/pods/secret-0").await.1
    );

    // A patch giving the secret a new value: a new version, whose run
    // gets the new bytes.
    let (status, reply) = post(
        &scheduler.address,
        "/api/v1/jobs/secret/patch",
        &serde_json::json!({"spec": {"secrets": [{
            "id": "db",
            "path": "conf/db.pass",
            "value": base64::engine::general_purpose::STANDARD.encode(&json_secret_2),
        }]}}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert!(
        seen_times(&json_sha_2, 1).await,
        "the patched job's run did not get the new value: {}",
        get(&scheduler.address, "/api/v1/pods/secret-0").await.1
    );
    // A Peloton ReplaceJob naming no secrets (its pod's grace changes):
    // the job keeps its secret, and the replaced run gets it.
    let mut replaced = peloton_job(
        "grpcsecret",
        &checking_command("tls.key", std::slice::from_ref(&grpc_sha)),
    );
    replaced
        .default_spec
        .as_mut()
        .unwrap()
        .kill_grace_period_seconds = 2;
    let mut client = JobServiceClient::connect(format!("http://{}", scheduler.address))
        .await
        .unwrap();
    client
        .replace_job(ReplaceJobRequest {
            job_id: Some(peloton::JobId {
                value: "grpcsecret".into(),
            }),
            spec: Some(replaced),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        seen_times(&grpc_sha, 2).await,
        "the replaced job's run did not keep its secret: {}",
        get(&scheduler.address, "/api/v1/pods/grpcsecret-0").await.1
    );
    seen.extend(answers(&scheduler.address, &sim, &["secret", "grpcsecret"]).await);
    for (what, bytes) in &seen {
        needles.absent(what, bytes);
    }

    // The store's files, while it runs (WAL not yet checkpointed) and
    // after it stopped.
    let mut stored = Vec::new();
    files(data.path(), &[], &mut stored);
    assert!(
        stored.iter().any(|p| p.ends_with("drover.sqlite-wal")),
        "{stored:?}"
    );
    for path in &stored {
        needles.absent(&path.display().to_string(), &std::fs::read(path).unwrap());
    }
    scheduler.stop();
    let mut stored = Vec::new();
    files(data.path(), &[], &mut stored);
    for path in &stored {
        needles.absent(&path.display().to_string(), &std::fs::read(path).unwrap());
    }

    // Another key: the store's secrets cannot be opened, and the
    // scheduler says so and does not start.
    let key_file = data.path().join("secret.key");
    let key = std::fs::read(&key_file).unwrap();
    assert_eq!(key.len(), 32);
    let other_key = logs.path().join("other.key");
    std::fs::write(&other_key, [7u8; 32]).unwrap();
    let refused = Scheduler::on(data.path(), &master)
        .args(&[
            "--executor",
            executor,
            "--secret-key-file",
            other_key.to_str().unwrap(),
        ])
        .run_until_exit(LIMIT)
        .await
        .unwrap_or_else(|out| {
            panic!(
                "a scheduler with the wrong key kept running: {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("cannot be decrypted with the secret key given"),
        "{stderr}"
    );
    needles.absent("the refused scheduler's output", refused.stderr.as_slice());

    // Every log: the scheduler's (debug), agent-sim's (debug) and every
    // file in the agent's work dir (the executors' logs, the tasks'
    // stdout and stderr), but the secret files themselves.
    drop(sim);
    let mut logged = Vec::new();
    files(logs.path(), &["other.key"], &mut logged);
    files(work.path(), &["db.pass", "tls.key"], &mut logged);
    assert!(
        logged.len() > 3,
        "too few log files to mean anything: {logged:?}"
    );
    assert!(std::fs::metadata(&scheduler_log).unwrap().len() > 0);
    for path in &logged {
        needles.absent(&path.display().to_string(), &std::fs::read(path).unwrap());
    }
    println!(
        "secrets: delivered 5 times (2 jobs, a relaunch after a restart, a patch, a replace); {} answers, {} store files, {} log files clean",
        seen.len(),
        stored.len(),
        logged.len()
    );
}
