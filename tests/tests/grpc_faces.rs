//! The seeds' APIs as their users' own clients call them, on the real
//! scheduler against agent-sim: a literal Peloton JobSpec in protobuf JSON
//! (lowerCamelCase keys, the seed's enum spellings) through the JSON face
//! of `JobService`, and the README's Python grpcio example, which compiles
//! the protos with grpcio-tools and calls `CreateJob` and `GetJob`.
#![allow(clippy::unwrap_used)]

use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries::repo_root;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::process::Command;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(30);
const JOBS: &str = "/peloton.api.v1alpha.job.stateless.svc.JobService";

/// A Peloton stateless JobSpec as a Peloton JSON client writes it.
fn peloton_spec(name: &str) -> Value {
    json!({
        "name": name,
        "owner": "team-a",
        "owningTeam": "a",
        "labels": [{"key": "app", "value": name}],
        "instanceCount": 2,
        "sla": {"priority": 1, "maximumUnavailableInstances": 1},
        "respoolId": {"value": "/default"},
        "defaultSpec": {
            "labels": [{"key": "app", "value": name}],
            "containers": [{
                "name": "main",
                "resource": {"cpuLimit": 0.1, "memLimitMb": 32, "diskLimitMb": 16},
                "command": {"value": "sleep 3600", "shell": true},
                "livenessCheck": {
                    "enabled": true,
                    "type": "HEALTH_CHECK_TYPE_COMMAND",
                    "commandCheck": {"command": "true"},
                    "initialIntervalSecs": 1,
                    "intervalSecs": 5,
                    "maxConsecutiveFailures": 3,
                    "timeoutSecs": 2
                }
            }],
            "constraint": {
                "type": "CONSTRAINT_TYPE_LABEL",
                "labelConstraint": {
                    "kind": "LABEL_CONSTRAINT_KIND_POD",
                    "condition": "LABEL_CONSTRAINT_CONDITION_LESS_THAN",
                    "label": {"key": "app", "value": name},
                    "requirement": 1
                }
            }
        }
    })
}

/// The Peloton `GetJob` of `id` through the JSON face.
async fn get_job(address: &str, id: &str) -> Value {
    let (status, body) = post(
        address,
        &format!("{JOBS}/GetJob"),
        &json!({"jobId": {"value": id}}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_peloton_job_spec_in_protobuf_json_runs_through_the_json_face() {
    let sim = AgentSim::for_scheduler(3).start();
    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);

    let (status, created) = post(
        &scheduler.address,
        &format!("{JOBS}/CreateJob"),
        &json!({"spec": peloton_spec("faces")}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let id = created["jobId"]["value"].as_str().unwrap().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a UUID job id: {id}");

    // Both pods run, as GetJob says in the proto's names.
    let running = wait_for(LIMIT, || {
        let address = scheduler.address.clone();
        let id = id.clone();
        async move {
            let job = get_job(&address, &id).await;
            (job["jobInfo"]["status"]["podStats"]["POD_STATE_RUNNING"] == 2).then_some(job)
        }
    })
    .await;
    let job = running.expect("both pods RUNNING within the limit");
    assert_eq!(
        job["jobInfo"]["status"]["state"], "JOB_STATE_RUNNING",
        "{job}"
    );
    let spec = &job["jobInfo"]["spec"];
    assert_eq!(spec["name"], "faces");
    assert_eq!(
        spec["respoolId"]["value"], "/default",
        "kept and shown back: {spec}"
    );
    assert_eq!(
        spec["defaultSpec"]["containers"][0]["livenessCheck"]["type"], "HEALTH_CHECK_TYPE_COMMAND",
        "{spec}"
    );

    // The same job through Drover's own JSON API: one model.
    let (status, own) = get(&scheduler.address, &format!("/api/v1/jobs/{id}")).await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["job_info"]["spec"]["instance_count"], 2);

    // A second job of the same id: ALREADY_EXISTS, in the JSON shape.
    let (status, again) = post(
        &scheduler.address,
        &format!("{JOBS}/CreateJob"),
        &json!({"jobId": {"value": id}, "spec": peloton_spec("faces")}),
    )
    .await;
    assert_eq!(
        (status, &again["code"]),
        (409, &json!("ALREADY_EXISTS")),
        "{again}"
    );

    // An unknown job: NOT_FOUND.
    let (status, missing) = post(
        &scheduler.address,
        &format!("{JOBS}/GetJob"),
        &json!({"jobId": {"value": "no-such-job"}}),
    )
    .await;
    assert_eq!(
        (status, &missing["code"]),
        (404, &json!("NOT_FOUND")),
        "{missing}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_python_grpc_example_creates_a_job() {
    let python = tokio::task::spawn_blocking(|| {
        let out = Command::new("bash")
            .arg(repo_root().join("scripts/grpc-env.sh"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "scripts/grpc-env.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap()
            .trim()
            .to_owned()
    })
    .await
    .unwrap();

    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let address = scheduler.address.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(repo_root().join("examples/grpc/peloton_create_job.py"))
            .arg(&address)
            .args(["--name", "from-python", "--instances", "2"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the example failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = stdout.lines().next().unwrap().trim().to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{stdout}");
    let status: Value = serde_json::from_str(stdout.lines().nth(1).unwrap()).unwrap();
    assert!(
        status["state"].as_str().unwrap().starts_with("JOB_STATE_"),
        "{status}"
    );

    // The job the example made, as the CLI's API shows it.
    let (code, job) = get(&scheduler.address, "/api/v1/jobs/from-python").await;
    assert_eq!(code, 200, "{job}");
    assert_eq!(job["job_info"]["job_id"]["value"], id.as_str());
    assert_eq!(job["job_info"]["spec"]["instance_count"], 2);
}
