//! `control-plane`: serve, mint tokens, migrate, print the default configuration.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use control_plane::settings::{Overrides, Settings, default_toml, process_env};
use protocol::{Claims, Role};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "control-plane",
    version,
    about = "benchfleet control plane: MQTT broker, telemetry store and HTTP API for the smart bench fleet"
)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    /// Also run the 12 simulated LINK 4 benches in this process, over real MQTT with real tokens.
    #[arg(long, global = true)]
    demo: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

/// Flags that override the configuration file and the environment (every setting can also be
/// set as `BENCHFLEET_<SECTION>__<KEY>`; see `control-plane config default`).
#[derive(Args)]
struct SettingsArgs {
    /// TOML configuration file (see `control-plane config default`).
    #[arg(long, global = true, env = "BENCHFLEET_CONFIG")]
    config: Option<PathBuf>,
    /// Directory for the SQLite database and the JWT secret [default: ./data].
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, global = true)]
    database_url: Option<String>,
    /// File holding the JWT signing secret [default: <data-dir>/jwt.secret].
    #[arg(long, global = true)]
    jwt_secret_file: Option<PathBuf>,
    /// TOML fleet file replacing the built-in LINK 4 benches.
    #[arg(long = "fleet", global = true)]
    fleet_file: Option<PathBuf>,
    /// Register load-000001…load-<N> beside the fleet, for `bench-sim load`.
    #[arg(long, global = true)]
    load_test_benches: Option<u32>,
    /// HTTP API address [default: 127.0.0.1:8080].
    #[arg(long, global = true)]
    api_listen: Option<SocketAddr>,
    /// MQTT broker address [default: 127.0.0.1:1883; 0.0.0.0:1883 serves the network].
    #[arg(long, global = true)]
    mqtt_listen: Option<SocketAddr>,
    /// Bearer token that /metrics requires (unset: /metrics is open).
    #[arg(long, global = true)]
    metrics_token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the control plane (the default).
    Serve,
    /// Print a signed JWT for a bench or a person (last line of stdout).
    Token(TokenArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration helpers.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print the annotated default configuration file.
    Default,
    /// Load the configuration in force (defaults < file < environment < flags), check it and
    /// print it, secrets hidden.
    Check,
}

#[derive(Args)]
struct TokenArgs {
    /// admin, operator, viewer, cso or bench.
    #[arg(long, value_parser = parse_role)]
    role: Role,
    /// The bench id for `bench`; a person or service name otherwise.
    #[arg(long)]
    subject: String,
    /// The organisation of a `cso` token.
    #[arg(long)]
    org: Option<String>,
    /// How long the token is valid, e.g. 30d, 12h, 15m.
    #[arg(long, default_value = "30d", value_parser = humantime::parse_duration)]
    ttl: Duration,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("unknown role {s:?}: use admin, operator, viewer, cso or bench"))
}

impl SettingsArgs {
    /// defaults < file < environment < flags.
    fn load(&self) -> anyhow::Result<Settings> {
        let mut flags = Overrides::default();
        if let Some(v) = &self.data_dir {
            flags = flags.set("data_dir", v);
        }
        if let Some(v) = &self.database_url {
            flags = flags.set("database_url", v);
        }
        if let Some(v) = &self.jwt_secret_file {
            flags = flags.set("jwt_secret_file", v);
        }
        if let Some(v) = &self.fleet_file {
            flags = flags.set("fleet_file", v);
        }
        if let Some(v) = self.load_test_benches {
            flags = flags.set("load_test_benches", v);
        }
        if let Some(v) = self.api_listen {
            flags = flags.set("api.listen", v);
        }
        if let Some(v) = self.mqtt_listen {
            flags = flags.set("mqtt.listen", v);
        }
        if let Some(v) = &self.metrics_token {
            flags = flags.set("api.metrics_token", v);
        }
        Ok(Settings::load(self.config.as_deref(), process_env(), flags)?)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `BENCHFLEET_LOG` (default `info`) after rumqttd's quiet targets, so `BENCHFLEET_LOG=debug`
/// does not turn on the router's per-message spans and routine errors; naming a rumqttd target
/// in `BENCHFLEET_LOG` still overrides them.
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let wanted = std::env::var("BENCHFLEET_LOG").unwrap_or_else(|_| "info".to_owned());
    let quiet = control_plane::broker::QUIET_TARGETS;
    let filter = EnvFilter::try_new(format!("{quiet},{wanted}")).unwrap_or_else(|e| {
        eprintln!("BENCHFLEET_LOG={wanted:?} is not a tracing filter ({e}); logging at info");
        EnvFilter::new(format!("{quiet},info"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let command = cli.command.unwrap_or(Command::Serve);
    if let Command::Config(ConfigCommand::Default) = command {
        print!("{}", default_toml());
        return Ok(());
    }
    let settings = cli.settings.load()?;
    if let Command::Config(ConfigCommand::Check) = command {
        let shown = toml::to_string(&settings.redacted()).context("printing the settings")?;
        print!("{shown}");
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    match command {
        Command::Serve => runtime.block_on(serve(settings, cli.demo)),
        Command::Migrate => runtime.block_on(async {
            let store = control_plane::open_store(&settings).await?;
            println!("migrations applied ({:?})", store.mode());
            Ok(())
        }),
        Command::Token(args) => runtime.block_on(mint(&settings, args)),
        Command::Config(_) => unreachable!("handled above"),
    }
}

async fn mint(settings: &Settings, args: TokenArgs) -> anyhow::Result<()> {
    match args.role {
        Role::Cso => {
            let Some(org) = &args.org else {
                anyhow::bail!("a cso token needs --org <organisation id>");
            };
            // A token for an organisation the network does not have would be refused on every
            // request; say so now.
            let store = control_plane::open_store(settings).await?;
            let known = store.organisations().await.context("reading the organisations")?;
            if !known.iter().any(|o| &o.id == org) {
                let ids: Vec<&str> = known.iter().map(|o| o.id.as_str()).collect();
                anyhow::bail!(
                    "{org:?} is not an organisation of the network in {} (known: {}); \
                     `serve --demo` creates the demo's, `POST /api/v1/organisations/applications` applies",
                    control_plane::store::redact_url(&settings.database_url()),
                    if ids.is_empty() {
                        "none".to_owned()
                    } else {
                        ids.join(", ")
                    }
                );
            }
        }
        Role::Bench => {
            let fleet = control_plane::load_fleet(settings)?;
            anyhow::ensure!(
                fleet.contains(&args.subject),
                "{:?} is not a registered bench (see --fleet / --load-test-benches)",
                args.subject
            );
        }
        _ => {}
    }
    let secret = control_plane::token::load_or_create(&settings.jwt_secret_file())?;
    let mut claims = Claims::new(args.role, args.subject, args.ttl);
    claims.org = args.org;
    println!("{}", secret.sign(&claims));
    Ok(())
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let shutdown = CancellationToken::new();
    let running = control_plane::start(settings.clone(), shutdown.clone()).await?;
    let demo_fleet = if demo {
        let fleet = control_plane::load_fleet(&settings)?;
        control_plane::routing::demo::seed(&running.routing, &fleet)
            .await
            .context("seeding the demo network of organisations")?;
        Some(start_demo(&settings, running.mqtt_addr)?)
    } else {
        None
    };
    println!("benchfleet control plane is running");
    println!("api: http://{}", running.api_addr);
    println!("mqtt: mqtt://{}", running.mqtt_addr);
    println!(
        "store: {:?} ({})",
        running.store_mode,
        control_plane::store::redact_url(&settings.database_url())
    );
    println!("Ready check: curl http://{}/readyz", running.api_addr);
    println!(
        "Mint a token: control-plane token --data-dir {} --role operator --subject you",
        settings.data_dir.display()
    );
    if let Some((_, token_file)) = &demo_fleet {
        println!();
        println!("Demo: 12 simulated benches are connecting over MQTT; their numbers move every few seconds.");
        let api = running.api_addr;
        let token = token_file.display();
        println!("  API docs:  http://{api}/docs");
        println!("  console:   cargo run --release -p tui-console -- --api http://{api} --token-file {token}");
        println!("  fleet:     curl -s -H \"Authorization: Bearer $(cat {token})\" http://{api}/api/v1/benches");
        let cso = token_file.with_file_name("demo-cso.token");
        println!(
            "  ideas:     curl -s -H \"Authorization: Bearer $(cat {})\" 'http://{api}/api/v1/ideas?state=offered'",
            cso.display()
        );
    }
    println!("Stop with Ctrl-C.");
    wait_for_signal().await;
    if let Some((sim_stop, _)) = demo_fleet {
        sim_stop.cancel();
    }
    shutdown.cancel();
    running.done.await.context("shutdown task")?;
    Ok(())
}

/// Starts the simulated fleet against our own broker; returns its stop token and the file holding
/// an operator token for the console.
fn start_demo(
    settings: &Settings,
    mqtt: std::net::SocketAddr,
) -> anyhow::Result<(CancellationToken, std::path::PathBuf)> {
    let secret = control_plane::token::load_or_create(&settings.jwt_secret_file())?;
    let fleet = control_plane::load_fleet(&Settings {
        load_test_benches: 0,
        ..settings.clone()
    })?;
    let cso_file = settings.data_dir.join("demo-cso.token");
    let cso = secret.sign(
        &Claims::new(Role::Cso, "demo-member", Duration::from_secs(7 * 86_400))
            .with_org(control_plane::routing::demo::DEFAULT_ORG),
    );
    write_private(&cso_file, &cso).with_context(|| format!("writing {}", cso_file.display()))?;
    let token_file = settings.data_dir.join("demo-operator.token");
    let token = secret.sign(&Claims::new(
        Role::Operator,
        "demo-operator",
        Duration::from_secs(7 * 86_400),
    ));
    write_private(&token_file, &token).with_context(|| format!("writing {}", token_file.display()))?;

    let host = if mqtt.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        mqtt.ip().to_string()
    };
    let mut opts = bench_sim::FleetOptions::new(
        bench_sim::Broker::new(host, mqtt.port()),
        fleet,
        bench_sim::Credentials::Secret(secret),
    );
    // Fast enough that the numbers visibly move: a sample every 5 s, an hour of sun a minute.
    opts.telemetry_interval = Some(Duration::from_secs(5));
    opts.speed = 60.0;
    // Citizens at the kiosks: at most one idea every 3 minutes per bench (the limit is 30 an hour).
    opts.ideas = bench_sim::IdeaPace::AtMostEvery(Duration::from_secs(180));
    let stop = CancellationToken::new();
    let sim_stop = stop.clone();
    tokio::spawn(async move {
        if let Err(e) = bench_sim::run_fleet(opts, sim_stop).await {
            tracing::error!(error = %e, "demo fleet stopped");
        }
    });
    Ok((stop, token_file))
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    writeln!(f, "{text}")
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
