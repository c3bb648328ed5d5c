//! The SQLite backend: one database file in WAL mode, the embedded default.
//!
//! Times are stored as UTC unix milliseconds (`INTEGER`), so ranges and buckets are integer
//! arithmetic; lists and documents are JSON in `TEXT` (see `store::value`).

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::store::Result;

pub(super) mod telemetry;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Readers run in parallel under WAL; writers queue on SQLite's lock anyway.
const MAX_CONNECTIONS: u32 = 4;
/// Page cache per connection: at most this many KiB, allocated as pages are read.
const CACHE_KIB: u32 = 64 * 1024;
/// WAL pages (4 KiB) written before SQLite checkpoints.
const WAL_CHECKPOINT_PAGES: u32 = 10_000;
/// How long a writer waits for another writer before failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The store on an SQLite file (`sqlite://PATH`, or `sqlite::memory:` for throwaway use).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
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
            .foreign_keys(true)
            // Telemetry batches touch a page per bench in the key index; SQLite's default 2 MiB
            // page cache thrashes beyond a few hundred benches. Negative: KiB.
            .pragma("cache_size", format!("-{CACHE_KIB}"))
            // Checkpoint (copy the WAL back into the database) every ~40 MB instead of every
            // 4 MB: each page a burst of batches rewrote is copied once, not once per batch.
            .pragma("wal_autocheckpoint", WAL_CHECKPOINT_PAGES.to_string());
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

    /// Applies pending migrations. Idempotent.
    pub(super) async fn migrate(&self) -> Result<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }
}
