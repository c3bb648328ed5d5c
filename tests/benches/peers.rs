//! The peers side by side in one run: the same open-loop QoS 1 load (`bench-sim load`, in
//! process) into Debian's Mosquitto, then the control plane on SQLite, then on PostgreSQL.
//!
//! ```sh
//! BENCHFLEET_TEST_DATABASE_URL=postgres://postgres:postgres@127.0.0.1:5432/postgres \
//!   cargo bench -p tests --bench peers -- [--benches 500] [--rate 60] [--duration 15] [--runs 3] \
//!   [--targets mosquitto,sqlite,postgres] [--search] [--from 20000] [--step 5000] [--to 80000] \
//!   [--step-duration 10]
//! ```
//!
//! Per target and run it prints: offered, acked (PUBACK), stored (the control plane: rows
//! counted in its database), how long after the end of the load the last row was confirmed
//! stored, end-to-end stored rows/s, the ratio of that to Mosquitto's acked rows/s, and PUBACK and
//! storage-ack latency from the intended send time, and the CPU the target's process used (cores);
//! then the medians over the runs.
//!
//! `--search` then looks for the highest offered rate each target sustains: the same benches, the
//! total rate raised from `--from` by `--step` msg/s, `--step-duration` seconds per step, until a
//! step loses a message, leaves a backlog (the last PUBACK — for the control plane, the last row
//! confirmed stored — more than 1 s after the load), or the load generator itself falls behind
//! (then the figure is a lower bound, marked `≥`, as it is when a target sustains even `--to`). `--runs 0 --search` runs only the search.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a benchmark: a failed unwrap is a failed run

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bench_sim::{Broker, Credentials, LoadOptions, LoadReport, Rate, run_load};
use control_plane::store;
use sqlx::Connection;
use tests::ControlPlane;

#[derive(Clone)]
struct Args {
    benches: u32,
    /// How long the load waits for the last acknowledgements after sending, seconds.
    drain: u64,
    rate: f64,
    duration: u64,
    runs: usize,
    search: Option<Search>,
    targets: Vec<Target>,
}

#[derive(Clone, Copy)]
struct Search {
    from: f64,
    step: f64,
    to: f64,
    duration: u64,
}

fn args() -> Args {
    let mut a = Args {
        benches: 500,
        drain: 60,
        rate: 60.0,
        duration: 15,
        runs: 1,
        search: None,
        targets: Target::ALL.to_vec(),
    };
    let mut search = Search {
        from: 20_000.0,
        step: 5_000.0,
        to: 80_000.0,
        duration: 10,
    };
    let mut searching = false;
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
            "--search" => searching = true,
            "--from" => search.from = value(),
            "--step" => search.step = value(),
            "--to" => search.to = value(),
            "--step-duration" => search.duration = value() as u64,
            "--targets" => {
                let list = it.next().expect("a list after --targets, e.g. mosquitto,postgres");
                a.targets = list
                    .split(',')
                    .map(|name| {
                        *Target::ALL
                            .iter()
                            .find(|t| t.name() == name)
                            .unwrap_or_else(|| panic!("unknown target {name}: mosquitto, sqlite or postgres"))
                    })
                    .collect();
            }
            "--bench" => {}
            other => panic!(
                "unknown argument {other}: use --benches N --rate R --duration S --runs K \
                 [--targets mosquitto,sqlite,postgres] [--search --from MSG_S --step MSG_S --to MSG_S --step-duration S]"
            ),
        }
    }
    assert!(
        search.step > 0.0 && search.from > 0.0,
        "--from and --step must be positive"
    );
    a.search = searching.then_some(search);
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
    offered_per_s: f64,
    last_acked_after_s: f64,
    puback_p50: f64,
    puback_p99: f64,
    storage_p99: Option<f64>,
    /// CPU the target's process used over the run, in cores (CPU seconds per wall second).
    cpu: f64,
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
            offered_per_s: report.offered_per_s,
            last_acked_after_s: report.last_acked_after_s,
            puback_p50: report.latency_ms.p50.unwrap_or(f64::NAN),
            puback_p99: report.latency_ms.p99.unwrap_or(f64::NAN),
            storage_p99: s.and_then(|s| s.latency_ms.p99),
            cpu: f64::NAN,
        }
    }
}

/// How a search step ended.
#[derive(Debug, PartialEq)]
enum Step {
    Sustained,
    /// Lost or left a backlog: the target's limit.
    Failed(String),
    /// The load generator could not offer the rate: the target was not the limit.
    GeneratorBehind,
}

impl Row {
    fn step(&self, target_per_s: f64) -> Step {
        if self.offered_per_s < 0.98 * target_per_s {
            return Step::GeneratorBehind;
        }
        if self.acked < self.offered {
            return Step::Failed(format!("{} not acknowledged", self.offered - self.acked));
        }
        match (self.stored, self.confirmed, self.last_stored_after_s) {
            (Some(stored), Some(confirmed), Some(last)) => {
                if stored < self.offered || confirmed < self.offered {
                    Step::Failed(format!("stored {stored}, confirmed {confirmed} of {}", self.offered))
                } else if last > 1.0 {
                    Step::Failed(format!("last row stored {last:.2} s after the load"))
                } else {
                    Step::Sustained
                }
            }
            _ if self.last_acked_after_s > 1.0 => {
                Step::Failed(format!("last PUBACK {:.2} s after the load", self.last_acked_after_s))
            }
            _ => Step::Sustained,
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
    o.drain = Duration::from_secs(args.drain);
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

/// CPU seconds a process has used so far (user + system), from `/proc/PID/stat`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name; in clock
    // ticks, which Linux reports at USER_HZ = 100.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    (ticks(11) + ticks(12)) / 100.0
}

/// Runs the load against a process and notes the cores it used meanwhile.
async fn measured(pid: u32, options: LoadOptions) -> (LoadReport, f64) {
    let (cpu0, t0) = (cpu_seconds(pid), std::time::Instant::now());
    let report = run_load(options, |_| {}).await.unwrap();
    let cores = (cpu_seconds(pid) - cpu0) / t0.elapsed().as_secs_f64();
    (report, cores)
}

async fn mosquitto_run(args: &Args, dir: &std::path::Path) -> Row {
    let port = free_port();
    let m = mosquitto(port, dir);
    let (report, cpu) = measured(m.0.id(), load(args, port, Credentials::Anonymous)).await;
    drop(m);
    Row {
        cpu,
        ..Row::from(&report, None)
    }
}

/// A target for the search: Mosquitto, or the control plane on SQLite or PostgreSQL.
#[derive(Clone, Copy, PartialEq)]
enum Target {
    Mosquitto,
    Sqlite,
    Postgres,
}

impl Target {
    const ALL: [Target; 3] = [Target::Mosquitto, Target::Sqlite, Target::Postgres];

    fn name(self) -> &'static str {
        match self {
            Target::Mosquitto => "mosquitto",
            Target::Sqlite => "sqlite",
            Target::Postgres => "postgres",
        }
    }
}

async fn run_target(target: Target, args: &Args, dir: &std::path::Path) -> Row {
    match target {
        Target::Mosquitto => mosquitto_run(args, dir).await,
        Target::Sqlite => control_plane(args, None, dir).await,
        Target::Postgres => {
            // A fresh database each run: rows are counted per run.
            let db = store::testing::pg_database().await.unwrap();
            control_plane(args, Some(db.url()), dir).await
        }
    }
}

/// Raises the offered rate step by step; returns the highest sustained rate and whether it is
/// only a lower bound (the generator fell behind, or the target sustained even `--to`).
async fn search(target: Target, name: &str, args: &Args, s: Search, dir: &std::path::Path) -> (Option<f64>, bool) {
    let mut best = None;
    let mut total = s.from;
    while total <= s.to {
        let step = Args {
            rate: total / f64::from(args.benches),
            duration: s.duration,
            drain: 5,
            ..args.clone()
        };
        let row = run_target(target, &step, dir).await;
        let verdict = row.step(total);
        println!(
            "{name:<12} {total:>8.0} msg/s offered {:>8.0}/s acked {:>8} of {:>8} last ack {:>5.2} s stored {:>8} last row {:>5} s p99 {:>7.2} ms  {verdict:?}",
            row.offered_per_s,
            row.acked,
            row.offered,
            row.last_acked_after_s,
            row.stored.map_or_else(|| "—".to_owned(), |n| n.to_string()),
            row.last_stored_after_s
                .map_or_else(|| "—".to_owned(), |v| format!("{v:.2}")),
            row.puback_p99,
        );
        match verdict {
            Step::Sustained => best = Some(total),
            Step::Failed(_) => return (best, false),
            Step::GeneratorBehind => return (best, true),
        }
        total += s.step;
    }
    (best, true)
}

async fn control_plane(args: &Args, database_url: Option<&str>, dir: &std::path::Path) -> Row {
    let benches = args.benches.to_string();
    // Load-test benches send far more than a bench's message quota: lift it, as Mosquitto has none.
    let config = dir.join("peers.toml");
    std::fs::write(&config, "[mqtt]\nbench_messages_per_s = 0\n").unwrap();
    let config = config.display().to_string();
    let cp = ControlPlane::start_logging(
        database_url,
        &["--load-test-benches", &benches, "--config", &config],
        "info",
    );
    let credentials = Credentials::from_secret_file(&cp.data_dir().join("jwt.secret")).unwrap();
    let (report, cpu) = measured(cp.pid(), load(args, cp.mqtt.port(), credentials)).await;
    let stored = rows_in(&cp).await;
    let _ = cp.stop();
    Row {
        cpu,
        ..Row::from(&report, Some(stored))
    }
}

fn print(target: &str, r: &Row, mosquitto_acked_per_s: f64) {
    let opt = |v: Option<f64>, digits: usize| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.digits$}"));
    println!(
        "{target:<12} {:>8} {:>8} {:>8} {:>9} {:>8} {:>10} {:>6} {:>8.2} {:>8.2} {:>9} {:>5.2}",
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
        r.cpu,
    );
}

fn header() {
    println!(
        "{:<12} {:>8} {:>8} {:>8} {:>9} {:>8} {:>10} {:>6} {:>8} {:>8} {:>9} {:>5}",
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
        "store_p99",
        "cores"
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
    let targets: Vec<Target> = args
        .targets
        .iter()
        .copied()
        .filter(|t| *t != Target::Postgres || pg_url.is_some())
        .collect();
    let mut all: Vec<(&str, Vec<Row>)> = targets.iter().map(|t| (t.name(), vec![])).collect();
    for run in 1..=args.runs {
        let mut rows = vec![];
        for t in &targets {
            rows.push(run_target(*t, &args, dir.path()).await);
        }
        // Ratios against this run's Mosquitto, when it ran.
        let mosquitto_rate = targets
            .iter()
            .position(|t| *t == Target::Mosquitto)
            .map_or(f64::NAN, |i| rows[i].acked_per_s);
        println!("\nrun {run}");
        header();
        for (i, row) in rows.into_iter().enumerate() {
            print(all[i].0, &row, mosquitto_rate);
            all[i].1.push(row);
        }
    }
    // Medians, and each control plane's ratio taken run by run against that run's Mosquitto.
    println!("\nmedians over {} run(s)", args.runs);
    header();
    let mosquitto_rates: Vec<f64> = all
        .iter()
        .find(|(name, _)| *name == Target::Mosquitto.name())
        .map_or_else(Vec::new, |(_, rows)| rows.iter().map(|r| r.acked_per_s).collect());
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
            offered_per_s: med(&|r| r.offered_per_s),
            last_acked_after_s: med(&|r| r.last_acked_after_s),
            puback_p50: med(&|r| r.puback_p50),
            puback_p99: med(&|r| r.puback_p99),
            storage_p99: pick(&|r| r.storage_p99),
            cpu: med(&|r| r.cpu),
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
    if let Some(search_opts) = args.search {
        println!(
            "\nhighest sustained rate: {} benches, from {} msg/s by {} to {}, {} s per step; load average {}",
            args.benches,
            search_opts.from,
            search_opts.step,
            search_opts.to,
            search_opts.duration,
            std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
        );
        let mut found = vec![];
        for target in &targets {
            let (best, generator_bound) = search(*target, target.name(), &args, search_opts, dir.path()).await;
            found.push((target.name(), best, generator_bound));
        }
        println!();
        for (name, best, generator_bound) in found {
            let figure = best.map_or_else(
                || format!("below {} msg/s", search_opts.from),
                |b| format!("{}{b:.0} msg/s", if generator_bound { "≥ " } else { "" }),
            );
            println!("{name:<12} sustains {figure}");
        }
    }
}
