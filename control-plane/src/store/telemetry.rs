//! Telemetry samples (`telemetry`): [`TelemetryStore`] on both databases.
//!
//! Reads are written once; the bulk insert is each backend's own (`sqlite/telemetry.rs`,
//! `postgres/telemetry.rs`), and "the newest sample per bench" is one statement per dialect.
//! Buckets of whole minutes and usage totals read the per-minute rollups (`rollup.rs`) where
//! they are up to date and raw samples elsewhere; other buckets read raw samples only.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

use super::rollup::{self, MINUTE_MS, RollupBounds};
use super::value::Time;
use super::{Backend, Dialect, Result, on_pool, postgres, series, sqlite};
use crate::telemetry::{TelemetryBucket, TelemetryRow, TelemetryStore, UsageTotals};

/// The telemetry columns in [`TelemetryRow`] field order, for INSERT and SELECT lists.
pub(super) const TELEMETRY_COLUMNS: &str = "bench_id, ts, seq, received_at, solar_w, battery_pct, \
     battery_v, load_w, rx_bytes, tx_bytes, wifi_clients, rssi_dbm, sessions_wifi, sessions_usb, \
     sessions_kiosk, wifi_started, usb_started, kiosk_started, cpu_temp_c, enclosure_temp_c, \
     uptime_s, disk_free_mb, faults";

static SELECT_TELEMETRY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TELEMETRY_COLUMNS} FROM telemetry \
         WHERE bench_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts, seq"
    )
});

// SQLite: a loose index scan, hopping from bench to bench on the primary key, then each bench's
// newest row, instead of reading every row of every bench.
static LATEST_SQLITE: LazyLock<String> = LazyLock::new(|| {
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

// TimescaleDB's SkipScan runs DISTINCT ON as a hop from bench to bench over the index.
static LATEST_DISTINCT_ON: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT DISTINCT ON (bench_id) {TELEMETRY_COLUMNS} FROM telemetry \
         ORDER BY bench_id, ts DESC, seq DESC"
    )
});

// Plain PostgreSQL has no SkipScan and reads the whole table for DISTINCT ON; this loose index
// scan hops from bench to bench on the primary key instead (12 benches, 1.2 M rows: 0.4 ms
// against 1.3 s for DISTINCT ON).
static LATEST_SKIP_SCAN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE benches(bench_id) AS ( \
             (SELECT bench_id FROM telemetry ORDER BY bench_id LIMIT 1) \
             UNION ALL \
             SELECT (SELECT t.bench_id FROM telemetry t WHERE t.bench_id > b.bench_id \
                     ORDER BY t.bench_id LIMIT 1) \
             FROM benches b WHERE b.bench_id IS NOT NULL \
         ) \
         SELECT latest.* FROM benches b CROSS JOIN LATERAL ( \
             SELECT {TELEMETRY_COLUMNS} FROM telemetry t WHERE t.bench_id = b.bench_id \
             ORDER BY t.ts DESC, t.seq DESC LIMIT 1 \
         ) latest \
         ORDER BY latest.bench_id"
    )
});

static BUCKETS_SQLITE: LazyLock<String> = LazyLock::new(|| series::buckets_sql(Dialect::Sqlite));
static BUCKETS_DATE_BIN: LazyLock<String> = LazyLock::new(|| series::buckets_sql(Dialect::Postgres));
static BUCKETS_TIME_BUCKET: LazyLock<String> = LazyLock::new(|| series::buckets_sql(Dialect::Timescale));
#[cfg(test)]
static USAGE_SQLITE: LazyLock<String> = LazyLock::new(|| series::usage_sql(Dialect::Sqlite));
#[cfg(test)]
static USAGE_POSTGRES: LazyLock<String> = LazyLock::new(|| series::usage_sql(Dialect::Postgres));

impl Backend {
    async fn latest_telemetry_with(&self, sql: &str) -> Result<Vec<TelemetryRow>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await?))
    }

    /// Time buckets from raw samples only.
    pub(crate) async fn telemetry_buckets_raw(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: TimeDelta,
    ) -> Result<Vec<TelemetryBucket>> {
        let sql: &str = match self.dialect() {
            Dialect::Sqlite => &BUCKETS_SQLITE,
            Dialect::Postgres => &BUCKETS_DATE_BIN,
            Dialect::Timescale => &BUCKETS_TIME_BUCKET,
        };
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(bench_id)
                .bind(Time::bound(from))
                .bind(Time::bound(to))
                .bind(bucket.num_milliseconds().max(1))
                .fetch_all(pool)
                .await?;
            rows.iter().map(series::bucket_from_row).collect::<Result<_, _>>()?
        }))
    }

    /// Time buckets of whole minutes, from the rollups where they are up to date.
    async fn telemetry_buckets_rolled(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        width_ms: i64,
    ) -> Result<Vec<TelemetryBucket>> {
        let sql: &str = match self.dialect() {
            Dialect::Sqlite => &rollup::BUCKETS_SQLITE,
            Dialect::Postgres => &rollup::BUCKETS_POSTGRES,
            Dialect::Timescale => &rollup::BUCKETS_TIMESCALE,
        };
        let b = RollupBounds::new(Time::bound(from), Time::bound(to));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(bench_id)
                .bind(b.from)
                .bind(b.to)
                .bind(width_ms)
                .bind(b.lo)
                .bind(b.hi)
                .bind(b.floor)
                .fetch_all(pool)
                .await?;
            rows.iter().map(series::bucket_from_row).collect::<Result<_, _>>()?
        }))
    }

    /// Usage totals from raw samples only: what the rollup path must answer (tests).
    #[cfg(test)]
    pub(crate) async fn usage_totals_raw(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageTotals>> {
        let sql: &str = match self.dialect() {
            Dialect::Sqlite => &USAGE_SQLITE,
            Dialect::Postgres | Dialect::Timescale => &USAGE_POSTGRES,
        };
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(Time::bound(from))
                .bind(Time::bound(to))
                .fetch_all(pool)
                .await?;
            rows.iter().map(series::usage_from_row).collect::<Result<_, _>>()?
        }))
    }

    /// Both ways PostgreSQL finds the newest sample per bench (DISTINCT ON, skip scan), for
    /// tests that check they agree.
    #[cfg(test)]
    pub(crate) async fn latest_telemetry_both_ways(&self) -> Result<(Vec<TelemetryRow>, Vec<TelemetryRow>)> {
        Ok((
            self.latest_telemetry_with(&LATEST_DISTINCT_ON).await?,
            self.latest_telemetry_with(&LATEST_SKIP_SCAN).await?,
        ))
    }
}

#[async_trait]
impl TelemetryStore for Backend {
    async fn insert_telemetry(&self, rows: &[TelemetryRow]) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        // In key order, each index page is visited once per batch and in sequence instead of
        // once per arriving sample (a batch interleaves every bench): about 1.5× the rows/s on
        // SQLite with a few hundred benches.
        let mut sorted: Vec<&TelemetryRow> = rows.iter().collect();
        sorted.sort_unstable_by(|a, b| (&a.bench_id, a.ts, a.seq).cmp(&(&b.bench_id, b.ts, b.seq)));
        match self {
            Self::Sqlite(s) => sqlite::telemetry::insert(&s.pool, &sorted).await,
            Self::Postgres(pg) => postgres::telemetry::insert(&pg.pool, &sorted).await,
        }
    }

    async fn telemetry(&self, bench_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<TelemetryRow>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(&SELECT_TELEMETRY)
                .bind(bench_id)
                .bind(Time::bound(from))
                .bind(Time::bound(to))
                .fetch_all(pool)
                .await?
        }))
    }

    async fn latest_telemetry(&self) -> Result<Vec<TelemetryRow>> {
        let sql: &str = match self.dialect() {
            Dialect::Sqlite => &LATEST_SQLITE,
            Dialect::Postgres => &LATEST_SKIP_SCAN,
            Dialect::Timescale => &LATEST_DISTINCT_ON,
        };
        self.latest_telemetry_with(sql).await
    }

    async fn telemetry_buckets(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: TimeDelta,
    ) -> Result<Vec<TelemetryBucket>> {
        let width_ms = bucket.num_milliseconds().max(1);
        if width_ms % MINUTE_MS == 0 {
            self.telemetry_buckets_rolled(bench_id, from, to, width_ms).await
        } else {
            self.telemetry_buckets_raw(bench_id, from, to, bucket).await
        }
    }

    async fn usage_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageTotals>> {
        let sql: &str = match self.dialect() {
            Dialect::Sqlite => &rollup::USAGE_SQLITE,
            Dialect::Postgres | Dialect::Timescale => &rollup::USAGE_POSTGRES,
        };
        let b = RollupBounds::new(Time::bound(from), Time::bound(to));
        Ok(on_pool!(self, |pool| {
            let rows = sqlx::query(sql)
                .bind(b.from)
                .bind(b.to)
                .bind(b.lo)
                .bind(b.hi)
                .bind(b.floor)
                .fetch_all(pool)
                .await?;
            rows.iter().map(series::usage_from_row).collect::<Result<_, _>>()?
        }))
    }

    async fn refresh_rollups(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        self.refresh_rollup_marks(now, limit).await
    }
}

impl<'r, R: Row> FromRow<'r, R> for TelemetryRow
where
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    f64: Decode<'r, R::Database> + Type<R::Database>,
    Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i32>: Decode<'r, R::Database> + Type<R::Database>,
    Json<Vec<String>>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            bench_id: row.try_get("bench_id")?,
            ts: row.try_get::<Time, _>("ts")?.0,
            seq: row.try_get("seq")?,
            received_at: row.try_get::<Time, _>("received_at")?.0,
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
            faults: row.try_get::<Json<Vec<String>>, _>("faults")?.0,
        })
    }
}
