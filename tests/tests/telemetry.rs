//! A bench connects to the real control-plane binary over TCP MQTT, proves who it is, and its
//! telemetry lands in the store — on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use chrono::Utc;
use control_plane::store::{self, Store};
use rumqttc::{AsyncClient, Event, Packet, QoS};
use tests::{
    ControlPlane, bench_options, connect_bench, eventually, recent_status_events, recent_telemetry, telemetry,
    wait_connack,
};

const WAIT: Duration = Duration::from_secs(20);

async fn open(cp: &ControlPlane) -> std::sync::Arc<dyn Store> {
    store::connect(&cp.database_url, &Default::default())
        .await
        .expect("open the control plane's store")
}

async fn story(database_url: Option<&str>) {
    let cp = ControlPlane::start_with(database_url, &[]);
    let token = cp.token("bench", "mostar-01", &[]);
    let (client, _loop) = connect_bench(&cp, "mostar-01", &token).await;
    client
        .publish(
            "benches/mostar-01/status",
            QoS::AtLeastOnce,
            true,
            r#"{"v":1,"state":"online","fw":"1.4.2","config_version":3}"#,
        )
        .await
        .unwrap();
    for seq in 1..=5 {
        client
            .publish(
                "benches/mostar-01/telemetry",
                QoS::AtLeastOnce,
                false,
                telemetry(seq, 50.0 + seq as f64),
            )
            .await
            .unwrap();
    }
    // The same sample twice is stored once.
    let again = telemetry(6, 90.0);
    client
        .publish("benches/mostar-01/telemetry", QoS::AtLeastOnce, false, again.clone())
        .await
        .unwrap();
    client
        .publish("benches/mostar-01/telemetry", QoS::AtLeastOnce, false, again)
        .await
        .unwrap();

    let store = open(&cp).await;
    let stored = eventually("6 telemetry rows", WAIT, || async {
        let r = recent_telemetry(store.as_ref(), "mostar-01").await;
        (r.len() >= 6).then_some(r)
    })
    .await;
    assert_eq!(stored.len(), 6, "a duplicate was stored twice");
    let batteries: Vec<f64> = stored.iter().map(|r| r.battery_pct).collect();
    assert_eq!(batteries, [51.0, 52.0, 53.0, 54.0, 55.0, 90.0]);
    assert_eq!(stored[2].rx_bytes, Some(3000));
    assert_eq!(stored[2].load_w, Some(7.5));
    assert_eq!(stored[2].battery_v, None);

    // Presence: online, with firmware and config version from the retained status.
    let events = eventually("an online status event", WAIT, || async {
        let ev = recent_status_events(store.as_ref(), "mostar-01").await;
        ev.iter().any(|e| e.state == protocol::BenchState::Online).then_some(ev)
    })
    .await;
    assert_eq!(events[0].cause, "connected");

    // Bad payloads are dropped and counted; the bench stays connected and usable.
    let oversized = format!(r#"{{"v":1,"pad":"{}"}}"#, "x".repeat(17 * 1024));
    for bad in [
        "{not json".to_owned(),
        r#"{"v":1,"ts":"2026-01-01T00:00:00Z","seq":"one","power":{"solar_w":1,"battery_pct":1}}"#.to_owned(),
        oversized,
    ] {
        client
            .publish("benches/mostar-01/telemetry", QoS::AtLeastOnce, false, bad)
            .await
            .unwrap();
    }
    client
        .publish(
            "benches/mostar-01/telemetry",
            QoS::AtLeastOnce,
            false,
            telemetry(7, 11.0),
        )
        .await
        .unwrap();
    eventually("the sample after the bad ones", WAIT, || async {
        (recent_telemetry(store.as_ref(), "mostar-01").await.len() == 7).then_some(())
    })
    .await;
    for reason in ["malformed_json", "invalid_type", "oversized"] {
        let series = format!("benchfleet_mqtt_messages_dropped_total{{reason=\"{reason}\"}}");
        assert_eq!(cp.metric(&series).await, Some(1.0), "{series}");
    }
    assert!(cp.log().contains("telemetry dropped"), "drops must be logged");

    let status = cp.stop();
    assert!(
        status.success(),
        "control plane should exit cleanly on SIGTERM: {status}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn telemetry_is_stored_on_sqlite() {
    story(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn telemetry_is_stored_on_postgres() {
    let Some(db) = store::testing::pg_database().await else {
        return;
    };
    story(Some(db.url())).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn last_will_on_an_abrupt_drop_marks_the_bench_offline() {
    let cp = ControlPlane::start(&[]);
    let token = cp.token("bench", "ravno-01", &[]);
    let (client, eventloop) = connect_bench(&cp, "ravno-01", &token).await;
    client
        .publish(
            "benches/ravno-01/telemetry",
            QoS::AtLeastOnce,
            false,
            telemetry(1, 60.0),
        )
        .await
        .unwrap();
    let store = open(&cp).await;
    eventually("the first row", WAIT, || async {
        (!recent_telemetry(store.as_ref(), "ravno-01").await.is_empty()).then_some(())
    })
    .await;
    // Dropping the event loop closes the socket without DISCONNECT: an abrupt drop.
    eventloop.abort();
    let _ = eventloop.await;
    drop(client);
    let offline = eventually("an offline status event", WAIT, || async {
        let ev = recent_status_events(store.as_ref(), "ravno-01").await;
        ev.into_iter().find(|e| e.state == protocol::BenchState::Offline)
    })
    .await;
    assert!(
        ["disconnected", "last_will"].contains(&offline.cause.as_str()),
        "{offline:?}"
    );
    assert_eq!(cp.metric("benchfleet_bench_up{bench=\"ravno-01\"}").await, Some(0.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bench_cannot_write_into_another_benchs_rows() {
    let cp = ControlPlane::start(&[]);
    let token = cp.token("bench", "mostar-01", &[]);
    let (client, _loop) = connect_bench(&cp, "mostar-01", &token).await;
    client
        .publish(
            "benches/trebinje-01/telemetry",
            QoS::AtLeastOnce,
            false,
            telemetry(1, 10.0),
        )
        .await
        .unwrap();
    eventually("the ACL violation to be counted", WAIT, || async {
        (cp.metric("benchfleet_mqtt_acl_violations_total").await == Some(1.0)).then_some(())
    })
    .await;
    let store = open(&cp).await;
    assert!(recent_telemetry(store.as_ref(), "trebinje-01").await.is_empty());
    // The offender was disconnected: it is no longer among the live connections.
    eventually("the offender to be disconnected", WAIT, || async {
        (cp.metric("benchfleet_mqtt_connections").await == Some(0.0)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_expired_and_unknown_credentials_are_refused() {
    let cp = ControlPlane::start(&[]);
    let secret_text = std::fs::read_to_string(cp.data_dir().join("jwt.secret")).unwrap();
    let secret = protocol::token::Secret::new(secret_text.trim().as_bytes().to_vec());
    let mut expired = protocol::Claims::new(protocol::Role::Bench, "mostar-01", Duration::from_secs(60));
    expired.exp = Utc::now().timestamp() - 60;
    let unknown = protocol::Claims::new(protocol::Role::Bench, "atlantis-01", Duration::from_secs(60));
    let viewer = cp.token("viewer", "mostar-01", &[]);
    let other = cp.token("bench", "zepce-01", &[]);
    let cases = [
        ("mostar-01", "not-a-token".to_owned(), "wrong password"),
        ("mostar-01", secret.sign(&expired), "expired token"),
        ("atlantis-01", secret.sign(&unknown), "unknown bench"),
        ("mostar-01", viewer, "a person's token"),
        ("mostar-01", other, "another bench's token"),
    ];
    for (bench, token, what) in cases {
        let (_client, mut eventloop) = AsyncClient::new(bench_options(&cp, bench, &token), 10);
        assert!(wait_connack(&mut eventloop).await.is_err(), "{what} was accepted");
    }
    eventually("the refusals to be counted", WAIT, || async {
        let text = cp.get("/metrics").await;
        let denied: f64 = text
            .lines()
            .filter(|l| l.starts_with("benchfleet_mqtt_connections_denied_total"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        (denied == 5.0).then_some(())
    })
    .await;
    assert!(
        !cp.log().contains(&secret_text.trim().to_owned()),
        "the secret must never be logged"
    );
    // The harness sets BENCHFLEET_LOG=info,control_plane=debug; rumqttd's routine ERROR line
    // for every refused CONNECT stays out all the same.
    let log = cp.log();
    assert!(
        !log.contains("rumqttd::server::broker"),
        "rumqttd's refusal noise reached the log:\n{log}"
    );
}

/// A bench that subscribes to `telemetry/ack` learns which samples are in the database: every
/// sample it sent is acknowledged, and everything acknowledged is stored.
async fn storage_acks(database_url: Option<&str>) {
    let cp = ControlPlane::start_with(database_url, &[]);
    let token = cp.token("bench", "maglaj-01", &[]);
    let opts = bench_options(&cp, "maglaj-01", &token);
    let (client, mut eventloop) = AsyncClient::new(opts, 200);
    wait_connack(&mut eventloop).await.expect("bench should be accepted");
    let (acks_tx, mut acks) = tokio::sync::mpsc::unbounded_channel();
    let _loop = tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                let _ = acks_tx.send((p.topic.clone(), p.payload.to_vec()));
            }
        }
    });
    client
        .subscribe("benches/maglaj-01/telemetry/ack", QoS::AtLeastOnce)
        .await
        .unwrap();
    // The subscription is in place once the retained config (subscribed after it) arrives.
    client
        .subscribe("benches/maglaj-01/config", QoS::AtLeastOnce)
        .await
        .unwrap();
    tokio::time::timeout(WAIT, async {
        while let Some((topic, _)) = acks.recv().await {
            if topic == "benches/maglaj-01/config" {
                break;
            }
        }
    })
    .await
    .expect("the retained configuration");

    const SAMPLES: u64 = 50;
    for seq in 1..=SAMPLES {
        client
            .publish(
                "benches/maglaj-01/telemetry",
                QoS::AtLeastOnce,
                false,
                telemetry(seq, 60.0),
            )
            .await
            .unwrap();
    }
    let mut acked = std::collections::BTreeSet::new();
    tokio::time::timeout(WAIT, async {
        while acked.len() < SAMPLES as usize {
            let (topic, payload) = acks.recv().await.expect("event loop ended");
            if topic != "benches/maglaj-01/telemetry/ack" {
                continue;
            }
            let ack = protocol::TelemetryAck::decode(&payload).expect("a valid storage ack");
            acked.extend((1..=SAMPLES).filter(|s| ack.contains(*s)));
        }
    })
    .await
    .unwrap_or_else(|_| panic!("storage acks for {SAMPLES} samples; got {acked:?}"));

    // Acknowledged means committed: the rows are there the moment the ack is.
    let store = open(&cp).await;
    let stored = recent_telemetry(store.as_ref(), "maglaj-01").await;
    let seqs: std::collections::BTreeSet<u64> = stored.iter().map(|r| r.seq as u64).collect();
    assert_eq!(seqs, acked);
    assert_eq!(
        cp.metric("benchfleet_ingest_storage_acked_rows_total").await,
        Some(SAMPLES as f64)
    );
    assert!(cp.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_acks_confirm_what_is_stored_on_sqlite() {
    storage_acks(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_acks_confirm_what_is_stored_on_postgres() {
    let Some(db) = store::testing::pg_database().await else {
        return;
    };
    storage_acks(Some(db.url())).await;
}
