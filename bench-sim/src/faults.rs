//! Faults injected on demand, and scenario files that schedule them.
//!
//! A scenario is TOML, one `[[fault]]` table per injection:
//!
//! ```toml
//! [[fault]]
//! at = "30s"            # offset from the start of the run
//! kind = "disconnect"
//! bench = "mostar-01"   # omit to hit every bench
//!
//! [[fault]]
//! at = "1m"
//! kind = "flapping"
//! duration = "20s"      # flapping, clock_skew, stuck_sensor
//! period = "3s"         # flapping
//!
//! [[fault]]
//! at = "2m"
//! kind = "clock_skew"
//! offset = "+26h"       # clock_skew: a signed duration
//! ```
//!
//! Other kinds: `battery_failure`, `stuck_sensor`, `malformed_payload`, `oversized_payload`,
//! `foreign_topic` (`target = "zepce-01"`), `wrong_token` (`attempts = 3`), `reboot`.

use std::time::Duration;

use chrono::TimeDelta;
use protocol::BenchId;
use serde::Deserialize;

/// One fault, with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Drop the TCP connection without DISCONNECT: the broker publishes the Last Will. The bench
    /// reconnects with backoff.
    Disconnect,
    /// Abrupt drops every `period` for `duration`.
    Flapping { duration: Duration, period: Duration },
    /// Telemetry `ts` runs `offset` off the true time, for `duration` (or for good).
    ClockSkew {
        offset: TimeDelta,
        duration: Option<Duration>,
    },
    /// The battery loses almost all its capacity, for good.
    BatteryFailure,
    /// Solar, load and temperature sensors repeat their last values, for `duration` (or until
    /// a reboot).
    StuckSensor { duration: Option<Duration> },
    /// One telemetry message that is not JSON.
    MalformedPayload,
    /// One telemetry message larger than [`protocol::MAX_PAYLOAD_BYTES`].
    OversizedPayload,
    /// One telemetry message on another bench's topic (`target`, or a neighbour in the fleet).
    ForeignTopic { target: Option<BenchId> },
    /// Drop the connection and present a token signed with the wrong key on the next
    /// `attempts` connections.
    WrongToken { attempts: u32 },
    /// Power cycle: abrupt drop, counters and uptime reset, reconnect after booting.
    Reboot,
}

impl Fault {
    /// Every kind name, as used in scenario files and `--fault`.
    pub const KINDS: [&'static str; 10] = [
        "disconnect",
        "flapping",
        "clock_skew",
        "battery_failure",
        "stuck_sensor",
        "malformed_payload",
        "oversized_payload",
        "foreign_topic",
        "wrong_token",
        "reboot",
    ];

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Disconnect => "disconnect",
            Self::Flapping { .. } => "flapping",
            Self::ClockSkew { .. } => "clock_skew",
            Self::BatteryFailure => "battery_failure",
            Self::StuckSensor { .. } => "stuck_sensor",
            Self::MalformedPayload => "malformed_payload",
            Self::OversizedPayload => "oversized_payload",
            Self::ForeignTopic { .. } => "foreign_topic",
            Self::WrongToken { .. } => "wrong_token",
            Self::Reboot => "reboot",
        }
    }

    /// The fault `kind` with default parameters.
    pub fn with_defaults(kind: &str) -> Result<Self, ScenarioError> {
        FaultEntry {
            at: "0s".into(),
            kind: kind.into(),
            ..FaultEntry::default()
        }
        .fault()
    }
}

/// A fault at an offset from the start of the run, for one bench or all.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledFault {
    pub at: Duration,
    /// `None`: every bench.
    pub bench: Option<BenchId>,
    pub fault: Fault,
}

/// Faults to inject during a run, in time order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scenario {
    pub faults: Vec<ScheduledFault>,
}

/// Why a scenario or `--fault` could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("scenario is not valid TOML: {0}")]
    Toml(#[from] toml::de::Error),
    #[error("fault #{index}: {message}")]
    Entry { index: usize, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioFile {
    #[serde(default)]
    fault: Vec<FaultEntry>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FaultEntry {
    at: String,
    kind: String,
    bench: Option<String>,
    duration: Option<String>,
    period: Option<String>,
    offset: Option<String>,
    target: Option<String>,
    attempts: Option<u32>,
}

impl FaultEntry {
    fn fault(&self) -> Result<Fault, ScenarioError> {
        let err = |m: String| ScenarioError::Invalid(m);
        let allowed: &[&str] = match self.kind.as_str() {
            "flapping" => &["duration", "period"],
            "clock_skew" => &["offset", "duration"],
            "stuck_sensor" => &["duration"],
            "foreign_topic" => &["target"],
            "wrong_token" => &["attempts"],
            k if Fault::KINDS.contains(&k) => &[],
            k => {
                return Err(err(format!(
                    "unknown fault kind {k:?}; expected one of {}",
                    Fault::KINDS.join(", ")
                )));
            }
        };
        let given = [
            ("duration", self.duration.is_some()),
            ("period", self.period.is_some()),
            ("offset", self.offset.is_some()),
            ("target", self.target.is_some()),
            ("attempts", self.attempts.is_some()),
        ];
        if let Some((name, _)) = given.iter().find(|(name, set)| *set && !allowed.contains(name)) {
            return Err(err(format!("`{name}` does not apply to {}", self.kind)));
        }
        let duration = self.duration.as_deref().map(parse_duration).transpose().map_err(err)?;
        Ok(match self.kind.as_str() {
            "disconnect" => Fault::Disconnect,
            "flapping" => {
                let period = self.period.as_deref().map(parse_duration).transpose().map_err(err)?;
                let period = period.unwrap_or(Duration::from_secs(5));
                if period.is_zero() {
                    return Err(err("flapping `period` must be above zero".into()));
                }
                Fault::Flapping {
                    duration: duration.unwrap_or(Duration::from_secs(30)),
                    period,
                }
            }
            "clock_skew" => {
                let offset = self.offset.as_deref().map(parse_offset).transpose().map_err(err)?;
                Fault::ClockSkew {
                    offset: offset.unwrap_or(TimeDelta::hours(2)),
                    duration,
                }
            }
            "battery_failure" => Fault::BatteryFailure,
            "stuck_sensor" => Fault::StuckSensor { duration },
            "malformed_payload" => Fault::MalformedPayload,
            "oversized_payload" => Fault::OversizedPayload,
            "foreign_topic" => Fault::ForeignTopic {
                target: self
                    .target
                    .as_deref()
                    .map(BenchId::parse)
                    .transpose()
                    .map_err(|e| err(e.to_string()))?,
            },
            "wrong_token" => Fault::WrongToken {
                attempts: self.attempts.unwrap_or(3).max(1),
            },
            _ => Fault::Reboot,
        })
    }

    fn scheduled(&self) -> Result<ScheduledFault, ScenarioError> {
        let at = parse_duration(&self.at).map_err(ScenarioError::Invalid)?;
        let bench = self
            .bench
            .as_deref()
            .map(BenchId::parse)
            .transpose()
            .map_err(|e| ScenarioError::Invalid(e.to_string()))?;
        Ok(ScheduledFault {
            at,
            bench,
            fault: self.fault()?,
        })
    }
}

impl Scenario {
    /// Parses a scenario file.
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let file: ScenarioFile = toml::from_str(text)?;
        let faults = file
            .fault
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.scheduled().map_err(|err| ScenarioError::Entry {
                    index: i + 1,
                    message: err.to_string(),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut s = Self { faults };
        s.sort();
        Ok(s)
    }

    /// Parses a `--fault` flag: `KIND@OFFSET[:BENCH]`, e.g. `reboot@2m:mostar-01`, with the
    /// kind's default parameters.
    pub fn parse_flag(flag: &str) -> Result<ScheduledFault, ScenarioError> {
        let invalid = |m: String| ScenarioError::Invalid(format!("--fault {flag:?}: {m}"));
        let (kind, rest) = flag
            .split_once('@')
            .ok_or_else(|| invalid("expected KIND@OFFSET[:BENCH]".into()))?;
        let (at, bench) = match rest.split_once(':') {
            Some((at, bench)) => (at, Some(bench.to_owned())),
            None => (rest, None),
        };
        FaultEntry {
            at: at.into(),
            kind: kind.into(),
            bench,
            ..FaultEntry::default()
        }
        .scheduled()
        .map_err(|e| invalid(e.to_string()))
    }

    /// Adds faults and keeps the time order.
    pub fn extend(&mut self, more: impl IntoIterator<Item = ScheduledFault>) {
        self.faults.extend(more);
        self.sort();
    }

    fn sort(&mut self) {
        self.faults.sort_by_key(|f| f.at);
    }
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim()).map_err(|e| format!("bad duration {s:?}: {e}"))
}

/// `+2h`, `-90s` or `2h`.
fn parse_offset(s: &str) -> Result<TimeDelta, String> {
    let s = s.trim();
    let (negative, magnitude) = match s.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let d = TimeDelta::from_std(parse_duration(magnitude)?).map_err(|e| format!("offset {s:?}: {e}"))?;
    Ok(if negative { -d } else { d })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_scenario_in_time_order() {
        let s = Scenario::from_toml(
            r#"
            [[fault]]
            at = "1m"
            kind = "flapping"
            duration = "20s"
            period = "3s"

            [[fault]]
            at = "30s"
            kind = "disconnect"
            bench = "mostar-01"

            [[fault]]
            at = "2m"
            kind = "clock_skew"
            offset = "-26h"

            [[fault]]
            at = "3m"
            kind = "foreign_topic"
            target = "zepce-01"
            "#,
        )
        .unwrap();
        assert_eq!(s.faults.len(), 4);
        assert_eq!(s.faults[0].at, Duration::from_secs(30));
        assert_eq!(s.faults[0].bench.as_ref().unwrap().as_str(), "mostar-01");
        assert_eq!(s.faults[0].fault, Fault::Disconnect);
        assert_eq!(
            s.faults[1].fault,
            Fault::Flapping {
                duration: Duration::from_secs(20),
                period: Duration::from_secs(3)
            }
        );
        assert_eq!(s.faults[1].bench, None);
        assert_eq!(
            s.faults[2].fault,
            Fault::ClockSkew {
                offset: TimeDelta::hours(-26),
                duration: None
            }
        );
        assert_eq!(
            s.faults[3].fault,
            Fault::ForeignTopic {
                target: Some(BenchId::parse("zepce-01").unwrap())
            }
        );
    }

    #[test]
    fn explains_bad_entries() {
        let e = |toml: &str| Scenario::from_toml(toml).unwrap_err().to_string();
        assert!(e("[[fault]]\nat='1s'\nkind='explode'").contains("unknown fault kind \"explode\""));
        assert!(e("[[fault]]\nat='1s'\nkind='reboot'\nperiod='1s'").contains("`period` does not apply to reboot"));
        assert!(e("[[fault]]\nat='soon'\nkind='reboot'").contains("bad duration \"soon\""));
        assert!(e("[[fault]]\nat='1s'\nkind='reboot'\nbench='Mostar'").contains("invalid bench id"));
        assert!(e("[[fault]]\nat='1s'\nkind='reboot'\ncolour='red'").contains("unknown field"));
        assert!(e("[[fault]]\nat='1s'\nkind='flapping'\nperiod='0s'").contains("above zero"));
        assert!(Scenario::from_toml("").unwrap().faults.is_empty());
    }

    #[test]
    fn parses_fault_flags() {
        let f = Scenario::parse_flag("reboot@2m:mostar-01").unwrap();
        assert_eq!(
            (f.at, f.fault, f.bench.unwrap().as_str().to_owned()),
            (Duration::from_secs(120), Fault::Reboot, "mostar-01".into())
        );
        let f = Scenario::parse_flag("wrong_token@5s").unwrap();
        assert_eq!(f.fault, Fault::WrongToken { attempts: 3 });
        assert!(f.bench.is_none());
        assert!(
            Scenario::parse_flag("reboot")
                .unwrap_err()
                .to_string()
                .contains("KIND@OFFSET")
        );
        for kind in Fault::KINDS {
            assert_eq!(Fault::with_defaults(kind).unwrap().kind(), kind);
        }
    }
}
