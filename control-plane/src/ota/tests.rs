//! OTA inside the crate: the real store on both backends, a recording publisher and a scripted
//! fleet standing in for the broker and presence.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use protocol::ConfigDocument;
use protocol::config::BenchConfig;
use serde_json::json;

use super::*;
use crate::store::Store;
use crate::store::testing::{pg_database, sqlite_database};

const DEADLINE: Duration = Duration::from_secs(10);

/// Every document published, in order.
#[derive(Default)]
struct Recorder(StdMutex<Vec<(BenchId, ConfigDocument)>>);

impl Publisher for Recorder {
    fn publish_config(&self, bench: &BenchId, payload: Bytes) -> Result<(), BrokerError> {
        let doc = serde_json::from_slice(&payload).unwrap();
        self.0.lock().unwrap().push((bench.clone(), doc));
        Ok(())
    }
}

impl Recorder {
    fn take(&self) -> Vec<(String, u64)> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .map(|(b, d)| (b.to_string(), d.version))
            .collect()
    }

    fn last(&self, bench: &str) -> Option<ConfigDocument> {
        let all = self.0.lock().unwrap();
        all.iter()
            .rev()
            .find(|(b, _)| b.as_str() == bench)
            .map(|(_, d)| d.clone())
    }
}

/// Presence and faults set by the test; every bench online without faults unless told.
#[derive(Default)]
struct Scripted {
    health: StdMutex<HashMap<String, (BenchState, Option<u64>)>>,
    intervals: StdMutex<HashMap<String, Duration>>,
}

impl Scripted {
    fn set(&self, bench: &str, state: BenchState, faults: u64) {
        self.health
            .lock()
            .unwrap()
            .insert(bench.to_owned(), (state, Some(faults)));
    }
}

impl Observer for Scripted {
    fn presence(&self, bench: &BenchId) -> BenchState {
        self.health
            .lock()
            .unwrap()
            .get(bench.as_str())
            .map_or(BenchState::Online, |h| h.0)
    }

    fn faults(&self, bench: &BenchId) -> Option<u64> {
        self.health.lock().unwrap().get(bench.as_str()).map_or(Some(0), |h| h.1)
    }

    fn interval_applied(&self, bench: &BenchId, interval: Duration) {
        self.intervals.lock().unwrap().insert(bench.to_string(), interval);
    }
}

struct Harness {
    ota: Ota,
    task: JoinHandle<()>,
    stop: CancellationToken,
    published: Arc<Recorder>,
    fleet: Arc<Scripted>,
    metrics: Arc<Metrics>,
}

impl Harness {
    async fn start(store: Arc<dyn Store>) -> Self {
        Self::start_with(store, Arc::new(Scripted::default())).await
    }

    async fn start_with(store: Arc<dyn Store>, fleet: Arc<Scripted>) -> Self {
        let published = Arc::new(Recorder::default());
        let metrics = Arc::new(Metrics::new());
        let stop = CancellationToken::new();
        let settings = OtaSettings {
            ack_timeout: Duration::from_secs(60),
            drift_threshold: Duration::from_secs(600),
            tick: Duration::from_millis(20),
        };
        let (ota, task) = Ota::start(
            Arc::new(Fleet::link4()),
            settings,
            store,
            published.clone(),
            fleet.clone(),
            metrics.clone(),
            stop.clone(),
        )
        .await
        .unwrap();
        Self {
            ota,
            task,
            stop,
            published,
            fleet,
            metrics,
        }
    }

    async fn stop(self) -> Arc<Scripted> {
        self.stop.cancel();
        self.task.await.unwrap();
        self.fleet
    }

    fn ack(&self, bench: &str, ack: &ConfigAck) {
        self.ota.on_ack(&id(bench), &ack.to_json());
    }

    /// Waits until `bench`'s status satisfies `check`.
    async fn wait_status(
        &self,
        bench: &str,
        what: &str,
        check: impl Fn(&BenchConfigStatus) -> bool,
    ) -> BenchConfigStatus {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let s = self.ota.status(bench).await.unwrap();
            if check(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {bench}: {what}; last {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn wait_rollout(&self, rollout: &str, what: &str, check: impl Fn(&Rollout) -> bool) -> Rollout {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let r = self.ota.rollout(rollout).await.unwrap();
            if check(&r) {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for rollout {what}; last {r:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn id(s: &str) -> BenchId {
    BenchId::parse(s).unwrap()
}

fn fields(e: OtaError) -> Vec<String> {
    match e {
        OtaError::Invalid(errors) => errors.into_iter().map(|f| f.field).collect(),
        other => panic!("not a validation error: {other:?}"),
    }
}

async fn sqlite_store(db: &crate::store::testing::SqliteDatabase) -> Arc<dyn Store> {
    let store = crate::store::connect(db.url(), &Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

async fn pg_store(db: &crate::store::testing::PgDatabase) -> Arc<dyn Store> {
    let store = crate::store::connect(db.url(), &Default::default()).await.unwrap();
    store.migrate().await.unwrap();
    store
}

/// Layers, versions, acknowledgements, drift and a restart, on one backend.
async fn lifecycle(store: Arc<dyn Store>) {
    let h = Harness::start(store.clone()).await;
    // Every bench has version 1 (the built-in configuration), published retained at start.
    let mut first = h.published.take();
    first.sort();
    assert_eq!(first.len(), 12);
    assert!(first.iter().all(|(_, v)| *v == 1), "{first:?}");
    let s = h.ota.status("mostar-01").await.unwrap();
    assert_eq!(
        (s.record.desired_version, s.record.state, s.record.reported_version),
        (1, DeliveryState::Pending, None)
    );
    assert_eq!(s.record.desired, BenchConfig::default());

    // Invalid layers are refused with every bad field named, and change nothing.
    let bad =
        json!({"telemetry_interval_s": 2, "wifi": {"ssid": "", "colour": "red"}, "power": {"low_battery_pct": "low"}});
    let e = h.ota.set_layer("ops", &Scope::Fleet, &bad).await.unwrap_err();
    assert_eq!(
        fields(e),
        [
            "power.low_battery_pct",
            "telemetry_interval_s",
            "wifi.colour",
            "wifi.ssid"
        ]
    );
    let e = h
        .ota
        .set_layer("ops", &Scope::Municipality("Atlantis".into()), &json!({}))
        .await
        .unwrap_err();
    assert!(matches!(e, OtaError::UnknownMunicipality(_)), "{e:?}");
    assert!(h.published.take().is_empty());

    // A municipality layer: the dry run and the change agree, and only that bench moves.
    let mostar = Scope::Municipality("Mostar".into());
    let layer = json!({"wifi": {"ssid": "Mostar Free"}, "telemetry_interval_s": 30});
    let preview = h.ota.dry_run(&mostar, &layer).await.unwrap();
    assert_eq!(preview.len(), 1);
    assert_eq!(preview[0].bench.as_str(), "mostar-01");
    assert_eq!(preview[0].version, 1);
    let changed: Vec<&str> = preview[0].changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(changed, ["telemetry_interval_s", "wifi.ssid"]);
    assert_eq!(h.ota.status("mostar-01").await.unwrap().record.desired_version, 1);
    let diffs = h.ota.set_layer("ops", &mostar, &layer).await.unwrap();
    assert_eq!(diffs, preview);
    let doc = h.published.last("mostar-01").unwrap();
    assert_eq!((doc.version, doc.config.wifi.ssid.as_str()), (2, "Mostar Free"));
    assert_eq!(h.published.take(), [("mostar-01".to_owned(), 2)]);
    let eff = h.ota.effective("mostar-01").await.unwrap();
    assert_eq!(
        (eff.config.wifi.ssid.as_str(), eff.config.telemetry_interval_s),
        ("Mostar Free", Some(30))
    );
    assert_eq!(
        (eff.layers, eff.desired_version, eff.matches_desired),
        (vec![mostar.clone()], Some(2), true)
    );
    // Setting the same content again is a no-op.
    assert_eq!(h.ota.set_layer("ops", &mostar, &layer).await.unwrap(), []);
    assert!(h.published.take().is_empty());

    // Delivery: online → delivered; acknowledgements; reported versions and drift.
    h.wait_status("mostar-01", "delivered", |s| s.record.state == DeliveryState::Delivered)
        .await;
    h.ack("mostar-01", &ConfigAck::applied(2));
    let s = h
        .wait_status("mostar-01", "applied", |s| s.record.state == DeliveryState::Applied)
        .await;
    assert_eq!(
        (s.record.reported_version, s.drift_seconds, s.drifting),
        (Some(2), 0, false)
    );
    assert_eq!(
        h.fleet.intervals.lock().unwrap().get("mostar-01"),
        Some(&Duration::from_secs(30))
    );
    h.ack("zepce-01", &ConfigAck::rejected(1, "cannot parse"));
    let s = h
        .wait_status("zepce-01", "rejected", |s| s.record.state == DeliveryState::Rejected)
        .await;
    assert_eq!(s.record.error.as_deref(), Some("cannot parse"));
    h.ota.on_status(&id("ravno-01"), 1);
    h.wait_status("ravno-01", "applied from status", |s| {
        s.record.state == DeliveryState::Applied
    })
    .await;
    // A malformed acknowledgement is dropped and counted, nothing else.
    h.ota.on_ack(&id("ravno-01"), b"{\"v\":1,\"version\":\"x\"}");
    let text = h.metrics.encode();
    assert!(
        text.contains(r#"benchfleet_mqtt_messages_dropped_total{reason="invalid_type"} 1"#),
        "{text}"
    );
    let drift = |bench: &str| {
        let text = h.metrics.encode();
        let series = format!("benchfleet_bench_config_drift_seconds{{bench=\"{bench}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&series).map(|v| v.parse::<f64>().unwrap()))
    };
    assert_eq!(drift("mostar-01"), Some(0.0));
    assert!(drift("zepce-01").is_some_and(|d| d >= 0.0));
    assert!(
        text.contains(r#"benchfleet_ota_acks_received_total{status="rejected"} 1"#),
        "{text}"
    );

    let versions = h.ota.versions("mostar-01", 10).await.unwrap();
    let got: Vec<(u64, &str, &str)> = versions
        .iter()
        .map(|v| (v.version, v.cause.as_str(), v.actor.as_str()))
        .collect();
    assert_eq!(got, [(2, "layer", "ops"), (1, "initial", "system")]);
    let audit = h.ota.audit(None, 10).await.unwrap();
    let actions: Vec<(&str, &str)> = audit.iter().map(|a| (a.action.as_str(), a.subject.as_str())).collect();
    assert_eq!(
        actions,
        [("layer.set", "municipality:Mostar"), ("startup.reconcile", "fleet")]
    );
    assert_eq!(audit[0].actor, "ops");
    assert_eq!(audit[0].detail["after"], layer);
    assert_eq!(audit[0].detail["benches"][0]["version"], 2);
    assert_eq!(h.ota.audit(Some(audit[0].id), 10).await.unwrap().len(), 1);

    // Restart: the state is kept, nothing new is issued, everything is published again.
    let before = h.ota.statuses().await;
    let fleet = h.stop().await;
    let h = Harness::start_with(store.clone(), fleet).await;
    let mut again = h.published.take();
    again.sort();
    assert_eq!(again.len(), 12);
    assert!(again.contains(&("mostar-01".to_owned(), 2)), "{again:?}");
    assert!(again.iter().filter(|(b, _)| b != "mostar-01").all(|(_, v)| *v == 1));
    let after = h.ota.statuses().await;
    let key = |s: &BenchConfigStatus| {
        (
            s.record.bench_id.clone(),
            s.record.desired_version,
            s.record.reported_version,
            s.record.error.clone(),
            s.record.desired.clone(),
        )
    };
    assert_eq!(
        after.iter().map(key).collect::<Vec<_>>(),
        before.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(h.ota.layers().await.len(), 1);
    // Applied benches set their interval again at start.
    assert_eq!(
        h.fleet.intervals.lock().unwrap().get("mostar-01"),
        Some(&Duration::from_secs(30))
    );
    // Removing the layer gives the bench the built-in configuration back as version 3.
    let diffs = h.ota.set_layer("ops", &mostar, &json!({})).await.unwrap();
    assert_eq!(diffs.len(), 1);
    assert_eq!(h.published.take(), [("mostar-01".to_owned(), 3)]);
    assert_eq!(
        h.ota.status("mostar-01").await.unwrap().record.desired,
        BenchConfig::default()
    );
    assert!(h.ota.layers().await.is_empty());
    h.stop().await;
}

#[tokio::test]
async fn lifecycle_on_sqlite() {
    let db = sqlite_database();
    lifecycle(sqlite_store(&db).await).await;
}

#[tokio::test]
async fn lifecycle_on_postgres() {
    let Some(db) = pg_database().await else { return };
    lifecycle(pg_store(&db).await).await;
}

/// Every bench's desired version.
async fn versions(h: &Harness) -> HashMap<String, u64> {
    let mut v = HashMap::new();
    for s in h.ota.statuses().await {
        v.insert(s.record.bench_id.to_string(), s.record.desired_version);
    }
    v
}

fn fleet_ssid(ssid: &str, strategy: Strategy) -> RolloutRequest {
    RolloutRequest {
        target: Target::Fleet,
        change: json!({"wifi": {"ssid": ssid}}),
        strategy,
        note: Some("new network name".into()),
    }
}

/// Rollouts: gates, abort with rollback, completion, operator rollback, restart, on one backend.
async fn rollouts(store: Arc<dyn Store>) {
    let h = Harness::start(store.clone()).await;
    let all: Vec<String> = Fleet::link4().iter().map(|b| b.id.to_string()).collect();
    // Everyone runs version 1.
    for b in &all {
        h.ack(b, &ConfigAck::applied(1));
    }
    for b in &all {
        h.wait_status(b, "applied v1", |s| s.record.state == DeliveryState::Applied)
            .await;
    }
    h.published.take();

    // A rejecting canary aborts the rollout; the canary gets its old configuration back.
    let strategy = Strategy {
        canary: vec![id("mostar-01")],
        batch_size: Some(4),
        soak_s: 0,
        step_timeout_s: 30,
        max_failure_ratio: 0.0,
    };
    let preview = h
        .ota
        .preview_rollout(&fleet_ssid("Canary", strategy.clone()))
        .await
        .unwrap();
    assert_eq!(preview.benches.len(), 12);
    assert_eq!(preview.steps.iter().map(Vec::len).collect::<Vec<_>>(), [1, 4, 4, 3]);
    let r = h
        .ota
        .create_rollout("ops", fleet_ssid("Canary", strategy.clone()))
        .await
        .unwrap();
    assert_eq!((r.state, r.steps), (RolloutState::Running, 4));
    assert_eq!(h.published.take(), [("mostar-01".to_owned(), 2)]);
    // One rollout at a time; layers it controls cannot be changed meanwhile.
    let e = h
        .ota
        .create_rollout("ops", fleet_ssid("Other", strategy.clone()))
        .await
        .unwrap_err();
    assert!(matches!(e, OtaError::Conflict(_)), "{e:?}");
    let e = h
        .ota
        .set_layer(
            "ops",
            &Scope::Bench(id("mostar-01")),
            &json!({"usb": {"enabled": false}}),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, OtaError::Conflict(_)), "{e:?}");
    h.ack("mostar-01", &ConfigAck::rejected(2, "ssid refused"));
    let r = h
        .wait_rollout(&r.id, "auto abort", |r| r.state == RolloutState::Aborted)
        .await;
    let reason = r.reason.clone().unwrap();
    assert!(reason.contains("mostar-01 rejected (ssid refused)"), "{reason}");
    let canary = &r.benches[0];
    assert_eq!(
        (canary.state, canary.version, canary.rollback_version),
        (Progress::RolledBack, Some(2), Some(3))
    );
    assert!(
        r.benches[1..]
            .iter()
            .all(|p| p.state == Progress::Waiting && p.version.is_none())
    );
    assert_eq!(h.published.take(), [("mostar-01".to_owned(), 3)]);
    let s = h.ota.status("mostar-01").await.unwrap();
    assert_eq!(
        (s.record.desired_version, s.record.desired.wifi.ssid.as_str()),
        (3, "Smart Bench")
    );
    assert!(
        h.ota.layers().await.is_empty(),
        "an aborted rollout leaves the layers alone"
    );
    let audit = h.ota.audit(None, 2).await.unwrap();
    assert_eq!(audit[0].action, "rollout.auto_abort");
    assert_eq!(audit[0].detail["rolled_back"][0]["version"], 3);
    h.ack("mostar-01", &ConfigAck::applied(3));

    // Batches with one bench offline (skipped) complete; the layer is committed.
    h.fleet.set("zepce-01", BenchState::Offline, 0);
    let strategy = Strategy {
        canary: vec![],
        batch_size: Some(6),
        soak_s: 0,
        step_timeout_s: 30,
        max_failure_ratio: 0.0,
    };
    let r = h
        .ota
        .create_rollout("ops", fleet_ssid("Batches", strategy))
        .await
        .unwrap();
    let step1: Vec<String> = r
        .benches
        .iter()
        .filter(|p| p.step == 0)
        .map(|p| p.bench.to_string())
        .collect();
    assert_eq!(step1.len(), 6);
    for b in &step1 {
        let v = versions(&h).await[b];
        h.ack(b, &ConfigAck::applied(v));
    }
    let r = h.wait_rollout(&r.id, "second step", |r| r.step == 1).await;
    let step2: Vec<String> = r
        .benches
        .iter()
        .filter(|p| p.step == 1)
        .map(|p| p.bench.to_string())
        .collect();
    for b in step2.iter().filter(|b| *b != "zepce-01") {
        let v = versions(&h).await[b];
        h.ack(b, &ConfigAck::applied(v));
    }
    let r = h
        .wait_rollout(&r.id, "completed", |r| r.state == RolloutState::Completed)
        .await;
    let zepce = r.benches.iter().find(|p| p.bench.as_str() == "zepce-01").unwrap();
    assert_eq!(zepce.state, Progress::Skipped);
    assert_eq!(
        h.ota.layer(&Scope::Fleet).await.unwrap().content,
        *json!({"wifi": {"ssid": "Batches"}}).as_object().unwrap()
    );
    let s = h.ota.status("zepce-01").await.unwrap();
    assert_eq!(
        (s.record.desired.wifi.ssid.as_str(), s.record.state),
        ("Batches", DeliveryState::Pending)
    );
    assert_eq!(s.record.rollout_id.as_deref(), Some(r.id.as_str()));

    // Operator rollback: the fleet layer goes back to empty, everyone gets a new version.
    let completed = r.id.clone();
    let before = versions(&h).await;
    let r = h
        .ota
        .rollback_rollout("admin", &completed, Some("wrong name"))
        .await
        .unwrap();
    assert_eq!(r.state, RolloutState::RolledBack);
    assert_eq!(r.reason.as_deref(), Some("rolled back by admin: wrong name"));
    assert!(h.ota.layers().await.is_empty());
    let after = versions(&h).await;
    for b in &all {
        assert_eq!(after[b], before[b] + 1, "{b}");
    }
    let e = h.ota.rollback_rollout("admin", &completed, None).await.unwrap_err();
    assert!(matches!(e, OtaError::Conflict(_)), "{e:?}");

    // Restart mid-rollout: paused state and progress survive, then it finishes.
    h.fleet.set("zepce-01", BenchState::Online, 0);
    let strategy = Strategy {
        canary: vec![id("berkovici-01")],
        batch_size: None,
        soak_s: 1,
        step_timeout_s: 30,
        max_failure_ratio: 0.0,
    };
    let r = h
        .ota
        .create_rollout("ops", fleet_ssid("Restart", strategy))
        .await
        .unwrap();
    let v = versions(&h).await["berkovici-01"];
    h.ack("berkovici-01", &ConfigAck::applied(v));
    h.wait_rollout(&r.id, "canary soaking", |r| r.benches[0].state == Progress::Soaking)
        .await;
    let paused = h.ota.pause_rollout("ops", &r.id, Some("storm tonight")).await.unwrap();
    assert_eq!(paused.state, RolloutState::Paused);
    let audit = h.ota.audit(None, 1).await.unwrap();
    assert_eq!(
        (audit[0].action.as_str(), &audit[0].detail),
        ("rollout.pause", &serde_json::json!({"reason": "storm tonight"}))
    );
    let fleet = h.stop().await;
    let h = Harness::start_with(store.clone(), fleet).await;
    let r = h.ota.rollout(&r.id).await.unwrap();
    assert_eq!(
        (r.state, r.step, r.benches[0].state),
        (RolloutState::Paused, 0, Progress::Soaking)
    );
    h.ota.resume_rollout("ops", &r.id, None).await.unwrap();
    let r = h
        .wait_rollout(&r.id, "second step after restart", |r| r.step == 1)
        .await;
    assert_eq!(r.benches[0].state, Progress::Healthy);
    for p in r.benches.iter().filter(|p| p.step == 1) {
        h.ack(p.bench.as_str(), &ConfigAck::applied(p.version.unwrap()));
    }
    let r = h
        .wait_rollout(&r.id, "completed after restart", |r| r.state == RolloutState::Completed)
        .await;
    assert!(
        r.benches.iter().all(|p| p.state == Progress::Healthy),
        "{:?}",
        r.counts()
    );
    let summaries = h.ota.rollouts().await;
    let states: Vec<RolloutState> = summaries.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [RolloutState::Completed, RolloutState::RolledBack, RolloutState::Aborted]
    );
    let actions: Vec<String> = h
        .ota
        .audit(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    for expected in [
        "rollout.create",
        "rollout.auto_abort",
        "rollout.complete",
        "rollout.rollback",
        "rollout.pause",
        "rollout.resume",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} missing from {actions:?}"
        );
    }
    h.stop().await;
}

#[tokio::test]
async fn rollouts_on_sqlite() {
    let db = sqlite_database();
    rollouts(sqlite_store(&db).await).await;
}

#[tokio::test]
async fn rollouts_on_postgres() {
    let Some(db) = pg_database().await else { return };
    rollouts(pg_store(&db).await).await;
}

/// The store methods alone: round trips, the version guard, deletes, audit paging.
async fn store_story(store: Arc<dyn Store>) {
    let t0 = chrono::DateTime::parse_from_rfc3339("2026-11-26T10:00:00.123Z")
        .unwrap()
        .with_timezone(&Utc);
    assert!(store.ota_layers().await.unwrap().is_empty());
    assert!(store.ota_bench_configs().await.unwrap().is_empty());
    let mut record = BenchConfigRecord::first(id("zepce-01"), BenchConfig::default(), t0);
    record.desired.wifi.ssid = "Žepče \"free\" \\ wifi".into();
    let layer = LayerRecord {
        layer: Scope::Municipality("Žepče".into()),
        content: json!({"wifi": {"ssid": "Žepče"}}).as_object().unwrap().clone(),
        updated_at: t0,
        updated_by: "ops".into(),
    };
    let version = IssuedVersion {
        bench_id: id("zepce-01"),
        version: 1,
        config: record.desired.clone(),
        issued_at: t0,
        cause: "initial".into(),
        actor: "system".into(),
        rollout_id: None,
    };
    let audit = |action: &str| AuditEntry {
        id: 0,
        at: t0,
        actor: "ops".into(),
        action: action.into(),
        subject: "fleet".into(),
        detail: json!({"n": action}),
    };
    store
        .ota_write(&OtaWrite {
            layers: vec![layer.clone()],
            versions: vec![version.clone()],
            benches: vec![record.clone()],
            rollouts: vec![],
            audit: vec![audit("a"), audit("b"), audit("c")],
        })
        .await
        .unwrap();
    assert_eq!(store.ota_layers().await.unwrap(), std::slice::from_ref(&layer));
    assert_eq!(store.ota_bench_configs().await.unwrap(), [record.clone()]);
    assert_eq!(
        store.ota_versions("zepce-01", 5).await.unwrap(),
        std::slice::from_ref(&version)
    );
    let entries = store.ota_audit(None, 2).await.unwrap();
    assert_eq!(
        entries.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["c", "b"]
    );
    assert_eq!(entries[0].detail, json!({"n": "c"}));
    let older = store.ota_audit(Some(entries[1].id), 10).await.unwrap();
    assert_eq!(older.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["a"]);

    // Reusing a version fails the whole write.
    let mut next = record.clone();
    next.issue(BenchConfig::default(), Some("r1".into()), t0 + TimeDelta::seconds(1));
    let e = store
        .ota_write(&OtaWrite {
            versions: vec![version.clone()],
            benches: vec![next.clone()],
            ..OtaWrite::default()
        })
        .await;
    assert!(e.is_err());
    assert_eq!(store.ota_bench_configs().await.unwrap(), [record.clone()]);
    store
        .ota_write(&OtaWrite {
            benches: vec![next.clone()],
            ..OtaWrite::default()
        })
        .await
        .unwrap();
    // An older row never replaces a newer one.
    store
        .ota_write(&OtaWrite {
            benches: vec![record.clone()],
            ..OtaWrite::default()
        })
        .await
        .unwrap();
    assert_eq!(store.ota_bench_configs().await.unwrap(), [next]);

    // Rollouts round-trip whole; an empty layer is a delete.
    let request = fleet_ssid("X", Strategy::default());
    let rollout = Rollout::new(
        "r1".into(),
        request,
        "ops",
        vec![],
        vec![],
        vec![(id("zepce-01"), BenchConfig::default(), BenchConfig::default())],
        t0,
    );
    store
        .ota_write(&OtaWrite {
            layers: vec![LayerRecord {
                content: serde_json::Map::new(),
                ..layer
            }],
            rollouts: vec![rollout.clone()],
            ..OtaWrite::default()
        })
        .await
        .unwrap();
    assert!(store.ota_layers().await.unwrap().is_empty());
    assert_eq!(store.ota_rollouts().await.unwrap(), std::slice::from_ref(&rollout));
    let mut done = rollout;
    done.state = RolloutState::Completed;
    store
        .ota_write(&OtaWrite {
            rollouts: vec![done.clone()],
            ..OtaWrite::default()
        })
        .await
        .unwrap();
    assert_eq!(store.ota_rollouts().await.unwrap(), [done]);
}

#[tokio::test]
async fn store_story_on_sqlite() {
    let db = sqlite_database();
    store_story(sqlite_store(&db).await).await;
}

#[tokio::test]
async fn store_story_on_postgres() {
    let Some(db) = pg_database().await else { return };
    store_story(pg_store(&db).await).await;
}
