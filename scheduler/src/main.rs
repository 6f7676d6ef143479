//! `drover-scheduler`: the Drover framework scheduler.
//!
//! The job API, the Mesos subscription and durable state arrive with the
//! scheduler issues; today the binary parses its command line.

use clap::Parser;

/// Runs users' batch and service jobs on a Mesos cluster.
#[derive(Debug, Parser)]
#[command(name = "drover-scheduler", version, about)]
struct Config {
    /// Mesos master(s) to register with, comma-separated.
    #[arg(long, env = "DROVER_MASTER", default_value = "http://127.0.0.1:5050")]
    master: String,
    /// Address the job API listens on.
    #[arg(long, env = "DROVER_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
}

fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    anyhow::bail!(
        "drover-scheduler is not implemented yet (master {}, listen {})",
        config.master,
        config.listen
    )
}
