//! The HTTP API: axum routes on one listener.
//!
//! So far the unauthenticated operational routes: `/healthz`, `/readyz` and `/metrics`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::broker::BrokerHandle;
use crate::health::PresenceTracker;
use crate::ingest::Ingest;
use crate::metrics::Metrics;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub presence: PresenceTracker,
    pub ingest: Ingest,
    pub broker: BrokerHandle,
}

/// The whole router.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The process is up.
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// The store answers and the broker listens; also reports the ingest buffer.
async fn readyz(State(s): State<AppState>) -> Response {
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
async fn metrics(State(s): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.encode(),
    )
        .into_response()
}
