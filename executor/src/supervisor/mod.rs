//! The task supervisor: drives one task from LAUNCH to its terminal update.
//!
//! [`lifecycle`] decides; [`supervise`] (this file) carries out its actions
//! with the container layer and the hooks, and reports each update to the
//! executor loop. One tokio task per task; commands (KILL, usage) arrive on
//! a channel, updates leave on another.
//!
//! # Layout
//! - [`task`]: TaskInfo -> TaskPlan at the Mesos edge, with [`check_plan`]
//!   (its Mesos check).
//! - [`identity`]: who the task runs as, and the refusal of root.
//! - [`image`]: an image task's image prepared and its root assembled.
//! - [`lifecycle`]: the pure state machine.
//! - [`hooks`]: sandbox, logs, health checks.

pub mod check_plan;
pub mod hooks;
pub mod identity;
pub mod image;
pub mod lifecycle;
pub mod task;

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::container::cgroup::CgroupConfig;
use crate::container::logs::RotationPolicy;
use crate::container::rootfs::PivotPlan;
use crate::container::spawn::{spawn, SpawnSpec};
use crate::container::{CgroupManager, Usage};
use hooks::{Launch, Started, TaskHook};
use image::ImageContainer;
use lifecycle::{Action, ExitFacts, Lifecycle, Report};
use task::{PlanError, TaskPlan};

/// What every supervisor shares.
#[derive(Debug, Clone)]
pub struct SupervisorContext {
    /// Where task cgroups go.
    pub cgroups: CgroupConfig,
    /// Run tasks in new PID/mount/UTS/IPC namespaces.
    pub namespaces: bool,
    /// Log rotation of each task's stdout/stderr.
    pub rotation: RotationPolicy,
    /// Prefix of cgroup names, so two executors' tasks never collide.
    pub cgroup_prefix: String,
    /// Whether a task may run as root (`DROVER_ALLOW_ROOT_TASKS`).
    pub allow_root_tasks: bool,
    /// The image store and where image containers' roots go.
    pub images: Arc<image::Images>,
}

/// What the executor asks of a supervisor.
#[derive(Debug)]
pub enum Command {
    /// Kill the task with this grace period.
    Kill {
        /// SIGTERM-to-SIGKILL time.
        grace: Duration,
    },
    /// Report the task's resource usage.
    Usage(oneshot::Sender<Option<Usage>>),
}

/// What a supervisor tells the executor.
#[derive(Debug)]
pub enum SupervisorEvent {
    /// Send this update for the task.
    Report(String, Report),
    /// The task's supervisor is done (after its terminal report).
    Finished(String),
}

/// A task to supervise.
pub struct TaskRun {
    /// The Mesos task id (also when the plan failed).
    pub task_id: String,
    /// The plan, or why there is none.
    pub plan: Result<TaskPlan, PlanError>,
    /// The task's sandbox directory.
    pub sandbox: PathBuf,
    /// Whether the framework has TASK_KILLING_STATE.
    pub killing_capable: bool,
}

/// A cgroup directory name from ids that may hold any character.
pub fn cgroup_name(prefix: &str, task_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    format!("{}.{}", clean(prefix), clean(task_id))
}

struct Driver {
    task_id: String,
    life: Lifecycle,
    events: mpsc::Sender<SupervisorEvent>,
    cgroup: Option<Arc<dyn CgroupManager>>,
    /// Set for a task in its own PID namespace: the relay to send the
    /// graceful signal to, which passes it to every process of the
    /// namespace once (signalling the whole cgroup would repeat it).
    relay_pid: Option<i32>,
    hooks: Vec<Box<dyn TaskHook>>,
}

impl Driver {
    async fn apply(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Report(report) => {
                    let _ = self
                        .events
                        .send(SupervisorEvent::Report(self.task_id.clone(), report))
                        .await;
                }
                Action::Terminate => {
                    for hook in &mut self.hooks {
                        hook.pre_kill();
                    }
                    match self.relay_pid {
                        // SAFETY: kill(2) has no memory effects; the pid is
                        // our child, not yet reaped (we wait for it).
                        Some(pid) => unsafe {
                            libc::kill(pid, libc::SIGTERM);
                        },
                        None => {
                            self.on_cgroup("SIGTERM", |c| c.signal_all(libc::SIGTERM))
                                .await
                        }
                    }
                }
                Action::KillAll => self.on_cgroup("SIGKILL", |c| c.kill_all()).await,
            }
        }
    }

    async fn on_cgroup(
        &self,
        what: &'static str,
        f: impl FnOnce(&dyn CgroupManager) -> Result<(), crate::container::CgroupError> + Send + 'static,
    ) {
        let Some(cgroup) = self.cgroup.clone() else {
            return;
        };
        let result = tokio::task::spawn_blocking(move || f(cgroup.as_ref())).await;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::error!(task = %self.task_id, error = %e, "{what} of the task's cgroup failed")
            }
            Err(e) => {
                tracing::error!(task = %self.task_id, error = %e, "{what} of the task's cgroup panicked")
            }
        }
    }
}

/// Creates the cgroup, applies the limits and spawns the task (blocking).
/// An image task enters its root (`rootfs`) and starts in `cwd` there.
fn start(
    cgroup: Arc<dyn CgroupManager>,
    plan: &TaskPlan,
    launch: Launch,
    namespaces: bool,
    rootfs: Option<(PivotPlan, PathBuf)>,
) -> Result<tokio::process::Child, String> {
    cgroup
        .create()
        .map_err(|e| format!("creating the task's cgroup: {e}"))?;
    let (rootfs, cwd) = match rootfs {
        Some((pivot, cwd)) => (Some(pivot), cwd),
        None => (None, launch.sandbox),
    };
    let spec = SpawnSpec {
        argv: plan.argv.clone(),
        env: plan.env.clone(),
        cwd,
        user: launch.user,
        namespaces,
        rootfs,
        stdout: launch.stdout,
        stderr: launch.stderr,
    };
    let spawned = cgroup
        .apply(&plan.limits)
        .map_err(|e| format!("applying the task's limits: {e}"))
        .and_then(|()| spawn(cgroup.as_ref(), spec).map_err(|e| e.to_string()));
    if spawned.is_err() {
        if let Err(e) = cgroup.destroy() {
            tracing::warn!(error = %e, "removing the cgroup of a task that did not start");
        }
    }
    spawned
}

/// Prepares an image task's container (blocking work off the runtime).
async fn prepare_image(
    context: &SupervisorContext,
    plan: &TaskPlan,
    request: &task::ImageRequest,
) -> Result<ImageContainer, String> {
    let images = context.images.clone();
    let request = request.clone();
    let env = plan.env.clone();
    let container_id = cgroup_name(&context.cgroup_prefix, &plan.task_id);
    tokio::task::spawn_blocking(move || image::prepare(&images, &request, &env, &container_id))
        .await
        .unwrap_or_else(|_| Err("preparing the image panicked".to_string()))
}

/// Runs one task to its end. Always ends with a terminal report followed
/// by `Finished`, whatever happens.
pub async fn supervise(
    run: TaskRun,
    context: Arc<SupervisorContext>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<SupervisorEvent>,
) {
    let task_id = run.task_id.clone();
    let mut driver = Driver {
        task_id: task_id.clone(),
        life: Lifecycle::new(run.killing_capable),
        events: events.clone(),
        cgroup: None,
        relay_pid: None,
        hooks: hooks::hooks(&context),
    };
    let facts = match run.plan {
        Err(e) => {
            let mut actions = driver.life.on_launch();
            actions.extend(driver.life.on_start_failed(e.to_string(), true));
            driver.apply(actions).await;
            None
        }
        Ok(plan) => {
            // An image is prepared before TASK_STARTING, which then
            // carries its digest.
            let container = match &plan.image {
                Some(request) => prepare_image(&context, &plan, request).await.map(Some),
                None => Ok(None),
            };
            if let Ok(Some(container)) = &container {
                driver.life.set_labels(container.labels.clone());
            }
            let actions = driver.life.on_launch();
            driver.apply(actions).await;
            match container {
                Err(message) => {
                    let actions = driver.life.on_start_failed(message, false);
                    driver.apply(actions).await;
                    None
                }
                Ok(container) => {
                    if let Some(check) = &plan.check {
                        driver
                            .life
                            .set_check(crate::checks::CheckResult::empty(check.kind).status());
                    }
                    let sandbox = run.sandbox;
                    run_plan(
                        &mut driver,
                        plan,
                        sandbox,
                        &context,
                        &mut commands,
                        container,
                    )
                    .await
                }
            }
        }
    };
    if let Some(facts) = facts {
        let actions = driver.life.on_exited(facts);
        driver.apply(actions).await;
    }
    let _ = events.send(SupervisorEvent::Finished(task_id)).await;
}

/// Looks the task's user up and decides how it runs (blocking: NSS). A
/// user the image names was resolved in the image already (`resolved`).
fn run_as(
    user: Option<&str>,
    resolved: Option<crate::container::user::UserEntry>,
    allow_root: bool,
) -> Result<identity::RunAs, String> {
    let entry = match resolved {
        Some(entry) => Some(entry),
        None => user
            .map(crate::container::user::lookup)
            .transpose()
            .map_err(|e| e.to_string())?,
    };
    identity::decide(entry.as_ref(), nix::unistd::geteuid().as_raw(), allow_root)
        .map_err(|e| e.to_string())
}

async fn run_plan(
    driver: &mut Driver,
    mut plan: TaskPlan,
    sandbox: PathBuf,
    context: &SupervisorContext,
    commands: &mut mpsc::Receiver<Command>,
    container: Option<ImageContainer>,
) -> Option<ExitFacts> {
    // Who it runs as comes first: a task refused here leaves nothing
    // behind (no sandbox handed over, no cgroup).
    let (mut user, allow_root) = (plan.user.clone(), context.allow_root_tasks);
    if let Some(container) = &container {
        // The task's own user, else the image's, else the framework's.
        user = container.command.user.clone().or(user);
    }
    let resolved = container.as_ref().and_then(|c| c.image_user.clone());
    let decided =
        tokio::task::spawn_blocking(move || run_as(user.as_deref(), resolved, allow_root))
            .await
            .unwrap_or_else(|_| Err("deciding the task's user panicked".to_string()));
    let run_as = match decided {
        Ok(run_as) => run_as,
        Err(message) => {
            let actions = driver.life.on_start_failed(message, false);
            driver.apply(actions).await;
            return None;
        }
    };
    if let Some(container) = &container {
        let command = &container.command;
        plan.argv = std::iter::once(command.executable.clone())
            .chain(command.argv.iter().skip(1).cloned())
            .collect();
        plan.env = command.env.clone();
    }
    run_as.add_environment(&mut plan.env);
    let rootfs = match &container {
        None => None,
        Some(container) => match container.pivot_plan(&sandbox) {
            Ok(pivot) => Some((pivot, PathBuf::from(&container.command.cwd))),
            Err(message) => {
                let actions = driver.life.on_start_failed(message, false);
                driver.apply(actions).await;
                return None;
            }
        },
    };
    let mut launch = Launch {
        sandbox: sandbox.clone(),
        user: run_as.switch.clone(),
        ..Default::default()
    };
    for hook in &mut driver.hooks {
        if let Err(e) = hook.prestart(&plan, &mut launch) {
            let message = format!("{} hook: {e}", hook.name());
            let actions = driver.life.on_start_failed(message, false);
            driver.apply(actions).await;
            stop_hooks(driver).await;
            return None;
        }
    }
    let cgroup: Arc<dyn CgroupManager> = context
        .cgroups
        .manager(&cgroup_name(&context.cgroup_prefix, &plan.task_id))
        .into();
    // An image task always gets its own namespaces.
    let namespaces = context.namespaces || container.is_some();
    let (starting_cgroup, starting_plan) = (cgroup.clone(), plan.clone());
    let started = tokio::task::spawn_blocking(move || {
        start(starting_cgroup, &starting_plan, launch, namespaces, rootfs)
    })
    .await;
    let mut child = match started {
        Ok(Ok(child)) => child,
        failed => {
            let message = match failed {
                Ok(Err(message)) => message,
                _ => "the launch panicked".to_string(),
            };
            let actions = driver.life.on_start_failed(message, false);
            driver.apply(actions).await;
            stop_hooks(driver).await;
            return None;
        }
    };
    driver.cgroup = Some(cgroup.clone());
    if namespaces {
        driver.relay_pid = child.id().and_then(|pid| i32::try_from(pid).ok());
    }
    let actions = driver.life.on_started();
    driver.apply(actions).await;
    let (verdict_tx, mut verdicts) = mpsc::channel(8);
    let (check_tx, mut check_statuses) = mpsc::channel(8);
    let started = Started {
        cgroup: cgroup.clone(),
        sandbox,
        user: run_as.switch,
        verdicts: verdict_tx,
        check_statuses: check_tx,
    };
    for hook in &mut driver.hooks {
        hook.poststart(&plan, &started);
    }
    drop(started);

    let status = loop {
        let deadline = driver.life.next_deadline();
        tokio::select! {
            status = child.wait() => break status,
            Some(command) = commands.recv() => match command {
                Command::Kill { grace } => {
                    let actions = driver.life.on_kill(grace, std::time::Instant::now());
                    driver.apply(actions).await;
                }
                Command::Usage(reply) => {
                    let usage_cgroup = cgroup.clone();
                    let usage = tokio::task::spawn_blocking(move || usage_cgroup.usage().ok()).await.ok().flatten();
                    let _ = reply.send(usage);
                }
            },
            Some(verdict) = verdicts.recv() => {
                let actions = driver.life.on_health(verdict, plan.kill_grace, std::time::Instant::now());
                driver.apply(actions).await;
            }
            Some(status) = check_statuses.recv() => {
                let actions = driver.life.on_check(status);
                driver.apply(actions).await;
            }
            _ = sleep_until(deadline) => {
                let actions = driver.life.on_tick(std::time::Instant::now());
                driver.apply(actions).await;
            }
        }
    };
    // The main process is gone: read the OOM verdict before the cgroup goes,
    // then kill whatever it left behind (daemons) and remove the cgroup.
    let cleanup = cgroup.clone();
    let oom_killed = tokio::task::spawn_blocking(move || {
        let oom = cleanup.oom_killed().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the OOM state");
            false
        });
        if let Err(e) = cleanup.kill_all().and_then(|()| cleanup.destroy()) {
            tracing::error!(error = %e, "cleaning up the task's cgroup");
        }
        // No process of the task is left: its root can go.
        if let Some(container) = container {
            container.remove();
        }
        oom
    })
    .await
    .unwrap_or(false);
    stop_hooks(driver).await;
    Some(match status {
        Ok(status) => ExitFacts {
            code: status.code(),
            signal: status.signal(),
            oom_killed,
        },
        Err(e) => {
            tracing::error!(error = %e, "waiting for the task's process");
            ExitFacts {
                code: None,
                signal: None,
                oom_killed,
            }
        }
    })
}

async fn stop_hooks(driver: &mut Driver) {
    for hook in driver.hooks.iter_mut().rev() {
        hook.stop().await;
    }
}

async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
