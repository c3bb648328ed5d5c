//! MQTT topics. Every topic lives under `benches/{bench_id}/`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A validated bench id: 1 to 64 characters of `a-z`, `0-9` and `-`, starting with a letter or
/// digit. The same rule keeps ids safe as MQTT client ids, topic levels and metric labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(try_from = "String", into = "String")]
pub struct BenchId(String);

/// Why a string is not a bench id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid bench id {0:?}: use 1-64 characters of a-z, 0-9 and '-', starting with a letter or digit")]
pub struct InvalidBenchId(pub String);

impl BenchId {
    /// Checks `s` against the bench id rule.
    pub fn parse(s: &str) -> Result<Self, InvalidBenchId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && !s.starts_with('-')
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidBenchId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BenchId {
    type Error = InvalidBenchId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<BenchId> for String {
    fn from(id: BenchId) -> Self {
        id.0
    }
}

impl fmt::Display for BenchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BenchId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The kinds of topic under `benches/{id}/`, with the direction each one flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TopicKind {
    /// bench -> server, QoS 0 or 1.
    Telemetry,
    /// server -> bench, QoS 1: which samples are stored (see [`crate::TelemetryAck`]).
    TelemetryAck,
    /// bench -> server, retained, QoS 1; also the Last Will topic.
    Status,
    /// bench -> server, citizens' ideas (specified by the idea-routing issue).
    Ideas,
    /// server -> bench.
    IdeasAck,
    /// server -> bench, retained desired configuration (specified by the OTA issue).
    Config,
    /// bench -> server.
    ConfigAck,
}

impl TopicKind {
    pub const ALL: [TopicKind; 7] = [
        Self::Telemetry,
        Self::TelemetryAck,
        Self::Status,
        Self::Ideas,
        Self::IdeasAck,
        Self::Config,
        Self::ConfigAck,
    ];

    /// The topic suffix after `benches/{id}/`.
    pub fn suffix(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::TelemetryAck => "telemetry/ack",
            Self::Status => "status",
            Self::Ideas => "ideas",
            Self::IdeasAck => "ideas/ack",
            Self::Config => "config",
            Self::ConfigAck => "config/ack",
        }
    }

    /// Whether a bench publishes on this topic (as opposed to subscribing to it).
    pub fn bench_publishes(self) -> bool {
        matches!(self, Self::Telemetry | Self::Status | Self::Ideas | Self::ConfigAck)
    }

    /// A short label for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Self::Telemetry => "telemetry",
            Self::TelemetryAck => "telemetry_ack",
            Self::Status => "status",
            Self::Ideas => "ideas",
            Self::IdeasAck => "ideas_ack",
            Self::Config => "config",
            Self::ConfigAck => "config_ack",
        }
    }
}

/// A parsed bench topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub bench: BenchId,
    pub kind: TopicKind,
}

/// The topic prefix shared by every bench.
pub const PREFIX: &str = "benches/";

impl Topic {
    pub fn new(bench: BenchId, kind: TopicKind) -> Self {
        Self { bench, kind }
    }

    /// Parses `benches/{id}/{suffix}`; anything else is `None`.
    pub fn parse(topic: &str) -> Option<Self> {
        let rest = topic.strip_prefix(PREFIX)?;
        let (id, suffix) = rest.split_once('/')?;
        let bench = BenchId::parse(id).ok()?;
        let kind = TopicKind::ALL.into_iter().find(|k| k.suffix() == suffix)?;
        Some(Self { bench, kind })
    }

    /// The filter that matches `kind` for every bench, e.g. `benches/+/telemetry`.
    pub fn filter_all(kind: TopicKind) -> String {
        format!("{PREFIX}+/{}", kind.suffix())
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}/{}", self.bench, self.kind.suffix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_ids() {
        for ok in ["mostar-01", "load-000001", "a", "9x"] {
            assert!(BenchId::parse(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(65);
        for bad in [
            "", "-x", "Mostar", "a/b", "a+b", "a#", "$sys", "a b", "a\u{0}", "ž", &long,
        ] {
            assert!(BenchId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn topics_round_trip() {
        for kind in TopicKind::ALL {
            let t = Topic::new(BenchId::parse("zepce-01").unwrap(), kind);
            assert_eq!(Topic::parse(&t.to_string()), Some(t));
        }
        assert_eq!(Topic::parse("benches/zepce-01/other"), None);
        assert_eq!(Topic::parse("benches/Zepce/telemetry"), None);
        assert_eq!(Topic::parse("other/zepce-01/telemetry"), None);
        assert_eq!(Topic::filter_all(TopicKind::Status), "benches/+/status");
    }
}
