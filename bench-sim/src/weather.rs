//! Weather at a bench: cloud cover and air temperature as pure functions of a seed and the time.
//!
//! Both are smooth value noise over fixed time knots, so the same seed gives the same weather
//! whatever step size the caller advances with.

use std::f64::consts::PI;

use chrono::{DateTime, Datelike, Utc};

/// Deterministic weather for one place.
#[derive(Debug, Clone)]
pub struct Weather {
    seed: u64,
    lat: f64,
    lon: f64,
}

/// Noise channels, so cloud and temperature noise are independent.
const CLOUD_SLOW: u64 = 1;
const CLOUD_FAST: u64 = 2;
const TEMP_SLOW: u64 = 3;

impl Weather {
    pub fn new(seed: u64, lat: f64, lon: f64) -> Self {
        Self { seed, lat, lon }
    }

    /// Cloud cover at `t`, 0 (clear) to 1 (overcast). Weather systems last about two days, with
    /// showers of a few hours on top; winters are cloudier than summers.
    pub fn cloud_cover(&self, t: DateTime<Utc>) -> f64 {
        let secs = t.timestamp() as f64;
        let slow = value_noise(self.seed, CLOUD_SLOW, secs, 2.0 * 86_400.0);
        let fast = value_noise(self.seed, CLOUD_FAST, secs, 3.0 * 3_600.0);
        let winter = (2.0 * PI * (f64::from(t.ordinal0()) - 15.0) / 365.0).cos();
        (0.6 * slow + 0.4 * fast + 0.15 * winter - 0.1).clamp(0.0, 1.0)
    }

    /// Air temperature at `t`, °C: a latitude mean, a season (coldest around 20 January), a
    /// daily swing peaking mid-afternoon that clouds flatten, and a few days' noise.
    pub fn air_temp_c(&self, t: DateTime<Utc>) -> f64 {
        let secs = t.timestamp() as f64;
        let mean = 28.0 - 0.42 * self.lat.abs();
        let season = -10.0 * (2.0 * PI * (f64::from(t.ordinal0()) - 20.0) / 365.0).cos();
        let solar_hour = (secs / 3600.0 + self.lon / 15.0).rem_euclid(24.0);
        let swing = 6.0 * (1.0 - 0.6 * self.cloud_cover(t));
        let daily = swing * (2.0 * PI * (solar_hour - 15.0) / 24.0).cos();
        let noise = (value_noise(self.seed, TEMP_SLOW, secs, 4.0 * 86_400.0) - 0.5) * 6.0;
        mean + season + daily + noise
    }
}

/// Smooth noise in [0, 1): random values at knots `knot_s` apart, cosine-interpolated.
fn value_noise(seed: u64, channel: u64, t_s: f64, knot_s: f64) -> f64 {
    let x = t_s / knot_s;
    let k = x.floor();
    let frac = x - k;
    let k = k as i64;
    let a = unit(seed, channel, k);
    let b = unit(seed, channel, k.wrapping_add(1));
    let w = (1.0 - (PI * frac).cos()) / 2.0;
    a + (b - a) * w
}

/// A uniform value in [0, 1) from a hash of its inputs.
fn unit(seed: u64, channel: u64, k: i64) -> f64 {
    let h = splitmix64(seed ^ splitmix64(channel.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ k as u64));
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// SplitMix64's finaliser: a fast, well-mixed 64-bit hash.
pub(crate) fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn same_seed_same_weather_other_seed_other_weather() {
        let a = Weather::new(7, 43.3, 17.8);
        let b = Weather::new(7, 43.3, 17.8);
        let c = Weather::new(8, 43.3, 17.8);
        let times: Vec<_> = (0..200)
            .map(|h| at("2026-03-01T00:00:00Z") + chrono::Duration::hours(h))
            .collect();
        let series = |w: &Weather| {
            times
                .iter()
                .map(|&t| (w.cloud_cover(t), w.air_temp_c(t)))
                .collect::<Vec<_>>()
        };
        assert_eq!(series(&a), series(&b));
        assert_ne!(series(&a), series(&c));
    }

    #[test]
    fn values_stay_in_range_and_move_smoothly() {
        let w = Weather::new(42, 44.4, 18.0);
        let start = at("2026-01-01T00:00:00Z");
        let mut prev = w.cloud_cover(start);
        for m in (10..365 * 24 * 60).step_by(10) {
            let t = start + chrono::Duration::minutes(m);
            let c = w.cloud_cover(t);
            assert!((0.0..=1.0).contains(&c), "{c} at {t}");
            assert!((c - prev).abs() < 0.1, "cloud jumped from {prev} to {c} at {t}");
            prev = c;
            let temp = w.air_temp_c(t);
            assert!((-30.0..=45.0).contains(&temp), "{temp} at {t}");
        }
    }

    #[test]
    fn summer_is_warmer_than_winter() {
        let w = Weather::new(3, 43.3, 17.8);
        let mean = |month: &str| {
            let start = at(&format!("2026-{month}-01T00:00:00Z"));
            (0..30 * 24)
                .map(|h| w.air_temp_c(start + chrono::Duration::hours(h)))
                .sum::<f64>()
                / 720.0
        };
        let (jan, jul) = (mean("01"), mean("07"));
        assert!(jul - jan > 12.0, "january {jan}, july {jul}");
    }
}
