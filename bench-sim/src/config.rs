//! The bench configuration document (server -> bench, retained on `benches/{id}/config`) and the
//! acknowledgement a bench sends back on `config/ack`.
//!
//! Provisional: the OTA issue owns these payloads; until they move to `protocol`, the simulator
//! defines them here, lenient about fields it does not know.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::usage::Features;

/// Accepted range of `telemetry_interval_s`.
pub const MIN_INTERVAL_S: u64 = 5;
pub const MAX_INTERVAL_S: u64 = 3600;

/// A configuration document: `{"v":1,"version":7,"issued_at":"…","config":{…}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigDocument {
    pub v: u32,
    /// Increases with every new configuration.
    pub version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub config: BenchConfig,
}

/// The settings a bench applies. Absent fields keep their current value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Seconds between telemetry samples, 5-3600. Signed so that a negative value is a
    /// rejection with a clear message rather than a parse error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry_interval_s: Option<i64>,
    /// Service switches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<FeatureSwitches>,
}

/// Switches for the services a bench offers; absent ones keep their current state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSwitches {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wifi: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usb: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kiosk: Option<bool>,
}

/// `config/ack`: `{"v":1,"version":7,"status":"applied"|"rejected","error":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigAck {
    pub v: u32,
    pub version: u64,
    pub status: AckStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    Applied,
    Rejected,
}

impl ConfigAck {
    pub fn applied(version: u64) -> Self {
        Self {
            v: protocol::PAYLOAD_VERSION,
            version,
            status: AckStatus::Applied,
            error: None,
        }
    }

    pub fn rejected(version: u64, error: impl Into<String>) -> Self {
        Self {
            v: protocol::PAYLOAD_VERSION,
            version,
            status: AckStatus::Rejected,
            error: Some(error.into()),
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// What a bench runs: the settings it has applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunningConfig {
    /// 0 until the first document is applied (factory settings).
    pub version: u64,
    pub telemetry_interval: Duration,
    pub features: Features,
}

/// The verdict on one configuration message.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Apply this; ack `applied`.
    Apply(RunningConfig),
    /// Ack `rejected` for `version` with this error.
    Reject { version: u64, error: String },
    /// Not a configuration at all (no readable version): nothing to acknowledge.
    Unreadable(String),
}

/// Judges `payload` against what runs now. Versions at or below the running one are not applied
/// again (the caller re-sends its earlier ack for a repeat of the same version).
pub fn judge(payload: &[u8], running: &RunningConfig) -> Verdict {
    let doc: ConfigDocument = match serde_json::from_slice(payload) {
        Ok(doc) => doc,
        Err(e) => {
            // Acknowledge a broken document if its version can still be read.
            return match serde_json::from_slice::<serde_json::Value>(payload)
                .ok()
                .and_then(|v| v.get("version").and_then(serde_json::Value::as_u64))
            {
                Some(version) => Verdict::Reject {
                    version,
                    error: format!("invalid configuration: {e}"),
                },
                None => Verdict::Unreadable(e.to_string()),
            };
        }
    };
    let version = doc.version;
    if doc.v != protocol::PAYLOAD_VERSION {
        return Verdict::Reject {
            version,
            error: format!("payload version {} is not supported", doc.v),
        };
    }
    if version <= running.version {
        return Verdict::Reject {
            version,
            error: format!(
                "version {version} is not newer than the running version {}",
                running.version
            ),
        };
    }
    let mut next = RunningConfig { version, ..*running };
    if let Some(s) = doc.config.telemetry_interval_s {
        if !(MIN_INTERVAL_S as i64..=MAX_INTERVAL_S as i64).contains(&s) {
            return Verdict::Reject {
                version,
                error: format!("telemetry_interval_s must be {MIN_INTERVAL_S}-{MAX_INTERVAL_S}, got {s}"),
            };
        }
        next.telemetry_interval = Duration::from_secs(s.unsigned_abs());
    }
    if let Some(f) = doc.config.features {
        next.features = Features {
            wifi: f.wifi.unwrap_or(running.features.wifi),
            usb: f.usb.unwrap_or(running.features.usb),
            kiosk: f.kiosk.unwrap_or(running.features.kiosk),
        };
    }
    Verdict::Apply(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> RunningConfig {
        RunningConfig {
            version: 3,
            telemetry_interval: Duration::from_secs(60),
            features: Features::default(),
        }
    }

    #[test]
    fn applies_a_newer_valid_document_and_ignores_unknown_fields() {
        let v = judge(
            br#"{"v":1,"version":7,"issued_at":"2026-11-26T10:00:00Z","rollout":"r1",
                 "config":{"telemetry_interval_s":30,"features":{"kiosk":false},"brightness":80}}"#,
            &running(),
        );
        let Verdict::Apply(next) = v else { panic!("{v:?}") };
        assert_eq!(next.version, 7);
        assert_eq!(next.telemetry_interval, Duration::from_secs(30));
        assert_eq!(
            next.features,
            Features {
                kiosk: false,
                ..Features::default()
            }
        );
    }

    #[test]
    fn rejects_out_of_range_stale_and_broken_documents() {
        let reject = |p: &str| match judge(p.as_bytes(), &running()) {
            Verdict::Reject { version, error } => (version, error),
            other => panic!("{p}: {other:?}"),
        };
        let (version, error) = reject(r#"{"v":1,"version":8,"config":{"telemetry_interval_s":4}}"#);
        assert_eq!(version, 8);
        assert!(error.contains("5-3600, got 4"), "{error}");
        assert!(
            reject(r#"{"v":1,"version":8,"config":{"telemetry_interval_s":3601}}"#)
                .1
                .contains("3601")
        );
        assert!(
            reject(r#"{"v":1,"version":8,"config":{"telemetry_interval_s":-5}}"#)
                .1
                .contains("-5")
        );
        assert!(reject(r#"{"v":1,"version":3,"config":{}}"#).1.contains("not newer"));
        assert!(
            reject(r#"{"v":2,"version":9,"config":{}}"#)
                .1
                .contains("payload version 2")
        );
        assert!(
            reject(r#"{"v":1,"version":9,"config":{"telemetry_interval_s":"fast"}}"#)
                .1
                .starts_with("invalid configuration")
        );
        assert!(matches!(judge(b"{nope", &running()), Verdict::Unreadable(_)));
    }

    #[test]
    fn ack_wire_format() {
        assert_eq!(
            String::from_utf8(ConfigAck::applied(7).to_json()).unwrap(),
            r#"{"v":1,"version":7,"status":"applied"}"#
        );
        assert_eq!(
            String::from_utf8(ConfigAck::rejected(8, "bad").to_json()).unwrap(),
            r#"{"v":1,"version":8,"status":"rejected","error":"bad"}"#
        );
    }
}
