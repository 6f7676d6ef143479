//! `drover pod ...`: list a job's pods (the job by its id or name), get
//! one pod, its events, and stop, start or restart it. (`drover pod logs`
//! is in [`super::logs`].)

use super::client::{job_path, ApiClient};
use super::error::CliError;
use super::logs::LogsArgs;
use super::output::{self, short_state, Output};
use super::watch;
use clap::Subcommand;
use serde_json::{json, Map, Value};
use std::io::Write;
use std::sync::Arc;
use tokio::sync::Notify;

/// `drover pod`.
#[derive(Debug, Clone, Subcommand)]
pub enum PodCommand {
    /// List a job's pods.
    List {
        /// Job id or name.
        job: String,
        /// Only pods in these states, repeatable: PENDING, LAUNCHING,
        /// LAUNCHED, STARTING, RUNNING, KILLING, SUCCEEDED, FAILED, KILLED,
        /// LOST (or POD_STATE_RUNNING etc.), in any case; an unknown state
        /// is an error.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only pods on these hosts, repeatable.
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
    /// Show a pod (`<job-id>-<instance>`): its current run and previous runs.
    Get {
        /// Pod name.
        pod: String,
    },
    /// A pod's state changes, oldest first.
    Events {
        /// Pod name.
        pod: String,
        /// Then print each new one as it happens (the scheduler's watch
        /// stream), until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
    },
    /// Stop a pod: it is killed and stays down until start.
    Stop {
        /// Pod name.
        pod: String,
    },
    /// Start a stopped pod.
    Start {
        /// Pod name.
        pod: String,
    },
    /// Kill a pod's current run and launch a new one.
    Restart {
        /// Pod name.
        pod: String,
    },
    /// Print a pod's stdout or stderr, read from its agent's sandbox.
    Logs(LogsArgs),
}

/// Runs a pod command; answers the exit code.
pub async fn run(client: &ApiClient, output: Output, command: PodCommand) -> Result<u8, CliError> {
    match command {
        PodCommand::List { job, states, hosts } => {
            let answer = if states.is_empty() && hosts.is_empty() {
                client.get(&format!("{}/pods", job_path(&job))).await?
            } else {
                let mut spec = Map::new();
                if !states.is_empty() {
                    // The scheduler takes short and full names alike and
                    // refuses unknown ones naming the valid ones.
                    spec.insert("pod_states".into(), json!(states));
                }
                if !hosts.is_empty() {
                    spec.insert("hosts".into(), json!(hosts));
                }
                client
                    .post(
                        &format!("{}/pods/query", job_path(&job)),
                        &json!({"spec": spec}),
                    )
                    .await?
            };
            match output {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => print!("{}", pods_table(&answer["pods"])),
            }
        }
        PodCommand::Get { pod } => {
            let answer = client.get(&format!("/api/v1/pods/{pod}")).await?;
            match output {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => print!("{}", pod_fields(&pod, &answer)),
            }
        }
        PodCommand::Events { pod, follow } => {
            let answer = client.get(&format!("/api/v1/pods/{pod}/events")).await?;
            match output {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => print!("{}", events_table(&answer["events"])),
            }
            if follow {
                return follow_events(client, output, &pod, &answer["events"]).await;
            }
        }
        PodCommand::Stop { pod } => action(client, output, &pod, "stop", "stopping").await?,
        PodCommand::Start { pod } => action(client, output, &pod, "start", "starting").await?,
        PodCommand::Restart { pod } => {
            action(client, output, &pod, "restart", "restarting").await?
        }
        PodCommand::Logs(args) => return super::logs::run(client, args).await,
    }
    Ok(0)
}

async fn action(
    client: &ApiClient,
    output: Output,
    pod: &str,
    verb: &str,
    doing: &str,
) -> Result<(), CliError> {
    let answer = client
        .post(&format!("/api/v1/pods/{pod}/{verb}"), &json!({}))
        .await?;
    match output {
        Output::Json => print!("{}", output::json(&answer)),
        Output::Table => println!("pod {pod} {doing}"),
    }
    Ok(())
}

/// `{"http": 31002}` as `http=31002`.
fn ports(value: &Value) -> String {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// The pod's image and, once its executor resolved it, the digest's
/// first 12 hex digits (as `docker images` shortens ids): `name@sha256:abc...`.
fn image(status: &Value) -> String {
    let name = output::text(&status["image"]);
    let digest = output::text(&status["image_digest"]);
    match digest.strip_prefix("sha256:") {
        Some(hex) if !name.is_empty() => {
            let name = name.split_once('@').map_or(name.as_str(), |(n, _)| n);
            format!("{name}@sha256:{}", hex.get(..12).unwrap_or(hex))
        }
        _ => name,
    }
}

/// Why a pod is not running, as briefly as the status says it.
fn why(status: &Value) -> String {
    ["pending_reason", "message", "reason"]
        .iter()
        .map(|k| output::text(&status[*k]))
        .find(|s| !s.is_empty())
        .unwrap_or_default()
}

/// The table of `PodSummary`s.
pub fn pods_table(pods: &Value) -> String {
    let rows: Vec<Vec<String>> = pods
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            let s = &p["status"];
            vec![
                output::text(&p["pod_name"]),
                short_state(&output::text(&s["state"])).to_owned(),
                short_state(&output::text(&s["healthy"])).to_owned(),
                output::text(&s["ready"]),
                output::text(&s["host"]),
                ports(&s["ports"]),
                image(s),
                output::text(&s["failure_count"]),
                why(s),
            ]
        })
        .collect();
    output::table(
        &[
            "POD", "STATE", "HEALTH", "READY", "HOST", "PORTS", "IMAGE", "FAILURES", "MESSAGE",
        ],
        &rows,
    )
}

fn pod_fields(pod: &str, answer: &Value) -> String {
    let s = &answer["current"]["status"];
    let previous = answer["previous"].as_array().map_or(0, Vec::len);
    output::fields(&[
        ("Pod", pod.to_owned()),
        ("Run", output::text(&s["pod_id"])),
        ("State", short_state(&output::text(&s["state"])).to_owned()),
        (
            "Desired",
            short_state(&output::text(&s["desired_state"])).to_owned(),
        ),
        (
            "Health",
            short_state(&output::text(&s["healthy"])).to_owned(),
        ),
        ("Ready", output::text(&s["ready"])),
        ("Host", output::text(&s["host"])),
        ("Agent", output::text(&s["agent_id"])),
        ("Ports", ports(&s["ports"])),
        ("Image", output::text(&s["image"])),
        ("Image digest", output::text(&s["image_digest"])),
        ("Started", output::text(&s["start_time"])),
        ("Completed", output::text(&s["completion_time"])),
        ("Pending", output::text(&s["pending_reason"])),
        ("Next retry", output::text(&s["next_retry_time"])),
        ("Reason", output::text(&s["reason"])),
        ("Message", output::text(&s["message"])),
        ("Failures", output::text(&s["failure_count"])),
        ("Previous runs", previous.to_string()),
    ])
}

/// Prints the pod's events newer than `shown` as they happen: each time
/// the watch stream reports the pod changed, its events are read again
/// and those of a later revision printed, one line (or one JSON object)
/// each. Ends on Ctrl-C (130).
async fn follow_events(
    client: &ApiClient,
    output: Output,
    pod: &str,
    shown: &Value,
) -> Result<u8, CliError> {
    let mut last = latest_revision(shown);
    let changed = Arc::new(Notify::new());
    let query = format!("pod={}", super::client::encode_query(pod));
    let _follower = watch::AbortOnDrop(tokio::spawn(watch::follow(
        client.clone(),
        query,
        changed.clone(),
    )));
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return Ok(130),
            _ = changed.notified() => {}
        }
        let answer = client.get(&format!("/api/v1/pods/{pod}/events")).await?;
        let events = answer["events"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut out = std::io::stdout().lock();
        for event in events.iter().filter(|e| e["revision"].as_u64() > last) {
            let _ = match output {
                Output::Json => writeln!(out, "{event}"),
                Output::Table => writeln!(out, "{}", event_row(event).join("  ")),
            };
        }
        let _ = out.flush();
        last = latest_revision(&answer["events"]).max(last);
    }
}

fn latest_revision(events: &Value) -> Option<u64> {
    events
        .as_array()?
        .iter()
        .filter_map(|e| e["revision"].as_u64())
        .max()
}

fn event_row(e: &Value) -> Vec<String> {
    vec![
        output::text(&e["timestamp"]),
        output::text(&e["pod_id"]),
        short_state(&output::text(&e["actual_state"])).to_owned(),
        output::text(&e["mesos_state"]),
        output::text(&e["hostname"]),
        [output::text(&e["reason"]), output::text(&e["message"])]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": "),
    ]
}

fn events_table(events: &Value) -> String {
    let rows: Vec<Vec<String>> = events
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(event_row)
        .collect();
    output::table(
        &["TIME", "RUN", "STATE", "MESOS STATE", "HOST", "MESSAGE"],
        &rows,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_tables_show_state_health_ports_and_why() {
        let pods = json!([{"pod_name": {"value": "j-0"}, "status": {
            "state": "POD_STATE_PENDING", "healthy": "HEALTH_STATE_UNKNOWN",
            "ports": {"http": 31000}, "failure_count": 0,
            "pending_reason": "no agent satisfies zone==c"}}]);
        let t = pods_table(&pods);
        assert!(t.contains("j-0"), "{t}");
        assert!(t.contains("PENDING  UNKNOWN"), "{t}");
        assert!(t.contains("http=31000"), "{t}");
        assert!(t.contains("no agent satisfies zone==c"), "{t}");
    }

    #[test]
    fn pod_views_show_the_image_and_its_digest() {
        let digest = format!("sha256:{}", "0123456789ab".repeat(5) + "cdef");
        let pods = json!([{"pod_name": {"value": "j-0"}, "status": {
            "state": "POD_STATE_RUNNING", "healthy": "HEALTH_STATE_DISABLED",
            "failure_count": 0, "image": "drover-test/busybox:1",
            "image_digest": digest}}]);
        let t = pods_table(&pods);
        assert!(t.contains("IMAGE"), "{t}");
        assert!(
            t.contains("drover-test/busybox:1@sha256:0123456789ab "),
            "{t}"
        );
        let answer = json!({"current": {"status": pods[0]["status"].clone()}});
        let fields = pod_fields("j-0", &answer);
        assert!(fields.contains("drover-test/busybox:1"), "{fields}");
        assert!(fields.contains(&digest), "the whole digest: {fields}");
        let no_digest = json!([{"pod_name": {"value": "j-1"}, "status": {
            "state": "POD_STATE_RUNNING", "image": "busybox"}}]);
        assert!(pods_table(&no_digest).contains("busybox"));
    }
}
