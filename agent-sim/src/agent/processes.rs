//! Executor processes of the real agents (drive layer): makes each
//! sandbox, starts the program `agent/launch.rs` chose in its own process
//! group (pymesos executors `killpg(0, SIGKILL)` on shutdown, which must
//! never reach the simulator or the test runner), watches it, and kills
//! its container (its process group, then its cgroup subtree) when the
//! master says so or the simulator stops. Decides nothing.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::cgroups;
use super::executor::ExecutorKind;
use super::launch::{environment, program, sandbox_dir, ExecutorExit, HostSettings, LaunchSpec};

/// The cgroup filesystem root.
pub const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// A running executor.
#[derive(Debug, Clone)]
pub struct Running {
    pub pid: i32,
    pub spec: LaunchSpec,
    pub sandbox: PathBuf,
    /// Its `MESOS_EXECUTOR_AUTHENTICATION_TOKEN`, when executors are
    /// authenticated.
    pub token: Option<String>,
}

/// Why an executor could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The CommandInfo has no `value`.
    #[error("the executor's CommandInfo has no 'value'")]
    NoCommand,
    /// The sandbox or its stdout/stderr files could not be made.
    #[error("preparing the sandbox {path}: {source}")]
    Sandbox {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// fork/exec failed.
    #[error("starting {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
}

/// The executors of every real agent.
#[derive(Debug, Clone)]
pub struct Processes {
    host: Arc<HostSettings>,
    running: Arc<Mutex<HashMap<String, Running>>>,
}

impl Processes {
    pub fn new(host: HostSettings) -> Self {
        Processes {
            host: Arc::new(host),
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn host(&self) -> &HostSettings {
        &self.host
    }

    /// The executors running now.
    pub fn running(&self) -> Vec<Running> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        // A panic while holding this short lock leaves the map usable.
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the executor in the background; `on_exit` gets how it ended
    /// (or why it never started) once its container is cleaned up.
    pub fn launch<F>(&self, spec: LaunchSpec, on_exit: F)
    where
        F: FnOnce(String, ExecutorExit) + Send + 'static,
    {
        let this = self.clone();
        tokio::spawn(async move {
            let container = spec.container_id.clone();
            let exit = match this.spawn(&spec) {
                Ok(mut child) => {
                    let status = child.wait().await;
                    this.lock().remove(&container);
                    match status {
                        Ok(s) => {
                            match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
                                (Some(code), _) => ExecutorExit::Exited(code),
                                (None, Some(signal)) => ExecutorExit::Signaled(signal),
                                (None, None) => ExecutorExit::Exited(-1),
                            }
                        }
                        Err(e) => {
                            ExecutorExit::LaunchFailed(format!("waiting for the executor: {e}"))
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(container = %container, error = %e, "executor launch failed");
                    ExecutorExit::LaunchFailed(e.to_string())
                }
            };
            this.destroy_container(&spec).await;
            tracing::info!(executor = %spec.executor_id, container = %container, ?exit, "executor ended");
            on_exit(container, exit);
        });
    }

    fn spawn(&self, spec: &LaunchSpec) -> Result<tokio::process::Child, LaunchError> {
        let program = program(spec, &self.host).ok_or(LaunchError::NoCommand)?;
        let sandbox = sandbox_dir(&self.host.work_dir, spec);
        let sandbox_error = |source| LaunchError::Sandbox {
            path: sandbox.clone(),
            source,
        };
        std::fs::create_dir_all(&sandbox).map_err(sandbox_error)?;
        link_latest(&sandbox);
        // A drover-executor writes its tasks' output to `stdout`/`stderr`
        // itself, so its own goes beside them; other executors' output is
        // the sandbox's `stdout`/`stderr`, as in Mesos.
        let (out_name, err_name) = match spec.kind {
            ExecutorKind::Custom => ("stdout", "stderr"),
            ExecutorKind::Command | ExecutorKind::Default => ("executor.stdout", "executor.stderr"),
        };
        let stdout = std::fs::File::create(sandbox.join(out_name)).map_err(sandbox_error)?;
        let stderr = std::fs::File::create(sandbox.join(err_name)).map_err(sandbox_error)?;
        // A random token per executor: Mesos signs a JWT naming the
        // executor; an unguessable value only its executor holds serves
        // the same purpose for one agent.
        let token = self
            .host
            .authenticate_executors
            .then(|| uuid::Uuid::new_v4().simple().to_string());
        let mut command = tokio::process::Command::new(&program.path);
        if let Some(argv0) = &program.argv0 {
            command.arg0(argv0);
        }
        command
            .args(&program.args)
            .env_clear()
            .envs(environment(spec, &self.host, spec.endpoint, &sandbox))
            .envs(
                token
                    .iter()
                    .map(|token| ("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", token)),
            )
            .current_dir(&sandbox)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            // Its own process group: see the module doc.
            .process_group(0);
        let child = command.spawn().map_err(|source| LaunchError::Spawn {
            program: program.path.clone(),
            source,
        })?;
        let pid = child.id().and_then(|p| i32::try_from(p).ok()).unwrap_or(0);
        tracing::info!(executor = %spec.executor_id, pid, sandbox = %sandbox.display(), "executor started");
        self.lock().insert(
            spec.container_id.clone(),
            Running {
                pid,
                spec: spec.clone(),
                sandbox,
                token,
            },
        );
        Ok(child)
    }

    /// Whether an executor call naming `framework_id` and `executor_id`
    /// with this `Authorization` header may go on: always, unless
    /// executors are authenticated; then only with `Bearer <the token>`
    /// that executor was started with.
    pub fn authorizes(
        &self,
        framework_id: &str,
        executor_id: &str,
        authorization: Option<&str>,
    ) -> bool {
        if !self.host.authenticate_executors {
            return true;
        }
        let Some(presented) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        self.lock().values().any(|r| {
            r.spec.framework_id == framework_id
                && r.spec.executor_id == executor_id
                && r.token.as_deref() == Some(presented)
        })
    }

    /// Kills the container now: SIGKILL to its process group (its exit
    /// watcher then cleans up the cgroups and reports the exit).
    pub fn kill(&self, container_id: &str) {
        let pid = self.lock().get(container_id).map(|r| r.pid);
        if let Some(pid) = pid.filter(|p| *p > 0) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    /// Kills what an executor left in its container's cgroup subtree (where
    /// a drover-executor puts its tasks) and removes it.
    async fn destroy_container(&self, spec: &LaunchSpec) {
        let relative = self.host.cgroup_parent.join(&spec.container_id);
        let result = tokio::task::spawn_blocking(move || {
            cgroups::destroy(std::path::Path::new(CGROUP_ROOT), &relative)
        })
        .await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cleaning up an executor's cgroups"),
            Err(e) => tracing::warn!(error = %e, "the cgroup cleanup task failed"),
        }
    }

    /// At exit: SIGTERM every executor's group, SIGKILL what is left after
    /// `grace`, then remove the cgroup parent.
    pub async fn stop_all(&self, grace: Duration) {
        let pids: Vec<i32> = self
            .running()
            .iter()
            .map(|r| r.pid)
            .filter(|p| *p > 0)
            .collect();
        for pid in &pids {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + grace;
        while !self.lock().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for r in self.running() {
            if r.pid > 0 {
                let _ = killpg(Pid::from_raw(r.pid), Signal::SIGKILL);
            }
        }
        let parent = self.host.cgroup_parent.clone();
        let result = tokio::task::spawn_blocking(move || {
            cgroups::destroy(std::path::Path::new(CGROUP_ROOT), &parent)
        })
        .await;
        if let Ok(Err(e)) = result {
            tracing::warn!(error = %e, "removing the cgroup parent");
        }
    }
}

/// Points the executor's `runs/latest` at `sandbox`, its newest run, as a
/// Mesos agent does: the files API's virtual path
/// `/frameworks/<fw>/executors/<exec>/runs/latest` goes through it. A
/// failure costs only that path, so it is logged, not fatal.
fn link_latest(sandbox: &std::path::Path) {
    let (Some(runs), Some(run)) = (sandbox.parent(), sandbox.file_name()) else {
        return;
    };
    let latest = runs.join("latest");
    let _ = std::fs::remove_file(&latest);
    if let Err(e) = std::os::unix::fs::symlink(run, &latest) {
        tracing::warn!(path = %latest.display(), error = %e, "cannot link the latest run");
    }
}
