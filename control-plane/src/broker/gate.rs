//! The gate: a wrapper around rumqttd's MQTT 3.1.1 codec that sees every packet of one
//! connection. It authenticates the CONNECT, enforces the topic ACL, and reports exact
//! connect/disconnect events.
//!
//! rumqttd's `Server` clones its protocol value once per accepted socket and drops the clone when
//! that connection's task ends, so a clone is a connection: `Clone` gives each one fresh state
//! and a serial number, `write` of a successful CONNACK marks it connected, and `Drop` reports the
//! disconnect. A refusal is an error from `read_mut` (anything but `InsufficientBytes`, which
//! means "read more"); rumqttd then closes the socket without a CONNACK.
//!
//! Last Will: the gate takes the will out of the CONNECT before rumqttd sees it and publishes it
//! itself when an established connection ends without DISCONNECT. rumqttd 0.20 keys wills by
//! client id, so when a bench reconnects while its old connection lives, the old connection's end
//! publishes the *new* connection's will ("offline" while the bench is online) and the new
//! connection is left with none. The gate instead skips the will of a connection that a newer
//! connection of the same bench has replaced.
//!
//! `Drop` runs inside a broker task, so it only does non-blocking sends (events on an unbounded
//! channel, wills with `try_send`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use protocol::BenchId;
use rumqttd::protocol::v4::V4;
use rumqttd::protocol::{self as mqtt, ConnectReturnCode, LastWill, Login, Packet, Protocol};
use tokio::sync::{Notify, mpsc};
use tracing::{debug, error, info, warn};

use super::acl::{self, AclAction};
use super::identity::{Authenticator, DenyReason, sanitize};
use super::link::Outbound;
use super::{BrokerEvent, Stats};

/// rumqttd has no "not authorized" error. A refusal reuses this variant with the MQTT 3.1.1
/// CONNACK code 5 ("not authorized") so rumqttd's own log line still says what happened.
const REFUSED: mqtt::Error = mqtt::Error::InvalidConnectReturnCode(5);

/// What every connection of one listener shares.
pub(crate) struct GateShared {
    pub auth: Authenticator,
    pub events: mpsc::UnboundedSender<BrokerEvent>,
    pub stats: Arc<Stats>,
    pub max_connections: usize,
    /// The last serial number given to an admitted connection; never reused within one broker.
    pub serials: AtomicU64,
    /// Asks the listener to restart itself (see `listener`).
    pub heal: Arc<Notify>,
    /// Where Last Will messages are published from.
    pub outbound: mpsc::Sender<Outbound>,
    /// Admitted connections per bench, to tell a takeover from a bench going away.
    pub live: Mutex<HashMap<BenchId, usize>>,
}

impl GateShared {
    /// Adds `delta` to the bench's admitted connections and returns the new count.
    fn live_add(&self, bench: &BenchId, delta: isize) -> usize {
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let n = live.entry(bench.clone()).or_default();
        *n = n.saturating_add_signed(delta);
        let n = *n;
        if n == 0 {
            live.remove(bench);
        }
        n
    }
}

/// The rumqttd protocol value; one clone per connection.
pub(crate) struct Gate {
    shared: Arc<GateShared>,
    conn: u64,
    /// Set once the CONNECT was admitted (and a connection slot reserved).
    bench: Option<BenchId>,
    /// A successful CONNACK was written; set from `write`, which only gets `&self`.
    acked: AtomicBool,
    /// `read_mut` ran after the CONNACK, so rumqttd's link loop is running.
    established: bool,
    /// The bench sent DISCONNECT.
    clean: bool,
    /// The Last Will, held back from rumqttd.
    will: Option<Outbound>,
    codec: V4,
}

impl Gate {
    /// The template handed to rumqttd's `Server`; it never serves a connection itself.
    pub(crate) fn template(shared: Arc<GateShared>) -> Self {
        Self::fresh(shared)
    }

    fn fresh(shared: Arc<GateShared>) -> Self {
        Self {
            shared,
            conn: 0,
            bench: None,
            acked: AtomicBool::new(false),
            established: false,
            clean: false,
            will: None,
            codec: V4,
        }
    }

    fn emit(&self, event: BrokerEvent) {
        // The receiver is gone only while the control plane shuts down.
        let _ = self.shared.events.send(event);
    }

    fn deny(&self, client_id: &str, reason: DenyReason) -> mqtt::Error {
        let client_id = sanitize(client_id);
        // The control plane logs refusals at WARN, rate-limited (`Metrics::connection_denied`).
        debug!(client.id = %client_id, deny.reason = reason.as_str(), "MQTT connection refused");
        self.emit(BrokerEvent::Denied { client_id, reason });
        REFUSED
    }

    fn violation(&self, bench: &BenchId, action: AclAction, topic: &str) -> mqtt::Error {
        let topic = sanitize(topic);
        warn!(bench.id = %bench, conn.serial = self.conn, acl.action = action.as_str(), topic = %topic, "ACL violation, disconnecting");
        self.emit(BrokerEvent::AclViolation {
            bench: bench.clone(),
            conn: self.conn,
            action,
            topic,
        });
        REFUSED
    }

    /// Checks a CONNECT and, if it passes, reserves a connection slot.
    fn admit(
        &mut self,
        connect: &mqtt::Connect,
        will: Option<&LastWill>,
        login: Option<&Login>,
    ) -> Result<(), mqtt::Error> {
        let client_id = connect.client_id.as_str();
        let result = self
            .shared
            .auth
            .authenticate(
                client_id,
                login.map(|l| l.username.as_str()),
                login.map(|l| l.password.as_str()),
            )
            .and_then(|bench| {
                if let Some(will) = will {
                    let topic = std::str::from_utf8(&will.topic).unwrap_or("");
                    // An empty will would delete the retained status instead of setting it.
                    if !acl::may_will(&bench, topic) || will.message.is_empty() {
                        return Err(DenyReason::ForbiddenWill);
                    }
                }
                if connect.keep_alive == 0 {
                    return Err(DenyReason::ZeroKeepAlive);
                }
                if !reserve(&self.shared.stats.admitted, self.shared.max_connections) {
                    return Err(DenyReason::ServerFull);
                }
                Ok(bench)
            });
        match result {
            Ok(bench) => {
                // Serials count admitted connections only; rumqttd also clones the gate for
                // itself and for sockets that never get this far.
                self.conn = self.shared.serials.fetch_add(1, Ordering::Relaxed) + 1;
                debug!(bench.id = %bench, conn.serial = self.conn, "CONNECT admitted");
                self.shared.live_add(&bench, 1);
                self.bench = Some(bench);
                self.will = will.map(|w| Outbound {
                    topic: String::from_utf8_lossy(&w.topic).into_owned(),
                    payload: w.message.clone(),
                    retain: w.retain,
                });
                Ok(())
            }
            Err(reason) => Err(self.deny(client_id, reason)),
        }
    }

    /// Applies the ACL to a packet of an admitted connection.
    fn police(&self, bench: &BenchId, packet: &Packet) -> Result<(), mqtt::Error> {
        match packet {
            Packet::Publish(publish, _) => {
                let topic = String::from_utf8_lossy(&publish.topic);
                // An empty retained publish would delete the bench's retained status: as much a
                // violation as writing where it may not.
                if !acl::may_publish(bench, &topic) || (publish.retain && publish.payload.is_empty()) {
                    return Err(self.violation(bench, AclAction::Publish, &topic));
                }
            }
            Packet::Subscribe(subscribe, _) => {
                if let Some(f) = subscribe.filters.iter().find(|f| !acl::may_subscribe(bench, &f.path)) {
                    return Err(self.violation(bench, AclAction::Subscribe, &f.path));
                }
                if subscribe.filters.iter().any(|f| acl::is_storage_acks(bench, &f.path)) {
                    self.shared
                        .stats
                        .storage_ack_subscribers
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .insert(bench.as_str().to_owned());
                }
            }
            Packet::Connect(..) => {
                warn!(bench.id = %bench, conn.serial = self.conn, "second CONNECT on one connection, disconnecting");
                return Err(REFUSED);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Takes one of `max` slots; false when none is left.
fn reserve(count: &AtomicUsize, max: usize) -> bool {
    count
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n < max).then_some(n + 1))
        .is_ok()
}

impl Clone for Gate {
    /// A new connection with fresh state. A derived `Clone` would copy the template's state
    /// into every connection.
    fn clone(&self) -> Self {
        Self::fresh(self.shared.clone())
    }
}

impl Protocol for Gate {
    fn read_mut(&mut self, stream: &mut BytesMut, max_size: usize) -> Result<Packet, mqtt::Error> {
        if !self.established && self.acked.load(Ordering::Acquire) {
            self.established = true;
        }
        let packet = match self.codec.read_mut(stream, max_size) {
            Ok(packet) => packet,
            Err(mqtt::Error::InsufficientBytes(n)) => {
                return Err(mqtt::Error::InsufficientBytes(n));
            }
            Err(e) => {
                if self.bench.is_none() {
                    let reason = match e {
                        mqtt::Error::InvalidProtocolLevel(_) | mqtt::Error::InvalidProtocol => {
                            DenyReason::UnsupportedProtocol
                        }
                        _ => DenyReason::Malformed,
                    };
                    self.deny("", reason);
                }
                return Err(e);
            }
        };
        match &self.bench {
            None => match packet {
                Packet::Connect(connect, props, will, _, login) => {
                    self.admit(&connect, will.as_ref(), login.as_ref())?;
                    // rumqttd never sees the will; the gate publishes it (see the module docs).
                    return Ok(Packet::Connect(connect, props, None, None, login));
                }
                _ => return Err(self.deny("", DenyReason::NotConnect)),
            },
            Some(bench) => {
                // Shutting down: whatever a bench sends now is not acknowledged, so it keeps it.
                if self.shared.stats.stopping.load(Ordering::Acquire) {
                    return Err(REFUSED);
                }
                self.police(bench, &packet)?;
                if matches!(packet, Packet::Publish(..)) {
                    self.shared.stats.accepted_inbound.fetch_add(1, Ordering::AcqRel);
                }
                if matches!(packet, Packet::Disconnect(..)) {
                    self.clean = true;
                }
            }
        }
        Ok(packet)
    }

    fn write(&self, packet: Packet, buffer: &mut BytesMut) -> Result<usize, mqtt::Error> {
        if let Packet::ConnAck(ack, _) = &packet
            && ack.code == ConnectReturnCode::Success
            && let Some(bench) = &self.bench
            && !self.acked.swap(true, Ordering::AcqRel)
        {
            self.shared.stats.connections.fetch_add(1, Ordering::AcqRel);
            info!(bench.id = %bench, conn.serial = self.conn, "bench connected");
            self.emit(BrokerEvent::Connected {
                bench: bench.clone(),
                conn: self.conn,
            });
        }
        self.codec.write(packet, buffer)
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        let Some(bench) = self.bench.take() else {
            return;
        };
        self.shared.stats.admitted.fetch_sub(1, Ordering::AcqRel);
        let replaced = self.shared.live_add(&bench, -1) > 0;
        let stopping = self.shared.stats.stopping.load(Ordering::Acquire);
        if let Some(will) = self.will.take()
            && self.established
            && !self.clean
            && !replaced
            && !stopping
        {
            debug!(bench.id = %bench, conn.serial = self.conn, "publishing the Last Will");
            // The will comes back to the control plane through the router like any status.
            if self.shared.outbound.try_send(will).is_ok() {
                self.shared.stats.accepted_inbound.fetch_add(1, Ordering::AcqRel);
            } else {
                error!(bench.id = %bench, conn.serial = self.conn, "outbound queue full, Last Will lost");
            }
        }
        if self.acked.load(Ordering::Acquire) {
            self.shared.stats.connections.fetch_sub(1, Ordering::AcqRel);
            info!(bench.id = %bench, conn.serial = self.conn, clean = self.clean, "bench disconnected");
            self.emit(BrokerEvent::Disconnected {
                bench: bench.clone(),
                conn: self.conn,
                clean: self.clean,
            });
        }
        // An admitted CONNECT whose connection ends before rumqttd's link loop ran means
        // rumqttd returned early from its handshake (router refusal, failed CONNACK write, or a
        // panic on its poisoned will map). Each leaves rumqttd's will map in a state that
        // breaks the next CONNECT with this client id, so the listener restarts with a fresh one.
        if !self.established && !stopping {
            warn!(bench.id = %bench, conn.serial = self.conn, acked = self.acked.load(Ordering::Acquire),
                "MQTT handshake ended early; restarting the listener to clear rumqttd's will map");
            self.shared.heal.notify_one();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use bytes::{BufMut, Bytes};
    use protocol::token::Secret;
    use protocol::{Claims, Fleet, Role};
    use rumqttd::protocol::{ConnAck, Filter, Publish, QoS, RetainForwardRule, Subscribe};

    use super::*;

    fn secret() -> Secret {
        Secret::new(b"gate unit test secret, 32 bytes!".to_vec())
    }

    struct Rig {
        template: Gate,
        events: mpsc::UnboundedReceiver<BrokerEvent>,
        wills: mpsc::Receiver<Outbound>,
        shared: Arc<GateShared>,
    }

    fn rig(max_connections: usize) -> Rig {
        let (tx, events) = mpsc::unbounded_channel();
        let (outbound, wills) = mpsc::channel(16);
        let shared = Arc::new(GateShared {
            auth: Authenticator::new(Arc::new(Fleet::link4()), secret()),
            events: tx,
            stats: Arc::new(Stats::default()),
            max_connections,
            serials: AtomicU64::new(0),
            heal: Arc::new(Notify::new()),
            outbound,
            live: Mutex::default(),
        });
        Rig {
            template: Gate::template(shared.clone()),
            events,
            wills,
            shared,
        }
    }

    fn connect_bytes(client_id: &str, user: &str, password: &str, will: Option<&str>) -> BytesMut {
        let connect = mqtt::Connect {
            keep_alive: 30,
            client_id: client_id.into(),
            clean_session: true,
        };
        let login = Some(Login {
            username: user.into(),
            password: password.into(),
        });
        let will = will.map(|t| LastWill {
            topic: Bytes::copy_from_slice(t.as_bytes()),
            message: Bytes::from_static(b"{\"v\":1,\"state\":\"offline\"}"),
            qos: QoS::AtLeastOnce,
            retain: true,
        });
        let mut buf = BytesMut::new();
        V4.write(Packet::Connect(connect, None, will, None, login), &mut buf)
            .unwrap();
        buf
    }

    fn token(sub: &str) -> String {
        secret().sign(&Claims::new(Role::Bench, sub, Duration::from_secs(600)))
    }

    fn connack() -> Packet {
        Packet::ConnAck(
            ConnAck {
                session_present: false,
                code: ConnectReturnCode::Success,
            },
            None,
        )
    }

    #[test]
    fn clones_are_fresh_connections_with_increasing_serials() {
        let mut r = rig(10);
        let mut a = r.template.clone();
        let mut b = r.template.clone();
        let t = token("mostar-01");
        a.read_mut(&mut connect_bytes("mostar-01", "mostar-01", &t, None), 1 << 16)
            .unwrap();
        b.read_mut(&mut connect_bytes("mostar-01", "mostar-01", &t, None), 1 << 16)
            .unwrap();
        assert_eq!((a.conn, b.conn), (1, 2));
        // A clone of an admitted connection must not inherit its identity.
        let c = a.clone();
        assert!(c.bench.is_none() && c.conn == 0 && !c.acked.load(Ordering::Relaxed));
        drop(c);
        drop(b);
        assert_eq!(r.shared.stats.admitted.load(Ordering::Relaxed), 1);
        a.write(connack(), &mut BytesMut::new()).unwrap();
        a.read_mut(&mut BytesMut::new(), 1 << 16).unwrap_err();
        let bench = BenchId::parse("mostar-01").unwrap();
        assert_eq!(
            r.events.try_recv().unwrap(),
            BrokerEvent::Connected {
                bench: bench.clone(),
                conn: 1
            }
        );
        drop(a);
        assert_eq!(
            r.events.try_recv().unwrap(),
            BrokerEvent::Disconnected {
                bench,
                conn: 1,
                clean: false
            }
        );
        assert_eq!(r.shared.stats.admitted.load(Ordering::Relaxed), 0);
        assert_eq!(r.shared.stats.connections.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_refused_connect_is_an_error_other_than_insufficient_bytes() {
        let mut r = rig(10);
        let mut g = r.template.clone();
        let err = g
            .read_mut(&mut connect_bytes("mostar-01", "mostar-01", "bad", None), 1 << 16)
            .unwrap_err();
        assert!(!matches!(err, mqtt::Error::InsufficientBytes(_)));
        assert_eq!(
            r.events.try_recv().unwrap(),
            BrokerEvent::Denied {
                client_id: "mostar-01".into(),
                reason: DenyReason::InvalidToken
            }
        );
        drop(g);
        assert!(r.events.try_recv().is_err(), "no disconnect for a refused connection");
    }

    #[test]
    fn partial_packets_ask_for_more_bytes() {
        let r = rig(10);
        let mut g = r.template.clone();
        let mut full = connect_bytes("mostar-01", "mostar-01", &token("mostar-01"), None);
        let mut part = full.split_to(10);
        assert!(matches!(
            g.read_mut(&mut part, 1 << 16),
            Err(mqtt::Error::InsufficientBytes(_))
        ));
        part.unsplit(full);
        assert!(matches!(g.read_mut(&mut part, 1 << 16), Ok(Packet::Connect(..))));
    }

    #[test]
    fn will_on_another_topic_is_refused() {
        let mut r = rig(10);
        let mut g = r.template.clone();
        let bytes = &mut connect_bytes(
            "mostar-01",
            "mostar-01",
            &token("mostar-01"),
            Some("benches/zepce-01/status"),
        );
        g.read_mut(bytes, 1 << 16).unwrap_err();
        assert_eq!(
            r.events.try_recv().unwrap(),
            BrokerEvent::Denied {
                client_id: "mostar-01".into(),
                reason: DenyReason::ForbiddenWill
            }
        );
        let mut g = r.template.clone();
        let bytes = &mut connect_bytes(
            "mostar-01",
            "mostar-01",
            &token("mostar-01"),
            Some("benches/mostar-01/status"),
        );
        g.read_mut(bytes, 1 << 16).unwrap();
    }

    #[test]
    fn slots_run_out_and_come_back() {
        let mut r = rig(1);
        let mut a = r.template.clone();
        a.read_mut(
            &mut connect_bytes("mostar-01", "mostar-01", &token("mostar-01"), None),
            1 << 16,
        )
        .unwrap();
        let mut b = r.template.clone();
        b.read_mut(
            &mut connect_bytes("zepce-01", "zepce-01", &token("zepce-01"), None),
            1 << 16,
        )
        .unwrap_err();
        assert_eq!(
            r.events.try_recv().unwrap(),
            BrokerEvent::Denied {
                client_id: "zepce-01".into(),
                reason: DenyReason::ServerFull
            }
        );
        drop(a);
        let mut c = r.template.clone();
        c.read_mut(
            &mut connect_bytes("zepce-01", "zepce-01", &token("zepce-01"), None),
            1 << 16,
        )
        .unwrap();
    }

    #[test]
    fn acl_violations_are_errors_and_events() {
        let mut r = rig(10);
        let mut g = r.template.clone();
        g.read_mut(
            &mut connect_bytes("mostar-01", "mostar-01", &token("mostar-01"), None),
            1 << 16,
        )
        .unwrap();
        g.write(connack(), &mut BytesMut::new()).unwrap();
        let _connected = r.events.try_recv().unwrap();

        let mut buf = BytesMut::new();
        let own = Publish::new(
            Bytes::from_static(b"benches/mostar-01/telemetry"),
            Bytes::from_static(b"{}"),
            false,
        );
        V4.write(Packet::Publish(own, None), &mut buf).unwrap();
        let other = Publish::new(
            Bytes::from_static(b"benches/zepce-01/telemetry"),
            Bytes::from_static(b"{}"),
            false,
        );
        V4.write(Packet::Publish(other, None), &mut buf).unwrap();
        assert!(matches!(g.read_mut(&mut buf, 1 << 16), Ok(Packet::Publish(..))));
        assert!(g.read_mut(&mut buf, 1 << 16).is_err());
        assert_eq!(
            r.events.try_recv().unwrap(),
            BrokerEvent::AclViolation {
                bench: BenchId::parse("mostar-01").unwrap(),
                conn: 1,
                action: AclAction::Publish,
                topic: "benches/zepce-01/telemetry".into()
            }
        );

        // An empty retained publish on its own status topic would delete the retained status.
        let mut g = r.template.clone();
        g.read_mut(
            &mut connect_bytes("mostar-01", "mostar-01", &token("mostar-01"), None),
            1 << 16,
        )
        .unwrap();
        g.write(connack(), &mut BytesMut::new()).unwrap();
        let _connected = r.events.try_recv().unwrap();
        let mut buf = BytesMut::new();
        let status = |payload: &'static [u8], retain| {
            Packet::Publish(
                Publish::new(
                    Bytes::from_static(b"benches/mostar-01/status"),
                    Bytes::from_static(payload),
                    retain,
                ),
                None,
            )
        };
        V4.write(status(br#"{"v":1}"#, true), &mut buf).unwrap();
        V4.write(status(b"", false), &mut buf).unwrap();
        V4.write(status(b"", true), &mut buf).unwrap();
        assert!(matches!(g.read_mut(&mut buf, 1 << 16), Ok(Packet::Publish(..))));
        assert!(matches!(g.read_mut(&mut buf, 1 << 16), Ok(Packet::Publish(..))));
        assert!(g.read_mut(&mut buf, 1 << 16).is_err());
        assert!(matches!(
            r.events.try_recv().unwrap(),
            BrokerEvent::AclViolation {
                action: AclAction::Publish,
                ..
            }
        ));

        let filter = |path: &str| Filter {
            path: path.into(),
            qos: QoS::AtLeastOnce,
            nolocal: false,
            preserve_retain: false,
            retain_forward_rule: RetainForwardRule::Never,
        };
        let sub = Subscribe {
            pkid: 1,
            filters: vec![filter("benches/mostar-01/config"), filter("benches/+/config")],
        };
        let mut buf = BytesMut::new();
        V4.write(Packet::Subscribe(sub, None), &mut buf).unwrap();
        assert!(g.read_mut(&mut buf, 1 << 16).is_err());
        assert!(
            matches!(r.events.try_recv().unwrap(), BrokerEvent::AclViolation { action: AclAction::Subscribe, ref topic, .. } if topic == "benches/+/config")
        );
    }

    #[test]
    fn garbage_and_other_protocol_levels_are_reported() {
        let mut r = rig(10);
        let mut g = r.template.clone();
        let mut v5 = connect_bytes("mostar-01", "mostar-01", "x", None);
        v5[8] = 5; // protocol level byte of a short CONNECT
        g.read_mut(&mut v5, 1 << 16).unwrap_err();
        assert!(matches!(
            r.events.try_recv().unwrap(),
            BrokerEvent::Denied {
                reason: DenyReason::UnsupportedProtocol,
                ..
            }
        ));

        let mut g = r.template.clone();
        let mut ping = BytesMut::new();
        ping.put_slice(&[0xC0, 0x00]);
        g.read_mut(&mut ping, 1 << 16).unwrap_err();
        assert!(matches!(
            r.events.try_recv().unwrap(),
            BrokerEvent::Denied {
                reason: DenyReason::NotConnect,
                ..
            }
        ));
    }

    #[test]
    fn an_early_end_after_admission_asks_for_a_listener_restart() {
        let r = rig(10);
        let mut g = r.template.clone();
        g.read_mut(
            &mut connect_bytes("mostar-01", "mostar-01", &token("mostar-01"), None),
            1 << 16,
        )
        .unwrap();
        drop(g);
        // `Notify` keeps one permit when nobody waits.
        let heal = r.shared.heal.clone();
        let notified = heal.notified();
        tokio::pin!(notified);
        assert!(
            futures::FutureExt::now_or_never(notified).is_some(),
            "restart requested"
        );

        // A normal life (CONNACK, then the link loop reads) asks for nothing.
        let mut g = r.template.clone();
        g.read_mut(
            &mut connect_bytes("mostar-01", "mostar-01", &token("mostar-01"), None),
            1 << 16,
        )
        .unwrap();
        g.write(connack(), &mut BytesMut::new()).unwrap();
        g.read_mut(&mut BytesMut::new(), 1 << 16).unwrap_err();
        drop(g);
        let notified = heal.notified();
        tokio::pin!(notified);
        assert!(
            futures::FutureExt::now_or_never(notified).is_none(),
            "no restart requested"
        );
    }

    /// Admits, acknowledges and runs a connection the way rumqttd does.
    fn established(r: &Rig, bench: &str, will: Option<&str>) -> Gate {
        let mut g = r.template.clone();
        let packet = g
            .read_mut(&mut connect_bytes(bench, bench, &token(bench), will), 1 << 16)
            .unwrap();
        assert!(
            matches!(packet, Packet::Connect(_, _, None, None, Some(_))),
            "the will reaches rumqttd: {packet:?}"
        );
        g.write(connack(), &mut BytesMut::new()).unwrap();
        g.read_mut(&mut BytesMut::new(), 1 << 16).unwrap_err();
        g
    }

    #[test]
    fn the_gate_publishes_the_will_of_an_abrupt_end_only() {
        let mut r = rig(10);
        drop(established(&r, "mostar-01", Some("benches/mostar-01/status")));
        let will = r.wills.try_recv().unwrap();
        assert_eq!((will.topic.as_str(), will.retain), ("benches/mostar-01/status", true));
        assert_eq!(&will.payload[..], b"{\"v\":1,\"state\":\"offline\"}");

        // DISCONNECT first: no will.
        let mut g = established(&r, "mostar-01", Some("benches/mostar-01/status"));
        let mut disconnect = BytesMut::new();
        disconnect.put_slice(&[0xE0, 0x00]);
        assert!(matches!(
            g.read_mut(&mut disconnect, 1 << 16),
            Ok(Packet::Disconnect(..))
        ));
        drop(g);
        assert!(r.wills.try_recv().is_err());

        // Replaced by a newer connection of the same bench: no will for the old one, but the
        // newer one keeps its own.
        let old = established(&r, "mostar-01", Some("benches/mostar-01/status"));
        let new = established(&r, "mostar-01", Some("benches/mostar-01/status"));
        drop(old);
        assert!(r.wills.try_recv().is_err());
        drop(new);
        assert_eq!(r.wills.try_recv().unwrap().topic, "benches/mostar-01/status");
        assert!(r.shared.live.lock().unwrap().is_empty());
    }

    #[test]
    fn an_empty_will_is_refused() {
        let mut r = rig(10);
        let mut g = r.template.clone();
        let connect = mqtt::Connect {
            keep_alive: 30,
            client_id: "mostar-01".into(),
            clean_session: true,
        };
        let will = LastWill {
            topic: Bytes::from_static(b"benches/mostar-01/status"),
            message: Bytes::new(),
            qos: QoS::AtLeastOnce,
            retain: true,
        };
        let login = Login {
            username: "mostar-01".into(),
            password: token("mostar-01"),
        };
        let mut buf = BytesMut::new();
        V4.write(Packet::Connect(connect, None, Some(will), None, Some(login)), &mut buf)
            .unwrap();
        g.read_mut(&mut buf, 1 << 16).unwrap_err();
        assert!(matches!(
            r.events.try_recv().unwrap(),
            BrokerEvent::Denied {
                reason: DenyReason::ForbiddenWill,
                ..
            }
        ));
    }
}
