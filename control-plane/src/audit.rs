//! The audit log entry shared by OTA (`ota_audit`) and the network of organisations
//! (`routing_audit`): who did what, when.

use chrono::{DateTime, Utc};
use serde_json::Value;

/// One audit log entry (`ota_audit`, `routing_audit`): who did what, when, with the details in
/// `detail`. The API shows [`protocol::audit::AuditEntry`].
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Assigned by the store, increasing; 0 before it is written.
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// e.g. `layer.set`, `rollout.create`, `rollout.auto_abort`, `organisation.approve`.
    pub action: String,
    /// What it acted on: a layer (`municipality:Mostar`), a rollout or an organisation id.
    pub subject: String,
    pub detail: Value,
}

impl From<AuditEntry> for protocol::audit::AuditEntry {
    fn from(e: AuditEntry) -> Self {
        Self {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            subject: e.subject,
            detail: e.detail,
        }
    }
}
