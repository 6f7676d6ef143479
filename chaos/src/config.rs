//! `drover-chaos`'s flags: which dose, the seed, where the logs go, and
//! overrides of the dose's figures. Parsed once in `main`.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::dose::Dose;

/// Runs the chaos suite: real scheduler replicas on PostgreSQL and
/// ZooKeeper against a master set of agent-sim masters, under a seeded
/// schedule of faults, and checks that nothing was duplicated, run again,
/// lost, or acknowledged without being stored. Exits 1 when anything was.
#[derive(Debug, Parser)]
#[command(name = "drover-chaos", version)]
pub struct ChaosConfig {
    /// The long dose: 100 leader SIGKILLs, 20 master failovers, 10
    /// partitions and agent churn during a 10,000-instance run on 1,000
    /// agents (15-30 minutes). Default: the short CI dose (about 2 minutes).
    #[arg(long, env = "DROVER_CHAOS_LONG")]
    pub long: bool,
    /// The seed of the fault schedule and the workload (printed at start;
    /// give it again to replay a run). Default: from the clock.
    #[arg(long, env = "DROVER_CHAOS_SEED")]
    pub seed: Option<u64>,
    /// Where the processes' logs and data dirs go (kept after the run).
    /// Default: a temporary directory, removed after a passing run.
    #[arg(long, env = "DROVER_CHAOS_RUN_DIR")]
    pub run_dir: Option<PathBuf>,
    /// Start the masters without `--state-dir`: a new leading master then
    /// offers a fresh fleet, and every task of the old one is relaunched.
    /// Default: the masters share one `--state-dir`, and the new leading
    /// master takes over the old one's agents and their tasks, as a Mesos
    /// master set does.
    #[arg(long, env = "DROVER_CHAOS_FRESH_MASTER_FLEET")]
    pub fresh_master_fleet: bool,
    /// Override: simulated agents per master.
    #[arg(long)]
    pub agents: Option<usize>,
    /// Override: leader SIGKILLs.
    #[arg(long)]
    pub leader_kills: Option<u32>,
    /// Override: master failovers.
    #[arg(long)]
    pub master_failovers: Option<u32>,
    /// Override: leader partitions.
    #[arg(long)]
    pub partitions: Option<u32>,
    /// Override: the seconds the faults are spread over.
    #[arg(long)]
    pub fault_window_secs: Option<u64>,
}

impl ChaosConfig {
    /// The dose these flags ask for.
    pub fn dose(&self) -> Dose {
        let mut dose = if self.long { Dose::long() } else { Dose::ci() };
        if let Some(agents) = self.agents {
            dose.agents = agents;
        }
        if let Some(n) = self.leader_kills {
            dose.faults.leader_kills = n;
        }
        if let Some(n) = self.master_failovers {
            dose.faults.master_failovers = n;
        }
        if let Some(n) = self.partitions {
            dose.faults.partitions = n;
        }
        if let Some(s) = self.fault_window_secs {
            dose.fault_window = Duration::from_secs(s);
        }
        dose
    }
}
