//! `bench-sim`: run a simulated fleet against a broker, or measure a broker with open-loop load.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use bench_sim::load::{LoadError, LoadOptions, Rate, run_load};
use bench_sim::{Broker, Credentials, FleetOptions, IdeaPace, Scenario, SimError, SimFleet};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};
use protocol::Fleet;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "bench-sim",
    version,
    about = "Simulated benchfleet benches and an open-loop MQTT load generator"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run simulated benches (by default the 12 LINK 4 benches) until Ctrl-C or --duration.
    Run(RunArgs),
    /// Open-loop load: many connections publishing telemetry on a fixed schedule; prints a
    /// report.
    Load(LoadArgs),
}

#[derive(Args)]
struct RunArgs {
    /// How many benches: up to 12 are LINK 4 benches, more adds load-000001… beside them.
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u32).range(1..=10_000), conflicts_with = "fleet")]
    benches: u32,
    /// A TOML fleet file ([[bench]] tables) instead of the built-in fleet.
    #[arg(long)]
    fleet: Option<PathBuf>,
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: Broker,
    /// The control plane's HS256 secret file, to sign bench tokens; without it (and without
    /// --api), no credentials.
    #[arg(long, conflicts_with = "api")]
    token_secret: Option<PathBuf>,
    /// Get bench tokens from the control plane's API instead (`POST /api/v1/benches/{id}/token`),
    /// e.g. http://127.0.0.1:8080; needs --admin-token.
    #[arg(long, requires = "admin_token")]
    api: Option<String>,
    /// An admin token for --api (from `control-plane token --role admin`).
    #[arg(long, env = "BENCHFLEET_ADMIN_TOKEN", hide_env_values = true, requires = "api")]
    admin_token: Option<String>,
    /// Simulated seconds per real second (physics only; intervals stay in real time).
    #[arg(long, default_value_t = 60.0)]
    speed: f64,
    /// Seed of the physics: the same seed gives the same series.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Simulated start time (RFC 3339); default now.
    #[arg(long)]
    start: Option<DateTime<Utc>>,
    /// Telemetry interval for every bench until a configuration changes it (default: the
    /// fleet's, 60 s).
    #[arg(long, value_parser = humantime::parse_duration)]
    interval: Option<Duration>,
    /// Scenario file of faults to inject (TOML, `[[fault]]` with `at = "30s"`).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// A fault to inject: KIND@OFFSET[:BENCH], e.g. disconnect@30s:mostar-01. Repeatable.
    #[arg(long = "fault", value_name = "KIND@OFFSET[:BENCH]")]
    faults: Vec<String>,
    /// Stop after this long (e.g. 10m); default: until Ctrl-C.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Send citizens' ideas (about 15 % of kiosk sessions, sped up with --speed).
    #[arg(long)]
    ideas: bool,
    /// With --ideas: at most one idea per bench this often (e.g. 3m), in real time.
    #[arg(long, value_parser = humantime::parse_duration, requires = "ideas")]
    idea_gap: Option<Duration>,
    /// Chance (0-1) that a valid configuration is rejected anyway.
    #[arg(long, default_value_t = 0.0)]
    config_reject_rate: f64,
    /// Release a sample at the broker's PUBACK instead of holding it until the control plane
    /// confirms it stored (the default with credentials; without, there is no such ack).
    #[arg(long)]
    no_storage_acks: bool,
    /// Send a sample again when its storage ack has not come after this long.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    storage_ack_timeout: Duration,
    /// Store-and-forward capacity per bench, samples.
    #[arg(long, default_value_t = 1000)]
    queue_capacity: usize,
    /// Each bench takes this many samples, then only delivers what it still holds.
    #[arg(long)]
    samples: Option<u64>,
}

#[derive(Args)]
struct LoadArgs {
    /// Connections, named load-000001 upwards.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=200_000))]
    benches: u32,
    /// Messages per bench, e.g. 1/s, 10/min, 1/5s.
    #[arg(long, default_value = "1/s")]
    rate: Rate,
    /// How long to send.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// 0 or 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    qos: u8,
    /// How fast to open connections.
    #[arg(long, default_value = "1000/s")]
    connect_rate: Rate,
    /// How long to wait for outstanding acks (and storage acks) after sending.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    drain: Duration,
    /// Do not ask for storage acknowledgements (asked for by default with --token-secret,
    /// i.e. against a control plane; a plain broker sends none and the report says n/a).
    #[arg(long)]
    no_storage_acks: bool,
    /// Also write the report as JSON here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The control plane's HS256 secret file, to sign bench tokens; without it, no credentials.
    #[arg(long)]
    token_secret: Option<PathBuf>,
    #[arg(long, default_value = "mqtt://127.0.0.1:1883")]
    broker: Broker,
}

/// Exit code for arguments that parse but make no sense (clap uses 2 as well).
const USAGE: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rumqttc=warn")))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(args).await,
            Command::Load(args) => load(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            let usage = e
                .downcast_ref::<SimError>()
                .is_some_and(|e| !matches!(e, SimError::Unavailable(_)))
                || e.downcast_ref::<LoadError>().is_some()
                || e.downcast_ref::<bench_sim::faults::ScenarioError>().is_some();
            ExitCode::from(if usage { USAGE } else { 1 })
        }
    }
}

fn credentials(path: Option<&PathBuf>) -> anyhow::Result<Credentials> {
    match path {
        Some(p) => {
            Credentials::from_secret_file(p).with_context(|| format!("reading the token secret {}", p.display()))
        }
        None => Ok(Credentials::Anonymous),
    }
}

/// Asks the control plane's API for every bench's token up front.
async fn tokens_from_api(api: &str, admin_token: &str, fleet: &Fleet) -> anyhow::Result<Credentials> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let mut tokens = std::collections::HashMap::new();
    for bench in fleet.iter() {
        let url = format!("{}/api/v1/benches/{}/token", api.trim_end_matches('/'), bench.id);
        let response = client
            .post(&url)
            .bearer_auth(admin_token)
            .send()
            .await
            .with_context(|| format!("asking {url} for a bench token"))?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            anyhow::bail!("{url} answered {status}: {detail}");
        }
        let issued: protocol::api::BenchToken = response
            .json()
            .await
            .with_context(|| format!("reading the token from {url}"))?;
        tokens.insert(bench.id.clone(), issued.token);
    }
    let tokens = std::sync::Arc::new(tokens);
    Ok(Credentials::Mint(std::sync::Arc::new(move |bench| {
        tokens.get(bench).cloned().unwrap_or_default()
    })))
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let fleet = match &args.fleet {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Fleet::from_toml(&text).with_context(|| format!("fleet file {}", path.display()))?
        }
        None => first_benches(args.benches),
    };
    let mut scenario = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Scenario::from_toml(&text)?
        }
        None => Scenario::default(),
    };
    scenario.extend(
        args.faults
            .iter()
            .map(|f| Scenario::parse_flag(f))
            .collect::<Result<Vec<_>, _>>()?,
    );

    let credentials = match (&args.api, &args.admin_token) {
        (Some(api), Some(admin)) => tokens_from_api(api, admin, &fleet).await?,
        _ => credentials(args.token_secret.as_ref())?,
    };
    let mut opts = FleetOptions::new(args.broker, fleet, credentials);
    opts.speed = args.speed;
    opts.seed = args.seed;
    opts.start = args.start;
    opts.telemetry_interval = args.interval;
    opts.scenario = scenario;
    opts.ideas = match (args.ideas, args.idea_gap) {
        (false, _) => IdeaPace::Off,
        (true, None) => IdeaPace::Modelled,
        (true, Some(gap)) => IdeaPace::AtMostEvery(gap),
    };
    opts.config_reject_rate = args.config_reject_rate;
    opts.storage_acks &= !args.no_storage_acks;
    opts.storage_ack_timeout = args.storage_ack_timeout;
    opts.queue_capacity = args.queue_capacity;
    opts.max_samples = args.samples;

    let shutdown = CancellationToken::new();
    let fleet = SimFleet::spawn(opts, shutdown.clone())?;
    let deadline = async {
        match args.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
        () = deadline => {}
    }
    fleet.shutdown().await;
    Ok(())
}

/// The first `n` LINK 4 benches, then load-test benches beyond 12.
fn first_benches(n: u32) -> Fleet {
    let link4 = Fleet::link4();
    if n as usize >= link4.len() {
        let extra = n - link4.len() as u32;
        return link4.with_load_test_benches(extra);
    }
    Fleet::from_benches(link4.iter().take(n as usize).cloned()).unwrap_or(link4)
}

async fn load(args: LoadArgs) -> anyhow::Result<()> {
    let mut opts = LoadOptions::new(args.broker, args.benches, args.rate, args.duration);
    opts.qos = args.qos;
    opts.connect_rate = args.connect_rate;
    opts.drain = args.drain;
    opts.credentials = credentials(args.token_secret.as_ref())?;
    opts.storage_acks = !args.no_storage_acks && !matches!(opts.credentials, Credentials::Anonymous);
    if let Some(dir) = args
        .report
        .as_ref()
        .and_then(|p| p.parent())
        .filter(|d| !d.as_os_str().is_empty())
        && !dir.is_dir()
    {
        bail!("the report's directory {} does not exist", dir.display());
    }
    let report = run_load(opts, |p| eprintln!("{p}")).await?;
    println!("{report}");
    if let Some(path) = &args.report {
        std::fs::write(path, report.to_json_pretty() + "\n").with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
