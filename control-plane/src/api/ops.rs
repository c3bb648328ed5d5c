//! Operational routes, unauthenticated: liveness, readiness and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;

/// The process is up.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process is up", body = serde_json::Value,
               example = json!({"status": "ok"})))
)]
pub(super) async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The store answers and the broker listens; also reports the ingest buffer.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready: the store answers and the MQTT broker listens", body = serde_json::Value),
        (status = 503, description = "Not ready; the body says which part is missing", body = serde_json::Value),
    )
)]
pub(super) async fn readyz(State(s): State<AppState>) -> Response {
    let store = s.store.ping().await;
    let listening = s.broker.is_listening();
    let ready = store.is_ok() && listening;
    if let Err(e) = &store {
        tracing::warn!(error = %e, "readiness: store unreachable");
    }
    let body = json!({
        "status": if ready { "ready" } else { "not_ready" },
        "store": { "reachable": store.is_ok(), "mode": s.store.mode() },
        "broker": { "listening": listening, "connections": s.broker.connections() },
        "ingest": {
            "buffered_rows": s.ingest.buffered(),
            "dropped_rows": s.metrics.ingest_rows_dropped.get(),
            "unwritten_status_events": s.presence.unwritten(),
        },
    });
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4",
               content_type = "text/plain; version=0.0.4; charset=utf-8", body = String))
)]
pub(super) async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.encode(),
    )
        .into_response()
}
