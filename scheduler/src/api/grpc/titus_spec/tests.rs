use super::*;
use crate::api::error::Code;
use crate::model::ids::JobId;
use crate::model::validate::{validate_job, JobLimits};
use drover_seed_api::titus::{
    container_resources, job_disruption_budget, network_configuration, JobDisruptionBudget,
    JobGroupInfo, NetworkConfiguration, Owner, SecurityProfile,
};

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A container as the seed's field list has it: every field Drover maps
/// and several it only keeps.
fn container() -> Container {
    Container {
        resources: Some(ContainerResources {
            cpu: 0.5,
            gpu: 1,
            memory_mb: 512,
            disk_mb: 1024,
            network_mbps: 128,
            allocate_ip: true,
            efs_mounts: vec![container_resources::EfsMount {
                efs_id: "fs-1".into(),
                mount_point: "/efs".into(),
                mount_perm: titus::MountPerm::from_str_name("RW").map_or(0, |p| p as i32),
                efs_relative_mount_point: String::new(),
            }],
            shm_size_mb: 64,
            ..ContainerResources::default()
        }),
        security_profile: Some(SecurityProfile {
            security_groups: strings(&["sg-1"]),
            iam_role: "arn:aws:iam::1:role/app".into(),
            attributes: HashMap::new(),
        }),
        image: Some(titus::Image {
            name: "titus-examples".into(),
            tag: "latest".into(),
            digest: String::new(),
        }),
        attributes: map(&[("titusParameter.x", "1")]),
        entry_point: strings(&["/bin/echo", "hello"]),
        command: strings(&["world"]),
        env: map(&[("B", "2"), ("A", "1")]),
        soft_constraints: Some(Constraints {
            constraints: map(&[("ZoneBalance", "true"), ("MachineType", "m5.large")]),
            expression: String::new(),
        }),
        hard_constraints: Some(Constraints {
            constraints: map(&[("UniqueHost", "TRUE"), ("AvailabilityZone", "us-east-1a")]),
            expression: String::new(),
        }),
        experimental: None,
        volume_mounts: Vec::new(),
    }
}

fn descriptor(job_spec: job_descriptor::JobSpec) -> JobDescriptor {
    JobDescriptor {
        owner: Some(Owner {
            team_email: "team@example.com".into(),
        }),
        application_name: "myapp".into(),
        capacity_group: "DEFAULT".into(),
        job_group_info: Some(JobGroupInfo {
            stack: "main".into(),
            detail: "v1".into(),
            sequence: "001".into(),
        }),
        attributes: map(&[("team", "infra"), ("tier", "1")]),
        container: Some(container()),
        disruption_budget: Some(JobDisruptionBudget {
            time_windows: Vec::new(),
            container_health_providers: Vec::new(),
            policy: Some(job_disruption_budget::Policy::AvailabilityPercentageLimit(
                job_disruption_budget::AvailabilityPercentageLimit {
                    percentage_of_healthy_containers: 95.0,
                },
            )),
            rate: Some(job_disruption_budget::Rate::RatePerInterval(
                job_disruption_budget::RatePerInterval {
                    interval_ms: 60_000,
                    limit_per_interval: 2,
                },
            )),
        }),
        network_configuration: Some(NetworkConfiguration {
            network_mode: network_configuration::NetworkMode::from_str_name("Ipv6AndIpv4")
                .map_or(0, |m| m as i32),
        }),
        job_spec: Some(job_spec),
        ..JobDescriptor::default()
    }
}

fn batch() -> JobDescriptor {
    descriptor(job_descriptor::JobSpec::Batch(BatchJobSpec {
        size: 4,
        runtime_limit_sec: 600,
        retry_policy: Some(RetryPolicy {
            policy: Some(retry_policy::Policy::Delayed(retry_policy::Delayed {
                initial_delay_ms: 0,
                delay_ms: 1500,
                retries: 3,
            })),
        }),
        retry_on_runtime_limit: true,
    }))
}

fn service(min: u32, desired: u32, max: u32) -> JobDescriptor {
    descriptor(job_descriptor::JobSpec::Service(ServiceJobSpec {
        capacity: Some(Capacity { min, max, desired }),
        enabled: true,
        retry_policy: Some(RetryPolicy {
            policy: Some(retry_policy::Policy::ExponentialBackOff(
                retry_policy::ExponentialBackOff {
                    initial_delay_ms: 1000,
                    max_delay_interval_ms: 30_000,
                    retries: 5,
                },
            )),
        }),
        migration_policy: None,
        service_job_processes: None,
    }))
}

fn job_of(d: &JobDescriptor) -> Job {
    let spec = job_spec_from_descriptor(d).unwrap();
    validate_job(&spec, &JobLimits::default(), "jobDescriptor").unwrap();
    Job::new(JobId::random(), spec, 1_000)
}

fn apply(job: &Job, amend: &JobAmendment) -> Job {
    amend.apply(job).unwrap()
}

#[test]
fn a_batch_descriptor_becomes_the_models_spec() {
    let spec = job_spec_from_descriptor(&batch()).unwrap();
    assert_eq!(spec.job_type, JobType::Batch);
    assert_eq!(spec.name, "myapp-main-v1-001");
    assert_eq!(spec.owner, "team@example.com");
    assert_eq!(spec.instance_count, 4);
    assert_eq!(
        spec.labels,
        vec![
            Label {
                key: "team".into(),
                value: "infra".into()
            },
            Label {
                key: "tier".into(),
                value: "1".into()
            }
        ]
    );
    let pod = &spec.default_spec;
    let c = &pod.containers[0];
    let r = c.resource.unwrap();
    assert_eq!(
        (r.cpu_limit, r.mem_limit_mb, r.disk_limit_mb, r.gpu_limit),
        (0.5, 512.0, 1024.0, 1.0)
    );
    let cmd = c.command.as_ref().unwrap();
    assert_eq!(cmd.shell, Some(false));
    assert_eq!(cmd.value.as_deref(), Some("/bin/echo"));
    assert_eq!(cmd.arguments, strings(&["/bin/echo", "hello", "world"]));
    let env = &cmd.environment.as_ref().unwrap().variables;
    assert_eq!(
        env.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
        ["A", "B"]
    );
    // Delayed: a fixed delay, in whole seconds rounded up.
    assert_eq!(
        pod.restart_policy,
        Some(RestartPolicy {
            max_failures: 3,
            initial_delay_secs: Some(2),
            max_delay_secs: Some(2),
        })
    );
    assert_eq!(pod.runtime_limit_secs, Some(600));
    assert_eq!(pod.retry_on_runtime_limit, Some(true));
    // Hard: unique host, and the zone attribute; soft: zone balance
    // preferred, and the machine type.
    let placement = pod.placement.unwrap();
    assert!(placement.unique_host && !placement.zone_balance);
    assert_eq!(
        placement.prefer,
        Some(Preferences {
            zone_balance: true,
            ..Preferences::default()
        })
    );
    assert_eq!(
        pod.constraint,
        Some(Constraint::label(
            LabelKind::Host,
            Condition::Equal,
            "zone",
            "us-east-1a",
            1
        ))
    );
    assert_eq!(
        pod.soft_constraint,
        Some(Constraint::label(
            LabelKind::Host,
            Condition::Equal,
            "MachineType",
            "m5.large",
            1
        ))
    );
    assert!(!spec.disabled);
    validate_job(&spec, &JobLimits::default(), "jobDescriptor").unwrap();
}

#[test]
fn what_drover_does_not_act_on_is_shown_back_unchanged() {
    for d in [batch(), service(1, 3, 10)] {
        let job = job_of(&d);
        assert_eq!(descriptor_of(&job), d);
        // And survives the spec's JSON (the store's form).
        let json = serde_json::to_string(&job.spec).unwrap();
        let back: JobSpec = serde_json::from_str(&json).unwrap();
        assert_eq!(back, job.spec);
    }
}

#[test]
fn a_service_descriptor_maps_capacity_enabled_and_exponential_retries() {
    let mut d = service(1, 3, 10);
    if let Some(job_descriptor::JobSpec::Service(s)) = &mut d.job_spec {
        s.enabled = false;
    }
    let spec = job_spec_from_descriptor(&d).unwrap();
    assert_eq!(spec.job_type, JobType::Service);
    assert_eq!(spec.instance_count, 3);
    assert!(spec.disabled);
    assert_eq!(
        spec.default_spec.restart_policy,
        Some(RestartPolicy {
            max_failures: 5,
            initial_delay_secs: Some(1),
            max_delay_secs: Some(30),
        })
    );
    let immediate = RetryPolicy {
        policy: Some(retry_policy::Policy::Immediate(retry_policy::Immediate {
            retries: 2,
        })),
    };
    assert_eq!(
        restart_policy(Some(&immediate)),
        RestartPolicy {
            max_failures: 2,
            initial_delay_secs: Some(0),
            max_delay_secs: Some(0),
        }
    );
}

#[test]
fn bad_descriptors_are_invalid_arguments_naming_the_field() {
    type Edit = Box<dyn Fn(&mut JobDescriptor)>;
    let cases: Vec<(Edit, &str)> = vec![
        (Box::new(|d| d.application_name.clear()), "applicationName"),
        (Box::new(|d| d.container = None), "container"),
        (Box::new(|d| d.job_spec = None), "jobSpec"),
        (
            Box::new(|d| {
                let c = d.container.as_mut().unwrap();
                c.hard_constraints.as_mut().unwrap().constraints = map(&[("uniqueHost", "maybe")]);
            }),
            "container.hardConstraints.constraints.uniqueHost",
        ),
        (
            Box::new(|d| {
                let c = d.container.as_mut().unwrap();
                c.soft_constraints.as_mut().unwrap().constraints = map(&[("MachineType", " ")]);
            }),
            "container.softConstraints.constraints.MachineType",
        ),
        (
            Box::new(|d| {
                let c = d.container.as_mut().unwrap();
                c.hard_constraints.as_mut().unwrap().expression = "zoneBalance".into();
            }),
            "container.hardConstraints.expression",
        ),
        (
            Box::new(|d| {
                d.container
                    .as_mut()
                    .unwrap()
                    .resources
                    .as_mut()
                    .unwrap()
                    .cpu = 0.0
            }),
            "container.resources.cpu",
        ),
        (
            Box::new(|d| {
                let c = d.container.as_mut().unwrap();
                c.image = None;
                c.entry_point.clear();
                c.command.clear();
            }),
            "container.entryPoint",
        ),
        (
            Box::new(|d| {
                let c = d.container.as_mut().unwrap();
                c.entry_point = strings(&[""]);
                c.command.clear();
            }),
            "container.command",
        ),
        (
            Box::new(|d| {
                let c = d.container.as_mut().unwrap();
                c.image.as_mut().unwrap().digest = "sha256:short".into();
            }),
            "container.image",
        ),
        (
            Box::new(|d| {
                d.job_spec = service(1, 11, 10).job_spec;
            }),
            "service.capacity.desired",
        ),
        (
            Box::new(|d| {
                d.job_spec = service(5, 3, 10).job_spec;
            }),
            "service.capacity.desired",
        ),
        (
            Box::new(|d| {
                d.job_spec = service(0, 0, 10).job_spec;
            }),
            "service.capacity.desired",
        ),
        (
            Box::new(|d| {
                if let Some(job_descriptor::JobSpec::Batch(b)) = &mut d.job_spec {
                    b.size = 0;
                }
            }),
            "batch.size",
        ),
    ];
    for (change, field) in cases {
        let mut d = batch();
        change(&mut d);
        let e = job_spec_from_descriptor(&d).unwrap_err();
        assert_eq!(e.code, Code::InvalidArgument, "{field}: {}", e.message);
        assert!(
            e.message.starts_with(&format!("{field}:")),
            "{field}: {}",
            e.message
        );
    }
}

#[test]
fn argv_is_the_entrypoint_then_the_command_as_docker_joins_them() {
    let s = |v: &[&str]| strings(v);
    assert_eq!(argv(&s(&["a", "b"]), &s(&["c"])), s(&["a", "b", "c"]));
    assert_eq!(argv(&s(&[]), &s(&["c", "d"])), s(&["c", "d"]));
    assert_eq!(argv(&s(&[""]), &s(&["c"])), s(&["c"]));
    assert_eq!(argv(&s(&["a"]), &s(&[""])), s(&["a"]));
}

#[test]
fn a_service_scales_three_ten_two_shrinking_to_the_lowest_and_growing_again() {
    let job = job_of(&service(1, 3, 10));
    let up = scale(
        &job,
        CapacityChange {
            desired: Some(10),
            ..CapacityChange::default()
        },
        "Capacity",
    )
    .unwrap();
    assert_eq!(up.instance_count, Some(10));
    let job = apply(&job, &up);
    assert_eq!(desired(&job), 10);
    let down = scale(
        &job,
        CapacityChange {
            desired: Some(2),
            ..CapacityChange::default()
        },
        "Capacity",
    )
    .unwrap();
    // The highest instances leave the job; no pod is stopped in place.
    assert_eq!(down.instance_count, Some(2));
    assert!(down.pod_goals.is_empty(), "{:?}", down.pod_goals);
    let job = apply(&job, &down);
    assert_eq!(desired(&job), 2);
    assert_eq!(job.spec.instance_count, 2);
    assert!(job.wants_running(0) && job.wants_running(1));
    // Up again: new instances, the two kept untouched.
    let again = resize(&job, 4);
    assert!(again.pod_goals.is_empty());
    assert_eq!(again.instance_count, Some(4));
    // The kept capacity follows.
    let d = descriptor_of(&job);
    let Some(job_descriptor::JobSpec::Service(s)) = d.job_spec else {
        panic!("a service")
    };
    assert_eq!(
        s.capacity,
        Some(Capacity {
            min: 1,
            desired: 2,
            max: 10
        })
    );
}

#[test]
fn a_stopped_instance_starts_again_before_any_is_added_and_zero_keeps_one_instance() {
    let job = job_of(&service(0, 4, 10));
    // A kill with shrink stopped instance 1.
    let job = apply(&job, &shrink_one(&job, 1, false).unwrap());
    assert_eq!(desired(&job), 3);
    // Down to 2: the job shrinks to just past its second wanted instance.
    let down = resize(&job, 2);
    assert_eq!(down.instance_count, Some(3));
    let down_job = apply(&job, &down);
    assert_eq!(desired(&down_job), 2);
    // Up to 5: instance 1 starts again, then one is added.
    let up = resize(&job, 5);
    assert_eq!(up.pod_goals, vec![(1, PodGoal::Running)]);
    assert_eq!(up.instance_count, Some(5));
    // Down to 0: one instance is kept, stopped.
    let zero = resize(&job, 0);
    assert_eq!(zero.instance_count, Some(1));
    assert_eq!(zero.pod_goals, vec![(0, PodGoal::Killed)]);
    assert_eq!(desired(&apply(&job, &zero)), 0);
}

#[test]
fn capacity_bounds_processes_and_batch_jobs_are_enforced() {
    let job = job_of(&service(1, 3, 10));
    let change = |min, desired, max| CapacityChange { min, desired, max };
    let e = scale(&job, change(None, Some(11), None), "Capacity").unwrap_err();
    assert_eq!(e.code, Code::InvalidArgument);
    assert!(e.message.starts_with("Capacity.desired:"), "{}", e.message);
    let e = scale(&job, change(Some(4), None, None), "Capacity").unwrap_err();
    assert!(e.message.starts_with("Capacity.desired:"), "{}", e.message);
    let e = scale(&job, change(Some(6), Some(6), Some(5)), "Capacity").unwrap_err();
    assert!(e.message.starts_with("Capacity.min:"), "{}", e.message);
    let locked = apply(
        &job,
        &set_processes(
            &job,
            service_job_spec::ServiceJobProcesses {
                disable_increase_desired: true,
                disable_decrease_desired: false,
            },
        )
        .unwrap(),
    );
    let e = scale(&locked, change(None, Some(4), None), "Capacity").unwrap_err();
    assert_eq!(e.code, Code::FailedPrecondition);
    assert!(scale(&locked, change(None, Some(2), None), "Capacity").is_ok());
    let batch_job = job_of(&batch());
    let e = scale(&batch_job, change(None, Some(2), None), "Capacity").unwrap_err();
    assert_eq!(e.code, Code::FailedPrecondition);
}

#[test]
fn a_kill_with_shrink_stops_the_instance_and_lowers_min_unless_prevented() {
    let job = job_of(&service(3, 3, 10));
    let e = shrink_one(&job, 1, true).unwrap_err();
    assert_eq!(e.code, Code::FailedPrecondition);
    let amend = shrink_one(&job, 1, false).unwrap();
    assert_eq!(amend.pod_goals, vec![(1, PodGoal::Killed)]);
    let job = apply(&job, &amend);
    assert_eq!(desired(&job), 2);
    let Some(job_descriptor::JobSpec::Service(s)) = descriptor_of(&job).job_spec else {
        panic!("a service")
    };
    assert_eq!(
        s.capacity,
        Some(Capacity {
            min: 2,
            desired: 2,
            max: 10
        })
    );
    assert_eq!(
        shrink_one(&job, 1, false).unwrap_err().code,
        Code::FailedPrecondition
    );
}

#[test]
fn filters_take_the_seeds_keys_and_refuse_others() {
    let e = Filter::parse(&map(&[("color", "red")])).unwrap_err();
    assert!(
        e.message.starts_with("filteringCriteria.color:"),
        "{}",
        e.message
    );
    let e = Filter::parse(&map(&[("taskStates", "Started,Running")])).unwrap_err();
    assert!(
        e.message.starts_with("filteringCriteria.taskStates:"),
        "{}",
        e.message
    );
    let e = Filter::parse(&map(&[("jobType", "cron")])).unwrap_err();
    assert!(e.message.starts_with("filteringCriteria.jobType:"));

    let view = JobView {
        job: job_of(&service(1, 3, 10)),
        instances: Default::default(),
    };
    let job = job_to_proto(&view);
    let matches = |pairs: &[(&str, &str)]| Filter::parse(&map(pairs)).unwrap().job_matches(&job);
    assert!(matches(&[]));
    assert!(matches(&[
        ("jobType", "SERVICE"),
        ("applicationName", "myapp")
    ]));
    assert!(!matches(&[("jobType", "batch")]));
    assert!(matches(&[
        ("imageName", "titus-examples"),
        ("imageTag", "latest")
    ]));
    assert!(matches(&[("attributes", "team,tier:1")]));
    assert!(!matches(&[("attributes", "team,tier:2")]));
    assert!(matches(&[("attributes", "tier:2,tier:1")]));
    assert!(matches(&[
        ("attributes", "nope,team:infra"),
        ("attributes.op", "or")
    ]));
    assert!(matches(&[("jobState", "Accepted")]));
    assert!(!matches(&[("jobState", "Finished")]));
    assert!(matches(&[("jobIds", &format!("x,{}", job.id))]));
    assert!(!matches(&[("needsMigration", "true")]));

    let tasks = tasks_of(&view.job, &[]);
    assert_eq!(tasks.len(), 3);
    assert_eq!(tasks[0].id, format!("{}-0-0", view.job.job_id));
    let f = Filter::parse(&map(&[("taskStates", "Accepted,Started")])).unwrap();
    assert!(f.needs_tasks() && f.task_matches(&tasks[0]));
    let f = Filter::parse(&map(&[("taskStates", "Finished")])).unwrap();
    assert!(!f.task_matches(&tasks[0]));
}

#[test]
fn runs_take_titus_task_states_and_reason_codes() {
    use task_status::TaskState as T;
    let cases = [
        (PodState::Pending, T::Accepted, ""),
        (PodState::Launching, T::Launched, ""),
        (PodState::Launched, T::Launched, ""),
        (PodState::Starting, T::StartInitiated, ""),
        (PodState::Running, T::Started, ""),
        (PodState::Killing, T::KillInitiated, "killed"),
        (PodState::Succeeded, T::Finished, "normal"),
        (PodState::Failed, T::Finished, "failed"),
        (PodState::Killed, T::Finished, "killed"),
        (PodState::Lost, T::Finished, "lost"),
    ];
    for (state, want, reason) in cases {
        assert_eq!(task_state(state, None), (want, reason), "{state:?}");
    }
    let mut run = crate::model::run::Run::launching(0, crate::model::ids::AgentId::new("a"), 1, 0);
    run.state = PodState::Killed;
    run.kill_reason = Some(RUNTIME_LIMIT_REASON);
    assert_eq!(
        task_state(run.state, Some(&run)),
        (T::Finished, "runtimeLimitExceeded")
    );
}

#[test]
fn pages_are_cut_and_counted() {
    let items: Vec<u32> = (0..7).collect();
    let page = Page {
        page_number: 1,
        page_size: 3,
        cursor: String::new(),
    };
    let (shown, p) = paginate(items.clone(), Some(&page), 500).unwrap();
    assert_eq!(shown, vec![3, 4, 5]);
    assert!(p.has_more);
    assert_eq!((p.total_items, p.total_pages), (7, 3));
    let (all, p) = paginate(items, None, 500).unwrap();
    assert_eq!(all.len(), 7);
    assert!(!p.has_more);
    let bad = Page {
        page_number: -1,
        ..Page::default()
    };
    let e = paginate(vec![1], Some(&bad), 500).unwrap_err();
    assert!(e.message.starts_with("page.pageNumber:"));
}

#[test]
fn a_job_created_through_another_face_is_shown_as_titus_sees_one() {
    let spec: JobSpec = serde_json::from_value(serde_json::json!({
        "type": "SERVICE", "name": "web", "instance_count": 2, "owner": "me",
        "labels": [{"key": "team", "value": "infra"}],
        "default_spec": {
            "placement": {"unique_host": true},
            "containers": [{
                "resource": {"cpu_limit": 0.5, "mem_limit_mb": 64},
                "command": {"value": "sleep 100"}
            }]
        }
    }))
    .unwrap();
    let job = Job::new(JobId::random(), spec, 1);
    let d = descriptor_of(&job);
    assert_eq!(d.application_name, "web");
    assert_eq!(d.attributes, map(&[("team", "infra")]));
    let c = d.container.unwrap();
    assert_eq!(c.entry_point, strings(&["/bin/sh", "-c", "sleep 100"]));
    assert_eq!(c.resources.unwrap().memory_mb, 64);
    assert_eq!(
        c.hard_constraints.unwrap().constraints,
        map(&[("UniqueHost", "true")])
    );
    let Some(job_descriptor::JobSpec::Service(s)) = d.job_spec else {
        panic!("a service")
    };
    assert_eq!(
        s.capacity,
        Some(Capacity {
            min: 0,
            desired: 2,
            max: 2
        })
    );
    // Its capacity changes like any service's.
    let up = scale(
        &job,
        CapacityChange {
            desired: Some(3),
            max: Some(3),
            ..CapacityChange::default()
        },
        "Capacity",
    )
    .unwrap();
    assert_eq!(up.instance_count, Some(3));
}

#[test]
fn titus_images_and_their_entrypoint_and_command_become_the_mesos_command() {
    let s = |v: &[&str]| strings(v);
    let digest = format!("sha256:{}", "ab".repeat(32));
    // (image, entryPoint, command) -> (image, value, arguments)
    type Case<'a> = (
        Option<(&'a str, &'a str, &'a str)>,
        Vec<String>,
        Vec<String>,
        Option<String>,
        Option<&'a str>,
        Vec<String>,
    );
    let cases: Vec<Case> = vec![
        // No image: the argv whole, as before.
        (
            None,
            s(&["/bin/echo"]),
            s(&["hi"]),
            None,
            Some("/bin/echo"),
            s(&["/bin/echo", "hi"]),
        ),
        // Image, nothing given: its Entrypoint and Cmd.
        (
            Some(("app", "1", "")),
            vec![],
            vec![],
            Some("app:1".into()),
            None,
            vec![],
        ),
        // Image, command only: its Entrypoint with the job's command.
        (
            Some(("app", "1", "")),
            vec![],
            s(&["x", "y"]),
            Some("app:1".into()),
            None,
            s(&["x", "y"]),
        ),
        // Image, entryPoint only: it replaces the image's, Cmd dropped.
        (
            Some(("app", "1", "")),
            s(&["/bin/echo", "e"]),
            vec![],
            Some("app:1".into()),
            Some("/bin/echo"),
            s(&["/bin/echo", "e"]),
        ),
        // Image, entryPoint cleared: the command is the argv.
        (
            Some(("app", "1", "")),
            s(&[""]),
            s(&["/bin/true"]),
            Some("app:1".into()),
            Some("/bin/true"),
            s(&["/bin/true"]),
        ),
        // The digest wins over the tag.
        (
            Some(("app", "1", digest.as_str())),
            vec![],
            vec![],
            Some(format!("app@{digest}")),
            None,
            vec![],
        ),
    ];
    for (image, entry, command, want_image, want_value, want_args) in cases {
        let mut d = batch();
        let c = d.container.as_mut().unwrap();
        c.image = image.map(|(name, tag, digest)| titus::Image {
            name: name.into(),
            tag: tag.into(),
            digest: digest.into(),
        });
        c.entry_point = entry.clone();
        c.command = command.clone();
        let spec = job_spec_from_descriptor(&d).unwrap();
        crate::model::validate::validate_job(&spec, &Default::default(), "spec").unwrap();
        let container = &spec.default_spec.containers[0];
        let cmd = container.command.as_ref().unwrap();
        let case = format!("{image:?} {entry:?} {command:?}");
        assert_eq!(container.image, want_image, "{case}");
        assert_eq!(cmd.shell, Some(false), "{case}");
        assert_eq!(cmd.value.as_deref(), want_value, "{case}");
        assert_eq!(cmd.arguments, want_args, "{case}");
    }
}

#[test]
fn a_task_shows_its_image_as_asked_and_the_digest_its_executor_resolved() {
    use crate::model::ids::{AgentId, InstanceId};
    use crate::model::image::RunImage;
    use crate::model::run::Run;
    let job = job_of(&batch());
    let task = TaskId::new(InstanceId::new(job.job_id.clone(), 0), 0);
    let mut record = RunRecord {
        task_id: task,
        run: Run::launching(0, AgentId::new("a1"), 1, 2_000),
        hostname: None,
        message: None,
        ports: Vec::new(),
        image: None,
    };
    let image_of = |record: &RunRecord| {
        let status = task_to_proto(&job, 0, Some(record)).status.unwrap();
        let state = &status.container_state[0];
        assert_eq!(state.container_name, "main");
        state.container_image.clone().unwrap()
    };
    // Not resolved yet (or a simulated agent): name and tag, no digest.
    let shown = image_of(&record);
    assert_eq!(
        (
            shown.name.as_str(),
            shown.tag.as_str(),
            shown.digest.as_str()
        ),
        ("titus-examples", "latest", "")
    );
    let digest = format!("sha256:{}", "e1".repeat(32));
    record.image = Some(RunImage {
        name: Some("titus-examples:latest".into()),
        digest: Some(digest.clone()),
    });
    assert_eq!(image_of(&record).digest, digest);
    // A job without an image has no container state to show.
    let mut bare = batch();
    let c = bare.container.as_mut().unwrap();
    c.image = None;
    let bare = job_of(&bare);
    let status = task_to_proto(&bare, 0, None).status.unwrap();
    assert!(status.container_state.is_empty());
}
