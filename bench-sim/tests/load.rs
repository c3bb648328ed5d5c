//! The load generator against a real Mosquitto, at small scale.

#![allow(clippy::unwrap_used)]

#[path = "support/mosquitto.rs"]
mod mosquitto;

use std::time::Duration;

use bench_sim::load::{LoadOptions, Phase, Rate, run_load};
use mosquitto::{Mosquitto, Observer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_benches_qos1_lose_nothing_and_report_honestly() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/+/telemetry", false).await;
    let mut opts = LoadOptions::new(
        m.url().parse().unwrap(),
        50,
        Rate::per_second(2.0),
        Duration::from_secs(3),
    );
    opts.connect_rate = Rate::per_second(500.0);
    let mut phases = Vec::new();
    let report = run_load(opts, |p| phases.push(p.phase)).await.unwrap();

    assert_eq!(report.connected, 50);
    assert_eq!(report.connect_failed, 0);
    // 50 benches × 2/s × 3 s, spread evenly: exactly 300 on the schedule.
    assert_eq!(report.offered, 300);
    assert_eq!(report.acked, 300, "{report}");
    assert_eq!(report.lost, 0);
    assert!((report.msgs_per_s - 100.0).abs() < 10.0, "{report}");
    let l = report.latency_ms;
    assert_eq!(l.count, 300);
    assert!(l.p50.unwrap() > 0.0 && l.p50 <= l.p99 && l.p99 <= l.max, "{l:?}");
    assert!(l.max.unwrap() < 5000.0, "loopback acks within seconds: {l:?}");
    assert!(phases.contains(&Phase::Sending));

    // The broker really got them, with bench ids as topics.
    obs.wait_for("300 messages", Duration::from_secs(10), |msgs| {
        (msgs.len() >= 300).then_some(())
    })
    .await;
    let msgs = obs.messages();
    assert!(msgs.iter().any(|m| m.topic == "benches/load-000001/telemetry"));
    assert!(msgs.iter().any(|m| m.topic == "benches/load-000050/telemetry"));
    assert!(
        msgs.iter()
            .all(|m| protocol::Telemetry::decode(&m.payload, chrono::Utc::now()).is_ok())
    );

    let json = report.to_json();
    for key in [
        "connected",
        "offered",
        "acked",
        "lost",
        "msgs_per_s",
        "p50_ms",
        "p99_ms",
        "max_ms",
    ] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }
    assert_eq!(json["lost"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_broker_means_failed_connections_not_a_hang() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut opts = LoadOptions::new(
        format!("mqtt://127.0.0.1:{port}").parse().unwrap(),
        5,
        Rate::per_second(1.0),
        Duration::from_secs(1),
    );
    opts.connect_grace = Duration::from_secs(5);
    let started = std::time::Instant::now();
    let report = run_load(opts, |_| {}).await.unwrap();
    assert_eq!((report.connected, report.connect_failed, report.offered), (0, 5, 0));
    assert!(report.first_error.is_some());
    assert!(started.elapsed() < Duration::from_secs(15));
}
