//! `drover job update|rollback|pause|resume|abort|scale|history`: changing
//! a running job. `update` shows what a spec would change (the scheduler's
//! diff: instances added, removed, updated, unchanged) and asks before it
//! starts a rolling update, unless `--yes`; the rest send one request and
//! print the answer. The update's progress shows in `drover job watch`.

use super::client::{job_path, ApiClient};
use super::error::CliError;
use super::output::{self, short_state, Output};
use super::spec_file;
use serde_json::{json, Value};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

/// How `update` rolls (the scheduler's `update_spec`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct RollFlags {
    /// Pods updated at a time (0 = all at once). A pod's slot frees when its
    /// replacement is RUNNING and, if it has a readiness check, READY, else,
    /// if it has a liveness check, HEALTHY.
    #[arg(long, default_value_t = 1)]
    pub batch_size: u32,
    /// Roll every updated pod back to the old spec if the update fails.
    #[arg(long)]
    pub rollback_on_failure: bool,
    /// Failed runs a pod may have on the new spec before it counts as
    /// failed (0 = retried for ever).
    #[arg(long, default_value_t = 0)]
    pub max_instance_retries: u32,
    /// Failed pods at which the update fails (0 = never).
    #[arg(long, default_value_t = 0)]
    pub max_tolerable_instance_failures: u32,
    /// Start paused (`drover job resume` starts it).
    #[arg(long)]
    pub start_paused: bool,
}

impl RollFlags {
    fn json(&self) -> Value {
        json!({
            "batch_size": self.batch_size,
            "rollback_on_failure": self.rollback_on_failure,
            "max_instance_retries": self.max_instance_retries,
            "max_tolerable_instance_failures": self.max_tolerable_instance_failures,
            "start_paused": self.start_paused,
        })
    }
}

/// What the user answered to "proceed?".
fn confirmed(question: &str) -> Result<bool, CliError> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(
            "not asking on a non-interactive input: pass --yes to update".into(),
        ));
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| CliError::Usage(format!("cannot read the answer: {e}")))?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// `drover job update FILE`: answers the exit code (1: declined).
pub async fn update(
    client: &ApiClient,
    output: Output,
    id: &str,
    file: &Path,
    flags: RollFlags,
    version: Option<&str>,
    yes: bool,
) -> Result<u8, CliError> {
    let text = std::fs::read_to_string(file).map_err(|source| CliError::Io {
        path: file.to_owned(),
        source,
    })?;
    let spec = spec_file::parse(&file.display().to_string(), &text)?;
    let spec = spec_file::request_json(&spec)
        .map_err(|e| CliError::Usage(format!("cannot encode the spec: {e}")))?;
    let path = job_path(id);
    let mut body = json!({"spec": spec});
    if let Some(v) = version {
        body["version"] = json!({"value": v});
    }
    let diff = client.post(&format!("{path}/update/diff"), &body).await?;
    if output == Output::Table {
        print!("{}", diff_lines(&diff));
    }
    if !yes && !confirmed(&format!("Update job {id}?"))? {
        println!("not updated");
        return Ok(1);
    }
    body["update_spec"] = flags.json();
    let answer = client.post(&format!("{path}/update"), &body).await?;
    match output {
        Output::Json => print!("{}", output::json(&answer)),
        Output::Table => println!(
            "job {id} updating to version {} ({})",
            output::text(&answer["version"]),
            short_state(&output::text(&answer["workflow_info"]["status"]["state"]))
        ),
    }
    Ok(0)
}

/// The diff as lines: each kind with its instances, as ranges.
pub fn diff_lines(diff: &Value) -> String {
    let mut out = String::new();
    for (key, label) in [
        ("instances_updated", "updated (replaced)"),
        ("instances_added", "added"),
        ("instances_removed", "removed"),
        ("instances_unchanged", "unchanged (not restarted)"),
    ] {
        let (count, listed) = ranges_text(&diff[key]);
        out.push_str(&format!("{label:<27} {count:>5}  {listed}\n"));
    }
    out
}

/// How many instances `[{from, to}]` covers, and them as `a-b, c`.
fn ranges_text(ranges: &Value) -> (u64, String) {
    let mut count = 0;
    let mut parts = Vec::new();
    for r in ranges.as_array().map(Vec::as_slice).unwrap_or_default() {
        let (from, to) = (
            r["from"].as_u64().unwrap_or(0),
            r["to"].as_u64().unwrap_or(0),
        );
        count += to.saturating_sub(from);
        parts.push(match to.saturating_sub(from) {
            0 => continue,
            1 => from.to_string(),
            _ => format!("{from}-{}", to - 1),
        });
    }
    (count, parts.join(", "))
}

/// `rollback`, `pause`, `resume`, `abort` or `scale`: one POST; prints the
/// new version and the update's state.
pub async fn act(
    client: &ApiClient,
    output: Output,
    id: &str,
    action: &str,
    mut body: Value,
    version: Option<&str>,
) -> Result<u8, CliError> {
    if let Some(v) = version {
        body["version"] = json!({"value": v});
    }
    let answer = client
        .post(&format!("{}/{action}", job_path(id)), &body)
        .await?;
    match output {
        Output::Json => print!("{}", output::json(&answer)),
        Output::Table => {
            let state = &answer["workflow_info"]["status"]["state"];
            let state = if state.is_null() {
                String::new()
            } else {
                format!(", update {}", short_state(&output::text(state)))
            };
            println!(
                "job {id}: {} (version {}{state})",
                action.rsplit('/').next().unwrap_or(action),
                output::text(&answer["version"])
            );
        }
    }
    Ok(0)
}

/// `drover job history`: the job's updates, newest first.
pub async fn history(client: &ApiClient, output: Output, id: &str) -> Result<u8, CliError> {
    let answer = client.get(&format!("{}/updates", job_path(id))).await?;
    match output {
        Output::Json => print!("{}", output::json(&answer)),
        Output::Table => print!("{}", history_table(&answer["workflow_infos"])),
    }
    Ok(0)
}

/// The table of `WorkflowInfo`s.
pub fn history_table(infos: &Value) -> String {
    let rows: Vec<Vec<String>> = infos
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|w| {
            let s = &w["status"];
            vec![
                output::text(&w["workflow_id"]),
                short_state(&output::text(&s["state"])).to_owned(),
                format!(
                    "{} -> {}",
                    output::text(&s["prev_version"]),
                    output::text(&s["version"])
                ),
                output::text(&s["num_instances_completed"]),
                output::text(&s["num_instances_failed"]),
                output::text(&s["num_instances_remaining"]),
                output::text(&w["update_spec"]["batch_size"]),
                output::text(&s["creation_time"]),
                output::text(&s["update_time"]),
            ]
        })
        .collect();
    output::table(
        &[
            "UPDATE", "STATE", "VERSIONS", "DONE", "FAILED", "LEFT", "BATCH", "CREATED", "UPDATED",
        ],
        &rows,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_lists_each_kind_with_its_instances() {
        let diff = json!({
            "instances_updated": [{"from": 0, "to": 3}, {"from": 5, "to": 6}],
            "instances_added": [], "instances_removed": [{"from": 8, "to": 10}],
            "instances_unchanged": [{"from": 3, "to": 5}, {"from": 6, "to": 8}],
        });
        let text = diff_lines(&diff);
        assert!(
            text.contains("updated (replaced)              4  0-2, 5"),
            "{text}"
        );
        assert!(
            text.contains("removed                         2  8-9"),
            "{text}"
        );
        assert!(
            text.contains("added                           0  \n"),
            "{text}"
        );
    }

    #[test]
    fn history_shows_each_update_with_its_versions_and_counts() {
        let infos = json!([{"workflow_id": 2, "update_spec": {"batch_size": 4},
            "status": {"state": "WORKFLOW_STATE_ROLLED_BACK", "prev_version": {"value": "3"},
            "version": {"value": "4"}, "num_instances_completed": 1,
            "num_instances_failed": 1, "num_instances_remaining": 0,
            "creation_time": "t0", "update_time": "t1"}}]);
        let table = history_table(&infos);
        assert!(table.contains("ROLLED_BACK"), "{table}");
        assert!(table.contains("3 -> 4"), "{table}");
    }
}
