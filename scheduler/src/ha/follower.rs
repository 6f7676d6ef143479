//! What a replica's port answers while another replica leads, and the
//! `GET /api/v1/leader` every replica answers. Holds no state but the
//! campaign's published [`Role`].
//!
//! A follower sends every HTTP request on to the leader with 307 (reads
//! too, as Marathon's followers proxy them: a follower's store is not the
//! leader's, so it must not answer from it), keeping method and body;
//! answers gRPC calls `UNAVAILABLE` naming the leader (gRPC clients do not
//! follow redirects); and answers `/health/live` 200 and `/health/ready`
//! 503, so a load balancer sends traffic to the leader only. Without a
//! known leader (an election in progress) it answers 503 `UNAVAILABLE`.
//!
//! Its HTTP/1 answers close their connection: the follower's server stops
//! when this replica leads, and a client that kept a connection to it
//! would see its next request cut off instead of reaching the leader's
//! server on the same port.

use super::{ReplicaInfo, Role};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use tokio::sync::watch;

/// What both routers read.
#[derive(Clone)]
pub(crate) struct Election {
    roles: watch::Receiver<Role>,
    me: ReplicaInfo,
}

/// The body of `GET /api/v1/leader`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct LeaderReply {
    /// The leading replica, or null while none is known.
    leader: Option<ReplicaInfo>,
    /// This replica.
    replica: ReplicaInfo,
    /// This replica's role: `leader`, `follower`, `campaigning` or `lost`.
    #[schema(value_type = String, example = "leader")]
    role: &'static str,
}

/// `GET /api/v1/leader` alone, for the leader's API (merged outside its
/// authentication: it names replicas and their addresses, no job data).
pub fn leader_route(roles: watch::Receiver<Role>, me: ReplicaInfo) -> Router {
    Router::new()
        .route("/api/v1/leader", get(leader))
        .with_state(Election { roles, me })
}

/// Everything a follower's port answers.
pub fn follower_router(roles: watch::Receiver<Role>, me: ReplicaInfo) -> Router {
    Router::new()
        .route("/api/v1/leader", get(leader))
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/health/ready", get(not_ready))
        .fallback(elsewhere)
        .with_state(Election { roles, me })
        .layer(axum::middleware::from_fn(close_http1_connections))
}

/// `Connection: close` on HTTP/1 answers (HTTP/2 has no such header: its
/// streams end with the server's GOAWAY).
async fn close_http1_connections(request: Request, next: axum::middleware::Next) -> Response {
    let http1 = request.version() < axum::http::Version::HTTP_2;
    let mut response = next.run(request).await;
    if http1 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

fn leader_of(election: &Election) -> (Option<ReplicaInfo>, &'static str) {
    match &*election.roles.borrow() {
        Role::Leading => (Some(election.me.clone()), "leader"),
        Role::Following { leader } => (leader.clone(), "follower"),
        Role::Campaigning => (None, "campaigning"),
        Role::Lost { .. } => (None, "lost"),
    }
}

/// `GET /api/v1/leader`: who leads, as this replica knows it. Every
/// replica answers it, leader or follower, without credentials (it names
/// replicas and their API addresses, no job data); a scheduler without
/// `--zk` leads alone and says so.
#[utoipa::path(
    get,
    path = "/api/v1/leader",
    tag = "cluster",
    security(()),
    responses((status = 200, description = "The leader, this replica and its role", body = LeaderReply))
)]
pub(crate) async fn leader(State(election): State<Election>) -> Json<LeaderReply> {
    let (leader, role) = leader_of(&election);
    Json(LeaderReply {
        leader,
        replica: election.me,
        role,
    })
}

async fn not_ready(State(election): State<Election>) -> Response {
    let (leader, _) = leader_of(&election);
    let why = match leader {
        Some(leader) => format!("a follower; the leader is {} at {}", leader.id, leader.api),
        None => "a follower; no leader is elected yet".to_owned(),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(serde_json::json!({"status": "not ready", "failing": [why]})),
    )
        .into_response()
}

/// Every other request: gRPC is refused naming the leader; HTTP goes to
/// the leader with 307.
async fn elsewhere(State(election): State<Election>, request: Request) -> Response {
    let (leader, _) = leader_of(&election);
    let is_grpc = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"));
    if is_grpc {
        return grpc_unavailable(leader.as_ref());
    }
    let Some(leader) = leader else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            Json(serde_json::json!({
                "code": "UNAVAILABLE",
                "message": "this replica is a follower and no leader is elected yet; retry"
            })),
        )
            .into_response();
    };
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str());
    let location = format!("{}{path}", leader.api.trim_end_matches('/'));
    match HeaderValue::from_str(&location) {
        Ok(location) => (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, location)],
            Json(serde_json::json!({
                "code": "NOT_LEADER",
                "message": format!("this replica is a follower; the leader is {}", leader.id),
            })),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({
                "code": "UNAVAILABLE",
                "message": format!("this replica is a follower; the leader's address {:?} is not usable", leader.api),
            })),
        )
            .into_response(),
    }
}

/// A trailers-only gRPC answer: status 14 UNAVAILABLE, its message naming
/// the leader (printable ASCII, so no percent-encoding is needed).
fn grpc_unavailable(leader: Option<&ReplicaInfo>) -> Response {
    let message = match leader {
        Some(leader) => format!(
            "not the leader; the leader is {} at {}",
            leader.id, leader.api
        ),
        None => "not the leader; no leader is elected yet".to_owned(),
    };
    let printable: String = message
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '%' {
                c
            } else {
                '?'
            }
        })
        .collect();
    let message = HeaderValue::from_str(&printable)
        .unwrap_or_else(|_| HeaderValue::from_static("not the leader"));
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            ),
            (
                header::HeaderName::from_static("grpc-status"),
                HeaderValue::from_static("14"),
            ),
            (header::HeaderName::from_static("grpc-message"), message),
        ],
    )
        .into_response()
}
