//! `drover host ...`: the hosts Drover knows with their maintenance state
//! (`GET /api/v1/hosts`), and an operator's drain and completion
//! (`POST /api/v1/hosts/drain`, `/complete`).

use super::client::ApiClient;
use super::error::CliError;
use super::output::{self, Output};
use clap::Subcommand;
use serde_json::{json, Value};

/// `drover host`.
#[derive(Debug, Clone, Subcommand)]
pub enum HostCommand {
    /// List hosts: name, agent, state (UP, DRAINING, DRAINED, DOWN), and
    /// who asked for maintenance.
    List {
        /// Only hosts in these states, repeatable (UP, DRAINING, DRAINED,
        /// DOWN, or HOST_STATE_UP etc.).
        #[arg(long = "state")]
        states: Vec<String>,
    },
    /// Drain hosts for maintenance: nothing new is placed on them, their
    /// pods move off as each job's disruption budget allows, then the
    /// master takes them DOWN.
    Drain {
        /// The hosts.
        #[arg(required = true)]
        hostnames: Vec<String>,
        /// Seconds a batch pod is left to finish before it is moved.
        #[arg(long, default_value_t = 0)]
        batch_grace: u64,
    },
    /// Bring hosts back from maintenance: UP, and used again.
    Complete {
        /// The hosts.
        #[arg(required = true)]
        hostnames: Vec<String>,
    },
}

/// Runs a host command; answers the exit code.
pub async fn run(client: &ApiClient, output: Output, command: HostCommand) -> Result<u8, CliError> {
    let answer = match command {
        HostCommand::List { states } => {
            let path = if states.is_empty() {
                "/api/v1/hosts".to_owned()
            } else {
                format!("/api/v1/hosts?state={}", states.join(","))
            };
            let hosts = client.get(&path).await?;
            match output {
                Output::Json => print!("{}", output::json(&hosts)),
                Output::Table => print!("{}", hosts_table(&hosts["hosts"])),
            }
            return Ok(0);
        }
        HostCommand::Drain {
            hostnames,
            batch_grace,
        } => {
            client
                .post(
                    "/api/v1/hosts/drain",
                    &json!({"hostnames": hostnames, "batch_grace_seconds": batch_grace}),
                )
                .await?
        }
        HostCommand::Complete { hostnames } => {
            client
                .post("/api/v1/hosts/complete", &json!({"hostnames": hostnames}))
                .await?
        }
    };
    match output {
        Output::Json => print!("{}", output::json(&answer)),
        Output::Table => print!("{}", hosts_table(&answer["hosts"])),
    }
    Ok(0)
}

/// Hosts as a table.
fn hosts_table(hosts: &Value) -> String {
    let rows: Vec<Vec<String>> = hosts
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            vec![
                output::text(&h["hostname"]),
                output::text(&h["agent_id"]),
                short(&output::text(&h["state"])),
                output::text(&h["maintenance_cause"]),
            ]
        })
        .collect();
    output::table(&["HOST", "AGENT", "STATE", "MAINTENANCE"], &rows)
}

fn short(state: &str) -> String {
    state
        .strip_prefix("HOST_STATE_")
        .unwrap_or(state)
        .to_owned()
}
