//! The API's response bodies, mirrored from `protocol::api` (branch `api`) until that module is
//! merged; then this file goes and `api` re-exports `protocol::api` instead. Same names, same
//! fields, so the switch touches nothing else. Unlike the server's copies these accept unknown
//! fields, so a newer control plane does not break an older console.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use protocol::BenchState;
use protocol::fleet::Location;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An error, as RFC 9457 problem details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A bench with its live state and newest sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bench {
    pub id: String,
    pub name: String,
    pub municipality: String,
    pub location: Location,
    pub state: BenchState,
    pub since: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    pub fw: Option<String>,
    pub config_version: Option<u64>,
    pub sample_ts: Option<DateTime<Utc>>,
    pub power: Option<PowerNow>,
    pub network: Option<NetworkNow>,
    pub sessions: Option<SessionsNow>,
    pub health: Option<HealthNow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerNow {
    pub solar_w: f64,
    pub battery_pct: f64,
    pub battery_v: Option<f64>,
    pub load_w: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkNow {
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub wifi_clients: Option<u32>,
    pub rssi_dbm: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionsNow {
    pub wifi: Option<u32>,
    pub usb: Option<u32>,
    pub kiosk: Option<u32>,
    pub wifi_started: Option<u64>,
    pub usb_started: Option<u64>,
    pub kiosk_started: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthNow {
    pub cpu_temp_c: Option<f64>,
    pub enclosure_temp_c: Option<f64>,
    pub uptime_s: Option<u64>,
    pub disk_free_mb: Option<u64>,
    pub faults: Vec<String>,
}

/// `GET /api/v1/benches/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchDetail {
    #[serde(flatten)]
    pub bench: Bench,
    /// Newest first.
    pub recent_status: Vec<StatusChange>,
    pub status_next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub at: DateTime<Utc>,
    pub state: BenchState,
    pub cause: String,
    pub fw: Option<String>,
    pub config_version: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// A time-bucket width: a whole number of seconds, minutes, hours or days (`30s`, `5m`, `1h`, `1d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    seconds: u64,
}

impl Bucket {
    pub const MAX_SECONDS: u64 = 31 * 86_400;

    pub fn from_seconds(seconds: u64) -> Option<Self> {
        (1..=Self::MAX_SECONDS).contains(&seconds).then_some(Self { seconds })
    }

    pub fn seconds(self) -> u64 {
        self.seconds
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bucket {0:?}")]
pub struct BucketError(String);

impl FromStr for Bucket {
    type Err = BucketError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || BucketError(s.to_owned());
        let unit_at = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (n, unit) = s.split_at(unit_at);
        let n: u64 = n.parse().map_err(|_| err())?;
        let scale = match unit {
            "s" => 1,
            "m" => 60,
            "h" => 3_600,
            "d" => 86_400,
            _ => return Err(err()),
        };
        n.checked_mul(scale).and_then(Self::from_seconds).ok_or_else(err)
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        match () {
            () if s.is_multiple_of(86_400) => write!(f, "{}d", s / 86_400),
            () if s.is_multiple_of(3_600) => write!(f, "{}h", s / 3_600),
            () if s.is_multiple_of(60) => write!(f, "{}m", s / 60),
            () => write!(f, "{s}s"),
        }
    }
}

impl Serialize for Bucket {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Bucket {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionCounts {
    pub wifi: Option<u64>,
    pub usb: Option<u64>,
    pub kiosk: Option<u64>,
}

/// One time bucket of a bench's telemetry; only buckets with samples are listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryPoint {
    pub start: DateTime<Utc>,
    pub samples: u64,
    pub solar_w: Stats,
    pub battery_pct: Stats,
    pub load_w: Option<Stats>,
    pub cpu_temp_c: Option<Stats>,
    pub enclosure_temp_c: Option<Stats>,
    pub sessions_max: SessionCounts,
    pub wifi_clients_max: Option<u64>,
    pub sessions_started: SessionCounts,
    pub rx_bytes_per_s: Option<f64>,
    pub tx_bytes_per_s: Option<f64>,
}

/// `GET /api/v1/benches/{id}/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetrySeries {
    pub bench_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: Bucket,
    /// Oldest first.
    pub points: Vec<TelemetryPoint>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub online: u32,
    pub offline: u32,
    pub stale: u32,
    pub sleeping: u32,
    pub never_seen: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchFaults {
    pub bench_id: String,
    pub faults: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchBattery {
    pub bench_id: String,
    pub battery_pct: f64,
}

/// `GET /api/v1/fleet/summary`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetSummary {
    pub at: DateTime<Utc>,
    pub day_start: DateTime<Utc>,
    pub benches: u32,
    pub by_state: StateCounts,
    pub solar_energy_today_wh: f64,
    pub sessions_today: u64,
    pub bytes_today: u64,
    pub faulty_benches: Vec<BenchFaults>,
    pub low_battery_threshold_pct: f64,
    pub low_battery_benches: Vec<BenchBattery>,
}

/// SSE `bench_state`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchStateEvent {
    pub bench_id: String,
    pub state: BenchState,
    pub at: DateTime<Utc>,
    pub cause: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// SSE `telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryEvent {
    pub bench_id: String,
    pub ts: DateTime<Utc>,
    pub solar_w: f64,
    pub battery_pct: f64,
    pub sessions_active: u32,
    pub wifi_clients: Option<u32>,
    pub faults: Vec<String>,
}

/// SSE `lagged`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaggedEvent {
    pub skipped: u64,
}
