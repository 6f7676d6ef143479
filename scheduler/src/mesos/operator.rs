//! The master's operator API (`/api/v1`, JSON), for the maintenance
//! primitives Drover drives (Mesos `docs/maintenance.md`): a host Drover
//! drained goes DOWN with UPDATE_MAINTENANCE_SCHEDULE (Mesos takes only
//! scheduled machines DOWN) then START_MAINTENANCE; CompleteMaintenance
//! sends STOP_MAINTENANCE and takes the host's window out of the
//! schedule. Windows other operators scheduled are kept as they are.
//!
//! Machines are `MachineID {hostname, ip}`, the IP read from the agent's
//! pid in GET_AGENTS, as Mesos matches a machine to its agents by both.
//! The leader is found as the framework guard finds it (one redirect or a
//! standby's `leader`).
//!
//! The JSON shapes are pure functions (tested here); [`OperatorClient`]
//! only carries them.

use super::agent_files::MasterAccess;
use super::driver::{self, basic_auth_header, HttpClient};
use super::master_state::leader_state;
use crate::engine::OperatorCall;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{json, Value};
use std::time::Duration;

/// How long one operator exchange may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an operator call failed.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No master answered `/master/state` (to find the leader).
    #[error("no master reachable: {0}")]
    NoMaster(String),
    /// The exchange failed or timed out.
    #[error("{call} to {url}: {reason}")]
    Unreachable {
        /// The call.
        call: &'static str,
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The master refused the call (Mesos answers 400 with its reason).
    #[error("{call} to {url}: HTTP {status}: {body}")]
    Refused {
        /// The call.
        call: &'static str,
        /// The URL.
        url: String,
        /// Its status.
        status: u16,
        /// The master's reason.
        body: String,
    },
    /// The answer is not the JSON the call returns.
    #[error("{call}: unexpected answer: {reason}")]
    Body {
        /// The call.
        call: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Carries maintenance calls to the leading master.
pub struct OperatorClient {
    access: std::sync::Arc<MasterAccess>,
    client: HttpClient,
}

impl OperatorClient {
    /// A client for the masters `access` names.
    pub fn new(access: std::sync::Arc<MasterAccess>) -> Self {
        let client = driver::client(access.tls.as_ref());
        OperatorClient { access, client }
    }

    /// Carries out `call`.
    pub async fn call(&self, call: &OperatorCall) -> Result<(), OperatorError> {
        let url = self.leader_api().await?;
        let (hostnames, starting) = match call {
            OperatorCall::StartMaintenance { hostnames } => (hostnames, true),
            OperatorCall::StopMaintenance { hostnames } => (hostnames, false),
        };
        let schedule = self
            .post(
                &url,
                "GET_MAINTENANCE_SCHEDULE",
                &json!({"type": "GET_MAINTENANCE_SCHEDULE"}),
            )
            .await?;
        let windows = windows_of(&schedule);
        // A DOWN machine's agent is gone from GET_AGENTS: the schedule
        // names it as it was scheduled.
        let agents = self
            .post(&url, "GET_AGENTS", &json!({"type": "GET_AGENTS"}))
            .await?;
        let machines = scheduled_or_agents(&windows, &agents, hostnames);
        if starting {
            let now_ns = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            let windows = with_window(windows, &machines, now_ns);
            self.post(
                &url,
                "UPDATE_MAINTENANCE_SCHEDULE",
                &update_schedule(windows),
            )
            .await?;
            self.post(
                &url,
                "START_MAINTENANCE",
                &json!({"type": "START_MAINTENANCE", "start_maintenance": {"machines": machines}}),
            )
            .await?;
        } else {
            self.post(
                &url,
                "STOP_MAINTENANCE",
                &json!({"type": "STOP_MAINTENANCE", "stop_maintenance": {"machines": machines}}),
            )
            .await?;
            let windows = without_machines(windows, hostnames);
            self.post(
                &url,
                "UPDATE_MAINTENANCE_SCHEDULE",
                &update_schedule(windows),
            )
            .await?;
        }
        Ok(())
    }

    /// The leader's `/api/v1`.
    async fn leader_api(&self) -> Result<String, OperatorError> {
        let mut last = String::from("no --master");
        for master in &self.access.current_masters() {
            match leader_state(&self.client, master, self.access.credentials.as_ref()).await {
                Ok((state_url, _)) => {
                    return Ok(state_url.replace("/master/state", "/api/v1"));
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(OperatorError::NoMaster(last))
    }

    /// POSTs one call; its JSON answer (Null for an empty 200/202).
    async fn post(
        &self,
        url: &str,
        call: &'static str,
        body: &Value,
    ) -> Result<Value, OperatorError> {
        let unreachable = |reason: String| OperatorError::Unreachable {
            call,
            url: url.to_owned(),
            reason,
        };
        let mut request = Request::post(url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json");
        if let Some(auth) = basic_auth_header(self.access.credentials.as_ref()) {
            request = request.header(AUTHORIZATION, auth);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| unreachable(e.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| unreachable(crate::tls::client::error_chain(&e)))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(e.to_string()))?
                .to_bytes();
            Ok::<_, OperatorError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| unreachable(format!("no answer within {CALL_TIMEOUT:?}")))??;
        if status != StatusCode::OK && status != StatusCode::ACCEPTED {
            return Err(OperatorError::Refused {
                call,
                url: url.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).trim().to_owned(),
            });
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| OperatorError::Body {
            call,
            reason: e.to_string(),
        })
    }
}

/// The MachineIDs of `hostnames`: each with the IP of its agent's pid
/// (`slave(1)@10.0.0.1:5051`) in GET_AGENTS, or the hostname alone when
/// no registered agent has it.
pub fn machines_of(agents: &Value, hostnames: &[String]) -> Vec<Value> {
    let listed = agents["get_agents"]["agents"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    hostnames
        .iter()
        .map(|host| {
            let ip = listed
                .iter()
                .find(|a| a["agent_info"]["hostname"].as_str() == Some(host.as_str()))
                .and_then(|a| a["pid"].as_str())
                .and_then(|pid| pid.split_once('@'))
                .and_then(|(_, addr)| addr.rsplit_once(':'))
                .map(|(ip, _)| ip.to_owned());
            match ip {
                Some(ip) => json!({"hostname": host, "ip": ip}),
                None => json!({"hostname": host}),
            }
        })
        .collect()
}

/// The MachineIDs of `hostnames` as `windows` schedule them, else as
/// [`machines_of`] finds them in GET_AGENTS.
pub fn scheduled_or_agents(windows: &[Value], agents: &Value, hostnames: &[String]) -> Vec<Value> {
    let found = machines_of(agents, hostnames);
    hostnames
        .iter()
        .zip(found)
        .map(|(host, from_agents)| {
            windows
                .iter()
                .filter_map(|w| w["machine_ids"].as_array())
                .flatten()
                .find(|id| id["hostname"].as_str() == Some(host.as_str()))
                .cloned()
                .unwrap_or(from_agents)
        })
        .collect()
}

/// The windows of a GET_MAINTENANCE_SCHEDULE answer.
pub fn windows_of(schedule: &Value) -> Vec<Value> {
    schedule["get_maintenance_schedule"]["schedule"]["windows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// `windows` with one more for `machines` from `now_ns`, of the machines
/// not scheduled already (Mesos refuses a machine in two windows).
pub fn with_window(mut windows: Vec<Value>, machines: &[Value], now_ns: i64) -> Vec<Value> {
    let scheduled = |m: &Value| {
        windows.iter().any(|w| {
            w["machine_ids"]
                .as_array()
                .is_some_and(|ids| ids.iter().any(|id| id["hostname"] == m["hostname"]))
        })
    };
    let new: Vec<Value> = machines.iter().filter(|m| !scheduled(m)).cloned().collect();
    if !new.is_empty() {
        windows.push(json!({
            "machine_ids": new,
            "unavailability": {"start": {"nanoseconds": now_ns}}
        }));
    }
    windows
}

/// `windows` without the machines of `hostnames`; windows left empty go.
pub fn without_machines(windows: Vec<Value>, hostnames: &[String]) -> Vec<Value> {
    windows
        .into_iter()
        .filter_map(|mut w| {
            let ids = w["machine_ids"].as_array()?.clone();
            let kept: Vec<Value> = ids
                .into_iter()
                .filter(|id| {
                    !id["hostname"]
                        .as_str()
                        .is_some_and(|h| hostnames.iter().any(|x| x == h))
                })
                .collect();
            if kept.is_empty() {
                return None;
            }
            w["machine_ids"] = Value::Array(kept);
            Some(w)
        })
        .collect()
}

/// An UPDATE_MAINTENANCE_SCHEDULE call setting `windows`.
pub fn update_schedule(windows: Vec<Value>) -> Value {
    json!({
        "type": "UPDATE_MAINTENANCE_SCHEDULE",
        "update_maintenance_schedule": {"schedule": {"windows": windows}}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_carry_their_agents_ip() {
        let agents = json!({"type": "GET_AGENTS", "get_agents": {"agents": [
            {"agent_info": {"hostname": "h1"}, "pid": "slave(1)@10.0.0.7:5051"}
        ]}});
        let machines = machines_of(&agents, &["h1".into(), "h2".into()]);
        assert_eq!(machines[0], json!({"hostname": "h1", "ip": "10.0.0.7"}));
        assert_eq!(machines[1], json!({"hostname": "h2"}));
    }

    #[test]
    fn a_down_machine_is_named_as_its_window_names_it() {
        let windows = vec![json!({"machine_ids": [{"hostname": "h1", "ip": "10.0.0.1"}]})];
        let no_agents = json!({"get_agents": {"agents": []}});
        let machines = scheduled_or_agents(&windows, &no_agents, &["h1".into(), "h2".into()]);
        assert_eq!(machines[0], json!({"hostname": "h1", "ip": "10.0.0.1"}));
        assert_eq!(machines[1], json!({"hostname": "h2"}));
    }

    #[test]
    fn a_drained_host_joins_the_schedule_once_and_leaves_it_on_completion() {
        let theirs = json!({"machine_ids": [{"hostname": "x"}],
                             "unavailability": {"start": {"nanoseconds": 5}}});
        let h1 = json!({"hostname": "h1", "ip": "10.0.0.1"});
        let windows = with_window(vec![theirs.clone()], std::slice::from_ref(&h1), 99);
        assert_eq!(windows.len(), 2);
        assert_eq!(windows[1]["unavailability"]["start"]["nanoseconds"], 99);
        // Already scheduled: no second window (Mesos refuses it).
        assert_eq!(with_window(windows.clone(), &[h1], 100).len(), 2);
        let left = without_machines(windows, &["h1".into()]);
        assert_eq!(left, vec![theirs]);
        let call = update_schedule(left);
        assert_eq!(call["type"], "UPDATE_MAINTENANCE_SCHEDULE");
        assert_eq!(
            call["update_maintenance_schedule"]["schedule"]["windows"][0]["machine_ids"][0]
                ["hostname"],
            "x"
        );
    }
}
