//! An audit log entry as the HTTP API shows it (`GET /api/v1/ota/audit`, the organisations'
//! audit log): who did what, when.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One audit log entry, with the details in `detail`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Increasing; pass the last one as `before` for the next page.
    pub id: i64,
    pub at: DateTime<Utc>,
    /// A token subject, or `system`.
    pub actor: String,
    /// e.g. `layer.set`, `rollout.create`, `rollout.auto_abort`, `organisation.approve`.
    pub action: String,
    /// What it acted on: a layer (`municipality:Mostar`), a rollout or an organisation id.
    pub subject: String,
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub detail: Value,
}

/// A page of an audit log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `before` for the next page; absent on the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}
