//! Idea routing (`organisations`, `routing_rule_sets`, `routing_cursors`, `ideas` with
//! `idea_offers` and `idea_events`, `idea_codes`, `routing_audit`): [`RoutingStore`] on both
//! databases, every statement written once.
//!
//! An idea's current offers are rows of `idea_offers`, read back as one list: `ARRAY(…)` on
//! PostgreSQL, `json_group_array` on SQLite (the one expression that differs).

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use protocol::IdeaState;
use protocol::idea::Contact;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, FromRow, QueryBuilder, Row, Type};

use super::audit::{self, AuditLog};
use super::value::{TextList, Time, ceil_to_millis, undecodable};
use super::{Backend, Dialect, Result, StoreError, on_pool};
use crate::routing::{
    IdeaCount, IdeaEvent, IdeaFilter, IdeaRecord, OrgState, Organisation, RoutingAudit, RoutingStore, RoutingWrite,
    RuleSet, RuleSetRecord,
};

/// The `organisations` columns in [`Organisation`] field order.
const ORG_COLUMNS: &str = "id, name, municipalities, categories, contact_email, contact_phone, \
     website, description, state, created_at, updated_at, decided_by, note";

/// The `ideas` columns in [`IdeaRecord`] field order; `offered_to` is not one: it is selected
/// from `idea_offers`.
const IDEA_COLUMNS: &str = "id, tracking_code, bench_id, municipality, submitted_at, received_at, \
     text, category, lang, contact, consent, fingerprint, duplicate_of, state, org_id, excluded, attempts, \
     rule, rule_version, confirm_within_s, act_within_s, deadline, flag, updated_at, confirmed_at, completed_at";

/// The `idea_events` columns in [`IdeaEvent`] field order, without the id.
const EVENT_COLUMNS: &str = "idea_id, at, actor, action, from_state, to_state, org_id, public_note, internal_note";

fn placeholder(i: usize) -> String {
    format!("${i}")
}

static UPSERT_ORG: LazyLock<String> = LazyLock::new(|| upsert_sql("organisations", ORG_COLUMNS, "id", placeholder));
static UPSERT_IDEA: LazyLock<String> = LazyLock::new(|| upsert_sql("ideas", IDEA_COLUMNS, "id", placeholder));
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| insert_sql("idea_events", EVENT_COLUMNS, placeholder));
static SELECT_ORGS: LazyLock<String> = LazyLock::new(|| format!("SELECT {ORG_COLUMNS} FROM organisations ORDER BY id"));
static SELECT_EVENTS: LazyLock<String> =
    LazyLock::new(|| format!("SELECT id, {EVENT_COLUMNS} FROM idea_events WHERE idea_id = $1 ORDER BY id"));

const INSERT_RULE_SET: &str = "INSERT INTO routing_rule_sets (version, rules, created_by, created_at) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (version) DO NOTHING";
const DELETE_OFFERS: &str = "DELETE FROM idea_offers WHERE idea_id = $1";
// A repeated organisation keeps its first place.
const INSERT_OFFER: &str =
    "INSERT INTO idea_offers (idea_id, org_id, position) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const UPSERT_CURSOR: &str = "INSERT INTO routing_cursors (key, position) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET position = excluded.position";
const NEXT_CODE: &str = "INSERT INTO idea_codes (prefix, last) VALUES ($1, 1) \
     ON CONFLICT (prefix) DO UPDATE SET last = idea_codes.last + 1 RETURNING last";
const SELECT_RULE_SETS: &str =
    "SELECT version, rules, created_by, created_at FROM routing_rule_sets ORDER BY version DESC LIMIT $1";
const SELECT_CURSORS: &str = "SELECT key, position FROM routing_cursors ORDER BY key";
const OPEN_COUNTS: &str = "SELECT org_id, count(*) FROM ( \
         SELECT o.org_id FROM idea_offers o JOIN ideas i ON i.id = o.idea_id WHERE i.state = 'offered' \
         UNION ALL \
         SELECT org_id FROM ideas WHERE org_id IS NOT NULL AND state IN ('confirmed', 'in_action') \
     ) AS open GROUP BY org_id ORDER BY org_id";
const IDEA_COUNTS: &str = "SELECT municipality, category, state, count(*) AS n FROM ideas \
     WHERE received_at >= $1 AND received_at < $2 GROUP BY municipality, category, state";
const CONFIRM_TIMES: &str = "SELECT org_id, received_at, confirmed_at FROM ideas \
     WHERE confirmed_at IS NOT NULL AND org_id IS NOT NULL AND received_at >= $1 AND received_at < $2 \
     ORDER BY org_id, received_at, id";

/// Every idea column, then its current offers in offer order.
fn select_ideas(d: Dialect) -> String {
    let offers = match d {
        Dialect::Sqlite => {
            "(SELECT json_group_array(o.org_id ORDER BY o.position) \
                            FROM idea_offers o WHERE o.idea_id = ideas.id)"
        }
        Dialect::Postgres | Dialect::Timescale => {
            "ARRAY(SELECT o.org_id FROM idea_offers o WHERE o.idea_id = ideas.id ORDER BY o.position)"
        }
    };
    format!("SELECT {IDEA_COLUMNS}, {offers} AS offered_to FROM ideas")
}

/// The idea statements of one dialect.
struct IdeaQueries {
    all: String,
    by_id: String,
    by_code: String,
    by_fingerprint: String,
    due: String,
}

impl IdeaQueries {
    fn new(d: Dialect) -> Self {
        let all = select_ideas(d);
        Self {
            by_id: format!("{all} WHERE id = $1"),
            by_code: format!("{all} WHERE tracking_code = $1"),
            by_fingerprint: format!(
                "{all} WHERE fingerprint = $1 AND state NOT IN ('duplicate', 'rejected') \
                 ORDER BY received_at, id LIMIT 1"
            ),
            due: format!("{all} WHERE deadline IS NOT NULL AND deadline <= $1 ORDER BY deadline, id LIMIT $2"),
            all,
        }
    }
}

static IDEAS_SQLITE: LazyLock<IdeaQueries> = LazyLock::new(|| IdeaQueries::new(Dialect::Sqlite));
static IDEAS_POSTGRES: LazyLock<IdeaQueries> = LazyLock::new(|| IdeaQueries::new(Dialect::Postgres));

impl Backend {
    fn idea_queries(&self) -> &'static IdeaQueries {
        match self.dialect() {
            Dialect::Sqlite => &IDEAS_SQLITE,
            Dialect::Postgres | Dialect::Timescale => &IDEAS_POSTGRES,
        }
    }

    async fn one_idea(&self, sql: &str, value: &str) -> Result<Option<IdeaRecord>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(sql)
            .bind(value)
            .fetch_optional(pool)
            .await?))
    }
}

#[async_trait]
impl RoutingStore for Backend {
    async fn routing_write(&self, write: &RoutingWrite) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for o in &write.organisations {
                sqlx::query(&UPSERT_ORG)
                    .bind(&o.id)
                    .bind(&o.name)
                    .bind(TextList(o.municipalities.clone()))
                    .bind(TextList(o.categories.clone()))
                    .bind(&o.contact_email)
                    .bind(&o.contact_phone)
                    .bind(&o.website)
                    .bind(&o.description)
                    .bind(o.state.as_str())
                    .bind(Time::stored(o.created_at))
                    .bind(Time::stored(o.updated_at))
                    .bind(&o.decided_by)
                    .bind(&o.note)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(r) = &write.rule_set {
                let inserted = sqlx::query(INSERT_RULE_SET)
                    .bind(r.version)
                    .bind(Json(&r.rules))
                    .bind(&r.created_by)
                    .bind(Time::stored(r.created_at))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if inserted == 0 {
                    // Dropping the transaction rolls back everything written above.
                    return Err(StoreError::Conflict(format!("rule set version {} exists", r.version)));
                }
            }
            for i in &write.ideas {
                sqlx::query(&UPSERT_IDEA)
                    .bind(&i.id)
                    .bind(&i.tracking_code)
                    .bind(&i.bench_id)
                    .bind(&i.municipality)
                    .bind(Time::stored(i.submitted_at))
                    .bind(Time::stored(i.received_at))
                    .bind(&i.text)
                    .bind(&i.category)
                    .bind(&i.lang)
                    .bind(i.contact.as_ref().map(Json))
                    .bind(i.consent)
                    .bind(&i.fingerprint)
                    .bind(&i.duplicate_of)
                    .bind(i.state.as_str())
                    .bind(&i.org_id)
                    .bind(TextList(i.excluded.clone()))
                    .bind(i.attempts)
                    .bind(&i.rule)
                    .bind(i.rule_version)
                    .bind(i.confirm_within_s)
                    .bind(i.act_within_s)
                    .bind(i.deadline.map(Time::stored))
                    .bind(&i.flag)
                    .bind(Time::stored(i.updated_at))
                    .bind(i.confirmed_at.map(Time::stored))
                    .bind(i.completed_at.map(Time::stored))
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| {
                        conflict_on_unique(e, || format!("tracking code {} is another idea's", i.tracking_code))
                    })?;
                sqlx::query(DELETE_OFFERS).bind(&i.id).execute(&mut *tx).await?;
                for (position, org_id) in (0_i32..).zip(&i.offered_to) {
                    sqlx::query(INSERT_OFFER)
                        .bind(&i.id)
                        .bind(org_id)
                        .bind(position)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for e in &write.events {
                sqlx::query(&INSERT_EVENT)
                    .bind(&e.idea_id)
                    .bind(Time::stored(e.at))
                    .bind(&e.actor)
                    .bind(&e.action)
                    .bind(e.from_state.map(|s| s.as_str()))
                    .bind(e.to_state.as_str())
                    .bind(&e.org_id)
                    .bind(&e.public_note)
                    .bind(&e.internal_note)
                    .execute(&mut *tx)
                    .await?;
            }
            audit::append(&mut tx, AuditLog::Routing, &write.audit).await?;
            for (key, position) in &write.cursors {
                sqlx::query(UPSERT_CURSOR)
                    .bind(key)
                    .bind(position)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    async fn next_tracking_number(&self, prefix: &str) -> Result<i64> {
        Ok(on_pool!(self, |pool| sqlx::query_scalar(NEXT_CODE)
            .bind(prefix)
            .fetch_one(pool)
            .await?))
    }

    async fn organisations(&self) -> Result<Vec<Organisation>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(&SELECT_ORGS)
            .fetch_all(pool)
            .await?))
    }

    async fn rule_sets(&self, limit: u32) -> Result<Vec<RuleSetRecord>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(SELECT_RULE_SETS)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    async fn routing_cursors(&self) -> Result<Vec<(String, i64)>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(SELECT_CURSORS)
            .fetch_all(pool)
            .await?))
    }

    async fn idea(&self, id: &str) -> Result<Option<IdeaRecord>> {
        self.one_idea(&self.idea_queries().by_id, id).await
    }

    async fn idea_by_code(&self, tracking_code: &str) -> Result<Option<IdeaRecord>> {
        self.one_idea(&self.idea_queries().by_code, tracking_code).await
    }

    async fn ideas(&self, filter: &IdeaFilter) -> Result<Vec<IdeaRecord>> {
        Ok(on_pool!(self, |pool| {
            let mut q = QueryBuilder::new(format!("{} WHERE TRUE", self.idea_queries().all));
            if !filter.states.is_empty() {
                q.push(format!(" AND state IN ({})", state_list(&filter.states)));
            }
            if let Some(org) = &filter.org {
                q.push(" AND (org_id = ")
                    .push_bind(org)
                    .push(" OR EXISTS (SELECT 1 FROM idea_offers o WHERE o.idea_id = ideas.id AND o.org_id = ")
                    .push_bind(org)
                    .push("))");
            }
            if let Some(m) = &filter.municipality {
                q.push(" AND municipality = ").push_bind(m);
            }
            if let Some(c) = &filter.category {
                q.push(" AND category = ").push_bind(c);
            }
            if let Some((at, id)) = &filter.before {
                let (at, id) = keyset_before(*at, id);
                q.push(" AND (received_at, id) < (")
                    .push_bind(Time::stored(at))
                    .push(", ")
                    .push_bind(id)
                    .push(")");
            }
            q.push(" ORDER BY received_at DESC, id DESC LIMIT ")
                .push_bind(i64::from(filter.limit));
            q.build_query_as().fetch_all(pool).await?
        }))
    }

    async fn idea_by_fingerprint(&self, fingerprint: &str) -> Result<Option<IdeaRecord>> {
        self.one_idea(&self.idea_queries().by_fingerprint, fingerprint).await
    }

    async fn ideas_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<IdeaRecord>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(&self.idea_queries().due)
                .bind(Time::stored(now))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    async fn open_idea_counts(&self) -> Result<Vec<(String, i64)>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(OPEN_COUNTS)
            .fetch_all(pool)
            .await?))
    }

    async fn idea_events(&self, idea_id: &str) -> Result<Vec<IdeaEvent>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(&SELECT_EVENTS).bind(idea_id).fetch_all(pool).await?
        }))
    }

    async fn idea_counts(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<IdeaCount>> {
        let counts = on_pool!(self, |pool| {
            sqlx::query_as(IDEA_COUNTS)
                .bind(Time::bound(from))
                .bind(Time::bound(to))
                .fetch_all(pool)
                .await?
        });
        Ok(sort_counts(counts))
    }

    async fn confirm_times(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(String, i64)>> {
        let rows: Vec<(String, Time, Time)> = on_pool!(self, |pool| {
            sqlx::query_as(CONFIRM_TIMES)
                .bind(Time::bound(from))
                .bind(Time::bound(to))
                .fetch_all(pool)
                .await?
        });
        Ok(rows
            .into_iter()
            .map(|(org, received, confirmed)| (org, (confirmed.0 - received.0).num_milliseconds()))
            .collect())
    }

    async fn routing_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<RoutingAudit>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(AuditLog::Routing.page_sql())
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }
}

/// `INSERT INTO table (columns) VALUES (…) ON CONFLICT (key) DO UPDATE SET` every other column,
/// with placeholders made by `placeholder(1…n)`.
fn upsert_sql(table: &str, columns: &str, key: &str, placeholder: fn(usize) -> String) -> String {
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
fn insert_sql(table: &str, columns: &str, placeholder: fn(usize) -> String) -> String {
    let values: Vec<String> = (1..=columns.split(',').count()).map(placeholder).collect();
    format!("INSERT INTO {table} ({columns}) VALUES ({})", values.join(", "))
}

/// The SQL list of `states`, quoted: the states are our own identifiers, never input.
fn state_list(states: &[IdeaState]) -> String {
    states
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn decode_idea_state(s: &str) -> Result<IdeaState, sqlx::Error> {
    IdeaState::parse(s).ok_or_else(|| undecodable("idea state", s))
}

fn decode_org_state(s: &str) -> Result<OrgState, sqlx::Error> {
    OrgState::parse(s).ok_or_else(|| undecodable("organisation state", s))
}

/// Ideas per municipality, category and state in one order on every backend: bytewise names,
/// then states in lifecycle ([`IdeaState`]) order rather than alphabetically.
fn sort_counts(mut counts: Vec<IdeaCount>) -> Vec<IdeaCount> {
    counts.sort_by(|a, b| (&a.municipality, &a.category, a.state).cmp(&(&b.municipality, &b.category, b.state)));
    counts
}

/// The position to compare stored `(received_at, id)` with for "strictly before `(at, id)`". For
/// an `at` between stored milliseconds that is everything received up to it, whatever the id
/// (`""` sorts before every id).
fn keyset_before(at: DateTime<Utc>, id: &str) -> (DateTime<Utc>, &str) {
    let up = ceil_to_millis(at);
    if up == at { (at, id) } else { (up, "") }
}

/// Maps a unique violation to [`StoreError::Conflict`] with `what`, passing anything else on.
fn conflict_on_unique(e: sqlx::Error, what: impl FnOnce() -> String) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(what()),
        _ => e.into(),
    }
}

impl<'r, R: Row> FromRow<'r, R> for Organisation
where
    &'r str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    TextList: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            municipalities: row.try_get::<TextList, _>("municipalities")?.0,
            categories: row.try_get::<TextList, _>("categories")?.0,
            contact_email: row.try_get("contact_email")?,
            contact_phone: row.try_get("contact_phone")?,
            website: row.try_get("website")?,
            description: row.try_get("description")?,
            state: decode_org_state(row.try_get("state")?)?,
            created_at: row.try_get::<Time, _>("created_at")?.0,
            updated_at: row.try_get::<Time, _>("updated_at")?.0,
            decided_by: row.try_get("decided_by")?,
            note: row.try_get("note")?,
        })
    }
}

impl<'r, R: Row> FromRow<'r, R> for RuleSetRecord
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
    Json<RuleSet>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            version: row.try_get("version")?,
            rules: row.try_get::<Json<RuleSet>, _>("rules")?.0,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get::<Time, _>("created_at")?.0,
        })
    }
}

impl<'r, R: Row> FromRow<'r, R> for IdeaRecord
where
    &'r str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    TextList: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
    Option<Time>: Decode<'r, R::Database> + Type<R::Database>,
    Option<Json<Contact>>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let time = |column: &'static str| row.try_get::<Time, _>(column).map(|t| t.0);
        let optional_time = |column: &'static str| row.try_get::<Option<Time>, _>(column).map(|t| t.map(|t| t.0));
        Ok(Self {
            id: row.try_get("id")?,
            tracking_code: row.try_get("tracking_code")?,
            bench_id: row.try_get("bench_id")?,
            municipality: row.try_get("municipality")?,
            submitted_at: time("submitted_at")?,
            received_at: time("received_at")?,
            text: row.try_get("text")?,
            category: row.try_get("category")?,
            lang: row.try_get("lang")?,
            contact: row.try_get::<Option<Json<Contact>>, _>("contact")?.map(|c| c.0),
            consent: row.try_get("consent")?,
            fingerprint: row.try_get("fingerprint")?,
            duplicate_of: row.try_get("duplicate_of")?,
            state: decode_idea_state(row.try_get("state")?)?,
            org_id: row.try_get("org_id")?,
            offered_to: row.try_get::<TextList, _>("offered_to")?.0,
            excluded: row.try_get::<TextList, _>("excluded")?.0,
            attempts: row.try_get("attempts")?,
            rule: row.try_get("rule")?,
            rule_version: row.try_get("rule_version")?,
            confirm_within_s: row.try_get("confirm_within_s")?,
            act_within_s: row.try_get("act_within_s")?,
            deadline: optional_time("deadline")?,
            flag: row.try_get("flag")?,
            updated_at: time("updated_at")?,
            confirmed_at: optional_time("confirmed_at")?,
            completed_at: optional_time("completed_at")?,
        })
    }
}

impl<'r, R: Row> FromRow<'r, R> for IdeaEvent
where
    &'r str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    Option<&'r str>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            idea_id: row.try_get("idea_id")?,
            at: row.try_get::<Time, _>("at")?.0,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            from_state: row
                .try_get::<Option<&str>, _>("from_state")?
                .map(decode_idea_state)
                .transpose()?,
            to_state: decode_idea_state(row.try_get("to_state")?)?,
            org_id: row.try_get("org_id")?,
            public_note: row.try_get("public_note")?,
            internal_note: row.try_get("internal_note")?,
        })
    }
}

impl<'r, R: Row> FromRow<'r, R> for IdeaCount
where
    &'r str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            municipality: row.try_get("municipality")?,
            category: row.try_get("category")?,
            state: decode_idea_state(row.try_get("state")?)?,
            count: row.try_get("n")?,
        })
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
