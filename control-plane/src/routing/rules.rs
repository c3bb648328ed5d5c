//! Routing rules: an ordered list of rules, each matching ideas by municipality, bench,
//! category, language or keywords and naming the organisations that receive them, how
//! (`all`, `round_robin`, `least_loaded`) and with which deadlines.

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::config::FieldError;
use serde::{Deserialize, Serialize};

use super::records::{OrgState, Organisation};
use super::text::{fold, has_keyword};

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

/// What routing knows about an idea.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdeaFacts {
    pub bench_id: String,
    pub municipality: String,
    pub category: String,
    pub lang: String,
    pub text: String,
}

/// Where the organisations stand when an idea is routed.
pub struct Situation<'a> {
    /// Every organisation by id.
    pub organisations: &'a BTreeMap<String, Organisation>,
    /// Organisations that declined the idea or let it expire.
    pub excluded: &'a [String],
    /// Round-robin positions by rule name.
    pub cursors: &'a BTreeMap<String, i64>,
    /// Open ideas per organisation.
    pub loads: &'a BTreeMap<String, i64>,
}

impl Situation<'_> {
    /// Why `org` cannot receive the idea, if it cannot.
    fn ineligible(&self, org: &str) -> Option<String> {
        match self.organisations.get(org) {
            None => Some(format!("{org}: no such organisation")),
            Some(o) if o.state != OrgState::Active => Some(format!("{org}: {}", o.state.as_str())),
            Some(_) if self.excluded.iter().any(|x| x == org) => {
                Some(format!("{org}: already declined it or let it expire"))
            }
            Some(_) => None,
        }
    }
}

/// How one rule fared against an idea.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RuleCheck {
    pub rule: String,
    pub priority: i32,
    /// Whether every condition held.
    pub matched: bool,
    /// The conditions that failed (when not matched), or why no organisation was eligible.
    pub reasons: Vec<String>,
    /// Whether it routed the idea (the first matching rule with an eligible organisation).
    pub chosen: bool,
}

/// Where an idea goes.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Route {
    /// Offer it to these organisations.
    Offer {
        organisations: Vec<String>,
        /// The rule, or `None` for the municipality's default organisation.
        rule: Option<String>,
        strategy: Strategy,
        sla: Sla,
    },
    /// No rule applies and there is no eligible default organisation.
    Unroutable { reason: String },
}

/// The routing decision with its explanation.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Decision {
    pub route: Route,
    /// Every rule in the order tried.
    pub rules: Vec<RuleCheck>,
    /// What happened at the municipality default, when it was reached.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<String>,
    /// A new round-robin position to keep: (rule name, position).
    #[serde(skip)]
    pub cursor: Option<(String, i64)>,
}

impl RuleSet {
    /// Rules in the order they are tried.
    pub fn ordered(&self) -> Vec<&Rule> {
        let mut rules: Vec<&Rule> = self.rules.iter().collect();
        rules.sort_by_key(|r| r.priority);
        rules
    }

    /// Routes an idea: the first rule (by priority) that matches and has an eligible
    /// organisation, else the municipality's default organisation, else unroutable.
    pub fn route(&self, idea: &IdeaFacts, situation: &Situation<'_>) -> Decision {
        let folded = fold(&idea.text);
        let mut checks = Vec::new();
        let mut decided: Option<(Route, Option<(String, i64)>)> = None;
        for rule in self.ordered() {
            let mut check = RuleCheck {
                rule: rule.name.clone(),
                priority: rule.priority,
                matched: false,
                reasons: rule.matches.mismatches(idea, &folded),
                chosen: false,
            };
            check.matched = check.reasons.is_empty();
            if check.matched && decided.is_none() {
                match rule.pick(situation) {
                    Ok((organisations, cursor)) => {
                        check.chosen = true;
                        decided = Some((
                            Route::Offer {
                                organisations,
                                rule: Some(rule.name.clone()),
                                strategy: rule.strategy,
                                sla: rule.sla,
                            },
                            cursor,
                        ));
                    }
                    Err(why) => check.reasons = why,
                }
            }
            checks.push(check);
        }
        if let Some((route, cursor)) = decided {
            return Decision {
                route,
                rules: checks,
                fallback: None,
                cursor,
            };
        }
        let default = self
            .defaults
            .iter()
            .find(|(m, _)| fold(m) == fold(&idea.municipality))
            .map(|(_, org)| org);
        let (route, fallback) = match default {
            None => (
                Route::Unroutable {
                    reason: format!("no rule applies and {} has no default organisation", idea.municipality),
                },
                None,
            ),
            Some(org) => match situation.ineligible(org) {
                None => (
                    Route::Offer {
                        organisations: vec![org.clone()],
                        rule: None,
                        strategy: Strategy::All,
                        sla: self.default_sla,
                    },
                    Some(format!("{org} is the default organisation of {}", idea.municipality)),
                ),
                Some(why) => (
                    Route::Unroutable {
                        reason: format!("no rule applies and the default organisation is not eligible ({why})"),
                    },
                    Some(why),
                ),
            },
        };
        Decision {
            route,
            rules: checks,
            fallback,
            cursor: None,
        }
    }

    /// Every problem with the set: unknown organisations, municipalities or benches, empty
    /// targets, duplicate names or priorities, zero deadlines or ones past [`MAX_SLA`].
    pub fn validate(&self, organisations: &BTreeMap<String, Organisation>, fleet: &protocol::Fleet) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut err = |field: String, message: String| errors.push(FieldError { field, message });
        let municipalities: Vec<String> = fleet.iter().map(|b| fold(&b.municipality)).collect();
        let mut names = BTreeMap::new();
        let mut priorities = BTreeMap::new();
        if self.max_attempts == 0 {
            err("max_attempts".into(), "must be at least 1".into());
        }
        check_sla(&self.default_sla, "default_sla", &mut err);
        for (i, rule) in self.rules.iter().enumerate() {
            let at = |f: &str| format!("rules[{i}].{f}");
            let name_ok = (1..=64).contains(&rule.name.len())
                && rule
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
            if !name_ok {
                err(at("name"), "must be 1-64 lowercase letters, digits, `-` or `_`".into());
            }
            if let Some(first) = names.insert(rule.name.clone(), i) {
                err(
                    at("name"),
                    format!("{:?} is also the name of rules[{first}]", rule.name),
                );
            }
            if let Some(first) = priorities.insert(rule.priority, i) {
                err(
                    at("priority"),
                    format!("{} is also the priority of rules[{first}]", rule.priority),
                );
            }
            if rule.targets.is_empty() {
                err(at("targets"), "needs at least one organisation".into());
            }
            for (j, t) in rule.targets.iter().enumerate() {
                if !organisations.contains_key(t) {
                    err(format!("rules[{i}].targets[{j}]"), format!("no organisation {t:?}"));
                }
                if rule.targets[..j].contains(t) {
                    err(format!("rules[{i}].targets[{j}]"), format!("{t:?} is listed twice"));
                }
            }
            for (j, m) in rule.matches.municipalities.iter().enumerate() {
                if !municipalities.contains(&fold(m)) {
                    err(
                        format!("rules[{i}].match.municipalities[{j}]"),
                        format!("no bench is in {m:?}"),
                    );
                }
            }
            for (j, b) in rule.matches.benches.iter().enumerate() {
                if !fleet.contains(b) {
                    err(
                        format!("rules[{i}].match.benches[{j}]"),
                        format!("no bench {b:?} in the registry"),
                    );
                }
            }
            for (j, k) in rule.matches.keywords.iter().enumerate() {
                if fold(k).is_empty() {
                    err(
                        format!("rules[{i}].match.keywords[{j}]"),
                        "has no letters or digits".into(),
                    );
                }
            }
            check_sla(&rule.sla, &at("sla"), &mut err);
        }
        for (m, org) in &self.defaults {
            if !municipalities.contains(&fold(m)) {
                err(format!("defaults.{m}"), format!("no bench is in {m:?}"));
            }
            if !organisations.contains_key(org) {
                err(format!("defaults.{m}"), format!("no organisation {org:?}"));
            }
        }
        errors
    }
}

/// The longest deadline a rule may set.
pub const MAX_SLA: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

fn check_sla(sla: &Sla, at: &str, err: &mut impl FnMut(String, String)) {
    for (name, d) in [("confirm_within", sla.confirm_within), ("act_within", sla.act_within)] {
        if d.is_zero() {
            err(format!("{at}.{name}"), "must be longer than 0".into());
        } else if d > MAX_SLA {
            err(format!("{at}.{name}"), "must be at most 10 years (3650days)".into());
        }
    }
}

impl Match {
    /// The conditions `idea` fails, in words; empty when it matches.
    fn mismatches(&self, idea: &IdeaFacts, folded_text: &str) -> Vec<String> {
        let mut why = Vec::new();
        if !self.municipalities.is_empty() && !self.municipalities.iter().any(|m| fold(m) == fold(&idea.municipality)) {
            why.push(format!(
                "municipality {} is not one of {:?}",
                idea.municipality, self.municipalities
            ));
        }
        if !self.benches.is_empty() && !self.benches.contains(&idea.bench_id) {
            why.push(format!("bench {} is not one of {:?}", idea.bench_id, self.benches));
        }
        if !self.categories.is_empty() && !self.categories.contains(&idea.category) {
            why.push(format!(
                "category {} is not one of {:?}",
                idea.category, self.categories
            ));
        }
        let lang_matches = |l: &String| {
            let (l, x) = (l.to_ascii_lowercase(), idea.lang.to_ascii_lowercase());
            x == l || x.starts_with(&format!("{l}-"))
        };
        if !self.languages.is_empty() && !self.languages.iter().any(lang_matches) {
            why.push(format!("language {} is not one of {:?}", idea.lang, self.languages));
        }
        if !self.keywords.is_empty() && !self.keywords.iter().any(|k| has_keyword(folded_text, k)) {
            why.push(format!("the text has none of the keywords {:?}", self.keywords));
        }
        why
    }
}

/// The organisations a rule offers an idea to, and the round-robin position to keep.
type Pick = (Vec<String>, Option<(String, i64)>);

impl Rule {
    /// The organisations this rule offers the idea to, and the new round-robin position; or why
    /// none is eligible.
    fn pick(&self, situation: &Situation<'_>) -> Result<Pick, Vec<String>> {
        let eligible: Vec<(usize, &String)> = self
            .targets
            .iter()
            .enumerate()
            .filter(|(_, t)| situation.ineligible(t).is_none())
            .collect();
        if eligible.is_empty() {
            let mut why = vec!["matched, but no organisation is eligible".to_owned()];
            why.extend(self.targets.iter().filter_map(|t| situation.ineligible(t)));
            return Err(why);
        }
        Ok(match self.strategy {
            Strategy::All => (eligible.into_iter().map(|(_, t)| t.clone()).collect(), None),
            Strategy::RoundRobin => {
                let n = self.targets.len();
                let start = usize::try_from(situation.cursors.get(&self.name).copied().unwrap_or(0)).unwrap_or(0) % n;
                let (i, org) = eligible
                    .iter()
                    .min_by_key(|(i, _)| (i + n - start) % n)
                    .copied()
                    .unwrap_or(eligible[0]);
                let next = i64::try_from((i + 1) % n).unwrap_or(0);
                (vec![org.clone()], Some((self.name.clone(), next)))
            }
            Strategy::LeastLoaded => {
                let (_, org) = eligible
                    .iter()
                    .min_by_key(|(i, t)| (situation.loads.get(*t).copied().unwrap_or(0), *i))
                    .copied()
                    .unwrap_or(eligible[0]);
                (vec![org.clone()], None)
            }
        })
    }
}

#[cfg(test)]
mod tests;
