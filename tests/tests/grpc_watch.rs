//! Live state over gRPC, through the generated tonic clients against the
//! real scheduler on agent-sim: Peloton's `WatchService` (a snapshot, then
//! each change once in revision order; a resume from a revision delivers
//! exactly what followed it; OUT_OF_RANGE before the window,
//! INVALID_ARGUMENT ahead of the head; `Cancel`; a watcher that stops
//! reading cut off with RESOURCE_EXHAUSTED naming its resume revision) and
//! Titus'
//! `ObserveJobs` / `ObserveJob` / `ObserveJobsWithKeepAlive` (jobs before
//! their tasks, one `snapshotEnd`, live task updates, keep-alives answered
//! with their `requestId`, `ObserveJob` ending with its deleted job); and
//! one Peloton watch from Python's grpcio client built from the protos.
#![allow(clippy::unwrap_used)]

use drover_seed_api::peloton::api::v1alpha::peloton::{JobId, PodName};
use drover_seed_api::peloton::api::v1alpha::pod::PodState;
use drover_seed_api::peloton::api::v1alpha::watch::svc::watch_service_client::WatchServiceClient;
use drover_seed_api::peloton::api::v1alpha::watch::svc::{
    CancelRequest, WatchRequest, WatchResponse,
};
use drover_seed_api::peloton::api::v1alpha::watch::{PodFilter, StatelessJobFilter};
use drover_seed_api::titus::job_change_notification::Notification;
use drover_seed_api::titus::job_management_service_client::JobManagementServiceClient;
use drover_seed_api::titus::observe_jobs_with_keep_alive_request::Kind;
use drover_seed_api::titus::{
    self, job_descriptor, task_status, Capacity, Container, ContainerResources,
    JobChangeNotification, JobDescriptor, KeepAliveRequest, ObserveJobsQuery,
    ObserveJobsWithKeepAliveRequest, Owner, ServiceJobSpec, TaskKillRequest,
};
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries::repo_root;
use drover_tests::harness::http::{call, post};
use drover_tests::harness::job_api::{create_job, job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::process::Command;
use std::time::Duration;
use tonic::codegen::tokio_stream;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

const LIMIT: Duration = Duration::from_secs(40);

/// The next message of `stream`, or its end status; a stream silent for
/// [`LIMIT`] fails the test.
async fn next<T>(stream: &mut Streaming<T>) -> Result<Option<T>, tonic::Status> {
    tokio::time::timeout(LIMIT, stream.message())
        .await
        .expect("the stream stayed silent")
}

// ---------------------------------------------------------------------
// Peloton

fn job_id(v: &str) -> Option<JobId> {
    Some(JobId { value: v.into() })
}

/// A watch of job `job`'s summary and pods, from `start` (0: a snapshot).
fn watch_of(job: &str, start: u64) -> WatchRequest {
    WatchRequest {
        start_revision: start,
        stateless_job_filter: Some(StatelessJobFilter {
            job_ids: vec![JobId { value: job.into() }],
            labels: vec![],
        }),
        pod_filter: Some(PodFilter {
            job_id: job_id(job),
            ..PodFilter::default()
        }),
    }
}

async fn peloton(address: &str) -> WatchServiceClient<Channel> {
    WatchServiceClient::connect(format!("http://{address}"))
        .await
        .unwrap()
}

fn pod_states(r: &WatchResponse) -> Vec<(String, PodState)> {
    r.pods
        .iter()
        .map(|p| {
            (
                p.pod_name.clone().unwrap().value,
                p.status.as_ref().unwrap().state(),
            )
        })
        .collect()
}

/// The stream's responses until `done` holds for the pods' latest states.
async fn until(
    stream: &mut Streaming<WatchResponse>,
    done: impl Fn(&BTreeMap<String, PodState>) -> bool,
) -> Vec<WatchResponse> {
    let mut latest = BTreeMap::new();
    let mut out = Vec::new();
    while !done(&latest) {
        let r = next(stream).await.unwrap().expect("the watch ended");
        latest.extend(pod_states(&r));
        out.push(r);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peloton_watch_is_a_snapshot_then_each_change_once_and_resumes_from_a_revision() {
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    create_job(&s.address, "web", job_spec("SERVICE", 3, "sleep 600")).await;
    create_job(&s.address, "other", job_spec("SERVICE", 1, "sleep 600")).await;
    wait_for_job_state(&s.address, "web", "JOB_STATE_RUNNING", LIMIT).await;
    let mut client = peloton(&s.address).await;

    // The first response names the watch and where it starts; then the
    // snapshot at that revision: the job's summary and its three pods,
    // nothing of the other job.
    let mut stream = client.watch(watch_of("web", 0)).await.unwrap().into_inner();
    let first = next(&mut stream).await.unwrap().unwrap();
    assert!(!first.watch_id.is_empty(), "{first:?}");
    assert!(
        first.pods.is_empty() && first.stateless_jobs.is_empty(),
        "{first:?}"
    );
    let start = first.revision;
    assert!(start > 0, "{first:?}");
    let snapshot = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(
        snapshot.revision, start,
        "the snapshot is at the start revision"
    );
    assert_eq!(snapshot.watch_id, first.watch_id);
    let pods: BTreeMap<_, _> = pod_states(&snapshot).into_iter().collect();
    assert_eq!(
        pods,
        BTreeMap::from([
            ("web-0".to_owned(), PodState::Running),
            ("web-1".to_owned(), PodState::Running),
            ("web-2".to_owned(), PodState::Running),
        ])
    );
    let jobs: Vec<_> = snapshot
        .stateless_jobs
        .iter()
        .map(|j| j.job_id.clone().unwrap().value)
        .collect();
    assert_eq!(jobs, ["web"]);

    // Live: the job stopped, each pod goes KILLED; every response carries
    // something, at a revision above the last, no pod twice in one.
    let (code, reply) = post(&s.address, "/api/v1/jobs/web/stop", &json!({})).await;
    assert_eq!(code, 200, "{reply}");
    let changes = until(&mut stream, |latest| {
        latest.len() == 3 && latest.values().all(|s| *s == PodState::Killed)
    })
    .await;
    assert!(changes.len() >= 2, "{changes:?}");
    let mut last = start;
    for r in &changes {
        assert!(
            r.revision > last,
            "revisions strictly increase: {changes:?}"
        );
        last = r.revision;
        assert!(!r.pods.is_empty() || !r.stateless_jobs.is_empty(), "{r:?}");
        let names: BTreeSet<_> = r
            .pods
            .iter()
            .map(|p| &p.pod_name.as_ref().unwrap().value)
            .collect();
        assert_eq!(
            names.len(),
            r.pods.len(),
            "a (revision, pod) pair repeats: {r:?}"
        );
        assert!(names.iter().all(|n| n.starts_with("web-")), "{r:?}");
    }

    // A resume from the middle: no snapshot, its first response at the
    // resume revision, then exactly the changes after it.
    let from = changes[changes.len() / 2 - 1].revision;
    let expected: Vec<WatchResponse> = changes
        .iter()
        .filter(|r| r.revision > from)
        .map(|r| WatchResponse {
            watch_id: String::new(),
            ..r.clone()
        })
        .collect();
    let mut resumed = client
        .watch(watch_of("web", from))
        .await
        .unwrap()
        .into_inner();
    let head = next(&mut resumed).await.unwrap().unwrap();
    assert_eq!(head.revision, from, "{head:?}");
    assert!(
        head.pods.is_empty() && head.stateless_jobs.is_empty(),
        "{head:?}"
    );
    let mut got = Vec::new();
    while got.last().is_none_or(|r: &WatchResponse| r.revision < last) {
        let r = next(&mut resumed).await.unwrap().unwrap();
        assert_eq!(r.watch_id, head.watch_id);
        got.push(WatchResponse {
            watch_id: String::new(),
            ..r
        });
    }
    assert_eq!(
        got, expected,
        "the resume delivers exactly what followed {from}"
    );

    // Cancel ends the resumed stream with CANCELLED; the id is gone then.
    client
        .cancel(CancelRequest {
            watch_id: head.watch_id.clone(),
        })
        .await
        .unwrap();
    let end = next(&mut resumed).await.unwrap_err();
    assert_eq!(end.code(), Code::Cancelled, "{end:?}");
    for id in [head.watch_id.as_str(), "task_nope", ""] {
        let e = client
            .cancel(CancelRequest {
                watch_id: id.into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{id}: {e:?}");
    }

    // Ahead of the head: INVALID_ARGUMENT; no filter at all: the same.
    let e = client
        .watch(watch_of("web", last + 1_000_000))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("ahead"), "{e:?}");
    let e = client.watch(WatchRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");

    // A pod filter by name selects those pods only, and names the one that
    // is not there.
    let mut named = client
        .watch(WatchRequest {
            pod_filter: Some(PodFilter {
                pod_names: vec![
                    PodName {
                        value: "web-1".into(),
                    },
                    PodName {
                        value: "web-9".into(),
                    },
                ],
                ..PodFilter::default()
            }),
            ..WatchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    next(&mut named).await.unwrap().unwrap();
    let snapshot = next(&mut named).await.unwrap().unwrap();
    assert_eq!(
        pod_states(&snapshot),
        [("web-1".to_owned(), PodState::Killed)]
    );
    assert!(snapshot.stateless_jobs.is_empty(), "{snapshot:?}");
    assert_eq!(snapshot.pods_not_found[0].value, "web-9");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peloton_watch_from_before_the_window_is_out_of_range() {
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        dir.path(),
        &format!("http://{}", sim.address),
        &["--watch-window", "3"],
    );
    create_job(&s.address, "web", job_spec("SERVICE", 3, "sleep 600")).await;
    wait_for_job_state(&s.address, "web", "JOB_STATE_RUNNING", LIMIT).await;
    let mut client = peloton(&s.address).await;
    let e = client.watch(watch_of("web", 1)).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e:?}");
    assert!(e.message().contains("fresh snapshot"), "{e:?}");
    // A fresh snapshot is always served.
    let mut stream = client.watch(watch_of("web", 0)).await.unwrap().into_inner();
    let first = next(&mut stream).await.unwrap().unwrap();
    let snapshot = next(&mut stream).await.unwrap().unwrap();
    assert_eq!(snapshot.revision, first.revision);
    assert_eq!(snapshot.pods.len(), 3, "{snapshot:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peloton_watcher_that_stops_reading_is_cut_off_with_its_resume_revision() {
    let sim = AgentSim::for_scheduler(25).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        dir.path(),
        &format!("http://{}", sim.address),
        &["--watch-max-lag", "50"],
    );
    // A client whose HTTP/2 windows are tiny: while it does not read, the
    // scheduler can send only what HTTP/2 buffers (hyper: 400 KiB a
    // stream), and then the watcher falls behind.
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", s.address))
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    let mut client = WatchServiceClient::new(channel);
    let jobs: Vec<String> = (0..8).map(|i| format!("busy{i}")).collect();
    create_job(&s.address, &jobs[0], job_spec("SERVICE", 100, "sleep 600")).await;
    let mut stalled = client
        .watch(WatchRequest {
            pod_filter: Some(PodFilter::default()),
            ..WatchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    for job in &jobs[1..] {
        create_job(&s.address, job, job_spec("SERVICE", 100, "sleep 600")).await;
    }
    for job in &jobs {
        wait_for_job_state(&s.address, job, "JOB_STATE_RUNNING", LIMIT).await;
    }
    // And stopped again: hundreds more pod changes while the watcher is
    // stalled, well past what the buffers between it and the scheduler
    // hold, however the launches were batched into commits.
    for job in &jobs[1..] {
        let (status, body) =
            post(&s.address, &format!("/api/v1/jobs/{job}/stop"), &json!({})).await;
        assert_eq!(status, 200, "{body}");
    }
    for job in &jobs[1..] {
        wait_for_job_state(&s.address, job, "JOB_STATE_KILLED", LIMIT).await;
    }
    // Still not reading for longer than a client may take nothing (2 s)
    // before it is judged.
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Reading again: what was sent, then the cut-off naming the revision
    // everything up to which was delivered.
    let mut last = 0;
    let status = loop {
        match next(&mut stalled).await {
            Ok(Some(r)) => {
                assert!(r.revision >= last, "{r:?}");
                last = r.revision;
            }
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let resume: u64 = status
        .message()
        .split("revision ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {status:?}"));
    assert!(resume >= last, "delivered {last}, resume {resume}");
    // The resume goes on from there, at that revision.
    let mut resumed = client
        .watch(WatchRequest {
            start_revision: resume,
            pod_filter: Some(PodFilter::default()),
            ..WatchRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let first = next(&mut resumed).await.unwrap().unwrap();
    assert_eq!(first.revision, resume);
    let more = next(&mut resumed).await.unwrap().unwrap();
    assert!(more.revision > resume && !more.pods.is_empty(), "{more:?}");
}

// ---------------------------------------------------------------------
// Titus

type Titus = JobManagementServiceClient<Channel>;

fn service(app: &str, desired: u32) -> JobDescriptor {
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
                network_mbps: 128,
                ..ContainerResources::default()
            }),
            image: Some(titus::Image {
                name: "titus-examples".into(),
                tag: "latest".into(),
                digest: String::new(),
            }),
            // A killed task ends at once (Titus' kill grace period).
            attributes: HashMap::from([(
                "titusParameter.agent.killWaitSeconds".into(),
                "1".into(),
            )]),
            entry_point: vec!["sleep".into()],
            command: vec!["1000".into()],
            ..Container::default()
        }),
        job_spec: Some(job_descriptor::JobSpec::Service(ServiceJobSpec {
            capacity: Some(Capacity {
                min: 0,
                desired,
                max: 5,
            }),
            enabled: true,
            ..ServiceJobSpec::default()
        })),
        ..JobDescriptor::default()
    }
}

/// What a notification is: `job <id>`, `task <id> <job> <state>`, `end`,
/// `keep-alive <requestId>`.
fn what(n: &JobChangeNotification) -> String {
    match n.notification.as_ref().unwrap() {
        Notification::JobUpdate(u) => format!("job {}", u.job.as_ref().unwrap().id),
        Notification::TaskUpdate(u) => {
            let t = u.task.as_ref().unwrap();
            let state = task_status::TaskState::try_from(t.status.as_ref().unwrap().state)
                .unwrap()
                .as_str_name();
            format!("task {} {} {state}", t.id, t.job_id)
        }
        Notification::SnapshotEnd(_) => "end".into(),
        Notification::KeepAliveResponse(k) => {
            format!("keep-alive {}", k.request.as_ref().unwrap().request_id)
        }
    }
}

/// The snapshot's notifications, `end` last.
async fn snapshot(stream: &mut Streaming<JobChangeNotification>) -> Vec<String> {
    let mut out = Vec::new();
    loop {
        let n = next(stream).await.unwrap().expect("the stream ended");
        out.push(what(&n));
        if out.last().unwrap() == "end" {
            return out;
        }
    }
}

/// Checks Titus' snapshot order: each task after its job's update; one
/// `end`, last. The jobs shown, in order.
fn jobs_before_tasks(notes: &[String]) -> Vec<String> {
    let mut jobs = Vec::new();
    for (i, n) in notes.iter().enumerate() {
        let words: Vec<_> = n.split(' ').collect();
        match words[0] {
            "job" => jobs.push(words[1].to_owned()),
            "task" => assert!(
                jobs.iter().any(|j| j == words[2]),
                "a task before its job: {notes:?}"
            ),
            "end" => assert_eq!(i, notes.len() - 1, "{notes:?}"),
            _ => panic!("not a snapshot notification: {notes:?}"),
        }
    }
    jobs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn titus_observe_jobs_is_jobs_before_their_tasks_then_live_updates_and_keep_alives() {
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut client: Titus = JobManagementServiceClient::connect(format!("http://{}", s.address))
        .await
        .unwrap();
    let watched = client
        .create_job(service("watched", 2))
        .await
        .unwrap()
        .into_inner()
        .id;
    let other = client
        .create_job(service("other", 1))
        .await
        .unwrap()
        .into_inner()
        .id;

    // ObserveJobs by application: the job, then its tasks, one end.
    let query = ObserveJobsQuery {
        filtering_criteria: HashMap::from([("applicationName".into(), "watched".into())]),
        ..ObserveJobsQuery::default()
    };
    let mut stream = client
        .observe_jobs(query.clone())
        .await
        .unwrap()
        .into_inner();
    let notes = snapshot(&mut stream).await;
    assert_eq!(jobs_before_tasks(&notes), [watched.as_str()], "{notes:?}");
    assert_eq!(notes.len(), 4, "one job, two tasks, the end: {notes:?}");

    // Live: the tasks start (taskUpdates, stamped), never the other job's
    // (those that started before the snapshot are Started in it).
    let started_in = |w: &str| {
        w.strip_suffix(" Started")
            .map(|task| task.split(' ').nth(1).unwrap().to_owned())
    };
    let mut started: BTreeSet<String> = notes.iter().filter_map(|w| started_in(w)).collect();
    while started.len() < 2 {
        let n = next(&mut stream).await.unwrap().unwrap();
        assert!(n.timestamp > 0, "{n:?}");
        let w = what(&n);
        assert!(!w.contains(&other) && w != "end", "{w}");
        started.extend(started_in(&w));
    }
    // A killed task is told as it goes.
    let victim = started.first().unwrap().clone();
    client
        .kill_task(TaskKillRequest {
            task_id: victim.clone(),
            ..TaskKillRequest::default()
        })
        .await
        .unwrap();
    loop {
        let w = what(&next(&mut stream).await.unwrap().unwrap());
        if w.starts_with(&format!("task {victim} ")) && !w.ends_with(" Started") {
            break;
        }
    }

    // ObserveJob: that job only; an unknown one is NOT_FOUND.
    let mut one = client
        .observe_job(titus::JobId { id: other.clone() })
        .await
        .unwrap()
        .into_inner();
    let notes = snapshot(&mut one).await;
    assert_eq!(jobs_before_tasks(&notes), [other.as_str()], "{notes:?}");
    let e = client
        .observe_job(titus::JobId { id: "nope".into() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    // With keep-alives: each request answered with its requestId, after
    // the snapshot.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(ObserveJobsWithKeepAliveRequest {
        kind: Some(Kind::Query(query)),
    })
    .await
    .unwrap();
    let keep_alive = |id: u64| ObserveJobsWithKeepAliveRequest {
        kind: Some(Kind::KeepAliveRequest(KeepAliveRequest {
            request_id: id,
            timestamp: 1_700_000_000_000,
        })),
    };
    tx.send(keep_alive(7)).await.unwrap();
    let requests = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut kept = client
        .observe_jobs_with_keep_alive(requests)
        .await
        .unwrap()
        .into_inner();
    let notes = snapshot(&mut kept).await;
    assert_eq!(jobs_before_tasks(&notes), [watched.as_str()], "{notes:?}");
    keep_alive_answered(&mut kept, 7).await;
    tx.send(keep_alive(8)).await.unwrap();
    keep_alive_answered(&mut kept, 8).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn titus_observe_job_ends_after_its_deleted_jobs_archived_update() {
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut client: Titus = JobManagementServiceClient::connect(format!("http://{}", s.address))
        .await
        .unwrap();
    let other = client
        .create_job(service("other", 1))
        .await
        .unwrap()
        .into_inner()
        .id;
    let mut one = client
        .observe_job(titus::JobId { id: other.clone() })
        .await
        .unwrap()
        .into_inner();
    let notes = snapshot(&mut one).await;
    assert_eq!(jobs_before_tasks(&notes), [other.as_str()], "{notes:?}");
    // The job deleted (its task killed first), the stream ends (OK) after the job's archived
    // update, as Titus ends it.
    let (code, reply) = call(
        &s.address,
        "DELETE",
        &format!("/api/v1/jobs/{other}?force=true"),
        None,
    )
    .await;
    assert_eq!(code, 200, "{reply}");
    let mut last = None;
    while let Some(n) = next(&mut one).await.unwrap() {
        last = Some(n);
    }
    match last.and_then(|n| n.notification) {
        Some(Notification::JobUpdate(u)) => {
            assert!(u.archived, "{u:?}");
            assert_eq!(u.job.unwrap().id, other);
        }
        n => panic!("the stream ended on {n:?}"),
    }
}

/// Reads `kept` until a keep-alive answer, which must carry request `id`.
async fn keep_alive_answered(kept: &mut Streaming<JobChangeNotification>, id: u64) {
    loop {
        let n = next(kept).await.unwrap().unwrap();
        if let Some(Notification::KeepAliveResponse(k)) = &n.notification {
            assert_eq!(k.request.as_ref().unwrap().request_id, id, "{n:?}");
            assert!(k.timestamp > 0, "{n:?}");
            return;
        }
    }
}

// ---------------------------------------------------------------------
// Python

/// The venv with grpcio (scripts/grpc-env.sh): its python.
fn grpc_python() -> String {
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pythons_grpc_client_watches_a_job_and_cancels_the_watch() {
    let python = tokio::task::spawn_blocking(grpc_python).await.unwrap();
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    create_job(&s.address, "web", job_spec("SERVICE", 2, "sleep 600")).await;
    wait_for_job_state(&s.address, "web", "JOB_STATE_RUNNING", LIMIT).await;
    let address = s.address.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(repo_root().join("examples/grpc/peloton_watch.py"))
            .args([address.as_str(), "web"])
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
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "first, snapshot, end: {stdout}");
    let first: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let snapshot: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
    assert!(
        first["watchId"].as_str().is_some_and(|id| !id.is_empty()),
        "{first}"
    );
    assert!(first.get("pods").is_none(), "{first}");
    assert_eq!(snapshot["revision"], first["revision"], "{stdout}");
    let pods: BTreeSet<_> = snapshot["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["podName"]["value"].as_str().unwrap().to_owned(),
                p["status"]["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        pods,
        BTreeSet::from([
            ("web-0".to_owned(), "POD_STATE_RUNNING".to_owned()),
            ("web-1".to_owned(), "POD_STATE_RUNNING".to_owned()),
        ])
    );
    assert_eq!(lines[2], "CANCELLED", "{stdout}");
}
