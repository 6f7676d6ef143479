//! `/metrics` (Prometheus text), and health: `/health/live` (the process
//! answers), `/health/ready` (it can do its work: 503 naming every
//! condition that fails) and `/health` (both, always 200, for people and
//! older probes).
//!
//! Shedding makes the scheduler not ready but leaves it live: it is
//! working, and restarting it would only lose its queue; a load balancer
//! should send writes elsewhere (or nowhere) for a while.

use super::shed::{self, Shedding};
use super::AppState;
use crate::metrics::SubscriptionGauge;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

#[utoipa::path(
    get,
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text exposition", body = String, content_type = "text/plain"))
)]
/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, crate::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// A condition that keeps the scheduler from doing its work, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failing {
    /// What is checked: `store_loaded`, `subscribed`, `store_writable`,
    /// `shedding`.
    pub condition: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

/// What readiness looks at, as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Whether the engine has loaded the store.
    pub store_loaded: bool,
    /// The subscription to the master.
    pub subscription: SubscriptionGauge,
    /// The error of the last store write, if it failed.
    pub store_failing: Option<String>,
    /// Writes refused lately for a full queue, and the queue.
    pub shedding: Shedding,
}

impl Readiness {
    /// Every condition that fails; ready when none does.
    pub fn failing(&self) -> Vec<Failing> {
        let mut failing = Vec::new();
        if !self.store_loaded {
            failing.push(Failing {
                condition: "store_loaded",
                message: "the store is still loading".into(),
            });
        }
        if self.subscription != SubscriptionGauge::Subscribed {
            failing.push(Failing {
                condition: "subscribed",
                message: format!(
                    "not subscribed to the master ({}): no offers, no launches, no updates",
                    match self.subscription {
                        SubscriptionGauge::Subscribing => "waiting for SUBSCRIBED",
                        SubscriptionGauge::Connecting => "connecting",
                        _ => "disconnected",
                    }
                ),
            });
        }
        if let Some(error) = &self.store_failing {
            failing.push(Failing {
                condition: "store_writable",
                message: format!("the last store write failed: {error}"),
            });
        }
        if self.shedding.is_shedding() {
            failing.push(Failing {
                condition: "shedding",
                message: self.shedding.message(),
            });
        }
        failing
    }
}

fn readiness(state: &AppState) -> Readiness {
    Readiness {
        store_loaded: state.board.is_ready(),
        subscription: state.metrics.subscription(),
        store_failing: state.metrics.store_failing(),
        shedding: shed::shedding(state),
    }
}

fn conditions(failing: &[Failing]) -> Vec<FailingView> {
    failing
        .iter()
        .map(|f| FailingView {
            condition: f.condition,
            message: f.message.clone(),
        })
        .collect()
}

#[utoipa::path(
    get,
    path = "/health/live",
    tag = "health",
    responses((status = 200, description = "The process answers", body = HealthStatus))
)]
/// Liveness: the process answers.
pub async fn live() -> impl IntoResponse {
    Json(json!(HealthStatus { status: "ok" }))
}

/// Readiness: 200 when every condition holds, else 503 naming each that
/// fails.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "health",
    responses((status = 200, description = "Ready", body = ReadinessReply), (status = 503, description = "Not ready: every failing condition", body = ReadinessReply))
)]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let failing = readiness(&state).failing();
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!(ReadinessReply {
                status: "ready",
                failing: None
            })),
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!(ReadinessReply {
                status: "not ready",
                failing: Some(conditions(&failing)),
            })),
        )
    }
}

/// Both, always 200: whether the scheduler is subscribed and ready, and
/// what fails.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "Liveness and readiness", body = HealthReply))
)]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let now = readiness(&state);
    let failing = now.failing();
    Json(json!(HealthReply {
        status: "ok",
        subscribed: now.subscription == SubscriptionGauge::Subscribed,
        ready: failing.is_empty(),
        failing: conditions(&failing),
    }))
}

// The answers' types: the handlers above fill them, and the OpenAPI
// document (`super::openapi`) takes their schemas from them. Serialized
// through a JSON map, whose keys are sorted, as the answers always were.

/// `{"status": "ok"}`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct HealthStatus {
    /// `ok`.
    pub status: &'static str,
}

/// A failing condition ([`conditions`]).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct FailingView {
    /// `store_loaded`, `subscribed`, `store_writable` or `shedding`.
    pub condition: &'static str,
    /// What is wrong.
    pub message: String,
}

/// The answer of `/health/ready`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ReadinessReply {
    /// `ready` or `not ready`.
    pub status: &'static str,
    /// What fails (when not ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<Vec<FailingView>>,
}

/// The answer of `/health`.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct HealthReply {
    /// `ok`.
    pub status: &'static str,
    /// Whether the scheduler is subscribed to the master.
    pub subscribed: bool,
    /// Whether it is ready.
    pub ready: bool,
    /// What fails.
    pub failing: Vec<FailingView>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm() -> Shedding {
        Shedding {
            refused: 0,
            backlog: 3,
            limit: 256,
        }
    }

    fn names(r: &Readiness) -> Vec<&'static str> {
        r.failing().iter().map(|f| f.condition).collect()
    }

    #[test]
    fn ready_only_when_loaded_subscribed_and_writing() {
        let ready = Readiness {
            store_loaded: true,
            subscription: SubscriptionGauge::Subscribed,
            store_failing: None,
            shedding: calm(),
        };
        assert!(names(&ready).is_empty());
        let all_wrong = Readiness {
            store_loaded: false,
            subscription: SubscriptionGauge::Connecting,
            store_failing: Some("disk I/O error".into()),
            shedding: Shedding {
                refused: 37,
                ..calm()
            },
        };
        assert_eq!(
            names(&all_wrong),
            ["store_loaded", "subscribed", "store_writable", "shedding"]
        );
        let failing = all_wrong.failing();
        assert!(failing[1].message.contains("connecting"));
        assert!(failing[2].message.contains("disk I/O error"));
        assert!(failing[3].message.contains("37 requests refused"));
    }
}
