//! The edge between Mesos and the container: a `TaskInfo` becomes a
//! [`TaskPlan`] of Drover's own types (command line, environment, limits,
//! health check, kill grace). Pure; bad input is a typed [`PlanError`].

use std::path::Path;
use std::time::Duration;

use drover_proto::v1::{
    container_info, health_check, image, secret, volume, CommandInfo, DurationInfo, HealthCheck,
    Resource, TaskInfo,
};

use crate::container::ResourceLimits;
use crate::health::HealthPolicy;

/// The PATH a task gets when its environment has none (reference 4.1).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Grace between SIGTERM and SIGKILL when neither the KILL nor the task
/// names one: Mesos' command executor's legacy 3 s (reference 7.2).
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(3);

/// Why a task cannot be run as given. Answered with TASK_ERROR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// No `command` in the TaskInfo, and no CommandInfo in its `data`.
    #[error("task {task_id} has no command (this executor runs TaskInfo.command, or a CommandInfo encoded in TaskInfo.data)")]
    MissingCommand {
        /// The task.
        task_id: String,
    },
    /// `data` was given in place of `command` but is not a CommandInfo.
    #[error("task {task_id} has no command and its data is not an encoded CommandInfo: {problem}")]
    BadCommandData {
        /// The task.
        task_id: String,
        /// What the decoder found wrong.
        problem: String,
    },
    /// The command has nothing to run.
    #[error("task {task_id} has an empty command")]
    EmptyCommand {
        /// The task.
        task_id: String,
    },
    /// A SECRET volume this executor cannot deliver: a secret by reference
    /// (no secret resolver here), or a path that is not inside the sandbox.
    #[error("task {task_id} has a secret volume this executor cannot deliver: {problem}")]
    Secret {
        /// The task.
        task_id: String,
        /// What is wrong (never the secret's bytes).
        problem: String,
    },
    /// The Mesos check (`TaskInfo.check`) cannot be run.
    #[error("task {task_id} has an invalid check: {problem}")]
    Check {
        /// The task.
        task_id: String,
        /// What is wrong.
        problem: String,
    },
    /// The health check cannot be run.
    #[error("task {task_id} has an invalid health check: {problem}")]
    HealthCheck {
        /// The task.
        task_id: String,
        /// What is wrong.
        problem: &'static str,
    },
}

/// What kind of health check, with its target.
#[derive(Debug, Clone, PartialEq)]
pub enum HealthKind {
    /// Run a command in the task's container.
    Command {
        /// The command line.
        argv: Vec<String>,
        /// Extra variables.
        env: Vec<(String, String)>,
    },
    /// GET a loopback port and path.
    Http {
        /// The port.
        port: u16,
        /// The path.
        path: String,
        /// `https` scheme: TLS, the certificate not verified (as Mesos).
        https: bool,
    },
    /// Connect to a loopback port.
    Tcp {
        /// The port.
        port: u16,
    },
}

/// A health check, ready to run.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSpec {
    /// Timing.
    pub policy: HealthPolicy,
    /// What to check.
    pub kind: HealthKind,
}

/// A task in Drover's terms.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskPlan {
    /// The Mesos task id.
    pub task_id: String,
    /// Command line.
    pub argv: Vec<String>,
    /// Whole environment.
    pub env: Vec<(String, String)>,
    /// Run as this user.
    pub user: Option<String>,
    /// Resource limits.
    pub limits: ResourceLimits,
    /// Health check, if any.
    pub health: Option<HealthSpec>,
    /// The Mesos check (readiness), if any.
    pub check: Option<super::check_plan::CheckSpec>,
    /// The task's own kill grace period.
    pub kill_grace: Duration,
    /// Secrets to write into the sandbox before the task starts.
    pub secrets: Vec<SecretFile>,
    /// The image the task runs from, if it names one; `argv` is then
    /// replaced by the combination of the command with the image's
    /// configuration ([`super::image`]).
    pub image: Option<ImageRequest>,
}

/// The image a task names (`ContainerInfo` of type MESOS with
/// `mesos.image`), as asked, parsed at launch: a bad reference fails the
/// launch as a missing image does (TASK_FAILED), as in Mesos.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageAsked {
    /// `image.docker.name`: `name[:tag]` or `name@sha256:...`.
    Docker(String),
    /// `image.appc`: a name and an optional id (a digest).
    Appc {
        /// The name.
        name: String,
        /// The id.
        id: Option<String>,
    },
}

impl ImageAsked {
    /// The name as the task gave it (the `drover.image.name` label).
    pub fn as_asked(&self) -> &str {
        match self {
            ImageAsked::Docker(name) | ImageAsked::Appc { name, .. } => name,
        }
    }
}

/// An image task's command as its CommandInfo gives it, before the image's
/// Entrypoint, Cmd and User are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRequest {
    /// The image.
    pub image: ImageAsked,
    /// `CommandInfo.shell` (true when unset).
    pub shell: bool,
    /// `CommandInfo.value`.
    pub value: Option<String>,
    /// `CommandInfo.arguments`.
    pub arguments: Vec<String>,
    /// `CommandInfo.user` only: the image's User applies when the task
    /// names none, before the framework's user.
    pub user: Option<String>,
}

/// The image `task` names, if any. DOCKER containers (the Docker
/// containerizer's) and MESOS ones without an image have none.
fn image_asked(task: &TaskInfo) -> Option<ImageAsked> {
    let container = task.container.as_ref()?;
    if container.r#type != container_info::Type::Mesos as i32 {
        return None;
    }
    let image = container.mesos.as_ref()?.image.as_ref()?;
    match image::Type::try_from(image.r#type).ok()? {
        image::Type::Docker => Some(ImageAsked::Docker(image.docker.as_ref()?.name.clone())),
        image::Type::Appc => {
            let appc = image.appc.as_ref()?;
            Some(ImageAsked::Appc {
                name: appc.name.clone(),
                id: appc.id.clone().filter(|id| !id.is_empty()),
            })
        }
    }
}

/// A secret the task gets as a file (a SECRET volume of type VALUE, as
/// Peloton sends them and a Mesos agent's `volume/secret` isolator
/// delivers them). Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// Where, relative to the sandbox (checked: plain parts only).
    pub path: String,
    /// The bytes.
    pub data: bytes::Bytes,
}

impl std::fmt::Debug for SecretFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretFile")
            .field("path", &self.path)
            .field("data", &format_args!("<redacted>"))
            .finish()
    }
}

/// The task's SECRET volumes as files. A Mesos agent writes a volume with
/// a relative `container_path` under the sandbox; so does this executor,
/// and it refuses any path that would leave the sandbox.
fn secret_files(task: &TaskInfo) -> Result<Vec<SecretFile>, PlanError> {
    let problem = |problem: String| PlanError::Secret {
        task_id: task.task_id.value.clone(),
        problem,
    };
    let volumes = task.container.as_ref().map_or(&[][..], |c| &c.volumes[..]);
    let mut files = Vec::new();
    for volume in volumes {
        let Some(source) = &volume.source else {
            continue;
        };
        if source.r#type != Some(volume::source::Type::Secret as i32) {
            continue;
        }
        let path = &volume.container_path;
        let inside = !path.starts_with('/')
            && path
                .split('/')
                .all(|part| !part.is_empty() && part != "." && part != "..");
        if !inside {
            return Err(problem(format!(
                "container_path '{path}' must be relative to the sandbox, without '.', '..' or empty parts"
            )));
        }
        let secret = source.secret.as_ref();
        match secret.and_then(|s| s.value.as_ref()) {
            // An empty secret is refused rather than written: Drover
            // never launches one, unless a job rebuilt from the master's
            // task list lost its values (`--recover-from-master`).
            Some(value) if value.data.is_empty() => {
                return Err(problem(format!("the secret at '{path}' has no data")));
            }
            Some(value)
                if secret.and_then(|s| s.r#type) != Some(secret::Type::Reference as i32) =>
            {
                files.push(SecretFile {
                    path: path.clone(),
                    data: value.data.clone(),
                })
            }
            _ => {
                return Err(problem(format!(
                "the secret at '{path}' is not of type VALUE (a reference needs a secret resolver)"
            )))
            }
        }
    }
    Ok(files)
}

/// Facts from outside the TaskInfo that the plan needs.
#[derive(Debug, Clone)]
pub struct PlanContext<'a> {
    /// MESOS_FRAMEWORK_ID.
    pub framework_id: &'a str,
    /// MESOS_EXECUTOR_ID.
    pub executor_id: &'a str,
    /// The task's sandbox.
    pub sandbox: &'a Path,
    /// Whether cpus also become a CFS quota.
    pub cfs_quota: bool,
    /// The pids limit every task gets, if any.
    pub pids_max: Option<u64>,
    /// The user of a task whose command names none: the executor's
    /// CommandInfo user, else the framework's (from SUBSCRIBED), as a Mesos
    /// agent picks the user it runs an executor as.
    pub default_user: Option<&'a str>,
}

/// The command line of a CommandInfo: `sh -c value` for shell commands
/// (the default), else `value` run with `arguments` as its argv.
pub fn argv(command: &CommandInfo) -> Vec<String> {
    let value = command.value.clone().unwrap_or_default();
    if command.shell.unwrap_or(true) {
        return vec!["/bin/sh".into(), "-c".into(), value];
    }
    let mut argv = vec![value];
    // Mesos passes `arguments` as the full argv, argv[0] included.
    argv.extend(command.arguments.iter().skip(1).cloned());
    argv
}

fn scalar(resources: &[Resource], name: &str) -> Option<f64> {
    let total: f64 = resources
        .iter()
        .filter(|r| r.name == name)
        .filter_map(|r| r.scalar.map(|s| s.value))
        .sum();
    (total > 0.0).then_some(total)
}

fn ports(resources: &[Resource]) -> Vec<u64> {
    resources
        .iter()
        .filter(|r| r.name == "ports")
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|ranges| {
            ranges
                .range
                .iter()
                .flat_map(|range| range.begin..=range.end.min(range.begin + 1024))
        })
        .collect()
}

/// Converts resources to limits: cpus as is, mem from MiB to bytes.
pub fn limits(resources: &[Resource], cfs_quota: bool, pids_max: Option<u64>) -> ResourceLimits {
    ResourceLimits {
        cpus: scalar(resources, "cpus"),
        cfs_quota,
        mem_bytes: scalar(resources, "mem").map(|mib| (mib * 1024.0 * 1024.0) as u64),
        pids_max,
    }
}

fn seconds(value: Option<f64>, default: f64) -> Duration {
    Duration::try_from_secs_f64(value.unwrap_or(default)).unwrap_or(Duration::ZERO)
}

/// A kill grace from a DurationInfo (negative counts as zero).
pub fn grace(duration: &DurationInfo) -> Duration {
    Duration::from_nanos(duration.nanoseconds.max(0) as u64)
}

fn health(task_id: &str, check: &HealthCheck) -> Result<HealthSpec, PlanError> {
    let invalid = |problem| PlanError::HealthCheck {
        task_id: task_id.to_string(),
        problem,
    };
    let timeout = seconds(check.timeout_seconds, 20.0);
    let policy = HealthPolicy {
        delay: seconds(check.delay_seconds, 15.0),
        interval: seconds(check.interval_seconds, 10.0),
        timeout: (!timeout.is_zero()).then_some(timeout),
        consecutive_failures: check.consecutive_failures.unwrap_or(3),
        grace_period: seconds(check.grace_period_seconds, 10.0),
    };
    let port = |p: u32| u16::try_from(p).map_err(|_| invalid("port out of range"));
    let kind = match check
        .r#type
        .and_then(|t| health_check::Type::try_from(t).ok())
    {
        Some(health_check::Type::Command) => {
            let command = check
                .command
                .as_ref()
                .ok_or_else(|| invalid("COMMAND check without command"))?;
            let env = command
                .environment
                .iter()
                .flat_map(|e| e.variables.iter())
                .map(|v| (v.name.clone(), v.value.clone().unwrap_or_default()))
                .collect();
            HealthKind::Command {
                argv: argv(command),
                env,
            }
        }
        Some(health_check::Type::Http) => {
            let http = check
                .http
                .as_ref()
                .ok_or_else(|| invalid("HTTP check without http"))?;
            let path = http.path.clone().unwrap_or_else(|| "/".into());
            if !path.starts_with('/') {
                return Err(invalid("HTTP path must start with /"));
            }
            let https = match http.scheme.as_deref() {
                None | Some("http") => false,
                Some("https") => true,
                Some(_) => return Err(invalid("HTTP scheme must be http or https")),
            };
            HealthKind::Http {
                port: port(http.port)?,
                path,
                https,
            }
        }
        Some(health_check::Type::Tcp) => {
            let tcp = check
                .tcp
                .as_ref()
                .ok_or_else(|| invalid("TCP check without tcp"))?;
            HealthKind::Tcp {
                port: port(tcp.port)?,
            }
        }
        _ => return Err(invalid("type must be COMMAND, HTTP or TCP")),
    };
    Ok(HealthSpec { policy, kind })
}

/// The command a task runs. Mesos forbids a TaskInfo with both `command`
/// and `executor`, so a framework that names this executor (Drover's
/// scheduler does) sends the task's CommandInfo protobuf-encoded in
/// `TaskInfo.data`; a command-executor task carries it in `command`.
fn task_command(task: &TaskInfo) -> Result<std::borrow::Cow<'_, CommandInfo>, PlanError> {
    if let Some(command) = &task.command {
        return Ok(std::borrow::Cow::Borrowed(command));
    }
    let task_id = || task.task_id.value.clone();
    let data = task
        .data
        .as_ref()
        .ok_or_else(|| PlanError::MissingCommand { task_id: task_id() })?;
    drover_proto::MediaType::Protobuf
        .decode::<CommandInfo>(data)
        .map(std::borrow::Cow::Owned)
        .map_err(|e| PlanError::BadCommandData {
            task_id: task_id(),
            problem: e.to_string(),
        })
}

/// Builds the plan for `task`.
pub fn plan(task: &TaskInfo, context: &PlanContext<'_>) -> Result<TaskPlan, PlanError> {
    let task_id = task.task_id.value.clone();
    let command = task_command(task)?;
    let command = command.as_ref();
    let shell = command.shell.unwrap_or(true);
    let image = image_asked(task).map(|image| ImageRequest {
        image,
        shell,
        value: command.value.clone(),
        arguments: command.arguments.clone(),
        user: command.user.clone().filter(|u| !u.is_empty()),
    });
    // An image task without shell may leave the program to the image's
    // Entrypoint and Cmd.
    let value_optional = image.is_some() && !shell;
    if !value_optional && command.value.as_deref().unwrap_or("").trim().is_empty() {
        return Err(PlanError::EmptyCommand { task_id });
    }
    let argv = argv(command);
    let sandbox = context.sandbox.display().to_string();
    // Inside an image the sandbox is at its mount point, and PATH is the
    // image's (or Docker's default) unless the task sets one.
    let (path, task_sandbox) = match image {
        Some(_) => (
            None,
            crate::container::rootfs::SANDBOX_MOUNT_POINT.to_string(),
        ),
        None => (
            Some(("PATH".to_string(), DEFAULT_PATH.to_string())),
            sandbox.clone(),
        ),
    };
    let mut env: Vec<(String, String)> = path.into_iter().collect();
    env.extend([
        ("MESOS_TASK_ID".into(), task_id.clone()),
        ("MESOS_FRAMEWORK_ID".into(), context.framework_id.into()),
        ("MESOS_EXECUTOR_ID".into(), context.executor_id.into()),
        ("MESOS_SANDBOX".into(), task_sandbox),
        ("MESOS_DIRECTORY".into(), sandbox),
        ("MESOS_AGENT_ID".into(), task.agent_id.value.clone()),
    ]);
    let ports = ports(&task.resources);
    for (i, port) in ports.iter().enumerate() {
        env.push((format!("PORT{i}"), port.to_string()));
    }
    if !ports.is_empty() {
        env.push((
            "PORTS".into(),
            ports
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        ));
    }
    for variable in command.environment.iter().flat_map(|e| e.variables.iter()) {
        let value = variable.value.clone().unwrap_or_default();
        match env.iter_mut().find(|(k, _)| *k == variable.name) {
            Some(slot) => slot.1 = value,
            None => env.push((variable.name.clone(), value)),
        }
    }
    let health = task
        .health_check
        .as_ref()
        .map(|check| health(&task_id, check))
        .transpose()?;
    let check = task
        .check
        .as_ref()
        .map(|c| super::check_plan::check(&task_id, c))
        .transpose()?;
    Ok(TaskPlan {
        task_id,
        argv,
        env,
        user: command
            .user
            .as_deref()
            .filter(|u| !u.is_empty())
            .or(context.default_user.filter(|u| !u.is_empty()))
            .map(str::to_owned),
        limits: limits(&task.resources, context.cfs_quota, context.pids_max),
        health,
        check,
        kill_grace: task
            .kill_policy
            .as_ref()
            .and_then(|k| k.grace_period.as_ref())
            .map_or(DEFAULT_KILL_GRACE, grace),
        secrets: secret_files(task)?,
        image,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::{environment, value, Environment, KillPolicy, TaskId};

    fn context() -> PlanContext<'static> {
        PlanContext {
            framework_id: "fw",
            executor_id: "ex",
            sandbox: Path::new("/sb"),
            cfs_quota: false,
            pids_max: None,
            default_user: Some("nobody"),
        }
    }

    fn resource(name: &str, value: f64) -> Resource {
        Resource {
            name: name.into(),
            scalar: Some(value::Scalar { value }),
            ..Default::default()
        }
    }

    fn task(command: Option<CommandInfo>) -> TaskInfo {
        TaskInfo {
            task_id: TaskId { value: "t1".into() },
            command,
            ..Default::default()
        }
    }

    #[test]
    fn a_shell_command_with_resources_ports_and_environment_becomes_a_plan() {
        let mut info = task(Some(CommandInfo {
            value: Some("echo $PORT0".into()),
            environment: Some(Environment {
                variables: vec![environment::Variable {
                    name: "PATH".into(),
                    value: Some("/x".into()),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }));
        info.resources = vec![
            resource("cpus", 0.5),
            resource("mem", 64.0),
            Resource {
                name: "ports".into(),
                ranges: Some(value::Ranges {
                    range: vec![value::Range {
                        begin: 31000,
                        end: 31001,
                    }],
                }),
                ..Default::default()
            },
        ];
        info.kill_policy = Some(KillPolicy {
            grace_period: Some(DurationInfo {
                nanoseconds: 1_500_000_000,
            }),
        });
        let plan = plan(&info, &context()).unwrap();
        assert_eq!(plan.argv, vec!["/bin/sh", "-c", "echo $PORT0"]);
        assert_eq!(plan.limits.cpus, Some(0.5));
        assert_eq!(plan.limits.mem_bytes, Some(64 << 20));
        let env = |k: &str| {
            plan.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            env("PATH").as_deref(),
            Some("/x"),
            "the command's environment wins"
        );
        assert_eq!(env("PORT1").as_deref(), Some("31001"));
        assert_eq!(env("PORTS").as_deref(), Some("31000,31001"));
        assert_eq!(env("MESOS_TASK_ID").as_deref(), Some("t1"));
        assert_eq!(plan.kill_grace, Duration::from_millis(1500));
    }

    #[test]
    fn a_command_encoded_in_data_is_run_when_the_task_has_no_command() {
        use prost::Message as _;
        let mut t = task(None);
        t.data = Some(
            CommandInfo {
                value: Some("echo from data".into()),
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        );
        let p = plan(&t, &context()).unwrap();
        assert_eq!(p.argv, vec!["/bin/sh", "-c", "echo from data"]);
        t.data = Some(vec![0xff, 0xff, 0xff].into());
        assert!(matches!(
            plan(&t, &context()),
            Err(PlanError::BadCommandData { .. })
        ));
        t.data = None;
        assert!(matches!(
            plan(&t, &context()),
            Err(PlanError::MissingCommand { .. })
        ));
    }

    #[test]
    fn a_non_shell_command_uses_arguments_as_its_argv() {
        let command = CommandInfo {
            shell: Some(false),
            value: Some("/bin/echo".into()),
            arguments: vec!["echo".into(), "a".into(), "b".into()],
            ..Default::default()
        };
        assert_eq!(argv(&command), vec!["/bin/echo", "a", "b"]);
    }

    #[test]
    fn bad_tasks_are_plan_errors() {
        assert!(matches!(
            plan(&task(None), &context()),
            Err(PlanError::MissingCommand { .. })
        ));
        let empty = task(Some(CommandInfo {
            value: Some("  ".into()),
            ..Default::default()
        }));
        assert!(matches!(
            plan(&empty, &context()),
            Err(PlanError::EmptyCommand { .. })
        ));
        let mut bad_check = task(Some(CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }));
        bad_check.health_check = Some(Box::default());
        assert!(matches!(
            plan(&bad_check, &context()),
            Err(PlanError::HealthCheck { .. })
        ));
    }

    #[test]
    fn health_check_defaults_follow_mesos() {
        let mut info = task(Some(CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }));
        info.health_check = Some(Box::new(HealthCheck {
            r#type: Some(health_check::Type::Tcp as i32),
            tcp: Some(health_check::TcpCheckInfo {
                port: 8080,
                ..Default::default()
            }),
            timeout_seconds: Some(0.0),
            ..Default::default()
        }));
        let spec = plan(&info, &context()).unwrap().health.unwrap();
        assert_eq!(spec.kind, HealthKind::Tcp { port: 8080 });
        assert_eq!(
            spec.policy,
            HealthPolicy {
                timeout: None,
                ..HealthPolicy::default()
            }
        );
    }

    #[test]
    fn an_http_checks_scheme_chooses_tls_and_others_are_refused() {
        let check = |scheme: Option<&str>| {
            let mut info = task(Some(CommandInfo {
                value: Some("true".into()),
                ..Default::default()
            }));
            info.health_check = Some(Box::new(HealthCheck {
                r#type: Some(health_check::Type::Http as i32),
                http: Some(health_check::HttpCheckInfo {
                    port: 8443,
                    scheme: scheme.map(str::to_owned),
                    path: Some("/ready".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }));
            plan(&info, &context()).map(|plan| plan.health.unwrap().kind)
        };
        let http = |https| HealthKind::Http {
            port: 8443,
            path: "/ready".into(),
            https,
        };
        assert_eq!(check(None).unwrap(), http(false));
        assert_eq!(check(Some("http")).unwrap(), http(false));
        assert_eq!(check(Some("https")).unwrap(), http(true));
        assert!(check(Some("ftp")).is_err());
    }

    #[test]
    fn the_command_user_wins_over_the_executor_default() {
        let mut info = task(Some(CommandInfo {
            value: Some("id -u".into()),
            ..Default::default()
        }));
        assert_eq!(
            plan(&info, &context()).unwrap().user.as_deref(),
            Some("nobody")
        );
        info.command.as_mut().unwrap().user = Some("alice".into());
        assert_eq!(
            plan(&info, &context()).unwrap().user.as_deref(),
            Some("alice")
        );
        let no_default = PlanContext {
            default_user: None,
            ..context()
        };
        info.command.as_mut().unwrap().user = Some(String::new());
        assert_eq!(plan(&info, &no_default).unwrap().user, None);
    }

    fn with_image(command: CommandInfo, image: drover_proto::v1::Image) -> TaskInfo {
        let mut info = task(Some(command));
        info.container = Some(Box::new(drover_proto::v1::ContainerInfo {
            r#type: container_info::Type::Mesos as i32,
            mesos: Some(container_info::MesosInfo { image: Some(image) }),
            ..Default::default()
        }));
        info
    }

    fn docker(name: &str) -> drover_proto::v1::Image {
        drover_proto::v1::Image {
            r#type: image::Type::Docker as i32,
            docker: Some(image::Docker {
                name: name.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_mesos_container_with_an_image_asks_for_it_and_its_sandbox_is_the_mount_point() {
        let command = CommandInfo {
            shell: Some(false),
            arguments: vec!["x".into()],
            user: Some(String::new()),
            ..Default::default()
        };
        let p = plan(&with_image(command, docker("busybox:1")), &context()).unwrap();
        let request = p.image.unwrap();
        assert_eq!(request.image, ImageAsked::Docker("busybox:1".into()));
        assert!(!request.shell);
        assert_eq!(request.value, None, "no value: the image's Entrypoint runs");
        assert_eq!(request.arguments, vec!["x"]);
        assert_eq!(request.user, None, "the framework's user is no task user");
        let env = |k: &str| p.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(env("MESOS_SANDBOX").as_deref(), Some("/mnt/mesos/sandbox"));
        assert_eq!(env("MESOS_DIRECTORY").as_deref(), Some("/sb"));
        assert_eq!(env("PATH"), None, "the image's PATH applies");

        let appc = drover_proto::v1::Image {
            r#type: image::Type::Appc as i32,
            appc: Some(image::Appc {
                name: "example.com/app".into(),
                id: Some("sha256:ab".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let shell = CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        };
        let p = plan(&with_image(shell.clone(), appc), &context()).unwrap();
        assert_eq!(
            p.image.unwrap().image,
            ImageAsked::Appc {
                name: "example.com/app".into(),
                id: Some("sha256:ab".into())
            }
        );
        let mut docker_containerizer = with_image(shell, docker("busybox:1"));
        docker_containerizer.container.as_mut().unwrap().r#type =
            container_info::Type::Docker as i32;
        assert_eq!(plan(&docker_containerizer, &context()).unwrap().image, None);
    }

    #[test]
    fn an_image_task_with_shell_still_needs_a_value() {
        let command = CommandInfo::default();
        assert!(matches!(
            plan(&with_image(command, docker("busybox:1")), &context()),
            Err(PlanError::EmptyCommand { .. })
        ));
    }

    fn with_secret(path: &str, kind: secret::Type) -> TaskInfo {
        let mut info = task(Some(CommandInfo {
            value: Some("true".into()),
            ..Default::default()
        }));
        info.container = Some(Box::new(drover_proto::v1::ContainerInfo {
            volumes: vec![drover_proto::v1::Volume {
                container_path: path.into(),
                source: Some(volume::Source {
                    r#type: Some(volume::source::Type::Secret as i32),
                    secret: Some(drover_proto::v1::Secret {
                        r#type: Some(kind as i32),
                        value: Some(secret::Value {
                            data: bytes::Bytes::from_static(b"hunter2"),
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        }));
        info
    }

    #[test]
    fn a_secret_volume_becomes_a_file_to_write_in_the_sandbox() {
        let plan = plan(
            &with_secret("conf/db.pass", secret::Type::Value),
            &context(),
        )
        .unwrap();
        assert_eq!(plan.secrets.len(), 1);
        assert_eq!(plan.secrets[0].path, "conf/db.pass");
        assert_eq!(&plan.secrets[0].data[..], b"hunter2");
        assert!(!format!("{plan:?}").contains("hunter2"));
    }

    #[test]
    fn a_secret_outside_the_sandbox_or_by_reference_is_refused() {
        for path in ["/etc/shadow", "../x", "a/../../x", "a//b"] {
            let err = plan(&with_secret(path, secret::Type::Value), &context()).unwrap_err();
            assert!(matches!(err, PlanError::Secret { .. }), "{path}: {err}");
            assert!(!err.to_string().contains("hunter2"));
        }
        let err = plan(&with_secret("a", secret::Type::Reference), &context()).unwrap_err();
        assert!(err.to_string().contains("not of type VALUE"), "{err}");
        let mut empty = with_secret("a", secret::Type::Value);
        let volume = &mut empty.container.as_mut().unwrap().volumes[0];
        let source = volume.source.as_mut().unwrap();
        source.secret.as_mut().unwrap().value.as_mut().unwrap().data = bytes::Bytes::new();
        let err = plan(&empty, &context()).unwrap_err();
        assert!(err.to_string().contains("has no data"), "{err}");
    }
}
