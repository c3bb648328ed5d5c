//! The embedded broker over real TCP with real clients: rumqttc and Debian's `mosquitto_pub`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use control_plane::broker::{
    self, AclAction, Authenticator, Broker, BrokerError, BrokerEvent, BrokerSettings, DenyReason, Inbound,
};
use protocol::token::Secret;
use protocol::{BenchId, Claims, Fleet, Role, Status, TopicKind};
use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, LastWill, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};
use tokio_util::sync::CancellationToken;

/// Upper bound for anything a test waits for.
const DEADLINE: Duration = Duration::from_secs(10);

fn secret() -> Secret {
    Secret::new(b"broker integration test secret!!".to_vec())
}

fn token(sub: &str) -> String {
    secret().sign(&Claims::new(Role::Bench, sub, Duration::from_secs(600)))
}

fn id(s: &str) -> BenchId {
    BenchId::parse(s).unwrap()
}

struct Rig {
    broker: Broker,
    shutdown: CancellationToken,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn rig_with(tweak: impl FnOnce(&mut BrokerSettings)) -> Rig {
    let mut settings = BrokerSettings::ephemeral();
    tweak(&mut settings);
    let auth = Authenticator::new(Arc::new(Fleet::link4()), secret());
    let shutdown = CancellationToken::new();
    let broker = broker::start(settings, auth, shutdown.clone()).await.unwrap();
    assert_ne!(broker.local_addr.port(), 0);
    assert!(broker.handle.is_listening());
    Rig { broker, shutdown }
}

async fn rig() -> Rig {
    rig_with(|_| {}).await
}

impl Rig {
    fn addr(&self) -> SocketAddr {
        self.broker.local_addr
    }

    async fn event(&mut self) -> BrokerEvent {
        timeout(DEADLINE, self.broker.events.recv())
            .await
            .expect("timed out waiting for a broker event")
            .expect("event channel closed")
    }

    async fn inbound(&mut self) -> Inbound {
        timeout(DEADLINE, self.broker.inbound.recv())
            .await
            .expect("timed out waiting for an inbound message")
            .expect("inbound channel closed")
    }

    /// Asserts nothing else is queued once the broker had time to act on what was sent so far.
    fn no_more_events(&mut self) {
        match self.broker.events.try_recv() {
            Err(mpsc::error::TryRecvError::Empty) => {}
            other => panic!("unexpected event {other:?}"),
        }
    }
}

fn options(addr: SocketAddr, client_id: &str, user: &str, password: &str) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    o.set_credentials(user, password);
    o.set_keep_alive(Duration::from_secs(5));
    o.set_max_packet_size(32 * 1024, 32 * 1024);
    o
}

fn bench_options(addr: SocketAddr, bench: &str) -> MqttOptions {
    options(addr, bench, bench, &token(bench))
}

/// Polls until CONNACK (Ok) or the first error.
async fn handshake(el: &mut EventLoop) -> Result<(), ConnectionError> {
    timeout(DEADLINE, async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = el.poll().await? {
                return Ok(());
            }
        }
    })
    .await
    .expect("timed out waiting for CONNACK or a refusal")
}

/// Connects and then drives the event loop in the background, forwarding incoming publishes.
/// The loop stops at the first error (rumqttc would otherwise reconnect).
async fn connect(
    opts: MqttOptions,
) -> (
    AsyncClient,
    mpsc::UnboundedReceiver<Packet>,
    JoinHandle<ConnectionError>,
) {
    let (client, mut el) = AsyncClient::new(opts, 100);
    handshake(&mut el).await.expect("bench should connect");
    let (tx, rx) = mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(p)) => {
                    let _ = tx.send(p);
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => return e,
            }
        }
    });
    (client, rx, driver)
}

async fn refused(opts: MqttOptions) -> ConnectionError {
    let (_client, mut el) = AsyncClient::new(opts, 10);
    handshake(&mut el).await.expect_err("connection should be refused")
}

/// The next incoming packet that is a PUBLISH.
async fn next_publish(rx: &mut mpsc::UnboundedReceiver<Packet>) -> rumqttc::Publish {
    timeout(DEADLINE, async {
        loop {
            if let Packet::Publish(p) = rx.recv().await.expect("client loop ended") {
                return p;
            }
        }
    })
    .await
    .expect("timed out waiting for a PUBLISH")
}

/// Waits (bounded) until `cond` holds.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_bench_connects_publishes_and_is_reported() {
    let mut rig = rig().await;
    let before = Utc::now();
    let (client, _rx, _driver) = connect(bench_options(rig.addr(), "mostar-01")).await;
    assert_eq!(
        rig.event().await,
        BrokerEvent::Connected {
            bench: id("mostar-01"),
            conn: 1
        }
    );
    assert_eq!(rig.broker.handle.connections(), 1);

    client
        .publish(
            "benches/mostar-01/telemetry",
            QoS::AtLeastOnce,
            false,
            &b"{\"v\":1}"[..],
        )
        .await
        .unwrap();
    let msg = rig.inbound().await;
    assert_eq!(msg.topic.bench, id("mostar-01"));
    assert_eq!(msg.topic.kind, TopicKind::Telemetry);
    assert_eq!(msg.payload, Bytes::from_static(b"{\"v\":1}"));
    assert!(msg.received_at >= before && msg.received_at <= Utc::now());

    client.disconnect().await.unwrap();
    assert_eq!(
        rig.event().await,
        BrokerEvent::Disconnected {
            bench: id("mostar-01"),
            conn: 1,
            clean: true
        }
    );
    assert_eq!(rig.broker.handle.connections(), 0);
    rig.no_more_events();
}

#[tokio::test]
async fn refused_connections_report_their_reason() {
    let mut rig = rig().await;
    let addr = rig.addr();
    let forged = Secret::new(b"not the broker's secret, 32 byte".to_vec()).sign(&Claims::new(
        Role::Bench,
        "mostar-01",
        Duration::from_secs(600),
    ));
    let mut expired = Claims::new(Role::Bench, "mostar-01", Duration::from_secs(600));
    expired.exp = Utc::now().timestamp() - 10;
    let expired = secret().sign(&expired);
    let operator = secret().sign(&Claims::new(Role::Operator, "mostar-01", Duration::from_secs(600)));

    let cases = [
        (
            options(addr, "mostar-01", "mostar-01", "wrong password"),
            "mostar-01",
            DenyReason::InvalidToken,
        ),
        (
            options(addr, "mostar-01", "mostar-01", &forged),
            "mostar-01",
            DenyReason::InvalidToken,
        ),
        (
            options(addr, "mostar-01", "mostar-01", &expired),
            "mostar-01",
            DenyReason::ExpiredToken,
        ),
        (
            options(addr, "mostar-01", "mostar-01", &operator),
            "mostar-01",
            DenyReason::WrongRole,
        ),
        (
            bench_options(addr, "nowhere-01"),
            "nowhere-01",
            DenyReason::UnknownBench,
        ),
        (
            options(addr, "mostar-01", "mostar-01", &token("zepce-01")),
            "mostar-01",
            DenyReason::SubjectMismatch,
        ),
        (
            options(addr, "mostar-01", "zepce-01", &token("mostar-01")),
            "mostar-01",
            DenyReason::UsernameMismatch,
        ),
        (
            options(addr, "", "mostar-01", &token("mostar-01")),
            "",
            DenyReason::EmptyClientId,
        ),
        (
            MqttOptions::new("mostar-01", addr.ip().to_string(), addr.port()),
            "mostar-01",
            DenyReason::MissingCredentials,
        ),
    ];
    for (opts, client_id, reason) in cases {
        let err = refused(opts).await;
        assert_eq!(
            rig.event().await,
            BrokerEvent::Denied {
                client_id: client_id.into(),
                reason
            },
            "{err:?}"
        );
    }
    assert_eq!(rig.broker.handle.connections(), 0);
    rig.no_more_events();
}

#[tokio::test]
async fn bad_client_ids_twice_do_not_poison_the_listener() {
    // rumqttd 0.20 lets such ids reach its router, which drops them without a CONNACK and leaves
    // a dead entry in the listener's will map; the second CONNECT with the id then panics while
    // holding the map's lock and every later client is refused. The gate stops them first.
    let mut rig = rig().await;
    for bad in [
        "bad/id",
        "bad/id",
        "a+b",
        "a+b",
        "#",
        "#",
        "$SYS",
        "$SYS",
        "ctl\u{1}x",
        "ctl\u{1}x",
    ] {
        refused(options(rig.addr(), bad, bad, &token("mostar-01"))).await;
        let BrokerEvent::Denied { reason, .. } = rig.event().await else {
            panic!("expected a refusal")
        };
        assert_eq!(reason, DenyReason::InvalidClientId, "{bad:?}");
    }
    let (client, _rx, _driver) = connect(bench_options(rig.addr(), "zepce-01")).await;
    assert!(matches!(rig.event().await, BrokerEvent::Connected { .. }));
    client
        .publish("benches/zepce-01/telemetry", QoS::AtLeastOnce, false, &b"alive"[..])
        .await
        .unwrap();
    assert_eq!(rig.inbound().await.payload, Bytes::from_static(b"alive"));
}

#[tokio::test]
async fn a_bench_cannot_publish_on_another_benches_topic() {
    let mut rig = rig().await;
    let (a, _rx, driver) = connect(bench_options(rig.addr(), "mostar-01")).await;
    assert_eq!(
        rig.event().await,
        BrokerEvent::Connected {
            bench: id("mostar-01"),
            conn: 1
        }
    );
    a.publish("benches/mostar-01/telemetry", QoS::AtLeastOnce, false, &b"own"[..])
        .await
        .unwrap();
    assert_eq!(rig.inbound().await.payload, Bytes::from_static(b"own"));
    a.publish("benches/zepce-01/telemetry", QoS::AtLeastOnce, false, &b"forged"[..])
        .await
        .unwrap();
    a.publish("benches/zepce-01/status", QoS::AtLeastOnce, true, &b"forged"[..])
        .await
        .unwrap();
    assert_eq!(
        rig.event().await,
        BrokerEvent::AclViolation {
            bench: id("mostar-01"),
            conn: 1,
            action: AclAction::Publish,
            topic: "benches/zepce-01/telemetry".into()
        }
    );
    assert_eq!(
        rig.event().await,
        BrokerEvent::Disconnected {
            bench: id("mostar-01"),
            conn: 1,
            clean: false
        }
    );
    timeout(DEADLINE, driver)
        .await
        .expect("the violating client was not disconnected")
        .unwrap();

    // Zepce's own marker is the next message: nothing forged got through.
    let (z, _zrx, _zdriver) = connect(bench_options(rig.addr(), "zepce-01")).await;
    z.publish("benches/zepce-01/telemetry", QoS::AtLeastOnce, false, &b"marker"[..])
        .await
        .unwrap();
    let next = rig.inbound().await;
    assert_eq!(
        (next.topic.bench.as_str(), &next.payload[..]),
        ("zepce-01", &b"marker"[..])
    );
    assert!(rig.broker.inbound.try_recv().is_err());
}

#[tokio::test]
async fn a_bench_cannot_subscribe_to_another_benches_config() {
    let mut rig = rig().await;
    let (a, _rx, driver) = connect(bench_options(rig.addr(), "mostar-01")).await;
    assert!(matches!(rig.event().await, BrokerEvent::Connected { .. }));
    a.subscribe("benches/zepce-01/config", QoS::AtLeastOnce).await.unwrap();
    assert_eq!(
        rig.event().await,
        BrokerEvent::AclViolation {
            bench: id("mostar-01"),
            conn: 1,
            action: AclAction::Subscribe,
            topic: "benches/zepce-01/config".into()
        }
    );
    assert_eq!(
        rig.event().await,
        BrokerEvent::Disconnected {
            bench: id("mostar-01"),
            conn: 1,
            clean: false
        }
    );
    timeout(DEADLINE, driver)
        .await
        .expect("the violating client was not disconnected")
        .unwrap();
}

#[tokio::test]
async fn the_server_publishes_config_and_retains_it() {
    let mut rig = rig().await;
    let handle = rig.broker.handle.clone();
    let (a, mut rx, _driver) = connect(bench_options(rig.addr(), "mostar-01")).await;
    a.subscribe("benches/mostar-01/config", QoS::AtLeastOnce).await.unwrap();
    // Wait for the SUBACK so the publish below finds the subscription.
    timeout(DEADLINE, async {
        while !matches!(rx.recv().await, Some(Packet::SubAck(_))) {}
    })
    .await
    .unwrap();
    handle
        .publish(
            "benches/mostar-01/config",
            Bytes::from_static(b"{\"v\":1,\"config_version\":2}"),
            true,
        )
        .unwrap();
    let p = next_publish(&mut rx).await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..]),
        ("benches/mostar-01/config", &b"{\"v\":1,\"config_version\":2}"[..])
    );
    // The broker delivers at the subscription's QoS: a bench that subscribes at QoS 1 gets its
    // configuration at QoS 1 (and must PUBACK it), as docs/protocol.md promises.
    assert_eq!(p.qos, QoS::AtLeastOnce, "config delivered at QoS {:?}", p.qos);

    // A bench that subscribes later gets the retained document. Publishes go through the
    // link in order, so once Mostar sees the second one the first is stored.
    handle
        .publish("benches/zepce-01/config", Bytes::from_static(b"zepce config"), true)
        .unwrap();
    handle
        .publish("benches/mostar-01/config", Bytes::from_static(b"sync"), false)
        .unwrap();
    assert_eq!(&next_publish(&mut rx).await.payload[..], b"sync");
    let (z, mut zrx, _zdriver) = connect(bench_options(rig.addr(), "zepce-01")).await;
    z.subscribe("benches/zepce-01/config", QoS::AtLeastOnce).await.unwrap();
    let p = next_publish(&mut zrx).await;
    assert_eq!(
        (p.topic.as_str(), &p.payload[..], p.retain, p.qos),
        ("benches/zepce-01/config", &b"zepce config"[..], true, QoS::AtLeastOnce)
    );

    assert!(matches!(
        handle.publish("benches/mostar-01/config", Bytes::new(), true),
        Err(BrokerError::EmptyPayload)
    ));
    assert!(matches!(
        handle.publish("benches/mostar-01/telemetry", Bytes::from_static(b"x"), false),
        Err(BrokerError::Topic(_))
    ));
    assert!(matches!(
        handle.publish("benches/+/config", Bytes::from_static(b"x"), false),
        Err(BrokerError::Topic(_))
    ));
    let big = Bytes::from(vec![b'x'; protocol::MAX_PAYLOAD_BYTES + 1]);
    assert!(matches!(
        handle.publish("benches/mostar-01/config", big, false),
        Err(BrokerError::PayloadTooLarge(_))
    ));
    // Server messages never reach the inbound queue.
    assert!(rig.broker.inbound.try_recv().is_err());
}

#[tokio::test]
async fn an_abrupt_drop_fires_the_last_will_and_is_reported() {
    let mut rig = rig().await;
    let will = Status::last_will().to_json();
    let mut opts = bench_options(rig.addr(), "trebinje-01");
    opts.set_last_will(LastWill::new(
        "benches/trebinje-01/status",
        will.clone(),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, _rx, driver) = connect(opts).await;
    assert_eq!(
        rig.event().await,
        BrokerEvent::Connected {
            bench: id("trebinje-01"),
            conn: 1
        }
    );
    let online = Status::online("1.4.2", 3).to_json();
    client
        .publish("benches/trebinje-01/status", QoS::AtLeastOnce, true, online.clone())
        .await
        .unwrap();
    assert_eq!(rig.inbound().await.payload, online);

    // Dropping the event loop closes the socket without a DISCONNECT.
    driver.abort();
    assert_eq!(
        rig.event().await,
        BrokerEvent::Disconnected {
            bench: id("trebinje-01"),
            conn: 1,
            clean: false
        }
    );
    let lw = rig.inbound().await;
    assert_eq!(lw.topic.to_string(), "benches/trebinje-01/status");
    assert_eq!(Status::decode(&lw.payload).unwrap(), Status::last_will());
}

#[tokio::test]
async fn a_last_will_on_another_benches_topic_is_refused() {
    let mut rig = rig().await;
    let mut opts = bench_options(rig.addr(), "mostar-01");
    opts.set_last_will(LastWill::new(
        "benches/zepce-01/status",
        Status::last_will().to_json(),
        QoS::AtLeastOnce,
        true,
    ));
    refused(opts).await;
    assert_eq!(
        rig.event().await,
        BrokerEvent::Denied {
            client_id: "mostar-01".into(),
            reason: DenyReason::ForbiddenWill
        }
    );
}

#[tokio::test]
async fn a_reconnect_takes_over_and_both_connections_are_reported() {
    let mut rig = rig().await;
    let (_a, _arx, old) = connect(bench_options(rig.addr(), "maglaj-01")).await;
    assert_eq!(
        rig.event().await,
        BrokerEvent::Connected {
            bench: id("maglaj-01"),
            conn: 1
        }
    );
    let (b, _brx, _new) = connect(bench_options(rig.addr(), "maglaj-01")).await;
    // The takeover ends the old connection in another task, so the two events race; presence
    // keyed by `conn` does not care which comes first.
    let mut events = [rig.event().await, rig.event().await];
    events.sort_by_key(|e| matches!(e, BrokerEvent::Disconnected { .. }));
    assert_eq!(
        events,
        [
            BrokerEvent::Connected {
                bench: id("maglaj-01"),
                conn: 2
            },
            BrokerEvent::Disconnected {
                bench: id("maglaj-01"),
                conn: 1,
                clean: false
            }
        ]
    );
    timeout(DEADLINE, old)
        .await
        .expect("the old connection was not closed")
        .unwrap();
    assert_eq!(rig.broker.handle.connections(), 1);
    b.publish(
        "benches/maglaj-01/telemetry",
        QoS::AtLeastOnce,
        false,
        &b"still here"[..],
    )
    .await
    .unwrap();
    assert_eq!(rig.inbound().await.payload, Bytes::from_static(b"still here"));
}

#[tokio::test]
async fn thousands_of_messages_pass_the_link_in_order() {
    const N: usize = 5000;
    let mut rig = rig().await;
    let (client, _rx, _driver) = connect(bench_options(rig.addr(), "ravno-01")).await;
    let publisher = tokio::spawn(async move {
        for i in 0..N {
            client
                .publish("benches/ravno-01/telemetry", QoS::AtLeastOnce, false, i.to_string())
                .await
                .unwrap();
        }
        client
    });
    for i in 0..N {
        let m = rig.inbound().await;
        assert_eq!(std::str::from_utf8(&m.payload).unwrap(), i.to_string(), "message {i}");
    }
    let _client = publisher.await.unwrap();
    assert_eq!(rig.broker.handle.dropped_inbound(), 0);
    assert_eq!(rig.broker.handle.skipped_inbound(), 0);
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_while_the_broker_keeps_serving() {
    const N: usize = 300;
    let mut rig = rig_with(|s| s.queue_capacity = 4).await;
    let (client, _rx, _driver) = connect(bench_options(rig.addr(), "jablanica-01")).await;
    for i in 0..N {
        client
            .publish("benches/jablanica-01/telemetry", QoS::AtLeastOnce, false, i.to_string())
            .await
            .unwrap();
    }
    let handle = rig.broker.handle.clone();
    until("the queue overflowed", || handle.dropped_inbound() == (N - 4) as u64).await;

    // Still serving: another bench connects and the oldest four messages wait in the queue.
    let (_other, _orx, _odriver) = connect(bench_options(rig.addr(), "prijedor-01")).await;
    assert!(matches!(rig.event().await, BrokerEvent::Connected { .. }));
    assert!(matches!(rig.event().await, BrokerEvent::Connected { .. }));
    for i in 0..4 {
        assert_eq!(rig.inbound().await.payload, Bytes::from(i.to_string()));
    }
    client
        .publish("benches/jablanica-01/telemetry", QoS::AtLeastOnce, false, "after")
        .await
        .unwrap();
    assert_eq!(rig.inbound().await.payload, Bytes::from_static(b"after"));
    assert_eq!(handle.dropped_inbound(), (N - 4) as u64);
    assert_eq!(handle.skipped_inbound(), 0);
}

#[tokio::test]
async fn shutdown_ends_every_connection_and_closes_the_port() {
    let mut rig = rig().await;
    let addr = rig.addr();
    let (_a, _rx, driver) = connect(bench_options(addr, "nevesinje-01")).await;
    assert!(matches!(rig.event().await, BrokerEvent::Connected { .. }));
    rig.shutdown.cancel();
    timeout(DEADLINE, rig.broker.handle.stopped())
        .await
        .expect("broker did not stop");
    assert_eq!(
        rig.event().await,
        BrokerEvent::Disconnected {
            bench: id("nevesinje-01"),
            conn: 1,
            clean: false
        }
    );
    assert!(!rig.broker.handle.is_listening());
    assert_eq!(rig.broker.handle.connections(), 0);
    timeout(DEADLINE, driver)
        .await
        .expect("client not disconnected")
        .unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "port still open");
    assert!(matches!(
        rig.broker
            .handle
            .publish("benches/nevesinje-01/config", Bytes::from_static(b"x"), false),
        Err(BrokerError::Stopped)
    ));
    // The senders are gone, so consumers see the end of both streams.
    assert!(timeout(DEADLINE, rig.broker.events.recv()).await.unwrap().is_none());
    assert!(timeout(DEADLINE, rig.broker.inbound.recv()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_taken_port_is_a_bind_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = BrokerSettings::ephemeral();
    settings.listen = taken.local_addr().unwrap();
    let auth = Authenticator::new(Arc::new(Fleet::link4()), secret());
    let err = broker::start(settings, auth, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Bind { .. }), "{err}");
}

async fn mosquitto_pub(addr: SocketAddr, password: &str, message: &str) -> std::process::Output {
    mosquitto_pub_version(addr, password, message, "mqttv311").await
}

async fn mosquitto_pub_version(addr: SocketAddr, password: &str, message: &str, version: &str) -> std::process::Output {
    let port = addr.port().to_string();
    let args = [
        "-i",
        "mostar-01",
        "-u",
        "mostar-01",
        "-P",
        password,
        "-h",
        "127.0.0.1",
        "-p",
        &port,
    ];
    let child = tokio::process::Command::new("mosquitto_pub")
        .args(args)
        .args([
            "-V",
            version,
            "-t",
            "benches/mostar-01/telemetry",
            "-m",
            message,
            "-q",
            "1",
        ])
        .kill_on_drop(true)
        .output();
    timeout(DEADLINE, child)
        .await
        .expect("mosquitto_pub hung")
        .expect("mosquitto_pub (mosquitto-clients) is not installed")
}

#[tokio::test]
async fn mosquitto_pub_with_a_bench_token_publishes() {
    let mut rig = rig().await;
    let out = mosquitto_pub(rig.addr(), &token("mostar-01"), "{\"v\":1,\"from\":\"mosquitto\"}").await;
    assert!(
        out.status.success(),
        "mosquitto_pub failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = rig.inbound().await;
    assert_eq!(
        (m.topic.to_string().as_str(), &m.payload[..]),
        ("benches/mostar-01/telemetry", &b"{\"v\":1,\"from\":\"mosquitto\"}"[..])
    );
    assert_eq!(
        rig.event().await,
        BrokerEvent::Connected {
            bench: id("mostar-01"),
            conn: 1
        }
    );
    assert_eq!(
        rig.event().await,
        BrokerEvent::Disconnected {
            bench: id("mostar-01"),
            conn: 1,
            clean: true
        }
    );
}

#[tokio::test]
async fn mosquitto_pub_with_a_wrong_password_fails() {
    let mut rig = rig().await;
    let out = mosquitto_pub(rig.addr(), "wrong", "nope").await;
    assert!(!out.status.success(), "mosquitto_pub should have failed");
    assert_eq!(
        rig.event().await,
        BrokerEvent::Denied {
            client_id: "mostar-01".into(),
            reason: DenyReason::InvalidToken
        }
    );
    assert!(rig.broker.inbound.try_recv().is_err());
}

fn with_will(mut opts: MqttOptions, bench: &str) -> MqttOptions {
    let topic = format!("benches/{bench}/status");
    opts.set_last_will(LastWill::new(
        topic,
        Status::last_will().to_json(),
        QoS::AtLeastOnce,
        true,
    ));
    opts
}

#[tokio::test]
async fn a_takeover_publishes_no_will_and_the_new_connection_keeps_its_own() {
    // rumqttd 0.20 alone publishes the new connection's will when the old one is taken over
    // ("offline" while the bench is online) and then has none left for the new connection.
    let mut rig = rig().await;
    let addr = rig.addr();
    let (a, _arx, _adriver) = connect(with_will(bench_options(addr, "berkovici-01"), "berkovici-01")).await;
    a.publish("benches/berkovici-01/status", QoS::AtLeastOnce, true, &b"online-a"[..])
        .await
        .unwrap();
    assert_eq!(rig.inbound().await.payload, Bytes::from_static(b"online-a"));
    let (b, _brx, bdriver) = connect(with_will(bench_options(addr, "berkovici-01"), "berkovici-01")).await;
    b.publish("benches/berkovici-01/status", QoS::AtLeastOnce, true, &b"online-b"[..])
        .await
        .unwrap();
    b.publish("benches/berkovici-01/telemetry", QoS::AtLeastOnce, false, &b"sync"[..])
        .await
        .unwrap();
    assert_eq!(
        rig.inbound().await.payload,
        Bytes::from_static(b"online-b"),
        "no will on takeover"
    );
    assert_eq!(rig.inbound().await.payload, Bytes::from_static(b"sync"));

    bdriver.abort();
    let will = rig.inbound().await;
    assert_eq!(
        (will.topic.to_string(), Status::decode(&will.payload).unwrap()),
        ("benches/berkovici-01/status".into(), Status::last_will())
    );
    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(rig.event().await);
    }
    assert_eq!(
        events[0],
        BrokerEvent::Connected {
            bench: id("berkovici-01"),
            conn: 1
        }
    );
    assert!(events[1..3].contains(&BrokerEvent::Connected {
        bench: id("berkovici-01"),
        conn: 2
    }));
    assert!(events[1..3].contains(&BrokerEvent::Disconnected {
        bench: id("berkovici-01"),
        conn: 1,
        clean: false
    }));
    assert_eq!(
        events[3],
        BrokerEvent::Disconnected {
            bench: id("berkovici-01"),
            conn: 2,
            clean: false
        }
    );
}

#[tokio::test]
async fn a_clean_disconnect_publishes_no_will() {
    let mut rig = rig().await;
    let (a, _rx, driver) = connect(with_will(bench_options(rig.addr(), "kostajnica-01"), "kostajnica-01")).await;
    a.disconnect().await.unwrap();
    timeout(DEADLINE, driver).await.unwrap().unwrap();
    assert!(matches!(rig.event().await, BrokerEvent::Connected { .. }));
    assert!(matches!(
        rig.event().await,
        BrokerEvent::Disconnected { clean: true, .. }
    ));
    let (z, _zrx, _zdriver) = connect(bench_options(rig.addr(), "zepce-01")).await;
    z.publish("benches/zepce-01/telemetry", QoS::AtLeastOnce, false, &b"sync"[..])
        .await
        .unwrap();
    assert_eq!(
        rig.inbound().await.payload,
        Bytes::from_static(b"sync"),
        "no will after DISCONNECT"
    );
}

/// The control for `bad_client_ids_twice_do_not_poison_the_listener`: plain rumqttd 0.20 with its
/// own codec falls into the trap, so that test would catch the gate letting such ids through. If
/// this starts failing, rumqttd fixed the bug.
#[tokio::test]
async fn plain_rumqttd_is_poisoned_by_a_bad_client_id_connecting_twice() {
    use rumqttd::{ConnectionSettings, LinkType, RouterConfig, Server, ServerSettings, protocol::v4::V4};
    let router = rumqttd::Router::new(
        0,
        RouterConfig {
            max_connections: 10,
            max_outgoing_packet_count: 100,
            max_segment_size: 64 * 1024,
            max_segment_count: 2,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
    );
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let settings = ServerSettings {
        name: "plain".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 0,
        connections: ConnectionSettings {
            connection_timeout_ms: 5000,
            max_payload_size: 16 * 1024,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: false,
        },
    };
    let mut server = Server::new(settings, router.spawn(), V4);
    let server = tokio::spawn(async move { server.start(LinkType::Remote).await });
    let deadline = Instant::now() + DEADLINE;
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "plain rumqttd did not start listening");
        tokio::task::yield_now().await;
    }

    let plain = |client_id: &str| MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
    refused(plain("bad/id")).await;
    refused(plain("bad/id")).await; // panics inside rumqttd while holding its will-map lock
    let err = refused(plain("good-id")).await;
    println!("a valid client after the poisoning: {err}");
    server.abort();
}

#[tokio::test]
async fn a_silent_bench_is_dropped_after_one_and_a_half_keep_alives_and_its_will_fires() {
    use rumqttd::protocol::{Connect, LastWill as Will, Login, Packet as Raw, Protocol, QoS as RawQoS, v4::V4};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut rig = rig().await;
    let connect = Connect {
        keep_alive: 1,
        client_id: "novi-grad-01".into(),
        clean_session: true,
    };
    let will = Will {
        topic: Bytes::from_static(b"benches/novi-grad-01/status"),
        message: Bytes::from(Status::last_will().to_json()),
        qos: RawQoS::AtLeastOnce,
        retain: true,
    };
    let login = Login {
        username: "novi-grad-01".into(),
        password: token("novi-grad-01"),
    };
    let mut bytes = bytes::BytesMut::new();
    V4.write(Raw::Connect(connect, None, Some(will), None, Some(login)), &mut bytes)
        .unwrap();
    let mut socket = tokio::net::TcpStream::connect(rig.addr()).await.unwrap();
    socket.write_all(&bytes).await.unwrap();
    let mut connack = [0u8; 4];
    timeout(DEADLINE, socket.read_exact(&mut connack))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(connack, [0x20, 0x02, 0x00, 0x00], "CONNACK, accepted");
    let connected_at = Instant::now();
    assert_eq!(
        rig.event().await,
        BrokerEvent::Connected {
            bench: id("novi-grad-01"),
            conn: 1
        }
    );

    // The socket stays open but silent: no PINGREQ.
    assert_eq!(
        rig.event().await,
        BrokerEvent::Disconnected {
            bench: id("novi-grad-01"),
            conn: 1,
            clean: false
        }
    );
    assert!(
        connected_at.elapsed() >= Duration::from_millis(1400),
        "dropped after {:?}",
        connected_at.elapsed()
    );
    assert_eq!(
        Status::decode(&rig.inbound().await.payload).unwrap(),
        Status::last_will()
    );
    let mut rest = Vec::new();
    let read = timeout(DEADLINE, socket.read_to_end(&mut rest)).await.unwrap();
    assert!(read.is_err() || rest.is_empty(), "the broker closed the socket");
}

/// Records `(target, level, message)` of every event it sees.
#[derive(Clone, Default)]
struct Recorder(Arc<std::sync::Mutex<Vec<(String, tracing::Level, String)>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Recorder {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((meta.target().to_owned(), *meta.level(), message.0));
    }
}

impl Recorder {
    fn rumqttd(&self, at_least: tracing::Level) -> Vec<(String, tracing::Level, String)> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|(target, level, _)| target.starts_with("rumqttd") && *level <= at_least)
            .cloned()
            .collect()
    }
}

#[tokio::test]
async fn quiet_targets_silence_rumqttds_routine_errors() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::{EnvFilter, Layer};

    // Global, so the broker's own threads report here too; every test in this binary then
    // contributes, which only widens what the assertion covers.
    let everything = Recorder::default();
    let filtered = Recorder::default();
    // Info, not trace: the other tests run in this process meanwhile.
    let filter = EnvFilter::new(format!("info,{}", broker::QUIET_TARGETS));
    let subscriber = tracing_subscriber::registry()
        .with(everything.clone().with_filter(EnvFilter::new("warn,rumqttd=info")))
        .with(filtered.clone().with_filter(filter));
    tracing::subscriber::set_global_default(subscriber).expect("only this test installs a subscriber");

    let mut rig = rig().await;
    let addr = rig.addr();
    refused(options(addr, "mostar-01", "mostar-01", "wrong")).await; // refused CONNECT
    let (a, _rx, driver) = connect(bench_options(addr, "mostar-01")).await;
    a.publish("benches/zepce-01/telemetry", QoS::AtLeastOnce, false, &b"x"[..])
        .await
        .unwrap(); // ACL
    timeout(DEADLINE, driver).await.unwrap().unwrap();
    let (_b, _rx, _old) = connect(bench_options(addr, "zepce-01")).await;
    let (c, _rx, _new) = connect(bench_options(addr, "zepce-01")).await; // takeover
    let (_d, _rx, abrupt) = connect(bench_options(addr, "ravno-01")).await;
    abrupt.abort(); // abrupt disconnect
    c.disconnect().await.unwrap(); // clean disconnect
    let mut seen = 0;
    while seen < 6 {
        if let BrokerEvent::Disconnected { .. } | BrokerEvent::Denied { .. } | BrokerEvent::AclViolation { .. } =
            rig.event().await
        {
            seen += 1;
        }
    }
    // rumqttd logs each end after the gate reported it; wait for those lines.
    until("rumqttd logged every connection end", || {
        let ends = everything
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _, m)| t == "rumqttd::server::broker" && (m == "disconnected" || m == "router-drop"))
            .count();
        ends >= 4
    })
    .await;
    let noise = everything.rumqttd(tracing::Level::ERROR);
    assert!(!noise.is_empty(), "the scenario should make rumqttd log routine errors");
    let leaked = filtered.rumqttd(tracing::Level::WARN);
    assert!(
        leaked.is_empty(),
        "rumqttd logs passing QUIET_TARGETS: {leaked:#?}\nall rumqttd errors: {noise:#?}"
    );
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// 100 000 messages as fast as one bench can send them all reach the control plane through the
/// link (30 MB, inside the 64 MB link log), and on the way it prints what bench subscriptions,
/// retained configs and link traffic cost in memory. The figures mean something only in a
/// process of its own: `cargo test -p control-plane --release --test broker measure_memory --
/// --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_memory() {
    const BENCHES: u32 = 500;
    const MESSAGES: usize = 100_000;
    let settings = BrokerSettings {
        max_connections: 2000,
        queue_capacity: MESSAGES + 10,
        ..BrokerSettings::ephemeral()
    };
    let fleet = Fleet::link4().with_load_test_benches(BENCHES);
    let auth = Authenticator::new(Arc::new(fleet), secret());
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let mut b = broker::start(settings.clone(), auth, shutdown).await.unwrap();
    let addr = b.local_addr;

    let mut clients = Vec::new();
    for i in 1..=BENCHES {
        let bench = protocol::fleet::load_test_id(i);
        let mut o = bench_options(addr, &bench);
        o.set_keep_alive(Duration::from_secs(60));
        clients.push((bench, connect(o).await));
    }
    let rss_connected = rss_bytes();
    for (bench, (c, rx, _)) in &mut clients {
        c.subscribe(format!("benches/{bench}/config"), QoS::AtLeastOnce)
            .await
            .unwrap();
        c.subscribe(format!("benches/{bench}/ideas/ack"), QoS::AtLeastOnce)
            .await
            .unwrap();
        let mut acks = 0;
        while acks < 2 {
            if let Packet::SubAck(_) = timeout(DEADLINE, rx.recv()).await.unwrap().unwrap() {
                acks += 1;
            }
        }
    }
    let rss_subscribed = rss_bytes();
    for (bench, (_, rx, _)) in &mut clients {
        b.handle
            .publish(&format!("benches/{bench}/config"), Bytes::from(vec![b'c'; 1024]), true)
            .unwrap();
        next_publish(rx).await;
    }
    let rss_config = rss_bytes();
    let payload = vec![b't'; 300];
    let (c, _) = (&clients[0].1.0, ());
    let topic = format!("benches/{}/telemetry", clients[0].0);
    let started = Instant::now();
    let sender = {
        let c = c.clone();
        let topic = topic.clone();
        tokio::spawn(async move {
            for _ in 0..MESSAGES {
                c.publish(&topic, QoS::AtMostOnce, false, payload.clone())
                    .await
                    .unwrap();
            }
        })
    };
    let mut received = 0;
    while received < MESSAGES {
        match timeout(Duration::from_secs(2), b.inbound.recv()).await {
            Ok(Some(_)) => received += 1,
            _ => break,
        }
    }
    sender.await.unwrap();
    println!(
        "received {received} of {MESSAGES}, skipped {} dropped {}",
        b.handle.skipped_inbound(),
        b.handle.dropped_inbound()
    );
    let elapsed = started.elapsed();
    let rss_flood = rss_bytes();
    let mib = |x: u64| x as f64 / (1024.0 * 1024.0);
    println!("rss after {BENCHES} connections: {:.1} MiB", mib(rss_connected));
    println!(
        "2 filters per bench: +{:.1} MiB = {:.1} KiB per filter",
        mib(rss_subscribed - rss_connected),
        (rss_subscribed - rss_connected) as f64 / 1024.0 / f64::from(2 * BENCHES)
    );
    println!(
        "1 KiB retained config per bench: +{:.1} MiB",
        mib(rss_config.saturating_sub(rss_subscribed))
    );
    println!(
        "{MESSAGES} x 300 B telemetry through the link in {elapsed:?} ({:.0}/s): +{:.1} MiB (link log cap {} MiB counted as topic+payload)",
        MESSAGES as f64 / elapsed.as_secs_f64(),
        mib(rss_flood.saturating_sub(rss_config)),
        settings.link_log_bytes() / (1024 * 1024)
    );
    assert_eq!(b.handle.dropped_inbound() + b.handle.skipped_inbound(), 0);
}

#[tokio::test]
async fn mosquitto_pub_speaking_mqtt5_is_refused_as_unsupported() {
    let mut rig = rig().await;
    let out = mosquitto_pub_version(rig.addr(), &token("mostar-01"), "v5", "mqttv5").await;
    assert!(!out.status.success(), "an MQTT 5 client should be refused");
    assert_eq!(
        rig.event().await,
        BrokerEvent::Denied {
            client_id: String::new(),
            reason: DenyReason::UnsupportedProtocol
        }
    );
}

#[tokio::test]
async fn max_connections_refuses_the_next_bench_until_one_leaves() {
    let mut rig = rig_with(|s| s.max_connections = 1).await;
    let (a, _arx, adriver) = connect(bench_options(rig.addr(), "mostar-01")).await;
    assert!(matches!(rig.event().await, BrokerEvent::Connected { .. }));
    refused(bench_options(rig.addr(), "zepce-01")).await;
    assert_eq!(
        rig.event().await,
        BrokerEvent::Denied {
            client_id: "zepce-01".into(),
            reason: DenyReason::ServerFull
        }
    );
    a.disconnect().await.unwrap();
    timeout(DEADLINE, adriver).await.unwrap().unwrap();
    assert!(matches!(
        rig.event().await,
        BrokerEvent::Disconnected { clean: true, .. }
    ));
    let (_z, _zrx, _zdriver) = connect(bench_options(rig.addr(), "zepce-01")).await;
    assert_eq!(
        rig.event().await,
        BrokerEvent::Connected {
            bench: id("zepce-01"),
            conn: 2
        }
    );
}
