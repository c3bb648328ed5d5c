//! The HTTP API: axum routes on one listener.
//!
//! - `/healthz`, `/readyz`, `/metrics`, `/docs` and `/api/v1/openapi.json`: unauthenticated.
//! - Everything else lives under `/api/v1` and needs a bearer token ([`auth`]).
//!
//! Routes and the OpenAPI document are built together from one handler list ([`routes`]), so
//! they cannot disagree. Errors are RFC 9457 problem details ([`problem`]). Every request gets
//! an `x-request-id` (kept if the client sent one), carried by its log lines and its problems,
//! a time limit, a body size limit, and an observation in
//! `benchfleet_http_request_duration_seconds{route,status}`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, MatchedPath, Request, State};
use axum::http::HeaderName;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use protocol::Fleet;
use protocol::token::Secret;
use tokio_util::sync::CancellationToken;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::broker::BrokerHandle;
use crate::ingest::Ingest;
use crate::metrics::{HttpLabel, Metrics};
use crate::presence::PresenceTracker;
use crate::store::Store;

pub mod auth;
mod benches;
mod events;
mod fleet;
mod ideas;
pub mod openapi;
mod ops;
mod organisations;
mod ota;
pub mod problem;
mod reports;
mod rules;
mod telemetry;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;

use problem::ApiError;

/// The header carrying the request id.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// What the API needs to know about the MQTT broker.
pub trait BrokerStatus: Send + Sync + 'static {
    /// Whether the listener accepts connections.
    fn is_listening(&self) -> bool;
    /// Authenticated connections now.
    fn connections(&self) -> usize;
}

impl BrokerStatus for BrokerHandle {
    fn is_listening(&self) -> bool {
        BrokerHandle::is_listening(self)
    }

    fn connections(&self) -> usize {
        BrokerHandle::connections(self)
    }
}

/// Address and limits of the HTTP API: the `[api]` settings.
#[derive(Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Address of the HTTP API.
    pub listen: std::net::SocketAddr,
    /// Largest request body accepted, bytes.
    pub body_limit_bytes: usize,
    /// Longest a request may take until its response head, seconds; longer is a 503 problem.
    /// Streams (`/api/v1/events`) are not cut: only their start counts.
    #[serde(rename = "request_timeout_s", with = "crate::seconds")]
    #[schemars(with = "u64")]
    pub request_timeout: Duration,
    /// Comment lines on idle event streams, so proxies keep them open (not configurable).
    #[serde(skip)]
    pub events_keep_alive: Duration,
    /// When set, `/metrics` needs `Authorization: Bearer <this>` (a static scrape token for
    /// Prometheus, not a JWT); otherwise it is open like `/healthz`. Prefer the environment
    /// (`BENCHFLEET_METRICS_TOKEN`) to keeping it in the file.
    #[schemars(example = &"a-long-random-string")]
    pub metrics_token: Option<String>,
    /// Reverse proxies in front of the API (e.g. the TLS terminator). For requests from these
    /// addresses the client is the last address in `X-Forwarded-For` (`ideas::ClientAddr`);
    /// otherwise every client behind the proxy would share one rate limit on the public routes
    /// (applications, idea status).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8080)),
            body_limit_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            events_keep_alive: Duration::from_secs(15),
            metrics_token: None,
            trusted_proxies: Vec::new(),
        }
    }
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("listen", &self.listen)
            .field("body_limit_bytes", &self.body_limit_bytes)
            .field("request_timeout", &self.request_timeout)
            .field("events_keep_alive", &self.events_keep_alive)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "[redacted]"))
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub metrics: Arc<Metrics>,
    pub presence: PresenceTracker,
    pub ingest: Ingest,
    pub broker: Arc<dyn BrokerStatus>,
    /// The bench registry.
    pub fleet: Arc<Fleet>,
    /// Verifies bearer tokens.
    pub secret: Secret,
    pub config: ApiConfig,
    /// Ends long-lived responses (event streams) so graceful shutdown can finish.
    pub shutdown: CancellationToken,
    /// OTA configuration: layers, bench configuration states, rollouts, audit log.
    pub ota: crate::ota::Ota,
    /// Idea routing: organisations, rules, ideas.
    pub routing: crate::routing::Routing,
}

impl FromRef<AppState> for Secret {
    fn from_ref(state: &AppState) -> Self {
        state.secret.clone()
    }
}

/// Every documented route with its handler, and the OpenAPI document describing them.
pub fn routes() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(benches::list))
        .routes(routes!(benches::detail))
        .routes(routes!(benches::status_events))
        .routes(routes!(benches::token))
        .routes(routes!(telemetry::series))
        .routes(routes!(fleet::summary))
        .routes(routes!(reports::uptime))
        .routes(routes!(events::stream))
        .routes(routes!(ota::layers, ota::set_layer))
        .routes(routes!(ota::benches))
        .routes(routes!(ota::bench))
        .routes(routes!(ota::rollouts, ota::create_rollout))
        .routes(routes!(ota::rollout))
        .routes(routes!(ota::pause))
        .routes(routes!(ota::resume))
        .routes(routes!(ota::abort))
        .routes(routes!(ota::rollback))
        .routes(routes!(ota::audit))
        .routes(routes!(organisations::apply))
        .routes(routes!(organisations::list))
        .routes(routes!(organisations::detail))
        .routes(routes!(organisations::approve))
        .routes(routes!(organisations::reject))
        .routes(routes!(organisations::suspend))
        .routes(routes!(organisations::reactivate))
        .routes(routes!(organisations::token))
        .routes(routes!(organisations::audit))
        .routes(routes!(rules::get, rules::put))
        .routes(routes!(rules::versions))
        .routes(routes!(rules::test))
        .routes(routes!(ideas::list))
        .routes(routes!(ideas::detail))
        .routes(routes!(ideas::confirm))
        .routes(routes!(ideas::decline))
        .routes(routes!(ideas::progress))
        .routes(routes!(ideas::complete))
        .routes(routes!(ideas::approve))
        .routes(routes!(ideas::reject))
        .routes(routes!(ideas::assign))
        .routes(routes!(ideas::queue))
        .routes(routes!(ideas::report))
        .routes(routes!(ideas::public))
        .split_for_parts()
}

/// The whole router: documented routes, the OpenAPI document and its UI, and the middleware.
pub fn app(state: AppState) -> Router {
    let (router, spec) = routes();
    let spec = openapi::finish(spec);
    let docs = utoipa_swagger_ui::SwaggerUi::new("/docs").url(openapi::SPEC_PATH, spec);
    let request_id = HeaderName::from_static(REQUEST_ID_HEADER);
    router
        .merge(docs)
        .fallback(|| async { ApiError::not_found("no such route; the API is described at /api/v1/openapi.json") })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        // Layers run outside-in from the last one added.
        .layer(middleware::from_fn_with_state(state.clone(), limit_time))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// The span of one request: method, route template, request id; the caller once known.
fn request_span(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http",
        http.method = %req.method(),
        http.route = route,
        request.id = id,
        user.sub = tracing::field::Empty,
        user.role = tracing::field::Empty,
    )
}

/// Times the request into the duration histogram (route template, never the raw path), and makes
/// the request id available to problem details.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let id = req
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let started = Instant::now();
    let response = problem::REQUEST_ID.scope(id, next.run(req)).await;
    state
        .metrics
        .http_request_duration_seconds
        .get_or_create(&HttpLabel {
            route,
            status: response.status().as_u16(),
        })
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Abandons a request that takes longer than the configured limit.
async fn limit_time(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout.seconds = state.config.request_timeout.as_secs_f64(),
                "request timed out"
            );
            ApiError::timeout().into_response()
        }
    }
}
