//! The pymesos peer: `bench/pymesos/first_fit_running.py` (pymesos 0.3.15
//! first-fit, the framework a team would write quickly) launches the same
//! tasks; the benchmark reads their RUNNING times from agent-sim while the
//! script is still subscribed, then stops it by pid.

use crate::fleet::Fleet;
use crate::http::Http;
use crate::procs::Proc;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The interpreter with pymesos: `explicit`, or the workspace venv, made by
/// `scripts/pymesos-env.sh` when missing.
pub fn python(root: &Path, explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    let venv = root.join("target/pymesos-venv/bin/python");
    if venv.exists() {
        return Ok(venv);
    }
    let out = Command::new(root.join("scripts/pymesos-env.sh"))
        .output()
        .context("cannot run scripts/pymesos-env.sh")?;
    if !out.status.success() {
        bail!(
            "scripts/pymesos-env.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(venv)
}

/// Runs the peer for `n` tasks: its create time, when it saw the last
/// RUNNING, and the RUNNING times.
pub async fn run(
    http: &Http,
    fleet: &Fleet,
    python: &Path,
    script: &Path,
    n: usize,
    timeout: Duration,
) -> anyhow::Result<(f64, f64, Vec<f64>)> {
    let mut cmd = Command::new(python);
    cmd.arg(script).arg(&fleet.address).arg(n.to_string());
    let mut proc = Proc::spawn("pymesos first-fit", cmd, &fleet.path("pymesos.log"))?;
    // The wait blocks a thread, not the runtime's only one.
    let (line, proc) = tokio::task::spawn_blocking(move || {
        let line = proc.wait_line("{", timeout);
        (line, proc)
    })
    .await?;
    let line = line?;
    let report: serde_json::Value = serde_json::from_str(&format!("{{{line}"))?;
    let created = report["created"].as_f64().context("no created time")?;
    let observed = report["observed"].as_f64().context("no observed time")?;
    let times = fleet.running_times(http).await?;
    drop(proc);
    Ok((created, observed, times))
}
