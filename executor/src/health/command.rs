//! COMMAND health check: runs the check's command in the task's cgroup,
//! with the task's environment and sandbox; exit code 0 is healthy.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use super::{Outcome, Probe};
use crate::container::spawn::{spawn, SpawnSpec};
use crate::container::user::Credentials;
use crate::container::CgroupManager;

/// Runs `argv` inside the task's container.
#[derive(Debug)]
pub struct CommandProbe {
    /// The task's cgroup: the check is accounted and killed with the task.
    pub cgroup: Arc<dyn CgroupManager>,
    /// The check's command line.
    pub argv: Vec<String>,
    /// The task's environment plus the check's own variables.
    pub env: Vec<(String, String)>,
    /// The task's sandbox.
    pub cwd: PathBuf,
    /// The task's user, when it was switched to one: a check is the
    /// task's code and runs with its rights (as in Mesos).
    pub user: Option<Credentials>,
}

impl CommandProbe {
    /// Runs the command once: its exit code (128 + the signal for one a
    /// signal ended), or why it could not run. A readiness check reports
    /// the code itself (Mesos `CheckStatusInfo.Command.exit_code`).
    pub async fn exit_code(&self) -> Result<i32, String> {
        let spec = SpawnSpec {
            argv: self.argv.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            user: self.user.clone(),
            namespaces: false,
            rootfs: None,
            stdout: None,
            stderr: None,
        };
        let mut child = spawn(self.cgroup.as_ref(), spec)
            .map_err(|e| format!("check command could not start: {e}"))?;
        // If the caller's timeout drops this future, the check must not
        // linger: the guard kills it.
        let mut guard = KillOnDrop(Some(&mut child));
        let status = match guard.0.as_mut() {
            Some(child) => child.wait().await,
            None => return Err("check lost its process".into()),
        };
        guard.0 = None;
        let status = status.map_err(|e| format!("waiting for the check command: {e}"))?;
        use std::os::unix::process::ExitStatusExt;
        Ok(status
            .code()
            .or_else(|| status.signal().map(|s| 128 + s))
            .unwrap_or(-1))
    }
}

impl Probe for CommandProbe {
    fn check(&self) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            match self.exit_code().await {
                Ok(0) => Outcome::Healthy,
                Ok(code) => Outcome::Unhealthy(format!("health check command exited with {code}")),
                Err(e) => Outcome::Unhealthy(format!("health {e}")),
            }
        })
    }
}

struct KillOnDrop<'a>(Option<&'a mut tokio::process::Child>);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(child) = self.0.take() {
            let _ = child.start_kill();
        }
    }
}
