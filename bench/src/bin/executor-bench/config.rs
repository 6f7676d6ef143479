//! The benchmark's one clap struct; every flag also reads a
//! `DROVER_BENCH_*` variable.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use drover_proto::duration;

/// Prints the executor's LAUNCH-to-TASK_RUNNING latency, memory and kill
/// time beside baselines measured in the same run, and writes them as JSON.
/// Needs root (cgroups).
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "drover-executor-bench", version, about)]
pub struct BenchConfig {
    /// The `drover-executor` binary. Default: the one next to this program.
    #[arg(long, env = "DROVER_BENCH_EXECUTOR")]
    pub executor: Option<PathBuf>,
    /// Short tasks timed from LAUNCH to TASK_RUNNING (the 500).
    #[arg(long, env = "DROVER_BENCH_TASKS", default_value_t = 500)]
    pub tasks: usize,
    /// Untimed launches first, so first-use costs (the parent cgroup, the
    /// connection, page faults) do not land in the samples.
    #[arg(long, env = "DROVER_BENCH_WARMUP", default_value_t = 10)]
    pub warmup: usize,
    /// Tasks kept running while the executor's memory is read (the
    /// issue's 50).
    #[arg(long, env = "DROVER_BENCH_RUNNING", default_value_t = 50)]
    pub running: usize,
    /// Kill grace of the task that ignores SIGTERM (the 1 s).
    #[arg(long, env = "DROVER_BENCH_KILL_GRACE", default_value = "1secs", value_parser = duration::parse)]
    pub kill_grace: Duration,
    /// How many times the kill is timed.
    #[arg(long, env = "DROVER_BENCH_KILL_ROUNDS", default_value_t = 3)]
    pub kill_rounds: usize,
    /// The cgroup filesystem root.
    #[arg(long, env = "DROVER_CGROUP_ROOT", default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// The test images (`scripts/test-images.sh DIR`) the image scenarios
    /// run from. Default: `<cargo target dir>/test-images`, built there by
    /// the script when missing.
    #[arg(long, env = "DROVER_BENCH_IMAGES")]
    pub images: Option<PathBuf>,
    /// Warm and cold image launches timed (each).
    #[arg(long, env = "DROVER_BENCH_IMAGE_ROUNDS", default_value_t = 10)]
    pub image_rounds: usize,
    /// Skip the image scenarios.
    #[arg(long, env = "DROVER_BENCH_NO_IMAGES", default_value_t = false)]
    pub no_images: bool,
    /// Where the JSON goes. Default: `<cargo target dir>/bench/executor.json`,
    /// found from this program's own path (`target/release/...`).
    #[arg(long, env = "DROVER_BENCH_OUT")]
    pub out: Option<PathBuf>,
}

impl BenchConfig {
    /// The executor binary to run.
    pub fn executor_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.executor {
            return Ok(path.clone());
        }
        let me = std::env::current_exe().context("finding this program's path")?;
        let path = me.with_file_name("drover-executor");
        anyhow::ensure!(
            path.is_file(),
            "{} not found: build it (`cargo build --release -p drover-executor`) or pass --executor",
            path.display()
        );
        Ok(path)
    }

    /// Where the JSON goes.
    pub fn out_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.out {
            return Ok(path.clone());
        }
        Ok(target_dir()?.join("bench").join("executor.json"))
    }

    /// The test images, built by `scripts/test-images.sh` (idempotent)
    /// unless given.
    pub fn images_path(&self) -> anyhow::Result<PathBuf> {
        if let Some(path) = &self.images {
            return Ok(path.clone());
        }
        let target = target_dir()?;
        let out = target.join("test-images");
        let script = target
            .parent()
            .context("the target directory has no parent")?
            .join("scripts/test-images.sh");
        let status = std::process::Command::new(&script)
            .arg(&out)
            .status()
            .with_context(|| format!("running {}", script.display()))?;
        anyhow::ensure!(status.success(), "{} failed", script.display());
        Ok(out)
    }
}

/// The cargo target directory this program was built in.
fn target_dir() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding this program's path")?;
    // target/<profile>/drover-executor-bench -> target
    me.parent()
        .and_then(|profile| profile.parent())
        .map(std::path::Path::to_path_buf)
        .context("this program is not inside a cargo target directory; pass --out and --images")
}
