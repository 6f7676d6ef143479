//! `drover-agent-sim`: parses the flags, sets up logging and runs the
//! simulator; errors are reported and exit non-zero.

use clap::Parser;
use drover_agent_sim::config::Config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    drover_agent_sim::run::run(config).await
}
