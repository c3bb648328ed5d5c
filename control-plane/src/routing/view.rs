//! How ideas and organisations are shown: to staff, to an organisation (personal data
//! redacted, contact details only for the confirming organisation), to the public (the state,
//! the organisation's name, public notes), on the live event stream and in reports.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use protocol::IdeaState;
use protocol::config::FieldError;
use protocol::idea::{IdeaStep, IdeaView, PublicIdea, PublicNote};
use serde::{Deserialize, Serialize};

use super::records::{IdeaCount, IdeaEvent, IdeaRecord, OrgState, Organisation};
use super::rules::IdeaFacts;
use super::text::{fold, redact};

/// Who reads an idea.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reader {
    /// Operators and admins: everything but the contact details.
    Moderator,
    /// Viewers (project managers): personal data in the text redacted, no contact details.
    Viewer,
    /// A member organisation: redacted text unless the citizen consented, contact details once
    /// it confirmed the idea.
    Organisation(String),
}

impl Reader {
    /// Whether the reader may see this idea at all.
    pub fn may_see(&self, idea: &IdeaRecord) -> bool {
        match self {
            Self::Organisation(org) => {
                idea.org_id.as_deref() == Some(org.as_str()) || idea.offered_to.iter().any(|o| o == org)
            }
            _ => true,
        }
    }

    /// The idea as this reader may see it.
    pub fn view(&self, idea: &IdeaRecord, codes: &BTreeMap<String, String>) -> IdeaView {
        let confirmed_by_me = matches!(self, Self::Organisation(org) if idea.org_id.as_deref() == Some(org.as_str()));
        let redact_text = match self {
            Self::Moderator => false,
            Self::Viewer => true,
            Self::Organisation(_) => !idea.consent,
        };
        let text = if redact_text {
            redact(&idea.text)
        } else {
            idea.text.clone()
        };
        let offered_to = match self {
            Self::Organisation(org) => idea.offered_to.iter().filter(|o| *o == org).cloned().collect(),
            _ => idea.offered_to.clone(),
        };
        IdeaView {
            id: idea.id.clone(),
            tracking_code: idea.tracking_code.clone(),
            bench_id: idea.bench_id.clone(),
            municipality: idea.municipality.clone(),
            submitted_at: idea.submitted_at,
            received_at: idea.received_at,
            redacted: text != idea.text,
            text,
            category: idea.category.clone(),
            lang: idea.lang.clone(),
            state: idea.state,
            org_id: idea.org_id.clone(),
            offered_to,
            attempts: idea.attempts,
            rule: idea.rule.clone(),
            deadline: idea.deadline,
            duplicate_of: idea.duplicate_of.as_ref().and_then(|id| codes.get(id).cloned()),
            flag: match self {
                Self::Organisation(_) => None,
                _ => idea.flag.clone(),
            },
            has_contact: idea.contact.is_some(),
            contact: if confirmed_by_me { idea.contact.clone() } else { None },
            confirmed_at: idea.confirmed_at,
            completed_at: idea.completed_at,
            updated_at: idea.updated_at,
        }
    }

    /// The history as this reader may see it: an organisation sees the steps that concern no
    /// organisation or itself, and internal notes only of its own steps.
    pub fn history(&self, events: &[IdeaEvent]) -> Vec<IdeaStep> {
        events
            .iter()
            .filter(|e| match self {
                Self::Organisation(org) => e.org_id.as_deref().is_none_or(|o| o == org),
                _ => true,
            })
            .map(|e| IdeaStep {
                at: e.at,
                actor: match self {
                    // Other people's names stay inside the network's staff.
                    Self::Organisation(_) if e.org_id.is_none() && !e.actor.starts_with("bench:") => "network".into(),
                    _ => e.actor.clone(),
                },
                action: e.action.clone(),
                from: e.from_state,
                to: e.to_state,
                org_id: e.org_id.clone(),
                public_note: e.public_note.clone(),
                internal_note: match self {
                    Self::Organisation(org) if e.org_id.as_deref() != Some(org.as_str()) => None,
                    _ => e.internal_note.clone(),
                },
            })
            .collect()
    }
}

/// What the public status page shows.
pub fn public(
    idea: &IdeaRecord,
    original_code: Option<String>,
    events: &[IdeaEvent],
    organisations: &BTreeMap<String, Organisation>,
) -> PublicIdea {
    PublicIdea {
        tracking_code: idea.tracking_code.clone(),
        state: idea.state.public(),
        municipality: idea.municipality.clone(),
        category: idea.category.clone(),
        received_at: idea.received_at,
        updated_at: idea.updated_at,
        organisation: idea
            .org_id
            .as_ref()
            .map(|id| organisations.get(id).map_or_else(|| id.clone(), |o| o.name.clone())),
        duplicate_of: original_code,
        notes: events
            .iter()
            .filter_map(|e| {
                e.public_note.as_ref().map(|n| PublicNote {
                    at: e.at,
                    note: redact(n),
                })
            })
            .collect(),
    }
}

/// A change to an idea, for the live event stream: no text, no personal data.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IdeaChange {
    pub idea_id: String,
    pub tracking_code: String,
    pub municipality: String,
    pub at: DateTime<Utc>,
    pub action: String,
    pub from: Option<IdeaState>,
    pub to: IdeaState,
    pub org_id: Option<String>,
}

/// The live-stream form of `idea`'s freshly written events.
pub(super) fn changes(idea: &IdeaRecord, events: &[IdeaEvent]) -> Vec<IdeaChange> {
    events
        .iter()
        .map(|e| IdeaChange {
            idea_id: e.idea_id.clone(),
            tracking_code: idea.tracking_code.clone(),
            municipality: idea.municipality.clone(),
            at: e.at,
            action: e.action.clone(),
            from: e.from_state,
            to: e.to_state,
            org_id: e.org_id.clone(),
        })
        .collect()
}

/// The routing facts of a stored idea.
pub(super) fn facts(idea: &IdeaRecord) -> IdeaFacts {
    IdeaFacts {
        bench_id: idea.bench_id.clone(),
        municipality: idea.municipality.clone(),
        category: idea.category.clone(),
        lang: idea.lang.clone(),
        text: idea.text.clone(),
    }
}

/// The `idea_id` of a payload that failed validation, when there is a usable one (so the kiosk
/// can be told not to retry).
pub(crate) fn idea_id_of(payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Id {
        idea_id: String,
    }
    serde_json::from_slice::<Id>(payload)
        .ok()
        .map(|i| i.idea_id.to_ascii_lowercase())
        .filter(|id| protocol::idea::is_uuid(id))
}

/// An organisation id from its name: `LDA Mostar` → `lda-mostar`.
pub(super) fn slug(name: &str) -> String {
    let s: String = fold(name)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s.split('-').filter(|p| !p.is_empty()).collect::<Vec<_>>().join("-");
    let s: String = s.chars().take(48).collect();
    let s = s.trim_end_matches('-').to_owned();
    if s.is_empty() { "organisation".into() } else { s }
}

/// An application to join the network (`POST /api/v1/organisations/applications`).
#[derive(Debug, Clone, PartialEq, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Application {
    /// 3-120 characters.
    pub name: String,
    /// Municipalities it works in: names as in the fleet registry, at least one.
    pub municipalities: Vec<String>,
    /// Idea categories it takes on (empty: any).
    #[serde(default)]
    pub categories: Vec<String>,
    pub contact_email: String,
    #[serde(default)]
    pub contact_phone: Option<String>,
    #[serde(default)]
    pub website: Option<String>,
    /// What it does, at most 2000 characters.
    #[serde(default)]
    pub description: Option<String>,
}

impl Application {
    /// Every problem with the application.
    pub fn validate(&self, fleet: &protocol::Fleet) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let name = self.name.trim().chars().count();
        if !(3..=120).contains(&name) {
            errors.push(FieldError::new("name", "must have 3-120 characters"));
        }
        if self.municipalities.is_empty() {
            errors.push(FieldError::new("municipalities", "name at least one municipality"));
        }
        for (i, m) in self.municipalities.iter().enumerate() {
            if !fleet.iter().any(|b| fold(&b.municipality) == fold(m)) {
                errors.push(FieldError::new(
                    format!("municipalities[{i}]"),
                    format!("no bench is in {m:?}"),
                ));
            }
        }
        for (i, c) in self.categories.iter().enumerate() {
            let ok = (1..=32).contains(&c.len())
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                errors.push(FieldError::new(
                    format!("categories[{i}]"),
                    "must be 1-32 lowercase ASCII letters, digits or `_`",
                ));
            }
        }
        let email = self.contact_email.trim();
        let email_ok = email.len() <= 254
            && email.split_once('@').is_some_and(|(user, host)| {
                !user.is_empty() && host.contains('.') && !host.starts_with('.') && !host.ends_with('.')
            })
            && !email.contains(char::is_whitespace);
        if !email_ok {
            errors.push(FieldError::new("contact_email", "must be an e-mail address"));
        }
        let long = |v: &Option<String>, max: usize| v.as_ref().is_some_and(|v| v.chars().count() > max);
        if long(&self.contact_phone, 40) {
            errors.push(FieldError::new("contact_phone", "must have at most 40 characters"));
        }
        if long(&self.website, 200) {
            errors.push(FieldError::new("website", "must have at most 200 characters"));
        }
        if long(&self.description, 2000) {
            errors.push(FieldError::new("description", "must have at most 2000 characters"));
        }
        errors
    }

    /// The organisation it becomes, in state `applied`, with municipality names as the
    /// registry spells them.
    pub fn into_organisation(self, id: String, now: DateTime<Utc>) -> Organisation {
        Organisation {
            id,
            name: self.name.trim().to_owned(),
            municipalities: self.municipalities,
            categories: self.categories,
            contact_email: self.contact_email.trim().to_owned(),
            contact_phone: self.contact_phone,
            website: self.website,
            description: self.description,
            state: OrgState::Applied,
            created_at: now,
            updated_at: now,
            decided_by: None,
            note: None,
        }
    }
}

/// Ideas in a period: counts, and how fast organisations confirm.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IdeaReport {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub total: i64,
    /// State → ideas.
    pub by_state: BTreeMap<String, i64>,
    /// Municipality → state → ideas.
    pub by_municipality: BTreeMap<String, BTreeMap<String, i64>>,
    /// Category → state → ideas.
    pub by_category: BTreeMap<String, BTreeMap<String, i64>>,
    /// Per organisation that confirmed ideas: how many and the median time to confirm.
    pub confirmations: Vec<ConfirmStats>,
}

/// How fast one organisation confirms.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConfirmStats {
    pub org_id: String,
    pub name: String,
    pub confirmed: usize,
    /// Median seconds from an idea's arrival to its confirmation.
    pub median_seconds: f64,
}

pub(super) fn report(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    counts: &[IdeaCount],
    times: &[(String, i64)],
    organisations: &BTreeMap<String, Organisation>,
) -> IdeaReport {
    let mut r = IdeaReport {
        from,
        to,
        total: 0,
        by_state: BTreeMap::new(),
        by_municipality: BTreeMap::new(),
        by_category: BTreeMap::new(),
        confirmations: Vec::new(),
    };
    for c in counts {
        let state = c.state.as_str().to_owned();
        r.total += c.count;
        *r.by_state.entry(state.clone()).or_default() += c.count;
        *r.by_municipality
            .entry(c.municipality.clone())
            .or_default()
            .entry(state.clone())
            .or_default() += c.count;
        *r.by_category
            .entry(c.category.clone())
            .or_default()
            .entry(state)
            .or_default() += c.count;
    }
    let mut per_org: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (org, ms) in times {
        per_org.entry(org).or_default().push(*ms);
    }
    for (org, mut ms) in per_org {
        ms.sort_unstable();
        let n = ms.len();
        #[allow(clippy::cast_precision_loss)]
        let median_ms = if n % 2 == 1 {
            ms[n / 2] as f64
        } else {
            (ms[n / 2 - 1] as f64 + ms[n / 2] as f64) / 2.0
        };
        r.confirmations.push(ConfirmStats {
            org_id: org.to_owned(),
            name: organisations
                .get(org)
                .map_or_else(|| org.to_owned(), |o| o.name.clone()),
            confirmed: n,
            median_seconds: median_ms / 1000.0,
        });
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slug("LDA Mostar"), "lda-mostar");
        assert_eq!(slug("Udruženje „Zeleni Žepče“"), "udruzenje-zeleni-zepce");
        assert_eq!(slug("Омладински савјет Требиње"), "omladinski-savjet-trebinje");
        assert_eq!(slug("!!!"), "organisation");
    }

    #[test]
    fn medians_per_organisation() {
        let t: DateTime<Utc> = "2026-11-01T00:00:00Z".parse().unwrap();
        let counts = vec![
            IdeaCount {
                municipality: "Mostar".into(),
                category: "environment".into(),
                state: IdeaState::Offered,
                count: 2,
            },
            IdeaCount {
                municipality: "Mostar".into(),
                category: "youth".into(),
                state: IdeaState::Confirmed,
                count: 3,
            },
            IdeaCount {
                municipality: "Žepče".into(),
                category: "youth".into(),
                state: IdeaState::Confirmed,
                count: 1,
            },
        ];
        let times = vec![
            ("a".to_owned(), 1000),
            ("a".to_owned(), 5000),
            ("a".to_owned(), 3000),
            ("b".to_owned(), 2000),
            ("b".to_owned(), 4000),
        ];
        let r = report(t, t, &counts, &times, &BTreeMap::new());
        assert_eq!(r.total, 6);
        assert_eq!(r.by_state["confirmed"], 4);
        assert_eq!(r.by_municipality["Mostar"]["offered"], 2);
        assert_eq!(r.by_category["youth"]["confirmed"], 4);
        assert_eq!(r.confirmations.len(), 2);
        assert_eq!(
            (r.confirmations[0].confirmed, r.confirmations[0].median_seconds),
            (3, 3.0)
        );
        assert_eq!(
            (r.confirmations[1].confirmed, r.confirmations[1].median_seconds),
            (2, 3.0)
        );
    }
}
