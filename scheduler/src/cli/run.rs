//! `drover run ...`: Kubeflow pipeline runs over the scheduler's Kubeflow
//! REST face (`/apis/v1beta1`, as the kfp SDK calls it): create from a
//! compiled Argo Workflow (YAML or JSON) with `-p key=value` arguments,
//! get, list (Kubeflow's filter, sort and page tokens), terminate, retry,
//! archive, unarchive, delete, and watch (in [`super::run_watch`]). Each
//! command builds one request, sends it with the CLI's client (its
//! address, token and CA), and prints the answer as a table or as the
//! API's JSON. The tables are pure functions of the answers.

use super::client::{encode_query, ApiClient};
use super::error::CliError;
use super::output::{self, Output};
use super::run_watch;
use clap::Subcommand;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The run service's REST root.
pub const RUNS: &str = "/apis/v1beta1/runs";

/// `drover run`.
#[derive(Debug, Clone, Subcommand)]
pub enum RunCommand {
    /// Start a run of a pipeline compiled to an Argo Workflow (the kfp
    /// 1.8 SDK's `.yaml`, or JSON).
    Create {
        /// The compiled pipeline.
        file: PathBuf,
        /// A pipeline argument, `key=value`, repeatable (overrides the
        /// Workflow's `spec.arguments.parameters`).
        #[arg(short = 'p', long = "param")]
        params: Vec<String>,
        /// The run's name (default: the file's name without extension).
        #[arg(long)]
        name: Option<String>,
        /// The run's description.
        #[arg(long)]
        description: Option<String>,
        /// The experiment the run belongs to, by name or id (default:
        /// none; kfp's SDK puts its runs in `Default`).
        #[arg(long)]
        experiment: Option<String>,
        /// Then watch it until it ends.
        #[arg(long)]
        watch: bool,
    },
    /// Show one run and its DAG's nodes.
    Get {
        /// The run id.
        id: String,
    },
    /// List runs, a page at a time (the table says when there is more).
    List {
        /// `KEY OP VALUE`, repeatable, all must hold: OP is `=`, `!=`,
        /// `~` (contains), `>`, `>=`, `<`, `<=`; KEY is name, id, status,
        /// description, storage_state (AVAILABLE, ARCHIVED), created_at or
        /// scheduled_at (RFC 3339, or Unix seconds).
        #[arg(long = "filter")]
        filters: Vec<String>,
        /// `FIELD [desc]`: name, created_at (the default) or
        /// scheduled_at, e.g. "name desc".
        #[arg(long)]
        sort: Option<String>,
        /// Runs a page (default 20, at most 200).
        #[arg(long)]
        page_size: Option<u32>,
        /// The page to show (the table's footer gives the next one's).
        #[arg(long)]
        page_token: Option<String>,
        /// Only the runs of this experiment (name or id).
        #[arg(long)]
        experiment: Option<String>,
    },
    /// Terminate a run: its running nodes are killed, the rest skipped.
    Terminate {
        /// The run id.
        id: String,
    },
    /// Retry a failed run: its failed, errored and skipped nodes run
    /// again; succeeded nodes keep their outputs.
    Retry {
        /// The run id.
        id: String,
    },
    /// Archive a run (hidden from lists that ask for available runs).
    Archive {
        /// The run id.
        id: String,
    },
    /// Bring an archived run back.
    Unarchive {
        /// The run id.
        id: String,
    },
    /// Delete a run: running nodes are killed; the run and its record go.
    Delete {
        /// The run id.
        id: String,
    },
    /// Follow a run's DAG until the run ends: each node's phase as it
    /// changes, and the run's progress. Exits 0 if it Succeeded.
    Watch {
        /// The run id.
        id: String,
        /// Time between two reads of the run, in milliseconds.
        #[arg(long, default_value_t = 500)]
        interval_ms: u64,
    },
}

/// Runs a run command; answers the process exit code.
pub async fn run(client: &ApiClient, output: Output, command: RunCommand) -> Result<u8, CliError> {
    match command {
        RunCommand::Create {
            file,
            params,
            name,
            description,
            experiment,
            watch,
        } => {
            let experiment = experiment_of(client, experiment).await?;
            let body = create_body(&file, &params, name, description, experiment)?;
            let answer = client.post(RUNS, &body).await?;
            let id = output::text(&answer["run"]["id"]);
            match output {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => println!(
                    "created run {id} ({})",
                    output::text(&answer["run"]["name"])
                ),
            }
            if watch {
                return watch_run(client, output, &id, 500).await;
            }
        }
        RunCommand::Get { id } => {
            let detail = client.get(&run_path(&id)).await?;
            match output {
                Output::Json => print!("{}", output::json(&detail)),
                Output::Table => print!("{}\n{}", run_fields(&detail), nodes_table(&detail)),
            }
        }
        RunCommand::List {
            filters,
            sort,
            page_size,
            page_token,
            experiment,
        } => {
            let experiment = experiment_of(client, experiment).await?;
            let query = list_query(&filters, sort, page_size, page_token, experiment)?;
            let answer = client.get(&format!("{RUNS}{query}")).await?;
            match output {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => {
                    print!("{}", runs_table(&answer["runs"]));
                    if let Some(footer) = page_footer(&answer) {
                        println!("{footer}");
                    }
                }
            }
        }
        RunCommand::Terminate { id } => {
            post_action(client, output, &id, "/terminate", "terminating").await?
        }
        RunCommand::Retry { id } => post_action(client, output, &id, "/retry", "retrying").await?,
        RunCommand::Archive { id } => {
            post_action(client, output, &id, ":archive", "archived").await?
        }
        RunCommand::Unarchive { id } => {
            post_action(client, output, &id, ":unarchive", "unarchived").await?
        }
        RunCommand::Delete { id } => {
            let answer = client.delete(&run_path(&id)).await?;
            done(output, &answer, &format!("run {id} deleted"));
        }
        RunCommand::Watch { id, interval_ms } => {
            return watch_run(client, output, &id, interval_ms).await
        }
    }
    Ok(0)
}

/// Follows run `id` until it ends (or Ctrl-C: 130); 0 if it Succeeded.
async fn watch_run(
    client: &ApiClient,
    output: Output,
    id: &str,
    interval_ms: u64,
) -> Result<u8, CliError> {
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let interval = Duration::from_millis(interval_ms.max(50));
    Ok(
        match run_watch::watch(client, &run_path(id), interval, output, stop).await? {
            None => 130,
            Some(status) if status == "Succeeded" => 0,
            Some(_) => 1,
        },
    )
}

/// `/apis/v1beta1/runs/<id>`, the id as one path segment.
/// `POST` the run's `action` path (`/retry`, `:archive`, Kubeflow's
/// spellings), then say the run is `what`.
async fn post_action(
    client: &ApiClient,
    output: Output,
    id: &str,
    action: &str,
    what: &str,
) -> Result<(), CliError> {
    let answer = client
        .post(&format!("{}{action}", run_path(id)), &json!({}))
        .await?;
    done(output, &answer, &format!("run {id} {what}"));
    Ok(())
}

fn run_path(id: &str) -> String {
    format!("{RUNS}/{}", encode_query(id).replace('/', "%2F"))
}

/// The id of the experiment `--experiment` names, if it names one.
async fn experiment_of(
    client: &ApiClient,
    reference: Option<String>,
) -> Result<Option<String>, CliError> {
    match reference {
        Some(reference) => Ok(Some(experiment_id(client, &reference).await?)),
        None => Ok(None),
    }
}

/// The experiment named `reference`, else the one whose id it is.
async fn experiment_id(client: &ApiClient, reference: &str) -> Result<String, CliError> {
    let filter = json!({"predicates": [
        {"key": "name", "op": "EQUALS", "string_value": reference}]});
    let found = client
        .get(&format!(
            "/apis/v1beta1/experiments?filter={}",
            encode_query(&filter.to_string())
        ))
        .await?;
    if let Some(id) = found["experiments"]
        .as_array()
        .and_then(|e| e.first())
        .and_then(|e| e["id"].as_str())
    {
        return Ok(id.to_owned());
    }
    match client
        .get(&format!(
            "/apis/v1beta1/experiments/{}",
            encode_query(reference).replace('/', "%2F")
        ))
        .await
    {
        Ok(e) => Ok(output::text(&e["id"])),
        Err(CliError::Api { code, .. }) if code == "NOT_FOUND" => Err(CliError::Usage(format!(
            "--experiment '{reference}': no experiment has that name or id"
        ))),
        Err(e) => Err(e),
    }
}

/// The `Run` to create: the file's Workflow as sent (the scheduler parses
/// it and names the field it refuses), the arguments, the experiment.
fn create_body(
    file: &Path,
    params: &[String],
    name: Option<String>,
    description: Option<String>,
    experiment: Option<String>,
) -> Result<Value, CliError> {
    let manifest = std::fs::read_to_string(file).map_err(|source| CliError::Io {
        path: file.to_owned(),
        source,
    })?;
    // Caught here with its line: a file that is no YAML (nor JSON) at all.
    if let Err(e) = serde_yaml::from_str::<serde_yaml::Value>(&manifest) {
        return Err(CliError::Usage(format!(
            "{}: not a YAML or JSON Workflow: {e}",
            file.display()
        )));
    }
    let name = name.unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "run".to_owned())
    });
    let mut run = json!({
        "name": name,
        "pipeline_spec": {
            "workflow_manifest": manifest,
            "parameters": parse_params(params)?,
        },
    });
    if let Some(d) = description {
        run["description"] = json!(d);
    }
    if let Some(id) = experiment {
        run["resource_references"] = json!([{
            "key": {"type": "EXPERIMENT", "id": id},
            "relationship": "OWNER",
        }]);
    }
    Ok(run)
}

/// `-p key=value` as Kubeflow's `[{"name", "value"}]`.
fn parse_params(params: &[String]) -> Result<Value, CliError> {
    params
        .iter()
        .map(|p| match p.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok(json!({"name": k.trim(), "value": v})),
            _ => Err(CliError::Usage(format!("-p '{p}': expected key=value"))),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::from)
}

/// The query of a list: Kubeflow's `filter` JSON (predicates by name,
/// `string_value`, as the generated clients write them), `sort_by`,
/// `page_size`, `page_token`, the experiment's reference key.
fn list_query(
    filters: &[String],
    sort: Option<String>,
    page_size: Option<u32>,
    page_token: Option<String>,
    experiment: Option<String>,
) -> Result<String, CliError> {
    let mut query: Vec<String> = Vec::new();
    if !filters.is_empty() {
        let predicates = filters
            .iter()
            .map(|f| predicate(f))
            .collect::<Result<Vec<_>, _>>()?;
        let filter = json!({"predicates": predicates}).to_string();
        query.push(format!("filter={}", encode_query(&filter)));
    }
    if let Some(sort) = sort {
        query.push(format!("sort_by={}", encode_query(&sort)));
    }
    if let Some(size) = page_size {
        query.push(format!("page_size={size}"));
    }
    if let Some(token) = page_token {
        query.push(format!("page_token={}", encode_query(&token)));
    }
    if let Some(id) = experiment {
        query.push("resource_reference_key.type=EXPERIMENT".to_owned());
        query.push(format!("resource_reference_key.id={}", encode_query(&id)));
    }
    Ok(if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    })
}

/// One `--filter KEY OP VALUE` as a Kubeflow predicate.
fn predicate(filter: &str) -> Result<Value, CliError> {
    // Two-character operators first: `>=` is not `>` then `=value`.
    const OPS: [(&str, &str); 7] = [
        ("!=", "NOT_EQUALS"),
        (">=", "GREATER_THAN_EQUALS"),
        ("<=", "LESS_THAN_EQUALS"),
        ("=", "EQUALS"),
        ("~", "IS_SUBSTRING"),
        (">", "GREATER_THAN"),
        ("<", "LESS_THAN"),
    ];
    let found = OPS
        .iter()
        .filter_map(|(sym, op)| filter.find(sym).map(|at| (at, *sym, *op)))
        .min_by_key(|(at, sym, _)| (*at, std::cmp::Reverse(sym.len())));
    let Some((at, sym, op)) = found else {
        return Err(CliError::Usage(format!(
            "--filter '{filter}': expected KEY OP VALUE, OP one of = != ~ > >= < <= \
             (e.g. name~nightly)"
        )));
    };
    let key = filter[..at].trim();
    let value = filter[at + sym.len()..].trim();
    if key.is_empty() {
        return Err(CliError::Usage(format!("--filter '{filter}': no key")));
    }
    let mut p = json!({"key": key, "op": op});
    match key {
        "created_at" | "scheduled_at" if value.bytes().all(|b| b.is_ascii_digit()) => {
            p["long_value"] = json!(value);
        }
        "created_at" | "scheduled_at" => p["timestamp_value"] = json!(value),
        "storage_state" => {
            let upper = value.to_ascii_uppercase();
            p["string_value"] = if upper.starts_with("STORAGESTATE_") {
                json!(upper)
            } else {
                json!(format!("STORAGESTATE_{upper}"))
            };
        }
        _ => p["string_value"] = json!(value),
    }
    Ok(p)
}

fn done(output: Output, answer: &Value, message: &str) {
    match output {
        Output::Json => print!("{}", output::json(answer)),
        Output::Table => println!("{message}"),
    }
}

/// `STORAGESTATE_ARCHIVED` as `ARCHIVED`; an absent one is the default.
fn storage(run: &Value) -> String {
    let state = output::text(&run["storage_state"]);
    match state.strip_prefix("STORAGESTATE_") {
        Some(s) => s.to_owned(),
        None if state.is_empty() => "AVAILABLE".to_owned(),
        None => state,
    }
}

/// The key/value block of one `RunDetail`.
pub fn run_fields(detail: &Value) -> String {
    let run = &detail["run"];
    let experiment = run["resource_references"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["key"]["type"] == "EXPERIMENT")
        .map(|r| output::text(&r["key"]["id"]))
        .unwrap_or_default();
    let params = run["pipeline_spec"]["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| format!("{}={}", output::text(&p["name"]), output::text(&p["value"])))
        .collect::<Vec<_>>()
        .join(" ");
    let metrics = run["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            format!(
                "{}={} ({})",
                output::text(&m["name"]),
                output::text(&m["number_value"]),
                output::text(&m["node_id"])
            )
        })
        .collect::<Vec<_>>()
        .join(" ");
    output::fields(&[
        ("Run", output::text(&run["id"])),
        ("Name", output::text(&run["name"])),
        ("Status", output::text(&run["status"])),
        ("Storage", storage(run)),
        ("Experiment", experiment),
        ("Parameters", params),
        ("Created", output::text(&run["created_at"])),
        ("Started", output::text(&run["scheduled_at"])),
        ("Finished", output::text(&run["finished_at"])),
        ("Error", output::text(&run["error"])),
        ("Metrics", metrics),
    ])
}

/// The run's Argo Workflow (`pipeline_runtime.workflow_manifest`, a JSON
/// string), or null.
pub fn workflow(detail: &Value) -> Value {
    detail["pipeline_runtime"]["workflow_manifest"]
        .as_str()
        .and_then(|w| serde_json::from_str(w).ok())
        .unwrap_or(Value::Null)
}

/// The Workflow's `status.nodes` in the order they started (not started
/// last), then by name.
pub fn ordered_nodes(workflow: &Value) -> Vec<&Value> {
    let mut nodes: Vec<&Value> = workflow["status"]["nodes"]
        .as_object()
        .map(|m| m.values().collect())
        .unwrap_or_default();
    nodes.sort_by_key(|n| {
        (
            n["startedAt"].as_str().is_none(),
            n["startedAt"].as_str().unwrap_or_default().to_owned(),
            output::text(&n["displayName"]),
        )
    });
    nodes
}

/// The DAG's nodes: name, type, phase, times, the Drover job each runs
/// as, and its output parameters.
pub fn nodes_table(detail: &Value) -> String {
    let workflow = workflow(detail);
    let rows: Vec<Vec<String>> = ordered_nodes(&workflow)
        .into_iter()
        .map(|n| {
            let outputs = n["outputs"]["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| format!("{}={}", output::text(&p["name"]), output::text(&p["value"])))
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                output::text(&n["displayName"]),
                output::text(&n["type"]),
                output::text(&n["phase"]),
                output::text(&n["startedAt"]),
                output::text(&n["finishedAt"]),
                output::text(&n["hostNodeName"]),
                outputs,
            ]
        })
        .collect();
    output::table(
        &[
            "NODE", "TYPE", "PHASE", "STARTED", "FINISHED", "JOB", "OUTPUTS",
        ],
        &rows,
    )
}

/// A page of runs as a table.
fn runs_table(runs: &Value) -> String {
    let rows: Vec<Vec<String>> = runs
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![
                output::text(&r["id"]),
                output::text(&r["name"]),
                output::text(&r["status"]),
                output::text(&r["created_at"]),
                output::text(&r["finished_at"]),
                storage(r),
            ]
        })
        .collect();
    output::table(
        &["ID", "NAME", "STATUS", "CREATED", "FINISHED", "STORAGE"],
        &rows,
    )
}

/// The line under a page of a longer list: how many runs match and the
/// `--page-token` of the next page; none when the page is the whole list.
fn page_footer(answer: &Value) -> Option<String> {
    let shown = answer["runs"].as_array().map_or(0, Vec::len);
    let total = match &answer["total_size"] {
        Value::Number(n) => n.as_u64().unwrap_or(0),
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    };
    let next = answer["next_page_token"].as_str().filter(|t| !t.is_empty());
    match next {
        Some(token) => Some(format!(
            "showing {shown} of {total} runs; --page-token {token} for more"
        )),
        None if (shown as u64) < total => Some(format!("showing {shown} of {total} runs")),
        None => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn params_are_kubeflow_parameters_and_need_an_equals_sign() {
        assert_eq!(
            parse_params(&["greeting=hi=there".into(), " n =3".into()]).unwrap(),
            json!([{"name": "greeting", "value": "hi=there"}, {"name": "n", "value": "3"}])
        );
        assert!(parse_params(&["greeting".into()]).is_err());
        assert!(parse_params(&["=x".into()]).is_err());
    }

    #[test]
    fn filters_become_kubeflow_predicates_by_name() {
        assert_eq!(
            predicate("name~nightly").unwrap(),
            json!({"key": "name", "op": "IS_SUBSTRING", "string_value": "nightly"})
        );
        assert_eq!(
            predicate("status != Failed").unwrap(),
            json!({"key": "status", "op": "NOT_EQUALS", "string_value": "Failed"})
        );
        assert_eq!(
            predicate("created_at>=2026-12-07T08:00:00Z").unwrap(),
            json!({"key": "created_at", "op": "GREATER_THAN_EQUALS",
                   "timestamp_value": "2026-12-07T08:00:00Z"})
        );
        assert_eq!(
            predicate("created_at<1700000000").unwrap(),
            json!({"key": "created_at", "op": "LESS_THAN", "long_value": "1700000000"})
        );
        assert_eq!(
            predicate("storage_state=archived").unwrap()["string_value"],
            "STORAGESTATE_ARCHIVED"
        );
        // The first operator wins: a value may hold another.
        assert_eq!(
            predicate("name=a~b").unwrap(),
            json!({"key": "name", "op": "EQUALS", "string_value": "a~b"})
        );
        assert!(predicate("name").is_err());
        assert!(predicate("=x").is_err());
    }

    #[test]
    fn the_list_query_carries_filter_sort_page_and_experiment() {
        let q = list_query(
            &["name~a b".into()],
            Some("name desc".into()),
            Some(2),
            Some("tok/1".into()),
            Some("e1".into()),
        )
        .unwrap();
        let filter = r#"{"predicates":[{"key":"name","op":"IS_SUBSTRING","string_value":"a b"}]}"#;
        assert_eq!(
            q,
            format!(
                "?filter={}&sort_by=name%20desc&page_size=2&page_token=tok/1\
                 &resource_reference_key.type=EXPERIMENT&resource_reference_key.id=e1",
                encode_query(filter)
            )
        );
        assert_eq!(list_query(&[], None, None, None, None).unwrap(), "");
    }

    #[test]
    fn a_page_of_a_longer_list_says_so_and_a_whole_list_does_not() {
        let page = json!({"runs": [{"id": "a"}], "total_size": 3, "next_page_token": "T"});
        assert_eq!(
            page_footer(&page).unwrap(),
            "showing 1 of 3 runs; --page-token T for more"
        );
        assert_eq!(
            page_footer(&json!({"runs": [{"id": "a"}], "total_size": 1})),
            None
        );
        assert_eq!(page_footer(&json!({})), None);
    }

    #[test]
    fn a_run_shows_its_nodes_in_the_order_they_started() {
        let workflow = json!({"status": {"nodes": {
            "w-2": {"displayName": "late", "type": "Pod", "phase": "Pending"},
            "w-1": {"displayName": "second", "type": "Pod", "phase": "Running",
                    "startedAt": "2026-12-07T08:00:02Z", "hostNodeName": "kfp-r-1-1"},
            "w": {"displayName": "w", "type": "DAG", "phase": "Running",
                  "startedAt": "2026-12-07T08:00:01Z"},
            "w-3": {"displayName": "first", "type": "Pod", "phase": "Succeeded",
                    "startedAt": "2026-12-07T08:00:01Z", "finishedAt": "2026-12-07T08:00:02Z",
                    "outputs": {"parameters": [{"name": "out", "value": "HI"}]}}}}});
        let detail = json!({
            "run": {"id": "r", "name": "n", "status": "Running",
                    "pipeline_spec": {"parameters": [{"name": "x", "value": "1"}]}},
            "pipeline_runtime": {"workflow_manifest": workflow.to_string()}});
        let table = nodes_table(&detail);
        let names: Vec<&str> = table
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(names, ["first", "w", "second", "late"], "{table}");
        assert!(
            table.contains("out=HI") && table.contains("kfp-r-1-1"),
            "{table}"
        );
        let fields = run_fields(&detail);
        assert!(fields.contains("Status:"), "{fields}");
        assert!(fields.contains("Parameters: x=1"), "{fields}");
        assert!(fields.contains("Storage:    AVAILABLE"), "{fields}");
    }
}
