//! Telemetry batches on PostgreSQL: one `INSERT … SELECT FROM UNNEST` per batch, every column
//! travelling as one array parameter, and in the same transaction the marks of the minutes that
//! got new samples, for the rollups (`store/rollup.rs`).

use std::sync::LazyLock;

use chrono::DateTime;
use sqlx::PgPool;

use crate::store::Result;
use crate::store::rollup::minute_of;
use crate::store::telemetry::TELEMETRY_COLUMNS;
use crate::store::value::Time;
use crate::telemetry::TelemetryRow;

static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO telemetry ({TELEMETRY_COLUMNS}) \
         SELECT bench_id, ts, seq, received_at, solar_w, battery_pct, battery_v, load_w, rx_bytes, \
                tx_bytes, wifi_clients, rssi_dbm, sessions_wifi, sessions_usb, sessions_kiosk, \
                wifi_started, usb_started, kiosk_started, cpu_temp_c, enclosure_temp_c, uptime_s, \
                disk_free_mb, faults::jsonb \
         FROM UNNEST($1::text[], $2::timestamptz[], $3::bigint[], $4::timestamptz[], \
                     $5::float8[], $6::float8[], $7::float8[], $8::float8[], $9::bigint[], \
                     $10::bigint[], $11::integer[], $12::integer[], $13::integer[], $14::integer[], \
                     $15::integer[], $16::bigint[], $17::bigint[], $18::bigint[], $19::float8[], \
                     $20::float8[], $21::bigint[], $22::bigint[], $23::text[]) \
              AS u({TELEMETRY_COLUMNS}) \
         ON CONFLICT DO NOTHING"
    )
});

// In key order, so two writers could never deadlock on them.
const MARK: &str = "INSERT INTO telemetry_dirty_minutes (bench_id, minute) \
     SELECT * FROM UNNEST($1::text[], $2::timestamptz[]) \
     ON CONFLICT (bench_id, minute) DO UPDATE SET version = telemetry_dirty_minutes.version + 1";

/// Writes `rows` (in key order) in one statement, skipping samples already stored, and marks the
/// minutes that got new ones; returns how many were new.
pub(crate) async fn insert(pool: &PgPool, rows: &[&TelemetryRow]) -> Result<u64> {
    fn column<T>(rows: &[&TelemetryRow], f: impl Fn(&TelemetryRow) -> T) -> Vec<T> {
        rows.iter().map(|r| f(r)).collect()
    }
    let mut tx = pool.begin().await?;
    let result = sqlx::query(&INSERT)
        .bind(column(rows, |r| r.bench_id.clone()))
        .bind(column(rows, |r| Time::stored(r.ts)))
        .bind(column(rows, |r| r.seq))
        .bind(column(rows, |r| Time::stored(r.received_at)))
        .bind(column(rows, |r| r.solar_w))
        .bind(column(rows, |r| r.battery_pct))
        .bind(column(rows, |r| r.battery_v))
        .bind(column(rows, |r| r.load_w))
        .bind(column(rows, |r| r.rx_bytes))
        .bind(column(rows, |r| r.tx_bytes))
        .bind(column(rows, |r| r.wifi_clients))
        .bind(column(rows, |r| r.rssi_dbm))
        .bind(column(rows, |r| r.sessions_wifi))
        .bind(column(rows, |r| r.sessions_usb))
        .bind(column(rows, |r| r.sessions_kiosk))
        .bind(column(rows, |r| r.wifi_started))
        .bind(column(rows, |r| r.usb_started))
        .bind(column(rows, |r| r.kiosk_started))
        .bind(column(rows, |r| r.cpu_temp_c))
        .bind(column(rows, |r| r.enclosure_temp_c))
        .bind(column(rows, |r| r.uptime_s))
        .bind(column(rows, |r| r.disk_free_mb))
        // JSON text, cast to `jsonb` in the statement.
        .bind(column(rows, |r| {
            serde_json::Value::from(r.faults.as_slice()).to_string()
        }))
        .execute(&mut *tx)
        .await?;
    let inserted = result.rows_affected();
    // A batch of repeats marks nothing. A batch with some new rows marks the minutes of all its
    // rows: `RETURNING` would say which were new, but cost about a tenth of the throughput, and a
    // minute marked needlessly is only recomputed once more, never counted twice.
    if inserted > 0 {
        let mut benches: Vec<&str> = Vec::new();
        let mut minutes: Vec<Time> = Vec::new();
        let mut last: Option<(&str, i64)> = None;
        for row in rows {
            let key = (row.bench_id.as_str(), minute_of(row.ts.timestamp_millis()));
            if last != Some(key) {
                last = Some(key);
                benches.push(key.0);
                minutes.push(Time::stored(DateTime::from_timestamp_millis(key.1).unwrap_or(row.ts)));
            }
        }
        sqlx::query(MARK).bind(benches).bind(minutes).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(inserted)
}
