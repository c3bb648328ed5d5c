//! The retained `status` payload (bench -> server, also the Last Will) and the presence states the
//! control plane derives from it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::PAYLOAD_VERSION;
use crate::telemetry::{RejectReason, Rejection, decode_payload};

/// What a bench says about itself on `benches/{id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Status {
    /// Payload version, always 1.
    pub v: u32,
    pub state: AnnouncedState,
    /// Firmware version, e.g. `1.4.2` (at most 64 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fw: Option<String>,
    /// The configuration version the bench runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_version: Option<u64>,
    /// With `sleeping`: when the bench plans to be back (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
}

/// The states a bench can announce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnnouncedState {
    Online,
    /// Published by the broker as the bench's Last Will after an abrupt drop.
    Offline,
    /// Planned silence to save power, until `until`.
    Sleeping,
}

impl Status {
    pub fn online(fw: impl Into<String>, config_version: u64) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            state: AnnouncedState::Online,
            fw: Some(fw.into()),
            config_version: Some(config_version),
            until: None,
        }
    }

    /// The payload a bench registers as its Last Will.
    pub fn last_will() -> Self {
        Self {
            v: PAYLOAD_VERSION,
            state: AnnouncedState::Offline,
            fw: None,
            config_version: None,
            until: None,
        }
    }

    pub fn sleeping(until: DateTime<Utc>) -> Self {
        Self {
            v: PAYLOAD_VERSION,
            state: AnnouncedState::Sleeping,
            fw: None,
            config_version: None,
            until: Some(until),
        }
    }

    /// Decodes and validates a status payload.
    pub fn decode(payload: &[u8]) -> Result<Self, Rejection> {
        let s: Self = decode_payload(payload)?;
        if s.v != PAYLOAD_VERSION {
            return Err(Rejection::new(
                RejectReason::UnsupportedVersion,
                format!("payload version {} is not supported", s.v),
            ));
        }
        if s.fw
            .as_ref()
            .is_some_and(|fw| fw.len() > 64 || fw.chars().any(char::is_control))
        {
            return Err(Rejection::new(
                RejectReason::OutOfRange,
                "fw must be at most 64 printable characters",
            ));
        }
        if s.state == AnnouncedState::Sleeping && s.until.is_none() {
            return Err(Rejection::new(
                RejectReason::InvalidType,
                "state sleeping needs `until`",
            ));
        }
        Ok(s)
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// A bench's presence as the control plane sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BenchState {
    /// Connected and reporting.
    Online,
    /// Disconnected (cleanly or abruptly) without announcing sleep.
    Offline,
    /// Connected but silent for longer than 3 telemetry intervals.
    Stale,
    /// Announced planned silence that has not yet run out.
    Sleeping,
    /// Registered but never connected.
    NeverSeen,
}

impl BenchState {
    pub const ALL: [BenchState; 5] = [
        Self::Online,
        Self::Offline,
        Self::Stale,
        Self::Sleeping,
        Self::NeverSeen,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Offline => "offline",
            Self::Stale => "stale",
            Self::Sleeping => "sleeping",
            Self::NeverSeen => "never_seen",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for BenchState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_examples_decode() {
        let s = Status::decode(br#"{"v":1,"state":"online","fw":"1.4.2","config_version":3}"#).unwrap();
        assert_eq!(s, Status::online("1.4.2", 3));
        let s = Status::decode(br#"{"v":1,"state":"offline"}"#).unwrap();
        assert_eq!(s, Status::last_will());
        let s = Status::decode(br#"{"v":1,"state":"sleeping","until":"2026-11-27T06:00:00Z"}"#).unwrap();
        assert_eq!(s.until, Some("2026-11-27T06:00:00Z".parse().unwrap()));
    }

    #[test]
    fn bad_status_is_rejected() {
        assert_eq!(
            Status::decode(br#"{"v":1,"state":"asleep"}"#).unwrap_err().reason,
            RejectReason::InvalidType
        );
        assert_eq!(
            Status::decode(br#"{"v":1,"state":"sleeping"}"#).unwrap_err().reason,
            RejectReason::InvalidType
        );
        assert_eq!(
            Status::decode(br#"{"v":3,"state":"online"}"#).unwrap_err().reason,
            RejectReason::UnsupportedVersion
        );
    }

    #[test]
    fn states_round_trip() {
        for s in BenchState::ALL {
            assert_eq!(BenchState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }
}
