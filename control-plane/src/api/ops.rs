//! Operational routes, unauthenticated: liveness, readiness and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::api::Problem;
use serde_json::json;

use super::AppState;
use super::problem::ApiError;

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
    description = "Prometheus text format. Open unless the server is configured with a scrape \
                   token, which then must be sent as `Authorization: Bearer <token>`.",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4",
         content_type = "text/plain; version=0.0.4; charset=utf-8", body = String),
        (status = 401, description = "A scrape token is configured and was not sent",
         content_type = "application/problem+json", body = Problem),
    )
)]
pub(super) async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &s.config.metrics_token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        if !sent.is_some_and(|t| constant_time_eq(t.as_bytes(), expected.as_bytes())) {
            return ApiError::unauthorized("/metrics needs the configured scrape token", None).into_response();
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.encode(),
    )
        .into_response()
}

/// Compares without returning early, so response times do not reveal how much of a guess matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}
