//! The control plane's HTTP API as the console uses it: a small client over `reqwest`, errors
//! sorted into what the operator can act on (unreachable, token refused, role not allowed, route
//! missing), and the live event stream.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use reqwest::StatusCode;
use serde::de::DeserializeOwned;

pub mod ota;
pub mod sse;

pub use ota::Steer;
pub use protocol::api::*;
pub use protocol::idea::{IdeaDetail, IdeaPage, IdeaStep, IdeaView};
pub use protocol::ota::{
    BenchConfigStatus, BenchProgress, DeliveryState, Progress, Rollout, RolloutState, RolloutSummary,
};

/// Ideas fetched for the ideas view: the newest this many.
pub const IDEAS_PAGE: u32 = 50;

/// What a moderator does to an idea.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Moderation {
    /// Release a held idea to routing.
    Approve,
    /// Reject an idea no organisation has confirmed; needs a reason.
    Reject,
}

impl Moderation {
    /// The last segment of its route, and the verb on screen.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Reject => "reject",
        }
    }

    pub fn past(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject => "rejected",
        }
    }
}

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

    /// `GET /api/v1/ideas?limit=`: the newest ideas the token may see.
    pub async fn ideas(&self, limit: u32) -> Result<IdeaPage, ApiError> {
        self.json(self.get("/api/v1/ideas").query(&[("limit", limit)])).await
    }

    /// `GET /api/v1/moderation/queue`: held, unroutable and escalated ideas (operators).
    pub async fn moderation_queue(&self) -> Result<IdeaPage, ApiError> {
        self.json(self.get("/api/v1/moderation/queue")).await
    }

    /// `GET /api/v1/ideas/{id}`: one idea with its history.
    pub async fn idea(&self, id: &str) -> Result<IdeaDetail, ApiError> {
        self.json(self.get(&format!("/api/v1/ideas/{id}"))).await
    }

    /// `POST /api/v1/ideas/{id}/approve|reject`; the answer is the idea after the action.
    pub async fn moderate(&self, id: &str, action: Moderation, reason: Option<&str>) -> Result<IdeaDetail, ApiError> {
        let body = match reason {
            Some(r) => serde_json::json!({ "reason": r }),
            None => serde_json::json!({}),
        };
        let req = self
            .http
            .post(format!("{}/api/v1/ideas/{id}/{}", self.base, action.verb()))
            .json(&body);
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        self.json(req).await
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

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Answers one request with `response` and returns the request as text.
    async fn serve_once(response: String) -> (String, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then as many body bytes as Content-Length says.
            loop {
                let n = socket.read(&mut buf).await.unwrap();
                request.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&request).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().to_owned())
                        })
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
                assert!(n > 0, "the client closed before sending the request");
            }
            socket.write_all(response.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
            String::from_utf8_lossy(&request).to_string()
        });
        (base, server)
    }

    #[tokio::test]
    async fn a_rejection_posts_the_reason_and_a_refusal_reads_the_problem_detail() {
        let problem = r#"{"type":"about:blank","title":"Conflict","status":409,"detail":"idea is completed; reject needs an idea no organisation confirmed"}"#;
        let response = format!(
            "HTTP/1.1 409 Conflict\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{problem}",
            problem.len()
        );
        let (base, server) = serve_once(response).await;
        let client = Client::new(&base, Some("t0ken".into())).unwrap();
        let id = "5f0c6f0e-9a51-4c1e-8d3b-000000000001";
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            client.moderate(id, Moderation::Reject, Some("spam")),
        )
        .await
        .expect("an answer within 10 s");
        assert_eq!(
            result,
            Err(ApiError::Status {
                status: 409,
                detail: "idea is completed; reject needs an idea no organisation confirmed".into()
            })
        );
        let request = server.await.unwrap();
        assert!(
            request.starts_with(&format!("POST /api/v1/ideas/{id}/reject HTTP/1.1\r\n")),
            "{request}"
        );
        let lower = request.to_ascii_lowercase();
        assert!(lower.contains("authorization: bearer t0ken"), "{request}");
        assert!(lower.contains("content-type: application/json"), "{request}");
        assert!(request.ends_with(r#"{"reason":"spam"}"#), "{request}");
    }

    #[tokio::test]
    async fn an_abort_posts_the_reason_in_the_query_and_a_refusal_reads_the_problem_detail() {
        let problem = r#"{"type":"about:blank","title":"Conflict","status":409,"detail":"rollout r-7 is completed; abort needs a running or paused rollout"}"#;
        let response = format!(
            "HTTP/1.1 409 Conflict\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{problem}",
            problem.len()
        );
        let (base, server) = serve_once(response).await;
        let client = Client::new(&base, Some("t0ken".into())).unwrap();
        let result = tokio::time::timeout(
            Duration::from_secs(10),
            client.steer("r-7", Steer::Abort, Some("kiosk freezes & reboots")),
        )
        .await
        .expect("an answer within 10 s");
        assert_eq!(
            result,
            Err(ApiError::Status {
                status: 409,
                detail: "rollout r-7 is completed; abort needs a running or paused rollout".into()
            })
        );
        let request = server.await.unwrap();
        assert!(
            request.starts_with("POST /api/v1/rollouts/r-7/abort?reason=kiosk+freezes+%26+reboots HTTP/1.1\r\n"),
            "{request}"
        );
        assert!(
            request.to_ascii_lowercase().contains("authorization: bearer t0ken"),
            "{request}"
        );
    }

    #[tokio::test]
    async fn a_rollback_answers_the_rollout_after_it() {
        let body = r#"{"id":"r-3","created_at":"2026-11-26T08:00:00Z","created_by":"ana","target":"fleet","change":{},"strategy":{},"before":[],"after":[],"state":"rolled_back","reason":"brownouts","step":2,"steps":2,"updated_at":"2026-11-26T10:00:00Z","benches":[],"new_field":1}"#;
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let (base, server) = serve_once(response).await;
        let client = Client::new(&base, None).unwrap();
        let rollout = tokio::time::timeout(
            Duration::from_secs(10),
            client.steer("r-3", Steer::Rollback, Some("brownouts")),
        )
        .await
        .expect("an answer within 10 s")
        .unwrap();
        assert_eq!(rollout.state, RolloutState::RolledBack);
        assert_eq!(rollout.reason.as_deref(), Some("brownouts"));
        let request = server.await.unwrap();
        assert!(
            request.starts_with("POST /api/v1/rollouts/r-3/rollback?reason=brownouts HTTP/1.1\r\n"),
            "{request}"
        );
    }
}
