//! HTTP API benchmark: the real control plane on SQLite and (with `BENCHFLEET_TEST_DATABASE_URL`)
//! PostgreSQL, its store seeded with days of telemetry from the 12 benches, under concurrent
//! closed-loop load.
//!
//! ```sh
//! cargo bench -p control-plane --bench api -- [--days 7] [--interval 10] [--clients 16] [--seconds 10] [--runs 3] [--wrk]
//! ```
//!
//! Scenarios: fleet status (`GET /api/v1/benches`), a 24 h history of one bench in 5-minute
//! buckets and a 30-day history in 1-hour buckets (`GET /api/v1/benches/{id}/telemetry`,
//! rotating over the benches), and the fleet summary (`GET /api/v1/fleet/summary`: today's
//! energy, sessions and bytes over every bench). The samples run to the end of the current UTC
//! day, so the summary always reads a whole day, as it would just before midnight; the rollups
//! are brought up to date before the scenarios run (the time it took is printed).
//! Prints requests/s and latency p50/p99 per run and the medians. `--wrk` drives the load with
//! `wrk` (Debian package `wrk`) instead of the built-in client, which shares the machine's cores
//! with the server and so understates what the server alone can do.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use control_plane::settings::Settings;
use control_plane::store::{Store, connect};
use control_plane::telemetry::TelemetryRow;
use hdrhistogram::Histogram;
use protocol::token::Secret;
use protocol::{Claims, Role};
use tokio_util::sync::CancellationToken;

struct Args {
    days: i64,
    interval_s: i64,
    clients: usize,
    seconds: u64,
    runs: u32,
    wrk: bool,
}

fn args() -> Args {
    let mut a = Args {
        days: 7,
        interval_s: 10,
        clients: 16,
        seconds: 10,
        runs: 3,
        wrk: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<u64>().ok())
                .expect("a whole number after the flag")
        };
        match flag.as_str() {
            "--days" => a.days = value() as i64,
            "--interval" => a.interval_s = value() as i64,
            "--clients" => a.clients = value() as usize,
            "--seconds" => a.seconds = value(),
            "--runs" => a.runs = value() as u32,
            "--wrk" => a.wrk = true,
            "--bench" => {}
            other => {
                panic!("unknown argument {other}: use --days D --interval S --clients C --seconds S --runs K --wrk")
            }
        }
    }
    assert!(a.days >= 1 && a.interval_s >= 1 && a.clients >= 1 && a.runs >= 1);
    a
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut backends = vec!["sqlite"];
    if std::env::var("BENCHFLEET_TEST_DATABASE_URL").is_ok() {
        backends.push("postgres");
    } else {
        eprintln!("(set BENCHFLEET_TEST_DATABASE_URL to benchmark PostgreSQL too)");
    }
    println!(
        "API benchmark: 12 benches, {} days of telemetry every {} s, {} concurrent clients ({}), {} s per run",
        a.days,
        a.interval_s,
        a.clients,
        if a.wrk { "wrk" } else { "built-in client" },
        a.seconds
    );
    for backend in backends {
        rt.block_on(one_backend(&a, backend));
    }
}

async fn one_backend(a: &Args, backend: &str) {
    let dir = tempfile::tempdir().expect("temp dir");
    let pg = if backend == "postgres" {
        Some(
            control_plane::store::testing::pg_database()
                .await
                .expect("PostgreSQL database"),
        )
    } else {
        None
    };
    let mut settings = Settings {
        data_dir: dir.path().into(),
        ..Settings::default()
    };
    settings.database_url = pg.as_ref().map(|d| d.url().to_owned());
    settings.api.listen = "127.0.0.1:0".parse().expect("addr");
    settings.mqtt.listen = "127.0.0.1:0".parse().expect("addr");
    // The benchmark brings the rollups up to date itself, before the scenarios.
    settings.store.rollup_interval_ms = 3_600_000;
    let shutdown = CancellationToken::new();
    let running = control_plane::start(settings.clone(), shutdown.clone())
        .await
        .expect("control plane");
    let store = connect(&settings.database_url(), &Default::default())
        .await
        .expect("store");
    let now = Utc::now();
    let started = Instant::now();
    // To the end of today: the fleet summary reads a whole day of samples.
    let day_end = now.date_naive().and_hms_opt(0, 0, 0).expect("midnight").and_utc() + TimeDelta::days(1);
    let rows = seed(store.as_ref(), day_end, a).await;
    println!(
        "{backend}: seeded {rows} rows in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // rollups: what the control plane's maintainer does over time, at once (ends after the day).
    let started = Instant::now();
    let mut minutes = 0;
    loop {
        let n = store
            .refresh_rollups(day_end + TimeDelta::minutes(1), 5_000)
            .await
            .expect("refresh");
        minutes += n;
        if n < 5_000 {
            break;
        }
    }
    println!(
        "{backend}: rolled up {minutes} bench-minutes in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let secret_text = std::fs::read_to_string(dir.path().join("jwt.secret")).expect("secret");
    let secret = Secret::new(secret_text.trim().as_bytes().to_vec());
    let token = secret.sign(&Claims::new(Role::Viewer, "api-bench", Duration::from_secs(3600)));
    let base = format!("http://{}", running.api_addr);
    let stamp = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    let (from, to) = (stamp(now - TimeDelta::hours(24)), stamp(now));
    let month_from = stamp(now - TimeDelta::days(30));
    let benches: Vec<String> = protocol::Fleet::link4().iter().map(|b| b.id.to_string()).collect();
    let scenarios: Vec<(&str, Vec<String>)> = vec![
        ("fleet status", vec![format!("{base}/api/v1/benches")]),
        (
            "24 h history",
            benches
                .iter()
                .map(|b| format!("{base}/api/v1/benches/{b}/telemetry?from={from}&to={to}&bucket=5m"))
                .collect(),
        ),
        (
            "30 d history",
            benches
                .iter()
                .map(|b| format!("{base}/api/v1/benches/{b}/telemetry?from={month_from}&to={to}&bucket=1h"))
                .collect(),
        ),
        ("fleet summary", vec![format!("{base}/api/v1/fleet/summary")]),
    ];
    for (name, urls) in scenarios {
        let mut rates = Vec::new();
        let mut p50s = Vec::new();
        let mut p99s = Vec::new();
        for run in 1..=a.runs {
            let r = if a.wrk {
                wrk(&urls[0], &token, a)
            } else {
                closed_loop(Arc::new(urls.clone()), &token, a).await
            };
            println!(
                "{backend:8} {name:13} run {run}: {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
                r.0, r.1, r.2
            );
            rates.push(r.0);
            p50s.push(r.1);
            p99s.push(r.2);
        }
        println!(
            "{backend:8} {name:13} median: {:>8.0} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms",
            median(&mut rates),
            median(&mut p50s),
            median(&mut p99s)
        );
    }
    shutdown.cancel();
    let _ = running.done.await;
}

/// `days` of samples for every bench up to `end`: a solar curve, counters that grow and reset
/// once a day (a nightly reboot), sessions coming and going.
async fn seed(store: &dyn Store, end: DateTime<Utc>, a: &Args) -> u64 {
    let fleet: Vec<String> = protocol::Fleet::link4().iter().map(|b| b.id.to_string()).collect();
    let per_bench = a.days * 86_400 / a.interval_s;
    let start = end - TimeDelta::seconds(per_bench * a.interval_s);
    let mut batch = Vec::with_capacity(5_000);
    let mut stored = 0;
    for i in 0..per_bench {
        let ts = start + TimeDelta::seconds(i * a.interval_s);
        let since_boot = ts.timestamp() % 86_400;
        let hour = since_boot as f64 / 3600.0;
        let sun = ((hour - 6.0) / 12.0 * std::f64::consts::PI).sin().max(0.0);
        for (k, bench) in fleet.iter().enumerate() {
            let k = k as i64;
            batch.push(TelemetryRow {
                bench_id: bench.clone(),
                ts,
                seq: i,
                received_at: ts,
                solar_w: 120.0 * sun,
                battery_pct: 40.0 + 50.0 * sun,
                battery_v: Some(12.4 + sun),
                load_w: Some(8.0 + (i % 7) as f64),
                rx_bytes: Some(since_boot * (900 + k)),
                tx_bytes: Some(since_boot * (300 + k)),
                wifi_clients: Some(((i + k) % 9) as i32),
                rssi_dbm: Some(-67),
                sessions_wifi: Some(((i + k) % 6) as i32),
                sessions_usb: Some(((i + k) % 3) as i32),
                sessions_kiosk: Some(((i + k) % 2) as i32),
                wifi_started: Some(since_boot / 300),
                usb_started: Some(since_boot / 900),
                kiosk_started: Some(since_boot / 1800),
                cpu_temp_c: Some(45.0 + 10.0 * sun),
                enclosure_temp_c: Some(20.0 + 15.0 * sun),
                uptime_s: Some(since_boot),
                disk_free_mb: Some(2_100),
                faults: Vec::new(),
            });
            if batch.len() == batch.capacity() {
                stored += store.insert_telemetry(&batch).await.expect("seed");
                batch.clear();
            }
        }
    }
    stored += store.insert_telemetry(&batch).await.expect("seed");
    stored
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `clients` tasks each sending the next request as soon as the last one answered, rotating over
/// `urls`, for `seconds`. Returns (req/s, p50 ms, p99 ms); panics on any non-200.
async fn closed_loop(urls: Arc<Vec<String>>, token: &str, a: &Args) -> (f64, f64, f64) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(a.clients)
        .build()
        .expect("client");
    let auth = format!("Bearer {token}");
    let deadline = Instant::now() + Duration::from_secs(a.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..a.clients {
        let (client, urls, auth) = (client.clone(), urls.clone(), auth.clone());
        tasks.push(tokio::spawn(async move {
            let mut h = Histogram::<u64>::new(3).expect("histogram");
            let mut i = c;
            while Instant::now() < deadline {
                let url = &urls[i % urls.len()];
                i += 1;
                let sent = Instant::now();
                let response = client
                    .get(url)
                    .header("authorization", &auth)
                    .send()
                    .await
                    .expect("request");
                let status = response.status();
                let body = response.bytes().await.expect("body");
                assert_eq!(status, 200, "{url}: {}", String::from_utf8_lossy(&body));
                h.record(sent.elapsed().as_micros() as u64).expect("record");
            }
            h
        }));
    }
    let mut all = Histogram::<u64>::new(3).expect("histogram");
    for t in tasks {
        all.add(t.await.expect("client task")).expect("merge");
    }
    let elapsed = started.elapsed().as_secs_f64();
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    (all.len() as f64 / elapsed, ms(0.5), ms(0.99))
}

/// Runs `wrk` on one URL; returns (req/s, p50 ms, p99 ms).
fn wrk(url: &str, token: &str, a: &Args) -> (f64, f64, f64) {
    let out = Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", a.clients),
            &format!("-d{}s", a.seconds),
            "--latency",
        ])
        .args(["-H", &format!("Authorization: Bearer {token}"), url])
        .output()
        .expect("wrk on PATH (apt-get install wrk)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("Non-2xx"), "wrk saw error responses:\n{text}");
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {prefix:?} in wrk output:\n{text}"))
            .to_owned()
    };
    let ms = |v: String| -> f64 {
        let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
        let n: f64 = n.parse().unwrap_or(f64::NAN);
        match unit {
            "us" => n / 1000.0,
            "ms" => n,
            "s" => n * 1000.0,
            _ => f64::NAN,
        }
    };
    let rate: f64 = field("Requests/sec:").parse().unwrap_or(f64::NAN);
    (rate, ms(field("50%")), ms(field("99%")))
}
