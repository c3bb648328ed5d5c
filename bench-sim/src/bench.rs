//! One simulated bench's physical state: panel, battery, load, sessions, temperatures, counters
//! and uptime, advanced in simulated time and read out as [`Telemetry`].
//!
//! Everything is a deterministic function of the seed, the start time and the sequence of
//! `advance` calls, so the same seed gives the same series.

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use protocol::PAYLOAD_VERSION;
use protocol::telemetry::{Health, Network, Power, Sessions, Telemetry};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::battery::Battery;
use crate::clock::civil_time;
use crate::sun;
use crate::usage::{Features, PerService, Usage, activity, weather_factor};
use crate::weather::{Weather, splitmix64};

/// Longest simulated step the model integrates at once.
const MAX_STEP_S: i64 = 60;
/// Chance that a kiosk session ends with a citizen's idea.
const IDEA_PER_KIOSK_SESSION: f64 = 0.15;

/// Fault code reported while the battery has failed.
pub const FAULT_BATTERY_FAILURE: &str = "battery_failure";
/// Fault code reported while the charge is below 15 %.
pub const FAULT_BATTERY_LOW: &str = "battery_low";

/// Counters since boot; they only grow, and reset on reboot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub wifi_started: u64,
    pub usb_started: u64,
    pub kiosk_started: u64,
}

/// What the sensors read after the last step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Readings {
    solar_w: f64,
    load_w: f64,
    enclosure_c: f64,
    cpu_c: f64,
}

/// One bench's physical model.
#[derive(Debug, Clone)]
pub struct BenchModel {
    seed: u64,
    lat: f64,
    lon: f64,
    weather: Weather,
    battery: Battery,
    usage: Usage,
    rng: StdRng,
    now: DateTime<Utc>,
    booted_at: DateTime<Utc>,
    counters: Counters,
    readings: Readings,
    /// Frozen sensor values while a stuck-sensor fault lasts.
    stuck: Option<Readings>,
    features: Features,
    sleeping: bool,
    panel_peak_w: f64,
    rssi_base_dbm: i32,
    disk_base_mb: u64,
    ideas_due: u32,
}

impl BenchModel {
    /// A bench at `lat`/`lon` whose simulation starts at `start`. Hardware sizes, initial charge
    /// and how busy the spot is are drawn from `seed`.
    pub fn new(seed: u64, lat: f64, lon: f64, start: DateTime<Utc>) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let panel_peak_w = rng.random_range(120.0..180.0);
        let battery = Battery::new(rng.random_range(600.0..1000.0), rng.random_range(55.0..95.0));
        let usage = Usage::new(rng.random_range(0.6..1.4));
        let rssi_base_dbm = rng.random_range(-85..-55);
        let disk_base_mb = rng.random_range(1800..2600);
        let mut model = Self {
            seed,
            lat,
            lon,
            weather: Weather::new(splitmix64(seed), lat, lon),
            battery,
            usage,
            rng,
            now: start,
            booted_at: start - TimeDelta::hours(rng_hours(seed)),
            counters: Counters::default(),
            readings: Readings::default(),
            stuck: None,
            features: Features::default(),
            sleeping: false,
            panel_peak_w,
            rssi_base_dbm,
            disk_base_mb,
            ideas_due: 0,
        };
        model.step(0.0);
        model
    }

    /// Moves the simulation `dt` forward (in steps of at most a minute).
    pub fn advance(&mut self, dt: TimeDelta) {
        let mut left = dt.num_seconds().max(0);
        while left > 0 {
            let step = left.min(MAX_STEP_S);
            self.now += TimeDelta::seconds(step);
            self.step(step as f64);
            left -= step;
        }
    }

    fn step(&mut self, dt_s: f64) {
        let t = self.now;
        let elevation = sun::elevation_deg(self.lat, self.lon, t);
        let cloud = self.weather.cloud_cover(t);
        let air_c = self.weather.air_temp_c(t);
        let solar_w = sun::panel_power_w(self.panel_peak_w, elevation, cloud);
        let local = civil_time(t, self.lon, self.lat);

        let load_w = if self.sleeping {
            self.usage.clear();
            0.4
        } else {
            let demand = activity(local) * weather_factor(air_c, cloud);
            let started = self.usage.step(&mut self.rng, demand, self.features, dt_s);
            self.count_sessions(started, dt_s);
            self.awake_load_w(elevation, local.hour())
        };
        let served_w = self.battery.step(solar_w, load_w, dt_s);
        self.readings = Readings {
            solar_w,
            load_w: served_w,
            enclosure_c: air_c + 0.08 * solar_w + 0.35 * served_w,
            cpu_c: (air_c + 0.08 * solar_w + 10.0 + 0.6 * served_w).min(95.0),
        };
    }

    fn count_sessions(&mut self, started: PerService, dt_s: f64) {
        let c = &mut self.counters;
        c.wifi_started += u64::from(started.wifi);
        c.usb_started += u64::from(started.usb);
        c.kiosk_started += u64::from(started.kiosk);
        for _ in 0..started.kiosk {
            if self.rng.random::<f64>() < IDEA_PER_KIOSK_SESSION {
                self.ideas_due += 1;
            }
        }
        let clients = f64::from(self.usage.active().wifi);
        let volume: f64 = self.rng.random_range(0.5..1.5);
        // Clients mostly download: about 25 kB/s in, 6 kB/s out each, plus housekeeping.
        c.rx_bytes += (clients * 25_000.0 * volume * dt_s + 40.0 * dt_s) as u64;
        c.tx_bytes += (clients * 6_000.0 * volume * dt_s + 60.0 * dt_s) as u64;
    }

    /// Controller and modem, the Wi-Fi radio, USB chargers, the kiosk screen and the evening
    /// lights, W.
    fn awake_load_w(&self, elevation_deg: f64, local_hour: u32) -> f64 {
        let active = self.usage.active();
        let wifi = if self.features.wifi {
            1.2 + 0.15 * f64::from(active.wifi)
        } else {
            0.0
        };
        let usb = 5.0 * f64::from(active.usb);
        let kiosk = if active.kiosk > 0 { 8.0 } else { 0.0 };
        let dark = elevation_deg < -4.0;
        let lights = if dark && !(1..5).contains(&local_hour) {
            3.0
        } else {
            0.0
        };
        2.5 + wifi + usb + kiosk + lights
    }

    /// The current state as a telemetry sample stamped `ts` and `seq`.
    pub fn telemetry(&self, ts: DateTime<Utc>, seq: u64) -> Telemetry {
        let r = self.stuck.unwrap_or(self.readings);
        let noise = splitmix64(self.seed ^ seq.wrapping_mul(0x2545_F491_4F6C_DD1D));
        let rssi = self.rssi_base_dbm + (noise % 9) as i32 - 4;
        let active = self.usage.active();
        let uptime_s = self.uptime().num_seconds().max(0) as u64;
        let mut faults = Vec::new();
        if self.battery.is_failed() {
            faults.push(FAULT_BATTERY_FAILURE.to_owned());
        }
        if self.battery.soc_pct() < 15.0 {
            faults.push(FAULT_BATTERY_LOW.to_owned());
        }
        Telemetry {
            v: PAYLOAD_VERSION,
            ts,
            seq,
            power: Power {
                solar_w: round1(r.solar_w).clamp(0.0, 2000.0),
                battery_pct: round1(self.battery.soc_pct()).clamp(0.0, 100.0),
                battery_v: Some(round2(self.battery.voltage())),
                load_w: Some(round1(r.load_w).clamp(0.0, 2000.0)),
            },
            network: Network {
                rx_bytes: Some(self.counters.rx_bytes),
                tx_bytes: Some(self.counters.tx_bytes),
                wifi_clients: Some(active.wifi),
                rssi_dbm: Some(rssi.clamp(-150, 0)),
            },
            sessions: Sessions {
                wifi: Some(active.wifi),
                usb: Some(active.usb),
                kiosk: Some(active.kiosk),
                wifi_started: Some(self.counters.wifi_started),
                usb_started: Some(self.counters.usb_started),
                kiosk_started: Some(self.counters.kiosk_started),
            },
            health: Health {
                cpu_temp_c: Some(round1(r.cpu_c).clamp(-60.0, 150.0)),
                enclosure_temp_c: Some(round1(r.enclosure_c).clamp(-60.0, 150.0)),
                uptime_s: Some(uptime_s),
                // Logs fill the card and get rotated every ~25 days of uptime.
                disk_free_mb: Some(self.disk_base_mb - (uptime_s / 3600 / 3) % 200),
                faults,
            },
        }
    }

    /// A power cycle: counters, sessions and uptime start again from zero; a stuck sensor
    /// recovers; a failed battery stays failed.
    pub fn reboot(&mut self) {
        self.booted_at = self.now;
        self.counters = Counters::default();
        self.usage.clear();
        self.stuck = None;
    }

    /// The battery fails from now on.
    pub fn fail_battery(&mut self) {
        self.battery.fail();
    }

    /// Freezes (true) or releases (false) the environment sensors: solar, temperatures, load.
    pub fn set_stuck(&mut self, stuck: bool) {
        self.stuck = stuck.then_some(self.stuck.unwrap_or(self.readings));
    }

    /// Low-power mode: services off, only the controller's trickle load.
    pub fn set_sleeping(&mut self, sleeping: bool) {
        self.sleeping = sleeping;
    }

    pub fn set_features(&mut self, features: Features) {
        self.features = features;
    }

    /// Ideas citizens have typed at the kiosk since the last call.
    pub fn take_ideas(&mut self) -> u32 {
        std::mem::take(&mut self.ideas_due)
    }

    pub fn battery_pct(&self) -> f64 {
        self.battery.soc_pct()
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    pub fn uptime(&self) -> TimeDelta {
        self.now - self.booted_at
    }

    /// Simulated now.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// The sun's elevation at the bench at simulated time `t`.
    pub fn sun_elevation_deg(&self, t: DateTime<Utc>) -> f64 {
        sun::elevation_deg(self.lat, self.lon, t)
    }
}

/// Hours the bench has already been up when the simulation starts (0-71), from the seed.
fn rng_hours(seed: u64) -> i64 {
    (splitmix64(seed ^ 0x5EED) % 72) as i64
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOSTAR: (f64, f64) = (43.343, 17.808);

    fn start() -> DateTime<Utc> {
        "2026-06-01T00:00:00Z".parse().unwrap()
    }

    fn series(seed: u64, steps: u64, dt: TimeDelta) -> Vec<Telemetry> {
        let mut m = BenchModel::new(seed, MOSTAR.0, MOSTAR.1, start());
        (1..=steps)
            .map(|seq| {
                m.advance(dt);
                m.telemetry(m.now(), seq)
            })
            .collect()
    }

    #[test]
    fn same_seed_same_series_other_seed_differs() {
        let a = series(11, 500, TimeDelta::minutes(10));
        let b = series(11, 500, TimeDelta::minutes(10));
        let c = series(12, 500, TimeDelta::minutes(10));
        assert_eq!(a, b);
        assert_ne!(a, c);
        // The series moves: solar, sessions and counters are not constant.
        assert!(a.iter().any(|t| t.power.solar_w > 20.0));
        assert!(a.iter().any(|t| t.power.solar_w == 0.0));
        assert!(a.last().unwrap().sessions.wifi_started > a[0].sessions.wifi_started);
    }

    #[test]
    fn battery_stays_within_0_and_100_over_a_year() {
        // Winter, summer, sleeping spells, a failed battery: the charge never leaves 0-100 %.
        let mut m = BenchModel::new(5, 45.22, 16.542, "2026-01-01T00:00:00Z".parse().unwrap());
        let mut seen_low: f64 = 100.0;
        let mut seen_high: f64 = 0.0;
        for i in 0..(365 * 24 * 4) {
            m.advance(TimeDelta::minutes(15));
            if i % 97 == 0 {
                m.set_sleeping(m.battery_pct() < 20.0);
            }
            if i == 300 * 24 * 4 {
                m.fail_battery();
            }
            let t = m.telemetry(m.now(), i);
            let pct = t.power.battery_pct;
            assert!((0.0..=100.0).contains(&pct), "battery {pct} at step {i}");
            assert!(
                t.validate(m.now()).is_ok(),
                "invalid sample at step {i}: {:?}",
                t.validate(m.now())
            );
            seen_low = seen_low.min(pct);
            seen_high = seen_high.max(pct);
        }
        // The model really exercises both ends.
        assert!(seen_high > 99.0, "max {seen_high}");
        assert!(seen_low < 5.0, "min {seen_low}");
    }

    #[test]
    fn counters_are_monotonic_except_across_a_reboot() {
        let mut m = BenchModel::new(9, MOSTAR.0, MOSTAR.1, start());
        let counters = |t: &Telemetry| {
            [
                t.network.rx_bytes.unwrap(),
                t.network.tx_bytes.unwrap(),
                t.sessions.wifi_started.unwrap(),
                t.sessions.usb_started.unwrap(),
                t.sessions.kiosk_started.unwrap(),
                t.health.uptime_s.unwrap(),
            ]
        };
        let mut prev = counters(&m.telemetry(m.now(), 0));
        for seq in 1..=2000 {
            m.advance(TimeDelta::minutes(5));
            let rebooted = seq == 1000;
            if rebooted {
                m.reboot();
            }
            let now = counters(&m.telemetry(m.now(), seq));
            if rebooted {
                assert_eq!(now, [0; 6], "everything restarts at zero on reboot");
                assert!(prev[5] > 0 && prev[0] > 0);
            } else {
                for (i, (a, b)) in prev.iter().zip(&now).enumerate() {
                    assert!(b >= a, "counter {i} went down from {a} to {b} at seq {seq}");
                }
            }
            prev = now;
        }
        assert!(prev[2] > 0, "wifi sessions were counted after the reboot");
        assert_eq!(prev[5], 1000 * 5 * 60);
    }

    #[test]
    fn stuck_sensor_freezes_readings_until_reboot() {
        let mut m = BenchModel::new(3, MOSTAR.0, MOSTAR.1, "2026-06-01T04:00:00Z".parse().unwrap());
        m.set_stuck(true);
        let frozen = m.telemetry(m.now(), 1);
        m.advance(TimeDelta::hours(8));
        let later = m.telemetry(m.now(), 2);
        assert_eq!(later.power.solar_w, frozen.power.solar_w);
        assert_eq!(later.health.enclosure_temp_c, frozen.health.enclosure_temp_c);
        m.reboot();
        assert_ne!(m.telemetry(m.now(), 3).power.solar_w, frozen.power.solar_w);
    }

    #[test]
    fn battery_failure_shows_in_faults() {
        // Evening, so the sun cannot refill the small pack that is left.
        let mut m = BenchModel::new(3, MOSTAR.0, MOSTAR.1, "2026-06-01T18:00:00Z".parse().unwrap());
        assert!(
            !m.telemetry(m.now(), 1)
                .health
                .faults
                .contains(&FAULT_BATTERY_FAILURE.to_owned())
        );
        m.fail_battery();
        m.advance(TimeDelta::hours(6));
        let t = m.telemetry(m.now(), 2);
        assert!(t.health.faults.contains(&FAULT_BATTERY_FAILURE.to_owned()));
        assert!(t.power.battery_pct < 15.0, "{}", t.power.battery_pct);
    }
}
