//! The `telemetry` payload (bench -> server) and its validation.
//!
//! Decoding is strict about types and ranges and lenient about unknown fields, so newer firmware
//! can add fields without breaking older servers.

use chrono::{DateTime, Duration, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{MAX_PAYLOAD_BYTES, PAYLOAD_VERSION};

mod ack;
pub use ack::TelemetryAck;

/// One telemetry sample. Counters (`rx_bytes`, `tx_bytes`, `*_started`) count since boot and
/// reset when the bench reboots (`uptime_s` goes down); the other session fields are gauges.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Telemetry {
    /// Payload version, always 1.
    pub v: u32,
    /// When the sample was taken (RFC 3339), by the bench's clock.
    pub ts: DateTime<Utc>,
    /// Sequence number, increasing per sample; with `ts` it identifies a sample.
    pub seq: u64,
    pub power: Power,
    #[serde(default)]
    pub network: Network,
    #[serde(default)]
    pub sessions: Sessions,
    #[serde(default)]
    pub health: Health,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Power {
    /// Solar panel output, watts (0-2000).
    #[schemars(range(min = 0.0, max = 2000.0))]
    pub solar_w: f64,
    /// Battery state of charge, percent (0-100).
    #[schemars(range(min = 0.0, max = 100.0))]
    pub battery_pct: f64,
    /// Battery voltage, volts (0-60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 60.0))]
    pub battery_v: Option<f64>,
    /// Total electrical load, watts (0-2000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 2000.0))]
    pub load_w: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Network {
    /// Bytes received since boot (counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rx_bytes: Option<u64>,
    /// Bytes sent since boot (counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_bytes: Option<u64>,
    /// Wi-Fi clients associated now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_clients: Option<u32>,
    /// Uplink signal strength, dBm (-150-0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -150, max = 0))]
    pub rssi_dbm: Option<i32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Sessions {
    /// Active Wi-Fi sessions now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi: Option<u32>,
    /// Active USB charging sessions now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usb: Option<u32>,
    /// Active kiosk sessions now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kiosk: Option<u32>,
    /// Wi-Fi sessions started since boot (counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi_started: Option<u64>,
    /// USB sessions started since boot (counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usb_started: Option<u64>,
    /// Kiosk sessions started since boot (counter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kiosk_started: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// CPU temperature, °C (-60-150).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -60.0, max = 150.0))]
    pub cpu_temp_c: Option<f64>,
    /// Temperature inside the enclosure, °C (-60-150).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = -60.0, max = 150.0))]
    pub enclosure_temp_c: Option<f64>,
    /// Seconds since boot; going down means the bench rebooted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_s: Option<u64>,
    /// Free disk space, MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_free_mb: Option<u64>,
    /// Active fault codes, e.g. `battery_failure`, `sensor_stuck` (at most 32, each 1-64 chars).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub faults: Vec<String>,
}

/// Why a payload was dropped. A small closed set, so it can label a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Larger than [`MAX_PAYLOAD_BYTES`].
    Oversized,
    /// Not JSON at all.
    MalformedJson,
    /// JSON, but a field is missing or has the wrong type.
    InvalidType,
    /// A value outside its documented range (or not finite).
    OutOfRange,
    /// `v` is not a version this server understands.
    UnsupportedVersion,
    /// `ts` more than 24 h ahead of the server clock.
    FutureTimestamp,
    /// A topic under `benches/` that no bench publishes to.
    UnknownTopic,
}

impl RejectReason {
    pub const ALL: [RejectReason; 7] = [
        Self::Oversized,
        Self::MalformedJson,
        Self::InvalidType,
        Self::OutOfRange,
        Self::UnsupportedVersion,
        Self::FutureTimestamp,
        Self::UnknownTopic,
    ];

    /// The metric label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::MalformedJson => "malformed_json",
            Self::InvalidType => "invalid_type",
            Self::OutOfRange => "out_of_range",
            Self::UnsupportedVersion => "unsupported_version",
            Self::FutureTimestamp => "future_timestamp",
            Self::UnknownTopic => "unknown_topic",
        }
    }
}

/// A dropped payload: the reason (for metrics) and a message for the log.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}: {detail}", reason.label())]
pub struct Rejection {
    pub reason: RejectReason,
    pub detail: String,
}

impl Rejection {
    pub fn new(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            reason,
            detail: detail.into(),
        }
    }
}

/// How far ahead of the server clock a sample's `ts` may be.
pub const MAX_CLOCK_AHEAD: Duration = Duration::hours(24);

/// Parses and validates a payload in bytes, rejecting anything oversized, mistyped or out of range.
pub fn decode_payload<T>(payload: &[u8]) -> Result<T, Rejection>
where
    T: for<'de> Deserialize<'de>,
{
    if payload.len() > MAX_PAYLOAD_BYTES {
        return Err(Rejection::new(
            RejectReason::Oversized,
            format!("payload is {} bytes, the limit is {MAX_PAYLOAD_BYTES}", payload.len()),
        ));
    }
    serde_json::from_slice(payload).map_err(|e| {
        let reason = match e.classify() {
            serde_json::error::Category::Data => RejectReason::InvalidType,
            _ => RejectReason::MalformedJson,
        };
        Rejection::new(reason, e.to_string())
    })
}

impl Telemetry {
    /// Decodes a payload and validates it against the server clock `now`.
    pub fn decode(payload: &[u8], now: DateTime<Utc>) -> Result<Self, Rejection> {
        let t: Self = decode_payload(payload)?;
        t.validate(now)?;
        Ok(t)
    }

    /// Checks versions and ranges.
    pub fn validate(&self, now: DateTime<Utc>) -> Result<(), Rejection> {
        if self.v != PAYLOAD_VERSION {
            return Err(Rejection::new(
                RejectReason::UnsupportedVersion,
                format!(
                    "payload version {} is not supported (expected {PAYLOAD_VERSION})",
                    self.v
                ),
            ));
        }
        if self.ts > now + MAX_CLOCK_AHEAD {
            return Err(Rejection::new(
                RejectReason::FutureTimestamp,
                format!("ts {} is more than 24 h ahead of the server clock {now}", self.ts),
            ));
        }
        let p = &self.power;
        let h = &self.health;
        range("power.solar_w", Some(p.solar_w), 0.0, 2000.0)?;
        range("power.battery_pct", Some(p.battery_pct), 0.0, 100.0)?;
        range("power.battery_v", p.battery_v, 0.0, 60.0)?;
        range("power.load_w", p.load_w, 0.0, 2000.0)?;
        range("health.cpu_temp_c", h.cpu_temp_c, -60.0, 150.0)?;
        range("health.enclosure_temp_c", h.enclosure_temp_c, -60.0, 150.0)?;
        if let Some(rssi) = self.network.rssi_dbm {
            range("network.rssi_dbm", Some(f64::from(rssi)), -150.0, 0.0)?;
        }
        // Counters land in signed 64-bit columns.
        let counters = [
            ("network.rx_bytes", self.network.rx_bytes),
            ("network.tx_bytes", self.network.tx_bytes),
            ("sessions.wifi_started", self.sessions.wifi_started),
            ("sessions.usb_started", self.sessions.usb_started),
            ("sessions.kiosk_started", self.sessions.kiosk_started),
            ("health.uptime_s", h.uptime_s),
            ("health.disk_free_mb", h.disk_free_mb),
            ("seq", Some(self.seq)),
        ];
        for (field, value) in counters {
            if value.is_some_and(|v| v > i64::MAX as u64) {
                return Err(Rejection::new(
                    RejectReason::OutOfRange,
                    format!("{field} exceeds 2^63-1"),
                ));
            }
        }
        if h.faults.len() > 32 {
            return Err(Rejection::new(
                RejectReason::OutOfRange,
                "health.faults has more than 32 entries",
            ));
        }
        if let Some(f) = h
            .faults
            .iter()
            .find(|f| f.is_empty() || f.len() > 64 || f.chars().any(char::is_control))
        {
            return Err(Rejection::new(
                RejectReason::OutOfRange,
                format!("health.faults entry {f:?} must be 1-64 printable characters"),
            ));
        }
        Ok(())
    }
}

fn range(field: &str, value: Option<f64>, min: f64, max: f64) -> Result<(), Rejection> {
    match value {
        Some(v) if !v.is_finite() || v < min || v > max => Err(Rejection::new(
            RejectReason::OutOfRange,
            format!("{field} = {v} is outside {min}..={max}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":42,
       "power":{"solar_w":61.5,"battery_pct":87.5,"battery_v":12.9,"load_w":9.2},
       "network":{"rx_bytes":1048576,"tx_bytes":524288,"wifi_clients":4,"rssi_dbm":-67},
       "sessions":{"wifi":4,"usb":2,"kiosk":1,"wifi_started":130,"usb_started":41,"kiosk_started":12},
       "health":{"cpu_temp_c":51.0,"enclosure_temp_c":29.5,"uptime_s":86400,"disk_free_mb":2100,"faults":[]}}"#;

    fn now() -> DateTime<Utc> {
        "2026-11-26T10:00:05Z".parse().unwrap()
    }

    fn reason(payload: &str) -> RejectReason {
        Telemetry::decode(payload.as_bytes(), now()).unwrap_err().reason
    }

    #[test]
    fn decodes_the_documented_example() {
        let t = Telemetry::decode(EXAMPLE.as_bytes(), now()).unwrap();
        assert_eq!(t.seq, 42);
        assert_eq!(t.power.battery_v, Some(12.9));
        assert_eq!(t.network.rssi_dbm, Some(-67));
        assert_eq!(t.sessions.kiosk_started, Some(12));
        assert_eq!(t.health.uptime_s, Some(86400));
    }

    #[test]
    fn only_required_fields_and_unknown_fields() {
        let t = Telemetry::decode(
            br#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":1,"power":{"solar_w":0,"battery_pct":100},"future":{"x":1}}"#,
            now(),
        )
        .unwrap();
        assert_eq!(t.network, Network::default());
        assert_eq!(t.power.load_w, None);
    }

    #[test]
    fn rejections_carry_reasons() {
        assert_eq!(reason("{not json"), RejectReason::MalformedJson);
        assert_eq!(reason(""), RejectReason::MalformedJson);
        assert_eq!(
            reason(r#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":1,"power":{"solar_w":"lots","battery_pct":1}}"#),
            RejectReason::InvalidType
        );
        assert_eq!(
            reason(r#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":1}"#),
            RejectReason::InvalidType
        );
        assert_eq!(
            reason(r#"{"v":1,"ts":"yesterday","seq":1,"power":{"solar_w":1,"battery_pct":1}}"#),
            RejectReason::InvalidType
        );
        assert_eq!(
            reason(r#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":-1,"power":{"solar_w":1,"battery_pct":1}}"#),
            RejectReason::InvalidType
        );
        assert_eq!(
            reason(r#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":1,"power":{"solar_w":1,"battery_pct":100.5}}"#),
            RejectReason::OutOfRange
        );
        assert_eq!(
            reason(r#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":1,"power":{"solar_w":-1,"battery_pct":1}}"#),
            RejectReason::OutOfRange
        );
        assert_eq!(
            reason(
                r#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":1,"power":{"solar_w":1,"battery_pct":1},"health":{"faults":[""]}}"#
            ),
            RejectReason::OutOfRange
        );
        assert_eq!(
            reason(r#"{"v":2,"ts":"2026-11-26T10:00:00Z","seq":1,"power":{"solar_w":1,"battery_pct":1}}"#),
            RejectReason::UnsupportedVersion
        );
        assert_eq!(
            reason(r#"{"v":1,"ts":"2026-11-27T10:00:06Z","seq":1,"power":{"solar_w":1,"battery_pct":1}}"#),
            RejectReason::FutureTimestamp
        );
        // NaN is not JSON; serde_json refuses it as a syntax error.
        assert_eq!(
            reason(r#"{"v":1,"ts":"2026-11-26T10:00:00Z","seq":1,"power":{"solar_w":NaN,"battery_pct":1}}"#),
            RejectReason::MalformedJson
        );
        let big = format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(MAX_PAYLOAD_BYTES));
        assert_eq!(reason(&big), RejectReason::Oversized);
    }

    #[test]
    fn a_day_ahead_is_still_accepted() {
        let p = r#"{"v":1,"ts":"2026-11-27T10:00:04Z","seq":1,"power":{"solar_w":1,"battery_pct":1}}"#;
        assert!(Telemetry::decode(p.as_bytes(), now()).is_ok());
    }
}
