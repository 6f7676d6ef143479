//! A fresh agent-sim for one scenario (its own temp dir, stopped on drop),
//! and what the benchmark reads back from it: when each task of a
//! framework reached TASK_RUNNING, by the master's own clock. That one
//! source times Drover, the limit client and pymesos alike.

use crate::http::Http;
use crate::procs::Proc;
use anyhow::Context;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tempfile::TempDir;

/// Where the binaries are and how long to wait for them.
#[derive(Debug, Clone)]
pub struct Launcher {
    /// drover-agent-sim and drover-scheduler live here.
    pub bin_dir: PathBuf,
    /// The longest wait.
    pub timeout: Duration,
    /// The store the schedulers it starts run on.
    pub store: crate::stores::Store,
}

/// A running agent-sim and the temp dir of the scenario; the process is
/// stopped before the directory is removed.
pub struct Fleet {
    /// `http://ADDR`.
    pub master: String,
    /// `ADDR` (pymesos wants it without the scheme).
    pub address: String,
    /// The agent-sim process, held so it stops when the fleet drops
    /// (before the directory: fields drop in order).
    _sim: Proc,
    /// The scenario's scratch directory.
    pub dir: TempDir,
}

impl Launcher {
    /// Starts agent-sim with `agents` agents of the default shape in
    /// three zones.
    pub fn fleet(&self, agents: usize) -> anyhow::Result<Fleet> {
        let dir = tempfile::Builder::new()
            .prefix("drover-bench-")
            .tempdir()
            .context("cannot create a temp dir")?;
        let mut cmd = Command::new(self.bin_dir.join("drover-agent-sim"));
        cmd.args(["--listen", "127.0.0.1:0", "--agents"])
            .arg(agents.to_string())
            .args(["--zones", "a,b,c", "--seed", "7"])
            .arg("--work-dir")
            .arg(dir.path().join("sim-work"))
            .env("DROVER_LOG", "warn");
        let mut proc = Proc::spawn("drover-agent-sim", cmd, &dir.path().join("agent-sim.log"))?;
        let address = proc.wait_line("listening on", self.timeout)?;
        Ok(Fleet {
            master: format!("http://{address}"),
            address,
            _sim: proc,
            dir,
        })
    }

    /// Path of a binary under test.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin_dir.join(name)
    }
}

impl Fleet {
    /// A path inside the scenario's temp dir.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The TASK_RUNNING times (Unix seconds) of every task still running,
    /// from one `/state` read: agent-sim stamps each task with the time of
    /// its latest update, which for a long-running task is its RUNNING.
    pub async fn running_times(&self, http: &Http) -> anyhow::Result<Vec<f64>> {
        let state = http.get_json(&format!("{}/state", self.master)).await?;
        Ok(running_times(&state))
    }
}

/// The RUNNING timestamps in a master `/state` document.
pub fn running_times(state: &serde_json::Value) -> Vec<f64> {
    let mut out = Vec::new();
    let frameworks = state["frameworks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    for fw in frameworks {
        let tasks = fw["tasks"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        for task in tasks.iter().filter(|t| t["state"] == "TASK_RUNNING") {
            if let Some(ts) = task["statuses"]
                .as_array()
                .and_then(|s| s.last())
                .and_then(|s| s["timestamp"].as_f64())
            {
                out.push(ts);
            }
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn reads_running_timestamps_only() {
        let state = serde_json::json!({"frameworks": [{"tasks": [
            {"state": "TASK_RUNNING", "statuses": [{"state": "TASK_RUNNING", "timestamp": 10.5}]},
            {"state": "TASK_STAGING", "statuses": [{"state": "TASK_STAGING", "timestamp": 11.0}]},
        ]}, {"tasks": [{"state": "TASK_RUNNING", "statuses": [{"timestamp": 12.0}]}]}]});
        assert_eq!(running_times(&state), vec![10.5, 12.0]);
    }
}
