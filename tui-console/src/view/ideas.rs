//! The ideas view: the moderation queue (marked, first) and the newest ideas in one table, and
//! the selected idea below it with its text, flags and history.

use chrono::{DateTime, TimeDelta, Utc};
use protocol::IdeaState;
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget, Wrap};

use super::{section, units};
use crate::api::IdeaView;
use crate::app::ideas::explain;
use crate::app::{App, IdeaRow};

/// Rows of the detail pane at least, when the body has room for both.
const DETAIL_MIN: u16 = 9;

pub struct IdeasView<'a>(pub &'a App);

impl Widget for IdeasView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let pane = &app.ideas_pane;
        let rows = pane.rows();
        // The table takes the rows it needs, up to what leaves the detail its minimum.
        let wanted = rows.len().max(1) as u16 + 2;
        let table_height = wanted.min(area.height.saturating_sub(DETAIL_MIN).max(area.height / 2));
        let [table_area, detail_area] =
            Layout::vertical([Constraint::Length(table_height), Constraint::Min(0)]).areas(area);
        IdeaTable(app, &rows).render(table_area, buf);
        IdeaDetailPane(app).render(detail_area, buf);
    }
}

struct IdeaTable<'a>(&'a App, &'a [IdeaRow<'a>]);

impl Widget for IdeaTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (app, rows) = (self.0, self.1);
        let pane = &app.ideas_pane;
        let waiting = rows.iter().filter(|r| r.queued).count();
        let mut title = format!("Ideas · {waiting} waiting for operators · {} newest", pane.latest.len());
        if let Some(at) = pane.loaded_at {
            title.push_str(&format!(" · {}", at.with_timezone(&app.tz).format("%H:%M:%S")));
        }
        let block = section(title);
        let inner = block.inner(area);
        block.render(area, buf);

        let mut problems = Vec::new();
        if let Some(e) = &pane.error {
            problems.push(format!("cannot load the ideas: {}", explain(e)));
        }
        if let Some(e) = &pane.queue_error {
            problems.push(format!("cannot load the moderation queue: {}", explain(e)));
        }
        let [problem_area, table_area] =
            Layout::vertical([Constraint::Length(problems.len() as u16), Constraint::Min(0)]).areas(inner);
        Paragraph::new(problems.into_iter().map(Line::from).collect::<Vec<_>>())
            .fg(Color::Red)
            .render(problem_area, buf);

        if rows.is_empty() {
            let text = if pane.loaded_at.is_none() {
                "loading ideas…"
            } else {
                "no ideas yet"
            };
            Paragraph::new(text).fg(Color::DarkGray).render(table_area, buf);
            return;
        }
        let columns = columns();
        let header = Row::new(
            columns
                .iter()
                .map(|(name, _, align)| Cell::from(Line::from(*name).alignment(*align))),
        )
        .style(Style::new().fg(Color::DarkGray).add_modifier(Modifier::BOLD));
        let body = rows.iter().map(|r| row(app.now, r));
        let table = Table::new(body, columns.iter().map(|(_, w, _)| *w))
            .header(header)
            .column_spacing(1)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state = TableState::new().with_selected(pane.selected_index(rows));
        StatefulWidget::render(table, table_area, buf, &mut state);
    }
}

fn columns() -> [(&'static str, Constraint, Alignment); 8] {
    use Alignment::{Left, Right};
    use Constraint::{Fill, Length};
    [
        ("", Length(1), Left),
        ("Code", Length(13), Left),
        ("Municip.", Length(10), Left),
        ("Category", Length(14), Left),
        ("State", Length(10), Left),
        ("Organisation", Fill(1), Left),
        ("Age", Length(3), Right),
        ("Deadline", Length(8), Right),
    ]
}

fn row<'a>(now: DateTime<Utc>, r: &IdeaRow<'a>) -> Row<'a> {
    let i = r.idea;
    let right = |s: String| Cell::from(Text::from(s).alignment(Alignment::Right));
    let marker = if r.queued {
        Cell::from(Span::styled("!", Style::new().fg(Color::Yellow).bold()))
    } else {
        Cell::from("")
    };
    let deadline = match i.deadline {
        Some(d) if d < now => right(format!("{} late", short(now - d))).style(Style::new().fg(Color::Red).bold()),
        Some(d) => right(format!("in {}", short(d - now))),
        None => right("—".to_owned()),
    };
    let row = Row::new([
        marker,
        Cell::from(i.tracking_code.as_str()),
        Cell::from(i.municipality.as_str()),
        Cell::from(i.category.as_str()),
        Cell::from(i.state.as_str()).style(Style::new().fg(state_color(i.state))),
        Cell::from(organisation(i)),
        right(units::ago(now, Some(i.received_at))),
        deadline,
    ]);
    if r.queued {
        row.style(Style::new().fg(Color::Yellow))
    } else {
        row
    }
}

/// Who has the idea: the organisation that confirmed it, or those it is offered to.
fn organisation(i: &IdeaView) -> String {
    match (&i.org_id, i.offered_to.as_slice()) {
        (Some(org), _) => org.clone(),
        (None, []) => "—".to_owned(),
        (None, offered) => format!("→ {}", offered.join(", ")),
    }
}

/// A span in at most 3 characters: `45s`, `12m`, `5h`, `47h`, `3d` (hours up to two days, the
/// usual confirmation deadline).
fn short(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..172_800 => format!("{}h", s / 3600),
        _ => format!("{}d", (s / 86_400).min(99)),
    }
}

fn state_color(s: IdeaState) -> Color {
    match s {
        IdeaState::Held | IdeaState::Unroutable | IdeaState::Escalated => Color::Yellow,
        IdeaState::Rejected => Color::Red,
        IdeaState::Completed => Color::Green,
        IdeaState::Duplicate | IdeaState::Received => Color::DarkGray,
        IdeaState::Offered | IdeaState::Confirmed | IdeaState::InAction => Color::Reset,
    }
}

struct IdeaDetailPane<'a>(&'a App);

impl Widget for IdeaDetailPane<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let pane = &app.ideas_pane;
        let idea = pane
            .detail
            .as_ref()
            .map(|d| &d.idea)
            .filter(|d| pane.selected.as_deref() == Some(d.id.as_str()))
            .or_else(|| pane.current());
        let title = idea.map_or_else(|| "Idea".to_owned(), |i| format!("{} · {}", i.tracking_code, i.state));
        let block = section(title);
        let inner = block.inner(area);
        block.render(area, buf);

        let mut lines = Vec::new();
        if let Some(o) = &pane.outcome {
            let (mark, color) = if o.ok {
                ("✓", Color::Green)
            } else {
                ("✕", Color::Red)
            };
            lines.push(Line::from(Span::styled(
                format!("{mark} {}", o.text),
                Style::new().fg(color),
            )));
        }
        let Some(idea) = idea else {
            lines.push(Line::from("no idea selected").fg(Color::DarkGray));
            Paragraph::new(lines).render(inner, buf);
            return;
        };
        let time = |t: DateTime<Utc>| {
            let local = t.with_timezone(&app.tz);
            if local.date_naive() == app.now.with_timezone(&app.tz).date_naive() {
                local.format("%H:%M").to_string()
            } else {
                local.format("%d.%m. %H:%M").to_string()
            }
        };
        let dim = Style::new().fg(Color::DarkGray);
        let mut facts = vec![
            format!("{} · {} · {}", idea.municipality, idea.category, idea.lang),
            format!("bench {}", idea.bench_id),
            format!("received {}", time(idea.received_at)),
        ];
        if let Some(d) = idea.deadline {
            facts.push(format!("deadline {}", time(d)));
        }
        if let Some(rule) = &idea.rule {
            facts.push(format!("rule {rule}"));
        }
        lines.push(Line::styled(facts.join(" · "), dim));
        if let Some(flag) = &idea.flag {
            lines.push(Line::styled(format!("! {flag}"), Style::new().fg(Color::Yellow)));
        }
        if let Some(original) = &idea.duplicate_of {
            lines.push(Line::styled(format!("duplicate of {original}"), dim));
        }
        lines.push(Line::from(idea.text.as_str()));
        let mut notes = Vec::new();
        if idea.redacted {
            notes.push("personal data redacted");
        }
        if idea.has_contact {
            notes.push("the citizen left contact details (shown to the confirming organisation)");
        }
        if !notes.is_empty() {
            lines.push(Line::styled(notes.join(" · "), dim));
        }
        lines.push(Line::from(""));
        match (&pane.detail, &pane.detail_error) {
            (_, Some(e)) => {
                lines.push(Line::styled(
                    format!("cannot load the history: {}", explain(e)),
                    Style::new().fg(Color::Red),
                ));
            }
            (Some(d), None) if d.idea.id == idea.id => {
                lines.push(Line::from(Span::styled("History", Style::new().bold())));
                let width = d.history.iter().map(|s| time(s.at).len()).max().unwrap_or(0);
                for step in &d.history {
                    let mut spans = vec![
                        Span::styled(format!("{:<width$}  ", time(step.at)), dim),
                        Span::raw(format!("{:<10} ", step.action)),
                        Span::styled(format!("→ {:<10} ", step.to.as_str()), dim),
                        Span::raw(step.actor.clone()),
                    ];
                    if let Some(org) = &step.org_id {
                        spans.push(Span::styled(format!(" · {org}"), dim));
                    }
                    for note in [&step.public_note, &step.internal_note].into_iter().flatten() {
                        spans.push(Span::raw(format!(" · {note}")));
                    }
                    lines.push(Line::from(spans));
                }
            }
            _ => lines.push(Line::styled("loading the history…", dim)),
        }
        Paragraph::new(lines).wrap(Wrap { trim: false }).render(inner, buf);
    }
}
