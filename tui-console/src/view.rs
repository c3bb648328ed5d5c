//! Rendering: the whole screen is one widget over `&App` ([`Console`]), made of one widget per
//! part. Nothing here changes state; the same `App` always draws the same screen.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use crate::api::ApiError;
use crate::app::{App, Feature, Mode, View};

mod alerts;
mod bench;
mod feature;
mod fleet;
mod header;
mod help;
pub mod units;

/// The whole console screen.
pub struct Console<'a>(pub &'a App);

impl Widget for Console<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let alerts_height = match app.view {
            View::Bench => 2,
            _ if area.height >= 32 => 9,
            _ => 5,
        };
        let banner = banner(app);
        let banner_height = banner.as_ref().map_or(0, |(text, _)| banner_height(text, area.width));
        let [header_area, banner_area, body, alerts_area, footer] = Layout::vertical([
            Constraint::Length(3),
            Constraint::Length(banner_height),
            Constraint::Min(0),
            Constraint::Length(alerts_height),
            Constraint::Length(1),
        ])
        .areas(area);
        header::Header(app).render(header_area, buf);
        if let Some((text, title)) = banner {
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .block(
                    Block::bordered()
                        .border_style(Style::new().fg(Color::Red))
                        .title(Span::styled(format!(" {title} "), Style::new().fg(Color::Red).bold())),
                )
                .render(banner_area, buf);
        }
        match app.view {
            View::Fleet => fleet::FleetTable(app).render(body, buf),
            View::Bench => bench::BenchView(app).render(body, buf),
            View::Rollouts => feature::FeatureView(app, Feature::Rollouts).render(body, buf),
            View::Ideas => feature::FeatureView(app, Feature::Ideas).render(body, buf),
        }
        alerts::AlertsLine(app).render(alerts_area, buf);
        Footer(app).render(footer, buf);
        if app.mode == Mode::Help {
            help::Help(app).render(area, buf);
        }
    }
}

/// Rows the banner needs at `width`: its wrapped text plus the border.
fn banner_height(text: &str, width: u16) -> u16 {
    let inner = usize::from(width.saturating_sub(2)).max(1);
    // Word wrapping needs a little more than the character count.
    let lines = (text.chars().count() * 11 / 10).div_ceil(inner).max(1);
    u16::try_from(lines).unwrap_or(3).min(5) + 2
}

/// A message when the bench list cannot be fetched: what is wrong, what to do, that it retries.
fn banner(app: &App) -> Option<(String, &'static str)> {
    let f = app.fleet_error.as_ref()?;
    let (title, what) = match &f.error {
        ApiError::Unreachable { url, reason } => (
            "control plane unreachable",
            format!("Cannot reach the control plane at {url}: {reason}. Is it running? Check --api or BENCHFLEET_API."),
        ),
        ApiError::Unauthorized { detail } => (
            "token refused",
            format!(
                "The control plane refused the token (401: {detail}). Pass a valid token with --token, --token-file \
                 or BENCHFLEET_TOKEN; mint one with `control-plane token --role operator`."
            ),
        ),
        ApiError::Forbidden { detail } => (
            "not allowed",
            format!(
                "A {} token may not read the fleet (403: {detail}). Use an operator, viewer or admin token.",
                app.access.label()
            ),
        ),
        ApiError::NotFound { .. } => (
            "no fleet API",
            format!(
                "{} has no /api/v1/benches (404). Is --api pointing at a benchfleet control plane?",
                app.api_url
            ),
        ),
        e => ("cannot load the fleet", e.to_string()),
    };
    let since = f.first.with_timezone(&app.tz).format("%H:%M:%S");
    let mut text = format!(
        "{what} Retrying every {}s ({} attempts since {since}).",
        app.refresh.as_secs().max(1),
        f.attempts
    );
    if let Some(at) = app.loaded_at {
        text.push_str(&format!(
            " Showing data from {}.",
            at.with_timezone(&app.tz).format("%H:%M:%S")
        ));
    }
    Some((text, title))
}

/// The last line: the search prompt, a notice, or the keys of the current view.
struct Footer<'a>(&'a App);

impl Widget for Footer<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let key = |k: &'static str| Span::styled(k, Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD));
        let line = if app.mode == Mode::Search {
            Line::from(vec![
                key("/"),
                Span::raw(format!(" {}", app.table.text)),
                Span::styled("▏", Style::new().add_modifier(Modifier::SLOW_BLINK)),
                Span::styled("  ⏎ keep · esc clear", Style::new().fg(Color::DarkGray)),
            ])
        } else if let Some((text, _)) = &app.notice {
            Line::from(Span::styled(text.clone(), Style::new().fg(Color::Yellow)))
        } else {
            let mut spans = Vec::new();
            let hints: &[(&'static str, &'static str)] = match app.view {
                View::Fleet => &[
                    ("↑↓", "move"),
                    ("⏎", "open"),
                    ("/", "search"),
                    ("s", "sort"),
                    ("f", "state"),
                    ("m", "municipality"),
                    ("c", "clear"),
                ],
                View::Bench => &[
                    ("esc", "back"),
                    ("w", "window"),
                    ("←→", "prev/next bench"),
                    ("r", "refresh"),
                ],
                View::Rollouts if app.access.can_act() => {
                    &[("p", "pause"), ("u", "resume"), ("a", "abort"), ("esc", "back")]
                }
                View::Ideas if app.access.can_act() => &[("a", "approve"), ("x", "reject"), ("esc", "back")],
                View::Rollouts | View::Ideas => {
                    spans.push(Span::styled(
                        format!("read-only ({}): actions hidden  ", app.access.label()),
                        Style::new().fg(Color::Yellow),
                    ));
                    &[("esc", "back")]
                }
            };
            for (k, what) in hints.iter().chain(&[("?", "help"), ("q", "quit")]) {
                spans.push(key(k));
                spans.push(Span::raw(format!(" {what}  ")));
            }
            Line::from(spans)
        };
        line.render(area, buf);
    }
}

/// A top-bordered section with a title.
fn section(title: impl Into<String>) -> Block<'static> {
    Block::new()
        .borders(Borders::TOP)
        .border_style(Style::new().fg(Color::DarkGray))
        .title(Span::styled(format!(" {} ", title.into()), Style::new().bold()))
}
