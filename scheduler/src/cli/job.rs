//! `drover job ...`: create (from a YAML or JSON file), get, list, stop,
//! start, delete, restart and watch; update, rollback, pause, resume,
//! abort, scale and history (in [`super::update`]). Each command builds one request,
//! sends it, and prints the answer as a table or as JSON. A job is named
//! by its id or its name wherever one is typed: the scheduler resolves it
//! (the id wins; a name several jobs share is refused, listing their ids).
//! `job list` always asks the query API, so its JSON has one shape with
//! and without filters, and its table says when it shows one page.

use super::client::{encode_query, job_path, ApiClient};
use super::error::CliError;
use super::output::{self, short_state, Output};
use super::pod::pods_table;
use super::spec_file;
use super::update::{self, RollFlags};
use super::watch::{self, Outcome, Until};
use clap::Subcommand;
use serde_json::{json, Map, Value};
use std::path::PathBuf;
use std::time::Duration;

/// `drover job`.
#[derive(Debug, Clone, Subcommand)]
pub enum JobCommand {
    /// Submit a job from a spec file (YAML or JSON).
    Create {
        /// The job spec file (see examples/).
        file: PathBuf,
        /// The job's id (default: generated).
        #[arg(long)]
        id: Option<String>,
        /// Then watch it (until it ends, or for services until all pods run).
        #[arg(long)]
        watch: bool,
    },
    /// Show one job and its pods.
    Get {
        /// Job id or name.
        id: String,
    },
    /// List jobs, a page at a time (the table says when there is more).
    List {
        /// Only jobs in these states, repeatable: INITIALIZED, PENDING,
        /// RUNNING, SUCCEEDED, FAILED, KILLED, KILLING (or JOB_STATE_RUNNING
        /// etc.), in any case; an unknown state is an error.
        #[arg(long = "state")]
        states: Vec<String>,
        /// Only jobs whose name contains this.
        #[arg(long)]
        name: Option<String>,
        /// Only jobs of this owner.
        #[arg(long)]
        owner: Option<String>,
        /// Only jobs with this label (`key=value`), repeatable.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Only jobs matching these keywords, repeatable.
        #[arg(long = "keyword")]
        keywords: Vec<String>,
        /// First job to show (the table's footer gives the next page's).
        #[arg(long, default_value_t = 0)]
        offset: u32,
        /// Page size (at most the scheduler's --max-page).
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Stop a job: every pod is killed and stays down until start.
    Stop {
        /// Job id or name.
        id: String,
        /// The version you saw (a stale one is refused).
        #[arg(long)]
        version: Option<String>,
    },
    /// Start a stopped job.
    Start {
        /// Job id or name.
        id: String,
        /// The version you saw.
        #[arg(long)]
        version: Option<String>,
    },
    /// Delete a job (stopped first with --force).
    Delete {
        /// Job id or name.
        id: String,
        /// Stop it first if it is running.
        #[arg(long)]
        force: bool,
        /// The version you saw.
        #[arg(long)]
        version: Option<String>,
    },
    /// Restart a job's pods, in batches.
    Restart {
        /// Job id or name.
        id: String,
        /// Pods restarted at a time (0 = all at once).
        #[arg(long, default_value_t = 0)]
        batch_size: u32,
        /// Instances `FROM..TO` (TO excluded), repeatable; default all.
        #[arg(long = "instances")]
        ranges: Vec<String>,
        /// The version you saw.
        #[arg(long)]
        version: Option<String>,
    },
    /// Update a running service to the spec in a file: shows which pods
    /// change and asks first (--yes skips), then replaces them a batch at a
    /// time, each batch waiting for its pods to be RUNNING and READY (or
    /// HEALTHY, without a readiness check).
    Update {
        /// Job id or name.
        id: String,
        /// The new job spec file (YAML or JSON).
        file: PathBuf,
        /// How it rolls.
        #[command(flatten)]
        roll: RollFlags,
        /// Do not ask.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Then watch the update until it ends.
        #[arg(long)]
        watch: bool,
        /// The version you saw.
        #[arg(long)]
        version: Option<String>,
    },
    /// Roll the job's last update back: the pods it changed go back to the
    /// old spec, a batch at a time.
    Rollback {
        /// Job id or name.
        id: String,
        /// The version you saw.
        #[arg(long)]
        version: Option<String>,
    },
    /// Pause the job's update (or creation): no new batch starts.
    Pause {
        /// Job id or name.
        id: String,
        /// The version you saw.
        #[arg(long)]
        version: Option<String>,
    },
    /// Resume a paused update (or creation).
    Resume {
        /// Job id or name.
        id: String,
        /// The version you saw.
        #[arg(long)]
        version: Option<String>,
    },
    /// Abort the job's update where it stands: updated pods stay updated.
    Abort {
        /// Job id or name.
        id: String,
        /// The version you saw.
        #[arg(long)]
        version: Option<String>,
    },
    /// Set the number of instances: new ones start on the job's spec; a
    /// smaller count stops the highest instances. No other pod restarts.
    Scale {
        /// Job id or name.
        id: String,
        /// The new instance count.
        instances: u32,
        /// The version you saw.
        #[arg(long)]
        version: Option<String>,
    },
    /// The job's updates and how they ended, newest first.
    History {
        /// Job id or name.
        id: String,
    },
    /// Follow jobs' pods until they end (or, with --until running, run; or,
    /// with --until updated, until their update ends), with any update's
    /// progress.
    Watch {
        /// Job ids or names.
        #[arg(required = true)]
        ids: Vec<String>,
        /// What to wait for.
        #[arg(long, value_enum, default_value_t = Until::Terminal)]
        until: Until,
        /// Least time between two reads of the jobs, in milliseconds
        /// (changes arrive on the scheduler's watch stream; a burst of
        /// them is one read).
        #[arg(long, default_value_t = 200)]
        interval_ms: u64,
    },
}

fn versioned(version: &Option<String>) -> Value {
    match version {
        Some(v) => json!({"version": {"value": v}}),
        None => json!({}),
    }
}

/// Parses `FROM..TO` into an instance range.
fn parse_range(raw: &str) -> Result<Value, CliError> {
    let bad = || CliError::Usage(format!("--instances '{raw}': expected FROM..TO, e.g. 0..5"));
    let (from, to) = raw.split_once("..").ok_or_else(bad)?;
    let from: u32 = from.trim().parse().map_err(|_| bad())?;
    let to: u32 = to.trim().parse().map_err(|_| bad())?;
    if to <= from {
        return Err(bad());
    }
    Ok(json!({"from": from, "to": to}))
}

/// Runs a job command; answers the process exit code.
pub async fn run(client: &ApiClient, output: Output, command: JobCommand) -> Result<u8, CliError> {
    match command {
        JobCommand::Create { file, id, watch } => {
            let id = create(client, output, &file, id.as_deref()).await?;
            if watch {
                return watch_jobs(client, output, vec![id], None, 500).await;
            }
        }
        JobCommand::Get { id } => {
            let job = client.get(&job_path(&id)).await?;
            match output {
                Output::Json => print!("{}", output::json(&job)),
                Output::Table => {
                    // The pods of the job just shown, by its id: a name
                    // could meanwhile be given to another job.
                    let job_id = output::text(&job["job_info"]["job_id"]);
                    let pods = client.get(&format!("{}/pods", job_path(&job_id))).await?;
                    print!("{}\n{}", job_fields(&job), pods_table(&pods["pods"]));
                }
            }
        }
        JobCommand::List {
            states,
            name,
            owner,
            labels,
            keywords,
            offset,
            limit,
        } => {
            let mut spec = Map::new();
            if !states.is_empty() {
                spec.insert("job_states".into(), json!(states));
            }
            if let Some(n) = name {
                spec.insert("name".into(), json!(n));
            }
            if let Some(o) = owner {
                spec.insert("owner".into(), json!(o));
            }
            if !labels.is_empty() {
                spec.insert("labels".into(), labels_json(&labels)?);
            }
            if !keywords.is_empty() {
                spec.insert("keywords".into(), json!(keywords));
            }
            spec.insert(
                "pagination".into(),
                json!({"offset": offset, "limit": limit}),
            );
            let answer = client
                .post("/api/v1/jobs/query", &json!({"spec": spec}))
                .await?;
            match output {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => {
                    print!("{}", jobs_table(&answer["records"]));
                    if let Some(footer) = page_footer(&answer["pagination"]) {
                        println!("{footer}");
                    }
                }
            }
        }
        JobCommand::Stop { id, version } => {
            let answer = client
                .post(&format!("{}/stop", job_path(&id)), &versioned(&version))
                .await?;
            done(output, &answer, &format!("job {id} stopping"));
        }
        JobCommand::Start { id, version } => {
            let answer = client
                .post(&format!("{}/start", job_path(&id)), &versioned(&version))
                .await?;
            done(output, &answer, &format!("job {id} starting"));
        }
        JobCommand::Delete { id, force, version } => {
            let mut path = format!("{}?force={force}", job_path(&id));
            if let Some(v) = version {
                path.push_str(&format!("&version={}", encode_query(&v)));
            }
            let answer = client.delete(&path).await?;
            done(output, &answer, &format!("job {id} deleted"));
        }
        JobCommand::Restart {
            id,
            batch_size,
            ranges,
            version,
        } => {
            let mut body = versioned(&version);
            body["batch_size"] = json!(batch_size);
            if !ranges.is_empty() {
                body["ranges"] = ranges
                    .iter()
                    .map(|r| parse_range(r))
                    .collect::<Result<Vec<_>, _>>()?
                    .into();
            }
            let answer = client
                .post(&format!("{}/restart", job_path(&id)), &body)
                .await?;
            done(output, &answer, &format!("job {id} restarting"));
        }
        JobCommand::Watch {
            ids,
            until,
            interval_ms,
        } => return watch_jobs(client, output, ids, Some(until), interval_ms).await,
        JobCommand::Update {
            id,
            file,
            roll,
            yes,
            watch,
            version,
        } => {
            let code =
                update::update(client, output, &id, &file, roll, version.as_deref(), yes).await?;
            if watch && code == 0 {
                return watch_jobs(client, output, vec![id], Some(Until::Updated), 500).await;
            }
            return Ok(code);
        }
        JobCommand::Rollback { id, version } => {
            return update::act(
                client,
                output,
                &id,
                "rollback",
                json!({}),
                version.as_deref(),
            )
            .await
        }
        JobCommand::Pause { id, version } => {
            return update::act(
                client,
                output,
                &id,
                "workflow/pause",
                json!({}),
                version.as_deref(),
            )
            .await
        }
        JobCommand::Resume { id, version } => {
            return update::act(
                client,
                output,
                &id,
                "workflow/resume",
                json!({}),
                version.as_deref(),
            )
            .await
        }
        JobCommand::Abort { id, version } => {
            return update::act(
                client,
                output,
                &id,
                "workflow/abort",
                json!({}),
                version.as_deref(),
            )
            .await
        }
        JobCommand::Scale {
            id,
            instances,
            version,
        } => {
            let body = json!({"instance_count": instances});
            return update::act(client, output, &id, "scale", body, version.as_deref()).await;
        }
        JobCommand::History { id } => return update::history(client, output, &id).await,
    }
    Ok(0)
}

/// Submits the spec in `file`; answers the job id.
pub async fn create(
    client: &ApiClient,
    output: Output,
    file: &std::path::Path,
    id: Option<&str>,
) -> Result<String, CliError> {
    let text = std::fs::read_to_string(file).map_err(|source| CliError::Io {
        path: file.to_owned(),
        source,
    })?;
    create_from_text(client, output, &file.display().to_string(), &text, id).await
}

/// Submits the spec `text` (named `file` in errors); answers the job id.
pub async fn create_from_text(
    client: &ApiClient,
    output: Output,
    file: &str,
    text: &str,
    id: Option<&str>,
) -> Result<String, CliError> {
    let spec = spec_file::parse(file, text)?;
    let spec_json = spec_file::request_json(&spec)
        .map_err(|e| CliError::Usage(format!("cannot encode the spec: {e}")))?;
    let mut body = json!({"spec": spec_json});
    if let Some(id) = id {
        body["job_id"] = json!({"value": id});
    }
    let answer = match client.post("/api/v1/jobs", &body).await {
        Ok(a) => a,
        // The scheduler's own rules may be newer than ours: point at the
        // line of the field it names.
        Err(CliError::Api { code, message }) if code == "INVALID_ARGUMENT" => {
            let located = message.split_once(": ").and_then(|(field, problem)| {
                let e = spec_file::error_at(file, text, field, problem);
                (field.starts_with("spec") && e.position.is_some()).then_some(e)
            });
            return Err(match located {
                Some(e) => CliError::Api {
                    code,
                    message: e.to_string(),
                },
                None => CliError::Api { code, message },
            });
        }
        Err(e) => return Err(e),
    };
    let job_id = output::text(&answer["job_id"]);
    match output {
        Output::Json => print!("{}", output::json(&answer)),
        Output::Table => println!(
            "created job {job_id} ({}, version {})",
            spec.name,
            output::text(&answer["version"])
        ),
    }
    Ok(job_id)
}

/// Watches jobs; `until` None picks per job: running for services,
/// terminal for batch.
async fn watch_jobs(
    client: &ApiClient,
    output: Output,
    ids: Vec<String>,
    until: Option<Until>,
    interval_ms: u64,
) -> Result<u8, CliError> {
    let mut jobs = Vec::new();
    for reference in ids {
        // Resolved once: the watch follows these jobs by id even if their
        // names are later given to other jobs.
        let job = client.get(&job_path(&reference)).await?;
        let id = output::text(&job["job_info"]["job_id"]);
        let until = until.unwrap_or(if job["job_info"]["spec"]["type"] == "SERVICE" {
            Until::Running
        } else {
            Until::Terminal
        });
        jobs.push((id, until));
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let outcomes = watch::watch(
        client,
        &jobs,
        Duration::from_millis(interval_ms.max(50)),
        output,
        stop,
    )
    .await?;
    Ok(match outcomes {
        None => 130,
        Some(o) if o.iter().all(|x| matches!(x, Outcome::Reached(_))) => 0,
        Some(_) => 1,
    })
}

fn labels_json(labels: &[String]) -> Result<Value, CliError> {
    labels
        .iter()
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| CliError::Usage(format!("--label '{l}': expected key=value")))?;
            Ok(json!({"key": k, "value": v}))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::from)
}

fn done(output: Output, answer: &Value, message: &str) {
    match output {
        Output::Json => print!("{}", output::json(answer)),
        Output::Table => match answer.get("version") {
            Some(v) => println!("{message} (version {})", output::text(v)),
            None => println!("{message}"),
        },
    }
}

/// The key/value block of one job.
fn job_fields(job: &Value) -> String {
    let info = &job["job_info"];
    let spec = &info["spec"];
    let status = &info["status"];
    output::fields(&[
        ("Job", output::text(&info["job_id"])),
        ("Name", output::text(&spec["name"])),
        ("Type", output::text(&spec["type"])),
        ("Owner", output::text(&spec["owner"])),
        (
            "State",
            short_state(&output::text(&status["state"])).to_owned(),
        ),
        (
            "Desired",
            short_state(&output::text(&status["desired_state"])).to_owned(),
        ),
        ("Instances", output::text(&spec["instance_count"])),
        ("Pods", output::pod_stats(&status["pod_stats"])),
        ("Version", output::text(&status["version"])),
        ("Created", output::text(&status["creation_time"])),
        ("Disruptions", budget_text(&job["disruption_budget"])),
    ])
}

/// The job's disruption budget now: `2 allowed now`, or `0 allowed now
/// (why)`, and the drain handovers in progress.
fn budget_text(budget: &Value) -> String {
    let allowed = output::text(&budget["allowed_now"]);
    let mut text = match budget["held_by"].as_str() {
        Some(why) => format!("{allowed} allowed now ({why})"),
        None => format!("{allowed} allowed now"),
    };
    // Drain handovers in progress, one per line.
    for handover in budget["handovers"].as_array().into_iter().flatten() {
        text.push_str(&format!("\n  {}", output::text(handover)));
    }
    text
}

/// The line under a page of a longer list: which jobs it shows and the
/// `--offset` of the next page; none when the page is the whole list.
fn page_footer(pagination: &Value) -> Option<String> {
    let number = |k: &str| pagination[k].as_u64().unwrap_or(0);
    let (offset, limit, total) = (number("offset"), number("limit"), number("total"));
    let shown = limit.min(total.saturating_sub(offset));
    if offset == 0 && shown >= total {
        return None;
    }
    let range = if shown == 0 {
        "none".to_owned()
    } else {
        format!("{}-{}", offset + 1, offset + shown)
    };
    Some(
        match pagination.get("next_offset").and_then(Value::as_u64) {
            Some(next) => format!("showing {range} of {total} jobs; --offset {next} for more"),
            None => format!("showing {range} of {total} jobs"),
        },
    )
}

/// The table of `JobSummary`s.
fn jobs_table(jobs: &Value) -> String {
    let rows: Vec<Vec<String>> = jobs
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|j| {
            vec![
                output::text(&j["job_id"]),
                output::text(&j["name"]),
                output::text(&j["owner"]),
                short_state(&output::text(&j["status"]["state"])).to_owned(),
                output::text(&j["instance_count"]),
                output::pod_stats(&j["status"]["pod_stats"]),
            ]
        })
        .collect();
    output::table(
        &["ID", "NAME", "OWNER", "STATE", "INSTANCES", "PODS"],
        &rows,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_half_open() {
        assert_eq!(parse_range("0..5").unwrap(), json!({"from": 0, "to": 5}));
        assert!(parse_range("5..5").is_err());
        assert!(parse_range("3").is_err());
    }

    #[test]
    fn a_page_of_a_longer_list_says_so_and_a_whole_list_does_not() {
        let footer = |p: Value| page_footer(&p);
        assert_eq!(
            footer(json!({"offset": 0, "limit": 50, "total": 312, "next_offset": 50})).unwrap(),
            "showing 1-50 of 312 jobs; --offset 50 for more"
        );
        assert_eq!(
            footer(json!({"offset": 300, "limit": 50, "total": 312})).unwrap(),
            "showing 301-312 of 312 jobs"
        );
        assert_eq!(
            footer(json!({"offset": 400, "limit": 50, "total": 312})).unwrap(),
            "showing none of 312 jobs"
        );
        assert_eq!(footer(json!({"offset": 0, "limit": 50, "total": 3})), None);
        assert_eq!(footer(json!({"offset": 0, "limit": 50, "total": 0})), None);
    }

    #[test]
    fn labels_need_an_equals_sign() {
        assert_eq!(
            labels_json(&["team=x".into()]).unwrap(),
            json!([{"key": "team", "value": "x"}])
        );
        assert!(labels_json(&["team".into()]).is_err());
    }
}
