//! The audit tables (`ota_audit`, `routing_audit`, which share their columns): appended inside a
//! domain's write transaction, paged newest first.

use serde_json::Value;
use sqlx::types::Json;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, FromRow, IntoArguments, Row, Transaction, Type};

use super::Result;
use super::value::Time;
use crate::audit::AuditEntry;

/// The two audit tables.
#[derive(Debug, Clone, Copy)]
pub(super) enum AuditLog {
    Ota,
    Routing,
}

impl AuditLog {
    fn insert_sql(self) -> &'static str {
        match self {
            Self::Ota => "INSERT INTO ota_audit (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
            Self::Routing => {
                "INSERT INTO routing_audit (at, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)"
            }
        }
    }

    /// Entries with `id < $1`, newest first, at most `$2`.
    pub(super) fn page_sql(self) -> &'static str {
        match self {
            Self::Ota => {
                "SELECT id, at, actor, action, subject, detail FROM ota_audit \
                 WHERE id < $1 ORDER BY id DESC LIMIT $2"
            }
            Self::Routing => {
                "SELECT id, at, actor, action, subject, detail FROM routing_audit \
                 WHERE id < $1 ORDER BY id DESC LIMIT $2"
            }
        }
    }
}

/// Appends `entries` to `log` inside `tx` (their `id` is assigned by the database).
pub(super) async fn append<DB>(tx: &mut Transaction<'_, DB>, log: AuditLog, entries: &[AuditEntry]) -> Result<()>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> Time: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'q> Json<&'q Value>: Encode<'q, DB> + Type<DB>,
{
    for a in entries {
        sqlx::query(log.insert_sql())
            .bind(Time::stored(a.at))
            .bind(a.actor.as_str())
            .bind(a.action.as_str())
            .bind(a.subject.as_str())
            .bind(Json(&a.detail))
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

impl<'r, R: Row> FromRow<'r, R> for AuditEntry
where
    &'r str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
    Json<Value>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            at: row.try_get::<Time, _>("at")?.0,
            actor: row.try_get("actor")?,
            action: row.try_get("action")?,
            subject: row.try_get("subject")?,
            detail: row.try_get::<Json<Value>, _>("detail")?.0,
        })
    }
}
