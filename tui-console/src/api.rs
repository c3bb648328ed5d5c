//! The control plane's HTTP API as the console uses it: a small client over `reqwest`, errors
//! sorted into what the operator can act on (unreachable, token refused, role not allowed, route
//! missing), and the live event stream.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

pub mod sse;

pub use protocol::api::*;

/// How long an ordinary request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request failed, worded for the person at the console.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// No answer: connection refused, DNS, timeout.
    #[error("cannot reach the control plane at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// 401: missing, malformed, expired or wrongly signed token.
    #[error("the control plane refused the token (401): {detail}")]
    Unauthorized { detail: String },
    /// 403: the token is valid but its role may not do this.
    #[error("this token's role may not do that (403): {detail}")]
    Forbidden { detail: String },
    /// 404: the route (or bench) does not exist on this control plane.
    #[error("not found (404): {detail}")]
    NotFound { detail: String },
    /// Any other non-success status.
    #[error("the control plane answered {status}: {detail}")]
    Status { status: u16, detail: String },
    /// A success status with a body this console cannot read.
    #[error("unexpected answer from the control plane: {0}")]
    Decode(String),
}

impl ApiError {
    /// True for errors that retrying with the same token cannot fix without a change elsewhere.
    pub fn is_auth(&self) -> bool {
        matches!(self, Self::Unauthorized { .. } | Self::Forbidden { .. })
    }
}

/// `/readyz`: the control plane's own health.
#[derive(Debug, Clone, PartialEq)]
pub struct Readiness {
    pub ready: bool,
    /// The parts that are not ready, e.g. `store unreachable`.
    pub problems: Vec<String>,
    /// Authenticated MQTT connections, when reported.
    pub mqtt_connections: Option<u64>,
    /// Telemetry rows waiting for the store, when reported.
    pub buffered_rows: Option<u64>,
}

impl Readiness {
    fn from_json(ready: bool, v: &serde_json::Value) -> Self {
        let mut problems = Vec::new();
        if v.pointer("/store/reachable").and_then(serde_json::Value::as_bool) == Some(false) {
            problems.push("store unreachable".to_owned());
        }
        if v.pointer("/broker/listening").and_then(serde_json::Value::as_bool) == Some(false) {
            problems.push("MQTT broker not listening".to_owned());
        }
        if !ready && problems.is_empty() {
            problems.push("not ready".to_owned());
        }
        Self {
            ready,
            problems,
            mqtt_connections: v.pointer("/broker/connections").and_then(serde_json::Value::as_u64),
            buffered_rows: v.pointer("/ingest/buffered_rows").and_then(serde_json::Value::as_u64),
        }
    }
}

/// A client for one control plane with one token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl Client {
    /// `base` is the API origin, e.g. `http://127.0.0.1:8080` (a trailing `/` is ignored).
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ApiError> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("benchfleet-tui-console/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Decode(format!("HTTP client: {e}")))?;
        Ok(Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        let req = self.http.get(format!("{}{path}", self.base));
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn json<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ApiError> {
        let resp = req
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let resp = check(resp).await?;
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| ApiError::Decode(e.to_string()))
    }

    fn unreachable(&self, e: &reqwest::Error) -> ApiError {
        ApiError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(e),
        }
    }

    /// `GET /api/v1/benches`.
    pub async fn benches(&self) -> Result<Vec<Bench>, ApiError> {
        self.json(self.get("/api/v1/benches")).await
    }

    /// `GET /api/v1/benches/{id}`.
    pub async fn bench(&self, id: &str) -> Result<BenchDetail, ApiError> {
        self.json(self.get(&format!("/api/v1/benches/{id}"))).await
    }

    /// `GET /api/v1/benches/{id}/telemetry`.
    pub async fn telemetry(
        &self,
        id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: Bucket,
    ) -> Result<TelemetrySeries, ApiError> {
        let time = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let req = self.get(&format!("/api/v1/benches/{id}/telemetry")).query(&[
            ("from", time(from)),
            ("to", time(to)),
            ("bucket", bucket.to_string()),
        ]);
        self.json(req).await
    }

    /// `GET /api/v1/fleet/summary`.
    pub async fn summary(&self) -> Result<FleetSummary, ApiError> {
        self.json(self.get("/api/v1/fleet/summary")).await
    }

    /// `GET /readyz` (unauthenticated). A 503 is an answer, not an error.
    pub async fn readiness(&self) -> Result<Readiness, ApiError> {
        let resp = self
            .http
            .get(format!("{}/readyz", self.base))
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let status = resp.status();
        if status != StatusCode::OK && status != StatusCode::SERVICE_UNAVAILABLE {
            return Err(check(resp).await.err().unwrap_or(ApiError::Status {
                status: status.as_u16(),
                detail: "unexpected status".into(),
            }));
        }
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        Ok(Readiness::from_json(status == StatusCode::OK, &body))
    }

    /// Whether a feature's list route exists: `Ok(true)` when it answers, `Ok(false)` on 404.
    pub async fn probe(&self, path: &str) -> Result<bool, ApiError> {
        let resp = self
            .get(path)
            .timeout(REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        match check(resp).await {
            Ok(_) => Ok(true),
            Err(ApiError::NotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Opens `GET /api/v1/events` and returns the raw byte stream once the server said 200.
    pub async fn events(
        &self,
    ) -> Result<impl futures::Stream<Item = Result<bytes::Bytes, ApiError>> + use<>, ApiError> {
        let resp = self
            .get("/api/v1/events")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|e| self.unreachable(&e))?;
        let resp = check(resp).await?;
        let base = self.base.clone();
        Ok(resp.bytes_stream().map(move |r| {
            r.map_err(|e| ApiError::Unreachable {
                url: base.clone(),
                reason: root_cause(&e),
            })
        }))
    }
}

/// Passes success through; turns anything else into an [`ApiError`], reading problem details.
async fn check(resp: reqwest::Response) -> Result<reqwest::Response, ApiError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.bytes().await.unwrap_or_default();
    let detail = match serde_json::from_slice::<Problem>(&body) {
        Ok(p) if !p.detail.is_empty() => p.detail,
        Ok(p) => p.title,
        Err(_) => {
            let text = String::from_utf8_lossy(&body);
            let text = text.trim();
            if text.is_empty() {
                status.canonical_reason().unwrap_or("no detail").to_owned()
            } else {
                text.chars().take(200).collect()
            }
        }
    };
    Err(match status {
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized { detail },
        StatusCode::FORBIDDEN => ApiError::Forbidden { detail },
        StatusCode::NOT_FOUND => ApiError::NotFound { detail },
        s => ApiError::Status {
            status: s.as_u16(),
            detail,
        },
    })
}

/// The innermost cause of a transport error (`Connection refused (os error 111)`), which says
/// more to an operator than reqwest's outer "error sending request".
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else {
        cause.to_string()
    }
}
