//! The executor's one clap struct: every flag from the `MESOS_*` variables
//! an agent sets (reference 4.1) plus Drover's own `DROVER_*` ones. Parsed
//! and validated once in `main`, then split into per-module configs.

use std::path::PathBuf;
use std::time::Duration;

use drover_proto::MediaType;

use crate::agent::SessionConfig;
use crate::container::cgroup::{detect_version, CgroupConfig, CgroupError};
use crate::container::logs::RotationPolicy;
use crate::container::rootfs::RootfsMode;
use crate::executor::{ExecutorConfig, Mode};
use crate::supervisor::image::{ImageSettings, Images};
use crate::supervisor::SupervisorContext;
use drover_proto::duration;

/// Wire encodings the executor can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContentType {
    /// `application/x-protobuf` (the default, as Mesos' own executors).
    Protobuf,
    /// `application/json`.
    Json,
}

/// A Mesos executor that runs each task in its own cgroup and reports its
/// status over the v1 executor HTTP API.
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "drover-executor", version, about)]
pub struct Config {
    /// The agent's HTTP endpoint, `ip:port`.
    #[arg(long, env = "MESOS_AGENT_ENDPOINT")]
    pub agent_endpoint: String,
    /// The framework id, for every call.
    #[arg(long, env = "MESOS_FRAMEWORK_ID")]
    pub framework_id: String,
    /// This executor's id, for every call.
    #[arg(long, env = "MESOS_EXECUTOR_ID")]
    pub executor_id: String,
    /// The token the agent gave us (when it authenticates executors), sent
    /// as `Authorization: Bearer <token>` on every call, as Mesos' executor
    /// library does (`src/executor/executor.cpp`; docs/authentication.md,
    /// "Executor").
    #[arg(
        long,
        env = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN",
        hide_env_values = true
    )]
    pub executor_authentication_token: Option<String>,
    /// The sandbox directory. Default: the working directory.
    #[arg(long, env = "MESOS_SANDBOX", default_value = ".")]
    pub sandbox: PathBuf,
    /// "1" if the framework checkpoints: re-subscribe after the agent
    /// restarts instead of shutting down ("0", the default).
    #[arg(long, env = "MESOS_CHECKPOINT", default_value = "0")]
    pub checkpoint: String,
    /// How long to keep re-subscribing after a disconnection (Mesos
    /// duration, default the agent's 15mins).
    #[arg(long, env = "MESOS_RECOVERY_TIMEOUT", default_value = "15mins", value_parser = duration::parse)]
    pub recovery_timeout: Duration,
    /// The most to wait between re-subscription attempts (default 2secs).
    #[arg(long, env = "MESOS_SUBSCRIPTION_BACKOFF_MAX", default_value = "2secs", value_parser = duration::parse)]
    pub subscription_backoff_max: Duration,
    /// Time the agent allows between SHUTDOWN and destroying us (5secs).
    #[arg(long, env = "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", default_value = "5secs", value_parser = duration::parse)]
    pub executor_shutdown_grace_period: Duration,
    /// Command executor (one CommandInfo task, then exit) or custom executor.
    #[arg(
        long,
        env = "DROVER_EXECUTOR_MODE",
        value_enum,
        default_value = "custom"
    )]
    pub mode: Mode,
    /// Encoding of calls and events.
    #[arg(
        long,
        env = "DROVER_CONTENT_TYPE",
        value_enum,
        default_value = "protobuf"
    )]
    pub content_type: ContentType,
    /// The cgroup filesystem root.
    #[arg(long, env = "DROVER_CGROUP_ROOT", default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// Parent of the tasks' cgroups, relative to the root (Mesos'
    /// `--cgroups_root`, default `drover`).
    #[arg(long, env = "DROVER_CGROUPS_ROOT", default_value = "drover")]
    pub cgroups_root: PathBuf,
    /// Enforce cpus as a hard CFS quota too (Mesos' `--cgroups_enable_cfs`).
    #[arg(long, env = "DROVER_CGROUPS_ENABLE_CFS", default_value_t = false)]
    pub cgroups_enable_cfs: bool,
    /// A pids limit for every task (none by default).
    #[arg(long, env = "DROVER_PIDS_LIMIT")]
    pub pids_limit: Option<u64>,
    /// Run tasks in new PID, mount, UTS and IPC namespaces.
    #[arg(long, env = "DROVER_NAMESPACES", default_value_t = false)]
    pub namespaces: bool,
    /// Largest stdout/stderr file before rotation, bytes (10 MiB).
    #[arg(long, env = "DROVER_LOG_MAX_BYTES", default_value_t = 10 << 20)]
    pub log_max_bytes: u64,
    /// Rotated log files kept per stream.
    #[arg(long, env = "DROVER_LOG_KEEP", default_value_t = 2)]
    pub log_keep: usize,
    /// Re-send an unacknowledged update after this long (Mesos duration).
    #[arg(long, env = "DROVER_UPDATE_RETRY_INTERVAL", default_value = "10secs", value_parser = duration::parse)]
    pub update_retry_interval: Duration,
    /// Let tasks run as root. Without it a task whose user is root (or
    /// that names no user while the executor is root) fails with
    /// TASK_FAILED. drover-scheduler sets it under `--allow-root-tasks`.
    #[arg(long, env = "DROVER_ALLOW_ROOT_TASKS", default_value_t = false)]
    pub allow_root_tasks: bool,
    /// Log as JSON lines.
    #[arg(long, env = "DROVER_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
    /// The local image store: OCI image layouts (a directory each) and
    /// `docker save` tarballs (`*.tar`) that tasks name in
    /// `ContainerInfo.mesos.image`. No registry is contacted.
    #[arg(
        long,
        env = "DROVER_IMAGE_DIR",
        default_value = "/var/lib/drover/images"
    )]
    pub image_dir: PathBuf,
    /// The unpacked-layer cache, shared by every executor of the host.
    #[arg(
        long,
        env = "DROVER_IMAGE_CACHE_DIR",
        default_value = "/var/lib/drover/image-cache"
    )]
    pub image_cache_dir: PathBuf,
    /// The cache's size bound, bytes (10 GiB); unused layers go first.
    #[arg(long, env = "DROVER_IMAGE_CACHE_MAX_BYTES", default_value_t = 10 << 30)]
    pub image_cache_max_bytes: u64,
    /// Where each image container's root (and its overlay upper and work
    /// directories) is made; removed when the task ends.
    #[arg(
        long,
        env = "DROVER_IMAGE_ROOTFS_DIR",
        default_value = "/var/lib/drover/image-rootfs"
    )]
    pub image_rootfs_dir: PathBuf,
    /// How an image's layers become the task's root: `auto` (overlayfs,
    /// a copy when overlay is refused) or `copy` (always a copy).
    #[arg(long, env = "DROVER_IMAGE_ROOTFS", value_enum, default_value = "auto")]
    pub image_rootfs: RootfsMode,
}

impl Config {
    /// Splits the flags into the executor's config, probing the cgroup
    /// version once.
    pub fn executor_config(&self) -> Result<ExecutorConfig, CgroupError> {
        let version = detect_version(&self.cgroup_root)?;
        let sandbox = std::path::absolute(&self.sandbox).unwrap_or_else(|_| self.sandbox.clone());
        Ok(ExecutorConfig {
            session: SessionConfig {
                framework_id: self.framework_id.clone(),
                executor_id: self.executor_id.clone(),
                // Compare with "1": "0" is set, and truthy in many languages.
                checkpoint: self.checkpoint.trim() == "1",
                recovery_timeout: self.recovery_timeout,
                subscription_backoff_max: self.subscription_backoff_max,
                update_retry_interval: self.update_retry_interval,
            },
            agent_endpoint: self.agent_endpoint.clone(),
            authentication_token: self.executor_authentication_token.clone(),
            media: match self.content_type {
                ContentType::Protobuf => MediaType::Protobuf,
                ContentType::Json => MediaType::Json,
            },
            mode: self.mode,
            sandbox,
            shutdown_grace: self.executor_shutdown_grace_period,
            supervisor: SupervisorContext {
                cgroups: CgroupConfig {
                    root: self.cgroup_root.clone(),
                    parent: self.cgroups_root.clone(),
                    version,
                },
                namespaces: self.namespaces,
                rotation: RotationPolicy {
                    max_bytes: self.log_max_bytes,
                    keep: self.log_keep,
                },
                cgroup_prefix: format!("{}.{}", self.framework_id, self.executor_id),
                allow_root_tasks: self.allow_root_tasks,
                images: std::sync::Arc::new(Images::new(ImageSettings {
                    image_dir: self.image_dir.clone(),
                    cache_dir: self.image_cache_dir.clone(),
                    max_bytes: self.image_cache_max_bytes,
                    rootfs_dir: self.image_rootfs_dir.clone(),
                    rootfs_mode: self.image_rootfs,
                })),
            },
            cfs_quota: self.cgroups_enable_cfs,
            pids_max: self.pids_limit,
            ack_fail_safe: Duration::from_secs(60),
        })
    }
}
