//! Simulated benches against a real Mosquitto: presence, telemetry, configuration,
//! store-and-forward, sleep, ideas and faults.

#![allow(clippy::unwrap_used)]

#[path = "support/mosquitto.rs"]
mod mosquitto;

use std::collections::BTreeMap;
use std::time::Duration;

use bench_sim::{Credentials, Fault, FleetOptions, IdeaPace, LinkState, SimFleet};
use chrono::Utc;
use mosquitto::{Mosquitto, Observer, Received, eventually};
use protocol::status::AnnouncedState;
use protocol::telemetry::RejectReason;
use protocol::{Fleet, Status, Telemetry};
use rumqttc::QoS;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(20);

fn fleet(ids: &[&str]) -> Fleet {
    let toml: String = ids
        .iter()
        .map(|id| {
            format!("[[bench]]\nid='{id}'\nname='T'\nmunicipality='Mostar'\nlocation={{lat=43.343,lon=17.808}}\n")
        })
        .collect();
    Fleet::from_toml(&toml).unwrap()
}

fn options(m: &Mosquitto, ids: &[&str]) -> FleetOptions {
    let mut o = FleetOptions::new(m.url().parse().unwrap(), fleet(ids), Credentials::Anonymous);
    o.telemetry_interval = Some(Duration::from_millis(200));
    o.speed = 600.0;
    o.seed = 7;
    o.start = Some("2026-06-01T10:00:00Z".parse().unwrap());
    o.backoff_min = Duration::from_millis(100);
    o.backoff_max = Duration::from_secs(1);
    o
}

fn statuses(msgs: &[Received], topic: &str) -> Vec<Status> {
    msgs.iter()
        .filter(|m| m.topic == topic)
        .map(|m| Status::decode(&m.payload).unwrap())
        .collect()
}

fn telemetry(msgs: &[Received], topic: &str) -> Vec<Telemetry> {
    msgs.iter()
        .filter(|m| m.topic == topic)
        .filter_map(|m| Telemetry::decode(&m.payload, Utc::now()).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announces_online_sends_valid_telemetry_and_last_will_fires_on_abrupt_drop() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/#", false).await;
    let fleet = SimFleet::spawn(options(&m, &["alpha-01", "beta-01"]), CancellationToken::new()).unwrap();

    let status = "benches/alpha-01/status";
    let online = obs
        .wait_for("retained online status", WAIT, |msgs| {
            statuses(msgs, status)
                .into_iter()
                .find(|s| s.state == AnnouncedState::Online)
        })
        .await;
    assert_eq!(online.fw.as_deref(), Some(concat!("sim-", env!("CARGO_PKG_VERSION"))));
    assert_eq!(online.config_version, Some(0));

    let samples = obs
        .wait_for("three telemetry samples", WAIT, |msgs| {
            let t = telemetry(msgs, "benches/alpha-01/telemetry");
            (t.len() >= 3).then_some(t)
        })
        .await;
    let seqs: Vec<u64> = samples.iter().map(|t| t.seq).collect();
    assert_eq!(&seqs[..3], &[1, 2, 3]);
    assert!(
        samples
            .iter()
            .all(|t| t.health.uptime_s.is_some() && t.network.rx_bytes.is_some())
    );
    assert!(
        (Utc::now() - samples[0].ts).num_seconds().abs() < 30,
        "ts is wall-clock time"
    );
    let beta = obs
        .wait_for("beta telemetry", WAIT, |msgs| {
            telemetry(msgs, "benches/beta-01/telemetry").into_iter().next()
        })
        .await;
    assert_ne!(beta.power, samples[0].power, "benches have their own seeds");

    // A late subscriber gets the retained online status.
    let late = Observer::start(m.port, status, false).await;
    let retained = late
        .wait_for("retained status", WAIT, |msgs| msgs.first().cloned())
        .await;
    assert!(retained.retain);
    assert_eq!(Status::decode(&retained.payload).unwrap().state, AnnouncedState::Online);

    // Abrupt drop: the broker publishes the Last Will; the bench comes back.
    let before = statuses(&obs.messages(), status).len();
    fleet.inject("alpha-01", Fault::Disconnect).unwrap();
    obs.wait_for("Last Will offline", WAIT, |msgs| {
        statuses(msgs, status)[before..]
            .iter()
            .any(|s| s.state == AnnouncedState::Offline)
            .then_some(())
    })
    .await;
    obs.wait_for("online again", WAIT, |msgs| {
        let after: Vec<_> = statuses(msgs, status).into_iter().skip(before).collect();
        let offline = after.iter().position(|s| s.state == AnnouncedState::Offline)?;
        after[offline..]
            .iter()
            .any(|s| s.state == AnnouncedState::Online)
            .then_some(())
    })
    .await;
    eventually("two connects", WAIT, || {
        fleet.snapshot("alpha-01").unwrap().connects == 2
    })
    .await;
    // beta was not disturbed.
    assert!(
        statuses(&obs.messages(), "benches/beta-01/status")
            .iter()
            .all(|s| s.state == AnnouncedState::Online)
    );

    // A clean shutdown leaves `offline` retained.
    fleet.shutdown().await;
    let last = Observer::start(m.port, status, false).await;
    let retained = last
        .wait_for("retained status after shutdown", WAIT, |msgs| msgs.first().cloned())
        .await;
    assert_eq!(
        Status::decode(&retained.payload).unwrap().state,
        AnnouncedState::Offline
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applies_valid_configuration_and_rejects_invalid() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/#", false).await;
    let fleet = SimFleet::spawn(options(&m, &["gamma-01"]), CancellationToken::new()).unwrap();
    eventually("online", WAIT, || {
        fleet.snapshot("gamma-01").unwrap().link == LinkState::Online
    })
    .await;

    let doc =
        r#"{"v":1,"version":7,"issued_at":"2026-11-26T10:00:00Z","config":{"telemetry_interval_s":5,"brightness":3}}"#;
    obs.client
        .publish("benches/gamma-01/config", QoS::AtLeastOnce, true, doc)
        .await
        .unwrap();
    let ack = obs
        .wait_for("applied ack", WAIT, |msgs| {
            msgs.iter().find(|m| m.topic == "benches/gamma-01/config/ack").cloned()
        })
        .await;
    let ack: serde_json::Value = serde_json::from_slice(&ack.payload).unwrap();
    assert_eq!(ack, serde_json::json!({"v":1,"version":7,"status":"applied"}));
    let snap = fleet.snapshot("gamma-01").unwrap();
    assert_eq!(
        (snap.config_version, snap.telemetry_interval),
        (7, Duration::from_secs(5))
    );
    obs.wait_for("status with config version 7", WAIT, |msgs| {
        statuses(msgs, "benches/gamma-01/status")
            .into_iter()
            .find(|s| s.config_version == Some(7))
    })
    .await;

    // Samples now come every 5 s.
    let acked_at = Utc::now();
    let gap = obs
        .wait_for("two samples after the change", WAIT, |msgs| {
            let t: Vec<_> = telemetry(msgs, "benches/gamma-01/telemetry")
                .into_iter()
                .filter(|t| t.ts > acked_at)
                .collect();
            (t.len() >= 2).then(|| t[1].ts - t[0].ts)
        })
        .await;
    assert!(
        gap.num_milliseconds() >= 4_500 && gap.num_milliseconds() <= 8_000,
        "gap {gap}"
    );

    let bad = r#"{"v":1,"version":8,"config":{"telemetry_interval_s":2}}"#;
    obs.client
        .publish("benches/gamma-01/config", QoS::AtLeastOnce, true, bad)
        .await
        .unwrap();
    let ack = obs
        .wait_for("rejected ack", WAIT, |msgs| {
            msgs.iter()
                .filter(|m| m.topic == "benches/gamma-01/config/ack")
                .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap())
                .find(|a| a["version"] == 8)
        })
        .await;
    assert_eq!(ack["status"], "rejected");
    assert!(ack["error"].as_str().unwrap().contains("5-3600, got 2"), "{ack}");
    let snap = fleet.snapshot("gamma-01").unwrap();
    assert_eq!(
        (snap.config_version, snap.telemetry_interval),
        (7, Duration::from_secs(5))
    );

    // After a reconnect the retained document (version 8) comes again: the same answer.
    let before = obs.on("benches/gamma-01/config/ack").len();
    fleet.inject("gamma-01", Fault::Disconnect).unwrap();
    let again = obs
        .wait_for("ack after reconnect", WAIT, |msgs| {
            let all: Vec<_> = msgs
                .iter()
                .filter(|m| m.topic == "benches/gamma-01/config/ack")
                .collect();
            all.get(before)
                .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap())
        })
        .await;
    assert_eq!(
        (again["version"].as_u64(), again["status"].as_str()),
        (Some(8), Some("rejected"))
    );
    assert_eq!(fleet.snapshot("gamma-01").unwrap().config_version, 7);

    // The document it runs, sent again: applied, not "not newer".
    let before = obs.on("benches/gamma-01/config/ack").len();
    obs.client
        .publish("benches/gamma-01/config", QoS::AtLeastOnce, true, doc)
        .await
        .unwrap();
    let again = obs
        .wait_for("ack of the running version", WAIT, |msgs| {
            let all: Vec<_> = msgs
                .iter()
                .filter(|m| m.topic == "benches/gamma-01/config/ack")
                .collect();
            all.get(before)
                .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap())
        })
        .await;
    assert_eq!(again, serde_json::json!({"v":1,"version":7,"status":"applied"}));
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_rate_refuses_valid_configuration() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/lambda-01/config/ack", false).await;
    let mut o = options(&m, &["lambda-01"]);
    o.config_reject_rate = 1.0;
    let fleet = SimFleet::spawn(o, CancellationToken::new()).unwrap();
    eventually("online", WAIT, || {
        fleet.snapshot("lambda-01").unwrap().link == LinkState::Online
    })
    .await;
    let doc = r#"{"v":1,"version":3,"config":{"telemetry_interval_s":30}}"#;
    obs.client
        .publish("benches/lambda-01/config", QoS::AtLeastOnce, false, doc)
        .await
        .unwrap();
    let ack = obs.wait_for("ack", WAIT, |msgs| msgs.first().cloned()).await;
    let ack: serde_json::Value = serde_json::from_slice(&ack.payload).unwrap();
    assert_eq!(ack["status"], "rejected");
    assert!(ack["error"].as_str().unwrap().contains("simulated"), "{ack}");
    assert_eq!(fleet.snapshot("lambda-01").unwrap().config_version, 0);
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_forward_delivers_queued_samples_once_after_broker_restart() {
    let Some(mut m) = Mosquitto::start() else {
        return;
    };
    let obs = Observer::start(m.port, "benches/delta-01/telemetry", true).await;
    let fleet = SimFleet::spawn(options(&m, &["delta-01"]), CancellationToken::new()).unwrap();
    let topic = "benches/delta-01/telemetry";
    obs.wait_for("first samples", WAIT, |msgs| {
        (telemetry(msgs, topic).len() >= 3).then_some(())
    })
    .await;

    m.stop();
    let stopped_at = Utc::now();
    eventually("bench notices and queues", WAIT, || {
        let s = fleet.snapshot("delta-01").unwrap();
        s.link != LinkState::Online && s.queued >= 8
    })
    .await;
    let queued_up_to = fleet.snapshot("delta-01").unwrap().seq;
    m.restart();
    let restarted_at = Utc::now();

    let samples = obs
        .wait_for("every sample up to the queued ones", Duration::from_secs(30), |msgs| {
            let t = telemetry(msgs, topic);
            let mut seen: Vec<u64> = t.iter().map(|t| t.seq).filter(|&s| s <= queued_up_to).collect();
            seen.sort_unstable();
            seen.dedup();
            (seen.len() as u64 == queued_up_to).then_some(t)
        })
        .await;
    // Samples taken while the broker was down (it had exited before `stopped_at`) were never
    // sent before the restart: each arrives exactly once, in order, with the time it was taken.
    // (A sample in flight at the stop may come twice: QoS 1 is at least once.)
    let offline: Vec<_> = samples
        .iter()
        .filter(|t| t.ts > stopped_at && t.ts < restarted_at)
        .collect();
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for t in &offline {
        *counts.entry(t.seq).or_default() += 1;
    }
    let dupes: Vec<_> = counts.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dupes.is_empty(), "queued samples delivered twice: {dupes:?}");
    assert!(
        offline.len() >= 5,
        "only {} samples were taken during the outage",
        offline.len()
    );
    assert!(
        offline.windows(2).all(|w| w[1].seq == w[0].seq + 1),
        "in order with original seq"
    );
    let s = fleet.snapshot("delta-01").unwrap();
    assert_eq!(s.dropped, 0);
    assert_eq!(s.connects, 2);
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn goes_to_sleep_on_a_failed_battery_and_wakes_with_the_sun() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/epsilon-01/status", false).await;
    let mut o = options(&m, &["epsilon-01"]);
    // Evening in June, an hour of simulated time per real second.
    o.start = Some("2026-06-01T17:00:00Z".parse().unwrap());
    o.speed = 3600.0;
    let fleet = SimFleet::spawn(o, CancellationToken::new()).unwrap();
    eventually("online", WAIT, || {
        fleet.snapshot("epsilon-01").unwrap().link == LinkState::Online
    })
    .await;
    fleet.inject("epsilon-01", Fault::BatteryFailure).unwrap();

    let sleeping = obs
        .wait_for("sleeping status", Duration::from_secs(30), |msgs| {
            statuses(msgs, "benches/epsilon-01/status")
                .into_iter()
                .find(|s| s.state == AnnouncedState::Sleeping)
        })
        .await;
    let until = sleeping.until.unwrap();
    assert!(
        until > Utc::now() - chrono::TimeDelta::seconds(1),
        "until {until} is in the future"
    );
    assert_eq!(fleet.snapshot("epsilon-01").unwrap().link, LinkState::Sleeping);
    let seq_asleep = fleet.snapshot("epsilon-01").unwrap().seq;

    obs.wait_for("online after sunrise", Duration::from_secs(40), |msgs| {
        let s = statuses(msgs, "benches/epsilon-01/status");
        let slept = s.iter().position(|s| s.state == AnnouncedState::Sleeping)?;
        s[slept..]
            .iter()
            .any(|s| s.state == AnnouncedState::Online)
            .then_some(())
    })
    .await;
    eventually("telemetry again", WAIT, || {
        fleet.snapshot("epsilon-01").unwrap().seq > seq_asleep
    })
    .await;
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ideas_are_retried_with_the_same_id_until_acknowledged() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/zeta-01/ideas", false).await;
    let mut o = options(&m, &["zeta-01"]);
    // Saturday afternoon: the kiosk is busy.
    o.start = Some("2026-06-06T13:00:00Z".parse().unwrap());
    o.speed = 3600.0;
    o.ideas = IdeaPace::Modelled;
    o.idea_retry = Duration::from_millis(300);
    let fleet = SimFleet::spawn(o, CancellationToken::new()).unwrap();

    let ideas = |msgs: &[Received]| -> Vec<serde_json::Value> {
        msgs.iter()
            .map(|m| serde_json::from_slice(&m.payload).unwrap())
            .collect()
    };
    // Ignore the first attempt; wait for the retry with the same id.
    let (first, retry) = obs
        .wait_for("a retried idea", Duration::from_secs(40), |msgs| {
            let all = ideas(msgs);
            let first = all.first()?.clone();
            all[1..]
                .iter()
                .find(|i| i["idea_id"] == first["idea_id"])
                .map(|r| (first.clone(), r.clone()))
        })
        .await;
    assert_eq!(first, retry, "a retry is the same idea, byte for byte");
    for key in ["text", "category", "lang", "ts"] {
        assert!(first[key].is_string(), "{key} in {first}");
    }
    let id = first["idea_id"].as_str().unwrap().to_owned();
    let ack = format!(r#"{{"v":1,"idea_id":"{id}","status":"received"}}"#);
    obs.client
        .publish("benches/zeta-01/ideas/ack", QoS::AtLeastOnce, false, ack)
        .await
        .unwrap();
    eventually("ack counted", WAIT, || {
        fleet.snapshot("zeta-01").unwrap().ideas_acked >= 1
    })
    .await;
    // No more retries of an acknowledged idea.
    let count = |msgs: &[Received]| ideas(msgs).iter().filter(|i| i["idea_id"] == id.as_str()).count();
    let settled = count(&obs.messages());
    eventually("more ideas flow", Duration::from_secs(30), || {
        fleet.snapshot("zeta-01").unwrap().ideas_sent >= settled as u64 + 8
    })
    .await;
    assert!(
        count(&obs.messages()) <= settled + 1,
        "the acknowledged idea was sent again"
    );
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_ideas_come_back_after_the_hinted_wait_and_invalid_ones_are_given_up() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/iota-01/ideas", false).await;
    let mut o = options(&m, &["iota-01"]);
    o.start = Some("2026-06-06T13:00:00Z".parse().unwrap());
    o.speed = 3600.0;
    o.ideas = IdeaPace::Modelled;
    o.idea_retry = Duration::from_millis(300);
    let fleet = SimFleet::spawn(o, CancellationToken::new()).unwrap();
    let sends_of = |msgs: &[Received], id: &str| -> Vec<chrono::DateTime<Utc>> {
        msgs.iter()
            .filter(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()["idea_id"] == id)
            .map(|m| m.at)
            .collect()
    };
    let first = obs
        .wait_for("an idea", Duration::from_secs(40), |msgs| {
            msgs.first()
                .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap())
        })
        .await;
    let id = first["idea_id"].as_str().unwrap().to_owned();
    let ack =
        |status: &str, reason: &str| format!(r#"{{"v":1,"idea_id":"{id}","status":"{status}","reason":"{reason}"}}"#);

    obs.client
        .publish(
            "benches/iota-01/ideas/ack",
            QoS::AtLeastOnce,
            false,
            ack("rate_limited", "too many ideas from this bench; send again in 2 s"),
        )
        .await
        .unwrap();
    eventually("the refusal counted", WAIT, || {
        fleet.snapshot("iota-01").unwrap().ideas_rate_limited == 1
    })
    .await;
    let limited_at = Utc::now();
    let again = obs
        .wait_for("the same idea sent again", WAIT, |msgs| {
            sends_of(msgs, &id).into_iter().find(|at| *at > limited_at)
        })
        .await;
    assert!(
        again - limited_at >= chrono::TimeDelta::milliseconds(1500),
        "sent again {} ms after a refusal that asked for 2 s",
        (again - limited_at).num_milliseconds()
    );
    assert_eq!(fleet.snapshot("iota-01").unwrap().ideas_acked, 0);

    obs.client
        .publish(
            "benches/iota-01/ideas/ack",
            QoS::AtLeastOnce,
            false,
            ack("invalid", "text must have 10-2000 characters, not 4"),
        )
        .await
        .unwrap();
    eventually("the idea given up", WAIT, || {
        fleet.snapshot("iota-01").unwrap().ideas_given_up >= 1
    })
    .await;
    let settled = sends_of(&obs.messages(), &id).len();
    eventually("more ideas flow", Duration::from_secs(30), || {
        fleet.snapshot("iota-01").unwrap().ideas_sent >= settled as u64 + 8
    })
    .await;
    assert!(
        sends_of(&obs.messages(), &id).len() <= settled + 1,
        "an idea refused as invalid was sent again"
    );
    assert_eq!(fleet.snapshot("iota-01").unwrap().ideas_acked, 0);
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idea_pace_caps_how_often_a_bench_writes_ideas() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/kappa-01/ideas", false).await;
    let mut o = options(&m, &["kappa-01"]);
    // Busy enough to draft several ideas a second without the cap.
    o.start = Some("2026-06-06T13:00:00Z".parse().unwrap());
    o.speed = 36_000.0;
    o.ideas = IdeaPace::AtMostEvery(Duration::from_secs(3600));
    let fleet = SimFleet::spawn(o, CancellationToken::new()).unwrap();
    let ids = |msgs: &[Received]| -> std::collections::BTreeSet<String> {
        msgs.iter()
            .map(|m| serde_json::from_slice::<serde_json::Value>(&m.payload).unwrap()["idea_id"].to_string())
            .collect()
    };
    obs.wait_for("an idea", Duration::from_secs(40), |msgs| {
        (!msgs.is_empty()).then_some(())
    })
    .await;
    let seq = fleet.snapshot("kappa-01").unwrap().seq;
    eventually("twenty more samples", WAIT, || {
        fleet.snapshot("kappa-01").unwrap().seq >= seq + 20
    })
    .await;
    assert_eq!(ids(&obs.messages()).len(), 1, "one idea per hour at most");
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_show_on_the_wire() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/#", false).await;
    let fleet = SimFleet::spawn(options(&m, &["eta-01", "theta-01"]), CancellationToken::new()).unwrap();
    let topic = "benches/eta-01/telemetry";
    eventually("online", WAIT, || {
        fleet.snapshot("eta-01").unwrap().link == LinkState::Online
    })
    .await;
    obs.wait_for("samples", WAIT, |msgs| {
        (telemetry(msgs, topic).len() >= 2).then_some(())
    })
    .await;

    let rejected = |msgs: &[Received], topic: &str, reason: RejectReason| {
        msgs.iter()
            .filter(|m| m.topic == topic)
            .any(|m| Telemetry::decode(&m.payload, Utc::now()).is_err_and(|e| e.reason == reason))
    };
    fleet.inject("eta-01", Fault::MalformedPayload).unwrap();
    obs.wait_for("malformed payload", WAIT, |msgs| {
        rejected(msgs, topic, RejectReason::MalformedJson).then_some(())
    })
    .await;
    fleet.inject("eta-01", Fault::OversizedPayload).unwrap();
    obs.wait_for("oversized payload", WAIT, |msgs| {
        rejected(msgs, topic, RejectReason::Oversized).then_some(())
    })
    .await;

    // Telemetry from eta on the topic of a bench that is not running here.
    let target = protocol::BenchId::parse("iota-01").unwrap();
    fleet
        .inject("eta-01", Fault::ForeignTopic { target: Some(target) })
        .unwrap();
    let foreign = obs
        .wait_for("message on another bench's topic", WAIT, |msgs| {
            msgs.iter().find(|m| m.topic == "benches/iota-01/telemetry").cloned()
        })
        .await;
    assert!(
        Telemetry::decode(&foreign.payload, Utc::now()).is_ok(),
        "a well-formed sample, just on the wrong topic"
    );

    fleet
        .inject(
            "eta-01",
            Fault::ClockSkew {
                offset: chrono::TimeDelta::hours(2),
                duration: None,
            },
        )
        .unwrap();
    obs.wait_for("skewed ts", WAIT, |msgs| {
        telemetry(msgs, topic)
            .iter()
            .any(|t| (t.ts - Utc::now()).num_minutes() > 100)
            .then_some(())
    })
    .await;

    let before = telemetry(&obs.messages(), topic).last().unwrap().clone();
    fleet.inject("eta-01", Fault::Reboot).unwrap();
    let after = obs
        .wait_for("a sample after the reboot", WAIT, |msgs| {
            telemetry(msgs, topic)
                .into_iter()
                .find(|t| t.seq > before.seq && t.health.uptime_s < before.health.uptime_s)
        })
        .await;
    assert!(after.sessions.wifi_started <= before.sessions.wifi_started);
    assert!(after.network.rx_bytes < before.network.rx_bytes);
    assert!(
        after.health.uptime_s.unwrap() < 3600 * 2,
        "uptime restarted: {:?}",
        after.health.uptime_s
    );
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flapping_loses_no_samples() {
    let Some(m) = Mosquitto::start() else { return };
    let obs = Observer::start(m.port, "benches/kappa-01/#", false).await;
    let fleet = SimFleet::spawn(options(&m, &["kappa-01"]), CancellationToken::new()).unwrap();
    eventually("online", WAIT, || {
        fleet.snapshot("kappa-01").unwrap().link == LinkState::Online
    })
    .await;
    fleet
        .inject(
            "kappa-01",
            Fault::Flapping {
                duration: Duration::from_secs(3),
                period: Duration::from_millis(500),
            },
        )
        .unwrap();
    eventually("several reconnects", WAIT, || {
        fleet.snapshot("kappa-01").unwrap().connects >= 4
    })
    .await;
    let wills = obs
        .wait_for("Last Wills", WAIT, |msgs| {
            let n = statuses(msgs, "benches/kappa-01/status")
                .iter()
                .filter(|s| s.state == AnnouncedState::Offline)
                .count();
            (n >= 3).then_some(n)
        })
        .await;
    assert!(wills >= 3);
    // After the flapping, every sample up to now arrives (at least once: a sample whose PUBACK
    // was cut off is sent again).
    eventually("flapping over and queue empty", WAIT, || {
        let s = fleet.snapshot("kappa-01").unwrap();
        s.link == LinkState::Online && s.queued == 0 && s.seq > 30
    })
    .await;
    let upto = fleet.snapshot("kappa-01").unwrap().seq;
    obs.wait_for("every seq delivered", WAIT, |msgs| {
        let mut seqs: Vec<u64> = telemetry(msgs, "benches/kappa-01/telemetry")
            .iter()
            .map(|t| t.seq)
            .filter(|&s| s <= upto)
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        (seqs.len() as u64 == upto).then_some(())
    })
    .await;
    assert_eq!(fleet.snapshot("kappa-01").unwrap().dropped, 0);
    fleet.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scenario_faults_fire_at_their_offsets_on_their_benches() {
    let Some(m) = Mosquitto::start() else { return };
    let mut o = options(&m, &["mu-01", "nu-01"]);
    o.scenario =
        bench_sim::Scenario::from_toml("[[fault]]\nat = \"1s\"\nkind = \"disconnect\"\nbench = \"mu-01\"\n").unwrap();
    let started = std::time::Instant::now();
    let fleet = SimFleet::spawn(o, CancellationToken::new()).unwrap();
    eventually("mu-01 reconnected after the scheduled drop", WAIT, || {
        fleet.snapshot("mu-01").unwrap().connects == 2
    })
    .await;
    assert!(started.elapsed() >= Duration::from_secs(1), "not before its offset");
    assert_eq!(fleet.snapshot("mu-01").unwrap().faults_injected, 1);
    assert_eq!(fleet.snapshot("nu-01").unwrap().faults_injected, 0);
    assert_eq!(fleet.snapshot("nu-01").unwrap().connects, 1);
    fleet.shutdown().await;
}
