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

impl Probe for CommandProbe {
    fn check(&self) -> Pin<Box<dyn Future<Output = Outcome> + Send + '_>> {
        Box::pin(async move {
            let spec = SpawnSpec {
                argv: self.argv.clone(),
                env: self.env.clone(),
                cwd: self.cwd.clone(),
                user: self.user.clone(),
                namespaces: false,
                stdout: None,
                stderr: None,
            };
            let mut child = match spawn(self.cgroup.as_ref(), spec) {
                Ok(child) => child,
                Err(e) => {
                    return Outcome::Unhealthy(format!("health check command could not start: {e}"))
                }
            };
            // If the caller's timeout drops this future, the check must not
            // linger: the guard kills it.
            let mut guard = KillOnDrop(Some(&mut child));
            let status = match guard.0.as_mut() {
                Some(child) => child.wait().await,
                None => return Outcome::Unhealthy("health check lost its process".into()),
            };
            guard.0 = None;
            match status {
                Ok(status) if status.success() => Outcome::Healthy,
                Ok(status) => Outcome::Unhealthy(format!("health check command {status}")),
                Err(e) => Outcome::Unhealthy(format!("waiting for the health check command: {e}")),
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
