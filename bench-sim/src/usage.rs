//! How people use a bench: quiet at night, a little on the way to work and school, busy after
//! school and in the evening, more at weekends; less in the cold and rain. Sessions arrive as a
//! Poisson process and end after exponentially distributed durations.

use chrono::{DateTime, Timelike, Utc};
use rand::Rng;

use crate::clock::is_weekend;

/// Relative activity by local hour on a school day (0-1).
const WEEKDAY: [f64; 24] = [
    0.02, 0.01, 0.01, 0.01, 0.01, 0.03, 0.08, 0.20, 0.25, 0.20, 0.20, 0.25, 0.35, 0.45, 0.85, 0.95, 0.90, 0.85, 0.90,
    1.00, 0.95, 0.70, 0.35, 0.10,
];
/// Relative activity by local hour at the weekend, before the weekend factor.
const WEEKEND: [f64; 24] = [
    0.05, 0.03, 0.02, 0.01, 0.01, 0.01, 0.03, 0.08, 0.25, 0.50, 0.75, 0.90, 0.95, 0.95, 1.00, 1.00, 1.00, 1.00, 1.00,
    1.00, 0.95, 0.80, 0.50, 0.20,
];
const WEEKEND_FACTOR: f64 = 1.25;

/// Relative activity at local civil time `local` (0 to 1.25), interpolated between hours.
pub fn activity(local: DateTime<Utc>) -> f64 {
    let (curve, factor) = if is_weekend(local) {
        (&WEEKEND, WEEKEND_FACTOR)
    } else {
        (&WEEKDAY, 1.0)
    };
    let h = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
    let i = h.floor() as usize % 24;
    let frac = h - h.floor();
    (curve[i] + (curve[(i + 1) % 24] - curve[i]) * frac) * factor
}

/// How the weather keeps people away: cold, heat and heavy cloud (rain) each cut use.
pub fn weather_factor(air_temp_c: f64, cloud: f64) -> f64 {
    let temp = if air_temp_c < 0.0 {
        0.3
    } else if air_temp_c < 10.0 {
        0.3 + 0.07 * air_temp_c
    } else if air_temp_c > 33.0 {
        0.6
    } else {
        1.0
    };
    let rain = if cloud > 0.85 { 0.5 } else { 1.0 };
    temp * rain
}

/// Which services the bench offers (a configuration can switch them off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub wifi: bool,
    pub usb: bool,
    pub kiosk: bool,
}

impl Default for Features {
    fn default() -> Self {
        Self {
            wifi: true,
            usb: true,
            kiosk: true,
        }
    }
}

/// Session counts per service.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PerService {
    pub wifi: u32,
    pub usb: u32,
    pub kiosk: u32,
}

/// Arrivals per hour at activity 1 and mean session length in seconds, per service.
const WIFI: (f64, f64) = (14.0, 25.0 * 60.0);
const USB: (f64, f64) = (4.0, 40.0 * 60.0);
const KIOSK: (f64, f64) = (3.0, 4.0 * 60.0);

/// The sessions open at a bench.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// Scales every arrival rate: some benches stand in busier places.
    popularity: f64,
    active: PerService,
}

impl Usage {
    pub fn new(popularity: f64) -> Self {
        Self {
            popularity: popularity.max(0.0),
            active: PerService::default(),
        }
    }

    /// Moves `dt_s` seconds forward at relative demand `demand` (activity times weather) and
    /// returns the sessions that started.
    pub fn step(&mut self, rng: &mut impl Rng, demand: f64, features: Features, dt_s: f64) -> PerService {
        let demand = demand.max(0.0) * self.popularity;
        let mut run = |active: &mut u32, enabled: bool, (per_hour, mean_s): (f64, f64)| {
            let end_p = 1.0 - (-dt_s / mean_s).exp();
            let ended = (0..*active).filter(|_| rng.random::<f64>() < end_p).count() as u32;
            *active -= ended;
            if !enabled {
                *active = 0;
                return 0;
            }
            let started = poisson(rng, per_hour * demand * dt_s / 3600.0);
            *active += started;
            started
        };
        PerService {
            wifi: run(&mut self.active.wifi, features.wifi, WIFI),
            usb: run(&mut self.active.usb, features.usb, USB),
            kiosk: run(&mut self.active.kiosk, features.kiosk, KIOSK),
        }
    }

    pub fn active(&self) -> PerService {
        self.active
    }

    /// Everyone is dropped (power loss or reboot).
    pub fn clear(&mut self) {
        self.active = PerService::default();
    }
}

/// A Poisson draw: Knuth's method for small means, a rounded normal approximation above 30.
fn poisson(rng: &mut impl Rng, mean: f64) -> u32 {
    if mean <= 0.0 || !mean.is_finite() {
        return 0;
    }
    if mean > 30.0 {
        // Box-Muller.
        let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
        let u2: f64 = rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        return (mean + z * mean.sqrt()).round().max(0.0) as u32;
    }
    let limit = (-mean).exp();
    let mut k = 0;
    let mut p: f64 = rng.random();
    while p > limit {
        k += 1;
        p *= rng.random::<f64>();
    }
    k
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn quiet_at_night_busy_after_school_more_at_weekends() {
        // 2026-11-26 is a Thursday, 2026-11-28 a Saturday (local times).
        let night = activity(at("2026-11-26T03:00:00Z"));
        let school = activity(at("2026-11-26T10:00:00Z"));
        let after_school = activity(at("2026-11-26T15:30:00Z"));
        let saturday_morning = activity(at("2026-11-28T11:00:00Z"));
        assert!(night < 0.05, "{night}");
        assert!(after_school > 3.0 * school, "{after_school} vs {school}");
        assert!(saturday_morning > 3.0 * school, "{saturday_morning} vs {school}");
    }

    #[test]
    fn poisson_mean_is_right() {
        let mut rng = StdRng::seed_from_u64(1);
        for mean in [0.3, 4.0, 50.0] {
            let n = 20_000;
            let sum: u64 = (0..n).map(|_| u64::from(poisson(&mut rng, mean))).sum();
            let got = sum as f64 / f64::from(n);
            assert!((got - mean).abs() < mean * 0.05 + 0.02, "mean {mean}, got {got}");
        }
    }

    #[test]
    fn sessions_follow_demand_and_switches() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut busy = Usage::new(1.0);
        let mut started = 0;
        for _ in 0..600 {
            started += busy.step(&mut rng, 1.0, Features::default(), 60.0).wifi;
        }
        // 10 hours at 14 arrivals per hour.
        assert!((100..180).contains(&started), "{started}");
        let no_kiosk = Features {
            kiosk: false,
            ..Features::default()
        };
        for _ in 0..60 {
            assert_eq!(busy.step(&mut rng, 1.0, no_kiosk, 60.0).kiosk, 0);
        }
        assert_eq!(busy.active().kiosk, 0);
        busy.clear();
        assert_eq!(busy.active(), PerService::default());
    }

    #[test]
    fn weather_keeps_people_home() {
        assert_eq!(weather_factor(20.0, 0.2), 1.0);
        assert!(weather_factor(-5.0, 0.2) < 0.5);
        assert!(weather_factor(20.0, 0.95) < 0.6);
    }
}
