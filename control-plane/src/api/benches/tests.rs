//! Handler tests of the bench routes, on SQLite and PostgreSQL.

use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use protocol::api::{Bench, BenchDetail, Problem, StatusEventsPage};
use protocol::{BenchState, Role, Status};
use serde_json::json;

use crate::api::testing::{Harness, on_both_backends};
use crate::presence::Input;
use crate::presence::StatusEvent;
use crate::store::testing::telemetry_row;
use crate::store::truncate_to_millis;
use crate::telemetry::TelemetryRow;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

async fn problem(h: &Harness, uri: &str) -> (StatusCode, Problem) {
    let (status, _, body) = h.get(uri, Some(Role::Viewer)).await;
    let p = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{uri}: {e}"));
    (status, p)
}

async fn list_with_live_state(h: &Harness) {
    h.store()
        .insert_telemetry(&[
            telemetry_row("mostar-01", 1, at("2026-11-26T09:59:00Z")),
            TelemetryRow {
                solar_w: 61.5,
                battery_pct: 87.5,
                rx_bytes: Some(1_048_576),
                sessions_usb: Some(2),
                faults: vec!["door_open".into()],
                ..telemetry_row("mostar-01", 2, at("2026-11-26T10:00:00Z"))
            },
            telemetry_row("zepce-01", 7, at("2026-11-26T08:00:00Z")),
        ])
        .await
        .unwrap();
    let presence = &h.state.presence;
    presence.apply("mostar-01", Input::Connected { conn: 1 });
    presence.apply("mostar-01", Input::Status(Status::online("1.4.2", 3)));
    presence.apply("ravno-01", Input::Connected { conn: 2 });
    let wake = truncate_to_millis(Utc::now() + TimeDelta::hours(6));
    presence.apply("ravno-01", Input::Status(Status::sleeping(wake)));

    let (status, body) = h.get_json("/api/v1/benches", Role::Viewer).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let benches: Vec<Bench> = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(benches.len(), 12);
    assert_eq!(benches[0].id, "berkovici-01");
    assert_eq!(benches[0].municipality, "Berkovići");
    assert_eq!(benches[0].state, BenchState::NeverSeen);
    assert_eq!(benches[0].power, None);

    let mostar = benches.iter().find(|b| b.id == "mostar-01").unwrap();
    assert_eq!(mostar.state, BenchState::Online);
    assert!(mostar.since.is_some());
    assert_eq!((mostar.fw.as_deref(), mostar.config_version), (Some("1.4.2"), Some(3)));
    assert_eq!(mostar.sample_ts, Some(at("2026-11-26T10:00:00Z")));
    assert_eq!(
        mostar.last_seen,
        Some(at("2026-11-26T10:00:00Z")),
        "from the store's received_at"
    );
    let power = mostar.power.as_ref().unwrap();
    assert_eq!((power.solar_w, power.battery_pct), (61.5, 87.5));
    assert_eq!(mostar.network.as_ref().unwrap().rx_bytes, Some(1_048_576));
    assert_eq!(mostar.sessions.as_ref().unwrap().usb, Some(2));
    assert_eq!(mostar.health.as_ref().unwrap().faults, ["door_open"]);
    // The JSON shape clients rely on.
    let m = body
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["id"] == "mostar-01")
        .unwrap();
    assert_eq!(m["location"], json!({"lat": 43.343, "lon": 17.808}));
    assert_eq!(m["state"], "online");

    let ids = |benches: Vec<Bench>| benches.into_iter().map(|b| b.id).collect::<Vec<_>>();
    let get = |uri: &'static str| async move {
        let (status, body) = h.get_json(uri, Role::Operator).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        serde_json::from_value::<Vec<Bench>>(body).unwrap()
    };
    assert_eq!(ids(get("/api/v1/benches?state=online").await), ["mostar-01"]);
    let sleeping = get("/api/v1/benches?state=sleeping").await;
    assert_eq!(ids(sleeping.clone()), ["ravno-01"]);
    assert_eq!(sleeping[0].until, Some(wake));
    assert_eq!(get("/api/v1/benches?state=never_seen").await.len(), 10);
    // Diacritics percent-encoded, any case.
    assert_eq!(
        ids(get("/api/v1/benches?municipality=%C5%BEep%C4%8De").await),
        ["zepce-01"]
    );
    assert_eq!(
        ids(get("/api/v1/benches?municipality=%C5%BDEP%C4%8CE").await),
        ["zepce-01"]
    );
    assert_eq!(get("/api/v1/benches?municipality=Zepce").await.len(), 0);
    assert_eq!(
        ids(get("/api/v1/benches?municipality=Mostar&state=online").await),
        ["mostar-01"]
    );

    let (status, p) = problem(h, "/api/v1/benches?state=asleep").await;
    assert_eq!((status, p.field.as_deref()), (StatusCode::BAD_REQUEST, Some("state")));
    assert!(p.detail.contains("unknown variant `asleep`"), "{}", p.detail);
    let (status, p) = problem(h, "/api/v1/benches?sate=online").await;
    assert_eq!((status, p.field.as_deref()), (StatusCode::BAD_REQUEST, Some("sate")));
    assert_eq!(p.kind, "urn:benchfleet:problem:validation");
    assert_eq!(p.title, "Bad Request");
}

on_both_backends!(list_with_live_state);

fn event(bench: &str, at: DateTime<Utc>, state: BenchState, cause: &str) -> StatusEvent {
    StatusEvent {
        bench_id: bench.into(),
        at,
        state,
        cause: cause.into(),
        fw: Some("1.0.0".into()),
        config_version: Some(2),
        until: None,
    }
}

async fn detail_and_status_pages(h: &Harness) {
    let t0 = at("2026-11-20T00:00:00Z");
    let states = [
        BenchState::Online,
        BenchState::Offline,
        BenchState::Online,
        BenchState::Stale,
        BenchState::Online,
    ];
    for (i, state) in states.into_iter().enumerate() {
        let e = event(
            "maglaj-01",
            t0 + TimeDelta::hours(i as i64),
            state,
            &format!("step-{i}"),
        );
        h.store().insert_status_event(&e).await.unwrap();
    }
    h.store()
        .insert_status_event(&event("mostar-01", t0, BenchState::Online, "connected"))
        .await
        .unwrap();

    let (status, body) = h.get_json("/api/v1/benches/maglaj-01", Role::Admin).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let detail: BenchDetail = serde_json::from_value(body.clone()).unwrap();
    assert_eq!(detail.bench.id, "maglaj-01");
    assert_eq!(detail.bench.municipality, "Maglaj");
    let causes: Vec<_> = detail.recent_status.iter().map(|c| c.cause.as_str()).collect();
    assert_eq!(causes, ["step-4", "step-3", "step-2", "step-1", "step-0"]);
    assert_eq!(detail.recent_status[1].state, BenchState::Stale);
    assert_eq!(detail.recent_status[0].fw.as_deref(), Some("1.0.0"));
    assert_eq!(detail.status_next_cursor, None);
    // The bench's fields sit at the top level beside its history.
    assert_eq!(body["id"], "maglaj-01");

    // Two at a time, following the cursor to the end.
    let mut uri = "/api/v1/benches/maglaj-01/status-events?limit=2".to_owned();
    let mut seen = Vec::new();
    for _ in 0..10 {
        let (status, body) = h.get_json(&uri, Role::Viewer).await;
        assert_eq!(status, StatusCode::OK, "{uri}: {body}");
        let page: StatusEventsPage = serde_json::from_value(body).unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.into_iter().map(|c| c.cause));
        match page.next_cursor {
            Some(c) => uri = format!("/api/v1/benches/maglaj-01/status-events?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, ["step-4", "step-3", "step-2", "step-1", "step-0"]);
    let (_, body) = h
        .get_json("/api/v1/benches/maglaj-01/status-events", Role::Viewer)
        .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 5);
    assert_eq!(body["next_cursor"], serde_json::Value::Null);
    let (_, body) = h
        .get_json("/api/v1/benches/kostajnica-01/status-events", Role::Viewer)
        .await;
    assert_eq!(body, json!({"items": [], "next_cursor": null}));

    for (uri, field) in [
        ("/api/v1/benches/maglaj-01/status-events?limit=0", "limit"),
        ("/api/v1/benches/maglaj-01/status-events?limit=501", "limit"),
        ("/api/v1/benches/maglaj-01/status-events?cursor=yesterday", "cursor"),
        ("/api/v1/benches/maglaj-01/status-events?cursor=1.2.3", "cursor"),
        ("/api/v1/benches/maglaj-01/status-events?page=2", "page"),
        ("/api/v1/benches/maglaj-01?verbose=true", "verbose"),
    ] {
        let (status, p) = problem(h, uri).await;
        assert_eq!(
            (status, p.field.as_deref()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{uri}"
        );
    }
    for uri in [
        "/api/v1/benches/atlantis-01",
        "/api/v1/benches/atlantis-01/status-events",
    ] {
        let (status, p) = problem(h, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(p.detail, r#"there is no bench "atlantis-01" in the fleet"#);
    }
}

on_both_backends!(detail_and_status_pages);

/// `config_version` of zepce-01 as `/ota/benches/{id}`, the bench detail and the bench list show it.
async fn versions(h: &Harness) -> (serde_json::Value, serde_json::Value, serde_json::Value) {
    let (_, ota) = h.get_json("/api/v1/ota/benches/zepce-01", Role::Viewer).await;
    let (_, detail) = h.get_json("/api/v1/benches/zepce-01", Role::Viewer).await;
    let (_, list) = h.get_json("/api/v1/benches", Role::Viewer).await;
    let listed = &list.as_array().unwrap().iter().find(|b| b["id"] == "zepce-01").unwrap()["config_version"];
    (
        ota["status"]["reported_version"].clone(),
        detail["config_version"].clone(),
        listed.clone(),
    )
}

/// One running configuration version everywhere: after a bench acknowledges `applied`, the bench
/// list and the bench detail show it as `/ota/benches/{id}` does, although no status message
/// carried it; a later status report wins in all three.
async fn running_config_version_from_acks_and_status(h: &Harness) {
    let zepce = protocol::BenchId::parse("zepce-01").unwrap();
    h.state.presence.apply("zepce-01", Input::Connected { conn: 1 });
    h.state
        .presence
        .apply("zepce-01", Input::Status(Status::online("1.4.2", 0)));
    h.state
        .ota
        .on_ack(&zepce, &protocol::config::ConfigAck::applied(1).to_json());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while versions(h).await.0 != json!(1) {
        assert!(
            std::time::Instant::now() < deadline,
            "OTA never took in the ack: {:?}",
            versions(h).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(versions(h).await, (json!(1), json!(1), json!(1)));

    h.state
        .presence
        .apply("zepce-01", Input::Status(Status::online("1.4.2", 5)));
    h.state.ota.on_status(&zepce, 5);
    while versions(h).await.0 != json!(5) {
        assert!(
            std::time::Instant::now() < deadline,
            "OTA never took in the status: {:?}",
            versions(h).await
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(versions(h).await, (json!(5), json!(5), json!(5)));
}

on_both_backends!(running_config_version_from_acks_and_status);
