//! Telemetry batches on SQLite: multi-row `INSERT`s inside one transaction.

use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use crate::store::Result;
use crate::store::telemetry::TELEMETRY_COLUMNS;
use crate::store::value::Time;
use crate::telemetry::TelemetryRow;

/// Most rows per INSERT: 23 bound values each stays far below SQLite's 32 766 variable limit.
const MAX_ROWS_PER_STATEMENT: usize = 256;

/// Writes `rows` in one transaction, skipping samples already stored; returns how many were new.
pub(crate) async fn insert(pool: &SqlitePool, rows: &[&TelemetryRow]) -> Result<u64> {
    let mut tx = pool.begin().await?;
    let mut inserted = 0;
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
        inserted += insert.build().execute(&mut *tx).await?.rows_affected();
    }
    tx.commit().await?;
    Ok(inserted)
}
