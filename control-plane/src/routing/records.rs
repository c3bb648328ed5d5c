//! What idea routing keeps in the store, and the one atomic write ([`RoutingWrite`]) every
//! change goes through.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use protocol::IdeaState;
use protocol::idea::Contact;
use serde::{Deserialize, Serialize};

use super::rules::RuleSet;
use crate::persistence::Result;

/// A member organisation's place in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrgState {
    /// Applied to join; receives nothing until an operator approves.
    Applied,
    /// Receives ideas.
    Active,
    /// Receives nothing new; what it already confirmed stays its own.
    Suspended,
    /// The application was turned down.
    Rejected,
}

impl OrgState {
    pub const ALL: [Self; 4] = [Self::Applied, Self::Active, Self::Suspended, Self::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// A civil-society organisation of the network (`organisations`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Organisation {
    /// A slug made from the name at application time, e.g. `lda-mostar`.
    pub id: String,
    pub name: String,
    /// Municipalities it works in (names as in the fleet registry).
    pub municipalities: Vec<String>,
    /// Idea categories it takes on; empty means any.
    pub categories: Vec<String>,
    pub contact_email: String,
    pub contact_phone: Option<String>,
    pub website: Option<String>,
    pub description: Option<String>,
    pub state: OrgState,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The operator who last changed its state.
    pub decided_by: Option<String>,
    /// Why (a rejection or suspension reason).
    pub note: Option<String>,
}

/// One version of the routing rules (`routing_rule_sets`); the newest is in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleSetRecord {
    /// 1, 2, 3…; a version is never reused.
    pub version: i64,
    pub rules: RuleSet,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

/// One citizen's idea (`ideas`), as stored: everything, including what only some may see.
#[derive(Debug, Clone, PartialEq)]
pub struct IdeaRecord {
    /// The bench-chosen UUID (lowercase).
    pub id: String,
    /// `MOS-2026-0042`, unique.
    pub tracking_code: String,
    pub bench_id: String,
    pub municipality: String,
    /// When the citizen submitted it (the bench's clock).
    pub submitted_at: DateTime<Utc>,
    /// When the control plane stored it.
    pub received_at: DateTime<Utc>,
    pub text: String,
    pub category: String,
    pub lang: String,
    /// Kept only with the citizen's consent.
    pub contact: Option<Contact>,
    pub consent: bool,
    /// Normalised text (case, whitespace, script), for duplicate detection.
    pub fingerprint: String,
    /// The original, for a duplicate.
    pub duplicate_of: Option<String>,
    pub state: IdeaState,
    /// The organisation that confirmed it.
    pub org_id: Option<String>,
    /// Organisations it is offered to now (state `offered`).
    pub offered_to: Vec<String>,
    /// Organisations that declined it or let it expire; never offered it again.
    pub excluded: Vec<String>,
    /// Offer rounds so far.
    pub attempts: i32,
    /// The rule (name) and rule set version that routed it.
    pub rule: Option<String>,
    pub rule_version: Option<i64>,
    /// The SLA it was routed with, in seconds.
    pub confirm_within_s: Option<i64>,
    pub act_within_s: Option<i64>,
    /// The next timer: the confirmation deadline while offered, the action deadline once
    /// confirmed. Cleared when it fires, so it fires once.
    pub deadline: Option<DateTime<Utc>>,
    /// Why it waits for a moderator (`held`), or was flagged.
    pub flag: Option<String>,
    pub updated_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// One step of an idea's lifecycle (`idea_events`): who, when, from, to, why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IdeaEvent {
    /// Assigned by the store, increasing; 0 before it is written.
    pub id: i64,
    pub idea_id: String,
    pub at: DateTime<Utc>,
    /// A token subject, `bench:<id>` or `system`.
    pub actor: String,
    /// `received`, `held`, `offered`, `confirmed`, `declined`, `expired`, `escalated`, `progress`,
    /// `completed`, `approved`, `rejected`, `assigned`, `duplicate`, `unroutable`, `act_overdue`,
    /// `withdrawn` (the organisation was suspended).
    pub action: String,
    pub from_state: Option<IdeaState>,
    pub to_state: IdeaState,
    /// The organisation concerned (offered to, confirming, declining).
    pub org_id: Option<String>,
    /// Shown on the public status page.
    pub public_note: Option<String>,
    /// Seen by operators and the organisation only.
    pub internal_note: Option<String>,
}

/// An operator's action on the network itself (`routing_audit`): organisation decisions. The
/// same entry as OTA's audit log, in a table of its own.
pub type RoutingAudit = crate::audit::AuditEntry;

/// Everything one routing change writes, applied in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoutingWrite {
    /// Organisations to upsert (by id).
    pub organisations: Vec<Organisation>,
    /// A new rule set version; an existing version is a `Conflict`.
    pub rule_set: Option<RuleSetRecord>,
    /// Ideas to upsert (by id); their current offers are replaced by `offered_to`. Inserting a
    /// new idea whose `tracking_code` exists is a `Conflict`.
    pub ideas: Vec<IdeaRecord>,
    /// Events to append (their `id` is ignored).
    pub events: Vec<IdeaEvent>,
    /// Round-robin cursors to set: (key, position).
    pub cursors: Vec<(String, i64)>,
    /// Audit entries to append (their `id` is ignored).
    pub audit: Vec<RoutingAudit>,
}

impl RoutingWrite {
    pub fn is_empty(&self) -> bool {
        self.organisations.is_empty()
            && self.rule_set.is_none()
            && self.ideas.is_empty()
            && self.events.is_empty()
            && self.cursors.is_empty()
            && self.audit.is_empty()
    }
}

/// Which ideas to list (`Store::ideas`). Every set condition must hold.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IdeaFilter {
    /// Any of these states (all states when empty).
    pub states: Vec<IdeaState>,
    /// Ideas this organisation confirmed or is offered now.
    pub org: Option<String>,
    pub municipality: Option<String>,
    pub category: Option<String>,
    /// Received strictly before this position (newest first paging): `(received_at, id)`.
    pub before: Option<(DateTime<Utc>, String)>,
    /// At most this many, newest `received_at` first (then `id` descending).
    pub limit: u32,
}

/// Ideas per municipality, category and state with `from <= received_at < to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdeaCount {
    pub municipality: String,
    pub category: String,
    pub state: IdeaState,
    pub count: i64,
}

/// Where the network of organisations, the rules and the ideas are kept (implemented by each
/// store backend).
#[async_trait]
pub trait RoutingStore: Send + Sync {
    /// Applies one routing change in one transaction (see [`RoutingWrite`]).
    async fn routing_write(&self, write: &RoutingWrite) -> Result<()>;

    /// The next number for tracking codes with this prefix (`MOS-2026`): 1, 2, 3…, never the
    /// same twice, even across restarts (a number may be skipped when the idea's write fails).
    async fn next_tracking_number(&self, prefix: &str) -> Result<i64>;

    /// Every organisation, ordered by id.
    async fn organisations(&self) -> Result<Vec<Organisation>>;

    /// Rule set versions, newest first, at most `limit`.
    async fn rule_sets(&self, limit: u32) -> Result<Vec<RuleSetRecord>>;

    /// Every round-robin cursor: (key, position), ordered by key.
    async fn routing_cursors(&self) -> Result<Vec<(String, i64)>>;

    /// One idea by id, or by tracking code.
    async fn idea(&self, id: &str) -> Result<Option<IdeaRecord>>;
    async fn idea_by_code(&self, tracking_code: &str) -> Result<Option<IdeaRecord>>;

    /// Ideas matching `filter`, newest `received_at` first (then id descending).
    async fn ideas(&self, filter: &IdeaFilter) -> Result<Vec<IdeaRecord>>;

    /// The earliest-received idea with this fingerprint that is neither a duplicate nor rejected.
    async fn idea_by_fingerprint(&self, fingerprint: &str) -> Result<Option<IdeaRecord>>;

    /// Ideas whose `deadline <= now`, earliest deadline first, at most `limit`.
    async fn ideas_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<IdeaRecord>>;

    /// Open ideas per organisation: those it is offered (state `offered`) plus those it
    /// confirmed that are `confirmed` or `in_action`. Organisations with none are absent.
    async fn open_idea_counts(&self) -> Result<Vec<(String, i64)>>;

    /// One idea's events, oldest first.
    async fn idea_events(&self, idea_id: &str) -> Result<Vec<IdeaEvent>>;

    /// Ideas per municipality, category and state with `from <= received_at < to`, ordered by
    /// municipality, category, state.
    async fn idea_counts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<IdeaCount>>;

    /// Per confirmed idea received in `from <= received_at < to`: the confirming organisation
    /// and the milliseconds from `received_at` to `confirmed_at`, ordered by organisation.
    async fn confirm_times(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(String, i64)>>;

    /// Routing audit entries with `id < before` (all when `None`), newest first, at most `limit`.
    async fn routing_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<RoutingAudit>>;
}
