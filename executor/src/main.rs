//! `drover-executor`: runs a Mesos task's processes under Linux cgroups.
//!
//! The executor API and containers arrive with the executor issue; today the
//! binary parses its command line.

use clap::Parser;

/// A Mesos executor that runs each task in its own cgroup and reports its
/// status over the v1 executor HTTP API. Configured from the environment a
/// Mesos agent sets (MESOS_AGENT_ENDPOINT, MESOS_FRAMEWORK_ID, ...).
#[derive(Debug, Parser)]
#[command(name = "drover-executor", version, about)]
struct Config {
    /// The agent's HTTP endpoint (host:port).
    #[arg(long, env = "MESOS_AGENT_ENDPOINT")]
    agent_endpoint: Option<String>,
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    anyhow::bail!("drover-executor is not implemented yet (agent {:?})", config.agent_endpoint)
}
