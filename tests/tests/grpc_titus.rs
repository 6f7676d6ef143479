//! Titus v3 `JobManagementService` through its generated tonic client,
//! against the real scheduler and agent-sim: batch and service jobs from
//! literal JobDescriptors, FindJobs/FindTasks with the seed's filters, a
//! service scaled 3 → 10 → 2 with min/max enforced, a kill with shrink and
//! one without, disable/enable, attributes, and bad requests with their
//! codes; capacity 4 → 6 → 2 shrinking the job without restarting a task
//! (the rest end `scaledDown`), bounds and `disableDecreaseDesired`.
#![allow(clippy::unwrap_used)]

use drover_seed_api::titus::job_management_service_client::JobManagementServiceClient;
use drover_seed_api::titus::{
    self, job_descriptor, job_disruption_budget, retry_policy, service_job_spec, task_status,
    BatchJobSpec, Capacity, Constraints, Container, ContainerResources, JobAttributesDeleteRequest,
    JobAttributesUpdate, JobCapacityUpdate, JobCapacityUpdateWithOptionalAttributes,
    JobCapacityWithOptionalAttributes, JobDescriptor, JobDisruptionBudget,
    JobDisruptionBudgetUpdate, JobProcessesUpdate, JobQuery, JobStatusUpdate, Owner, Page,
    RetryPolicy, ServiceJobSpec, TaskKillRequest, TaskQuery,
};
use drover_tests::harness::agent_sim::AgentSim;
use drover_tests::harness::http::post;
use drover_tests::harness::scheduler::Scheduler;
use drover_tests::harness::wait::wait_for;
use std::collections::HashMap;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

type Client = JobManagementServiceClient<Channel>;

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

fn descriptor(
    app: &str,
    argv: (&[&str], &[&str]),
    job_spec: job_descriptor::JobSpec,
) -> JobDescriptor {
    JobDescriptor {
        owner: Some(Owner {
            team_email: "team@example.com".into(),
        }),
        application_name: app.into(),
        capacity_group: "DEFAULT".into(),
        attributes: map(&[("team", "infra")]),
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
            attributes: map(&[("titusParameter.agent.killWaitSeconds", "1")]),
            entry_point: strings(argv.0),
            command: strings(argv.1),
            env: map(&[("GREETING", "hello")]),
            soft_constraints: Some(Constraints {
                constraints: map(&[("ZoneBalance", "true")]),
                expression: String::new(),
            }),
            hard_constraints: Some(Constraints {
                constraints: map(&[("UniqueHost", "true")]),
                expression: String::new(),
            }),
            ..Container::default()
        }),
        disruption_budget: Some(JobDisruptionBudget {
            policy: Some(job_disruption_budget::Policy::UnhealthyTasksLimit(
                job_disruption_budget::UnhealthyTasksLimit {
                    limit_of_unhealthy_containers: 1,
                },
            )),
            rate: Some(job_disruption_budget::Rate::RateUnlimited(
                job_disruption_budget::RateUnlimited {},
            )),
            ..JobDisruptionBudget::default()
        }),
        job_spec: Some(job_spec),
        ..JobDescriptor::default()
    }
}

fn service(min: u32, desired: u32, max: u32) -> JobDescriptor {
    descriptor(
        "web",
        (&["sleep"], &["1000"]),
        job_descriptor::JobSpec::Service(ServiceJobSpec {
            capacity: Some(Capacity { min, max, desired }),
            enabled: true,
            retry_policy: Some(RetryPolicy {
                policy: Some(retry_policy::Policy::Immediate(retry_policy::Immediate {
                    retries: 10,
                })),
            }),
            ..ServiceJobSpec::default()
        }),
    )
}

fn batch() -> JobDescriptor {
    descriptor(
        "report",
        (&["sleep"], &["0.3"]),
        job_descriptor::JobSpec::Batch(BatchJobSpec {
            size: 2,
            runtime_limit_sec: 60,
            retry_policy: Some(RetryPolicy {
                policy: Some(retry_policy::Policy::Delayed(retry_policy::Delayed {
                    initial_delay_ms: 0,
                    delay_ms: 1000,
                    retries: 1,
                })),
            }),
            retry_on_runtime_limit: false,
        }),
    )
}

async fn tasks(client: &mut Client, criteria: &[(&str, &str)]) -> Vec<titus::Task> {
    client
        .find_tasks(TaskQuery {
            page: Some(Page {
                page_number: 0,
                page_size: 100,
                cursor: String::new(),
            }),
            filtering_criteria: map(criteria),
            fields: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .items
}

async fn started(client: &mut Client, job: &str) -> Vec<titus::Task> {
    tasks(client, &[("jobIds", job), ("taskStates", "Started")]).await
}

/// Waits until `job` has exactly `n` Started tasks (and none starting).
async fn wait_started(client: &mut Client, job: &str, n: usize) -> Vec<titus::Task> {
    let got = wait_for(Duration::from_secs(20), || {
        let mut client = client.clone();
        let job = job.to_owned();
        async move {
            let all = tasks(
                &mut client,
                &[
                    ("jobIds", &job),
                    (
                        "taskStates",
                        "Accepted,Launched,StartInitiated,Started,KillInitiated",
                    ),
                ],
            )
            .await;
            let up: Vec<_> = all
                .iter()
                .filter(|t| {
                    t.status.as_ref().unwrap().state == task_status::TaskState::Started as i32
                })
                .cloned()
                .collect();
            (all.len() == n && up.len() == n).then_some(up)
        }
    })
    .await;
    match got {
        Some(up) => up,
        None => {
            let last = tasks(client, &[("jobIds", job)]).await;
            panic!("job {job} never had {n} Started tasks alone: {last:#?}")
        }
    }
}

async fn capacity(client: &mut Client, job: &str) -> Capacity {
    let found = client
        .find_job(titus::JobId { id: job.into() })
        .await
        .unwrap()
        .into_inner();
    match found.job_descriptor.unwrap().job_spec {
        Some(job_descriptor::JobSpec::Service(s)) => s.capacity.unwrap(),
        other => panic!("not a service: {other:?}"),
    }
}

fn code_and_message<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (Code, String) {
    let status = result.unwrap_err();
    assert!(!status.message().is_empty(), "{status:?}");
    (status.code(), status.message().to_owned())
}

async fn update_capacity(
    client: &mut Client,
    job: &str,
    min: u32,
    desired: u32,
    max: u32,
) -> Result<(), tonic::Status> {
    client
        .update_job_capacity(JobCapacityUpdate {
            job_id: job.into(),
            capacity: Some(Capacity { min, max, desired }),
        })
        .await
        .map(drop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn titus_jobs_are_created_found_scaled_killed_and_changed_over_grpc() {
    let sim = AgentSim::for_scheduler(12).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut client = JobManagementServiceClient::connect(format!("http://{}", s.address))
        .await
        .unwrap();

    // Create: ids are UUIDs.
    let batch_id = client.create_job(batch()).await.unwrap().into_inner().id;
    let web = client
        .create_job(service(1, 3, 10))
        .await
        .unwrap()
        .into_inner()
        .id;
    for id in [&batch_id, &web] {
        assert_eq!(id.len(), 36, "{id}");
        assert_eq!(id.matches('-').count(), 4, "{id}");
    }

    // The service's three tasks start; their ids are `<job>-<instance>-<run>`.
    let up = wait_started(&mut client, &web, 3).await;
    let mut ids: Vec<_> = up.iter().map(|t| t.id.clone()).collect();
    ids.sort();
    assert_eq!(
        ids,
        (0..3).map(|i| format!("{web}-{i}-0")).collect::<Vec<_>>()
    );
    assert_eq!(up[0].task_context["task.index"], "0");

    // The batch job finishes normally.
    let finished = wait_for(Duration::from_secs(20), || {
        let mut client = client.clone();
        let id = batch_id.clone();
        async move {
            let job = client
                .find_job(titus::JobId { id })
                .await
                .unwrap()
                .into_inner();
            let status = job.status.unwrap();
            (status.state == titus::job_status::JobState::Finished as i32).then_some(status)
        }
    })
    .await
    .expect("the batch job finishes");
    assert_eq!(finished.reason_code, "normal");

    // FindJob shows back what Drover keeps but does not act on.
    let shown = client
        .find_job(titus::JobId { id: web.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(shown.job_descriptor.as_ref().unwrap(), &service(1, 3, 10));

    // FindJobs with the seed's filters, and pages.
    let find = |criteria: &[(&str, &str)], size: i32| JobQuery {
        page: Some(Page {
            page_number: 0,
            page_size: size,
            cursor: String::new(),
        }),
        filtering_criteria: map(criteria),
        fields: Vec::new(),
    };
    let ids_of = |items: Vec<titus::Job>| items.into_iter().map(|j| j.id).collect::<Vec<_>>();
    let found = client
        .find_jobs(find(&[("jobType", "BATCH")], 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids_of(found.items), vec![batch_id.clone()]);
    let found = client
        .find_jobs(find(
            &[("jobType", "service"), ("attributes", "team:infra")],
            10,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids_of(found.items), vec![web.clone()]);
    let found = client
        .find_jobs(find(&[("jobState", "Finished")], 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids_of(found.items), vec![batch_id.clone()]);
    let found = client
        .find_jobs(find(&[("taskStates", "Started")], 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ids_of(found.items), vec![web.clone()]);
    let page = client.find_jobs(find(&[], 1)).await.unwrap().into_inner();
    let pagination = page.pagination.unwrap();
    assert_eq!(
        (
            page.items.len(),
            pagination.total_items,
            pagination.has_more
        ),
        (1, 2, true)
    );
    // FindTasks across jobs.
    let batch_tasks = tasks(
        &mut client,
        &[("jobIds", &batch_id), ("taskStates", "Finished")],
    )
    .await;
    assert_eq!(batch_tasks.len(), 2);
    assert!(batch_tasks
        .iter()
        .all(|t| t.status.as_ref().unwrap().reason_code == "normal"));
    let both = tasks(&mut client, &[("jobIds", &format!("{batch_id},{web}"))]).await;
    assert_eq!(both.len(), 5);

    // Scale 3 → 10 → 2, min ≤ desired ≤ max enforced.
    update_capacity(&mut client, &web, 1, 10, 10).await.unwrap();
    wait_started(&mut client, &web, 10).await;
    let (code, message) = code_and_message(update_capacity(&mut client, &web, 1, 11, 10).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("Capacity.desired:"), "{message}");
    let (code, message) = code_and_message(update_capacity(&mut client, &web, 4, 3, 3).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("Capacity.min:"), "{message}");
    let optional =
        |desired: Option<u32>, max: Option<u32>| JobCapacityUpdateWithOptionalAttributes {
            job_id: web.clone(),
            job_capacity_with_optional_attributes: Some(JobCapacityWithOptionalAttributes {
                min: None,
                max,
                desired,
            }),
        };
    let (code, message) = code_and_message(
        client
            .update_job_capacity_with_optional_attributes(optional(Some(20), None))
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(
        message.starts_with("jobCapacityWithOptionalAttributes.desired:"),
        "{message}"
    );
    client
        .update_job_capacity_with_optional_attributes(optional(Some(2), None))
        .await
        .unwrap();
    let two = wait_started(&mut client, &web, 2).await;
    let mut left: Vec<_> = two.iter().map(|t| t.id.clone()).collect();
    left.sort();
    assert_eq!(
        left,
        vec![format!("{web}-0-0"), format!("{web}-1-0")],
        "the highest went"
    );
    assert_eq!(
        capacity(&mut client, &web).await,
        Capacity {
            min: 1,
            desired: 2,
            max: 10
        }
    );
    let scaled_down = tasks(&mut client, &[("jobIds", &web), ("taskStates", "Finished")]).await;
    assert_eq!(scaled_down.len(), 8);

    // Kill with shrink: the task goes, desired drops by one.
    client
        .kill_task(TaskKillRequest {
            task_id: format!("{web}-1-0"),
            shrink: true,
            prevent_min_size_update: false,
        })
        .await
        .unwrap();
    let one = wait_started(&mut client, &web, 1).await;
    assert_eq!(one[0].id, format!("{web}-0-0"));
    assert_eq!(
        capacity(&mut client, &web).await,
        Capacity {
            min: 1,
            desired: 1,
            max: 10
        }
    );
    let killed = client
        .find_task(titus::TaskId {
            id: format!("{web}-1-0"),
        })
        .await
        .unwrap()
        .into_inner();
    let status = killed.status.unwrap();
    assert_eq!(
        (status.state, status.reason_code.as_str()),
        (task_status::TaskState::Finished as i32, "killed")
    );
    // Below min with preventMinSizeUpdate: refused.
    let (code, _) = code_and_message(
        client
            .kill_task(TaskKillRequest {
                task_id: format!("{web}-0-0"),
                shrink: true,
                prevent_min_size_update: true,
            })
            .await,
    );
    assert_eq!(code, Code::FailedPrecondition);

    // Kill without shrink: replaced by a new task of the same instance.
    client
        .kill_task(TaskKillRequest {
            task_id: format!("{web}-0-0"),
            shrink: false,
            prevent_min_size_update: false,
        })
        .await
        .unwrap();
    let replaced = wait_for(Duration::from_secs(20), || {
        let mut client = client.clone();
        let web = web.clone();
        async move {
            let up = started(&mut client, &web).await;
            (up.len() == 1 && up[0].id == format!("{web}-0-1")).then_some(up)
        }
    })
    .await
    .expect("the killed task is replaced");
    assert_eq!(
        replaced[0].task_context["task.resubmitOf"],
        format!("{web}-0-0")
    );

    // Disabled: a task that ends is not replaced until the job is enabled.
    let status = |enable: bool| JobStatusUpdate {
        id: web.clone(),
        enable_status: enable,
    };
    client.update_job_status(status(false)).await.unwrap();
    client
        .kill_task(TaskKillRequest {
            task_id: format!("{web}-0-1"),
            shrink: false,
            prevent_min_size_update: false,
        })
        .await
        .unwrap();
    wait_for(Duration::from_secs(20), || {
        let mut client = client.clone();
        let web = web.clone();
        async move {
            let done = tasks(
                &mut client,
                &[
                    ("taskIds", &format!("{web}-0-1")),
                    ("taskStates", "Finished"),
                ],
            )
            .await;
            (!done.is_empty()).then_some(())
        }
    })
    .await
    .expect("the killed task finishes");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        started(&mut client, &web).await.is_empty(),
        "a disabled job starts nothing"
    );
    let shown = client
        .find_job(titus::JobId { id: web.clone() })
        .await
        .unwrap()
        .into_inner();
    match shown.job_descriptor.unwrap().job_spec {
        Some(job_descriptor::JobSpec::Service(s)) => assert!(!s.enabled),
        other => panic!("{other:?}"),
    }
    client.update_job_status(status(true)).await.unwrap();
    let again = wait_started(&mut client, &web, 1).await;
    assert_eq!(again[0].id, format!("{web}-0-2"));

    // Attributes.
    client
        .update_job_attributes(JobAttributesUpdate {
            job_id: web.clone(),
            attributes: map(&[("tier", "2")]),
        })
        .await
        .unwrap();
    client
        .delete_job_attributes(JobAttributesDeleteRequest {
            job_id: web.clone(),
            keys: strings(&["team"]),
        })
        .await
        .unwrap();
    let shown = client
        .find_job(titus::JobId { id: web.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        shown.job_descriptor.unwrap().attributes,
        map(&[("tier", "2")])
    );
    let task = format!("{web}-0-2");
    client
        .update_task_attributes(titus::TaskAttributesUpdate {
            task_id: task.clone(),
            attributes: map(&[("owner", "me"), ("note", "x")]),
        })
        .await
        .unwrap();
    client
        .delete_task_attributes(titus::TaskAttributesDeleteRequest {
            task_id: task.clone(),
            keys: strings(&["note"]),
        })
        .await
        .unwrap();
    let found = client
        .find_task(titus::TaskId { id: task.clone() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.attributes, map(&[("owner", "me")]));
    let (code, _) = code_and_message(
        client
            .update_task_attributes(titus::TaskAttributesUpdate {
                task_id: format!("{web}-0-99"),
                attributes: map(&[("a", "b")]),
            })
            .await,
    );
    assert_eq!(code, Code::NotFound);

    // Disruption budget and processes: stored and shown; processes enforced.
    let budget = JobDisruptionBudget {
        policy: Some(job_disruption_budget::Policy::SelfManaged(
            job_disruption_budget::SelfManaged {
                relocation_time_ms: 60_000,
            },
        )),
        ..JobDisruptionBudget::default()
    };
    client
        .update_job_disruption_budget(JobDisruptionBudgetUpdate {
            job_id: web.clone(),
            disruption_budget: Some(budget.clone()),
        })
        .await
        .unwrap();
    client
        .update_job_processes(JobProcessesUpdate {
            job_id: web.clone(),
            service_job_processes: Some(service_job_spec::ServiceJobProcesses {
                disable_increase_desired: true,
                disable_decrease_desired: false,
            }),
        })
        .await
        .unwrap();
    let shown = client
        .find_job(titus::JobId { id: web.clone() })
        .await
        .unwrap()
        .into_inner();
    let d = shown.job_descriptor.unwrap();
    assert_eq!(d.disruption_budget, Some(budget));
    let (code, _) = code_and_message(update_capacity(&mut client, &web, 1, 3, 10).await);
    assert_eq!(code, Code::FailedPrecondition);

    // Bad requests, with the seed's codes.
    let (code, _) = code_and_message(update_capacity(&mut client, &batch_id, 0, 3, 10).await);
    assert_eq!(
        code,
        Code::FailedPrecondition,
        "a batch job has no capacity"
    );
    let (code, _) = code_and_message(
        client
            .find_job(titus::JobId {
                id: "6a1d1a8e-0000-4000-8000-000000000000".into(),
            })
            .await,
    );
    assert_eq!(code, Code::NotFound);
    let (code, message) = code_and_message(client.create_job(JobDescriptor::default()).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("applicationName:"), "{message}");
    let mut bad = service(1, 3, 10);
    bad.container
        .as_mut()
        .unwrap()
        .hard_constraints
        .as_mut()
        .unwrap()
        .constraints = map(&[("ZoneBalance", "sometimes")]);
    let (code, message) = code_and_message(client.create_job(bad).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("ZoneBalance"), "{message}");
    let (code, message) = code_and_message(
        client
            .find_tasks(TaskQuery {
                filtering_criteria: map(&[("color", "red")]),
                ..TaskQuery::default()
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("filteringCriteria.color:"), "{message}");
    let (code, _) = code_and_message(
        client
            .kill_task(TaskKillRequest {
                task_id: "nope".into(),
                ..TaskKillRequest::default()
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    let (code, message) = code_and_message(
        client
            .observe_jobs(titus::ObserveJobsQuery {
                filtering_criteria: map(&[("color", "blue")]),
                ..titus::ObserveJobsQuery::default()
            })
            .await,
    );
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("filteringCriteria.color:"), "{message}");

    // MoveTask: a new task in the target, the moved one killed.
    let mut from = service(0, 1, 5);
    from.application_name = "from".into();
    let mut to = service(0, 1, 5);
    to.application_name = "to".into();
    let from = client.create_job(from).await.unwrap().into_inner().id;
    let to = client.create_job(to).await.unwrap().into_inner().id;
    wait_started(&mut client, &from, 1).await;
    wait_started(&mut client, &to, 1).await;
    let (code, _) = code_and_message(
        client
            .move_task(titus::TaskMoveRequest {
                source_job_id: batch_id.clone(),
                target_job_id: to.clone(),
                task_id: format!("{batch_id}-0-0"),
            })
            .await,
    );
    assert_eq!(code, Code::FailedPrecondition, "a batch task does not move");
    client
        .move_task(titus::TaskMoveRequest {
            source_job_id: from.clone(),
            target_job_id: to.clone(),
            task_id: format!("{from}-0-0"),
        })
        .await
        .unwrap();
    wait_started(&mut client, &to, 2).await;
    wait_started(&mut client, &from, 0).await;
    assert_eq!(capacity(&mut client, &from).await.desired, 0);
    assert_eq!(capacity(&mut client, &to).await.desired, 2);
    // A move the source refuses (it may not shrink) changes neither job.
    client
        .update_job_processes(JobProcessesUpdate {
            job_id: to.clone(),
            service_job_processes: Some(service_job_spec::ServiceJobProcesses {
                disable_increase_desired: false,
                disable_decrease_desired: true,
            }),
        })
        .await
        .unwrap();
    let (code, message) = code_and_message(
        client
            .move_task(titus::TaskMoveRequest {
                source_job_id: to.clone(),
                target_job_id: from.clone(),
                task_id: format!("{to}-0-0"),
            })
            .await,
    );
    assert_eq!(code, Code::FailedPrecondition, "{message}");
    assert_eq!(capacity(&mut client, &from).await.desired, 0);
    assert_eq!(capacity(&mut client, &to).await.desired, 2);

    // The JSON face: a literal JobDescriptor as a Titus JSON client writes
    // it (lowerCamelCase, the seed's enum spellings), the same checks.
    const TITUS: &str = "/com.netflix.titus.JobManagementService";
    let descriptor = serde_json::json!({
        "owner": {"teamEmail": "team@example.com"},
        "applicationName": "jsonapp",
        "capacityGroup": "DEFAULT",
        "jobGroupInfo": {"stack": "main", "detail": "json", "sequence": "v001"},
        "attributes": {"source": "json"},
        "container": {
            "resources": {"cpu": 0.1, "memoryMB": 32, "diskMB": 64, "networkMbps": 128},
            "securityProfile": {"securityGroups": ["sg-1"], "iamRole": "role"},
            "image": {"name": "titus-examples", "tag": "latest"},
            "attributes": {"titusParameter.agent.killWaitSeconds": "1"},
            "entryPoint": ["sleep"],
            "command": ["1000"],
            "env": {"A": "1"},
            "hardConstraints": {"constraints": {"uniqueHost": "true"}},
            "softConstraints": {"constraints": {"zoneBalance": "true"}}
        },
        "service": {
            "capacity": {"min": 1, "max": 4, "desired": 2},
            "enabled": true,
            "retryPolicy": {"exponentialBackOff": {"initialDelayMs": 1000, "maxDelayIntervalMs": 5000, "retries": 3}}
        },
        "networkConfiguration": {"networkMode": "Ipv6AndIpv4"}
    });
    let (code, created) = post(&s.address, &format!("{TITUS}/CreateJob"), &descriptor).await;
    assert_eq!(code, 200, "{created}");
    let json_id = created["id"].as_str().unwrap().to_owned();
    wait_started(&mut client, &json_id, 2).await;
    let (code, found) = post(
        &s.address,
        &format!("{TITUS}/FindJob"),
        &serde_json::json!({"id": json_id}),
    )
    .await;
    assert_eq!(code, 200, "{found}");
    assert_eq!(
        found["jobDescriptor"]["networkConfiguration"]["networkMode"],
        "Ipv6AndIpv4"
    );
    assert_eq!(found["jobDescriptor"]["service"]["capacity"]["desired"], 2);
    let (code, error) = post(
        &s.address,
        &format!("{TITUS}/UpdateJobCapacity"),
        &serde_json::json!({"jobId": json_id, "Capacity": {"min": 1, "max": 4, "desired": 5}}),
    )
    .await;
    assert_eq!(code, 400, "{error}");
    assert_eq!(error["code"], "INVALID_ARGUMENT", "{error}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Capacity.desired:"),
        "{error}"
    );

    // KillJob: KillInitiated, then Finished.
    client
        .kill_job(titus::JobId { id: web.clone() })
        .await
        .unwrap();
    let status = wait_for(Duration::from_secs(20), || {
        let mut client = client.clone();
        let id = web.clone();
        async move {
            let job = client
                .find_job(titus::JobId { id })
                .await
                .unwrap()
                .into_inner();
            let status = job.status.unwrap();
            (status.state == titus::job_status::JobState::Finished as i32).then_some(status)
        }
    })
    .await
    .expect("the killed job finishes");
    assert_eq!(status.reason_code, "killed");
}

/// The ids of `job`'s tasks in `states`, sorted.
async fn task_ids(client: &mut Client, job: &str, states: &str) -> Vec<String> {
    let mut ids: Vec<String> = tasks(client, &[("jobIds", job), ("taskStates", states)])
        .await
        .into_iter()
        .map(|t| t.id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_four_six_two_shrinks_the_job_restarting_no_task_and_processes_are_enforced() {
    let sim = AgentSim::for_scheduler(8).start();
    let dir = tempfile::tempdir().unwrap();
    let s = Scheduler::start(dir.path(), &format!("http://{}", sim.address), &[]);
    let mut client = JobManagementServiceClient::connect(format!("http://{}", s.address))
        .await
        .unwrap();
    let web = client
        .create_job(service(1, 4, 10))
        .await
        .unwrap()
        .into_inner()
        .id;
    wait_started(&mut client, &web, 4).await;
    let four = task_ids(&mut client, &web, "Started").await;

    // Up to 6: two new tasks, the four kept.
    update_capacity(&mut client, &web, 1, 6, 10).await.unwrap();
    wait_started(&mut client, &web, 6).await;
    let six = task_ids(&mut client, &web, "Started").await;
    assert!(four.iter().all(|t| six.contains(t)), "{four:?} in {six:?}");

    // Down to 2: the job shrinks to instances 0 and 1, which keep their
    // tasks; the others end as scaled down, not killed in place.
    update_capacity(&mut client, &web, 1, 2, 10).await.unwrap();
    wait_started(&mut client, &web, 2).await;
    assert_eq!(
        task_ids(&mut client, &web, "Started").await,
        vec![format!("{web}-0-0"), format!("{web}-1-0")]
    );
    let gone = wait_for(Duration::from_secs(20), || {
        let mut c = client.clone();
        let web = web.clone();
        async move {
            let done = tasks(&mut c, &[("jobIds", &web), ("taskStates", "Finished")]).await;
            (done.len() == 4).then_some(done)
        }
    })
    .await
    .expect("the four highest tasks finish");
    for t in &gone {
        let status = t.status.as_ref().unwrap();
        assert_eq!(status.reason_code, "scaledDown", "{t:?}");
    }
    // FindTask finds what FindTasks lists; a finished task is not killed.
    let found = client
        .find_task(titus::TaskId {
            id: format!("{web}-5-0"),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.status.unwrap().reason_code, "scaledDown");
    let (code, _) = code_and_message(
        client
            .kill_task(TaskKillRequest {
                task_id: format!("{web}-5-0"),
                shrink: false,
                prevent_min_size_update: false,
            })
            .await,
    );
    assert_eq!(code, Code::FailedPrecondition);
    let (_, job) =
        drover_tests::harness::http::get(&s.address, &format!("/api/v1/jobs/{web}")).await;
    assert_eq!(
        job["job_info"]["spec"]["instance_count"], 2,
        "the job shrank: {job}"
    );
    assert_eq!(
        capacity(&mut client, &web).await,
        Capacity {
            min: 1,
            desired: 2,
            max: 10
        }
    );

    // Desired outside min..max is refused, naming the bound.
    let (code, message) = code_and_message(update_capacity(&mut client, &web, 2, 1, 10).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.starts_with("Capacity.desired:"), "{message}");
    assert!(message.contains("below min 2"), "{message}");
    let (code, message) = code_and_message(update_capacity(&mut client, &web, 1, 12, 10).await);
    assert_eq!(code, Code::InvalidArgument);
    assert!(message.contains("above max 10"), "{message}");

    // disableDecreaseDesired: a decrease is refused, an increase is not.
    client
        .update_job_processes(JobProcessesUpdate {
            job_id: web.clone(),
            service_job_processes: Some(service_job_spec::ServiceJobProcesses {
                disable_increase_desired: false,
                disable_decrease_desired: true,
            }),
        })
        .await
        .unwrap();
    let (code, message) = code_and_message(update_capacity(&mut client, &web, 1, 1, 10).await);
    assert_eq!(code, Code::FailedPrecondition);
    assert!(message.contains("disableDecreaseDesired"), "{message}");
    update_capacity(&mut client, &web, 1, 3, 10).await.unwrap();
    wait_started(&mut client, &web, 3).await;
    let three = task_ids(&mut client, &web, "Started").await;
    assert!(
        three.contains(&format!("{web}-0-0")) && three.contains(&format!("{web}-1-0")),
        "{three:?}"
    );
    drop(sim);
}
