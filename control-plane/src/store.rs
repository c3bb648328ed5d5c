//! The store: every domain's store trait ([`TelemetryStore`], [`PresenceStore`], [`OtaStore`],
//! [`RoutingStore`]) implemented once, on two databases chosen from the URL.
//!
//! - `sqlite://…` ([`sqlite::SqliteStore`]): the embedded default, WAL mode.
//! - `postgres://…` ([`postgres::PgStore`]): TimescaleDB when the extension can be created,
//!   plain PostgreSQL otherwise (see [`StoreMode`]).
//!
//! Telemetry history is also kept as per-minute rollups (`store/rollup.rs`), which reads use
//! wherever they give the same answer.
//!
//! Each query is written once, in the file of its domain (`store/ota.rs`, …), with [`Backend`]
//! running it on whichever pool is open; values that the databases store differently (times,
//! lists) are newtypes in `value`. Where the SQL itself differs (time buckets, "newest row per
//! bench", bulk inserts) [`Dialect`] picks the statement, or the backend's own file
//! (`store/sqlite/telemetry.rs`, `store/postgres/telemetry.rs`) has the code.

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;

use crate::ota::OtaStore;
pub use crate::persistence::{Result, StoreError};
use crate::presence::PresenceStore;
use crate::routing::RoutingStore;
use crate::telemetry::TelemetryStore;
pub use settings::StoreSettings;
pub use value::{ceil_to_millis, truncate_to_millis};

mod audit;
#[cfg(test)]
mod history_story;
mod ota;
pub mod postgres;
mod presence;
mod rollup;
#[cfg(test)]
mod rollup_story;
mod routing;
#[cfg(test)]
mod routing_story;
mod series;
mod settings;
pub mod sqlite;
#[cfg(test)]
mod story;
mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod value;

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

/// An open store on one of the two databases. Every domain trait is implemented once for it.
#[derive(Debug)]
pub enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// Runs `$body` with `$pool` bound to the open database's pool: a query written once is
/// compiled for both databases (the arms differ only in the pool's type).
macro_rules! on_pool {
    ($backend:expr, |$pool:ident| $body:expr) => {
        match $backend {
            $crate::store::Backend::Sqlite(store) => {
                let $pool = &store.pool;
                $body
            }
            $crate::store::Backend::Postgres(store) => {
                let $pool = &store.pool;
                $body
            }
        }
    };
}
pub(crate) use on_pool;

/// The SQL flavour of the open database, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
    Timescale,
}

impl Backend {
    pub(crate) fn dialect(&self) -> Dialect {
        match self.mode() {
            StoreMode::Sqlite => Dialect::Sqlite,
            StoreMode::Postgres => Dialect::Postgres,
            StoreMode::Timescale => Dialect::Timescale,
        }
    }
}

#[async_trait]
impl Store for Backend {
    fn mode(&self) -> StoreMode {
        match self {
            Self::Sqlite(_) => StoreMode::Sqlite,
            Self::Postgres(pg) => pg.mode(),
        }
    }

    async fn migrate(&self) -> Result<()> {
        match self {
            Self::Sqlite(s) => s.migrate().await,
            Self::Postgres(pg) => pg.migrate().await,
        }
    }

    async fn ping(&self) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    async fn sync_benches(&self, fleet: &[protocol::BenchInfo]) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM benches").execute(&mut *tx).await?;
            for b in fleet {
                sqlx::query(
                    "INSERT INTO benches (id, name, municipality, lat, lon, telemetry_interval_s) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
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
        });
        Ok(())
    }

    async fn benches(&self) -> Result<Vec<protocol::BenchInfo>> {
        const SQL: &str =
            "SELECT id, name, municipality, lat, lon, CAST(telemetry_interval_s AS BIGINT) FROM benches ORDER BY id";
        let rows: Vec<(String, String, String, f64, f64, i64)> =
            on_pool!(self, |pool| sqlx::query_as(SQL).fetch_all(pool).await?);
        let decode = |e| sqlx::Error::Decode(Box::new(e));
        Ok(rows
            .into_iter()
            .map(|(id, name, municipality, lat, lon, interval)| {
                Ok(protocol::BenchInfo {
                    id: protocol::BenchId::parse(&id).map_err(decode)?,
                    name,
                    municipality,
                    location: protocol::fleet::Location { lat, lon },
                    telemetry_interval_s: u32::try_from(interval).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()?)
    }
}

/// Opens (and creates, for SQLite) the store named by `url`. Does not migrate.
pub async fn connect(url: &str, options: &StoreSettings) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(open(url, options).await?))
}

/// [`connect`], keeping the concrete type (for tests that look behind the traits).
pub async fn open(url: &str, options: &StoreSettings) -> Result<Backend> {
    if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite(sqlite::SqliteStore::connect(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres(postgres::PgStore::connect(url, options).await?))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(url)))
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
    use chrono::{DateTime, Utc};
    use protocol::BenchState;

    use super::presence::decode_state;
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
