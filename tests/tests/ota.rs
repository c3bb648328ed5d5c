//! OTA configuration end to end: the control plane (in this process, through its library, since
//! OTA has no HTTP routes yet) with its real broker and store, simulated benches over real MQTT,
//! and the Debian `mosquitto_sub` client reading the retained document.
//!
//! Covered: every bench has a retained configuration before it ever connects; apply → applied;
//! a bench offline during two changes receives only the latest on reconnect; a rejecting bench
//! ends `rejected` and drifts; a restart keeps the state and re-publishes every document
//! retained (rumqttd keeps retained messages only in memory). Rollouts with real benches: a
//! rejecting canary aborts and gets its old configuration back; a bench that drops out while
//! soaking follows the failure threshold; a restart mid-rollout resumes it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use bench_sim::{Broker, Credentials, Fault, FleetOptions, SimFleet};
use control_plane::ota::{DeliveryState, Progress, Rollout, RolloutRequest, RolloutState, Scope, Strategy, Target};
use control_plane::settings::Settings;
use protocol::{BenchId, ConfigDocument, Fleet};
use protocol::{Claims, Role};
use serde_json::json;
use tests::eventually;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

/// The main fleet is everyone but these two.
const LATE: &str = "ravno-01";
const REJECTING: &str = "trebinje-01";

struct Plane {
    running: control_plane::Running,
    shutdown: CancellationToken,
}

impl Plane {
    async fn start(settings: &Settings) -> Self {
        let shutdown = CancellationToken::new();
        let running = control_plane::start(settings.clone(), shutdown.clone()).await.unwrap();
        Self { running, shutdown }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.running.done)
            .await
            .expect("control plane stops")
            .unwrap();
    }

    async fn metric(&self, series: &str) -> Option<f64> {
        let text = reqwest::get(format!("http://{}/metrics", self.running.api_addr))
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        text.lines().find_map(|l| {
            l.strip_prefix(series)
                .and_then(|v| v.strip_prefix(' '))
                .and_then(|v| v.trim().parse().ok())
        })
    }

    /// Waits until every bench in `benches` runs (has acknowledged) its desired version.
    async fn all_applied(&self, benches: &[BenchId], what: &str) {
        eventually(what, WAIT, || async {
            for b in benches {
                let s = self.running.ota.status(b.as_str()).await.ok()?;
                if s.record.state != DeliveryState::Applied
                    || s.record.reported_version != Some(s.record.desired_version)
                {
                    return None;
                }
            }
            Some(())
        })
        .await;
    }
}

/// The first message `mosquitto_sub`, connected as `bench` with a bench token, receives on the
/// bench's config topic: the retained document.
fn retained_config(mqtt: SocketAddr, bench: &str, token: &str) -> ConfigDocument {
    let out = Command::new("mosquitto_sub")
        .args(["-h", &mqtt.ip().to_string(), "-p", &mqtt.port().to_string()])
        .args(["-i", bench, "-u", bench, "-P", token, "-q", "1", "-C", "1", "-W", "20"])
        .args(["-t", &format!("benches/{bench}/config")])
        .output()
        .expect("running mosquitto_sub (Debian package mosquitto-clients)");
    assert!(
        out.status.success(),
        "mosquitto_sub got no retained document: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = String::from_utf8(out.stdout).unwrap();
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{e}: {line}"))
}

fn sim(mqtt: SocketAddr, credentials: &Credentials, benches: &[BenchId], reject_rate: f64) -> SimFleet {
    let fleet = Fleet::from_benches(Fleet::link4().iter().filter(|b| benches.contains(&b.id)).cloned()).unwrap();
    let mut opts = FleetOptions::new(Broker::new("127.0.0.1", mqtt.port()), fleet, credentials.clone());
    opts.telemetry_interval = Some(Duration::from_millis(500));
    opts.backoff_min = Duration::from_millis(100);
    opts.backoff_max = Duration::from_millis(500);
    opts.config_reject_rate = reject_rate;
    SimFleet::spawn(opts, CancellationToken::new()).unwrap()
}

async fn ota_story(database_url: Option<String>) {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        data_dir: data.path().to_owned(),
        database_url,
        ..Settings::default()
    };
    settings.api.listen = "127.0.0.1:0".parse().unwrap();
    settings.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    // Benches here drop for a second or two (mosquitto_sub, refused reconnects) and must count
    // as away at once; the takeover grace has its own test (tests/presence.rs).
    settings.presence.takeover_grace_ms = 0;
    let cp = Plane::start(&settings).await;
    let mqtt = cp.running.mqtt_addr;
    let ota = cp.running.ota.clone();
    let secret = control_plane::token::load_or_create(&settings.jwt_secret_file()).unwrap();
    let token = |bench: &str| secret.sign(&Claims::new(Role::Bench, bench, Duration::from_secs(600)));
    let credentials = Credentials::from_secret_file(&settings.jwt_secret_file()).unwrap();

    // Before any bench connects, its configuration is retained, readable by any MQTT client.
    let doc = retained_config(mqtt, LATE, &token(LATE));
    assert_eq!((doc.v, doc.version), (1, 1));
    assert_eq!(doc.config, protocol::BenchConfig::default());

    let all: Vec<BenchId> = Fleet::link4().iter().map(|b| b.id.clone()).collect();
    let main: Vec<BenchId> = all
        .iter()
        .filter(|b| b.as_str() != LATE && b.as_str() != REJECTING)
        .cloned()
        .collect();
    let main_fleet = sim(mqtt, &credentials, &main, 0.0);
    let rejecting = sim(mqtt, &credentials, &[BenchId::parse(REJECTING).unwrap()], 1.0);
    cp.all_applied(&main, "the ten benches applying version 1").await;

    // A fleet change and a change for the bench that is away: apply → applied.
    let diffs = ota
        .set_layer("test", &Scope::Fleet, &json!({"wifi": {"ssid": "LINK4 Free"}}))
        .await
        .unwrap();
    assert_eq!(diffs.len(), 12);
    let mostar = BenchId::parse("mostar-01").unwrap();
    ota.set_layer(
        "test",
        &Scope::Bench(mostar.clone()),
        &json!({"telemetry_interval_s": 5}),
    )
    .await
    .unwrap();
    let late = BenchId::parse(LATE).unwrap();
    ota.set_layer(
        "test",
        &Scope::Bench(late.clone()),
        &json!({"usb": {"max_session_min": 90}}),
    )
    .await
    .unwrap();
    cp.all_applied(&main, "the ten benches applying the fleet change").await;
    let m = ota.status("mostar-01").await.unwrap();
    assert_eq!((m.record.desired_version, m.record.reported_version), (3, Some(3)));
    let snapshot = main_fleet.snapshot("mostar-01").unwrap();
    assert_eq!(
        (snapshot.config_version, snapshot.telemetry_interval),
        (3, Duration::from_secs(5))
    );
    assert_eq!(main_fleet.snapshot("zepce-01").unwrap().config_version, 2);

    // The rejecting bench: rejected, with its reason, still on its factory settings, drifting.
    let r = eventually("the rejecting bench's rejection of version 2", WAIT, || async {
        let s = ota.status(REJECTING).await.ok()?;
        (s.record.desired_version == 2 && s.record.state == DeliveryState::Rejected).then_some(s)
    })
    .await;
    assert_eq!(
        r.record.error.as_deref(),
        Some("simulated failure to apply (reject rate)")
    );
    assert_eq!(r.record.reported_version, Some(0));
    let drift = eventually("a drift metric for the rejecting bench", WAIT, || async {
        let d = cp
            .metric(&format!(
                "benchfleet_bench_config_drift_seconds{{bench=\"{REJECTING}\"}}"
            ))
            .await?;
        (d >= 1.0).then_some(d)
    })
    .await;
    assert!(drift >= 1.0);
    assert_eq!(
        cp.metric("benchfleet_bench_config_drift_seconds{bench=\"mostar-01\"}")
            .await,
        Some(0.0)
    );

    // The bench that was away gets only the latest version when it connects.
    let s = ota.status(LATE).await.unwrap();
    assert_eq!((s.record.desired_version, s.record.state), (3, DeliveryState::Pending));
    let doc = retained_config(mqtt, LATE, &token(LATE));
    assert_eq!(doc.version, 3, "the first document on connect is the latest");
    assert_eq!(
        (doc.config.wifi.ssid.as_str(), doc.config.usb.max_session_min),
        ("LINK4 Free", 90)
    );
    let late_fleet = sim(mqtt, &credentials, std::slice::from_ref(&late), 0.0);
    cp.all_applied(std::slice::from_ref(&late), "the late bench applying version 3")
        .await;
    assert_eq!(late_fleet.snapshot(LATE).unwrap().config_version, 3);
    late_fleet.shutdown().await;

    // Restart: state kept, every document retained again, benches reconnect without new versions.
    let before = ota.statuses().await;
    let history = ota.versions("mostar-01", 100).await.unwrap();
    cp.stop().await;
    settings.mqtt.listen = mqtt;
    let cp = Plane::start(&settings).await;
    assert_eq!(cp.running.mqtt_addr, mqtt);
    let ota = cp.running.ota.clone();
    let doc = retained_config(mqtt, LATE, &token(LATE));
    assert_eq!(doc.version, 3);
    let after = ota.statuses().await;
    let versions = |s: &[control_plane::ota::BenchConfigStatus]| -> Vec<(String, u64, Option<u64>, DeliveryState)> {
        s.iter()
            .map(|s| {
                (
                    s.record.bench_id.to_string(),
                    s.record.desired_version,
                    s.record.reported_version,
                    s.record.state,
                )
            })
            .collect()
    };
    assert_eq!(versions(&after), versions(&before));
    eventually("the ten benches reconnected after the restart", WAIT, || async {
        main.iter()
            .all(|b| main_fleet.snapshot(b.as_str()).is_some_and(|s| s.connects >= 2))
            .then_some(())
    })
    .await;
    cp.all_applied(&main, "the ten benches still applied after the restart")
        .await;
    assert_eq!(ota.versions("mostar-01", 100).await.unwrap(), history);
    assert_eq!(
        ota.status(REJECTING).await.unwrap().record.state,
        DeliveryState::Rejected
    );

    main_fleet.shutdown().await;
    rejecting.shutdown().await;
    cp.stop().await;
}

async fn wait_rollout(cp: &Plane, id: &str, what: &str, check: impl Fn(&Rollout) -> bool) -> Rollout {
    eventually(what, WAIT, || async {
        let r = cp.running.ota.rollout(id).await.ok()?;
        check(&r).then_some(r)
    })
    .await
}

fn ids(names: &[&str]) -> Vec<BenchId> {
    names.iter().map(|n| BenchId::parse(n).unwrap()).collect()
}

fn progress(r: &Rollout, bench: &str) -> Progress {
    r.benches.iter().find(|p| p.bench.as_str() == bench).unwrap().state
}

#[tokio::test(flavor = "multi_thread")]
async fn rollouts_with_real_benches() {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        data_dir: data.path().to_owned(),
        ..Settings::default()
    };
    settings.api.listen = "127.0.0.1:0".parse().unwrap();
    settings.mqtt.listen = "127.0.0.1:0".parse().unwrap();
    // Benches here drop for a second or two (mosquitto_sub, refused reconnects) and must count
    // as away at once; the takeover grace has its own test (tests/presence.rs).
    settings.presence.takeover_grace_ms = 0;
    let cp = Plane::start(&settings).await;
    let mqtt = cp.running.mqtt_addr;
    let credentials = Credentials::from_secret_file(&settings.jwt_secret_file()).unwrap();
    let main: Vec<BenchId> = Fleet::link4()
        .iter()
        .map(|b| b.id.clone())
        .filter(|b| b.as_str() != REJECTING)
        .collect();
    let main_fleet = sim(mqtt, &credentials, &main, 0.0);
    let rejecting = sim(mqtt, &credentials, &ids(&[REJECTING]), 1.0);
    cp.all_applied(&main, "eleven benches applying version 1").await;
    eventually("the rejecting bench online", WAIT, || async {
        let s = cp.running.ota.status(REJECTING).await.ok()?;
        (s.record.state == DeliveryState::Rejected).then_some(())
    })
    .await;

    // A canary that rejects aborts the rollout; the canary is sent its previous configuration
    // as a new version, nobody else is touched, the layers stay as they were.
    let request = RolloutRequest {
        target: Target::Fleet,
        change: json!({"wifi": {"ssid": "Canary"}}),
        strategy: Strategy {
            canary: ids(&[REJECTING]),
            soak_s: 1,
            step_timeout_s: 30,
            ..Strategy::default()
        },
        note: None,
    };
    let r = cp.running.ota.create_rollout("test", request).await.unwrap();
    let r = wait_rollout(&cp, &r.id, "the canary's rejection to abort the rollout", |r| {
        r.state == RolloutState::Aborted
    })
    .await;
    let reason = r.reason.clone().unwrap();
    assert!(
        reason.contains("trebinje-01 rejected (simulated failure to apply (reject rate))"),
        "{reason}"
    );
    let canary = &r.benches[0];
    assert_eq!(
        (canary.state, canary.version, canary.rollback_version),
        (Progress::RolledBack, Some(2), Some(3))
    );
    let s = cp.running.ota.status(REJECTING).await.unwrap();
    assert_eq!(
        (s.record.desired_version, s.record.desired.wifi.ssid.as_str()),
        (3, "Smart Bench")
    );
    for b in &main {
        assert_eq!(
            cp.running.ota.status(b.as_str()).await.unwrap().record.desired_version,
            1,
            "{b}"
        );
    }
    assert!(cp.running.ota.layers().await.is_empty());

    // One of four benches drops out while soaking: 25 % is within a 25 % threshold, so the
    // rollout completes; with a threshold of 0 the same drop aborts it.
    for (names, ratio, aborts) in [
        (["mostar-01", "zepce-01", "maglaj-01", "prijedor-01"], 0.25, false),
        (["nevesinje-01", "novi-grad-01", "ravno-01", "berkovici-01"], 0.0, true),
    ] {
        let request = RolloutRequest {
            target: Target::Benches(ids(&names)),
            change: json!({"usb": {"max_session_min": 45}}),
            strategy: Strategy {
                soak_s: 4,
                step_timeout_s: 30,
                max_failure_ratio: ratio,
                ..Strategy::default()
            },
            note: None,
        };
        let r = cp.running.ota.create_rollout("test", request).await.unwrap();
        wait_rollout(&cp, &r.id, "every bench soaking", |r| {
            r.benches.iter().all(|p| p.state == Progress::Soaking)
        })
        .await;
        // Five refused reconnects keep it away for well over a second, longer than a tick.
        main_fleet.inject(names[2], Fault::WrongToken { attempts: 5 }).unwrap();
        let r = wait_rollout(&cp, &r.id, "the rollout to finish", |r| !r.state.is_active()).await;
        let dropped = r.benches.iter().find(|p| p.bench.as_str() == names[2]).unwrap();
        if aborts {
            assert_eq!(r.state, RolloutState::Aborted);
            assert!(
                r.reason
                    .as_deref()
                    .unwrap()
                    .contains(&format!("{} unhealthy", names[2])),
                "{:?}",
                r.reason
            );
            assert!(
                r.benches
                    .iter()
                    .all(|p| p.state == Progress::RolledBack && p.rollback_version.is_some())
            );
            assert!(
                dropped
                    .detail
                    .as_deref()
                    .unwrap()
                    .contains("went offline while soaking")
            );
        } else {
            assert_eq!(r.state, RolloutState::Completed, "{:?}", r.reason);
            assert_eq!(dropped.state, Progress::Unhealthy);
            assert_eq!(dropped.detail.as_deref(), Some("went offline while soaking"));
            for n in [names[0], names[1], names[3]] {
                assert_eq!(progress(&r, n), Progress::Healthy, "{n}");
            }
            assert_eq!(cp.running.ota.layers().await.len(), 4);
        }
    }

    // Restart while the canary soaks: the rollout resumes and finishes.
    let request = RolloutRequest {
        target: Target::Benches(ids(&["jablanica-01", "kostajnica-01", "zavidovici-01"])),
        change: json!({"kiosk": {"languages": ["bs", "en"]}}),
        strategy: Strategy {
            canary: ids(&["jablanica-01"]),
            soak_s: 3,
            step_timeout_s: 60,
            ..Strategy::default()
        },
        note: Some("restart test".into()),
    };
    let r = cp.running.ota.create_rollout("test", request).await.unwrap();
    let id = r.id.clone();
    wait_rollout(&cp, &id, "the canary soaking", |r| {
        r.benches[0].state == Progress::Soaking
    })
    .await;
    cp.stop().await;
    settings.mqtt.listen = mqtt;
    let cp = Plane::start(&settings).await;
    let r = cp.running.ota.rollout(&id).await.unwrap();
    assert_eq!((r.state, r.step), (RolloutState::Running, 0));
    let r = wait_rollout(&cp, &id, "the rollout to complete after the restart", |r| {
        r.state == RolloutState::Completed
    })
    .await;
    assert!(
        r.benches.iter().all(|p| p.state == Progress::Healthy),
        "{:?}",
        r.counts()
    );
    for b in ["jablanica-01", "kostajnica-01", "zavidovici-01"] {
        let s = main_fleet.snapshot(b).unwrap();
        let desired = cp.running.ota.status(b).await.unwrap().record.desired_version;
        assert_eq!(s.config_version, desired, "{b} runs its desired version");
    }

    main_fleet.shutdown().await;
    rejecting.shutdown().await;
    cp.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ota_delivery_on_sqlite() {
    ota_story(None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ota_delivery_on_postgres() {
    let Some(db) = control_plane::store::testing::pg_database().await else {
        return;
    };
    ota_story(Some(db.url().to_owned())).await;
}
