//! The executor under measurement: the real `drover-executor` binary,
//! started as a child with the environment a Mesos agent gives it, its
//! tasks' cgroups under the benchmark's own parent, and its sandbox in a
//! directory the benchmark removes at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context;
use drover_executor::container::cgroup::{detect_version, CgroupConfig};

use super::agent::{BenchAgent, EXECUTOR_ID, FRAMEWORK_ID};

/// Resident memory of a process.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// All of it (`VmRSS`): what the target is about.
    pub rss_bytes: u64,
    /// The private, anonymous part (`RssAnon`): what each further executor
    /// costs, since the binary's and libc's pages are shared between them.
    pub anon_bytes: u64,
}

/// The running executor.
pub struct Subject {
    child: tokio::process::Child,
    pid: u32,
    sandbox: PathBuf,
    cgroups: CgroupConfig,
}

impl Subject {
    /// Starts `binary` against `agent`, with task cgroups under `parent`.
    pub fn start(
        binary: &Path,
        agent: &BenchAgent,
        cgroup_root: &Path,
        parent: &Path,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let version = detect_version(cgroup_root).context("probing the cgroup version")?;
        let sandbox = std::env::temp_dir().join(format!("drover-bench-{}", std::process::id()));
        std::fs::create_dir_all(&sandbox)
            .with_context(|| format!("creating {}", sandbox.display()))?;
        let log = std::fs::File::create(sandbox.join("executor.log"))
            .context("creating the executor's log")?;
        let child = tokio::process::Command::new(binary)
            .env_clear()
            .env("MESOS_AGENT_ENDPOINT", agent.endpoint())
            .env("MESOS_FRAMEWORK_ID", FRAMEWORK_ID)
            .env("MESOS_EXECUTOR_ID", EXECUTOR_ID)
            .env("MESOS_SANDBOX", &sandbox)
            .env("MESOS_CHECKPOINT", "0")
            .env("DROVER_CGROUP_ROOT", cgroup_root)
            .env("DROVER_CGROUPS_ROOT", parent)
            // The fake agent's framework user is root, as the baselines
            // run: the measurement is of spawning, not of switching users.
            .env("DROVER_ALLOW_ROOT_TASKS", "true")
            .envs(extra_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let pid = child.id().context("the executor exited at once")?;
        Ok(Self {
            child,
            pid,
            sandbox,
            cgroups: CgroupConfig {
                root: cgroup_root.to_path_buf(),
                parent: parent.to_path_buf(),
                version,
            },
        })
    }

    /// The executor's sandbox.
    pub fn sandbox(&self) -> &Path {
        &self.sandbox
    }

    /// The executor's resident memory now, from `/proc/<pid>/status`.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let bytes = |key: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
                .map(|kib| kib * 1024)
                .with_context(|| format!("no {key} in {path}"))
        };
        Ok(Memory {
            rss_bytes: bytes("VmRSS:")?,
            anon_bytes: bytes("RssAnon:")?,
        })
    }

    /// The tail of the executor's log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.sandbox.join("executor.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SHUTDOWN, then waits for the exit (killing the executor if it takes
    /// longer than `limit`), then removes the sandbox and the cgroup parent.
    pub async fn stop(mut self, agent: &BenchAgent, limit: Duration) -> anyhow::Result<()> {
        agent.shutdown();
        let exited = tokio::time::timeout(limit, self.child.wait()).await;
        if exited.is_err() {
            eprintln!("the executor did not exit after SHUTDOWN; killing it");
            self.child.kill().await.context("killing the executor")?;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.sandbox) {
            eprintln!("removing {}: {e}", self.sandbox.display());
        }
        self.cgroups
            .remove_parent()
            .context("removing the bench cgroup parent")
    }
}
