//! Peloton v1alpha `PodService` (and `JobService`'s pod reads) through the
//! generated tonic clients, on the real scheduler against agent-sim: the
//! pod's runs and events, stop (KILLED), start (a new pod_id), restart,
//! the sandbox listed through the agent's files API with real executor
//! processes, deleting an old run's events, refresh and cache, and bad
//! requests with their codes.
#![allow(clippy::unwrap_used)]

use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::job_service_client::JobServiceClient;
use drover_seed_api::peloton::api::v1alpha::job::stateless::svc::{
    ListPodsRequest, QueryPodsRequest,
};
use drover_seed_api::peloton::api::v1alpha::peloton::{JobId, PodId, PodName};
use drover_seed_api::peloton::api::v1alpha::pod::svc::pod_service_client::PodServiceClient;
use drover_seed_api::peloton::api::v1alpha::pod::svc::*;
use drover_seed_api::peloton::api::v1alpha::pod::{InstanceIdRange, PodState, QuerySpec};
use drover_seed_api::peloton::api::v1alpha::query::PaginationSpec;
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::binaries;
use drover_tests::harness::http::{get, post};
use drover_tests::harness::job_api::{job_spec, wait_for_job_state};
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use serde_json::json;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const LIMIT: Duration = Duration::from_secs(40);

fn name(value: &str) -> Option<PodName> {
    Some(PodName {
        value: value.into(),
    })
}

fn id(value: &str) -> Option<PodId> {
    Some(PodId {
        value: value.into(),
    })
}

/// Creates a job through the JSON API without an id: a UUID is chosen.
async fn create(address: &str, spec: serde_json::Value) -> String {
    let (status, reply) = post(address, "/api/v1/jobs", &json!({ "spec": spec })).await;
    assert_eq!(status, 200, "{reply}");
    reply["job_id"]["value"].as_str().unwrap().to_owned()
}

async fn get_pod(pods: &mut PodServiceClient<Channel>, pod: &str) -> GetPodResponse {
    pods.get_pod(GetPodRequest {
        pod_name: name(pod),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
}

/// The pod's current run once it is in `state` (and, if given, not
/// `other`): its pod_id.
async fn wait_current(
    pods: &mut PodServiceClient<Channel>,
    pod: &str,
    state: PodState,
    other: Option<&str>,
) -> String {
    let found = wait_for(LIMIT, || {
        let mut pods = pods.clone();
        async move {
            let status = get_pod(&mut pods, pod).await.current?.status?;
            let run = status.pod_id.clone()?.value;
            (status.state() == state && other != Some(run.as_str())).then_some(run)
        }
    })
    .await;
    match found {
        Some(run) => run,
        None => panic!(
            "{pod} never reached {state:?}: {:?}",
            get_pod(pods, pod).await
        ),
    }
}

async fn events(
    pods: &mut PodServiceClient<Channel>,
    pod: &str,
    run: Option<&str>,
) -> Vec<(String, String)> {
    pods.get_pod_events(GetPodEventsRequest {
        pod_name: name(pod),
        pod_id: run.and_then(id),
    })
    .await
    .unwrap()
    .into_inner()
    .events
    .into_iter()
    .map(|e| (e.pod_id.unwrap().value, e.actual_state))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pods_life_through_the_peloton_pod_service() {
    let executor = binaries::executor();
    let work = tempfile::tempdir().unwrap();
    let sim = AgentSim::for_scheduler(2)
        .real_agents(2, work.path())
        .start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(
        dir.path(),
        &format!("http://{}", sim.address),
        &["--executor", executor.to_str().unwrap()],
    );
    let job = create(
        &s.address,
        job_spec("SERVICE", 2, "echo hello-sandbox; sleep 600"),
    )
    .await;
    wait_for_job_state(&s.address, &job, "JOB_STATE_RUNNING", LIMIT).await;
    let mut pods = PodServiceClient::connect(format!("http://{}", s.address))
        .await
        .unwrap();
    let pod = format!("{job}-1");

    // GetPod: the current run is a Mesos task id starting with the pod name.
    let first = wait_current(&mut pods, &pod, PodState::Running, None).await;
    assert_eq!(first, format!("{pod}-0"));
    let got = get_pod(&mut pods, &pod).await;
    let current = got.current.unwrap();
    assert_eq!(current.spec.unwrap().pod_name.unwrap().value, pod);
    let status = current.status.unwrap();
    assert_eq!(status.desired_state(), PodState::Running);
    assert!(!status.host.is_empty(), "{status:?}");
    assert!(got.previous.is_empty());
    let status_only = pods
        .get_pod(GetPodRequest {
            pod_name: name(&pod),
            status_only: true,
            limit: 0,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(status_only.current.unwrap().spec.is_none());

    // GetPodEvents: the latest run's history, by the proto's state names.
    let history = events(&mut pods, &pod, None).await;
    assert!(history.iter().all(|(run, _)| *run == first), "{history:?}");
    assert!(
        history.iter().any(|(_, s)| s == "POD_STATE_RUNNING"),
        "{history:?}"
    );

    // BrowsePodSandbox: the sandbox of the run, through the agent's files
    // API; the paths read back through it.
    let sandbox = pods
        .browse_pod_sandbox(BrowsePodSandboxRequest {
            pod_name: name(&pod),
            pod_id: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !sandbox.hostname.is_empty() && !sandbox.port.is_empty(),
        "{sandbox:?}"
    );
    assert!(!sandbox.mesos_master_port.is_empty(), "{sandbox:?}");
    let stdout = sandbox
        .paths
        .iter()
        .find(|p| p.ends_with("/stdout"))
        .unwrap_or_else(|| panic!("no stdout in {:?}", sandbox.paths))
        .clone();
    assert!(stdout.contains(&format!("/executors/{first}/")), "{stdout}");
    let read = wait_for(LIMIT, || async {
        let (_, r) = get(&sim.address, &format!("/files/read?path={stdout}&offset=0")).await;
        r["data"]
            .as_str()
            .is_some_and(|d| d.contains("hello-sandbox"))
            .then_some(())
    })
    .await;
    assert!(read.is_some(), "{stdout} never held the task's output");

    // StopPod: the run ends KILLED, and stays so.
    pods.stop_pod(StopPodRequest {
        pod_name: name(&pod),
    })
    .await
    .unwrap();
    let stopped = wait_current(&mut pods, &pod, PodState::Killed, None).await;
    assert_eq!(stopped, first);
    let status = get_pod(&mut pods, &pod)
        .await
        .current
        .unwrap()
        .status
        .unwrap();
    assert_eq!(status.desired_state(), PodState::Killed);

    // StartPod: a new run, so a new pod_id; the old run is a previous one.
    pods.start_pod(StartPodRequest {
        pod_name: name(&pod),
    })
    .await
    .unwrap();
    let second = wait_current(&mut pods, &pod, PodState::Running, Some(&first)).await;
    assert_eq!(second, format!("{pod}-1"));
    let previous = get_pod(&mut pods, &pod).await.previous;
    let old = previous[0].status.clone().unwrap();
    assert_eq!(old.pod_id.as_ref().unwrap().value, first);
    assert_eq!(old.state(), PodState::Killed);

    // RestartPod: replaced by yet another run.
    pods.restart_pod(RestartPodRequest {
        pod_name: name(&pod),
        check_sla: false,
    })
    .await
    .unwrap();
    let third = wait_current(&mut pods, &pod, PodState::Running, Some(&second)).await;
    assert_eq!(third, format!("{pod}-2"));

    // GetPodEvents of one run; DeletePodEvents forgets an old run's only.
    let of_first = events(&mut pods, &pod, Some(&first)).await;
    assert!(!of_first.is_empty() && of_first.iter().all(|(r, _)| *r == first));
    assert!(
        of_first.iter().any(|(_, s)| s == "POD_STATE_KILLED"),
        "{of_first:?}"
    );
    pods.delete_pod_events(DeletePodEventsRequest {
        pod_name: name(&pod),
        pod_id: id(&first),
    })
    .await
    .unwrap();
    assert!(events(&mut pods, &pod, Some(&first)).await.is_empty());
    assert!(!events(&mut pods, &pod, Some(&second)).await.is_empty());
    let latest = pods
        .delete_pod_events(DeletePodEventsRequest {
            pod_name: name(&pod),
            pod_id: id(&third),
        })
        .await
        .unwrap_err();
    assert_eq!(latest.code(), Code::FailedPrecondition, "{latest:?}");
    assert!(!events(&mut pods, &pod, None).await.is_empty());

    // RefreshPod and GetPodCache.
    pods.refresh_pod(RefreshPodRequest {
        pod_name: name(&pod),
    })
    .await
    .unwrap();
    let cache = pods
        .get_pod_cache(GetPodCacheRequest {
            pod_name: name(&pod),
        })
        .await
        .unwrap()
        .into_inner();
    let status = cache.status.unwrap();
    assert_eq!(status.pod_id.as_ref().unwrap().value, third);
    assert_eq!(status.state(), PodState::Running);

    // Bad requests, with their codes and the field named.
    let e = pods.get_pod(GetPodRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("pod_name"), "{e:?}");
    let e = pods
        .get_pod(GetPodRequest {
            pod_name: name("not a pod"),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("pod_name"), "{e:?}");
    for unknown in [format!("{job}-7"), "0b5f6a4e-no-such-job-0".to_owned()] {
        let e = pods
            .stop_pod(StopPodRequest {
                pod_name: name(&unknown),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{unknown}: {e:?}");
        let e = pods
            .get_pod(GetPodRequest {
                pod_name: name(&unknown),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::NotFound, "{unknown}: {e:?}");
    }
    let e = pods
        .get_pod_events(GetPodEventsRequest {
            pod_name: name(&pod),
            pod_id: id(&format!("{job}-0-0")),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("pod_id"), "{e:?}");
    let e = pods
        .get_pod_events(GetPodEventsRequest {
            pod_name: name(&pod),
            pod_id: id(&format!("{pod}-99")),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = pods
        .delete_pod_events(DeletePodEventsRequest {
            pod_name: name(&pod),
            pod_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("pod_id"), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_that_never_ran_has_no_sandbox() {
    let sim = AgentSim::for_scheduler(1).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    // More pods than the one agent (4 cpus) holds: some wait for a host.
    let job = create(&s.address, job_spec("SERVICE", 60, "serve forever")).await;
    let mut pods = PodServiceClient::connect(format!("http://{}", s.address))
        .await
        .unwrap();
    wait_current(&mut pods, &format!("{job}-0"), PodState::Running, None).await;
    let mut waiting = None;
    for i in (0..60).rev() {
        let pod = format!("{job}-{i}");
        let status = get_pod(&mut pods, &pod)
            .await
            .current
            .unwrap()
            .status
            .unwrap();
        if status.pod_id.is_none() {
            assert_eq!(status.state(), PodState::Pending);
            waiting = Some(pod);
            break;
        }
    }
    let pod = waiting.expect("every pod ran on one 4-cpu agent");
    let e = pods
        .browse_pod_sandbox(BrowsePodSandboxRequest {
            pod_name: name(&pod),
            pod_id: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Aborted, "{e:?}");
    assert!(e.message().contains("has not run"), "{e:?}");
}

/// `JobService.ListPods` and `QueryPods` (the job service mounts them; see
/// `scheduler/src/api/grpc/peloton_pods.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_query_pods_through_the_job_service() {
    let sim = AgentSim::for_scheduler(3).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let job = create(&s.address, job_spec("SERVICE", 5, "serve forever")).await;
    wait_for_job_state(&s.address, &job, "JOB_STATE_RUNNING", LIMIT).await;
    let url = format!("http://{}", s.address);
    let mut jobs = JobServiceClient::connect(url.clone()).await.unwrap();
    let mut pods = PodServiceClient::connect(url).await.unwrap();
    for i in 0..5 {
        wait_current(&mut pods, &format!("{job}-{i}"), PodState::Running, None).await;
    }
    let job_id = || Some(JobId { value: job.clone() });

    // ListPods with a range: instances 1 and 2, the first message at once.
    let mut stream = tokio::time::timeout(
        Duration::from_secs(5),
        jobs.list_pods(ListPodsRequest {
            job_id: job_id(),
            range: Some(InstanceIdRange { from: 1, to: 3 }),
        }),
    )
    .await
    .unwrap()
    .unwrap()
    .into_inner();
    let mut names = Vec::new();
    while let Some(message) = stream.message().await.unwrap() {
        names.extend(message.pods.into_iter().map(|p| p.pod_name.unwrap().value));
    }
    assert_eq!(names, [format!("{job}-1"), format!("{job}-2")]);
    let mut all = jobs
        .list_pods(ListPodsRequest {
            job_id: job_id(),
            range: None,
        })
        .await
        .unwrap()
        .into_inner();
    let first = all.message().await.unwrap().unwrap();
    assert_eq!(first.pods.len(), 5);

    // QueryPods: states, names, hosts, pagination.
    let query = |spec: QuerySpec, pagination: Option<PaginationSpec>| QueryPodsRequest {
        job_id: job_id(),
        spec: Some(spec),
        pagination,
        summary_only: true,
    };
    let running = jobs
        .query_pods(query(
            QuerySpec {
                pod_states: vec![PodState::Running as i32],
                ..Default::default()
            },
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(running.pods.len(), 5);
    assert_eq!(running.pagination.unwrap().total, 5);
    assert!(running.pods[0].spec.is_none(), "summary_only");
    let killed = jobs
        .query_pods(query(
            QuerySpec {
                pod_states: vec![PodState::Killed as i32],
                ..Default::default()
            },
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(killed.pods.is_empty());
    let named = jobs
        .query_pods(query(
            QuerySpec {
                names: vec![PodName {
                    value: format!("{job}-3"),
                }],
                ..Default::default()
            },
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(named.pods.len(), 1);
    let host = named.pods[0].status.clone().unwrap().host;
    let on_host = jobs
        .query_pods(query(
            QuerySpec {
                hosts: vec![host.clone()],
                ..Default::default()
            },
            None,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(!on_host.pods.is_empty());
    assert!(on_host
        .pods
        .iter()
        .all(|p| p.status.clone().unwrap().host == host));
    let page = jobs
        .query_pods(query(
            QuerySpec::default(),
            Some(PaginationSpec {
                offset: 1,
                limit: 2,
                ..Default::default()
            }),
        ))
        .await
        .unwrap()
        .into_inner();
    let pagination = page.pagination.unwrap();
    assert_eq!(
        (pagination.offset, pagination.limit, pagination.total),
        (1, 2, 5)
    );
    assert_eq!(page.pods.len(), 2);

    // Bad requests.
    let e = jobs
        .list_pods(ListPodsRequest {
            job_id: job_id(),
            range: Some(InstanceIdRange { from: 3, to: 1 }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("range"), "{e:?}");
    let e = jobs
        .list_pods(ListPodsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let e = jobs
        .query_pods(QueryPodsRequest {
            job_id: Some(JobId {
                value: "no-such-job".into(),
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    let e = jobs
        .query_pods(query(
            QuerySpec {
                pod_states: vec![99],
                ..Default::default()
            },
            None,
        ))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(e.message().contains("spec.pod_states[0]"), "{e:?}");
}
