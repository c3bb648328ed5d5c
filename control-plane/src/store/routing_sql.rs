//! What both backends share for idea routing: column lists in record field order, the upsert
//! statements built from them, and decoding of stored states.

use chrono::{DateTime, Utc};
use protocol::IdeaState;

use super::ceil_to_millis;
use crate::routing::{IdeaCount, OrgState};

/// The `organisations` columns in [`crate::routing::Organisation`] field order.
pub(crate) const ORG_COLUMNS: &str = "id, name, municipalities, categories, contact_email, contact_phone, \
     website, description, state, created_at, updated_at, decided_by, note";

/// The `ideas` columns in [`crate::routing::IdeaRecord`] field order; `offered_to` is not one:
/// each backend selects it from `idea_offers`.
pub(crate) const IDEA_COLUMNS: &str = "id, tracking_code, bench_id, municipality, submitted_at, received_at, \
     text, category, lang, contact, consent, fingerprint, duplicate_of, state, org_id, excluded, attempts, \
     rule, rule_version, confirm_within_s, act_within_s, deadline, flag, updated_at, confirmed_at, completed_at";

/// The `idea_events` columns in [`crate::routing::IdeaEvent`] field order, without the id.
pub(crate) const EVENT_COLUMNS: &str =
    "idea_id, at, actor, action, from_state, to_state, org_id, public_note, internal_note";

/// `INSERT INTO table (columns) VALUES (…) ON CONFLICT (key) DO UPDATE SET` every other column,
/// with placeholders made by `placeholder(1…n)`.
pub(crate) fn upsert_sql(table: &str, columns: &str, key: &str, placeholder: fn(usize) -> String) -> String {
    let names: Vec<&str> = columns.split(',').map(str::trim).collect();
    let values: Vec<String> = (1..=names.len()).map(placeholder).collect();
    let set: Vec<String> = names
        .iter()
        .filter(|c| **c != key)
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO {table} ({columns}) VALUES ({}) ON CONFLICT ({key}) DO UPDATE SET {}",
        values.join(", "),
        set.join(", ")
    )
}

/// `INSERT INTO table (columns) VALUES (…)`, with placeholders made by `placeholder(1…n)`.
pub(crate) fn insert_sql(table: &str, columns: &str, placeholder: fn(usize) -> String) -> String {
    let values: Vec<String> = (1..=columns.split(',').count()).map(placeholder).collect();
    format!("INSERT INTO {table} ({columns}) VALUES ({})", values.join(", "))
}

/// The SQL list of `states`, quoted: the states are our own identifiers, never input.
pub(crate) fn state_list(states: &[IdeaState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn decode_idea_state(s: &str) -> Result<IdeaState, sqlx::Error> {
    IdeaState::parse(s).ok_or_else(|| sqlx::Error::Decode(format!("unknown idea state {s:?}").into()))
}

pub(crate) fn decode_org_state(s: &str) -> Result<OrgState, sqlx::Error> {
    OrgState::parse(s).ok_or_else(|| sqlx::Error::Decode(format!("unknown organisation state {s:?}").into()))
}

/// Ideas per municipality, category and state in one order on every backend: bytewise names,
/// then states in lifecycle ([`IdeaState`]) order rather than alphabetically.
pub(crate) fn sort_counts(mut counts: Vec<IdeaCount>) -> Vec<IdeaCount> {
    counts.sort_by(|a, b| (&a.municipality, &a.category, a.state).cmp(&(&b.municipality, &b.category, b.state)));
    counts
}

/// The position to compare stored `(received_at, id)` with for "strictly before `(at, id)`". For
/// an `at` between stored milliseconds that is everything received up to it, whatever the id
/// (`""` sorts before every id).
pub(crate) fn keyset_before(at: DateTime<Utc>, id: &str) -> (DateTime<Utc>, &str) {
    let up = ceil_to_millis(at);
    if up == at { (at, id) } else { (up, "") }
}

/// Milliseconds from receipt to confirmation.
pub(crate) fn confirm_millis(received_at: DateTime<Utc>, confirmed_at: DateTime<Utc>) -> i64 {
    (confirmed_at - received_at).num_milliseconds()
}

/// Maps a unique violation to [`super::StoreError::Conflict`] with `what`, passing anything else on.
pub(crate) fn conflict_on_unique(e: sqlx::Error, what: impl FnOnce() -> String) -> super::StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => super::StoreError::Conflict(what()),
        _ => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upserts_set_every_column_but_the_key() {
        assert_eq!(
            upsert_sql("t", "k, a, b", "k", |i| format!("${i}")),
            "INSERT INTO t (k, a, b) VALUES ($1, $2, $3) ON CONFLICT (k) DO UPDATE SET a = excluded.a, b = excluded.b"
        );
        assert_eq!(
            insert_sql("t", "a, b", |i| format!("?{i}")),
            "INSERT INTO t (a, b) VALUES (?1, ?2)"
        );
        assert_eq!(IDEA_COLUMNS.split(',').count(), 26);
    }
}
