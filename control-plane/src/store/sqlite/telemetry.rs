//! Telemetry batches on SQLite: multi-row `INSERT`s inside one transaction, which also marks the
//! minutes that got new samples for the rollups (`store/rollup.rs`).

use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::store::Result;
use crate::store::rollup::minute_of;
use crate::store::telemetry::TELEMETRY_COLUMNS;
use crate::store::value::Time;
use crate::telemetry::TelemetryRow;

/// Most rows per INSERT: 23 bound values each stays far below SQLite's 32 766 variable limit.
const MAX_ROWS_PER_STATEMENT: usize = 256;

/// Most marks per statement (two bound values each).
const MAX_MARKS_PER_STATEMENT: usize = 1024;

/// Writes `rows` (in key order) in one transaction, skipping samples already stored, and marks
/// the minutes that got new ones; returns how many were new.
pub(crate) async fn insert(pool: &SqlitePool, rows: &[&TelemetryRow]) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let mut inserted = 0;
    let mut minutes: Vec<(&str, i64)> = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        // Statements of power-of-two sizes only: each prepared statement is cached per
        // connection, and batches of every size would fill the cache with big ones.
        let n = 1 << rest.len().min(MAX_ROWS_PER_STATEMENT).ilog2();
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let mut insert = QueryBuilder::<Sqlite>::new(format!("INSERT INTO telemetry ({TELEMETRY_COLUMNS}) "));
        insert.push_values(chunk, |mut values, row| {
            values
                .push_bind(&row.bench_id)
                .push_bind(Time::stored(row.ts))
                .push_bind(row.seq)
                .push_bind(Time::stored(row.received_at))
                .push_bind(row.solar_w)
                .push_bind(row.battery_pct)
                .push_bind(row.battery_v)
                .push_bind(row.load_w)
                .push_bind(row.rx_bytes)
                .push_bind(row.tx_bytes)
                .push_bind(row.wifi_clients)
                .push_bind(row.rssi_dbm)
                .push_bind(row.sessions_wifi)
                .push_bind(row.sessions_usb)
                .push_bind(row.sessions_kiosk)
                .push_bind(row.wifi_started)
                .push_bind(row.usb_started)
                .push_bind(row.kiosk_started)
                .push_bind(row.cpu_temp_c)
                .push_bind(row.enclosure_temp_c)
                .push_bind(row.uptime_s)
                .push_bind(row.disk_free_mb)
                .push_bind(Json(&row.faults));
        });
        // Not `INSERT OR IGNORE`: that would also drop rows breaking NOT NULL silently.
        insert.push(" ON CONFLICT DO NOTHING");
        let new = insert.build().execute(&mut *tx).await?.rows_affected();
        inserted += new;
        // A chunk of repeats marks nothing. A chunk with some new rows marks the minutes of all
        // its rows: `RETURNING` would say which were new, but costs a third of the throughput
        // (sqlx hands over each returned row on its own), and a minute marked needlessly is
        // only recomputed once more, never counted twice.
        if new > 0 {
            for row in chunk {
                let key = (row.bench_id.as_str(), minute_of(row.ts.timestamp_millis()));
                if minutes.last() != Some(&key) {
                    minutes.push(key);
                }
            }
        }
    }
    // Rows come in key order, so each chunk's minutes are in order; chunks may repeat a minute.
    minutes.sort_unstable();
    minutes.dedup();
    for chunk in minutes.chunks(MAX_MARKS_PER_STATEMENT) {
        let mut mark = QueryBuilder::<Sqlite>::new("INSERT INTO telemetry_dirty_minutes (bench_id, minute) ");
        mark.push_values(chunk, |mut values, (bench, minute)| {
            values.push_bind(*bench).push_bind(*minute);
        });
        mark.push(" ON CONFLICT (bench_id, minute) DO UPDATE SET version = telemetry_dirty_minutes.version + 1");
        mark.build().execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(inserted)
}
