//! Presence against the real binary: a bench taken over by a new connection with its client id
//! (rumqttd ends the old one) never went offline; a bench that drops for longer than the
//! takeover grace (5 s by default) is offline from the moment it dropped.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use chrono::Utc;
use control_plane::store::{self, Store};
use protocol::BenchState;
use protocol::api::BenchDetail;
use tests::{ControlPlane, connect_bench, eventually, recent_status_events};

const WAIT: Duration = Duration::from_secs(20);
const TAKEOVERS: usize = 5;

async fn detail(cp: &ControlPlane, token: &str, bench: &str) -> BenchDetail {
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/benches/{bench}", cp.api))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET the bench");
    assert_eq!(response.status(), 200);
    response.json().await.expect("a bench detail")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_takeover_is_not_an_outage_and_a_drop_longer_than_the_grace_is() {
    let cp = ControlPlane::start(&[]);
    let store: std::sync::Arc<dyn Store> = store::connect(&cp.database_url, &Default::default())
        .await
        .expect("open the control plane's store");
    let viewer = cp.token("viewer", "presence-test", &[]);
    let mostar = cp.token("bench", "mostar-01", &[]);
    let ravno = cp.token("bench", "ravno-01", &[]);

    let (_old, old_loop) = connect_bench(&cp, "mostar-01", &mostar).await;
    let (_ravno, ravno_loop) = connect_bench(&cp, "ravno-01", &ravno).await;
    let online = eventually("mostar-01 online in the store", WAIT, || async {
        let ev = recent_status_events(store.as_ref(), "mostar-01").await;
        ev.into_iter().find(|e| e.state == BenchState::Online)
    })
    .await;
    eventually("ravno-01 online in the store", WAIT, || async {
        let ev = recent_status_events(store.as_ref(), "ravno-01").await;
        ev.iter().any(|e| e.state == BenchState::Online).then_some(())
    })
    .await;

    // Takeovers: the same client id and token again; the broker ends the old connection. Its
    // drop and the new connection's CONNACK race, so take over a few times to see both orders.
    let (mut _client, mut live) = (_old, old_loop);
    for round in 1..=TAKEOVERS {
        let (client, task) = connect_bench(&cp, "mostar-01", &mostar).await;
        tokio::time::timeout(WAIT, live)
            .await
            .unwrap_or_else(|_| panic!("takeover {round}: the broker to end the old connection"))
            .unwrap();
        (_client, live) = (client, task);
    }

    // A real drop after the takeover: once its offline is in, the takeover's grace has run out
    // as well (one tick settles both, in order).
    let dropped_at = Utc::now();
    ravno_loop.abort();
    let _ = ravno_loop.await;
    let offline = eventually("ravno-01 offline in the store", WAIT, || async {
        let ev = recent_status_events(store.as_ref(), "ravno-01").await;
        ev.into_iter().find(|e| e.state == BenchState::Offline)
    })
    .await;
    let recorded_by = Utc::now();

    // The taken-over bench: one online since the first connection, nothing in between.
    let events = recent_status_events(store.as_ref(), "mostar-01").await;
    let seen: Vec<_> = events.iter().map(|e| (e.state, e.cause.as_str())).collect();
    assert_eq!(seen, [(BenchState::Online, "connected")], "{events:?}");
    let mostar_now = detail(&cp, &viewer, "mostar-01").await;
    assert_eq!(mostar_now.bench.state, BenchState::Online);
    let since = mostar_now.bench.since.expect("since");
    assert!(
        (since - online.at).abs() < chrono::Duration::milliseconds(1),
        "online since the first connection ({}), not the takeover: {since}",
        online.at
    );
    assert!(
        mostar_now.recent_status.iter().all(|c| c.state != BenchState::Offline),
        "{:?}",
        mostar_now.recent_status
    );
    assert_eq!(offline.cause, "disconnected", "{offline:?}");
    let lag = offline.at - dropped_at;
    assert!(
        // SQLite keeps milliseconds.
        lag > -chrono::Duration::milliseconds(1) && lag < chrono::Duration::seconds(2),
        "offline is dated at the drop ({dropped_at}), not when the grace ran out: {offline:?}"
    );
    assert!(
        recorded_by - offline.at >= chrono::Duration::seconds(4),
        "the drop was recorded before the grace ran out: {offline:?} at {recorded_by}"
    );
    let ravno_now = detail(&cp, &viewer, "ravno-01").await;
    assert_eq!(ravno_now.bench.state, BenchState::Offline);
    assert_eq!(cp.metric("benchfleet_bench_up{bench=\"mostar-01\"}").await, Some(1.0));
    assert_eq!(cp.metric("benchfleet_bench_up{bench=\"ravno-01\"}").await, Some(0.0));
}
