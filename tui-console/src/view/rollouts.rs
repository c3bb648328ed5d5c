//! The rollouts view: every rollout (the active one first) in a table, the selected rollout
//! below it with each of its benches' progress and configuration state, and the benches whose
//! configuration is not where the control plane wants it.

use chrono::{DateTime, TimeDelta, Utc};
use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget};

use super::{section, units};
use crate::api::{BenchConfigStatus, DeliveryState, Progress, RolloutState, RolloutSummary};
use crate::app::App;
use crate::app::ideas::explain;
use crate::app::rollouts::short_id;

/// Rows of the detail pane at least, when the body has room for it.
const DETAIL_MIN: u16 = 8;

pub struct RolloutsView<'a>(pub &'a App);

impl Widget for RolloutsView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let rows = app.rollouts_pane.rows();
        let off = off_benches(app);
        // The table takes the rows it needs, up to a third of the body; the configuration
        // section its title and the benches that are off, up to a quarter; the detail the rest.
        let table_height = (rows.len().max(1) as u16 + 2).min((area.height / 3).max(4));
        // Title, header and the benches that are off (or one line saying none are).
        let config_height = (off.len().max(1) as u16 + 1 + u16::from(!off.is_empty())).min((area.height / 4).max(2));
        let config_height = config_height.min(area.height.saturating_sub(table_height + DETAIL_MIN));
        let [table_area, detail_area, config_area] = Layout::vertical([
            Constraint::Length(table_height),
            Constraint::Min(0),
            Constraint::Length(config_height),
        ])
        .areas(area);
        RolloutTable(app, &rows).render(table_area, buf);
        RolloutDetail(app).render(detail_area, buf);
        ConfigState(app, &off).render(config_area, buf);
    }
}

/// `✓3 ~1 …2 ·4 ✕1`: benches per progress state, in the order a bench moves through them.
pub fn counts_text(r: &RolloutSummary) -> Vec<Span<'static>> {
    let mut spans = Vec::new();
    for (progress, n) in &r.counts {
        if *n == 0 {
            continue;
        }
        let (mark, color) = progress_mark(*progress);
        if !spans.is_empty() {
            spans.push(Span::raw(" "));
        }
        spans.push(Span::styled(format!("{mark}{n}"), Style::new().fg(color)));
    }
    spans
}

/// A progress state's symbol and colour (the help overlay explains them).
fn progress_mark(p: Progress) -> (&'static str, Color) {
    match p {
        Progress::Waiting => ("·", Color::DarkGray),
        Progress::Pending => ("…", Color::Cyan),
        Progress::Soaking => ("~", Color::Blue),
        Progress::Healthy => ("✓", Color::Green),
        Progress::Skipped => ("↷", Color::Yellow),
        Progress::Rejected | Progress::TimedOut | Progress::Unhealthy => ("✕", Color::Red),
        Progress::RolledBack => ("↺", Color::Magenta),
        Progress::Other => ("?", Color::DarkGray),
    }
}

fn state_style(s: RolloutState) -> Style {
    match s {
        RolloutState::Running => Style::new().fg(Color::Cyan).bold(),
        RolloutState::Paused => Style::new().fg(Color::Yellow).bold(),
        RolloutState::Completed => Style::new().fg(Color::Green),
        RolloutState::Aborted => Style::new().fg(Color::Red),
        RolloutState::RolledBack => Style::new().fg(Color::Magenta),
        RolloutState::Other => Style::new().fg(Color::DarkGray),
    }
}

/// A time on screen: the clock today, day and clock before.
fn clock(app: &App, t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&app.tz);
    if local.date_naive() == app.now.with_timezone(&app.tz).date_naive() {
        local.format("%H:%M").to_string()
    } else {
        local.format("%d.%m. %H:%M").to_string()
    }
}

struct RolloutTable<'a>(&'a App, &'a [&'a RolloutSummary]);

impl Widget for RolloutTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (app, rows) = (self.0, self.1);
        let pane = &app.rollouts_pane;
        let active = rows.iter().filter(|r| r.state.is_active()).count();
        let mut title = format!("Rollouts · {} · {active} active", rows.len());
        if let Some(at) = pane.loaded_at {
            title.push_str(&format!(" · {}", at.with_timezone(&app.tz).format("%H:%M:%S")));
        }
        let block = section(title);
        let inner = block.inner(area);
        block.render(area, buf);

        let problem = pane
            .error
            .as_ref()
            .map(|e| format!("cannot load the rollouts: {}", explain(e)));
        let [problem_area, table_area] =
            Layout::vertical([Constraint::Length(u16::from(problem.is_some())), Constraint::Min(0)]).areas(inner);
        if let Some(p) = problem {
            Paragraph::new(p).fg(Color::Red).render(problem_area, buf);
        }
        if rows.is_empty() {
            let text = if pane.loaded_at.is_none() {
                "loading rollouts…"
            } else {
                "no rollouts yet: start one with POST /api/v1/rollouts"
            };
            Paragraph::new(text).fg(Color::DarkGray).render(table_area, buf);
            return;
        }
        use Constraint::{Fill, Length};
        let wide = area.width >= 100;
        let mut columns = vec![
            ("Rollout", Length(8)),
            ("State", Length(11)),
            ("Step", Length(5)),
            ("Benches", Length(18)),
            ("By", Length(if wide { 12 } else { 8 })),
            if wide {
                ("Created", Length(12))
            } else {
                ("Age", Length(4))
            },
        ];
        columns.push(("Reason", Fill(1)));
        let header = Row::new(columns.iter().map(|(name, _)| Cell::from(*name)))
            .style(Style::new().fg(Color::DarkGray).add_modifier(Modifier::BOLD));
        let body = rows.iter().map(|r| {
            Row::new([
                Cell::from(short_id(&r.id).to_owned()),
                Cell::from(r.state.as_str()).style(state_style(r.state)),
                Cell::from(Text::from(step_text(r.step, r.steps)).alignment(Alignment::Right)),
                Cell::from(Line::from(counts_text(r))),
                Cell::from(r.created_by.clone()),
                Cell::from(if wide {
                    clock(app, r.created_at)
                } else {
                    units::ago(app.now, Some(r.created_at))
                }),
                Cell::from(r.reason.clone().unwrap_or_default()),
            ])
        });
        let table = Table::new(body, columns.iter().map(|(_, w)| *w))
            .header(header)
            .column_spacing(1)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state = TableState::new().with_selected(pane.selected_index(rows));
        StatefulWidget::render(table, table_area, buf, &mut state);
    }
}

/// The step counted from 1: `2/3`. The server's step is an index that stays on the last step
/// once a rollout completes.
fn step_text(step: usize, steps: usize) -> String {
    format!("{}/{steps}", (step + 1).min(steps.max(1)))
}

/// The selected rollout: what it changes, its state, and every bench with progress and
/// configuration.
struct RolloutDetail<'a>(&'a App);

impl Widget for RolloutDetail<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let pane = &app.rollouts_pane;
        let summary = pane.current();
        let detail = pane.current_detail();
        let title = match summary {
            Some(r) => format!(
                "Rollout {} · {} · step {}",
                short_id(&r.id),
                r.state.as_str(),
                step_text(r.step, r.steps)
            ),
            None => "Rollout".to_owned(),
        };
        let block = section(title);
        let inner = block.inner(area);
        block.render(area, buf);

        let dim = Style::new().fg(Color::DarkGray);
        let mut lines = Vec::new();
        if let Some(o) = &pane.outcome {
            let (mark, color) = if o.ok {
                ("✓", Color::Green)
            } else {
                ("✕", Color::Red)
            };
            lines.push(Line::styled(format!("{mark} {}", o.text), Style::new().fg(color)));
        }
        let Some(summary) = summary else {
            lines.push(Line::styled("no rollout selected", dim));
            Paragraph::new(lines).render(inner, buf);
            return;
        };
        let mut facts = vec![format!(
            "by {} at {}",
            summary.created_by,
            clock(app, summary.created_at)
        )];
        if let Some(d) = detail {
            facts.push(format!("target {}", d.target));
            if let Some(at) = d.paused_at.filter(|_| d.state == RolloutState::Paused) {
                facts.push(format!("paused at {}", clock(app, at)));
            }
            if let Some(at) = d.finished_at {
                facts.push(format!("finished {}", clock(app, at)));
            }
        }
        lines.push(Line::styled(facts.join(" · "), dim));
        if let Some(d) = detail {
            lines.push(Line::from(vec![
                Span::styled("change ", dim),
                Span::raw(d.change.to_string()),
            ]));
            if let Some(note) = &d.note {
                lines.push(Line::styled(format!("note: {note}"), dim));
            }
        }
        // The server words it (`aborted by ana: …`, or the failure that aborted it).
        if let Some(reason) = &summary.reason {
            lines.push(Line::styled(
                format!("reason: {reason}"),
                Style::new().fg(Color::Yellow),
            ));
        }
        let head = u16::try_from(lines.len()).unwrap_or(u16::MAX);
        let [text_area, bench_area] = Layout::vertical([Constraint::Length(head), Constraint::Min(0)]).areas(inner);
        // One row per line, cut at the edge: the bench table below needs the rows more.
        Paragraph::new(lines).render(text_area, buf);

        let Some(d) = detail else {
            let text = match &pane.detail_error {
                Some(e) => Line::styled(
                    format!("cannot load the rollout: {}", explain(e)),
                    Style::new().fg(Color::Red),
                ),
                None => Line::styled("loading the benches…", dim),
            };
            Paragraph::new(text).render(bench_area, buf);
            return;
        };
        let wide = area.width >= 100;
        use Constraint::{Fill, Length};
        let columns = [
            ("Bench", Length(13)),
            ("Step", Length(4)),
            ("Progress", Length(13)),
            ("Since", Length(5)),
            ("Config", Length(if wide { 9 } else { 7 })),
            ("Delivery", Length(9)),
            ("Drift", Length(5)),
            ("Detail", Fill(1)),
        ];
        let header = Row::new(columns.iter().map(|(name, _)| Cell::from(*name)))
            .style(Style::new().fg(Color::DarkGray).add_modifier(Modifier::BOLD));
        // Failures first, then the benches in flight: what an operator acts on shows even when
        // the pane is short. Otherwise step order.
        let mut benches: Vec<_> = d.benches.iter().collect();
        benches.sort_by_key(|b| match b.state {
            s if s.is_failure() => 0,
            Progress::Pending | Progress::Soaking => 1,
            _ => 2,
        });
        let body = benches.into_iter().map(|b| {
            let (mark, color) = progress_mark(b.state);
            let status = app.fleet.config_of(b.bench.as_str());
            let mut detail = b.detail.clone().unwrap_or_default();
            if let Some(e) = status.and_then(|c| c.error.as_ref()) {
                if !detail.is_empty() {
                    detail.push_str(" · ");
                }
                detail.push_str(&format!("refused: {e}"));
            }
            let mut cells = vec![
                Cell::from(b.bench.to_string()),
                Cell::from(Text::from(format!("{}", b.step + 1)).alignment(Alignment::Right)),
                Cell::from(format!("{mark} {}", b.state.as_str())).style(Style::new().fg(color)),
                Cell::from(units::ago(app.now, Some(b.at))),
            ];
            cells.extend(config_cells(app, status));
            cells.push(Cell::from(detail).style(if b.state.is_failure() {
                Style::new().fg(Color::Red)
            } else {
                dim
            }));
            Row::new(cells)
        });
        let table = Table::new(body, columns.iter().map(|(_, w)| *w))
            .header(header)
            .column_spacing(1);
        Widget::render(table, bench_area, buf);
    }
}

/// Config (`v6→v7`, or `v7` in sync), delivery state and drift of one bench.
fn config_cells(app: &App, status: Option<&BenchConfigStatus>) -> [Cell<'static>; 3] {
    let Some(c) = status else {
        let none = || Cell::from("—").style(Style::new().fg(Color::DarkGray));
        return [none(), none(), none()];
    };
    let config = match c.reported_version {
        Some(r) if r == c.desired_version => format!("v{r}"),
        Some(r) => format!("v{r}→v{}", c.desired_version),
        None => format!("—→v{}", c.desired_version),
    };
    let delivery_style = match c.state {
        DeliveryState::Applied => Style::new().fg(Color::Green),
        DeliveryState::Rejected | DeliveryState::TimedOut => Style::new().fg(Color::Red),
        _ => Style::new().fg(Color::Yellow),
    };
    let drift = if c.drift_seconds == 0 {
        Cell::from("")
    } else {
        let text = units::ago(app.now, Some(app.now - TimeDelta::seconds(c.drift_seconds as i64)));
        let style = if c.drifting {
            Style::new().fg(Color::Magenta).bold()
        } else {
            Style::new().fg(Color::DarkGray)
        };
        Cell::from(Text::from(if c.drifting { format!("≠{text}") } else { text }).alignment(Alignment::Right))
            .style(style)
    };
    [
        Cell::from(config),
        Cell::from(c.state.as_str()).style(delivery_style),
        drift,
    ]
}

/// Benches whose configuration is not applied or drifts, by id.
fn off_benches(app: &App) -> Vec<&BenchConfigStatus> {
    let mut off: Vec<&BenchConfigStatus> = app
        .fleet
        .config
        .values()
        .filter(|c| c.drifting || c.state != DeliveryState::Applied)
        .collect();
    off.sort_by(|a, b| a.bench_id.cmp(&b.bench_id));
    off
}

/// Every bench's configuration in one line, and the benches that are off.
struct ConfigState<'a>(&'a App, &'a [&'a BenchConfigStatus]);

impl Widget for ConfigState<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (app, off) = (self.0, self.1);
        let all = app.fleet.config.len();
        let applied = app
            .fleet
            .config
            .values()
            .filter(|c| c.state == DeliveryState::Applied)
            .count();
        let drifting = app.fleet.config.values().filter(|c| c.drifting).count();
        let title = if all == 0 {
            "Configuration · no OTA data".to_owned()
        } else {
            format!("Configuration · {applied}/{all} applied · {drifting} drifting")
        };
        let block = section(title);
        let inner = block.inner(area);
        block.render(area, buf);
        if off.is_empty() {
            let text = if all == 0 {
                "the control plane has not reported the benches' configuration"
            } else {
                "every bench runs its desired configuration"
            };
            Paragraph::new(text).fg(Color::DarkGray).render(inner, buf);
            return;
        }
        let body = off.iter().map(|c| {
            let mut cells = vec![Cell::from(c.bench_id.to_string())];
            cells.extend(config_cells(app, Some(c)));
            cells.push(
                Cell::from(c.error.clone().map(|e| format!("refused: {e}")).unwrap_or_default())
                    .style(Style::new().fg(Color::Red)),
            );
            Row::new(cells)
        });
        use Constraint::{Fill, Length};
        let header = Row::new(["Bench", "Config", "Delivery", "Drift", "Error"])
            .style(Style::new().fg(Color::DarkGray).add_modifier(Modifier::BOLD));
        let table = Table::new(body, [Length(13), Length(9), Length(9), Length(5), Fill(1)])
            .header(header)
            .column_spacing(1);
        Widget::render(table, inner, buf);
    }
}
