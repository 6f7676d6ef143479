//! `/metrics` (Prometheus text) and `/health`.

use super::AppState;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use std::sync::atomic::Ordering;

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

/// Liveness, and whether the scheduler is subscribed.
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let subscribed = state.metrics.subscription_state.load(Ordering::Relaxed)
        == crate::metrics::SubscriptionGauge::Subscribed as u64;
    Json(serde_json::json!({"status": "ok", "subscribed": subscribed}))
}
