//! The HTTP API's request and response bodies (`/api/v1`), shared by the control plane, the
//! terminal console and the simulator so they cannot drift.
//!
//! Plain serde types. With the `openapi` feature they also derive `utoipa::ToSchema` /
//! `IntoParams`, from which the control plane generates its OpenAPI document. Query structs
//! refuse unknown fields: a misspelt parameter is an error, not a silently ignored filter.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::BenchState;
use crate::fleet::Location;

/// The media type of every error response.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An error, as RFC 9457 problem details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    /// A URI naming the kind of problem, e.g. `https://benchfleet.invalid/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the kind of problem; the same for every occurrence.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong this time, for a human.
    pub detail: String,
    /// For validation errors: the query parameter, path segment or body field at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For validation errors with more than one bad field (a configuration document): every one
    /// of them; `field` is the first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<crate::config::FieldError>,
    /// The request id (`x-request-id`), to find the matching log lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// A query string with no parameters: anything present is refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// `GET /api/v1/benches` filters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct BenchesQuery {
    /// Only benches in this presence state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<BenchState>,
    /// Only benches in this municipality (exact name with diacritics, case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
}

/// A bench with its live state and newest sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bench {
    pub id: String,
    pub name: String,
    /// With diacritics, e.g. `Žepče`.
    pub municipality: String,
    pub location: Location,
    pub state: BenchState,
    /// When `state` began (unknown for a bench never seen).
    pub since: Option<DateTime<Utc>>,
    /// When the newest telemetry sample arrived.
    pub last_seen: Option<DateTime<Utc>>,
    /// For `sleeping`: when the bench said it would be back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// Firmware version from the bench's last status message.
    pub fw: Option<String>,
    /// The configuration version the bench runs: the one it last reported, by an `applied`
    /// acknowledgement or in its status (`reported_version` of `/api/v1/ota/benches/{id}`).
    pub config_version: Option<u64>,
    /// The newest telemetry sample's own time (bench clock).
    pub sample_ts: Option<DateTime<Utc>>,
    /// Power in the newest sample.
    pub power: Option<PowerNow>,
    /// Network in the newest sample.
    pub network: Option<NetworkNow>,
    /// Sessions in the newest sample.
    pub sessions: Option<SessionsNow>,
    /// Health in the newest sample.
    pub health: Option<HealthNow>,
}

/// Power readings of one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PowerNow {
    /// Watts.
    pub solar_w: f64,
    /// Percent.
    pub battery_pct: f64,
    /// Volts.
    pub battery_v: Option<f64>,
    /// Watts.
    pub load_w: Option<f64>,
}

/// Network readings of one sample; byte counters count since the bench booted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NetworkNow {
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub wifi_clients: Option<u32>,
    pub rssi_dbm: Option<i32>,
}

/// Active sessions in one sample, and sessions started since boot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionsNow {
    pub wifi: Option<u32>,
    pub usb: Option<u32>,
    pub kiosk: Option<u32>,
    pub wifi_started: Option<u64>,
    pub usb_started: Option<u64>,
    pub kiosk_started: Option<u64>,
}

/// Health readings of one sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HealthNow {
    /// °C.
    pub cpu_temp_c: Option<f64>,
    /// °C.
    pub enclosure_temp_c: Option<f64>,
    pub uptime_s: Option<u64>,
    pub disk_free_mb: Option<u64>,
    /// Active fault codes; empty when healthy.
    pub faults: Vec<String>,
}

/// `GET /api/v1/benches/{id}`: the bench and its most recent status changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchDetail {
    #[serde(flatten)]
    pub bench: Bench,
    /// Newest first.
    pub recent_status: Vec<StatusChange>,
    /// Pass as `cursor` to `/api/v1/benches/{id}/status-events` for older changes.
    pub status_next_cursor: Option<String>,
}

/// One stored presence change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusChange {
    pub at: DateTime<Utc>,
    pub state: BenchState,
    /// What caused it: `connected`, `disconnected`, `last_will`, `announced`,
    /// `heartbeat_timeout`, `telemetry_resumed`, `sleep_expired`, `control_plane_restart`…
    pub cause: String,
    pub fw: Option<String>,
    pub config_version: Option<u64>,
    /// For `sleeping`: the announced wake-up time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// `GET /api/v1/benches/{id}/status-events` parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct StatusEventsQuery {
    /// Opaque cursor from a previous page's `next_cursor`; absent for the newest page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size, 1-500 (default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// A page of status changes, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusEventsPage {
    pub items: Vec<StatusChange>,
    /// The cursor of the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A time-bucket width: a whole number of seconds, minutes, hours or days (`30s`, `5m`, `1h`, `1d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bucket {
    seconds: u64,
}

impl Bucket {
    /// The longest bucket accepted: 31 days.
    pub const MAX_SECONDS: u64 = 31 * 86_400;

    /// A bucket of `seconds` (1 s to 31 days).
    pub fn from_seconds(seconds: u64) -> Option<Self> {
        (1..=Self::MAX_SECONDS).contains(&seconds).then_some(Self { seconds })
    }

    pub fn seconds(self) -> u64 {
        self.seconds
    }
}

/// Why a bucket width did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bucket {0:?}: use a whole number with s, m, h or d, e.g. 30s, 5m, 1h, 1d (at most 31d)")]
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
    /// The largest unit that divides the width: `300` seconds is `5m`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.seconds;
        let (n, unit) = [(86_400, "d"), (3_600, "h"), (60, "m")]
            .into_iter()
            .find(|&(scale, _)| s.is_multiple_of(scale))
            .map_or((s, "s"), |(scale, unit)| (s / scale, unit));
        write!(f, "{n}{unit}")
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

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for Bucket {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9]+[smhd]$"))
            .description(Some("Bucket width: a whole number of s, m, h or d, at most 31d"))
            .examples([serde_json::json!("5m")])
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for Bucket {}

/// An RFC 3339 time in a query string. A `+` in the offset arrives as a space when the caller
/// did not percent-encode it (`+01:00` → ` 01:00`); that one mistake is forgiven.
pub mod query_time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Parses RFC 3339 (`2026-11-26T10:00:00Z`, `2026-11-26T11:00:00+01:00`) into UTC.
    pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
        let attempt = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc));
        attempt(s)
            .or_else(|e| match s.rfind(' ') {
                Some(i) if i > 10 => attempt(&format!("{}+{}", &s[..i], &s[i + 1..])).map_err(|_| e),
                _ => Err(e),
            })
            .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e}), e.g. 2026-11-26T10:00:00Z"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(deserializer)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

/// `GET /api/v1/benches/{id}/telemetry` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct TelemetryQuery {
    /// Start, inclusive (RFC 3339).
    #[serde(with = "query_time")]
    #[cfg_attr(feature = "openapi", param(value_type = DateTime<Utc>))]
    pub from: DateTime<Utc>,
    /// End, exclusive (RFC 3339); at most 400 days after `from`.
    #[serde(with = "query_time")]
    #[cfg_attr(feature = "openapi", param(value_type = DateTime<Utc>))]
    pub to: DateTime<Utc>,
    /// Bucket width; `(to - from) / bucket` may be at most 10 000.
    pub bucket: Bucket,
}

/// Average, minimum and maximum of a reading over a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Stats {
    pub avg: f64,
    pub min: f64,
    pub max: f64,
}

/// Per-kind session figures; absent kinds were not reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionCounts {
    pub wifi: Option<u64>,
    pub usb: Option<u64>,
    pub kiosk: Option<u64>,
}

/// One time bucket of a bench's telemetry. Buckets are aligned to the Unix epoch (so `1d` is a
/// UTC day) and only buckets with samples are listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TelemetryPoint {
    /// Start of the bucket.
    pub start: DateTime<Utc>,
    /// Samples in the bucket.
    pub samples: u64,
    /// Watts.
    pub solar_w: Stats,
    /// Percent.
    pub battery_pct: Stats,
    /// Watts.
    pub load_w: Option<Stats>,
    /// °C.
    pub cpu_temp_c: Option<Stats>,
    /// °C.
    pub enclosure_temp_c: Option<Stats>,
    /// Most active sessions in one sample, per kind.
    pub sessions_max: SessionCounts,
    /// Most Wi-Fi clients in one sample.
    pub wifi_clients_max: Option<u64>,
    /// Sessions started in the bucket, per kind, from the since-boot counters (reboots handled).
    pub sessions_started: SessionCounts,
    /// Received bytes per second over the bucket's sample intervals, from the since-boot
    /// counter (a reset after a reboot counts from zero, like Prometheus `rate()`).
    pub rx_bytes_per_s: Option<f64>,
    /// Sent bytes per second, like `rx_bytes_per_s`.
    pub tx_bytes_per_s: Option<f64>,
}

/// `GET /api/v1/benches/{id}/telemetry`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TelemetrySeries {
    pub bench_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub bucket: Bucket,
    /// Oldest first.
    pub points: Vec<TelemetryPoint>,
}

/// Benches per presence state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StateCounts {
    pub online: u32,
    pub offline: u32,
    pub stale: u32,
    pub sleeping: u32,
    pub never_seen: u32,
}

impl StateCounts {
    /// Counts one bench in `state`.
    pub fn add(&mut self, state: BenchState) {
        let n = match state {
            BenchState::Online => &mut self.online,
            BenchState::Offline => &mut self.offline,
            BenchState::Stale => &mut self.stale,
            BenchState::Sleeping => &mut self.sleeping,
            BenchState::NeverSeen => &mut self.never_seen,
        };
        *n += 1;
    }
}

/// A bench whose newest sample reports faults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchFaults {
    pub bench_id: String,
    pub faults: Vec<String>,
}

/// A bench whose newest sample is below the low-battery threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchBattery {
    pub bench_id: String,
    pub battery_pct: f64,
}

/// `GET /api/v1/fleet/summary` parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct FleetSummaryQuery {
    /// Battery percentage below which a bench is listed as low (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_battery_pct: Option<f64>,
}

/// `GET /api/v1/fleet/summary`: the fleet at a glance, "today" being the current UTC day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FleetSummary {
    /// When the summary was computed.
    pub at: DateTime<Utc>,
    /// Start of "today" (00:00 UTC).
    pub day_start: DateTime<Utc>,
    /// Registered benches.
    pub benches: u32,
    pub by_state: StateCounts,
    /// Solar energy harvested today by the whole fleet, watt-hours (trapezoids between
    /// consecutive samples at most 15 minutes apart).
    pub solar_energy_today_wh: f64,
    /// Sessions (Wi-Fi, USB, kiosk) started today.
    pub sessions_today: u64,
    /// Bytes received plus sent today.
    pub bytes_today: u64,
    /// Benches whose newest sample reports faults.
    pub faulty_benches: Vec<BenchFaults>,
    /// The threshold used for `low_battery_benches`, percent.
    pub low_battery_threshold_pct: f64,
    /// Benches whose newest sample is below the threshold, lowest first.
    pub low_battery_benches: Vec<BenchBattery>,
}

/// How a report is returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    #[default]
    Json,
    /// UTF-8 CSV with a byte-order mark, so spreadsheets keep the diacritics.
    Csv,
}

/// `GET /api/v1/reports/uptime` parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct UptimeQuery {
    /// Start, inclusive (RFC 3339).
    #[serde(with = "query_time")]
    #[cfg_attr(feature = "openapi", param(value_type = DateTime<Utc>))]
    pub from: DateTime<Utc>,
    /// End, exclusive (RFC 3339); at most 400 days after `from`. Times after now count up to now.
    #[serde(with = "query_time")]
    #[cfg_attr(feature = "openapi", param(value_type = DateTime<Utc>))]
    pub to: DateTime<Utc>,
    /// Only benches in this municipality (case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub municipality: Option<String>,
    /// `json` (default) or `csv`; `Accept: text/csv` also selects CSV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<ReportFormat>,
}

/// Availability figures over a period. Minutes are fractional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UptimeFigures {
    /// `online / (online + offline)` in percent; planned sleep and never-seen time are left out.
    /// Absent when the bench was neither online nor offline in the period.
    pub availability_pct: Option<f64>,
    pub online_minutes: f64,
    /// Offline or stale (connected but silent): unavailable.
    pub offline_minutes: f64,
    /// Announced, planned sleep: reported, not counted against availability.
    pub sleeping_minutes: f64,
    /// Before the bench was first seen.
    pub never_seen_minutes: f64,
    /// Unavailable stretches of at least 5 minutes.
    pub outages: u32,
    pub longest_outage_minutes: f64,
    /// Mean length of the outages that ended within the period.
    pub mttr_minutes: Option<f64>,
}

/// One bench's row of the uptime report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchUptime {
    pub bench_id: String,
    pub name: String,
    pub municipality: String,
    #[serde(flatten)]
    pub figures: UptimeFigures,
}

/// `GET /api/v1/reports/uptime`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UptimeReport {
    pub from: DateTime<Utc>,
    /// The end actually covered: the requested `to`, or now if that is earlier.
    pub to: DateTime<Utc>,
    pub municipality: Option<String>,
    pub benches: Vec<BenchUptime>,
    /// The fleet as a whole: minutes and outages summed, the longest outage, MTTR over all
    /// recovered outages, availability from the summed minutes.
    pub total: UptimeFigures,
}

/// SSE `bench_state` event: a bench's presence changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchStateEvent {
    pub bench_id: String,
    pub state: BenchState,
    pub at: DateTime<Utc>,
    pub cause: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// SSE `telemetry` event: a bench sent a sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TelemetryEvent {
    pub bench_id: String,
    pub ts: DateTime<Utc>,
    pub solar_w: f64,
    pub battery_pct: f64,
    /// Wi-Fi + USB + kiosk sessions active.
    pub sessions_active: u32,
    pub wifi_clients: Option<u32>,
    pub faults: Vec<String>,
}

/// SSE `lagged` event: this client fell behind and `skipped` events were dropped for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LaggedEvent {
    pub skipped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_parse_and_print() {
        for (text, seconds, shown) in [
            ("30s", 30, "30s"),
            ("1m", 60, "1m"),
            ("5m", 300, "5m"),
            ("90m", 5400, "90m"),
            ("60m", 3600, "1h"),
            ("1h", 3600, "1h"),
            ("1d", 86_400, "1d"),
            ("31d", 31 * 86_400, "31d"),
        ] {
            let b: Bucket = text.parse().unwrap();
            assert_eq!(b.seconds(), seconds, "{text}");
            assert_eq!(b.to_string(), shown);
        }
        for bad in [
            "",
            "5",
            "m",
            "0m",
            "-5m",
            "5 m",
            "5M",
            "1w",
            "32d",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert!(bad.parse::<Bucket>().is_err(), "{bad:?} parsed");
        }
        assert_eq!(serde_json::to_value("5m".parse::<Bucket>().unwrap()).unwrap(), "5m");
    }

    #[test]
    fn query_times_forgive_an_unencoded_plus() {
        let utc = query_time::parse("2026-11-26T10:00:00Z").unwrap();
        assert_eq!(query_time::parse("2026-11-26T11:00:00+01:00").unwrap(), utc);
        assert_eq!(query_time::parse("2026-11-26T11:00:00 01:00").unwrap(), utc);
        let err = query_time::parse("yesterday").unwrap_err();
        assert!(err.contains("RFC 3339"), "{err}");
        assert!(query_time::parse("2026-11-26").is_err());
    }

    #[test]
    fn problems_use_the_rfc_field_names() {
        let p = Problem {
            kind: "about:blank".into(),
            title: "Not Found".into(),
            status: 404,
            detail: "no bench x".into(),
            field: None,
            errors: Vec::new(),
            request_id: None,
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            serde_json::json!({"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no bench x"})
        );
    }

    #[test]
    fn state_counts() {
        let mut c = StateCounts::default();
        c.add(BenchState::Online);
        c.add(BenchState::Online);
        c.add(BenchState::NeverSeen);
        assert_eq!((c.online, c.never_seen, c.offline), (2, 1, 0));
    }
}

/// A freshly signed MQTT password for one bench (`POST /api/v1/benches/{id}/token`, admin only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchToken {
    /// The bench id, also its MQTT client id and user name.
    pub bench: String,
    /// The JWT to present as the MQTT password.
    pub token: String,
    /// When the token stops working.
    pub expires_at: chrono::DateTime<chrono::Utc>,
}
