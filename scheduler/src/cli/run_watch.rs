//! `drover run watch`: a run's DAG as it progresses. [`Progress`] is the
//! pure part: fed each read of the run, it answers the lines to print
//! (each node whose phase changed, then the run's tally); [`watch`] is
//! the loop that reads the run every interval until its status is
//! terminal or the user stops it.

use super::client::ApiClient;
use super::error::CliError;
use super::output::{self, Output};
use super::run::{ordered_nodes, workflow};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

/// Whether an Argo phase (a node's or the run's) is final.
pub fn is_terminal(phase: &str) -> bool {
    matches!(
        phase,
        "Succeeded" | "Failed" | "Error" | "Skipped" | "Omitted"
    )
}

/// What the watch has shown: each node's last phase, and the last tally.
#[derive(Debug, Default)]
pub struct Progress {
    phases: BTreeMap<String, String>,
    tally: String,
}

impl Progress {
    /// The lines that `detail` (a `RunDetail`) adds to what was shown.
    pub fn observe(&mut self, detail: &Value, output: Output) -> Vec<String> {
        let workflow = workflow(detail);
        let nodes = ordered_nodes(&workflow);
        let mut lines = Vec::new();
        for node in &nodes {
            let id = output::text(&node["id"]);
            let phase = output::text(&node["phase"]);
            if self.phases.get(&id) == Some(&phase) {
                continue;
            }
            self.phases.insert(id.clone(), phase.clone());
            lines.push(match output {
                Output::Json => json!({"node": {
                    "id": id,
                    "name": node["displayName"],
                    "type": node["type"],
                    "phase": phase,
                    "job": node["hostNodeName"],
                    "message": node["message"],
                }})
                .to_string(),
                Output::Table => {
                    let mut line = format!(
                        "{} {} {phase}",
                        output::text(&node["type"]),
                        output::text(&node["displayName"])
                    );
                    if let Some(message) = node["message"].as_str() {
                        line.push_str(&format!(": {message}"));
                    }
                    line
                }
            });
        }
        let status = output::text(&detail["run"]["status"]);
        let tally = tally(&nodes, &status);
        if tally != self.tally {
            self.tally = tally.clone();
            lines.push(match output {
                Output::Json => json!({"run": {
                    "id": detail["run"]["id"],
                    "status": status,
                    "error": detail["run"]["error"],
                }})
                .to_string(),
                Output::Table => tally,
            });
        }
        lines
    }
}

/// `run Running: 3/7 steps done (Succeeded=3 Running=1 Pending=3)`: the
/// steps are the nodes that run something (not the DAGs and loop groups
/// around them).
fn tally(nodes: &[&Value], status: &str) -> String {
    let steps: Vec<&&Value> = nodes
        .iter()
        .filter(|n| !matches!(n["type"].as_str(), Some("DAG" | "TaskGroup" | "Steps")))
        .collect();
    let done = steps
        .iter()
        .filter(|n| is_terminal(n["phase"].as_str().unwrap_or_default()))
        .count();
    let mut by_phase: BTreeMap<String, usize> = BTreeMap::new();
    for n in &steps {
        *by_phase.entry(output::text(&n["phase"])).or_default() += 1;
    }
    let phases = by_phase
        .iter()
        .map(|(p, n)| format!("{p}={n}"))
        .collect::<Vec<_>>()
        .join(" ");
    format!("run {status}: {done}/{} steps done ({phases})", steps.len())
}

/// Reads the run at `path` every `interval`, printing what changed, until
/// its status is terminal (answered) or `stop` resolves (None).
pub async fn watch(
    client: &ApiClient,
    path: &str,
    interval: Duration,
    output: Output,
    stop: impl Future<Output = ()>,
) -> Result<Option<String>, CliError> {
    tokio::pin!(stop);
    let mut progress = Progress::default();
    loop {
        let detail = client.get(path).await?;
        for line in progress.observe(&detail, output) {
            println!("{line}");
        }
        let status = output::text(&detail["run"]["status"]);
        if is_terminal(&status) {
            return Ok(Some(status));
        }
        tokio::select! {
            () = &mut stop => return Ok(None),
            () = tokio::time::sleep(interval) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(status: &str, nodes: Value) -> Value {
        json!({"run": {"id": "r", "status": status},
               "pipeline_runtime": {"workflow_manifest":
                   json!({"status": {"nodes": nodes}}).to_string()}})
    }

    #[test]
    fn each_phase_change_is_shown_once_then_the_tally() {
        let mut p = Progress::default();
        let first = detail(
            "Running",
            json!({
                "w": {"id": "w", "displayName": "w", "type": "DAG", "phase": "Running",
                      "startedAt": "2026-12-07T08:00:00Z"},
                "w-1": {"id": "w-1", "displayName": "a", "type": "Pod", "phase": "Running",
                        "startedAt": "2026-12-07T08:00:00Z"},
                "w-2": {"id": "w-2", "displayName": "b", "type": "Pod", "phase": "Pending"}}),
        );
        assert_eq!(
            p.observe(&first, Output::Table),
            // In the order they started, then by name.
            [
                "Pod a Running",
                "DAG w Running",
                "Pod b Pending",
                "run Running: 0/2 steps done (Pending=1 Running=1)"
            ]
        );
        // Nothing changed: nothing printed.
        assert!(p.observe(&first, Output::Table).is_empty());
        let last = detail(
            "Failed",
            json!({
                "w": {"id": "w", "displayName": "w", "type": "DAG", "phase": "Failed",
                      "startedAt": "2026-12-07T08:00:00Z"},
                "w-1": {"id": "w-1", "displayName": "a", "type": "Pod", "phase": "Succeeded",
                        "startedAt": "2026-12-07T08:00:00Z"},
                "w-2": {"id": "w-2", "displayName": "b", "type": "Pod", "phase": "Failed",
                        "startedAt": "2026-12-07T08:00:01Z", "message": "exit code 1"}}),
        );
        assert_eq!(
            p.observe(&last, Output::Table),
            [
                "Pod a Succeeded",
                "DAG w Failed",
                "Pod b Failed: exit code 1",
                "run Failed: 2/2 steps done (Failed=1 Succeeded=1)"
            ]
        );
    }

    #[test]
    fn json_lines_carry_the_node_and_the_run() {
        let mut p = Progress::default();
        let lines = p.observe(
            &detail(
                "Succeeded",
                json!({"w-1": {"id": "w-1", "displayName": "a", "type": "Pod",
                               "phase": "Succeeded", "hostNodeName": "kfp-r-1-1"}}),
            ),
            Output::Json,
        );
        let node: Value = serde_json::from_str(&lines[0]).unwrap_or_default();
        assert_eq!(node["node"]["job"], "kfp-r-1-1");
        let run: Value = serde_json::from_str(&lines[1]).unwrap_or_default();
        assert_eq!(run["run"]["status"], "Succeeded");
    }

    #[test]
    fn only_final_phases_end_a_watch() {
        for phase in ["Succeeded", "Failed", "Error", "Skipped", "Omitted"] {
            assert!(is_terminal(phase));
        }
        for phase in ["Pending", "Running", ""] {
            assert!(!is_terminal(phase));
        }
    }
}
