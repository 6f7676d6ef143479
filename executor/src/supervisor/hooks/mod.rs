//! Side concerns of a task's life, one hook per file (STYLE 9; Nomad's
//! task runner hooks). The ordered list is [`hooks`]; the supervisor calls
//! every hook through [`TaskHook`] and never by name.

mod check;
mod fetch;
mod health;
mod logs;
mod probe_target;
mod sandbox;
mod secrets;

use std::future::Future;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::mpsc;

use super::task::TaskPlan;
use super::SupervisorContext;
use crate::container::user::Credentials;
use crate::container::CgroupManager;
use crate::health::HealthAction;

/// A hook's failure; the task fails with a message naming the hook.
#[derive(Debug, thiserror::Error)]
#[error("{hook} hook: {source}")]
pub struct HookError {
    /// The hook's name.
    pub hook: &'static str,
    /// What went wrong.
    #[source]
    pub source: std::io::Error,
}

/// What prestart hooks prepare for the spawn.
#[derive(Debug, Default)]
pub struct Launch {
    /// The task's sandbox directory.
    pub sandbox: PathBuf,
    /// The user to switch to, when the task runs as another user than the
    /// executor.
    pub user: Option<Credentials>,
    /// stdout for the task.
    pub stdout: Option<OwnedFd>,
    /// stderr for the task.
    pub stderr: Option<OwnedFd>,
}

/// What poststart hooks get once the process runs.
pub struct Started {
    /// The task's cgroup.
    pub cgroup: Arc<dyn CgroupManager>,
    /// The task's sandbox.
    pub sandbox: PathBuf,
    /// Where COMMAND checks start: the sandbox as the task sees it (its
    /// mount point inside an image's root, the sandbox itself otherwise).
    pub check_cwd: PathBuf,
    /// The user the task was switched to, if any (checks run as it too).
    pub user: Option<Credentials>,
    /// The task has PID and mount namespaces of its own: COMMAND checks
    /// run inside them.
    pub in_namespaces: bool,
    /// Where health verdicts go.
    pub verdicts: mpsc::Sender<HealthAction>,
    /// Where the Mesos check's changed results go.
    pub check_statuses: mpsc::Sender<drover_proto::v1::CheckStatusInfo>,
}

/// One side concern. Every method has a no-op default.
pub trait TaskHook: Send + Sync {
    /// The name used in error messages.
    fn name(&self) -> &'static str;
    /// Before the process is spawned.
    fn prestart(&mut self, _plan: &TaskPlan, _launch: &mut Launch) -> Result<(), std::io::Error> {
        Ok(())
    }
    /// Right after the process runs.
    fn poststart(&mut self, _plan: &TaskPlan, _started: &Started) {}
    /// Once the kill begins.
    fn pre_kill(&mut self) {}
    /// After every process of the task is gone; awaits the hook's own work.
    fn stop(&mut self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// The hooks of every task, in the order they run.
pub fn hooks(context: &SupervisorContext) -> Vec<Box<dyn TaskHook>> {
    vec![
        // The sandbox first: the others put files in it.
        Box::new(sandbox::SandboxHook),
        // CommandInfo.uris into the sandbox, handed to the task's user,
        // before secrets and logs (a fetched file never replaces them).
        Box::new(fetch::FetchHook {
            cache: context.fetcher_cache.clone(),
        }),
        // Secrets once the sandbox is the task user's, before anything
        // runs in it.
        Box::new(secrets::SecretsHook),
        // Logs before spawn: the child inherits the pipes' write ends.
        Box::new(logs::LogsHook::new(context.rotation)),
        // Health checks once the process runs; stopped first at a kill.
        Box::new(health::HealthHook::default()),
        // The Mesos check (readiness) likewise; it never kills.
        Box::new(check::CheckHook::default()),
    ]
}
