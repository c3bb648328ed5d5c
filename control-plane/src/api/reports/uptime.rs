//! Availability from the presence history: a pure function of the status events.
//!
//! Each bench's period is cut at its status changes into stretches of one state. `online` is
//! available; `offline` and `stale` (connected but silent) are not; planned `sleeping` and the
//! time before a bench was first seen are reported but left out of the availability
//! denominator. An outage is an unavailable stretch (consecutive `offline`/`stale`) of at least
//! [`MIN_OUTAGE`]; MTTR is the mean length of the outages that ended inside the period.

use chrono::{DateTime, TimeDelta, Utc};
use protocol::BenchState;
use protocol::api::UptimeFigures;

use crate::presence::StatusEvent;

/// The shortest unavailability counted as an outage.
pub const MIN_OUTAGE: TimeDelta = TimeDelta::minutes(5);

/// Milliseconds per state and the outages of one bench (or, summed, of the fleet).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Tally {
    pub online_ms: i64,
    pub offline_ms: i64,
    pub sleeping_ms: i64,
    pub never_seen_ms: i64,
    pub outages: u32,
    pub longest_outage_ms: i64,
    /// Outages that ended inside the period: how many, and their total length.
    pub recovered: u32,
    pub recovered_ms: i64,
}

impl Tally {
    /// Tallies one bench over `from..to` from its events: the newest one before `from` (its
    /// state at `from`; none means never seen), then the period's in time order.
    pub fn of_bench(events: &[StatusEvent], from: DateTime<Utc>, to: DateTime<Utc>) -> Self {
        let mut tally = Self::default();
        let mut state = BenchState::NeverSeen;
        let mut cursor = from;
        // The unavailable stretch in progress, if any: when it began.
        let mut down_since: Option<DateTime<Utc>> = None;
        for e in events {
            if e.at >= to {
                break;
            }
            if e.at > cursor {
                tally.stretch(state, e.at - cursor);
                cursor = e.at;
            }
            let down = is_down(e.state);
            match (down_since, down) {
                (None, true) => down_since = Some(cursor),
                (Some(since), false) => {
                    tally.outage(cursor - since, true);
                    down_since = None;
                }
                _ => {}
            }
            state = e.state;
        }
        if to > cursor {
            tally.stretch(state, to - cursor);
        }
        if let Some(since) = down_since {
            tally.outage(to - since, false);
        }
        tally
    }

    fn stretch(&mut self, state: BenchState, length: TimeDelta) {
        let ms = length.num_milliseconds();
        match state {
            BenchState::Online => self.online_ms += ms,
            BenchState::Offline | BenchState::Stale => self.offline_ms += ms,
            BenchState::Sleeping => self.sleeping_ms += ms,
            BenchState::NeverSeen => self.never_seen_ms += ms,
        }
    }

    fn outage(&mut self, length: TimeDelta, recovered: bool) {
        if length < MIN_OUTAGE {
            return;
        }
        let ms = length.num_milliseconds();
        self.outages += 1;
        self.longest_outage_ms = self.longest_outage_ms.max(ms);
        if recovered {
            self.recovered += 1;
            self.recovered_ms += ms;
        }
    }

    /// Adds another bench's tally (for the fleet row).
    pub fn add(&mut self, other: &Tally) {
        self.online_ms += other.online_ms;
        self.offline_ms += other.offline_ms;
        self.sleeping_ms += other.sleeping_ms;
        self.never_seen_ms += other.never_seen_ms;
        self.outages += other.outages;
        self.longest_outage_ms = self.longest_outage_ms.max(other.longest_outage_ms);
        self.recovered += other.recovered;
        self.recovered_ms += other.recovered_ms;
    }

    /// The figures the report shows.
    pub fn figures(&self) -> UptimeFigures {
        let minutes = |ms: i64| ms as f64 / 60_000.0;
        let observed = self.online_ms + self.offline_ms;
        UptimeFigures {
            availability_pct: (observed > 0).then(|| self.online_ms as f64 * 100.0 / observed as f64),
            online_minutes: minutes(self.online_ms),
            offline_minutes: minutes(self.offline_ms),
            sleeping_minutes: minutes(self.sleeping_ms),
            never_seen_minutes: minutes(self.never_seen_ms),
            outages: self.outages,
            longest_outage_minutes: minutes(self.longest_outage_ms),
            mttr_minutes: (self.recovered > 0).then(|| minutes(self.recovered_ms) / f64::from(self.recovered)),
        }
    }
}

fn is_down(state: BenchState) -> bool {
    matches!(state, BenchState::Offline | BenchState::Stale)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-26T00:00:00Z plus `m` minutes.
    fn m(minutes: i64) -> DateTime<Utc> {
        "2026-11-26T00:00:00Z".parse::<DateTime<Utc>>().unwrap() + TimeDelta::minutes(minutes)
    }

    fn ev(minute: i64, state: BenchState) -> StatusEvent {
        StatusEvent {
            bench_id: "b".into(),
            at: m(minute),
            state,
            cause: "test".into(),
            fw: None,
            config_version: None,
            until: None,
        }
    }

    use BenchState::{NeverSeen, Offline, Online, Sleeping, Stale};

    #[test]
    fn a_known_day() {
        // Online before the day; down 00:10-00:13 (too short to count), 01:00-01:30 (offline
        // then stale), asleep 02:00-08:00 (planned), down from 23:00 to the end of the day.
        let events = [
            ev(-60, Online),
            ev(10, Offline),
            ev(13, Online),
            ev(60, Offline),
            ev(75, Stale),
            ev(90, Online),
            ev(120, Sleeping),
            ev(480, Online),
            ev(23 * 60, Offline),
        ];
        let t = Tally::of_bench(&events, m(0), m(24 * 60));
        assert_eq!(t.offline_ms / 60_000, 3 + 30 + 60);
        assert_eq!(t.sleeping_ms / 60_000, 360);
        assert_eq!(t.online_ms / 60_000, 24 * 60 - 93 - 360);
        assert_eq!(t.never_seen_ms, 0);
        assert_eq!((t.outages, t.recovered), (2, 1));
        let f = t.figures();
        assert_eq!(f.availability_pct, Some(987.0 * 100.0 / 1080.0));
        assert_eq!(f.longest_outage_minutes, 60.0);
        assert_eq!(f.mttr_minutes, Some(30.0));
    }

    #[test]
    fn before_first_contact_and_empty_history() {
        let t = Tally::of_bench(&[ev(30, Online)], m(0), m(60));
        assert_eq!((t.never_seen_ms, t.online_ms), (30 * 60_000, 30 * 60_000));
        assert_eq!(t.figures().availability_pct, Some(100.0));
        let t = Tally::of_bench(&[], m(0), m(60));
        assert_eq!(t.never_seen_ms, 60 * 60_000);
        assert_eq!(t.figures().availability_pct, None);
        assert_eq!(t.figures().mttr_minutes, None);
    }

    #[test]
    fn events_at_the_edges() {
        // A change exactly at `from` decides the state from `from`; one at `to` is ignored.
        let t = Tally::of_bench(&[ev(-5, Online), ev(0, Offline), ev(60, Online)], m(0), m(60));
        assert_eq!((t.offline_ms, t.outages, t.recovered), (60 * 60_000, 1, 0));
        // Simultaneous changes: only the last one lasts.
        let t = Tally::of_bench(
            &[ev(0, Offline), ev(10, Offline), ev(10, Online), ev(10, NeverSeen)],
            m(0),
            m(20),
        );
        assert_eq!(
            (t.offline_ms, t.never_seen_ms, t.outages),
            (10 * 60_000, 10 * 60_000, 1)
        );
    }

    #[test]
    fn fleet_totals() {
        let a = Tally::of_bench(&[ev(0, Online), ev(10, Offline), ev(40, Online)], m(0), m(60));
        let b = Tally::of_bench(&[ev(0, Offline), ev(10, Online)], m(0), m(60));
        let mut total = Tally::default();
        total.add(&a);
        total.add(&b);
        let f = total.figures();
        assert_eq!((f.online_minutes, f.offline_minutes), (80.0, 40.0));
        assert_eq!(f.outages, 2);
        assert_eq!(f.longest_outage_minutes, 30.0);
        assert_eq!(f.mttr_minutes, Some(20.0));
        assert_eq!(f.availability_pct, Some(80.0 * 100.0 / 120.0));
    }
}
