//! The rollouts and ideas views while their control-plane routes are missing or not probed yet
//! (they arrive with later releases): the view says so plainly instead of showing anything made
//! up. The views proper are `view::ideas` and `view::rollouts`.

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Widget, Wrap};

use super::section;
use crate::app::{App, Availability, Feature};

pub struct FeatureView<'a>(pub &'a App, pub Feature);

impl Widget for FeatureView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (app, feature) = (self.0, self.1);
        let (title, plural, purpose) = match feature {
            Feature::Rollouts => (
                "Rollouts",
                "rollouts",
                "active and recent configuration rollouts with per-step progress; operators can pause, \
                 resume, abort or roll one back",
            ),
            Feature::Ideas => (
                "Ideas",
                "ideas",
                "the moderation queue and citizens' ideas by state; operators can approve or reject held ideas",
            ),
        };
        let block = section(title);
        let inner = block.inner(area);
        block.render(area, buf);
        let mut lines = Vec::new();
        match app.availability(feature) {
            Availability::Unknown => {
                lines.push(
                    Line::from(format!("checking whether this control plane offers {plural}…")).fg(Color::DarkGray),
                );
            }
            Availability::Missing => {
                lines.push(Line::from(format!("{title} are not available on this control plane yet.")).bold());
                lines.push(Line::from(format!("GET {} answered 404 Not Found.", feature.path())).fg(Color::DarkGray));
            }
            Availability::Present => {
                lines.push(
                    Line::from(format!(
                        "This control plane offers {plural}, but this console version cannot show them yet."
                    ))
                    .bold(),
                );
            }
            Availability::Failed(e) => {
                lines.push(Line::from(format!("Cannot tell whether {plural} are available: {e}")).fg(Color::Red));
            }
        }
        lines.push(Line::from(""));
        lines.push(Line::from(format!("This view will show {purpose}.")));
        if !app.access.can_act() {
            lines.push(Line::from(""));
            lines.push(
                Line::from(format!(
                    "Read-only: a {} token sees {plural} but its actions stay hidden.",
                    app.access.label()
                ))
                .style(Style::new().fg(Color::Yellow)),
            );
        }
        Paragraph::new(lines).wrap(Wrap { trim: true }).render(inner, buf);
    }
}
