//! The time-series store: one trait, two backends chosen once from the database URL.
//!
//! - `sqlite://…` ([`sqlite::SqliteStore`]): the embedded default, WAL mode.
//! - `postgres://…` ([`postgres::PgStore`]): TimescaleDB when the extension can be created,
//!   plain PostgreSQL otherwise (see [`StoreMode`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use protocol::{BenchState, Telemetry};
use serde::Serialize;

#[cfg(test)]
mod history_story;
pub mod postgres;
mod routing_sql;
#[cfg(test)]
mod routing_story;
mod series;
pub mod sqlite;
#[cfg(test)]
mod story;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// Store errors, coarse on purpose: callers only decide between "retry later" and "give up".
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://…")]
    UnsupportedUrl(String),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which engine and features a store runs on; said in the startup log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreMode {
    Sqlite,
    /// PostgreSQL with the TimescaleDB extension: hypertable, compression, retention.
    Timescale,
    /// PostgreSQL without TimescaleDB: same schema, BRIN index on time, `date_bin`.
    Postgres,
}

/// One stored telemetry sample: the payload flattened, plus when the server received it.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryRow {
    pub bench_id: String,
    pub ts: DateTime<Utc>,
    pub seq: i64,
    pub received_at: DateTime<Utc>,
    pub solar_w: f64,
    pub battery_pct: f64,
    pub battery_v: Option<f64>,
    pub load_w: Option<f64>,
    pub rx_bytes: Option<i64>,
    pub tx_bytes: Option<i64>,
    pub wifi_clients: Option<i32>,
    pub rssi_dbm: Option<i32>,
    pub sessions_wifi: Option<i32>,
    pub sessions_usb: Option<i32>,
    pub sessions_kiosk: Option<i32>,
    pub wifi_started: Option<i64>,
    pub usb_started: Option<i64>,
    pub kiosk_started: Option<i64>,
    pub cpu_temp_c: Option<f64>,
    pub enclosure_temp_c: Option<f64>,
    pub uptime_s: Option<i64>,
    pub disk_free_mb: Option<i64>,
    /// Active fault codes; stored as a JSON array of strings.
    pub faults: Vec<String>,
}

impl TelemetryRow {
    /// Flattens a validated payload. Validation guarantees every counter fits in `i64`.
    pub fn from_payload(bench_id: &str, t: &Telemetry, received_at: DateTime<Utc>) -> Self {
        let i64_of = |v: Option<u64>| v.and_then(|v| i64::try_from(v).ok());
        let i32_of = |v: Option<u32>| v.map(|v| i32::try_from(v).unwrap_or(i32::MAX));
        Self {
            bench_id: bench_id.to_owned(),
            ts: t.ts,
            seq: i64::try_from(t.seq).unwrap_or(i64::MAX),
            received_at,
            solar_w: t.power.solar_w,
            battery_pct: t.power.battery_pct,
            battery_v: t.power.battery_v,
            load_w: t.power.load_w,
            rx_bytes: i64_of(t.network.rx_bytes),
            tx_bytes: i64_of(t.network.tx_bytes),
            wifi_clients: i32_of(t.network.wifi_clients),
            rssi_dbm: t.network.rssi_dbm,
            sessions_wifi: i32_of(t.sessions.wifi),
            sessions_usb: i32_of(t.sessions.usb),
            sessions_kiosk: i32_of(t.sessions.kiosk),
            wifi_started: i64_of(t.sessions.wifi_started),
            usb_started: i64_of(t.sessions.usb_started),
            kiosk_started: i64_of(t.sessions.kiosk_started),
            cpu_temp_c: t.health.cpu_temp_c,
            enclosure_temp_c: t.health.enclosure_temp_c,
            uptime_s: i64_of(t.health.uptime_s),
            disk_free_mb: i64_of(t.health.disk_free_mb),
            faults: t.health.faults.clone(),
        }
    }
}

/// A change of a bench's presence, kept forever so availability is a query.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub bench_id: String,
    pub at: DateTime<Utc>,
    pub state: BenchState,
    /// What caused it: `connected`, `disconnected`, `last_will`, `announced`, `heartbeat_timeout`…
    pub cause: String,
    pub fw: Option<String>,
    pub config_version: Option<i64>,
    /// For `sleeping`: when the bench said it would be back.
    pub until: Option<DateTime<Utc>>,
}

/// Average, minimum and maximum of a column over a bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Agg {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

/// One time bucket of a bench's telemetry, computed by the database.
///
/// Counter increases come from consecutive samples (in `ts`, `seq` order) within the queried
/// range: the difference when the counter grew, the new value itself when it went down or
/// `uptime_s` went down (the bench rebooted and counts from zero), as Prometheus `rate()` does.
/// Each increase belongs to the bucket of the later sample.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryBucket {
    /// Start of the bucket (aligned to the Unix epoch).
    pub start: DateTime<Utc>,
    pub samples: i64,
    pub solar_w: Agg,
    pub battery_pct: Agg,
    pub load_w: Option<Agg>,
    pub cpu_temp_c: Option<Agg>,
    pub enclosure_temp_c: Option<Agg>,
    pub sessions_wifi_max: Option<i64>,
    pub sessions_usb_max: Option<i64>,
    pub sessions_kiosk_max: Option<i64>,
    pub wifi_clients_max: Option<i64>,
    /// Sum of `rx_bytes` increases, and the summed time spans (ms) of the sample pairs they
    /// came from; `rx_increase / rx_span_ms * 1000` is bytes per second.
    pub rx_increase: Option<f64>,
    pub rx_span_ms: Option<i64>,
    pub tx_increase: Option<f64>,
    pub tx_span_ms: Option<i64>,
    pub wifi_started: Option<i64>,
    pub usb_started: Option<i64>,
    pub kiosk_started: Option<i64>,
}

/// What one bench harvested and served over a period (see [`Store::usage_totals`]).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageTotals {
    pub bench_id: String,
    pub samples: i64,
    /// Solar energy, watt-hours: trapezoids between consecutive samples at most
    /// [`ENERGY_MAX_GAP_MS`] apart (a longer silence is not guessed at).
    pub solar_wh: f64,
    /// Counter increases, reboots handled as in [`TelemetryBucket`].
    pub rx_bytes: f64,
    pub tx_bytes: f64,
    pub sessions_started: i64,
}

/// Longest gap between two samples that still counts towards solar energy: 15 minutes.
pub const ENERGY_MAX_GAP_MS: i64 = 15 * 60 * 1000;

/// Position in a bench's status history (newest first), for keyset pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCursor {
    pub at: DateTime<Utc>,
    /// The row id, which orders events that share `at`.
    pub id: i64,
}

/// The store behind the control plane.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Which engine this is.
    fn mode(&self) -> StoreMode;

    /// Applies pending migrations (and, on TimescaleDB, its policies). Idempotent.
    async fn migrate(&self) -> Result<()>;

    /// Cheap round trip, for readiness.
    async fn ping(&self) -> Result<()>;

    /// Writes a batch in one statement/transaction. Rows whose `(bench_id, seq, ts)` is already
    /// stored (or repeated within the batch) are skipped. Returns how many rows were new.
    ///
    /// Times are kept to the millisecond (finer digits are cut off), on every backend alike: two
    /// samples that differ only below a millisecond are the same sample.
    async fn insert_telemetry(&self, rows: &[TelemetryRow]) -> Result<u64>;

    /// Samples of one bench with `from <= ts < to`, oldest first.
    async fn telemetry(&self, bench_id: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<TelemetryRow>>;

    /// The newest sample (latest `ts`, then highest `seq`) of every bench that has one, ordered
    /// by bench id.
    async fn latest_telemetry(&self) -> Result<Vec<TelemetryRow>>;

    /// Appends a presence change.
    async fn insert_status_event(&self, event: &StatusEvent) -> Result<()>;

    /// Presence changes of one bench with `from <= at < to`, oldest first, at most `limit`.
    async fn status_events(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StatusEvent>>;

    /// The newest presence change (latest `at`, then last inserted) of every bench that has one,
    /// ordered by bench id (to restore presence on restart).
    async fn latest_status_events(&self) -> Result<Vec<StatusEvent>>;

    /// One bench's presence changes, newest first (latest `at`, then last inserted), strictly
    /// older than `before` when given, at most `limit`. Each comes with its cursor: pass the
    /// last one as `before` for the next page.
    async fn status_events_page(
        &self,
        bench_id: &str,
        before: Option<StatusCursor>,
        limit: u32,
    ) -> Result<Vec<(StatusCursor, StatusEvent)>>;

    /// For every bench: its newest presence change before `from` (the state it was in at
    /// `from`), then all of its changes with `from <= at < to`. Ordered by bench, `at`, insertion.
    async fn status_history(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<StatusEvent>>;

    /// One bench's samples with `from <= ts < to` aggregated into buckets of `bucket` aligned to
    /// the Unix epoch, oldest first; only buckets with samples. `bucket` must be at least 1 ms.
    async fn telemetry_buckets(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: TimeDelta,
    ) -> Result<Vec<TelemetryBucket>>;

    /// Per bench with samples in `from <= ts < to`: energy, bytes and sessions, ordered by bench.
    async fn usage_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<UsageTotals>>;

    /// Makes the `benches` table hold exactly `fleet` (one transaction).
    async fn sync_benches(&self, fleet: &[protocol::BenchInfo]) -> Result<()>;

    /// The `benches` table, ordered by id.
    async fn benches(&self) -> Result<Vec<protocol::BenchInfo>>;

    // --- OTA ---

    /// Applies one OTA change in one transaction: layers replaced (an empty one deleted),
    /// issued versions appended (a repeated `(bench, version)` is an error, so a version is
    /// never reused), bench rows upserted (never over a row with a higher desired version),
    /// rollouts upserted, audit entries appended.
    async fn ota_write(&self, write: &crate::ota::OtaWrite) -> Result<()>;

    /// Every configuration layer, least specific first.
    async fn ota_layers(&self) -> Result<Vec<crate::ota::LayerRecord>>;

    /// Every bench's desired/reported configuration row, ordered by bench id.
    async fn ota_bench_configs(&self) -> Result<Vec<crate::ota::BenchConfigRecord>>;

    /// Versions issued to one bench, newest first, at most `limit`.
    async fn ota_versions(&self, bench_id: &str, limit: u32) -> Result<Vec<crate::ota::IssuedVersion>>;

    /// Every rollout, oldest first.
    async fn ota_rollouts(&self) -> Result<Vec<crate::ota::Rollout>>;

    /// Audit entries with `id < before` (all when `None`), newest first, at most `limit`.
    async fn ota_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<crate::ota::AuditEntry>>;

    // --- Idea routing ---

    /// Applies one routing change in one transaction (see [`crate::routing::RoutingWrite`]).
    async fn routing_write(&self, write: &crate::routing::RoutingWrite) -> Result<()>;

    /// The next number for tracking codes with this prefix (`MOS-2026`): 1, 2, 3…, never the
    /// same twice, even across restarts (a number may be skipped when the idea's write fails).
    async fn next_tracking_number(&self, prefix: &str) -> Result<i64>;

    /// Every organisation, ordered by id.
    async fn organisations(&self) -> Result<Vec<crate::routing::Organisation>>;

    /// Rule set versions, newest first, at most `limit`.
    async fn rule_sets(&self, limit: u32) -> Result<Vec<crate::routing::RuleSetRecord>>;

    /// Every round-robin cursor: (key, position), ordered by key.
    async fn routing_cursors(&self) -> Result<Vec<(String, i64)>>;

    /// One idea by id, or by tracking code.
    async fn idea(&self, id: &str) -> Result<Option<crate::routing::IdeaRecord>>;
    async fn idea_by_code(&self, tracking_code: &str) -> Result<Option<crate::routing::IdeaRecord>>;

    /// Ideas matching `filter`, newest `received_at` first (then id descending).
    async fn ideas(&self, filter: &crate::routing::IdeaFilter) -> Result<Vec<crate::routing::IdeaRecord>>;

    /// The earliest-received idea with this fingerprint that is neither a duplicate nor rejected.
    async fn idea_by_fingerprint(&self, fingerprint: &str) -> Result<Option<crate::routing::IdeaRecord>>;

    /// Ideas whose `deadline <= now`, earliest deadline first, at most `limit`.
    async fn ideas_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<crate::routing::IdeaRecord>>;

    /// Open ideas per organisation: those it is offered (state `offered`) plus those it
    /// confirmed that are `confirmed` or `in_action`. Organisations with none are absent.
    async fn open_idea_counts(&self) -> Result<Vec<(String, i64)>>;

    /// One idea's events, oldest first.
    async fn idea_events(&self, idea_id: &str) -> Result<Vec<crate::routing::IdeaEvent>>;

    /// Ideas per municipality, category and state with `from <= received_at < to`, ordered by
    /// municipality, category, state.
    async fn idea_counts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<crate::routing::IdeaCount>>;

    /// Per confirmed idea received in `from <= received_at < to`: the confirming organisation
    /// and the milliseconds from `received_at` to `confirmed_at`, ordered by organisation.
    async fn confirm_times(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(String, i64)>>;

    /// Routing audit entries with `id < before` (all when `None`), newest first, at most `limit`.
    async fn routing_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<crate::routing::RoutingAudit>>;
}

/// Opens (and creates, for SQLite) the store named by `url`. Does not migrate.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PgStore::connect(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
    }
}

/// The telemetry columns in [`TelemetryRow`] field order, for INSERT and SELECT lists.
pub(crate) const TELEMETRY_COLUMNS: &str = "bench_id, ts, seq, received_at, solar_w, battery_pct, \
     battery_v, load_w, rx_bytes, tx_bytes, wifi_clients, rssi_dbm, sessions_wifi, sessions_usb, \
     sessions_kiosk, wifi_started, usb_started, kiosk_started, cpu_temp_c, enclosure_temp_c, \
     uptime_s, disk_free_mb, faults";

/// The status event columns in [`StatusEvent`] field order.
pub(crate) const STATUS_EVENT_COLUMNS: &str = "bench_id, at, state, cause, fw, config_version, until";

// --- OTA ---

/// The `ota_bench_config` columns in [`crate::ota::BenchConfigRecord`] field order.
pub(crate) const OTA_BENCH_COLUMNS: &str = "bench_id, desired_version, desired, issued_at, state, state_at, \
     reported_version, reported_at, error, drift_since, rollout_id";

/// The upsert's `SET` list for every `ota_bench_config` column but the key.
pub(crate) const OTA_BENCH_UPDATE: &str = "desired_version = excluded.desired_version, \
     desired = excluded.desired, issued_at = excluded.issued_at, state = excluded.state, \
     state_at = excluded.state_at, reported_version = excluded.reported_version, \
     reported_at = excluded.reported_at, error = excluded.error, drift_since = excluded.drift_since, \
     rollout_id = excluded.rollout_id";

/// A configuration version as stored (versions stay far below 2^63).
pub(crate) fn ota_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored configuration version, refusing negative values rather than guessing.
pub(crate) fn ota_u64(v: i64) -> Result<u64, sqlx::Error> {
    u64::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// `t` with its digits below the millisecond cut off: the precision every backend stores.
pub(crate) fn truncate_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(t)
}

/// The first whole millisecond at or after `t`. For stored (whole-millisecond) times `s`,
/// `s >= t` exactly when `s >= ceil_to_millis(t)`, and likewise for `<`: query bounds are
/// rounded up so that `from <= ts < to` means the same for any bound on every backend.
pub(crate) fn ceil_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    let down = truncate_to_millis(t);
    if down == t {
        t
    } else {
        down.checked_add_signed(TimeDelta::milliseconds(1)).unwrap_or(down)
    }
}

/// Reads a stored [`BenchState`], failing the query rather than guessing.
pub(crate) fn decode_state(s: &str) -> Result<BenchState, sqlx::Error> {
    BenchState::parse(s).ok_or_else(|| sqlx::Error::Decode(format!("unknown bench state {s:?}").into()))
}

/// Tunables that only PostgreSQL/TimescaleDB uses.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Raw telemetry older than this is dropped by TimescaleDB's retention policy.
    pub retention_days: u32,
    /// Chunks older than this are compressed by TimescaleDB.
    pub compress_after_days: u32,
    /// Maximum pool connections.
    pub max_connections: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            retention_days: 400,
            compress_after_days: 7,
            max_connections: 8,
        }
    }
}

/// The URL with any password replaced, safe for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://bf:s3cret@db:5432/bf"),
            "postgres://bf:***@db:5432/bf"
        );
        assert_eq!(redact_url("postgres://bf@db/bf"), "postgres://bf@db/bf");
        assert_eq!(redact_url("sqlite://data/benchfleet.db"), "sqlite://data/benchfleet.db");
    }

    #[test]
    fn times_round_to_whole_milliseconds() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(
            truncate_to_millis(t("2026-11-26T10:00:00.123456789Z")),
            t("2026-11-26T10:00:00.123Z")
        );
        assert_eq!(
            truncate_to_millis(t("2026-11-26T10:00:00.123Z")),
            t("2026-11-26T10:00:00.123Z")
        );
        assert_eq!(
            ceil_to_millis(t("2026-11-26T10:00:00.123000001Z")),
            t("2026-11-26T10:00:00.124Z")
        );
        assert_eq!(
            ceil_to_millis(t("2026-11-26T10:00:00.999500Z")),
            t("2026-11-26T10:00:01Z")
        );
        assert_eq!(
            ceil_to_millis(t("2026-11-26T10:00:00.123Z")),
            t("2026-11-26T10:00:00.123Z")
        );
        assert_eq!(
            truncate_to_millis(t("1969-12-31T23:59:59.9995Z")),
            t("1969-12-31T23:59:59.999Z")
        );
    }

    #[test]
    fn unknown_states_fail_to_decode() {
        assert_eq!(decode_state("sleeping").unwrap(), BenchState::Sleeping);
        assert!(matches!(decode_state("asleep"), Err(sqlx::Error::Decode(_))));
    }
}
