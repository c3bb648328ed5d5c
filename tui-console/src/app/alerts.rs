//! The alerts line: what changed for the worse (or recovered) in the fleet. Alerts are rising
//! edges of per-bench conditions, so the live stream and polling produce the same alerts and
//! never the same alert twice.

use std::collections::{BTreeSet, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use protocol::BenchState;

use super::fleet::{FleetData, faults};

/// Alerts kept; older ones scroll away.
const KEEP: usize = 100;

/// The default low-battery threshold until the fleet summary says otherwise, percent.
pub const LOW_BATTERY_PCT: f64 = 20.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    Offline,
    Stale,
    BackOnline,
    LowBattery,
    Fault,
    FaultCleared,
    Drift,
}

impl AlertKind {
    /// Bad news, as opposed to a recovery.
    pub fn is_problem(self) -> bool {
        !matches!(self, Self::BackOnline | Self::FaultCleared)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub at: DateTime<Utc>,
    pub bench_id: String,
    pub kind: AlertKind,
    /// E.g. `went offline (last_will)`, `battery 14%`, `fault stuck_sensor`.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Condition {
    Offline,
    Stale,
    LowBattery,
    Fault(String),
    Drift,
}

/// Alerts, newest first, and the conditions they were derived from.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alerts {
    pub items: VecDeque<Alert>,
    conditions: HashMap<String, BTreeSet<Condition>>,
}

impl Alerts {
    /// Compares the fleet with the conditions last seen and records what started or ended.
    /// `cause` explains a state change when a live event delivered it.
    pub fn observe(&mut self, data: &FleetData, low_battery_pct: f64, now: DateTime<Utc>, cause: Option<&str>) {
        let mut fresh = Vec::new();
        for b in &data.benches {
            let mut now_set = BTreeSet::new();
            match b.state {
                BenchState::Offline => {
                    now_set.insert(Condition::Offline);
                }
                BenchState::Stale => {
                    now_set.insert(Condition::Stale);
                }
                _ => {}
            }
            let battery = b.power.as_ref().map(|p| p.battery_pct);
            if battery.is_some_and(|pct| pct < low_battery_pct) {
                now_set.insert(Condition::LowBattery);
            }
            for f in faults(b) {
                now_set.insert(Condition::Fault(f.clone()));
            }
            // A bench never seen has applied nothing; its state says so already.
            if data.drifted(b) && b.state != BenchState::NeverSeen {
                now_set.insert(Condition::Drift);
            }
            let before = self.conditions.remove(&b.id).unwrap_or_default();
            let since = b.since.unwrap_or(now);
            let why = cause.map(|c| format!(" ({c})")).unwrap_or_default();
            for c in now_set.difference(&before) {
                let (kind, text, at) = match c {
                    Condition::Offline => (AlertKind::Offline, format!("went offline{why}"), since),
                    Condition::Stale => (AlertKind::Stale, format!("silent, connected but stale{why}"), since),
                    Condition::LowBattery => (
                        AlertKind::LowBattery,
                        format!("battery low: {:.0}%", battery.unwrap_or_default()),
                        now,
                    ),
                    Condition::Fault(f) => (AlertKind::Fault, format!("fault {f}"), now),
                    Condition::Drift => {
                        let c = data.config_of(&b.id);
                        let runs = c
                            .and_then(|c| c.reported_version)
                            .or(b.config_version)
                            .map_or_else(|| "nothing yet".to_owned(), |v| format!("v{v}"));
                        let desired = c.map_or(0, |c| c.desired_version);
                        (
                            AlertKind::Drift,
                            format!("config drift: runs {runs}, desired v{desired}"),
                            now,
                        )
                    }
                };
                fresh.push(Alert {
                    at,
                    bench_id: b.id.clone(),
                    kind,
                    text,
                });
            }
            for c in before.difference(&now_set) {
                let (kind, text) = match c {
                    Condition::Offline | Condition::Stale if b.state == BenchState::Online => {
                        (AlertKind::BackOnline, format!("back online{why}"))
                    }
                    Condition::Fault(f) => (AlertKind::FaultCleared, format!("fault {f} cleared")),
                    _ => continue,
                };
                fresh.push(Alert {
                    at: if kind == AlertKind::BackOnline { since } else { now },
                    bench_id: b.id.clone(),
                    kind,
                    text,
                });
            }
            self.conditions.insert(b.id.clone(), now_set);
        }
        fresh.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.bench_id.cmp(&b.bench_id)));
        for a in fresh {
            self.items.push_front(a);
        }
        self.items.truncate(KEEP);
    }

    /// Faults seen on one bench during this session, newest first.
    pub fn faults_of<'a>(&'a self, bench: &'a str) -> impl Iterator<Item = &'a Alert> + 'a {
        self.items
            .iter()
            .filter(move |a| a.bench_id == bench && matches!(a.kind, AlertKind::Fault | AlertKind::FaultCleared))
    }

    /// Problems among the alerts.
    pub fn problems(&self) -> usize {
        self.items.iter().filter(|a| a.kind.is_problem()).count()
    }
}
