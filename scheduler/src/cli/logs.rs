//! `drover pod logs`: prints (and with `--follow`, tails) a file of a pod's
//! sandbox, `stdout` by default, through the files API of the agent that
//! runs it (`/files/browse`, `/files/read?path=&offset=&length=`).
//!
//! The scheduler's pod status names the agent (`agent_id`) and the run
//! (`pod_id`, which is the executor id) but not the agent's address nor the
//! sandbox directory, so those come from `--agent` and either `--sandbox`
//! or `--work-dir` (the agents' work directory, under which the sandbox is
//! Mesos' `agents/<agent>/frameworks/<fw>/executors/<run>/runs/<container>`;
//! the newest container is used).

use super::client::{encode_query, ApiClient};
use super::error::CliError;
use super::output;
use clap::Args;
use serde_json::Value;
use std::io::Write;
use std::time::Duration;

/// The largest read asked for at once (agents cap reads at 1 MiB).
const CHUNK: u64 = 1 << 20;

/// `drover pod logs`.
#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Pod name (`<job-id>-<instance>`).
    pub pod: String,
    /// The sandbox file: stdout, stderr, or any path inside the sandbox.
    #[arg(long, default_value = "stdout")]
    pub file: String,
    /// Keep printing what is appended, until Ctrl-C.
    #[arg(long, short)]
    pub follow: bool,
    /// Start this many bytes before the end (0: the whole file).
    #[arg(long, default_value_t = 64 * 1024)]
    pub tail_bytes: u64,
    /// The files API of the pod's agent (`http://host:port`; agent-sim
    /// serves it on its master address too).
    #[arg(long, env = "DROVER_AGENT")]
    pub agent: Option<String>,
    /// The agents' work directory, to find the sandbox in.
    #[arg(long, env = "DROVER_WORK_DIR")]
    pub work_dir: Option<String>,
    /// The sandbox directory itself.
    #[arg(long)]
    pub sandbox: Option<String>,
}

/// Runs `drover pod logs`; answers the exit code.
pub async fn run(client: &ApiClient, args: LogsArgs) -> Result<u8, CliError> {
    let pod = client.get(&format!("/api/v1/pods/{}", args.pod)).await?;
    let status = &pod["current"]["status"];
    let run_id = output::text(&status["pod_id"]);
    let agent_id = output::text(&status["agent_id"]);
    if run_id.is_empty() || agent_id.is_empty() {
        return Err(CliError::Usage(format!(
            "pod {} has not been placed on an agent yet (state {})",
            args.pod,
            output::text(&status["state"])
        )));
    }
    let agent_addr = args.agent.clone().ok_or_else(|| {
        CliError::Usage(format!(
            "the scheduler's pod status names agent {agent_id} but not its address: \
             pass --agent http://HOST:PORT (or set DROVER_AGENT)"
        ))
    })?;
    let agent = ApiClient::new(&agent_addr)?;
    let sandbox = match (&args.sandbox, &args.work_dir) {
        (Some(s), _) => s.clone(),
        (None, Some(work)) => find_sandbox(&agent, work, &agent_id, &run_id).await?,
        (None, None) => {
            return Err(CliError::Usage(
                "the scheduler's pod status has no sandbox path: pass --work-dir (the \
                 agents' work directory, or set DROVER_WORK_DIR) or --sandbox"
                    .into(),
            ))
        }
    };
    let path = if args.file.starts_with('/') {
        args.file.clone()
    } else {
        format!("{}/{}", sandbox.trim_end_matches('/'), args.file)
    };
    tail(&agent, &path, args.tail_bytes, args.follow).await?;
    Ok(0)
}

fn read_url(path: &str, offset: i64, length: u64) -> String {
    format!(
        "/files/read?path={}&offset={offset}&length={length}",
        encode_query(path)
    )
}

/// Prints `path` from `tail_bytes` before its end; with `follow`, keeps
/// polling for more until Ctrl-C.
async fn tail(
    agent: &ApiClient,
    path: &str,
    tail_bytes: u64,
    follow: bool,
) -> Result<(), CliError> {
    let size = agent.get(&read_url(path, -1, 0)).await?["offset"]
        .as_u64()
        .unwrap_or(0);
    let mut offset = if tail_bytes == 0 {
        0
    } else {
        size.saturating_sub(tail_bytes)
    };
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let answer = agent.get(&read_url(path, offset as i64, CHUNK)).await?;
        let data = answer["data"].as_str().unwrap_or_default();
        if !data.is_empty() {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(data.as_bytes());
            let _ = out.flush();
            offset += data.len() as u64;
            continue;
        }
        if !follow {
            return Ok(());
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(()),
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// Entries of a directory through `/files/browse`, as (path, mtime).
async fn browse(agent: &ApiClient, dir: &str) -> Result<Vec<(String, i64)>, CliError> {
    let listing = agent
        .get(&format!("/files/browse?path={}", encode_query(dir)))
        .await?;
    Ok(listing
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e: &Value| {
            (
                output::text(&e["path"]),
                e["mtime"].as_i64().unwrap_or_default(),
            )
        })
        .collect())
}

/// The newest container sandbox of executor `run_id` on `agent_id`.
async fn find_sandbox(
    agent: &ApiClient,
    work_dir: &str,
    agent_id: &str,
    run_id: &str,
) -> Result<String, CliError> {
    let frameworks = format!(
        "{}/agents/{agent_id}/frameworks",
        work_dir.trim_end_matches('/')
    );
    let not_found = || {
        CliError::Usage(format!(
            "no sandbox of run {run_id} under {frameworks} at {} (is --agent the pod's agent?)",
            agent.base()
        ))
    };
    for (framework, _) in browse(agent, &frameworks).await.map_err(|_| not_found())? {
        let runs = format!("{framework}/executors/{run_id}/runs");
        if let Ok(mut containers) = browse(agent, &runs).await {
            containers.sort_by_key(|(_, mtime)| *mtime);
            if let Some((newest, _)) = containers.pop() {
                return Ok(newest);
            }
        }
    }
    Err(not_found())
}
