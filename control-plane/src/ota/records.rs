//! What OTA keeps in the store, the one atomic write ([`OtaWrite`]) every change goes through,
//! and the [`OtaStore`] the backends implement.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use protocol::BenchId;
use protocol::config::BenchConfig;
use serde_json::{Map, Value};

use super::delivery::BenchConfigRecord;
use super::layers::Scope;
use super::rollout::Rollout;
pub use crate::audit::AuditEntry;
use crate::persistence::Result;

/// One configuration layer (`ota_layers`).
#[derive(Debug, Clone, PartialEq)]
pub struct LayerRecord {
    pub layer: Scope,
    /// The partial configuration; written empty, the layer is deleted.
    pub content: Map<String, Value>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// One issued configuration version of a bench (`ota_config_versions`), kept for history.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedVersion {
    pub bench_id: BenchId,
    pub version: u64,
    pub config: BenchConfig,
    pub issued_at: DateTime<Utc>,
    /// Why: `initial`, `layer`, `rollout`, `rollback`, `reconcile`.
    pub cause: String,
    /// Who: a token subject, or `system`.
    pub actor: String,
    pub rollout_id: Option<String>,
}

/// Everything one OTA change writes, applied in one transaction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OtaWrite {
    /// Layers to replace (an empty `content` deletes the layer).
    pub layers: Vec<LayerRecord>,
    /// Newly issued versions.
    pub versions: Vec<IssuedVersion>,
    /// Bench rows to upsert. A row never replaces one with a higher desired version.
    pub benches: Vec<BenchConfigRecord>,
    /// Rollouts to upsert.
    pub rollouts: Vec<Rollout>,
    /// Audit entries to append (their `id` is ignored).
    pub audit: Vec<AuditEntry>,
}

impl OtaWrite {
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
            && self.versions.is_empty()
            && self.benches.is_empty()
            && self.rollouts.is_empty()
            && self.audit.is_empty()
    }
}

/// Where OTA keeps its layers, versions, bench rows, rollouts and audit log (implemented by each
/// store backend).
#[async_trait]
pub trait OtaStore: Send + Sync {
    /// Applies one OTA change in one transaction: layers replaced (an empty one deleted),
    /// issued versions appended (a repeated `(bench, version)` is an error, so a version is
    /// never reused), bench rows upserted (never over a row with a higher desired version),
    /// rollouts upserted, audit entries appended.
    async fn ota_write(&self, write: &OtaWrite) -> Result<()>;

    /// Every configuration layer, least specific first.
    async fn ota_layers(&self) -> Result<Vec<LayerRecord>>;

    /// Every bench's desired/reported configuration row, ordered by bench id.
    async fn ota_bench_configs(&self) -> Result<Vec<BenchConfigRecord>>;

    /// Versions issued to one bench, newest first, at most `limit`.
    async fn ota_versions(&self, bench_id: &str, limit: u32) -> Result<Vec<IssuedVersion>>;

    /// Every rollout, oldest first.
    async fn ota_rollouts(&self) -> Result<Vec<Rollout>>;

    /// Audit entries with `id < before` (all when `None`), newest first, at most `limit`.
    async fn ota_audit(&self, before: Option<i64>, limit: u32) -> Result<Vec<AuditEntry>>;
}
