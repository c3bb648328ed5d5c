//! OTA configuration (`ota_layers`, `ota_bench_config`, `ota_config_versions`, `ota_rollouts`,
//! `ota_audit`): [`OtaStore`] on both databases, every statement written once.

use std::sync::LazyLock;

use async_trait::async_trait;
use protocol::BenchId;
use protocol::config::BenchConfig;
use serde_json::{Map, Value};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

use super::audit::{self, AuditLog};
use super::value::{Time, undecodable, version_from_db, version_to_db};
use super::{Backend, Result, on_pool};
use crate::ota::{
    AuditEntry, BenchConfigRecord, DeliveryState, IssuedVersion, LayerRecord, OtaStore, OtaWrite, Rollout, Scope,
};

/// The `ota_bench_config` columns in [`BenchConfigRecord`] field order.
const BENCH_COLUMNS: &str = "bench_id, desired_version, desired, issued_at, state, state_at, \
     reported_version, reported_at, error, drift_since, rollout_id";

/// A bench row never replaces one with a higher desired version.
static UPSERT_BENCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO ota_bench_config ({BENCH_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
         ON CONFLICT (bench_id) DO UPDATE SET desired_version = excluded.desired_version, \
         desired = excluded.desired, issued_at = excluded.issued_at, state = excluded.state, \
         state_at = excluded.state_at, reported_version = excluded.reported_version, \
         reported_at = excluded.reported_at, error = excluded.error, drift_since = excluded.drift_since, \
         rollout_id = excluded.rollout_id \
         WHERE ota_bench_config.desired_version <= excluded.desired_version"
    )
});

static SELECT_BENCHES: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {BENCH_COLUMNS} FROM ota_bench_config ORDER BY bench_id"));

const DELETE_LAYER: &str = "DELETE FROM ota_layers WHERE scope = $1 AND name = $2";
const UPSERT_LAYER: &str = "INSERT INTO ota_layers (scope, name, content, updated_at, updated_by) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (scope, name) DO UPDATE SET content = excluded.content, \
     updated_at = excluded.updated_at, updated_by = excluded.updated_by";
const INSERT_VERSION: &str = "INSERT INTO ota_config_versions \
     (bench_id, version, config, issued_at, cause, actor, rollout_id) VALUES ($1, $2, $3, $4, $5, $6, $7)";
const UPSERT_ROLLOUT: &str = "INSERT INTO ota_rollouts (id, state, created_at, updated_at, body) \
     VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at, body = excluded.body";
const SELECT_LAYERS: &str = "SELECT scope, name, content, updated_at, updated_by FROM ota_layers";
const SELECT_VERSIONS: &str = "SELECT bench_id, version, config, issued_at, cause, actor, rollout_id \
     FROM ota_config_versions WHERE bench_id = $1 ORDER BY version DESC LIMIT $2";
const SELECT_ROLLOUTS: &str = "SELECT body FROM ota_rollouts ORDER BY created_at, id";

#[async_trait]
impl OtaStore for Backend {
    async fn ota_write(&self, write: &OtaWrite) -> Result<()> {
        on_pool!(self, |pool| {
            let mut tx = pool.begin().await?;
            for l in &write.layers {
                if l.content.is_empty() {
                    sqlx::query(DELETE_LAYER)
                        .bind(l.layer.kind())
                        .bind(l.layer.name())
                        .execute(&mut *tx)
                        .await?;
                } else {
                    sqlx::query(UPSERT_LAYER)
                        .bind(l.layer.kind())
                        .bind(l.layer.name())
                        .bind(Json(&l.content))
                        .bind(Time::stored(l.updated_at))
                        .bind(&l.updated_by)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            for v in &write.versions {
                sqlx::query(INSERT_VERSION)
                    .bind(v.bench_id.as_str())
                    .bind(version_to_db(v.version))
                    .bind(Json(&v.config))
                    .bind(Time::stored(v.issued_at))
                    .bind(&v.cause)
                    .bind(&v.actor)
                    .bind(&v.rollout_id)
                    .execute(&mut *tx)
                    .await?;
            }
            for b in &write.benches {
                sqlx::query(&UPSERT_BENCH)
                    .bind(b.bench_id.as_str())
                    .bind(version_to_db(b.desired_version))
                    .bind(Json(&b.desired))
                    .bind(Time::stored(b.issued_at))
                    .bind(b.state.as_str())
                    .bind(Time::stored(b.state_at))
                    .bind(b.reported_version.map(version_to_db))
                    .bind(b.reported_at.map(Time::stored))
                    .bind(&b.error)
                    .bind(b.drift_since.map(Time::stored))
                    .bind(&b.rollout_id)
                    .execute(&mut *tx)
                    .await?;
            }
            for r in &write.rollouts {
                sqlx::query(UPSERT_ROLLOUT)
                    .bind(&r.id)
                    .bind(r.state.as_str())
                    .bind(Time::stored(r.created_at))
                    .bind(Time::stored(r.updated_at))
                    .bind(Json(r))
                    .execute(&mut *tx)
                    .await?;
            }
            audit::append(&mut tx, AuditLog::Ota, &write.audit).await?;
            tx.commit().await?;
        });
        Ok(())
    }

    async fn ota_layers(&self) -> Result<Vec<LayerRecord>> {
        let mut layers: Vec<LayerRecord> = on_pool!(self, |pool| sqlx::query_as(SELECT_LAYERS).fetch_all(pool).await?);
        layers.sort_by(|a, b| a.layer.cmp(&b.layer));
        Ok(layers)
    }

    async fn ota_bench_configs(&self) -> Result<Vec<BenchConfigRecord>> {
        Ok(on_pool!(self, |pool| sqlx::query_as(&SELECT_BENCHES)
            .fetch_all(pool)
            .await?))
    }

    async fn ota_versions(&self, bench_id: &str, limit: u32) -> Result<Vec<IssuedVersion>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(SELECT_VERSIONS)
                .bind(bench_id)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }

    async fn ota_rollouts(&self) -> Result<Vec<Rollout>> {
        let bodies: Vec<(Json<Rollout>,)> =
            on_pool!(self, |pool| sqlx::query_as(SELECT_ROLLOUTS).fetch_all(pool).await?);
        Ok(bodies.into_iter().map(|(body,)| body.0).collect())
    }

    async fn ota_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(AuditLog::Ota.page_sql())
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }))
    }
}

fn bench_id(s: &str) -> Result<BenchId, sqlx::Error> {
    BenchId::parse(s).map_err(|e| sqlx::Error::Decode(Box::new(e)))
}

impl<'r, R: Row> FromRow<'r, R> for LayerRecord
where
    &'r str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
    Json<Map<String, Value>>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let (scope, name): (&str, &str) = (row.try_get("scope")?, row.try_get("name")?);
        Ok(Self {
            layer: Scope::from_parts(scope, name).ok_or_else(|| undecodable("layer", &format!("{scope}:{name}")))?,
            content: row.try_get::<Json<Map<String, Value>>, _>("content")?.0,
            updated_at: row.try_get::<Time, _>("updated_at")?.0,
            updated_by: row.try_get("updated_by")?,
        })
    }
}

impl<'r, R: Row> FromRow<'r, R> for BenchConfigRecord
where
    &'r str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
    Option<Time>: Decode<'r, R::Database> + Type<R::Database>,
    Json<BenchConfig>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let state: &str = row.try_get("state")?;
        Ok(Self {
            bench_id: bench_id(row.try_get("bench_id")?)?,
            desired_version: version_from_db(row.try_get("desired_version")?)?,
            desired: row.try_get::<Json<BenchConfig>, _>("desired")?.0,
            issued_at: row.try_get::<Time, _>("issued_at")?.0,
            state: DeliveryState::parse(state).ok_or_else(|| undecodable("delivery state", state))?,
            state_at: row.try_get::<Time, _>("state_at")?.0,
            reported_version: row
                .try_get::<Option<i64>, _>("reported_version")?
                .map(version_from_db)
                .transpose()?,
            reported_at: row.try_get::<Option<Time>, _>("reported_at")?.map(|t| t.0),
            error: row.try_get("error")?,
            drift_since: row.try_get::<Option<Time>, _>("drift_since")?.map(|t| t.0),
            rollout_id: row.try_get("rollout_id")?,
        })
    }
}

impl<'r, R: Row> FromRow<'r, R> for IssuedVersion
where
    &'r str: ColumnIndex<R>,
    &'r str: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    Time: Decode<'r, R::Database> + Type<R::Database>,
    Json<BenchConfig>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            bench_id: bench_id(row.try_get("bench_id")?)?,
            version: version_from_db(row.try_get("version")?)?,
            config: row.try_get::<Json<BenchConfig>, _>("config")?.0,
            issued_at: row.try_get::<Time, _>("issued_at")?.0,
            cause: row.try_get("cause")?,
            actor: row.try_get("actor")?,
            rollout_id: row.try_get("rollout_id")?,
        })
    }
}
