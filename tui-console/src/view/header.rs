//! The top three lines: who and where (API, control-plane health, role), fleet counts by state,
//! and today's totals.

use protocol::BenchState;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::units;
use crate::app::App;

pub struct Header<'a>(pub &'a App);

impl Widget for Header<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let dim = Style::new().fg(Color::DarkGray);

        let mut first = vec![
            Span::styled("benchfleet", Style::new().fg(Color::Cyan).bold()),
            Span::raw(format!("  {}  ", app.api_url)),
        ];
        first.extend(health(app));
        first.push(Span::raw("  "));
        if app.access.can_act() {
            first.push(Span::styled(app.access.label(), Style::new().fg(Color::Green)));
        } else {
            first.push(Span::styled(
                format!("{} · read-only", app.access.label()),
                Style::new().fg(Color::Yellow),
            ));
        }

        let mut counts = [0_usize; 5];
        for b in &app.fleet.benches {
            counts[BenchState::ALL.iter().position(|s| *s == b.state).unwrap_or(0)] += 1;
        }
        let mut second = vec![Span::raw(format!("{} benches ", app.fleet.benches.len()))];
        for (state, n) in BenchState::ALL.iter().zip(counts) {
            let (symbol, label, color) = units::state(*state);
            let style = if n == 0 { dim } else { Style::new().fg(color) };
            second.push(Span::styled(format!(" {symbol} {n} {label}"), style));
        }

        let third = match &app.summary {
            Some(s) => {
                let mut spans = vec![Span::raw(format!(
                    "today {} solar · {} sessions · {}",
                    units::energy(s.solar_energy_today_wh),
                    s.sessions_today,
                    units::bytes(s.bytes_today)
                ))];
                let faulty = s.faulty_benches.len();
                let low = s.low_battery_benches.len();
                spans.push(Span::styled(
                    format!(" · {faulty} faulty"),
                    if faulty > 0 { Style::new().fg(Color::Red) } else { dim },
                ));
                spans.push(Span::styled(
                    format!(" · {low} low battery"),
                    if low > 0 { Style::new().fg(Color::Red) } else { dim },
                ));
                spans
            }
            None => vec![Span::styled("today —", dim)],
        };
        Paragraph::new(vec![Line::from(first), Line::from(second), Line::from(third)]).render(area, buf);
    }
}

/// The control plane's own health from `/readyz`.
fn health(app: &App) -> Vec<Span<'static>> {
    match &app.health {
        None => vec![Span::styled("control plane …", Style::new().fg(Color::DarkGray))],
        Some(Ok(r)) if r.ready => vec![
            Span::raw("control plane "),
            Span::styled("✓ ready", Style::new().fg(Color::Green)),
        ],
        Some(Ok(r)) => vec![
            Span::raw("control plane "),
            Span::styled(
                format!("✕ {}", r.problems.join(", ")),
                Style::new().fg(Color::Red).bold(),
            ),
        ],
        Some(Err(_)) => vec![
            Span::raw("control plane "),
            Span::styled("✕ unreachable", Style::new().fg(Color::Red).bold()),
        ],
    }
}
