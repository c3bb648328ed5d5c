//! The PostgreSQL backend, with TimescaleDB when the extension can be created.
//!
//! The sqlx migrations create the same plain schema everywhere. [`PgStore::migrate`] then tries
//! `CREATE EXTENSION timescaledb`: if it is (or already was) installed, `telemetry` becomes a
//! hypertable with compression and retention policies (TimescaleDB 2.13 or newer); otherwise it
//! stays a plain table with a BRIN index on `ts`. [`PgStore::mode`] says which one it is.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::Executor;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use tracing::{info, warn};

use super::{StoreMode, StoreSettings};
use crate::store::Result;

pub(super) mod telemetry;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// One chunk per week: a 12-bench fleet writes a few MB a week, a 1 000-bench load test ~1 GB.
const CHUNK_INTERVAL_DAYS: u32 = 7;
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// The store on PostgreSQL (`postgres://…`), TimescaleDB or plain.
#[derive(Debug)]
pub struct PgStore {
    pub(super) pool: PgPool,
    options: StoreSettings,
    /// Whether the `timescaledb` extension is installed in this database.
    timescale: AtomicBool,
}

impl PgStore {
    /// Opens a pool of at most `options.max_connections` and checks the database answers. Does
    /// not migrate; [`PgStore::mode`] reflects whether TimescaleDB is already installed.
    pub async fn connect(url: &str, options: &StoreSettings) -> Result<Self> {
        let connect = PgConnectOptions::from_str(url)?
            .application_name("benchfleet-control-plane")
            // JIT compiling a fleet summary (estimated expensive, a few ms to run) took 70 ms of
            // its 100; none of these queries runs long enough to win it back.
            .options([("jit", "off")]);
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

    /// TimescaleDB or plain PostgreSQL, as found at connect and after migrating.
    pub(super) fn mode(&self) -> StoreMode {
        if self.timescale.load(Ordering::Relaxed) {
            StoreMode::Timescale
        } else {
            StoreMode::Postgres
        }
    }

    /// Applies pending migrations, then installs TimescaleDB and its policies when it can (the
    /// plain-PostgreSQL extras otherwise). Idempotent.
    pub(super) async fn migrate(&self) -> Result<()> {
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
}
