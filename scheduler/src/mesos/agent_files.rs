//! A run's sandbox, listed through its agent's files API, so a user needs
//! no agent address (Peloton's BrowsePodSandbox). The agent's address is
//! read from the leading master's `/master/state` (`slaves[].pid`,
//! `slave(1)@host:port`); the sandbox is browsed at the virtual path Mesos
//! attaches every executor's latest run under,
//! `/frameworks/<framework>/executors/<executor>/runs/latest`
//! (`GET /files/browse?path=...`, an array of `{path, nlink, size, mtime,
//! mode, uid, gid}`). Drover's executor id is the run's task id. The
//! parsing is pure; [`browse_sandbox`] does the two GETs.

use super::driver::{self};
use super::master_state::{get, leader_state, MasterStateError};
use super::session::Endpoint;
use http::StatusCode;
use serde_json::Value;

/// How to reach the masters: `--master` and its credentials.
#[derive(Debug, Clone, Default)]
pub struct MasterAccess {
    /// Every `--master` (with `--master zk://`, the leader found at start).
    pub masters: Vec<Endpoint>,
    /// With `--master zk://`: the leader as the detector names it now,
    /// asked instead of `masters` when one is known.
    pub leader: Option<tokio::sync::watch::Receiver<Option<Endpoint>>>,
    /// HTTP basic credentials, if any.
    pub credentials: Option<(String, String)>,
    /// What `https://` masters and their agents are verified against.
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl MasterAccess {
    /// The masters to ask now: the detected leader when one is known,
    /// else every `--master`.
    pub fn current_masters(&self) -> Vec<Endpoint> {
        let detected = self.leader.as_ref().and_then(|rx| rx.borrow().clone());
        match detected {
            Some(leader) => vec![leader],
            None => self.masters.clone(),
        }
    }
}

/// Where an agent serves HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentAddress {
    /// Its hostname, as it registered.
    pub hostname: String,
    /// Its HTTP port.
    pub port: u16,
    /// `host:port` to connect to (from its pid).
    pub authority: String,
}

/// A run's sandbox listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// The agent serving it.
    pub agent: AgentAddress,
    /// The leading master's `host:port`.
    pub master: String,
    /// Every entry of the sandbox, as paths the agent's files API takes.
    pub paths: Vec<String>,
}

/// Why a sandbox was not listed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// No master answered.
    #[error("no master answered: {0}")]
    NoMaster(String),
    /// The master does not know the agent (it left the cluster).
    #[error("the master does not know agent {0}")]
    UnknownAgent(String),
    /// The agent has no such sandbox (gone, or never made).
    #[error("agent {agent} has no sandbox {path}")]
    NoSandbox {
        /// The agent's host.
        agent: String,
        /// The path asked.
        path: String,
    },
    /// The agent did not answer, or not as a files API does.
    #[error("agent {agent}: {reason}")]
    Agent {
        /// The agent's host.
        agent: String,
        /// What failed.
        reason: String,
    },
}

/// The virtual path of an executor's latest run sandbox.
pub fn sandbox_path(framework_id: &str, executor_id: &str) -> String {
    format!("/frameworks/{framework_id}/executors/{executor_id}/runs/latest")
}

/// `agent_id`'s address in a master's state.
pub fn agent_address(state: &Value, agent_id: &str) -> Option<AgentAddress> {
    let agent = state["slaves"]
        .as_array()?
        .iter()
        .find(|s| s["id"].as_str() == Some(agent_id))?;
    let hostname = agent["hostname"].as_str().unwrap_or_default().to_owned();
    let authority = agent["pid"]
        .as_str()
        .and_then(|pid| pid.split_once('@'))
        .map(|(_, a)| a.to_owned())
        .filter(|a| !a.is_empty())?;
    let port = agent["port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .or_else(|| authority.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
        .unwrap_or(5051);
    Some(AgentAddress {
        hostname,
        port,
        authority,
    })
}

/// The paths of a `/files/browse` answer.
pub fn browse_paths(body: &[u8]) -> Result<Vec<String>, String> {
    let listing: Value =
        serde_json::from_slice(body).map_err(|e| format!("not a files listing: {e}"))?;
    let entries = listing
        .as_array()
        .ok_or_else(|| "not a files listing: not an array".to_owned())?;
    Ok(entries
        .iter()
        .filter_map(|e| e["path"].as_str().map(str::to_owned))
        .collect())
}

/// Percent-encodes a query value (all but RFC 3986's unreserved and `/`).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The leading master's state, from the first `--master` whose leader
/// answers: its URL and body; else what each failure was, joined.
pub async fn leading_state(
    client: &driver::HttpClient,
    access: &MasterAccess,
) -> Result<(String, Value), String> {
    let mut failures = Vec::new();
    for master in &access.current_masters() {
        match leader_state(client, master, access.credentials.as_ref()).await {
            Ok(found) => return Ok(found),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if failures.is_empty() {
        failures.push("no --master".to_owned());
    }
    Err(failures.join("; "))
}

/// The leading master's URL and the address of `agent_id` in its state.
async fn locate(
    client: &driver::HttpClient,
    access: &MasterAccess,
    agent_id: &str,
) -> Result<(String, AgentAddress), SandboxError> {
    let (url, state) = leading_state(client, access)
        .await
        .map_err(SandboxError::NoMaster)?;
    let agent = agent_address(&state, agent_id)
        .ok_or_else(|| SandboxError::UnknownAgent(agent_id.to_owned()))?;
    Ok((url, agent))
}

/// GETs `url` from `agent`: the body of a 200; 404 is [`SandboxError::NoSandbox`]
/// for `path`.
async fn agent_get(
    client: &driver::HttpClient,
    access: &MasterAccess,
    agent: &AgentAddress,
    url: &str,
    path: &str,
) -> Result<bytes::Bytes, SandboxError> {
    let agent_error = |reason: String| SandboxError::Agent {
        agent: agent.hostname.clone(),
        reason,
    };
    let (status, _, body) = get(client, url, access.credentials.as_ref())
        .await
        .map_err(|e: MasterStateError| agent_error(e.to_string()))?;
    match status {
        StatusCode::OK => Ok(body),
        StatusCode::NOT_FOUND => Err(SandboxError::NoSandbox {
            agent: agent.hostname.clone(),
            path: path.to_owned(),
        }),
        other => Err(agent_error(format!("GET {url}: HTTP {}", other.as_u16()))),
    }
}

/// Lists the sandbox of `executor_id` of `framework_id` on `agent_id`.
pub async fn browse_sandbox(
    access: &MasterAccess,
    agent_id: &str,
    framework_id: &str,
    executor_id: &str,
) -> Result<Sandbox, SandboxError> {
    let client = driver::client(access.tls.as_ref());
    let (master_url, agent) = locate(&client, access, agent_id).await?;
    let path = sandbox_path(framework_id, executor_id);
    let url = format!(
        "{}://{}/files/browse?path={}",
        scheme_of(&master_url),
        agent.authority,
        encode(&path)
    );
    let body = agent_get(&client, access, &agent, &url, &path).await?;
    let paths = browse_paths(&body).map_err(|reason| SandboxError::Agent {
        agent: agent.hostname.clone(),
        reason,
    })?;
    let master = master_url
        .split_once("://")
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or_default()
        .to_owned();
    Ok(Sandbox {
        agent,
        master,
        paths,
    })
}

/// A chunk of a sandbox file, as the agent's `/files/read` answers it:
/// `data` from byte `offset` (with no offset asked, empty data and the
/// file's size as the offset, which is where a follower starts).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FileChunk {
    /// The bytes read (UTF-8, lossily, as Mesos sends them).
    pub data: String,
    /// Where they start in the file.
    pub offset: u64,
}

/// Reads `length` bytes (the agent's cap when None) of `file` (`stdout`,
/// `stderr`) of the sandbox of `executor_id` from `offset` (the size when
/// None) through the agent's files API.
pub async fn read_sandbox_file(
    access: &MasterAccess,
    agent_id: &str,
    framework_id: &str,
    executor_id: &str,
    file: &str,
    offset: Option<u64>,
    length: Option<u64>,
) -> Result<FileChunk, SandboxError> {
    let client = driver::client(access.tls.as_ref());
    let (master_url, agent) = locate(&client, access, agent_id).await?;
    let path = format!("{}/{file}", sandbox_path(framework_id, executor_id));
    let url = read_url(
        scheme_of(&master_url),
        &agent.authority,
        &path,
        offset,
        length,
    );
    let body = agent_get(&client, access, &agent, &url, &path).await?;
    parse_chunk(&body).map_err(|reason| SandboxError::Agent {
        agent: agent.hostname.clone(),
        reason,
    })
}

/// The whole of file `relative` (a path inside the sandbox) of the
/// sandbox of `executor_id`, as bytes: the agent's `/files/download`,
/// which sends the file as it is (`/files/read` answers text).
pub async fn download_sandbox_file(
    access: &MasterAccess,
    agent_id: &str,
    framework_id: &str,
    executor_id: &str,
    relative: &str,
) -> Result<bytes::Bytes, SandboxError> {
    let client = driver::client(access.tls.as_ref());
    let (master_url, agent) = locate(&client, access, agent_id).await?;
    let path = format!("{}/{relative}", sandbox_path(framework_id, executor_id));
    let url = format!(
        "{}://{}/files/download?path={}",
        scheme_of(&master_url),
        agent.authority,
        encode(&path)
    );
    agent_get(&client, access, &agent, &url, &path).await
}

/// The scheme of a master URL, which its agents share: a Mesos cluster
/// with SSL enabled (libprocess) serves every HTTP endpoint over it.
fn scheme_of(master_url: &str) -> &str {
    if master_url.starts_with("https://") {
        "https"
    } else {
        "http"
    }
}

/// The agent's `/files/read` URL (no offset: -1, the size).
fn read_url(
    scheme: &str,
    authority: &str,
    path: &str,
    offset: Option<u64>,
    length: Option<u64>,
) -> String {
    let offset = offset.map_or_else(|| "-1".to_owned(), |o| o.to_string());
    let mut url = format!(
        "{scheme}://{authority}/files/read?path={}&offset={offset}",
        encode(path)
    );
    if let Some(length) = length {
        url.push_str(&format!("&length={length}"));
    }
    url
}

/// A `/files/read` answer.
pub fn parse_chunk(body: &[u8]) -> Result<FileChunk, String> {
    serde_json::from_slice(body).map_err(|e| format!("not a files read answer: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_agent_is_reached_at_its_pid_and_shown_by_its_hostname() {
        let state = json!({"slaves": [
            {"id": "A-S0", "pid": "slave(1)@10.0.0.1:5051", "hostname": "a0", "port": 5051},
            {"id": "A-S1", "pid": "slave(1)@127.0.0.1:40001", "hostname": "a1", "port": 40001},
        ]});
        let a = agent_address(&state, "A-S1").unwrap();
        assert_eq!(a.authority, "127.0.0.1:40001");
        assert_eq!(a.hostname, "a1");
        assert_eq!(a.port, 40001);
        assert!(agent_address(&state, "A-S9").is_none());
        assert!(agent_address(&json!({}), "A-S0").is_none());
    }

    #[test]
    fn a_listing_gives_its_paths_and_anything_else_is_an_error() {
        let body = br#"[{"path": "/frameworks/f/executors/e/runs/latest/stdout", "size": 3}]"#;
        assert_eq!(
            browse_paths(body).unwrap(),
            ["/frameworks/f/executors/e/runs/latest/stdout"]
        );
        assert!(browse_paths(b"{}").is_err());
        assert!(browse_paths(b"<html>").is_err());
    }

    #[test]
    fn a_read_asks_for_the_size_without_an_offset_and_parses_like_mesos() {
        assert_eq!(
            read_url("http", "h:1", "/f/a b/stdout", None, None),
            "http://h:1/files/read?path=/f/a%20b/stdout&offset=-1"
        );
        assert_eq!(
            read_url("http", "h:1", "/s", Some(5), Some(10)),
            "http://h:1/files/read?path=/s&offset=5&length=10"
        );
        assert_eq!(
            parse_chunk(br#"{"data": "hi", "offset": 3}"#).unwrap(),
            FileChunk {
                data: "hi".into(),
                offset: 3
            }
        );
        assert!(parse_chunk(b"[]").is_err());
        assert!(parse_chunk(br#"{"data": "x", "offset": -1}"#).is_err());
    }

    #[test]
    fn the_sandbox_is_the_executors_latest_run_path_encoded_in_the_query() {
        assert_eq!(
            sandbox_path("F-1", "j-0-2"),
            "/frameworks/F-1/executors/j-0-2/runs/latest"
        );
        assert_eq!(encode("/a b/c%"), "/a%20b/c%25");
    }
}
