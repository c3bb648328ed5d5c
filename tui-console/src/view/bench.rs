//! The bench view: the bench now, its recent faults and status changes, and charts of battery,
//! solar, bandwidth and sessions over the chosen window.

use chrono::{DateTime, Utc};
use protocol::BenchState;
use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::symbols;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline, SparklineBar, Widget};

use super::{section, units};
use crate::api::{Bench, TelemetryPoint, TelemetrySeries};
use crate::app::fleet::{faults, sessions_active};
use crate::app::{AlertKind, App, BenchPane, Window};

pub struct BenchView<'a>(pub &'a App);

impl Widget for BenchView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let Some(pane) = &app.bench else {
            return;
        };
        let bench = app
            .fleet
            .get(&pane.id)
            .or_else(|| pane.detail.as_ref().map(|d| &d.bench));
        let title = match bench {
            Some(b) => format!("{} · {} · {}", b.id, b.name, b.municipality),
            None => pane.id.clone(),
        };
        let mut windows = vec![Span::raw(" window ")];
        for w in Window::ALL {
            windows.push(if w == pane.window {
                Span::styled(format!("[{}]", w.label()), Style::new().fg(Color::Cyan).bold())
            } else {
                Span::styled(format!(" {} ", w.label()), Style::new().fg(Color::DarkGray))
            });
        }
        windows.push(Span::raw(" "));
        let block = section(title).title(Line::from(windows).right_aligned());
        let inner = block.inner(area);
        block.render(area, buf);

        let Some(bench) = bench else {
            let text = match &pane.detail_error {
                Some(e) => e.to_string(),
                None => format!("loading {}…", pane.id),
            };
            Paragraph::new(text).fg(Color::DarkGray).render(inner, buf);
            return;
        };

        let left_width = if inner.width >= 110 { 48 } else { 38 };
        let [left, right] = Layout::horizontal([Constraint::Length(left_width), Constraint::Min(0)])
            .spacing(1)
            .areas(inner);
        let now_lines = now_lines(app, bench);
        let [now_area, history] =
            Layout::vertical([Constraint::Length(now_lines.len() as u16), Constraint::Min(0)]).areas(left);
        Paragraph::new(now_lines).render(now_area, buf);
        History(app, pane).render(history, buf);
        Charts(app, pane).render(right, buf);
    }
}

fn label(text: &'static str) -> Span<'static> {
    Span::styled(format!("{text:<9}"), Style::new().fg(Color::DarkGray))
}

fn clock(app: &App, t: DateTime<Utc>) -> String {
    t.with_timezone(&app.tz).format("%H:%M:%S").to_string()
}

/// The bench as it is now: one line per aspect.
fn now_lines(app: &App, b: &Bench) -> Vec<Line<'static>> {
    let (symbol, state_label, color) = units::state(b.state);
    let mut state = vec![
        label("State"),
        Span::styled(format!("{symbol} {state_label}"), Style::new().fg(color).bold()),
    ];
    match (b.state, b.until, b.since) {
        (BenchState::Sleeping, Some(until), _) => state.push(Span::raw(format!(" until {}", clock(app, until)))),
        (BenchState::NeverSeen, ..) => {}
        (_, _, Some(since)) => state.push(Span::raw(format!(" for {}", units::duration(app.now - since)))),
        _ => {}
    }
    let mut lines = vec![Line::from(state)];

    let mut seen = vec![label("Seen")];
    match b.last_seen {
        Some(t) => seen.push(Span::raw(match units::ago(app.now, Some(t)).as_str() {
            "now" => format!("just now at {}", clock(app, t)),
            age => format!("{age} ago at {}", clock(app, t)),
        })),
        None => seen.push(Span::raw("never")),
    }
    lines.push(Line::from(seen));

    let dash = || Span::styled("—", Style::new().fg(Color::DarkGray));
    let mut battery = vec![label("Battery")];
    let mut solar = vec![label("Solar")];
    match &b.power {
        Some(p) => {
            let c = units::battery_color(p.battery_pct, app.low_battery_pct());
            battery.push(Span::styled(
                format!("{} {:.0}%", units::gauge(p.battery_pct, 4), p.battery_pct),
                Style::new().fg(c),
            ));
            if let Some(v) = p.battery_v {
                battery.push(Span::raw(format!(" · {v:.1} V")));
            }
            solar.push(Span::raw(format!("{:.0} W", p.solar_w)));
            if let Some(l) = p.load_w {
                solar.push(Span::raw(format!(" · load {l:.1} W")));
            }
        }
        None => {
            battery.push(dash());
            solar.push(dash());
        }
    }
    lines.push(Line::from(battery));
    lines.push(Line::from(solar));

    let mut sessions = vec![label("Sessions")];
    match (&b.sessions, sessions_active(b)) {
        (Some(s), Some(total)) => {
            let n = |v: Option<u32>| v.map_or("—".to_owned(), |v| v.to_string());
            sessions.push(Span::raw(format!(
                "{total} · wifi {} usb {} kiosk {}",
                n(s.wifi),
                n(s.usb),
                n(s.kiosk)
            )));
        }
        _ => sessions.push(dash()),
    }
    lines.push(Line::from(sessions));

    let mut wifi = vec![label("Wi-Fi")];
    let mut network = vec![label("Network")];
    match &b.network {
        Some(n) => {
            wifi.push(Span::raw(match n.wifi_clients {
                Some(c) => format!("{c} clients"),
                None => "—".into(),
            }));
            if let Some(rssi) = n.rssi_dbm {
                wifi.push(Span::raw(format!(" · {rssi} dBm")));
            }
            let rate = app
                .fleet
                .bandwidth
                .get(&b.id)
                .map_or("—".to_owned(), |r| units::rate(*r));
            network.push(Span::raw(rate));
            if let (Some(rx), Some(tx)) = (n.rx_bytes, n.tx_bytes) {
                network.push(Span::styled(
                    format!(" · ↓{} ↑{}", units::bytes(rx), units::bytes(tx)),
                    Style::new().fg(Color::DarkGray),
                ));
            }
        }
        None => {
            wifi.push(dash());
            network.push(dash());
        }
    }
    lines.push(Line::from(wifi));
    lines.push(Line::from(network));

    let mut health = vec![label("Health")];
    let mut uptime = vec![label("Uptime")];
    match &b.health {
        Some(h) => {
            // `+ 0.0` turns a rounded -0 into 0, so -0.3 °C reads `0°C`, not `-0°C`.
            let t = |v: Option<f64>| v.map_or("—".to_owned(), |v| format!("{:.0}°C", v.round() + 0.0));
            health.push(Span::raw(format!(
                "cpu {} · box {}",
                t(h.cpu_temp_c),
                t(h.enclosure_temp_c)
            )));
            uptime.push(Span::raw(h.uptime_s.map_or("—".to_owned(), |s| {
                units::duration(chrono::TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1000)))
            })));
            if let Some(mb) = h.disk_free_mb {
                uptime.push(Span::raw(format!(" · {} disk free", units::bytes(mb * 1_000_000))));
            }
        }
        None => {
            health.push(dash());
            uptime.push(dash());
        }
    }
    lines.push(Line::from(health));
    lines.push(Line::from(uptime));
    lines.push(Line::from(vec![
        label("Firmware"),
        Span::raw(b.fw.clone().unwrap_or_else(|| "—".into())),
    ]));

    let mut config = vec![label("Config")];
    let status = app.fleet.config_of(&b.id);
    let runs = b.config_version.or(status.and_then(|c| c.reported_version));
    config.push(runs.map_or_else(dash, |v| Span::raw(format!("v{v}"))));
    let dim = Style::new().fg(Color::DarkGray);
    match status {
        Some(c) => {
            let target = if runs == Some(c.desired_version) {
                String::new()
            } else {
                format!(" → v{}", c.desired_version)
            };
            let desired = format!(
                "{target} · {} {}",
                c.state.as_str(),
                units::ago(app.now, Some(c.state_at))
            );
            if c.drifting {
                let drift = units::duration(chrono::TimeDelta::seconds(
                    i64::try_from(c.drift_seconds).unwrap_or(i64::MAX),
                ));
                config.push(Span::styled(
                    format!("{desired} · ≠{drift}"),
                    Style::new().fg(Color::Magenta).bold(),
                ));
            } else {
                config.push(Span::styled(desired, dim));
            }
            if let Some(e) = &c.error {
                config.push(Span::styled(format!(" · refused: {e}"), Style::new().fg(Color::Red)));
            }
        }
        None => config.push(Span::styled(" · desired: no OTA data", dim)),
    }
    lines.push(Line::from(config));

    let f = faults(b);
    lines.push(Line::from(vec![
        label("Faults"),
        if f.is_empty() {
            Span::styled("none", Style::new().fg(Color::Green))
        } else {
            Span::styled(f.join(", "), Style::new().fg(Color::Red).bold())
        },
    ]));
    lines
}

/// Recent faults (seen during this session) and recent status changes.
struct History<'a>(&'a App, &'a BenchPane);

impl Widget for History<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (app, pane) = (self.0, self.1);
        let mut lines = Vec::new();
        let faults: Vec<_> = app.alerts.faults_of(&pane.id).take(3).collect();
        if !faults.is_empty() {
            lines.push(Line::from(Span::styled("Recent faults", Style::new().bold())));
            for a in faults {
                let (symbol, color) = if a.kind == AlertKind::Fault {
                    ("▲", Color::Red)
                } else {
                    ("△", Color::Green)
                };
                lines.push(Line::from(vec![
                    Span::styled(format!("{} ", clock(app, a.at)), Style::new().fg(Color::DarkGray)),
                    Span::styled(format!("{symbol} {}", a.text), Style::new().fg(color)),
                ]));
            }
        }
        lines.push(Line::from(Span::styled("Status changes", Style::new().bold())));
        match (&pane.detail, &pane.detail_error) {
            (Some(d), _) if !d.recent_status.is_empty() => {
                for c in &d.recent_status {
                    let (symbol, state, color) = units::state(c.state);
                    lines.push(Line::from(vec![
                        Span::styled(
                            c.at.with_timezone(&app.tz).format("%d.%m. %H:%M ").to_string(),
                            Style::new().fg(Color::DarkGray),
                        ),
                        Span::styled(format!("{symbol} {state:<8} "), Style::new().fg(color)),
                        Span::styled(c.cause.replace('_', " "), Style::new().fg(Color::DarkGray)),
                    ]));
                }
            }
            (Some(_), _) => lines.push(Line::from("none recorded").fg(Color::DarkGray)),
            (None, Some(e)) => lines.push(Line::from(e.to_string()).fg(Color::Red)),
            (None, None) => lines.push(Line::from("loading…").fg(Color::DarkGray)),
        }
        Paragraph::new(lines).render(area, buf);
    }
}

/// Four charts over the window: battery, solar, bandwidth, sessions.
struct Charts<'a>(&'a App, &'a BenchPane);

/// One chart's series and how to read it.
struct Chart {
    title: &'static str,
    values: Vec<Option<f64>>,
    /// Fixed top of the scale (battery: 100 %); otherwise the largest value.
    max: Option<f64>,
    fmt: fn(f64) -> String,
    color: Color,
    extra: Option<String>,
}

impl Widget for Charts<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (_, pane) = (self.0, self.1);
        let series = match (&pane.series, &pane.series_error) {
            (Some(s), _) => s,
            (None, Some(e)) => {
                Paragraph::new(format!("telemetry: {e}"))
                    .fg(Color::Red)
                    .render(area, buf);
                return;
            }
            (None, None) => {
                Paragraph::new(format!("loading {} of telemetry…", pane.window.label()))
                    .fg(Color::DarkGray)
                    .render(area, buf);
                return;
            }
        };
        if series.points.is_empty() {
            Paragraph::new(format!("no samples in the last {}", pane.window.label()))
                .fg(Color::DarkGray)
                .render(area, buf);
            return;
        }
        let started: u64 = series
            .points
            .iter()
            .map(|p| {
                let s = p.sessions_started;
                s.wifi.unwrap_or(0) + s.usb.unwrap_or(0) + s.kiosk.unwrap_or(0)
            })
            .sum();
        let charts = [
            Chart {
                title: "Battery %",
                values: slots(series, |p| Some(p.battery_pct.avg)),
                max: Some(100.0),
                fmt: |v| format!("{v:.0}"),
                color: Color::Green,
                extra: None,
            },
            Chart {
                title: "Solar W",
                values: slots(series, |p| Some(p.solar_w.avg)),
                max: None,
                fmt: |v| format!("{v:.0}"),
                color: Color::Yellow,
                extra: None,
            },
            Chart {
                title: "Bandwidth",
                values: slots(series, |p| match (p.rx_bytes_per_s, p.tx_bytes_per_s) {
                    (None, None) => None,
                    (rx, tx) => Some(rx.unwrap_or(0.0) + tx.unwrap_or(0.0)),
                }),
                max: None,
                fmt: units::rate,
                color: Color::Cyan,
                extra: None,
            },
            Chart {
                title: "Sessions",
                values: slots(series, |p| {
                    let s = p.sessions_max;
                    (s.wifi.is_some() || s.usb.is_some() || s.kiosk.is_some())
                        .then(|| (s.wifi.unwrap_or(0) + s.usb.unwrap_or(0) + s.kiosk.unwrap_or(0)) as f64)
                }),
                max: None,
                fmt: |v| format!("{v:.0}"),
                color: Color::Magenta,
                extra: Some(format!("{started} started")),
            },
        ];
        let areas = Layout::vertical([Constraint::Ratio(1, 4); 4]).split(area);
        for (chart, area) in charts.into_iter().zip(areas.iter()) {
            chart.render(*area, buf);
        }
    }
}

impl Widget for Chart {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let [title_area, spark_area] = Layout::vertical([Constraint::Length(1), Constraint::Min(0)]).areas(area);
        let present = || self.values.iter().flatten().copied();
        let last = self.values.iter().rev().flatten().next().copied();
        let low = present().fold(f64::INFINITY, f64::min);
        let high = present().fold(f64::NEG_INFINITY, f64::max);
        let mut title = vec![Span::styled(
            format!("{:<10}", self.title),
            Style::new().fg(self.color).add_modifier(Modifier::BOLD),
        )];
        if let Some(last) = last {
            title.push(Span::raw(format!(
                "now {} · min {} · max {}",
                (self.fmt)(last),
                (self.fmt)(low),
                (self.fmt)(high)
            )));
        } else {
            title.push(Span::styled("no data", Style::new().fg(Color::DarkGray)));
        }
        if let Some(extra) = self.extra {
            title.push(Span::raw(format!(" · {extra}")));
        }
        Line::from(title).render(title_area, buf);

        let top = self.max.unwrap_or(high).max(f64::MIN_POSITIVE);
        let scale = |v: f64| (v / top * 1000.0).round().max(0.0) as u64;
        let bars: Vec<SparklineBar> = resample(&self.values, usize::from(spark_area.width))
            .into_iter()
            .map(|v| SparklineBar::from(v.map(scale)))
            .collect();
        Sparkline::default()
            .data(bars)
            .max(1000)
            .style(Style::new().fg(self.color))
            .absent_value_symbol(symbols::shade::LIGHT)
            .absent_value_style(Style::new().fg(Color::DarkGray))
            .render(spark_area, buf);
    }
}

/// One value per bucket of the window, `None` where the bench sent nothing.
fn slots(series: &TelemetrySeries, value: impl Fn(&TelemetryPoint) -> Option<f64>) -> Vec<Option<f64>> {
    let bucket = i64::try_from(series.bucket.seconds()).unwrap_or(i64::MAX).max(1);
    let n = usize::try_from((series.to - series.from).num_seconds() / bucket).unwrap_or(0);
    let mut out = vec![None; n];
    for p in &series.points {
        let i = (p.start - series.from).num_seconds().div_euclid(bucket);
        if let Some(slot) = usize::try_from(i).ok().and_then(|i| out.get_mut(i)) {
            *slot = value(p);
        }
    }
    out
}

/// Fits `values` to `width` columns: averages when there are more values than columns,
/// repeats when fewer, so the whole window always spans the chart.
fn resample(values: &[Option<f64>], width: usize) -> Vec<Option<f64>> {
    let n = values.len();
    if n == 0 || width == 0 {
        return Vec::new();
    }
    (0..width)
        .map(|i| {
            let lo = i * n / width;
            let hi = ((i + 1) * n / width).max(lo + 1).min(n);
            let present: Vec<f64> = values[lo..hi].iter().flatten().copied().collect();
            (!present.is_empty()).then(|| present.iter().sum::<f64>() / present.len() as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resampling_keeps_the_whole_window() {
        let v = [Some(1.0), Some(3.0), None, None, Some(5.0), Some(7.0)];
        assert_eq!(resample(&v, 3), vec![Some(2.0), None, Some(6.0)]);
        assert_eq!(resample(&v[..2], 4), vec![Some(1.0), Some(1.0), Some(3.0), Some(3.0)]);
        assert_eq!(resample(&v, 6), v.to_vec());
        assert!(resample(&[], 5).is_empty());
    }
}
