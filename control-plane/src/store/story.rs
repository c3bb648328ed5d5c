//! The store story: one scenario, told to every backend, asserting exact values.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use protocol::BenchState;

use super::postgres::PgStore;
use super::sqlite::SqliteStore;
use super::testing::{self, telemetry_row};
use super::{Backend, Store, StoreMode, StoreSettings, connect};
use crate::presence::StatusEvent;
use crate::telemetry::{TelemetryRow, TelemetryStore};

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// 2026-11-26T10:00:00.123Z plus `n` minutes.
fn minute(n: i64) -> DateTime<Utc> {
    at("2026-11-26T10:00:00.123Z") + TimeDelta::minutes(n)
}

fn micros(n: i64) -> TimeDelta {
    TimeDelta::microseconds(n)
}

const EVER: (&str, &str) = ("2000-01-01T00:00:00Z", "2100-01-01T00:00:00Z");

/// A sample with every field set, values chosen to catch lossy round trips.
fn full_row(bench_id: &str, seq: i64, ts: DateTime<Utc>) -> TelemetryRow {
    TelemetryRow {
        bench_id: bench_id.to_owned(),
        ts,
        seq,
        received_at: ts + TimeDelta::milliseconds(1_234),
        solar_w: 0.1 + 0.2,
        battery_pct: 100.0 / 3.0,
        battery_v: Some(12.7),
        load_w: Some(f64::MIN_POSITIVE),
        rx_bytes: Some(i64::MAX),
        tx_bytes: Some(0),
        wifi_clients: Some(i32::MAX),
        rssi_dbm: Some(-150),
        sessions_wifi: Some(3),
        sessions_usb: Some(0),
        sessions_kiosk: Some(1),
        wifi_started: Some(1_000_000_000_000),
        usb_started: Some(17),
        kiosk_started: Some(4),
        cpu_temp_c: Some(-40.5),
        enclosure_temp_c: Some(1e-300),
        uptime_s: Some(86_400 * 365),
        disk_free_mb: Some(12_345),
        faults: vec!["battery_failure".into(), r#"door "open" \ ajar"#.into(), "čćžšđ".into()],
    }
}

fn event(bench_id: &str, at: DateTime<Utc>, state: BenchState, cause: &str) -> StatusEvent {
    StatusEvent {
        bench_id: bench_id.into(),
        at,
        state,
        cause: cause.into(),
        fw: None,
        config_version: None,
        until: None,
    }
}

async fn story(store: Arc<dyn Store>, expected_mode: StoreMode) {
    let (ever_from, ever_to) = (at(EVER.0), at(EVER.1));

    store.migrate().await.unwrap();
    store.migrate().await.expect("migrating twice is a no-op");
    assert_eq!(store.mode(), expected_mode);
    store.ping().await.unwrap();

    assert_eq!(store.latest_telemetry().await.unwrap(), []);
    assert_eq!(store.latest_status_events().await.unwrap(), []);
    assert_eq!(store.telemetry("bench-01", ever_from, ever_to).await.unwrap(), []);
    assert_eq!(store.insert_telemetry(&[]).await.unwrap(), 0);

    // Batch 1: six rows, one a repeat of the first sample with other values: the first one wins.
    let a1 = full_row("bench-01", 1, minute(0));
    let a2 = telemetry_row("bench-01", 2, minute(1));
    let a3 = TelemetryRow {
        solar_w: 1850.25,
        battery_pct: 0.0,
        ..full_row("bench-01", 3, minute(2))
    };
    let b1 = telemetry_row("bench-02", 1, minute(0));
    let b2 = TelemetryRow {
        faults: vec!["sensor_stuck".into()],
        ..telemetry_row("bench-02", 2, minute(1))
    };
    let a1_repeat = TelemetryRow {
        solar_w: 999.0,
        faults: Vec::new(),
        ..a1.clone()
    };
    let batch1 = [a1.clone(), a2.clone(), a3.clone(), b1.clone(), a1_repeat, b2.clone()];
    assert_eq!(store.insert_telemetry(&batch1).await.unwrap(), 5);

    // Batch 2 overlaps batch 1: the repeats (other values, received later) are skipped; a reboot
    // restarting seq at 1 is a new sample; b3 shares b2's time with a higher seq.
    let a2_repeat = TelemetryRow {
        received_at: minute(10),
        battery_pct: 1.0,
        ..a2.clone()
    };
    let b2_repeat = TelemetryRow {
        faults: Vec::new(),
        ..b2.clone()
    };
    let a4 = full_row("bench-01", 4, minute(3));
    let a_reboot = telemetry_row("bench-01", 1, minute(4));
    let b3 = telemetry_row("bench-02", 3, minute(1));
    let batch2 = [a2_repeat, a4.clone(), b2_repeat, a_reboot.clone(), b3.clone()];
    assert_eq!(store.insert_telemetry(&batch2).await.unwrap(), 3);
    assert_eq!(
        store.insert_telemetry(&batch2).await.unwrap(),
        0,
        "a batch sent twice adds nothing"
    );

    // Times are kept to the millisecond: digits below are cut off, so a sample differing only
    // there is a repeat.
    let a5_sent = TelemetryRow {
        ts: minute(5) + TimeDelta::nanoseconds(456_789),
        received_at: minute(6) + TimeDelta::nanoseconds(999_999),
        ..telemetry_row("bench-01", 5, minute(5))
    };
    assert_eq!(store.insert_telemetry(std::slice::from_ref(&a5_sent)).await.unwrap(), 1);
    let a5_repeat = TelemetryRow {
        ts: minute(5) + TimeDelta::nanoseconds(1),
        ..a5_sent.clone()
    };
    assert_eq!(store.insert_telemetry(&[a5_repeat]).await.unwrap(), 0);
    let a5 = TelemetryRow {
        ts: minute(5),
        received_at: minute(6),
        ..a5_sent
    };

    // Everything back, exactly, oldest first; same-time samples by seq.
    let bench01 = [a1, a2.clone(), a3.clone(), a4.clone(), a_reboot, a5.clone()];
    assert_eq!(store.telemetry("bench-01", ever_from, ever_to).await.unwrap(), bench01);
    assert_eq!(
        store.telemetry("bench-02", ever_from, ever_to).await.unwrap(),
        [b1, b2, b3.clone()]
    );
    assert_eq!(store.telemetry("bench-99", ever_from, ever_to).await.unwrap(), []);

    // From inclusive, to exclusive, including bounds between stored milliseconds.
    assert_eq!(
        store.telemetry("bench-01", minute(1), minute(3)).await.unwrap(),
        [a2.clone(), a3.clone()]
    );
    assert_eq!(
        store
            .telemetry("bench-01", minute(1) + micros(1), minute(3) + micros(1))
            .await
            .unwrap(),
        [a3.clone(), a4.clone()]
    );
    assert_eq!(
        store
            .telemetry(
                "bench-01",
                minute(1) - TimeDelta::nanoseconds(1),
                minute(1) + TimeDelta::nanoseconds(1)
            )
            .await
            .unwrap(),
        [a2]
    );
    assert_eq!(
        store
            .telemetry(
                "bench-01",
                minute(1) + TimeDelta::nanoseconds(1),
                minute(2) + TimeDelta::nanoseconds(1)
            )
            .await
            .unwrap(),
        [a3]
    );
    assert_eq!(store.telemetry("bench-01", minute(3), minute(3)).await.unwrap(), []);
    assert_eq!(store.telemetry("bench-01", minute(3), minute(2)).await.unwrap(), []);

    // Newest per bench: latest time, then highest seq.
    assert_eq!(store.latest_telemetry().await.unwrap(), [a5, b3]);

    // A batch larger than any single statement a backend prepares, then again with one more row.
    let many: Vec<_> = (0..778)
        .map(|i| telemetry_row("bench-03", i, minute(100) + TimeDelta::seconds(i)))
        .collect();
    assert_eq!(store.insert_telemetry(&many[..777]).await.unwrap(), 777);
    assert_eq!(store.insert_telemetry(&many).await.unwrap(), 1);
    assert_eq!(store.telemetry("bench-03", ever_from, ever_to).await.unwrap(), many);

    // Status events: NULLs, a sleep with its end, a tie on `at` (kept in insertion order),
    // and a time below the millisecond.
    let e1 = StatusEvent {
        fw: Some("1.4.2".into()),
        config_version: Some(i64::MAX),
        ..event("bench-01", minute(0), BenchState::Online, "connected")
    };
    let f1 = event("bench-02", minute(0), BenchState::Online, "connected");
    let e2 = StatusEvent {
        until: Some(minute(90)),
        config_version: Some(7),
        ..event("bench-01", minute(30), BenchState::Sleeping, "announced")
    };
    let e3 = event("bench-01", minute(30), BenchState::Offline, "last_will");
    let f2_sent = event(
        "bench-02",
        minute(5) + micros(999),
        BenchState::Stale,
        "heartbeat_timeout",
    );
    let f2 = event("bench-02", minute(5), BenchState::Stale, "heartbeat_timeout");
    let f3 = event("bench-02", minute(4), BenchState::NeverSeen, "registered");
    for e in [&e1, &f1, &e2, &e3, &f2_sent, &f3] {
        store.insert_status_event(e).await.unwrap();
    }
    assert_eq!(
        store.status_events("bench-01", ever_from, ever_to, 100).await.unwrap(),
        [e1.clone(), e2.clone(), e3.clone()]
    );
    assert_eq!(
        store.status_events("bench-01", ever_from, ever_to, 2).await.unwrap(),
        [e1.clone(), e2.clone()]
    );
    assert_eq!(
        store.status_events("bench-01", ever_from, ever_to, 0).await.unwrap(),
        []
    );
    assert_eq!(
        store
            .status_events("bench-01", minute(0) + micros(1), minute(30), 100)
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        store
            .status_events("bench-01", minute(0), minute(30) + micros(1), 100)
            .await
            .unwrap(),
        [e1, e2, e3.clone()]
    );
    assert_eq!(
        store.status_events("bench-02", ever_from, ever_to, 100).await.unwrap(),
        [f1, f3, f2.clone()]
    );
    assert_eq!(store.latest_status_events().await.unwrap(), [e3, f2]);

    // The registry table follows the fleet, replacing what was there.
    let fleet: Vec<_> = protocol::Fleet::link4().iter().cloned().collect();
    store.sync_benches(&fleet).await.unwrap();
    assert_eq!(store.benches().await.unwrap(), fleet);
    store.sync_benches(&fleet[..2]).await.unwrap();
    let two = store.benches().await.unwrap();
    assert_eq!(two, fleet[..2]);
    assert_eq!(two[0].municipality, "Berkovići");
}

#[tokio::test]
async fn story_on_sqlite() {
    let db = testing::sqlite_database();
    let store = connect(db.url(), &StoreSettings::default()).await.unwrap();
    story(store, StoreMode::Sqlite).await;
}

#[tokio::test]
async fn story_on_sqlite_in_memory() {
    let store = connect("sqlite::memory:", &StoreSettings::default()).await.unwrap();
    story(store, StoreMode::Sqlite).await;
}

#[tokio::test]
async fn story_on_postgres() {
    let Some(db) = testing::pg_database().await else {
        return;
    };
    let pg = PgStore::connect(db.url(), &StoreSettings::default()).await.unwrap();
    let pool = pg.pool().clone();
    let store = Arc::new(Backend::Postgres(pg));
    let available: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')")
            .fetch_one(&pool)
            .await
            .unwrap();
    let expected = if available {
        StoreMode::Timescale
    } else {
        StoreMode::Postgres
    };
    story(store.clone(), expected).await;

    // The mode is the truth about this database, and each mode has its own time index.
    let installed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(installed, store.mode() == StoreMode::Timescale);
    let brin: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_indexes WHERE tablename = 'telemetry' AND indexname = 'telemetry_ts_brin')",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(brin, store.mode() == StoreMode::Postgres);

    // Both newest-per-bench queries agree, whichever one this mode uses.
    let (distinct_on, skip_scan) = store.latest_telemetry_both_ways().await.unwrap();
    assert_eq!(distinct_on.len(), 3);
    assert_eq!(distinct_on, skip_scan);
    assert_eq!(distinct_on, store.latest_telemetry().await.unwrap());
    pool.close().await;
}

#[tokio::test]
async fn sqlite_file_is_created_with_its_directory_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/data/benchfleet.db");
    let url = format!("sqlite://{}", path.display());
    let sqlite = SqliteStore::connect(&url).await.unwrap();
    let pool = sqlite.pool().clone();
    let store = Backend::Sqlite(sqlite);
    store.migrate().await.unwrap();
    assert!(path.exists());

    let journal: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(journal, "wal");
    let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&pool).await.unwrap();
    assert_eq!(synchronous, 1, "NORMAL");
    let foreign_keys: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(foreign_keys, 1);
    let busy_timeout: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(busy_timeout, 10_000);

    let row = full_row("bench-07", 42, minute(0));
    assert_eq!(store.insert_telemetry(std::slice::from_ref(&row)).await.unwrap(), 1);
    pool.close().await;

    let reopened = Backend::Sqlite(SqliteStore::connect(&url).await.unwrap());
    reopened.migrate().await.unwrap();
    assert_eq!(reopened.latest_telemetry().await.unwrap(), [row]);
}

#[tokio::test]
async fn unsupported_urls_are_refused_with_the_password_hidden() {
    let err = connect("mysql://bf:s3cret@db/bf", &StoreSettings::default())
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        r#"unsupported database URL "mysql://bf:***@db/bf": use sqlite://PATH or postgres://…"#
    );
}
