//! The alerts line, with the indicator saying whether they arrive live or by polling.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::section;
use crate::app::{AlertKind, App, StreamState};

pub struct AlertsLine<'a>(pub &'a App);

impl Widget for AlertsLine<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let every = app.refresh.as_secs().max(1);
        let indicator = match &app.stream {
            StreamState::Live { .. } => Span::styled(" ● live ", Style::new().fg(Color::Green)),
            StreamState::Connecting => Span::styled(
                format!(" ◌ polling every {every}s · connecting to the event stream "),
                Style::new().fg(Color::Yellow),
            ),
            StreamState::Down { .. } => Span::styled(
                format!(" ◌ polling every {every}s · event stream down "),
                Style::new().fg(Color::Yellow),
            ),
        };
        let problems = app.alerts.problems();
        let block = section(format!("Alerts {problems}")).title(Line::from(indicator).right_aligned());
        let inner = block.inner(area);
        block.render(area, buf);
        let lines: Vec<Line> = app
            .alerts
            .items
            .iter()
            .take(usize::from(inner.height))
            .map(|a| {
                let (symbol, color) = match a.kind {
                    AlertKind::Offline => ("✕", Color::Red),
                    AlertKind::Stale => ("◐", Color::Yellow),
                    AlertKind::BackOnline => ("●", Color::Green),
                    AlertKind::LowBattery => ("▁", Color::Red),
                    AlertKind::Fault => ("▲", Color::Red),
                    AlertKind::FaultCleared => ("△", Color::Green),
                    AlertKind::Drift => ("≠", Color::Magenta),
                };
                Line::from(vec![
                    Span::styled(
                        a.at.with_timezone(&app.tz).format("%H:%M:%S ").to_string(),
                        Style::new().fg(Color::DarkGray),
                    ),
                    Span::styled(format!("{symbol} "), Style::new().fg(color)),
                    Span::raw(format!("{} ", a.bench_id)),
                    Span::styled(a.text.clone(), Style::new().fg(color)),
                ])
            })
            .collect();
        if lines.is_empty() {
            Paragraph::new("no alerts")
                .style(Style::new().fg(Color::DarkGray))
                .render(inner, buf);
        } else {
            Paragraph::new(lines).render(inner, buf);
        }
    }
}
