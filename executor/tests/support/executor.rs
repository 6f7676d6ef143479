//! The `drover-executor` binary as a test subject, and helpers to read the
//! updates a fake agent recorded.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use drover_proto::v1::{AgentId, CommandInfo, TaskId, TaskInfo, TaskState, TaskStatus};
use drover_proto::TaskStateExt;

use super::TestParent;

/// A `drover-executor` process with its own sandbox and log.
pub struct Executor {
    pub child: tokio::process::Child,
    pub sandbox: tempfile::TempDir,
    pub log: PathBuf,
}

impl Executor {
    /// Starts the binary against the agent, with task cgroups under
    /// `parent` and `env` on top of the Mesos environment. Root tasks are
    /// allowed (the fake agent's framework user is root) unless `env` sets
    /// `DROVER_ALLOW_ROOT_TASKS` to `false`.
    pub fn start(agent_endpoint: &str, parent: &TestParent, env: &[(&str, &str)]) -> Self {
        let sandbox = tempfile::tempdir().unwrap();
        let log = sandbox.path().join("executor.log");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_drover-executor"));
        command
            .env_clear()
            .env("MESOS_AGENT_ENDPOINT", agent_endpoint)
            .env("MESOS_FRAMEWORK_ID", "fw")
            .env("MESOS_EXECUTOR_ID", "ex")
            .env("MESOS_SANDBOX", sandbox.path())
            .env("MESOS_CHECKPOINT", "0")
            .env("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "3secs")
            .env("DROVER_CGROUP_ROOT", &parent.config.root)
            .env("DROVER_CGROUPS_ROOT", &parent.config.parent)
            .env("DROVER_LOG", "debug")
            .env("DROVER_ALLOW_ROOT_TASKS", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        for (k, v) in env {
            command.env(k, v);
        }
        Self {
            child: command.spawn().unwrap(),
            sandbox,
            log,
        }
    }

    /// The executor's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for the executor to exit (20 s at most, then fails).
    pub async fn exit(&mut self) -> std::process::ExitStatus {
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(status) => status.unwrap(),
            Err(_) => panic!("the executor did not exit; its log:\n{}", self.log()),
        }
    }
}

/// A shell-command task.
pub fn task(id: &str, script: &str) -> TaskInfo {
    TaskInfo {
        name: id.into(),
        task_id: TaskId { value: id.into() },
        agent_id: AgentId {
            value: "agent-1".into(),
        },
        command: Some(CommandInfo {
            value: Some(script.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The states reported for `task`, in order.
pub fn states(updates: &[TaskStatus], task: &str) -> Vec<TaskState> {
    updates
        .iter()
        .filter(|u| u.task_id.value == task)
        .map(|u| u.state())
        .collect()
}

/// The last update of `task`.
pub fn last(updates: &[TaskStatus], task: &str) -> TaskStatus {
    updates
        .iter()
        .rev()
        .find(|u| u.task_id.value == task)
        .cloned()
        .unwrap()
}

/// A record predicate: `task` has a terminal update.
pub fn has_terminal(task: &'static str) -> impl Fn(&super::fake_agent::Record) -> bool {
    move |r| {
        r.updates
            .iter()
            .any(|u| u.task_id.value == task && u.state().is_terminal())
    }
}
