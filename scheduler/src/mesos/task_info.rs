//! The model's edge towards Mesos: one run of a pod spec as a `TaskInfo`,
//! and what its executor takes beside it. Two ways to run it, a config
//! choice:
//! - the Drover executor (default): the TaskInfo names an ExecutorInfo whose
//!   command is the `drover-executor` binary; since Mesos allows a task
//!   either `command` or `executor` but not both (reference 3.4.2.1), the
//!   user's CommandInfo travels in `TaskInfo.data`, protobuf-encoded.
//! - the command executor: the TaskInfo carries the CommandInfo itself (what
//!   agent-sim's simulated agents run).
//!
//! Either way the job's secrets travel as Peloton sends them to Mesos
//! ([`secret_volumes`]): a MESOS `ContainerInfo` whose volumes have source
//! SECRET, a secret of type VALUE holding the bytes, and the secret's path
//! as `container_path` (relative: inside the sandbox). A Mesos agent's
//! `volume/secret` isolator writes them there; drover-executor does the
//! same before the task starts.
//!
//! Either way the task's user ([`effective_user`]: the spec's
//! `command.user`, else the framework's) is on the task's CommandInfo, and
//! in Drover's mode on the executor's too: an agent runs an executor as its
//! CommandInfo's user (Mesos `slave.cpp`, `getExecutorInfo`/`launchExecutor`),
//! and drover-executor, when the agent leaves it root, switches to the
//! task's. Root tasks reach drover-executor only with its opt-in variable.

use crate::model::ids::TaskId;
use crate::model::resources::Resources;
use crate::model::secret::SecretSpec;
use crate::model::spec::{CommandSpec, PodSpec};
use crate::model::spec_label;
use crate::model::task_user::{effective_user, TaskUserPolicy};
use drover_proto::v1::{
    command_info, container_info, environment, executor_info, image, resource, secret, value,
    volume, CommandInfo, ContainerInfo, DurationInfo, Environment, ExecutorId, ExecutorInfo, Image,
    KillPolicy, Label, Labels, Resource, Secret, TaskInfo, Volume,
};
use prost::Message;
use std::path::PathBuf;

/// The variable that tells drover-executor it may run tasks as root; set on
/// its command only under `--allow-root-tasks`.
pub const ALLOW_ROOT_VARIABLE: &str = "DROVER_ALLOW_ROOT_TASKS";

/// How tasks are executed.
#[derive(Debug, Clone, PartialEq)]
pub enum ExecutorMode {
    /// One `drover-executor` per task.
    Drover {
        /// Path of the executor binary on the agents.
        path: PathBuf,
        /// Resources the executor itself takes, on top of the task's.
        overhead: Resources,
    },
    /// Mesos' built-in command executor.
    Command,
}

impl ExecutorMode {
    /// What the executor itself takes on top of each task.
    pub fn overhead(&self) -> Resources {
        match self {
            ExecutorMode::Drover { overhead, .. } => *overhead,
            ExecutorMode::Command => Resources::default(),
        }
    }

    /// The Drover executor at `path` with the default overhead: 0.01 cpus and
    /// 32 MiB, what a small Rust process with a tokio runtime needs.
    pub fn drover(path: PathBuf) -> Self {
        ExecutorMode::Drover {
            path,
            overhead: Resources {
                cpus: 0.01,
                mem_mib: 32.0,
                ..Default::default()
            },
        }
    }
}

/// The TaskInfo for run `task_id` of `pod` on `agent_id`. `allocation`: the
/// role the offer was made to, copied onto the resources as Mesos does.
/// `ports`: what placement gave the run's ports, in the container's port
/// order; they become a `ports` resource, and each port with an
/// `env_name` becomes that environment variable of the command. `users`:
/// the framework's user, every task's unless its spec names one.
/// `spec_label`: the job's spec as [`crate::model::spec_label`] carries it,
/// the task's last label. `secrets`: the job's, as files in the sandbox.
#[allow(clippy::too_many_arguments)] // each is one fact of the launch; a struct would only rename them
pub fn task_info(
    task_id: &TaskId,
    pod: &PodSpec,
    spec_label: Option<&str>,
    secrets: &[SecretSpec],
    agent_id: &str,
    allocation: Option<&str>,
    ports: &[(String, u32)],
    mode: &ExecutorMode,
    users: &TaskUserPolicy,
) -> TaskInfo {
    let r = pod.resources();
    let mut task_resources = scalars(
        &[
            ("cpus", r.cpu_limit),
            ("mem", r.mem_limit_mb),
            ("disk", r.disk_limit_mb),
            ("gpus", r.gpu_limit),
        ],
        allocation,
    );
    task_resources.extend(port_resource(ports, allocation));
    let mut command = pod
        .containers
        .first()
        .and_then(|c| c.command.as_ref())
        .map(command_info)
        .unwrap_or_default();
    let user = effective_user(pod, &users.default_user).to_owned();
    command.user = Some(user.clone());
    let port_vars: Vec<_> = pod
        .ports()
        .iter()
        .zip(ports)
        .filter(|(spec, _)| !spec.env_name.is_empty())
        .map(|(spec, (_, port))| environment::Variable {
            name: spec.env_name.clone(),
            value: Some(port.to_string()),
            ..Default::default()
        })
        .collect();
    if !port_vars.is_empty() {
        command
            .environment
            .get_or_insert_with(Environment::default)
            .variables
            .extend(port_vars);
    }
    let mut labels: Vec<Label> = pod
        .labels
        .iter()
        .map(|l| Label {
            key: l.key.clone(),
            value: Some(l.value.clone()),
        })
        .collect();
    if let Some(spec) = spec_label {
        labels.push(Label {
            key: spec_label::KEY.to_owned(),
            value: Some(spec.to_owned()),
        });
    }
    let labels = (!labels.is_empty()).then_some(Labels { labels });
    let grace_ns = i64::from(pod.kill_grace_seconds()) * 1_000_000_000;
    let mut info = TaskInfo {
        name: task_id.instance.pod_name(),
        task_id: drover_proto::v1::TaskId {
            value: task_id.to_string(),
        },
        agent_id: drover_proto::v1::AgentId {
            value: agent_id.to_owned(),
        },
        resources: task_resources,
        labels,
        kill_policy: Some(KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: grace_ns,
            }),
        }),
        health_check: pod
            .liveness_check()
            .map(|h| Box::new(super::health_check::health_check(h, ports))),
        check: pod
            .readiness_check()
            .map(|c| Box::new(super::readiness_check::check_info(c, ports))),
        container: container_info(pod.image(), secrets),
        ..Default::default()
    };
    match mode {
        ExecutorMode::Command => info.command = Some(command),
        ExecutorMode::Drover { path, overhead } => {
            let path = path.to_string_lossy().into_owned();
            let mut variables = vec![environment::Variable {
                name: "DROVER_EXECUTOR_MODE".into(),
                value: Some("command".into()),
                ..Default::default()
            }];
            if users.allow_root {
                variables.push(environment::Variable {
                    name: ALLOW_ROOT_VARIABLE.into(),
                    value: Some("true".into()),
                    ..Default::default()
                });
            }
            info.data = Some(command.encode_to_vec().into());
            info.executor = Some(Box::new(ExecutorInfo {
                r#type: Some(executor_info::Type::Custom as i32),
                executor_id: ExecutorId {
                    value: task_id.to_string(),
                },
                name: Some("drover-executor".into()),
                command: Some(CommandInfo {
                    value: Some(path.clone()),
                    shell: Some(false),
                    arguments: vec![path],
                    // One executor per task (its id is the task id), so it
                    // runs as a command executor: it exits with its task
                    // and gives its resources back, where a custom-mode
                    // executor would idle until the framework shut it down.
                    environment: Some(Environment { variables }),
                    user: Some(user),
                    ..Default::default()
                }),
                resources: scalars(
                    &[("cpus", overhead.cpus), ("mem", overhead.mem_mib)],
                    allocation,
                ),
                ..Default::default()
            }));
        }
    }
    info
}

/// The task's MESOS `ContainerInfo`, when it needs one: the image it runs
/// in (`mesos.image` of type DOCKER, the reference as written, as Peloton
/// and Mesos' own frameworks ask for one) and the secret volumes.
fn container_info(image_name: Option<&str>, secrets: &[SecretSpec]) -> Option<Box<ContainerInfo>> {
    if image_name.is_none() && secrets.is_empty() {
        return None;
    }
    Some(Box::new(ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        volumes: secret_volumes(secrets),
        mesos: image_name.map(|name| container_info::MesosInfo {
            image: Some(Image {
                r#type: image::Type::Docker as i32,
                docker: Some(image::Docker {
                    name: name.to_owned(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }))
}

/// A job's secrets as Peloton puts them in a task's container
/// (`pkg/common/util/util.go`, `CreateSecretVolume`, with the data filled in
/// at launch by `populateTaskConfigWithSecrets`): one read-only volume
/// each, source SECRET, secret type VALUE, the raw bytes as its data and
/// the secret's sandbox-relative path as `container_path`.
pub fn secret_volumes(secrets: &[SecretSpec]) -> Vec<Volume> {
    secrets
        .iter()
        .map(|s| Volume {
            mode: volume::Mode::Ro as i32,
            container_path: s.path.clone(),
            source: Some(volume::Source {
                r#type: Some(volume::source::Type::Secret as i32),
                secret: Some(Secret {
                    r#type: Some(secret::Type::Value as i32),
                    value: Some(secret::Value {
                        data: s.value.expose().to_vec().into(),
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .collect()
}

fn scalars(values: &[(&str, f64)], allocation: Option<&str>) -> Vec<Resource> {
    values
        .iter()
        .filter(|(_, v)| *v > 0.0)
        .map(|(name, v)| Resource {
            name: (*name).to_owned(),
            r#type: value::Type::Scalar as i32,
            scalar: Some(value::Scalar {
                // Mesos keeps three decimals; round so sums match the offer's.
                value: (v * 1000.0).round() / 1000.0,
            }),
            allocation_info: allocation.map(|role| resource::AllocationInfo {
                role: Some(role.to_owned()),
            }),
            ..Default::default()
        })
        .collect()
}

/// The run's ports as one `ports` resource, a range per port.
fn port_resource(ports: &[(String, u32)], allocation: Option<&str>) -> Option<Resource> {
    if ports.is_empty() {
        return None;
    }
    let mut sorted: Vec<u64> = ports.iter().map(|(_, p)| u64::from(*p)).collect();
    sorted.sort_unstable();
    Some(Resource {
        name: "ports".to_owned(),
        r#type: value::Type::Ranges as i32,
        ranges: Some(value::Ranges {
            range: sorted
                .into_iter()
                .map(|p| value::Range { begin: p, end: p })
                .collect(),
        }),
        allocation_info: allocation.map(|role| resource::AllocationInfo {
            role: Some(role.to_owned()),
        }),
        ..Default::default()
    })
}

/// The user's command as a Mesos CommandInfo.
pub fn command_info(spec: &CommandSpec) -> CommandInfo {
    CommandInfo {
        uris: spec
            .uris
            .iter()
            .map(|u| command_info::Uri {
                value: u.value.clone(),
                executable: u.executable,
                extract: u.extract,
                ..Default::default()
            })
            .collect(),
        environment: spec.environment.as_ref().map(|env| Environment {
            variables: env
                .variables
                .iter()
                .map(|v| environment::Variable {
                    name: v.name.clone(),
                    value: Some(v.value.clone()),
                    ..Default::default()
                })
                .collect(),
        }),
        shell: Some(spec.shell.unwrap_or(true)),
        value: spec.value.clone(),
        arguments: spec.arguments.clone(),
        user: spec.user.clone(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::model::ids::{InstanceId, JobId};
    use crate::model::spec::JobSpec;

    fn pod() -> PodSpec {
        let spec: JobSpec = serde_json::from_value(serde_json::json!({
            "type": "BATCH", "name": "t", "instance_count": 1,
            "default_spec": {"labels": [{"key": "team", "value": "x"}], "containers": [{
                "resource": {"cpu_limit": 0.5, "mem_limit_mb": 64, "disk_limit_mb": 0},
                "command": {"value": "echo hi"}
            }]}
        }))
        .unwrap();
        spec.pod_spec(0).into_owned()
    }

    fn task() -> TaskId {
        TaskId::new(InstanceId::new(JobId("j".into()), 2), 1)
    }

    #[test]
    fn command_mode_puts_the_command_on_the_task() {
        let info = task_info(
            &task(),
            &pod(),
            None,
            &[],
            "a1",
            Some("*"),
            &[],
            &ExecutorMode::Command,
            &TaskUserPolicy::default(),
        );
        assert_eq!(info.task_id.value, "j-2-1");
        assert_eq!(info.name, "j-2");
        assert!(info.executor.is_none());
        assert_eq!(info.command.unwrap().value.as_deref(), Some("echo hi"));
        let names: Vec<_> = info.resources.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["cpus", "mem"], "zero disk is left out");
        assert_eq!(
            info.kill_policy.unwrap().grace_period.unwrap().nanoseconds,
            30_000_000_000
        );
    }

    #[test]
    fn ports_become_a_resource_and_named_environment_variables() {
        let mut pod = pod();
        pod.containers[0].ports = vec![
            crate::model::spec::PortSpec {
                name: "http".into(),
                value: 0,
                env_name: "PORT_HTTP".into(),
            },
            crate::model::spec::PortSpec {
                name: "admin".into(),
                value: 31000,
                env_name: String::new(),
            },
        ];
        let ports = [("http".to_owned(), 31005), ("admin".to_owned(), 31000)];
        let info = task_info(
            &task(),
            &pod,
            None,
            &[],
            "a1",
            Some("*"),
            &ports,
            &ExecutorMode::Command,
            &TaskUserPolicy::default(),
        );
        let resource = info.resources.iter().find(|r| r.name == "ports").unwrap();
        let ranges: Vec<_> = resource
            .ranges
            .as_ref()
            .unwrap()
            .range
            .iter()
            .map(|r| (r.begin, r.end))
            .collect();
        assert_eq!(ranges, vec![(31000, 31000), (31005, 31005)]);
        let env = info.command.unwrap().environment.unwrap();
        let vars: Vec<_> = env
            .variables
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_deref()))
            .collect();
        assert_eq!(vars, vec![("PORT_HTTP", Some("31005"))]);
    }

    #[test]
    fn drover_mode_names_the_executor_and_carries_the_command_in_data() {
        let mode = ExecutorMode::drover("/opt/drover-executor".into());
        let info = task_info(
            &task(),
            &pod(),
            None,
            &[],
            "a1",
            None,
            &[],
            &mode,
            &TaskUserPolicy::default(),
        );
        assert!(info.command.is_none());
        let executor = info.executor.unwrap();
        assert_eq!(executor.executor_id.value, "j-2-1");
        assert_eq!(
            executor.command.unwrap().value.as_deref(),
            Some("/opt/drover-executor")
        );
        let command = CommandInfo::decode(info.data.unwrap()).unwrap();
        assert_eq!(command.value.as_deref(), Some("echo hi"));
        let d = crate::model::demand::pod_demand(&pod(), &mode.overhead());
        assert!((d.cpus - 0.51).abs() < 1e-9 && (d.mem_mib - 96.0).abs() < 1e-9);
    }

    fn users(default_user: &str, allow_root: bool) -> TaskUserPolicy {
        TaskUserPolicy {
            default_user: default_user.into(),
            allow_root,
        }
    }

    fn executor_variable(info: &TaskInfo, name: &str) -> Option<String> {
        let executor = info.executor.as_ref()?;
        let env = executor.command.as_ref()?.environment.as_ref()?;
        env.variables
            .iter()
            .find(|v| v.name == name)
            .and_then(|v| v.value.clone())
    }

    #[test]
    fn the_framework_user_runs_every_task_in_both_modes() {
        let nobody = users("nobody", false);
        let info = task_info(
            &task(),
            &pod(),
            None,
            &[],
            "a1",
            None,
            &[],
            &ExecutorMode::Command,
            &nobody,
        );
        assert_eq!(info.command.unwrap().user.as_deref(), Some("nobody"));
        let mode = ExecutorMode::drover("/opt/drover-executor".into());
        let info = task_info(&task(), &pod(), None, &[], "a1", None, &[], &mode, &nobody);
        let executor_command = info.executor.as_ref().unwrap().command.clone().unwrap();
        assert_eq!(
            executor_command.user.as_deref(),
            Some("nobody"),
            "the agent runs the executor as the task's user"
        );
        let command = CommandInfo::decode(info.data.clone().unwrap()).unwrap();
        assert_eq!(command.user.as_deref(), Some("nobody"));
        assert_eq!(executor_variable(&info, ALLOW_ROOT_VARIABLE), None);
    }

    #[test]
    fn the_spec_user_overrides_and_root_needs_the_opt_in_variable() {
        let mut pod = pod();
        pod.containers[0].command.as_mut().unwrap().user = Some("alice".into());
        let mode = ExecutorMode::drover("/opt/drover-executor".into());
        let info = task_info(
            &task(),
            &pod,
            None,
            &[],
            "a1",
            None,
            &[],
            &mode,
            &users("nobody", false),
        );
        let command = CommandInfo::decode(info.data.clone().unwrap()).unwrap();
        assert_eq!(command.user.as_deref(), Some("alice"));
        assert_eq!(
            info.executor.unwrap().command.unwrap().user.as_deref(),
            Some("alice")
        );
        let root = task_info(
            &task(),
            &pod,
            None,
            &[],
            "a1",
            None,
            &[],
            &mode,
            &users("root", true),
        );
        assert_eq!(
            executor_variable(&root, ALLOW_ROOT_VARIABLE).as_deref(),
            Some("true")
        );
    }

    #[test]
    fn the_jobs_spec_is_the_tasks_last_label_after_the_pods_own() {
        let info = task_info(
            &task(),
            &pod(),
            Some("{\"version\":1}"),
            &[],
            "a1",
            None,
            &[],
            &ExecutorMode::Command,
            &TaskUserPolicy::default(),
        );
        let labels: Vec<(String, Option<String>)> = info
            .labels
            .unwrap()
            .labels
            .into_iter()
            .map(|l| (l.key, l.value))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("team".into(), Some("x".into())),
                (spec_label::KEY.into(), Some("{\"version\":1}".into())),
            ]
        );
    }

    #[test]
    fn secrets_travel_as_pelotons_secret_volumes_in_a_mesos_container() {
        use crate::model::secret::{SecretSpec, SecretValue};
        let secrets = [SecretSpec {
            id: "db".into(),
            path: "conf/db.pass".into(),
            value: SecretValue::new(b"hunter2".to_vec()),
        }];
        let info = task_info(
            &task(),
            &pod(),
            None,
            &secrets,
            "a1",
            None,
            &[],
            &ExecutorMode::drover("/bin/drover-executor".into()),
            &TaskUserPolicy::default(),
        );
        let container = info.container.as_ref().unwrap();
        assert_eq!(container.r#type, container_info::Type::Mesos as i32);
        let volume = &container.volumes[0];
        assert_eq!(volume.container_path, "conf/db.pass");
        assert_eq!(volume.mode, volume::Mode::Ro as i32);
        let source = volume.source.as_ref().unwrap();
        assert_eq!(source.r#type, Some(volume::source::Type::Secret as i32));
        let secret = source.secret.as_ref().unwrap();
        assert_eq!(secret.r#type, Some(secret::Type::Value as i32));
        assert_eq!(&secret.value.as_ref().unwrap().data[..], b"hunter2");
        // And a logged TaskInfo does not show it.
        assert!(!format!("{info:?}").contains("hunter2"));
        let none = task_info(
            &task(),
            &pod(),
            None,
            &[],
            "a1",
            None,
            &[],
            &ExecutorMode::Command,
            &TaskUserPolicy::default(),
        );
        assert!(none.container.is_none());
    }
}
