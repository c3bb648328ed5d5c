//! Throwaway databases for tests, here and in other crates (feature `testing`).
//!
//! ```ignore
//! let Some(db) = control_plane::store::testing::pg_database().await else { return };
//! let store = control_plane::store::connect(db.url(), &Default::default()).await?;
//! ```

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::presence::StatusEvent;
use crate::telemetry::TelemetryRow;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor};

use super::{OtaStore, PresenceStore, Result, RoutingStore, Store, StoreError, StoreMode, TelemetryStore};

/// The variable naming the PostgreSQL server tests may create databases on.
pub const DATABASE_URL_VAR: &str = "BENCHFLEET_TEST_DATABASE_URL";

/// A fresh, uniquely named PostgreSQL database, dropped (with any open connections) on drop.
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    /// Connection URL of the new database, for [`super::connect`].
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Its name (`benchfleet_test_<random>`).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop cannot await, and may run inside a runtime that must not be blocked on itself:
        // do the async work on a runtime of its own, on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            runtime.block_on(async {
                let mut admin = PgConnection::connect(&admin_url).await?;
                admin
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await?;
                admin.close().await?;
                Ok::<_, sqlx::Error>(())
            })?;
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            // Never panic here: this may run while a failing test unwinds.
            Ok(Err(e)) => eprintln!("could not drop test database {}: {e}", self.name),
            Err(_) => eprintln!(
                "could not drop test database {}: the dropping thread panicked",
                self.name
            ),
        }
    }
}

/// Creates a fresh database on the server named by `BENCHFLEET_TEST_DATABASE_URL`.
///
/// Returns `None` (after saying so on stderr) when the variable is unset, so the caller can skip;
/// panics instead when `CI` is set, because there a skipped PostgreSQL test is a failed one.
/// Also panics when the server cannot be reached or the database cannot be created.
pub async fn pg_database() -> Option<PgDatabase> {
    let Ok(admin_url) = std::env::var(DATABASE_URL_VAR) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "{DATABASE_URL_VAR} must be set when CI is set"
        );
        eprintln!("skipping PostgreSQL test: {DATABASE_URL_VAR} is not set");
        return None;
    };
    let name = format!("benchfleet_test_{}", uuid::Uuid::new_v4().simple());
    let admin = PgConnectOptions::from_str(&admin_url)
        .unwrap_or_else(|e| panic!("{DATABASE_URL_VAR} is not a PostgreSQL URL: {e}"));
    let url = with_database(&admin_url, &name);
    let mut conn = admin.connect().await.unwrap_or_else(|e| {
        panic!("cannot connect to {}: {e}", super::redact_url(&admin_url));
    });
    conn.execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    conn.close().await.ok();
    Some(PgDatabase { admin_url, name, url })
}

/// `url` with its database (the URL path) replaced by `name`, everything else kept.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A fresh SQLite database file in its own temporary directory, deleted on drop.
#[derive(Debug)]
pub struct SqliteDatabase {
    url: String,
    _dir: tempfile::TempDir,
}

impl SqliteDatabase {
    /// Connection URL of the database file (which does not exist until first connect).
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// Creates a temporary directory to hold an SQLite database. Panics if that fails.
pub fn sqlite_database() -> SqliteDatabase {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("cannot create a temporary directory: {e}"));
    let url = format!("sqlite://{}", dir.path().join("benchfleet.db").display());
    SqliteDatabase { url, _dir: dir }
}

/// A minimal sample: the given identity, 10 W solar, 50 % battery, received at `ts`, every
/// optional field empty. Change fields with struct update syntax.
pub fn telemetry_row(bench_id: &str, seq: i64, ts: DateTime<Utc>) -> TelemetryRow {
    TelemetryRow {
        bench_id: bench_id.to_owned(),
        ts,
        seq,
        received_at: ts,
        solar_w: 10.0,
        battery_pct: 50.0,
        battery_v: None,
        load_w: None,
        rx_bytes: None,
        tx_bytes: None,
        wifi_clients: None,
        rssi_dbm: None,
        sessions_wifi: None,
        sessions_usb: None,
        sessions_kiosk: None,
        wifi_started: None,
        usb_started: None,
        kiosk_started: None,
        cpu_temp_c: None,
        enclosure_temp_c: None,
        uptime_s: None,
        disk_free_mb: None,
        faults: Vec::new(),
    }
}

/// A real store with an outage switch: while `down`, writes fail as if the database were gone.
pub struct Outage {
    inner: Arc<dyn Store>,
    down: AtomicBool,
}

impl Outage {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            down: AtomicBool::new(false),
        }
    }

    /// Starts or ends the outage.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn check(&self) -> Result<()> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Database(sqlx::Error::PoolTimedOut))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Store for Outage {
    fn mode(&self) -> StoreMode {
        self.inner.mode()
    }

    async fn migrate(&self) -> Result<()> {
        self.inner.migrate().await
    }

    async fn ping(&self) -> Result<()> {
        self.check()?;
        self.inner.ping().await
    }

    async fn sync_benches(&self, fleet: &[protocol::BenchInfo]) -> Result<()> {
        self.inner.sync_benches(fleet).await
    }

    async fn benches(&self) -> Result<Vec<protocol::BenchInfo>> {
        self.inner.benches().await
    }
}

#[async_trait]
impl TelemetryStore for Outage {
    async fn insert_telemetry(&self, rows: &[TelemetryRow]) -> Result<u64> {
        self.check()?;
        self.inner.insert_telemetry(rows).await
    }

    async fn telemetry(&self, b: &str, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<TelemetryRow>> {
        self.inner.telemetry(b, from, to).await
    }

    async fn latest_telemetry(&self) -> Result<Vec<TelemetryRow>> {
        self.inner.latest_telemetry().await
    }

    async fn telemetry_buckets(
        &self,
        b: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        bucket: chrono::TimeDelta,
    ) -> Result<Vec<crate::telemetry::TelemetryBucket>> {
        self.inner.telemetry_buckets(b, from, to, bucket).await
    }

    async fn usage_totals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<crate::telemetry::UsageTotals>> {
        self.inner.usage_totals(from, to).await
    }

    async fn refresh_rollups(&self, now: DateTime<Utc>, limit: u32) -> Result<u64> {
        self.check()?;
        self.inner.refresh_rollups(now, limit).await
    }
}

#[async_trait]
impl PresenceStore for Outage {
    async fn insert_status_event(&self, e: &StatusEvent) -> Result<()> {
        self.check()?;
        self.inner.insert_status_event(e).await
    }

    async fn status_events(
        &self,
        b: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StatusEvent>> {
        self.inner.status_events(b, from, to, limit).await
    }

    async fn latest_status_events(&self) -> Result<Vec<StatusEvent>> {
        self.inner.latest_status_events().await
    }

    async fn status_events_page(
        &self,
        b: &str,
        before: Option<crate::presence::StatusCursor>,
        limit: u32,
    ) -> Result<Vec<(crate::presence::StatusCursor, StatusEvent)>> {
        self.inner.status_events_page(b, before, limit).await
    }

    async fn status_history(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<StatusEvent>> {
        self.inner.status_history(from, to).await
    }
}

#[async_trait]
impl OtaStore for Outage {
    async fn ota_write(&self, w: &crate::ota::OtaWrite) -> Result<()> {
        self.check()?;
        self.inner.ota_write(w).await
    }

    async fn ota_layers(&self) -> Result<Vec<crate::ota::LayerRecord>> {
        self.inner.ota_layers().await
    }

    async fn ota_bench_configs(&self) -> Result<Vec<crate::ota::BenchConfigRecord>> {
        self.inner.ota_bench_configs().await
    }

    async fn ota_versions(&self, b: &str, limit: u32) -> Result<Vec<crate::ota::IssuedVersion>> {
        self.inner.ota_versions(b, limit).await
    }

    async fn ota_rollouts(&self) -> Result<Vec<crate::ota::Rollout>> {
        self.inner.ota_rollouts().await
    }

    async fn ota_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<crate::ota::AuditEntry>> {
        self.inner.ota_audit(before, limit).await
    }
}

#[async_trait]
impl RoutingStore for Outage {
    async fn routing_write(&self, w: &crate::routing::RoutingWrite) -> Result<()> {
        self.check()?;
        self.inner.routing_write(w).await
    }

    async fn next_tracking_number(&self, prefix: &str) -> Result<i64> {
        self.check()?;
        self.inner.next_tracking_number(prefix).await
    }

    async fn organisations(&self) -> Result<Vec<crate::routing::Organisation>> {
        self.inner.organisations().await
    }

    async fn rule_sets(&self, limit: u32) -> Result<Vec<crate::routing::RuleSetRecord>> {
        self.inner.rule_sets(limit).await
    }

    async fn routing_cursors(&self) -> Result<Vec<(String, i64)>> {
        self.inner.routing_cursors().await
    }

    async fn idea(&self, id: &str) -> Result<Option<crate::routing::IdeaRecord>> {
        self.inner.idea(id).await
    }

    async fn idea_by_code(&self, code: &str) -> Result<Option<crate::routing::IdeaRecord>> {
        self.inner.idea_by_code(code).await
    }

    async fn ideas(&self, filter: &crate::routing::IdeaFilter) -> Result<Vec<crate::routing::IdeaRecord>> {
        self.inner.ideas(filter).await
    }

    async fn idea_by_fingerprint(&self, fingerprint: &str) -> Result<Option<crate::routing::IdeaRecord>> {
        self.inner.idea_by_fingerprint(fingerprint).await
    }

    async fn ideas_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<crate::routing::IdeaRecord>> {
        self.inner.ideas_due(now, limit).await
    }

    async fn open_idea_counts(&self) -> Result<Vec<(String, i64)>> {
        self.inner.open_idea_counts().await
    }

    async fn idea_events(&self, idea_id: &str) -> Result<Vec<crate::routing::IdeaEvent>> {
        self.inner.idea_events(idea_id).await
    }

    async fn idea_counts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<crate::routing::IdeaCount>> {
        self.inner.idea_counts(from, to).await
    }

    async fn confirm_times(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(String, i64)>> {
        self.inner.confirm_times(from, to).await
    }

    async fn routing_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<crate::routing::RoutingAudit>> {
        self.inner.routing_audit(before, limit).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_is_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5432/postgres", "t1"),
            "postgres://u:p@127.0.0.1:5432/t1"
        );
        assert_eq!(with_database("postgres://u:p@db", "t1"), "postgres://u:p@db/t1");
        assert_eq!(
            with_database("postgresql://u@db/x?sslmode=disable", "t1"),
            "postgresql://u@db/t1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres:///x?host=/run/postgresql", "t1"),
            "postgres:///t1?host=/run/postgresql"
        );
    }
}
