//! The benchmark's flags (`DROVER_BENCH_*`): which sizes to run, where the
//! binaries and the pymesos interpreter are, where results go, and how
//! long any one wait may take. `--quick` swaps in the smoke-run sizes.

use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;

/// `drover-bench`: every scenario of issue 7 in one run.
#[derive(Debug, Clone, Parser)]
#[command(version, about)]
pub struct Config {
    /// Small sizes and one run of each (a smoke run of a few seconds).
    #[arg(long, env = "DROVER_BENCH_QUICK")]
    pub quick: bool,
    /// Agents of the first launch scenario (and the limit and peer runs).
    #[arg(long, env = "DROVER_BENCH_SMALL_AGENTS")]
    pub small_agents: Option<usize>,
    /// Tasks of the first launch scenario.
    #[arg(long, env = "DROVER_BENCH_SMALL_TASKS")]
    pub small_tasks: Option<usize>,
    /// Agents of the large launch scenario (also recovery and memory).
    #[arg(long, env = "DROVER_BENCH_LARGE_AGENTS")]
    pub large_agents: Option<usize>,
    /// Tasks of the large launch scenario.
    #[arg(long, env = "DROVER_BENCH_LARGE_TASKS")]
    pub large_tasks: Option<usize>,
    /// Short tasks of the status-update scenario.
    #[arg(long, env = "DROVER_BENCH_UPDATE_TASKS")]
    pub update_tasks: Option<usize>,
    /// Pending tasks of the placement scenario.
    #[arg(long, env = "DROVER_BENCH_PLACEMENT_TASKS")]
    pub placement_tasks: Option<usize>,
    /// Hosts of the placement scenario.
    #[arg(long, env = "DROVER_BENCH_PLACEMENT_HOSTS")]
    pub placement_hosts: Option<usize>,
    /// Agents of the rolling-update scenario.
    #[arg(long, env = "DROVER_BENCH_ROLLING_AGENTS")]
    pub rolling_agents: Option<usize>,
    /// Instances of the service the rolling-update scenario updates.
    #[arg(long, env = "DROVER_BENCH_ROLLING_INSTANCES")]
    pub rolling_instances: Option<usize>,
    /// Its update's batch size.
    #[arg(long, env = "DROVER_BENCH_ROLLING_BATCH")]
    pub rolling_batch: Option<u32>,
    /// Instances per job: a launch is created as jobs of this size, one
    /// after another, as a user's script would. (The scheduler takes up to
    /// 100,000 per job; 100,000 tasks as one job measured the same.)
    #[arg(long, env = "DROVER_BENCH_MAX_JOB_INSTANCES", default_value_t = 10_000)]
    pub max_job_instances: usize,
    /// Runs of each launch scenario (Drover, the limit and the peer in
    /// turn, so that a slow spell of a shared machine falls on all of
    /// them); each reports its median run. Default 5 (`--quick`: 1): the
    /// limit's median of three runs at 1,000 agents was 136,228 tasks/s
    /// in one invocation and 113,365 in the next, an hour apart.
    #[arg(long, env = "DROVER_BENCH_REPEAT")]
    pub repeat: Option<usize>,
    /// The store every Drover scenario runs on: `sqlite` (the default: a
    /// file in the scheduler's data directory) or `postgres` (a server
    /// started for the run by scripts/postgres-env.sh's programs).
    #[arg(long, env = "DROVER_BENCH_STORE", value_enum, default_value_t = StoreKind::Sqlite)]
    pub store: StoreKind,
    /// Scenarios to run (comma-separated); all but `stores` when empty.
    #[arg(long, env = "DROVER_BENCH_ONLY", value_delimiter = ',')]
    pub only: Vec<Scenario>,
    /// The longest any one wait may take, in seconds.
    #[arg(long, env = "DROVER_BENCH_TIMEOUT_SECS")]
    pub timeout_secs: Option<u64>,
    /// Where drover-agent-sim and drover-scheduler are (default: beside
    /// this binary).
    #[arg(long, env = "DROVER_BENCH_BIN_DIR")]
    pub bin_dir: Option<PathBuf>,
    /// The Python with pymesos (default: target/pymesos-venv/bin/python,
    /// made by scripts/pymesos-env.sh when missing).
    #[arg(long, env = "DROVER_BENCH_PYTHON")]
    pub python: Option<PathBuf>,
    /// The workspace root (default: the current directory).
    #[arg(long, env = "DROVER_BENCH_ROOT", default_value = ".")]
    pub root: PathBuf,
}

/// The store `--store` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// SQLite in the data directory.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// One scenario, as `--only` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Drover's launch throughput at both fleet sizes (+ recovery, memory).
    Launch,
    /// The no-policy Rust client.
    Limit,
    /// The pymesos first-fit scheduler.
    Peer,
    /// Status updates stored and acknowledged.
    Updates,
    /// The placement module alone.
    Placement,
    /// Create-and-read round trips through the gRPC and the JSON API.
    Api,
    /// JSON and gRPC request rates with TLS (and, later, authentication)
    /// off and on, as ratios of the plain port's (`api_security.rs`).
    Security,
    /// A rolling update of a service against its fresh launch.
    RollingUpdate,
    /// A launch with many watchers against one without.
    Watchers,
    /// Resource pools: fairness error and preemptions under contention,
    /// and the launch rate with pools against without (in process).
    Pools,
    /// A Kubeflow pipeline run of a fan-out/fan-in DAG against the same
    /// tasks as one batch job (`kfp_run.rs`).
    KfpRun,
    /// The small launch on PostgreSQL against SQLite, runs alternated,
    /// and recovery with the large launch's tasks on each (`stores.rs`).
    /// Only when named: it needs PostgreSQL.
    Stores,
}

/// The sizes a run uses, after `--quick` and the size flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Agents and tasks of the small launch.
    pub small: (usize, usize),
    /// Agents and tasks of the large launch.
    pub large: (usize, usize),
    /// Tasks of the update scenario (on `small.0` agents).
    pub update_tasks: usize,
    /// Tasks and hosts of the placement scenario.
    pub placement: (usize, usize),
    /// Agents, instances and batch size of the rolling update.
    pub rolling: (usize, usize, u32),
    /// Agents, tasks and watchers of the watchers scenario.
    pub watchers: (usize, usize, usize),
    /// Agents and DAG nodes of the Kubeflow run scenario.
    pub kfp_run: (usize, usize),
    /// Runs of each launch scenario.
    pub repeat: usize,
    /// The longest wait.
    pub timeout: Duration,
}

impl Config {
    /// The sizes of this run.
    pub fn sizes(&self) -> Sizes {
        let (small, large, updates, placement, repeat, timeout) = if self.quick {
            ((100, 2_000), (500, 5_000), 2_000, (1_000, 1_000), 1, 60)
        } else {
            (
                (1_000, 20_000),
                (10_000, 100_000),
                20_000,
                (10_000, 10_000),
                5,
                600,
            )
        };
        let rolling = if self.quick {
            (100, 1_000, 50)
        } else {
            (1_000, 10_000, 500)
        };
        let watchers = if self.quick {
            (100, 2_000, 100)
        } else {
            (1_000, 20_000, 1_000)
        };
        // The size: 1,000 nodes on 100 agents.
        let kfp_run = if self.quick { (10, 100) } else { (100, 1_000) };
        Sizes {
            watchers,
            kfp_run,
            small: (
                self.small_agents.unwrap_or(small.0),
                self.small_tasks.unwrap_or(small.1),
            ),
            large: (
                self.large_agents.unwrap_or(large.0),
                self.large_tasks.unwrap_or(large.1),
            ),
            update_tasks: self.update_tasks.unwrap_or(updates),
            placement: (
                self.placement_tasks.unwrap_or(placement.0),
                self.placement_hosts.unwrap_or(placement.1),
            ),
            rolling: (
                self.rolling_agents.unwrap_or(rolling.0),
                self.rolling_instances.unwrap_or(rolling.1),
                self.rolling_batch.unwrap_or(rolling.2),
            ),
            repeat: self.repeat.unwrap_or(repeat).max(1),
            timeout: Duration::from_secs(self.timeout_secs.unwrap_or(timeout)),
        }
    }

    /// Whether `scenario` is to run.
    pub fn runs(&self, scenario: Scenario) -> bool {
        (self.only.is_empty() && scenario != Scenario::Stores) || self.only.contains(&scenario)
    }

    /// The directory holding the binaries under test.
    pub fn bin_dir(&self) -> PathBuf {
        self.bin_dir.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("."))
        })
    }
}
