//! The load generator's report: human-readable text and JSON.

use std::fmt;

use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use serde::Serialize;

/// Quantiles of a latency distribution, milliseconds; all `None` when nothing was measured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

impl Quantiles {
    /// From a histogram recorded in microseconds.
    pub fn from_us(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            count: h.len(),
            p50: Some(ms(h.value_at_quantile(0.50))),
            p90: Some(ms(h.value_at_quantile(0.90))),
            p99: Some(ms(h.value_at_quantile(0.99))),
            p999: Some(ms(h.value_at_quantile(0.999))),
            max: Some(ms(h.max())),
            mean: Some(h.mean() / 1000.0),
        }
    }
}

/// What a load run measured. The JSON form has the headline numbers at the top level
/// (`connected`, `offered`, `acked`, `lost`, `msgs_per_s`, `p50_ms`, `p90_ms`, `p99_ms`, `max_ms`)
/// and the detail beside them.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadReport {
    pub broker: String,
    pub started_at: DateTime<Utc>,
    pub benches: u32,
    pub qos: u8,
    pub rate_per_bench_per_s: f64,
    /// The sending window, seconds.
    pub duration_s: f64,
    /// Connections that got a CONNACK.
    pub connected: u64,
    pub connect_failed: u64,
    /// Connections lost after connecting.
    pub disconnected: u64,
    /// From the first connection attempt until all were settled, seconds.
    pub connect_s: f64,
    /// Per-connection time from opening the socket to CONNACK.
    pub connect_ms: Quantiles,
    /// Messages the schedule called for on established connections.
    pub offered: u64,
    /// Messages written to a socket.
    pub written: u64,
    /// Messages the broker acknowledged (QoS 1), or written (QoS 0).
    pub acked: u64,
    /// `offered - acked`.
    pub lost: u64,
    pub offered_per_s: f64,
    /// Acknowledged messages per second over the sending window (or until the last ack, if
    /// later).
    pub msgs_per_s: f64,
    /// From the end of the sending window until the last PUBACK, seconds (0 when every
    /// acknowledgement came before the window ended).
    pub last_acked_after_s: f64,
    /// Intended send time to PUBACK (QoS 1 only).
    pub latency_ms: Quantiles,
    /// How late the scheduler itself ran at worst; high values mean the load generator, not
    /// the broker, was the bottleneck.
    pub scheduler_lag_max_ms: f64,
    /// What the control plane confirmed stored; `None` against a plain broker (no storage
    /// acknowledgements asked for).
    pub storage: Option<StorageReport>,
    pub first_error: Option<String>,
}

/// Storage acknowledgements (`benches/{id}/telemetry/ack`) seen during a load run.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageReport {
    /// Messages the control plane confirmed as stored.
    pub stored_acked: u64,
    /// Messages offered and not confirmed stored by the end of the run and its drain.
    pub unconfirmed: u64,
    /// Confirmed messages per second, from the start of sending until the last confirmation.
    pub stored_per_s: f64,
    /// From the end of the sending window until the last confirmation, seconds (0 when
    /// everything was confirmed before the window ended).
    pub last_stored_after_s: f64,
    /// Intended send time to storage acknowledgement.
    pub latency_ms: Quantiles,
}

#[derive(Serialize)]
struct Messages {
    offered: u64,
    written: u64,
    acked: u64,
    lost: u64,
    stored_acked: Option<u64>,
    unconfirmed: Option<u64>,
}

#[derive(Serialize)]
struct Json<'a> {
    connected: u64,
    offered: u64,
    acked: u64,
    lost: u64,
    msgs_per_s: f64,
    last_acked_after_s: f64,
    p50_ms: Option<f64>,
    p90_ms: Option<f64>,
    p99_ms: Option<f64>,
    max_ms: Option<f64>,
    broker: &'a str,
    started_at: DateTime<Utc>,
    benches: u32,
    qos: u8,
    rate_per_bench_per_s: f64,
    duration_s: f64,
    connect_failed: u64,
    disconnected: u64,
    connect_s: f64,
    connect_ms: Quantiles,
    written: u64,
    offered_per_s: f64,
    latency_ms: Quantiles,
    scheduler_lag_max_ms: f64,
    messages: Messages,
    stored_per_s: Option<f64>,
    last_stored_after_s: Option<f64>,
    storage_latency_ms: Quantiles,
    first_error: Option<&'a str>,
}

impl LoadReport {
    /// The report as a JSON value.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self.json()).unwrap_or_default()
    }

    /// The report as pretty JSON text, headline keys first.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.json()).unwrap_or_default()
    }

    fn json(&self) -> Json<'_> {
        let l = &self.latency_ms;
        Json {
            connected: self.connected,
            offered: self.offered,
            acked: self.acked,
            lost: self.lost,
            msgs_per_s: round3(self.msgs_per_s),
            last_acked_after_s: round3(self.last_acked_after_s),
            p50_ms: l.p50,
            p90_ms: l.p90,
            p99_ms: l.p99,
            max_ms: l.max,
            broker: &self.broker,
            started_at: self.started_at,
            benches: self.benches,
            qos: self.qos,
            rate_per_bench_per_s: self.rate_per_bench_per_s,
            duration_s: self.duration_s,
            connect_failed: self.connect_failed,
            disconnected: self.disconnected,
            connect_s: round3(self.connect_s),
            connect_ms: self.connect_ms,
            written: self.written,
            offered_per_s: round3(self.offered_per_s),
            latency_ms: self.latency_ms,
            scheduler_lag_max_ms: round3(self.scheduler_lag_max_ms),
            messages: Messages {
                offered: self.offered,
                written: self.written,
                acked: self.acked,
                lost: self.lost,
                stored_acked: self.storage.as_ref().map(|s| s.stored_acked),
                unconfirmed: self.storage.as_ref().map(|s| s.unconfirmed),
            },
            stored_per_s: self.storage.as_ref().map(|s| round3(s.stored_per_s)),
            last_stored_after_s: self.storage.as_ref().map(|s| round3(s.last_stored_after_s)),
            storage_latency_ms: self.storage.as_ref().map(|s| s.latency_ms).unwrap_or_default(),
            first_error: self.first_error.as_deref(),
        }
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} ms"))
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "load against {} ({} benches, {}/s each, {} s, QoS {})",
            self.broker, self.benches, self.rate_per_bench_per_s, self.duration_s, self.qos
        )?;
        writeln!(
            f,
            "connections  {} established, {} failed, {} lost later; all settled in {:.2} s",
            self.connected, self.connect_failed, self.disconnected, self.connect_s
        )?;
        let c = &self.connect_ms;
        writeln!(
            f,
            "connect time p50 {}  p99 {}  max {}",
            opt_ms(c.p50),
            opt_ms(c.p99),
            opt_ms(c.max)
        )?;
        writeln!(
            f,
            "messages     offered {}  written {}  acked {}  lost {} ({:.3} %)",
            self.offered,
            self.written,
            self.acked,
            self.lost,
            if self.offered == 0 {
                0.0
            } else {
                self.lost as f64 * 100.0 / self.offered as f64
            }
        )?;
        writeln!(
            f,
            "throughput   offered {:.1} msg/s, achieved {:.1} msg/s, last ack {:.2} s after the load",
            self.offered_per_s, self.msgs_per_s, self.last_acked_after_s
        )?;
        let l = &self.latency_ms;
        if self.qos == 0 {
            writeln!(f, "latency      n/a (QoS 0 has no acknowledgement)")?;
        } else {
            writeln!(
                f,
                "latency      publish→PUBACK from the intended send time: p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
                opt_ms(l.p50),
                opt_ms(l.p90),
                opt_ms(l.p99),
                opt_ms(l.p999),
                opt_ms(l.max)
            )?;
        }
        match &self.storage {
            None => writeln!(f, "stored       n/a (no storage acknowledgements asked for)")?,
            Some(s) => {
                writeln!(
                    f,
                    "stored       confirmed {}  unconfirmed {}  {:.1} msg/s  last {:.2} s after the load",
                    s.stored_acked, s.unconfirmed, s.stored_per_s, s.last_stored_after_s
                )?;
                let l = &s.latency_ms;
                writeln!(
                    f,
                    "             publish→storage ack from the intended send time: p50 {}  p99 {}  max {}",
                    opt_ms(l.p50),
                    opt_ms(l.p99),
                    opt_ms(l.max)
                )?;
            }
        }
        write!(f, "scheduler    worst lag {:.2} ms", self.scheduler_lag_max_ms)?;
        if let Some(e) = &self.first_error {
            write!(f, "\nfirst error  {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> LoadReport {
        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        for us in 1..=1000u64 {
            h.record(us * 10).unwrap();
        }
        LoadReport {
            broker: "mqtt://127.0.0.1:1883".into(),
            started_at: "2026-11-26T10:00:00Z".parse().unwrap(),
            benches: 10,
            qos: 1,
            rate_per_bench_per_s: 1.0,
            duration_s: 10.0,
            connected: 10,
            connect_failed: 0,
            disconnected: 0,
            connect_s: 0.5,
            connect_ms: Quantiles::from_us(&h),
            offered: 100,
            written: 100,
            acked: 99,
            lost: 1,
            offered_per_s: 10.0,
            msgs_per_s: 9.9,
            last_acked_after_s: 0.0,
            latency_ms: Quantiles::from_us(&h),
            scheduler_lag_max_ms: 0.25,
            storage: None,
            first_error: None,
        }
    }

    #[test]
    fn json_has_the_headline_keys() {
        let j = report().to_json();
        for key in [
            "connected",
            "offered",
            "acked",
            "lost",
            "msgs_per_s",
            "p50_ms",
            "p90_ms",
            "p99_ms",
            "max_ms",
        ] {
            assert!(j.get(key).is_some(), "{key} missing in {j}");
        }
        assert_eq!(j["lost"], 1);
        let p50 = j["p50_ms"].as_f64().unwrap();
        assert!((p50 - 5.0).abs() < 0.01, "{p50}");
        // hdrhistogram keeps 3 significant figures.
        let max = j["max_ms"].as_f64().unwrap();
        assert!((max - 10.0).abs() <= 0.01, "{max}");
        assert!(j["p99_ms"].as_f64().unwrap() > j["p90_ms"].as_f64().unwrap());
        let text = report().to_json_pretty();
        assert!(
            text.starts_with("{\n  \"connected\": 10,\n  \"offered\": 100,"),
            "{text}"
        );
    }

    #[test]
    fn text_mentions_what_matters() {
        let t = report().to_string();
        assert!(t.contains("offered 100"), "{t}");
        assert!(t.contains("lost 1 (1.000 %)"), "{t}");
        assert!(t.contains("p50 5.00 ms"), "{t}");
        let mut qos0 = report();
        qos0.qos = 0;
        qos0.latency_ms = Quantiles::default();
        assert!(qos0.to_string().contains("n/a (QoS 0"));
        assert!(qos0.to_json()["p99_ms"].is_null());
    }

    #[test]
    fn storage_figures_are_null_against_a_plain_broker_and_counted_otherwise() {
        let plain = report();
        let j = plain.to_json();
        assert_eq!(j["messages"]["acked"], 99);
        assert!(j["messages"]["stored_acked"].is_null(), "{j}");
        assert!(j["messages"]["unconfirmed"].is_null(), "{j}");
        assert!(j["storage_latency_ms"]["p99"].is_null(), "{j}");
        assert!(plain.to_string().contains("stored       n/a"));

        let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
        h.record(250_000).unwrap();
        let mut cp = report();
        cp.storage = Some(StorageReport {
            stored_acked: 97,
            unconfirmed: 3,
            stored_per_s: 9.7,
            last_stored_after_s: 0.4,
            latency_ms: Quantiles::from_us(&h),
        });
        let j = cp.to_json();
        assert_eq!(j["messages"]["stored_acked"], 97);
        assert_eq!(j["messages"]["unconfirmed"], 3);
        assert!(
            (j["storage_latency_ms"]["p50"].as_f64().unwrap() - 250.0).abs() < 0.5,
            "{j}"
        );
        let t = cp.to_string();
        assert!(t.contains("confirmed 97  unconfirmed 3"), "{t}");
    }
}
