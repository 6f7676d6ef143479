//! `drover pool ...`: create, get, list, update and delete resource pools
//! over `/api/v1/pools`. A pool's configuration comes from a YAML or JSON
//! file (`--file`, the API's `spec` shape), from flags (`--cpu-reservation
//! 4 --cpu-limit 8 --cpu-share 2`, and the same for memory, disk, gpu), or
//! both (the flags win). An update starts from the pool's configuration
//! as the scheduler holds it, so a flag changes only what it names.

use super::client::{encode_query, ApiClient};
use super::error::CliError;
use super::output::{self, Output};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// `drover pool`.
#[derive(Debug, Clone, Subcommand)]
pub enum PoolCommand {
    /// Create a pool under a parent (the root by default).
    Create {
        /// The pool's configuration.
        #[command(flatten)]
        config: PoolFlags,
        /// The pool's id (default: generated).
        #[arg(long)]
        id: Option<String>,
    },
    /// Show one pool (by id, or by path when it starts with `/`).
    Get {
        /// Pool id or path.
        pool: String,
        /// Also show its child pools.
        #[arg(long)]
        children: bool,
    },
    /// List every pool, by path, with what each reserves, may use and uses.
    List,
    /// Change a pool's configuration (its parent stays).
    Update {
        /// Pool id or path.
        pool: String,
        /// What changes.
        #[command(flatten)]
        config: PoolFlags,
    },
    /// Delete a leaf pool no job runs in.
    Delete {
        /// Pool id or path.
        pool: String,
    },
}

/// A pool's configuration, from a file and flags.
#[derive(Debug, Clone, Default, Args)]
pub struct PoolFlags {
    /// A pool spec file (YAML or JSON: name, parent, resources, ...).
    #[arg(long)]
    pub file: Option<PathBuf>,
    /// The pool's name, unique among its siblings.
    #[arg(long)]
    pub name: Option<String>,
    /// The parent pool's id (create only; default the root).
    #[arg(long)]
    pub parent: Option<String>,
    /// Its description.
    #[arg(long)]
    pub description: Option<String>,
    /// Its owning team.
    #[arg(long)]
    pub owning_team: Option<String>,
    /// CPUs guaranteed when it has demand.
    #[arg(long)]
    pub cpu_reservation: Option<f64>,
    /// CPUs it never exceeds.
    #[arg(long)]
    pub cpu_limit: Option<f64>,
    /// Its weight for spare CPUs.
    #[arg(long)]
    pub cpu_share: Option<f64>,
    /// Memory (MiB) guaranteed.
    #[arg(long)]
    pub memory_reservation: Option<f64>,
    /// Memory (MiB) it never exceeds.
    #[arg(long)]
    pub memory_limit: Option<f64>,
    /// Its weight for spare memory.
    #[arg(long)]
    pub memory_share: Option<f64>,
    /// Disk (MiB) guaranteed.
    #[arg(long)]
    pub disk_reservation: Option<f64>,
    /// Disk (MiB) it never exceeds.
    #[arg(long)]
    pub disk_limit: Option<f64>,
    /// Its weight for spare disk.
    #[arg(long)]
    pub disk_share: Option<f64>,
    /// GPUs guaranteed.
    #[arg(long)]
    pub gpu_reservation: Option<f64>,
    /// GPUs it never exceeds.
    #[arg(long)]
    pub gpu_limit: Option<f64>,
    /// Its weight for spare GPUs.
    #[arg(long)]
    pub gpu_share: Option<f64>,
}

/// One kind's flags.
struct KindFlags {
    kind: &'static str,
    reservation: Option<f64>,
    limit: Option<f64>,
    share: Option<f64>,
}

impl PoolFlags {
    /// Each kind's flags.
    fn kinds(&self) -> [KindFlags; 4] {
        let kind = |kind, reservation, limit, share| KindFlags {
            kind,
            reservation,
            limit,
            share,
        };
        [
            kind("cpu", self.cpu_reservation, self.cpu_limit, self.cpu_share),
            kind(
                "memory",
                self.memory_reservation,
                self.memory_limit,
                self.memory_share,
            ),
            kind(
                "disk",
                self.disk_reservation,
                self.disk_limit,
                self.disk_share,
            ),
            kind("gpu", self.gpu_reservation, self.gpu_limit, self.gpu_share),
        ]
    }
}

/// `spec` with the flags laid over it (pure): the named fields set, each
/// kind's entry made or changed field by field. A kind new to the spec
/// needs its limit.
pub fn apply_flags(mut spec: Map<String, Value>, flags: &PoolFlags) -> Result<Value, CliError> {
    for (key, value) in [
        ("name", &flags.name),
        ("parent", &flags.parent),
        ("description", &flags.description),
        ("owning_team", &flags.owning_team),
    ] {
        if let Some(v) = value {
            spec.insert(key.into(), json!(v));
        }
    }
    let mut resources: Vec<Value> = match spec.remove("resources") {
        Some(Value::Array(list)) => list,
        Some(Value::Null) | None => Vec::new(),
        Some(other) => {
            return Err(CliError::Usage(format!(
                "spec.resources: expected a list, got {other}"
            )))
        }
    };
    for KindFlags {
        kind,
        reservation,
        limit,
        share,
    } in flags.kinds()
    {
        if reservation.is_none() && limit.is_none() && share.is_none() {
            continue;
        }
        let at = resources.iter().position(|r| r["kind"] == kind);
        let entry = match at {
            Some(i) => &mut resources[i],
            None => {
                if limit.is_none() {
                    return Err(CliError::Usage(format!(
                        "--{kind}-limit is needed: the pool does not configure {kind} yet"
                    )));
                }
                resources.push(json!({"kind": kind}));
                let last = resources.len() - 1;
                &mut resources[last]
            }
        };
        for (field, value) in [
            ("reservation", reservation),
            ("limit", limit),
            ("share", share),
        ] {
            if let Some(v) = value {
                entry[field] = json!(v);
            }
        }
    }
    spec.insert("resources".into(), Value::Array(resources));
    Ok(Value::Object(spec))
}

/// A spec file's content (YAML or JSON) as a JSON object.
fn read_spec(path: &Path) -> Result<Map<String, Value>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.to_owned(),
        source,
    })?;
    let value: Value = serde_yaml::from_str(&text).map_err(|e| {
        CliError::Usage(format!(
            "{}: not a YAML or JSON pool spec: {e}",
            path.display()
        ))
    })?;
    match value {
        // A file may hold the spec itself or `{spec: ...}`.
        Value::Object(mut map) if map.contains_key("spec") => match map.remove("spec") {
            Some(Value::Object(spec)) => Ok(spec),
            _ => Err(CliError::Usage(format!(
                "{}: `spec` is not a mapping",
                path.display()
            ))),
        },
        Value::Object(map) => Ok(map),
        _ => Err(CliError::Usage(format!(
            "{}: a pool spec is a mapping",
            path.display()
        ))),
    }
}

/// The id of a pool named by id or path (a path is looked up).
async fn pool_id(client: &ApiClient, pool: &str) -> Result<String, CliError> {
    if !pool.starts_with('/') {
        return Ok(pool.to_owned());
    }
    let found = client
        .get(&format!("/api/v1/pools/lookup?path={}", encode_query(pool)))
        .await?;
    Ok(output::text(&found["respool_id"]))
}

fn pool_path(id: &str) -> String {
    format!("/api/v1/pools/{}", encode_query(id))
}

/// Runs `drover pool ...`; answers the exit code.
pub async fn run(client: &ApiClient, out: Output, command: PoolCommand) -> Result<u8, CliError> {
    match command {
        PoolCommand::Create { config, id } => {
            let base = match &config.file {
                Some(path) => read_spec(path)?,
                None => Map::new(),
            };
            let spec = apply_flags(base, &config)?;
            let mut body = json!({ "spec": spec });
            if let Some(id) = id {
                body["respool_id"] = json!({ "value": id });
            }
            let answer = client.post("/api/v1/pools", &body).await?;
            match out {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => println!("{}", output::text(&answer["respool_id"])),
            }
        }
        PoolCommand::Get { pool, children } => {
            let id = pool_id(client, &pool).await?;
            let answer = client
                .get(&format!(
                    "{}?include_child_pools={children}",
                    pool_path(&id)
                ))
                .await?;
            match out {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => {
                    let mut rows = vec![answer["respool"].clone()];
                    if let Some(list) = answer["child_respools"].as_array() {
                        rows.extend(list.iter().cloned());
                    }
                    print!("{}", pools_table(&rows));
                }
            }
        }
        PoolCommand::List => {
            let answer = client.get("/api/v1/pools").await?;
            match out {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => {
                    let rows = answer["respools"].as_array().cloned().unwrap_or_default();
                    print!("{}", pools_table(&rows));
                }
            }
        }
        PoolCommand::Update { pool, config } => {
            if config.parent.is_some() {
                return Err(CliError::Usage(
                    "--parent: a pool cannot move; create a new one under the other parent".into(),
                ));
            }
            let id = pool_id(client, &pool).await?;
            let current = client.get(&pool_path(&id)).await?;
            let mut base = match &current["respool"]["spec"] {
                Value::Object(map) => map.clone(),
                _ => Map::new(),
            };
            if let Some(path) = &config.file {
                base.extend(read_spec(path)?);
            }
            let spec = apply_flags(base, &config)?;
            let answer = client
                .call(
                    http::Method::PUT,
                    &pool_path(&id),
                    Some(&json!({ "spec": spec })),
                )
                .await?;
            match out {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => println!("updated {id}"),
            }
        }
        PoolCommand::Delete { pool } => {
            let id = pool_id(client, &pool).await?;
            let answer = client.delete(&pool_path(&id)).await?;
            match out {
                Output::Json => print!("{}", output::json(&answer)),
                Output::Table => println!("deleted {id}"),
            }
        }
    }
    Ok(0)
}

/// Pools as a table: path, id, jobs, and per CPU and memory what is
/// reserved, the limit and what runs (used).
pub fn pools_table(pools: &[Value]) -> String {
    let amount = |pool: &Value, kind: &str, field: &str| -> String {
        let configured = pool["spec"]["resources"]
            .as_array()
            .and_then(|list| list.iter().find(|r| r["kind"] == kind));
        match (configured, field) {
            (Some(r), _) => number(&r[field]),
            (None, "limit") => "-".into(),
            (None, "share") => "1".into(),
            (None, _) => "0".into(),
        }
    };
    let used = |pool: &Value, kind: &str| -> String {
        pool["usages"]
            .as_array()
            .and_then(|list| list.iter().find(|u| u["kind"] == kind))
            .map(|u| number(&u["allocation"]))
            .unwrap_or_else(|| "0".into())
    };
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| {
            vec![
                output::text(&p["path"]),
                output::text(&p["respool_id"]),
                number(&p["jobs"]),
                amount(p, "cpu", "reservation"),
                amount(p, "cpu", "limit"),
                amount(p, "cpu", "share"),
                used(p, "cpu"),
                amount(p, "memory", "reservation"),
                amount(p, "memory", "limit"),
                used(p, "memory"),
            ]
        })
        .collect();
    output::table(
        &[
            "PATH",
            "ID",
            "JOBS",
            "CPU-RES",
            "CPU-LIMIT",
            "CPU-SHARE",
            "CPU-USED",
            "MEM-RES",
            "MEM-LIMIT",
            "MEM-USED",
        ],
        &rows,
    )
}

fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", n as i64),
        Some(n) => format!("{n:.2}"),
        None => output::text(v),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn flags_set_fields_and_change_a_kind_field_by_field() {
        let base: Map<String, Value> = serde_json::from_value(json!({
            "name": "batch",
            "resources": [{"kind": "cpu", "reservation": 2.0, "limit": 8.0, "share": 1.0}]
        }))
        .unwrap();
        let flags = PoolFlags {
            cpu_share: Some(3.0),
            memory_limit: Some(1024.0),
            description: Some("nightly".into()),
            ..PoolFlags::default()
        };
        let spec = apply_flags(base, &flags).unwrap();
        assert_eq!(spec["description"], "nightly");
        assert_eq!(spec["resources"][0]["share"], 3.0);
        assert_eq!(spec["resources"][0]["limit"], 8.0, "unchanged");
        assert_eq!(spec["resources"][1]["kind"], "memory");
        assert_eq!(spec["resources"][1]["limit"], 1024.0);
    }

    #[test]
    fn a_new_kind_without_its_limit_is_a_usage_error() {
        let flags = PoolFlags {
            gpu_reservation: Some(1.0),
            ..PoolFlags::default()
        };
        let err = apply_flags(Map::new(), &flags).unwrap_err();
        assert!(err.to_string().contains("--gpu-limit"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn the_table_shows_unconfigured_kinds_as_unlimited() {
        let pool = json!({
            "path": {"value": "/batch"}, "respool_id": {"value": "batch"}, "jobs": 2,
            "spec": {"resources": [{"kind": "cpu", "reservation": 2.0, "limit": 8.0, "share": 1.0}]},
            "usages": [{"kind": "cpu", "allocation": 1.5}]
        });
        let text = pools_table(&[pool]);
        let row = text.lines().nth(1).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            ["/batch", "batch", "2", "2", "8", "1", "1.50", "0", "-", "0"]
        );
    }
}
