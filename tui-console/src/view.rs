//! Rendering: the whole screen is one widget over `&App` ([`Console`]), made of one widget per
//! part. Nothing here changes state; the same `App` always draws the same screen.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Widget, Wrap};

use crate::api::ApiError;
use crate::app::{App, Availability, Feature, Mode, View};

mod alerts;
mod bench;
mod feature;
mod fleet;
mod header;
mod help;
mod ideas;
mod rollouts;
pub mod units;

/// The whole console screen.
pub struct Console<'a>(pub &'a App);

impl Widget for Console<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let banner = banner(app);
        let banner_height = banner.as_ref().map_or(0, |(text, _)| banner_height(text, area.width));
        let ideas_shown = app.view == View::Ideas && app.ideas == Availability::Present;
        let rollouts_shown = app.view == View::Rollouts && app.rollouts == Availability::Present;
        let alerts_height = match app.view {
            View::Bench => 2,
            View::Ideas if ideas_shown => 2,
            View::Rollouts if rollouts_shown => 2,
            View::Fleet => {
                // The table gets the rows it needs (title, header, benches); alerts the rest.
                let table = app.table.rows(&app.fleet).len().max(1) as u16 + 2;
                area.height.saturating_sub(3 + banner_height + 1 + table).clamp(2, 14)
            }
            _ => 5,
        };
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
            View::Rollouts if rollouts_shown => rollouts::RolloutsView(app).render(body, buf),
            View::Rollouts => feature::FeatureView(app, Feature::Rollouts).render(body, buf),
            View::Ideas if ideas_shown => ideas::IdeasView(app).render(body, buf),
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
        "{what} Retrying every {}s ({} attempt{} since {since}).",
        app.refresh.as_secs().max(1),
        f.attempts,
        if f.attempts == 1 { "" } else { "s" }
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
        let ideas_shown = app.view == View::Ideas && app.ideas == Availability::Present;
        let rollouts_shown = app.view == View::Rollouts && app.rollouts == Availability::Present;
        let line = if let Some((prompt, reason)) = reason_prompt(app) {
            let hint = "  ⏎ send · esc cancel";
            // A long reason scrolls: its end, where the cursor is, stays visible.
            let room = usize::from(area.width).saturating_sub(prompt.chars().count() + hint.chars().count() + 1);
            let skip = reason.chars().count().saturating_sub(room);
            Line::from(vec![
                Span::styled(prompt, Style::new().fg(Color::Cyan).bold()),
                Span::raw(reason.chars().skip(skip).collect::<String>()),
                Span::styled("▏", Style::new().add_modifier(Modifier::SLOW_BLINK)),
                Span::styled(hint, Style::new().fg(Color::DarkGray)),
            ])
        } else if app.mode == Mode::Search {
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
                View::Rollouts if app.access.can_act() && rollouts_shown => &[
                    ("↑↓", "select"),
                    ("p", "pause"),
                    ("u", "resume"),
                    ("a", "abort"),
                    ("b", "roll back"),
                ],
                View::Rollouts if app.access.can_act() => {
                    &[("p", "pause"), ("u", "resume"), ("a", "abort"), ("esc", "back")]
                }
                View::Ideas if app.access.can_act() && ideas_shown => {
                    &[("↑↓", "select"), ("a", "approve"), ("x", "reject"), ("esc", "back")]
                }
                View::Ideas if app.access.can_act() => &[("a", "approve"), ("x", "reject"), ("esc", "back")],
                View::Rollouts | View::Ideas => {
                    spans.push(Span::styled(
                        format!("read-only ({}): actions hidden  ", app.access.label()),
                        Style::new().fg(Color::Yellow),
                    ));
                    if ideas_shown || rollouts_shown {
                        &[("↑↓", "select"), ("esc", "back")]
                    } else {
                        &[("esc", "back")]
                    }
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

/// The reason being typed, with its prompt: a rejection in the ideas view, an abort or a
/// rollback in the rollouts view.
fn reason_prompt(app: &App) -> Option<(String, &str)> {
    if app.mode != Mode::Reason {
        return None;
    }
    if app.view == View::Rollouts {
        let d = app.rollouts_pane.draft.as_ref()?;
        let id = crate::app::rollouts::short_id(&d.id);
        return Some((format!("{} {id} · reason: ", d.action.verb()), &d.reason));
    }
    let d = app.ideas_pane.draft.as_ref()?;
    Some((format!("reject {} · reason: ", d.code), &d.reason))
}

/// A top-bordered section with a title.
fn section(title: impl Into<String>) -> Block<'static> {
    Block::new()
        .borders(Borders::TOP)
        .border_style(Style::new().fg(Color::DarkGray))
        .title(Span::styled(format!(" {} ", title.into()), Style::new().bold()))
}

#[cfg(test)]
mod tests {
    //! Snapshots of whole screens with fixed data, at the smallest supported size (80×24) and a
    //! common larger one (120×40).

    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use insta::assert_snapshot;
    use protocol::Role;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::api::ApiError;
    use crate::app::{Availability, Window};
    use crate::event::{ApiEvent, Event};
    use crate::testing;

    fn screen(app: &App, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
        terminal.draw(|f| f.render_widget(Console(app), f.area())).unwrap();
        terminal.backend().to_string()
    }

    fn press(app: &mut App, code: KeyCode) {
        app.update(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    }

    /// The fixture app with one bench open and its data loaded.
    fn bench_app(id: &str) -> App {
        let mut app = testing::app();
        app.table.selected = Some(id.into());
        press(&mut app, KeyCode::Enter);
        app.update(Event::Api(ApiEvent::Detail {
            id: id.into(),
            result: Ok(testing::detail(id)),
        }));
        app.update(Event::Api(ApiEvent::Telemetry {
            id: id.into(),
            window: Window::Hour,
            result: Ok(testing::series(id, Window::Hour)),
        }));
        app
    }

    #[test]
    fn fleet() {
        let app = testing::app();
        let small = screen(&app, 80, 24);
        for id in ["kostajnica-01", "maglaj-01", "nevesinje-01", "trebinje-01", "zepce-01"] {
            assert!(small.contains(id), "{id} missing at 80x24");
        }
        for state in ["✕ offline", "◐ stale", "☾ sleeping", "· never", "● online"] {
            assert!(small.contains(state), "{state} missing at 80x24");
        }
        assert_snapshot!("fleet_80x24", small);
        let large = screen(&app, 120, 40);
        assert_snapshot!("fleet_120x40", large);
        assert!(
            large.contains("battery_failure,enclosure_temp"),
            "fault codes at 120 columns"
        );
        assert!(large.contains("v6≠v7"));
    }

    #[test]
    fn fleet_filtered_and_polling() {
        let mut app = testing::app();
        press(&mut app, KeyCode::Char('f'));
        app.update(Event::Api(ApiEvent::Stream(crate::event::StreamEvent::Down(
            ApiError::Unreachable {
                url: "http://127.0.0.1:8080".into(),
                reason: "event stream closed".into(),
            },
        ))));
        let s = screen(&app, 80, 24);
        assert!(s.contains("polling every 5s"));
        assert_snapshot!("fleet_problems_polling_80x24", s);
    }

    #[test]
    fn bench() {
        let app = bench_app("ravno-01");
        assert_snapshot!("bench_80x24", screen(&app, 80, 24));
        assert_snapshot!("bench_120x40", screen(&app, 120, 40));
        let sleeping = bench_app("nevesinje-01");
        assert_snapshot!("bench_sleeping_80x24", screen(&sleeping, 80, 24));
    }

    #[test]
    fn help() {
        let mut app = testing::app_as(Role::Viewer);
        press(&mut app, KeyCode::Char('?'));
        let s = screen(&app, 80, 24);
        assert!(s.contains("read-only"));
        assert_snapshot!("help_80x24", s);
    }

    #[test]
    fn rollouts_and_ideas_not_available() {
        let mut app = testing::app_as(Role::Viewer);
        app.rollouts = Availability::Missing;
        app.ideas = Availability::Missing;
        press(&mut app, KeyCode::Char('2'));
        let s = screen(&app, 80, 24);
        assert!(s.contains("not available on this control plane yet"));
        assert!(s.contains("read-only (viewer): actions hidden"));
        assert_snapshot!("rollouts_viewer_80x24", s);
        let mut op = testing::app();
        op.ideas = Availability::Missing;
        press(&mut op, KeyCode::Char('3'));
        let s = screen(&op, 120, 40);
        assert!(s.contains("a approve"));
        assert_snapshot!("ideas_operator_120x40", s);
    }

    #[test]
    fn ideas() {
        let app = testing::ideas_app();
        let large = screen(&app, 120, 40);
        for text in [
            "MOS-2026-0042",
            "3 waiting for operators",
            "46h",
            "5h late",
            "→ lda-zepce",
            "blocklisted",
            "History",
        ] {
            assert!(large.contains(text), "{text:?} missing at 120x40");
        }
        assert_snapshot!("ideas_120x40", large);
        let small = screen(&app, 80, 24);
        assert!(small.contains("MOS-2026-0031"), "every row fits at 80x24");
        assert_snapshot!("ideas_80x24", small);

        let mut rejecting = testing::ideas_app();
        press(&mut rejecting, KeyCode::Down);
        press(&mut rejecting, KeyCode::Char('x'));
        for c in "duplicate of a closed case".chars() {
            press(&mut rejecting, KeyCode::Char(c));
        }
        let s = screen(&rejecting, 80, 24);
        assert!(s.contains("reject MAG-2026-0007 · reason: duplicate of a closed case▏  ⏎ send · esc cancel"));
        assert_snapshot!("ideas_reject_reason_80x24", s);
        for c in " reported in September".chars() {
            press(&mut rejecting, KeyCode::Char(c));
        }
        let s = screen(&rejecting, 80, 24);
        assert!(
            s.contains("reason:  case reported in September▏  ⏎ send · esc cancel"),
            "a long reason shows its end"
        );

        let mut refused = testing::ideas_app();
        press(&mut refused, KeyCode::Char('a'));
        refused.update(Event::Api(ApiEvent::Moderated {
            id: testing::idea_id(1),
            action: crate::api::Moderation::Approve,
            result: Err(ApiError::Status {
                status: 409,
                detail: "idea is offered; approve needs held".into(),
            }),
        }));
        let s = screen(&refused, 120, 40);
        assert!(s.contains("✕ cannot approve MOS-2026-0042: idea is offered; approve needs held (409)"));
        assert_snapshot!("ideas_refused_120x40", s);
    }

    #[test]
    fn rollouts() {
        let app = testing::rollouts_app();
        let large = screen(&app, 120, 40);
        for text in [
            "Rollouts · 3 · 1 active",
            "7c1e9a51 running       2/3",
            "kiosk freezes after waking",
            "target municipalities Mostar",
            r#"change {"sleep":{"start":"22:00"}}"#,
            "✕ rejected",
            "refused: sleep.start: must be before sleep.end",
            "v7→v8",
            "Configuration · 8/12 applied · 2 drifting",
            "b roll back",
        ] {
            assert!(large.contains(text), "{text:?} missing at 120x40");
        }
        assert_snapshot!("rollouts_120x40", large);
        let small = screen(&app, 80, 24);
        assert!(small.contains("prijedor-01"), "the failed bench shows at 80x24");
        assert_snapshot!("rollouts_80x24", small);

        let mut aborting = testing::rollouts_app();
        press(&mut aborting, KeyCode::Char('a'));
        for c in "prijedor refuses the sleep window".chars() {
            press(&mut aborting, KeyCode::Char(c));
        }
        let s = screen(&aborting, 80, 24);
        assert!(s.contains("abort 7c1e9a51 · reason: prijedor refuses the sleep window▏"));
        assert_snapshot!("rollouts_abort_reason_80x24", s);

        let mut refused = testing::rollouts_app();
        press(&mut refused, KeyCode::Char('p'));
        refused.update(Event::Api(ApiEvent::Steered {
            id: testing::rollout_id(1),
            action: crate::api::Steer::Pause,
            result: Err(ApiError::Status {
                status: 409,
                detail: "rollout is not running".into(),
            }),
        }));
        let s = screen(&refused, 120, 40);
        assert!(s.contains("✕ cannot pause 7c1e9a51: rollout is not running (409)"));

        let viewer = testing::rollouts_app_as(Role::Viewer);
        let s = screen(&viewer, 80, 24);
        assert!(s.contains("read-only (viewer): actions hidden"));
        assert!(!s.contains("p pause"));
        assert_snapshot!("rollouts_read_only_80x24", s);
    }

    #[test]
    fn refused_token_and_unreachable_api() {
        let mut app = App::new(
            "http://127.0.0.1:8080",
            crate::access::Access::from_token(Some("not-a-jwt")),
            std::time::Duration::from_secs(5),
            testing::now(),
        );
        for _ in 0..3 {
            app.update(Event::Api(ApiEvent::Benches(Err(ApiError::Unauthorized {
                detail: "invalid token".into(),
            }))));
        }
        let s = screen(&app, 80, 24);
        assert!(s.contains("token refused"));
        assert_snapshot!("token_refused_80x24", s);

        let mut app = testing::app();
        let gone = ApiError::Unreachable {
            url: "http://127.0.0.1:8080".into(),
            reason: "Connection refused (os error 111)".into(),
        };
        app.update(Event::Api(ApiEvent::Benches(Err(gone.clone()))));
        app.update(Event::Api(ApiEvent::Readiness(Err(gone))));
        let s = screen(&app, 80, 24);
        assert!(s.contains("Connection refused"));
        assert!(s.contains("Showing data from 10:00:00"));
        assert_snapshot!("unreachable_with_old_data_80x24", s);
    }
}
