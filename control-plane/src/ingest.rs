//! Telemetry ingest: decoded rows are buffered in memory, written in batches (on size or after a
//! short interval), and retried with backoff while the store is unreachable.
//!
//! The buffer is bounded: beyond `buffer_rows` rows or `buffer_bytes` of memory new rows are refused, counted and logged — never
//! silently — and a refused row goes no further (no live event, no presence update). `submit`
//! never blocks, so the broker's consumer never stalls behind the store.
//!
//! Once a batch commits, its benches are told which samples are durable ([`StorageAcks`], the
//! `telemetry/ack` topic of docs/protocol.md); a bench that listens sends the rest again, so
//! what the buffer refused or a crash lost is not lost for good.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::BackoffBuilder;
use bytes::Bytes;
use protocol::{BenchId, TelemetryAck, Topic, TopicKind};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::broker::BrokerHandle;
use crate::metrics::Metrics;
use crate::telemetry::{TelemetryRow, TelemetryStore};

/// How long shutdown keeps trying to write what is buffered.
const SHUTDOWN_FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// The producer side of ingest; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    shared: Arc<Shared>,
}

/// Batching and buffering of telemetry writes: the `[ingest]` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSettings {
    /// Most rows per store write. Under load batches grow to this size; larger batches write
    /// faster and need fewer storage acknowledgements.
    pub batch_size: usize,
    /// Longest a row waits before its batch is written, milliseconds.
    pub flush_interval_ms: u64,
    /// Rows held in memory while the store is unreachable (retried with backoff); beyond it new
    /// rows are dropped, counted (`benchfleet_ingest_rows_dropped_total`) and logged. An
    /// ack-aware bench sends them again.
    pub buffer_rows: usize,
    /// Memory those rows may take, bytes (about 450 bytes a row); whichever bound is reached
    /// first applies.
    pub buffer_bytes: usize,
}

impl Default for IngestSettings {
    fn default() -> Self {
        Self {
            batch_size: 5000,
            flush_interval_ms: 200,
            buffer_rows: 1_000_000,
            buffer_bytes: 512 * 1024 * 1024,
        }
    }
}

/// How many samples a live-event subscriber may fall behind before it skips some.
pub const LIVE_CAPACITY: usize = 1024;

/// Told about every committed batch, so benches learn which samples are stored.
#[async_trait::async_trait]
pub trait StorageAcks: Send + Sync + 'static {
    /// `rows` are in the store now (newly, or stored before). May wait (the writer holds the
    /// next batch meanwhile; the buffer absorbs it).
    async fn stored(&self, rows: &[TelemetryRow]);
}

/// Publishes each committed batch's acknowledgements on `benches/{id}/telemetry/ack`, to the
/// benches that subscribed to theirs.
pub struct BrokerAcks {
    pub broker: BrokerHandle,
    pub metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl StorageAcks for BrokerAcks {
    async fn stored(&self, rows: &[TelemetryRow]) {
        let mut per_bench: HashMap<&str, Vec<u64>> = HashMap::new();
        for row in rows {
            if let Ok(seq) = u64::try_from(row.seq) {
                per_bench.entry(&row.bench_id).or_default().push(seq);
            }
        }
        for (bench, seqs) in per_bench {
            if !self.broker.wants_storage_acks(bench) {
                continue;
            }
            let Ok(id) = BenchId::parse(bench) else { continue };
            let ack = TelemetryAck::from_seqs(seqs);
            let topic = Topic::new(id, TopicKind::TelemetryAck).to_string();
            match self.broker.publish_waiting(&topic, Bytes::from(ack.to_json())).await {
                Ok(()) => {
                    self.metrics.ingest_storage_acks.inc();
                    self.metrics.ingest_storage_acked_rows.inc_by(ack.len());
                }
                Err(e) => {
                    self.metrics.ingest_storage_acks_failed.inc();
                    tracing::debug!(bench.id = %bench, error = %e, "storage acknowledgement not sent");
                }
            }
        }
    }
}

/// For ingest without storage acknowledgements (tests, tools).
pub struct NoAcks;

#[async_trait::async_trait]
impl StorageAcks for NoAcks {
    async fn stored(&self, _: &[TelemetryRow]) {}
}

struct Shared {
    buffer: Mutex<Buffer>,
    acks: Arc<dyn StorageAcks>,
    /// Every accepted sample, for live subscribers (the API's event stream).
    live: tokio::sync::broadcast::Sender<TelemetryRow>,
    wake: Notify,
    settings: IngestSettings,
    metrics: Arc<Metrics>,
}

impl Ingest {
    /// Starts the writer task. It runs until `shutdown`, then flushes what it holds (bounded in time).
    pub fn spawn(
        store: Arc<dyn TelemetryStore>,
        settings: IngestSettings,
        metrics: Arc<Metrics>,
        acks: Arc<dyn StorageAcks>,
        shutdown: CancellationToken,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let shared = Arc::new(Shared {
            buffer: Mutex::default(),
            acks,
            live: tokio::sync::broadcast::channel(LIVE_CAPACITY).0,
            wake: Notify::new(),
            settings,
            metrics,
        });
        let task = tokio::spawn(writer(shared.clone(), store, shutdown));
        (Self { shared }, task)
    }

    /// Queues a row for writing. Returns false when the buffer is full and the row was refused.
    pub fn submit(&self, row: TelemetryRow) -> bool {
        let s = &self.shared;
        let len = {
            let mut buffer = s.lock();
            if buffer.held() >= s.settings.buffer_rows || buffer.bytes >= s.settings.buffer_bytes {
                drop(buffer);
                s.metrics.ingest_rows_dropped.inc();
                let dropped = s.metrics.ingest_rows_dropped.get();
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        bench.id = %row.bench_id,
                        ingest.dropped_total = dropped,
                        ingest.buffer_rows = s.settings.buffer_rows,
                        ingest.buffer_bytes = s.settings.buffer_bytes,
                        "ingest buffer full (store unreachable or too slow): telemetry row dropped"
                    );
                }
                return false;
            }
            buffer.bytes += row.footprint();
            buffer.rows.push_back(row);
            buffer.rows.len()
        };
        s.metrics.ingest_buffered_rows.set(len as i64);
        // Wake the writer only on the edges it cares about, not on every row.
        if len == 1 || len == s.settings.batch_size {
            s.wake.notify_one();
        }
        true
    }

    /// Accepted samples from now on. A receiver more than [`LIVE_CAPACITY`] behind skips the
    /// oldest and is told how many (`RecvError::Lagged`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<TelemetryRow> {
        self.shared.live.subscribe()
    }

    /// Rows waiting to be written, including a batch being written now.
    pub fn buffered(&self) -> usize {
        self.shared.lock().held()
    }
}

/// Rows not yet in the store: queued, plus the batch being written.
#[derive(Default)]
struct Buffer {
    rows: VecDeque<TelemetryRow>,
    in_flight: usize,
    /// Memory of all those rows ([`TelemetryRow::footprint`]).
    bytes: usize,
}

impl Buffer {
    fn held(&self) -> usize {
        self.rows.len() + self.in_flight
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Buffer> {
        self.buffer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn writer(s: Arc<Shared>, store: Arc<dyn TelemetryStore>, shutdown: CancellationToken) {
    let interval = Duration::from_millis(s.settings.flush_interval_ms);
    let retry = crate::persistence::retry();
    let mut backoff = retry.build();
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
                    backoff = retry.build();
                }
                Err(e) => {
                    if failing_since.is_none() {
                        failing_since = Some(Instant::now());
                        tracing::warn!(error = %e, ingest.buffered = len(&s), "telemetry write failed; buffering and retrying");
                    } else {
                        tracing::debug!(error = %e, "telemetry write failed again");
                    }
                    tokio::select! {
                        () = tokio::time::sleep(backoff.next().unwrap_or(crate::persistence::RETRY_MAX)) => {}
                        () = shutdown.cancelled() => break 'run,
                    }
                }
            }
            if len(&s) < s.settings.batch_size {
                break;
            }
        }
    }
    final_flush(&s, store.as_ref()).await;
}

async fn final_flush(s: &Shared, store: &dyn TelemetryStore) {
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

/// Rows queued (not counting a batch in flight).
fn len(s: &Shared) -> usize {
    s.lock().rows.len()
}

/// Writes the oldest batch; on failure puts it back in front, order kept.
async fn flush_one(s: &Shared, store: &dyn TelemetryStore) -> Result<(), crate::persistence::StoreError> {
    let batch: Vec<TelemetryRow> = {
        let mut buffer = s.lock();
        let n = buffer.rows.len().min(s.settings.batch_size);
        buffer.in_flight = n;
        buffer.rows.drain(..n).collect()
    };
    if batch.is_empty() {
        return Ok(());
    }
    let started = Instant::now();
    let result = store.insert_telemetry(&batch).await;
    let m = &s.metrics;
    match result {
        Ok(new) => {
            // The batch is durable: it no longer counts against the buffer while its
            // acknowledgements go out.
            {
                let mut buffer = s.lock();
                buffer.in_flight = 0;
                buffer.bytes -= batch.iter().map(TelemetryRow::footprint).sum::<usize>();
            }
            m.ingest_flush_duration_seconds.observe(started.elapsed().as_secs_f64());
            s.acks.stored(&batch).await;
            m.ingest_batch_rows.observe(batch.len() as f64);
            m.ingest_rows_stored.inc_by(new);
            m.ingest_rows_duplicate
                .inc_by(batch.len() as u64 - new.min(batch.len() as u64));
            m.ingest_buffered_rows.set(s.lock().held() as i64);
            Ok(())
        }
        Err(e) => {
            m.store_write_errors.inc();
            let mut buffer = s.lock();
            buffer.in_flight = 0;
            for row in batch.into_iter().rev() {
                buffer.rows.push_front(row);
            }
            Err(e)
        }
    }
}

/// Why a sample went no further than ingest.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    /// The payload failed validation (counted by reason in `mqtt_messages_dropped`).
    #[error("{}: {}", .0.reason.label(), .0.detail)]
    Invalid(protocol::Rejection),
    /// The buffer was full (counted in `ingest_rows_dropped`); an ack-aware bench sends it again.
    #[error("ingest buffer full")]
    BufferFull,
}

/// Decodes one telemetry payload and queues its row. A payload that fails validation is dropped,
/// counted by reason and logged with the bench id; a valid one the full buffer refuses is counted
/// too. Only an accepted row reaches live subscribers, and the caller (presence) learns which.
pub fn telemetry(
    ingest: &Ingest,
    bench: &str,
    payload: &[u8],
    received_at: chrono::DateTime<chrono::Utc>,
) -> Result<(), Refused> {
    match protocol::Telemetry::decode(payload, received_at) {
        Ok(t) => {
            let row = TelemetryRow::from_payload(bench, &t, received_at);
            let live = (ingest.shared.live.receiver_count() > 0).then(|| row.clone());
            if !ingest.submit(row) {
                return Err(Refused::BufferFull);
            }
            ingest.shared.metrics.observe(bench, &t, received_at);
            if let Some(row) = live {
                let _ = ingest.shared.live.send(row);
            }
            Ok(())
        }
        Err(rejection) => {
            let reason = rejection.reason.label();
            ingest
                .shared
                .metrics
                .payload_dropped(bench, "telemetry", reason, &rejection.detail);
            Err(Refused::Invalid(rejection))
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::store::testing::{Outage, pg_database, sqlite_database, telemetry_row};

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The store goes away: rows are held up to the bound, the excess is counted, nothing held is
    /// lost, and everything held is written once the store is back; duplicates are not stored twice.
    async fn outage_story(url: &str) {
        let inner = crate::store::connect(url, &Default::default()).await.unwrap();
        inner.migrate().await.unwrap();
        let store = Arc::new(Outage::new(inner.clone()));
        store.set_down(true);
        let metrics = Arc::new(Metrics::new());
        let settings = IngestSettings {
            batch_size: 100,
            flush_interval_ms: 10,
            buffer_rows: 1000,
            buffer_bytes: usize::MAX,
        };
        let shutdown = CancellationToken::new();
        let (ingest, task) = Ingest::spawn(
            store.clone(),
            settings,
            metrics.clone(),
            Arc::new(NoAcks),
            shutdown.clone(),
        );

        let t0: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        let accepted = (0..1500)
            .filter(|&i| ingest.submit(telemetry_row("mostar-01", i, t0 + chrono::Duration::seconds(i))))
            .count();
        assert_eq!(accepted, 1000);
        assert_eq!(metrics.ingest_rows_dropped.get(), 500);
        assert_eq!(ingest.buffered(), 1000);
        wait_for("a failed write", || metrics.store_write_errors.get() > 0).await;
        assert_eq!(
            ingest.buffered(),
            1000,
            "rows must stay buffered while the store is down"
        );

        store.set_down(false);
        wait_for("the buffer to drain", || ingest.buffered() == 0).await;
        assert_eq!(metrics.ingest_rows_stored.get(), 1000);
        // The same rows again are recognised as duplicates.
        for i in 0..10 {
            ingest.submit(telemetry_row("mostar-01", i, t0 + chrono::Duration::seconds(i)));
        }
        wait_for("duplicates to be written", || metrics.ingest_rows_duplicate.get() == 10).await;
        shutdown.cancel();
        task.await.unwrap();

        let rows = inner
            .telemetry("mostar-01", t0, t0 + chrono::Duration::days(1))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1000);
        assert_eq!((rows[0].seq, rows[999].seq), (0, 999));
        assert!(metrics.encode().contains("benchfleet_ingest_rows_dropped_total 500"));
    }

    #[tokio::test]
    async fn outage_on_sqlite() {
        let db = sqlite_database();
        outage_story(db.url()).await;
    }

    #[tokio::test]
    async fn outage_on_postgres() {
        let Some(db) = pg_database().await else { return };
        outage_story(db.url()).await;
    }

    #[tokio::test]
    async fn shutdown_flushes_what_is_buffered() {
        let db = sqlite_database();
        let store = crate::store::connect(db.url(), &Default::default()).await.unwrap();
        store.migrate().await.unwrap();
        let metrics = Arc::new(Metrics::new());
        // A long interval: only the shutdown flush can write these rows.
        let settings = IngestSettings {
            batch_size: 500,
            flush_interval_ms: 600_000,
            buffer_rows: 1000,
            buffer_bytes: usize::MAX,
        };
        let shutdown = CancellationToken::new();
        let (ingest, task) = Ingest::spawn(store.clone(), settings, metrics, Arc::new(NoAcks), shutdown.clone());
        let t0: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        for i in 0..7 {
            ingest.submit(telemetry_row("ravno-01", i, t0 + chrono::Duration::seconds(i)));
        }
        shutdown.cancel();
        task.await.unwrap();
        let rows = store
            .telemetry("ravno-01", t0, t0 + chrono::Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(rows.len(), 7);
    }

    #[test]
    fn bad_payloads_are_counted_by_reason() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let db = sqlite_database();
            let store = crate::store::connect(db.url(), &Default::default()).await.unwrap();
            let metrics = Arc::new(Metrics::new());
            let (ingest, _task) = Ingest::spawn(
                store,
                IngestSettings::default(),
                metrics.clone(),
                Arc::new(NoAcks),
                CancellationToken::new(),
            );
            let now = Utc::now();
            assert!(telemetry(&ingest, "mostar-01", b"{oops", now).is_err());
            assert!(telemetry(&ingest, "mostar-01", br#"{"v":1}"#, now).is_err());
            let text = metrics.encode();
            assert!(
                text.contains(r#"benchfleet_mqtt_messages_dropped_total{reason="malformed_json"} 1"#),
                "{text}"
            );
            assert!(
                text.contains(r#"benchfleet_mqtt_messages_dropped_total{reason="invalid_type"} 1"#),
                "{text}"
            );
            assert_eq!(ingest.buffered(), 0);
        });
    }

    /// A valid telemetry payload numbered `seq`, sent now.
    pub(crate) fn payload(seq: u64) -> Vec<u8> {
        format!(
            r#"{{"v":1,"ts":"{}","seq":{seq},"power":{{"solar_w":40.0,"battery_pct":80.0}}}}"#,
            Utc::now().to_rfc3339()
        )
        .into_bytes()
    }

    #[tokio::test]
    async fn a_row_the_full_buffer_refuses_goes_no_further() {
        let db = sqlite_database();
        let store = crate::store::connect(db.url(), &Default::default()).await.unwrap();
        store.migrate().await.unwrap();
        let metrics = Arc::new(Metrics::new());
        // One row fills the buffer, and nothing is written before shutdown.
        let settings = IngestSettings {
            batch_size: 500,
            flush_interval_ms: 600_000,
            buffer_rows: 1,
            buffer_bytes: usize::MAX,
        };
        let (ingest, _task) = Ingest::spawn(
            store,
            settings,
            metrics.clone(),
            Arc::new(NoAcks),
            CancellationToken::new(),
        );
        let mut live = ingest.subscribe();
        assert_eq!(telemetry(&ingest, "mostar-01", &payload(1), Utc::now()), Ok(()));
        assert_eq!(
            telemetry(&ingest, "mostar-01", &payload(2), Utc::now()),
            Err(Refused::BufferFull)
        );
        assert_eq!(live.try_recv().unwrap().seq, 1);
        assert!(
            matches!(live.try_recv(), Err(tokio::sync::broadcast::error::TryRecvError::Empty)),
            "a refused row must not reach live subscribers"
        );
        assert_eq!(metrics.ingest_rows_dropped.get(), 1);
        assert_eq!(ingest.buffered(), 1);
    }

    /// The byte bound holds as well as the row bound, and memory is given back once written.
    #[tokio::test]
    async fn the_buffer_is_bounded_in_bytes() {
        let db = sqlite_database();
        let store = crate::store::connect(db.url(), &Default::default()).await.unwrap();
        store.migrate().await.unwrap();
        let metrics = Arc::new(Metrics::new());
        let t0: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        let row = |i| telemetry_row("mostar-01", i, t0 + chrono::Duration::seconds(i));
        let footprint = row(0).footprint();
        let settings = IngestSettings {
            batch_size: 100,
            flush_interval_ms: 10,
            buffer_rows: 1000,
            // Room for ten rows: the eleventh starts at the bound and is refused.
            buffer_bytes: 10 * footprint,
        };
        let stop = CancellationToken::new();
        let (ingest, task) = Ingest::spawn(store.clone(), settings, metrics.clone(), Arc::new(NoAcks), stop.clone());
        let accepted = (0..20).filter(|&i| ingest.submit(row(i))).count();
        assert_eq!(accepted, 10);
        assert_eq!(metrics.ingest_rows_dropped.get(), 10);
        wait_for("the buffer to drain", || ingest.buffered() == 0).await;
        assert!(ingest.submit(row(100)), "written rows give their memory back");
        stop.cancel();
        task.await.unwrap();
        assert_eq!(
            store
                .telemetry("mostar-01", t0, t0 + chrono::Duration::days(1))
                .await
                .unwrap()
                .len(),
            11
        );
    }

    /// Records what it is told, in order.
    #[derive(Default)]
    struct Recorded(Mutex<Vec<Vec<(String, i64)>>>);

    #[async_trait::async_trait]
    impl StorageAcks for Recorded {
        async fn stored(&self, rows: &[TelemetryRow]) {
            let batch = rows.iter().map(|r| (r.bench_id.clone(), r.seq)).collect();
            self.0.lock().unwrap().push(batch);
        }
    }

    #[tokio::test]
    async fn only_committed_batches_are_acknowledged() {
        let db = sqlite_database();
        let inner = crate::store::connect(db.url(), &Default::default()).await.unwrap();
        inner.migrate().await.unwrap();
        let store = Arc::new(Outage::new(inner));
        store.set_down(true);
        let acks = Arc::new(Recorded::default());
        let metrics = Arc::new(Metrics::new());
        let settings = IngestSettings {
            batch_size: 10,
            flush_interval_ms: 10,
            buffer_rows: 100,
            buffer_bytes: usize::MAX,
        };
        let shutdown = CancellationToken::new();
        let (ingest, task) = Ingest::spawn(store.clone(), settings, metrics.clone(), acks.clone(), shutdown.clone());
        let t0: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        for i in 0..5 {
            ingest.submit(telemetry_row("mostar-01", i, t0 + chrono::Duration::seconds(i)));
            ingest.submit(telemetry_row("zepce-01", 100 + i, t0 + chrono::Duration::seconds(i)));
        }
        wait_for("a failed write", || metrics.store_write_errors.get() > 0).await;
        assert!(
            acks.0.lock().unwrap().is_empty(),
            "nothing is acknowledged while the store is down"
        );
        store.set_down(false);
        wait_for("the buffer to drain", || ingest.buffered() == 0).await;
        shutdown.cancel();
        task.await.unwrap();
        let acked: Vec<(String, i64)> = acks.0.lock().unwrap().concat();
        assert_eq!(acked.len(), 10);
        for i in 0..5 {
            assert!(acked.contains(&("mostar-01".to_owned(), i)));
            assert!(acked.contains(&("zepce-01".to_owned(), 100 + i)));
        }
    }
}
