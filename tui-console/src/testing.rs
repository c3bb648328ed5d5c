//! Fixed data for tests: the 12 LINK 4 benches at a fixed time in every state, with drift,
//! faults and low batteries, their configuration state, rollouts in every kind of state, and
//! citizens' ideas in every kind of state, as the API would return them.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use protocol::config::BenchConfig;
use protocol::fleet::Location;
use protocol::idea::{IdeaDetail, IdeaPage, IdeaStep, IdeaView};
use protocol::ota::{Strategy, Target};
use protocol::{BenchId, BenchState, IdeaState, Role};

use crate::access::Access;
use crate::api::{
    Bench, BenchConfigStatus, BenchDetail, BenchProgress, BenchStateEvent, Bucket, DeliveryState, FleetSummary,
    HealthNow, NetworkNow, PowerNow, Progress, Readiness, Rollout, RolloutState, RolloutSummary, SessionCounts,
    SessionsNow, StateCounts, Stats, StatusChange, TelemetryPoint, TelemetrySeries,
};
use crate::app::{App, Window};
use crate::event::{ApiEvent, Event, StreamEvent};

pub fn t(s: &str) -> DateTime<Utc> {
    s.parse().expect("test time")
}

/// The fixed "now" of every fixture.
pub fn now() -> DateTime<Utc> {
    t("2026-11-26T10:00:00Z")
}

fn online(id: &str, municipality: &str, battery: f64, solar: f64, sessions: [u32; 3], clients: u32) -> Bench {
    Bench {
        id: id.into(),
        name: format!("{municipality} smart bench"),
        municipality: municipality.into(),
        location: Location { lat: 44.0, lon: 18.0 },
        state: BenchState::Online,
        since: Some(t("2026-11-26T06:30:00Z")),
        last_seen: Some(now() - TimeDelta::seconds(12)),
        until: None,
        fw: Some("1.4.2".into()),
        config_version: Some(7),
        sample_ts: Some(now() - TimeDelta::seconds(12)),
        power: Some(PowerNow {
            solar_w: solar,
            battery_pct: battery,
            battery_v: Some(12.0 + battery / 100.0),
            load_w: Some(7.5),
        }),
        network: Some(NetworkNow {
            rx_bytes: Some(50_000_000),
            tx_bytes: Some(8_000_000),
            wifi_clients: Some(clients),
            rssi_dbm: Some(-61),
        }),
        sessions: Some(SessionsNow {
            wifi: Some(sessions[0]),
            usb: Some(sessions[1]),
            kiosk: Some(sessions[2]),
            wifi_started: Some(120),
            usb_started: Some(30),
            kiosk_started: Some(12),
        }),
        health: Some(HealthNow {
            cpu_temp_c: Some(45.0),
            enclosure_temp_c: Some(31.0),
            uptime_s: Some(3 * 86_400 + 4 * 3600),
            disk_free_mb: Some(1200),
            faults: Vec::new(),
        }),
    }
}

/// The fleet as polled: every state, drift, faults, low batteries.
pub fn benches() -> Vec<Bench> {
    let mut v = vec![
        online("berkovici-01", "Berkovići", 87.0, 85.0, [3, 1, 0], 5),
        online("jablanica-01", "Jablanica", 64.0, 72.0, [1, 0, 0], 2),
        online("kostajnica-01", "Kostajnica", 41.0, 60.0, [0, 0, 1], 0),
        online("maglaj-01", "Maglaj", 55.0, 48.0, [2, 0, 0], 3),
        online("mostar-01", "Mostar", 92.0, 140.0, [5, 1, 0], 9),
        online("nevesinje-01", "Nevesinje", 4.0, 0.0, [0, 0, 0], 0),
        online("novi-grad-01", "Novi Grad", 71.0, 95.0, [2, 0, 1], 4),
        online("prijedor-01", "Prijedor", 66.0, 101.0, [4, 0, 0], 6),
        online("ravno-01", "Ravno", 14.0, 12.0, [0, 1, 0], 1),
        online("trebinje-01", "Trebinje", 0.0, 0.0, [0, 0, 0], 0),
        online("zavidovici-01", "Zavidovići", 78.0, 88.0, [1, 1, 0], 2),
        online("zepce-01", "Žepče", 81.0, 90.0, [0, 0, 0], 1),
    ];
    let get = |v: &mut Vec<Bench>, id: &str| -> usize { v.iter().position(|b| b.id == id).expect("fixture id") };

    let i = get(&mut v, "kostajnica-01");
    v[i].state = BenchState::Offline;
    v[i].since = Some(t("2026-11-26T09:12:04Z"));
    v[i].last_seen = Some(t("2026-11-26T09:11:40Z"));
    v[i].sample_ts = v[i].last_seen;

    let i = get(&mut v, "maglaj-01");
    v[i].state = BenchState::Stale;
    v[i].since = Some(t("2026-11-26T09:50:00Z"));
    v[i].last_seen = Some(t("2026-11-26T09:47:00Z"));
    v[i].sample_ts = v[i].last_seen;

    let i = get(&mut v, "nevesinje-01");
    v[i].state = BenchState::Sleeping;
    v[i].since = Some(t("2026-11-26T08:00:00Z"));
    v[i].until = Some(t("2026-11-26T16:00:00Z"));
    v[i].last_seen = Some(t("2026-11-26T08:00:00Z"));
    v[i].sample_ts = v[i].last_seen;

    let i = get(&mut v, "novi-grad-01");
    v[i].config_version = Some(6);

    // Reached by the running rollout (`rollout(1)`), which sends v8.
    for id in ["berkovici-01", "mostar-01", "zepce-01"] {
        let i = get(&mut v, id);
        v[i].config_version = Some(8);
    }

    let i = get(&mut v, "prijedor-01");
    if let Some(h) = &mut v[i].health {
        h.faults = vec!["stuck_sensor".into()];
    }

    let i = get(&mut v, "ravno-01");
    if let Some(h) = &mut v[i].health {
        h.faults = vec!["battery_failure".into(), "enclosure_temp_high".into()];
    }

    let i = get(&mut v, "trebinje-01");
    let b = &mut v[i];
    b.state = BenchState::NeverSeen;
    (b.since, b.last_seen, b.sample_ts, b.fw, b.config_version) = (None, None, None, None, None);
    (b.power, b.network, b.sessions, b.health) = (None, None, None, None);
    v
}

/// The same fleet a poll earlier: byte counters lower, so the console derives bandwidth.
pub fn benches_earlier() -> Vec<Bench> {
    let mut v = benches();
    for (i, b) in v.iter_mut().enumerate() {
        if let (Some(ts), Some(n)) = (&mut b.sample_ts, &mut b.network) {
            *ts -= TimeDelta::seconds(10);
            let i = i as u64;
            n.rx_bytes = n.rx_bytes.map(|x| x - 120_000 * (i + 1));
            n.tx_bytes = n.tx_bytes.map(|x| x - 3_000 * (i + 1));
        }
    }
    v
}

pub fn summary() -> FleetSummary {
    FleetSummary {
        at: now(),
        day_start: t("2026-11-26T00:00:00Z"),
        benches: 12,
        by_state: StateCounts {
            online: 8,
            offline: 1,
            stale: 1,
            sleeping: 1,
            never_seen: 1,
        },
        solar_energy_today_wh: 1234.0,
        sessions_today: 340,
        bytes_today: 2_100_000_000,
        faulty_benches: Vec::new(),
        low_battery_threshold_pct: 20.0,
        low_battery_benches: Vec::new(),
    }
}

/// An operator's console with the fixture loaded, the stream live, the control plane ready.
pub fn app() -> App {
    app_as(Role::Operator)
}

pub fn app_as(role: Role) -> App {
    let mut app = App::new(
        "http://127.0.0.1:8080",
        Access::with_role(role),
        Duration::from_secs(5),
        now() - TimeDelta::seconds(10),
    );
    let mut summary = summary();
    summary.faulty_benches = vec![crate::api::BenchFaults {
        bench_id: "ravno-01".into(),
        faults: vec!["battery_failure".into()],
    }];
    summary.low_battery_benches = vec![crate::api::BenchBattery {
        bench_id: "ravno-01".into(),
        battery_pct: 14.0,
    }];
    for e in [
        ApiEvent::Summary(Ok(summary)),
        ApiEvent::OtaBenches(Ok(config_statuses())),
        ApiEvent::Benches(Ok(benches_earlier())),
        ApiEvent::Readiness(Ok(Readiness {
            ready: true,
            problems: Vec::new(),
            mqtt_connections: Some(10),
            buffered_rows: Some(0),
        })),
        ApiEvent::Stream(StreamEvent::Connected),
    ] {
        app.update(Event::Api(e));
    }
    app.update(Event::Tick(now()));
    app.update(Event::Api(ApiEvent::Benches(Ok(benches()))));
    app
}

/// A live presence change.
pub fn state_event(id: &str, state: BenchState, at: &str, cause: &str) -> Event {
    Event::Api(ApiEvent::Stream(StreamEvent::BenchState(BenchStateEvent {
        bench_id: id.into(),
        state,
        at: t(at),
        cause: cause.into(),
        until: None,
    })))
}

/// `GET /api/v1/benches/{id}` for `id` in the fixture.
pub fn detail(id: &str) -> BenchDetail {
    let bench = benches().into_iter().find(|b| b.id == id).expect("fixture id");
    let change = |at: &str, state, cause: &str| StatusChange {
        at: t(at),
        state,
        cause: cause.into(),
        fw: Some("1.4.2".into()),
        config_version: Some(7),
        until: None,
    };
    BenchDetail {
        bench,
        recent_status: vec![
            change("2026-11-26T06:30:00Z", BenchState::Online, "connected"),
            change("2026-11-26T06:29:10Z", BenchState::Offline, "last_will"),
            change("2026-11-25T18:02:00Z", BenchState::Online, "telemetry_resumed"),
            change("2026-11-25T17:40:00Z", BenchState::Stale, "heartbeat_timeout"),
            change("2026-11-24T07:00:00Z", BenchState::Online, "connected"),
        ],
        status_next_cursor: None,
    }
}

/// An hour of one-minute buckets with a 10-minute gap, a sunny ramp and a busy spell.
pub fn series(id: &str, window: Window) -> TelemetrySeries {
    let (from, to) = window.range(now());
    let bucket = window.bucket();
    let step = TimeDelta::seconds(i64::try_from(bucket.seconds()).unwrap_or(60));
    let n = window.slots();
    let stats = |v: f64| Stats {
        avg: v,
        min: v - 1.0,
        max: v + 1.0,
    };
    let points = (0..n)
        .filter(|i| !(20..30).contains(i))
        .map(|i| {
            let x = i as f64 / n as f64;
            let busy = u64::from((35..50).contains(&i)) * 4 + (i as u64 % 3);
            TelemetryPoint {
                start: from + step * i32::try_from(i).unwrap_or(0),
                samples: 6,
                solar_w: stats(40.0 + 100.0 * x),
                battery_pct: stats(60.0 + 30.0 * x),
                load_w: Some(stats(7.5)),
                cpu_temp_c: Some(stats(45.0)),
                enclosure_temp_c: Some(stats(31.0)),
                sessions_max: SessionCounts {
                    wifi: Some(busy),
                    usb: Some(1),
                    kiosk: Some(0),
                },
                wifi_clients_max: Some(busy + 1),
                sessions_started: SessionCounts {
                    wifi: Some(busy / 2),
                    usb: Some(0),
                    kiosk: Some(0),
                },
                rx_bytes_per_s: Some(2_000.0 + 10_000.0 * busy as f64),
                tx_bytes_per_s: Some(500.0),
            }
        })
        .collect();
    TelemetrySeries {
        bench_id: id.into(),
        from,
        to,
        bucket: Bucket::from_seconds(bucket.seconds()).expect("bucket"),
        points,
    }
}

/// The id of fixture idea `n`.
pub fn idea_id(n: u32) -> String {
    format!("5f0c6f0e-9a51-4c1e-8d3b-{n:012}")
}

/// An idea received `minutes` before [`now`].
pub fn idea(n: u32, code: &str, municipality: &str, category: &str, state: IdeaState, minutes: i64) -> IdeaView {
    let received = now() - TimeDelta::minutes(minutes);
    IdeaView {
        id: idea_id(n),
        tracking_code: code.into(),
        bench_id: format!("{}-01", municipality.to_lowercase()),
        municipality: municipality.into(),
        submitted_at: received - TimeDelta::seconds(3),
        received_at: received,
        text: "Trebamo više kanti za smeće i kontejnera za reciklažu u parku.".into(),
        redacted: false,
        category: category.into(),
        lang: "bs".into(),
        state,
        org_id: None,
        offered_to: Vec::new(),
        attempts: 0,
        rule: None,
        deadline: None,
        duplicate_of: None,
        flag: None,
        has_contact: false,
        contact: None,
        confirmed_at: None,
        completed_at: None,
        updated_at: received,
    }
}

/// `GET /api/v1/moderation/queue`: a held idea, an escalated one and an unroutable one.
pub fn idea_queue() -> IdeaPage {
    let held = IdeaView {
        text: "Uvredljiv tekst o vijećnicima, pozovite me na 061 555 014.".into(),
        flag: Some("blocklisted: \"uvred\"".into()),
        has_contact: true,
        ..idea(1, "MOS-2026-0042", "Mostar", "infrastructure", IdeaState::Held, 7)
    };
    let escalated = IdeaView {
        attempts: 3,
        rule: Some("maglaj-youth".into()),
        ..idea(2, "MAG-2026-0007", "Maglaj", "youth", IdeaState::Escalated, 3 * 24 * 60)
    };
    let unroutable = idea(3, "TRE-2026-0003", "Trebinje", "tourism", IdeaState::Unroutable, 95);
    IdeaPage {
        items: vec![held, escalated, unroutable],
        next_cursor: None,
    }
}

/// `GET /api/v1/ideas?limit=50`: the newest ideas, including the queue's first.
pub fn idea_latest() -> IdeaPage {
    let queue = idea_queue().items;
    let offered = IdeaView {
        offered_to: vec!["lda-zepce".into()],
        attempts: 1,
        rule: Some("zepce-all".into()),
        deadline: Some(now() + TimeDelta::hours(46)),
        ..idea(4, "ZEP-2026-0011", "Žepče", "environment", IdeaState::Offered, 120)
    };
    let late = IdeaView {
        org_id: Some("omladinski-centar-ravno".into()),
        deadline: Some(now() - TimeDelta::hours(5)),
        confirmed_at: Some(now() - TimeDelta::days(8)),
        ..idea(
            5,
            "RAV-2026-0002",
            "Ravno",
            "culture",
            IdeaState::Confirmed,
            9 * 24 * 60,
        )
    };
    let duplicate = IdeaView {
        duplicate_of: Some("ZEP-2026-0011".into()),
        ..idea(6, "ZEP-2026-0012", "Žepče", "environment", IdeaState::Duplicate, 100)
    };
    let completed = IdeaView {
        org_id: Some("lda-mostar".into()),
        ..idea(
            7,
            "MOS-2026-0031",
            "Mostar",
            "social",
            IdeaState::Completed,
            20 * 24 * 60,
        )
    };
    IdeaPage {
        items: vec![queue[0].clone(), offered, duplicate, late, completed],
        next_cursor: None,
    }
}

/// `GET /api/v1/ideas/{id}` for an idea of the fixture.
pub fn idea_detail(id: &str) -> IdeaDetail {
    let idea = idea_queue()
        .items
        .into_iter()
        .chain(idea_latest().items)
        .find(|i| i.id == id)
        .expect("fixture idea");
    let step = |minutes: i64, actor: &str, action: &str, from: Option<IdeaState>, to: IdeaState| IdeaStep {
        at: idea.received_at + TimeDelta::minutes(minutes),
        actor: actor.into(),
        action: action.into(),
        from,
        to,
        org_id: None,
        public_note: None,
        internal_note: None,
    };
    let mut history = vec![step(
        0,
        &format!("bench:{}", idea.bench_id),
        "received",
        None,
        IdeaState::Received,
    )];
    if idea.state == IdeaState::Held {
        history.push(IdeaStep {
            internal_note: Some("blocklisted: \"uvred\"".into()),
            ..step(0, "system", "held", Some(IdeaState::Received), IdeaState::Held)
        });
    }
    IdeaDetail { idea, history }
}

/// The operator's fixture app in the ideas view with the queue, the newest ideas and the first
/// idea's history loaded.
pub fn ideas_app() -> App {
    let mut app = app();
    app.update(Event::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('3'),
        crossterm::event::KeyModifiers::NONE,
    )));
    app.update(Event::Api(ApiEvent::IdeaQueue(Ok(idea_queue()))));
    app.update(Event::Api(ApiEvent::Ideas(Ok(idea_latest()))));
    app.update(Event::Api(ApiEvent::IdeaDetail {
        id: idea_id(1),
        result: Ok(idea_detail(&idea_id(1))),
    }));
    app
}

/// `GET /api/v1/ota/benches`: every bench on v7, applied, except novi-grad-01 (still runs v6,
/// drifting), trebinje-01 (never seen, so never applied anything), and the two benches the
/// active rollout is sending v8 to (ravno-01 waits for its acknowledgement, prijedor-01
/// refused it).
pub fn config_statuses() -> Vec<BenchConfigStatus> {
    benches()
        .iter()
        .map(|b| {
            let mut c = BenchConfigStatus {
                bench_id: bench_id(&b.id),
                desired_version: 7,
                desired: BenchConfig::default(),
                issued_at: t("2026-11-20T08:00:00Z"),
                state: DeliveryState::Applied,
                state_at: t("2026-11-20T08:00:00Z"),
                reported_version: b.config_version,
                reported_at: None,
                error: None,
                drift_since: None,
                rollout_id: None,
                drift_seconds: 0,
                drifting: false,
            };
            match b.id.as_str() {
                "novi-grad-01" => {
                    (c.state, c.state_at) = (DeliveryState::Delivered, t("2026-11-26T09:20:00Z"));
                    (c.drift_seconds, c.drifting) = (40 * 60, true);
                }
                "trebinje-01" => {
                    c.state = DeliveryState::Pending;
                    (c.drift_seconds, c.drifting) = (6 * 86_400, true);
                }
                "berkovici-01" | "mostar-01" | "zepce-01" => {
                    c.desired_version = 8;
                    c.rollout_id = Some(rollout_id(1));
                    c.state_at = t("2026-11-26T09:45:00Z");
                }
                "ravno-01" | "prijedor-01" => {
                    c.desired_version = 8;
                    c.rollout_id = Some(rollout_id(1));
                    (c.state, c.state_at) = (DeliveryState::Delivered, t("2026-11-26T09:58:00Z"));
                    c.drift_seconds = 120;
                    if b.id == "prijedor-01" {
                        c.state = DeliveryState::Rejected;
                        c.error = Some("sleep.start: must be before sleep.end".into());
                    }
                }
                _ => {}
            }
            c
        })
        .collect()
}

/// The id of fixture rollout `n`.
pub fn rollout_id(n: u32) -> String {
    format!("{:08x}-3f0b-4d6e-9a1c-5b2d8e4f6a10", 0x7c1e_9a50 + n)
}

fn bench_id(id: &str) -> BenchId {
    BenchId::parse(id).expect("fixture bench ids are valid")
}

fn progress(bench: &str, step: usize, state: Progress, at: &str, detail: Option<&str>) -> BenchProgress {
    BenchProgress {
        bench: bench_id(bench),
        step,
        state,
        from: BenchConfig::default(),
        to: BenchConfig::default(),
        version: (state != Progress::Waiting).then_some(8),
        rollback_version: None,
        baseline_faults: None,
        soak_since: None,
        at: t(at),
        detail: detail.map(Into::into),
    }
}

/// `GET /api/v1/rollouts/{id}`: a rollout running in its second of three steps (the list's
/// first is rollout 1).
pub fn rollout(n: u32) -> Rollout {
    Rollout {
        id: rollout_id(n),
        created_at: t("2026-11-26T09:20:00Z"),
        created_by: "ana".into(),
        note: Some("earlier sleep for the winter".into()),
        target: Target::Municipalities(
            ["Mostar", "Žepče", "Ravno", "Prijedor", "Berkovići"]
                .map(String::from)
                .to_vec(),
        ),
        change: serde_json::json!({"sleep": {"start": "22:00"}}),
        strategy: Strategy::default(),
        before: Vec::new(),
        after: Vec::new(),
        state: RolloutState::Running,
        reason: None,
        step: 1,
        steps: 3,
        step_started_at: Some(t("2026-11-26T09:58:00Z")),
        paused_at: None,
        updated_at: t("2026-11-26T09:58:00Z"),
        finished_at: None,
        benches: vec![
            progress("mostar-01", 0, Progress::Healthy, "2026-11-26T09:45:00Z", None),
            progress("zepce-01", 0, Progress::Healthy, "2026-11-26T09:46:00Z", None),
            progress("berkovici-01", 1, Progress::Soaking, "2026-11-26T09:59:00Z", None),
            progress("ravno-01", 1, Progress::Pending, "2026-11-26T09:58:00Z", None),
            progress(
                "prijedor-01",
                1,
                Progress::Rejected,
                "2026-11-26T09:58:30Z",
                Some("the bench refused the change"),
            ),
            progress("jablanica-01", 2, Progress::Waiting, "2026-11-26T09:20:00Z", None),
            progress("maglaj-01", 2, Progress::Waiting, "2026-11-26T09:20:00Z", None),
        ],
    }
}

/// `GET /api/v1/rollouts`: the running rollout, one completed yesterday and one aborted, in
/// the server's order (newest first).
pub fn rollouts() -> Vec<RolloutSummary> {
    let running = rollout(1).summary();
    let completed = RolloutSummary {
        id: rollout_id(2),
        state: RolloutState::Completed,
        step: 2,
        steps: 3,
        reason: None,
        counts: [(Progress::Healthy, 11), (Progress::Skipped, 1)].into_iter().collect(),
        created_by: "emir".into(),
        created_at: t("2026-11-25T14:00:00Z"),
        updated_at: t("2026-11-25T15:10:00Z"),
    };
    let aborted = RolloutSummary {
        id: rollout_id(3),
        state: RolloutState::Aborted,
        step: 0,
        steps: 2,
        reason: Some("kiosk freezes after waking".into()),
        counts: [
            (Progress::RolledBack, 2),
            (Progress::Unhealthy, 1),
            (Progress::Waiting, 9),
        ]
        .into_iter()
        .collect(),
        created_by: "ana".into(),
        created_at: t("2026-11-24T09:00:00Z"),
        updated_at: t("2026-11-24T09:40:00Z"),
    };
    vec![running, completed, aborted]
}

/// The operator's fixture app in the rollouts view with the list and the running rollout
/// loaded.
pub fn rollouts_app() -> App {
    rollouts_app_as(Role::Operator)
}

pub fn rollouts_app_as(role: Role) -> App {
    let mut app = app_as(role);
    app.update(Event::Key(crossterm::event::KeyEvent::new(
        crossterm::event::KeyCode::Char('2'),
        crossterm::event::KeyModifiers::NONE,
    )));
    app.update(Event::Api(ApiEvent::Rollouts(Ok(rollouts()))));
    app.update(Event::Api(ApiEvent::RolloutDetail {
        id: rollout_id(1),
        result: Ok(rollout(1)),
    }));
    app
}
