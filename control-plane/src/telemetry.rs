//! Telemetry as the control plane keeps it: one flattened row per sample, time buckets and
//! usage totals computed by the database, and the [`TelemetryStore`] the backends implement.
//! Samples arrive through `ingest` and are read back by the API.

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use protocol::Telemetry;

use crate::persistence::Result;

pub mod rollups;

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
    /// Memory this row holds, its heap parts included (for the ingest buffer's byte bound).
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.bench_id.capacity()
            + self.faults.capacity() * std::mem::size_of::<String>()
            + self.faults.iter().map(String::capacity).sum::<usize>()
    }

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

/// What one bench harvested and served over a period (see [`TelemetryStore::usage_totals`]).
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

/// Where telemetry samples are kept (implemented by each store backend).
#[async_trait]
pub trait TelemetryStore: Send + Sync {
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

    /// Brings the rollups of up to `limit` minutes that received samples and ended by `now` up
    /// to date (the oldest first); returns how many it took, so a caller that got `limit` knows
    /// more are waiting. Reads give the same answers before and after; they are faster after.
    async fn refresh_rollups(&self, now: DateTime<Utc>, limit: u32) -> Result<u64>;
}
