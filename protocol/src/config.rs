//! Over-the-air configuration: the document the server keeps retained on `benches/{id}/config`
//! ([`ConfigDocument`] carrying a [`BenchConfig`]) and the acknowledgement a bench sends back on
//! `benches/{id}/config/ack` ([`ConfigAck`]).
//!
//! Decoding is lenient about unknown fields (newer servers may add settings); the server checks
//! every document it issues with [`BenchConfig::validate`], which names each bad field.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::PAYLOAD_VERSION;
use crate::telemetry::{RejectReason, Rejection, decode_payload};

/// Accepted range of `telemetry_interval_s`, seconds.
pub const TELEMETRY_INTERVAL_S: std::ops::RangeInclusive<u32> = 5..=3600;

/// `benches/{id}/config` (server -> bench, retained, QoS 1): the whole configuration a bench
/// should run. `version` increases with every change of this bench's configuration, so a bench
/// applies a document only if its version is newer than the one it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigDocument {
    /// Payload version, always 1.
    pub v: u32,
    /// The configuration version, assigned by the server; increases per bench.
    pub version: u64,
    /// When the server issued this version (RFC 3339).
    pub issued_at: DateTime<Utc>,
    pub config: BenchConfig,
}

impl ConfigDocument {
    pub fn new(version: u64, issued_at: DateTime<Utc>, config: BenchConfig) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            version,
            issued_at,
            config,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The settings of one bench. Every field is always present in a document, except
/// `telemetry_interval_s`: absent, the bench keeps its built-in interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BenchConfig {
    /// Seconds between telemetry samples, 5-3600. Absent: the bench's built-in interval (the
    /// registry's expected interval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 5, max = 3600))]
    pub telemetry_interval_s: Option<u32>,
    pub wifi: WifiConfig,
    pub usb: UsbConfig,
    pub kiosk: KioskConfig,
    pub power: PowerConfig,
}

/// The public Wi-Fi hotspot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WifiConfig {
    pub enabled: bool,
    /// Network name, 1-32 bytes of printable characters.
    #[schemars(length(min = 1, max = 32))]
    pub ssid: String,
    /// Bandwidth per client, kbit/s (0-1000000; 0 = no cap).
    #[schemars(range(max = 1_000_000))]
    pub bandwidth_cap_kbps_per_client: u32,
    /// Longest session of one client, minutes (0-1440; 0 = no limit).
    #[schemars(range(max = 1440))]
    pub session_limit_min: u32,
    /// Data the hotspot serves per day, MB (0-1000000; 0 = no cap).
    #[schemars(range(max = 1_000_000))]
    pub daily_data_cap_mb: u32,
}

/// The USB charging ports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsbConfig {
    pub enabled: bool,
    /// Longest charging session, minutes (0-1440; 0 = no limit).
    #[schemars(range(max = 1440))]
    pub max_session_min: u32,
}

/// The citizens' kiosk (screen and idea box).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KioskConfig {
    pub enabled: bool,
    /// Languages offered, first is the default; 1-5 distinct entries.
    #[schemars(length(min = 1, max = 5))]
    pub languages: Vec<Language>,
    /// Categories a citizen can file an idea under: 1-20 distinct slugs of 1-40 characters
    /// (`a-z`, `0-9`, `-`, `_`).
    #[schemars(length(min = 1, max = 20))]
    pub idea_categories: Vec<String>,
    /// Screen brightness by time of day (bench local time): from each `from` until the next
    /// entry's, wrapping at midnight. 1-24 entries in increasing time order.
    #[schemars(length(min = 1, max = 24))]
    pub brightness_schedule: Vec<BrightnessStep>,
}

/// A kiosk language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Language {
    #[serde(rename = "bs")]
    Bosnian,
    #[serde(rename = "hr")]
    Croatian,
    #[serde(rename = "sr-Latn")]
    SerbianLatin,
    #[serde(rename = "sr-Cyrl")]
    SerbianCyrillic,
    #[serde(rename = "en")]
    English,
}

/// One entry of the brightness schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BrightnessStep {
    /// Start time, `HH:MM` (00:00-23:59).
    #[schemars(regex(pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub from: String,
    /// Screen brightness, percent (0-100).
    #[schemars(range(max = 100))]
    pub percent: u8,
}

/// Battery thresholds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PowerConfig {
    /// Below this charge the bench sheds load (Wi-Fi first), percent (1-90).
    #[schemars(range(min = 1, max = 90))]
    pub low_battery_pct: u8,
    /// Below this charge the bench sleeps, percent (0-50, less than `low_battery_pct`).
    #[schemars(range(max = 50))]
    pub sleep_below_pct: u8,
}

impl Default for BenchConfig {
    /// The built-in configuration: what every bench runs before any layer changes it.
    fn default() -> Self {
        let step = |from: &str, percent| BrightnessStep {
            from: from.into(),
            percent,
        };
        Self {
            telemetry_interval_s: None,
            wifi: WifiConfig {
                enabled: true,
                ssid: "Smart Bench".into(),
                bandwidth_cap_kbps_per_client: 2048,
                session_limit_min: 60,
                daily_data_cap_mb: 5000,
            },
            usb: UsbConfig {
                enabled: true,
                max_session_min: 120,
            },
            kiosk: KioskConfig {
                enabled: true,
                languages: vec![
                    Language::Bosnian,
                    Language::Croatian,
                    Language::SerbianLatin,
                    Language::SerbianCyrillic,
                    Language::English,
                ],
                idea_categories: ["environment", "infrastructure", "youth", "culture", "other"]
                    .map(String::from)
                    .to_vec(),
                brightness_schedule: vec![step("06:00", 40), step("18:00", 80), step("23:00", 20)],
            },
            power: PowerConfig {
                low_battery_pct: 20,
                sleep_below_pct: 5,
            },
        }
    }
}

/// One invalid field: its dotted path (e.g. `wifi.ssid`, `kiosk.languages`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl BenchConfig {
    /// Every range, length and consistency rule; one error per bad field, in field order.
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut check = |ok: bool, field: &str, message: String| {
            if !ok {
                errors.push(FieldError::new(field, message));
            }
        };
        if let Some(s) = self.telemetry_interval_s {
            check(
                TELEMETRY_INTERVAL_S.contains(&s),
                "telemetry_interval_s",
                format!("must be 5-3600 seconds, got {s}"),
            );
        }
        let w = &self.wifi;
        check(
            !w.ssid.is_empty() && w.ssid.len() <= 32 && !w.ssid.chars().any(char::is_control),
            "wifi.ssid",
            format!("must be 1-32 bytes of printable characters, got {:?}", w.ssid),
        );
        check(
            w.bandwidth_cap_kbps_per_client <= 1_000_000,
            "wifi.bandwidth_cap_kbps_per_client",
            format!("must be 0-1000000, got {}", w.bandwidth_cap_kbps_per_client),
        );
        check(
            w.session_limit_min <= 1440,
            "wifi.session_limit_min",
            format!("must be 0-1440 minutes, got {}", w.session_limit_min),
        );
        check(
            w.daily_data_cap_mb <= 1_000_000,
            "wifi.daily_data_cap_mb",
            format!("must be 0-1000000, got {}", w.daily_data_cap_mb),
        );
        check(
            self.usb.max_session_min <= 1440,
            "usb.max_session_min",
            format!("must be 0-1440 minutes, got {}", self.usb.max_session_min),
        );
        let k = &self.kiosk;
        check(
            !k.languages.is_empty() && !has_duplicates(&k.languages),
            "kiosk.languages",
            "must list 1-5 distinct languages".into(),
        );
        let bad_category = k.idea_categories.iter().find(|c| {
            c.is_empty()
                || c.len() > 40
                || !c
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        });
        check(
            bad_category.is_none(),
            "kiosk.idea_categories",
            format!(
                "{:?} is not a slug of 1-40 characters (a-z, 0-9, -, _)",
                bad_category.map(String::as_str).unwrap_or_default()
            ),
        );
        check(
            (1..=20).contains(&k.idea_categories.len()) && !has_duplicates(&k.idea_categories),
            "kiosk.idea_categories",
            format!("must list 1-20 distinct categories, got {}", k.idea_categories.len()),
        );
        let times: Vec<Option<u32>> = k.brightness_schedule.iter().map(|s| minutes_of_day(&s.from)).collect();
        if let Some(i) = times.iter().position(Option::is_none) {
            check(
                false,
                "kiosk.brightness_schedule",
                format!(
                    "entry {i}: from {:?} is not a time HH:MM",
                    k.brightness_schedule[i].from
                ),
            );
        } else {
            check(
                (1..=24).contains(&times.len()) && times.windows(2).all(|w| w[0] < w[1]),
                "kiosk.brightness_schedule",
                "must have 1-24 entries in increasing time order".into(),
            );
        }
        if let Some(s) = k.brightness_schedule.iter().find(|s| s.percent > 100) {
            check(
                false,
                "kiosk.brightness_schedule",
                format!("percent must be 0-100, got {} at {}", s.percent, s.from),
            );
        }
        let p = &self.power;
        check(
            (1..=90).contains(&p.low_battery_pct),
            "power.low_battery_pct",
            format!("must be 1-90, got {}", p.low_battery_pct),
        );
        check(
            p.sleep_below_pct <= 50 && p.sleep_below_pct < p.low_battery_pct,
            "power.sleep_below_pct",
            format!(
                "must be 0-50 and below power.low_battery_pct ({}), got {}",
                p.low_battery_pct, p.sleep_below_pct
            ),
        );
        let size = serde_json::to_vec(&ConfigDocument::new(u64::MAX, DateTime::<Utc>::MAX_UTC, self.clone()))
            .map_or(usize::MAX, |d| d.len());
        check(
            size <= crate::MAX_PAYLOAD_BYTES,
            "config",
            format!(
                "the document would be {size} bytes, the limit is {}",
                crate::MAX_PAYLOAD_BYTES
            ),
        );
        errors
    }
}

fn has_duplicates<T: Ord>(items: &[T]) -> bool {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort();
    sorted.windows(2).any(|w| w[0] == w[1])
}

/// `HH:MM` as minutes after midnight.
fn minutes_of_day(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// `benches/{id}/config/ack` (bench -> server, QoS 1, not retained): what a bench did with a
/// configuration version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConfigAck {
    /// Payload version, always 1.
    pub v: u32,
    /// The version this acknowledges.
    pub version: u64,
    pub status: AckStatus,
    /// With `rejected`: why, for the operator (at most 1024 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub error: Option<String>,
}

/// What a bench did with a configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// The bench runs this version now.
    Applied,
    /// The bench refused it and keeps running its previous version.
    Rejected,
}

impl ConfigAck {
    pub fn applied(version: u64) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            version,
            status: AckStatus::Applied,
            error: None,
        }
    }

    pub fn rejected(version: u64, error: impl Into<String>) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            version,
            status: AckStatus::Rejected,
            error: Some(error.into()),
        }
    }

    /// Decodes and validates an acknowledgement.
    pub fn decode(payload: &[u8]) -> Result<Self, Rejection> {
        let ack: Self = decode_payload(payload)?;
        if ack.v != PAYLOAD_VERSION {
            return Err(Rejection::new(
                RejectReason::UnsupportedVersion,
                format!("payload version {} is not supported", ack.v),
            ));
        }
        if ack.error.as_ref().is_some_and(|e| e.chars().count() > 1024) {
            return Err(Rejection::new(
                RejectReason::OutOfRange,
                "error must be at most 1024 characters",
            ));
        }
        Ok(ack)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn the_built_in_configuration_is_valid_and_fits() {
        assert_eq!(BenchConfig::default().validate(), []);
        let doc = ConfigDocument::new(7, "2026-11-26T10:00:00Z".parse().unwrap(), BenchConfig::default());
        let json = String::from_utf8(doc.to_json()).unwrap();
        assert!(
            json.starts_with(
                r#"{"v":1,"version":7,"issued_at":"2026-11-26T10:00:00Z","config":{"wifi":{"enabled":true,"#
            ),
            "{json}"
        );
        assert!(
            json.contains(r#""languages":["bs","hr","sr-Latn","sr-Cyrl","en"]"#),
            "{json}"
        );
        let back: ConfigDocument = serde_json::from_str(&json).unwrap();
        assert_eq!(back, doc);
    }

    #[test]
    fn every_bad_field_is_named() {
        let mut c = BenchConfig {
            telemetry_interval_s: Some(4),
            ..BenchConfig::default()
        };
        c.wifi.ssid = "x".repeat(33);
        c.wifi.session_limit_min = 1441;
        c.kiosk.languages = vec![Language::English, Language::English];
        c.kiosk.idea_categories = vec!["Roads".into()];
        c.kiosk.brightness_schedule[1].from = "25:00".into();
        c.power.low_battery_pct = 10;
        c.power.sleep_below_pct = 10;
        let errors = c.validate();
        assert_eq!(
            fields(&errors),
            [
                "telemetry_interval_s",
                "wifi.ssid",
                "wifi.session_limit_min",
                "kiosk.languages",
                "kiosk.idea_categories",
                "kiosk.brightness_schedule",
                "power.sleep_below_pct"
            ]
        );
        assert_eq!(errors[0].message, "must be 5-3600 seconds, got 4");
        assert!(errors[5].message.contains("\"25:00\""), "{}", errors[5].message);
        assert!(errors[6].message.contains("below power.low_battery_pct (10)"));
    }

    #[test]
    fn schedules_must_increase() {
        let mut c = BenchConfig::default();
        c.kiosk.brightness_schedule.swap(0, 1);
        assert_eq!(fields(&c.validate()), ["kiosk.brightness_schedule"]);
        c.kiosk.brightness_schedule.clear();
        assert_eq!(fields(&c.validate()), ["kiosk.brightness_schedule"]);
        assert_eq!(minutes_of_day("23:59"), Some(1439));
        for bad in ["24:00", "7:00", "07:60", "07-00", ""] {
            assert_eq!(minutes_of_day(bad), None, "{bad}");
        }
    }

    #[test]
    fn acks_round_trip_and_bad_ones_are_rejected() {
        assert_eq!(
            String::from_utf8(ConfigAck::rejected(8, "bad").to_json()).unwrap(),
            r#"{"v":1,"version":8,"status":"rejected","error":"bad"}"#
        );
        assert_eq!(
            ConfigAck::decode(br#"{"v":1,"version":7,"status":"applied","extra":1}"#).unwrap(),
            ConfigAck::applied(7)
        );
        assert_eq!(
            ConfigAck::decode(br#"{"v":1,"version":7,"status":"done"}"#)
                .unwrap_err()
                .reason,
            RejectReason::InvalidType
        );
        assert_eq!(
            ConfigAck::decode(br#"{"v":2,"version":7,"status":"applied"}"#)
                .unwrap_err()
                .reason,
            RejectReason::UnsupportedVersion
        );
        let long = format!(
            r#"{{"v":1,"version":7,"status":"rejected","error":"{}"}}"#,
            "e".repeat(1025)
        );
        assert_eq!(
            ConfigAck::decode(long.as_bytes()).unwrap_err().reason,
            RejectReason::OutOfRange
        );
    }
}
