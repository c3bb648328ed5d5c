//! Where the sun is and how much a flat solar panel gets from it.
//!
//! NOAA's low-precision solar position (about 0.1° between 1950 and 2050), Kasten-Young air mass
//! and Meinel's clear-sky irradiance: plenty for a simulator, deterministic and cheap.

use std::f64::consts::PI;

use chrono::{DateTime, Datelike, Timelike, Utc};

/// The sun's elevation above the horizon in degrees (negative at night) at `lat`/`lon` (WGS84
/// degrees) and instant `t`.
pub fn elevation_deg(lat: f64, lon: f64, t: DateTime<Utc>) -> f64 {
    let hours = f64::from(t.hour()) + f64::from(t.minute()) / 60.0 + f64::from(t.second()) / 3600.0;
    let gamma = 2.0 * PI / 365.0 * (f64::from(t.ordinal0()) + (hours - 12.0) / 24.0);
    let eq_time_min = 229.18
        * (0.000075 + 0.001868 * gamma.cos()
            - 0.032077 * gamma.sin()
            - 0.014615 * (2.0 * gamma).cos()
            - 0.040849 * (2.0 * gamma).sin());
    let decl = 0.006918 - 0.399912 * gamma.cos() + 0.070257 * gamma.sin() - 0.006758 * (2.0 * gamma).cos()
        + 0.000907 * (2.0 * gamma).sin()
        - 0.002697 * (3.0 * gamma).cos()
        + 0.00148 * (3.0 * gamma).sin();
    let true_solar_min = hours * 60.0 + eq_time_min + 4.0 * lon;
    let hour_angle = (true_solar_min / 4.0 - 180.0).to_radians();
    let lat = lat.to_radians();
    let cos_zenith = lat.sin() * decl.sin() + lat.cos() * decl.cos() * hour_angle.cos();
    90.0 - cos_zenith.clamp(-1.0, 1.0).acos().to_degrees()
}

/// Clear-sky global irradiance on a horizontal surface, W/m², for a sun at `elevation_deg`.
pub fn clear_sky_irradiance(elevation_deg: f64) -> f64 {
    if elevation_deg <= 0.0 {
        return 0.0;
    }
    let sin_el = elevation_deg.to_radians().sin();
    let air_mass = 1.0 / (sin_el + 0.50572 * (elevation_deg + 6.07995).powf(-1.6364));
    let direct_normal = 1353.0 * 0.7_f64.powf(air_mass.powf(0.678));
    // The diffuse part adds roughly a tenth on clear days.
    1.1 * direct_normal * sin_el
}

/// A flat panel of `peak_w` (rated at 1000 W/m²) under cloud cover `cloud` (0 clear, 1 overcast):
/// Kasten-Czeplak cloud attenuation and a 0.85 derating for heat, dirt and wiring.
pub fn panel_power_w(peak_w: f64, elevation_deg: f64, cloud: f64) -> f64 {
    let cloud = cloud.clamp(0.0, 1.0);
    let irradiance = clear_sky_irradiance(elevation_deg) * (1.0 - 0.75 * cloud.powf(3.4));
    (peak_w * irradiance / 1000.0 * 0.85).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// Highest elevation over a day, sampled each minute.
    fn noon_elevation(lat: f64, lon: f64, day: &str) -> f64 {
        let start = at(&format!("{day}T00:00:00Z"));
        (0..1440)
            .map(|m| elevation_deg(lat, lon, start + chrono::Duration::minutes(m)))
            .fold(f64::MIN, f64::max)
    }

    #[test]
    fn noon_elevation_matches_declination_at_solstices() {
        // At solar noon the elevation is 90° - latitude + declination (±23.44° at the solstices).
        let (lat, lon) = (43.343, 17.808); // Mostar
        let june = noon_elevation(lat, lon, "2026-06-21");
        let december = noon_elevation(lat, lon, "2026-12-21");
        assert!((june - (90.0 - lat + 23.44)).abs() < 0.5, "june {june}");
        assert!((december - (90.0 - lat - 23.44)).abs() < 0.5, "december {december}");
    }

    #[test]
    fn solar_noon_in_june_beats_december() {
        let (lat, lon) = (44.98, 16.714); // Prijedor
        // Solar noon at lon 16.7° is about 10:53 UTC.
        let june = panel_power_w(150.0, elevation_deg(lat, lon, at("2026-06-21T10:53:00Z")), 0.0);
        let december = panel_power_w(150.0, elevation_deg(lat, lon, at("2026-12-21T10:53:00Z")), 0.0);
        assert!(june > 100.0 && june < 150.0, "june {june}");
        assert!(december > 10.0 && december < june / 2.0, "december {december}");
    }

    #[test]
    fn night_and_clouds() {
        let (lat, lon) = (43.343, 17.808);
        let midnight = elevation_deg(lat, lon, at("2026-06-21T23:00:00Z"));
        assert!(midnight < -10.0, "{midnight}");
        assert_eq!(panel_power_w(150.0, midnight, 0.0), 0.0);
        let clear = panel_power_w(150.0, 60.0, 0.0);
        let overcast = panel_power_w(150.0, 60.0, 1.0);
        assert!((overcast / clear - 0.25).abs() < 1e-9, "{overcast} vs {clear}");
    }
}
