//! The peers side by side in one run: the same open-loop QoS 1 load (`bench-sim load`, in
//! process) into Debian's Mosquitto, then the control plane on SQLite, then on PostgreSQL.
//!
//! ```sh
//! BENCHFLEET_TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p tests --bench peers -- [--benches 500] [--rate 60] [--duration 15] [--runs 3]
//! ```
//!
//! Per target and run it prints: offered, acked (PUBACK), stored (the control plane: rows
//! counted in its database), how long after the end of the load the last row was confirmed
//! stored, end-to-end stored rows/s, the ratio of that to Mosquitto's acked rows/s, and PUBACK and
//! storage-ack latency from the intended send time; then the medians over the runs.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark: a failed unwrap is a failed run

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bench_sim::{Broker, Credentials, LoadOptions, LoadReport, Rate, run_load};
use control_plane::store;
use sqlx::Connection;
use tests::ControlPlane;

struct Args {
    benches: u32,
    rate: f64,
    duration: u64,
    runs: usize,
}

fn args() -> Args {
    let mut a = Args {
        benches: 500,
        rate: 60.0,
        duration: 15,
        runs: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .and_then(|v| v.parse::<f64>().ok())
                .expect("a number after the flag")
        };
        match flag.as_str() {
            "--benches" => a.benches = value() as u32,
            "--rate" => a.rate = value(),
            "--duration" => a.duration = value() as u64,
            "--runs" => a.runs = value() as usize,
            "--bench" => {}
            other => panic!("unknown argument {other}: use --benches N --rate R --duration S --runs K"),
        }
    }
    a
}

/// One target's figures from one run.
#[derive(Clone, Copy, Default)]
struct Row {
    offered: u64,
    acked: u64,
    stored: Option<u64>,
    /// Samples the control plane confirmed stored (storage acks), beside the rows counted.
    confirmed: Option<u64>,
    last_stored_after_s: Option<f64>,
    stored_per_s: Option<f64>,
    acked_per_s: f64,
    puback_p50: f64,
    puback_p99: f64,
    storage_p99: Option<f64>,
}

impl Row {
    fn from(report: &LoadReport, stored: Option<u64>) -> Self {
        let s = report.storage.as_ref();
        let window = report.duration_s + s.map_or(0.0, |s| s.last_stored_after_s);
        Self {
            offered: report.offered,
            acked: report.acked,
            stored,
            confirmed: s.map(|s| s.stored_acked),
            last_stored_after_s: s.map(|s| s.last_stored_after_s),
            stored_per_s: stored.map(|n| n as f64 / window),
            acked_per_s: report.msgs_per_s,
            puback_p50: report.latency_ms.p50.unwrap_or(f64::NAN),
            puback_p99: report.latency_ms.p99.unwrap_or(f64::NAN),
            storage_p99: s.and_then(|s| s.latency_ms.p99),
        }
    }
}

fn load(args: &Args, port: u16, credentials: Credentials) -> LoadOptions {
    let mut o = LoadOptions::new(
        Broker::new("127.0.0.1", port),
        args.benches,
        Rate::per_second(args.rate),
        Duration::from_secs(args.duration),
    );
    o.storage_acks = !matches!(credentials, Credentials::Anonymous);
    o.credentials = credentials;
    o.drain = Duration::from_secs(60);
    o
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Mosquitto(Child);

impl Drop for Mosquitto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn mosquitto(port: u16, dir: &std::path::Path) -> Mosquitto {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"),
    )
    .unwrap();
    let child = Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto (apt-get install mosquitto)");
    std::thread::sleep(Duration::from_millis(300));
    Mosquitto(child)
}

async fn rows_in(cp: &ControlPlane) -> u64 {
    const SQL: &str = "SELECT COUNT(*) FROM telemetry";
    let n: i64 = if cp.database_url.starts_with("postgres") {
        let mut c = sqlx::PgConnection::connect(&cp.database_url).await.unwrap();
        sqlx::query_scalar(SQL).fetch_one(&mut c).await.unwrap()
    } else {
        let mut c = sqlx::SqliteConnection::connect(&cp.database_url).await.unwrap();
        sqlx::query_scalar(SQL).fetch_one(&mut c).await.unwrap()
    };
    n as u64
}

async fn control_plane(args: &Args, database_url: Option<&str>) -> Row {
    let benches = args.benches.to_string();
    let cp = ControlPlane::start_logging(database_url, &["--load-test-benches", &benches], "info");
    let credentials = Credentials::from_secret_file(&cp.data_dir().join("jwt.secret")).unwrap();
    let report = run_load(load(args, cp.mqtt.port(), credentials), |_| {}).await.unwrap();
    let stored = rows_in(&cp).await;
    let _ = cp.stop();
    Row::from(&report, Some(stored))
}

fn print(target: &str, r: &Row, mosquitto_acked_per_s: f64) {
    let opt = |v: Option<f64>, digits: usize| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"));
    println!(
        "{target:<12} {:>8} {:>8} {:>8} {:>9} {:>8} {:>10} {:>6} {:>8.2} {:>8.2} {:>9}",
        r.offered,
        r.acked,
        r.stored.map_or_else(|| "—".to_owned(), |n| n.to_string()),
        r.confirmed.map_or_else(|| "—".to_owned(), |n| n.to_string()),
        opt(r.last_stored_after_s, 2),
        opt(r.stored_per_s.or(r.stored.is_none().then_some(r.acked_per_s)), 0),
        opt(
            r.stored_per_s
                .or(r.stored.is_none().then_some(r.acked_per_s))
                .map(|v| v / mosquitto_acked_per_s),
            2
        ),
        r.puback_p50,
        r.puback_p99,
        opt(r.storage_p99, 0),
    );
}

fn header() {
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>9} {:>8} {:>10} {:>6} {:>8} {:>8} {:>9}",
        "target",
        "offered",
        "acked",
        "stored",
        "confirmed",
        "last_s",
        "e2e_msg/s",
        "ratio",
        "p50_ms",
        "p99_ms",
        "store_p99"
    );
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main]
async fn main() {
    let args = args();
    let pg_url = std::env::var("BENCHFLEET_TEST_DATABASE_URL").ok();
    if pg_url.is_none() {
        eprintln!("BENCHFLEET_TEST_DATABASE_URL is not set: PostgreSQL is left out");
    }
    let dir = tempfile::tempdir().unwrap();
    println!(
        "{} benches × {}/s = {} msg/s offered for {} s, QoS 1, {} run(s); load average {}",
        args.benches,
        args.rate,
        f64::from(args.benches) * args.rate,
        args.duration,
        args.runs,
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    let mut all: Vec<(&str, Vec<Row>)> = vec![("mosquitto", vec![]), ("sqlite", vec![]), ("postgres", vec![])];
    for run in 1..=args.runs {
        let port = free_port();
        let m = mosquitto(port, dir.path());
        let report = run_load(load(&args, port, Credentials::Anonymous), |_| {})
            .await
            .unwrap();
        drop(m);
        let mosquitto_row = Row::from(&report, None);
        let sqlite = control_plane(&args, None).await;
        // A fresh database each run: rows are counted per run.
        let postgres = match &pg_url {
            Some(_) => {
                let db = store::testing::pg_database().await.unwrap();
                Some(control_plane(&args, Some(db.url())).await)
            }
            None => None,
        };
        println!("\nrun {run}");
        header();
        print("mosquitto", &mosquitto_row, mosquitto_row.acked_per_s);
        print("sqlite", &sqlite, mosquitto_row.acked_per_s);
        all[0].1.push(mosquitto_row);
        all[1].1.push(sqlite);
        if let Some(p) = postgres {
            print("postgres", &p, mosquitto_row.acked_per_s);
            all[2].1.push(p);
        }
    }
    // Medians, and each control plane's ratio taken run by run against that run's Mosquitto.
    println!("\nmedians over {} run(s)", args.runs);
    header();
    let mosquitto_rates: Vec<f64> = all[0].1.iter().map(|r| r.acked_per_s).collect();
    let m_rate = median(mosquitto_rates.clone());
    for (target, rows) in &all {
        if rows.is_empty() {
            continue;
        }
        let med = |f: &dyn Fn(&Row) -> f64| median(rows.iter().map(f).collect());
        let pick = |f: &dyn Fn(&Row) -> Option<f64>| {
            let v: Vec<f64> = rows.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| median(v))
        };
        let r = Row {
            offered: med(&|r| r.offered as f64) as u64,
            acked: med(&|r| r.acked as f64) as u64,
            stored: pick(&|r| r.stored.map(|n| n as f64)).map(|v| v as u64),
            confirmed: pick(&|r| r.confirmed.map(|n| n as f64)).map(|v| v as u64),
            last_stored_after_s: pick(&|r| r.last_stored_after_s),
            stored_per_s: pick(&|r| r.stored_per_s),
            acked_per_s: med(&|r| r.acked_per_s),
            puback_p50: med(&|r| r.puback_p50),
            puback_p99: med(&|r| r.puback_p99),
            storage_p99: pick(&|r| r.storage_p99),
        };
        print(target, &r, m_rate);
        if r.stored.is_some() {
            let ratios: Vec<f64> = rows
                .iter()
                .zip(&mosquitto_rates)
                .filter_map(|(r, m)| r.stored_per_s.map(|s| s / m))
                .collect();
            println!("{:<12} ratio per run: {ratios:.2?}", "");
        }
    }
}
