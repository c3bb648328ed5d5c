//! The rollup maintainer: a task that asks the store, every few seconds, to bring its per-minute
//! telemetry rollups up to date ([`TelemetryStore::refresh_rollups`]), oldest minutes first and
//! without pause while a backlog lasts (after an upgrade, or a bench sending a day it kept).
//!
//! Only minutes that have ended are refreshed: the current one still gets samples, and reads
//! take it from raw samples anyway. Nothing is lost when the task is late or stopped: what it has
//! not done yet is marked in the store, and reads give the same answers meanwhile.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::TelemetryStore;

/// Most minutes one refresh takes: a short write, so ingest never waits long behind it.
pub const MINUTES_PER_PASS: u32 = 500;

/// Starts the maintainer; it refreshes every `every` (at once again while a pass was full) until
/// `stop` is cancelled.
pub fn spawn(store: Arc<dyn TelemetryStore>, every: Duration, stop: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut backlog = 0_u64;
        loop {
            let pause = match store.refresh_rollups(Utc::now(), MINUTES_PER_PASS).await {
                Ok(n) if n >= u64::from(MINUTES_PER_PASS) => {
                    backlog += n;
                    Duration::ZERO
                }
                Ok(n) => {
                    if backlog > 0 {
                        info!(
                            rollup.minutes = backlog + n,
                            "telemetry rollups caught up with a backlog"
                        );
                        backlog = 0;
                    }
                    every
                }
                Err(e) => {
                    warn!(error = %e, "refreshing telemetry rollups failed; trying again later");
                    every
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
    })
}
