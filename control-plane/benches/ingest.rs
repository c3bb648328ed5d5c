//! Ingest benchmark: N messages from C bench connections through the embedded broker, ingest and
//! the store, on SQLite and (with `BENCHFLEET_TEST_DATABASE_URL`) PostgreSQL.
//!
//! ```sh
//! cargo bench -p control-plane --bench ingest -- [--messages 50000] [--clients 12] [--rate 0] [--runs 3]
//! ```
//!
//! Prints, per backend and run, messages/s (first publish to last row stored) and the
//! publish-to-stored latency p50/p99/max. Latency pairs the k-th stored row with the k-th
//! published message and is sampled by counting rows every 2 ms, so it is good to a few ms.
//! `--rate R` publishes open-loop at R msg/s in total (latency without saturation); 0 (the
//! default) publishes as fast as the QoS 1 in-flight window allows (throughput).

use std::sync::Arc;
use std::time::{Duration, Instant};

use control_plane::settings::Settings;
use hdrhistogram::Histogram;
use protocol::token::Secret;
use protocol::{Claims, Role};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

struct Args {
    messages: u64,
    clients: u64,
    rate: f64,
    runs: u32,
}

fn args() -> Args {
    let mut a = Args {
        messages: 50_000,
        clients: 12,
        rate: 0.0,
        runs: 3,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<f64>().ok())
                .expect("a number after the flag")
        };
        match flag.as_str() {
            "--messages" => a.messages = value() as u64,
            "--clients" => a.clients = value() as u64,
            "--rate" => a.rate = value(),
            "--runs" => a.runs = value() as u32,
            "--bench" => {}
            other => panic!("unknown argument {other}: use --messages N --clients C --rate R --runs K"),
        }
    }
    assert!(
        a.clients >= 1 && a.clients <= 12,
        "--clients must be 1-12 (one per registered bench)"
    );
    a
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut backends = vec![("sqlite", None)];
    if let Ok(url) = std::env::var("BENCHFLEET_TEST_DATABASE_URL") {
        backends.push(("postgres", Some(url)));
    } else {
        eprintln!("(set BENCHFLEET_TEST_DATABASE_URL to benchmark PostgreSQL too)");
    }
    println!(
        "ingest benchmark: {} messages, {} clients, QoS 1, {}",
        a.messages,
        a.clients,
        if a.rate > 0.0 {
            format!("open loop at {} msg/s", a.rate)
        } else {
            "as fast as possible".into()
        }
    );
    for (name, admin) in backends {
        let mut rates = Vec::new();
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for run in 1..=a.runs {
            let r = rt.block_on(one_run(&a, admin.as_deref()));
            println!(
                "{name:8} run {run}: {:>9.0} msg/s  p50 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms",
                r.0, r.1, r.2, r.3
            );
            rates.push(r.0);
            p50s.push(r.1);
            p99s.push(r.2);
        }
        println!(
            "{name:8} median: {:>9.0} msg/s  p50 {:>7.1} ms  p99 {:>7.1} ms",
            median(&mut rates),
            median(&mut p50s),
            median(&mut p99s)
        );
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Returns (msg/s, p50 ms, p99 ms, max ms).
async fn one_run(a: &Args, pg_admin: Option<&str>) -> (f64, f64, f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = match pg_admin {
        Some(_) => Some(
            control_plane::store::testing::pg_database()
                .await
                .expect("PostgreSQL database"),
        ),
        None => None,
    };
    let mut settings = Settings {
        data_dir: dir.path().into(),
        ..Settings::default()
    };
    settings.database_url = pg.as_ref().map(|d| d.url().to_owned());
    settings.api.listen = "127.0.0.1:0".parse().expect("addr");
    settings.mqtt.listen = "127.0.0.1:0".parse().expect("addr");
    let shutdown = CancellationToken::new();
    let running = control_plane::start(settings.clone(), shutdown.clone())
        .await
        .expect("control plane");
    let secret_text = std::fs::read_to_string(dir.path().join("jwt.secret")).expect("secret");
    let secret = Secret::new(secret_text.trim().as_bytes().to_vec());
    let rows = RowCounter::open(&settings.database_url()).await;

    let fleet: Vec<String> = protocol::Fleet::link4().iter().map(|b| b.id.to_string()).collect();
    let published = Arc::new(Mutex::new(Vec::with_capacity(a.messages as usize)));
    let per_client = a.messages / a.clients;
    let total = per_client * a.clients;
    let interval = (a.rate > 0.0).then(|| Duration::from_secs_f64(a.clients as f64 / a.rate));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for bench in fleet.iter().take(a.clients as usize) {
        let token = secret.sign(&Claims::new(Role::Bench, bench, Duration::from_secs(3600)));
        let mut o = MqttOptions::new(bench, running.mqtt_addr.ip().to_string(), running.mqtt_addr.port());
        o.set_credentials(bench, token);
        o.set_inflight(100);
        let (client, mut ev) = AsyncClient::new(o, 1000);
        loop {
            if let Ok(Event::Incoming(Packet::ConnAck(_))) = ev.poll().await {
                break;
            }
        }
        tokio::spawn(async move { while ev.poll().await.is_ok() {} });
        let published = published.clone();
        let bench = bench.clone();
        tasks.push(tokio::spawn(async move {
            let topic = format!("benches/{bench}/telemetry");
            let mut next = Instant::now();
            for seq in 1..=per_client {
                if let Some(i) = interval {
                    next += i;
                    tokio::time::sleep_until(next.into()).await;
                }
                let now = chrono::Utc::now();
                let payload = format!(
                    r#"{{"v":1,"ts":"{}","seq":{seq},"power":{{"solar_w":40.5,"battery_pct":77.0,"battery_v":12.8,"load_w":8.1}},"network":{{"rx_bytes":{},"tx_bytes":{},"wifi_clients":3}},"sessions":{{"wifi":3,"usb":1,"kiosk":0}},"health":{{"cpu_temp_c":48.0,"uptime_s":{seq},"faults":[]}}}}"#,
                    now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    seq * 1500,
                    seq * 700
                );
                published.lock().await.push(Instant::now());
                client.publish(&topic, QoS::AtLeastOnce, false, payload).await.expect("publish");
            }
        }));
    }
    // Count stored rows every 2 ms; the k-th row stored is paired with the k-th publish.
    let mut stored_at: Vec<Instant> = Vec::with_capacity(total as usize);
    let deadline = Instant::now() + Duration::from_secs(600);
    while (stored_at.len() as u64) < total && Instant::now() < deadline {
        let n = rows.count().await;
        let now = Instant::now();
        while (stored_at.len() as u64) < n.min(total) {
            stored_at.push(now);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    for t in tasks {
        t.await.expect("publisher");
    }
    assert_eq!(
        stored_at.len() as u64,
        total,
        "not every message was stored within 10 minutes"
    );
    let mut sent = published.lock().await.clone();
    sent.sort();
    let mut h = Histogram::<u64>::new(3).expect("histogram");
    for (s, st) in sent.iter().zip(&stored_at) {
        h.record(st.saturating_duration_since(*s).as_micros() as u64)
            .expect("record");
    }
    let elapsed = stored_at.last().map(|t| t.duration_since(started)).unwrap_or_default();
    shutdown.cancel();
    let _ = running.done.await;
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    (
        total as f64 / elapsed.as_secs_f64(),
        ms(0.5),
        ms(0.99),
        h.max() as f64 / 1000.0,
    )
}

/// A cheap `SELECT count(*)` on the benchmark's database, over a pool of its own.
enum RowCounter {
    Sqlite(sqlx::SqlitePool),
    Postgres(sqlx::PgPool),
}

impl RowCounter {
    async fn open(url: &str) -> Self {
        if url.starts_with("sqlite:") {
            Self::Sqlite(sqlx::SqlitePool::connect(url).await.expect("sqlite"))
        } else {
            Self::Postgres(sqlx::PgPool::connect(url).await.expect("postgres"))
        }
    }

    async fn count(&self) -> u64 {
        const SQL: &str = "SELECT count(*) FROM telemetry";
        let n: i64 = match self {
            Self::Sqlite(p) => sqlx::query_scalar(SQL).fetch_one(p).await.unwrap_or(0),
            Self::Postgres(p) => sqlx::query_scalar(SQL).fetch_one(p).await.unwrap_or(0),
        };
        n as u64
    }
}
