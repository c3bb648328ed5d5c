//! Every Prometheus metric of the control plane, in one place.
//!
//! Label values come only from closed sets this crate controls (reject reasons, topic kinds, the
//! bench registry), never from raw input.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use protocol::{BenchState, RejectReason, Telemetry, TopicKind};

mod drops;
pub use drops::{DROP_LOG_INTERVAL, DropLog, Summary as DropSummary};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BenchLabel {
    pub bench: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BenchStateLabel {
    pub bench: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BenchKindLabel {
    pub bench: String,
    pub kind: &'static str,
}

/// An HTTP response: the matched route template (never the raw path) and the status code.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabel {
    pub route: String,
    pub status: u16,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn http_duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

/// Dropped because the queue between broker and ingest was full.
pub const DROP_QUEUE_FULL: &str = "queue_full";
/// Dropped because the broker's in-process link fell more than its commit log behind.
pub const DROP_LINK_OVERRUN: &str = "link_overrun";
/// A bench sent more than its message quota (`broker::quota`).
pub const DROP_RATE_LIMITED: &str = "rate_limited";

/// The control plane's metrics.
pub struct Metrics {
    registry: Registry,
    /// Authenticated MQTT connections now.
    pub mqtt_connections: Gauge,
    /// Messages received from benches, by topic kind.
    pub mqtt_messages_received: Family<KindLabel, Counter>,
    /// Messages dropped, by reason (validation failures and a full queue).
    pub mqtt_messages_dropped: Family<ReasonLabel, Counter>,
    /// Connections refused at CONNECT, by reason.
    pub mqtt_connections_denied: Family<ReasonLabel, Counter>,
    /// Clients disconnected for publishing or subscribing outside their own topics.
    pub mqtt_acl_violations: Counter,
    /// Rows per store write.
    pub ingest_batch_rows: Histogram,
    /// Time to write one batch.
    pub ingest_flush_duration_seconds: Histogram,
    /// Rows written (new).
    pub ingest_rows_stored: Counter,
    /// Rows skipped as already stored (same bench, seq and ts).
    pub ingest_rows_duplicate: Counter,
    /// Rows refused because the buffer was full (never storage-acknowledged).
    pub ingest_rows_dropped: Counter,
    /// Rows waiting to be written.
    pub ingest_buffered_rows: Gauge,
    /// Storage acknowledgements (`telemetry/ack`) published to benches.
    pub ingest_storage_acks: Counter,
    /// Samples those acknowledgements covered.
    pub ingest_storage_acked_rows: Counter,
    /// Storage acknowledgements that could not be queued (the bench sends the samples again).
    pub ingest_storage_acks_failed: Counter,
    /// Failed store writes (telemetry batches and status events), each retried.
    pub store_write_errors: Counter,
    /// 1 when the bench is online, 0 otherwise; registry benches only.
    pub bench_up: Family<BenchLabel, Gauge>,
    /// 1 for the bench's current presence state, 0 for the others.
    pub bench_state: Family<BenchStateLabel, Gauge>,
    pub bench_battery_percent: Family<BenchLabel, FloatGauge>,
    pub bench_solar_watts: Family<BenchLabel, FloatGauge>,
    pub bench_sessions_active: Family<BenchKindLabel, Gauge>,
    pub bench_wifi_clients: Family<BenchLabel, Gauge>,
    pub bench_faults: Family<BenchLabel, Gauge>,
    /// Bytes the bench received; monotonic across reboots (the bench's own counter resets).
    pub bench_rx_bytes: Family<BenchLabel, Counter>,
    pub bench_tx_bytes: Family<BenchLabel, Counter>,
    pub bench_last_seen_timestamp_seconds: Family<BenchLabel, FloatGauge>,
    /// HTTP API request durations (until the response head), by route template and status.
    pub http_request_duration_seconds: Family<HttpLabel, Histogram, fn() -> Histogram>,
    /// Seconds the configuration version a bench reports has differed from the desired one;
    /// 0 while they agree.
    pub bench_config_drift_seconds: Family<BenchLabel, FloatGauge>,
    /// Configuration acknowledgements received, by status (`applied`, `rejected`).
    pub ota_acks_received: Family<StatusLabel, Counter>,
    /// Ideas submitted at benches, by what the kiosk was told (`received`, `duplicate`,
    /// `rate_limited`, `invalid`).
    pub ideas_submitted: Family<StatusLabel, Counter>,
    /// Idea lifecycle transitions, by the state entered.
    pub idea_transitions: Family<StatusLabel, Counter>,
    /// Idea deadlines that passed: `confirm` (re-offered or escalated) and `act` (overdue).
    pub idea_deadlines_expired: Family<StatusLabel, Counter>,
    /// Ideas waiting for operators: held for moderation, unroutable or escalated.
    pub ideas_awaiting_operator: Gauge,
    /// Per bench: time and raw counters of the newest sample seen, to turn resets into deltas.
    newest: Mutex<HashMap<String, Newest>>,
    /// Which dropped payloads are logged ([`Metrics::payload_dropped`]).
    drop_log: DropLog,
    /// The same for refused CONNECTs, by reason only: client ids before authentication are
    /// anyone's to invent.
    denial_log: DropLog,
}

/// What `observe` keeps per bench: the newest sample's time and raw counters, and the bench's
/// series, looked up once instead of hashing and allocating a label for each on every sample.
struct Newest {
    ts: Option<DateTime<Utc>>,
    rx: Option<u64>,
    tx: Option<u64>,
    rx_bytes: Counter,
    tx_bytes: Counter,
    battery_percent: FloatGauge,
    solar_watts: FloatGauge,
    last_seen: FloatGauge,
    faults: Gauge,
    /// Created on a bench's first value, so a bench that never reports one has no series.
    wifi_clients: Option<Gauge>,
    sessions: [Option<Gauge>; 3],
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("benchfleet");
        let m = Self {
            mqtt_connections: Gauge::default(),
            mqtt_messages_received: Family::default(),
            mqtt_messages_dropped: Family::default(),
            mqtt_connections_denied: Family::default(),
            mqtt_acl_violations: Counter::default(),
            ingest_batch_rows: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            ingest_flush_duration_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            ingest_rows_stored: Counter::default(),
            ingest_rows_duplicate: Counter::default(),
            ingest_rows_dropped: Counter::default(),
            ingest_buffered_rows: Gauge::default(),
            ingest_storage_acks: Counter::default(),
            ingest_storage_acked_rows: Counter::default(),
            ingest_storage_acks_failed: Counter::default(),
            store_write_errors: Counter::default(),
            bench_up: Family::default(),
            bench_state: Family::default(),
            bench_battery_percent: Family::default(),
            bench_solar_watts: Family::default(),
            bench_sessions_active: Family::default(),
            bench_wifi_clients: Family::default(),
            bench_faults: Family::default(),
            bench_rx_bytes: Family::default(),
            bench_tx_bytes: Family::default(),
            bench_last_seen_timestamp_seconds: Family::default(),
            http_request_duration_seconds: Family::new_with_constructor(http_duration_histogram),
            bench_config_drift_seconds: Family::default(),
            ota_acks_received: Family::default(),
            ideas_submitted: Family::default(),
            idea_transitions: Family::default(),
            idea_deadlines_expired: Family::default(),
            ideas_awaiting_operator: Gauge::default(),
            newest: Mutex::default(),
            drop_log: DropLog::default(),
            denial_log: DropLog::default(),
            registry: Registry::default(),
        };
        registry.register(
            "mqtt_connections",
            "Authenticated MQTT connections now",
            m.mqtt_connections.clone(),
        );
        registry.register(
            "mqtt_messages_received",
            "Messages received from benches, by topic kind",
            m.mqtt_messages_received.clone(),
        );
        registry.register(
            "mqtt_messages_dropped",
            "Bench messages dropped, by reason",
            m.mqtt_messages_dropped.clone(),
        );
        registry.register(
            "mqtt_connections_denied",
            "MQTT connections refused at CONNECT, by reason",
            m.mqtt_connections_denied.clone(),
        );
        registry.register(
            "mqtt_acl_violations",
            "Clients disconnected for using another bench's topics",
            m.mqtt_acl_violations.clone(),
        );
        registry.register(
            "ingest_batch_rows",
            "Rows per telemetry store write",
            m.ingest_batch_rows.clone(),
        );
        registry.register(
            "ingest_flush_duration_seconds",
            "Time to write one telemetry batch",
            m.ingest_flush_duration_seconds.clone(),
        );
        registry.register(
            "ingest_rows_stored",
            "Telemetry rows written",
            m.ingest_rows_stored.clone(),
        );
        registry.register(
            "ingest_rows_duplicate",
            "Telemetry rows skipped as already stored",
            m.ingest_rows_duplicate.clone(),
        );
        registry.register(
            "ingest_rows_dropped",
            "Telemetry rows dropped because the outage buffer was full",
            m.ingest_rows_dropped.clone(),
        );
        registry.register(
            "ingest_buffered_rows",
            "Telemetry rows waiting to be written",
            m.ingest_buffered_rows.clone(),
        );
        registry.register(
            "ingest_storage_acks",
            "Storage acknowledgements (telemetry/ack) published to benches",
            m.ingest_storage_acks.clone(),
        );
        registry.register(
            "ingest_storage_acked_rows",
            "Telemetry rows covered by storage acknowledgements",
            m.ingest_storage_acked_rows.clone(),
        );
        registry.register(
            "ingest_storage_acks_failed",
            "Storage acknowledgements that could not be queued to the broker (the bench sends again)",
            m.ingest_storage_acks_failed.clone(),
        );
        registry.register(
            "store_write_errors",
            "Failed store writes, each retried",
            m.store_write_errors.clone(),
        );
        registry.register("bench_up", "1 when the bench is online", m.bench_up.clone());
        registry.register(
            "bench_state",
            "1 for the bench's current presence state (online, offline, stale, sleeping, never_seen)",
            m.bench_state.clone(),
        );
        registry.register(
            "bench_battery_percent",
            "Battery state of charge in the newest sample",
            m.bench_battery_percent.clone(),
        );
        registry.register(
            "bench_solar_watts",
            "Solar power in the newest sample",
            m.bench_solar_watts.clone(),
        );
        registry.register(
            "bench_sessions_active",
            "Active sessions in the newest sample, by kind (wifi, usb, kiosk)",
            m.bench_sessions_active.clone(),
        );
        registry.register(
            "bench_wifi_clients",
            "Wi-Fi clients associated in the newest sample",
            m.bench_wifi_clients.clone(),
        );
        registry.register(
            "bench_faults",
            "Active fault codes in the newest sample",
            m.bench_faults.clone(),
        );
        registry.register(
            "bench_rx_bytes",
            "Bytes received by the bench's Wi-Fi, monotonic across bench reboots",
            m.bench_rx_bytes.clone(),
        );
        registry.register(
            "bench_tx_bytes",
            "Bytes sent by the bench's Wi-Fi, monotonic across bench reboots",
            m.bench_tx_bytes.clone(),
        );
        registry.register(
            "bench_last_seen_timestamp_seconds",
            "Unix time of the newest telemetry sample received",
            m.bench_last_seen_timestamp_seconds.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP API request duration until the response head, by route template and status",
            m.http_request_duration_seconds.clone(),
        );

        registry.register(
            "bench_config_drift_seconds",
            "Seconds the configuration version the bench reports has differed from the desired one (0 in sync)",
            m.bench_config_drift_seconds.clone(),
        );
        registry.register(
            "ota_acks_received",
            "Configuration acknowledgements received, by status",
            m.ota_acks_received.clone(),
        );
        registry.register(
            "ideas_submitted",
            "Ideas submitted at benches, by the answer the kiosk got",
            m.ideas_submitted.clone(),
        );
        registry.register(
            "idea_transitions",
            "Idea lifecycle transitions, by the state entered",
            m.idea_transitions.clone(),
        );
        registry.register(
            "idea_deadlines_expired",
            "Idea deadlines that passed, by kind (confirm, act)",
            m.idea_deadlines_expired.clone(),
        );
        registry.register(
            "ideas_awaiting_operator",
            "Ideas waiting for operators: held for moderation, unroutable or escalated",
            m.ideas_awaiting_operator.clone(),
        );

        // Expose every closed-set label from the start, so rates work from zero.
        for kind in TopicKind::ALL.into_iter().filter(|k| k.bench_publishes()) {
            let _ = m
                .mqtt_messages_received
                .get_or_create(&KindLabel { kind: kind.label() });
        }
        for reason in RejectReason::ALL {
            let _ = m
                .mqtt_messages_dropped
                .get_or_create(&ReasonLabel { reason: reason.label() });
        }
        for status in ["applied", "rejected"] {
            let _ = m.ota_acks_received.get_or_create(&StatusLabel { status });
        }
        for status in ["received", "duplicate", "rate_limited", "invalid"] {
            let _ = m.ideas_submitted.get_or_create(&StatusLabel { status });
        }
        for state in protocol::IdeaState::ALL {
            let _ = m
                .idea_transitions
                .get_or_create(&StatusLabel { status: state.as_str() });
        }
        for status in ["confirm", "act"] {
            let _ = m.idea_deadlines_expired.get_or_create(&StatusLabel { status });
        }
        for reason in [DROP_QUEUE_FULL, DROP_LINK_OVERRUN, DROP_RATE_LIMITED] {
            let _ = m.mqtt_messages_dropped.get_or_create(&ReasonLabel { reason });
        }
        Self { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts a dropped message by reason (without logging: see [`Metrics::payload_dropped`]).
    pub fn dropped(&self, reason: &'static str) {
        self.mqtt_messages_dropped.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// A bench's payload (`what`: `telemetry`, `status`, …) was dropped: counted by reason, every
    /// time, and logged at WARN at most once per bench and reason per [`DROP_LOG_INTERVAL`]
    /// ([`DropLog`]); [`Metrics::flush_drop_log`] reports the ones left out.
    pub fn payload_dropped(
        &self,
        bench: &str,
        what: &'static str,
        reason: &'static str,
        detail: &dyn std::fmt::Display,
    ) {
        self.payload_dropped_at(bench, what, reason, detail, std::time::Instant::now());
    }

    /// [`Metrics::payload_dropped`] at a given time.
    pub fn payload_dropped_at(
        &self,
        bench: &str,
        what: &'static str,
        reason: &'static str,
        detail: &dyn std::fmt::Display,
        now: std::time::Instant,
    ) {
        self.dropped(reason);
        match self.drop_log.note(bench, reason, now) {
            None => {}
            Some(0) => tracing::warn!(bench.id = %bench, reason, detail = %detail, "{what} dropped"),
            Some(unlogged) => tracing::warn!(
                bench.id = %bench, reason, detail = %detail, dropped.unlogged = unlogged,
                "{what} dropped; {unlogged} more from this bench for this reason since the last line were not logged"
            ),
        }
    }

    /// Writes a line for each bench and reason whose log interval is over and that left drops
    /// out of the log (call it every second or so, so a flood that stops is still summed up).
    pub fn flush_drop_log(&self, now: std::time::Instant) {
        let seconds = self.drop_log.interval().as_secs();
        for s in self.denial_log.flush(now) {
            tracing::warn!(
                deny.reason = s.reason,
                denied.unlogged = s.unlogged,
                "{} more MQTT connections refused for this reason in the last {seconds} s (not logged one by one)",
                s.unlogged
            );
        }
        for s in self.drop_log.flush(now) {
            tracing::warn!(
                bench.id = %s.bench, reason = s.reason, dropped.unlogged = s.unlogged,
                "{} more payloads from this bench dropped for this reason in the last {seconds} s (not logged one by one)",
                s.unlogged
            );
        }
    }

    /// Counts a CONNECT refused for `reason` (`mqtt_connections_denied`) and logs it at WARN,
    /// at most one line per reason and minute, like dropped payloads (a flood of bad passwords
    /// must not flood the log); `client_id` is sanitized.
    pub fn connection_denied(&self, client_id: &str, reason: &'static str, now: std::time::Instant) {
        self.mqtt_connections_denied
            .get_or_create(&ReasonLabel { reason })
            .inc();
        match self.denial_log.note("", reason, now) {
            None => {}
            Some(0) => tracing::warn!(client.id = %client_id, deny.reason = reason, "MQTT connection refused"),
            Some(unlogged) => tracing::warn!(
                client.id = %client_id, deny.reason = reason, denied.unlogged = unlogged,
                "MQTT connection refused; {unlogged} more refused for this reason since the last line were not logged"
            ),
        }
    }

    pub fn received(&self, kind: TopicKind) {
        self.mqtt_messages_received
            .get_or_create(&KindLabel { kind: kind.label() })
            .inc();
    }
}

impl Metrics {
    /// Sets the per-bench state gauges (registry benches only).
    pub fn set_state(&self, bench: &str, state: BenchState) {
        for s in BenchState::ALL {
            let label = BenchStateLabel {
                bench: bench.to_owned(),
                state: s.as_str(),
            };
            self.bench_state.get_or_create(&label).set(i64::from(s == state));
        }
        self.bench_up
            .get_or_create(&BenchLabel {
                bench: bench.to_owned(),
            })
            .set(i64::from(state == BenchState::Online));
    }

    /// Updates the per-bench gauges from a validated sample of a registry bench. Samples older
    /// than the newest seen (store-and-forward backlog) leave the gauges alone.
    pub fn observe(&self, bench: &str, t: &Telemetry, received_at: DateTime<Utc>) {
        let mut newest = self.newest.lock().unwrap_or_else(|p| p.into_inner());
        let n = match newest.get_mut(bench) {
            Some(n) => n,
            None => newest.entry(bench.to_owned()).or_insert_with(|| self.series(bench)),
        };
        if n.ts.is_some_and(|ts| ts >= t.ts) {
            return;
        }
        n.rx_bytes.inc_by(counter_delta(n.rx, t.network.rx_bytes));
        n.tx_bytes.inc_by(counter_delta(n.tx, t.network.tx_bytes));
        (n.ts, n.rx, n.tx) = (Some(t.ts), t.network.rx_bytes, t.network.tx_bytes);
        n.battery_percent.set(t.power.battery_pct);
        n.solar_watts.set(t.power.solar_w);
        n.last_seen.set(received_at.timestamp_millis() as f64 / 1000.0);
        n.faults.set(t.health.faults.len() as i64);
        if let Some(v) = t.network.wifi_clients {
            n.wifi_clients
                .get_or_insert_with(|| self.bench_wifi_clients.get_or_create(&label(bench)).clone())
                .set(i64::from(v));
        }
        let s = &t.sessions;
        for ((kind, v), gauge) in [("wifi", s.wifi), ("usb", s.usb), ("kiosk", s.kiosk)]
            .into_iter()
            .zip(&mut n.sessions)
        {
            if let Some(v) = v {
                gauge
                    .get_or_insert_with(|| {
                        let label = BenchKindLabel {
                            bench: bench.to_owned(),
                            kind,
                        };
                        self.bench_sessions_active.get_or_create(&label).clone()
                    })
                    .set(i64::from(v));
            }
        }
    }

    /// A bench's telemetry series (clones share the registered values).
    fn series(&self, bench: &str) -> Newest {
        let label = label(bench);
        Newest {
            ts: None,
            rx: None,
            tx: None,
            rx_bytes: self.bench_rx_bytes.get_or_create(&label).clone(),
            tx_bytes: self.bench_tx_bytes.get_or_create(&label).clone(),
            battery_percent: self.bench_battery_percent.get_or_create(&label).clone(),
            solar_watts: self.bench_solar_watts.get_or_create(&label).clone(),
            last_seen: self.bench_last_seen_timestamp_seconds.get_or_create(&label).clone(),
            faults: self.bench_faults.get_or_create(&label).clone(),
            wifi_clients: None,
            sessions: [None, None, None],
        }
    }
}

fn label(bench: &str) -> BenchLabel {
    BenchLabel {
        bench: bench.to_owned(),
    }
}

/// How much a since-boot counter grew: a smaller value means the bench rebooted and counted from 0.
fn counter_delta(prev: Option<u64>, now: Option<u64>) -> u64 {
    match (prev, now) {
        (Some(p), Some(n)) if n >= p => n - p,
        (_, Some(n)) => n,
        (_, None) => 0,
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The log lines written while `f` runs, as the fmt layer writes them (no colours).
    fn log_lines(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Capture(std::sync::Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Capture {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        let writer = capture.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    /// A bench sending 10 000 bad payloads over five minutes writes a line a minute or so, the
    /// lines account for every drop, and the counter has them all.
    #[test]
    fn a_flood_of_drops_is_logged_once_a_minute_and_counted_exactly() {
        let m = Metrics::new();
        let t0 = std::time::Instant::now();
        let lines = log_lines(|| {
            for i in 0..10_000u64 {
                let now = t0 + std::time::Duration::from_millis(i * 30);
                m.payload_dropped_at("mostar-01", "telemetry", "malformed_json", &"expected value", now);
                // The dispatcher's one-second tick.
                if i % 33 == 0 {
                    m.flush_drop_log(now);
                }
            }
            // Another bench's drop is logged although mostar-01 is flooding.
            m.payload_dropped_at("zepce-01", "status", "invalid_type", &"missing field", t0);
            m.flush_drop_log(t0 + std::time::Duration::from_secs(3600));
        });
        let text = m.encode();
        assert!(
            text.contains(r#"benchfleet_mqtt_messages_dropped_total{reason="malformed_json"} 10000"#),
            "{text}"
        );
        let flood: Vec<&String> = lines.iter().filter(|l| l.contains("mostar-01")).collect();
        // 300 s of flood: the first line, then about one summary per minute, and the last.
        assert!(
            (5..=7).contains(&flood.len()),
            "{} lines:\n{}",
            flood.len(),
            lines.join("\n")
        );
        assert!(flood.iter().all(|l| l.contains("WARN") && l.contains("malformed_json")));
        let unlogged: u64 = flood
            .iter()
            .filter_map(|l| l.split("dropped.unlogged=").nth(1))
            .map(|n| n.split_whitespace().next().unwrap().parse::<u64>().unwrap())
            .sum();
        let logged_one_by_one = flood.iter().filter(|l| l.contains("telemetry dropped")).count() as u64;
        assert_eq!(logged_one_by_one + unlogged, 10_000, "{}", lines.join("\n"));
        assert_eq!(lines.iter().filter(|l| l.contains("zepce-01")).count(), 1);
    }

    #[test]
    fn names_follow_conventions() {
        let m = Metrics::new();
        m.dropped(RejectReason::OutOfRange.label());
        m.received(TopicKind::Telemetry);
        let text = m.encode();
        assert!(
            text.contains("benchfleet_mqtt_messages_dropped_total{reason=\"out_of_range\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("benchfleet_mqtt_messages_dropped_total{reason=\"queue_full\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("benchfleet_mqtt_messages_received_total{kind=\"telemetry\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# HELP benchfleet_ingest_flush_duration_seconds "),
            "{text}"
        );
        assert!(text.contains("benchfleet_ingest_buffered_rows 0"), "{text}");
    }

    fn sample(ts: &str, rx: u64, battery: f64) -> Telemetry {
        let json = format!(
            r#"{{"v":1,"ts":"{ts}","seq":1,"power":{{"solar_w":5,"battery_pct":{battery}}},"network":{{"rx_bytes":{rx},"tx_bytes":0}},"sessions":{{"usb":2}}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn byte_counters_survive_reboots_and_backlogs() {
        let m = Metrics::new();
        let now = Utc::now();
        m.observe("mostar-01", &sample("2026-11-26T10:00:00Z", 1000, 50.0), now);
        m.observe("mostar-01", &sample("2026-11-26T10:01:00Z", 1500, 51.0), now);
        // Reboot: the bench counts from zero again.
        m.observe("mostar-01", &sample("2026-11-26T10:02:00Z", 200, 52.0), now);
        // A queued older sample arriving late changes nothing.
        m.observe("mostar-01", &sample("2026-11-26T09:59:00Z", 999_999, 1.0), now);
        let text = m.encode();
        assert!(
            text.contains(r#"benchfleet_bench_rx_bytes_total{bench="mostar-01"} 1700"#),
            "{text}"
        );
        assert!(
            text.contains(r#"benchfleet_bench_battery_percent{bench="mostar-01"} 52.0"#),
            "{text}"
        );
        assert!(
            text.contains(r#"benchfleet_bench_sessions_active{bench="mostar-01",kind="usb"} 2"#),
            "{text}"
        );
    }

    #[test]
    fn state_gauges_are_one_hot() {
        let m = Metrics::new();
        m.set_state("ravno-01", BenchState::Sleeping);
        let text = m.encode();
        assert!(
            text.contains(r#"benchfleet_bench_state{bench="ravno-01",state="sleeping"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(r#"benchfleet_bench_state{bench="ravno-01",state="online"} 0"#),
            "{text}"
        );
        assert!(text.contains(r#"benchfleet_bench_up{bench="ravno-01"} 0"#), "{text}");
    }
}
