//! An open-loop MQTT load generator: many bench connections (`load-000001`, …) publishing
//! telemetry on a fixed schedule.
//!
//! Open loop means each message has an intended send time fixed in advance; a slow broker does
//! not slow the schedule down, and latency is measured from the intended send time to the
//! PUBACK, so a backlog shows up as latency instead of hiding (no coordinated omission).
//! Messages that could not even be handed to a client (queue full, connection gone) count as
//! lost.

mod connection;
mod rate;

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use hdrhistogram::Histogram;
use protocol::BenchId;
use protocol::fleet::load_test_id;
use rumqttc::QoS;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::bench::BenchModel;
use crate::broker::Broker;
use crate::credentials::Credentials;
use crate::report::{LoadReport, Quantiles, StorageReport};
use connection::{Slot, open, send};
pub use rate::Rate;

/// Highest latency the histograms hold, µs (an hour).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What to throw at the broker.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub broker: Broker,
    /// Connections (benches), `load-000001` upwards.
    pub benches: u32,
    /// Messages per bench.
    pub rate: Rate,
    /// How long to send.
    pub duration: Duration,
    /// 0 or 1.
    pub qos: u8,
    /// How fast to open connections.
    pub connect_rate: Rate,
    /// How long the connect phase may take at most, beyond what `connect_rate` needs.
    pub connect_grace: Duration,
    /// How long to wait for outstanding acks after the sending window.
    pub drain: Duration,
    /// `Anonymous` against a plain broker; signed bench tokens against the control plane.
    pub credentials: Credentials,
    /// Subscribe to each bench's storage acknowledgements and report what the control plane
    /// confirmed stored. Off by default; the CLI turns it on with credentials.
    pub storage_acks: bool,
}

impl LoadOptions {
    pub fn new(broker: Broker, benches: u32, rate: Rate, duration: Duration) -> Self {
        Self {
            broker,
            benches,
            rate,
            duration,
            qos: 1,
            connect_rate: Rate::per_second(1000.0),
            connect_grace: Duration::from_secs(30),
            drain: Duration::from_secs(10),
            credentials: Credentials::Anonymous,
            storage_acks: false,
        }
    }

    fn validate(&self) -> Result<(), LoadError> {
        let bad = |m: &str| Err(LoadError::InvalidOption(m.to_owned()));
        if !(1..=200_000).contains(&self.benches) {
            return bad("--benches must be 1-200000");
        }
        if self.rate.as_per_second() > 1000.0 || self.rate.as_per_second() < 1.0 / 86_400.0 {
            return bad("--rate must be between 1/day and 1000/s per bench");
        }
        if self.duration.is_zero() || self.duration > Duration::from_secs(24 * 3600) {
            return bad("--duration must be above 0 and at most 24h");
        }
        if self.qos > 1 {
            return bad("--qos must be 0 or 1");
        }
        if self.connect_rate.as_per_second() > 100_000.0 {
            return bad("--connect-rate must be at most 100000/s");
        }
        if self.drain > Duration::from_secs(600) {
            return bad("--drain must be at most 10m");
        }
        Ok(())
    }
}

/// Why a load run could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

/// Which part of the run is under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Sending,
    Draining,
}

/// A progress report, about once a second.
#[derive(Debug, Clone)]
pub struct Progress {
    pub phase: Phase,
    pub elapsed: Duration,
    pub connected: u64,
    pub connect_failed: u64,
    pub offered: u64,
    pub acked: u64,
    /// Offered and neither acknowledged nor known lost yet.
    pub outstanding: u64,
    pub lost: u64,
    /// Confirmed stored by the control plane, when storage acks are asked for.
    pub stored: Option<u64>,
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let phase = match self.phase {
            Phase::Connecting => "connecting",
            Phase::Sending => "sending",
            Phase::Draining => "draining",
        };
        write!(
            f,
            "[{:>6.1}s] {phase:<10} connected {} (failed {})  offered {}  acked {}  outstanding {}  lost {}",
            self.elapsed.as_secs_f64(),
            self.connected,
            self.connect_failed,
            self.offered,
            self.acked,
            self.outstanding,
            self.lost
        )?;
        if let Some(stored) = self.stored {
            write!(f, "  stored {stored}")?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Counters {
    connected: AtomicU64,
    connect_failed: AtomicU64,
    disconnected: AtomicU64,
    /// Handed to a client.
    accepted: AtomicU64,
    /// Written to the socket.
    written: AtomicU64,
    acked: AtomicU64,
    /// Handed to a client whose connection then died before the ack.
    abandoned: AtomicU64,
    /// Nanoseconds since the start of the sending phase at the latest ack.
    last_ack_ns: AtomicU64,
    /// Confirmed stored by a storage acknowledgement.
    stored_acked: AtomicU64,
    /// Handed over or written, never confirmed stored, on a connection that died.
    unstored_abandoned: AtomicU64,
    /// Nanoseconds since the start of the sending phase at the latest storage ack.
    last_stored_ns: AtomicU64,
}

struct Shared {
    counters: Counters,
    latency: Mutex<Histogram<u64>>,
    storage_latency: Mutex<Histogram<u64>>,
    connect: Mutex<Histogram<u64>>,
    first_error: Mutex<Option<String>>,
    /// Set when the sending phase starts.
    send_start: Mutex<Option<Instant>>,
    qos: QoS,
    storage_acks: bool,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant histogram bounds are valid")
}

/// Runs the load and returns the report. `progress` is called about once a second. Everything
/// is bounded: the connect phase by `connect_rate` and `connect_grace`, sending by `duration`,
/// draining by `drain`.
pub async fn run_load(opts: LoadOptions, mut progress: impl FnMut(&Progress)) -> Result<LoadReport, LoadError> {
    opts.validate()?;
    let started_at = Utc::now();
    let t0 = Instant::now();
    let shared = Arc::new(Shared {
        counters: Counters::default(),
        latency: Mutex::new(histogram()),
        storage_latency: Mutex::new(histogram()),
        connect: Mutex::new(histogram()),
        first_error: Mutex::new(None),
        send_start: Mutex::new(None),
        qos: if opts.qos == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        },
        storage_acks: opts.storage_acks,
    });
    let cancel = CancellationToken::new();
    let mut pollers = JoinSet::new();
    let mut slots: Vec<Arc<Slot>> = Vec::with_capacity(opts.benches as usize);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let n = u64::from(opts.benches);
    let snapshot = |phase: Phase, offered: u64, not_sent: u64| {
        let c = &shared.counters;
        let acked = c.acked.load(Ordering::Relaxed);
        let abandoned = c.abandoned.load(Ordering::Relaxed);
        Progress {
            phase,
            elapsed: t0.elapsed(),
            connected: c.connected.load(Ordering::Relaxed),
            connect_failed: c.connect_failed.load(Ordering::Relaxed),
            offered,
            acked,
            outstanding: offered.saturating_sub(acked + abandoned + not_sent),
            lost: abandoned + not_sent,
            stored: opts.storage_acks.then(|| c.stored_acked.load(Ordering::Relaxed)),
        }
    };

    // Connect phase: open connections at `connect_rate`, then wait for every CONNACK or failure.
    let connect_period = opts.connect_rate.period();
    for i in 0..opts.benches {
        let at = t0 + connect_period.mul_f64(f64::from(i));
        loop {
            tokio::select! {
                () = sleep_until(at) => break,
                _ = ticker.tick() => progress(&snapshot(Phase::Connecting, 0, 0)),
            }
        }
        let id = BenchId::parse(&load_test_id(i + 1)).map_err(|e| LoadError::InvalidOption(e.to_string()))?;
        let (slot, poller) = open(&opts, &id, shared.clone(), cancel.clone());
        slots.push(slot);
        pollers.spawn(poller);
    }
    let connect_deadline = Instant::now() + opts.connect_grace;
    let all_tried = || {
        let c = &shared.counters;
        c.connected.load(Ordering::Relaxed) + c.connect_failed.load(Ordering::Relaxed) >= n
    };
    while !all_tried() && Instant::now() < connect_deadline {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
            _ = ticker.tick() => progress(&snapshot(Phase::Connecting, 0, 0)),
        }
    }
    let connect_s = t0.elapsed().as_secs_f64();

    // Sending phase: a fixed schedule, spread evenly over the period.
    let send_start = Instant::now();
    if let Ok(mut s) = shared.send_start.lock() {
        *s = Some(send_start);
    }
    let end = send_start + opts.duration;
    let period = opts.rate.period();
    let mut schedule: BinaryHeap<Reverse<(Instant, usize)>> = BinaryHeap::with_capacity(slots.len());
    for (i, slot) in slots.iter().enumerate() {
        let first = send_start + period.mul_f64(i as f64 / n as f64);
        if slot.alive.load(Ordering::Relaxed) && first < end {
            schedule.push(Reverse((first, i)));
        }
    }
    let template = BenchModel::new(1, 43.343, 17.808, started_at).telemetry(started_at, 0);
    let (mut offered, mut not_sent, mut lag_max) = (0u64, 0u64, Duration::ZERO);
    while let Some(&Reverse((at, _))) = schedule.peek() {
        tokio::select! {
            biased;
            _ = ticker.tick() => {
                progress(&snapshot(Phase::Sending, offered, not_sent));
                continue;
            }
            () = sleep_until(at) => {}
        }
        let now = Instant::now();
        while let Some(&Reverse((at, i))) = schedule.peek() {
            if at > now {
                break;
            }
            schedule.pop();
            offered += 1;
            lag_max = lag_max.max(now - at);
            if !send(&slots[i], &template, at, &shared) {
                not_sent += 1;
            }
            let next = at + period;
            if next < end {
                schedule.push(Reverse((next, i)));
            }
        }
    }
    let send_end = Instant::now().max(end);

    // Drain: wait for acks (and storage acks, if asked for) of everything handed over, or for
    // the connection to die.
    let drain_deadline = send_end + opts.drain;
    let settled = || {
        let c = &shared.counters;
        let accepted = c.accepted.load(Ordering::Relaxed);
        let done = c.acked.load(Ordering::Relaxed) + c.abandoned.load(Ordering::Relaxed);
        let stored = c.stored_acked.load(Ordering::Relaxed) + c.unstored_abandoned.load(Ordering::Relaxed);
        done >= accepted && (!opts.storage_acks || stored >= accepted)
    };
    while !settled() && Instant::now() < drain_deadline {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(5)) => {}
            _ = ticker.tick() => progress(&snapshot(Phase::Draining, offered, not_sent)),
        }
    }
    progress(&snapshot(Phase::Draining, offered, not_sent));

    // Close politely, then hard.
    for slot in &slots {
        let _ = slot.client.try_disconnect();
    }
    let close_deadline = Instant::now() + Duration::from_secs(3);
    while let Ok(Some(_)) = tokio::time::timeout_at(close_deadline, pollers.join_next()).await {}
    cancel.cancel();
    pollers.abort_all();

    let c = &shared.counters;
    let acked = c.acked.load(Ordering::Relaxed);
    let last_ack = Duration::from_nanos(c.last_ack_ns.load(Ordering::Relaxed)).as_secs_f64();
    let window = opts.duration.as_secs_f64().max(last_ack);
    let latency = shared.latency.lock().map(|h| h.clone()).unwrap_or_else(|_| histogram());
    let connect = shared.connect.lock().map(|h| h.clone()).unwrap_or_else(|_| histogram());
    let storage = opts.storage_acks.then(|| {
        let stored_acked = c.stored_acked.load(Ordering::Relaxed);
        let last = Duration::from_nanos(c.last_stored_ns.load(Ordering::Relaxed)).as_secs_f64();
        let h = shared
            .storage_latency
            .lock()
            .map(|h| h.clone())
            .unwrap_or_else(|_| histogram());
        StorageReport {
            stored_acked,
            unconfirmed: offered.saturating_sub(stored_acked),
            stored_per_s: if last > 0.0 {
                stored_acked as f64 / last.max(opts.duration.as_secs_f64())
            } else {
                0.0
            },
            last_stored_after_s: (last - opts.duration.as_secs_f64()).max(0.0),
            latency_ms: Quantiles::from_us(&h),
        }
    });
    Ok(LoadReport {
        broker: opts.broker.to_string(),
        started_at,
        benches: opts.benches,
        qos: opts.qos,
        rate_per_bench_per_s: opts.rate.as_per_second(),
        duration_s: opts.duration.as_secs_f64(),
        connected: c.connected.load(Ordering::Relaxed),
        connect_failed: c.connect_failed.load(Ordering::Relaxed),
        disconnected: c.disconnected.load(Ordering::Relaxed),
        connect_s,
        connect_ms: Quantiles::from_us(&connect),
        offered,
        written: c.written.load(Ordering::Relaxed),
        acked,
        lost: offered.saturating_sub(acked),
        offered_per_s: offered as f64 / opts.duration.as_secs_f64(),
        msgs_per_s: acked as f64 / window,
        last_acked_after_s: (last_ack - opts.duration.as_secs_f64()).max(0.0),
        latency_ms: if opts.qos == 0 {
            Quantiles::default()
        } else {
            Quantiles::from_us(&latency)
        },
        scheduler_lag_max_ms: lag_max.as_secs_f64() * 1000.0,
        storage,
        first_error: shared.first_error.lock().ok().and_then(|e| e.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_unbounded_runs() {
        let base = || {
            LoadOptions::new(
                Broker::new("127.0.0.1", 1883),
                10,
                Rate::per_second(1.0),
                Duration::from_secs(1),
            )
        };
        assert!(base().validate().is_ok());
        let mut o = base();
        o.benches = 0;
        assert!(o.validate().is_err());
        let mut o = base();
        o.duration = Duration::ZERO;
        assert!(o.validate().is_err());
        let mut o = base();
        o.qos = 2;
        assert!(o.validate().unwrap_err().to_string().contains("qos"));
    }
}
