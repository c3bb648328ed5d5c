//! The fleet table: one row per bench, every figure the ops staff scan for, with the sort and
//! filters in the section title.

use ratatui::buffer::Buffer;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Cell, Paragraph, Row, StatefulWidget, Table, TableState, Widget};

use super::{section, units};
use crate::api::Bench;
use crate::app::App;
use crate::app::fleet::{faults, sessions_active};

/// From this width on the table shows fault codes and longer labels.
const WIDE: u16 = 110;
/// From this width on it also shows the benches' names.
const WIDEST: u16 = 140;

pub struct FleetTable<'a>(pub &'a App);

impl Widget for FleetTable<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let app = self.0;
        let t = &app.table;
        let rows = t.rows(&app.fleet);
        let mut title = format!(
            "Benches {}/{} · sort {} {}",
            rows.len(),
            app.fleet.benches.len(),
            t.sort.label(),
            if t.descending { "↑" } else { "↓" }
        );
        if t.is_filtered() {
            let mut parts = Vec::new();
            if t.state != crate::app::StateFilter::All {
                parts.push(t.state.label());
            }
            if let Some(m) = &t.municipality {
                parts.push(m.clone());
            }
            if !t.text.trim().is_empty() {
                parts.push(format!("\"{}\"", t.text.trim()));
            }
            title.push_str(&format!(" · filter {}", parts.join(", ")));
        }
        let block = section(title);
        let inner = block.inner(area);
        block.render(area, buf);

        if app.fleet.benches.is_empty() {
            let text = if app.fleet_error.is_some() {
                "no bench data yet".to_owned()
            } else {
                format!("loading benches from {}…", app.api_url)
            };
            Paragraph::new(text).fg(Color::DarkGray).render(inner, buf);
            return;
        }
        if rows.is_empty() {
            Paragraph::new("no bench matches the filter (c clears it)")
                .fg(Color::DarkGray)
                .render(inner, buf);
            return;
        }

        let wide = area.width >= WIDE;
        let named = area.width >= WIDEST;
        let columns = columns(wide, named);
        let header = Row::new(
            columns
                .iter()
                .map(|(name, _, align)| Cell::from(Line::from(*name).alignment(*align))),
        )
        .style(Style::new().fg(Color::DarkGray).add_modifier(Modifier::BOLD));
        let body = rows.iter().map(|b| row(app, b, wide, named));
        let widths = columns.iter().map(|(_, w, _)| *w);
        let table = Table::new(body, widths)
            .header(header)
            .column_spacing(1)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED));
        let mut state = TableState::new().with_selected(t.selected_index(&rows));
        StatefulWidget::render(table, inner, buf, &mut state);
    }
}

fn columns(wide: bool, named: bool) -> Vec<(&'static str, Constraint, Alignment)> {
    use Alignment::{Left, Right};
    use Constraint::{Fill, Length};
    if wide {
        let mut c = vec![("State", Length(12), Left), ("Bench", Length(13), Left)];
        if named {
            c.push(("Name", Length(24), Left));
        }
        c.extend([
            ("Municipality", Length(12), Left),
            ("Seen", Length(4), Right),
            ("Battery", Length(10), Left),
            ("Solar", Length(6), Right),
            ("Sess", Length(4), Right),
            ("Wi-Fi", Length(5), Right),
            ("Net", Length(7), Right),
            ("Faults", Fill(1), Left),
            ("Config", Length(7), Left),
        ]);
        c
    } else {
        vec![
            ("State", Length(10), Left),
            ("Bench", Length(13), Left),
            ("Municip.", Length(10), Left),
            ("Ago", Length(3), Right),
            ("Battery", Length(9), Left),
            ("Solar", Length(5), Right),
            ("Ses", Length(3), Right),
            ("WiFi", Length(4), Right),
            ("Net", Length(6), Right),
            ("Flt", Length(3), Right),
            ("Cfg", Length(4), Left),
        ]
    }
}

fn row<'a>(app: &'a App, b: &'a Bench, wide: bool, named: bool) -> Row<'a> {
    let (symbol, label, color) = units::state(b.state);
    let label = if wide || label.len() <= 8 { label } else { "never" };
    let state = Line::from(vec![
        Span::styled(symbol, Style::new().fg(color).bold()),
        Span::styled(format!(" {label}"), Style::new().fg(color)),
    ]);
    let right = |s: String| Cell::from(Text::from(s).alignment(Alignment::Right));
    let dash = || "—".to_owned();

    let battery = match &b.power {
        Some(p) => {
            let c = units::battery_color(p.battery_pct, app.low_battery_pct());
            Cell::from(Line::from(vec![
                Span::styled(
                    units::gauge(p.battery_pct, if wide { 5 } else { 4 }),
                    Style::new().fg(c),
                ),
                Span::styled(format!("{:>4}", format!("{:.0}%", p.battery_pct)), Style::new().fg(c)),
            ]))
        }
        None => Cell::from("—"),
    };
    let solar = b.power.as_ref().map_or_else(dash, |p| format!("{:.0}W", p.solar_w));
    let sessions = sessions_active(b).map_or_else(dash, |n| n.to_string());
    let wifi = b
        .network
        .as_ref()
        .and_then(|n| n.wifi_clients)
        .map_or_else(dash, |n| n.to_string());
    let net = app.fleet.bandwidth.get(&b.id).map_or_else(dash, |r| units::rate(*r));
    let fault_list = faults(b);
    let fault_cell = if fault_list.is_empty() {
        Cell::from("")
    } else if wide {
        Cell::from(fault_list.join(",")).style(Style::new().fg(Color::Red))
    } else {
        right(fault_list.len().to_string()).style(Style::new().fg(Color::Red).bold())
    };
    // The version the bench runs; `≠` only where the control plane says it drifts.
    let status = app.fleet.config_of(&b.id);
    let runs = b.config_version.or(status.and_then(|c| c.reported_version));
    let config = match (runs, status) {
        (_, Some(c)) if c.drifting => {
            let runs = runs.map_or_else(|| "—".to_owned(), |v| format!("v{v}"));
            let text = if wide {
                format!("{runs}≠v{}", c.desired_version)
            } else {
                format!("{runs}≠")
            };
            Cell::from(text).style(Style::new().fg(Color::Magenta).bold())
        }
        (Some(v), _) => Cell::from(format!("v{v}")),
        (None, _) => Cell::from("—"),
    };

    let mut cells = vec![Cell::from(state), Cell::from(b.id.as_str())];
    if named {
        cells.push(Cell::from(b.name.as_str()));
    }
    cells.extend([
        Cell::from(b.municipality.as_str()),
        right(units::ago(app.now, b.last_seen)),
        battery,
        right(solar),
        right(sessions),
        right(wifi),
        right(net),
        fault_cell,
        config,
    ]);
    Row::new(cells)
}
