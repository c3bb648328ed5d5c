//! The SQLite backend: one database file in WAL mode, the embedded default.
//!
//! Times are stored as UTC unix milliseconds (`INTEGER`), so ranges and buckets are integer
//! arithmetic; `faults` is a JSON array in `TEXT`.

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};

use super::series::{self, Dialect};
use super::{
    STATUS_EVENT_COLUMNS, StatusCursor, StatusEvent, Store, StoreMode, TELEMETRY_COLUMNS, TelemetryBucket,
    TelemetryRow, UsageTotals, ceil_to_millis, decode_state,
};
use crate::store::Result;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Readers run in parallel under WAL; writers queue on SQLite's lock anyway.
const MAX_CONNECTIONS: u32 = 4;
/// How long a writer waits for another writer before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Most rows per INSERT: 23 bound values each stays far below SQLite's 32 766 variable limit.
const MAX_ROWS_PER_STATEMENT: usize = 256;

static SELECT_TELEMETRY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TELEMETRY_COLUMNS} FROM telemetry \
         WHERE bench_id = ?1 AND ts >= ?2 AND ts < ?3 ORDER BY ts, seq"
    )
});

// A loose index scan: hop from bench to bench on the primary key, then take each bench's newest
// row, instead of reading every row of every bench.
static LATEST_TELEMETRY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE benches(bench_id) AS ( \
             SELECT min(bench_id) FROM telemetry \
             UNION ALL \
             SELECT (SELECT min(t.bench_id) FROM telemetry t WHERE t.bench_id > benches.bench_id) \
             FROM benches WHERE benches.bench_id IS NOT NULL \
         ) \
         SELECT {TELEMETRY_COLUMNS} FROM telemetry WHERE rowid IN ( \
             SELECT (SELECT t.rowid FROM telemetry t WHERE t.bench_id = benches.bench_id \
                     ORDER BY t.ts DESC, t.seq DESC LIMIT 1) \
             FROM benches WHERE benches.bench_id IS NOT NULL \
         ) \
         ORDER BY bench_id"
    )
});

static INSERT_STATUS_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO bench_status_events ({STATUS_EVENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
});

static SELECT_STATUS_EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {STATUS_EVENT_COLUMNS} FROM bench_status_events \
         WHERE bench_id = ?1 AND at >= ?2 AND at < ?3 ORDER BY at, id LIMIT ?4"
    )
});

static LATEST_STATUS_EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE benches(bench_id) AS ( \
             SELECT min(bench_id) FROM bench_status_events \
             UNION ALL \
             SELECT (SELECT min(e.bench_id) FROM bench_status_events e WHERE e.bench_id > benches.bench_id) \
             FROM benches WHERE benches.bench_id IS NOT NULL \
         ) \
         SELECT {STATUS_EVENT_COLUMNS} FROM bench_status_events WHERE id IN ( \
             SELECT (SELECT e.id FROM bench_status_events e WHERE e.bench_id = benches.bench_id \
                     ORDER BY e.at DESC, e.id DESC LIMIT 1) \
             FROM benches WHERE benches.bench_id IS NOT NULL \
         ) \
         ORDER BY bench_id"
    )
});

static STATUS_PAGE_FIRST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, {STATUS_EVENT_COLUMNS} FROM bench_status_events \
         WHERE bench_id = ?1 ORDER BY at DESC, id DESC LIMIT ?2"
    )
});

static STATUS_PAGE_AFTER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, {STATUS_EVENT_COLUMNS} FROM bench_status_events \
         WHERE bench_id = ?1 AND (at, id) < (?2, ?3) ORDER BY at DESC, id DESC LIMIT ?4"
    )
});

// Each bench's newest event before the period (row_number, as SQLite has no DISTINCT ON), then
// the period's events; ties on `at` in insertion (id) order.
static STATUS_HISTORY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {STATUS_EVENT_COLUMNS} FROM ( \
             SELECT id, {STATUS_EVENT_COLUMNS} FROM ( \
                 SELECT id, {STATUS_EVENT_COLUMNS}, \
                        row_number() OVER (PARTITION BY bench_id ORDER BY at DESC, id DESC) AS newest \
                 FROM bench_status_events WHERE at < ?1 \
             ) AS before WHERE newest = 1 \
             UNION ALL \
             SELECT id, {STATUS_EVENT_COLUMNS} FROM bench_status_events WHERE at >= ?1 AND at < ?2 \
         ) AS h ORDER BY bench_id, at, id"
    )
});

static BUCKETS: LazyLock<String> = LazyLock::new(|| series::buckets_sql(Dialect::Sqlite));
static USAGE: LazyLock<String> = LazyLock::new(|| series::usage_sql(Dialect::Sqlite));

/// The store on an SQLite file (`sqlite://PATH`, or `sqlite::memory:` for throwaway use).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens the database, creating the file and its parent directories if missing, in WAL mode
    /// with `synchronous=NORMAL`, a busy timeout and foreign keys on. Does not migrate.
    pub async fn connect(url: &str) -> Result<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT)
            .foreign_keys(true);
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            // An in-memory database lives as long as its connections: keep exactly one.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            if let Some(dir) = options.get_filename().parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir).await.map_err(sqlx::Error::Io)?;
            }
            SqlitePoolOptions::new().max_connections(MAX_CONNECTIONS)
        }
        .connect_with(options)
        .await?;
        Ok(Self { pool })
    }

    /// The underlying pool, for tests that look behind the trait.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn mode(&self) -> StoreMode {
        StoreMode::Sqlite
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_telemetry(&self, rows: &[TelemetryRow]) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let mut tx = self.pool.begin().await?;
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
                    .push_bind(millis(row.ts))
                    .push_bind(row.seq)
                    .push_bind(millis(row.received_at))
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
                    .push_bind(faults_json(&row.faults));
            });
            // Not `INSERT OR IGNORE`: that would also drop rows breaking NOT NULL silently.
            insert.push(" ON CONFLICT DO NOTHING");
            inserted += insert.build().execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(inserted)
    }

    async fn telemetry(&self, bench_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<TelemetryRow>> {
        let rows = sqlx::query(&SELECT_TELEMETRY)
            .bind(bench_id)
            .bind(bound(from))
            .bind(bound(to))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(telemetry_from_row).collect::<Result<_, _>>()?)
    }

    async fn latest_telemetry(&self) -> Result<Vec<TelemetryRow>> {
        let rows = sqlx::query(&LATEST_TELEMETRY).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(telemetry_from_row).collect::<Result<_, _>>()?)
    }

    async fn insert_status_event(&self, event: &StatusEvent) -> Result<()> {
        sqlx::query(&INSERT_STATUS_EVENT)
            .bind(&event.bench_id)
            .bind(millis(event.at))
            .bind(event.state.as_str())
            .bind(&event.cause)
            .bind(&event.fw)
            .bind(event.config_version)
            .bind(event.until.map(millis))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn status_events(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StatusEvent>> {
        let rows = sqlx::query(&SELECT_STATUS_EVENTS)
            .bind(bench_id)
            .bind(bound(from))
            .bind(bound(to))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(status_event_from_row).collect::<Result<_, _>>()?)
    }

    async fn latest_status_events(&self) -> Result<Vec<StatusEvent>> {
        let rows = sqlx::query(&LATEST_STATUS_EVENTS).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(status_event_from_row).collect::<Result<_, _>>()?)
    }

    async fn status_events_page(
        &self,
        bench_id: &str,
        before: Option<StatusCursor>,
        limit: u32,
    ) -> Result<Vec<(StatusCursor, StatusEvent)>> {
        let rows = match before {
            None => {
                sqlx::query(&STATUS_PAGE_FIRST)
                    .bind(bench_id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
            Some(c) => {
                sqlx::query(&STATUS_PAGE_AFTER)
                    .bind(bench_id)
                    .bind(millis(c.at))
                    .bind(c.id)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows
            .iter()
            .map(|row| {
                let event = status_event_from_row(row)?;
                let cursor = StatusCursor {
                    at: event.at,
                    id: row.try_get("id")?,
                };
                Ok::<_, sqlx::Error>((cursor, event))
            })
            .collect::<Result<_, _>>()?)
    }

    async fn status_history(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<StatusEvent>> {
        let rows = sqlx::query(&STATUS_HISTORY)
            .bind(bound(from))
            .bind(bound(to))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(status_event_from_row).collect::<Result<_, _>>()?)
    }

    async fn telemetry_buckets(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: TimeDelta,
    ) -> Result<Vec<TelemetryBucket>> {
        let rows = sqlx::query(&BUCKETS)
            .bind(bench_id)
            .bind(bound(from))
            .bind(bound(to))
            .bind(bucket.num_milliseconds().max(1))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| series::bucket_from_row(row, time_from_millis(row.try_get("bucket")?)?))
            .collect::<Result<_, _>>()?)
    }

    async fn usage_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageTotals>> {
        let rows = sqlx::query(&USAGE)
            .bind(bound(from))
            .bind(bound(to))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(series::usage_from_row).collect::<Result<_, _>>()?)
    }

    async fn sync_benches(&self, fleet: &[protocol::BenchInfo]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM benches").execute(&mut *tx).await?;
        for b in fleet {
            sqlx::query("INSERT INTO benches (id, name, municipality, lat, lon, telemetry_interval_s) VALUES (?, ?, ?, ?, ?, ?)")
                .bind(b.id.as_str())
                .bind(&b.name)
                .bind(&b.municipality)
                .bind(b.location.lat)
                .bind(b.location.lon)
                .bind(i64::from(b.telemetry_interval_s))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn benches(&self) -> Result<Vec<protocol::BenchInfo>> {
        let rows: Vec<(String, String, String, f64, f64, i64)> = sqlx::query_as(
            "SELECT id, name, municipality, lat, lon, CAST(telemetry_interval_s AS BIGINT) FROM benches ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, name, municipality, lat, lon, interval)| {
                Ok(protocol::BenchInfo {
                    id: protocol::BenchId::parse(&id).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                    name,
                    municipality,
                    location: protocol::fleet::Location { lat, lon },
                    telemetry_interval_s: u32::try_from(interval).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                })
            })
            .collect()
    }
}

/// A time as stored: unix milliseconds, rounded down.
fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// A query bound as stored, rounded up (see [`ceil_to_millis`]).
fn bound(t: DateTime<Utc>) -> i64 {
    ceil_to_millis(t).timestamp_millis()
}

fn time_from_millis(ms: i64) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| sqlx::Error::Decode(format!("{ms} ms is outside the supported time range").into()))
}

fn faults_json(faults: &[String]) -> String {
    serde_json::Value::from(faults).to_string()
}

fn telemetry_from_row(row: &SqliteRow) -> Result<TelemetryRow, sqlx::Error> {
    let faults: &str = row.try_get("faults")?;
    Ok(TelemetryRow {
        bench_id: row.try_get("bench_id")?,
        ts: time_from_millis(row.try_get("ts")?)?,
        seq: row.try_get("seq")?,
        received_at: time_from_millis(row.try_get("received_at")?)?,
        solar_w: row.try_get("solar_w")?,
        battery_pct: row.try_get("battery_pct")?,
        battery_v: row.try_get("battery_v")?,
        load_w: row.try_get("load_w")?,
        rx_bytes: row.try_get("rx_bytes")?,
        tx_bytes: row.try_get("tx_bytes")?,
        wifi_clients: row.try_get("wifi_clients")?,
        rssi_dbm: row.try_get("rssi_dbm")?,
        sessions_wifi: row.try_get("sessions_wifi")?,
        sessions_usb: row.try_get("sessions_usb")?,
        sessions_kiosk: row.try_get("sessions_kiosk")?,
        wifi_started: row.try_get("wifi_started")?,
        usb_started: row.try_get("usb_started")?,
        kiosk_started: row.try_get("kiosk_started")?,
        cpu_temp_c: row.try_get("cpu_temp_c")?,
        enclosure_temp_c: row.try_get("enclosure_temp_c")?,
        uptime_s: row.try_get("uptime_s")?,
        disk_free_mb: row.try_get("disk_free_mb")?,
        faults: serde_json::from_str(faults).map_err(|e| sqlx::Error::Decode(e.into()))?,
    })
}

fn status_event_from_row(row: &SqliteRow) -> Result<StatusEvent, sqlx::Error> {
    Ok(StatusEvent {
        bench_id: row.try_get("bench_id")?,
        at: time_from_millis(row.try_get("at")?)?,
        state: decode_state(row.try_get("state")?)?,
        cause: row.try_get("cause")?,
        fw: row.try_get("fw")?,
        config_version: row.try_get("config_version")?,
        until: row
            .try_get::<Option<i64>, _>("until")?
            .map(time_from_millis)
            .transpose()?,
    })
}
