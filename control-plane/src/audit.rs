//! The audit log entry shared by OTA (`ota_audit`) and the network of organisations
//! (`routing_audit`): who did what, when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
