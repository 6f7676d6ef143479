//! What a real agent runs for an executor, decided without touching the
//! host: the sandbox path Mesos lays out, the program and arguments
//! (shell semantics per `CommandInfo.shell`), and the environment of
//! reference 4.1. `agent/processes.rs` carries it out.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use drover_proto::duration::format as format_duration;
use drover_proto::v1::{environment::variable, CommandInfo};

use super::executor::ExecutorKind;
use crate::ids::AgentIndex;

/// `PATH` when nothing else sets it (Mesos' default, reference 4.1).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// One executor to start.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchSpec {
    /// The agent's index in the fleet.
    pub agent: AgentIndex,
    pub agent_id: String,
    pub framework_id: String,
    pub executor_id: String,
    pub container_id: String,
    pub kind: ExecutorKind,
    /// The executor's own command (custom executors only).
    pub command: Option<CommandInfo>,
    /// FrameworkInfo.checkpoint.
    pub checkpoint: bool,
    /// ExecutorInfo.shutdown_grace_period, else the agent's default.
    pub shutdown_grace: Duration,
    /// The agent's executor endpoint (`MESOS_AGENT_ENDPOINT`).
    pub endpoint: SocketAddr,
}

/// The host side of launching: paths and agent flags.
#[derive(Debug, Clone)]
pub struct HostSettings {
    /// The agents' work directory (`--work-dir`).
    pub work_dir: PathBuf,
    /// The `drover-executor` binary.
    pub executor_path: PathBuf,
    /// The cgroup parent under which each drover-executor gets its own
    /// `<parent>/<container_id>` (relative to the cgroup root).
    pub cgroup_parent: PathBuf,
    /// Agent `--recovery_timeout`, given to checkpointing executors.
    pub recovery_timeout: Duration,
    /// Agent `--executor_reregistration_timeout`, given to checkpointing
    /// executors as their subscription backoff cap.
    pub subscription_backoff_max: Duration,
    /// `--allow-root-tasks`: the drover-executors this agent supplies (for
    /// command and default-executor tasks) may run tasks as root. Executors
    /// a framework names get what their CommandInfo sets.
    pub allow_root_tasks: bool,
    /// `--image-dir`: the image store of every drover-executor started.
    pub image_dir: Option<PathBuf>,
    /// `--authenticate-http-executors`: each executor gets a token and
    /// must send it on its calls.
    pub authenticate_executors: bool,
}

/// A program and its arguments, as `execve` gets them.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    pub path: String,
    /// `argv[0]`, when it differs from the path.
    pub argv0: Option<String>,
    pub args: Vec<String>,
}

/// How an executor's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecutorExit {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Signaled(i32),
    /// It could not be started.
    LaunchFailed(String),
}

impl ExecutorExit {
    /// The status as `waitpid` gives it, which Mesos puts in FAILURE.
    pub fn wait_status(&self) -> i32 {
        match self {
            ExecutorExit::Exited(code) => (code & 0xff) << 8,
            ExecutorExit::Signaled(signal) => signal & 0x7f,
            ExecutorExit::LaunchFailed(_) => 1 << 8,
        }
    }

    /// The words Mesos uses in the tasks' TASK_FAILED message.
    pub fn describe(&self) -> String {
        match self {
            ExecutorExit::Exited(code) => format!("Executor terminated: exited with status {code}"),
            ExecutorExit::Signaled(signal) => {
                format!("Executor terminated: killed by signal {signal}")
            }
            ExecutorExit::LaunchFailed(why) => format!("Failed to launch executor: {why}"),
        }
    }
}

/// The sandbox, as Mesos lays it out:
/// `<work_dir>/agents/<agent>/frameworks/<fw>/executors/<exec>/runs/<container>`.
pub fn sandbox_dir(work_dir: &Path, spec: &LaunchSpec) -> PathBuf {
    work_dir
        .join("agents")
        .join(path_safe(&spec.agent_id))
        .join("frameworks")
        .join(path_safe(&spec.framework_id))
        .join("executors")
        .join(path_safe(&spec.executor_id))
        .join("runs")
        .join(path_safe(&spec.container_id))
}

/// Ids come from frameworks; one with a `/` or `..` must not leave the
/// work directory (Mesos forbids `/` in ids; the simulator also checks).
fn path_safe(id: &str) -> String {
    let cleaned: String = id
        .chars()
        .map(|c| if c == '/' || c == '\0' { '_' } else { c })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => format!("_{cleaned}"),
        _ => cleaned,
    }
}

/// The program to run: `drover-executor` for command and default
/// executors; else the CommandInfo, through `/bin/sh -c` when `shell` is
/// true or unset, or exec'd with its `arguments` (the first is `argv[0]`).
pub fn program(spec: &LaunchSpec, host: &HostSettings) -> Option<Program> {
    let Some(command) = spec
        .command
        .as_ref()
        .filter(|_| spec.kind == ExecutorKind::Custom)
    else {
        return Some(Program {
            path: host.executor_path.to_string_lossy().into_owned(),
            argv0: None,
            args: Vec::new(),
        });
    };
    let value = command.value.clone()?;
    if command.shell.unwrap_or(true) {
        Some(Program {
            path: "/bin/sh".into(),
            argv0: Some("sh".into()),
            args: vec!["-c".into(), value],
        })
    } else {
        Some(Program {
            argv0: command.arguments.first().cloned(),
            args: command.arguments.iter().skip(1).cloned().collect(),
            path: value,
        })
    }
}

/// The executor's whole environment (it inherits nothing from the
/// simulator, as since Mesos 1.0): PATH, the Mesos variables of reference
/// 4.1, drover-executor's own settings for the executors we supply, then
/// `CommandInfo.environment`, which overrides.
pub fn environment(
    spec: &LaunchSpec,
    host: &HostSettings,
    endpoint: SocketAddr,
    sandbox: &Path,
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = Vec::new();
    let mut set = |k: &str, v: String| {
        env.retain(|(key, _)| key != k);
        env.push((k.to_owned(), v));
    };
    let pid = format!("slave(1)@{endpoint}");
    let sandbox = sandbox.to_string_lossy().into_owned();
    set("PATH", DEFAULT_PATH.into());
    set("MESOS_FRAMEWORK_ID", spec.framework_id.clone());
    set("MESOS_EXECUTOR_ID", spec.executor_id.clone());
    set("MESOS_AGENT_ENDPOINT", endpoint.to_string());
    set("MESOS_SLAVE_PID", pid.clone());
    set("MESOS_AGENT_PID", pid);
    set("MESOS_SLAVE_ID", spec.agent_id.clone());
    set("MESOS_AGENT_ID", spec.agent_id.clone());
    set("MESOS_DIRECTORY", sandbox.clone());
    set("MESOS_SANDBOX", sandbox);
    set(
        "MESOS_CHECKPOINT",
        if spec.checkpoint { "1" } else { "0" }.into(),
    );
    if spec.checkpoint {
        set(
            "MESOS_RECOVERY_TIMEOUT",
            format_duration(host.recovery_timeout),
        );
        set(
            "MESOS_SUBSCRIPTION_BACKOFF_MAX",
            format_duration(host.subscription_backoff_max),
        );
    }
    set(
        "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD",
        format_duration(spec.shutdown_grace),
    );
    set("MESOS_HTTP_COMMAND_EXECUTOR", "1".into());
    set("LIBPROCESS_PORT", "0".into());
    match spec.kind {
        ExecutorKind::Command => set("DROVER_EXECUTOR_MODE", "command".into()),
        ExecutorKind::Default => set("DROVER_EXECUTOR_MODE", "custom".into()),
        ExecutorKind::Custom => {}
    }
    // drover-executor refuses root tasks unless told; the agent tells the
    // executors it supplies, a framework tells its own.
    if host.allow_root_tasks && spec.kind != ExecutorKind::Custom {
        set("DROVER_ALLOW_ROOT_TASKS", "true".into());
    }
    // Every container's cgroups live under `<parent>/<container_id>`, as a
    // Mesos agent's live under `mesos/<container_id>`; a drover-executor,
    // ours or one a framework names, puts its tasks there, so they are
    // cleaned up with the container. Other executors ignore the variable.
    set(
        "DROVER_CGROUPS_ROOT",
        host.cgroup_parent
            .join(&spec.container_id)
            .to_string_lossy()
            .into_owned(),
    );
    // Image tasks: the store when configured (else the executor's
    // default), and always a layer cache and container roots in the work
    // directory, never the executor's defaults under /var/lib.
    if let Some(image_dir) = &host.image_dir {
        set("DROVER_IMAGE_DIR", image_dir.to_string_lossy().into_owned());
    }
    let under = |dir: &str| host.work_dir.join(dir).to_string_lossy().into_owned();
    set("DROVER_IMAGE_CACHE_DIR", under("image-cache"));
    set("DROVER_IMAGE_ROOTFS_DIR", under("image-rootfs"));
    let variables = spec
        .command
        .as_ref()
        .and_then(|c| c.environment.as_ref())
        .map(|e| e.variables.as_slice())
        .unwrap_or_default();
    for v in variables {
        // Secrets need a secret resolver, which the simulator does not have.
        let is_value = v.r#type.is_none_or(|t| t == variable::Type::Value as i32);
        if let (true, Some(value)) = (is_value, &v.value) {
            set(&v.name, value.clone());
        }
    }
    env
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use drover_proto::v1::{environment::Variable, Environment};

    fn spec(kind: ExecutorKind, command: Option<CommandInfo>) -> LaunchSpec {
        LaunchSpec {
            agent: 0,
            agent_id: "A-S0".into(),
            framework_id: "F-0000".into(),
            executor_id: "ex/1".into(),
            container_id: "c1".into(),
            kind,
            command,
            checkpoint: true,
            shutdown_grace: Duration::from_secs(5),
            endpoint: "127.0.0.1:5051".parse().unwrap(),
        }
    }

    fn host() -> HostSettings {
        HostSettings {
            work_dir: "/w".into(),
            executor_path: "/bin/drover-executor".into(),
            cgroup_parent: "drover-agent-sim-1".into(),
            recovery_timeout: Duration::from_secs(900),
            subscription_backoff_max: Duration::from_secs(2),
            allow_root_tasks: false,
            image_dir: None,
            authenticate_executors: false,
        }
    }

    fn get<'a>(env: &'a [(String, String)], k: &str) -> Option<&'a str> {
        env.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn the_sandbox_follows_the_mesos_layout_and_stays_inside_the_work_dir() {
        let s = spec(ExecutorKind::Custom, None);
        assert_eq!(
            sandbox_dir(Path::new("/w"), &s),
            Path::new("/w/agents/A-S0/frameworks/F-0000/executors/ex_1/runs/c1")
        );
        let mut evil = s.clone();
        evil.executor_id = "..".into();
        assert!(sandbox_dir(Path::new("/w"), &evil).ends_with("executors/_../runs/c1"));
    }

    #[test]
    fn the_environment_has_the_mesos_variables_and_the_command_overrides() {
        let cmd = CommandInfo {
            value: Some("run".into()),
            environment: Some(Environment {
                variables: vec![Variable {
                    name: "PATH".into(),
                    value: Some("/opt/bin".into()),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        };
        let endpoint: SocketAddr = "127.0.0.1:5051".parse().unwrap();
        let env = environment(
            &spec(ExecutorKind::Custom, Some(cmd)),
            &host(),
            endpoint,
            Path::new("/w/s"),
        );
        assert_eq!(get(&env, "MESOS_AGENT_ENDPOINT"), Some("127.0.0.1:5051"));
        assert_eq!(
            get(&env, "MESOS_SLAVE_PID"),
            Some("slave(1)@127.0.0.1:5051")
        );
        assert_eq!(get(&env, "MESOS_SANDBOX"), Some("/w/s"));
        assert_eq!(get(&env, "MESOS_DIRECTORY"), Some("/w/s"));
        assert_eq!(get(&env, "MESOS_CHECKPOINT"), Some("1"));
        assert_eq!(get(&env, "MESOS_RECOVERY_TIMEOUT"), Some("15mins"));
        assert_eq!(get(&env, "MESOS_SUBSCRIPTION_BACKOFF_MAX"), Some("2secs"));
        assert_eq!(
            get(&env, "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"),
            Some("5secs")
        );
        assert_eq!(get(&env, "PATH"), Some("/opt/bin"));
        assert_eq!(get(&env, "DROVER_EXECUTOR_MODE"), None);
        assert_eq!(
            get(&env, "DROVER_CGROUPS_ROOT"),
            Some("drover-agent-sim-1/c1"),
            "a custom executor's container has its cgroup parent too"
        );
        assert_eq!(env.iter().filter(|(k, _)| k == "PATH").count(), 1);
    }

    #[test]
    fn drover_executors_get_their_mode_and_their_own_cgroup_parent() {
        let mut s = spec(ExecutorKind::Command, None);
        s.checkpoint = false;
        let env = environment(&s, &host(), "127.0.0.1:1".parse().unwrap(), Path::new("/s"));
        assert_eq!(get(&env, "DROVER_EXECUTOR_MODE"), Some("command"));
        assert_eq!(
            get(&env, "DROVER_CGROUPS_ROOT"),
            Some("drover-agent-sim-1/c1")
        );
        assert_eq!(get(&env, "MESOS_CHECKPOINT"), Some("0"));
        assert_eq!(get(&env, "MESOS_RECOVERY_TIMEOUT"), None);
        assert_eq!(get(&env, "DROVER_ALLOW_ROOT_TASKS"), None);
        let mut allowing = host();
        allowing.allow_root_tasks = true;
        let env = environment(
            &s,
            &allowing,
            "127.0.0.1:1".parse().unwrap(),
            Path::new("/s"),
        );
        assert_eq!(get(&env, "DROVER_ALLOW_ROOT_TASKS"), Some("true"));
        let p = program(&s, &host()).unwrap();
        assert_eq!(p.path, "/bin/drover-executor");
    }

    #[test]
    fn an_image_dir_reaches_every_executor_with_a_cache_in_the_work_dir() {
        let s = spec(ExecutorKind::Custom, None);
        let at = "127.0.0.1:1".parse().unwrap();
        let env = environment(&s, &host(), at, Path::new("/s"));
        assert_eq!(
            get(&env, "DROVER_IMAGE_DIR"),
            None,
            "the executor's default"
        );
        assert_eq!(get(&env, "DROVER_IMAGE_CACHE_DIR"), Some("/w/image-cache"));
        let mut with_images = host();
        with_images.image_dir = Some("/images".into());
        let env = environment(&s, &with_images, at, Path::new("/s"));
        assert_eq!(get(&env, "DROVER_IMAGE_DIR"), Some("/images"));
        assert_eq!(get(&env, "DROVER_IMAGE_CACHE_DIR"), Some("/w/image-cache"));
        assert_eq!(
            get(&env, "DROVER_IMAGE_ROOTFS_DIR"),
            Some("/w/image-rootfs")
        );
    }

    #[test]
    fn shell_commands_run_through_sh_and_others_are_execd_with_their_arguments() {
        let shell = CommandInfo {
            value: Some("echo hi".into()),
            ..Default::default()
        };
        let p = program(&spec(ExecutorKind::Custom, Some(shell)), &host()).unwrap();
        assert_eq!(
            (p.path.as_str(), p.args.clone()),
            ("/bin/sh", vec!["-c".to_owned(), "echo hi".to_owned()])
        );
        let plain = CommandInfo {
            value: Some("/usr/bin/env".into()),
            shell: Some(false),
            arguments: vec!["env".into(), "-i".into()],
            ..Default::default()
        };
        let p = program(&spec(ExecutorKind::Custom, Some(plain)), &host()).unwrap();
        assert_eq!(p.path, "/usr/bin/env");
        assert_eq!(p.argv0.as_deref(), Some("env"));
        assert_eq!(p.args, ["-i"]);
        let none = CommandInfo::default();
        assert_eq!(
            program(&spec(ExecutorKind::Custom, Some(none)), &host()),
            None
        );
    }
}
