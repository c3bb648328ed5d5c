//! The history story: what the HTTP API reads back (time buckets, usage totals, status pages and
//! status history), told to every backend with exact expected values, so SQLite and PostgreSQL
//! are proven to give the same numbers for the same data, across a bench reboot, from raw samples
//! and again from the per-minute rollups.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use protocol::BenchState;

use super::testing::{self, telemetry_row};
use super::{Store, StoreSettings, connect};
use crate::presence::{StatusCursor, StatusEvent};
use crate::telemetry::{Agg, TelemetryBucket, TelemetryRow};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// 2026-11-26T10:00:00Z plus `s` seconds.
fn t(s: i64) -> DateTime<Utc> {
    at("2026-11-26T10:00:00Z") + TimeDelta::seconds(s)
}

/// Sample `k` (1-based) of bench `b1`: every 15 s from 10:00:00, solar `10 k` W. The bench
/// reboots before sample 6 (counters and uptime restart) and again before sample 8, where its
/// counters happen to be higher than before: only `uptime_s` going down tells.
pub(super) fn reboot_samples() -> Vec<TelemetryRow> {
    // (seq, uptime_s, rx, tx, wifi_started, usb_started, load_w)
    type Step = (i64, i64, i64, i64, i64, i64, Option<f64>);
    let plan: [Step; 8] = [
        (1, 1000, 1000, 500, 10, 1, Some(2.0)),
        (2, 1015, 2500, 800, 12, 1, None),
        (3, 1030, 4000, 1100, 13, 1, Some(4.0)),
        (4, 1045, 5500, 1400, 13, 2, None),
        (5, 1060, 7000, 1700, 14, 2, None),
        (1, 10, 600, 200, 1, 0, None),
        (2, 25, 2100, 500, 3, 0, None),
        (1, 5, 3000, 900, 4, 0, Some(8.0)),
    ];
    plan.iter()
        .enumerate()
        .map(|(i, &(seq, uptime, rx, tx, ws, us, load))| {
            let k = i as i64 + 1;
            TelemetryRow {
                solar_w: 10.0 * k as f64,
                battery_pct: 48.0 + 2.0 * k as f64,
                load_w: load,
                rx_bytes: Some(rx),
                tx_bytes: Some(tx),
                wifi_clients: Some(k as i32),
                sessions_wifi: Some(if k == 2 { 9 } else { 1 }),
                sessions_usb: Some(0),
                sessions_kiosk: None,
                wifi_started: Some(ws),
                usb_started: Some(us),
                kiosk_started: None,
                uptime_s: Some(uptime),
                ..telemetry_row("b1", seq, t(15 * (k - 1)))
            }
        })
        .collect()
}

fn agg(avg: f64, min: f64, max: f64) -> Agg {
    Agg { avg, min, max }
}

async fn buckets(store: &dyn Store) {
    assert_eq!(
        store
            .telemetry_buckets("b1", t(0), t(120), TimeDelta::minutes(1))
            .await
            .unwrap(),
        []
    );
    assert_eq!(store.insert_telemetry(&reboot_samples()).await.unwrap(), 8);
    // Another bench's rows never leak in.
    store
        .insert_telemetry(&[TelemetryRow {
            rx_bytes: Some(1 << 40),
            ..telemetry_row("b2", 1, t(30))
        }])
        .await
        .unwrap();
    bucket_checks(store).await;
}

async fn bucket_checks(store: &dyn Store) {
    let got = store
        .telemetry_buckets("b1", t(0), t(120), TimeDelta::minutes(1))
        .await
        .unwrap();
    let minute0 = TelemetryBucket {
        start: t(0),
        samples: 4,
        solar_w: agg(25.0, 10.0, 40.0),
        battery_pct: agg(53.0, 50.0, 56.0),
        load_w: Some(agg(3.0, 2.0, 4.0)),
        cpu_temp_c: None,
        enclosure_temp_c: None,
        sessions_wifi_max: Some(9),
        sessions_usb_max: Some(0),
        sessions_kiosk_max: None,
        wifi_clients_max: Some(4),
        // Three pairs of 15 s, each +1500 / +300.
        rx_increase: Some(4500.0),
        rx_span_ms: Some(45_000),
        tx_increase: Some(900.0),
        tx_span_ms: Some(45_000),
        wifi_started: Some(3),
        usb_started: Some(1),
        kiosk_started: None,
    };
    let minute1 = TelemetryBucket {
        start: t(60),
        samples: 4,
        solar_w: agg(65.0, 50.0, 80.0),
        battery_pct: agg(61.0, 58.0, 64.0),
        load_w: Some(agg(8.0, 8.0, 8.0)),
        cpu_temp_c: None,
        enclosure_temp_c: None,
        sessions_wifi_max: Some(1),
        sessions_usb_max: Some(0),
        sessions_kiosk_max: None,
        wifi_clients_max: Some(8),
        // +1500, then the reboot: 600 counted from zero, +1500, then the second reboot: 3000.
        rx_increase: Some(6600.0),
        rx_span_ms: Some(60_000),
        tx_increase: Some(300.0 + 200.0 + 300.0 + 900.0),
        tx_span_ms: Some(60_000),
        wifi_started: Some(1 + 1 + 2 + 4),
        usb_started: Some(0),
        kiosk_started: None,
    };
    assert_eq!(got, [minute0.clone(), minute1.clone()]);

    // A range starting mid-bucket: the first sample inside has no predecessor in the range.
    let got = store
        .telemetry_buckets("b1", t(20), t(61), TimeDelta::minutes(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].start, got[0].samples), (t(0), 2));
    assert_eq!((got[0].rx_increase, got[0].rx_span_ms), (Some(1500.0), Some(15_000)));
    assert_eq!((got[1].start, got[1].samples), (t(60), 1));
    assert_eq!(got[1].wifi_started, Some(1));

    // One hour bucket: everything together, aligned to the hour.
    let got = store
        .telemetry_buckets("b1", t(-3600), t(3600), TimeDelta::hours(1))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].start, t(0));
    assert_eq!(got[0].samples, 8);
    assert_eq!(got[0].rx_increase, Some(4500.0 + 6600.0));
    assert_eq!(got[0].rx_span_ms, Some(105_000));
    assert_eq!(got[0].wifi_started, Some(11));
    assert_eq!(got[0].solar_w, agg(45.0, 10.0, 80.0));

    // 7-minute buckets are aligned to the epoch, not to `from`.
    let got = store
        .telemetry_buckets("b1", t(0), t(120), TimeDelta::minutes(7))
        .await
        .unwrap();
    assert_eq!(got.len(), 1);
    let start = got[0].start.timestamp();
    assert_eq!(start % 420, 0);
    assert!(start <= t(0).timestamp() && t(0).timestamp() < start + 420);

    // 15 s buckets: one sample each; the first has no increase.
    let got = store
        .telemetry_buckets("b1", t(0), t(120), TimeDelta::seconds(15))
        .await
        .unwrap();
    assert_eq!(got.len(), 8);
    assert_eq!((got[0].rx_increase, got[0].rx_span_ms), (None, None));
    assert_eq!(got[5].rx_increase, Some(600.0));
    assert_eq!(got[7].rx_increase, Some(3000.0));
}

async fn usage(store: &dyn Store) {
    // b1 and b2 come from `buckets`; b3 reports twice 20 minutes apart: no energy guessed.
    store
        .insert_telemetry(&[
            TelemetryRow {
                solar_w: 100.0,
                rx_bytes: Some(10),
                kiosk_started: Some(5),
                ..telemetry_row("b3", 1, t(0))
            },
            TelemetryRow {
                solar_w: 100.0,
                rx_bytes: Some(70),
                kiosk_started: Some(7),
                ..telemetry_row("b3", 2, t(1200))
            },
        ])
        .await
        .unwrap();
    usage_checks(store).await;
}

async fn usage_checks(store: &dyn Store) {
    let got = store.usage_totals(t(-3600), t(3600)).await.unwrap();
    assert_eq!(
        got.iter().map(|u| u.bench_id.as_str()).collect::<Vec<_>>(),
        ["b1", "b2", "b3"]
    );
    let b1 = &got[0];
    assert_eq!(b1.samples, 8);
    // Trapezoids of 15 s between 10 k and 10 (k+1) W, k = 1..7: 15/3600 × Σ(10k + 5) Wh.
    let expected_wh = 15.0 / 3600.0 * (10.0 * 28.0 + 5.0 * 7.0);
    assert!((b1.solar_wh - expected_wh).abs() < 1e-9, "{}", b1.solar_wh);
    assert_eq!(b1.rx_bytes, 11_100.0);
    assert_eq!(b1.tx_bytes, 2_600.0);
    assert_eq!(b1.sessions_started, 11 + 1);
    let b2 = &got[1];
    assert_eq!(
        (b2.samples, b2.solar_wh, b2.rx_bytes, b2.sessions_started),
        (1, 0.0, 0.0, 0)
    );
    let b3 = &got[2];
    assert_eq!((b3.solar_wh, b3.rx_bytes, b3.sessions_started), (0.0, 60.0, 2));

    // The range bounds the pairs: from 10:00:20, b1's first pair is samples 3 → 4.
    let got = store.usage_totals(t(20), t(3600)).await.unwrap();
    assert_eq!(got[0].rx_bytes, 11_100.0 - 1500.0 - 1500.0);
    assert_eq!(store.usage_totals(t(7200), t(9000)).await.unwrap(), []);
}

fn event(bench: &str, s: i64, state: BenchState, cause: &str) -> StatusEvent {
    StatusEvent {
        bench_id: bench.into(),
        at: t(s),
        state,
        cause: cause.into(),
        fw: None,
        config_version: None,
        until: None,
    }
}

async fn status(store: &dyn Store) {
    let e0 = event("b1", 0, BenchState::Online, "connected");
    let e1 = event("b1", 100, BenchState::Offline, "last_will");
    let e2 = event("b1", 100, BenchState::Online, "connected"); // same instant, inserted later
    let e3 = StatusEvent {
        until: Some(t(900)),
        ..event("b1", 200, BenchState::Sleeping, "announced")
    };
    let f0 = event("b2", -50, BenchState::Offline, "disconnected");
    let f1 = event("b2", 10, BenchState::Online, "connected");
    let g0 = event("b3", 5000, BenchState::Online, "connected");
    for e in [&e0, &f0, &e1, &e2, &g0, &e3, &f1] {
        store.insert_status_event(e).await.unwrap();
    }

    // Pages, newest first, ties by insertion, each page after the previous one's last cursor.
    assert_eq!(store.status_events_page("b1", None, 0).await.unwrap(), []);
    let page1 = store.status_events_page("b1", None, 2).await.unwrap();
    let events = |page: &[(StatusCursor, StatusEvent)]| page.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>();
    assert_eq!(events(&page1), [e3.clone(), e2.clone()]);
    assert_eq!(page1[1].0.at, t(100));
    let page2 = store.status_events_page("b1", Some(page1[1].0), 2).await.unwrap();
    assert_eq!(events(&page2), [e1.clone(), e0.clone()]);
    assert!(
        page2[0].0.id < page1[1].0.id,
        "same `at`: the earlier insert comes after"
    );
    let page3 = store.status_events_page("b1", Some(page2[1].0), 2).await.unwrap();
    assert_eq!(page3, []);
    assert_eq!(store.status_events_page("nobody", None, 10).await.unwrap(), []);

    // History from 10:00:50: b1 starts online (e0), b2 offline (f0); b3's event is after `to`.
    let got = store.status_history(t(50), t(1000)).await.unwrap();
    assert_eq!(got, [e0.clone(), e1.clone(), e2.clone(), e3.clone(), f1.clone()]);
    let got = store.status_history(t(5), t(1000)).await.unwrap();
    assert_eq!(
        got,
        [e0.clone(), e1.clone(), e2.clone(), e3.clone(), f0.clone(), f1.clone()]
    );
    let got = store.status_history(t(100), t(101)).await.unwrap();
    assert_eq!(got, [e0, e1, e2, f1.clone()]);
    let got = store.status_history(t(6000), t(7000)).await.unwrap();
    assert_eq!(got, [e3, f1, g0]);
}

async fn story(store: Arc<dyn Store>) {
    store.migrate().await.unwrap();
    buckets(store.as_ref()).await;
    usage(store.as_ref()).await;
    // The same answers once the minutes are rolled up.
    let later = t(86_400);
    while store.refresh_rollups(later, 1000).await.unwrap() > 0 {}
    bucket_checks(store.as_ref()).await;
    usage_checks(store.as_ref()).await;
    status(store.as_ref()).await;
}

#[tokio::test]
async fn history_on_sqlite() {
    let db = testing::sqlite_database();
    story(connect(db.url(), &StoreSettings::default()).await.unwrap()).await;
}

#[tokio::test]
async fn history_on_postgres() {
    let Some(db) = testing::pg_database().await else {
        return;
    };
    let store = connect(db.url(), &StoreSettings::default()).await.unwrap();
    story(store.clone()).await;
    drop(store);
}
