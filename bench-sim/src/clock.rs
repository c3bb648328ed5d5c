//! Simulated time: a start instant and a speed factor map real (monotonic) time to simulated
//! UTC time, and local civil time for the usage curves.

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc, Weekday};
use tokio::time::Instant;

/// Maps real time to simulated time: `speed` simulated seconds pass per real second.
#[derive(Debug, Clone, Copy)]
pub struct SimClock {
    origin: Instant,
    sim_origin: DateTime<Utc>,
    speed: f64,
}

impl SimClock {
    /// A clock where `origin` (real) is `sim_origin` (simulated). `speed` is clamped to be
    /// positive and finite.
    pub fn new(origin: Instant, sim_origin: DateTime<Utc>, speed: f64) -> Self {
        let speed = if speed.is_finite() && speed > 0.0 { speed } else { 1.0 };
        Self {
            origin,
            sim_origin,
            speed,
        }
    }

    pub fn speed(&self) -> f64 {
        self.speed
    }

    pub fn origin(&self) -> Instant {
        self.origin
    }

    /// The simulated time at real instant `at` (never before the origin).
    pub fn sim_at(&self, at: Instant) -> DateTime<Utc> {
        self.sim_origin + self.to_sim(at.saturating_duration_since(self.origin))
    }

    /// A real duration as simulated time.
    pub fn to_sim(&self, real: Duration) -> TimeDelta {
        let ms = real.as_secs_f64() * self.speed * 1000.0;
        TimeDelta::milliseconds(ms.min(1e15) as i64)
    }

    /// A simulated duration as real time.
    pub fn to_real(&self, sim: TimeDelta) -> Duration {
        Duration::from_secs_f64((sim.as_seconds_f64() / self.speed).clamp(0.0, 1e9))
    }
}

/// Local civil time at a place: the zone is the longitude's nearest hour, and north of the
/// equator EU summer time applies (last Sunday of March to last Sunday of October, 01:00 UTC).
/// Exact for Bosnia and Herzegovina, a fair guess elsewhere.
pub fn civil_time(utc: DateTime<Utc>, lon: f64, lat: f64) -> DateTime<Utc> {
    let standard = TimeDelta::hours((lon / 15.0).round() as i64);
    let summer = lat > 0.0 && {
        let year = utc.year();
        let start = last_sunday_0100(year, 3);
        let end = last_sunday_0100(year, 10);
        start.is_some_and(|s| utc >= s) && end.is_some_and(|e| utc < e)
    };
    utc + standard + if summer { TimeDelta::hours(1) } else { TimeDelta::zero() }
}

fn last_sunday_0100(year: i32, month: u32) -> Option<DateTime<Utc>> {
    let last = NaiveDate::from_ymd_opt(year, month, 31)?;
    let back = last.weekday().num_days_from_sunday();
    let day = last - TimeDelta::days(i64::from(back));
    Some(day.and_hms_opt(1, 0, 0)?.and_utc())
}

/// True on Saturdays and Sundays.
pub fn is_weekend(local: DateTime<Utc>) -> bool {
    matches!(local.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn speed_maps_real_to_sim() {
        let origin = Instant::now();
        let c = SimClock::new(origin, at("2026-06-01T00:00:00Z"), 60.0);
        assert_eq!(c.sim_at(origin + Duration::from_secs(60)), at("2026-06-01T01:00:00Z"));
        assert_eq!(c.to_real(TimeDelta::hours(1)), Duration::from_secs(60));
        assert_eq!(c.sim_at(origin), at("2026-06-01T00:00:00Z"));
        assert_eq!(SimClock::new(origin, at("2026-06-01T00:00:00Z"), f64::NAN).speed(), 1.0);
    }

    #[test]
    fn sarajevo_civil_time() {
        // CET in winter, CEST between 29 March and 25 October 2026.
        assert_eq!(
            civil_time(at("2026-01-10T12:00:00Z"), 18.4, 43.9),
            at("2026-01-10T13:00:00Z")
        );
        assert_eq!(
            civil_time(at("2026-07-10T12:00:00Z"), 18.4, 43.9),
            at("2026-07-10T14:00:00Z")
        );
        assert_eq!(
            civil_time(at("2026-03-29T00:59:00Z"), 18.4, 43.9),
            at("2026-03-29T01:59:00Z")
        );
        assert_eq!(
            civil_time(at("2026-03-29T01:00:00Z"), 18.4, 43.9),
            at("2026-03-29T03:00:00Z")
        );
        assert_eq!(
            civil_time(at("2026-10-25T01:00:00Z"), 18.4, 43.9),
            at("2026-10-25T02:00:00Z")
        );
        assert!(is_weekend(at("2026-11-28T10:00:00Z")));
        assert!(!is_weekend(at("2026-11-27T10:00:00Z")));
    }
}
