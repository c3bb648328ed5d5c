//! The fleet table: the benches as last reported, derived figures (bandwidth, drift), and the
//! operator's sort, filters and selection.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use protocol::BenchState;
use protocol::text::fold;

use crate::api::{Bench, BenchConfigStatus, BenchStateEvent, TelemetryEvent};

/// The benches and what the console derives from consecutive snapshots.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FleetData {
    /// As the API returned them, updated in place by live events.
    pub benches: Vec<Bench>,
    /// Bytes/s (received + sent) between the two newest samples seen, per bench.
    pub bandwidth: HashMap<String, f64>,
    /// The newest sample's time and byte counter total, per bench, for `bandwidth`.
    counters: HashMap<String, (DateTime<Utc>, u64)>,
    /// Each bench's configuration state from the OTA API (`/api/v1/ota/benches`), by bench id;
    /// empty when the control plane has no OTA routes or the token may not read them.
    pub config: HashMap<String, BenchConfigStatus>,
}

impl FleetData {
    /// Replaces the benches with a fresh list, deriving bandwidth from the byte counters.
    pub fn replace(&mut self, benches: Vec<Bench>) {
        for b in &benches {
            let Some((ts, total)) = sample_bytes(b) else {
                continue;
            };
            match self.counters.get(&b.id) {
                Some(&(prev_ts, prev_total)) if ts > prev_ts => {
                    let dt = (ts - prev_ts).num_milliseconds() as f64 / 1000.0;
                    // A smaller total means the bench rebooted and its counters restarted:
                    // the bytes since boot are the best lower bound (as Prometheus `rate()`).
                    let bytes = if total >= prev_total { total - prev_total } else { total };
                    self.bandwidth.insert(b.id.clone(), bytes as f64 / dt);
                    self.counters.insert(b.id.clone(), (ts, total));
                }
                Some(_) => {}
                None => {
                    self.counters.insert(b.id.clone(), (ts, total));
                }
            }
        }
        self.benches = benches;
    }

    pub fn get(&self, id: &str) -> Option<&Bench> {
        self.benches.iter().find(|b| b.id == id)
    }

    /// Applies a live presence change; returns false for an unknown bench.
    pub fn apply_state(&mut self, e: &BenchStateEvent) -> bool {
        let Some(b) = self.benches.iter_mut().find(|b| b.id == e.bench_id) else {
            return false;
        };
        b.state = e.state;
        b.since = Some(e.at);
        b.until = e.until;
        true
    }

    /// Applies a live sample's headline figures; the next poll fills in the rest.
    pub fn apply_sample(&mut self, e: &TelemetryEvent) -> bool {
        let Some(b) = self.benches.iter_mut().find(|b| b.id == e.bench_id) else {
            return false;
        };
        if b.sample_ts.is_some_and(|ts| ts > e.ts) {
            // A store-and-forward sample from the past: not the bench's current state.
            return false;
        }
        b.sample_ts = Some(e.ts);
        b.last_seen = b.last_seen.max(Some(e.ts));
        if let Some(p) = &mut b.power {
            p.solar_w = e.solar_w;
            p.battery_pct = e.battery_pct;
        }
        if let Some(n) = &mut b.network {
            n.wifi_clients = e.wifi_clients.or(n.wifi_clients);
        }
        if let Some(h) = &mut b.health {
            h.faults.clone_from(&e.faults);
        }
        true
    }

    /// Replaces every bench's configuration state.
    pub fn replace_config(&mut self, statuses: Vec<BenchConfigStatus>) {
        self.config = statuses.into_iter().map(|s| (s.bench_id.to_string(), s)).collect();
    }

    /// The bench's configuration state, when the OTA API reported it.
    pub fn config_of(&self, id: &str) -> Option<&BenchConfigStatus> {
        self.config.get(id)
    }

    /// True when the control plane says the bench has not run its desired configuration for
    /// longer than its drift threshold (`drifting`); the console does not guess.
    pub fn drifted(&self, b: &Bench) -> bool {
        self.config.get(&b.id).is_some_and(|c| c.drifting)
    }

    /// The municipalities, sorted, each once.
    pub fn municipalities(&self) -> Vec<String> {
        let mut m: Vec<String> = self.benches.iter().map(|b| b.municipality.clone()).collect();
        m.sort_by_key(|a| fold(a));
        m.dedup();
        m
    }
}

fn sample_bytes(b: &Bench) -> Option<(DateTime<Utc>, u64)> {
    let n = b.network.as_ref()?;
    let total = n.rx_bytes.unwrap_or(0).saturating_add(n.tx_bytes.unwrap_or(0));
    (n.rx_bytes.is_some() || n.tx_bytes.is_some()).then_some((b.sample_ts?, total))
}

/// Active sessions of all kinds in the newest sample.
pub fn sessions_active(b: &Bench) -> Option<u32> {
    let s = b.sessions.as_ref()?;
    let kinds = [s.wifi, s.usb, s.kiosk];
    kinds
        .iter()
        .any(Option::is_some)
        .then(|| kinds.into_iter().flatten().fold(0, u32::saturating_add))
}

pub fn faults(b: &Bench) -> &[String] {
    b.health.as_ref().map_or(&[], |h| h.faults.as_slice())
}

/// The columns the table sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    /// Worst first: offline, stale, never seen, sleeping, online.
    #[default]
    State,
    Bench,
    Municipality,
    LastSeen,
    Battery,
    Solar,
    Sessions,
    Faults,
}

impl SortKey {
    pub const ALL: [SortKey; 8] = [
        Self::State,
        Self::Bench,
        Self::Municipality,
        Self::LastSeen,
        Self::Battery,
        Self::Solar,
        Self::Sessions,
        Self::Faults,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::Bench => "bench",
            Self::Municipality => "municipality",
            Self::LastSeen => "last seen",
            Self::Battery => "battery",
            Self::Solar => "solar",
            Self::Sessions => "sessions",
            Self::Faults => "faults",
        }
    }

    pub fn next(self) -> Self {
        let i = Self::ALL.iter().position(|k| *k == self).unwrap_or(0);
        Self::ALL[(i + 1) % Self::ALL.len()]
    }

    /// The natural order: problems and small values first where that helps an operator (the
    /// emptiest battery, the longest silence), names alphabetically.
    fn compare(self, a: &Bench, b: &Bench) -> Ordering {
        let f = |x: Option<f64>, y: Option<f64>| match (x, y) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            // Unknown values go last.
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        };
        match self {
            Self::State => severity(a.state).cmp(&severity(b.state)),
            Self::Bench => a.id.cmp(&b.id),
            Self::Municipality => fold(&a.municipality).cmp(&fold(&b.municipality)),
            // Longest silence first; never seen is the longest of all.
            Self::LastSeen => a.last_seen.cmp(&b.last_seen),
            Self::Battery => f(
                a.power.as_ref().map(|p| p.battery_pct),
                b.power.as_ref().map(|p| p.battery_pct),
            ),
            Self::Solar => f(b.power.as_ref().map(|p| p.solar_w), a.power.as_ref().map(|p| p.solar_w)),
            Self::Sessions => sessions_active(b).cmp(&sessions_active(a)),
            Self::Faults => faults(b).len().cmp(&faults(a).len()),
        }
    }
}

/// Sort rank of a state: what needs attention first.
pub fn severity(s: BenchState) -> u8 {
    match s {
        BenchState::Offline => 0,
        BenchState::Stale => 1,
        BenchState::NeverSeen => 2,
        BenchState::Sleeping => 3,
        BenchState::Online => 4,
    }
}

/// Which states the table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StateFilter {
    #[default]
    All,
    /// Offline, stale or never seen: what needs a visit or a call.
    Problems,
    Only(BenchState),
}

impl StateFilter {
    pub fn next(self) -> Self {
        use BenchState::*;
        match self {
            Self::All => Self::Problems,
            Self::Problems => Self::Only(Online),
            Self::Only(Online) => Self::Only(Offline),
            Self::Only(Offline) => Self::Only(Stale),
            Self::Only(Stale) => Self::Only(Sleeping),
            Self::Only(Sleeping) => Self::Only(NeverSeen),
            Self::Only(NeverSeen) => Self::All,
        }
    }

    pub fn admits(self, s: BenchState) -> bool {
        match self {
            Self::All => true,
            Self::Problems => matches!(s, BenchState::Offline | BenchState::Stale | BenchState::NeverSeen),
            Self::Only(only) => s == only,
        }
    }

    pub fn label(self) -> String {
        match self {
            Self::All => "all".into(),
            Self::Problems => "problems".into(),
            Self::Only(s) => s.as_str().replace('_', " "),
        }
    }
}

/// The operator's view of the table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Table {
    pub sort: SortKey,
    pub descending: bool,
    pub state: StateFilter,
    pub municipality: Option<String>,
    /// Text search over id, name, municipality, state, firmware and fault codes;
    /// case- and diacritic-insensitive (`zepce` finds `Žepče`).
    pub text: String,
    /// The selected bench, by id, so it stays selected when rows move.
    pub selected: Option<String>,
}

impl Table {
    /// The rows to show, filtered and sorted.
    pub fn rows<'a>(&self, data: &'a FleetData) -> Vec<&'a Bench> {
        let needle = fold(self.text.trim());
        let mut rows: Vec<&Bench> = data
            .benches
            .iter()
            .filter(|b| self.state.admits(b.state))
            .filter(|b| {
                self.municipality
                    .as_ref()
                    .is_none_or(|m| fold(m) == fold(&b.municipality))
            })
            .filter(|b| needle.is_empty() || haystack(b).contains(&needle))
            .collect();
        rows.sort_by(|a, b| {
            let o = self.sort.compare(a, b);
            let o = if self.descending { o.reverse() } else { o };
            o.then_with(|| a.id.cmp(&b.id))
        });
        rows
    }

    /// Index of the selection among `rows`; the first row when the selection is hidden.
    pub fn selected_index(&self, rows: &[&Bench]) -> Option<usize> {
        if rows.is_empty() {
            return None;
        }
        Some(
            self.selected
                .as_ref()
                .and_then(|id| rows.iter().position(|b| &b.id == id))
                .unwrap_or(0),
        )
    }

    /// Moves the selection by `delta` rows, stopping at the ends.
    pub fn move_by(&mut self, data: &FleetData, delta: isize) {
        let rows = self.rows(data);
        let Some(i) = self.selected_index(&rows) else {
            return;
        };
        let last = rows.len() - 1;
        let j = i.saturating_add_signed(delta).min(last);
        self.selected = Some(rows[j].id.clone());
    }

    /// Selects the first or last row.
    pub fn select_end(&mut self, data: &FleetData, last: bool) {
        let rows = self.rows(data);
        let pick = if last { rows.last() } else { rows.first() };
        self.selected = pick.map(|b| b.id.clone());
    }

    /// Keeps the selection on a visible row after the rows changed.
    pub fn settle(&mut self, data: &FleetData) {
        let rows = self.rows(data);
        let i = self.selected_index(&rows);
        self.selected = i.map(|i| rows[i].id.clone());
    }

    /// The bench the view shows: the selection if visible, else the first row.
    pub fn current<'a>(&self, data: &'a FleetData) -> Option<&'a Bench> {
        let rows = self.rows(data);
        self.selected_index(&rows).map(|i| rows[i])
    }

    pub fn is_filtered(&self) -> bool {
        self.state != StateFilter::All || self.municipality.is_some() || !self.text.trim().is_empty()
    }
}

fn haystack(b: &Bench) -> String {
    let mut s = format!(
        "{} {} {} {} {}",
        b.id,
        b.name,
        b.municipality,
        b.state.as_str().replace('_', " "),
        b.fw.as_deref().unwrap_or_default()
    );
    for f in faults(b) {
        s.push(' ');
        s.push_str(f);
    }
    fold(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_ignores_case_and_diacritics() {
        assert_eq!(fold("Žepče"), "zepce");
        assert_eq!(fold("ZAVIDOVIĆI"), "zavidovici");
        assert_eq!(fold("Đurđevik"), "djurdjevik");
        assert_eq!(fold("Ђурђевик"), "djurdjevik");
    }

    #[test]
    fn state_filter_cycles_through_everything_once() {
        let mut f = StateFilter::All;
        let mut seen = vec![f];
        for _ in 0..6 {
            f = f.next();
            seen.push(f);
        }
        assert_eq!(f.next(), StateFilter::All);
        assert_eq!(seen.len(), 7);
        assert!(StateFilter::Problems.admits(BenchState::Stale));
        assert!(!StateFilter::Problems.admits(BenchState::Sleeping));
        assert!(!StateFilter::Problems.admits(BenchState::Online));
    }
}
