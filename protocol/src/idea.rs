//! Citizens' ideas: what a bench's kiosk sends on `benches/{id}/ideas`, what the control plane
//! answers on `benches/{id}/ideas/ack`, and the states an idea goes through.

use std::fmt;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::telemetry::decode_payload;
use crate::{PAYLOAD_VERSION, RejectReason, Rejection};

/// Most characters an idea's text may have on the wire (the server may set a lower bound).
pub const MAX_TEXT_CHARS: usize = 4000;

/// An idea left at a bench's kiosk (`benches/{id}/ideas`, QoS 1). Unknown fields are ignored,
/// as in every payload, so newer kiosks may add some.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IdeaSubmission {
    /// Payload version, `1`.
    pub v: u32,
    /// A UUID chosen by the bench. Sending the same id again is a retry: the server answers with
    /// the same tracking code and stores nothing new.
    #[schemars(
        length(equal = 36),
        regex(pattern = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
    )]
    pub idea_id: String,
    /// When the citizen submitted it, by the bench's clock.
    pub ts: DateTime<Utc>,
    /// The idea, as typed (Latin or Cyrillic script), at most 4000 characters.
    #[schemars(length(min = 1, max = 4000))]
    pub text: String,
    /// A category such as `environment`, `infrastructure`, `youth`, `culture`, `social`:
    /// lowercase ASCII letters, digits and `_`, 1-32 characters.
    #[schemars(regex(pattern = r"^[a-z0-9_]{1,32}$"))]
    pub category: String,
    /// BCP 47 language tag: `bs`, `hr`, `sr-Latn`, `sr-Cyrl`, `en`.
    #[schemars(regex(pattern = r"^[A-Za-z0-9-]{2,16}$"))]
    pub lang: String,
    /// How to reach the citizen, only with their consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
}

/// A citizen's contact details. `consent: true` means the citizen agrees that the organisation
/// that takes the idea on may contact them and see the contact details in the text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254))]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 254))]
    pub phone: Option<String>,
    pub consent: bool,
}

impl IdeaSubmission {
    /// Decodes and validates a kiosk's payload.
    pub fn decode(payload: &[u8]) -> Result<Self, Rejection> {
        let idea: Self = decode_payload(payload)?;
        idea.validate()?;
        Ok(idea)
    }

    /// Checks the version, the id, and the lengths and shapes of every field.
    pub fn validate(&self) -> Result<(), Rejection> {
        let range = |detail: String| Err(Rejection::new(RejectReason::OutOfRange, detail));
        if self.v != PAYLOAD_VERSION {
            return Err(Rejection::new(
                RejectReason::UnsupportedVersion,
                format!("payload version {} is not supported", self.v),
            ));
        }
        if !is_uuid(&self.idea_id) {
            return range(format!("idea_id {:?} is not a UUID", truncated(&self.idea_id)));
        }
        let chars = self.text.chars().count();
        if self.text.trim().is_empty() || chars > MAX_TEXT_CHARS {
            return range(format!("text must have 1-{MAX_TEXT_CHARS} characters, not {chars}"));
        }
        let category_ok = (1..=32).contains(&self.category.len())
            && self
                .category
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !category_ok {
            return range(format!(
                "category {:?} must be 1-32 lowercase ASCII letters, digits or `_`",
                truncated(&self.category)
            ));
        }
        let lang_ok =
            (2..=16).contains(&self.lang.len()) && self.lang.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !lang_ok {
            return range(format!("lang {:?} is not a BCP 47 tag", truncated(&self.lang)));
        }
        if let Some(c) = &self.contact {
            if c.email.is_none() && c.phone.is_none() {
                return range("contact needs an email or a phone".into());
            }
            let too_long = |v: &Option<String>| v.as_ref().is_some_and(|v| v.chars().count() > 254);
            if too_long(&c.email) || too_long(&c.phone) {
                return range("contact email and phone are at most 254 characters".into());
            }
        }
        Ok(())
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

/// The answer to an idea on `benches/{id}/ideas/ack` (QoS 0, not retained). The kiosk shows the
/// citizen the tracking code; without an ack it re-sends the same `idea_id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct IdeaAck {
    pub v: u32,
    pub idea_id: String,
    /// `MOS-2026-0042`: the municipality, the year, a number. Absent when not accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracking_code: Option<String>,
    pub status: AckStatus,
    /// Why it was not accepted, for the kiosk's log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// For `rate_limited`: seconds until the bench may send a new idea.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
}

impl IdeaAck {
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn decode(payload: &[u8]) -> Result<Self, Rejection> {
        decode_payload(payload)
    }
}

/// What became of a submitted idea.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// Stored; the tracking code is the citizen's.
    Received,
    /// Stored, and linked to an earlier idea with the same text; it has its own code.
    Duplicate,
    /// Not stored: the bench sent too many ideas recently. Send it again later.
    RateLimited,
    /// Not stored, and sending it again will not help (see `reason`).
    Invalid,
}

/// Where an idea is in its lifecycle.
///
/// `received → (held | offered) → confirmed → in_action → completed`; `rejected`, `duplicate`,
/// `unroutable` (no rule and no default organisation) and `escalated` (no organisation confirmed
/// in time) are the other ends; the last two wait in the coordinators' queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IdeaState {
    Received,
    /// Waiting for a moderator (blocklisted words, or flagged).
    Held,
    /// Offered to one organisation (or several, with fan-out); waiting for a confirmation.
    Offered,
    /// An organisation took it on.
    Confirmed,
    InAction,
    Completed,
    Rejected,
    Duplicate,
    Unroutable,
    Escalated,
}

impl IdeaState {
    pub const ALL: [Self; 10] = [
        Self::Received,
        Self::Held,
        Self::Offered,
        Self::Confirmed,
        Self::InAction,
        Self::Completed,
        Self::Rejected,
        Self::Duplicate,
        Self::Unroutable,
        Self::Escalated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Held => "held",
            Self::Offered => "offered",
            Self::Confirmed => "confirmed",
            Self::InAction => "in_action",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Duplicate => "duplicate",
            Self::Unroutable => "unroutable",
            Self::Escalated => "escalated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Still work for someone: counts towards an organisation's load when it holds it.
    pub fn is_open(self) -> bool {
        matches!(self, Self::Offered | Self::Confirmed | Self::InAction)
    }

    /// Waiting for operators: moderation or the coordinators' queue.
    pub fn needs_operator(self) -> bool {
        matches!(self, Self::Held | Self::Unroutable | Self::Escalated)
    }

    /// What a citizen sees: internal states (held, offered, escalated…) read as `received`.
    pub fn public(self) -> PublicState {
        match self {
            Self::Received | Self::Held | Self::Offered | Self::Unroutable | Self::Escalated => PublicState::Received,
            Self::Confirmed => PublicState::Confirmed,
            Self::InAction => PublicState::InAction,
            Self::Completed => PublicState::Completed,
            Self::Rejected => PublicState::Rejected,
            Self::Duplicate => PublicState::Duplicate,
        }
    }
}

impl fmt::Display for IdeaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An idea's state as the public status page shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PublicState {
    /// Received and being looked at.
    Received,
    /// An organisation of the network took it on.
    Confirmed,
    InAction,
    Completed,
    Rejected,
    /// The same idea was already submitted; see the original's code.
    Duplicate,
}

/// An idea as the HTTP API shows it to staff and organisations. What a reader may not see is
/// left out: organisations see phone numbers and e-mail addresses in the text redacted unless
/// the citizen consented, and the contact block only once they confirmed the idea.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdeaView {
    pub id: String,
    pub tracking_code: String,
    pub bench_id: String,
    pub municipality: String,
    pub submitted_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub text: String,
    /// Whether personal data in `text` was replaced by `[e-mail]` / `[phone]` for this reader.
    pub redacted: bool,
    pub category: String,
    pub lang: String,
    pub state: IdeaState,
    /// The organisation that confirmed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// Organisations it is offered to now (for an organisation: itself, when it is).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offered_to: Vec<String>,
    /// Offer rounds so far.
    pub attempts: i32,
    /// The rule that routed it; absent for a municipality's default organisation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The running deadline: confirmation while offered, completion once confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// For a duplicate: the original's tracking code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// Why it waits for a moderator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// Whether the citizen left contact details.
    pub has_contact: bool,
    /// The contact details: only for the organisation that confirmed the idea.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

/// A page of ideas, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdeaPage {
    pub items: Vec<IdeaView>,
    /// Pass as `cursor` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One step of an idea's history, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdeaStep {
    pub at: DateTime<Utc>,
    /// A token subject, `bench:<id>` or `system`.
    pub actor: String,
    /// `received`, `held`, `offered`, `confirmed`, `declined`, `expired`, `escalated`,
    /// `progress`, `completed`, `approved`, `rejected`, `assigned`, `duplicate`, `unroutable`,
    /// `act_overdue`, `withdrawn` (the organisation was suspended).
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<IdeaState>,
    pub to: IdeaState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_note: Option<String>,
}

/// One idea with its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IdeaDetail {
    #[serde(flatten)]
    pub idea: IdeaView,
    pub history: Vec<IdeaStep>,
}

/// What anyone holding a tracking code may see (`GET /api/v1/public/ideas/{code}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicIdea {
    pub tracking_code: String,
    pub state: PublicState,
    pub municipality: String,
    pub category: String,
    pub received_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The organisation taking care of it, once one confirmed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organisation: Option<String>,
    /// For a duplicate: the original's tracking code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<String>,
    /// Notes the organisation or the moderators published, oldest first.
    pub notes: Vec<PublicNote>,
}

/// A published note.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublicNote {
    pub at: DateTime<Utc>,
    pub note: String,
}

/// Whether `s` is a UUID in its 36-character hyphenated form.
pub fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn truncated(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5f0c6f0e-9a51-4c1e-8d3b-2b7c1a9e4f10";

    fn idea() -> IdeaSubmission {
        IdeaSubmission {
            v: 1,
            idea_id: ID.into(),
            ts: "2026-11-26T10:00:00Z".parse().unwrap(),
            text: "Više klupa u parku".into(),
            category: "environment".into(),
            lang: "bs".into(),
            contact: None,
        }
    }

    #[test]
    fn the_issue_example_decodes() {
        let json = format!(
            r#"{{"v":1,"idea_id":"{ID}","ts":"2026-11-26T10:00:00Z","text":"Потребна је расвјета","category":"environment","lang":"sr-Cyrl","contact":{{"email":"a@b.ba","consent":true}}}}"#
        );
        let idea = IdeaSubmission::decode(json.as_bytes()).unwrap();
        assert_eq!(idea.contact.unwrap().email.as_deref(), Some("a@b.ba"));
        let null_contact = json.replace(r#"{"email":"a@b.ba","consent":true}"#, "null");
        assert_eq!(IdeaSubmission::decode(null_contact.as_bytes()).unwrap().contact, None);
    }

    #[test]
    fn bad_fields_are_refused_with_a_reason() {
        let cases: Vec<(IdeaSubmission, &str)> = vec![
            (IdeaSubmission { v: 2, ..idea() }, "version"),
            (
                IdeaSubmission {
                    idea_id: "42".into(),
                    ..idea()
                },
                "idea_id",
            ),
            (
                IdeaSubmission {
                    text: "   ".into(),
                    ..idea()
                },
                "text",
            ),
            (
                IdeaSubmission {
                    text: "x".repeat(MAX_TEXT_CHARS + 1),
                    ..idea()
                },
                "text",
            ),
            (
                IdeaSubmission {
                    category: "Environment".into(),
                    ..idea()
                },
                "category",
            ),
            (
                IdeaSubmission {
                    lang: "b s".into(),
                    ..idea()
                },
                "lang",
            ),
            (
                IdeaSubmission {
                    contact: Some(Contact {
                        email: None,
                        phone: None,
                        consent: true,
                    }),
                    ..idea()
                },
                "contact",
            ),
        ];
        for (bad, field) in cases {
            let e = bad.validate().unwrap_err();
            assert!(e.detail.contains(field), "{field}: {}", e.detail);
        }
        assert!(idea().validate().is_ok());
        let e = IdeaSubmission::decode(br#"{"v":1,"idea_id":"x"}"#).unwrap_err();
        assert_eq!(e.reason, RejectReason::InvalidType);
    }

    #[test]
    fn states_round_trip_and_map_to_public() {
        for s in IdeaState::ALL {
            assert_eq!(IdeaState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
        assert_eq!(IdeaState::Held.public(), PublicState::Received);
        assert_eq!(IdeaState::Escalated.public(), PublicState::Received);
        assert_eq!(IdeaState::InAction.public(), PublicState::InAction);
        assert!(IdeaState::Confirmed.is_open() && !IdeaState::Completed.is_open());
    }

    #[test]
    fn acks_serialise_like_the_issue_says() {
        let ack = IdeaAck {
            v: 1,
            idea_id: ID.into(),
            tracking_code: Some("MOS-2026-0042".into()),
            status: AckStatus::Received,
            reason: None,
            retry_after_s: None,
        };
        assert_eq!(
            String::from_utf8(ack.to_json()).unwrap(),
            format!(r#"{{"v":1,"idea_id":"{ID}","tracking_code":"MOS-2026-0042","status":"received"}}"#)
        );
    }
}
