//! Peloton v1alpha `JobService` through the generated tonic client, on the
//! real scheduler against agent-sim: a job created from a literal Peloton
//! JobSpec (the seed's field names and enum spellings), read back, found
//! by name, queried with each filter of `QuerySpec`, listed as a stream,
//! stopped, started and deleted with entity versions (a stale one is
//! ABORTED), bad requests answered with their codes; and `create_spec`
//! honoured: `start_paused` launches nothing until `ResumeJobWorkflow`,
//! and never more than `batch_size` instances are being created at once;
//! updates: a diff, a replace, a patch, pause, resume, abort and their
//! story, and an update that never gets healthy rolled back.
#![allow(clippy::unwrap_used)]

use drover_proto::v1 as mesos;
use drover_seed_api::peloton::api::v1alpha::job::stateless::{
    self,
    svc::{job_service_client::JobServiceClient, *},
    JobState, WorkflowState,
};
use drover_seed_api::peloton::api::v1alpha::{peloton, pod, query, respool};
use drover_tests::harness::agent_sim::{sim_tasks, AgentSim};
use drover_tests::harness::http::get;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use pod::constraint::Type as ConstraintType;
use pod::health_check_spec::HealthCheckType;
use pod::label_constraint::{Condition, Kind};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const LIMIT: Duration = Duration::from_secs(20);

type Client = JobServiceClient<Channel>;

fn label(key: &str, value: &str) -> peloton::Label {
    peloton::Label {
        key: key.into(),
        value: value.into(),
    }
}

/// A Peloton stateless JobSpec as a Peloton user writes it.
fn peloton_spec(
    name: &str,
    owner: &str,
    instances: u32,
    respool: Option<&str>,
) -> stateless::JobSpec {
    let container = pod::ContainerSpec {
        name: "web".into(),
        resource: Some(pod::ResourceSpec {
            cpu_limit: 0.1,
            mem_limit_mb: 32.0,
            disk_limit_mb: 10.0,
            ..Default::default()
        }),
        command: Some(mesos::CommandInfo {
            value: Some("sleep 1000".into()),
            ..Default::default()
        }),
        liveness_check: Some(pod::HealthCheckSpec {
            enabled: true,
            initial_interval_secs: 1,
            interval_secs: 1,
            max_consecutive_failures: 3,
            timeout_secs: 5,
            r#type: HealthCheckType::Command as i32,
            command_check: Some(pod::health_check_spec::CommandCheck {
                command: "true".into(),
                unshare_environments: false,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    stateless::JobSpec {
        name: name.into(),
        owner: owner.into(),
        owning_team: "infra".into(),
        description: format!("{name} of {owner}"),
        labels: vec![label("tier", name)],
        instance_count: instances,
        sla: Some(stateless::SlaSpec {
            priority: 1,
            maximum_unavailable_instances: 1,
            ..Default::default()
        }),
        default_spec: Some(pod::PodSpec {
            labels: vec![label("app", name)],
            containers: vec![container],
            constraint: Some(pod::Constraint {
                r#type: ConstraintType::ConstraintTypeLabel as i32,
                label_constraint: Some(pod::LabelConstraint {
                    kind: Kind::LabelConstraintKindPod as i32,
                    condition: Condition::LabelConstraintConditionLessThan as i32,
                    label: Some(label("app", "nothing-else")),
                    requirement: 1,
                }),
                ..Default::default()
            }),
            restart_policy: Some(pod::RestartPolicy { max_failures: 2 }),
            kill_grace_period_seconds: 1,
            ..Default::default()
        }),
        respool_id: respool.map(|r| peloton::ResourcePoolId { value: r.into() }),
        ..Default::default()
    }
}

fn id(value: &str) -> Option<peloton::JobId> {
    Some(peloton::JobId {
        value: value.into(),
    })
}

fn version(value: &str) -> Option<peloton::EntityVersion> {
    Some(peloton::EntityVersion {
        value: value.into(),
    })
}

async fn create(
    client: &mut Client,
    spec: stateless::JobSpec,
    create_spec: Option<stateless::CreateSpec>,
) -> String {
    let answer = client
        .create_job(CreateJobRequest {
            spec: Some(spec),
            create_spec,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.version.unwrap().value, "1");
    answer.job_id.unwrap().value
}

async fn get_job(client: &mut Client, job: &str) -> GetJobResponse {
    client
        .get_job(GetJobRequest {
            job_id: id(job),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

fn status(answer: &GetJobResponse) -> &stateless::JobStatus {
    answer.job_info.as_ref().unwrap().status.as_ref().unwrap()
}

async fn wait_state(client: &mut Client, job: &str, want: JobState) -> GetJobResponse {
    let found = wait_for(LIMIT, || {
        // A client is a cheap handle on one channel.
        let mut c = client.clone();
        async move {
            let answer = get_job(&mut c, job).await;
            (status(&answer).state == want as i32).then_some(answer)
        }
    })
    .await;
    found.unwrap_or_else(|| panic!("job {job} never reached {want:?}"))
}

async fn query_ids(client: &mut Client, spec: stateless::QuerySpec) -> Vec<String> {
    let mut ids: Vec<String> = client
        .query_jobs(QueryJobsRequest { spec: Some(spec) })
        .await
        .unwrap()
        .into_inner()
        .records
        .into_iter()
        .map(|r| r.job_id.unwrap().value)
        .collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn code<T: std::fmt::Debug>(answer: Result<T, tonic::Status>) -> (Code, String) {
    let status = answer.unwrap_err();
    assert!(!status.message().is_empty(), "{status:?}");
    (status.code(), status.message().to_owned())
}

fn timestamp(ms: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: ms.div_euclid(1000),
        nanos: (ms.rem_euclid(1000) * 1_000_000) as i32,
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

async fn start() -> (AgentSim, Scheduler, tempfile::TempDir, Client) {
    let sim = AgentSim::for_scheduler(2).start();
    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let client = JobServiceClient::connect(format!("http://{}", scheduler.address))
        .await
        .unwrap();
    (sim, scheduler, dir, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_literal_peloton_job_is_created_read_found_queried_listed_stopped_and_deleted() {
    let (_sim, scheduler, _dir, mut client) = start().await;
    // Jobs run in leaf pools that exist: /infra/web first.
    let mut pools = respool::resource_pool_service_client::ResourcePoolServiceClient::connect(
        format!("http://{}", scheduler.address),
    )
    .await
    .unwrap();
    for (id, parent) in [("infra", None), ("web", Some("infra"))] {
        pools
            .create_resource_pool(respool::CreateResourcePoolRequest {
                respool_id: Some(peloton::ResourcePoolId { value: id.into() }),
                spec: Some(respool::ResourcePoolSpec {
                    name: id.into(),
                    parent: parent.map(|p| peloton::ResourcePoolId { value: p.into() }),
                    ..Default::default()
                }),
            })
            .await
            .unwrap();
    }
    let before = now_ms() - 1;
    let web_spec = peloton_spec("web", "alice", 2, Some("/infra/web"));
    let web = create(&mut client, web_spec.clone(), None).await;
    assert_eq!(web.len(), 36, "a UUID: {web}");
    let other = create(&mut client, peloton_spec("other", "bob", 1, None), None).await;

    // GetJob shows the spec as it was written, at version 1.
    let answer = wait_state(&mut client, &web, JobState::Running).await;
    let info = answer.job_info.as_ref().unwrap();
    assert_eq!(info.spec.as_ref().unwrap(), &web_spec);
    assert_eq!(status(&answer).version.as_ref().unwrap().value, "1");
    assert_eq!(status(&answer).desired_state, JobState::Running as i32);
    assert_eq!(status(&answer).pod_stats.get("POD_STATE_RUNNING"), Some(&2));
    assert!(status(&answer).workflow_status.is_none());
    let summary = client
        .get_job(GetJobRequest {
            job_id: id("web"),
            version: version("1"),
            summary_only: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(summary.job_info.is_none());
    let summary = summary.summary.unwrap();
    assert_eq!(
        (
            summary.name.as_str(),
            summary.respool_id.unwrap().value.as_str()
        ),
        ("web", "/infra/web")
    );
    let (c, _) = code(
        client
            .get_job(GetJobRequest {
                job_id: id(&web),
                version: version("9"),
                summary_only: false,
            })
            .await,
    );
    assert_eq!(c, Code::NotFound);

    // By name.
    let ids = client
        .get_job_id_from_job_name(GetJobIdFromJobNameRequest {
            job_name: "web".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    assert_eq!(ids, [peloton::JobId { value: web.clone() }]);
    let (c, _) = code(
        client
            .get_job_id_from_job_name(GetJobIdFromJobNameRequest {
                job_name: "nobody".into(),
            })
            .await,
    );
    assert_eq!(c, Code::NotFound);

    // Each QuerySpec filter.
    wait_state(&mut client, &other, JobState::Running).await;
    let both = sorted(vec![web.clone(), other.clone()]);
    let q = stateless::QuerySpec::default;
    assert_eq!(query_ids(&mut client, q()).await, both);
    let only_web = vec![web.clone()];
    let by = |f: fn(&mut stateless::QuerySpec)| {
        let mut spec = q();
        f(&mut spec);
        spec
    };
    assert_eq!(
        query_ids(&mut client, by(|s| s.labels = vec![label("tier", "web")])).await,
        only_web
    );
    assert_eq!(
        query_ids(&mut client, by(|s| s.keywords = vec!["ALICE".into()])).await,
        only_web
    );
    assert_eq!(
        query_ids(&mut client, by(|s| s.owner = "alice".into())).await,
        only_web
    );
    assert_eq!(
        query_ids(&mut client, by(|s| s.name = "we".into())).await,
        only_web
    );
    assert_eq!(
        query_ids(
            &mut client,
            by(|s| {
                s.respool = Some(respool::ResourcePoolPath {
                    value: "/infra/web".into(),
                })
            })
        )
        .await,
        only_web
    );
    assert_eq!(
        query_ids(
            &mut client,
            by(|s| s.job_states = vec![JobState::Running as i32])
        )
        .await,
        both
    );
    assert!(query_ids(
        &mut client,
        by(|s| s.job_states = vec![JobState::Killed as i32])
    )
    .await
    .is_empty());
    let mut created = q();
    created.creation_time_range = Some(peloton::TimeRange {
        min: Some(timestamp(before)),
        max: Some(timestamp(now_ms())),
    });
    assert_eq!(query_ids(&mut client, created.clone()).await, both);
    created.creation_time_range = Some(peloton::TimeRange {
        min: Some(timestamp(now_ms() + 60_000)),
        max: None,
    });
    assert!(query_ids(&mut client, created).await.is_empty());
    let page = client
        .query_jobs(QueryJobsRequest {
            spec: Some(stateless::QuerySpec {
                pagination: Some(query::PaginationSpec {
                    offset: 1,
                    limit: 1,
                    ..Default::default()
                }),
                ..q()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.records.len(), 1);
    let p = page.pagination.unwrap();
    assert_eq!((p.offset, p.limit, p.total), (1, 1, 2));

    // ListJobs: a stream whose first message comes at once.
    let mut stream = client
        .list_jobs(ListJobsRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut listed = Vec::new();
    let first = tokio::time::timeout(Duration::from_secs(3), stream.message())
        .await
        .expect("the first message within 3 s")
        .unwrap();
    let mut next = first;
    while let Some(message) = next {
        listed.extend(message.jobs.into_iter().map(|j| j.job_id.unwrap().value));
        next = stream.message().await.unwrap();
    }
    assert_eq!(sorted(listed), both);

    // Stop with a stale version: ABORTED, nothing changes; then stop and
    // the completion time range finds it.
    let (c, m) = code(
        client
            .stop_job(StopJobRequest {
                job_id: id(&other),
                version: version("7"),
            })
            .await,
    );
    assert_eq!(c, Code::Aborted, "{m}");
    let stopped = client
        .stop_job(StopJobRequest {
            job_id: id(&other),
            version: version("1"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stopped.version.unwrap().value, "2");
    wait_state(&mut client, &other, JobState::Killed).await;
    let mut completed = q();
    completed.completion_time_range = Some(peloton::TimeRange {
        min: Some(timestamp(before)),
        max: None,
    });
    assert_eq!(query_ids(&mut client, completed).await, vec![other.clone()]);
    let (c, _) = code(
        client
            .start_job(StartJobRequest {
                job_id: id(&other),
                version: version("1"),
            })
            .await,
    );
    assert_eq!(c, Code::Aborted);
    let (c, _) = code(
        client
            .delete_job(DeleteJobRequest {
                job_id: id(&other),
                version: version("1"),
                force: false,
            })
            .await,
    );
    assert_eq!(c, Code::Aborted);
    client
        .delete_job(DeleteJobRequest {
            job_id: id(&other),
            version: version("2"),
            force: false,
        })
        .await
        .unwrap();
    let (c, _) = code(
        client
            .get_job(GetJobRequest {
                job_id: id(&other),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::NotFound);

    // RestartJob: a stale version is ABORTED; a range outside the job is
    // INVALID_ARGUMENT; the current one restarts and bumps the version.
    let restart = |v: &str, ranges: Vec<pod::InstanceIdRange>| RestartJobRequest {
        job_id: id(&web),
        version: version(v),
        restart_spec: Some(stateless::RestartSpec {
            batch_size: 1,
            ranges,
            in_place: false,
        }),
        opaque_data: None,
    };
    let (c, _) = code(client.restart_job(restart("7", Vec::new())).await);
    assert_eq!(c, Code::Aborted);
    let (c, m) = code(
        client
            .restart_job(restart("1", vec![pod::InstanceIdRange { from: 1, to: 5 }]))
            .await,
    );
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("restart_spec.ranges[0]"), "{m}");
    let restarted = client
        .restart_job(restart("1", vec![pod::InstanceIdRange { from: 0, to: 1 }]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(restarted.version.unwrap().value, "2");

    // RefreshJob replans; GetJobCache shows the board's view.
    client
        .refresh_job(RefreshJobRequest { job_id: id(&web) })
        .await
        .unwrap();
    let cache = client
        .get_job_cache(GetJobCacheRequest { job_id: id(&web) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(cache.spec.unwrap(), web_spec);
    let cache_status = cache.status.unwrap();
    assert_eq!(cache_status.version.unwrap().value, "2");

    // Bad requests and their codes.
    let (c, m) = code(client.create_job(CreateJobRequest::default()).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("spec"), "{m}");
    // An image is asked for (see images_e2e.rs); one Docker's reference
    // grammar refuses is an error naming the field.
    let mut imaged = peloton_spec("img", "alice", 1, None);
    imaged.default_spec.as_mut().unwrap().containers[0].image = "NGINX:latest".into();
    let (c, m) = code(
        client
            .create_job(CreateJobRequest {
                spec: Some(imaged),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("spec.default_spec.containers[0].image"), "{m}");
    let (c, _) = code(
        client
            .create_job(CreateJobRequest {
                job_id: id(&web),
                spec: Some(peloton_spec("web", "alice", 1, None)),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::AlreadyExists);
    let (c, m) = code(
        client
            .stop_job(StopJobRequest {
                job_id: id(&web),
                version: version("one"),
            })
            .await,
    );
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("version.value"), "{m}");
    let (c, m) = code(client.get_job(GetJobRequest::default()).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.contains("job_id.value"), "{m}");
    let (c, _) = code(
        client
            .pause_job_workflow(PauseJobWorkflowRequest {
                job_id: id(&web),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition);
    let (c, m) = code(client.replace_job(ReplaceJobRequest::default()).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.starts_with("job_id.value"), "{m}");
    let (c, m) = code(
        client
            .replace_job(ReplaceJobRequest {
                job_id: id(&web),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.starts_with("spec:"), "{m}");
    // Nothing of the refused creates was stored.
    assert_eq!(query_ids(&mut client, q()).await, vec![web]);
}

/// (launched, running) timestamps (RFC 3339, so ordered as text) of run 0 of `pod`, from its events.
async fn launch_and_start(address: &str, pod: &str) -> (String, String) {
    let (_, events) = get(address, &format!("/api/v1/pods/{pod}/events")).await;
    let events = events["events"].as_array().unwrap().clone();
    let at = |state: Option<&str>| {
        events
            .iter()
            .filter(|e| e["pod_id"]["value"] == format!("{pod}-0"))
            .find(|e| state.is_none_or(|s| e["actual_state"] == s))
            .and_then(|e| e["timestamp"].as_str())
            .unwrap_or_else(|| panic!("{pod}: no {state:?} in {events:?}"))
            .to_owned()
    };
    // The run's first event is its launch.
    (at(None), at(Some("POD_STATE_RUNNING")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_spec_starts_paused_then_creates_a_batch_at_a_time() {
    let (sim, scheduler, _dir, mut client) = start().await;
    let job = create(
        &mut client,
        peloton_spec("paced", "alice", 4, None),
        Some(stateless::CreateSpec {
            batch_size: 1,
            start_paused: true,
            ..Default::default()
        }),
    )
    .await;
    // Paused: nothing reaches the agents, however long it waits.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let answer = get_job(&mut client, &job).await;
    let workflow = status(&answer).workflow_status.clone().unwrap();
    assert_eq!(workflow.state, WorkflowState::Paused as i32);
    assert_eq!(workflow.num_instances_remaining, 4);
    assert!(
        sim_tasks(&sim.address)
            .await
            .iter()
            .all(|(task, _, _)| !task.starts_with(&job)),
        "a paused creation launched"
    );

    let resumed = client
        .resume_job_workflow(ResumeJobWorkflowRequest {
            job_id: id(&job),
            version: version("1"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(resumed.version.unwrap().value, "2");
    wait_state(&mut client, &job, JobState::Running).await;
    let finished = wait_for(LIMIT, || {
        let mut c = client.clone();
        let job = job.clone();
        async move {
            let answer = get_job(&mut c, &job).await;
            let w = status(&answer).workflow_status.clone().unwrap();
            (w.state == WorkflowState::Succeeded as i32).then_some(w)
        }
    })
    .await
    .expect("the creation succeeds");
    assert_eq!(finished.num_instances_completed, 4);
    // An ended creation cannot be aborted.
    let (c, m) = code(
        client
            .abort_job_workflow(AbortJobWorkflowRequest {
                job_id: id(&job),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "{m}");

    // An aborted creation launches nothing more until the job is started
    // again, which ends it.
    let held = create(
        &mut client,
        peloton_spec("held", "alice", 2, None),
        Some(stateless::CreateSpec {
            start_paused: true,
            ..Default::default()
        }),
    )
    .await;
    let aborted = client
        .abort_job_workflow(AbortJobWorkflowRequest {
            job_id: id(&held),
            version: version("1"),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(aborted.version.unwrap().value, "2");
    let answer = get_job(&mut client, &held).await;
    let workflow = status(&answer).workflow_status.clone().unwrap();
    assert_eq!(workflow.state, WorkflowState::Aborted as i32);
    client
        .start_job(StartJobRequest {
            job_id: id(&held),
            version: version("2"),
        })
        .await
        .unwrap();
    wait_state(&mut client, &held, JobState::Running).await;

    // Batch of 1: each instance was launched only once the one before it
    // was running.
    let mut spans = Vec::new();
    for instance in 0..4 {
        spans.push(launch_and_start(&scheduler.address, &format!("{job}-{instance}")).await);
    }
    for (launched, _) in &spans {
        let creating = spans
            .iter()
            .filter(|(l, r)| l <= launched && launched < r)
            .count();
        assert_eq!(
            creating, 1,
            "more than a batch being created at once: {spans:?}"
        );
    }
}

// ---------------------------------------------------------------------
// Updates: ReplaceJob, PatchJob, GetReplaceJobDiff, pause/resume/abort,
// ListJobWorkflows, GetWorkflowEvents.

/// A service without placement limits or SLA, quick to kill, running
/// `command`, each pod health-checked (so a batch waits for HEALTHY).
fn update_spec_of(instances: u32, command: &str) -> stateless::JobSpec {
    let mut spec = peloton_spec("rolling", "alice", instances, None);
    spec.sla = None;
    let pod = spec.default_spec.as_mut().unwrap();
    pod.constraint = None;
    pod.containers[0].command = Some(mesos::CommandInfo {
        value: Some(command.into()),
        ..Default::default()
    });
    spec
}

/// One pod as ListPods shows it.
#[derive(Debug, Clone, PartialEq)]
struct PodSeen {
    pod_id: String,
    state: i32,
    version: String,
    desired_version: String,
}

impl PodSeen {
    /// Up on the version it should run.
    fn settled(&self) -> bool {
        self.state == pod::PodState::Running as i32 && self.version == self.desired_version
    }
}

/// Every pod of `job` by instance, from the ListPods stream.
async fn pods(client: &mut Client, job: &str) -> std::collections::BTreeMap<u32, PodSeen> {
    let mut stream = client
        .list_pods(ListPodsRequest {
            job_id: id(job),
            range: None,
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = std::collections::BTreeMap::new();
    while let Some(page) = stream.message().await.unwrap() {
        for p in page.pods {
            let name = p.pod_name.unwrap().value;
            let instance: u32 = name.rsplit('-').next().unwrap().parse().unwrap();
            let s = p.status.unwrap();
            out.insert(
                instance,
                PodSeen {
                    pod_id: s.pod_id.map(|p| p.value).unwrap_or_default(),
                    state: s.state,
                    version: s.version.unwrap_or_default().value,
                    desired_version: s.desired_version.unwrap_or_default().value,
                },
            );
        }
    }
    out
}

/// Waits until `job` has `n` pods, each up on the version it should run.
async fn wait_settled(
    client: &mut Client,
    job: &str,
    n: usize,
) -> std::collections::BTreeMap<u32, PodSeen> {
    let got = wait_for(LIMIT, || {
        let mut c = client.clone();
        async move {
            let all = pods(&mut c, job).await;
            (all.len() == n && all.values().all(PodSeen::settled)).then_some(all)
        }
    })
    .await;
    match got {
        Some(all) => all,
        None => panic!(
            "job {job} never had {n} settled pods: {:#?}",
            pods(client, job).await
        ),
    }
}

async fn workflow(client: &mut Client, job: &str) -> stateless::WorkflowStatus {
    status(&get_job(client, job).await)
        .workflow_status
        .clone()
        .unwrap()
}

async fn wait_workflow(
    client: &mut Client,
    job: &str,
    want: WorkflowState,
) -> stateless::WorkflowStatus {
    let got = wait_for(LIMIT, || {
        let mut c = client.clone();
        async move {
            let w = workflow(&mut c, job).await;
            (w.state == want as i32).then_some(w)
        }
    })
    .await;
    got.unwrap_or_else(|| panic!("the update of {job} never reached {want:?}"))
}

async fn job_version(client: &mut Client, job: &str) -> String {
    status(&get_job(client, job).await)
        .version
        .clone()
        .unwrap()
        .value
}

fn range(from: u32, to: u32) -> pod::InstanceIdRange {
    pod::InstanceIdRange { from, to }
}

fn ids(pods: &std::collections::BTreeMap<u32, PodSeen>, instances: &[u32]) -> Vec<String> {
    instances.iter().map(|i| pods[i].pod_id.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_is_diffed_replaced_patched_paused_resumed_and_aborted_over_grpc() {
    let sim = AgentSim::for_scheduler(4).start();
    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut client = JobServiceClient::connect(format!("http://{}", scheduler.address))
        .await
        .unwrap();
    let job = create(&mut client, update_spec_of(4, "sleep 1000"), None).await;
    let before = wait_settled(&mut client, &job, 4).await;
    assert!(before.values().all(|p| p.version == "1"), "{before:#?}");

    // The diff of a spec that changes instance 1's pod and adds one.
    let mut next = update_spec_of(5, "sleep 1000");
    let mut changed = next.default_spec.clone().unwrap();
    changed.containers[0].command = Some(mesos::CommandInfo {
        value: Some("sleep 2000".into()),
        ..Default::default()
    });
    next.instance_spec.insert(1, changed);
    let diff = client
        .get_replace_job_diff(GetReplaceJobDiffRequest {
            job_id: id(&job),
            version: version("1"),
            spec: Some(next.clone()),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(diff.instances_added, vec![range(4, 5)]);
    assert_eq!(diff.instances_removed, vec![]);
    assert_eq!(diff.instances_updated, vec![range(1, 2)]);
    assert_eq!(diff.instances_unchanged, vec![range(0, 1), range(2, 4)]);

    // ReplaceJob touches exactly those: instance 1 gets a new pod, 4 is
    // added, 0, 2 and 3 keep theirs; every pod ends on the new version.
    let replaced = client
        .replace_job(ReplaceJobRequest {
            job_id: id(&job),
            version: version("1"),
            spec: Some(next.clone()),
            update_spec: Some(stateless::UpdateSpec {
                batch_size: 1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let new_version = replaced.version.unwrap().value;
    let done = wait_workflow(&mut client, &job, WorkflowState::Succeeded).await;
    assert_eq!(done.version.clone().unwrap().value, new_version);
    assert_eq!(done.prev_version.clone().unwrap().value, "1");
    assert_eq!(
        (done.num_instances_completed, done.num_instances_failed),
        (2, 0)
    );
    let after = wait_settled(&mut client, &job, 5).await;
    assert!(
        after
            .values()
            .all(|p| p.version == new_version && p.desired_version == new_version),
        "{after:#?}"
    );
    assert_eq!(ids(&after, &[0, 2, 3]), ids(&before, &[0, 2, 3]));
    assert_ne!(after[&1].pod_id, before[&1].pod_id);
    let shown = get_job(&mut client, &job).await;
    assert_eq!(
        shown.job_info.unwrap().spec.unwrap().instance_spec[&1].containers[0]
            .command
            .as_ref()
            .unwrap()
            .value
            .as_deref(),
        Some("sleep 2000")
    );
    let info = shown.workflow_info.unwrap();
    assert_eq!(info.instances_updated, vec![range(1, 2)]);
    assert_eq!(info.instances_added, vec![range(4, 5)]);

    // A stale version changes nothing.
    let (c, m) = code(
        client
            .replace_job(ReplaceJobRequest {
                job_id: id(&job),
                version: version("1"),
                spec: Some(update_spec_of(5, "sleep 3000")),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::Aborted, "{m}");
    assert_eq!(workflow(&mut client, &job).await.version, done.version);
    // What Drover cannot honour is refused by name.
    let (c, m) = code(
        client
            .replace_job(ReplaceJobRequest {
                job_id: id(&job),
                spec: Some(update_spec_of(5, "sleep 3000")),
                update_spec: Some(stateless::UpdateSpec {
                    start_pods: true,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::InvalidArgument);
    assert!(m.starts_with("update_spec.start_pods"), "{m}");

    // PatchJob changes the named field alone: one instance more, no pod
    // touched, the rest of the spec as it was.
    let spec_before = get_job(&mut client, &job)
        .await
        .job_info
        .unwrap()
        .spec
        .unwrap();
    let v = job_version(&mut client, &job).await;
    client
        .patch_job(PatchJobRequest {
            job_id: id(&job),
            version: version(&v),
            spec: Some(stateless::JobSpec {
                instance_count: 6,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let patched = wait_workflow(&mut client, &job, WorkflowState::Succeeded).await;
    assert_ne!(patched.version, done.version);
    let spec_after = get_job(&mut client, &job)
        .await
        .job_info
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(
        spec_after,
        stateless::JobSpec {
            instance_count: 6,
            ..spec_before
        }
    );
    let six = wait_settled(&mut client, &job, 6).await;
    assert_eq!(ids(&six, &[0, 1, 2, 3, 4]), ids(&after, &[0, 1, 2, 3, 4]));

    // Pause, resume, abort: an update of every pod, one at a time,
    // created paused.
    let v = job_version(&mut client, &job).await;
    let paused_at = client
        .replace_job(ReplaceJobRequest {
            job_id: id(&job),
            version: version(&v),
            spec: Some(update_spec_of(6, "sleep 4000")),
            update_spec: Some(stateless::UpdateSpec {
                batch_size: 1,
                start_paused: true,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap()
        .value;
    let w = workflow(&mut client, &job).await;
    assert_eq!(w.state, WorkflowState::Paused as i32);
    let target = w.version.unwrap().value;
    // A second update while one is in progress is refused.
    let (c, m) = code(
        client
            .patch_job(PatchJobRequest {
                job_id: id(&job),
                spec: Some(stateless::JobSpec {
                    instance_count: 7,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await,
    );
    assert_eq!(c, Code::FailedPrecondition, "{m}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        ids(&pods(&mut client, &job).await, &[0, 1, 2, 3, 4, 5]),
        ids(&six, &[0, 1, 2, 3, 4, 5]),
        "a paused update moved a pod"
    );
    let resumed = client
        .resume_job_workflow(ResumeJobWorkflowRequest {
            job_id: id(&job),
            version: version(&paused_at),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap()
        .value;
    assert_ne!(resumed, paused_at, "a resume is a new entity version");
    let moved = wait_for(LIMIT, || {
        let mut c = client.clone();
        let job = job.clone();
        async move {
            let w = workflow(&mut c, &job).await;
            (w.num_instances_completed >= 1).then_some(w)
        }
    })
    .await
    .expect("the resumed update moves a pod");
    assert_eq!(moved.prev_state, WorkflowState::Paused as i32);
    let paused = client
        .pause_job_workflow(PauseJobWorkflowRequest {
            job_id: id(&job),
            version: version(&resumed),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .version
        .unwrap()
        .value;
    assert_eq!(
        workflow(&mut client, &job).await.state,
        WorkflowState::Paused as i32
    );
    client
        .abort_job_workflow(AbortJobWorkflowRequest {
            job_id: id(&job),
            version: version(&paused),
            ..Default::default()
        })
        .await
        .unwrap();
    let aborted = workflow(&mut client, &job).await;
    assert_eq!(aborted.state, WorkflowState::Aborted as i32);
    // Aborted: mixed versions, and it stays so.
    let mixed = wait_settled(&mut client, &job, 6).await;
    let on_target = mixed.values().filter(|p| p.version == target).count();
    assert!(
        (1..6).contains(&on_target),
        "an aborted update leaves a mix: {mixed:#?}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        pods(&mut client, &job).await,
        mixed,
        "an aborted update went on"
    );

    // The story: updates newest first, with their events.
    let list = client
        .list_job_workflows(ListJobWorkflowsRequest {
            job_id: id(&job),
            instance_events: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .workflow_infos;
    let states: Vec<i32> = list
        .iter()
        .map(|w| w.status.as_ref().unwrap().state)
        .collect();
    assert_eq!(
        states,
        vec![
            WorkflowState::Aborted as i32,
            WorkflowState::Succeeded as i32,
            WorkflowState::Succeeded as i32
        ]
    );
    let story: Vec<i32> = list[0].events.iter().map(|e| e.state).collect();
    assert_eq!(
        story,
        vec![
            WorkflowState::Paused as i32,
            WorkflowState::RollingForward as i32,
            WorkflowState::Paused as i32,
            WorkflowState::Aborted as i32
        ]
    );
    assert!(!list[0].instance_events.is_empty());
    let limited = client
        .list_job_workflows(ListJobWorkflowsRequest {
            job_id: id(&job),
            updates_limit: 1,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .workflow_infos;
    assert_eq!(limited.len(), 1);
    assert!(limited[0].instance_events.is_empty());
    // Instance 0 moved first: released, then up on the new spec.
    let events = client
        .get_workflow_events(GetWorkflowEventsRequest {
            job_id: id(&job),
            instance_id: 0,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let states: Vec<i32> = events.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        vec![
            WorkflowState::RollingForward as i32,
            WorkflowState::Succeeded as i32
        ]
    );
    let last = client
        .get_workflow_events(GetWorkflowEventsRequest {
            job_id: id(&job),
            instance_id: 0,
            limit: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].state, WorkflowState::Succeeded as i32);
    drop(sim);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_whose_pods_never_get_healthy_fails_and_rolls_back_over_grpc() {
    let sim = AgentSim::for_scheduler(4).start();
    let dir = tempfile::tempdir().unwrap();
    let scheduler = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut client = JobServiceClient::connect(format!("http://{}", scheduler.address))
        .await
        .unwrap();
    let job = create(&mut client, update_spec_of(3, "sleep 1000"), None).await;
    let before = wait_settled(&mut client, &job, 3).await;
    // The new version's health check always fails (agent-sim's label).
    let mut bad = update_spec_of(3, "sleep 1001");
    bad.default_spec
        .as_mut()
        .unwrap()
        .labels
        .push(label("sim.healthy", "false"));
    client
        .replace_job(ReplaceJobRequest {
            job_id: id(&job),
            version: version("1"),
            spec: Some(bad),
            update_spec: Some(stateless::UpdateSpec {
                batch_size: 1,
                rollback_on_failure: true,
                max_instance_retries: 1,
                max_tolerable_instance_failures: 1,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    let got = wait_for(Duration::from_secs(60), || {
        let mut c = client.clone();
        let job = job.clone();
        async move {
            let w = workflow(&mut c, &job).await;
            (w.state == WorkflowState::RolledBack as i32).then_some(w)
        }
    })
    .await;
    let rolled_back = match got {
        Some(w) => w,
        None => panic!(
            "never rolled back: {:#?}",
            workflow(&mut client, &job).await
        ),
    };
    // Every pod is back on version 1; the two never moved kept their pods.
    let after = wait_settled(&mut client, &job, 3).await;
    assert!(after.values().all(|p| p.version == "1"), "{after:#?}");
    assert_eq!(ids(&after, &[1, 2]), ids(&before, &[1, 2]));
    let story: Vec<i32> = client
        .list_job_workflows(ListJobWorkflowsRequest {
            job_id: id(&job),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .workflow_infos[0]
        .events
        .iter()
        .map(|e| e.state)
        .collect();
    assert_eq!(
        story,
        vec![
            WorkflowState::RollingForward as i32,
            WorkflowState::Failed as i32,
            WorkflowState::RollingBackward as i32,
            WorkflowState::RolledBack as i32
        ],
        "{rolled_back:?}"
    );
    drop(sim);
}
