//! Router-wide tests: the role matrix over every documented route, the OpenAPI document against
//! the router, and the middleware (request ids, problems for unknown routes, time limits,
//! body limits, the request-duration histogram, the `/metrics` exposition).

use std::collections::BTreeSet;
use std::time::Duration;

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Request, StatusCode, header};
use axum::routing::post;
use protocol::Role;
use protocol::api::{PROBLEM_CONTENT_TYPE, Problem};
use serde::Deserialize;
use tower::ServiceExt;

use super::testing::{Harness, on_both_backends, request_with, secret, token};
use super::{ApiConfig, openapi};

/// Who may call what. Every operation of the OpenAPI document must be listed here, so a new
/// route cannot ship without a decision (and a check) of who may use it.
const READERS: &[Role] = &[Role::Admin, Role::Operator, Role::Viewer];

/// `(method, path template, query for a valid call, roles; None = unauthenticated route)`.
const MATRIX: &[(&str, &str, &str, Option<&[Role]>)] = &[
    ("GET", "/healthz", "", None),
    ("GET", "/readyz", "", None),
    ("GET", "/metrics", "", None),
    ("GET", "/api/v1/benches", "?state=online", Some(READERS)),
    ("GET", "/api/v1/benches/{id}", "", Some(READERS)),
    ("GET", "/api/v1/benches/{id}/status-events", "?limit=5", Some(READERS)),
    (
        "GET",
        "/api/v1/benches/{id}/telemetry",
        "?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z&bucket=1h",
        Some(READERS),
    ),
    ("GET", "/api/v1/fleet/summary", "", Some(READERS)),
    (
        "GET",
        "/api/v1/reports/uptime",
        "?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z",
        Some(READERS),
    ),
    ("GET", "/api/v1/events", "", Some(READERS)),
    ("GET", "/api/v1/ota/layers", "", Some(READERS)),
    ("GET", "/api/v1/ota/benches", "", Some(READERS)),
    ("GET", "/api/v1/ota/benches/{id}", "", Some(READERS)),
    ("GET", "/api/v1/rollouts", "", Some(READERS)),
    ("GET", "/api/v1/ota/audit", "?limit=5", Some(&[Role::Admin])),
    ("GET", "/api/v1/organisations", "?state=active", Some(NETWORK)),
    ("GET", "/api/v1/routing/rules", "", Some(READERS)),
    ("GET", "/api/v1/routing/rules/versions", "?limit=5", Some(READERS)),
    ("GET", "/api/v1/routing/audit", "?limit=5", Some(&[Role::Admin])),
    ("GET", "/api/v1/ideas", "?state=offered,confirmed", Some(NETWORK)),
    ("GET", "/api/v1/moderation/queue", "", Some(CHANGERS)),
    (
        "GET",
        "/api/v1/reports/ideas",
        "?from=2026-11-01T00:00:00Z&to=2026-11-02T00:00:00Z",
        Some(READERS),
    ),
];

/// Staff and member organisations.
const NETWORK: &[Role] = &[Role::Admin, Role::Operator, Role::Viewer, Role::Cso];

/// Unauthenticated routes other than operations: every caller, with or without a token, gets
/// the same answer. `(method, path template, JSON body, status)`.
const PUBLIC: &[(&str, &str, &str, StatusCode)] = &[
    (
        "POST",
        "/api/v1/organisations/applications",
        r#"{"name":"Udruženje Matrica","municipalities":["Mostar"],"contact_email":"info@matrica.ba"}"#,
        StatusCode::CREATED,
    ),
    ("GET", "/api/v1/public/ideas/{tracking_code}", "", StatusCode::NOT_FOUND),
];

/// Who may change configuration and steer rollouts.
const CHANGERS: &[Role] = &[Role::Admin, Role::Operator];

/// Routes that need a method other than GET, a body, or answer an allowed caller with something
/// else than 200 (`{id}` is `mostar-01`, which is no rollout: 404 shows the permission passed).
/// `(method, path template, query, JSON body, roles, status for an allowed caller)`.
type Action = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static [Role],
    StatusCode,
);

const ACTIONS: &[Action] = &[
    (
        "POST",
        "/api/v1/benches/{id}/token",
        "",
        "",
        &[Role::Admin],
        StatusCode::OK,
    ),
    (
        "PUT",
        "/api/v1/ota/layers",
        "",
        r#"{"layer":{"scope":"fleet"},"content":{"wifi":{"ssid":"Matrix"}},"dry_run":true}"#,
        CHANGERS,
        StatusCode::OK,
    ),
    (
        "POST",
        "/api/v1/rollouts",
        "?dry_run=true",
        r#"{"target":"fleet","change":{"wifi":{"ssid":"Matrix"}}}"#,
        CHANGERS,
        StatusCode::OK,
    ),
    ("GET", "/api/v1/rollouts/{id}", "", "", READERS, StatusCode::NOT_FOUND),
    (
        "POST",
        "/api/v1/rollouts/{id}/pause",
        "",
        "",
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/rollouts/{id}/resume",
        "",
        "",
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/rollouts/{id}/abort",
        "?reason=test",
        "",
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/rollouts/{id}/rollback",
        "",
        "",
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "GET",
        "/api/v1/organisations/{id}",
        "",
        "",
        NETWORK,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/organisations/{id}/approve",
        "?note=ok",
        "",
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/organisations/{id}/reject",
        "",
        "",
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/organisations/{id}/suspend",
        "",
        "",
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/organisations/{id}/reactivate",
        "",
        "",
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/organisations/{id}/token",
        "",
        r#"{"subject":"member"}"#,
        &[Role::Admin],
        StatusCode::NOT_FOUND,
    ),
    (
        "PUT",
        "/api/v1/routing/rules",
        "",
        r#"{"rules":[],"max_attempts":2}"#,
        CHANGERS,
        StatusCode::OK,
    ),
    (
        "POST",
        "/api/v1/routing/rules/test",
        "",
        r#"{"idea":{"bench_id":"mostar-01","municipality":"Mostar","category":"youth","lang":"bs","text":"x"}}"#,
        CHANGERS,
        StatusCode::OK,
    ),
    ("GET", "/api/v1/ideas/{id}", "", "", NETWORK, StatusCode::NOT_FOUND),
    (
        "POST",
        "/api/v1/ideas/{id}/confirm",
        "",
        "",
        &[Role::Cso],
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/ideas/{id}/decline",
        "",
        r#"{"reason":"not ours"}"#,
        &[Role::Cso],
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/ideas/{id}/progress",
        "",
        "",
        &[Role::Cso],
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/ideas/{id}/complete",
        "",
        "",
        &[Role::Cso],
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/ideas/{id}/approve",
        "",
        "",
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/ideas/{id}/reject",
        "",
        r#"{"reason":"spam"}"#,
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
    (
        "POST",
        "/api/v1/ideas/{id}/assign",
        "",
        r#"{"org":"lda-mostar"}"#,
        CHANGERS,
        StatusCode::NOT_FOUND,
    ),
];

/// A request with a bearer token of `role` and, unless empty, a JSON body.
fn action(method: &str, uri: &str, body: &str, role: Option<Role>) -> Request<Body> {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(role) = role {
        req = req.header(header::AUTHORIZATION, format!("Bearer {}", token(role)));
    }
    if body.is_empty() {
        req.body(Body::empty()).unwrap()
    } else {
        req.header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap()
    }
}

/// Every `(method, path)` the OpenAPI document describes.
fn documented() -> BTreeSet<(String, String)> {
    let spec = openapi::finish(super::routes().1);
    let mut ops = BTreeSet::new();
    for (path, item) in &spec.paths.paths {
        let methods = [
            ("GET", &item.get),
            ("PUT", &item.put),
            ("POST", &item.post),
            ("DELETE", &item.delete),
            ("PATCH", &item.patch),
            ("HEAD", &item.head),
            ("OPTIONS", &item.options),
        ];
        for (method, op) in methods {
            if op.is_some() {
                ops.insert((method.to_owned(), path.clone()));
            }
        }
    }
    ops
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "mostar-01")
        .replace("{tracking_code}", "MOS-2026-9999")
}

/// Whether a documented route needs no token.
fn is_public(path: &str) -> bool {
    !path.starts_with("/api/v1/") || PUBLIC.iter().any(|(_, p, ..)| *p == path)
}

/// Status and headers only: some bodies (event streams) never end.
async fn head(h: &Harness, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap) {
    let response = h.app().oneshot(req).await.unwrap();
    (response.status(), response.headers().clone())
}

async fn role_matrix(h: &Harness) {
    let listed: BTreeSet<_> = MATRIX
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .chain(ACTIONS.iter().map(|(m, p, ..)| (m.to_string(), p.to_string())))
        .chain(PUBLIC.iter().map(|(m, p, ..)| (m.to_string(), p.to_string())))
        .collect();
    assert_eq!(
        documented(),
        listed,
        "the role matrix must list exactly the documented routes"
    );
    let callers = [
        None,
        Some(Role::Admin),
        Some(Role::Operator),
        Some(Role::Viewer),
        Some(Role::Cso),
        Some(Role::Bench),
    ];
    for (method, path, query, roles) in MATRIX {
        let uri = format!("{}{query}", concrete(path));
        for caller in callers {
            let (status, headers) = head(h, request_with(method, &uri, caller)).await;
            let expected = match (roles, caller) {
                (None, _) => StatusCode::OK,
                (Some(_), None) => StatusCode::UNAUTHORIZED,
                (Some(allowed), Some(role)) if allowed.contains(&role) => StatusCode::OK,
                (Some(_), Some(_)) => StatusCode::FORBIDDEN,
            };
            assert_eq!(status, expected, "{} {uri} as {caller:?}", h.backend());
            if status == StatusCode::UNAUTHORIZED {
                assert_eq!(headers[header::WWW_AUTHENTICATE], r#"Bearer realm="benchfleet""#);
            }
            if !status.is_success() {
                assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE, "{uri}");
            }
        }
        if roles.is_some() {
            // Forged, expired and malformed tokens are 401 with an `invalid_token` challenge.
            let forged = protocol::token::Secret::new(b"not-the-server-secret-0123456789ab".to_vec())
                .sign(&protocol::Claims::new(Role::Admin, "mallory", Duration::from_secs(60)));
            let mut expired = protocol::Claims::new(Role::Admin, "root", Duration::from_secs(60));
            expired.exp = chrono::Utc::now().timestamp() - 1;
            for bad in [forged, secret().sign(&expired), "garbage".to_owned()] {
                let req = Request::builder()
                    .method(*method)
                    .uri(&uri)
                    .header(header::AUTHORIZATION, format!("Bearer {bad}"))
                    .body(Body::empty())
                    .unwrap();
                let (status, headers) = head(h, req).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{uri}");
                assert!(
                    headers[header::WWW_AUTHENTICATE]
                        .to_str()
                        .unwrap()
                        .contains(r#"error="invalid_token""#)
                );
            }
        }
    }
    for (method, path, body, status) in PUBLIC {
        let uri = concrete(path);
        for caller in callers {
            let (got, headers) = head(h, action(method, &uri, body, caller)).await;
            assert_eq!(got, *status, "{} {method} {uri} as {caller:?}", h.backend());
            if !got.is_success() {
                assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE, "{uri}");
            }
        }
    }
    for (method, path, query, body, roles, ok) in ACTIONS {
        let uri = format!("{}{query}", concrete(path));
        for caller in callers {
            let (status, headers) = head(h, action(method, &uri, body, caller)).await;
            let expected = match caller {
                None => StatusCode::UNAUTHORIZED,
                Some(role) if roles.contains(&role) => *ok,
                Some(_) => StatusCode::FORBIDDEN,
            };
            assert_eq!(status, expected, "{} {method} {uri} as {caller:?}", h.backend());
            if !status.is_success() {
                assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE, "{uri}");
            }
        }
    }
}

on_both_backends!(role_matrix);

#[tokio::test]
async fn spec_and_router_agree() {
    let h = Harness::sqlite().await;
    let (status, headers, body) = h.get(openapi::SPEC_PATH, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let spec: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    assert_eq!(spec["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    assert!(spec["components"]["schemas"]["Problem"].is_object());
    assert!(spec["components"]["schemas"]["Bench"].is_object());

    // Every schema reference resolves.
    let text = spec.to_string();
    let schemas = spec["components"]["schemas"].as_object().unwrap();
    for name in text
        .split("#/components/schemas/")
        .skip(1)
        .map(|r| r.split('"').next().unwrap())
    {
        assert!(schemas.contains_key(name), "dangling schema reference {name}");
    }

    let paths = spec["paths"].as_object().unwrap();
    let served: BTreeSet<_> = paths
        .iter()
        .flat_map(|(p, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    assert_eq!(served, documented(), "the served document is the generated one");

    for (method, path) in documented() {
        let op = &paths[&path][method.to_lowercase()];
        let protected = !is_public(&path);
        assert_eq!(op["security"].is_array(), protected, "{method} {path}");
        for code in ["400", "401", "403", "500", "503"] {
            if protected {
                assert!(op["responses"][code].is_object(), "{method} {path}: response {code}");
            }
        }
        if !protected {
            assert!(op["responses"]["403"].is_null(), "{method} {path}: no roles, no 403");
        }
        assert!(
            op["responses"]["200"].is_object() || op["responses"]["201"].is_object(),
            "{method} {path}"
        );
        assert_eq!(
            op["responses"]["404"].is_object(),
            path.contains('{'),
            "{method} {path}"
        );
        // The router serves the documented method (a 404 may only come from the handler: no
        // such rollout) and refuses the others with a problem.
        let uri = concrete(&path);
        // Status only: event streams never end.
        let (status, _) = head(&h, action(&method, &uri, "", Some(Role::Admin))).await;
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        if status == StatusCode::NOT_FOUND {
            let (_, _, body) = h.send(action(&method, &uri, "", Some(Role::Admin))).await;
            let problem: Problem = serde_json::from_slice(&body).unwrap();
            assert!(!problem.detail.starts_with("no such route"), "{method} {uri}");
        }
        let served = documented();
        for other in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            if served.contains(&(other.to_string(), path.clone())) {
                continue;
            }
            let req = Request::builder()
                .method(other.clone())
                .uri(&uri)
                .body(Body::empty())
                .unwrap();
            let (status, headers, _) = h.send(req).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{other} {uri}");
            assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        }
    }
    // Parameters are documented with the names the handlers accept.
    let params = |path: &str| -> Vec<String> {
        paths[path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(params("/api/v1/benches/{id}/telemetry"), ["id", "from", "to", "bucket"]);
    assert_eq!(
        params("/api/v1/reports/uptime"),
        ["from", "to", "municipality", "format"]
    );
    assert_eq!(params("/api/v1/benches"), ["state", "municipality"]);

    // The docs UI is served from embedded assets.
    let (status, _, body) = h.get("/docs/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("swagger-ui"));
    let (status, headers, _) = h.get("/docs", None).await;
    assert!(status.is_redirection());
    assert_eq!(headers[header::LOCATION], "/docs/");
    h.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_request_ids() {
    let h = Harness::sqlite().await;
    let (status, headers, body) = h.get("/api/v1/nothing-here", Some(Role::Admin)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
    let problem: Problem = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem.kind, "urn:benchfleet:problem:not-found");
    // Every response carries a request id; problems quote it.
    let id = headers["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(problem.request_id.as_deref(), Some(id));
    // A client's own id is kept.
    let req = Request::get("/api/v1/benches/nope")
        .header(header::AUTHORIZATION, format!("Bearer {}", token(Role::Viewer)))
        .header("x-request-id", "client-chosen-42")
        .body(Body::empty())
        .unwrap();
    let (status, headers, body) = h.send(req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers["x-request-id"], "client-chosen-42");
    let problem: Problem = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem.detail, r#"there is no bench "nope" in the fleet"#);
    assert_eq!(problem.request_id.as_deref(), Some("client-chosen-42"));
    h.stop().await;
}

async fn readiness(h: &Harness) {
    let (status, body) = h.get_json("/readyz", Role::Viewer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["store"]["reachable"], true);
    assert_eq!(
        body["store"]["mode"],
        if h.backend() == "sqlite" { "sqlite" } else { "postgres" }
    );
    h.broker.listening.store(false, std::sync::atomic::Ordering::Relaxed);
    let (status, body) = h.get_json("/readyz", Role::Viewer).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["broker"],
        serde_json::json!({"listening": false, "connections": 0})
    );
    let (status, body) = h.get_json("/healthz", Role::Viewer).await;
    assert_eq!((status, body), (StatusCode::OK, serde_json::json!({"status": "ok"})));
}

on_both_backends!(readiness);

#[tokio::test]
async fn metrics_can_require_a_scrape_token() {
    let mut h = Harness::sqlite().await;
    h.state.config.metrics_token = Some("scrape-me-0123456789".into());
    let (status, headers, _) = h.get("/metrics", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::WWW_AUTHENTICATE], r#"Bearer realm="benchfleet""#);
    // A JWT, even an admin's, is not the scrape token.
    let (status, _, _) = h.get("/metrics", Some(Role::Admin)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let req = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer scrape-me-0123456789")
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = h.send(req).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("# HELP benchfleet_http_request_duration_seconds "));
    h.stop().await;
}

#[tokio::test]
async fn slow_requests_time_out_with_a_problem() {
    let mut h = Harness::sqlite().await;
    h.state.config = ApiConfig {
        request_timeout: Duration::from_millis(50),
        ..ApiConfig::default()
    };
    // The API's time limit around a handler that never answers.
    let app = axum::Router::new()
        .route(
            "/slow",
            axum::routing::get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .route("/fast", axum::routing::get(|| async { "done" }))
        .layer(axum::middleware::from_fn_with_state(h.state.clone(), super::limit_time));
    let started = std::time::Instant::now();
    let response = app
        .clone()
        .oneshot(Request::get("/slow").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
    let body = http_body_util::BodyExt::collect(response.into_body())
        .await
        .unwrap()
        .to_bytes();
    let problem: Problem = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem.kind, "urn:benchfleet:problem:timeout");
    let response = app
        .oneshot(Request::get("/fast").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    h.stop().await;
}

#[tokio::test]
async fn json_bodies_are_strict_and_bounded() {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Rule {
        org: String,
        priority: u8,
    }
    let app = axum::Router::new()
        .route(
            "/rules",
            post(|super::problem::JsonBody(r): super::problem::JsonBody<Rule>| async move { r.org }),
        )
        .layer(DefaultBodyLimit::max(64));
    let send = |content_type: &'static str, body: &'static str| {
        let app = app.clone();
        async move {
            let req = Request::post("/rules")
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap();
            let response = app.oneshot(req).await.unwrap();
            let status = response.status();
            let bytes = http_body_util::BodyExt::collect(response.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, bytes)
        }
    };
    let (status, body) = send("application/json", r#"{"org":"lda","priority":1}"#).await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"lda"[..]));
    let (status, body) = send("application/json", r#"{"org":"lda","priority":1,"prio":2}"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let problem: Problem = serde_json::from_slice(&body).unwrap();
    assert_eq!(problem.field.as_deref(), Some("prio"));
    assert!(problem.detail.contains("unknown field `prio`"), "{}", problem.detail);
    let (status, body) = send("application/json", r#"{"org":"lda","priority":300}"#).await;
    let problem: Problem = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (status, problem.field.as_deref()),
        (StatusCode::BAD_REQUEST, Some("priority"))
    );
    let (status, _) = send("application/json", r#"{"org":"#).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = send("text/plain", r#"{"org":"lda","priority":1}"#).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let (status, body) = send(
        "application/json",
        r#"{"org":"a very long organisation name that does not fit","priority":1}"#,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::PAYLOAD_TOO_LARGE,
        "{}",
        String::from_utf8_lossy(&body)
    );
}

/// The metric names the issue lists, all of which must be exposed.
const EXPOSED: &[&str] = &[
    "benchfleet_bench_up",
    "benchfleet_bench_battery_percent",
    "benchfleet_bench_solar_watts",
    "benchfleet_bench_sessions_active",
    "benchfleet_bench_wifi_clients",
    "benchfleet_bench_rx_bytes_total",
    "benchfleet_bench_tx_bytes_total",
    "benchfleet_bench_last_seen_timestamp_seconds",
    "benchfleet_mqtt_connections",
    "benchfleet_mqtt_messages_received_total",
    "benchfleet_mqtt_messages_dropped_total",
    "benchfleet_ingest_batch_rows",
    "benchfleet_ingest_flush_duration_seconds",
    "benchfleet_store_write_errors_total",
    "benchfleet_ingest_buffered_rows",
    "benchfleet_http_request_duration_seconds",
];

/// Checks the Prometheus text format line by line; returns the sample names.
fn parse_exposition(text: &str) -> BTreeSet<String> {
    let mut helped = BTreeSet::new();
    let mut typed = BTreeSet::new();
    let mut samples = BTreeSet::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            helped.insert(rest.split(' ').next().unwrap().to_owned());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap().to_owned();
            let kind = parts.next().unwrap();
            assert!(
                ["counter", "gauge", "histogram", "summary", "info", "unknown"].contains(&kind),
                "{line}"
            );
            typed.insert(name);
        } else if line.starts_with("# EOF") {
        } else {
            assert!(!line.starts_with('#'), "unexpected comment: {line}");
            let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
            assert!(value.parse::<f64>().is_ok(), "value of {line}");
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "metric name {name}"
            );
            if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
                assert!(labels.starts_with('{') && labels.ends_with('}'), "labels of {line}");
            }
            samples.insert(name.to_owned());
        }
    }
    for name in &typed {
        assert!(helped.contains(name), "{name} has a TYPE but no HELP");
    }
    // Each sample belongs to a typed family (counters end in _total, histograms in _bucket…).
    for s in &samples {
        let family = ["_total", "_bucket", "_count", "_sum", "_created"]
            .iter()
            .find_map(|suffix| s.strip_suffix(suffix).filter(|f| typed.contains(*f)))
            .unwrap_or(s);
        assert!(typed.contains(family), "sample {s} has no TYPE");
    }
    samples.into_iter().chain(typed).collect()
}

async fn metrics_exposition(h: &Harness) {
    // Something for every per-bench metric to report.
    let payload = br#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":1,"power":{"solar_w":61.5,"battery_pct":87.5},
        "network":{"rx_bytes":1000,"tx_bytes":500,"wifi_clients":4},"sessions":{"wifi":4,"usb":2,"kiosk":1}}"#;
    crate::ingest::telemetry(&h.state.ingest, "mostar-01", payload, chrono::Utc::now()).unwrap();
    for uri in [
        "/api/v1/benches/mostar-01",
        "/api/v1/benches/mostar-01",
        "/api/v1/benches/no-such-bench",
    ] {
        h.get(uri, Some(Role::Viewer)).await;
    }
    let (status, headers, body) = h.get("/metrics", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers[header::CONTENT_TYPE],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    let names = parse_exposition(&text);
    for name in EXPOSED {
        assert!(names.contains(*name), "{name} missing from /metrics");
    }
    // Route templates, never raw paths.
    assert!(
        text.contains(r#"benchfleet_http_request_duration_seconds_count{route="/api/v1/benches/{id}",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"benchfleet_http_request_duration_seconds_count{route="/api/v1/benches/{id}",status="404"} 1"#),
        "{text}"
    );
    assert!(!text.contains("no-such-bench"));
    assert!(text.contains(r#"benchfleet_bench_sessions_active{bench="mostar-01",kind="usb"} 2"#));
}

on_both_backends!(metrics_exposition);

/// An admin gets a working bench token; an unknown bench is a 404 problem.
async fn bench_tokens(h: &Harness) {
    let response = h
        .app()
        .oneshot(request_with(
            "POST",
            "/api/v1/benches/mostar-01/token",
            Some(Role::Admin),
        ))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let issued: protocol::api::BenchToken = serde_json::from_slice(&body).unwrap();
    assert_eq!(issued.bench, "mostar-01");
    let claims = secret().verify(&issued.token).unwrap();
    assert_eq!((claims.role, claims.sub.as_str()), (Role::Bench, "mostar-01"));
    assert_eq!(issued.expires_at.timestamp(), claims.exp);
    let unknown = h
        .app()
        .oneshot(request_with(
            "POST",
            "/api/v1/benches/atlantis-01/token",
            Some(Role::Admin),
        ))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}
on_both_backends!(bench_tokens);
