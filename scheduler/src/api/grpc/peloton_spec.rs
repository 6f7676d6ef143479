//! Peloton v1alpha specs (`JobSpec`, `PodSpec`, `ContainerSpec`,
//! `ResourceSpec`, `HealthCheckSpec`, `Constraint`, `SlaSpec`,
//! `RestartPolicy`, labels) and Drover's, both ways. Pure.
//!
//! Into Drover ([`job_spec_from_proto`]): the stateless JobService's jobs
//! are SERVICE jobs. A field Drover cannot honour (init containers,
//! volumes, a Mesos `ContainerInfo` with more than an image, an executor,
//! revocable resources, ...) is INVALID_ARGUMENT naming the field, never
//! dropped. `image` (or a MESOS `container` naming a DOCKER image) is the
//! image the command runs in. Fields Drover keeps without acting on them (`respool_id`,
//! `ldap_groups`, `sla.preemptible`) are stored and shown back. Output-only
//! fields (`revision`, `pod_name`) are ignored. `ContainerSpec.environment`
//! is merged into the command's environment (Drover has one list), so it
//! is shown back there.
//!
//! Out of Drover ([`job_spec_to_proto`], [`pod_spec_to_proto`]): every
//! field Drover keeps, so a spec written in Peloton's terms round-trips.

use crate::api::error::ApiError;
use crate::model::spec::{
    CommandSpec, Condition, Constraint, ConstraintType, ContainerSpec, EnvironmentSpec,
    HealthCheckSpec, HealthCheckType, JobSpec, JobType, Label, LabelConstraint, LabelKind, PodSpec,
    PortSpec, ResourceSpec, RestartPolicy, SlaSpec, UriSpec, VariableSpec,
};
use crate::model::spec_constraint::Constraints;
use crate::model::spec_health::{CommandCheck, HttpGet};
use drover_proto::v1 as mesos;
use drover_seed_api::peloton::api::v1alpha::{job::stateless, peloton, pod};
use pod::constraint::Type as ProtoConstraintType;
use pod::health_check_spec::HealthCheckType as ProtoCheckType;
use pod::label_constraint::{Condition as ProtoCondition, Kind as ProtoKind};

type Result<T> = std::result::Result<T, ApiError>;

fn refuse(field: &str, why: &str) -> ApiError {
    ApiError::invalid(field, format!("is not supported by Drover: {why}"))
}

/// Refuses `field` when it is set (not its default).
fn unset<T: Default + PartialEq>(value: &T, field: &str, why: &str) -> Result<()> {
    if *value == T::default() {
        Ok(())
    } else {
        Err(refuse(field, why))
    }
}

fn label_from(l: &peloton::Label) -> Label {
    Label {
        key: l.key.clone(),
        value: l.value.clone(),
    }
}

fn label_to(l: &Label) -> peloton::Label {
    peloton::Label {
        key: l.key.clone(),
        value: l.value.clone(),
    }
}

/// Peloton labels as Drover's.
pub fn labels_from(labels: &[peloton::Label]) -> Vec<Label> {
    labels.iter().map(label_from).collect()
}

/// Drover's labels as Peloton's.
pub fn labels_to(labels: &[Label]) -> Vec<peloton::Label> {
    labels.iter().map(label_to).collect()
}

/// A stateless `JobSpec` as Drover's SERVICE job; `at` is the field's path
/// in the request (`spec`).
pub fn job_spec_from_proto(spec: &stateless::JobSpec, at: &str) -> Result<JobSpec> {
    let sla = spec
        .sla
        .as_ref()
        .map(|s| {
            unset(
                &s.revocable,
                &format!("{at}.sla.revocable"),
                "Drover does not use revocable resources",
            )?;
            Ok::<_, ApiError>(SlaSpec {
                priority: s.priority,
                maximum_unavailable_instances: s.maximum_unavailable_instances,
                preemptible: s.preemptible,
            })
        })
        .transpose()?;
    let default_spec = spec
        .default_spec
        .as_ref()
        .ok_or_else(|| ApiError::invalid(&format!("{at}.default_spec"), "is required"))?;
    let default_spec = pod_spec_from_proto(default_spec, &format!("{at}.default_spec"))?;
    let mut instance_spec = std::collections::BTreeMap::new();
    for (i, pod) in &spec.instance_spec {
        let field = format!("{at}.instance_spec.{i}");
        instance_spec.insert(*i, pod_spec_from_proto(pod, &field)?);
    }
    Ok(JobSpec {
        job_type: JobType::Service,
        name: spec.name.clone(),
        owner: spec.owner.clone(),
        owning_team: spec.owning_team.clone(),
        description: spec.description.clone(),
        labels: labels_from(&spec.labels),
        instance_count: spec.instance_count,
        sla,
        unreachable_policy: None,
        disruption_budget: None,
        respool_id: spec
            .respool_id
            .as_ref()
            .map(|r| r.value.clone())
            .filter(|v| !v.is_empty()),
        ldap_groups: spec.ldap_groups.clone(),
        default_spec,
        instance_spec,
        disabled: false,
        seed_message: None,
        task_attributes: std::collections::BTreeMap::new(),
        secrets: Vec::new(),
    })
}

/// Drover's job spec as a stateless `JobSpec`. Drover-only fields (the
/// unreachable policy, Titus placement) have no Peloton field and are
/// shown by the JSON API.
pub fn job_spec_to_proto(spec: &JobSpec) -> stateless::JobSpec {
    stateless::JobSpec {
        revision: None,
        name: spec.name.clone(),
        owner: spec.owner.clone(),
        owning_team: spec.owning_team.clone(),
        ldap_groups: spec.ldap_groups.clone(),
        description: spec.description.clone(),
        labels: labels_to(&spec.labels),
        instance_count: spec.instance_count,
        sla: spec.sla.as_ref().map(|s| stateless::SlaSpec {
            priority: s.priority,
            preemptible: s.preemptible,
            revocable: false,
            maximum_unavailable_instances: s.maximum_unavailable_instances,
        }),
        default_spec: Some(pod_spec_to_proto(&spec.default_spec)),
        instance_spec: spec
            .instance_spec
            .iter()
            .map(|(i, p)| (*i, pod_spec_to_proto(p)))
            .collect(),
        respool_id: spec
            .respool_id
            .as_ref()
            .map(|v| peloton::ResourcePoolId { value: v.clone() }),
    }
}

/// A Peloton `PodSpec` as Drover's; `at` is its path.
pub fn pod_spec_from_proto(spec: &pod::PodSpec, at: &str) -> Result<PodSpec> {
    let f = |name: &str| format!("{at}.{name}");
    unset(
        &spec.init_containers,
        &f("init_containers"),
        "a pod runs one container",
    )?;
    unset(&spec.volume, &f("volume"), "Drover runs no stateful jobs")?;
    unset(&spec.volumes, &f("volumes"), "Drover runs no stateful jobs")?;
    // Peloton's default (false) is what Drover does: a preempted pod is
    // rescheduled. Not rescheduling it is not built.
    unset(
        &spec
            .preemption_policy
            .as_ref()
            .is_some_and(|p| p.kill_on_preempt),
        &f("preemption_policy.kill_on_preempt"),
        "Drover reschedules every preempted pod",
    )?;
    unset(&spec.controller, &f("controller"), "no controller tasks")?;
    unset(
        &spec.revocable,
        &f("revocable"),
        "Drover does not use revocable resources",
    )?;
    unset(
        &spec.mesos_spec,
        &f("mesos_spec"),
        "Drover runs commands with its own executor",
    )?;
    unset(
        &spec.host_ports,
        &f("host_ports"),
        "declare ports in containers[].ports",
    )?;
    let containers = spec
        .containers
        .iter()
        .enumerate()
        .map(|(i, c)| container_from_proto(c, &format!("{at}.containers[{i}]")))
        .collect::<Result<Vec<_>>>()?;
    let constraint = spec
        .constraint
        .as_ref()
        .map(|c| constraint_from_proto(c, &f("constraint")))
        .transpose()?;
    Ok(PodSpec {
        labels: labels_from(&spec.labels),
        containers,
        restart_policy: spec.restart_policy.map(|r| RestartPolicy {
            max_failures: r.max_failures,
            initial_delay_secs: None,
            max_delay_secs: None,
        }),
        kill_grace_period_seconds: Some(spec.kill_grace_period_seconds).filter(|s| *s > 0),
        constraint,
        soft_constraint: None,
        placement: None,
        runtime_limit_secs: None,
        retry_on_runtime_limit: None,
    })
}

/// A pod spec as Peloton writes it.
pub fn pod_spec_to_proto(spec: &PodSpec) -> pod::PodSpec {
    pod::PodSpec {
        labels: labels_to(&spec.labels),
        containers: spec.containers.iter().map(container_to_proto).collect(),
        constraint: spec.constraint.as_ref().map(constraint_to_proto),
        restart_policy: spec.restart_policy.map(|r| pod::RestartPolicy {
            max_failures: r.max_failures,
        }),
        kill_grace_period_seconds: spec.kill_grace_period_seconds.unwrap_or(0),
        ..pod::PodSpec::default()
    }
}

fn container_from_proto(c: &pod::ContainerSpec, at: &str) -> Result<ContainerSpec> {
    let f = |name: &str| format!("{at}.{name}");
    let image = image_from_proto(c, at)?;
    unset(
        &c.executor,
        &f("executor"),
        "Drover runs every pod with its own executor",
    )?;
    unset(
        &c.entrypoint,
        &f("entrypoint"),
        "give the command in `command`",
    )?;
    unset(
        &c.volume_mounts,
        &f("volume_mounts"),
        "Drover runs no stateful jobs",
    )?;
    let resource = c
        .resource
        .map(|r| {
            unset(
                &r.fd_limit,
                &f("resource.fd_limit"),
                "no file descriptor limit",
            )?;
            Ok::<_, ApiError>(ResourceSpec {
                cpu_limit: r.cpu_limit,
                mem_limit_mb: r.mem_limit_mb,
                disk_limit_mb: r.disk_limit_mb,
                gpu_limit: r.gpu_limit,
            })
        })
        .transpose()?;
    let mut command = c
        .command
        .as_ref()
        .map(|cmd| command_from_proto(cmd, &f("command")))
        .transpose()?;
    if !c.environment.is_empty() {
        let cmd = command.get_or_insert_with(CommandSpec::default);
        let env = cmd.environment.get_or_insert_with(EnvironmentSpec::default);
        env.variables
            .extend(c.environment.iter().map(|e| VariableSpec {
                name: e.name.clone(),
                value: e.value.clone(),
            }));
    }
    let ports = c
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            unset(
                &p.template_name,
                &format!("{at}.ports[{i}].template_name"),
                "ports reach the task by env_name",
            )?;
            Ok(PortSpec {
                name: p.name.clone(),
                value: p.value,
                env_name: p.env_name.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let liveness_check = c
        .liveness_check
        .as_ref()
        .map(|h| health_from_proto(h, &f("liveness_check")))
        .transpose()?;
    let readiness_check = c
        .readiness_check
        .as_ref()
        .map(|h| health_from_proto(h, &f("readiness_check")))
        .transpose()?;
    Ok(ContainerSpec {
        name: c.name.clone(),
        resource,
        image,
        command,
        ports,
        liveness_check,
        readiness_check,
    })
}

/// The image a container runs in: `image` (a Docker reference), or a
/// Mesos `ContainerInfo` in `container` whose only content is a DOCKER
/// `mesos.image` (passed through as the same reference). Anything else in
/// `container` is refused by path, never dropped: Drover's executor honours
/// the image and nothing else of a ContainerInfo given this way. Shown back
/// as `image`.
fn image_from_proto(c: &pod::ContainerSpec, at: &str) -> Result<Option<String>> {
    let from_image = (!c.image.is_empty()).then(|| c.image.clone());
    let Some(info) = &c.container else {
        return Ok(from_image);
    };
    let field = format!("{at}.container");
    let mesos_type = mesos::container_info::Type::Mesos as i32;
    if info.r#type != mesos_type {
        return Err(refuse(
            &format!("{field}.type"),
            "only a MESOS container (its image) is passed to the executor",
        ));
    }
    let only_image = mesos::ContainerInfo {
        r#type: mesos_type,
        mesos: info.mesos.clone(),
        ..Default::default()
    };
    if *info != only_image {
        return Err(refuse(
            &field,
            "only `type` MESOS and `mesos.image` are passed to the executor",
        ));
    }
    let image = info.mesos.as_ref().and_then(|m| m.image.as_ref());
    let Some(image) = image else {
        return Ok(from_image);
    };
    let docker = image
        .docker
        .as_ref()
        .filter(|_| image.r#type == mesos::image::Type::Docker as i32);
    let Some(docker) = docker else {
        return Err(refuse(
            &format!("{field}.mesos.image.type"),
            "Drover's jobs name DOCKER images (a `name[:tag]` or `name@sha256:` reference)",
        ));
    };
    if docker.credential.is_some() || docker.config.is_some() {
        return Err(refuse(
            &format!("{field}.mesos.image.docker"),
            "images come from the agents' local image store, which needs no credentials",
        ));
    }
    match from_image {
        Some(named) if named != docker.name => Err(ApiError::invalid(
            &format!("{at}.image"),
            format!(
                "names {named:?} but container.mesos.image names {:?}: give one",
                docker.name
            ),
        )),
        _ => Ok(Some(docker.name.clone())),
    }
}

fn container_to_proto(c: &ContainerSpec) -> pod::ContainerSpec {
    pod::ContainerSpec {
        name: c.name.clone(),
        image: c.image.clone().unwrap_or_default(),
        resource: c.resource.map(|r| pod::ResourceSpec {
            cpu_limit: r.cpu_limit,
            mem_limit_mb: r.mem_limit_mb,
            disk_limit_mb: r.disk_limit_mb,
            fd_limit: 0,
            gpu_limit: r.gpu_limit,
        }),
        command: c.command.as_ref().map(command_to_proto),
        liveness_check: c.liveness_check.as_ref().map(health_to_proto),
        readiness_check: c.readiness_check.as_ref().map(health_to_proto),
        ports: c
            .ports
            .iter()
            .map(|p| pod::PortSpec {
                name: p.name.clone(),
                value: p.value,
                env_name: p.env_name.clone(),
                template_name: String::new(),
                r#type: if p.value != 0 {
                    pod::port_spec::PortType::Static as i32
                } else {
                    pod::port_spec::PortType::DynamicEnvVar as i32
                },
            })
            .collect(),
        ..pod::ContainerSpec::default()
    }
}

fn command_from_proto(cmd: &mesos::CommandInfo, at: &str) -> Result<CommandSpec> {
    let variables = match &cmd.environment {
        None => None,
        Some(env) => Some(EnvironmentSpec {
            variables: env
                .variables
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let field = format!("{at}.environment.variables[{i}]");
                    let plain = mesos::environment::variable::Type::Value as i32;
                    if v.r#type.is_some_and(|t| t != plain) || v.secret.is_some() {
                        return Err(refuse(&field, "only VALUE variables are passed"));
                    }
                    Ok(VariableSpec {
                        name: v.name.clone(),
                        value: v.value.clone().unwrap_or_default(),
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        }),
    };
    let uris = cmd
        .uris
        .iter()
        .enumerate()
        .map(|(i, u)| {
            let field = format!("{at}.uris[{i}]");
            unset(
                &u.cache,
                &format!("{field}.cache"),
                "the fetcher does not cache",
            )?;
            unset(
                &u.output_file,
                &format!("{field}.output_file"),
                "files keep their URI's name",
            )?;
            Ok(UriSpec {
                value: u.value.clone(),
                executable: u.executable,
                extract: u.extract,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(CommandSpec {
        value: cmd.value.clone(),
        shell: cmd.shell,
        arguments: cmd.arguments.clone(),
        environment: variables,
        uris,
        user: cmd.user.clone(),
    })
}

fn command_to_proto(cmd: &CommandSpec) -> mesos::CommandInfo {
    mesos::CommandInfo {
        uris: cmd
            .uris
            .iter()
            .map(|u| mesos::command_info::Uri {
                value: u.value.clone(),
                executable: u.executable,
                extract: u.extract,
                cache: None,
                output_file: None,
            })
            .collect(),
        environment: cmd.environment.as_ref().map(|e| mesos::Environment {
            variables: e
                .variables
                .iter()
                .map(|v| mesos::environment::Variable {
                    name: v.name.clone(),
                    r#type: None,
                    value: Some(v.value.clone()),
                    secret: None,
                })
                .collect(),
        }),
        shell: cmd.shell,
        value: cmd.value.clone(),
        arguments: cmd.arguments.clone(),
        user: cmd.user.clone(),
    }
}

fn health_from_proto(h: &pod::HealthCheckSpec, at: &str) -> Result<HealthCheckSpec> {
    let f = |name: &str| format!("{at}.{name}");
    unset(
        &h.success_threshold,
        &f("success_threshold"),
        "a liveness check needs no successes to start",
    )?;
    unset(&h.command, &f("command"), "give the check in command_check")?;
    let check_type = match ProtoCheckType::try_from(h.r#type) {
        Ok(ProtoCheckType::Command) => HealthCheckType::Command,
        Ok(ProtoCheckType::Http) => HealthCheckType::Http,
        _ => {
            return Err(ApiError::invalid(
                &f("type"),
                "must be HEALTH_CHECK_TYPE_COMMAND or HEALTH_CHECK_TYPE_HTTP",
            ))
        }
    };
    let http = match (&h.http_check, &h.http_get) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                &f("http_get"),
                "give one of http_check and http_get",
            ))
        }
        (Some(c), None) => Some(HttpGet {
            scheme: Some(c.scheme.clone()).filter(|s| !s.is_empty()),
            port: c.port,
            path: Some(c.path.clone()).filter(|s| !s.is_empty()),
        }),
        (None, Some(g)) => {
            unset(
                &g.http_headers,
                &f("http_get.http_headers"),
                "the check sends no headers",
            )?;
            Some(HttpGet {
                scheme: Some(g.scheme.clone()).filter(|s| !s.is_empty()),
                port: g.port,
                path: Some(g.path.clone()).filter(|s| !s.is_empty()),
            })
        }
        (None, None) => None,
    };
    Ok(HealthCheckSpec {
        enabled: h.enabled,
        initial_interval_secs: h.initial_interval_secs,
        interval_secs: h.interval_secs,
        max_consecutive_failures: h.max_consecutive_failures,
        timeout_secs: h.timeout_secs,
        check_type,
        command_check: h.command_check.as_ref().map(|c| CommandCheck {
            command: c.command.clone(),
            unshare_environments: c.unshare_environments,
        }),
        http_get: http,
        tcp_socket: None,
    })
}

fn health_to_proto(h: &HealthCheckSpec) -> pod::HealthCheckSpec {
    let check_type = match h.check_type {
        HealthCheckType::Command => ProtoCheckType::Command,
        HealthCheckType::Http => ProtoCheckType::Http,
        // Peloton has no TCP check; shown as unknown (the JSON API shows it).
        HealthCheckType::Tcp => ProtoCheckType::Unknown,
    };
    pod::HealthCheckSpec {
        enabled: h.enabled,
        initial_interval_secs: h.initial_interval_secs,
        interval_secs: h.interval_secs,
        max_consecutive_failures: h.max_consecutive_failures,
        timeout_secs: h.timeout_secs,
        r#type: check_type as i32,
        command_check: h
            .command_check
            .as_ref()
            .map(|c| pod::health_check_spec::CommandCheck {
                command: c.command.clone(),
                unshare_environments: c.unshare_environments,
            }),
        http_check: h
            .http_get
            .as_ref()
            .map(|g| pod::health_check_spec::HttpCheck {
                scheme: g.scheme.clone().unwrap_or_default(),
                port: g.port,
                path: g.path.clone().unwrap_or_default(),
            }),
        ..pod::HealthCheckSpec::default()
    }
}

fn constraint_from_proto(c: &pod::Constraint, at: &str) -> Result<Constraint> {
    let operands = |list: Option<&Vec<pod::Constraint>>, field: &str| {
        list.map(|cs| {
            cs.iter()
                .enumerate()
                .map(|(i, c)| constraint_from_proto(c, &format!("{at}.{field}.constraints[{i}]")))
                .collect::<Result<Vec<_>>>()
                .map(|constraints| Constraints { constraints })
        })
        .transpose()
    };
    match ProtoConstraintType::try_from(c.r#type) {
        Ok(ProtoConstraintType::ConstraintTypeLabel) => {
            let lc = c.label_constraint.as_ref().ok_or_else(|| {
                ApiError::invalid(
                    &format!("{at}.label_constraint"),
                    "is required for CONSTRAINT_TYPE_LABEL",
                )
            })?;
            Ok(Constraint {
                constraint_type: ConstraintType::Label,
                label_constraint: Some(label_constraint_from_proto(
                    lc,
                    &format!("{at}.label_constraint"),
                )?),
                and_constraint: None,
                or_constraint: None,
            })
        }
        Ok(ProtoConstraintType::ConstraintTypeAnd) => Ok(Constraint {
            constraint_type: ConstraintType::And,
            label_constraint: None,
            and_constraint: operands(
                c.and_constraint.as_ref().map(|a| &a.constraints),
                "and_constraint",
            )?,
            or_constraint: None,
        }),
        Ok(ProtoConstraintType::ConstraintTypeOr) => Ok(Constraint {
            constraint_type: ConstraintType::Or,
            label_constraint: None,
            and_constraint: None,
            or_constraint: operands(
                c.or_constraint.as_ref().map(|a| &a.constraints),
                "or_constraint",
            )?,
        }),
        _ => Err(ApiError::invalid(
            &format!("{at}.type"),
            "must be CONSTRAINT_TYPE_LABEL, CONSTRAINT_TYPE_AND or CONSTRAINT_TYPE_OR",
        )),
    }
}

fn label_constraint_from_proto(lc: &pod::LabelConstraint, at: &str) -> Result<LabelConstraint> {
    let kind = match ProtoKind::try_from(lc.kind) {
        Ok(ProtoKind::LabelConstraintKindPod) => LabelKind::Pod,
        Ok(ProtoKind::LabelConstraintKindHost) => LabelKind::Host,
        _ => {
            return Err(ApiError::invalid(
                &format!("{at}.kind"),
                "must be LABEL_CONSTRAINT_KIND_POD or LABEL_CONSTRAINT_KIND_HOST",
            ))
        }
    };
    let condition = match ProtoCondition::try_from(lc.condition) {
        Ok(ProtoCondition::LabelConstraintConditionLessThan) => Condition::LessThan,
        Ok(ProtoCondition::LabelConstraintConditionEqual) => Condition::Equal,
        Ok(ProtoCondition::LabelConstraintConditionGreaterThan) => Condition::GreaterThan,
        _ => {
            return Err(ApiError::invalid(
                &format!("{at}.condition"),
                "must be LABEL_CONSTRAINT_CONDITION_LESS_THAN, _EQUAL or _GREATER_THAN",
            ))
        }
    };
    let label = lc
        .label
        .as_ref()
        .ok_or_else(|| ApiError::invalid(&format!("{at}.label"), "is required"))?;
    Ok(LabelConstraint {
        kind,
        condition,
        label: label_from(label),
        requirement: lc.requirement,
    })
}

fn constraint_to_proto(c: &Constraint) -> pod::Constraint {
    let list = |cs: &Option<Constraints>| {
        cs.as_ref()
            .map(|cs| cs.constraints.iter().map(constraint_to_proto).collect())
            .unwrap_or_default()
    };
    let (kind, and, or) = match c.constraint_type {
        ConstraintType::Label => (ProtoConstraintType::ConstraintTypeLabel, None, None),
        ConstraintType::And => (
            ProtoConstraintType::ConstraintTypeAnd,
            Some(pod::AndConstraint {
                constraints: list(&c.and_constraint),
            }),
            None,
        ),
        ConstraintType::Or => (
            ProtoConstraintType::ConstraintTypeOr,
            None,
            Some(pod::OrConstraint {
                constraints: list(&c.or_constraint),
            }),
        ),
    };
    pod::Constraint {
        r#type: kind as i32,
        label_constraint: c.label_constraint.as_ref().map(|lc| pod::LabelConstraint {
            kind: match lc.kind {
                LabelKind::Pod => ProtoKind::LabelConstraintKindPod,
                LabelKind::Host => ProtoKind::LabelConstraintKindHost,
            } as i32,
            condition: match lc.condition {
                Condition::LessThan => ProtoCondition::LabelConstraintConditionLessThan,
                Condition::Equal => ProtoCondition::LabelConstraintConditionEqual,
                Condition::GreaterThan => ProtoCondition::LabelConstraintConditionGreaterThan,
            } as i32,
            label: Some(label_to(&lc.label)),
            requirement: lc.requirement,
        }),
        and_constraint: and,
        or_constraint: or,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::api::error::Code;

    /// A literal Peloton stateless JobSpec, with the seed's fields and
    /// enum spellings.
    pub(crate) fn peloton_spec() -> stateless::JobSpec {
        let label = |k: &str, v: &str| peloton::Label {
            key: k.into(),
            value: v.into(),
        };
        let container = pod::ContainerSpec {
            name: "web".into(),
            resource: Some(pod::ResourceSpec {
                cpu_limit: 0.5,
                mem_limit_mb: 64.0,
                disk_limit_mb: 10.0,
                fd_limit: 0,
                gpu_limit: 0.0,
            }),
            command: Some(mesos::CommandInfo {
                value: Some("sleep 1000".into()),
                shell: Some(true),
                environment: Some(mesos::Environment {
                    variables: vec![mesos::environment::Variable {
                        name: "GREETING".into(),
                        r#type: None,
                        value: Some("hello".into()),
                        secret: None,
                    }],
                }),
                ..Default::default()
            }),
            liveness_check: Some(pod::HealthCheckSpec {
                enabled: true,
                initial_interval_secs: 1,
                interval_secs: 2,
                max_consecutive_failures: 3,
                timeout_secs: 4,
                r#type: ProtoCheckType::Command as i32,
                command_check: Some(pod::health_check_spec::CommandCheck {
                    command: "true".into(),
                    unshare_environments: false,
                }),
                ..Default::default()
            }),
            readiness_check: Some(pod::HealthCheckSpec {
                enabled: true,
                initial_interval_secs: 2,
                interval_secs: 1,
                timeout_secs: 3,
                r#type: ProtoCheckType::Http as i32,
                http_check: Some(pod::health_check_spec::HttpCheck {
                    scheme: "http".into(),
                    port: 0,
                    path: "/ready".into(),
                }),
                ..Default::default()
            }),
            ports: vec![pod::PortSpec {
                name: "http".into(),
                value: 0,
                env_name: "PORT_HTTP".into(),
                template_name: String::new(),
                r#type: pod::port_spec::PortType::DynamicEnvVar as i32,
            }],
            ..Default::default()
        };
        let host_constraint = pod::Constraint {
            r#type: ProtoConstraintType::ConstraintTypeLabel as i32,
            label_constraint: Some(pod::LabelConstraint {
                kind: ProtoKind::LabelConstraintKindHost as i32,
                condition: ProtoCondition::LabelConstraintConditionEqual as i32,
                label: Some(label("zone", "a")),
                requirement: 1,
            }),
            ..Default::default()
        };
        let pod_constraint = pod::Constraint {
            r#type: ProtoConstraintType::ConstraintTypeLabel as i32,
            label_constraint: Some(pod::LabelConstraint {
                kind: ProtoKind::LabelConstraintKindPod as i32,
                condition: ProtoCondition::LabelConstraintConditionLessThan as i32,
                label: Some(label("app", "web")),
                requirement: 1,
            }),
            ..Default::default()
        };
        stateless::JobSpec {
            name: "web".into(),
            owner: "alice".into(),
            owning_team: "infra".into(),
            ldap_groups: vec!["infra".into()],
            description: "the web tier".into(),
            labels: vec![label("tier", "frontend")],
            instance_count: 3,
            sla: Some(stateless::SlaSpec {
                priority: 2,
                preemptible: true,
                revocable: false,
                maximum_unavailable_instances: 1,
            }),
            default_spec: Some(pod::PodSpec {
                labels: vec![label("app", "web")],
                containers: vec![container],
                constraint: Some(pod::Constraint {
                    r#type: ProtoConstraintType::ConstraintTypeAnd as i32,
                    and_constraint: Some(pod::AndConstraint {
                        constraints: vec![host_constraint, pod_constraint],
                    }),
                    ..Default::default()
                }),
                restart_policy: Some(pod::RestartPolicy { max_failures: 3 }),
                kill_grace_period_seconds: 5,
                ..Default::default()
            }),
            instance_spec: [(
                2,
                pod::PodSpec {
                    labels: vec![label("app", "web-canary")],
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
            respool_id: Some(peloton::ResourcePoolId {
                value: "/infra/web".into(),
            }),
            revision: None,
        }
    }

    #[test]
    fn a_literal_peloton_job_spec_round_trips() {
        let proto = peloton_spec();
        let spec = job_spec_from_proto(&proto, "spec").unwrap();
        assert_eq!(spec.job_type, JobType::Service);
        assert_eq!(spec.respool_id.as_deref(), Some("/infra/web"));
        let pod = spec.pod_spec(0);
        assert_eq!(pod.labels[0].key, "app");
        let check = pod.liveness_check().unwrap();
        assert_eq!(check.check_type, HealthCheckType::Command);
        assert_eq!(check.command_check.as_ref().unwrap().command, "true");
        let and = spec.default_spec.constraint.as_ref().unwrap();
        assert_eq!(and.operands().len(), 2);
        assert_eq!(
            and.operands()[0].label_constraint.as_ref().unwrap().kind,
            LabelKind::Host
        );
        assert_eq!(spec.pod_spec(2).labels[0].value, "web-canary");
        assert_eq!(job_spec_to_proto(&spec), proto);
        // And Drover's spec passes Drover's own rules.
        crate::model::validate::validate_job(&spec, &Default::default(), "spec").unwrap();
    }

    #[test]
    fn a_peloton_pods_labels_and_liveness_check_reach_the_mesos_task() {
        use crate::mesos::task_info::{task_info, ExecutorMode};
        use crate::model::ids::{InstanceId, JobId, TaskId};
        let spec = job_spec_from_proto(&peloton_spec(), "spec").unwrap();
        let task = TaskId::new(InstanceId::new(JobId("j".into()), 0), 0);
        let info = task_info(
            &task,
            &spec.pod_spec(0),
            None,
            &[],
            "a1",
            None,
            &[("http".into(), 31000)],
            &ExecutorMode::Command,
            &Default::default(),
        );
        let labels: Vec<_> = info
            .labels
            .unwrap()
            .labels
            .into_iter()
            .map(|l| (l.key, l.value.unwrap_or_default()))
            .collect();
        assert_eq!(labels, [("app".to_owned(), "web".to_owned())]);
        let check = info.health_check.unwrap();
        assert_eq!(
            check.r#type,
            Some(mesos::health_check::Type::Command as i32)
        );
        assert_eq!(check.command.unwrap().value.as_deref(), Some("true"));
        assert_eq!(check.consecutive_failures, Some(3));
        // The readiness check is a Mesos check (no kill, only a report),
        // on the pod's first port.
        let ready = info.check.unwrap();
        assert_eq!(ready.r#type, Some(mesos::check_info::Type::Http as i32));
        let http = ready.http.unwrap();
        assert_eq!((http.port, http.path.as_deref()), (31000, Some("/ready")));
        assert_eq!(
            (
                ready.delay_seconds,
                ready.interval_seconds,
                ready.timeout_seconds
            ),
            (Some(2.0), Some(1.0), Some(3.0))
        );
    }

    fn image_container(name: &str) -> mesos::ContainerInfo {
        mesos::ContainerInfo {
            r#type: mesos::container_info::Type::Mesos as i32,
            mesos: Some(mesos::container_info::MesosInfo {
                image: Some(mesos::Image {
                    r#type: mesos::image::Type::Docker as i32,
                    docker: Some(mesos::image::Docker {
                        name: name.into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }
    }

    /// The image the Mesos task built from `proto` asks its executor for.
    fn task_image(proto: &stateless::JobSpec) -> Option<String> {
        use crate::mesos::task_info::{task_info, ExecutorMode};
        use crate::model::ids::{InstanceId, JobId, TaskId};
        let spec = job_spec_from_proto(proto, "spec").unwrap();
        crate::model::validate::validate_job(&spec, &Default::default(), "spec").unwrap();
        let task = TaskId::new(InstanceId::new(JobId("j".into()), 0), 0);
        let info = task_info(
            &task,
            &spec.pod_spec(0),
            None,
            &[],
            "a1",
            None,
            &[("http".into(), 31000)],
            &ExecutorMode::drover("/x/drover-executor".into()),
            &Default::default(),
        );
        let container = info.container?;
        assert_eq!(container.r#type, mesos::container_info::Type::Mesos as i32);
        let image = container.mesos?.image?;
        assert_eq!(image.r#type, mesos::image::Type::Docker as i32);
        Some(image.docker?.name)
    }

    #[test]
    fn a_peloton_image_reaches_the_mesos_task_and_round_trips() {
        let mut proto = peloton_spec();
        assert_eq!(task_image(&proto), None, "no image: none asked for");
        proto.default_spec.as_mut().unwrap().containers[0].image = "drover-test/busybox:1".into();
        assert_eq!(task_image(&proto).as_deref(), Some("drover-test/busybox:1"));
        let spec = job_spec_from_proto(&proto, "spec").unwrap();
        assert_eq!(job_spec_to_proto(&spec), proto, "shown back as `image`");
    }

    #[test]
    fn a_container_info_with_a_docker_image_is_passed_through() {
        let mut proto = peloton_spec();
        proto.default_spec.as_mut().unwrap().containers[0].container =
            Some(image_container("drover-test/busybox-entry:1"));
        assert_eq!(
            task_image(&proto).as_deref(),
            Some("drover-test/busybox-entry:1")
        );
        // The same name in both places is one image, not a conflict.
        proto.default_spec.as_mut().unwrap().containers[0].image =
            "drover-test/busybox-entry:1".into();
        assert_eq!(
            task_image(&proto).as_deref(),
            Some("drover-test/busybox-entry:1")
        );
    }

    #[test]
    fn container_environment_joins_the_command_environment() {
        let mut proto = peloton_spec();
        let pod = proto.default_spec.as_mut().unwrap();
        pod.containers[0].environment = vec![pod::Environment {
            name: "EXTRA".into(),
            value: "1".into(),
        }];
        let spec = job_spec_from_proto(&proto, "spec").unwrap();
        let vars = &spec.default_spec.containers[0]
            .command
            .as_ref()
            .unwrap()
            .environment
            .as_ref()
            .unwrap()
            .variables;
        let names: Vec<_> = vars.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["GREETING", "EXTRA"]);
    }

    type Edit = Box<dyn FnOnce(&mut stateless::JobSpec)>;

    fn refused(edit: impl FnOnce(&mut stateless::JobSpec)) -> ApiError {
        let mut proto = peloton_spec();
        edit(&mut proto);
        job_spec_from_proto(&proto, "spec").unwrap_err()
    }

    #[test]
    fn fields_drover_cannot_honour_are_invalid_naming_the_field() {
        let cases: Vec<(Edit, &str)> =
            vec![
            (
                Box::new(|s| s.default_spec = None),
                "spec.default_spec",
            ),
            (
                Box::new(|s| s.sla.as_mut().unwrap().revocable = true),
                "spec.sla.revocable",
            ),
            (
                Box::new(|s| {
                    let p = s.default_spec.as_mut().unwrap();
                    p.init_containers = p.containers.clone();
                }),
                "spec.default_spec.init_containers",
            ),
            (
                Box::new(|s| {
                    s.default_spec.as_mut().unwrap().containers[0].container =
                        Some(mesos::ContainerInfo {
                            r#type: mesos::container_info::Type::Docker as i32,
                            ..Default::default()
                        })
                }),
                "spec.default_spec.containers[0].container.type",
            ),
            (
                Box::new(|s| {
                    let mut info = image_container("busybox:1");
                    info.hostname = Some("h".into());
                    s.default_spec.as_mut().unwrap().containers[0].container = Some(info);
                }),
                "spec.default_spec.containers[0].container",
            ),
            (
                Box::new(|s| {
                    let mut info = image_container("busybox:1");
                    let image = info.mesos.as_mut().unwrap().image.as_mut().unwrap();
                    image.r#type = mesos::image::Type::Appc as i32;
                    s.default_spec.as_mut().unwrap().containers[0].container = Some(info);
                }),
                "spec.default_spec.containers[0].container.mesos.image.type",
            ),
            (
                Box::new(|s| {
                    let c = &mut s.default_spec.as_mut().unwrap().containers[0];
                    c.image = "busybox:2".into();
                    c.container = Some(image_container("busybox:1"));
                }),
                "spec.default_spec.containers[0].image",
            ),
            (
                Box::new(|s| {
                    let c = &mut s.default_spec.as_mut().unwrap().containers[0];
                    c.readiness_check = c.liveness_check.clone();
                    c.readiness_check.as_mut().unwrap().r#type = 0;
                }),
                "spec.default_spec.containers[0].readiness_check.type",
            ),
            (
                Box::new(|s| {
                    let c = &mut s.default_spec.as_mut().unwrap().containers[0];
                    c.liveness_check.as_mut().unwrap().r#type = 0;
                }),
                "spec.default_spec.containers[0].liveness_check.type",
            ),
            (
                Box::new(|s| {
                    let c = s.default_spec.as_mut().unwrap().constraint.as_mut().unwrap();
                    let op = &mut c.and_constraint.as_mut().unwrap().constraints[1];
                    op.label_constraint.as_mut().unwrap().kind = 0;
                }),
                "spec.default_spec.constraint.and_constraint.constraints[1].label_constraint.kind",
            ),
            (
                Box::new(|s| {
                    s.instance_spec.get_mut(&2).unwrap().controller = true;
                }),
                "spec.instance_spec.2.controller",
            ),
        ];
        for (edit, field) in cases {
            let e = refused(edit);
            assert_eq!(e.code, Code::InvalidArgument);
            assert!(
                e.message.contains(field),
                "{field} not named in: {}",
                e.message
            );
        }
    }
}
