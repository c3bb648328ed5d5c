//! The help overlay: every key, and what the symbols mean.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Widget};

use crate::app::App;

pub struct Help<'a>(pub &'a App);

const KEYS: &[(&str, &[(&str, &str)])] = &[
    (
        "Everywhere",
        &[
            ("q  Ctrl-C", "quit"),
            ("?", "this help (esc closes)"),
            ("1 2 3  Tab", "fleet · rollouts · ideas"),
            ("r", "refresh now"),
        ],
    ),
    (
        "Fleet",
        &[
            ("↑↓ j k PgUp PgDn", "move (g G: first, last)"),
            ("⏎", "open the bench"),
            ("/", "search (⏎ keeps, esc clears)"),
            ("s  S", "sort column · reverse"),
            ("f  m  c", "state · municipality · clear"),
        ],
    ),
    (
        "Bench",
        &[
            ("esc", "back to the fleet"),
            ("w", "window 1h → 24h → 7d"),
            ("← →  [ ]", "previous · next bench"),
        ],
    ),
    (
        "Operators",
        &[
            ("rollouts", "p pause · u resume · a abort · b rollback"),
            ("ideas", "a approve · x reject (type a reason, ⏎)"),
        ],
    ),
];

impl Widget for Help<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let key = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
        let mut lines = Vec::new();
        for (group, keys) in KEYS {
            lines.push(Line::from(Span::styled(*group, Style::new().bold())));
            for (k, what) in *keys {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {k:<17}"), key),
                    Span::raw(*what),
                ]));
            }
        }
        lines.push(Line::from(vec![
            Span::styled("● ", Style::new().fg(Color::Green)),
            Span::raw("online "),
            Span::styled("◐ ", Style::new().fg(Color::Yellow)),
            Span::raw("stale "),
            Span::styled("✕ ", Style::new().fg(Color::Red)),
            Span::raw("offline "),
            Span::styled("☾ ", Style::new().fg(Color::Blue)),
            Span::raw("sleeping "),
            Span::styled("· ", Style::new().fg(Color::DarkGray)),
            Span::raw("never seen"),
        ]));
        lines.push(Line::from(vec![
            Span::styled("≠ ", Style::new().fg(Color::Magenta)),
            Span::raw("config drift (not applied in time)  "),
            Span::styled("░ ", Style::new().fg(Color::DarkGray)),
            Span::raw("no data"),
        ]));
        let mut progress = vec![Span::raw("rollout benches ")];
        for (mark, what, color) in [
            ("·", "wait", Color::DarkGray),
            ("…", "sent", Color::Cyan),
            ("~", "soak", Color::Blue),
            ("✓", "ok", Color::Green),
            ("↷", "skip", Color::Yellow),
            ("✕", "fail", Color::Red),
            ("↺", "undone", Color::Magenta),
        ] {
            progress.push(Span::styled(mark, Style::new().fg(color)));
            progress.push(Span::raw(format!("{what} ")));
        }
        lines.push(Line::from(progress));
        if !app.access.can_act() {
            lines.push(Line::from(Span::styled(
                format!("read-only: a {} token hides actions", app.access.label()),
                Style::new().fg(Color::Yellow),
            )));
        }
        let height = u16::try_from(lines.len()).unwrap_or(u16::MAX).saturating_add(2);
        let [row] = Layout::vertical([Constraint::Length(height)])
            .flex(Flex::Center)
            .areas(area);
        let [popup] = Layout::horizontal([Constraint::Length(62)])
            .flex(Flex::Center)
            .areas(row);
        Clear.render(popup, buf);
        Paragraph::new(lines)
            .block(Block::bordered().title(" Keys ").title_bottom(" esc closes "))
            .render(popup, buf);
    }
}
