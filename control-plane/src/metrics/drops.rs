//! The log side of dropped bench payloads: every drop is counted (`mqtt_messages_dropped`), but a
//! misbehaving bench must not flood the log, so at most one WARN line per bench and reason is
//! written per interval. The first drop is logged; the ones after it in the interval are only
//! counted, and the next line (the next drop after the interval, or the periodic
//! [`DropLog::flush`]) says how many were left out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How often each bench and reason may write a line.
pub const DROP_LOG_INTERVAL: Duration = Duration::from_secs(60);

/// Per bench and reason: when its current interval began and what it left out since.
#[derive(Debug)]
pub struct DropLog {
    interval: Duration,
    /// Keyed by (bench id, reason label). Benches are authenticated (the registry bounds them)
    /// and reasons are a closed set, so this stays small; [`DropLog::flush`] empties it of quiet
    /// keys.
    windows: Mutex<HashMap<(String, &'static str), Window>>,
}

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    unlogged: u64,
}

/// A line to write about dropped payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub bench: String,
    pub reason: &'static str,
    /// Drops counted but not logged since the last line.
    pub unlogged: u64,
}

impl DropLog {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            windows: Mutex::default(),
        }
    }

    /// The interval lines are limited to.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// A drop at `now`. `Some(n)` means write a line for it, `n` being the drops of this bench
    /// and reason left out of the log since the last line; `None` means count it only.
    pub fn note(&self, bench: &str, reason: &'static str, now: Instant) -> Option<u64> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = windows.get_mut(&(bench.to_owned(), reason)) {
            if now.saturating_duration_since(w.started) < self.interval {
                w.unlogged += 1;
                return None;
            }
            let unlogged = w.unlogged;
            *w = Window {
                started: now,
                unlogged: 0,
            };
            return Some(unlogged);
        }
        windows.insert(
            (bench.to_owned(), reason),
            Window {
                started: now,
                unlogged: 0,
            },
        );
        Some(0)
    }

    /// Ends the intervals that are over at `now`: returns a summary for each that left drops
    /// out of the log (they start a new interval, so a flood that goes on still gets one line per
    /// interval) and forgets the quiet ones.
    pub fn flush(&self, now: Instant) -> Vec<Summary> {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        windows.retain(|(bench, reason), w| {
            if now.saturating_duration_since(w.started) < self.interval {
                return true;
            }
            if w.unlogged == 0 {
                return false;
            }
            out.push(Summary {
                bench: bench.clone(),
                reason,
                unlogged: w.unlogged,
            });
            *w = Window {
                started: now,
                unlogged: 0,
            };
            true
        });
        out.sort_by(|a, b| (&a.bench, a.reason).cmp(&(&b.bench, b.reason)));
        out
    }
}

impl Default for DropLog {
    fn default() -> Self {
        Self::new(DROP_LOG_INTERVAL)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_bench_and_reason_per_interval() {
        let log = DropLog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert_eq!(log.note("mostar-01", "malformed_json", at(0)), Some(0));
        assert_eq!(log.note("mostar-01", "malformed_json", at(1)), None);
        assert_eq!(log.note("mostar-01", "malformed_json", at(59)), None);
        // Another reason and another bench have their own intervals.
        assert_eq!(log.note("mostar-01", "out_of_range", at(2)), Some(0));
        assert_eq!(log.note("zepce-01", "malformed_json", at(3)), Some(0));
        // The interval is over: a line again, with what was left out.
        assert_eq!(log.note("mostar-01", "malformed_json", at(60)), Some(2));
        assert_eq!(log.note("mostar-01", "malformed_json", at(61)), None);
    }

    #[test]
    fn flush_reports_what_was_left_out_and_forgets_quiet_keys() {
        let log = DropLog::new(Duration::from_secs(60));
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        log.note("mostar-01", "malformed_json", at(0));
        for s in 1..=5 {
            log.note("mostar-01", "malformed_json", at(s));
        }
        log.note("zepce-01", "invalid_type", at(0));
        assert!(log.flush(at(30)).is_empty(), "nothing is over yet");
        assert_eq!(
            log.flush(at(60)),
            vec![Summary {
                bench: "mostar-01".into(),
                reason: "malformed_json",
                unlogged: 5
            }]
        );
        // zepce-01 was quiet and is forgotten; mostar-01 started a new interval at the flush.
        assert_eq!(log.windows.lock().unwrap().len(), 1);
        assert_eq!(log.note("mostar-01", "malformed_json", at(61)), None);
        assert_eq!(log.note("zepce-01", "invalid_type", at(61)), Some(0));
        assert_eq!(log.flush(at(120)).len(), 1);
        assert!(log.flush(at(180)).is_empty());
        assert!(
            log.windows.lock().unwrap().is_empty(),
            "both were quiet for an interval"
        );
    }
}
