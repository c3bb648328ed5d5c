//! Telemetry ingest: decoded rows are buffered in memory, written in batches (on size or after a
//! short interval), and retried with backoff while the store is unreachable.
//!
//! The buffer is bounded: beyond `buffer_rows` new rows are dropped, counted and logged — never
//! silently. `submit` never blocks, so the broker's consumer never stalls behind the store.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::settings::IngestSettings;
use crate::store::{Store, TelemetryRow};

/// How long shutdown keeps trying to write what is buffered.
const SHUTDOWN_FLUSH_DEADLINE: Duration = Duration::from_secs(10);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The producer side of ingest; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    shared: Arc<Shared>,
}

struct Shared {
    rows: Mutex<VecDeque<TelemetryRow>>,
    wake: Notify,
    settings: IngestSettings,
    metrics: Arc<Metrics>,
}

impl Ingest {
    /// Starts the writer task. It runs until `shutdown`, then flushes what it holds (bounded in time).
    pub fn spawn(
        store: Arc<dyn Store>,
        settings: IngestSettings,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Shared {
            rows: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            settings,
            metrics,
        });
        let task = tokio::spawn(writer(shared.clone(), store, shutdown));
        (Self { shared }, task)
    }

    /// Queues a row for writing. Returns false when the buffer is full and the row was dropped.
    pub fn submit(&self, row: TelemetryRow) -> bool {
        let s = &self.shared;
        let len = {
            let mut rows = s.rows.lock().unwrap_or_else(|p| p.into_inner());
            if rows.len() >= s.settings.buffer_rows {
                drop(rows);
                s.metrics.ingest_rows_dropped.inc();
                let dropped = s.metrics.ingest_rows_dropped.get();
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        bench.id = %row.bench_id,
                        ingest.dropped_total = dropped,
                        ingest.buffer_rows = s.settings.buffer_rows,
                        "ingest buffer full (store unreachable or too slow): telemetry row dropped"
                    );
                }
                return false;
            }
            rows.push_back(row);
            rows.len()
        };
        s.metrics.ingest_buffered_rows.set(len as i64);
        // Wake the writer only on the edges it cares about, not on every row.
        if len == 1 || len == s.settings.batch_size {
            s.wake.notify_one();
        }
        true
    }

    /// Rows waiting to be written.
    pub fn buffered(&self) -> usize {
        self.shared.rows.lock().map(|r| r.len()).unwrap_or(0)
    }
}

async fn writer(s: Arc<Shared>, store: Arc<dyn Store>, shutdown: CancellationToken) {
    let interval = Duration::from_millis(s.settings.flush_interval_ms);
    let mut backoff = Duration::from_millis(100);
    let mut failing_since: Option<Instant> = None;
    'run: loop {
        // Wait for a first row, then give the batch up to `interval` to fill.
        while len(&s) == 0 {
            tokio::select! {
                () = s.wake.notified() => {}
                () = shutdown.cancelled() => break 'run,
            }
        }
        let deadline = Instant::now() + interval;
        while len(&s) < s.settings.batch_size {
            tokio::select! {
                () = s.wake.notified() => {}
                () = tokio::time::sleep_until(deadline) => break,
                () = shutdown.cancelled() => break 'run,
            }
        }
        // Write full batches back to back, then the remainder.
        while len(&s) > 0 {
            match flush_one(&s, store.as_ref()).await {
                Ok(()) => {
                    if let Some(since) = failing_since.take() {
                        tracing::info!(
                            outage.seconds = since.elapsed().as_secs_f64(),
                            ingest.buffered = len(&s),
                            "store reachable again; writing buffered telemetry"
                        );
                    }
                    backoff = Duration::from_millis(100);
                }
                Err(e) => {
                    if failing_since.is_none() {
                        failing_since = Some(Instant::now());
                        tracing::warn!(error = %e, ingest.buffered = len(&s), "telemetry write failed; buffering and retrying");
                    } else {
                        tracing::debug!(error = %e, "telemetry write failed again");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => break 'run,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            if len(&s) < s.settings.batch_size {
                break;
            }
        }
    }
    final_flush(&s, store.as_ref()).await;
}

async fn final_flush(s: &Shared, store: &dyn Store) {
    let deadline = Instant::now() + SHUTDOWN_FLUSH_DEADLINE;
    while len(s) > 0 && Instant::now() < deadline {
        if flush_one(s, store).await.is_err() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let left = len(s);
    if left > 0 {
        tracing::error!(
            ingest.unwritten = left,
            "shutting down with telemetry rows the store did not accept"
        );
    } else {
        tracing::debug!("ingest buffer flushed");
    }
}

fn len(s: &Shared) -> usize {
    s.rows.lock().map(|r| r.len()).unwrap_or(0)
}

/// Writes the oldest batch; on failure puts it back in front, order kept.
async fn flush_one(s: &Shared, store: &dyn Store) -> Result<(), crate::store::StoreError> {
    let batch: Vec<TelemetryRow> = {
        let mut rows = s.rows.lock().unwrap_or_else(|p| p.into_inner());
        let n = rows.len().min(s.settings.batch_size);
        rows.drain(..n).collect()
    };
    if batch.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let result = store.insert_telemetry(&batch).await;
    let m = &s.metrics;
    match result {
        Ok(new) => {
            m.ingest_flush_duration_seconds.observe(started.elapsed().as_secs_f64());
            m.ingest_batch_rows.observe(batch.len() as f64);
            m.ingest_rows_stored.inc_by(new);
            m.ingest_rows_duplicate
                .inc_by(batch.len() as u64 - new.min(batch.len() as u64));
            m.ingest_buffered_rows.set(len(s) as i64);
            Ok(())
        }
        Err(e) => {
            m.store_write_errors.inc();
            let mut rows = s.rows.lock().unwrap_or_else(|p| p.into_inner());
            for row in batch.into_iter().rev() {
                rows.push_front(row);
            }
            Err(e)
        }
    }
}

/// Decodes one telemetry payload and queues its row. A payload that fails validation is dropped,
/// counted by reason and logged with the bench id; the caller learns whether it was accepted.
pub fn telemetry(
    ingest: &Ingest,
    bench: &str,
    payload: &[u8],
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), protocol::Rejection> {
    match protocol::Telemetry::decode(payload, received_at) {
        Ok(t) => {
            ingest.submit(TelemetryRow::from_payload(bench, &t, received_at));
            Ok(())
        }
        Err(rejection) => {
            ingest.shared.metrics.dropped(rejection.reason.label());
            tracing::warn!(
                bench.id = %bench,
                reason = rejection.reason.label(),
                detail = %rejection.detail,
                "telemetry dropped"
            );
            Err(rejection)
        }
    }
}
