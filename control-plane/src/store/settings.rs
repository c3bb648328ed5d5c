//! The `[store]` settings: the connection pool and what only TimescaleDB uses.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Tunables of the PostgreSQL backend (SQLite uses none of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// TimescaleDB only: raw telemetry older than this many days is dropped by a retention policy.
    pub retention_days: u32,
    /// TimescaleDB only: telemetry chunks older than this many days are compressed.
    pub compress_after_days: u32,
    /// Most database connections in the pool.
    pub max_connections: u32,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            retention_days: 400,
            compress_after_days: 7,
            max_connections: 8,
        }
    }
}
