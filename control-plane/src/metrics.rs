//! Every Prometheus metric of the control plane, in one place.
//!
//! Label values come only from closed sets this crate controls (reject reasons, topic kinds, the
//! bench registry), never from raw input.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use protocol::{RejectReason, TopicKind};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BenchLabel {
    pub bench: String,
}

/// Dropped because the queue between broker and ingest was full.
pub const DROP_QUEUE_FULL: &str = "queue_full";

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
    /// Rows dropped because the outage buffer was full.
    pub ingest_rows_dropped: Counter,
    /// Rows waiting to be written.
    pub ingest_buffered_rows: Gauge,
    /// Failed store writes (telemetry batches and status events), each retried.
    pub store_write_errors: Counter,
    /// 1 when the bench is online, 0 otherwise; registry benches only.
    pub bench_up: Family<BenchLabel, Gauge>,
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
            store_write_errors: Counter::default(),
            bench_up: Family::default(),
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
            "store_write_errors",
            "Failed store writes, each retried",
            m.store_write_errors.clone(),
        );
        registry.register("bench_up", "1 when the bench is online", m.bench_up.clone());

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
        let _ = m.mqtt_messages_dropped.get_or_create(&ReasonLabel {
            reason: DROP_QUEUE_FULL,
        });
        Self { registry, ..m }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    pub fn dropped(&self, reason: &'static str) {
        self.mqtt_messages_dropped.get_or_create(&ReasonLabel { reason }).inc();
    }

    pub fn received(&self, kind: TopicKind) {
        self.mqtt_messages_received
            .get_or_create(&KindLabel { kind: kind.label() })
            .inc();
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
}
