//! The PostgreSQL backend, with TimescaleDB when the extension can be created.
//!
//! The sqlx migrations create the same plain schema everywhere. [`PgStore::migrate`] then tries
//! `CREATE EXTENSION timescaledb`: if it is (or already was) installed, `telemetry` becomes a
//! hypertable with compression and retention policies (TimescaleDB 2.13 or newer); otherwise it
//! stays a plain table with a BRIN index on `ts`. [`Store::mode`] says which one it is.

use std::str::FromStr;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Executor, Row};
use tracing::{info, warn};

use super::series::{self, Dialect};
use super::{
    OTA_BENCH_COLUMNS, OTA_BENCH_UPDATE, OtaStore, PresenceStore, RoutingStore, STATUS_EVENT_COLUMNS, StatusCursor,
    StatusEvent, Store, StoreMode, StoreOptions, TELEMETRY_COLUMNS, TelemetryBucket, TelemetryRow, TelemetryStore,
    UsageTotals, ceil_to_millis, decode_state, ota_i64, ota_u64, truncate_to_millis,
};
use crate::ota::{AuditEntry, BenchConfigRecord, DeliveryState, IssuedVersion, LayerRecord, OtaWrite, Rollout, Scope};
use crate::routing::{
    IdeaCount, IdeaEvent, IdeaFilter, IdeaRecord, Organisation, RoutingAudit, RoutingWrite, RuleSetRecord,
};
use crate::store::Result;

mod routing;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// One chunk per week: a 12-bench fleet writes a few MB a week, a 1 000-bench load test ~1 GB.
const CHUNK_INTERVAL_DAYS: u32 = 7;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

static INSERT_TELEMETRY: LazyLock<String> = LazyLock::new(|| {
    // One statement per batch: every column travels as one array parameter.
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

static SELECT_TELEMETRY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {TELEMETRY_COLUMNS} FROM telemetry \
         WHERE bench_id = $1 AND ts >= $2 AND ts < $3 ORDER BY ts, seq"
    )
});

// TimescaleDB's SkipScan runs DISTINCT ON as a hop from bench to bench over the index.
static LATEST_TELEMETRY_DISTINCT_ON: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT DISTINCT ON (bench_id) {TELEMETRY_COLUMNS} FROM telemetry \
         ORDER BY bench_id, ts DESC, seq DESC"
    )
});

// Plain PostgreSQL has no SkipScan and reads the whole table for DISTINCT ON; this loose index
// scan hops from bench to bench on the primary key instead (12 benches, 1.2 M rows: 0.4 ms
// against 1.3 s for DISTINCT ON).
static LATEST_TELEMETRY_SKIP_SCAN: LazyLock<String> = LazyLock::new(|| {
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

static INSERT_STATUS_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!("INSERT INTO bench_status_events ({STATUS_EVENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)")
});

static SELECT_STATUS_EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {STATUS_EVENT_COLUMNS} FROM bench_status_events \
         WHERE bench_id = $1 AND at >= $2 AND at < $3 ORDER BY at, id LIMIT $4"
    )
});

static LATEST_STATUS_EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT DISTINCT ON (bench_id) {STATUS_EVENT_COLUMNS} FROM bench_status_events \
         ORDER BY bench_id, at DESC, id DESC"
    )
});

static STATUS_PAGE_FIRST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, {STATUS_EVENT_COLUMNS} FROM bench_status_events \
         WHERE bench_id = $1 ORDER BY at DESC, id DESC LIMIT $2"
    )
});

static STATUS_PAGE_AFTER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, {STATUS_EVENT_COLUMNS} FROM bench_status_events \
         WHERE bench_id = $1 AND (at, id) < ($2, $3) ORDER BY at DESC, id DESC LIMIT $4"
    )
});

// Each bench's newest event before the period, then the period's events; ties on `at` in
// insertion (id) order.
static STATUS_HISTORY: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {STATUS_EVENT_COLUMNS} FROM ( \
             (SELECT DISTINCT ON (bench_id) id, {STATUS_EVENT_COLUMNS} FROM bench_status_events \
              WHERE at < $1 ORDER BY bench_id, at DESC, id DESC) \
             UNION ALL \
             SELECT id, {STATUS_EVENT_COLUMNS} FROM bench_status_events WHERE at >= $1 AND at < $2 \
         ) AS h ORDER BY bench_id, at, id"
    )
});

static BUCKETS_DATE_BIN: LazyLock<String> = LazyLock::new(|| series::buckets_sql(Dialect::Postgres));
static BUCKETS_TIME_BUCKET: LazyLock<String> = LazyLock::new(|| series::buckets_sql(Dialect::Timescale));
static USAGE: LazyLock<String> = LazyLock::new(|| series::usage_sql(Dialect::Postgres));

/// The store on PostgreSQL (`postgres://…`), TimescaleDB or plain.
#[derive(Debug)]
pub struct PgStore {
    pool: PgPool,
    options: StoreOptions,
    /// Whether the `timescaledb` extension is installed in this database.
    timescale: AtomicBool,
}

impl PgStore {
    /// Opens a pool of at most `options.max_connections` and checks the database answers. Does
    /// not migrate; [`Store::mode`] reflects whether TimescaleDB is already installed.
    pub async fn connect(url: &str, options: &StoreOptions) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url)?.application_name("benchfleet-control-plane");
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(connect)
            .await?;
        let store = Self {
            pool,
            options: options.clone(),
            timescale: AtomicBool::new(false),
        };
        let installed = store.timescale_installed().await?;
        store.timescale.store(installed, Ordering::Relaxed);
        Ok(store)
    }

    /// The underlying pool, for tests that look behind the trait.
    #[cfg(test)]
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    async fn timescale_installed(&self) -> Result<bool> {
        let installed = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')")
            .fetch_one(&self.pool)
            .await?;
        Ok(installed)
    }

    /// Tries to install TimescaleDB and says whether it is installed now.
    async fn try_create_timescale(&self) -> Result<bool> {
        // Its own autocommit statement, so a failure cannot abort any surrounding transaction.
        match self.pool.execute("CREATE EXTENSION IF NOT EXISTS timescaledb").await {
            Ok(_) => {}
            Err(sqlx::Error::Database(e)) => {
                let available: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')",
                )
                .fetch_one(&self.pool)
                .await?;
                if available {
                    // Installed on the server but not creatable: usually shared_preload_libraries
                    // or missing privileges. Worth an operator's attention.
                    warn!(error = %e, "TimescaleDB is available but could not be created; using plain PostgreSQL");
                } else {
                    info!("TimescaleDB is not installed on this server; using plain PostgreSQL");
                }
            }
            Err(e) => return Err(e.into()),
        }
        self.timescale_installed().await
    }

    /// Hypertable, compression and retention; every step is a no-op when already done.
    async fn apply_timescale(&self) -> Result<()> {
        // A BRIN index from an earlier plain-PostgreSQL run is useless on a hypertable.
        self.pool.execute("DROP INDEX IF EXISTS telemetry_ts_brin").await?;
        self.pool
            .execute(
                format!(
                    "SELECT create_hypertable('telemetry', by_range('ts', INTERVAL '{CHUNK_INTERVAL_DAYS} days'), \
                     if_not_exists => TRUE, migrate_data => TRUE)"
                )
                .as_str(),
            )
            .await?;

        let compressed: bool = sqlx::query_scalar(
            "SELECT compression_enabled FROM timescaledb_information.hypertables \
             WHERE hypertable_schema = current_schema() AND hypertable_name = 'telemetry'",
        )
        .fetch_one(&self.pool)
        .await?;
        // Re-running this ALTER on a hypertable with compressed chunks is an error, not a no-op.
        if !compressed {
            self.pool
                .execute(
                    "ALTER TABLE telemetry SET (timescaledb.compress, \
                     timescaledb.compress_segmentby = 'bench_id', timescaledb.compress_orderby = 'ts DESC')",
                )
                .await?;
        }

        let compress_after = self.options.compress_after_days;
        let retention = self.options.retention_days;
        if compress_after >= retention {
            warn!(
                store.compress_after_days = compress_after,
                store.retention_days = retention,
                "telemetry is dropped before it would be compressed"
            );
        }
        self.ensure_policy("policy_compression", "compress_after", compress_after, "compression")
            .await?;
        self.ensure_policy("policy_retention", "drop_after", retention, "retention")
            .await?;
        Ok(())
    }

    /// Adds the `kind` policy on `telemetry` with an interval of `days`, replacing one with another
    /// interval: `if_not_exists` alone would keep the old interval after a settings change.
    async fn ensure_policy(&self, proc_name: &str, config_key: &str, days: u32, kind: &str) -> Result<()> {
        // None: no policy; Some(None): one configured some other way (e.g. by creation time).
        let current: Option<Option<bool>> = sqlx::query_scalar(
            "SELECT (config ->> $2)::interval = make_interval(days => $3) \
             FROM timescaledb_information.jobs \
             WHERE proc_name = $1 AND hypertable_schema = current_schema() AND hypertable_name = 'telemetry'",
        )
        .bind(proc_name)
        .bind(config_key)
        .bind(i32::try_from(days).unwrap_or(i32::MAX))
        .fetch_optional(&self.pool)
        .await?;
        match current {
            Some(Some(true)) => return Ok(()),
            Some(_) => {
                info!(
                    store.policy = kind,
                    store.days = days,
                    "replacing TimescaleDB policy with a new interval"
                );
                self.pool
                    .execute(format!("SELECT remove_{kind}_policy('telemetry', if_exists => TRUE)").as_str())
                    .await?;
            }
            None => {}
        }
        self.pool
            .execute(
                format!(
                    "SELECT add_{kind}_policy('telemetry', {config_key} => INTERVAL '{days} days', \
                     if_not_exists => TRUE)"
                )
                .as_str(),
            )
            .await?;
        Ok(())
    }

    /// The plain-PostgreSQL extras: telemetry arrives roughly in time order, so a BRIN index on
    /// `ts` serves fleet-wide time ranges at a tiny fraction of a B-tree's size.
    async fn apply_plain(&self) -> Result<()> {
        self.pool
            .execute("CREATE INDEX IF NOT EXISTS telemetry_ts_brin ON telemetry USING brin (ts)")
            .await?;
        Ok(())
    }

    async fn latest_telemetry_with(&self, sql: &'static str) -> Result<Vec<TelemetryRow>> {
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(telemetry_from_row).collect::<Result<_, _>>()?)
    }

    /// Both ways of finding the newest sample per bench, for tests that check they agree.
    #[cfg(test)]
    pub(crate) async fn latest_telemetry_both_ways(&self) -> Result<(Vec<TelemetryRow>, Vec<TelemetryRow>)> {
        Ok((
            self.latest_telemetry_with(&LATEST_TELEMETRY_DISTINCT_ON).await?,
            self.latest_telemetry_with(&LATEST_TELEMETRY_SKIP_SCAN).await?,
        ))
    }
}

#[async_trait]
impl Store for PgStore {
    fn mode(&self) -> StoreMode {
        if self.timescale.load(Ordering::Relaxed) {
            StoreMode::Timescale
        } else {
            StoreMode::Postgres
        }
    }

    async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        let timescale = self.try_create_timescale().await?;
        if timescale {
            self.apply_timescale().await?;
        } else {
            self.apply_plain().await?;
        }
        self.timescale.store(timescale, Ordering::Relaxed);
        info!(store.mode = ?self.mode(), "store migrated");
        Ok(())
    }

    async fn ping(&self) -> Result<()> {
        self.pool.execute("SELECT 1").await?;
        Ok(())
    }

    async fn sync_benches(&self, fleet: &[protocol::BenchInfo]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM benches").execute(&mut *tx).await?;
        for b in fleet {
            sqlx::query("INSERT INTO benches (id, name, municipality, lat, lon, telemetry_interval_s) VALUES ($1, $2, $3, $4, $5, $6)")
                .bind(b.id.as_str())
                .bind(&b.name)
                .bind(&b.municipality)
                .bind(b.location.lat)
                .bind(b.location.lon)
                .bind(i32::try_from(b.telemetry_interval_s).unwrap_or(i32::MAX))
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

#[async_trait]
impl TelemetryStore for PgStore {
    async fn insert_telemetry(&self, rows: &[TelemetryRow]) -> Result<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let c = Columns::from(rows);
        let result = sqlx::query(&INSERT_TELEMETRY)
            .bind(c.bench_id)
            .bind(c.ts)
            .bind(c.seq)
            .bind(c.received_at)
            .bind(c.solar_w)
            .bind(c.battery_pct)
            .bind(c.battery_v)
            .bind(c.load_w)
            .bind(c.rx_bytes)
            .bind(c.tx_bytes)
            .bind(c.wifi_clients)
            .bind(c.rssi_dbm)
            .bind(c.sessions_wifi)
            .bind(c.sessions_usb)
            .bind(c.sessions_kiosk)
            .bind(c.wifi_started)
            .bind(c.usb_started)
            .bind(c.kiosk_started)
            .bind(c.cpu_temp_c)
            .bind(c.enclosure_temp_c)
            .bind(c.uptime_s)
            .bind(c.disk_free_mb)
            .bind(c.faults)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    async fn telemetry(&self, bench_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<TelemetryRow>> {
        let rows = sqlx::query(&SELECT_TELEMETRY)
            .bind(bench_id)
            .bind(ceil_to_millis(from))
            .bind(ceil_to_millis(to))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(telemetry_from_row).collect::<Result<_, _>>()?)
    }

    async fn latest_telemetry(&self) -> Result<Vec<TelemetryRow>> {
        match self.mode() {
            StoreMode::Timescale => self.latest_telemetry_with(&LATEST_TELEMETRY_DISTINCT_ON).await,
            _ => self.latest_telemetry_with(&LATEST_TELEMETRY_SKIP_SCAN).await,
        }
    }

    async fn telemetry_buckets(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: TimeDelta,
    ) -> Result<Vec<TelemetryBucket>> {
        let sql: &str = match self.mode() {
            StoreMode::Timescale => &BUCKETS_TIME_BUCKET,
            _ => &BUCKETS_DATE_BIN,
        };
        let rows = sqlx::query(sql)
            .bind(bench_id)
            .bind(ceil_to_millis(from))
            .bind(ceil_to_millis(to))
            .bind(bucket.num_milliseconds().max(1))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|row| series::bucket_from_row(row, row.try_get("bucket")?))
            .collect::<Result<_, _>>()?)
    }

    async fn usage_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageTotals>> {
        let rows = sqlx::query(&USAGE)
            .bind(ceil_to_millis(from))
            .bind(ceil_to_millis(to))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(series::usage_from_row).collect::<Result<_, _>>()?)
    }
}

#[async_trait]
impl PresenceStore for PgStore {
    async fn insert_status_event(&self, event: &StatusEvent) -> Result<()> {
        sqlx::query(&INSERT_STATUS_EVENT)
            .bind(&event.bench_id)
            .bind(truncate_to_millis(event.at))
            .bind(event.state.as_str())
            .bind(&event.cause)
            .bind(&event.fw)
            .bind(event.config_version)
            .bind(event.until.map(truncate_to_millis))
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
            .bind(ceil_to_millis(from))
            .bind(ceil_to_millis(to))
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
                    .bind(truncate_to_millis(c.at))
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
            .bind(ceil_to_millis(from))
            .bind(ceil_to_millis(to))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(status_event_from_row).collect::<Result<_, _>>()?)
    }
}

#[async_trait]
impl OtaStore for PgStore {
    async fn ota_write(&self, write: &OtaWrite) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for l in &write.layers {
            if l.content.is_empty() {
                sqlx::query("DELETE FROM ota_layers WHERE scope = $1 AND name = $2")
                    .bind(l.layer.kind())
                    .bind(l.layer.name())
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query(
                    "INSERT INTO ota_layers (scope, name, content, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (scope, name) DO UPDATE SET content = excluded.content, \
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                )
                .bind(l.layer.kind())
                .bind(l.layer.name())
                .bind(Json(&l.content))
                .bind(truncate_to_millis(l.updated_at))
                .bind(&l.updated_by)
                .execute(&mut *tx)
                .await?;
            }
        }
        for v in &write.versions {
            sqlx::query(
                "INSERT INTO ota_config_versions (bench_id, version, config, issued_at, cause, actor, rollout_id) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(v.bench_id.as_str())
            .bind(ota_i64(v.version))
            .bind(Json(&v.config))
            .bind(truncate_to_millis(v.issued_at))
            .bind(&v.cause)
            .bind(&v.actor)
            .bind(&v.rollout_id)
            .execute(&mut *tx)
            .await?;
        }
        for b in &write.benches {
            sqlx::query(&UPSERT_OTA_BENCH)
                .bind(b.bench_id.as_str())
                .bind(ota_i64(b.desired_version))
                .bind(Json(&b.desired))
                .bind(truncate_to_millis(b.issued_at))
                .bind(b.state.as_str())
                .bind(truncate_to_millis(b.state_at))
                .bind(b.reported_version.map(ota_i64))
                .bind(b.reported_at.map(truncate_to_millis))
                .bind(&b.error)
                .bind(b.drift_since.map(truncate_to_millis))
                .bind(&b.rollout_id)
                .execute(&mut *tx)
                .await?;
        }
        for r in &write.rollouts {
            sqlx::query(
                "INSERT INTO ota_rollouts (id, state, created_at, updated_at, body) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, \
                 body = excluded.body",
            )
            .bind(&r.id)
            .bind(r.state.as_str())
            .bind(truncate_to_millis(r.created_at))
            .bind(truncate_to_millis(r.updated_at))
            .bind(Json(r))
            .execute(&mut *tx)
            .await?;
        }
        insert_audit(&mut tx, "ota_audit", &write.audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn ota_layers(&self) -> Result<Vec<LayerRecord>> {
        let rows = sqlx::query("SELECT scope, name, content, updated_at, updated_by FROM ota_layers")
            .fetch_all(&self.pool)
            .await?;
        let mut layers = rows
            .iter()
            .map(|row| {
                let (scope, name): (String, String) = (row.try_get("scope")?, row.try_get("name")?);
                Ok(LayerRecord {
                    layer: Scope::from_parts(&scope, &name)
                        .ok_or_else(|| sqlx::Error::Decode(format!("bad layer {scope}:{name}").into()))?,
                    content: row.try_get::<Json<_>, _>("content")?.0,
                    updated_at: row.try_get("updated_at")?,
                    updated_by: row.try_get("updated_by")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        layers.sort_by(|a, b| a.layer.cmp(&b.layer));
        Ok(layers)
    }

    async fn ota_bench_configs(&self) -> Result<Vec<BenchConfigRecord>> {
        let rows = sqlx::query(
            "SELECT bench_id, desired_version, desired, issued_at, state, state_at, reported_version, \
             reported_at, error, drift_since, rollout_id FROM ota_bench_config ORDER BY bench_id",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok(BenchConfigRecord {
                    bench_id: bench_id_of(row.try_get("bench_id")?)?,
                    desired_version: ota_u64(row.try_get("desired_version")?)?,
                    desired: row.try_get::<Json<_>, _>("desired")?.0,
                    issued_at: row.try_get("issued_at")?,
                    state: DeliveryState::parse(&state)
                        .ok_or_else(|| sqlx::Error::Decode(format!("unknown delivery state {state:?}").into()))?,
                    state_at: row.try_get("state_at")?,
                    reported_version: row
                        .try_get::<Option<i64>, _>("reported_version")?
                        .map(ota_u64)
                        .transpose()?,
                    reported_at: row.try_get("reported_at")?,
                    error: row.try_get("error")?,
                    drift_since: row.try_get("drift_since")?,
                    rollout_id: row.try_get("rollout_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn ota_versions(&self, bench_id: &str, limit: u32) -> Result<Vec<IssuedVersion>> {
        let rows = sqlx::query(
            "SELECT bench_id, version, config, issued_at, cause, actor, rollout_id FROM ota_config_versions \
             WHERE bench_id = $1 ORDER BY version DESC LIMIT $2",
        )
        .bind(bench_id)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|row| {
                Ok(IssuedVersion {
                    bench_id: bench_id_of(row.try_get("bench_id")?)?,
                    version: ota_u64(row.try_get("version")?)?,
                    config: row.try_get::<Json<_>, _>("config")?.0,
                    issued_at: row.try_get("issued_at")?,
                    cause: row.try_get("cause")?,
                    actor: row.try_get("actor")?,
                    rollout_id: row.try_get("rollout_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn ota_rollouts(&self) -> Result<Vec<Rollout>> {
        let rows: Vec<(Json<Rollout>,)> = sqlx::query_as("SELECT body FROM ota_rollouts ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|(body,)| body.0).collect())
    }

    async fn ota_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
        audit_page(&self.pool, "ota_audit", before, limit).await
    }
}

#[async_trait]
impl RoutingStore for PgStore {
    async fn routing_write(&self, write: &RoutingWrite) -> Result<()> {
        routing::write(&self.pool, write).await
    }

    async fn next_tracking_number(&self, prefix: &str) -> Result<i64> {
        routing::next_tracking_number(&self.pool, prefix).await
    }

    async fn organisations(&self) -> Result<Vec<Organisation>> {
        routing::organisations(&self.pool).await
    }

    async fn rule_sets(&self, limit: u32) -> Result<Vec<RuleSetRecord>> {
        routing::rule_sets(&self.pool, limit).await
    }

    async fn routing_cursors(&self) -> Result<Vec<(String, i64)>> {
        routing::cursors(&self.pool).await
    }

    async fn idea(&self, id: &str) -> Result<Option<IdeaRecord>> {
        routing::idea(&self.pool, id).await
    }

    async fn idea_by_code(&self, tracking_code: &str) -> Result<Option<IdeaRecord>> {
        routing::idea_by_code(&self.pool, tracking_code).await
    }

    async fn ideas(&self, filter: &IdeaFilter) -> Result<Vec<IdeaRecord>> {
        routing::ideas(&self.pool, filter).await
    }

    async fn idea_by_fingerprint(&self, fingerprint: &str) -> Result<Option<IdeaRecord>> {
        routing::idea_by_fingerprint(&self.pool, fingerprint).await
    }

    async fn ideas_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<IdeaRecord>> {
        routing::ideas_due(&self.pool, now, limit).await
    }

    async fn open_idea_counts(&self) -> Result<Vec<(String, i64)>> {
        routing::open_idea_counts(&self.pool).await
    }

    async fn idea_events(&self, idea_id: &str) -> Result<Vec<IdeaEvent>> {
        routing::idea_events(&self.pool, idea_id).await
    }

    async fn idea_counts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<IdeaCount>> {
        routing::idea_counts(&self.pool, from, to).await
    }

    async fn confirm_times(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(String, i64)>> {
        routing::confirm_times(&self.pool, from, to).await
    }

    async fn routing_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<RoutingAudit>> {
        audit_page(&self.pool, "routing_audit", before, limit).await
    }
}

// --- OTA ---

static UPSERT_OTA_BENCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO ota_bench_config ({OTA_BENCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (bench_id) DO UPDATE SET {OTA_BENCH_UPDATE} \
         WHERE ota_bench_config.desired_version <= excluded.desired_version"
    )
});

fn bench_id_of(s: &str) -> Result<protocol::BenchId, sqlx::Error> {
    protocol::BenchId::parse(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A batch turned inside out: one array per column, bound as `UNNEST` parameters.
struct Columns {
    bench_id: Vec<String>,
    ts: Vec<DateTime<Utc>>,
    seq: Vec<i64>,
    received_at: Vec<DateTime<Utc>>,
    solar_w: Vec<f64>,
    battery_pct: Vec<f64>,
    battery_v: Vec<Option<f64>>,
    load_w: Vec<Option<f64>>,
    rx_bytes: Vec<Option<i64>>,
    tx_bytes: Vec<Option<i64>>,
    wifi_clients: Vec<Option<i32>>,
    rssi_dbm: Vec<Option<i32>>,
    sessions_wifi: Vec<Option<i32>>,
    sessions_usb: Vec<Option<i32>>,
    sessions_kiosk: Vec<Option<i32>>,
    wifi_started: Vec<Option<i64>>,
    usb_started: Vec<Option<i64>>,
    kiosk_started: Vec<Option<i64>>,
    cpu_temp_c: Vec<Option<f64>>,
    enclosure_temp_c: Vec<Option<f64>>,
    uptime_s: Vec<Option<i64>>,
    disk_free_mb: Vec<Option<i64>>,
    /// JSON text, cast to `jsonb` in the statement.
    faults: Vec<String>,
}

impl From<&[TelemetryRow]> for Columns {
    fn from(rows: &[TelemetryRow]) -> Self {
        fn column<T>(rows: &[TelemetryRow], f: impl Fn(&TelemetryRow) -> T) -> Vec<T> {
            rows.iter().map(f).collect()
        }
        Self {
            bench_id: column(rows, |r| r.bench_id.clone()),
            ts: column(rows, |r| truncate_to_millis(r.ts)),
            seq: column(rows, |r| r.seq),
            received_at: column(rows, |r| truncate_to_millis(r.received_at)),
            solar_w: column(rows, |r| r.solar_w),
            battery_pct: column(rows, |r| r.battery_pct),
            battery_v: column(rows, |r| r.battery_v),
            load_w: column(rows, |r| r.load_w),
            rx_bytes: column(rows, |r| r.rx_bytes),
            tx_bytes: column(rows, |r| r.tx_bytes),
            wifi_clients: column(rows, |r| r.wifi_clients),
            rssi_dbm: column(rows, |r| r.rssi_dbm),
            sessions_wifi: column(rows, |r| r.sessions_wifi),
            sessions_usb: column(rows, |r| r.sessions_usb),
            sessions_kiosk: column(rows, |r| r.sessions_kiosk),
            wifi_started: column(rows, |r| r.wifi_started),
            usb_started: column(rows, |r| r.usb_started),
            kiosk_started: column(rows, |r| r.kiosk_started),
            cpu_temp_c: column(rows, |r| r.cpu_temp_c),
            enclosure_temp_c: column(rows, |r| r.enclosure_temp_c),
            uptime_s: column(rows, |r| r.uptime_s),
            disk_free_mb: column(rows, |r| r.disk_free_mb),
            faults: column(rows, |r| serde_json::Value::from(r.faults.as_slice()).to_string()),
        }
    }
}

fn telemetry_from_row(row: &PgRow) -> Result<TelemetryRow, sqlx::Error> {
    Ok(TelemetryRow {
        bench_id: row.try_get("bench_id")?,
        ts: row.try_get("ts")?,
        seq: row.try_get("seq")?,
        received_at: row.try_get("received_at")?,
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

fn status_event_from_row(row: &PgRow) -> Result<StatusEvent, sqlx::Error> {
    Ok(StatusEvent {
        bench_id: row.try_get("bench_id")?,
        at: row.try_get("at")?,
        state: decode_state(row.try_get("state")?)?,
        cause: row.try_get("cause")?,
        fw: row.try_get("fw")?,
        config_version: row.try_get("config_version")?,
        until: row.try_get("until")?,
    })
}

/// Appends audit entries to `table` (`ota_audit` or `routing_audit`, which share their columns).
pub(super) async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    table: &'static str,
    entries: &[AuditEntry],
) -> Result<()> {
    let sql = format!("INSERT INTO {table} (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)");
    for a in entries {
        sqlx::query(&sql)
            .bind(truncate_to_millis(a.at))
            .bind(&a.actor)
            .bind(&a.action)
            .bind(&a.subject)
            .bind(Json(&a.detail))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Entries of `table` with `id < before`, newest first, at most `limit`.
async fn audit_page(pool: &PgPool, table: &'static str, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
    let sql =
        format!("SELECT id, at, actor, action, subject, detail FROM {table} WHERE id < $1 ORDER BY id DESC LIMIT $2");
    let rows = sqlx::query(&sql)
        .bind(before.unwrap_or(i64::MAX))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(AuditEntry {
                id: row.try_get("id")?,
                at: row.try_get("at")?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                subject: row.try_get("subject")?,
                detail: row.try_get::<Json<_>, _>("detail")?.0,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}
