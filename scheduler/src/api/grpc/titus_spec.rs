//! Titus v3 (`com.netflix.titus`) and Drover's model, both ways. Pure.
//!
//! - A `JobDescriptor` becomes a [`JobSpec`]: `applicationName` (with the
//!   `jobGroupInfo` parts, `<app>-<stack>-<detail>-<sequence>`) is the
//!   name, `attributes` the job labels, batch `size` / service
//!   `capacity.desired` the instance count, the container's resources,
//!   `image` (name and tag, or digest), argv (`entryPoint` then `command`,
//!   as Docker joins them, run without a shell; with an image either may be
//!   left to the image's Entrypoint and Cmd) and `env` the one container, `retryPolicy` the restart policy
//!   (delays in whole seconds, rounded up), the container attribute
//!   `titusParameter.agent.killWaitSeconds` the kill grace period, hard constraints the placement
//!   options and a HOST label constraint per attribute, soft ones the
//!   placement preferences and a soft label constraint. The descriptor is
//!   kept whole ([`crate::model::spec::SeedMessage`]), so what Drover
//!   stores but does not act on (security profile, network, ...) is shown
//!   back as sent.
//! - A task's `containerState` shows its image: name and tag as asked, the
//!   digest its executor resolved.
//! - A job is shown as a Titus `Job`: the kept descriptor with what the
//!   model owns written over it (desired size, enabled, attributes), or
//!   one made from the spec for a job created through another face.
//! - Titus "desired" is the number of instances whose pod goal is RUNNING:
//!   scaling down stops the highest instances (they stay, KILLED, and are
//!   started again first when the job grows), scaling up starts stopped
//!   ones and then adds instances. A job never loses an instance, so no
//!   run is left behind one.
//! - Each run is a Titus task (its id is the Mesos task id,
//!   `<job>-<instance>-<run>`); an instance with no run yet is an
//!   `Accepted` task with its first run's id.

use super::titus_budget;
use crate::api::error::ApiError;
use crate::model::amend::JobAmendment;
use crate::model::ids::{InstanceId, TaskId};
use crate::model::job::{Job, JobView};
use crate::model::run::RUNTIME_LIMIT_REASON;
use crate::model::spec::{
    CommandSpec, Condition, Constraint, ConstraintType, ContainerSpec, EnvironmentSpec, JobSpec,
    JobType, Label, LabelKind, PlacementSpec, PodSpec, Preferences, ResourceSpec, RestartPolicy,
    SeedMessage, VariableSpec,
};
use crate::model::spec_constraint::Constraints as AndOperands;
use crate::model::state::{JobGoal, JobState, PodGoal, PodState};
use crate::store::RunRecord;
use base64::Engine as _;
use drover_seed_api::titus::{
    self, job_descriptor, job_status, retry_policy, service_job_spec, task_status, BatchJobSpec,
    Capacity, Constraints, Container, ContainerResources, JobDescriptor, Page, Pagination,
    RetryPolicy, ServiceJobSpec,
};
use prost::Message;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The kept message's type name.
pub const DESCRIPTOR_TYPE: &str = "com.netflix.titus.JobDescriptor";

/// The host attribute Titus' `AvailabilityZone` constraint names (the one
/// zone balance reads).
const ZONE_ATTRIBUTE: &str = "zone";

// ---------------------------------------------------------------------
// JobDescriptor → JobSpec

/// The spec of a new job from `d`.
pub fn job_spec_from_descriptor(d: &JobDescriptor) -> Result<JobSpec, ApiError> {
    if d.application_name.trim().is_empty() {
        return Err(ApiError::invalid("applicationName", "is required"));
    }
    let container = d
        .container
        .as_ref()
        .ok_or_else(|| ApiError::invalid("container", "is required"))?;
    let (job_type, instance_count, retry, runtime_limit, retry_on_limit) = match &d.job_spec {
        Some(job_descriptor::JobSpec::Batch(b)) => {
            if b.size == 0 {
                return Err(ApiError::invalid("batch.size", "must be at least 1"));
            }
            let limit = (b.runtime_limit_sec > 0)
                .then(|| u32::try_from(b.runtime_limit_sec).unwrap_or(u32::MAX));
            (
                JobType::Batch,
                b.size,
                b.retry_policy.as_ref(),
                limit,
                Some(b.retry_on_runtime_limit),
            )
        }
        Some(job_descriptor::JobSpec::Service(s)) => {
            let capacity = s
                .capacity
                .as_ref()
                .ok_or_else(|| ApiError::invalid("service.capacity", "is required"))?;
            check_capacity(
                capacity.min,
                capacity.desired,
                capacity.max,
                "service.capacity",
            )?;
            if capacity.desired == 0 {
                return Err(ApiError::invalid(
                    "service.capacity.desired",
                    "must be at least 1 when the job is created (scale it to 0 afterwards)",
                ));
            }
            (
                JobType::Service,
                capacity.desired,
                s.retry_policy.as_ref(),
                None,
                None,
            )
        }
        None => {
            return Err(ApiError::invalid(
                "jobSpec",
                "one of batch or service is required",
            ))
        }
    };
    let hard = parse_constraints(
        container.hard_constraints.as_ref(),
        "container.hardConstraints",
    )?;
    let soft = parse_constraints(
        container.soft_constraints.as_ref(),
        "container.softConstraints",
    )?;
    let placement = PlacementSpec {
        unique_host: hard.unique_host,
        exclusive_host: hard.exclusive_host,
        zone_balance: hard.zone_balance,
        strategy: None,
        prefer: soft.any_option().then_some(Preferences {
            unique_host: soft.unique_host,
            exclusive_host: soft.exclusive_host,
            zone_balance: soft.zone_balance,
        }),
    };
    let pod = PodSpec {
        labels: Vec::new(),
        containers: vec![container_spec(container)?],
        restart_policy: Some(restart_policy(retry)),
        kill_grace_period_seconds: kill_wait(container)?,
        constraint: label_constraint(&hard.attributes),
        soft_constraint: label_constraint(&soft.attributes),
        placement: (placement != PlacementSpec::default()).then_some(placement),
        runtime_limit_secs: runtime_limit,
        retry_on_runtime_limit: retry_on_limit,
    };
    Ok(JobSpec {
        job_type,
        name: job_name(d),
        owner: d
            .owner
            .as_ref()
            .map(|o| o.team_email.clone())
            .unwrap_or_default(),
        owning_team: String::new(),
        description: String::new(),
        labels: labels_of(&d.attributes),
        instance_count,
        sla: None,
        unreachable_policy: None,
        disruption_budget: d.disruption_budget.as_ref().map(titus_budget::from_titus),
        respool_id: None,
        ldap_groups: Vec::new(),
        default_spec: pod,
        instance_spec: BTreeMap::new(),
        disabled: matches!(&d.job_spec, Some(job_descriptor::JobSpec::Service(s)) if !s.enabled),
        seed_message: Some(keep(d)),
        task_attributes: BTreeMap::new(),
        secrets: Vec::new(),
    })
}

/// Titus' container attribute for the SIGTERM-to-SIGKILL wait.
pub const KILL_WAIT_ATTRIBUTE: &str = "titusParameter.agent.killWaitSeconds";

/// The kill grace period the container's `titusParameter.agent.killWaitSeconds`
/// attribute asks for, if any.
fn kill_wait(c: &Container) -> Result<Option<u32>, ApiError> {
    c.attributes
        .get(KILL_WAIT_ATTRIBUTE)
        .map(|v| {
            v.trim().parse::<u32>().map_err(|_| {
                ApiError::invalid(
                    &format!("container.attributes.{KILL_WAIT_ATTRIBUTE}"),
                    format!("'{v}' is not a whole number of seconds"),
                )
            })
        })
        .transpose()
}

/// `<applicationName>[-<stack>[-<detail>[-<sequence>]]]`, Titus' full name.
fn job_name(d: &JobDescriptor) -> String {
    let mut name = d.application_name.clone();
    if let Some(g) = &d.job_group_info {
        for part in [&g.stack, &g.detail, &g.sequence] {
            if !part.is_empty() {
                name.push('-');
                name.push_str(part);
            }
        }
    }
    name
}

/// Labels from a Titus map, in key order.
fn labels_of(map: &HashMap<String, String>) -> Vec<Label> {
    let sorted: BTreeMap<_, _> = map.iter().collect();
    sorted
        .into_iter()
        .map(|(k, v)| Label {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// min ≤ desired ≤ max, the error naming the field that breaks it.
pub fn check_capacity(min: u32, desired: u32, max: u32, at: &str) -> Result<(), ApiError> {
    if min > max {
        return Err(ApiError::invalid(
            &format!("{at}.min"),
            format!("{min} is above max {max}"),
        ));
    }
    if desired < min {
        return Err(ApiError::invalid(
            &format!("{at}.desired"),
            format!("{desired} is below min {min}"),
        ));
    }
    if desired > max {
        return Err(ApiError::invalid(
            &format!("{at}.desired"),
            format!("{desired} is above max {max}"),
        ));
    }
    Ok(())
}

fn container_spec(c: &Container) -> Result<ContainerSpec, ApiError> {
    let r = c
        .resources
        .as_ref()
        .ok_or_else(|| ApiError::invalid("container.resources", "is required"))?;
    if !(r.cpu.is_finite() && r.cpu > 0.0) {
        return Err(ApiError::invalid(
            "container.resources.cpu",
            "must be above 0",
        ));
    }
    if r.memory_mb == 0 {
        return Err(ApiError::invalid(
            "container.resources.memoryMB",
            "must be above 0",
        ));
    }
    let image = titus_image(c)?;
    let (value, arguments) = titus_command(&c.entry_point, &c.command, image.is_some())?;
    let mut env: Vec<_> = c
        .env
        .iter()
        .map(|(k, v)| VariableSpec {
            name: k.clone(),
            value: v.clone(),
        })
        .collect();
    env.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ContainerSpec {
        name: "main".into(),
        resource: Some(ResourceSpec {
            cpu_limit: r.cpu,
            mem_limit_mb: f64::from(r.memory_mb),
            disk_limit_mb: f64::from(r.disk_mb),
            gpu_limit: f64::from(r.gpu),
        }),
        image,
        command: Some(CommandSpec {
            value,
            shell: Some(false),
            arguments,
            environment: (!env.is_empty()).then_some(EnvironmentSpec { variables: env }),
            uris: Vec::new(),
            user: None,
        }),
        ports: Vec::new(),
        liveness_check: None,
        readiness_check: None,
    })
}

/// `Container.image` as a Docker reference (`name:tag`, or
/// `name@digest`, the digest winning as Titus resolves it), or none when
/// the job names no image.
fn titus_image(c: &Container) -> Result<Option<String>, ApiError> {
    let Some(image) = c.image.as_ref().filter(|i| !i.name.is_empty()) else {
        return Ok(None);
    };
    crate::model::image::ImageRef::from_parts(&image.name, &image.tag, &image.digest)
        .map(|r| Some(r.to_string()))
        .map_err(|e| ApiError::invalid("container.image", e))
}

/// Titus' `entryPoint` and `command` as a non-shell Mesos command (`value`,
/// `arguments`), by Titus' rule: `entryPoint` replaces the image's
/// Entrypoint and `command` its Cmd, as Docker's `--entrypoint` and
/// arguments do; a single empty string clears the image's. Without an
/// image there is no Entrypoint or Cmd to fall back on, so the argv must be
/// given whole. With one, a CommandInfo without `value` lets the executor
/// combine the image's Entrypoint with `arguments` (or its Cmd when there
/// are none), Mesos' docker runtime rule.
fn titus_command(
    entry_point: &[String],
    command: &[String],
    has_image: bool,
) -> Result<(Option<String>, Vec<String>), ApiError> {
    let argv = argv(entry_point, command);
    if !has_image {
        let Some(program) = argv.first().cloned() else {
            return Err(ApiError::invalid(
                "container.entryPoint",
                "entryPoint or command is required: a job without an image has no image defaults to fall back on",
            ));
        };
        return Ok((Some(program), argv));
    }
    if !entry_point.is_empty() {
        // The job's entrypoint (or none, when cleared) replaces the
        // image's, and Docker drops the image's Cmd with it.
        return match argv.first().cloned() {
            Some(program) => Ok((Some(program), argv)),
            None => Err(ApiError::invalid(
                "container.command",
                "the image's entryPoint is cleared, so a command is required",
            )),
        };
    }
    if command.len() == 1 && command[0].is_empty() {
        return Err(ApiError::invalid(
            "container.command",
            "clearing the image's Cmd while keeping its Entrypoint is not supported: give the entryPoint",
        ));
    }
    // The image's Entrypoint with the job's command (or the image's Cmd).
    Ok((None, command.to_vec()))
}

/// The argv Docker runs: the entrypoint followed by the command. A
/// single empty string clears either (Titus' way of unsetting the image's).
pub fn argv(entry_point: &[String], command: &[String]) -> Vec<String> {
    let cleared = |v: &[String]| v.len() == 1 && v[0].is_empty();
    let mut argv = Vec::new();
    if !cleared(entry_point) {
        argv.extend(entry_point.iter().cloned());
    }
    if !cleared(command) {
        argv.extend(command.iter().cloned());
    }
    argv
}

/// Seconds from Titus' milliseconds, rounded up (a delay is never shorter
/// than asked).
fn secs_of(ms: u64) -> u32 {
    u32::try_from(ms.div_ceil(1000)).unwrap_or(u32::MAX)
}

/// Titus' retry policy as the model's: immediate retries at once (no
/// delay), delayed ones after a fixed delay (the first retry is always at
/// once in Drover), exponential ones from the initial delay doubling up to
/// the cap. No policy: no retry.
fn restart_policy(p: Option<&RetryPolicy>) -> RestartPolicy {
    match p.and_then(|p| p.policy.as_ref()) {
        Some(retry_policy::Policy::Immediate(i)) => RestartPolicy {
            max_failures: i.retries,
            initial_delay_secs: Some(0),
            max_delay_secs: Some(0),
        },
        Some(retry_policy::Policy::Delayed(d)) => RestartPolicy {
            max_failures: d.retries,
            initial_delay_secs: Some(secs_of(d.delay_ms)),
            max_delay_secs: Some(secs_of(d.delay_ms)),
        },
        Some(retry_policy::Policy::ExponentialBackOff(e)) => RestartPolicy {
            max_failures: e.retries,
            initial_delay_secs: Some(secs_of(e.initial_delay_ms)),
            max_delay_secs: Some(secs_of(e.max_delay_interval_ms)),
        },
        None => RestartPolicy::default(),
    }
}

/// One `Constraints` map, read.
#[derive(Debug, Default, PartialEq)]
struct ParsedConstraints {
    unique_host: bool,
    exclusive_host: bool,
    zone_balance: bool,
    /// (host attribute, value), in key order.
    attributes: Vec<(String, String)>,
}

impl ParsedConstraints {
    fn any_option(&self) -> bool {
        self.unique_host || self.exclusive_host || self.zone_balance
    }
}

/// Reads a Titus constraint map: `UniqueHost`, `ExclusiveHost` and
/// `ZoneBalance` (names case-insensitive, values `true`/`false`), and any
/// other name an attribute the host must have with that value
/// (`AvailabilityZone` is the `zone` attribute).
fn parse_constraints(c: Option<&Constraints>, at: &str) -> Result<ParsedConstraints, ApiError> {
    let mut out = ParsedConstraints::default();
    let Some(c) = c else { return Ok(out) };
    if !c.expression.trim().is_empty() {
        return Err(ApiError::invalid(
            &format!("{at}.expression"),
            "constraint expressions are not supported (Titus does not support them either)",
        ));
    }
    let sorted: BTreeMap<_, _> = c.constraints.iter().collect();
    for (key, value) in sorted {
        let field = format!("{at}.constraints.{key}");
        let flag = || match value.trim().to_ascii_lowercase().as_str() {
            "true" | "" => Ok(true),
            "false" => Ok(false),
            _ => Err(ApiError::invalid(
                &field,
                format!("'{value}' is not true or false"),
            )),
        };
        match key.to_ascii_lowercase().as_str() {
            "uniquehost" => out.unique_host = flag()?,
            "exclusivehost" => out.exclusive_host = flag()?,
            "zonebalance" => out.zone_balance = flag()?,
            _ => {
                if key.trim().is_empty() {
                    return Err(ApiError::invalid(&field, "a constraint needs a name"));
                }
                if value.trim().is_empty() {
                    return Err(ApiError::invalid(
                        &field,
                        "an attribute constraint needs the value the host's attribute must have",
                    ));
                }
                let attribute = if key.eq_ignore_ascii_case("availabilityZone") {
                    ZONE_ATTRIBUTE.to_owned()
                } else {
                    key.clone()
                };
                out.attributes.push((attribute, value.clone()));
            }
        }
    }
    Ok(out)
}

/// A HOST label constraint per attribute (AND of them), if any.
fn label_constraint(attributes: &[(String, String)]) -> Option<Constraint> {
    let mut each: Vec<Constraint> = attributes
        .iter()
        .map(|(k, v)| Constraint::label(LabelKind::Host, Condition::Equal, k, v, 1))
        .collect();
    match each.len() {
        0 => None,
        1 => each.pop(),
        _ => Some(Constraint {
            constraint_type: ConstraintType::And,
            label_constraint: None,
            and_constraint: Some(AndOperands { constraints: each }),
            or_constraint: None,
        }),
    }
}

/// The descriptor, kept.
pub fn keep(d: &JobDescriptor) -> SeedMessage {
    SeedMessage {
        type_name: DESCRIPTOR_TYPE.into(),
        base64: base64::engine::general_purpose::STANDARD.encode(d.encode_to_vec()),
    }
}

/// The kept descriptor of `spec`, if it has one that decodes.
fn kept(spec: &JobSpec) -> Option<JobDescriptor> {
    let m = spec.seed_message.as_ref()?;
    if m.type_name != DESCRIPTOR_TYPE {
        return None;
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&m.base64)
        .ok()?;
    JobDescriptor::decode(bytes.as_slice()).ok()
}

// ---------------------------------------------------------------------
// Drover job → Titus Job

/// Instances wanted running: Titus' desired size.
pub fn desired(job: &Job) -> u32 {
    (0..job.spec.instance_count)
        .filter(|i| job.pod_goal(*i) == PodGoal::Running)
        .count() as u32
}

/// The job's descriptor as Titus shows it: the kept one (or one made from
/// the spec) with the size, enabled flag and attributes the model holds.
pub fn descriptor_of(job: &Job) -> JobDescriptor {
    let mut d = kept(&job.spec).unwrap_or_else(|| descriptor_from_spec(&job.spec));
    d.attributes = job
        .spec
        .labels
        .iter()
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect();
    match &mut d.job_spec {
        Some(job_descriptor::JobSpec::Batch(b)) => b.size = job.spec.instance_count,
        Some(job_descriptor::JobSpec::Service(s)) => {
            let desired = desired(job);
            let c = s.capacity.get_or_insert_with(Capacity::default);
            c.desired = desired;
            // A job scaled through another face (pod stops) keeps its
            // bounds true.
            c.min = c.min.min(desired);
            c.max = c.max.max(desired);
            s.enabled = !job.spec.disabled;
        }
        None => {}
    }
    d
}

/// A descriptor for a job created through another face.
fn descriptor_from_spec(spec: &JobSpec) -> JobDescriptor {
    let pod = &spec.default_spec;
    let r = pod.resources();
    let command = pod.containers.first().and_then(|c| c.command.as_ref());
    let (entry_point, env) = match command {
        Some(c) => {
            let argv = if c.shell.unwrap_or(true) {
                vec![
                    "/bin/sh".into(),
                    "-c".into(),
                    c.value.clone().unwrap_or_default(),
                ]
            } else if c.arguments.is_empty() {
                c.value.clone().into_iter().collect()
            } else {
                c.arguments.clone()
            };
            let env = c
                .environment
                .iter()
                .flat_map(|e| &e.variables)
                .map(|v| (v.name.clone(), v.value.clone()))
                .collect();
            (argv, env)
        }
        None => (Vec::new(), HashMap::new()),
    };
    let placement = pod.placement_spec();
    let flags = |u: bool, e: bool, z: bool| {
        let mut m = HashMap::new();
        for (on, name) in [(u, "UniqueHost"), (e, "ExclusiveHost"), (z, "ZoneBalance")] {
            if on {
                m.insert(name.to_owned(), "true".to_owned());
            }
        }
        m
    };
    let prefer = placement.prefer.unwrap_or_default();
    let hard = flags(
        placement.unique_host,
        placement.exclusive_host,
        placement.zone_balance,
    );
    let soft = flags(
        prefer.unique_host,
        prefer.exclusive_host,
        prefer.zone_balance,
    );
    let retry = pod.restart_policy.map(|p| RetryPolicy {
        policy: Some(retry_policy::Policy::ExponentialBackOff(
            retry_policy::ExponentialBackOff {
                initial_delay_ms: u64::from(p.initial_delay_secs.unwrap_or(1)) * 1000,
                max_delay_interval_ms: u64::from(p.max_delay_secs.unwrap_or(60)) * 1000,
                retries: p.max_failures,
            },
        )),
    });
    let job_spec = match spec.job_type {
        JobType::Batch => job_descriptor::JobSpec::Batch(BatchJobSpec {
            size: spec.instance_count,
            runtime_limit_sec: pod.runtime_limit_secs.map_or(0, u64::from),
            retry_policy: retry,
            retry_on_runtime_limit: pod.retry_on_runtime_limit.unwrap_or(false),
        }),
        JobType::Service => job_descriptor::JobSpec::Service(ServiceJobSpec {
            capacity: Some(Capacity {
                min: 0,
                max: spec.instance_count,
                desired: spec.instance_count,
            }),
            enabled: !spec.disabled,
            retry_policy: retry,
            migration_policy: None,
            service_job_processes: None,
        }),
    };
    JobDescriptor {
        owner: (!spec.owner.is_empty()).then(|| titus::Owner {
            team_email: spec.owner.clone(),
        }),
        application_name: spec.name.clone(),
        container: Some(Container {
            resources: Some(ContainerResources {
                cpu: r.cpu_limit,
                gpu: r.gpu_limit as u32,
                memory_mb: r.mem_limit_mb as u32,
                disk_mb: r.disk_limit_mb as u32,
                ..ContainerResources::default()
            }),
            entry_point,
            env,
            soft_constraints: (!soft.is_empty()).then(|| Constraints {
                constraints: soft,
                expression: String::new(),
            }),
            hard_constraints: (!hard.is_empty()).then(|| Constraints {
                constraints: hard,
                expression: String::new(),
            }),
            ..Container::default()
        }),
        job_spec: Some(job_spec),
        ..JobDescriptor::default()
    }
}

/// The job's Titus status.
pub fn job_status(view: &JobView) -> titus::JobStatus {
    let job = &view.job;
    let (state, reason) = match (job.goal, view.state()) {
        (JobGoal::Running, JobState::Succeeded) => (job_status::JobState::Finished, "normal"),
        (JobGoal::Running, JobState::Failed) => (job_status::JobState::Finished, "failed"),
        (JobGoal::Running, _) => (job_status::JobState::Accepted, ""),
        (_, JobState::Killed | JobState::Succeeded | JobState::Failed) => {
            (job_status::JobState::Finished, "killed")
        }
        (_, _) => (job_status::JobState::KillInitiated, "killed"),
    };
    titus::JobStatus {
        state: state as i32,
        reason_code: reason.into(),
        reason_message: String::new(),
        timestamp: u64::try_from(job.updated_at).unwrap_or(0),
    }
}

/// The Titus `Job` of `view`.
pub fn job_to_proto(view: &JobView) -> titus::Job {
    let job = &view.job;
    let status = job_status(view);
    let accepted = titus::JobStatus {
        state: job_status::JobState::Accepted as i32,
        reason_code: "normal".into(),
        reason_message: "the job was created".into(),
        timestamp: u64::try_from(job.created_at).unwrap_or(0),
    };
    let history = if status.state == accepted.state {
        vec![accepted]
    } else {
        vec![accepted, status.clone()]
    };
    titus::Job {
        id: job.job_id.as_str().to_owned(),
        job_descriptor: Some(descriptor_of(job)),
        status: Some(status),
        status_history: history,
        version: Some(titus::Version {
            timestamp: u64::try_from(job.updated_at).unwrap_or(0),
        }),
    }
}

// ---------------------------------------------------------------------
// Runs → Titus tasks

/// A run's Titus state and reason code.
pub fn task_state(
    state: PodState,
    run: Option<&crate::model::run::Run>,
) -> (task_status::TaskState, &'static str) {
    use task_status::TaskState as T;
    let limit = run.is_some_and(|r| {
        r.kill_reason == Some(RUNTIME_LIMIT_REASON) || r.reason == Some(RUNTIME_LIMIT_REASON)
    });
    let killing = run.is_some_and(|r| r.kill_requested_at.is_some());
    if run.is_some_and(|r| r.unreachable.is_some()) && state.is_live() {
        return (T::Disconnected, "");
    }
    match state {
        PodState::Pending => (T::Accepted, ""),
        _ if killing && state.is_live() => (T::KillInitiated, "killed"),
        PodState::Launching | PodState::Launched => (T::Launched, ""),
        PodState::Starting => (T::StartInitiated, ""),
        PodState::Running => (T::Started, ""),
        PodState::Killing => (T::KillInitiated, "killed"),
        PodState::Succeeded => (T::Finished, "normal"),
        _ if limit => (T::Finished, "runtimeLimitExceeded"),
        PodState::Failed => (T::Finished, "failed"),
        PodState::Killed => (T::Finished, "killed"),
        PodState::Lost => (T::Finished, "lost"),
    }
}

/// One Titus task: a run of an instance, or the first run still to come
/// (`record` None) of an instance with none yet.
pub fn task_to_proto(job: &Job, instance: u32, record: Option<&RunRecord>) -> titus::Task {
    let instance_id = InstanceId::new(job.job_id.clone(), instance);
    let run_number = record.map_or(0, |r| r.task_id.run);
    let id = TaskId::new(instance_id.clone(), run_number);
    let (state, mut reason) = match record {
        Some(r) => task_state(r.run.state, Some(&r.run)),
        None => task_state(PodState::Pending, None),
    };
    // An instance the job no longer has was scaled down (Titus' reason).
    if reason == "killed" && instance >= job.spec.instance_count {
        reason = "scaledDown";
    }
    let mut context = HashMap::new();
    context.insert("task.index".to_owned(), instance.to_string());
    if run_number > 0 {
        let original = TaskId::new(instance_id.clone(), 0);
        let previous = TaskId::new(instance_id, run_number - 1);
        context.insert("task.originalId".to_owned(), original.to_string());
        context.insert("task.resubmitOf".to_owned(), previous.to_string());
        context.insert("task.resubmitNumber".to_owned(), run_number.to_string());
    }
    let mut timestamp = u64::try_from(job.created_at).unwrap_or(0);
    let mut message = String::new();
    if let Some(r) = record {
        if let Some(host) = &r.hostname {
            context.insert("agent.host".to_owned(), host.clone());
        }
        if let Some(agent) = &r.run.agent {
            context.insert("agent.id".to_owned(), agent.as_str().to_owned());
        }
        timestamp = u64::try_from(r.run.updated_at).unwrap_or(0);
        message = r.message.clone().unwrap_or_default();
    }
    let status = titus::TaskStatus {
        state: state as i32,
        reason_code: reason.into(),
        reason_message: message,
        timestamp,
        container_state: container_state(job, instance, record),
    };
    titus::Task {
        id: id.to_string(),
        job_id: job.job_id.as_str().to_owned(),
        task_context: context,
        status: Some(status.clone()),
        status_history: vec![status],
        log_location: None,
        migration_details: Some(titus::MigrationDetails::default()),
        attributes: job
            .spec
            .task_attributes
            .get(&id.to_string())
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        version: Some(titus::Version { timestamp }),
    }
}

/// The task's container (`main`) and its image, when the job names one:
/// name and tag as asked, the digest the run's executor resolved (empty
/// until it said, and always on simulated agents, which run no image).
fn container_state(
    job: &Job,
    instance: u32,
    record: Option<&RunRecord>,
) -> Vec<task_status::ContainerState> {
    let spec = job.spec.pod_spec(instance);
    let Some(asked) = spec.image() else {
        return Vec::new();
    };
    let parsed = crate::model::image::ImageRef::parse(asked).ok();
    let resolved = record.and_then(|r| r.image.as_ref());
    let health = match record.and_then(|r| r.run.healthy) {
        Some(true) => task_status::container_state::ContainerHealth::Healthy,
        Some(false) => task_status::container_state::ContainerHealth::Unhealthy,
        None => task_status::container_state::ContainerHealth::Unset,
    };
    vec![task_status::ContainerState {
        container_name: spec
            .containers
            .first()
            .map_or_else(|| "main".to_owned(), |c| c.name.clone()),
        container_health: health as i32,
        container_image: Some(titus::BasicImage {
            name: parsed
                .as_ref()
                .map_or_else(|| asked.to_owned(), |p| p.repository.clone()),
            tag: parsed
                .as_ref()
                .and_then(|p| p.tag.clone())
                .unwrap_or_default(),
            digest: resolved
                .and_then(|i| i.digest.clone())
                .or_else(|| parsed.and_then(|p| p.digest))
                .unwrap_or_default(),
        }),
        platform_sidecar: String::new(),
    }]
}

/// Every task of `job` from its runs (any order): each run, and the
/// first task of each instance with no run yet.
pub fn tasks_of(job: &Job, runs: &[RunRecord]) -> Vec<titus::Task> {
    let mut seen = BTreeSet::new();
    let mut tasks: Vec<_> = runs
        .iter()
        .map(|r| {
            let instance = r.task_id.instance.instance;
            seen.insert(instance);
            (
                instance,
                r.task_id.run,
                task_to_proto(job, instance, Some(r)),
            )
        })
        .collect();
    for instance in 0..job.spec.instance_count {
        if !seen.contains(&instance) && job.wants_running(instance) {
            tasks.push((instance, 0, task_to_proto(job, instance, None)));
        }
    }
    tasks.sort_by_key(|(i, r, _)| (*i, *r));
    tasks.into_iter().map(|(_, _, t)| t).collect()
}

// ---------------------------------------------------------------------
// Capacity

/// A capacity change: each bound the request sets.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CapacityChange {
    /// New min.
    pub min: Option<u32>,
    /// New desired.
    pub desired: Option<u32>,
    /// New max.
    pub max: Option<u32>,
}

/// The amendment that takes service `job` to `change` (at `at`, the
/// request's field path): min ≤ desired ≤ max, and the job's
/// `serviceJobProcesses` forbidding an increase or decrease, enforced.
pub fn scale(job: &Job, change: CapacityChange, at: &str) -> Result<JobAmendment, ApiError> {
    let mut d = descriptor_of(job);
    let Some(job_descriptor::JobSpec::Service(service)) = &mut d.job_spec else {
        return Err(ApiError {
            code: crate::api::error::Code::FailedPrecondition,
            message: format!(
                "job {} is a batch job: only a service job's capacity changes",
                job.job_id
            ),
        });
    };
    let current = service.capacity.unwrap_or_default();
    let target = Capacity {
        min: change.min.unwrap_or(current.min),
        desired: change.desired.unwrap_or(current.desired),
        max: change.max.unwrap_or(current.max),
    };
    check_capacity(target.min, target.desired, target.max, at)?;
    let processes = service.service_job_processes.unwrap_or_default();
    if target.desired > current.desired && processes.disable_increase_desired {
        return Err(ApiError {
            code: crate::api::error::Code::FailedPrecondition,
            message: format!(
                "{at}.desired: job {} has disableIncreaseDesired set",
                job.job_id
            ),
        });
    }
    if target.desired < current.desired && processes.disable_decrease_desired {
        return Err(ApiError {
            code: crate::api::error::Code::FailedPrecondition,
            message: format!(
                "{at}.desired: job {} has disableDecreaseDesired set",
                job.job_id
            ),
        });
    }
    service.capacity = Some(target);
    let mut amend = resize(job, target.desired);
    amend.seed_message = Some(Some(keep(&d)));
    Ok(amend)
}

/// The instance count and pod goals that make `desired` instances
/// wanted, restarting none that stays:
/// - down: the job SHRINKS to just past its `desired`-th wanted instance,
///   so the highest wanted instances leave the job (their tasks stop,
///   reason `scaledDown`); a job keeps at least one instance, so down to
///   0 stops instance 0 instead;
/// - up: stopped instances (a kill with shrink stops one) start again,
///   lowest first, then new instances are added.
pub fn resize(job: &Job, desired: u32) -> JobAmendment {
    let wanted: Vec<u32> = (0..job.spec.instance_count)
        .filter(|i| job.pod_goal(*i) == PodGoal::Running)
        .collect();
    let mut amend = JobAmendment::default();
    let have = wanted.len() as u32;
    if desired < have {
        let count = match desired.checked_sub(1) {
            Some(last) => wanted[last as usize] + 1,
            None => {
                amend.pod_goals.push((0, PodGoal::Killed));
                1
            }
        };
        if count < job.spec.instance_count {
            amend.instance_count = Some(count);
        }
    } else if desired > have {
        let mut need = desired - have;
        for i in (0..job.spec.instance_count).filter(|i| job.pod_goal(*i) == PodGoal::Killed) {
            if need == 0 {
                break;
            }
            amend.pod_goals.push((i, PodGoal::Running));
            need -= 1;
        }
        if need > 0 {
            amend.instance_count = Some(job.spec.instance_count.saturating_add(need));
        }
    }
    amend
}

/// The amendment of a kill with shrink of `instance`: it stops for good
/// and desired drops by one; min follows unless `prevent_min_update`, which
/// refuses a shrink below it instead.
pub fn shrink_one(
    job: &Job,
    instance: u32,
    prevent_min_update: bool,
) -> Result<JobAmendment, ApiError> {
    let mut d = descriptor_of(job);
    let Some(job_descriptor::JobSpec::Service(service)) = &mut d.job_spec else {
        return Err(ApiError {
            code: crate::api::error::Code::FailedPrecondition,
            message: format!(
                "job {} is a batch job: shrink applies to service jobs",
                job.job_id
            ),
        });
    };
    if job.pod_goal(instance) == PodGoal::Killed {
        return Err(ApiError {
            code: crate::api::error::Code::FailedPrecondition,
            message: format!(
                "task of instance {instance} of job {} is stopped already",
                job.job_id
            ),
        });
    }
    let mut c = service.capacity.unwrap_or_default();
    let processes = service.service_job_processes.unwrap_or_default();
    if processes.disable_decrease_desired {
        return Err(ApiError {
            code: crate::api::error::Code::FailedPrecondition,
            message: format!("job {} has disableDecreaseDesired set", job.job_id),
        });
    }
    let desired = c.desired.saturating_sub(1);
    if desired < c.min {
        if prevent_min_update {
            return Err(ApiError {
                code: crate::api::error::Code::FailedPrecondition,
                message: format!(
                    "preventMinSizeUpdate: shrinking job {} to {desired} goes below its min {}",
                    job.job_id, c.min
                ),
            });
        }
        c.min = desired;
    }
    c.desired = desired;
    service.capacity = Some(c);
    Ok(JobAmendment {
        pod_goals: vec![(instance, PodGoal::Killed)],
        seed_message: Some(Some(keep(&d))),
        ..JobAmendment::default()
    })
}

/// The amendment that sets the service's `serviceJobProcesses`.
pub fn set_processes(
    job: &Job,
    processes: service_job_spec::ServiceJobProcesses,
) -> Result<JobAmendment, ApiError> {
    let mut d = descriptor_of(job);
    let Some(job_descriptor::JobSpec::Service(service)) = &mut d.job_spec else {
        return Err(ApiError {
            code: crate::api::error::Code::FailedPrecondition,
            message: format!(
                "job {} is a batch job: processes are a service's",
                job.job_id
            ),
        });
    };
    service.service_job_processes = Some(processes);
    Ok(JobAmendment {
        seed_message: Some(Some(keep(&d))),
        ..JobAmendment::default()
    })
}

/// The amendment that sets the disruption budget: kept in the descriptor
/// as sent, and as Drover's budget, which its drains and restarts obey.
pub fn set_disruption_budget(job: &Job, budget: titus::JobDisruptionBudget) -> JobAmendment {
    let mut d = descriptor_of(job);
    let ours = titus_budget::from_titus(&budget);
    d.disruption_budget = Some(budget);
    JobAmendment {
        disruption_budget: Some(Some(ours)),
        seed_message: Some(Some(keep(&d))),
        ..JobAmendment::default()
    }
}

/// The amendment that writes `set` over task `task`'s attributes and
/// removes `delete` from them.
pub fn task_attributes(
    job: &Job,
    task: &str,
    set: &HashMap<String, String>,
    delete: &[String],
) -> JobAmendment {
    let mut map = job
        .spec
        .task_attributes
        .get(task)
        .cloned()
        .unwrap_or_default();
    for (k, v) in set {
        map.insert(k.clone(), v.clone());
    }
    for k in delete {
        map.remove(k);
    }
    JobAmendment {
        task_attributes: Some((task.to_owned(), map)),
        ..JobAmendment::default()
    }
}

/// The job's labels with `set` written over them and `delete` removed.
pub fn attributes(job: &Job, set: &HashMap<String, String>, delete: &[String]) -> Vec<Label> {
    let mut map: BTreeMap<String, String> = job
        .spec
        .labels
        .iter()
        .map(|l| (l.key.clone(), l.value.clone()))
        .collect();
    for (k, v) in set {
        map.insert(k.clone(), v.clone());
    }
    for k in delete {
        map.remove(k);
    }
    map.into_iter()
        .map(|(key, value)| Label { key, value })
        .collect()
}

// ---------------------------------------------------------------------
// Queries

/// Attribute keys and the values that match each (None: presence).
type AttributeValues = BTreeMap<String, BTreeSet<Option<String>>>;

/// `filteringCriteria` of a JobQuery or TaskQuery, read.
#[derive(Debug, Default)]
pub struct Filter {
    job_ids: Option<BTreeSet<String>>,
    task_ids: Option<BTreeSet<String>>,
    job_fields: Vec<(JobField, String)>,
    job_type: Option<JobType>,
    /// The keys asked for, each with the values that match (None: any),
    /// and whether all keys must match (`attributes.op` and).
    attributes: Option<(AttributeValues, bool)>,
    job_state: Option<job_status::JobState>,
    task_states: Option<BTreeSet<i32>>,
    task_reasons: Option<BTreeSet<String>>,
    needs_migration: bool,
    skip_system_failures: bool,
}

#[derive(Debug, Clone, Copy)]
enum JobField {
    Owner,
    ApplicationName,
    ImageName,
    ImageTag,
    CapacityGroup,
    Stack,
    Detail,
    Sequence,
}

fn list(v: &str) -> BTreeSet<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

impl Filter {
    /// Reads the criteria; an unknown key or value is INVALID_ARGUMENT
    /// naming it.
    pub fn parse(criteria: &HashMap<String, String>) -> Result<Filter, ApiError> {
        let mut f = Filter::default();
        let sorted: BTreeMap<_, _> = criteria.iter().collect();
        let mut op_and = true;
        for (key, value) in sorted {
            let field = format!("filteringCriteria.{key}");
            let value = value.trim();
            match key.as_str() {
                "jobIds" => f.job_ids = Some(list(value)),
                "taskIds" => f.task_ids = Some(list(value)),
                "owner" => f.job_fields.push((JobField::Owner, value.into())),
                "applicationName" => f.job_fields.push((JobField::ApplicationName, value.into())),
                "imageName" => f.job_fields.push((JobField::ImageName, value.into())),
                "imageTag" => f.job_fields.push((JobField::ImageTag, value.into())),
                "capacityGroup" => f.job_fields.push((JobField::CapacityGroup, value.into())),
                "jobGroupStack" => f.job_fields.push((JobField::Stack, value.into())),
                "jobGroupDetail" => f.job_fields.push((JobField::Detail, value.into())),
                "jobGroupSequence" => f.job_fields.push((JobField::Sequence, value.into())),
                "jobType" => {
                    f.job_type = match value.to_ascii_lowercase().as_str() {
                        "batch" => Some(JobType::Batch),
                        "service" => Some(JobType::Service),
                        "" => None,
                        _ => {
                            return Err(ApiError::invalid(
                                &field,
                                format!("'{value}' is not batch or service"),
                            ))
                        }
                    }
                }
                "attributes" => {
                    let mut keys: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
                    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                        let (k, v) = match item.split_once(':') {
                            Some((k, v)) => (k, Some(v.to_owned())),
                            None => (item, None),
                        };
                        keys.entry(k.to_owned()).or_default().push(v);
                    }
                    // A bare key alone checks presence; beside values of
                    // the same key it stands for the empty value.
                    let keys = keys
                        .into_iter()
                        .map(|(k, vs)| {
                            let set: BTreeSet<Option<String>> = if vs.len() == 1 {
                                vs.into_iter().collect()
                            } else {
                                vs.into_iter()
                                    .map(|v| Some(v.unwrap_or_default()))
                                    .collect()
                            };
                            (k, set)
                        })
                        .collect();
                    f.attributes = Some((keys, true));
                }
                "attributes.op" => {
                    op_and = match value.to_ascii_lowercase().as_str() {
                        "and" | "" => true,
                        "or" => false,
                        _ => return Err(ApiError::invalid(&field, "must be 'and' or 'or'")),
                    }
                }
                "jobState" => {
                    if !value.is_empty() {
                        f.job_state =
                            Some(job_status::JobState::from_str_name(value).ok_or_else(|| {
                                ApiError::invalid(
                                    &field,
                                    format!(
                                        "'{value}' is not a job state (Accepted, KillInitiated, \
                                         Finished)"
                                    ),
                                )
                            })?);
                    }
                }
                "taskStates" => {
                    let names = list(value);
                    if !names.is_empty() {
                        let mut states = BTreeSet::new();
                        for name in names {
                            let s =
                                task_status::TaskState::from_str_name(&name).ok_or_else(|| {
                                    ApiError::invalid(
                                        &field,
                                        format!("'{name}' is not a task state"),
                                    )
                                })?;
                            states.insert(s as i32);
                        }
                        f.task_states = Some(states);
                    }
                }
                "taskStateReasons" => {
                    let reasons = list(value);
                    if !reasons.is_empty() {
                        f.task_reasons = Some(reasons);
                    }
                }
                "needsMigration" | "skipSystemFailures" => {
                    let on = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" | "" => false,
                        _ => return Err(ApiError::invalid(&field, "must be true or false")),
                    };
                    if key == "needsMigration" {
                        f.needs_migration = on;
                    } else {
                        f.skip_system_failures = on;
                    }
                }
                _ => {
                    return Err(ApiError::invalid(
                        &field,
                        "is not a filter Titus documents (jobIds, taskIds, owner, \
                         applicationName, imageName, imageTag, capacityGroup, jobGroupStack, \
                         jobGroupDetail, jobGroupSequence, jobType, attributes, attributes.op, \
                         jobState, taskStates, taskStateReasons, needsMigration, \
                         skipSystemFailures)",
                    ))
                }
            }
        }
        if let Some((_, and)) = &mut f.attributes {
            *and = op_and;
        }
        Ok(f)
    }

    /// Whether any criterion looks at tasks.
    pub fn needs_tasks(&self) -> bool {
        self.task_ids.is_some()
            || self.task_states.is_some()
            || self.task_reasons.is_some()
            || self.skip_system_failures
    }

    /// Whether the job-level criteria hold for `job` (its Titus form).
    pub fn job_matches(&self, job: &titus::Job) -> bool {
        if self.needs_migration {
            // Drover migrates nothing: no task ever needs it.
            return false;
        }
        if let Some(ids) = &self.job_ids {
            if !ids.contains(&job.id) {
                return false;
            }
        }
        let d = job.job_descriptor.clone().unwrap_or_default();
        let image = d
            .container
            .as_ref()
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        let group = d.job_group_info.clone().unwrap_or_default();
        for (field, want) in &self.job_fields {
            let have = match field {
                JobField::Owner => d.owner.as_ref().map_or("", |o| o.team_email.as_str()),
                JobField::ApplicationName => d.application_name.as_str(),
                JobField::ImageName => image.name.as_str(),
                JobField::ImageTag => image.tag.as_str(),
                JobField::CapacityGroup => d.capacity_group.as_str(),
                JobField::Stack => group.stack.as_str(),
                JobField::Detail => group.detail.as_str(),
                JobField::Sequence => group.sequence.as_str(),
            };
            if have != want {
                return false;
            }
        }
        if let Some(t) = self.job_type {
            let is = match d.job_spec {
                Some(job_descriptor::JobSpec::Batch(_)) => JobType::Batch,
                _ => JobType::Service,
            };
            if is != t {
                return false;
            }
        }
        if let Some((keys, and)) = &self.attributes {
            let hit = |(k, values): (&String, &BTreeSet<Option<String>>)| {
                d.attributes.get(k).is_some_and(|v| {
                    values
                        .iter()
                        .any(|want| want.as_ref().is_none_or(|w| w == v))
                })
            };
            let ok = if *and {
                keys.iter().all(hit)
            } else {
                keys.iter().any(hit)
            };
            if !ok {
                return false;
            }
        }
        if let Some(state) = self.job_state {
            if job.status.as_ref().map(|s| s.state) != Some(state as i32) {
                return false;
            }
        }
        true
    }

    /// Whether the task-level criteria hold for `task`.
    pub fn task_matches(&self, task: &titus::Task) -> bool {
        if let Some(ids) = &self.task_ids {
            if !ids.contains(&task.id) {
                return false;
            }
        }
        let status = task.status.clone().unwrap_or_default();
        if let Some(states) = &self.task_states {
            if !states.contains(&status.state) {
                return false;
            }
        }
        if let Some(reasons) = &self.task_reasons {
            if !reasons.contains(&status.reason_code) {
                return false;
            }
        }
        if self.skip_system_failures
            && status.state == task_status::TaskState::Finished as i32
            && status.reason_code == "lost"
        {
            return false;
        }
        true
    }
}

/// The page `page` asks for of `items`, and its `Pagination`; no page or
/// size 0 is the first page of `max` items.
pub fn paginate<T>(
    items: Vec<T>,
    page: Option<&Page>,
    max: u32,
) -> Result<(Vec<T>, Pagination), ApiError> {
    let page = page.cloned().unwrap_or_default();
    if page.page_number < 0 {
        return Err(ApiError::invalid("page.pageNumber", "must not be negative"));
    }
    if page.page_size < 0 {
        return Err(ApiError::invalid("page.pageSize", "must not be negative"));
    }
    let size = if page.page_size == 0 {
        max
    } else {
        (page.page_size as u32).min(max)
    }
    .max(1) as usize;
    let total = items.len();
    let start = (page.page_number as usize).saturating_mul(size);
    let shown: Vec<T> = items.into_iter().skip(start).take(size).collect();
    let pagination = Pagination {
        current_page: Some(Page {
            page_number: page.page_number,
            page_size: size as i32,
            cursor: String::new(),
        }),
        has_more: start + shown.len() < total,
        total_pages: total.div_ceil(size) as i32,
        total_items: total as i32,
        cursor: String::new(),
        cursor_position: 0,
    };
    Ok((shown, pagination))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
