//! Fleet data for the dashboards, through the real MQTT path of the running control plane.
//!
//! 1. History: a day and a half of telemetry from 11 benches with past timestamps (as
//!    store-and-forward firmware sends it). The physics is simple but shaped like the real thing:
//!    solar follows the winter sun over Bosnia and Herzegovina, usage follows daylight, the battery
//!    integrates solar minus load, counters count since boot, mostar-01 reboots half-way and ends
//!    with a fault. Then mostar-01 announces a planned sleep and trebinje-01 drops off abruptly.
//!    While the benches are connected, their kiosks send citizens' ideas (`participation`).
//! 2. Now: the other 9 benches disconnect and the simulator (`bench-sim`) runs them live, with
//!    injected faults: ravno-01 drops and reconnects, zepce-01's battery fails, maglaj-01
//!    reboots. kostajnica-01 never connects.

use std::f64::consts::PI;
use std::time::Duration;

use bench_sim::{Broker, Credentials, Fault, FleetOptions, SimFleet};
use chrono::{DateTime, Timelike, Utc};
use protocol::{Claims, Fleet, Role};
use rumqttc::{AsyncClient, Event, LastWill, Packet, QoS};
use serde_json::json;
use sqlx::PgPool;
use tests::{ControlPlane, bench_options, eventually};
use tokio_util::sync::CancellationToken;

use super::participation;

/// How much history, and how often the benches sampled it.
pub const HISTORY_HOURS: i64 = 30;
pub const SAMPLE_MINUTES: i64 = 10;
/// The bench that never connects: presence `never_seen`.
pub const NEVER_SEEN: &str = "kostajnica-01";
/// Reboots half-way (counters reset), reports `sensor_stuck` at the end, and finally announces
/// a planned sleep. The bench detail dashboard opens on it.
pub const MOSTAR: &str = "mostar-01";
/// Simulated; drops off abruptly and comes back: a closed outage.
pub const RAVNO: &str = "ravno-01";
/// Simulated; its battery fails.
pub const ZEPCE: &str = "zepce-01";
/// Simulated; reboots.
pub const MAGLAJ: &str = "maglaj-01";
/// Drops off abruptly and stays away: an ongoing outage.
pub const TREBINJE: &str = "trebinje-01";

const WAIT: Duration = Duration::from_secs(60);

/// The benches' connections and the simulator, kept running for the rest of the test.
pub struct Connected {
    _clients: Vec<(AsyncClient, tokio::task::JoinHandle<()>)>,
    sim: Option<SimFleet>,
    stop: CancellationToken,
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.stop.cancel();
        drop(self.sim.take());
    }
}

/// Sends the history and the presence changes; returns once the store holds all of it.
pub async fn publish(cp: &ControlPlane, db: &PgPool) -> Connected {
    let secret_text = std::fs::read_to_string(cp.data_dir().join("jwt.secret")).expect("jwt.secret");
    let secret = protocol::token::Secret::new(secret_text.trim().as_bytes().to_vec());
    let token = |bench: &str| secret.sign(&Claims::new(Role::Bench, bench, Duration::from_secs(3600)));
    let now = Utc::now();
    let benches: Vec<String> = Fleet::link4()
        .iter()
        .map(|b| b.id.to_string())
        .filter(|id| id != NEVER_SEEN)
        .collect();

    let network = participation::organise(cp).await;
    let mut clients = Vec::new();
    let mut expected_rows = 0;
    let mut sessions = Vec::new();
    for (index, bench) in benches.iter().enumerate() {
        let (client, task) = connect(cp, bench, &token(bench)).await;
        client
            .publish(
                format!("benches/{bench}/status"),
                QoS::AtLeastOnce,
                true,
                json!({"v": 1, "state": "online", "fw": "1.4.2", "config_version": 3}).to_string(),
            )
            .await
            .expect("status");
        let samples = history(bench, index, now);
        expected_rows += samples.len();
        let c = client.clone();
        let topic = format!("benches/{bench}/telemetry");
        sessions.push(tokio::spawn(async move {
            for s in samples {
                c.publish(topic.as_str(), QoS::AtLeastOnce, false, s.to_string())
                    .await
                    .expect("telemetry");
            }
        }));
        clients.push((bench.clone(), client, task));
    }
    for s in sessions {
        s.await.expect("publisher");
    }
    eventually(
        &format!("{expected_rows} telemetry rows in the store"),
        WAIT,
        || async {
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM telemetry")
                .fetch_one(db)
                .await
                .ok()?;
            (n == expected_rows as i64).then_some(())
        },
    )
    .await;
    let kiosks: Vec<(&str, &AsyncClient)> = clients.iter().map(|(b, c, _)| (b.as_str(), c)).collect();
    participation::submit(db, &kiosks).await;
    participation::act(cp, db, &network).await;

    // Presence: mostar-01 sleeps on purpose, trebinje-01 drops.
    let mut kept = Vec::new();
    let mut handed_over = Vec::new();
    for (bench, client, task) in clients {
        match bench.as_str() {
            MOSTAR => {
                let until = now + chrono::Duration::hours(2);
                client
                    .publish(
                        format!("benches/{bench}/status"),
                        QoS::AtLeastOnce,
                        true,
                        json!({"v": 1, "state": "sleeping", "until": until}).to_string(),
                    )
                    .await
                    .expect("sleeping");
                kept.push((client, task));
            }
            TREBINJE => {
                // No DISCONNECT: the broker publishes the Last Will.
                task.abort();
                let _ = task.await;
                drop(client);
            }
            // The simulator takes over from here, after a clean disconnect: a short drop each.
            // (A session takeover with the same client id would avoid it, but rumqttd's takeover
            // sometimes leaves the new session deaf.)
            _ => {
                // Best effort: a connection that already ended is just as gone.
                let _ = client.disconnect().await;
                let _ = tokio::time::timeout(WAIT, task).await;
                handed_over.push(bench);
            }
        }
    }
    wait_for_state(db, MOSTAR, "sleeping").await;
    wait_for_state(db, TREBINJE, "offline").await;
    for bench in &handed_over {
        wait_for_state(db, bench, "offline").await;
    }

    let (sim, stop) = simulate(cp, db, now).await;
    Connected {
        _clients: kept,
        sim: Some(sim),
        stop,
    }
}

/// Starts the simulator for every bench that is neither never seen, nor mostar-01 nor
/// trebinje-01, waits for its live samples, then injects the faults and waits for their effects.
async fn simulate(cp: &ControlPlane, db: &PgPool, history_end: DateTime<Utc>) -> (SimFleet, CancellationToken) {
    let simulated = Fleet::from_benches(
        Fleet::link4()
            .iter()
            .filter(|b| ![NEVER_SEEN, MOSTAR, TREBINJE].contains(&b.id.as_str()))
            .cloned(),
    )
    .expect("fleet");
    let credentials = Credentials::from_secret_file(&cp.data_dir().join("jwt.secret")).expect("credentials");
    let mut opts = FleetOptions::new(Broker::new("127.0.0.1", cp.mqtt.port()), simulated.clone(), credentials);
    opts.telemetry_interval = Some(Duration::from_millis(500));
    opts.speed = 600.0;
    opts.backoff_min = Duration::from_millis(200);
    opts.backoff_max = Duration::from_secs(1);
    let stop = CancellationToken::new();
    let sim = SimFleet::spawn(opts, stop.clone()).expect("simulator");
    let ids: Vec<String> = simulated.iter().map(|b| b.id.to_string()).collect();
    eventually("5 live samples from every simulated bench", WAIT, || async {
        let fresh: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT bench_id FROM telemetry WHERE ts > $1 \
             GROUP BY bench_id HAVING count(*) >= 5) b",
        )
        .bind(history_end)
        .fetch_one(db)
        .await
        .ok()?;
        (fresh == ids.len() as i64).then_some(())
    })
    .await;

    sim.inject(RAVNO, Fault::Disconnect).expect("inject");
    sim.inject(ZEPCE, Fault::BatteryFailure).expect("inject");
    sim.inject(MAGLAJ, Fault::Reboot).expect("inject");
    eventually("ravno-01 offline, then online again", WAIT, || async {
        let states: Vec<String> =
            sqlx::query_scalar("SELECT state FROM bench_status_events WHERE bench_id = $1 ORDER BY at, id")
                .bind(RAVNO)
                .fetch_all(db)
                .await
                .ok()?;
        let offline = states.iter().position(|s| s == "offline")?;
        states[offline..].iter().any(|s| s == "online").then_some(())
    })
    .await;
    eventually("zepce-01 reporting battery_failure", WAIT, || async {
        let faulty: bool = sqlx::query_scalar(
            "SELECT faults ? 'battery_failure' FROM telemetry WHERE bench_id = $1 ORDER BY ts DESC LIMIT 1",
        )
        .bind(ZEPCE)
        .fetch_one(db)
        .await
        .ok()?;
        faulty.then_some(())
    })
    .await;
    eventually("maglaj-01 counting from zero after its reboot", WAIT, || async {
        let rebooted: Option<bool> = sqlx::query_scalar(
            "SELECT bool_or(uptime_s < prev) FROM (SELECT uptime_s, lag(uptime_s) OVER (ORDER BY ts, seq) AS prev \
             FROM telemetry WHERE bench_id = $1 AND ts > $2) s",
        )
        .bind(MAGLAJ)
        .bind(history_end)
        .fetch_one(db)
        .await
        .ok()?;
        (rebooted == Some(true)).then_some(())
    })
    .await;
    (sim, stop)
}

/// One bench (mostar-01) online with its latest samples: enough for every per-bench series to
/// appear in /metrics.
pub async fn one_bench(cp: &ControlPlane) -> Connected {
    let secret_text = std::fs::read_to_string(cp.data_dir().join("jwt.secret")).expect("jwt.secret");
    let secret = protocol::token::Secret::new(secret_text.trim().as_bytes().to_vec());
    let token = secret.sign(&Claims::new(Role::Bench, MOSTAR, Duration::from_secs(3600)));
    let (client, task) = connect(cp, MOSTAR, &token).await;
    let samples = history(MOSTAR, 4, Utc::now());
    for s in &samples[samples.len() - 3..] {
        client
            .publish(
                format!("benches/{MOSTAR}/telemetry"),
                QoS::AtLeastOnce,
                false,
                s.to_string(),
            )
            .await
            .expect("telemetry");
    }
    eventually("3 rows stored", WAIT, || async {
        let stored = cp.metric("benchfleet_ingest_rows_stored_total").await?;
        (stored >= 3.0).then_some(())
    })
    .await;
    Connected {
        _clients: vec![(client, task)],
        sim: None,
        stop: CancellationToken::new(),
    }
}

/// A connection with a wrong password, refused: the denial counters get their first series.
pub async fn refused(cp: &ControlPlane) {
    let (_client, mut eventloop) = AsyncClient::new(bench_options(cp, RAVNO, "not-a-token"), 10);
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return ack.code,
                Ok(_) => {}
                Err(_) => return rumqttc::ConnectReturnCode::NotAuthorized,
            }
        }
    })
    .await
    .expect("an answer to CONNECT");
    assert_ne!(
        outcome,
        rumqttc::ConnectReturnCode::Success,
        "a wrong token was accepted"
    );
    eventually("the refusal to be counted", WAIT, || async {
        let text = cp.get("/metrics").await;
        text.contains("benchfleet_mqtt_connections_denied_total{").then_some(())
    })
    .await;
}

async fn wait_for_state(db: &PgPool, bench: &str, state: &str) {
    eventually(&format!("{bench} to be {state}"), WAIT, || async {
        let latest: Option<String> = sqlx::query_scalar(
            "SELECT state FROM bench_status_events WHERE bench_id = $1 ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(bench)
        .fetch_optional(db)
        .await
        .ok()?;
        (latest.as_deref() == Some(state)).then_some(())
    })
    .await;
}

/// Connects like a bench (Last Will `offline`, retained) and waits for the CONNACK.
async fn connect(cp: &ControlPlane, bench: &str, token: &str) -> (AsyncClient, tokio::task::JoinHandle<()>) {
    let mut opts = bench_options(cp, bench, token);
    opts.set_last_will(LastWill::new(
        format!("benches/{bench}/status"),
        json!({"v": 1, "state": "offline"}).to_string(),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut eventloop) = AsyncClient::new(opts, 256);
    tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success, "{bench} was refused");
                    return;
                }
                Ok(_) => {}
                Err(e) => panic!("{bench} could not connect: {e}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{bench}: no CONNACK"));
    let name = bench.to_owned();
    let task = tokio::spawn(async move {
        loop {
            if let Err(e) = eventloop.poll().await {
                // Expected after a disconnect; otherwise the reason helps a failing test.
                eprintln!("{name}: MQTT connection ended: {e}");
                return;
            }
        }
    });
    (client, task)
}

/// Telemetry of one bench for the last [`HISTORY_HOURS`], oldest first.
pub fn history(bench: &str, index: usize, now: DateTime<Utc>) -> Vec<serde_json::Value> {
    let i = index as f64;
    let steps = HISTORY_HOURS * 60 / SAMPLE_MINUTES;
    let start = now - chrono::Duration::hours(HISTORY_HOURS);
    let dt_h = SAMPLE_MINUTES as f64 / 60.0;
    let peak_w = 80.0 + 10.0 * i;
    let mut battery = 55.0 + 2.0 * i;
    let (mut rx, mut tx, mut wifi_n, mut usb_n, mut kiosk_n, mut uptime) = (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut out = Vec::new();
    for k in 0..=steps {
        let ts = start + chrono::Duration::minutes(k * SAMPLE_MINUTES);
        if bench == MOSTAR && k == steps / 2 {
            // A reboot: every since-boot counter starts again.
            (rx, tx, wifi_n, usb_n, kiosk_n, uptime) = (0, 0, 0, 0, 0, 0);
        }
        // Central European Time; in November the sun is up from about 7 to 17.
        let hour = f64::from((ts.hour() + 1) % 24) + f64::from(ts.minute()) / 60.0;
        let sun = ((hour - 7.0) * PI / 10.0).sin().max(0.0);
        let clouds = 0.6 + 0.4 * (((k as f64) * 0.7 + i).sin() * 0.5 + 0.5);
        let solar = (peak_w * sun * clouds * 10.0).round() / 10.0;
        let busy = sun + 0.15;
        let wifi = (busy * (4.0 + i / 2.0)).round() as u64;
        let usb = (busy * 2.0).round() as u64;
        let kiosk = u64::from(sun > 0.5);
        let load = 6.0 + 1.5 * wifi as f64 + 5.0 * usb as f64 + 12.0 * kiosk as f64;
        battery = (battery + (solar - load) * dt_h / 700.0 * 100.0).clamp(3.0, 100.0);
        rx += wifi * 1_500_000 + 40_000;
        tx += wifi * 300_000 + 15_000;
        wifi_n += wifi;
        usb_n += usb;
        kiosk_n += kiosk;
        uptime += (SAMPLE_MINUTES * 60) as u64;
        let mut faults = Vec::new();
        if bench == MOSTAR && k >= steps - 30 {
            faults.push("sensor_stuck");
        }
        if bench == "zepce-01" && k >= steps - 5 {
            faults.push("battery_failure");
        }
        out.push(json!({
            "v": 1,
            "ts": ts,
            "seq": k + 1,
            "power": {
                "solar_w": solar,
                "battery_pct": (battery * 10.0).round() / 10.0,
                "battery_v": ((11.8 + battery / 100.0 * 1.6) * 100.0).round() / 100.0,
                "load_w": load,
            },
            "network": {
                "rx_bytes": rx,
                "tx_bytes": tx,
                "wifi_clients": wifi + u64::from(sun > 0.3),
                "rssi_dbm": -62 - 2 * index as i64,
            },
            "sessions": {
                "wifi": wifi,
                "usb": usb,
                "kiosk": kiosk,
                "wifi_started": wifi_n,
                "usb_started": usb_n,
                "kiosk_started": kiosk_n,
            },
            "health": {
                "cpu_temp_c": ((38.0 + 12.0 * sun) * 10.0).round() / 10.0,
                "enclosure_temp_c": ((6.0 + 14.0 * sun) * 10.0).round() / 10.0,
                "uptime_s": uptime,
                "disk_free_mb": 5200 - k,
                "faults": faults,
            },
        }));
    }
    out
}
