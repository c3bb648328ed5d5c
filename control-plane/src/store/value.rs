//! Values as the two databases store them, so that each query binds and decodes them once.
//!
//! - [`Time`]: whole milliseconds; `INTEGER` unix milliseconds on SQLite, `timestamptz` on
//!   PostgreSQL.
//! - [`TextList`]: a list of strings; a JSON array in `TEXT` on SQLite, `text[]` on PostgreSQL.
//! - JSON documents are [`sqlx::types::Json`]: `TEXT` on SQLite, `jsonb` on PostgreSQL.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef};
use sqlx::sqlite::{SqliteArgumentValue, SqliteTypeInfo, SqliteValueRef};
use sqlx::{Decode, Encode, Postgres, Sqlite, Type};

/// A time as stored: cut to the millisecond, the precision every backend keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Time(pub DateTime<Utc>);

impl Time {
    /// `t` as it will be stored (digits below the millisecond cut off).
    pub fn stored(t: DateTime<Utc>) -> Self {
        Self(truncate_to_millis(t))
    }

    /// `t` as a query bound, rounded up (see [`ceil_to_millis`]).
    pub fn bound(t: DateTime<Utc>) -> Self {
        Self(ceil_to_millis(t))
    }

    fn millis(self) -> i64 {
        self.0.timestamp_millis()
    }
}

impl From<DateTime<Utc>> for Time {
    fn from(t: DateTime<Utc>) -> Self {
        Self::stored(t)
    }
}

impl From<Time> for DateTime<Utc> {
    fn from(t: Time) -> Self {
        t.0
    }
}

impl Type<Sqlite> for Time {
    fn type_info() -> SqliteTypeInfo {
        <i64 as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <i64 as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for Time {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <i64 as Encode<'q, Sqlite>>::encode(self.millis(), buf)
    }
}

impl<'r> Decode<'r, Sqlite> for Time {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let ms = <i64 as Decode<'r, Sqlite>>::decode(value)?;
        DateTime::from_timestamp_millis(ms)
            .map(Self)
            .ok_or_else(|| format!("{ms} ms is outside the supported time range").into())
    }
}

impl Type<Postgres> for Time {
    fn type_info() -> PgTypeInfo {
        <DateTime<Utc> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(ty)
    }
}

impl PgHasArrayType for Time {
    fn array_type_info() -> PgTypeInfo {
        <DateTime<Utc> as PgHasArrayType>::array_type_info()
    }
}

impl Encode<'_, Postgres> for Time {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <DateTime<Utc> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for Time {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <DateTime<Utc> as Decode<'r, Postgres>>::decode(value).map(Self)
    }
}

/// A list of strings (municipalities, categories, organisation ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TextList(pub Vec<String>);

impl Type<Sqlite> for TextList {
    fn type_info() -> SqliteTypeInfo {
        <String as Type<Sqlite>>::type_info()
    }

    fn compatible(ty: &SqliteTypeInfo) -> bool {
        <String as Type<Sqlite>>::compatible(ty)
    }
}

impl<'q> Encode<'q, Sqlite> for TextList {
    fn encode_by_ref(&self, buf: &mut Vec<SqliteArgumentValue<'q>>) -> Result<IsNull, BoxDynError> {
        <String as Encode<'q, Sqlite>>::encode(serde_json::to_string(&self.0)?, buf)
    }
}

impl<'r> Decode<'r, Sqlite> for TextList {
    fn decode(value: SqliteValueRef<'r>) -> Result<Self, BoxDynError> {
        let text = <&str as Decode<'r, Sqlite>>::decode(value)?;
        Ok(Self(serde_json::from_str(text)?))
    }
}

impl Type<Postgres> for TextList {
    fn type_info() -> PgTypeInfo {
        <Vec<String> as Type<Postgres>>::type_info()
    }

    fn compatible(ty: &PgTypeInfo) -> bool {
        <Vec<String> as Type<Postgres>>::compatible(ty)
    }
}

impl Encode<'_, Postgres> for TextList {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <Vec<String> as Encode<'_, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

impl<'r> Decode<'r, Postgres> for TextList {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        <Vec<String> as Decode<'r, Postgres>>::decode(value).map(Self)
    }
}

/// `t` with its digits below the millisecond cut off: the precision every backend stores.
pub fn truncate_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(t.nanosecond() / 1_000_000 * 1_000_000).unwrap_or(t)
}

/// The first whole millisecond at or after `t`. For stored (whole-millisecond) times `s`,
/// `s >= t` exactly when `s >= ceil_to_millis(t)`, and likewise for `<`: query bounds are
/// rounded up so that `from <= ts < to` means the same for any bound on every backend.
pub fn ceil_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    let down = truncate_to_millis(t);
    if down == t {
        t
    } else {
        down.checked_add_signed(TimeDelta::milliseconds(1)).unwrap_or(down)
    }
}

/// A configuration version as stored (versions stay far below 2^63).
pub(crate) fn version_to_db(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored configuration version, refusing negative values rather than guessing.
pub(crate) fn version_from_db(v: i64) -> Result<u64, sqlx::Error> {
    u64::try_from(v).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

/// A stored identifier or state that did not parse: the query fails rather than guessing.
pub(crate) fn undecodable(what: &str, value: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what} {value:?}").into())
}
