//! Idea routing on PostgreSQL: organisations, rule sets, ideas with their offers and events.
//!
//! Lists are `text[]`, documents `jsonb`; times are cut to the millisecond on the way in, as
//! everywhere in this store.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use protocol::idea::Contact;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::types::Json;
use sqlx::{Postgres, QueryBuilder, Row};

use crate::routing::{
    IdeaCount, IdeaEvent, IdeaFilter, IdeaRecord, Organisation, RoutingWrite, RuleSet, RuleSetRecord,
};
use crate::store::routing_sql::{
    EVENT_COLUMNS, IDEA_COLUMNS, ORG_COLUMNS, confirm_millis, conflict_on_unique, decode_idea_state, decode_org_state,
    insert_sql, keyset_before, sort_counts, upsert_sql,
};
use crate::store::{Result, StoreError, ceil_to_millis, truncate_to_millis};

fn placeholder(i: usize) -> String {
    format!("${i}")
}

static UPSERT_ORG: LazyLock<String> = LazyLock::new(|| upsert_sql("organisations", ORG_COLUMNS, "id", placeholder));
static UPSERT_IDEA: LazyLock<String> = LazyLock::new(|| upsert_sql("ideas", IDEA_COLUMNS, "id", placeholder));
static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| insert_sql("idea_events", EVENT_COLUMNS, placeholder));

/// Every idea column, then its current offers in offer order.
static SELECT_IDEAS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {IDEA_COLUMNS}, \
         ARRAY(SELECT o.org_id FROM idea_offers o WHERE o.idea_id = ideas.id ORDER BY o.position) \
         AS offered_to FROM ideas"
    )
});

pub(super) async fn write(pool: &PgPool, write: &RoutingWrite) -> Result<()> {
    let mut tx = pool.begin().await?;
    for o in &write.organisations {
        sqlx::query(&UPSERT_ORG)
            .bind(&o.id)
            .bind(&o.name)
            .bind(&o.municipalities)
            .bind(&o.categories)
            .bind(&o.contact_email)
            .bind(&o.contact_phone)
            .bind(&o.website)
            .bind(&o.description)
            .bind(o.state.as_str())
            .bind(truncate_to_millis(o.created_at))
            .bind(truncate_to_millis(o.updated_at))
            .bind(&o.decided_by)
            .bind(&o.note)
            .execute(&mut *tx)
            .await?;
    }
    if let Some(r) = &write.rule_set {
        let inserted = sqlx::query(
            "INSERT INTO routing_rule_sets (version, rules, created_by, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(r.version)
        .bind(Json(&r.rules))
        .bind(&r.created_by)
        .bind(truncate_to_millis(r.created_at))
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
            .bind(truncate_to_millis(i.submitted_at))
            .bind(truncate_to_millis(i.received_at))
            .bind(&i.text)
            .bind(&i.category)
            .bind(&i.lang)
            .bind(i.contact.as_ref().map(Json))
            .bind(i.consent)
            .bind(&i.fingerprint)
            .bind(&i.duplicate_of)
            .bind(i.state.as_str())
            .bind(&i.org_id)
            .bind(&i.excluded)
            .bind(i.attempts)
            .bind(&i.rule)
            .bind(i.rule_version)
            .bind(i.confirm_within_s)
            .bind(i.act_within_s)
            .bind(i.deadline.map(truncate_to_millis))
            .bind(&i.flag)
            .bind(truncate_to_millis(i.updated_at))
            .bind(i.confirmed_at.map(truncate_to_millis))
            .bind(i.completed_at.map(truncate_to_millis))
            .execute(&mut *tx)
            .await
            .map_err(|e| conflict_on_unique(e, || format!("tracking code {} is another idea's", i.tracking_code)))?;
        sqlx::query("DELETE FROM idea_offers WHERE idea_id = $1")
            .bind(&i.id)
            .execute(&mut *tx)
            .await?;
        if !i.offered_to.is_empty() {
            // A repeated organisation keeps its first place.
            sqlx::query(
                "INSERT INTO idea_offers (idea_id, org_id, position) \
                 SELECT $1, org_id, position - 1 FROM UNNEST($2::text[]) WITH ORDINALITY AS u(org_id, position) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(&i.id)
            .bind(&i.offered_to)
            .execute(&mut *tx)
            .await?;
        }
    }
    for e in &write.events {
        sqlx::query(&INSERT_EVENT)
            .bind(&e.idea_id)
            .bind(truncate_to_millis(e.at))
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
    super::insert_audit(&mut tx, "routing_audit", &write.audit).await?;
    for (key, position) in &write.cursors {
        sqlx::query(
            "INSERT INTO routing_cursors (key, position) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET position = excluded.position",
        )
        .bind(key)
        .bind(position)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub(super) async fn next_tracking_number(pool: &PgPool, prefix: &str) -> Result<i64> {
    let n = sqlx::query_scalar(
        "INSERT INTO idea_codes (prefix, last) VALUES ($1, 1) \
         ON CONFLICT (prefix) DO UPDATE SET last = idea_codes.last + 1 RETURNING last",
    )
    .bind(prefix)
    .fetch_one(pool)
    .await?;
    Ok(n)
}

pub(super) async fn organisations(pool: &PgPool) -> Result<Vec<Organisation>> {
    static SQL: LazyLock<String> = LazyLock::new(|| format!("SELECT {ORG_COLUMNS} FROM organisations ORDER BY id"));
    let rows = sqlx::query(&SQL).fetch_all(pool).await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(Organisation {
                id: row.try_get("id")?,
                name: row.try_get("name")?,
                municipalities: row.try_get("municipalities")?,
                categories: row.try_get("categories")?,
                contact_email: row.try_get("contact_email")?,
                contact_phone: row.try_get("contact_phone")?,
                website: row.try_get("website")?,
                description: row.try_get("description")?,
                state: decode_org_state(row.try_get("state")?)?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                decided_by: row.try_get("decided_by")?,
                note: row.try_get("note")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

pub(super) async fn rule_sets(pool: &PgPool, limit: u32) -> Result<Vec<RuleSetRecord>> {
    let rows = sqlx::query(
        "SELECT version, rules, created_by, created_at FROM routing_rule_sets ORDER BY version DESC LIMIT $1",
    )
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(RuleSetRecord {
                version: row.try_get("version")?,
                rules: row.try_get::<Json<RuleSet>, _>("rules")?.0,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

pub(super) async fn cursors(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as("SELECT key, position FROM routing_cursors ORDER BY key")
        .fetch_all(pool)
        .await?)
}

pub(super) async fn idea(pool: &PgPool, id: &str) -> Result<Option<IdeaRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| format!("{} WHERE id = $1", *SELECT_IDEAS));
    one_idea(pool, &SQL, id).await
}

pub(super) async fn idea_by_code(pool: &PgPool, tracking_code: &str) -> Result<Option<IdeaRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| format!("{} WHERE tracking_code = $1", *SELECT_IDEAS));
    one_idea(pool, &SQL, tracking_code).await
}

pub(super) async fn idea_by_fingerprint(pool: &PgPool, fingerprint: &str) -> Result<Option<IdeaRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} WHERE fingerprint = $1 AND state NOT IN ('duplicate', 'rejected') ORDER BY received_at, id LIMIT 1",
            *SELECT_IDEAS
        )
    });
    one_idea(pool, &SQL, fingerprint).await
}

async fn one_idea(pool: &PgPool, sql: &str, value: &str) -> Result<Option<IdeaRecord>> {
    let row = sqlx::query(sql).bind(value).fetch_optional(pool).await?;
    Ok(row.as_ref().map(idea_from_row).transpose()?)
}

pub(super) async fn ideas(pool: &PgPool, filter: &IdeaFilter) -> Result<Vec<IdeaRecord>> {
    let mut q = QueryBuilder::<Postgres>::new(format!("{} WHERE TRUE", *SELECT_IDEAS));
    if !filter.states.is_empty() {
        let states: Vec<&str> = filter.states.iter().map(|s| s.as_str()).collect();
        q.push(" AND state = ANY(").push_bind(states).push(")");
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
            .push_bind(at)
            .push(", ")
            .push_bind(id)
            .push(")");
    }
    q.push(" ORDER BY received_at DESC, id DESC LIMIT ")
        .push_bind(i64::from(filter.limit));
    let rows = q.build().fetch_all(pool).await?;
    Ok(rows.iter().map(idea_from_row).collect::<Result<_, _>>()?)
}

pub(super) async fn ideas_due(pool: &PgPool, now: DateTime<Utc>, limit: u32) -> Result<Vec<IdeaRecord>> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "{} WHERE deadline IS NOT NULL AND deadline <= $1 ORDER BY deadline, id LIMIT $2",
            *SELECT_IDEAS
        )
    });
    let rows = sqlx::query(&SQL)
        .bind(truncate_to_millis(now))
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await?;
    Ok(rows.iter().map(idea_from_row).collect::<Result<_, _>>()?)
}

pub(super) async fn open_idea_counts(pool: &PgPool) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT org_id, count(*) FROM ( \
             SELECT o.org_id FROM idea_offers o JOIN ideas i ON i.id = o.idea_id WHERE i.state = 'offered' \
             UNION ALL \
             SELECT org_id FROM ideas WHERE org_id IS NOT NULL AND state IN ('confirmed', 'in_action') \
         ) AS open GROUP BY org_id ORDER BY org_id",
    )
    .fetch_all(pool)
    .await?)
}

pub(super) async fn idea_events(pool: &PgPool, idea_id: &str) -> Result<Vec<IdeaEvent>> {
    static SQL: LazyLock<String> =
        LazyLock::new(|| format!("SELECT id, {EVENT_COLUMNS} FROM idea_events WHERE idea_id = $1 ORDER BY id"));
    let rows = sqlx::query(&SQL).bind(idea_id).fetch_all(pool).await?;
    Ok(rows
        .iter()
        .map(|row| {
            Ok(IdeaEvent {
                id: row.try_get("id")?,
                idea_id: row.try_get("idea_id")?,
                at: row.try_get("at")?,
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
        })
        .collect::<Result<_, sqlx::Error>>()?)
}

pub(super) async fn idea_counts(pool: &PgPool, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<IdeaCount>> {
    let rows = sqlx::query(
        "SELECT municipality, category, state, count(*) AS n FROM ideas \
         WHERE received_at >= $1 AND received_at < $2 GROUP BY municipality, category, state",
    )
    .bind(ceil_to_millis(from))
    .bind(ceil_to_millis(to))
    .fetch_all(pool)
    .await?;
    let counts = rows
        .iter()
        .map(|row| {
            Ok(IdeaCount {
                municipality: row.try_get("municipality")?,
                category: row.try_get("category")?,
                state: decode_idea_state(row.try_get("state")?)?,
                count: row.try_get("n")?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()?;
    Ok(sort_counts(counts))
}

pub(super) async fn confirm_times(pool: &PgPool, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<(String, i64)>> {
    let rows: Vec<(String, DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
        "SELECT org_id, received_at, confirmed_at FROM ideas \
         WHERE confirmed_at IS NOT NULL AND org_id IS NOT NULL AND received_at >= $1 AND received_at < $2 \
         ORDER BY org_id, received_at, id",
    )
    .bind(ceil_to_millis(from))
    .bind(ceil_to_millis(to))
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(org, received, confirmed)| (org, confirm_millis(received, confirmed)))
        .collect())
}

fn idea_from_row(row: &PgRow) -> Result<IdeaRecord, sqlx::Error> {
    Ok(IdeaRecord {
        id: row.try_get("id")?,
        tracking_code: row.try_get("tracking_code")?,
        bench_id: row.try_get("bench_id")?,
        municipality: row.try_get("municipality")?,
        submitted_at: row.try_get("submitted_at")?,
        received_at: row.try_get("received_at")?,
        text: row.try_get("text")?,
        category: row.try_get("category")?,
        lang: row.try_get("lang")?,
        contact: row.try_get::<Option<Json<Contact>>, _>("contact")?.map(|c| c.0),
        consent: row.try_get("consent")?,
        fingerprint: row.try_get("fingerprint")?,
        duplicate_of: row.try_get("duplicate_of")?,
        state: decode_idea_state(row.try_get("state")?)?,
        org_id: row.try_get("org_id")?,
        offered_to: row.try_get("offered_to")?,
        excluded: row.try_get("excluded")?,
        attempts: row.try_get("attempts")?,
        rule: row.try_get("rule")?,
        rule_version: row.try_get("rule_version")?,
        confirm_within_s: row.try_get("confirm_within_s")?,
        act_within_s: row.try_get("act_within_s")?,
        deadline: row.try_get("deadline")?,
        flag: row.try_get("flag")?,
        updated_at: row.try_get("updated_at")?,
        confirmed_at: row.try_get("confirmed_at")?,
        completed_at: row.try_get("completed_at")?,
    })
}
