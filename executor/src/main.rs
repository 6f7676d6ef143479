//! `drover-executor`: runs a Mesos task's processes under Linux cgroups.
//! Parses the configuration, sets up logging, runs the executor loop and
//! exits non-zero with the reason when it gives up.

use anyhow::Context;
use clap::Parser;
use drover_executor::config::Config;

fn main() -> anyhow::Result<()> {
    let mut config = Config::parse();
    config.as_mesos_executor = drover_executor::mesos_executor::invoked_as_mesos_executor(
        std::env::args_os().next().as_deref(),
    );
    // Read, then erased from our environment as Mesos' executor library
    // does, so that nothing we start (or a reader of our environment)
    // inherits the token. Single-threaded here: no runtime yet.
    std::env::remove_var("MESOS_EXECUTOR_AUTHENTICATION_TOKEN");
    let filter =
        tracing_subscriber::EnvFilter::try_from_env("DROVER_LOG").unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    let ignored = config.mesos_executor.check()?;
    if config.as_mesos_executor {
        tracing::info!(launcher_dir = ?config.mesos_executor.launcher_dir, "running as a Mesos agent's command executor (mesos-executor)");
        if !ignored.is_empty() {
            tracing::warn!(
                ?ignored,
                "Mesos command-executor flags accepted but not applied"
            );
        }
    }
    let executor_config = config.executor_config().context("probing cgroups")?;
    // Two worker threads: the executor's work is I/O and child processes;
    // its memory stays small.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let result = runtime.block_on(drover_executor::executor::run(executor_config));
    if let Err(e) = &result {
        tracing::error!(error = %e, "drover-executor stops");
    }
    result.context("drover-executor")
}
