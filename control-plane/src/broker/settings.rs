//! Broker settings and their translation into rumqttd's router and server configuration.
//!
//! rumqttd's `RouterConfig::default()` is all zeros and unusable (no connections, no outgoing
//! packets, and `CommitLog::new` panics on segments under 1 KiB or a zero count), so every field
//! is set here from [`BrokerSettings`].
//!
//! Memory: rumqttd keeps one in-memory commit log per distinct subscription filter, holding up to
//! `segment_bytes * segment_count` bytes of topic + payload (plus about 250 bytes of bookkeeping
//! per message), and it never frees a filter's log. Each segment also pre-allocates room for
//! 1024 messages (about 300 KiB of address space, resident only once touched). The control
//! plane's four link filters (`benches/+/telemetry` ...) get the `link_*` sizes; each bench's
//! own two filters (`benches/<id>/config`, `benches/<id>/ideas/ack`) get the `bench_*` sizes.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use rumqttd::{ConnectionSettings, RouterConfig, SegmentConfig, ServerSettings};
use serde::{Deserialize, Serialize};

use super::BrokerError;
use super::link::LINK_FILTERS;

/// Settings of the embedded MQTT broker: the `[mqtt]` settings.
///
/// `Default` suits tests and embedding; the control plane's own defaults
/// (`settings::Settings::default`) allow a larger fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerSettings {
    /// TCP address of the MQTT 3.1.1 listener. Loopback by default, as Mosquitto 2 does;
    /// "0.0.0.0:1883" serves benches on the network. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Most authenticated bench connections at once; further CONNECTs are refused (`server_full`).
    pub max_connections: usize,
    /// Bench messages queued between the broker and ingest. When the queue is full, messages are
    /// dropped and counted (`benchfleet_mqtt_messages_dropped_total{reason="queue_full"}`), never
    /// waited for.
    pub queue_capacity: usize,
    /// How long a new socket may take to send CONNECT, in milliseconds.
    pub connect_timeout_ms: u16,
    /// Pause after each accepted socket, in milliseconds; caps the accept rate (0 = no cap).
    pub accept_delay_ms: u64,
    /// Segment size, in bytes, of the commit logs behind the control plane's own subscriptions.
    pub link_segment_bytes: usize,
    /// Segments kept per link filter. `link_segment_bytes * link_segment_count` is how far the
    /// in-process consumer may fall behind before the router skips messages it already
    /// acknowledged to benches.
    pub link_segment_count: usize,
    /// Segment size, in bytes, of each bench's own subscriptions (config, ideas/ack).
    pub bench_segment_bytes: usize,
    /// Segments kept per bench filter.
    pub bench_segment_count: usize,
    /// Worker threads of the broker's own tokio runtime (connections, link).
    pub worker_threads: usize,
    /// Messages a second one bench may send on average, all topics together; beyond it (and its
    /// burst) messages are dropped and counted
    /// (`benchfleet_mqtt_messages_dropped_total{reason="rate_limited"}`). A bench sends about one
    /// a minute; 0 turns the limit off (load tests).
    pub bench_messages_per_s: u32,
    /// Messages one bench may send at once above that rate: room for a store-and-forward queue
    /// emptying after an outage (at least `bench_messages_per_s`).
    pub bench_message_burst: u32,
}

/// Local links attached to the router besides the benches (the control plane's own link).
pub(crate) const LOCAL_LINKS: usize = 1;

/// Largest MQTT remaining length accepted. Deliberately 16 times the payload limit: a payload
/// somewhat over the limit reaches ingest, which drops and counts it while the bench stays
/// connected; only absurd packets make rumqttd close the connection.
pub(crate) const MAX_PACKET_BYTES: usize = 16 * protocol::MAX_PAYLOAD_BYTES + 2048;

/// Packets read from one socket in one batch.
const READ_BATCH: usize = 100;

/// QoS 0 messages the router moves to a subscriber per scheduling round. The link subscribes at
/// QoS 0, so this sets how many messages it gets per router round trip; 500 drained a flood
/// about twice as far as 100 before the log overran (see `measure_memory` in the tests).
const ROUTER_BATCH: u64 = 500;

impl Default for BrokerSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 1883)),
            max_connections: 1000,
            queue_capacity: 4096,
            connect_timeout_ms: 5000,
            accept_delay_ms: 1,
            link_segment_bytes: 1024 * 1024,
            link_segment_count: 64,
            bench_segment_bytes: 64 * 1024,
            bench_segment_count: 2,
            worker_threads: 2,
            bench_messages_per_s: 20,
            bench_message_burst: 2000,
        }
    }
}

impl BrokerSettings {
    /// Settings for tests: a free loopback port and defaults otherwise.
    pub fn ephemeral() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            ..Self::default()
        }
    }

    /// Refuses values rumqttd would panic on or that make the broker useless.
    pub fn validate(&self) -> Result<(), BrokerError> {
        let bad = |msg: &str| Err(BrokerError::Settings(msg.to_owned()));
        if self.max_connections == 0 {
            return bad("max_connections must be at least 1");
        }
        if self.queue_capacity == 0 {
            return bad("queue_capacity must be at least 1");
        }
        if self.connect_timeout_ms == 0 {
            return bad("connect_timeout_ms must be at least 1");
        }
        if self.link_segment_bytes < 1024 || self.bench_segment_bytes < 1024 {
            return bad("segment sizes must be at least 1024 bytes");
        }
        if self.link_segment_count == 0 || self.bench_segment_count == 0 {
            return bad("segment counts must be at least 1");
        }
        if self.worker_threads == 0 {
            return bad("worker_threads must be at least 1");
        }
        Ok(())
    }

    /// The router configuration; `fleet_len` sizes the slack for connections the router has not
    /// yet forgotten (see the comment inside).
    pub(crate) fn router_config(&self, fleet_len: usize) -> RouterConfig {
        let link = SegmentConfig {
            max_segment_size: self.link_segment_bytes,
            max_segment_count: self.link_segment_count,
        };
        let custom: HashMap<String, SegmentConfig> =
            LINK_FILTERS.iter().map(|f| (f.to_string(), link.clone())).collect();
        RouterConfig {
            // The gate admits at most `max_connections`. The router must never be the one to
            // refuse: a refusal there leaves a stale entry in rumqttd's will map that makes the
            // next CONNECT with that client id panic while holding the map's lock. A handshake
            // that dies after registration can leave one zombie per client id in the router
            // until that id connects again, hence room for the whole fleet on top.
            max_connections: self
                .max_connections
                .saturating_add(fleet_len)
                .saturating_add(LOCAL_LINKS + 8),
            max_outgoing_packet_count: ROUTER_BATCH,
            max_segment_size: self.bench_segment_bytes,
            max_segment_count: self.bench_segment_count,
            custom_segment: Some(custom),
            initialized_filters: None,
            shared_subscriptions_strategy: rumqttd::Strategy::default(),
        }
    }

    /// The listener configuration for `listen` (the resolved address, never port 0).
    pub(crate) fn server_settings(&self, listen: SocketAddr) -> ServerSettings {
        ServerSettings {
            name: "benches-v4".into(),
            listen,
            tls: None,
            next_connection_delay_ms: self.accept_delay_ms,
            connections: ConnectionSettings {
                connection_timeout_ms: self.connect_timeout_ms,
                max_payload_size: MAX_PACKET_BYTES,
                max_inflight_count: READ_BATCH,
                // Authentication happens in the gate, which sees the whole CONNECT.
                auth: None,
                external_auth: None,
                dynamic_filters: false,
            },
        }
    }

    /// Worst-case commit-log bytes (topic + payload) of one link filter.
    pub fn link_log_bytes(&self) -> usize {
        self.link_segment_bytes.saturating_mul(self.link_segment_count)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_every_router_field_is_set() {
        let s = BrokerSettings::default();
        s.validate().unwrap();
        let r = s.router_config(12);
        assert_eq!(r.max_connections, 1000 + 12 + LOCAL_LINKS + 8);
        assert!(r.max_outgoing_packet_count > 0);
        assert!(r.max_segment_size >= 1024 && r.max_segment_count >= 1);
        let custom = r.custom_segment.unwrap();
        assert_eq!(custom.len(), LINK_FILTERS.len());
        assert_eq!(custom["benches/+/telemetry"].max_segment_size, 1024 * 1024);
        assert_eq!(s.link_log_bytes(), 64 * 1024 * 1024);
    }

    #[test]
    fn link_segment_overrides_match_only_link_filters() {
        // rumqttd applies a custom segment when the subscription filter, read as a topic,
        // matches the configured filter. Bench filters must keep the small size.
        for f in LINK_FILTERS {
            assert!(rumqttd::protocol::matches(f, f), "{f}");
            for bench in ["benches/mostar-01/config", "benches/mostar-01/ideas/ack"] {
                assert!(!rumqttd::protocol::matches(bench, f), "{bench} vs {f}");
            }
        }
    }

    #[test]
    fn unusable_values_are_refused() {
        let cases: [fn(&mut BrokerSettings); 6] = [
            |s| s.max_connections = 0,
            |s| s.queue_capacity = 0,
            |s| s.link_segment_bytes = 1023,
            |s| s.bench_segment_count = 0,
            |s| s.worker_threads = 0,
            |s| s.connect_timeout_ms = 0,
        ];
        for change in cases {
            let mut s = BrokerSettings::default();
            change(&mut s);
            assert!(matches!(s.validate(), Err(BrokerError::Settings(_))), "{s:?}");
        }
    }

    #[test]
    fn settings_file_round_trip() {
        let s: BrokerSettings = toml::from_str("listen = \"0.0.0.0:8883\"\nqueue_capacity = 10").unwrap();
        assert_eq!(s.listen.port(), 8883);
        assert_eq!(s.queue_capacity, 10);
        assert_eq!(s.max_connections, BrokerSettings::default().max_connections);
        assert!(toml::from_str::<BrokerSettings>("nope = 1").is_err());
    }
}
