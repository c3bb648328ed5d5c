//! Presence changes (`bench_status_events`): [`PresenceStore`] on both databases.
//!
//! Written once but for the two "newest row per bench" statements, where SQLite (no
//! `DISTINCT ON`) hops over the index or numbers rows instead.

use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use protocol::BenchState;
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

use super::value::{Time, undecodable};
use super::{Backend, Dialect, Result, on_pool};
use crate::presence::{PresenceStore, StatusCursor, StatusEvent};

/// The status event columns in [`StatusEvent`] field order.
const COLUMNS: &str = "bench_id, at, state, cause, fw, config_version, until";

static INSERT: LazyLock<String> =
    LazyLock::new(|| format!("INSERT INTO bench_status_events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"));

static SELECT_RANGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM bench_status_events \
         WHERE bench_id = $1 AND at >= $2 AND at < $3 ORDER BY at, id LIMIT $4"
    )
});

static LATEST_SQLITE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH RECURSIVE benches(bench_id) AS ( \
             SELECT min(bench_id) FROM bench_status_events \
             UNION ALL \
             SELECT (SELECT min(e.bench_id) FROM bench_status_events e WHERE e.bench_id > benches.bench_id) \
             FROM benches WHERE benches.bench_id IS NOT NULL \
         ) \
         SELECT {COLUMNS} FROM bench_status_events WHERE id IN ( \
             SELECT (SELECT e.id FROM bench_status_events e WHERE e.bench_id = benches.bench_id \
                     ORDER BY e.at DESC, e.id DESC LIMIT 1) \
             FROM benches WHERE benches.bench_id IS NOT NULL \
         ) \
         ORDER BY bench_id"
    )
});

static LATEST_POSTGRES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT DISTINCT ON (bench_id) {COLUMNS} FROM bench_status_events \
         ORDER BY bench_id, at DESC, id DESC"
    )
});

static PAGE_FIRST: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, {COLUMNS} FROM bench_status_events \
         WHERE bench_id = $1 ORDER BY at DESC, id DESC LIMIT $2"
    )
});

static PAGE_AFTER: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id, {COLUMNS} FROM bench_status_events \
         WHERE bench_id = $1 AND (at, id) < ($2, $3) ORDER BY at DESC, id DESC LIMIT $4"
    )
});

// Each bench's newest event before the period (row_number, as SQLite has no DISTINCT ON), then
// the period's events; ties on `at` in insertion (id) order.
static HISTORY_SQLITE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM ( \
             SELECT id, {COLUMNS} FROM ( \
                 SELECT id, {COLUMNS}, \
                        row_number() OVER (PARTITION BY bench_id ORDER BY at DESC, id DESC) AS newest \
                 FROM bench_status_events WHERE at < $1 \
             ) AS before WHERE newest = 1 \
             UNION ALL \
             SELECT id, {COLUMNS} FROM bench_status_events WHERE at >= $1 AND at < $2 \
         ) AS h ORDER BY bench_id, at, id"
    )
});

static HISTORY_POSTGRES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {COLUMNS} FROM ( \
             (SELECT DISTINCT ON (bench_id) id, {COLUMNS} FROM bench_status_events \
              WHERE at < $1 ORDER BY bench_id, at DESC, id DESC) \
             UNION ALL \
             SELECT id, {COLUMNS} FROM bench_status_events WHERE at >= $1 AND at < $2 \
         ) AS h ORDER BY bench_id, at, id"
    )
});

#[async_trait]
impl PresenceStore for Backend {
    async fn insert_status_event(&self, event: &StatusEvent) -> Result<()> {
        on_pool!(self, |pool| {
            sqlx::query(&INSERT)
                .bind(&event.bench_id)
                .bind(Time::stored(event.at))
                .bind(event.state.as_str())
                .bind(&event.cause)
                .bind(&event.fw)
                .bind(event.config_version)
                .bind(event.until.map(Time::stored))
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    async fn status_events(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StatusEvent>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(&SELECT_RANGE)
                .bind(bench_id)
                .bind(Time::bound(from))
                .bind(Time::bound(to))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    async fn latest_status_events(&self) -> Result<Vec<StatusEvent>> {
        let sql: &str = match self.dialect() {
            Dialect::Sqlite => &LATEST_SQLITE,
            Dialect::Postgres | Dialect::Timescale => &LATEST_POSTGRES,
        };
        Ok(on_pool!(self, |pool| sqlx::query_as(sql).fetch_all(pool).await?))
    }

    async fn status_events_page(
        &self,
        bench_id: &str,
        before: Option<StatusCursor>,
        limit: u32,
    ) -> Result<Vec<(StatusCursor, StatusEvent)>> {
        let limit = i64::from(limit);
        let rows: Vec<Paged> = on_pool!(self, |pool| match before {
            None => {
                sqlx::query_as(&PAGE_FIRST)
                    .bind(bench_id)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
            Some(c) => {
                sqlx::query_as(&PAGE_AFTER)
                    .bind(bench_id)
                    .bind(Time::stored(c.at))
                    .bind(c.id)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?
            }
        });
        Ok(rows
            .into_iter()
            .map(|Paged(id, event)| (StatusCursor { at: event.at, id }, event))
            .collect())
    }

    async fn status_history(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<StatusEvent>> {
        let sql: &str = match self.dialect() {
            Dialect::Sqlite => &HISTORY_SQLITE,
            Dialect::Postgres | Dialect::Timescale => &HISTORY_POSTGRES,
        };
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(sql)
                .bind(Time::bound(from))
                .bind(Time::bound(to))
                .fetch_all(pool)
                .await?
        }))
    }
}

/// Reads a stored [`BenchState`], failing the query rather than guessing.
pub(super) fn decode_state(s: &str) -> Result<BenchState, sqlx::Error> {
    BenchState::parse(s).ok_or_else(|| undecodable("bench state", s))
}

impl<'r, R: Row> FromRow<'r, R> for StatusEvent
where
    &'r str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
    Option<Time>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            bench_id: row.try_get("bench_id")?,
            at: row.try_get::<Time, _>("at")?.0,
            state: decode_state(row.try_get("state")?)?,
            cause: row.try_get("cause")?,
            fw: row.try_get("fw")?,
            config_version: row.try_get("config_version")?,
            until: row.try_get::<Option<Time>, _>("until")?.map(|t| t.0),
        })
    }
}

/// A page row: the row id (the cursor's tie-breaker) and the event.
struct Paged(i64, StatusEvent);

impl<'r, R: Row> FromRow<'r, R> for Paged
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    StatusEvent: FromRow<'r, R>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self(row.try_get("id")?, StatusEvent::from_row(row)?))
    }
}
