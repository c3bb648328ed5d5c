//! Routing rules: an ordered list of rules, each matching ideas by municipality, bench,
//! category, language or keywords and naming the organisations that receive them, how
//! (`all`, `round_robin`, `least_loaded`) and with which deadlines.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole rule set, replaced atomically and kept in every version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    /// Tried in ascending `priority`; the first that matches and has an eligible organisation
    /// wins.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Municipality name → its default organisation, used when no rule applies.
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// The deadlines of ideas routed to a municipality's default organisation.
    #[serde(default)]
    pub default_sla: Sla,
    /// Offer rounds (the first offer and each re-offer after a decline or an expired deadline)
    /// before an idea escalates to the coordinators' queue.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

impl Default for RuleSet {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            defaults: BTreeMap::new(),
            default_sla: Sla::default(),
            max_attempts: default_max_attempts(),
        }
    }
}

fn default_max_attempts() -> u32 {
    3
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique within the set: lowercase letters, digits, `-` and `_`. Round-robin position is
    /// kept per rule name.
    pub name: String,
    /// Lower numbers are tried first; unique within the set.
    pub priority: i32,
    /// What the rule applies to; an empty list means any.
    #[serde(rename = "match", default)]
    pub matches: Match,
    /// Organisation ids, at least one.
    pub targets: Vec<String>,
    #[serde(default)]
    pub strategy: Strategy,
    #[serde(default)]
    pub sla: Sla,
}

/// Conditions of a rule; all given ones must hold, each list matching any of its entries.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// Municipality names, as in the fleet registry (case-insensitive, diacritics optional).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub municipalities: Vec<String>,
    /// Bench ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub benches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    /// Language tags; `sr` matches `sr-Latn` and `sr-Cyrl`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub languages: Vec<String>,
    /// Words or phrases; matched at word starts on text folded to lowercase ASCII Latin, so
    /// `rasvjet` matches `Rasvjeta` and `расвјета`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
}

/// How a rule picks among its eligible organisations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// Offer to every eligible organisation; the first to confirm takes it.
    All,
    /// One organisation, in turn (the position is kept in the store).
    #[default]
    RoundRobin,
    /// The organisation with the fewest open ideas (ties: the order of `targets`).
    LeastLoaded,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::RoundRobin => "round_robin",
            Self::LeastLoaded => "least_loaded",
        }
    }
}

/// Deadlines, as durations such as `48h` or `30days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sla {
    /// An offered idea not confirmed within this is offered to the next organisation.
    #[serde(with = "duration_text", default = "default_confirm_within")]
    #[schema(value_type = String, example = "72h")]
    pub confirm_within: Duration,
    /// A confirmed idea not completed within this is flagged as overdue (once).
    #[serde(with = "duration_text", default = "default_act_within")]
    #[schema(value_type = String, example = "30days")]
    pub act_within: Duration,
}

impl Default for Sla {
    fn default() -> Self {
        Self {
            confirm_within: default_confirm_within(),
            act_within: default_act_within(),
        }
    }
}

fn default_confirm_within() -> Duration {
    Duration::from_secs(72 * 3600)
}

fn default_act_within() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

/// Durations as humantime text (`48h`, `30days`, `1h 30m`).
mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a duration like `48h`: {e}")))
    }
}
