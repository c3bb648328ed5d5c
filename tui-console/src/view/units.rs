//! How values read on screen: ages, rates, energy, gauges, and each state's symbol and colour
//! (the symbol keeps the state readable without colour).

use chrono::{DateTime, TimeDelta, Utc};
use protocol::BenchState;
use ratatui::style::Color;

/// A state's symbol, short label and colour.
pub fn state(s: BenchState) -> (&'static str, &'static str, Color) {
    match s {
        BenchState::Online => ("●", "online", Color::Green),
        BenchState::Stale => ("◐", "stale", Color::Yellow),
        BenchState::Offline => ("✕", "offline", Color::Red),
        BenchState::Sleeping => ("☾", "sleeping", Color::Blue),
        BenchState::NeverSeen => ("·", "never seen", Color::DarkGray),
    }
}

/// The age of `t` at `now` in at most 3 characters: `now`, `42s`, `17m`, `5h`, `12d`, `—`.
pub fn ago(now: DateTime<Utc>, t: Option<DateTime<Utc>>) -> String {
    let Some(t) = t else {
        return "—".into();
    };
    let s = (now - t).num_seconds().max(0);
    match s {
        0 => "now".into(),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ if s < 100 * 86_400 => format!("{}d", s / 86_400),
        _ => "old".into(),
    }
}

/// A duration for people: `45s`, `12m`, `3h 5m`, `2d 4h`.
pub fn duration(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Bytes per second in at most 6 characters: `0B/s`, `850B/s`, `12k/s`, `1.2M/s`.
pub fn rate(bytes_per_s: f64) -> String {
    let v = bytes_per_s.max(0.0);
    let (n, unit) = match v {
        // Thresholds just below the next unit, so rounding never prints `1000k/s`.
        v if v < 999.5 => return format!("{v:.0}B/s"),
        v if v < 999_500.0 => (v / 1e3, "k"),
        v if v < 999_500_000.0 => (v / 1e6, "M"),
        v => (v / 1e9, "G"),
    };
    if n < 9.95 {
        format!("{n:.1}{unit}/s")
    } else {
        format!("{n:.0}{unit}/s")
    }
}

/// A byte count: `512 B`, `3.4 kB`, `2.1 GB`.
pub fn bytes(n: u64) -> String {
    let v = n as f64;
    match v {
        v if v < 1e3 => format!("{n} B"),
        v if v < 1e6 => format!("{:.1} kB", v / 1e3),
        v if v < 1e9 => format!("{:.1} MB", v / 1e6),
        v => format!("{:.1} GB", v / 1e9),
    }
}

/// Energy: `850 Wh`, `1.23 kWh`.
pub fn energy(wh: f64) -> String {
    if wh < 1000.0 {
        format!("{wh:.0} Wh")
    } else {
        format!("{:.2} kWh", wh / 1000.0)
    }
}

/// A horizontal gauge of `cells` characters in eighths: 50% of 4 cells is `██  `.
pub fn gauge(pct: f64, cells: usize) -> String {
    const EIGHTHS: [&str; 8] = ["", "▏", "▎", "▍", "▌", "▋", "▊", "▉"];
    let eighths = ((pct.clamp(0.0, 100.0) / 100.0) * (cells * 8) as f64).round() as usize;
    let mut s = "█".repeat(eighths / 8);
    s.push_str(EIGHTHS[eighths % 8]);
    let used = eighths / 8 + usize::from(!eighths.is_multiple_of(8));
    s.push_str(&" ".repeat(cells.saturating_sub(used)));
    s
}

/// Battery colour: red below the low threshold, yellow below twice that, green above.
pub fn battery_color(pct: f64, low: f64) -> Color {
    if pct < low {
        Color::Red
    } else if pct < 2.0 * low {
        Color::Yellow
    } else {
        Color::Green
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_fit_three_columns() {
        let now: DateTime<Utc> = "2026-11-26T10:00:00Z".parse().unwrap();
        let at = |s: i64| Some(now - TimeDelta::seconds(s));
        assert_eq!(ago(now, None), "—");
        assert_eq!(ago(now, at(0)), "now");
        assert_eq!(ago(now, at(-5)), "now", "a clock ahead of ours is not the future");
        assert_eq!(ago(now, at(42)), "42s");
        assert_eq!(ago(now, at(3599)), "59m");
        assert_eq!(ago(now, at(5 * 3600)), "5h");
        assert_eq!(ago(now, at(12 * 86_400)), "12d");
        assert_eq!(ago(now, at(200 * 86_400)), "old");
        for s in [0, 59, 61, 3599, 86_399, 99 * 86_400] {
            assert!(ago(now, at(s)).chars().count() <= 3, "{s}");
        }
    }

    #[test]
    fn rates_fit_six_columns() {
        for (v, s) in [
            (0.0, "0B/s"),
            (850.0, "850B/s"),
            (12_345.0, "12k/s"),
            (1_234.0, "1.2k/s"),
            (1_200_000.0, "1.2M/s"),
            (999_999.0, "1.0M/s"),
        ] {
            assert_eq!(rate(v), s);
        }
        assert_eq!(duration(TimeDelta::seconds(3 * 3600 + 5 * 60 + 9)), "3h 5m");
        assert_eq!(bytes(2_100_000_000), "2.1 GB");
        assert_eq!(energy(1234.0), "1.23 kWh");
    }

    #[test]
    fn gauges_have_a_fixed_width() {
        assert_eq!(gauge(100.0, 4), "████");
        assert_eq!(gauge(50.0, 4), "██  ");
        assert_eq!(gauge(0.0, 4), "    ");
        assert_eq!(gauge(87.0, 4), "███▌");
        for p in 0..=100 {
            assert_eq!(gauge(f64::from(p), 4).chars().count(), 4, "{p}");
        }
    }
}
