//! The job model users write: a job is `instance_count` instances (pods) of
//! `default_spec`, with per-instance overrides, as Peloton's stateless
//! `JobSpec`/`PodSpec`/`ContainerSpec` (field names kept, snake_case), plus
//! Titus' batch/service split as `type`.
//!
//! Only the shape lives here (serde, unknown fields rejected); the rules a
//! spec must satisfy are in [`super::validate`], and the translation to a
//! Mesos `TaskInfo` is in [`super::launch`].

use super::policies::unreachable::UnreachablePolicy;
use super::secret::SecretSpec;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

pub use super::spec_constraint::{
    Condition, Constraint, ConstraintType, LabelConstraint, LabelKind, PlacementSpec,
    PlacementStrategy, Preferences,
};
pub use super::spec_health::{HealthCheckSpec, HealthCheckType, PortSpec};

/// Batch instances run to completion; service instances are kept running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum JobType {
    /// Run each instance until it succeeds (retrying up to max_failures).
    #[serde(rename = "BATCH")]
    Batch,
    /// Keep every instance running; replace any that exits.
    #[serde(rename = "SERVICE")]
    Service,
}

/// A free-form key/value label (Peloton `Label`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// Label key.
    pub key: String,
    /// Label value.
    #[serde(default)]
    pub value: String,
}

/// A job's configuration (Peloton stateless `JobSpec` + `type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// BATCH or SERVICE.
    #[serde(rename = "type")]
    pub job_type: JobType,
    /// Name of the job.
    pub name: String,
    /// Owner of the job.
    #[serde(default)]
    pub owner: String,
    /// Owning team.
    #[serde(default)]
    pub owning_team: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Job labels.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Number of instances.
    pub instance_count: u32,
    /// SLA: pending runs of higher-priority jobs are placed first, and
    /// restarts keep at most `maximum_unavailable_instances` down at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sla: Option<SlaSpec>,
    /// How long a run on an unreachable agent is waited for before it is
    /// replaced and given up (see [`crate::model::policies::unreachable`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreachable_policy: Option<UnreachablePolicy>,
    /// Titus' `JobDisruptionBudget`: how many instances Drover's own
    /// disruptions (drains, restarts, updates) may take down, how fast and
    /// when ([`crate::model::policies::disruption_budget`]). The Titus face
    /// fills it from the `JobDescriptor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disruption_budget: Option<crate::model::spec_budget::DisruptionBudget>,
    /// The resource pool the job runs in (Peloton `respool_id`: a pool's id
    /// or path; the default pool when absent): its limits and fair share
    /// admit the job's pods (see [`crate::model::pool`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respool_id: Option<String>,
    /// LDAP groups with access to the job (Peloton `ldap_groups`): kept
    /// and shown back; Drover does not authorise by them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ldap_groups: Vec<String>,
    /// The pod every instance runs unless overridden.
    pub default_spec: PodSpec,
    /// Per-instance overrides, keyed by instance number; fields set here
    /// replace the default's (see [`JobSpec::pod_spec`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instance_spec: BTreeMap<u32, PodSpec>,
    /// A disabled job starts no new runs (Titus' disabled service job):
    /// an instance whose run ends, and a new instance, wait until the job
    /// is enabled again; runs already live keep running.
    #[serde(default, skip_serializing_if = "is_false")]
    pub disabled: bool,
    /// The seed message the job was created from (a Titus
    /// `JobDescriptor`), kept whole so that what Drover stores but does not
    /// act on (security profile, network, ...) is shown
    /// back as it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed_message: Option<SeedMessage>,
    /// Users' key/value pairs on single runs (Titus task attributes), by
    /// task id (`<job>-<instance>-<run>`): stored and shown, not acted on.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub task_attributes: BTreeMap<String, BTreeMap<String, String>>,
    /// Secrets every task of the job gets as files in its sandbox
    /// (Peloton `secrets`, job-wide as Peloton puts them in the default
    /// config). Shown as id and path only (see [`super::secret`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<crate::model::secret::SecretShape>)]
    pub secrets: Vec<SecretSpec>,
}

/// A protobuf message kept as it was sent: its full type name and its
/// encoding, base64 (standard alphabet, padded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SeedMessage {
    /// `com.netflix.titus.JobDescriptor`.
    pub type_name: String,
    /// The message's protobuf encoding, base64.
    pub base64: String,
}

/// Peloton `SlaSpec`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaSpec {
    /// Higher runs first.
    #[serde(default)]
    pub priority: u32,
    /// Instances that may be down at once during restarts.
    #[serde(default)]
    pub maximum_unavailable_instances: u32,
    /// Peloton `preemptible`: its pods may be preempted (killed and
    /// rescheduled) so that a pool below its share, or a higher-priority
    /// pod of its own pool, gets room.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preemptible: bool,
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// One instance's pod (Peloton `PodSpec`). In an `instance_spec` override,
/// empty lists and absent fields mean "as in default_spec".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    /// Pod labels (sent to Mesos as task labels).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<Label>,
    /// The pod's containers; exactly one is supported today.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerSpec>,
    /// What to do when the pod fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<RestartPolicy>,
    /// SIGTERM-to-SIGKILL grace period. Default 30 s as in Peloton.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_grace_period_seconds: Option<u32>,
    /// Peloton placement constraint on host attributes and the labels of
    /// pods already on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Constraint>,
    /// A constraint the pod prefers (Titus soft attribute constraints):
    /// hosts that meet it are scored first, and it never blocks a
    /// placement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soft_constraint: Option<Constraint>,
    /// Titus-style placement: unique host, exclusive host, zone balance and
    /// the scoring strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementSpec>,
    /// Titus batch runtime limit: a run still going after this long is
    /// killed with reason REASON_MAX_RUNTIME_EXCEEDED. Batch only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_limit_secs: Option<u32>,
    /// Whether a run killed by the runtime limit is retried (as a failure,
    /// within `max_failures`); otherwise the instance is left FAILED.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_on_runtime_limit: Option<bool>,
}

/// Peloton `RestartPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartPolicy {
    /// Failures a batch instance may have before it is left FAILED; 0 means
    /// no retry.
    #[serde(default)]
    pub max_failures: u32,
    /// Delay before the second retry of a run that failed; the delay
    /// doubles with every further consecutive failure. Default 1 s (see
    /// [`crate::jobs::policies::backoff`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay_secs: Option<u32>,
    /// The cap of that delay. Default 60 s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay_secs: Option<u32>,
}

/// One container (Peloton `ContainerSpec`): what to run and with what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// Container name.
    #[serde(default)]
    pub name: String,
    /// Resources.
    #[serde(default)]
    pub resource: Option<ResourceSpec>,
    /// The container image the command runs in (Peloton
    /// `ContainerSpec.image`): a Docker reference, `name[:tag]` or
    /// `name@sha256:<hex>`, resolved by drover-executor from its agent's
    /// local image store (`DROVER_IMAGE_DIR`). With an image, a command
    /// with `shell: false` and no `value` runs the image's Entrypoint and
    /// Cmd (Docker's rules); without one, the command runs on the agent's
    /// own filesystem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "drover-test/busybox:1")]
    pub image: Option<String>,
    /// The Mesos CommandInfo to run.
    #[serde(default)]
    pub command: Option<CommandSpec>,
    /// Ports to allocate from the offer (value 0 = any free port).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<PortSpec>,
    /// The liveness health check, run by the executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_check: Option<HealthCheckSpec>,
    /// The readiness check (Peloton `readiness_check`), run by the executor
    /// as a Mesos `check`: it never kills the task, it only says whether
    /// the pod serves. Rolling changes wait on it rather than on the
    /// liveness check ([`crate::model::availability`]). Its
    /// `max_consecutive_failures` means nothing (a check only reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_check: Option<HealthCheckSpec>,
}

/// Peloton `ResourceSpec`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceSpec {
    /// CPU cores.
    #[serde(default)]
    pub cpu_limit: f64,
    /// Memory in MiB.
    #[serde(default)]
    pub mem_limit_mb: f64,
    /// Disk in MiB.
    #[serde(default)]
    pub disk_limit_mb: f64,
    /// GPUs (whole numbers).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gpu_limit: f64,
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// A Mesos `CommandInfo`, in its JSON field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandSpec {
    /// The shell command (shell = true) or the program (shell = false).
    #[serde(default)]
    pub value: Option<String>,
    /// Run through `/bin/sh -c` (Mesos' default, true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<bool>,
    /// argv when shell = false.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub arguments: Vec<String>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentSpec>,
    /// URIs the agent fetches into the sandbox.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uris: Vec<UriSpec>,
    /// User to run as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// Mesos `Environment`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentSpec {
    /// The variables.
    #[serde(default)]
    pub variables: Vec<VariableSpec>,
}

/// Mesos `Environment.Variable` (VALUE type only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VariableSpec {
    /// Name.
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

/// Mesos `CommandInfo.URI`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UriSpec {
    /// The URI.
    pub value: String,
    /// chmod +x after fetching.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executable: Option<bool>,
    /// Extract archives (Mesos default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract: Option<bool>,
}

/// The default SIGTERM-to-SIGKILL grace period (Peloton's).
pub const DEFAULT_KILL_GRACE_SECONDS: u32 = 30;

impl JobSpec {
    /// The default pod and each overridden instance's pod, with their
    /// paths under `at` (`spec.default_spec`, `spec.instance_spec.3`), for
    /// checks whose errors name the field.
    pub fn pods_with_paths<'a>(
        &'a self,
        at: &'a str,
    ) -> impl Iterator<Item = (String, Cow<'a, PodSpec>)> + 'a {
        std::iter::once((
            format!("{at}.default_spec"),
            Cow::Borrowed(&self.default_spec),
        ))
        .chain(
            self.instance_spec
                .keys()
                .map(move |i| (format!("{at}.instance_spec.{i}"), self.pod_spec(*i))),
        )
    }

    /// The pod spec of `instance`: `default_spec` with the fields set in its
    /// `instance_spec` entry replacing the default's. Borrowed when the
    /// instance has no entry, as nearly all have: planning and placing a
    /// job of 10,000 instances read it per instance, and a copy each was a
    /// third of planning one.
    pub fn pod_spec(&self, instance: u32) -> Cow<'_, PodSpec> {
        let Some(over) = self.instance_spec.get(&instance) else {
            return Cow::Borrowed(&self.default_spec);
        };
        let mut spec = self.default_spec.clone();
        if !over.labels.is_empty() {
            spec.labels = over.labels.clone();
        }
        if !over.containers.is_empty() {
            spec.containers = over.containers.clone();
        }
        if let Some(constraint) = &over.constraint {
            spec.constraint = Some(constraint.clone());
        }
        if let Some(constraint) = &over.soft_constraint {
            spec.soft_constraint = Some(constraint.clone());
        }
        spec.restart_policy = over.restart_policy.or(spec.restart_policy);
        spec.kill_grace_period_seconds = over
            .kill_grace_period_seconds
            .or(spec.kill_grace_period_seconds);
        spec.placement = over.placement.or(spec.placement);
        spec.runtime_limit_secs = over.runtime_limit_secs.or(spec.runtime_limit_secs);
        spec.retry_on_runtime_limit = over.retry_on_runtime_limit.or(spec.retry_on_runtime_limit);
        Cow::Owned(spec)
    }
}

impl PodSpec {
    /// Failures allowed before a batch instance is left FAILED.
    pub fn max_failures(&self) -> u32 {
        self.restart_policy.map(|p| p.max_failures).unwrap_or(0)
    }

    /// The kill grace period in seconds.
    pub fn kill_grace_seconds(&self) -> u32 {
        self.kill_grace_period_seconds
            .unwrap_or(DEFAULT_KILL_GRACE_SECONDS)
    }

    /// The (single) container's ports.
    pub fn ports(&self) -> &[PortSpec] {
        self.containers.first().map_or(&[], |c| c.ports.as_slice())
    }

    /// The (single) container's liveness check, if enabled.
    pub fn liveness_check(&self) -> Option<&HealthCheckSpec> {
        self.containers
            .first()
            .and_then(|c| c.liveness_check.as_ref())
            .filter(|h| h.enabled)
    }

    /// The (single) container's readiness check, if enabled.
    pub fn readiness_check(&self) -> Option<&HealthCheckSpec> {
        self.containers
            .first()
            .and_then(|c| c.readiness_check.as_ref())
            .filter(|h| h.enabled)
    }

    /// The placement options, defaults if absent.
    pub fn placement_spec(&self) -> PlacementSpec {
        self.placement.unwrap_or_default()
    }

    /// The image the (single) container runs in, if it names one.
    pub fn image(&self) -> Option<&str> {
        self.containers.first().and_then(|c| c.image.as_deref())
    }

    /// The resources of the (single) container, zero if absent.
    pub fn resources(&self) -> ResourceSpec {
        self.containers
            .first()
            .and_then(|c| c.resource)
            .unwrap_or_default()
    }
}
