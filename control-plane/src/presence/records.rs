//! What presence keeps: every change of a bench's state ([`StatusEvent`]), and the
//! [`PresenceStore`] the backends implement.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use protocol::BenchState;

use crate::persistence::Result;

/// A change of a bench's presence, kept forever so availability is a query.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusEvent {
    pub bench_id: String,
    pub at: DateTime<Utc>,
    pub state: BenchState,
    /// What caused it: `connected`, `disconnected`, `last_will`, `announced`, `heartbeat_timeout`…
    pub cause: String,
    pub fw: Option<String>,
    pub config_version: Option<i64>,
    /// For `sleeping`: when the bench said it would be back.
    pub until: Option<DateTime<Utc>>,
}

/// Position in a bench's status history (newest first), for keyset pagination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusCursor {
    pub at: DateTime<Utc>,
    /// The row id, which orders events that share `at`.
    pub id: i64,
}

/// Where presence changes are kept (implemented by each store backend).
#[async_trait]
pub trait PresenceStore: Send + Sync {
    /// Appends a presence change.
    async fn insert_status_event(&self, event: &StatusEvent) -> Result<()>;

    /// Presence changes of one bench with `from <= at < to`, oldest first, at most `limit`.
    async fn status_events(
        &self,
        bench_id: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StatusEvent>>;

    /// The newest presence change (latest `at`, then last inserted) of every bench that has one,
    /// ordered by bench id (to restore presence on restart).
    async fn latest_status_events(&self) -> Result<Vec<StatusEvent>>;

    /// One bench's presence changes, newest first (latest `at`, then last inserted), strictly
    /// older than `before` when given, at most `limit`. Each comes with its cursor: pass the
    /// last one as `before` for the next page.
    async fn status_events_page(
        &self,
        bench_id: &str,
        before: Option<StatusCursor>,
        limit: u32,
    ) -> Result<Vec<(StatusCursor, StatusEvent)>>;

    /// For every bench: its newest presence change before `from` (the state it was in at
    /// `from`), then all of its changes with `from <= at < to`. Ordered by bench, `at`, insertion.
    async fn status_history(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<StatusEvent>>;
}
