//! `drover-chaos`: runs one dose (see the crate doc and `--help`), prints
//! its summary and exits 0 when it passed, 1 when the checker counted
//! something (or the dose could not be carried out), 2 when the run could
//! not be made at all.

use std::time::{SystemTime, UNIX_EPOCH};

use clap::Parser;
use drover_chaos::config::ChaosConfig;
use drover_chaos::run::{run, RunConfig};

fn main() -> std::process::ExitCode {
    let config = ChaosConfig::parse();
    let seed = config.seed.unwrap_or_else(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    let (run_dir, temp) = match &config.run_dir {
        Some(dir) => (dir.clone(), None),
        None => match tempfile::Builder::new().prefix("drover-chaos-").tempdir() {
            Ok(t) => (t.path().to_owned(), Some(t)),
            Err(e) => {
                eprintln!("drover-chaos: a temporary run dir: {e}");
                return std::process::ExitCode::from(2);
            }
        },
    };
    if let Err(e) = std::fs::create_dir_all(&run_dir) {
        eprintln!("drover-chaos: creating {}: {e}", run_dir.display());
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("drover-chaos: the async runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let run_config = RunConfig {
        dose: config.dose(),
        seed,
        run_dir: run_dir.clone(),
        master_state_dir: !config.fresh_master_fleet,
    };
    // SIGINT or SIGTERM ends the run early; dropping the runtime then
    // drops the cluster, which stops every process it started.
    let result = runtime.block_on(async {
        tokio::select! {
            result = run(run_config) => result,
            signal = interrupted() => Err(anyhow::anyhow!("interrupted by {signal}")),
        }
    });
    drop(runtime);
    match result {
        Ok(summary) => {
            print!("{}", summary.render());
            if summary.passed() {
                std::process::ExitCode::SUCCESS
            } else {
                // Keep the logs of a failing run for whoever replays it.
                if let Some(t) = temp {
                    let kept = t.keep();
                    println!("logs kept in {}", kept.display());
                }
                std::process::ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("drover-chaos: {e:#}");
            if let Some(t) = temp {
                let kept = t.keep();
                eprintln!("logs kept in {}", kept.display());
            }
            std::process::ExitCode::from(2)
        }
    }
}

/// The first SIGINT or SIGTERM, by name.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}
