//! The store: every domain's store trait implemented on two backends, chosen once from the
//! database URL.
//!
//! - `sqlite://…` ([`sqlite::SqliteStore`]): the embedded default, WAL mode.
//! - `postgres://…` ([`postgres::PgStore`]): TimescaleDB when the extension can be created,
//!   plain PostgreSQL otherwise (see [`StoreMode`]).

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Timelike, Utc};
use protocol::BenchState;
use serde::Serialize;

use crate::ota::OtaStore;
use crate::presence::{PresenceStore, StatusCursor, StatusEvent};
use crate::routing::RoutingStore;
use crate::telemetry::{Agg, ENERGY_MAX_GAP_MS, TelemetryBucket, TelemetryRow, TelemetryStore, UsageTotals};

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

pub use crate::persistence::{Result, StoreError};

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

/// A whole store: every domain's store trait on one database, plus what the store does for
/// itself (migrations, readiness, the bench registry for SQL consumers). Each domain is handed
/// this as its own trait object (`Arc<dyn OtaStore>`, …), so it sees only what it needs.
#[async_trait]
pub trait Store: TelemetryStore + PresenceStore + OtaStore + RoutingStore + 'static {
    /// Which engine this is.
    fn mode(&self) -> StoreMode;

    /// Applies pending migrations (and, on TimescaleDB, its policies). Idempotent.
    async fn migrate(&self) -> Result<()>;

    /// Cheap round trip, for readiness.
    async fn ping(&self) -> Result<()>;

    /// Makes the `benches` table hold exactly `fleet` (one transaction).
    async fn sync_benches(&self, fleet: &[protocol::BenchInfo]) -> Result<()>;

    /// The `benches` table, ordered by id.
    async fn benches(&self) -> Result<Vec<protocol::BenchInfo>>;
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
