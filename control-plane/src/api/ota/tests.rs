//! OTA routes through the router, on both backends: layers with per-field validation and dry
//! runs, bench configuration states, rollouts and their steering, the audit log.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use protocol::Role;
use serde_json::{Value, json};

use crate::api::testing::{Harness, on_both_backends, token};
use crate::presence::Input;

async fn send(h: &Harness, method: &str, uri: &str, role: Role, body: Option<Value>) -> (StatusCode, Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {}", token(role)));
    let req = match body {
        Some(b) => req
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let (status, _, bytes) = h.send(req).await;
    let json = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{method} {uri}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    (status, json)
}

fn published(h: &Harness) -> Vec<(String, u64)> {
    std::mem::take(&mut *h.published.0.lock().unwrap())
        .into_iter()
        .map(|(b, d)| (b.to_string(), d.version))
        .collect()
}

async fn layers_and_benches(h: &Harness) {
    // Every bench starts at version 1, published at start.
    assert_eq!(published(h).len(), 12);
    let (status, body) = h.get_json("/api/v1/ota/benches", Role::Viewer).await;
    assert_eq!(status, StatusCode::OK);
    let benches = body.as_array().unwrap();
    assert_eq!(benches.len(), 12);
    assert_eq!(benches[0]["bench_id"], "berkovici-01");
    assert_eq!(
        (
            &benches[0]["desired_version"],
            &benches[0]["state"],
            &benches[0]["drifting"]
        ),
        (&json!(1), &json!("pending"), &json!(false))
    );

    // Every bad field is named.
    let bad =
        json!({"layer": {"scope": "fleet"}, "content": {"telemetry_interval_s": 1, "wifi": {"ssid": "", "colour": 1}}});
    let (status, problem) = send(h, "PUT", "/api/v1/ota/layers", Role::Operator, Some(bad)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    assert_eq!(problem["type"], "urn:benchfleet:problem:validation");
    assert_eq!(problem["field"], "telemetry_interval_s");
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["telemetry_interval_s", "wifi.colour", "wifi.ssid"]);
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("telemetry_interval_s: must be 5-3600 seconds, got 1; wifi.colour: unknown field"),
        "{problem}"
    );
    // Unknown request fields and municipalities are refused too.
    let (status, problem) = send(
        h,
        "PUT",
        "/api/v1/ota/layers",
        Role::Operator,
        Some(json!({"layer": {"scope": "fleet"}, "content": {}, "dryrun": true})),
    )
    .await;
    assert_eq!((status, &problem["field"]), (StatusCode::BAD_REQUEST, &json!("dryrun")));
    let (status, problem) = send(
        h,
        "PUT",
        "/api/v1/ota/layers",
        Role::Operator,
        Some(json!({"layer": {"scope": "municipality", "name": "Atlantis"}, "content": {}})),
    )
    .await;
    assert_eq!(
        (status, &problem["field"]),
        (StatusCode::BAD_REQUEST, &json!("municipality"))
    );

    // A dry run changes nothing and says what would.
    let change =
        json!({"layer": {"scope": "municipality", "name": "Mostar"}, "content": {"wifi": {"ssid": "Mostar Free"}}});
    let mut dry = change.clone();
    dry["dry_run"] = json!(true);
    let (status, body) = send(h, "PUT", "/api/v1/ota/layers", Role::Operator, Some(dry)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"dry_run": true, "benches": [{"bench": "mostar-01", "version": 1,
               "changes": [{"field": "wifi.ssid", "from": "Smart Bench", "to": "Mostar Free"}]}]})
    );
    assert_eq!(published(h), []);
    let (status, body) = send(h, "PUT", "/api/v1/ota/layers", Role::Admin, Some(change)).await;
    assert_eq!((status, &body["dry_run"]), (StatusCode::OK, &json!(false)));
    assert_eq!(published(h), [("mostar-01".to_owned(), 2)]);

    let (status, body) = h.get_json("/api/v1/ota/benches/mostar-01", Role::Viewer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"]["desired_version"], 2);
    assert_eq!(body["status"]["desired"]["wifi"]["ssid"], "Mostar Free");
    assert_eq!(
        body["effective"]["layers"],
        json!([{"scope": "municipality", "name": "Mostar"}])
    );
    assert_eq!(body["effective"]["matches_desired"], true);
    let versions: Vec<(u64, &str, &str)> = body["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_u64().unwrap(),
                v["cause"].as_str().unwrap(),
                v["actor"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(2, "layer", "test-admin"), (1, "initial", "system")]);
    let (status, body) = h.get_json("/api/v1/ota/layers", Role::Viewer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body[0]["layer"], json!({"scope": "municipality", "name": "Mostar"}));
    assert_eq!(body[0]["updated_by"], "test-admin");
    let (status, _) = h.get_json("/api/v1/ota/benches/nowhere-01", Role::Viewer).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

on_both_backends!(layers_and_benches);

async fn rollouts_and_audit(h: &Harness) {
    published(h);
    // Offline benches are skipped: a rollout to benches that are all away completes at once.
    let request = json!({"target": "fleet", "change": {"usb": {"max_session_min": 90}},
                         "strategy": {"canary": ["mostar-01"], "batch_size": 6, "soak_s": 0}});
    let (status, preview) = send(
        h,
        "POST",
        "/api/v1/rollouts?dry_run=true",
        Role::Operator,
        Some(request.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    let steps: Vec<usize> = preview["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_array().unwrap().len())
        .collect();
    assert_eq!(steps, [1, 6, 5]);
    assert_eq!(published(h), []);
    let (status, r) = send(h, "POST", "/api/v1/rollouts", Role::Operator, Some(request)).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["state"], "completed");
    assert!(r["benches"].as_array().unwrap().iter().all(|b| b["state"] == "skipped"));
    assert_eq!(published(h).len(), 12);
    let done = r["id"].as_str().unwrap().to_owned();
    let (status, body) = send(
        h,
        "POST",
        &format!("/api/v1/rollouts/{done}/abort"),
        Role::Operator,
        None,
    )
    .await;
    assert_eq!(
        (status, &body["type"]),
        (StatusCode::CONFLICT, &json!("urn:benchfleet:problem:conflict"))
    );
    let (status, r) = send(
        h,
        "POST",
        &format!("/api/v1/rollouts/{done}/rollback?reason=too%20short"),
        Role::Admin,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(
        (&r["state"], &r["reason"]),
        (&json!("rolled_back"), &json!("rolled back by test-admin: too short"))
    );
    assert_eq!(published(h).len(), 12);

    // With the canary online, the rollout waits for it; steering works and is checked.
    h.state.presence.apply("mostar-01", Input::Connected { conn: 1 });
    let request = json!({"target": {"benches": ["mostar-01", "zepce-01"]}, "change": {"wifi": {"enabled": false}},
                         "strategy": {"canary": ["mostar-01"]}});
    let (status, r) = send(h, "POST", "/api/v1/rollouts", Role::Operator, Some(request.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    let id = r["id"].as_str().unwrap().to_owned();
    assert_eq!((&r["state"], &r["steps"]), (&json!("running"), &json!(2)));
    assert_eq!(r["benches"][0]["state"], "pending");
    let (status, _) = send(h, "POST", "/api/v1/rollouts", Role::Operator, Some(request)).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, r) = send(h, "POST", &format!("/api/v1/rollouts/{id}/pause"), Role::Operator, None).await;
    assert_eq!((status, &r["state"]), (StatusCode::OK, &json!("paused")));
    let (status, _) = send(h, "POST", &format!("/api/v1/rollouts/{id}/pause"), Role::Operator, None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, r) = send(
        h,
        "POST",
        &format!("/api/v1/rollouts/{id}/resume"),
        Role::Operator,
        None,
    )
    .await;
    assert_eq!((status, &r["state"]), (StatusCode::OK, &json!("running")));
    let (status, r) = send(
        h,
        "POST",
        &format!("/api/v1/rollouts/{id}/abort?reason=wrong%20bench"),
        Role::Operator,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert_eq!(r["reason"], "aborted by test-operator: wrong bench");
    assert_eq!(r["benches"][0]["state"], "rolled_back");
    assert_eq!(r["benches"][1]["state"], "waiting");
    let mostar: Vec<u64> = published(h)
        .into_iter()
        .filter(|(b, _)| b == "mostar-01")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        mostar.len(),
        2,
        "the change, then the previous configuration as a new version"
    );
    assert!(mostar[1] > mostar[0]);

    let (status, list) = h.get_json("/api/v1/rollouts", Role::Viewer).await;
    assert_eq!(status, StatusCode::OK);
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["aborted", "rolled_back"]);
    let (status, r) = h.get_json(&format!("/api/v1/rollouts/{id}"), Role::Viewer).await;
    assert_eq!((status, &r["state"]), (StatusCode::OK, &json!("aborted")));

    // The audit log, newest first, a page at a time.
    let (status, page) = h.get_json("/api/v1/ota/audit?limit=3", Role::Admin).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["rollout.abort", "rollout.resume", "rollout.pause"]);
    assert_eq!(page["items"][0]["actor"], "test-operator");
    let before = page["next_before"].as_i64().unwrap();
    let (status, page) = h
        .get_json(&format!("/api/v1/ota/audit?limit=500&before={before}"), Role::Admin)
        .await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "rollout.create",
            "rollout.rollback",
            "rollout.complete",
            "rollout.create",
            "startup.reconcile"
        ]
    );
    assert!(page["next_before"].is_null());
    let (status, problem) = h.get_json("/api/v1/ota/audit?limit=0", Role::Admin).await;
    assert_eq!((status, &problem["field"]), (StatusCode::BAD_REQUEST, &json!("limit")));
    let (status, _) = h.get_json("/api/v1/rollouts/nope", Role::Viewer).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

on_both_backends!(rollouts_and_audit);

#[tokio::test]
async fn changes_are_live_events() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    let h = Harness::sqlite().await;
    let response = h
        .app()
        .oneshot(crate::api::testing::request("/api/v1/events", Some(Role::Viewer)))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body();
    let change = json!({"layer": {"scope": "bench", "name": "ravno-01"}, "content": {"usb": {"enabled": false}}});
    let (status, _) = send(&h, "PUT", "/api/v1/ota/layers", Role::Operator, Some(change)).await;
    assert_eq!(status, StatusCode::OK);
    let mut text = String::new();
    let event = loop {
        if let Some(start) = text.find("event: bench_config\ndata: ") {
            let rest = &text[start + "event: bench_config\ndata: ".len()..];
            if let Some(end) = rest.find('\n') {
                break serde_json::from_str::<Value>(&rest[..end]).unwrap();
            }
        }
        let frame = tokio::time::timeout(std::time::Duration::from_secs(20), body.frame())
            .await
            .expect("a bench_config event within 20 s")
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(std::str::from_utf8(&data).unwrap());
        }
    };
    assert_eq!(
        (&event["bench_id"], &event["desired_version"], &event["state"]),
        (&json!("ravno-01"), &json!(2), &json!("pending"))
    );
    assert_eq!(event["desired"]["usb"]["enabled"], false);
    h.stop().await;
}
