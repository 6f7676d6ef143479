//! Container images end to end (issue 25): jobs that name an image, from
//! Peloton's `ContainerSpec.image`, Titus' `Container.image` (with Titus'
//! `entryPoint`/`command` rules against the image's Entrypoint and Cmd),
//! the JSON API and a Kubeflow step (in its image by default), run through
//! the scheduler on agent-sim's real agent (drover-executor with
//! `--image-dir` holding the test images of `scripts/test-images.sh`).
//! Each task proves it ran in the image (the image's file and Env, and a
//! host file it cannot see) and the views show the digest its executor
//! resolved: Peloton `ContainerStatus.image`, Titus
//! `containerState[].containerImage`, `/api/v1` pod JSON and `drover pod
//! get`. A missing image fails its pod with the reason. Simulated agents
//! accept an image and invent no digest. Root only, but for that last one.
#![allow(clippy::unwrap_used)]

use drover_seed_api::peloton::api::v1alpha::job::stateless::{
    self, svc::job_service_client::JobServiceClient, svc::CreateJobRequest,
};
use drover_seed_api::peloton::api::v1alpha::pod::svc::{
    pod_service_client::PodServiceClient, GetPodRequest,
};
use drover_seed_api::peloton::api::v1alpha::{peloton, pod};
use drover_seed_api::titus::job_management_service_client::JobManagementServiceClient;
use drover_seed_api::titus::{
    self, job_descriptor, task_status, BatchJobSpec, Container, ContainerResources, JobDescriptor,
    Owner, Page, TaskQuery,
};
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::cgroup::require_root;
use drover_tests::harness::http::get;
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::kfp::{create_request, read, runs_client};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::test_images;
use drover_tests::harness::wait::wait_for;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(90);

/// The manifest digest of the test image laid out in `images/<layout>`,
/// from its `index.json`: what the executor must report.
fn layout_digest(images: &Path, layout: &str) -> String {
    let index: Value =
        serde_json::from_slice(&std::fs::read(images.join(layout).join("index.json")).unwrap())
            .unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().to_owned();
    assert!(digest.starts_with("sha256:"), "{index}");
    digest
}

/// Every file named `name` under `dir`.
fn named(dir: &Path, name: &str, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            named(&path, name, out);
        } else if path.file_name().is_some_and(|n| n == name) {
            out.push(path);
        }
    }
}

/// Waits for a sandbox file `name` under `work` (a task's marker) and
/// returns its path.
async fn marker(work: &Path, name: &str) -> PathBuf {
    wait_for(LIMIT, || async {
        let mut found = Vec::new();
        named(work, name, &mut found);
        found.pop()
    })
    .await
    .unwrap_or_else(|| panic!("no task left {name} under {}", work.display()))
}

/// Waits for some task's `stdout` under `work` to hold `text`.
async fn printed(work: &Path, text: &str) {
    let seen = wait_for(LIMIT, || async {
        let mut outs = Vec::new();
        named(work, "stdout", &mut outs);
        outs.iter()
            .any(|p| std::fs::read_to_string(p).is_ok_and(|s| s.contains(text)))
            .then_some(())
    })
    .await;
    assert!(seen.is_some(), "no task printed {text:?}");
}

/// A shell command that succeeds only inside the `drover-test/busybox`
/// image: its file and Env are there and `host_file` (on the host) is not.
/// It leaves `marker` in its sandbox, then runs `then`.
fn in_image_check(host_file: &Path, marker: &str, then: &str) -> String {
    format!(
        "test -f /etc/drover-image || {{ echo 'not in the image'; exit 3; }}; \
         [ \"$DROVER_IMAGE_ENV\" = from-image ] || {{ echo 'no image Env'; exit 3; }}; \
         [ ! -e {host} ] || {{ echo 'the host file is visible'; exit 3; }}; \
         touch \"$MESOS_SANDBOX/{marker}\"; {then}",
        host = host_file.display()
    )
}

/// Agent-sim with one real agent whose executors run images from the
/// test images, and a scheduler on it (default flags, drover-executor).
struct ImageCluster {
    images: PathBuf,
    work: tempfile::TempDir,
    _data: tempfile::TempDir,
    _sim: AgentSim,
    scheduler: Scheduler,
}

impl ImageCluster {
    fn start() -> ImageCluster {
        require_root();
        let images = test_images();
        let work = tempfile::tempdir().unwrap();
        let data = tempfile::tempdir().unwrap();
        let sim = AgentSim::for_scheduler(1)
            .real_agents(1, work.path())
            .args(&["--image-dir", images.to_str().unwrap()])
            .start();
        let executor = binaries::executor();
        let scheduler = Scheduler::on(data.path(), &format!("http://{}", sim.address))
            .args(&["--executor", executor.to_str().unwrap()])
            .start();
        ImageCluster {
            images,
            work,
            _data: data,
            _sim: sim,
            scheduler,
        }
    }

    fn address(&self) -> &str {
        &self.scheduler.address
    }
}

/// The `/api/v1` status of pod `pod` once its run's executor reported the
/// image's digest.
async fn pod_with_digest(address: &str, pod: &str) -> Value {
    let last = std::cell::RefCell::new(Value::Null);
    let found = wait_for(LIMIT, || async {
        let (_, answer) = get(address, &format!("/api/v1/pods/{pod}")).await;
        let status = answer["current"]["status"].clone();
        *last.borrow_mut() = status.clone();
        status["image_digest"].is_string().then_some(status)
    })
    .await;
    found.unwrap_or_else(|| panic!("pod {pod} never showed a digest: {}", last.borrow()))
}

fn peloton_job(name: &str, image: &str, command: &str) -> stateless::JobSpec {
    stateless::JobSpec {
        name: name.into(),
        instance_count: 1,
        default_spec: Some(pod::PodSpec {
            containers: vec![pod::ContainerSpec {
                name: "main".into(),
                image: image.into(),
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

fn titus_batch(
    app: &str,
    image: titus::Image,
    entry_point: &[&str],
    command: &[&str],
) -> JobDescriptor {
    let strings = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect();
    JobDescriptor {
        owner: Some(Owner {
            team_email: "team@example.com".into(),
        }),
        application_name: app.into(),
        capacity_group: "DEFAULT".into(),
        container: Some(Container {
            resources: Some(ContainerResources {
                cpu: 0.1,
                memory_mb: 32,
                disk_mb: 64,
                ..ContainerResources::default()
            }),
            image: Some(image),
            entry_point: strings(entry_point),
            command: strings(command),
            ..Container::default()
        }),
        job_spec: Some(job_descriptor::JobSpec::Batch(BatchJobSpec {
            size: 1,
            runtime_limit_sec: 120,
            ..BatchJobSpec::default()
        })),
        ..JobDescriptor::default()
    }
}

/// The Titus tasks of `job` once one has finished.
async fn finished_task(
    client: &mut JobManagementServiceClient<tonic::transport::Channel>,
    job: &str,
) -> titus::Task {
    let found = wait_for(LIMIT, || {
        let mut client = client.clone();
        async move {
            let tasks = client
                .find_tasks(TaskQuery {
                    page: Some(Page {
                        page_number: 0,
                        page_size: 10,
                        cursor: String::new(),
                    }),
                    filtering_criteria: [("jobIds".to_owned(), job.to_owned())].into(),
                    fields: Vec::new(),
                })
                .await
                .unwrap()
                .into_inner()
                .items;
            tasks.into_iter().find(|t| {
                t.status.as_ref().is_some_and(|s| {
                    s.state == task_status::TaskState::Finished as i32
                        && s.container_state.first().is_some_and(|c| {
                            c.container_image
                                .as_ref()
                                .is_some_and(|i| !i.digest.is_empty())
                        })
                })
            })
        }
    })
    .await;
    found.unwrap_or_else(|| panic!("Titus job {job} never finished with a digest"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peloton_and_titus_jobs_with_images_run_on_a_real_agent_and_show_the_digest() {
    let cluster = ImageCluster::start();
    let busybox = layout_digest(&cluster.images, "busybox");
    let entry = layout_digest(&cluster.images, "busybox-entry");
    // A file on the host that no image task may see.
    let host_dir = tempfile::tempdir().unwrap();
    let host_file = host_dir.path().join("host-only");
    std::fs::write(&host_file, "host").unwrap();

    // Peloton: `ContainerSpec.image`, a shell command run in the image.
    let endpoint = format!("http://{}", cluster.address());
    let mut jobs = JobServiceClient::connect(endpoint.clone()).await.unwrap();
    let created = jobs
        .create_job(CreateJobRequest {
            spec: Some(peloton_job(
                "peloton-image",
                "drover-test/busybox:1",
                &in_image_check(&host_file, "peloton-checked", "exec sleep 600"),
            )),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let job = created.job_id.unwrap().value;
    marker(cluster.work.path(), "peloton-checked").await;
    let status = pod_with_digest(cluster.address(), &format!("{job}-0")).await;
    assert_eq!(status["image"], "drover-test/busybox:1", "{status}");
    assert_eq!(status["image_digest"], json!(busybox), "{status}");
    assert_eq!(status["state"], "POD_STATE_RUNNING", "{status}");
    let mut pods = PodServiceClient::connect(endpoint.clone()).await.unwrap();
    let pod = pods
        .get_pod(GetPodRequest {
            pod_name: Some(peloton::PodName {
                value: format!("{job}-0"),
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let container = &pod.current.unwrap().status.unwrap().containers_status[0];
    assert_eq!(container.image, format!("drover-test/busybox:1@{busybox}"));

    // The CLI's pod views show the image and the digest.
    let out = std::process::Command::new(binaries::drover())
        .args([
            "--addr",
            cluster.address(),
            "pod",
            "get",
            &format!("{job}-0"),
        ])
        .env_remove("DROVER_ADDR")
        .env_remove("DROVER_TOKEN")
        .env("DROVER_CONFIG", "/nonexistent/drover-config.yaml")
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{shown}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("drover-test/busybox:1"), "{shown}");
    assert!(shown.contains(&busybox), "{shown}");

    // Titus: no entryPoint or command runs the image's Entrypoint and Cmd.
    let mut titus = JobManagementServiceClient::connect(endpoint.clone())
        .await
        .unwrap();
    let image = titus::Image {
        name: "drover-test/busybox-entry".into(),
        tag: "1".into(),
        digest: String::new(),
    };
    let defaults = titus
        .create_job(titus_batch("entry-defaults", image.clone(), &[], &[]))
        .await
        .unwrap()
        .into_inner()
        .id;
    let task = finished_task(&mut titus, &defaults).await;
    let status = task.status.unwrap();
    assert_eq!(status.reason_code, "normal", "{status:?}");
    let shown = status.container_state[0].container_image.clone().unwrap();
    assert_eq!(
        (
            shown.name.as_str(),
            shown.tag.as_str(),
            shown.digest.as_str()
        ),
        ("drover-test/busybox-entry", "1", entry.as_str())
    );
    printed(cluster.work.path(), "entry: default-arg").await;
    // `command` replaces the image's Cmd, after its Entrypoint.
    let with_command = titus
        .create_job(titus_batch(
            "entry-command",
            image.clone(),
            &[],
            &["from-titus"],
        ))
        .await
        .unwrap()
        .into_inner()
        .id;
    finished_task(&mut titus, &with_command).await;
    printed(cluster.work.path(), "entry: from-titus").await;
    // `entryPoint` replaces the image's Entrypoint (and drops its Cmd).
    let replaced = titus
        .create_job(titus_batch(
            "entry-replaced",
            titus::Image {
                digest: entry.clone(),
                ..image
            },
            &["/bin/sh", "-c", "echo replaced-$DROVER_IMAGE_ENV"],
            &[],
        ))
        .await
        .unwrap()
        .into_inner()
        .id;
    finished_task(&mut titus, &replaced).await;
    printed(cluster.work.path(), "replaced-from-image").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_and_kubeflow_jobs_run_in_their_images_and_a_missing_image_fails_with_the_reason() {
    let cluster = ImageCluster::start();
    let busybox = layout_digest(&cluster.images, "busybox");
    let host_dir = tempfile::tempdir().unwrap();
    let host_file = host_dir.path().join("host-only");
    std::fs::write(&host_file, "host").unwrap();

    // The JSON face: `image` on the container; a batch job that succeeds
    // only in the image.
    let mut spec = job_spec(
        "BATCH",
        1,
        &in_image_check(&host_file, "json-checked", "true"),
    );
    spec["default_spec"]["containers"][0]["image"] = json!("drover-test/busybox:1");
    create_job(cluster.address(), "json-image", spec).await;
    wait_for_job_state(
        cluster.address(),
        "json-image",
        "JOB_STATE_SUCCEEDED",
        LIMIT,
    )
    .await;
    let (_, answer) = get(cluster.address(), "/api/v1/pods/json-image-0").await;
    let status = &answer["current"]["status"];
    assert_eq!(status["image"], "drover-test/busybox:1", "{answer}");
    assert_eq!(status["image_digest"], json!(busybox), "{answer}");

    // A missing image: the pod fails with Mesos' reason, naming the image.
    let mut spec = job_spec("BATCH", 1, "true");
    spec["default_spec"]["containers"][0]["image"] = json!("drover-test/absent:1");
    create_job(cluster.address(), "no-image", spec).await;
    wait_for_job_state(cluster.address(), "no-image", "JOB_STATE_FAILED", LIMIT).await;
    let (_, answer) = get(cluster.address(), "/api/v1/pods/no-image-0").await;
    let status = &answer["current"]["status"];
    assert_eq!(
        status["reason"], "REASON_CONTAINER_LAUNCH_FAILED",
        "{answer}"
    );
    let message = status["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("image 'drover-test/absent:1': "),
        "{answer}"
    );
    assert!(status.get("image_digest").is_none(), "no digest: {answer}");

    // Kubeflow: a step runs in its image by default (no --kfp-images).
    let check = in_image_check(&host_file, "kfp-checked", "true");
    let manifest = json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
        "metadata": {"generateName": "in-image-"},
        "spec": {"entrypoint": "one", "templates": [
            {"name": "one", "dag": {"tasks": [{"name": "check", "template": "check"}]}},
            {"name": "check", "container": {
                "image": "drover-test/busybox:1",
                "command": ["sh", "-c", check]}}]}
    })
    .to_string();
    let mut runs = runs_client(cluster.address()).await;
    let run = runs
        .create_run_v1(create_request("in-image", &manifest, &[]))
        .await
        .unwrap()
        .into_inner()
        .run
        .unwrap()
        .id;
    let last = std::cell::RefCell::new(String::new());
    let done = wait_for(LIMIT, || {
        let mut runs = runs.clone();
        let run = run.clone();
        let last = &last;
        async move {
            let (status, nodes) = read(&mut runs, &run).await;
            *last.borrow_mut() = format!("{status} {nodes}");
            ["Succeeded", "Failed", "Error"]
                .contains(&status.as_str())
                .then_some(status)
        }
    })
    .await;
    assert_eq!(done.as_deref(), Some("Succeeded"), "{}", last.borrow());
    marker(cluster.work.path(), "kfp-checked").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_agents_accept_an_image_and_invent_no_digest() {
    let sim = AgentSim::for_scheduler(1).start();
    let data = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(data.path(), &format!("http://{}", sim.address), &[]);
    let mut spec = job_spec("BATCH", 1, "sleep 0.2");
    spec["default_spec"]["containers"][0]["image"] = json!("drover-test/busybox:1");
    create_job(&scheduler.address, "sim-image", spec).await;
    wait_for_job_state(
        &scheduler.address,
        "sim-image",
        "JOB_STATE_SUCCEEDED",
        LIMIT,
    )
    .await;
    let (_, answer) = get(&scheduler.address, "/api/v1/pods/sim-image-0").await;
    let status = &answer["current"]["status"];
    assert_eq!(status["image"], "drover-test/busybox:1", "{answer}");
    assert!(status.get("image_digest").is_none(), "{answer}");
}
