//! The `[store]` settings: the connection pool, the telemetry rollups' upkeep, and what only
//! TimescaleDB uses.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Tunables of the store (most of them for PostgreSQL only).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// TimescaleDB only: raw telemetry older than this many days is dropped by a retention policy.
    pub retention_days: u32,
    /// TimescaleDB only: telemetry chunks older than this many days are compressed.
    pub compress_after_days: u32,
    /// Most database connections in the pool (PostgreSQL).
    pub max_connections: u32,
    /// Every backend: how often the per-minute telemetry rollups are brought up to date, in ms.
    /// History reads give the same answers either way; they read raw samples for minutes not
    /// yet rolled up.
    pub rollup_interval_ms: u64,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            retention_days: 400,
            compress_after_days: 7,
            max_connections: 8,
            rollup_interval_ms: 5000,
        }
    }
}
