//! The embedded MQTT broker: rumqttd 0.20 in-process on TCP (MQTT 3.1.1), with per-bench JWT
//! identity, a per-topic ACL, exact connect/disconnect events, and an in-process link that hands
//! bench messages to the rest of the control plane.
//!
//! - [`identity`]: who may connect (client id = user name = bench id, password = bench JWT).
//! - [`acl`]: which topics a bench may publish and subscribe to.
//! - `gate`: the rumqttd protocol wrapper that applies both and reports events.
//! - `listener`: router, listener and runtime lifecycle, shutdown and self-healing.
//! - `link`: bench messages to the control plane, server messages to benches.
//!
//! What consumers can rely on:
//!
//! - Presence: [`BrokerEvent::Connected`] / [`BrokerEvent::Disconnected`] are exact and carry a
//!   connection serial; keep the set of live serials per bench.
//! - Last Will: published by the broker (not rumqttd) when an established connection ends
//!   without DISCONNECT, unless a newer connection of the same bench replaced it. It arrives on
//!   `inbound` like any status message.
//! - Loss: bench messages are dropped only when the inbound queue is full
//!   ([`BrokerHandle::dropped_inbound`]) or when the link fell more than its commit log behind
//!   ([`BrokerHandle::skipped_inbound`]); both are counted and logged at WARN. QoS 1 does not
//!   protect against either: the router acknowledges a publish once it is in its log.
//!
//! Logging: rumqttd reports routine events (every disconnect, refused CONNECTs, duplicate client
//! ids) at ERROR. Add [`QUIET_TARGETS`] to the tracing filter; the broker reports those events
//! itself, at the right level, under the `control_plane::broker` targets.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use protocol::{BenchId, Topic};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub mod acl;
// Crate-visible for the fuzzing entry points (`crate::fuzzing`).
pub(crate) mod gate;
pub mod identity;
mod link;
mod listener;
pub mod quota;
mod settings;

pub use acl::AclAction;
pub use identity::{Authenticator, DenyReason};
pub use link::Inbound;
pub use settings::BrokerSettings;
pub(crate) use settings::MAX_PACKET_BYTES;

/// `EnvFilter` directives that silence rumqttd's routine ERROR logs; append them to the filter
/// (`format!("{base},{QUIET_TARGETS}")`). Directives for more specific targets win, so these
/// hold whatever level `base` sets for `rumqttd`.
///
/// - `rumqttd::server::broker`: every disconnect ("disconnected", "router-drop") and every
///   refused CONNECT at ERROR. Also accept(2) failures, which `BrokerHandle::is_listening` and
///   connection counts cover.
/// - `rumqttd::router::routing`: "Duplicate client_id", "no-connection id is already gone" (a
///   DISCONNECT followed by the socket closing) at ERROR, and its overrun warning ("Read cursor
///   start jumped"), which the link detects and reports itself.
/// - `rumqttd::router::iobufs`: out-of-order acknowledgements from misbehaving clients.
/// - `rumqttd::segments`: "jumping to head", the same overrun seen from the commit log.
///
/// `rumqttd=warn` is not enough: the noise is at ERROR.
pub const QUIET_TARGETS: &str = "rumqttd=warn,rumqttd::server::broker=off,rumqttd::router::routing=off,\
                                 rumqttd::router::iobufs=off,rumqttd::segments=off";

/// Something that happened to a bench connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerEvent {
    /// A successful CONNACK went out. `conn` is unique per connection within one broker. When a
    /// bench reconnects while its old connection lives, rumqttd ends the old one, and its
    /// `Disconnected` may arrive before or after the new `Connected`: track presence as the set
    /// of live `conn`s per bench (online while non-empty), not as a flag per bench.
    Connected { bench: BenchId, conn: u64 },
    /// A connection that had `Connected` ended, cleanly (`clean`: the bench sent DISCONNECT) or
    /// not (socket dropped, keep-alive expired, ACL violation, taken over, broker shutdown).
    Disconnected { bench: BenchId, conn: u64, clean: bool },
    /// A connection refused at CONNECT; `client_id` is sanitized for logs.
    Denied { client_id: String, reason: DenyReason },
    /// A bench touched a topic it does not own and was disconnected; `topic` is sanitized.
    AclViolation {
        bench: BenchId,
        conn: u64,
        action: AclAction,
        topic: String,
    },
}

/// Why the broker could not start or could not take a message.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("invalid broker settings: {0}")]
    Settings(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot start the broker: {0}")]
    Io(#[from] io::Error),
    #[error("cannot attach the control plane's link to the MQTT router: {0}")]
    Link(String),
    #[error("{0:?} is not a server -> bench topic")]
    Topic(String),
    #[error("refusing an empty payload: it would delete the retained message")]
    EmptyPayload,
    #[error("payload of {0} bytes exceeds the limit of {max} bytes", max = protocol::MAX_PAYLOAD_BYTES)]
    PayloadTooLarge(usize),
    #[error("the broker's outbound queue is full")]
    Busy,
    #[error("the broker has stopped")]
    Stopped,
}

/// A running broker. Take `events` and `inbound` apart and hand them to their consumers.
#[derive(Debug)]
pub struct Broker {
    /// The address the listener is bound to (the actual port when the settings said 0).
    pub local_addr: SocketAddr,
    /// Connection events. Unbounded so the broker never waits on it: keep reading it.
    pub events: mpsc::UnboundedReceiver<BrokerEvent>,
    /// Bench messages, `queue_capacity` deep; overflow is dropped and counted.
    pub inbound: mpsc::Receiver<Inbound>,
    pub handle: BrokerHandle,
}

/// Counters shared by the broker's parts.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Connections with a successful CONNACK that have not ended.
    pub connections: AtomicUsize,
    /// Admitted CONNECTs holding a connection slot (includes handshakes in progress).
    pub admitted: AtomicUsize,
    pub dropped_inbound: AtomicU64,
    pub skipped_inbound: AtomicU64,
    pub restarts: AtomicU64,
    pub listening: AtomicBool,
    /// Set once shutdown began, so endings are not mistaken for faults; from then on the gate
    /// refuses every packet, so nothing more is acknowledged to a bench.
    pub stopping: AtomicBool,
    /// Bench messages the gate let through to the router.
    pub accepted_inbound: AtomicU64,
    /// Of those, the messages the link took from the router (or counted as skipped).
    pub forwarded_inbound: AtomicU64,
    /// Benches that subscribed to their `telemetry/ack` (kept across reconnects, as a persistent
    /// session keeps the subscription; bounded by the registry).
    pub storage_ack_subscribers: std::sync::RwLock<std::collections::HashSet<String>>,
}

/// A cheap, cloneable handle to a running broker.
#[derive(Debug, Clone)]
pub struct BrokerHandle {
    outbound: mpsc::Sender<link::Outbound>,
    stats: Arc<Stats>,
    stopped: CancellationToken,
    /// The listener's restart request (tests trigger it directly).
    #[cfg_attr(not(test), allow(dead_code))]
    heal: Arc<Notify>,
}

impl BrokerHandle {
    /// Queues a server -> bench message (`benches/<id>/config` or `benches/<id>/ideas/ack`) at
    /// QoS 0 towards the router; subscribers receive it at their subscription's QoS, and with
    /// `retain` a bench that subscribes later gets it too. Never blocks; `Ok` means queued.
    pub fn publish(&self, topic: &str, payload: Bytes, retain: bool) -> Result<(), BrokerError> {
        let message = Self::outbound(topic, payload, retain)?;
        self.outbound.try_send(message).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => BrokerError::Busy,
            mpsc::error::TrySendError::Closed(_) => BrokerError::Stopped,
        })
    }

    /// Like [`publish`](Self::publish), but waits for room in the outbound queue instead of
    /// failing with `Busy`: for senders that may wait (the ingest writer's storage
    /// acknowledgements, thousands per batch in a large fleet).
    pub async fn publish_waiting(&self, topic: &str, payload: Bytes) -> Result<(), BrokerError> {
        let message = Self::outbound(topic, payload, false)?;
        self.outbound.send(message).await.map_err(|_| BrokerError::Stopped)
    }

    fn outbound(topic: &str, payload: Bytes, retain: bool) -> Result<link::Outbound, BrokerError> {
        if payload.is_empty() {
            return Err(BrokerError::EmptyPayload);
        }
        if payload.len() > protocol::MAX_PAYLOAD_BYTES {
            return Err(BrokerError::PayloadTooLarge(payload.len()));
        }
        match Topic::parse(topic) {
            Some(t) if !t.kind.bench_publishes() => {}
            _ => return Err(BrokerError::Topic(identity::sanitize(topic))),
        }
        Ok(link::Outbound {
            topic: topic.to_owned(),
            payload,
            retain,
        })
    }

    /// Whether `bench` subscribed to its storage acknowledgements (`benches/{id}/telemetry/ack`).
    pub fn wants_storage_acks(&self, bench: &str) -> bool {
        let subscribers = self
            .stats
            .storage_ack_subscribers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        subscribers.contains(bench)
    }

    /// Bench messages dropped because the inbound queue was full (or closed).
    pub fn dropped_inbound(&self) -> u64 {
        self.stats.dropped_inbound.load(Ordering::Relaxed)
    }

    /// Bench messages the router skipped because the link fell more than its commit log behind.
    /// Should stay 0; anything else means the link segments are too small for the load.
    pub fn skipped_inbound(&self) -> u64 {
        self.stats.skipped_inbound.load(Ordering::Relaxed)
    }

    /// Current authenticated connections (successful CONNACK, not yet ended).
    pub fn connections(&self) -> usize {
        self.stats.connections.load(Ordering::Relaxed)
    }

    /// Whether the listener socket is bound and accepting (for `/readyz`).
    pub fn is_listening(&self) -> bool {
        self.stats.listening.load(Ordering::Acquire) && !self.stopped.is_cancelled()
    }

    /// How many times the listener was re-created to recover from a rumqttd fault.
    pub fn listener_restarts(&self) -> u64 {
        self.stats.restarts.load(Ordering::Relaxed)
    }

    /// Resolves once the broker has shut down and every connection has ended.
    pub async fn stopped(&self) {
        self.stopped.cancelled().await;
    }
}

/// Starts the broker on its own thread and runtime and returns once the listener is bound.
/// It runs until `shutdown` is cancelled; then every connection is closed (each reporting
/// `Disconnected`) and `BrokerHandle::stopped` resolves.
pub async fn start(
    settings: BrokerSettings,
    auth: Authenticator,
    shutdown: CancellationToken,
) -> Result<Broker, BrokerError> {
    settings.validate()?;
    let (events_tx, events) = mpsc::unbounded_channel();
    let (inbound_tx, inbound) = mpsc::channel(settings.queue_capacity);
    let (outbound_tx, outbound_rx) = mpsc::channel(link::OUTBOUND_CAPACITY);
    let stats = Arc::new(Stats::default());
    let stopped = CancellationToken::new();
    let (ready_tx, ready_rx) = oneshot::channel();
    let heal = Arc::new(Notify::new());
    let shared = Arc::new(gate::GateShared {
        auth,
        events: events_tx,
        stats: stats.clone(),
        max_connections: settings.max_connections,
        serials: AtomicU64::new(0),
        heal: heal.clone(),
        outbound: outbound_tx.clone(),
        live: Mutex::default(),
    });
    let plan = listener::Plan {
        settings,
        shared,
        inbound: inbound_tx,
        outbound: outbound_rx,
        shutdown,
        stopped: stopped.clone(),
        ready: ready_tx,
    };
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || listener::run(plan))?;
    let local_addr = ready_rx.await.map_err(|_| BrokerError::Stopped)??;
    let handle = BrokerHandle {
        outbound: outbound_tx,
        stats,
        stopped,
        heal,
    };
    Ok(Broker {
        local_addr,
        events,
        inbound,
        handle,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use protocol::token::Secret;
    use protocol::{Claims, Fleet, Role};
    use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
    use tokio::time::{Instant, timeout};

    use super::*;

    const DEADLINE: Duration = Duration::from_secs(10);

    async fn connect(addr: SocketAddr, bench: &str, secret: &Secret) -> (AsyncClient, tokio::task::JoinHandle<()>) {
        let mut opts = MqttOptions::new(bench, addr.ip().to_string(), addr.port());
        opts.set_credentials(
            bench,
            secret.sign(&Claims::new(Role::Bench, bench, Duration::from_secs(600))),
        );
        let (client, mut el) = AsyncClient::new(opts, 10);
        timeout(DEADLINE, async {
            while !matches!(el.poll().await.unwrap(), Event::Incoming(Packet::ConnAck(_))) {}
        })
        .await
        .unwrap();
        let driver = tokio::spawn(async move { while el.poll().await.is_ok() {} });
        (client, driver)
    }

    #[tokio::test]
    async fn a_listener_restart_keeps_established_connections_and_accepts_new_ones() {
        let secret = Secret::new(b"listener restart test secret, 32".to_vec());
        let auth = Authenticator::new(Arc::new(Fleet::link4()), secret.clone());
        let shutdown = CancellationToken::new();
        let _stop = shutdown.clone().drop_guard();
        let mut broker = start(BrokerSettings::ephemeral(), auth, shutdown).await.unwrap();
        let (a, _adriver) = connect(broker.local_addr, "mostar-01", &secret).await;

        broker.handle.heal.notify_one();
        let deadline = Instant::now() + DEADLINE;
        while broker.handle.listener_restarts() == 0 || !broker.handle.is_listening() {
            assert!(Instant::now() < deadline, "the listener did not restart");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        a.publish("benches/mostar-01/telemetry", QoS::AtLeastOnce, false, &b"before"[..])
            .await
            .unwrap();
        let m = timeout(DEADLINE, broker.inbound.recv()).await.unwrap().unwrap();
        assert_eq!(&m.payload[..], b"before");
        let (b, _bdriver) = connect(broker.local_addr, "zepce-01", &secret).await;
        b.publish("benches/zepce-01/telemetry", QoS::AtLeastOnce, false, &b"after"[..])
            .await
            .unwrap();
        let m = timeout(DEADLINE, broker.inbound.recv()).await.unwrap().unwrap();
        assert_eq!((m.topic.bench.as_str(), &m.payload[..]), ("zepce-01", &b"after"[..]));
        assert_eq!(broker.handle.connections(), 2);
        assert_eq!(broker.handle.listener_restarts(), 1);
    }
}
