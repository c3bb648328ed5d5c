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
    OTA_BENCH_COLUMNS, OTA_BENCH_UPDATE, OtaStore, PresenceStore, RoutingStore, STATUS_EVENT_COLUMNS, StatusCursor,
    StatusEvent, Store, StoreMode, TELEMETRY_COLUMNS, TelemetryBucket, TelemetryRow, TelemetryStore, UsageTotals,
    ceil_to_millis, decode_state, ota_i64, ota_u64,
};
use crate::ota::{AuditEntry, BenchConfigRecord, DeliveryState, IssuedVersion, LayerRecord, OtaWrite, Rollout, Scope};
use crate::routing::{
    IdeaCount, IdeaEvent, IdeaFilter, IdeaRecord, Organisation, RoutingAudit, RoutingWrite, RuleSetRecord,
};
use crate::store::Result;

mod routing;

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

#[async_trait]
impl TelemetryStore for SqliteStore {
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
}

#[async_trait]
impl PresenceStore for SqliteStore {
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
}

#[async_trait]
impl OtaStore for SqliteStore {
    async fn ota_write(&self, write: &OtaWrite) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for l in &write.layers {
            if l.content.is_empty() {
                sqlx::query("DELETE FROM ota_layers WHERE scope = ?1 AND name = ?2")
                    .bind(l.layer.kind())
                    .bind(l.layer.name())
                    .execute(&mut *tx)
                    .await?;
            } else {
                sqlx::query(
                    "INSERT INTO ota_layers (scope, name, content, updated_at, updated_by) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (scope, name) DO UPDATE SET content = excluded.content, \
                     updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                )
                .bind(l.layer.kind())
                .bind(l.layer.name())
                .bind(json_text(&l.content)?)
                .bind(millis(l.updated_at))
                .bind(&l.updated_by)
                .execute(&mut *tx)
                .await?;
            }
        }
        for v in &write.versions {
            sqlx::query(
                "INSERT INTO ota_config_versions (bench_id, version, config, issued_at, cause, actor, rollout_id) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .bind(v.bench_id.as_str())
            .bind(ota_i64(v.version))
            .bind(json_text(&v.config)?)
            .bind(millis(v.issued_at))
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
                .bind(json_text(&b.desired)?)
                .bind(millis(b.issued_at))
                .bind(b.state.as_str())
                .bind(millis(b.state_at))
                .bind(b.reported_version.map(ota_i64))
                .bind(b.reported_at.map(millis))
                .bind(&b.error)
                .bind(b.drift_since.map(millis))
                .bind(&b.rollout_id)
                .execute(&mut *tx)
                .await?;
        }
        for r in &write.rollouts {
            sqlx::query(
                "INSERT INTO ota_rollouts (id, state, created_at, updated_at, body) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, \
                 body = excluded.body",
            )
            .bind(&r.id)
            .bind(r.state.as_str())
            .bind(millis(r.created_at))
            .bind(millis(r.updated_at))
            .bind(json_text(r)?)
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
                    content: from_json_text(row.try_get("content")?)?,
                    updated_at: time_from_millis(row.try_get("updated_at")?)?,
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
        let optional_time = |v: Option<i64>| v.map(time_from_millis).transpose();
        Ok(rows
            .iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok(BenchConfigRecord {
                    bench_id: bench_id_of(row.try_get("bench_id")?)?,
                    desired_version: ota_u64(row.try_get("desired_version")?)?,
                    desired: from_json_text(row.try_get("desired")?)?,
                    issued_at: time_from_millis(row.try_get("issued_at")?)?,
                    state: DeliveryState::parse(&state)
                        .ok_or_else(|| sqlx::Error::Decode(format!("unknown delivery state {state:?}").into()))?,
                    state_at: time_from_millis(row.try_get("state_at")?)?,
                    reported_version: row
                        .try_get::<Option<i64>, _>("reported_version")?
                        .map(ota_u64)
                        .transpose()?,
                    reported_at: optional_time(row.try_get("reported_at")?)?,
                    error: row.try_get("error")?,
                    drift_since: optional_time(row.try_get("drift_since")?)?,
                    rollout_id: row.try_get("rollout_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn ota_versions(&self, bench_id: &str, limit: u32) -> Result<Vec<IssuedVersion>> {
        let rows = sqlx::query(
            "SELECT bench_id, version, config, issued_at, cause, actor, rollout_id FROM ota_config_versions \
             WHERE bench_id = ?1 ORDER BY version DESC LIMIT ?2",
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
                    config: from_json_text(row.try_get("config")?)?,
                    issued_at: time_from_millis(row.try_get("issued_at")?)?,
                    cause: row.try_get("cause")?,
                    actor: row.try_get("actor")?,
                    rollout_id: row.try_get("rollout_id")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn ota_rollouts(&self) -> Result<Vec<Rollout>> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT body FROM ota_rollouts ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(|(body,)| from_json_text(body))
            .collect::<Result<_, sqlx::Error>>()?)
    }

    async fn ota_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
        audit_page(&self.pool, "ota_audit", before, limit).await
    }
}

#[async_trait]
impl RoutingStore for SqliteStore {
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
        "INSERT INTO ota_bench_config ({OTA_BENCH_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (bench_id) DO UPDATE SET {OTA_BENCH_UPDATE} \
         WHERE ota_bench_config.desired_version <= excluded.desired_version"
    )
});

fn json_text<T: serde::Serialize>(value: &T) -> Result<String, sqlx::Error> {
    serde_json::to_string(value).map_err(|e| sqlx::Error::Encode(e.into()))
}

fn from_json_text<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, sqlx::Error> {
    serde_json::from_str(text).map_err(|e| sqlx::Error::Decode(e.into()))
}

fn bench_id_of(s: &str) -> Result<protocol::BenchId, sqlx::Error> {
    protocol::BenchId::parse(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
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

/// Appends audit entries to `table` (`ota_audit` or `routing_audit`, which share their columns).
pub(super) async fn insert_audit(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    table: &'static str,
    entries: &[AuditEntry],
) -> Result<()> {
    let sql = format!("INSERT INTO {table} (at, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)");
    for a in entries {
        sqlx::query(&sql)
            .bind(millis(a.at))
            .bind(&a.actor)
            .bind(&a.action)
            .bind(&a.subject)
            .bind(json_text(&a.detail)?)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// Entries of `table` with `id < before`, newest first, at most `limit`.
async fn audit_page(
    pool: &SqlitePool,
    table: &'static str,
    before: Option<i64>,
    limit: u32,
) -> Result<Vec<AuditEntry>> {
    let sql =
        format!("SELECT id, at, actor, action, subject, detail FROM {table} WHERE id < ?1 ORDER BY id DESC LIMIT ?2");
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
                at: time_from_millis(row.try_get("at")?)?,
                actor: row.try_get("actor")?,
                action: row.try_get("action")?,
                subject: row.try_get("subject")?,
                detail: from_json_text(row.try_get("detail")?)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}
