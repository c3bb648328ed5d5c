//! The real control-plane binary with the simulated LINK 4 fleet: everyone comes online and
//! reports, injected faults show up as exactly the expected presence changes, store-and-forward
//! samples are stored once, and a small open-loop load loses nothing.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use bench_sim::{Broker, Credentials, Fault, FleetOptions, SimFleet};
use control_plane::store::{self, Store};
use protocol::{BenchState, Fleet};
use tests::{ControlPlane, binary, eventually, recent_status_events, recent_telemetry};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

async fn latest_state(store: &dyn Store, bench: &str) -> Option<BenchState> {
    let events = store.latest_status_events().await.ok()?;
    events.into_iter().find(|e| e.bench_id == bench).map(|e| e.state)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_simulated_fleet_comes_online_and_faults_show_up() {
    // The injected disconnect is back within a second, inside the default takeover grace (a drop
    // that short is not recorded; tests/presence.rs covers that): count every drop at once here.
    let config = tempfile::tempdir().unwrap();
    let file = config.path().join("no-grace.toml");
    std::fs::write(&file, "[presence]\ntakeover_grace_ms = 0\n").unwrap();
    let cp = ControlPlane::start(&["--config", file.to_str().unwrap()]);
    let credentials = Credentials::from_secret_file(&cp.data_dir().join("jwt.secret")).unwrap();
    let mut opts = FleetOptions::new(Broker::new("127.0.0.1", cp.mqtt.port()), Fleet::link4(), credentials);
    opts.telemetry_interval = Some(Duration::from_millis(500));
    opts.backoff_min = Duration::from_millis(200);
    opts.backoff_max = Duration::from_secs(1);
    let shutdown = CancellationToken::new();
    let sim = SimFleet::spawn(opts, shutdown.clone()).unwrap();
    let store: Arc<dyn Store> = store::connect(&cp.database_url, &Default::default()).await.unwrap();

    // All 12 online, with telemetry from each.
    eventually("all 12 benches online with telemetry", WAIT, || async {
        let online = store
            .latest_status_events()
            .await
            .ok()?
            .iter()
            .filter(|e| e.state == BenchState::Online)
            .count();
        let reporting = store.latest_telemetry().await.ok()?.len();
        (online == 12 && reporting == 12).then_some(())
    })
    .await;

    // An abrupt disconnect makes exactly that bench offline; it comes back by itself.
    sim.inject("maglaj-01", Fault::Disconnect).unwrap();
    eventually("maglaj-01 offline then online again", WAIT, || async {
        let ev = recent_status_events(store.as_ref(), "maglaj-01").await;
        let offline = ev.iter().position(|e| e.state == BenchState::Offline)?;
        ev[offline..]
            .iter()
            .any(|e| e.state == BenchState::Online)
            .then_some(())
    })
    .await;
    for bench in Fleet::link4()
        .iter()
        .map(|b| b.id.to_string())
        .filter(|b| b != "maglaj-01")
    {
        let ev = recent_status_events(store.as_ref(), &bench).await;
        assert!(
            ev.iter().all(|e| e.state == BenchState::Online),
            "{bench} changed state: {ev:?}"
        );
    }

    // Refused for a few connects, zepce-01 queues samples and forwards them on reconnect.
    let before = sim.snapshot("zepce-01").unwrap().connects;
    // Five refusals keep it away at least 1.7 s (backoff 200 ms-1 s, jittered down to half):
    // longer than the 0.9 s "late" bar plus a 0.5 s sample interval, whatever the sample phase.
    sim.inject("zepce-01", Fault::WrongToken { attempts: 5 }).unwrap();
    eventually("zepce-01 back online after the wrong tokens", WAIT, || async {
        let s = sim.snapshot("zepce-01")?;
        (s.connects > before
            && s.queued == 0
            && latest_state(store.as_ref(), "zepce-01").await == Some(BenchState::Online))
        .then_some(())
    })
    .await;
    let taken = sim.snapshot("zepce-01").unwrap().seq;
    let rows = eventually("every zepce-01 sample stored", WAIT, || async {
        let rows = recent_telemetry(store.as_ref(), "zepce-01").await;
        (rows.last().map(|r| r.seq) >= Some(taken as i64)).then_some(rows)
    })
    .await;
    let mut seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "a forwarded sample was stored twice");
    assert_eq!(seqs.first(), Some(&1), "samples are missing at the start");
    assert_eq!(
        seqs.last().copied(),
        Some(n as i64),
        "a gap in the stored samples: {seqs:?}"
    );
    let late = rows
        .iter()
        .filter(|r| r.received_at - r.ts > chrono::Duration::milliseconds(900))
        .count();
    assert!(
        late > 0,
        "no sample was forwarded late; store-and-forward was not exercised"
    );

    sim.shutdown().await;
    assert!(cp.stop().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_small_open_loop_load_loses_nothing() {
    let cp = ControlPlane::start(&["--load-test-benches", "200"]);
    let report = cp.data_dir().join("report.json");
    let out = std::process::Command::new(binary("bench-sim"))
        .args([
            "load",
            "--benches",
            "200",
            "--rate",
            "1/s",
            "--duration",
            "10s",
            "--qos",
            "1",
        ])
        .args([
            "--connect-rate",
            "500/s",
            "--broker",
            &format!("mqtt://127.0.0.1:{}", cp.mqtt.port()),
        ])
        .arg("--token-secret")
        .arg(cp.data_dir().join("jwt.secret"))
        .arg("--report")
        .arg(&report)
        .output()
        .expect("running bench-sim load");
    assert!(
        out.status.success(),
        "bench-sim load failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["connected"], 200, "{r}");
    assert_eq!(r["lost"], 0, "{r}");
    assert_eq!(r["acked"], r["offered"], "{r}");
    let offered = r["offered"].as_u64().unwrap();
    assert!(
        offered >= 1800,
        "open loop should offer about 2000 messages in 10 s: {r}"
    );
    // Every acknowledged message is in the store.
    let stored = eventually("every acknowledged sample stored", WAIT, || async {
        let v = cp.metric("benchfleet_ingest_rows_stored_total").await?;
        (v as u64 >= offered).then_some(v as u64)
    })
    .await;
    assert_eq!(stored, offered);
    assert_eq!(
        cp.metric("benchfleet_mqtt_messages_dropped_total{reason=\"queue_full\"}")
            .await,
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_sim_gets_its_tokens_through_the_api() {
    let cp = ControlPlane::start(&[]);
    let admin = cp.token("admin", "provisioning", &[]);
    let mut sim = std::process::Command::new(binary("bench-sim"))
        .args(["run", "--benches", "3", "--interval", "1s", "--duration", "60s"])
        .args(["--broker", &format!("mqtt://127.0.0.1:{}", cp.mqtt.port())])
        .args(["--api", &cp.api, "--admin-token", &admin])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("running bench-sim run");
    let store: Arc<dyn Store> = store::connect(&cp.database_url, &Default::default()).await.unwrap();
    let reporting = eventually("three benches reporting with API-issued tokens", WAIT, || async {
        let latest = store.latest_telemetry().await.ok()?;
        (latest.len() == 3).then_some(latest)
    })
    .await;
    let _ = sim.kill();
    let _ = sim.wait();
    let ids: Vec<&str> = reporting.iter().map(|r| r.bench_id.as_str()).collect();
    assert_eq!(ids, ["berkovici-01", "jablanica-01", "kostajnica-01"]);
}
