//! Hosts and their maintenance (Peloton `HostService` as JSON):
//! `GET /api/v1/hosts` (every host Drover knows, with its state; `?state=`
//! filters), `POST /api/v1/hosts/drain` and `POST /api/v1/hosts/complete`
//! (`{"hostnames": [...]}`). Decode, ask the engine, encode: the rules are
//! [`crate::engine`]'s (`maintenance`), the states [`crate::model::host`]'s.

use super::authn::Caller;
use super::body::read_json;
use super::error::{ApiError, Code};
use super::jobs::ask;
use super::AppState;
use crate::engine::{ApiRequest, HostInfo, Reply};
use crate::model::host::HostState;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// One host as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct HostView {
    /// The hostname.
    pub hostname: String,
    /// Its agent, once known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<String>,
    /// `HOST_STATE_UP`, `_DRAINING`, `_DRAINED` or `_DOWN`.
    pub state: String,
    /// Where it is going: DOWN while in maintenance, else UP (Peloton's
    /// `goal_state`).
    pub goal_state: String,
    /// Who asked for its maintenance: `operator` or `inverse_offer`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maintenance_cause: Option<String>,
    /// When its drain started (ms since the epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draining_since_ms: Option<i64>,
}

impl HostView {
    /// The view of `host`.
    pub fn of(host: &HostInfo) -> HostView {
        let goal = match &host.maintenance {
            Some(m) if m.cause == crate::model::host::DrainCause::Operator => HostState::Down,
            Some(_) => HostState::Drained,
            None => HostState::Up,
        };
        HostView {
            hostname: host.hostname.clone(),
            agent_id: host.agent_id.as_ref().map(|a| a.as_str().to_owned()),
            state: host.state.peloton_name().to_owned(),
            goal_state: goal.peloton_name().to_owned(),
            maintenance_cause: host.maintenance.as_ref().map(|m| m.cause.as_str().into()),
            draining_since_ms: host.maintenance.as_ref().map(|m| m.since),
        }
    }
}

/// The answer of [`list`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HostsReply {
    /// The hosts, by hostname.
    pub hosts: Vec<HostView>,
}

/// `?state=DRAINING,DOWN`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct HostsQuery {
    /// Host states to list (Peloton names or short forms), comma separated;
    /// none: every host.
    pub state: Option<String>,
}

/// The hosts in `states` (none: all), from the published hosts. While the
/// scheduler is still loading its store, waits for it up to
/// [`super::LOAD_WAIT`], then UNAVAILABLE: before the load the published
/// hosts are empty, and an empty list would say no host is draining.
pub async fn query(state: &AppState, states: &[HostState]) -> Result<Vec<HostView>, ApiError> {
    if !state.board.wait_ready(super::LOAD_WAIT).await {
        return Err(ApiError::starting());
    }
    Ok(state
        .board
        .hosts()
        .iter()
        .filter(|h| states.is_empty() || states.contains(&h.state))
        .map(HostView::of)
        .collect())
}

/// The states a `state` filter names; INVALID_ARGUMENT naming the bad one.
pub fn parse_states(text: Option<&str>) -> Result<Vec<HostState>, ApiError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            HostState::from_name(s)
                .ok_or_else(|| ApiError::invalid("state", format!("{s:?} is not a host state")))
        })
        .collect()
}

#[utoipa::path(
    get,
    path = "/api/v1/hosts",
    tag = "cluster",
    params(HostsQuery),
    responses((status = 200, description = "OK", body = HostsReply))
)]
/// `GET /api/v1/hosts`.
pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<HostsQuery>,
) -> Result<Json<HostsReply>, ApiError> {
    let states = parse_states(q.state.as_deref())?;
    Ok(Json(HostsReply {
        hosts: query(&state, &states).await?,
    }))
}

/// A drain or completion.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceRequest {
    /// The hosts.
    pub hostnames: Vec<String>,
    /// Drain only: how long a batch run is left to finish before it is
    /// moved (default 0: as the budget allows).
    #[serde(default)]
    pub batch_grace_seconds: u64,
}

/// The hosts a request left, as `{"hosts": [{"hostname", "state"}]}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MaintenanceReply {
    /// The hosts named, as the request left them.
    pub hosts: Vec<HostStateView>,
}

/// A host's name and state.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HostStateView {
    /// The hostname.
    pub hostname: String,
    /// Its state.
    pub state: String,
}

/// Asks the engine for `request`; the hosts it left.
pub async fn ask_hosts(
    state: &AppState,
    caller: &Caller,
    request: ApiRequest,
) -> Result<Vec<(String, HostState)>, ApiError> {
    match ask(state, caller, request).await? {
        Reply::Hosts(hosts) => Ok(hosts),
        _ => Err(ApiError {
            code: Code::Internal,
            message: "the engine answered a host request with no hosts".into(),
        }),
    }
}

fn reply(hosts: Vec<(String, HostState)>) -> Json<MaintenanceReply> {
    Json(MaintenanceReply {
        hosts: hosts
            .into_iter()
            .map(|(hostname, s)| HostStateView {
                hostname,
                state: s.peloton_name().to_owned(),
            })
            .collect(),
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/hosts/drain",
    tag = "cluster",
    request_body = MaintenanceRequest,
    responses((status = 200, description = "OK", body = MaintenanceReply))
)]
/// `POST /api/v1/hosts/drain`: StartMaintenance.
pub async fn drain(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<MaintenanceReply>, ApiError> {
    let request: MaintenanceRequest = read_json(body, state.config.max_body_bytes, false).await?;
    let hosts = ask_hosts(
        &state,
        &caller,
        ApiRequest::StartMaintenance {
            hostnames: request.hostnames,
            batch_grace: Duration::from_secs(request.batch_grace_seconds),
        },
    )
    .await?;
    Ok(reply(hosts))
}

#[utoipa::path(
    post,
    path = "/api/v1/hosts/complete",
    tag = "cluster",
    request_body = MaintenanceRequest,
    responses((status = 200, description = "OK", body = MaintenanceReply))
)]
/// `POST /api/v1/hosts/complete`: CompleteMaintenance.
pub async fn complete(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Result<Json<MaintenanceReply>, ApiError> {
    let request: MaintenanceRequest = read_json(body, state.config.max_body_bytes, false).await?;
    let hosts = ask_hosts(
        &state,
        &caller,
        ApiRequest::CompleteMaintenance {
            hostnames: request.hostnames,
        },
    )
    .await?;
    Ok(reply(hosts))
}
