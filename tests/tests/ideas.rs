//! Ideas end to end with the real binary and Debian's real Mosquitto clients: an organisation
//! joins and is approved, rules are set, a kiosk's idea sent with `mosquitto_rr` gets its
//! tracking code (the same code when sent again, and one idea), `mosquitto_pub` delivers
//! another, the organisation confirms and completes through the API, and the public status page
//! shows it. On SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Command;
use std::time::Duration;

use chrono::{Datelike, Utc};
use control_plane::store;
use serde_json::{Value, json};
use tests::{ControlPlane, eventually};

fn mosquitto_clients() -> bool {
    let found = Command::new("mosquitto_rr").arg("--help").output().is_ok()
        && Command::new("mosquitto_pub").arg("--help").output().is_ok();
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "mosquitto_rr and mosquitto_pub (Debian: mosquitto-clients) are required in CI"
        );
        eprintln!("skipping: mosquitto-clients not installed");
    }
    found
}

fn idea(id: &str, text: &str) -> String {
    json!({
        "v": 1, "idea_id": id, "ts": Utc::now().to_rfc3339(), "text": text,
        "category": "environment", "lang": "bs",
        "contact": {"email": "amra@mail.ba", "consent": true}
    })
    .to_string()
}

/// Publishes an idea as `bench` and waits for the server's answer on `ideas/ack`.
fn request(cp: &ControlPlane, bench: &str, token: &str, payload: &str) -> Value {
    let out = Command::new("mosquitto_rr")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cp.mqtt.port().to_string(),
            "-V",
            "mqttv311",
            "-q",
            "1",
        ])
        .args(["-i", bench, "-u", bench, "-P", token, "-W", "20"])
        .args([
            "-t",
            &format!("benches/{bench}/ideas"),
            "-e",
            &format!("benches/{bench}/ideas/ack"),
        ])
        .args(["-m", payload])
        .output()
        .expect("running mosquitto_rr");
    assert!(
        out.status.success(),
        "mosquitto_rr failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("ack is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn publish(cp: &ControlPlane, bench: &str, token: &str, payload: &str) {
    let out = Command::new("mosquitto_pub")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &cp.mqtt.port().to_string(),
            "-V",
            "mqttv311",
            "-q",
            "1",
        ])
        .args([
            "-i",
            bench,
            "-u",
            bench,
            "-P",
            token,
            "-t",
            &format!("benches/{bench}/ideas"),
        ])
        .args(["-m", payload])
        .output()
        .expect("running mosquitto_pub");
    assert!(
        out.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

async fn call(method: reqwest::Method, url: String, token: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let response = req.send().await.expect("HTTP request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn story(database_url: Option<&str>) {
    if !mosquitto_clients() {
        return;
    }
    let cp = ControlPlane::start_with(database_url, &[]);
    let api = |path: &str| format!("{}{path}", cp.api);
    let operator = cp.token("operator", "ops", &[]);
    let admin = cp.token("admin", "root", &[]);
    use reqwest::Method;

    // An organisation applies without a token and an operator approves it.
    let application = json!({"name": "Zeleni Mostar", "municipalities": ["Mostar"], "contact_email": "info@zeleni.ba"});
    let (status, receipt) = call(
        Method::POST,
        api("/api/v1/organisations/applications"),
        None,
        Some(application),
    )
    .await;
    assert_eq!(status, 201, "{receipt}");
    let org = receipt["id"].as_str().unwrap().to_owned();
    let (status, body) = call(
        Method::POST,
        api(&format!("/api/v1/organisations/{org}/approve")),
        Some(&operator),
        None,
    )
    .await;
    assert_eq!((status, body["state"].as_str()), (200, Some("active")), "{body}");
    // The command line mints member tokens only for organisations the network has.
    let refused = cp.try_token("cso", "amra", &["--org", "nope"]);
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && why.contains("\"nope\" is not an organisation") && why.contains(&org),
        "an unknown organisation got a token: {why}"
    );
    let from_cli = cp.token("cso", "amra", &["--org", &org]);
    let (status, body) = call(Method::GET, api("/api/v1/ideas"), Some(&from_cli), None).await;
    assert_eq!(status, 200, "{body}");
    let rules = json!({"rules": [{"name": "mostar-parks", "priority": 1, "match": {"municipalities": ["Mostar"], "keywords": ["park"]}, "targets": [org]}]});
    let (status, body) = call(Method::PUT, api("/api/v1/routing/rules"), Some(&operator), Some(rules)).await;
    assert_eq!(status, 200, "{body}");
    let (status, member) = call(
        Method::POST,
        api(&format!("/api/v1/organisations/{org}/token")),
        Some(&admin),
        Some(json!({"subject": "amra"})),
    )
    .await;
    assert_eq!(status, 200, "{member}");
    let cso = member["token"].as_str().unwrap().to_owned();

    // The kiosk sends an idea and gets its tracking code; sending it again gives the same one.
    let bench = cp.token("bench", "mostar-01", &[]);
    let id = "3b0f5a8e-2c1d-4e6f-9a7b-8c9d0e1f2a3b";
    let payload = idea(id, "Više klupa i hlada u gradskom parku");
    let ack = request(&cp, "mostar-01", &bench, &payload);
    let code = format!("MOS-{}-0001", Utc::now().year());
    assert_eq!(
        ack,
        json!({"v": 1, "idea_id": id, "tracking_code": code, "status": "received"})
    );
    assert_eq!(request(&cp, "mostar-01", &bench, &payload), ack);
    // A second idea with plain mosquitto_pub (QoS 1).
    publish(
        &cp,
        "mostar-01",
        &bench,
        &idea("0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9", "Trebamo česmu u parku"),
    );

    // The organisation's inbox: both ideas, the first one once.
    let inbox = eventually(
        "both ideas in the organisation's inbox",
        Duration::from_secs(20),
        || async {
            let (_, page) = call(Method::GET, api("/api/v1/ideas?state=offered"), Some(&cso), None).await;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            (items.len() == 2).then_some(items)
        },
    )
    .await;
    let first = inbox.iter().find(|i| i["id"] == id).unwrap();
    assert_eq!(
        (first["tracking_code"].as_str(), first["rule"].as_str()),
        (Some(code.as_str()), Some("mostar-parks"))
    );
    assert_eq!(first["has_contact"], true);
    assert!(first["contact"].is_null(), "contact details only after confirming");

    // Confirm (contact details now visible), act, complete.
    let (status, detail) = call(
        Method::POST,
        api(&format!("/api/v1/ideas/{id}/confirm")),
        Some(&cso),
        None,
    )
    .await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["contact"]["email"], "amra@mail.ba");
    let note = json!({"public_note": "Klupe su postavljene uz stazu."});
    let (status, detail) = call(
        Method::POST,
        api(&format!("/api/v1/ideas/{id}/complete")),
        Some(&cso),
        Some(note),
    )
    .await;
    assert_eq!((status, detail["state"].as_str()), (200, Some("completed")), "{detail}");

    // The citizen's status page, without a token.
    let (status, public) = call(Method::GET, api(&format!("/api/v1/public/ideas/{code}")), None, None).await;
    assert_eq!(status, 200, "{public}");
    assert_eq!(public["state"], "completed");
    assert_eq!(public["organisation"], "Zeleni Mostar");
    assert_eq!(public["notes"][0]["note"], "Klupe su postavljene uz stazu.");
    assert!(
        public.get("text").is_none() && public.get("contact").is_none(),
        "{public}"
    );

    let received = cp
        .metric(r#"benchfleet_ideas_submitted_total{status="received"}"#)
        .await;
    assert_eq!(received, Some(2.0), "the repeated idea is answered, not counted again");

    // Stored once, on this backend.
    let store = store::connect(&cp.database_url, &Default::default()).await.unwrap();
    let all = store
        .ideas(&control_plane::routing::IdeaFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(
        store.idea_events(id).await.unwrap().len(),
        4,
        "received, offered, confirmed, completed"
    );
    assert!(cp.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn ideas_on_sqlite() {
    story(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ideas_on_postgres() {
    let Some(db) = store::testing::pg_database().await else {
        return;
    };
    story(Some(db.url())).await;
}
