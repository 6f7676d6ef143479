//! The I/O half of the framework guard: reads the master's
//! `/master/state` before the first SUBSCRIBE of a store that has no
//! framework id, and asks [`framework_guard::decide`] what to do. Tried on
//! every `--master` in turn, following a redirect or a standby's `leader`
//! once, and again with backoff until a master answers: a scheduler with
//! no framework id cannot subscribe safely before then, and could not
//! subscribe at all without a master anyway.

use super::driver::{self, basic_auth_header, HttpClient};
use super::framework_guard::{self, GuardDecision, GuardInput, StateError};
use super::session::Endpoint;
use crate::engine::recovery::MasterTask;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, LOCATION};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long one `/state` exchange may take: the state of a large cluster
/// is megabytes, and the master builds it on its own actor.
const STATE_TIMEOUT: Duration = Duration::from_secs(30);
/// The first pause between rounds over the masters, doubled each round.
const RETRY_FIRST: Duration = Duration::from_millis(500);
/// The longest pause between rounds: a master that comes back is seen
/// within this.
const RETRY_MAX: Duration = Duration::from_secs(10);

/// Why one master's `/state` was not read.
#[derive(Debug, thiserror::Error)]
pub enum MasterStateError {
    /// The exchange failed (connect, I/O) or timed out.
    #[error("GET {url}: {reason}")]
    Unreachable {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The master answered, but not 200.
    #[error("GET {url}: HTTP {status}")]
    Status {
        /// The URL.
        url: String,
        /// Its status.
        status: u16,
    },
    /// The answer is not a master's state.
    #[error("GET {url}: {source}")]
    Body {
        /// The URL.
        url: String,
        /// What is wrong with it.
        #[source]
        source: StateError,
    },
}

/// What the guard decided, and for [`GuardDecision::Recover`] the tasks
/// the master lists for the framework taken over (read from the same
/// `/state`).
#[derive(Debug, Clone, PartialEq)]
pub struct Guarded {
    /// The decision.
    pub decision: GuardDecision,
    /// The framework's tasks, when it is recovered; empty otherwise.
    pub tasks: Vec<MasterTask>,
}

/// Asks the masters, until one answers or `shutdown`, and decides. `None`
/// when shut down first. The master is not asked at all when `input` does
/// not need it (a stored framework id, or `--new-framework`).
pub async fn guard(
    input: &GuardInput<'_>,
    masters: &[Endpoint],
    credentials: Option<&(String, String)>,
    tls: Option<&std::sync::Arc<rustls::ClientConfig>>,
    shutdown: &CancellationToken,
) -> Option<Guarded> {
    if !GuardDecision::needs_master(input) {
        return Some(Guarded {
            decision: framework_guard::decide(input, &[]),
            tasks: Vec::new(),
        });
    }
    let client = driver::client(tls);
    let mut pause = RETRY_FIRST;
    loop {
        for master in masters {
            match leader_state(&client, master, credentials).await {
                Ok((url, state)) => match decide_on(input, &state) {
                    Ok(guarded) => return Some(guarded),
                    Err(source) => tracing::warn!(
                        error = %MasterStateError::Body { url, source },
                        "the master's state cannot be read"
                    ),
                },
                Err(error) => tracing::warn!(
                    %error,
                    "cannot read the master's state to check that no framework of ours is \
                     there (the store has no framework id); not subscribing until it can \
                     (--new-framework skips the check)"
                ),
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(RETRY_MAX);
    }
}

/// The decision on one master state.
fn decide_on(input: &GuardInput<'_>, state: &Value) -> Result<Guarded, StateError> {
    let frameworks = framework_guard::frameworks_in_state(state)?;
    let decision = framework_guard::decide(input, &frameworks);
    let tasks = match &decision {
        GuardDecision::Recover { framework } => framework_guard::tasks_of(state, &framework.id)?,
        _ => Vec::new(),
    };
    Ok(Guarded { decision, tasks })
}

/// The state of `master`'s leader: its URL and its parsed body.
pub(crate) async fn leader_state(
    client: &HttpClient,
    master: &Endpoint,
    credentials: Option<&(String, String)>,
) -> Result<(String, Value), MasterStateError> {
    let Some(authority) = master.authority() else {
        return Err(MasterStateError::Unreachable {
            url: master.to_string(),
            reason: "no host in the master's URL".into(),
        });
    };
    let scheme = master.scheme_str().unwrap_or("http");
    let mut url = state_url(scheme, authority.as_str());
    // One hop: a redirect, or a standby naming its leader.
    for hop in 0..2 {
        let (status, location, body) = get(client, &url, credentials).await?;
        match status {
            StatusCode::OK => {
                let state = match framework_guard::parse_state(&body) {
                    Ok(state) => state,
                    Err(source) => return Err(MasterStateError::Body { url, source }),
                };
                if hop == 0 {
                    if let Some(leader) = framework_guard::leader_elsewhere(&state) {
                        url = state_url(scheme, &leader);
                        continue;
                    }
                }
                return Ok((url, state));
            }
            StatusCode::TEMPORARY_REDIRECT if hop == 0 => {
                match location.as_deref().and_then(authority_of) {
                    Some(leader) => url = state_url(scheme, &leader),
                    None => {
                        return Err(MasterStateError::Status {
                            url,
                            status: status.as_u16(),
                        })
                    }
                }
            }
            _ => {
                return Err(MasterStateError::Status {
                    url,
                    status: status.as_u16(),
                })
            }
        }
    }
    Err(MasterStateError::Status { url, status: 307 })
}

/// The state URL of a master, in the scheme of the one named (a
/// cluster's masters share it).
fn state_url(scheme: &str, authority: &str) -> String {
    format!("{scheme}://{authority}/master/state")
}

/// `host:port` of a `Location` (`//host:port/...` or `http://host:port/...`).
fn authority_of(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("http://")
        .or_else(|| location.strip_prefix("https://"))
        .or_else(|| location.strip_prefix("//"))?;
    let authority = rest.split('/').next()?;
    (!authority.is_empty()).then(|| authority.to_owned())
}

/// One GET: status, `Location`, body.
pub(crate) async fn get(
    client: &HttpClient,
    url: &str,
    credentials: Option<&(String, String)>,
) -> Result<(StatusCode, Option<String>, Bytes), MasterStateError> {
    let unreachable = |reason: String| MasterStateError::Unreachable {
        url: url.to_owned(),
        reason,
    };
    let mut request = Request::get(url).header(ACCEPT, "application/json");
    if let Some(auth) = basic_auth_header(credentials) {
        request = request.header(AUTHORIZATION, auth);
    }
    let request = request
        .body(Full::new(Bytes::new()))
        .map_err(|e| unreachable(e.to_string()))?;
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| unreachable(crate::tls::client::error_chain(&e)))?;
        let status = response.status();
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok((status, location, body))
    };
    tokio::time::timeout(STATE_TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable(format!("no answer within {STATE_TIMEOUT:?}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_name_the_leader() {
        assert_eq!(
            authority_of("//10.0.0.1:5050/master/state").as_deref(),
            Some("10.0.0.1:5050")
        );
        assert_eq!(
            authority_of("http://m2:5050/master/state").as_deref(),
            Some("m2:5050")
        );
        assert_eq!(authority_of("/master/state"), None);
    }
}
