//! Many simulated benches in one process: the entry point for the `run` command, the control
//! plane's `--demo` mode and tests.
//!
//! ```no_run
//! # async fn demo(secret: protocol::token::Secret) -> Result<(), bench_sim::SimError> {
//! use bench_sim::{Broker, Credentials, FleetOptions, run_fleet};
//! use tokio_util::sync::CancellationToken;
//!
//! let opts = FleetOptions::new(Broker::new("127.0.0.1", 1883), protocol::Fleet::link4(), Credentials::Secret(secret));
//! let shutdown = CancellationToken::new();
//! run_fleet(opts, shutdown.clone()).await?; // returns after shutdown.cancel()
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use protocol::{BenchId, Fleet};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::broker::Broker;
use crate::clock::SimClock;
use crate::credentials::Credentials;
use crate::faults::{Fault, Scenario};
use crate::ideas::IdeaPace;
use crate::session::{Behaviour, BenchSnapshot, Session};
use crate::weather::splitmix64;

/// How to run a simulated fleet. [`FleetOptions::new`] fills in demo-friendly defaults.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub broker: Broker,
    /// The benches to simulate (e.g. [`Fleet::link4`]).
    pub fleet: Fleet,
    pub credentials: Credentials,
    /// Simulated seconds per real second (physics only; telemetry intervals and `ts` stay in
    /// real time so the control plane's clocks and staleness rules hold). Default 60.
    pub speed: f64,
    /// Same seed, same physics. Default 1.
    pub seed: u64,
    /// Simulated time at start; default now.
    pub start: Option<DateTime<Utc>>,
    /// Overrides every bench's `telemetry_interval_s` until a configuration changes it
    /// (demos and tests want samples faster than the registry's 60 s).
    pub telemetry_interval: Option<Duration>,
    /// Whether simulated citizens leave ideas at the kiosks, and how often at most. Default off.
    pub ideas: IdeaPace,
    /// Wait for an idea ack before the first retry (doubling after). Default 10 s.
    pub idea_retry: Duration,
    /// Chance (0-1) that a valid configuration is rejected anyway, to exercise rollouts.
    pub config_reject_rate: f64,
    /// Faults to inject at offsets from the start.
    pub scenario: Scenario,
    /// Store-and-forward capacity per bench, samples. Default 1000.
    pub queue_capacity: usize,
    /// Keep each sample until the control plane confirms it stored
    /// (`benches/{id}/telemetry/ack`), not only until the broker's PUBACK. Default: on with
    /// credentials (a control plane), off without (a plain broker sends no such ack).
    pub storage_acks: bool,
    /// Send a sample again when its storage ack has not come after this long. Default 30 s.
    pub storage_ack_timeout: Duration,
    /// Each bench takes this many samples, then only delivers what it holds (tests count
    /// exactly what was generated). Default: no limit.
    pub max_samples: Option<u64>,
    /// Firmware version announced in `status`.
    pub fw: String,
    /// Reconnect backoff bounds (exponential with jitter). Default 500 ms to 30 s.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// MQTT keep-alive. Default 30 s.
    pub keep_alive: Duration,
    /// Sleep below this charge, wake at or above the other, percent. Default 5 and 20.
    pub sleep_below_pct: f64,
    pub wake_above_pct: f64,
}

impl FleetOptions {
    pub fn new(broker: Broker, fleet: Fleet, credentials: Credentials) -> Self {
        let storage_acks = !matches!(credentials, Credentials::Anonymous);
        Self {
            broker,
            fleet,
            credentials,
            speed: 60.0,
            seed: 1,
            start: None,
            telemetry_interval: None,
            ideas: IdeaPace::Off,
            idea_retry: crate::ideas::FIRST_RETRY,
            config_reject_rate: 0.0,
            scenario: Scenario::default(),
            queue_capacity: 1000,
            storage_acks,
            storage_ack_timeout: Duration::from_secs(30),
            max_samples: None,
            fw: format!("sim-{}", env!("CARGO_PKG_VERSION")),
            backoff_min: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            keep_alive: Duration::from_secs(30),
            sleep_below_pct: 5.0,
            wake_above_pct: 20.0,
        }
    }
}

/// Why a fleet could not start or a fault could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the fleet has no benches")]
    EmptyFleet,
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("no simulated bench {0:?}")]
    UnknownBench(String),
    #[error("bench {0} is not taking commands (busy or stopped)")]
    Unavailable(BenchId),
}

struct BenchControl {
    commands: mpsc::Sender<Fault>,
    snapshot: watch::Receiver<BenchSnapshot>,
}

/// A running simulated fleet. Drop it or call [`SimFleet::shutdown`] to stop.
pub struct SimFleet {
    benches: BTreeMap<BenchId, BenchControl>,
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

impl SimFleet {
    /// Starts every bench of `opts.fleet` on the current Tokio runtime. Benches stop when
    /// `shutdown` is cancelled (or [`SimFleet::shutdown`] is called).
    pub fn spawn(opts: FleetOptions, shutdown: CancellationToken) -> Result<Self, SimError> {
        validate(&opts)?;
        let origin = Instant::now();
        let clock = SimClock::new(origin, opts.start.unwrap_or_else(Utc::now), opts.speed);
        let behaviour = Behaviour {
            broker: opts.broker.clone(),
            credentials: opts.credentials.clone(),
            clock,
            fw: opts.fw.clone(),
            ideas: opts.ideas,
            idea_retry: opts.idea_retry,
            config_reject_rate: opts.config_reject_rate,
            queue_capacity: opts.queue_capacity,
            storage_acks: opts.storage_acks,
            storage_ack_timeout: opts.storage_ack_timeout,
            max_samples: opts.max_samples,
            backoff_min: opts.backoff_min,
            backoff_max: opts.backoff_max,
            keep_alive: opts.keep_alive,
            sleep_below_pct: opts.sleep_below_pct,
            wake_above_pct: opts.wake_above_pct,
        };
        let peers: Vec<BenchId> = opts.fleet.iter().map(|b| b.id.clone()).collect();
        let mut benches = BTreeMap::new();
        let mut tasks = JoinSet::new();
        for info in opts.fleet.iter() {
            let (tx, rx) = mpsc::channel(32);
            let (snap_tx, snap_rx) = watch::channel(BenchSnapshot::default());
            let interval = opts
                .telemetry_interval
                .unwrap_or(Duration::from_secs(u64::from(info.telemetry_interval_s)));
            let seed = bench_seed(opts.seed, &info.id);
            let session = Session::new(
                info,
                seed,
                interval,
                peers.clone(),
                behaviour.clone(),
                rx,
                snap_tx,
                shutdown.child_token(),
            );
            tasks.spawn(session.run());
            benches.insert(
                info.id.clone(),
                BenchControl {
                    commands: tx,
                    snapshot: snap_rx,
                },
            );
        }
        if !opts.scenario.faults.is_empty() {
            let targets: Vec<(BenchId, mpsc::Sender<Fault>)> =
                benches.iter().map(|(id, c)| (id.clone(), c.commands.clone())).collect();
            tasks.spawn(play_scenario(
                opts.scenario.clone(),
                origin,
                targets,
                shutdown.child_token(),
            ));
        }
        info!(
            benches = benches.len(),
            broker = %opts.broker,
            speed = opts.speed,
            seed = opts.seed,
            sim.start = %clock.sim_at(origin).to_rfc3339(),
            "simulated fleet started"
        );
        Ok(Self {
            benches,
            tasks,
            shutdown,
        })
    }

    /// Injects `fault` into one bench now.
    pub fn inject(&self, bench: &str, fault: Fault) -> Result<(), SimError> {
        let (id, control) = self
            .benches
            .iter()
            .find(|(id, _)| id.as_str() == bench)
            .ok_or_else(|| SimError::UnknownBench(bench.to_owned()))?;
        control
            .commands
            .try_send(fault)
            .map_err(|_| SimError::Unavailable(id.clone()))
    }

    /// The latest state of a bench.
    pub fn snapshot(&self, bench: &str) -> Option<BenchSnapshot> {
        self.watch(bench).map(|w| w.borrow().clone())
    }

    /// A receiver that changes whenever the bench's state does.
    pub fn watch(&self, bench: &str) -> Option<watch::Receiver<BenchSnapshot>> {
        self.benches
            .iter()
            .find(|(id, _)| id.as_str() == bench)
            .map(|(_, c)| c.snapshot.clone())
    }

    pub fn bench_ids(&self) -> impl Iterator<Item = &BenchId> {
        self.benches.keys()
    }

    /// Stops every bench (each announces `offline` and disconnects cleanly) and waits for
    /// them, at most a few seconds.
    pub async fn shutdown(mut self) {
        self.shutdown.cancel();
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, self.tasks.join_next()).await {}
        self.tasks.abort_all();
        info!("simulated fleet stopped");
    }
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs a simulated fleet until `shutdown` is cancelled; the control plane's `--demo` calls
/// this in-process.
pub async fn run_fleet(opts: FleetOptions, shutdown: CancellationToken) -> Result<(), SimError> {
    let fleet = SimFleet::spawn(opts, shutdown.child_token())?;
    shutdown.cancelled().await;
    fleet.shutdown().await;
    Ok(())
}

fn validate(opts: &FleetOptions) -> Result<(), SimError> {
    let invalid = |m: String| Err(SimError::InvalidOption(m));
    if opts.fleet.is_empty() {
        return Err(SimError::EmptyFleet);
    }
    if !(opts.speed.is_finite() && opts.speed > 0.0 && opts.speed <= 1e6) {
        return invalid(format!("speed must be above 0 and at most 1000000, got {}", opts.speed));
    }
    if !(0.0..=1.0).contains(&opts.config_reject_rate) {
        return invalid(format!(
            "config reject rate must be 0-1, got {}",
            opts.config_reject_rate
        ));
    }
    if opts
        .telemetry_interval
        .is_some_and(|d| d < Duration::from_millis(10) || d > Duration::from_secs(86_400))
    {
        return invalid("telemetry interval must be 10 ms to 24 h".into());
    }
    if opts.idea_retry < Duration::from_millis(10) || opts.idea_retry > Duration::from_secs(3600) {
        return invalid("idea retry must be 10 ms to 1 h".into());
    }
    if let IdeaPace::AtMostEvery(gap) = opts.ideas
        && gap > Duration::from_secs(86_400)
    {
        return invalid("ideas at most every 24 h or more often".into());
    }
    if opts.queue_capacity == 0 || opts.queue_capacity > 1_000_000 {
        return invalid("queue capacity must be 1-1000000".into());
    }
    if opts.storage_ack_timeout < Duration::from_millis(100) || opts.storage_ack_timeout > Duration::from_secs(3600) {
        return invalid("storage ack timeout must be 100 ms to 1 h".into());
    }
    if opts.sleep_below_pct >= opts.wake_above_pct {
        return invalid("the sleep threshold must be below the wake threshold".into());
    }
    if opts.fw.is_empty() || opts.fw.len() > 64 || opts.fw.chars().any(char::is_control) {
        return invalid("fw must be 1-64 printable characters".into());
    }
    for f in &opts.scenario.faults {
        if let Some(b) = &f.bench
            && !opts.fleet.contains(b.as_str())
        {
            return Err(SimError::UnknownBench(b.to_string()));
        }
    }
    Ok(())
}

/// Each bench's seed: the fleet seed mixed with a hash of its id (FNV-1a), so adding a bench
/// does not change the others.
fn bench_seed(seed: u64, id: &BenchId) -> u64 {
    let fnv = id.as_str().bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    splitmix64(seed ^ fnv)
}

async fn play_scenario(
    scenario: Scenario,
    origin: Instant,
    targets: Vec<(BenchId, mpsc::Sender<Fault>)>,
    shutdown: CancellationToken,
) {
    for f in scenario.faults {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(origin + f.at) => {}
        }
        for (id, tx) in &targets {
            if f.bench.as_ref().is_none_or(|b| b == id) && tx.send(f.fault.clone()).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_differ_per_bench_and_are_stable() {
        let a = BenchId::parse("mostar-01").unwrap();
        let b = BenchId::parse("zepce-01").unwrap();
        assert_eq!(bench_seed(1, &a), bench_seed(1, &a));
        assert_ne!(bench_seed(1, &a), bench_seed(1, &b));
        assert_ne!(bench_seed(1, &a), bench_seed(2, &a));
    }

    #[test]
    fn refuses_bad_options() {
        let base = || FleetOptions::new(Broker::new("127.0.0.1", 1), Fleet::link4(), Credentials::Anonymous);
        assert!(validate(&base()).is_ok());
        let mut o = base();
        o.speed = 0.0;
        assert!(validate(&o).unwrap_err().to_string().contains("speed"));
        let mut o = base();
        o.config_reject_rate = 1.5;
        assert!(validate(&o).is_err());
        let mut o = base();
        o.fleet = Fleet::default();
        assert!(matches!(validate(&o), Err(SimError::EmptyFleet)));
        let mut o = base();
        o.scenario
            .extend([Scenario::parse_flag("reboot@1s:nowhere-01").unwrap()]);
        assert!(matches!(validate(&o), Err(SimError::UnknownBench(_))));
    }
}
