//! What OTA keeps in the store, and the one atomic write ([`OtaWrite`]) every change goes through.

use chrono::{DateTime, Utc};
use protocol::BenchId;
use protocol::config::BenchConfig;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::delivery::BenchConfigRecord;
use super::layers::Scope;
use super::rollout::Rollout;

/// One configuration layer (`ota_layers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LayerRecord {
    pub layer: Scope,
    /// The partial configuration; written empty, the layer is deleted.
    #[schema(value_type = Object)]
    pub content: Map<String, Value>,
    pub updated_at: DateTime<Utc>,
    pub updated_by: String,
}

/// One issued configuration version of a bench (`ota_config_versions`), kept for history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
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

/// One audit log entry (`ota_audit`, `routing_audit`): who did what, when, with the details in
/// `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Assigned by the store, increasing; 0 before it is written.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// e.g. `layer.set`, `rollout.create`, `rollout.auto_abort`, `organisation.approve`.
    pub action: String,
    /// What it acted on: a layer (`municipality:Mostar`), a rollout or an organisation id.
    pub subject: String,
    #[schema(value_type = Object)]
    pub detail: Value,
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
